// The state machines end to end: the plan (statemachine/failback.asl.json) and its step executions
// (statemachine/step.asl.json), executed by the JSONata interpreter, invoking the real function
// under `cargo lambda watch` (the Lambda invoke API) against drs-sim, checked against the
// simulator's own records:
//
// 1. a plain request (events/eventbridge-failback-request.json, started by its EventBridge event):
//    a plan of one step, tracked to a result for every requested instance;
// 2. an ordered plan of three steps over the same fleet (the shape of events/plan-three-steps.json:
//    databases with a critical primary and a wait -> app servers by tag selector, one failure
//    tolerated, then an approval -> web by source server), the approval given at once;
// 3. a redrive: the function unreachable for a step's last call (Lambda service errors), so the
//    step execution fails there and the plan fails at its question about it (asked of the real
//    function); then the plan is redriven: it redrives the step execution, which makes its last
//    call, and the run completes with each job announced once; and the same failure with the step
//    execution redriven by hand while the plan waits for it: the plan takes its result, itself
//    never redriven;
// 4. waiting for readiness (the shape of events/wait-for-ready.json): one instance ready, one whose
//    failback replication makes it ready a few seconds in, one whose client never connects; the
//    step launches the second in a later round and skips the third when its wait ends, each change
//    announced once (Failback Instances Waiting);
// 5. finishing (the shape of events/plan-finish.json): a plan that ends with finish "terminate",
//    one instance failing: the run's instances that came back are listed, approved, terminated in
//    one job followed to the end, the failed one never; Failback Instances Finished once.
//
//   node e2e.cjs LAMBDA_ADDRESS SIM_ENDPOINT
//
// Run by .ci/local-lambda once the function is up. The simulator's jobs take 3 s (its default
// lifecycle), so the state machine tracks every second (TrackIntervalSeconds 1, really waited);
// longer waits (a step's waitAfterSeconds) are waited 2 s at most, the virtual clock still moving
// by the whole wait. The events the state machine publishes itself (Step Started, Step Approval
// Requested, Plan Halted, Run Finished) are the interpreter's record; the function's (Job
// Completed, Step Finished) the simulator's EventBridge.
"use strict";

const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");

const { execute, substitute, stepFunctions, StatesError } = require("./asl-jsonata.cjs");

const [lambda, sim] = process.argv.slice(2);
if (!lambda || !sim) {
  console.error("usage: node e2e.cjs LAMBDA_ADDRESS SIM_ENDPOINT");
  process.exit(2);
}
const repo = path.resolve(__dirname, "..", "..");
const FUNCTION_ARN = "arn:aws:lambda:us-east-1:111122223333:function:drs-failback";
const RESULT_BUS = "drs-failback-results";
const EVENT_SOURCE = "drs-failback";
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

/** Calls the e2e makes fail before they reach the function (a Lambda service error), when given. */
let unreachable = () => false;

/** lambda:invoke through the Lambda invoke API that `cargo lambda watch` serves. */
async function invoke(resource, args, clock) {
  assert.equal(resource, "arn:aws:states:::lambda:invoke");
  assert.equal(args.FunctionName, FUNCTION_ARN);
  if (unreachable(args.Payload)) throw new StatesError("Lambda.ServiceException", "the e2e keeps this call from the function");
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

const PLAN_ARN = "arn:aws:states:us-east-1:111122223333:stateMachine:drs-failback-plan";
const STEP_ARN = "arn:aws:states:us-east-1:111122223333:stateMachine:drs-failback-step";
const substitutions = {
  FailbackFunctionArn: FUNCTION_ARN,
  FunctionTimeoutSeconds: 300,
  TrackIntervalSeconds: 1,
  TimeLimitSeconds: 120,
  MaxRounds: 10,
  ApprovalTimeoutSeconds: 60,
  ApprovalPendingAlarmSeconds: 300,
  MetricsNamespace: "DrsFailback",
  ResultEventBusName: RESULT_BUS,
  EventSource: EVENT_SOURCE,
  StepStateMachineArn: STEP_ARN,
  StepExecutionArnPrefix: `${STEP_ARN.replace(":stateMachine:", ":execution:")}:`,
  TargetConcurrency: 4,
};
const read = (name) => substitute(fs.readFileSync(path.join(repo, "statemachine", name), "utf8"), substitutions);
const machines = { [PLAN_ARN]: read("failback.asl.json"), [STEP_ARN]: read("step.asl.json") };

/**
 * Runs the plan on `input` (or redrives `redrive`, a run that failed); `answer` answers approvals.
 * The result is the plan's execution, holding its step executions' trace and events; `ends` in
 * `state` (FailbackComplete unless said).
 */
async function run(input, answer, { redrive, state = "FailbackComplete", sfn: given, onWait } = {}) {
  const sfn = redrive?.sfn ?? given ?? stepFunctions(machines);
  const result = await execute(machines[PLAN_ARN], input, {
    invoke,
    answer,
    sfn,
    stateMachineArn: PLAN_ARN,
    executionName: "e2e",
    redrive,
    sleep: async (seconds, state, clock) => {
      await onWait?.(state, clock);
      await new Promise((resolve) => setTimeout(resolve, Math.min(seconds, 2) * 1000));
    },
  });
  result.sfn = sfn;
  const why = result.status === "FAILED" ? `: ${result.error}: ${result.cause}` : "";
  assert.equal(result.state, state, `ended in ${result.state}${why}`);
  for (const e of result.events) {
    assert.equal(e.eventBusName, RESULT_BUS);
    assert.equal(e.source, EVENT_SOURCE);
  }
  return result;
}

const published = (result, detailType) => result.events.filter((e) => e.detailType === detailType).map((e) => e.detail);

/**
 * What the simulator saw of a run: its jobs, and the function's events — each job announced once
 * (naming its step), each step summed up once (Step Finished, with its verdict) and the run never
 * summed up by the function (Run Finished now comes from the state machine). Returns every
 * instance's result from the Job Completed events, and the jobs.
 */
async function simRecords(runId, steps) {
  const jobs = (await admin("GET", "jobs")).filter((j) => j.tags?.["drs-failback:run-id"] === runId);
  const events = (await admin("GET", "events")).filter((e) => e.detail.runId === runId);
  const completed = events.filter((e) => e.detailType === "Failback Launch Job Completed");
  assert.deepEqual(completed.map((e) => e.detail.jobID).sort(), jobs.map((j) => j.jobID).sort(), "each job announced once");
  for (const e of completed) assert.ok(steps.includes(e.detail.step), `Job Completed names its step: ${e.detail.step}`);
  const finished = events.filter((e) => e.detailType === "Failback Step Finished" && (e.detail.part ?? 1) === 1);
  assert.deepEqual(finished.map((e) => e.detail.step), steps, "each step summed up once, in order");
  for (const e of finished) assert.equal(e.detail.verdict?.halt, false, `${e.detail.step}: ${JSON.stringify(e.detail.verdict)}`);
  assert.equal(events.filter((e) => e.detailType === "Failback Run Finished").length, 0, "the function no longer sums up the run");
  const results = {};
  for (const { detail } of completed) {
    for (const i of detail.instances ?? []) results[i.recoveryInstanceID] = i.reason ? `${i.result}:${i.reason}` : i.result;
    for (const g of detail.groups ?? []) for (const id of g.recoveryInstanceIDs) results[id] = g.reason ? `${g.result}:${g.reason}` : g.result;
  }
  return { jobs, events, results };
}

async function plainRequest(event) {
  const requested = event.detail.recoveryInstanceIDs;
  await admin("POST", "reset");
  await admin("POST", "instances", { recoveryInstanceID: requested[1], failureEvent: FAILING_EVENT });

  const result = await run(event);
  const out = result.output;
  assert.equal(out.runId, event.id);
  assert.equal(out.complete, true);
  assert.equal(out.halted, null);
  assert.deepEqual(out.steps.map((s) => [s.name, s.status]), [["failback", "finished"]]);
  assert.deepEqual(out.counts, { succeeded: requested.length - 1, failed: 1, running: 0, notLaunched: 0, launched: requested.length, skipped: 0, rejected: 0, deferred: 0 });
  assert.deepEqual(published(result, "Failback Step Started"), [{ runId: event.id, step: "failback", index: 0, steps: 1, instances: requested.length }]);
  assert.deepEqual(published(result, "Failback Run Finished"), [out]);

  const { jobs, events, results } = await simRecords(event.id, ["failback"]);
  const expected = Object.fromEntries(requested.map((id, k) => [id, k === 1 ? `failed:${FAILING_EVENT}` : "succeeded"]));
  assert.deepEqual(results, expected);
  const tracks = result.trace.filter((t) => t.state === "Track" && "input" in t).length;
  console.log(
    `e2e: plain request OK: ${requested.length} instances, ${jobs.length} job(s), ${tracks} tracking calls, ` +
      `${requested.length - 1} succeeded, 1 failed ${FAILING_EVENT}, ${events.length + result.events.length} events, ${result.elapsed.toFixed(1)} s`,
  );
}

async function threeStepPlan(event) {
  // The fleet holds the EventBridge sample's instances: two databases, three app servers found by
  // their tag, one web server named by its source server.
  const fleet = event.detail.recoveryInstanceIDs;
  const [dbPrimary, dbReplica, app1, app2, app3, web] = fleet;
  const runId = `${event.id}-plan`;
  await admin("POST", "reset");
  // A tag of the e2e's own: the fleet also holds the plan samples' tagged instances.
  for (const id of [app1, app2, app3]) await admin("POST", "instances", { recoveryInstanceID: id, tags: { Tier: "e2e-app" } });
  await admin("POST", "instances", { recoveryInstanceID: app2, failureEvent: FAILING_EVENT });
  const webSource = (await admin("GET", "instances")).find((i) => i.recoveryInstanceID === web).sourceServerID;
  const sample = JSON.parse(fs.readFileSync(path.join(repo, "events", "plan-three-steps.json"), "utf8"));
  const plan = {
    runId,
    tags: sample.tags,
    steps: [
      { name: "databases", recoveryInstanceIDs: [dbPrimary, dbReplica], critical: [dbPrimary], waitAfterSeconds: 5 },
      { name: "app-servers", selector: { tags: { Tier: "e2e-app" } }, maxFailed: 1, approval: true },
      { name: "web", sourceServerIDs: [webSource], critical: true },
    ],
  };
  const approvals = [];
  const result = await run(plan, (request) => {
    approvals.push(request);
    return { output: { approvedBy: "e2e" }, afterSeconds: 1 };
  });
  const out = result.output;
  assert.equal(out.complete, true);
  assert.deepEqual(out.steps.map((s) => [s.name, s.status]), [["databases", "finished"], ["app-servers", "finished"], ["web", "finished"]]);
  assert.deepEqual(out.counts, { succeeded: 5, failed: 1, running: 0, notLaunched: 0, launched: 6, skipped: 0, rejected: 0, deferred: 0 });
  assert.deepEqual(published(result, "Failback Step Started").map((d) => [d.step, d.index, d.instances]), [["databases", 0, 2], ["app-servers", 1, 3], ["web", 2, 1]]);
  const [asked] = published(result, "Failback Step Approval Requested");
  assert.equal(approvals.length, 1);
  assert.deepEqual([asked.step, asked.nextStep, asked.taskToken], ["app-servers", "web", approvals[0].token]);
  assert.deepEqual(published(result, "Failback Plan Halted"), []);
  assert.deepEqual(published(result, "Failback Run Finished"), [out]);

  const { jobs, events, results } = await simRecords(runId, ["databases", "app-servers", "web"]);
  assert.deepEqual(results, Object.fromEntries(fleet.map((id) => [id, id === app2 ? `failed:${FAILING_EVENT}` : "succeeded"])));
  // Strictly in order: every job of a step starts after the jobs of the step before it ended.
  const stepOfJob = Object.fromEntries(events.filter((e) => e.detailType === "Failback Launch Job Completed").map((e) => [e.detail.jobID, e.detail.step]));
  const order = jobs.slice().sort((a, b) => a.createdAtMs - b.createdAtMs).map((j) => stepOfJob[j.jobID]);
  assert.deepEqual(order.filter((s, i) => s !== order[i - 1]), ["databases", "app-servers", "web"]);
  console.log(
    `e2e: three-step plan OK: ${fleet.length} instances, ${jobs.length} job(s), 1 failure tolerated, approval given, ` +
      `${events.length + result.events.length} events, ${result.elapsed.toFixed(1)} s`,
  );
}

async function redrive(event) {
  const requested = event.detail.recoveryInstanceIDs.slice(0, 3);
  const runId = `${event.id}-redrive`;
  await admin("POST", "reset");
  const input = { runId, recoveryInstanceIDs: requested };
  unreachable = (payload) => payload.final === true;
  // The step execution fails at its last call, its place (the plan's Map child) at its question,
  // the plan at the step's Map.
  const failed = await run(input, undefined, { state: "RunPlaces" });
  unreachable = () => false;
  assert.equal(failed.error, "States.ExceedToleratedFailureThreshold");
  const [place] = [...failed.sfn.executions.values()].filter((e) => e.stateMachineArn === `${PLAN_ARN}/Places`);
  assert.deepEqual([place.status, place.state, place.error], ["FAILED", "StepGate", "StepExecutionFailed"]);
  const [step] = [...failed.sfn.executions.values()].filter((e) => e.stateMachineArn === STEP_ARN);
  assert.deepEqual([step.status, step.state, step.error], ["FAILED", "FinalTrack", "Lambda.ServiceException"]);
  assert.ok(place.cause.includes(step.executionArn.split(":").at(-1)), place.cause);
  const jobsBefore = (await admin("GET", "jobs")).filter((j) => j.tags?.["drs-failback:run-id"] === runId).length;

  const redriven = await run(input, undefined, { redrive: failed });
  assert.equal(redriven.trace[0].state, "RunPlaces");
  assert.equal(redriven.trace.find((t) => t.execution?.includes("-Places-"))?.state, "StepGate", "the place resumed at its question");
  assert.equal(redriven.trace.find((t) => t.execution?.startsWith("drs-"))?.state, "FinalTrack", "the step execution resumed at its last call");
  assert.equal(redriven.output.complete, true);
  assert.equal(redriven.output.counts.succeeded, requested.length);
  assert.deepEqual(published(failed, "Failback Step Started").length + published(redriven, "Failback Step Started").length, 1);
  const { jobs } = await simRecords(runId, ["failback"]);
  assert.equal(jobs.length, jobsBefore, "nothing launched again");
  console.log(`e2e: redrive OK: the step execution failed at its last call, the plan at its question; redriven, ${requested.length} succeeded, ${jobs.length} job(s), each announced once`);
}

async function redriveByHand(event) {
  const requested = event.detail.recoveryInstanceIDs.slice(3, 6);
  const runId = `${event.id}-by-hand`;
  await admin("POST", "reset");
  const sfn = stepFunctions(machines);
  let redriven;
  unreachable = (payload) => payload.final === true;
  // The operator redrives the failed step execution while the plan waits for it.
  const onWait = async (state, clock) => {
    if (state !== "WaitForStep" || redriven) return;
    const [failed] = [...sfn.executions.values()].filter((e) => e.stateMachineArn === STEP_ARN && e.status === "FAILED");
    unreachable = () => false;
    redriven = await sfn.redrive(failed.executionArn, { invoke, startTime: clock.now() });
  };
  const result = await run({ runId, recoveryInstanceIDs: requested }, undefined, { sfn, onWait });
  assert.equal(redriven?.state, "StepEnded", "the step execution, redriven by hand, went on to its end");
  assert.equal(redriven.trace[0].state, "FinalTrack");
  assert.equal(result.redriveCount, 0, "the plan was not redriven");
  assert.equal(result.output.counts.succeeded, requested.length);
  const { jobs } = await simRecords(runId, ["failback"]);
  console.log(`e2e: redrive by hand OK: the step execution failed at its last call and was redriven while the plan waited; the plan took its result, ${requested.length} succeeded, ${jobs.length} job(s), each announced once`);
}

async function waitingForReadiness(event) {
  const requested = event.detail.recoveryInstanceIDs.slice(0, 3);
  const runId = "e2e-wait";
  await admin("POST", "reset");
  // 1 s INITIATING, then 4 MiB at 1 MiB/s: ready about 5 s from now.
  await admin("POST", "instances", { recoveryInstanceID: requested[1], replication: { totalBytes: 4 << 20, bytesPerSecond: 1 << 20, initiatingSeconds: 1 } });
  await admin("POST", "instances", { recoveryInstanceID: requested[2], replication: { totalBytes: 1, bytesPerSecond: 1, neverConnects: true } });

  const result = await run({ runId, recoveryInstanceIDs: requested, waitForReadySeconds: 15 });
  const out = result.output;
  assert.equal(out.complete, true, JSON.stringify(out));
  assert.deepEqual(out.counts, { succeeded: 2, failed: 0, running: 0, notLaunched: 1, launched: 2, skipped: 1, rejected: 0, deferred: 0 });
  const launches = result.trace.filter((t) => t.state === "Launch" && "input" in t);
  assert.ok(launches.length >= 2, "the ready-later instance is launched by a later round");
  assert.ok(launches.every((t) => t.input.waitForReadySeconds === 15), "every round carries the wait");

  const { jobs, events, results } = await simRecords(runId, ["failback"]);
  assert.deepEqual(results, { [requested[0]]: "succeeded", [requested[1]]: "succeeded" });
  assert.deepEqual(jobs.map((j) => j.recoveryInstanceIDs).flat().sort(), requested.slice(0, 2).sort(), "each launched once");
  const seen = {};
  for (const e of events.filter((e) => e.detailType === "Failback Instances Waiting")) {
    for (const i of e.detail.instances) (seen[i.recoveryInstanceID] ??= []).push([i.waiting, i.replication?.state ?? i.failbackState]);
  }
  for (const [id, states] of Object.entries(seen)) {
    for (let k = 1; k < states.length; k++) assert.notDeepEqual(states[k], states[k - 1], `${id} announced twice in one state`);
  }
  assert.deepEqual(seen[requested[2]], [[true, "FAILBACK_NOT_STARTED"], [false, "FAILBACK_NOT_STARTED"]]);
  assert.ok(seen[requested[1]].length >= 1 && seen[requested[1]].every(([waiting]) => waiting), JSON.stringify(seen[requested[1]]));
  console.log(`e2e: waiting for readiness OK: 1 ready at once, 1 launched by a later round as it turned ready (${launches.length} rounds in all), 1 never ready skipped at the wait's end; ${Object.values(seen).flat().length} announcements, one per change`);
}

async function finishing(event) {
  const requested = event.detail.recoveryInstanceIDs.slice(0, 3);
  const runId = "e2e-finish";
  await admin("POST", "reset");
  await admin("POST", "instances", { recoveryInstanceID: requested[1], failureEvent: FAILING_EVENT });
  let asked;
  const approve = ({ entries }) => {
    asked = typeof entries[0].Detail === "string" ? JSON.parse(entries[0].Detail) : entries[0].Detail;
    return { output: { approvedBy: "e2e" }, afterSeconds: 1 };
  };
  const result = await run({ runId, steps: [{ name: "wave", recoveryInstanceIDs: requested }], finish: "terminate" }, approve);
  const out = result.output;
  assert.equal(out.finish.status, "finished", JSON.stringify(out.finish));
  assert.equal(out.finish.complete, true);
  assert.equal(out.finish.counts.done, 2);
  assert.equal(out.finish.counts.notEligible, 1);
  assert.equal(asked.counts.planned, 2, JSON.stringify(asked));
  assert.deepEqual(asked.groups.find((g) => g.result === "notEligible").recoveryInstanceIDs, [requested[1]]);
  const calls = (await admin("GET", "calls")).filter((c) => c.operation === "TerminateRecoveryInstances");
  assert.equal(calls.length, 1, "one terminate call");
  assert.deepEqual(calls[0].recoveryInstanceIDs.sort(), [requested[0], requested[2]].sort(), "never the failed one");
  const listed = (await admin("GET", "instances")).map((i) => i.recoveryInstanceID);
  assert.ok(listed.includes(requested[1]), "the failed instance stays");
  assert.ok(!listed.includes(requested[0]) && !listed.includes(requested[2]), "the terminated are gone");
  const events = (await admin("GET", "events")).filter((e) => e.detail.runId === runId && e.detailType === "Failback Instances Finished");
  assert.equal(events.length, 1, "Failback Instances Finished once");
  assert.equal(events[0].detail.counts.done, 2);
  const finishCalls = result.trace.filter((t) => t.state === "Finish" && "input" in t).length;
  console.log(`e2e: finishing OK: 2 of 3 came back, listed, approved, terminated in one job followed over ${finishCalls} call(s); the failed one kept; Failback Instances Finished once`);
}

/**
 * A plan across two accounts and two regions (events/plan-across-accounts.json): each step's
 * places run as the plan's Map children, each calling the real function with its target, which
 * assumes the role the target account grants (drs-sim's STS) and launches there; then a critical
 * database failing in one account halts the plan before any other account starts its step.
 */
async function acrossAccounts() {
  const sample = JSON.parse(fs.readFileSync(path.join(repo, "events", "plan-across-accounts.json"), "utf8"));
  const places = (await admin("GET", "targets")).map((t) => `targets/${t.accountId}/${t.region}`).slice(1);
  assert.ok(places.length >= 4, `drs-sim holds the sample's accounts and regions: ${places}`);
  await admin("POST", "reset");
  for (const place of places) await admin("POST", `${place}/reset`);
  const runId = `${sample.runId}-e2e`;
  const result = await run({ ...sample, runId, steps: sample.steps.map((s) => ({ ...s, waitAfterSeconds: s.waitAfterSeconds ? 2 : 0 })) });
  const out = result.output;
  assert.equal(out.complete, true, JSON.stringify(out));
  assert.deepEqual(out.steps.map((s) => [s.name, s.status, s.counts.succeeded]), [["databases", "finished", 2], ["app-servers", "finished", 4], ["web", "finished", 2]]);
  assert.deepEqual(out.steps[1].targets.map((t) => `${t.target.account}/${t.target.region}`), ["222233334444/us-west-2", "333344445555/us-west-2"]);
  // Each account and region launched its own instances, in its own jobs, tagged with the run.
  const launchedIn = async (place) => (await admin("GET", `${place}/jobs`)).filter((j) => j.tags?.["drs-failback:run-id"] === runId).flatMap((j) => j.recoveryInstanceIDs);
  const counts = {};
  for (const place of places) counts[place] = (await launchedIn(place)).length;
  assert.deepEqual(counts, { "targets/222233334444/us-east-1": 2, "targets/222233334444/us-west-2": 2, "targets/333344445555/us-west-2": 2, "targets/333344445555/us-east-1": 1 });
  assert.equal((await admin("GET", "jobs")).filter((j) => j.tags?.["drs-failback:run-id"] === runId).length, 1, "the hub's own web server, in its own account");

  // The critical database fails in 222233334444/us-east-1: no other account starts its step.
  const critical = "i-0d1b2c3d4e5f60001";
  await admin("POST", "reset");
  for (const place of places) await admin("POST", `${place}/reset`);
  await admin("POST", `targets/222233334444/us-east-1/instances`, { recoveryInstanceID: critical, failureEvent: FAILING_EVENT });
  const haltRun = `${runId}-halt`;
  const halted = await run({ ...sample, runId: haltRun }, undefined, { state: "FailbackIncomplete" });
  assert.deepEqual(halted.output.halted, { step: "databases", reason: "CRITICAL_FAILED" });
  for (const place of places.filter((p) => !p.endsWith("222233334444/us-east-1"))) {
    const jobs = (await admin("GET", `${place}/jobs`)).filter((j) => j.tags?.["drs-failback:run-id"] === haltRun);
    assert.equal(jobs.length, 0, `${place} launched nothing`);
  }
  console.log(`e2e: across accounts OK: 3 steps over ${places.length} accounts and regions and the hub, each place its own Map child through its target role; a critical failure in one account halted the plan before the others started`);
}

/**
 * A rehearsal against the real function: the stored plan (the across-accounts sample, so every
 * place is read through its target role) dry-run and judged ready, nothing launched; then a target
 * account's DRS denies the function (IAM drift there): the rehearsal fails and counts it.
 */
async function rehearsal() {
  const REHEARSAL_PARAMETER = "/drs-failback/rehearsal-plan";
  const machine = substitute(fs.readFileSync(path.join(repo, "statemachine", "rehearsal.asl.json"), "utf8"), { ...substitutions, RehearsalPlanParameter: REHEARSAL_PARAMETER });
  const stored = fs.readFileSync(path.join(repo, "events", "plan-across-accounts.json"), "utf8");
  const places = (await admin("GET", "targets")).map((t) => `targets/${t.accountId}/${t.region}`).slice(1);
  await admin("POST", "reset");
  for (const place of places) await admin("POST", `${place}/reset`);
  const rehearse = () => execute(machine, {}, { invoke, parameters: { [REHEARSAL_PARAMETER]: stored }, executionName: "rehearsal-e2e", stateMachineArn: "arn:aws:states:us-east-1:111122223333:stateMachine:drs-failback-rehearsal" });
  const ready = await rehearse();
  assert.equal(ready.status, "SUCCEEDED", `${ready.error}: ${ready.cause}`);
  assert.equal(ready.output.ready, true, JSON.stringify(ready.output));
  assert.equal(ready.output.steps, 3);
  assert.deepEqual(ready.metrics.map((m) => [m.name, m.value]), [["RehearsalsFailed", 0]]);
  assert.deepEqual(published(ready, "Failback Rehearsal Finished").map((d) => d.ready), [true]);
  for (const place of ["", ...places.map((p) => `${p}/`)]) {
    assert.equal((await admin("GET", `${place}jobs`)).length, 0, `a rehearsal launches nothing (${place || "the hub"})`);
  }

  // A target account's DRS now denies the function's role.
  const denied = places[0];
  await admin("POST", `${denied}/faults`, { type: "fail", operation: "DescribeRecoveryInstances", calls: 1000, status: 403, errorType: "AccessDeniedException", message: "not authorized to perform drs:DescribeRecoveryInstances" });
  const drifted = await rehearse();
  await admin("DELETE", `${denied}/faults`);
  assert.equal(drifted.status, "FAILED");
  assert.equal(drifted.error, "RehearsalNotReady");
  assert.equal(drifted.output, undefined);
  const [verdict] = published(drifted, "Failback Rehearsal Finished");
  assert.equal(verdict.ready, false, JSON.stringify(verdict));
  assert.deepEqual(drifted.metrics.map((m) => [m.name, m.value]), [["RehearsalsFailed", 1]]);
  const why = verdict.findings?.map((f) => `${f.step} ${f.target?.account}/${f.target?.region} ${f.problem} ${f.reason}`).join("; ") ?? `${verdict.stage}: ${verdict.error?.Error}`;
  console.log(`e2e: rehearsal OK: the stored plan dry-run through ${places.length} target roles and judged ready, nothing launched; with ${denied} denying DRS it failed (${why}) and counted RehearsalsFailed 1`);
}

async function main() {
  const event = JSON.parse(fs.readFileSync(path.join(repo, "events", "eventbridge-failback-request.json"), "utf8"));
  await plainRequest(event);
  await threeStepPlan(event);
  await redrive(event);
  await redriveByHand(event);
  await waitingForReadiness(event);
  await finishing(event);
  await acrossAccounts();
  await rehearsal();
}

main().catch((error) => {
  console.error(`e2e: ${error.stack ?? error}`);
  process.exit(1);
});
