"""Every IAM policy of the templates, linted with parliament (duo-labs/parliament).

    python .ci/check_policies.py [--documents] [template ...]
        (default: template.yaml templates/target-role.yaml; --documents
        prints each policy document as parliament reads it)

Runs with the lint venv's python (cfn-lint, aws-sam-translator, parliament).
Nothing calls AWS.

What is checked, per template:

- template.yaml after the SAM transform (.ci/sam_translate.py), so the roles
  SAM makes for the function and the state machines (their inline policies,
  SAM policy templates such as LambdaInvokePolicy, the EventInvokeConfig
  destination's policy) are checked as CloudFormation gets them;
- AWS::IAM::Role (every inline policy, and the trust policy),
  AWS::IAM::Policy, AWS::IAM::ManagedPolicy, and the resource policies
  (AWS::SQS::QueuePolicy, AWS::SNS::TopicPolicy, AWS::S3::BucketPolicy,
  AWS::Events::EventBusPolicy, AWS::Events::EventBus Policy,
  AWS::Logs::ResourcePolicy, whose document is a JSON string). A policy
  document anywhere else fails the check until it is added here.
  AWS::Lambda::Permission is not a policy document. AWS managed policies
  (ManagedPolicyArns, such as the AWSLambdaBasicExecutionRole SAM attaches)
  are not in the template and not checked.

Intrinsic functions are resolved to plausible values (account 123456789012,
region us-east-1, the sample parameter values below) with the template model
of check_request_policy.py, so that parliament sees real ARNs. Each Fn::If in
a policy is checked both ways: a policy is resolved once for every
combination of true and false of the conditions its Fn::Ifs name (its
"variants"); a finding that shows up only in some is reported with the
conditions it needs.

A trust policy has no Resource element, and parliament refuses a statement
without one (MALFORMED). The resource a trust policy governs is the role
itself, so its statements are given that (Resource: the role's ARN) before
parliament reads them: the principals, the action and the condition keys are
checked like any other policy's.

A finding is accepted only where the template says why, on the resource
(for a SAM function or state machine: on it, for the role SAM makes):

    Metadata:
      parliament:
        ignore:
          - issue: RESOURCE_MISMATCH      # parliament's issue code
            sid: FollowFailback           # optional: that statement's findings only
            policy: StartAndFollowFailbacks   # optional: that policy's only (its
                                          # PolicyName; "AssumeRolePolicyDocument (trust)")
            comment: >-
              Why the finding is accepted.

Prefer sid (or policy) where the finding has one: an ignore of a whole issue
on a resource would also accept the next statement to have it.

An ignore without a comment, with an unknown issue code, or that matches no
finding (stale: the policy changed) fails the check, as does any finding
without an ignore. Exit status: 0 when every finding is justified.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import pathlib
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from cfnlint.decode import decode

from check_request_policy import ACCOUNT, PARTITION, REGION, Stack, Unsupported, as_list
from sam_translate import translate

# parliament 1.6 loads its data with pkg_resources, which setuptools warns is
# deprecated: a warning about parliament's packaging, not about a policy.
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import parliament
    from parliament import analyze_policy_string, enhance_finding, override_config

ROOT = pathlib.Path(__file__).resolve().parent.parent
DEFAULT_TEMPLATES = ["template.yaml", "templates/target-role.yaml"]

# The community auditors find what the core checks do not: privilege
# escalation, permissions-management actions (e.g. logs:PutResourcePolicy),
# credentials exposure, a multi-value operator on a single-valued key. Their
# issue codes come from their own config, loaded as the parliament CLI does
# for --include-community-auditors.
INCLUDE_COMMUNITY_AUDITORS = True
if INCLUDE_COMMUNITY_AUDITORS:
    override_config(pathlib.Path(parliament.__file__).parent / "community_auditors" / "config_override.yaml")
ISSUE_CODES = set(parliament.config)

# Values for the parameters a policy names, where the default is empty or
# missing: plausible, so that every ARN parses (e.g. an existing bus's name
# when a variant takes the Fn::If branch that names one).
SAMPLE_PARAMETERS = {
    # template.yaml
    "RequestPrincipals": "111122223333,arn:aws:iam::444455556666:role/dr-runbook",
    "ApproverPrincipals": f"arn:aws:iam::{ACCOUNT}:role/dr-approver",
    "ResultEventBusName": "ops-results",
    "RequestEventBusName": "ops-requests",
    "TargetAccountIds": "111122223333,444455556666",
    "TargetExternalId": "drs-failback-example",
    "AllowedInstanceTagValue": "dr-wave",
    "AlarmEmail": "ops@example.com",
    "RehearsalPlanParameter": "/drs-failback/rehearsal-plan",
    # templates/target-role.yaml
    "HubFunctionRoleArn": f"arn:aws:iam::{ACCOUNT}:role/drs-failback-FailbackFunctionRole-EXAMPLE",
    "ExternalId": "drs-failback-example",
}

# Past this many conditions in one resource's policies, 2^n variants get
# slow: split the policy, or check fewer combinations here.
MAX_CONDITIONS = 10

SEVERITIES = ["MUTE", "INFO", "LOW", "MEDIUM", "HIGH", "CRITICAL"]


class Deployment(Stack):
    """check_request_policy's template model, with some conditions forced and
    the resource types the SAM transform makes (a function's ARN, a state
    machine's name)."""

    def __init__(self, template: dict, forced: dict[str, bool]):
        super().__init__(template, SAMPLE_PARAMETERS)
        self._conditions.update(forced)  # Stack caches conditions: forced ones are never evaluated

    def ref(self, name: str) -> Any:
        resource = self.resources_raw.get(name, {})
        kind, props = resource.get("Type"), resource.get("Properties", {})
        # After the transform a state machine's name is StateMachineName (SAM's Name).
        if kind == "AWS::StepFunctions::StateMachine" and "StateMachineName" in props:
            return f"arn:{PARTITION}:states:{REGION}:{ACCOUNT}:stateMachine:{self.resolve(props['StateMachineName'])}"
        return super().ref(name)

    def get_att(self, name: str, attribute: str) -> str:
        resource = self.resources_raw.get(name, {})
        kind, props = resource.get("Type"), resource.get("Properties", {})
        if kind == "AWS::IAM::Role" and attribute == "Arn" and "RoleName" in props:
            return f"arn:{PARTITION}:iam::{ACCOUNT}:role/{self.resolve(props['RoleName'])}"
        if kind == "AWS::Lambda::Function" and attribute == "Arn":
            function = self.resolve(props["FunctionName"]) if "FunctionName" in props else name
            return f"arn:{PARTITION}:lambda:{REGION}:{ACCOUNT}:function:{function}"
        if kind == "AWS::StepFunctions::StateMachine" and attribute in ("Arn", "Name"):
            arn = self.ref(name)
            return arn if attribute == "Arn" else arn.rsplit(":", 1)[1]
        value = super().get_att(name, attribute)
        # The model's fallback ("Name.Attribute") is no ARN: parliament would
        # report INVALID_ARN for what is a gap in this model.
        if value == f"{name}.{attribute}":
            raise Unsupported(f"Fn::GetAtt {name}.{attribute} ({kind}) is not modelled")
        return value


def conditions_in(node: Any) -> list[str]:
    """The conditions the Fn::Ifs in a (not yet resolved) template node name."""
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Fn::If" and isinstance(value, list) and value and isinstance(value[0], str):
                found.append(str(value[0]))
            found += conditions_in(value)
    elif isinstance(node, list):
        for item in node:
            found += conditions_in(item)
    return list(dict.fromkeys(found))


@dataclass
class Document:
    policy: str  # how the template names it: PolicyName, or the property
    document: dict
    trust: bool = False

    def contents(self) -> str:
        """Its statements, by Sid (or actions): SAM names the policies it makes
        <Role>Policy<N>, which says nothing about what is in them."""
        labels = []
        for statement in as_list(self.document.get("Statement")):
            if not isinstance(statement, dict):
                continue
            labels.append(str(statement.get("Sid") or ", ".join(as_list(statement.get("Action")))))
        return "; ".join(labels)


def documents(stack: Stack, name: str, kind: str, props: dict) -> Iterator[Document]:
    """The policy documents of one resource, resolved."""
    if kind == "AWS::IAM::Role":
        trust = props["AssumeRolePolicyDocument"]
        role_arn = stack.get_att(name, "Arn")
        trust = {**trust, "Statement": [
            s if "Resource" in s or "NotResource" in s else {**s, "Resource": role_arn}
            for s in as_list(trust.get("Statement"))]}
        yield Document("AssumeRolePolicyDocument (trust)", trust, trust=True)
        for policy in as_list(props.get("Policies")):
            yield Document(policy["PolicyName"], policy["PolicyDocument"])
    elif kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        yield Document(props.get("PolicyName") or props.get("ManagedPolicyName") or name, props["PolicyDocument"])
    elif kind in ("AWS::SQS::QueuePolicy", "AWS::SNS::TopicPolicy", "AWS::S3::BucketPolicy"):
        yield Document("PolicyDocument", props["PolicyDocument"])
    elif kind == "AWS::Events::EventBus":
        if "Policy" in props:
            yield Document("Policy", props["Policy"])
    elif kind == "AWS::Events::EventBusPolicy":
        if "Statement" not in props:
            # The older form (Principal, Action, Condition {Type, Key, Value}).
            raise Unsupported("an EventBusPolicy without Statement is not checked: write its Statement")
        yield Document("Statement", {"Version": "2012-10-17", "Statement": [props["Statement"]]})
    elif kind == "AWS::Logs::ResourcePolicy":
        try:
            document = json.loads(props["PolicyDocument"])
        except json.JSONDecodeError as error:
            raise Unsupported(f"PolicyDocument is not JSON once resolved: {error}") from error
        yield Document(props.get("PolicyName", "PolicyDocument"), document)


# The community auditor for credentials exposure flags sts:AssumeRole in any
# policy. In a trust policy that action is what the document is for: it says
# who may assume this very role, and the Principal (which parliament's core
# checks read) is what decides whether that is too many. Every role's trust
# policy would need the same ignore, saying nothing: not reported there. (In
# an identity policy, sts:AssumeRole of other roles still is.)
NOT_FOR_TRUST_POLICIES = {"CREDENTIALS_EXPOSURE"}

CHECKED_TYPES = {"AWS::IAM::Role", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::SQS::QueuePolicy",
                 "AWS::SNS::TopicPolicy", "AWS::S3::BucketPolicy", "AWS::Events::EventBus",
                 "AWS::Events::EventBusPolicy", "AWS::Logs::ResourcePolicy"}
POLICY_KEYS = {"PolicyDocument", "AssumeRolePolicyDocument", "KeyPolicy", "ResourcePolicy", "PolicyText"}


def unchecked_policy(node: Any) -> bool:
    """Whether a resource of a type not in CHECKED_TYPES holds a policy document."""
    if isinstance(node, dict):
        if "Statement" in node or POLICY_KEYS & set(node):
            return True
        return any(unchecked_policy(v) for v in node.values())
    if isinstance(node, list):
        return any(unchecked_policy(v) for v in node)
    return False


@dataclass
class Found:
    """One finding, however many variants show it."""

    template: str
    origin: str  # the resource of the template as written (a SAM function, not its role)
    resource: str  # the resource CloudFormation gets
    policy: str
    contents: str  # the policy's statements (Document.contents)
    statement: str  # its Sid, or its actions when it has none; "" for the whole policy
    sid: str | None
    issue: str
    severity: str
    title: str
    detail: str
    total: int  # the variants of its resource's policies
    variants: list[dict[str, bool]] = field(default_factory=list)  # those that show it
    justified_by: dict | None = None

    def where(self) -> str:
        resource = self.origin if self.origin == self.resource else f"{self.origin} (its role {self.resource})"
        statement = f" statement {self.statement}" if self.statement else f" [{self.contents}]"
        return f"{self.template} {resource} policy {self.policy}{statement}{self.when()}"

    def what(self) -> str:
        detail = f": {self.detail}" if self.detail else ""
        return f"{self.issue} ({self.severity}) {self.title}{detail}"

    def when(self) -> str:
        """The conditions the finding needs, when not every variant shows it."""
        if len(self.variants) == self.total:
            return ""
        fixed = {c: v for c, v in self.variants[0].items() if all(x[c] == v for x in self.variants)}
        shown = ", ".join(f"{c}={'true' if v else 'false'}" for c, v in fixed.items())
        return f" [only when {shown or 'some combinations of ' + ', '.join(self.variants[0])}]"


def statement_label(statement: Any) -> tuple[str, str | None]:
    """How a finding's statement is shown (its Sid, or its actions), and its Sid."""
    if statement is None:
        return "", None  # a finding on the whole policy
    if statement.sid:
        return str(statement.sid), str(statement.sid)
    key = "Action" if "Action" in statement.stmt else "NotAction"
    actions = [a.value for a in parliament.misc.make_list(statement.stmt[key])]
    return f"(no Sid: {', '.join(actions)})", None


def detail_text(finding) -> str:
    detail = finding.detail
    if detail in (None, "", [], {}):
        # Some findings carry what they are about in their location only.
        location = {k: v for k, v in (finding.location or {}).items() if k not in ("filepath", "line", "column")}
        return json.dumps(location) if location else ""
    return detail if isinstance(detail, str) else json.dumps(detail)


def granted_of(statement) -> set[str]:
    """Every action a statement names, expanded ("states:Describe*"), in lower case."""
    return {f"{a['service']}:{a['action']}".lower()
            for action in parliament.misc.make_list(statement.stmt["Action"])
            for a in parliament.expand_action(action.value, raise_exceptions=False)}


def granting(policy, actions: list[str]):
    """The one Allow statement of the policy that grants all these actions
    (in lower case, as the community auditors name them), or None."""
    wanted = {a.lower() for a in actions}
    allows = [s for s in policy.statements if s.effect_allow and "Action" in s.stmt]
    if any(a.value in ("*", "*:*") for s in allows for a in parliament.misc.make_list(s.stmt["Action"])):
        return None  # every action: no one statement to name
    matching = [s for s in allows if wanted & granted_of(s)]
    return matching[0] if len(matching) == 1 and wanted <= granted_of(matching[0]) else None


def analyze(document: dict) -> list[tuple[Any, Any]]:
    """parliament's findings on one document: (finding, its statement or None)."""
    policy = analyze_policy_string(json.dumps(document), ignore_private_auditors=True,
                                   include_community_auditors=INCLUDE_COMMUNITY_AUDITORS)
    found = []
    # The policy's own findings, and the community auditors' (which parliament
    # files under the policy, naming the actions they are about: they are
    # given to the statement that grants those actions, so that an ignore can
    # name its Sid).
    for finding in policy._findings:
        actions = as_list((finding.location or {}).get("actions"))
        found.append((finding, granting(policy, actions) if actions else None))
    for statement in policy.statements:
        found += [(f, statement) for f in statement.findings]
    return [(enhance_finding(f), s) for f, s in found]


def origin_of(raw_resources: dict, name: str, resource: dict) -> str:
    """The resource of the template as written that CloudFormation's resource comes from."""
    if name in raw_resources:
        return name
    connectors = resource.get("Metadata", {}).get("aws:sam:connectors")
    if isinstance(connectors, dict) and connectors:
        return next(iter(connectors))
    owner = name.removesuffix("Role")
    if owner != name and str(raw_resources.get(owner, {}).get("Type", "")).startswith("AWS::Serverless::"):
        return owner
    return name


def read_ignores(path: str, raw_resources: dict, errors: list[str]) -> dict[str, list[dict]]:
    """Metadata: parliament: ignore: [...] of each resource, checked for shape."""
    ignores: dict[str, list[dict]] = {}
    for name, resource in raw_resources.items():
        metadata = resource.get("Metadata", {}) if isinstance(resource, dict) else {}
        if "parliament" not in metadata:
            continue
        where = f"{path} {name} Metadata.parliament"
        block = metadata["parliament"]
        if not isinstance(block, dict) or set(block) != {"ignore"} or not isinstance(block["ignore"], list):
            errors.append(f"{where}: must be a mapping with one key, ignore: a list")
            continue
        for index, entry in enumerate(block["ignore"]):
            label = f"{where}.ignore[{index}]"
            if not isinstance(entry, dict) or set(entry) - {"issue", "sid", "policy", "comment"}:
                errors.append(f"{label}: must be a mapping of issue, comment and (optionally) sid, policy")
                continue
            if entry.get("issue") not in ISSUE_CODES:
                errors.append(f"{label}: issue {entry.get('issue')!r} is not one of parliament's issue codes")
                continue
            if not isinstance(entry.get("comment"), str) or not entry["comment"].strip():
                errors.append(f"{label} ({entry['issue']}): no comment: say why the finding is accepted")
                continue
            if any(key in entry and not isinstance(entry[key], str) for key in ("sid", "policy")):
                errors.append(f"{label} ({entry['issue']}): sid and policy must be strings")
                continue
            ignores.setdefault(name, []).append({**entry, "label": label, "used": False})
    return ignores


def check_template(path: str, errors: list[str], show: bool = False) -> tuple[list[Found], int, int]:
    """The findings of one template: (findings, policies checked, documents analysed)."""
    raw, matches = decode(str(ROOT / path))
    if raw is None:
        errors += [f"{path}: {m}" for m in matches]
        return [], 0, 0
    raw_resources = raw.get("Resources", {})
    ignores = read_ignores(path, raw_resources, errors)
    template = translate((ROOT / path).parent, (ROOT / path).name) if "Transform" in raw else raw

    findings: dict[tuple, Found] = {}
    policies: set[tuple[str, str]] = set()
    analysed: dict[str, list] = {}  # a resolved document's JSON -> parliament's findings (variants repeat)
    for name, resource in template.get("Resources", {}).items():
        kind, props = resource.get("Type"), resource.get("Properties", {})
        if kind not in CHECKED_TYPES:
            if unchecked_policy(props):
                errors.append(f"{path} {name}: a {kind} with a policy document this check does not read "
                              f"(add the type to documents() in .ci/check_policies.py)")
            continue
        origin = origin_of(raw_resources, name, resource)
        conditions = conditions_in(props)
        if len(conditions) > MAX_CONDITIONS:
            errors.append(f"{path} {name}: its policies use {len(conditions)} conditions, too many to try every combination")
            continue
        # Every combination of true and false: the 2^n variants of its policies.
        variants = [dict(zip(conditions, values, strict=True))
                    for values in itertools.product([True, False], repeat=len(conditions))]
        for forced in variants:
            try:
                stack = Deployment(template, forced)
                docs = list(documents(stack, name, kind, stack.resolve(props)))
            except (Unsupported, KeyError, TypeError, ValueError, IndexError) as error:
                errors.append(f"{path} {name}: cannot resolve its policies: {type(error).__name__}: {error}")
                break
            for doc in docs:
                policies.add((name, doc.policy))
                text = json.dumps(doc.document, sort_keys=True)
                if text not in analysed:
                    if show:  # each distinct document once
                        conditions_shown = ", ".join(f"{c}={'true' if v else 'false'}" for c, v in forced.items())
                        print(f"--- {path} {name} policy {doc.policy}" + (f" [{conditions_shown}]" if forced else ""))
                        print(json.dumps(doc.document, indent=1))
                    try:
                        analysed[text] = analyze(doc.document)
                    except Exception as error:  # parliament raises bare Exceptions (an ARN it cannot split)
                        errors.append(f"{path} {name} policy {doc.policy}: parliament failed: "
                                      f"{type(error).__name__}: {error}")
                        analysed[text] = []
                for finding, statement in analysed[text]:
                    if doc.trust and finding.issue in NOT_FOR_TRUST_POLICIES:
                        continue
                    label, sid = statement_label(statement)
                    detail = detail_text(finding)
                    key = (name, doc.policy, label, finding.issue, detail)
                    if key not in findings:
                        findings[key] = Found(path, origin, name, doc.policy, doc.contents(), label, sid, finding.issue,
                                              finding.severity, finding.title, detail, len(variants))
                    if forced not in findings[key].variants:
                        findings[key].variants.append(forced)

    # Justifications: an ignore on the resource as written covers its findings of
    # that issue (of that statement, of that policy, when it names a Sid, a policy).
    for found in findings.values():
        for entry in ignores.get(found.origin, []):
            if entry["issue"] == found.issue and entry.get("sid") in (None, found.sid) \
                    and entry.get("policy") in (None, found.policy):
                found.justified_by = entry
                entry["used"] = True
                break
    for entries in ignores.values():
        for entry in entries:
            if not entry["used"]:
                scope = "".join(f" {key} {entry[key]}" for key in ("sid", "policy") if key in entry)
                errors.append(f"{entry['label']}: stale: no {entry['issue']} finding{scope} to ignore "
                              f"(remove it, or correct it)")
    return list(findings.values()), len(policies), len(analysed)


def main() -> int:
    # Nothing here may reach AWS: no instance metadata lookup should anything
    # build a boto3 session (nothing does); the SAM transform wants a region.
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    sys.stdout.reconfigure(line_buffering=True)  # in order with stderr, in a CI log
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--documents", action="store_true", help="print each document as parliament reads it")
    parser.add_argument("templates", nargs="*", default=DEFAULT_TEMPLATES)
    args = parser.parse_args()
    paths = args.templates
    errors: list[str] = []
    everything: list[Found] = []
    policies = documents_analysed = 0
    for path in paths:
        found, checked, analysed = check_template(path, errors, args.documents)
        everything += found
        policies += checked
        documents_analysed += analysed

    order = sorted(everything, key=lambda f: (f.template, f.origin, f.resource, f.policy, f.statement,
                                              -SEVERITIES.index(f.severity), f.issue))
    print(f"parliament {parliament.__version__} (community auditors {'on' if INCLUDE_COMMUNITY_AUDITORS else 'off'}): "
          f"{', '.join(paths)}")
    for found in order:
        if found.justified_by:
            comment = " ".join(found.justified_by["comment"].split())
            print(f"  justified: {found.where()}: {found.what()}\n"
                  f"             why: {comment[:200]}{'...' if len(comment) > 200 else ''}")
    unjustified = [f for f in order if not f.justified_by]
    for found in unjustified:
        print(f"UNJUSTIFIED: {found.where()}: {found.what()}",
              file=sys.stderr)
    for error in errors:
        print(f"ERROR: {error}", file=sys.stderr)
    if unjustified:
        print("Fix each unjustified finding, or justify it on its resource (Metadata: parliament: ignore: "
              "[{issue, sid, policy, comment}], see .ci/check_policies.py).", file=sys.stderr)
    print(f"policies checked: {policies} ({documents_analysed} distinct documents across the Fn::If variants); "
          f"findings: {len(everything)}, justified: {len(everything) - len(unjustified)}, "
          f"unjustified: {len(unjustified)}; errors: {len(errors)}; {time.process_time():.1f} s CPU")
    return 1 if unjustified or errors else 0


if __name__ == "__main__":
    sys.exit(main())
