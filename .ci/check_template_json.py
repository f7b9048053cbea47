"""The JSON documents template.yaml builds with Fn::Sub parse, once resolved.

cfn-lint cannot look inside a string built by Fn::Sub, and CloudFormation
refuses the stack only at deploy time when one is malformed: the dashboard
body and the log group's resource policy. Resolved with the same model of
the template as check_request_policy.py.

    python .ci/check_template_json.py template.yaml
"""

from __future__ import annotations

import json
import sys

from cfnlint.decode import decode

from check_request_policy import Stack

# (resource, property) holding a JSON document as a string.
DOCUMENTS = [
    ("FailbackDashboard", "DashboardBody"),
    ("RunsIncompleteLogPolicy", "PolicyDocument"),
]


def main() -> int:
    path = sys.argv[1] if len(sys.argv) > 1 else "template.yaml"
    template, matches = decode(path)
    if template is None:
        for match in matches:
            print(match, file=sys.stderr)
        return 1
    resources = Stack(template, {"RequestPrincipals": "111122223333", "ApproverPrincipals": "444455556666"}).resources()
    failed = 0
    for name, prop in DOCUMENTS:
        try:
            document = json.loads(resources[name][1][prop])
        except (KeyError, json.JSONDecodeError) as error:
            print(f"{name}.{prop}: not a JSON document: {error}", file=sys.stderr)
            failed += 1
            continue
        if name == "FailbackDashboard":
            # Widgets on the 24-column grid, none over another.
            taken = set()
            for widget in document["widgets"]:
                cells = {(x, y) for x in range(widget["x"], widget["x"] + widget["width"])
                         for y in range(widget["y"], widget["y"] + widget["height"])}
                if widget["x"] + widget["width"] > 24 or cells & taken:
                    print(f"{name}: widget {widget.get('properties', {}).get('title')!r} "
                          f"is off the grid or over another", file=sys.stderr)
                    failed += 1
                taken |= cells
        print(f"{name}.{prop}: JSON OK")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
