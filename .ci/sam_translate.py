"""template.yaml as CloudFormation gets it: the SAM transform, run offline.

Local paths are replaced as `sam package` would (a placeholder S3 URI for the
function's code, the state machines' definitions inlined); nothing calls AWS.
Used by .ci/lint-infra (cfn-lint on the result) and imported by
.ci/check_policies.py (the IAM policies SAM makes).

    python .ci/sam_translate.py <repo root> <output.json>

Runs with the lint venv's python (samtranslator). The transform looks up no
managed policy (see NoManagedPolicyLookup); it still wants a region.
"""

from __future__ import annotations

import json
import os
import pathlib
import sys

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse


class NoManagedPolicyLookup:
    """The template names no managed policy that would need IAM to resolve."""

    def load(self):
        return {}


def translate(root: pathlib.Path, name: str = "template.yaml") -> dict:
    """The SAM template root/name, transformed into plain CloudFormation."""
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    template = yaml_parse((root / name).read_text())
    for logical_id, resource in template.get("Resources", {}).items():
        props = resource.get("Properties", {})
        if resource.get("Type") == "AWS::Serverless::Function" and isinstance(props.get("CodeUri"), str):
            props["CodeUri"] = f"s3://lint-placeholder/{logical_id}.zip"
        if resource.get("Type") == "AWS::Serverless::StateMachine" and isinstance(props.get("DefinitionUri"), str):
            props["Definition"] = json.loads((root / props.pop("DefinitionUri")).read_text())
    return transform(template, {}, NoManagedPolicyLookup())


if __name__ == "__main__":
    out = pathlib.Path(sys.argv[2])
    out.write_text(json.dumps(translate(pathlib.Path(sys.argv[1])), indent=1))
