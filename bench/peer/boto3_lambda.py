"""The boto3 peer of the benchmark's start-to-exit comparison (bench/src/boto3.rs).

A minimal Python Lambda doing what drs-failback does before and at launch, written the way a
typical boto3 Lambda is: boto3 imported and its clients built at module level (the init phase,
once per cold start), a handler reading the recovery instances and starting the failback launch
in chunks of 100, and -- since the comparison runs it as a process of its own, as the Rust binary
runs -- the bootstrap loop of a custom runtime in the same file.

The bench starts it with the Rust binary's Lambda environment but AWS_LAMBDA_RUNTIME_API pointing
at a loopback port with nothing listening: the first poll for an invocation fails and it exits
non-zero, as the Runtime Interface Client does. What is timed is what a cold start loads (the
interpreter, boto3, botocore's models for DRS and EventBridge) up to that first poll; the handler
never runs, but its code and imports are the ones a real peer would load.
"""

import json
import os
import sys
import urllib.error
import urllib.request

import boto3

# The init phase: clients built once per cold start and shared by every invocation, as AWS's
# guidance for Lambda recommends.
drs = boto3.client("drs")
events = boto3.client("events")

# Ids per DescribeRecoveryInstances filter, and servers per StartFailbackLaunch: as drs-failback.
READ_CHUNK = 200
LAUNCH_CHUNK = 100


def handler(event, context):
    """Pre-flight (every id known to DRS and ready for launch), then launch in chunks of 100."""
    ids = list(dict.fromkeys(event["recoveryInstanceIDs"]))
    ready, refused = [], []
    for start in range(0, len(ids), READ_CHUNK):
        chunk = ids[start : start + READ_CHUNK]
        paginator = drs.get_paginator("describe_recovery_instances")
        for page in paginator.paginate(filters={"recoveryInstanceIDs": chunk}):
            for instance in page["items"]:
                state = instance.get("failback", {}).get("state")
                if state == "FAILBACK_READY_FOR_LAUNCH":
                    ready.append(instance["recoveryInstanceID"])
                else:
                    refused.append(instance["recoveryInstanceID"])
    jobs = []
    for start in range(0, len(ready), LAUNCH_CHUNK):
        chunk = ready[start : start + LAUNCH_CHUNK]
        job = drs.start_failback_launch(recoveryInstanceIDs=chunk)["job"]
        jobs.append(job["jobID"])
    summary = {"runId": event.get("runId"), "launched": len(ready), "refused": refused, "jobs": jobs}
    events.put_events(
        Entries=[
            {
                "Source": "drs-failback",
                "DetailType": "Failback Launched",
                "Detail": json.dumps(summary),
            }
        ]
    )
    return summary


def main():
    """The custom runtime's loop: next invocation, handler, response; exit when the API is gone."""
    api = "http://{}/2018-06-01/runtime".format(os.environ["AWS_LAMBDA_RUNTIME_API"])
    while True:
        try:
            with urllib.request.urlopen(api + "/invocation/next") as next_invocation:
                request_id = next_invocation.headers["Lambda-Runtime-Aws-Request-Id"]
                event = json.loads(next_invocation.read())
        except (urllib.error.URLError, OSError) as error:
            # The Runtime API is gone: nothing more can be served. The Runtime Interface Client
            # exits non-zero here too, and Lambda then restarts the environment.
            print("runtime API unreachable at {}: {}".format(api, error), file=sys.stderr)
            sys.exit(1)
        try:
            body, outcome = json.dumps(handler(event, None)), "response"
        except Exception as error:  # the handler's error goes back to Lambda, as the RIC does
            body = json.dumps({"errorMessage": str(error), "errorType": type(error).__name__})
            outcome = "error"
        answer = urllib.request.Request(
            "{}/invocation/{}/{}".format(api, request_id, outcome),
            data=body.encode(),
            method="POST",
        )
        urllib.request.urlopen(answer).close()


if __name__ == "__main__":
    main()
