// The state machine end to end: statemachine/failback.asl.json, executed by the JSONata
// interpreter, invoking the real function under `cargo lambda watch` (the Lambda invoke API) against
// drs-sim — the whole failback started by one EventBridge event, tracked to a result for every
// requested instance, checked against the simulator's own records.
//
//   node e2e.cjs LAMBDA_ADDRESS SIM_ENDPOINT
//
// Run by .ci/local-lambda once the function is up. The simulator's jobs take 3 s (its default
// lifecycle), so the state machine tracks every second (TrackIntervalSeconds 1, really waited).
"use strict";

const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");

const { execute, substitute, StatesError } = require("./asl-jsonata.cjs");

const [lambda, sim] = process.argv.slice(2);
if (!lambda || !sim) {
  console.error("usage: node e2e.cjs LAMBDA_ADDRESS SIM_ENDPOINT");
  process.exit(2);
}
const repo = path.resolve(__dirname, "..", "..");
const FUNCTION_ARN = "arn:aws:lambda:us-east-1:111122223333:function:drs-failback";
const FAILING_EVENT = "CONVERSION_FAIL";

async function admin(method, what, body) {
  const answer = await fetch(`${sim}/_sim/${what}`, {
    method,
    headers: { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  assert.ok(answer.ok, `${method} /_sim/${what}: HTTP ${answer.status} ${await answer.clone().text()}`);
  return answer.json();
}

/** lambda:invoke through the Lambda invoke API that `cargo lambda watch` serves. */
async function invoke(resource, args, clock) {
  assert.equal(resource, "arn:aws:states:::lambda:invoke");
  assert.equal(args.FunctionName, FUNCTION_ARN);
  const started = Date.now();
  const answer = await fetch(`${lambda}/2015-03-31/functions/drs-failback/invocations`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(args.Payload),
  });
  const text = await answer.text();
  clock.advance((Date.now() - started) / 1000);
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    throw new StatesError("Lambda.Unknown", `HTTP ${answer.status}: ${text}`);
  }
  if (!answer.ok || answer.headers.has("x-amz-function-error")) {
    throw new StatesError(body.errorType ?? "Lambda.Unknown", JSON.stringify(body));
  }
  return { ExecutedVersion: "$LATEST", Payload: body, StatusCode: 200 };
}

async function main() {
  const event = JSON.parse(fs.readFileSync(path.join(repo, "events", "eventbridge-failback-request.json"), "utf8"));
  const requested = event.detail.recoveryInstanceIDs;
  await admin("POST", "reset");
  await admin("POST", "instances", { recoveryInstanceID: requested[1], failureEvent: FAILING_EVENT });

  const definition = substitute(fs.readFileSync(path.join(repo, "statemachine", "failback.asl.json"), "utf8"), {
    FailbackFunctionArn: FUNCTION_ARN,
    TrackIntervalSeconds: 1,
    TimeLimitSeconds: 120,
    MaxRounds: 10,
  });
  const run = await execute(definition, event, {
    invoke,
    sleep: (seconds) => new Promise((resolve) => setTimeout(resolve, seconds * 1000)),
  });
  const why = run.status === "FAILED" ? `: ${run.error}: ${run.cause}` : "";
  assert.equal(run.state, "FailbackComplete", `ended in ${run.state}${why}`);

  const out = run.output;
  assert.equal(out.runId, event.id);
  assert.equal(out.complete, true);
  const results = {};
  for (const job of out.jobs) {
    for (const i of job.instances ?? []) results[i.recoveryInstanceID] = i.reason ? `${i.result}:${i.reason}` : i.result;
    for (const g of job.groups ?? []) for (const id of g.recoveryInstanceIDs) results[id] = g.reason ? `${g.result}:${g.reason}` : g.result;
  }
  const expected = Object.fromEntries(requested.map((id, k) => [id, k === 1 ? `failed:${FAILING_EVENT}` : "succeeded"]));
  assert.deepEqual(results, expected);
  assert.deepEqual(out.finished, { succeeded: requested.length - 1, failed: 1, running: 0, notLaunched: 0 });

  // The simulator's records: the jobs are this run's, and each is announced once.
  const jobs = (await admin("GET", "jobs")).filter((j) => j.tags?.["drs-failback:run-id"] === event.id);
  const events = (await admin("GET", "events")).filter((e) => e.detail.runId === event.id);
  const completed = events.filter((e) => e.detailType === "Failback Launch Job Completed").map((e) => e.detail.jobID);
  assert.deepEqual([...completed].sort(), jobs.map((j) => j.jobID).sort(), "each job announced once");
  assert.equal(events.filter((e) => e.detailType === "Failback Run Finished").length, 1);
  const tracks = run.trace.filter((t) => t.state === "Track" && !t.retry && !t.caught).length;
  console.log(
    `e2e: state machine + function + drs-sim OK: ${requested.length} instances, ${jobs.length} job(s), ` +
      `${tracks} tracking calls, ${Object.values(results).filter((r) => r === "succeeded").length} succeeded, ` +
      `1 failed ${FAILING_EVENT}, ${events.length} events, ${run.elapsed.toFixed(1)} s`,
  );
}

main().catch((error) => {
  console.error(`e2e: ${error.stack ?? error}`);
  process.exit(1);
});
