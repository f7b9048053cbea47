"""Who may start a failback, checked on template.yaml without AWS.

Resolves the template (parameters, conditions, intrinsic functions) for a few
deployments and evaluates its policies the way IAM does, for principals that
are and are not in RequestPrincipals:

- the request bus's policy lets a principal put an event the request rule
  matches exactly when the principal is listed (its account id, or its role
  ARN), even a principal of the stack's own account whose IAM policies allow
  PutEvents everywhere;
- the request rule is on that bus and matches exactly the RequestSource and
  the detail-type "Failback Launch Requested", and never a replayed event (an
  archive replayed onto the bus would start old failbacks again);
- nothing else reaches the function or the state machine: no other rule
  targets them, the function's only invoke permission is the rule's, and the
  only roles allowed states:StartExecution are StartFailbackRole (assumable
  by EventBridge for the request rule only, not for any other rule of this
  or another account) and FailbackStarterRole (assumable exactly by the
  listed principals).

Then it breaks the template in ways that must be caught, and fails unless
each one is (a check that passes everything proves nothing).

    python .ci/check_request_policy.py template.yaml

Runs with the lint venv's python: it reads the template with cfn-lint's
decoder, which turns the short intrinsic tags (!Ref, !Sub, ...) into their
long form. It models only the policy features the template uses and refuses
the rest (NotPrincipal, NotAction, an unknown condition operator), so a new
shape fails here until the model covers it.
"""

from __future__ import annotations

import copy
import fnmatch
import re
import sys
from dataclasses import dataclass
from typing import Any, Callable

from cfnlint.decode import decode

ACCOUNT = "123456789012"  # the account the stack is deployed in
REGION = "us-east-1"
PARTITION = "aws"
STACK_NAME = "drs-failback"
STACK_ID = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{STACK_NAME}/0c9d5a40-6f1e-11ef-8e3b-0a1b2c3d4e5f"
STATUS_RULE = "ExecutionEndedRule"
STATUS_DETAIL_TYPE = "Step Functions Execution Status Change"
ENDED_STATUSES = {"ABORTED", "TIMED_OUT", "FAILED"}
REQUEST_DETAIL_TYPE = "Failback Launch Requested"

LISTED_ACCOUNT = "111122223333"
LISTED_ROLE = "arn:aws:iam::444455556666:role/dr-runbook"
OWN_LISTED_ROLE = f"arn:aws:iam::{ACCOUNT}:role/failback-operator"


@dataclass(frozen=True)
class Principal:
    """An IAM principal making a request (for a role session: its role's ARN)."""

    arn: str
    label: str

    @property
    def account(self) -> str:
        return self.arn.split(":")[4]


def role(account: str, name: str, label: str) -> Principal:
    return Principal(f"arn:aws:iam::{account}:role/{name}", label)


# Who answers approvals: a role of the stack's account that is not a requester.
APPROVER = f"arn:aws:iam::{ACCOUNT}:role/dr-approver"

# Deployments to check: RequestPrincipals and the bus, both request targets.
SCENARIOS = [
    {
        "name": "bus created by the stack, principals in other accounts",
        "params": {"RequestEventBusName": "", "RequestPrincipals": f"{LISTED_ACCOUNT},{LISTED_ROLE}", "ApproverPrincipals": APPROVER},
    },
    {
        "name": "named existing bus, principals in other accounts",
        "params": {"RequestEventBusName": "ops-bus", "RequestPrincipals": f"{LISTED_ACCOUNT},{LISTED_ROLE}", "ApproverPrincipals": APPROVER,
                   "AllowedInstanceTagValue": "dr-wave"},
    },
    {
        "name": "bus created by the stack, one role of the stack's own account",
        "params": {"RequestEventBusName": "", "RequestPrincipals": OWN_LISTED_ROLE, "ApproverPrincipals": APPROVER},
    },
    {
        "name": "the account's default bus named, principals in other accounts",
        "params": {"RequestEventBusName": "default", "RequestPrincipals": f"{LISTED_ACCOUNT},{LISTED_ROLE}", "ApproverPrincipals": APPROVER},
    },
    {
        "name": "direct function target, the stack's own account listed",
        "params": {"RequestEventBusName": "", "RequestPrincipals": ACCOUNT, "ApproverPrincipals": APPROVER, "RequestTarget": "Function"},
    },
]

# Who asks. Whether each may is decided by RequestPrincipals alone.
CALLERS = [
    role(LISTED_ACCOUNT, "any-role", "a role of a listed account"),
    Principal(LISTED_ROLE, "a listed role"),
    role("444455556666", "other-role", "another role of the listed role's account"),
    Principal(OWN_LISTED_ROLE, "a role of the stack's account"),
    role(ACCOUNT, "Admin", "an administrator of the stack's account"),
    role("999988887777", "intruder", "a role of an unrelated account"),
]

NO_VALUE = object()
PSEUDO = {
    "AWS::AccountId": ACCOUNT,
    "AWS::Region": REGION,
    "AWS::Partition": PARTITION,
    "AWS::StackName": STACK_NAME,
    "AWS::StackId": STACK_ID,
    "AWS::URLSuffix": "amazonaws.com",
}


class Unsupported(Exception):
    """A template or policy shape this check does not model: a failure."""


def as_list(value: Any) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


class Stack:
    """The template as CloudFormation would see it with these parameters."""

    def __init__(self, template: dict, params: dict[str, str]):
        self.template = template
        self.resources_raw: dict[str, dict] = template.get("Resources", {})
        self.params: dict[str, Any] = {}
        for name, spec in template.get("Parameters", {}).items():
            value = params.get(name, spec.get("Default"))
            if value is None:
                raise Unsupported(f"parameter {name} has no default and the scenario sets none")
            value = str(value)
            if spec.get("Type") == "CommaDelimitedList":
                self.params[name] = value.split(",") if value else []
            else:
                self.params[name] = value
        self._conditions: dict[str, bool] = {}

    # -- conditions and intrinsic functions ---------------------------------
    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            self._conditions[name] = bool(self.resolve(self.template["Conditions"][name]))
        return self._conditions[name]

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in PSEUDO:
            return PSEUDO[name]
        if name in self.params:
            return self.params[name]
        resource = self.resources_raw.get(name)
        if resource is None:
            raise Unsupported(f"Ref to unknown {name}")
        kind = resource["Type"]
        props = resource.get("Properties", {})
        if kind == "AWS::Events::EventBus":
            return self.resolve(props["Name"])
        if kind in ("AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine"):
            physical = self.resolve(props["Name"]) if "Name" in props else name
            return f"arn:{PARTITION}:states:{REGION}:{ACCOUNT}:stateMachine:{physical}"
        if kind == "AWS::SNS::Topic":
            return f"arn:{PARTITION}:sns:{REGION}:{ACCOUNT}:{name}"
        if kind == "AWS::Logs::LogGroup" and "LogGroupName" in props:
            return self.resolve(props["LogGroupName"])
        return name  # a physical name: a function, a role, a queue URL ...

    def get_att(self, name: str, attribute: str) -> str:
        resource = self.resources_raw.get(name)
        # The role SAM makes for a function or a state machine (<LogicalId>Role).
        owner = self.resources_raw.get(name.removesuffix("Role")) if name.endswith("Role") else None
        if resource is None and attribute == "Arn" and owner and owner["Type"].startswith("AWS::Serverless::"):
            return f"arn:{PARTITION}:iam::{ACCOUNT}:role/{name}"
        if resource is None:
            raise Unsupported(f"GetAtt of unknown {name}")
        kind = resource["Type"]
        if attribute == "Arn":
            if kind == "AWS::Events::EventBus":
                return f"arn:{PARTITION}:events:{REGION}:{ACCOUNT}:event-bus/{self.ref(name)}"
            if kind == "AWS::Events::Rule":
                bus = self.resolve(resource["Properties"].get("EventBusName", "default"))
                # Without a Name, CloudFormation makes one up: the logical id stands for it.
                rule_name = self.resolve(resource["Properties"].get("Name", name))
                path = rule_name if bus == "default" else f"{bus}/{rule_name}"
                return f"arn:{PARTITION}:events:{REGION}:{ACCOUNT}:rule/{path}"
            if kind == "AWS::IAM::Role":
                return f"arn:{PARTITION}:iam::{ACCOUNT}:role/{name}"
            if kind == "AWS::Serverless::Function":
                return f"arn:{PARTITION}:lambda:{REGION}:{ACCOUNT}:function:{name}"
            if kind == "AWS::SQS::Queue":
                return f"arn:{PARTITION}:sqs:{REGION}:{ACCOUNT}:{name}"
            if kind == "AWS::Logs::LogGroup":
                return f"arn:{PARTITION}:logs:{REGION}:{ACCOUNT}:log-group:{self.ref(name)}:*"
        if attribute in ("Name", "QueueName"):
            return name
        return f"{name}.{attribute}"

    def sub(self, text: str, variables: dict[str, Any]) -> str:
        def one(match: re.Match) -> str:
            expression = match.group(1)
            if expression.startswith("!"):
                return "${" + expression[1:] + "}"
            if expression in variables:
                value = variables[expression]
            elif "." in expression and expression.split(".", 1)[0] in self.resources_raw:
                value = self.get_att(*expression.split(".", 1))
            else:
                value = self.ref(expression)
            if not isinstance(value, str):
                raise Unsupported(f"Fn::Sub of a non-string ${{{expression}}}")
            return value

        return re.sub(r"\$\{([^}]*)\}", one, text)

    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            return [v for v in (self.resolve(item) for item in node) if v is not NO_VALUE]
        if not isinstance(node, dict):
            return str(node) if isinstance(node, str) else node
        if len(node) == 1:
            (key, arg), = node.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                name, attribute = arg.split(".", 1) if isinstance(arg, str) else arg
                return self.get_att(name, attribute)
            if key == "Fn::If":
                name, then, otherwise = arg
                return self.resolve(then if self.condition(name) else otherwise)
            if key == "Fn::Sub":
                if isinstance(arg, str):
                    return self.sub(arg, {})
                text, variables = arg
                return self.sub(text, {k: self.resolve(v) for k, v in variables.items()})
            if key == "Fn::Select":
                index, items = self.resolve(arg[0]), self.resolve(arg[1])
                return items[int(index)]
            if key == "Fn::Split":
                return self.resolve(arg[1]).split(arg[0])
            if key == "Fn::Join":
                return arg[0].join(self.resolve(arg[1]))
            if key == "Fn::Equals":
                left, right = (self.resolve(v) for v in arg)
                return str(left) == str(right)
            if key == "Fn::Not":
                return not self.resolve(arg[0])
            if key == "Fn::And":
                return all(self.resolve(v) for v in arg)
            if key == "Fn::Or":
                return any(self.resolve(v) for v in arg)
            if key == "Condition":
                return self.condition(arg)
            if key.startswith("Fn::"):
                raise Unsupported(f"intrinsic {key} is not modelled")
        out = {}
        for key, value in node.items():
            value = self.resolve(value)
            if value is not NO_VALUE:
                out[key] = value
        return out

    # -- the deployed resources ----------------------------------------------
    def resources(self) -> dict[str, tuple[str, dict]]:
        """Every resource this deployment creates: name -> (type, properties)."""
        out = {}
        for name, resource in self.resources_raw.items():
            if "Condition" in resource and not self.condition(resource["Condition"]):
                continue
            out[name] = (resource["Type"], self.resolve(resource.get("Properties", {})))
        return out


# -- IAM policy evaluation --------------------------------------------------
def principal_matches(element: Any, caller: Principal) -> bool:
    if element == "*":
        return True
    if not isinstance(element, dict):
        raise Unsupported(f"Principal {element!r}")
    if set(element) - {"AWS", "Service", "Federated"}:
        raise Unsupported(f"Principal {element!r}")
    for entry in as_list(element.get("AWS")):
        if entry == "*" or entry == caller.arn:
            return True
        if re.fullmatch(r"\d{12}", entry) and entry == caller.account:
            return True
        root = re.fullmatch(r"arn:[\w-]+:iam::(\d{12}):root", entry)
        if root and root.group(1) == caller.account:
            return True
    return False  # a service principal is never an IAM caller


def wildcard(pattern: str, value: str, case_sensitive: bool = True) -> bool:
    if not case_sensitive:
        pattern, value = pattern.lower(), value.lower()
    return fnmatch.fnmatchcase(value, pattern)


def like(value: str, pattern: str) -> bool:
    return wildcard(pattern, value)


# Each: (does the request's value match the policy's, negated). ArnEquals takes wildcards as ArnLike does.
OPERATORS = {
    "StringEquals": (lambda v, p: v == p, False),
    "StringNotEquals": (lambda v, p: v == p, True),
    "StringLike": (like, False),
    "StringNotLike": (like, True),
    "ArnEquals": (like, False),
    "ArnLike": (like, False),
    "ArnNotEquals": (like, True),
    "ArnNotLike": (like, True),
}


def condition_holds(condition: dict, context: dict[str, list[str]]) -> bool:
    for operator, block in condition.items():
        qualifier, _, base = operator.rpartition(":")
        if base not in OPERATORS or qualifier not in ("", "ForAnyValue", "ForAllValues"):
            raise Unsupported(f"condition operator {operator}")
        match, negated = OPERATORS[base]
        for key, expected in block.items():
            expected = [str(v) for v in as_list(expected)]
            values = context.get(key.lower(), [])
            hits = [any(match(v, p) for p in expected) for v in values]
            if qualifier == "ForAllValues":
                holds = all((not h) if negated else h for h in hits)
            elif qualifier == "ForAnyValue":
                holds = any((not h) if negated else h for h in hits)
            elif not values:  # a key absent from the request
                holds = negated
            else:
                holds = (not hits[0]) if negated else hits[0]
            if not holds:
                return False
    return True


def statement_applies(statement: dict, caller: Principal, action: str, resource: str | None,
                      context: dict[str, list[str]]) -> bool:
    for unsupported in ("NotPrincipal", "NotAction", "NotResource"):
        if unsupported in statement:
            raise Unsupported(f"{unsupported} in {statement}")
    if "Principal" in statement and not principal_matches(statement["Principal"], caller):
        return False
    if not any(wildcard(a, action, case_sensitive=False) for a in as_list(statement.get("Action"))):
        return False
    if resource is not None and "Resource" in statement:
        if not any(wildcard(r, resource) for r in as_list(statement["Resource"])):
            return False
    return condition_holds(statement.get("Condition", {}), context)


def allowed(statements: list[dict], caller: Principal, action: str, resource: str | None,
            context: dict[str, list[str]], identity_suffices: bool) -> bool:
    """A resource policy's verdict for a caller whose own IAM policies allow the action.

    identity_suffices: whether the caller's own policies are enough without an Allow
    here (a resource in the caller's account, other than a role's trust policy)."""
    applying = [s for s in statements if statement_applies(s, caller, action, resource, context)]
    if any(s.get("Effect") == "Deny" for s in applying):
        return False
    if any(s.get("Effect") == "Allow" for s in applying):
        return True
    return identity_suffices and caller.account == ACCOUNT


def service_allowed(statements: list[dict], service: str, action: str, context: dict[str, list[str]]) -> bool:
    """A trust policy's verdict for a service principal acting with these context keys."""
    applying = []
    for statement in statements:
        principal = statement.get("Principal")
        if principal != "*" and not (isinstance(principal, dict) and service in as_list(principal.get("Service"))):
            continue
        if statement_applies({k: v for k, v in statement.items() if k != "Principal"}, Principal("", ""), action,
                             None, context):
            applying.append(statement)
    if any(s.get("Effect") == "Deny" for s in applying):
        return False
    return any(s.get("Effect") == "Allow" for s in applying)


def is_listed(caller: Principal, listed: list[str]) -> bool:
    return caller.arn in listed or caller.account in listed


# -- the checks ----------------------------------------------------------------
def bus_statements(stack: Stack, resources: dict, bus_name: str, bus_arn: str) -> list[dict]:
    statements = []
    for name, (kind, props) in resources.items():
        if kind == "AWS::Events::EventBus" and props.get("Name") == bus_name and "Policy" in props:
            statements += as_list(props["Policy"].get("Statement"))
        if kind != "AWS::Events::EventBusPolicy" or props.get("EventBusName", "default") != bus_name:
            continue
        if "Statement" in props:
            statements.append(props["Statement"])
        else:  # the older form: one account, or "*" with a condition
            condition = props.get("Condition")
            statements.append({
                "Effect": "Allow",
                "Principal": "*" if props.get("Principal") == "*" else {"AWS": props.get("Principal")},
                "Action": props.get("Action"),
                "Resource": bus_arn,
                **({"Condition": {condition["Type"]: {condition["Key"]: condition["Value"]}}} if condition else {}),
            })
    return statements


def check(stack: Stack) -> list[str]:
    problems: list[str] = []
    resources = stack.resources()
    listed = stack.params["RequestPrincipals"]
    source = stack.params["RequestSource"]

    function_arn = stack.get_att("FailbackFunction", "Arn")
    machine_arn = stack.ref("FailbackStateMachine")
    step_arn = stack.ref("StepStateMachine")

    # The request rule: on which bus, matching what.
    if "LaunchRequestedRule" not in resources:
        return ["the request rule LaunchRequestedRule is gone"]
    _, rule = resources["LaunchRequestedRule"]
    bus_name = rule.get("EventBusName", "default")
    bus_arn = f"arn:{PARTITION}:events:{REGION}:{ACCOUNT}:event-bus/{bus_name}"
    expected_bus = stack.params["RequestEventBusName"] or resources.get("RequestEventBus", (None, {}))[1].get("Name")
    if bus_name != expected_bus:
        problems.append(f"the request rule is on bus {bus_name!r}, not the request bus {expected_bus!r}")
    pattern = rule.get("EventPattern", {})
    # Replayed events (an archive replayed onto the bus: no PutEvents by anyone) are never taken.
    if pattern != {"source": [source], "detail-type": [REQUEST_DETAIL_TYPE], "replay-name": [{"exists": False}]}:
        problems.append(f"the request rule must match exactly source [{source!r}] and detail-type "
                        f"[{REQUEST_DETAIL_TYPE!r}] of events that are not replays, and nothing looser; it matches {pattern}")
    sources = [s for s in as_list(pattern.get("source")) if isinstance(s, str)] or ["any.source"]
    detail_types = [d for d in as_list(pattern.get("detail-type")) if isinstance(d, str)] or ["Any"]

    # Who may put an event the rule matches on that bus.
    statements = bus_statements(stack, resources, bus_name, bus_arn)
    for caller in CALLERS:
        for event_source in sources:
            for detail_type in detail_types:
                context = {
                    "aws:principalaccount": [caller.account],
                    "aws:principalarn": [caller.arn],
                    "events:source": [event_source],
                    "events:detail-type": [detail_type],
                }
                may = allowed(statements, caller, "events:PutEvents", bus_arn, context, identity_suffices=True)
                if may != is_listed(caller, listed):
                    problems.append(
                        f"{caller.label} ({caller.arn}) {'may' if may else 'may not'} put a request event "
                        f"(source {event_source}) on {bus_name}, with RequestPrincipals {listed}")

    # Nothing else reaches the function or the state machine -- but Step Functions itself: the
    # status rule sends the function this state machine's own status events (an execution that
    # ended without its summary), which only Step Functions can put (EventBridge refuses a
    # PutEvents whose source starts with "aws."), on the default bus.
    status_rule_ok = False
    for name, (kind, props) in resources.items():
        if kind == "AWS::Events::Rule" and name == STATUS_RULE:
            pattern = props.get("EventPattern", {})
            detail = pattern.get("detail", {}) if isinstance(pattern, dict) else {}
            statuses = set(as_list(detail.get("status")))
            status_rule_ok = (
                pattern.get("source") == ["aws.states"]
                and pattern.get("detail-type") == [STATUS_DETAIL_TYPE]
                and set(detail) == {"status", "stateMachineArn"}
                and statuses and statuses <= ENDED_STATUSES
                and detail.get("stateMachineArn") == [machine_arn]
                and props.get("EventBusName") in (None, "default")
                and [t.get("Arn") for t in as_list(props.get("Targets"))] == [function_arn])
            if not status_rule_ok:
                problems.append(f"rule {name} targets the function but does not match only this state "
                                f"machine's own ended-execution events on the default bus: {pattern}")
            continue
        if kind == "AWS::Events::Rule" and name != "LaunchRequestedRule":
            for target in as_list(props.get("Targets")):
                if target.get("Arn") in (function_arn, machine_arn, step_arn, "FailbackFunction"):
                    problems.append(f"rule {name} also targets {target['Arn']}")
    for name, (kind, props) in resources.items():
        if kind == "AWS::Lambda::Permission" and props.get("FunctionName") in ("FailbackFunction", function_arn):
            rules = [stack.get_att("LaunchRequestedRule", "Arn")]
            if status_rule_ok:
                rules.append(stack.get_att(STATUS_RULE, "Arn"))
            if props.get("Principal") != "events.amazonaws.com" or props.get("SourceArn") not in rules:
                problems.append(f"{name} lets {props.get('Principal')} invoke the function, "
                                f"not only the request rule (and the status rule)")
        if kind == "AWS::Serverless::Function" and props.get("Events"):
            problems.append(f"{name} has SAM Events: each is another way in")
    targets = [t.get("Arn") for t in as_list(rule.get("Targets"))]
    if stack.params["RequestTarget"] == "Function":
        if targets != [function_arn]:
            problems.append(f"with RequestTarget Function the rule targets {targets}")
    elif targets != [machine_arn]:
        problems.append(f"with RequestTarget StateMachine the rule targets {targets}")

    # Who may start each state machine: the roles granted StartExecution on it.
    starters = {machine_arn: {}, step_arn: {}}
    for name, (kind, props) in resources.items():
        grants = []
        if kind == "AWS::IAM::Role":
            for policy in as_list(props.get("Policies")):
                grants += as_list(policy.get("PolicyDocument", {}).get("Statement"))
            if props.get("ManagedPolicyArns"):
                problems.append(f"{name} has managed policies this check cannot read")
        elif kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            problems.append(f"{name}: a separate IAM policy, which this check does not follow")
        elif kind.startswith("AWS::Serverless::"):
            for policy in as_list(props.get("Policies")):
                if isinstance(policy, dict) and "Statement" in policy:
                    grants += as_list(policy["Statement"])
                elif isinstance(policy, dict) and set(policy) <= {"LambdaInvokePolicy", "SQSSendMessagePolicy"}:
                    continue
                else:
                    problems.append(f"{name}: policy {policy} is not one this check can read")
        for statement in grants:
            for arn in starters:
                if statement.get("Effect") == "Allow" and statement_applies(
                        {k: v for k, v in statement.items() if k != "Condition"}, Principal("", ""),
                        "states:StartExecution", arn, {}):
                    starters[arn][name] = props
    # The plan starts itself too: each step's places are its Distributed Map's child executions,
    # which are executions of the plan's state machine.
    expected_starters = {"FailbackStarterRole", "FailbackStateMachine"}
    if stack.params["RequestTarget"] == "StateMachine":
        expected_starters.add("StartFailbackRole")
    if set(starters[machine_arn]) != expected_starters:
        problems.append(f"states:StartExecution on the state machine is granted to {sorted(starters[machine_arn])}, "
                        f"not exactly {sorted(expected_starters)}")
    # A step execution is started by the plan only (its role is assumed by Step Functions only,
    # for that state machine) ...
    if set(starters[step_arn]) != {"FailbackStateMachine"}:
        problems.append(f"states:StartExecution on the step state machine is granted to {sorted(starters[step_arn])}, "
                        f"not only to the plan (FailbackStateMachine)")
    # ... and the plan starts nothing else (its own Map Runs apart): a grant on any other (or
    # every) state machine would let it start those.
    for machine in ("FailbackStateMachine", "StepStateMachine"):
        for policy in as_list(resources.get(machine, (None, {}))[1].get("Policies")):
            for statement in as_list(policy.get("Statement") if isinstance(policy, dict) else None):
                actions = as_list(statement.get("Action"))
                allowed_resources = [[step_arn], [machine_arn]] if machine == "FailbackStateMachine" else []
                resource = [stack.resolve(r) for r in as_list(statement.get("Resource"))]
                if statement.get("Effect") == "Allow" and any(a in ("states:StartExecution", "states:*", "*") for a in actions) \
                        and resource not in allowed_resources:
                    problems.append(f"{machine} may start {statement.get('Resource')}, not only the step state machine and its own Map Runs")
    starters = {**starters[machine_arn], **starters[step_arn]}

    # The result bus (the approval requests and their tokens): nobody but the function and the
    # plan's execution may put the approval requests there.
    publishers = sorted([stack.get_att("FailbackFunctionRole", "Arn"), stack.get_att("FailbackStateMachineRole", "Arn")])
    deny = resources.get("ResultBusDenyOthers", (None, {}))[1].get("Statement", {})
    condition = deny.get("Condition", {}) if isinstance(deny, dict) else {}
    named = sorted(as_list(condition.get("StringNotEquals", {}).get("aws:PrincipalArn")))
    if not (isinstance(deny, dict) and deny.get("Effect") == "Deny" and deny.get("Principal") == "*"
            and deny.get("Action") == "events:PutEvents" and named == publishers):
        problems.append(f"the result bus does not deny every principal but the function and the plan "
                        f"({publishers}) putting approval requests: {deny}")

    # AllowedInstanceTagValue: every DRS write of the function confined to the recovery instances
    # tagged with it.
    tag_value = stack.params.get("AllowedInstanceTagValue", "")
    if tag_value:
        function = resources.get("FailbackFunction", (None, {}))[1]
        writes = ("drs:StartFailbackLaunch", "drs:DisconnectRecoveryInstance", "drs:TerminateRecoveryInstances")
        for policy in as_list(function.get("Policies")):
            for statement in as_list(policy.get("Statement") if isinstance(policy, dict) else None):
                if not isinstance(statement, dict) or not any(a in writes for a in as_list(statement.get("Action"))):
                    continue
                condition = statement.get("Condition", {}).get("StringEquals", {})
                if condition.get("aws:ResourceTag/drs-failback-allowed") != tag_value:
                    problems.append(f"{statement.get('Sid')} is not confined to recovery instances tagged "
                                    f"drs-failback-allowed={tag_value}")

    # Approvals: answered by the approver role alone, which only the ApproverPrincipals may
    # assume — never the requesters' starter role, nor any other role of the stack.
    answerers = set()
    for name, (kind, props) in resources.items():
        if kind != "AWS::IAM::Role":
            continue
        for policy in as_list(props.get("Policies")):
            for statement in as_list(policy.get("PolicyDocument", {}).get("Statement")):
                actions = as_list(statement.get("Action"))
                if statement.get("Effect") == "Allow" and any(
                        a in ("states:SendTaskSuccess", "states:SendTaskFailure", "states:*", "*") for a in actions):
                    answerers.add(name)
    if answerers != {"FailbackApproverRole"}:
        problems.append(f"approvals may be answered by {sorted(answerers)}, not only FailbackApproverRole")
    approver = resources.get("FailbackApproverRole", (None, {}))[1]
    trusted = [p for s in as_list(approver.get("AssumeRolePolicyDocument", {}).get("Statement"))
               for p in as_list(s.get("Principal", {}).get("AWS"))]
    approvers = stack.params["ApproverPrincipals"]
    if sorted(trusted) != sorted(approvers.split(",") if isinstance(approvers, str) else approvers):
        problems.append(f"the approver role trusts {trusted}, not exactly the ApproverPrincipals")

    # EventBridge acting for a rule: the request rule, and rules it must not act for (another rule
    # on the request bus, a rule of that name on another bus, the same rule path in another
    # account, a call that names no rule).
    rule_arn = stack.get_att("LaunchRequestedRule", "Arn")
    rule_path = rule_arn.split(":rule/", 1)[1]
    other_bus = "default" if bus_name != "default" else "other-bus"
    rule_name = rule_path.rsplit("/", 1)[-1]
    eventbridge_for = [
        ("the request rule", ACCOUNT, rule_arn, True),
        ("another rule on the request bus", ACCOUNT, rule_arn.rsplit("/", 1)[0] + "/any-rule", False),
        (f"a rule of the same name on bus {other_bus}", ACCOUNT,
         f"arn:{PARTITION}:events:{REGION}:{ACCOUNT}:rule/" + (rule_name if other_bus == "default" else f"{other_bus}/{rule_name}"),
         False),
        ("the same rule path in another account", "999988887777", rule_arn.replace(f":{ACCOUNT}:", ":999988887777:"), False),
        ("no rule named", ACCOUNT, None, False),
    ]
    for name, props in starters.items():
        trust = as_list(props.get("AssumeRolePolicyDocument", {}).get("Statement"))
        for statement in trust:
            if statement.get("Effect") == "Allow" and "Principal" in statement and \
                    isinstance(statement["Principal"], dict) and "Service" in statement["Principal"]:
                services = as_list(statement["Principal"]["Service"])
                if name != "StartFailbackRole" or services != ["events.amazonaws.com"] or \
                        set(statement["Principal"]) != {"Service"}:
                    problems.append(f"{name} trusts services {services} beyond EventBridge")
        for label, account, source_arn, request_rule in eventbridge_for:
            context = {"aws:sourceaccount": [account], **({"aws:sourcearn": [source_arn]} if source_arn else {})}
            may = service_allowed(trust, "events.amazonaws.com", "sts:AssumeRole", context)
            should = name == "StartFailbackRole" and request_rule
            if may != should:
                problems.append(f"EventBridge acting for {label} ({source_arn}) {'may' if may else 'may not'} "
                                f"assume {name}")
        for caller in CALLERS:
            context = {"aws:principalaccount": [caller.account], "aws:principalarn": [caller.arn]}
            may = allowed(trust, caller, "sts:AssumeRole", None, context, identity_suffices=False)
            should = name == "FailbackStarterRole" and is_listed(caller, listed)
            if may != should:
                problems.append(f"{caller.label} ({caller.arn}) {'may' if may else 'may not'} assume {name}, "
                                f"with RequestPrincipals {listed}")
    return problems


def check_all(template: dict) -> list[str]:
    problems = []
    for scenario in SCENARIOS:
        try:
            found = check(Stack(template, scenario["params"]))
        except (Unsupported, KeyError, TypeError, ValueError, IndexError) as error:
            found = [f"cannot evaluate: {type(error).__name__}: {error}"]
        problems += [f"[{scenario['name']}] {p}" for p in found]
    return problems


# -- the self-check: wrong shapes that must be caught ------------------------------
def props(template: dict, name: str) -> dict:
    return template["Resources"][name]["Properties"]


def mutation(description: str) -> Callable:
    def register(change: Callable[[dict], None]) -> Callable[[dict], None]:
        MUTATIONS.append((description, change))
        return change

    return register


MUTATIONS: list[tuple[str, Callable[[dict], None]]] = []


@mutation("no Deny statement: the account's own principals could put requests")
def _(t):
    del t["Resources"]["RequestBusDenyOthers"]


@mutation("the Allow names only the first listed principal")
def _(t):
    props(t, "RequestBusAllowPrincipals")["Statement"]["Principal"]["AWS"] = {
        "Fn::Select": [0, {"Ref": "RequestPrincipals"}]}


@mutation("the Deny's condition is inverted (StringEquals)")
def _(t):
    condition = props(t, "RequestBusDenyOthers")["Statement"]["Condition"]["Fn::If"]
    for branch in condition[1:]:
        branch["StringEquals"] = branch.pop("StringNotEquals")


@mutation("the Deny spares every principal of a listed account but no listed role")
def _(t):
    condition = props(t, "RequestBusDenyOthers")["Statement"]["Condition"]["Fn::If"]
    for branch in condition[1:]:
        del branch["StringNotEquals"]["aws:PrincipalArn"]


@mutation("the Deny covers another detail-type on a named bus")
def _(t):
    condition = props(t, "RequestBusDenyOthers")["Statement"]["Condition"]["Fn::If"]
    condition[2]["ForAnyValue:StringEquals"]["events:detail-type"] = ["Failback Launch Ordered"]


@mutation("the Deny covers only one detail-type on the stack's own bus")
def _(t):
    condition = props(t, "RequestBusDenyOthers")["Statement"]["Condition"]["Fn::If"]
    condition[1]["ForAnyValue:StringEquals"] = {"events:detail-type": ["Failback Launch Ordered"]}


@mutation("the Deny is replaced by an older-style statement for every account of an organization")
def _(t):
    del t["Resources"]["RequestBusDenyOthers"]
    t["Resources"]["OrgAccounts"] = {"Type": "AWS::Events::EventBusPolicy", "Properties": {
        "EventBusName": copy.deepcopy(props(t, "RequestBusAllowPrincipals")["EventBusName"]),
        "StatementId": "org", "Action": "events:PutEvents", "Principal": "*",
        "Condition": {"Type": "StringEquals", "Key": "aws:PrincipalOrgID", "Value": "o-example"}}}


@mutation("the rule does not match the source")
def _(t):
    del props(t, "LaunchRequestedRule")["EventPattern"]["source"]


@mutation("the rule matches any source with a prefix")
def _(t):
    props(t, "LaunchRequestedRule")["EventPattern"]["source"] = [{"prefix": ""}]


@mutation("the rule is on the default bus")
def _(t):
    props(t, "LaunchRequestedRule")["EventBusName"] = "default"


@mutation("another rule targets the state machine")
def _(t):
    t["Resources"]["BackDoorRule"] = {"Type": "AWS::Events::Rule", "Properties": {
        "EventPattern": {"source": ["anyone"]},
        "Targets": [{"Id": "sm", "Arn": {"Ref": "FailbackStateMachine"}}]}}


@mutation("the status rule matches a source anyone may put")
def _(t):
    props(t, "ExecutionEndedRule")["EventPattern"]["source"] = ["drs-failback.runbook"]


@mutation("the status rule matches every state machine's executions")
def _(t):
    del props(t, "ExecutionEndedRule")["EventPattern"]["detail"]["stateMachineArn"]


@mutation("the status rule's permission lets any rule of the account invoke the function")
def _(t):
    del props(t, "ExecutionEndedPermission")["SourceArn"]


@mutation("the plan may start any state machine of the account")
def _(t):
    statement = next(p for p in props(t, "FailbackStateMachine")["Policies"]
                     if isinstance(p, dict) and p.get("Statement", [{}])[0].get("Sid") == "RunSteps")
    statement["Statement"][0]["Resource"] = {"Fn::Sub": "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:stateMachine:*"}


@mutation("the plan may start another state machine")
def _(t):
    statement = next(p for p in props(t, "FailbackStateMachine")["Policies"]
                     if isinstance(p, dict) and p.get("Statement", [{}])[0].get("Sid") == "RunSteps")
    statement["Statement"][0]["Resource"] = [{"Ref": "StepStateMachine"}, "arn:aws:states:us-east-1:111122223333:stateMachine:other"]


@mutation("the starter role may start step executions")
def _(t):
    statement = props(t, "FailbackStarterRole")["Policies"][0]["PolicyDocument"]["Statement"][0]
    statement["Resource"] = [{"Ref": "FailbackStateMachine"}, {"Ref": "StepStateMachine"}]


@mutation("the function may be invoked by another account")
def _(t):
    t["Resources"]["CrossAccountInvoke"] = {"Type": "AWS::Lambda::Permission", "Properties": {
        "Action": "lambda:InvokeFunction", "FunctionName": {"Ref": "FailbackFunction"},
        "Principal": "999988887777"}}


@mutation("the starter role trusts one more account")
def _(t):
    statement = props(t, "FailbackStarterRole")["AssumeRolePolicyDocument"]["Statement"][0]
    statement["Principal"]["AWS"] = {"Fn::Split": [",", {"Fn::Join": [",", [
        {"Fn::Join": [",", {"Ref": "RequestPrincipals"}]}, "arn:aws:iam::999988887777:root"]]}]}


@mutation("the starter role trusts a service")
def _(t):
    statement = props(t, "FailbackStarterRole")["AssumeRolePolicyDocument"]["Statement"][0]
    statement["Principal"]["Service"] = "lambda.amazonaws.com"


@mutation("the function's role may start executions too")
def _(t):
    props(t, "FailbackFunction")["Policies"].append({"Statement": [
        {"Effect": "Allow", "Action": "states:*", "Resource": "*"}]})


@mutation("EventBridge of any account may assume StartFailbackRole")
def _(t):
    del props(t, "StartFailbackRole")["AssumeRolePolicyDocument"]["Statement"][0]["Condition"]


@mutation("StartFailbackRole's trust has no aws:SourceArn condition: any rule of the account may use it")
def _(t):
    del props(t, "StartFailbackRole")["AssumeRolePolicyDocument"]["Statement"][0]["Condition"]["ArnEquals"]


@mutation("StartFailbackRole's trust admits every rule of the account (aws:SourceArn rule/*)")
def _(t):
    condition = props(t, "StartFailbackRole")["AssumeRolePolicyDocument"]["Statement"][0]["Condition"]
    del condition["ArnEquals"]
    condition["ArnLike"] = {"aws:SourceArn": {"Fn::Sub": "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:rule/*"}}


@mutation("launches are not confined to the tagged instances when AllowedInstanceTagValue is set")
def _(t):
    for policy in props(t, "FailbackFunction")["Policies"]:
        for statement in policy.get("Statement", []):
            if isinstance(statement, dict) and statement.get("Sid") == "LaunchFailback":
                statement.pop("Condition")


@mutation("the result bus lets the starter role put approval requests too")
def _(t):
    statement = props(t, "ResultBusDenyOthers")["Statement"]
    for branch in statement["Condition"]["Fn::If"][1:]:
        branch["StringNotEquals"]["aws:PrincipalArn"].append({"Fn::GetAtt": ["FailbackStarterRole", "Arn"]})


@mutation("the starter role may answer approvals")
def _(t):
    props(t, "FailbackStarterRole")["Policies"][0]["PolicyDocument"]["Statement"].append(
        {"Sid": "AnswerApprovals", "Effect": "Allow", "Action": ["states:SendTaskSuccess"], "Resource": "*"})


@mutation("the approver role trusts the requesters too")
def _(t):
    props(t, "FailbackApproverRole")["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["AWS"] = {
        "Fn::Split": [",", {"Fn::Join": [",", [{"Fn::Join": [",", {"Ref": "ApproverPrincipals"}]}, {"Fn::Join": [",", {"Ref": "RequestPrincipals"}]}]]}]}


@mutation("the request rule takes replayed events")
def _(t):
    del props(t, "LaunchRequestedRule")["EventPattern"]["replay-name"]


@mutation("the request rule is renamed, and StartFailbackRole's trust still names the old name")
def _(t):
    props(t, "LaunchRequestedRule")["Name"] = {"Fn::Sub": "${AWS::StackName}-failback-requested"}


def self_check(template: dict) -> list[str]:
    missed = []
    for description, change in MUTATIONS:
        broken = copy.deepcopy(template)
        change(broken)
        found = check_all(broken)
        if not found:
            missed.append(description)
        else:
            print(f"  caught: {description} ({found[0][:150]}{'...' if len(found[0]) > 150 else ''})")
    return missed


def main() -> int:
    path = sys.argv[1] if len(sys.argv) > 1 else "template.yaml"
    template, matches = decode(path)
    if template is None:
        for match in matches:
            print(match, file=sys.stderr)
        return 1
    problems = check_all(template)
    for problem in problems:
        print(f"request policy: {problem}", file=sys.stderr)
    print(f"{path}: {len(SCENARIOS)} deployments x {len(CALLERS)} callers checked; "
          f"self-check, wrong shapes that must be caught:")
    missed = self_check(template)
    for description in missed:
        print(f"request policy: self-check: NOT caught: {description}", file=sys.stderr)
    checks = 1 + len(MUTATIONS)
    failed = (1 if problems else 0) + len(missed)
    print(f"{checks - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
