// Runs statemachine/failback.asl.json, with the substitutions template.yaml passes it, against a
// fake drs-failback function that answers launch and track requests by the README's contract, over
// a small model of DRS: jobs that take time on the interpreter's virtual clock, a quota of servers
// in active jobs, per-instance results. Run with statemachine/test/run (installs jsonata 2.0.6
// into a cache and calls node --test).
"use strict";

const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const { test } = require("node:test");

const { execute, substitute, StatesError } = require("./asl-jsonata.cjs");

const repo = path.resolve(__dirname, "..", "..");
const aslText = fs.readFileSync(path.join(repo, "statemachine", "failback.asl.json"), "utf8");
const templateText = fs.readFileSync(path.join(repo, "template.yaml"), "utf8");
const sample = (name) => JSON.parse(fs.readFileSync(path.join(repo, "events", name), "utf8"));

const FUNCTION_ARN = "arn:aws:lambda:us-east-1:111122223333:function:drs-failback";

/** The Default of a Number parameter of template.yaml. */
function templateDefault(parameter) {
  const m = new RegExp(`^  ${parameter}:\\n(?:    .*\\n)*?    Default: (\\d+)\\n`, "m").exec(templateText);
  assert.ok(m, `template.yaml has no parameter ${parameter} with a numeric Default`);
  return Number(m[1]);
}

/** The keys of the state machine's DefinitionSubstitutions in template.yaml. */
function templateSubstitutionKeys() {
  const m = /^      DefinitionSubstitutions:\n((?:        .*\n)+)/m.exec(templateText);
  assert.ok(m, "template.yaml has no DefinitionSubstitutions");
  return m[1].split("\n").filter(Boolean).map((line) => line.trim().split(":")[0]);
}

function definition(overrides = {}) {
  return substitute(aslText, {
    FailbackFunctionArn: FUNCTION_ARN,
    TrackIntervalSeconds: templateDefault("TrackIntervalSeconds"),
    TimeLimitSeconds: templateDefault("TimeLimitSeconds"),
    MaxRounds: templateDefault("MaxRounds"),
    ...overrides,
  });
}

const functionError = (errorType, errorMessage) =>
  new StatesError(errorType, JSON.stringify({ errorType, errorMessage }));
const refused = (message) => functionError("InvalidFailbackRequest", `invalid failback request: ${message}`);

const LAUNCH_FIELDS = ["recoveryInstanceIDs", "sourceServerIDs", "tags", "runId", "dryRun", "action"];
const TRACK_FIELDS = ["action", "runId", "jobIDs", "reportedJobIDs", "final", "notLaunched"];
const JOB_ID = /^drsjob-[0-9a-zA-Z]{17}$/;

/**
 * A fake drs-failback over a model of DRS. Options:
 * - `capacity`: servers in active jobs (the quota); `jobSize`: instances per job;
 * - `jobSeconds`: how long a job runs; `callSeconds`: how long each invocation takes;
 * - `fails`: { id: reason } instances whose launch fails; `rejects`, `skips`: ids refused or
 *   skipped at launch;
 * - `error(call, body)`: an error to throw instead of answering (or nothing).
 * Records every payload (`calls`), the jobs, and the events each call would publish.
 */
function fakeFunction(options = {}) {
  const {
    capacity = Infinity,
    jobSize = 2,
    jobSeconds = 300,
    callSeconds = 2,
    fails = {},
    rejects = [],
    skips = [],
    error = () => undefined,
  } = options;
  const calls = [];
  const jobs = new Map();
  const events = { jobCompleted: [], runFinished: [] };
  const handled = new Set(); // instances with an outcome: each is launched at most once

  const running = (now) => [...jobs.values()].filter((j) => now < j.started + jobSeconds);
  const inFlight = (now) => running(now).reduce((n, j) => n + j.ids.length, 0);

  function launch(body, clock, n) {
    for (const key of Object.keys(body)) {
      if (!LAUNCH_FIELDS.includes(key)) throw refused(`unknown field ${key}`);
    }
    if (body.action !== undefined && body.action !== "launch") throw refused(`action ${body.action}`);
    const ids = [...(body.recoveryInstanceIDs ?? []), ...(body.sourceServerIDs ?? [])];
    if (ids.length === 0 || !ids.every((id) => typeof id === "string")) {
      throw refused("recoveryInstanceIDs and sourceServerIDs must hold ids");
    }
    if ("tags" in body && (typeof body.tags !== "object" || body.tags === null || Array.isArray(body.tags))) {
      throw refused("tags must be an object");
    }
    const runId = body.runId ?? "generated-run-id";
    if (body.dryRun) {
      return {
        runId, dryRun: true, complete: false, requested: ids.length, duplicatesCollapsed: 0,
        counts: { launched: 0, skipped: 0, rejected: 0, deferred: ids.length },
        jobs: [],
        notLaunched: [{ outcome: "deferred", reason: "DRY_RUN", recoveryInstanceIDs: ids }],
        deferredRecoveryInstanceIDs: ids.filter((id) => !id.startsWith("s-")),
        deferredSourceServerIDs: ids.filter((id) => id.startsWith("s-")),
        plannedJobSizes: [ids.length],
        events: { published: 1, undelivered: 0 },
      };
    }
    for (const id of ids) {
      assert.ok(!handled.has(id), `${id} sent again after it had an outcome`);
    }
    const now = clock.elapsed();
    const rejected = ids.filter((id) => rejects.includes(id));
    const skipped = ids.filter((id) => skips.includes(id));
    const launchable = ids.filter((id) => !rejects.includes(id) && !skips.includes(id));
    const free = Math.max(0, capacity - inFlight(now));
    const launched = launchable.slice(0, free);
    const deferred = launchable.slice(free);
    const newJobs = [];
    for (let i = 0; i < launched.length; i += jobSize) {
      const jobID = `drsjob-${String(n).padStart(3, "0")}${String(jobs.size).padStart(14, "0")}`;
      const job = { jobID, ids: launched.slice(i, i + jobSize), started: now, runId };
      jobs.set(jobID, job);
      newJobs.push(job);
    }
    for (const id of [...launched, ...rejected, ...skipped]) handled.add(id);
    const notLaunched = [];
    if (rejected.length) notLaunched.push({ outcome: "rejected", reason: "REFUSED_BY_DRS", code: "ConflictException", message: "busy", recoveryInstanceIDs: rejected });
    if (skipped.length) notLaunched.push({ outcome: "skipped", reason: "FAILBACK_COMPLETED", recoveryInstanceIDs: skipped });
    if (deferred.length) notLaunched.push({ outcome: "deferred", reason: "QUOTA", recoveryInstanceIDs: deferred });
    return {
      runId, dryRun: false, complete: deferred.length === 0, requested: ids.length, duplicatesCollapsed: 0,
      counts: { launched: launched.length, skipped: skipped.length, rejected: rejected.length, deferred: deferred.length },
      jobs: newJobs.map((j) => ({ jobID: j.jobID, status: "PENDING", recoveryInstanceIDs: j.ids })),
      notLaunched,
      deferredRecoveryInstanceIDs: deferred.filter((id) => !id.startsWith("s-")),
      deferredSourceServerIDs: deferred.filter((id) => id.startsWith("s-")),
      events: { published: newJobs.length + 1, undelivered: 0 },
    };
  }

  function track(body, clock) {
    for (const key of Object.keys(body)) {
      if (!TRACK_FIELDS.includes(key)) throw refused(`unknown field ${key}`);
    }
    assert.equal(typeof body.runId, "string", "runId");
    assert.ok(Array.isArray(body.jobIDs), "jobIDs is a list");
    assert.ok(body.jobIDs.length > 0 || body.final === true, "jobIDs may be empty only on the final call");
    assert.ok(body.jobIDs.every((id) => JOB_ID.test(id)), "job ids");
    assert.ok(Array.isArray(body.reportedJobIDs ?? []), "reportedJobIDs is a list");
    const now = clock.elapsed();
    const reported = [...(body.reportedJobIDs ?? [])];
    const tracked = body.jobIDs.map((jobID) => {
      const job = jobs.get(jobID);
      assert.ok(job, `${jobID} is a job of the run`);
      assert.equal(job.runId, body.runId);
      const done = now >= job.started + jobSeconds;
      const instances = job.ids.map((id) => {
        if (!done) return { recoveryInstanceID: id, result: "running", launchStatus: "IN_PROGRESS" };
        return id in fails
          ? { recoveryInstanceID: id, result: "failed", reason: fails[id], launchStatus: "FAILED", failbackState: "FAILBACK_ERROR" }
          : { recoveryInstanceID: id, result: "succeeded", launchStatus: "LAUNCHED", failbackState: "FAILBACK_COMPLETED" };
      });
      const counts = count(instances);
      if (done && !reported.includes(jobID)) {
        events.jobCompleted.push(jobID);
        reported.push(jobID);
      }
      return { jobID, status: done ? "COMPLETED" : "STARTED", done, counts, instances };
    });
    const all = tracked.flatMap((j) => j.instances);
    const counts = count(all);
    const answer = {
      runId: body.runId,
      complete: tracked.every((j) => j.done),
      counts,
      jobs: tracked,
      reportedJobIDs: reported,
      runningJobIDs: tracked.filter((j) => !j.done).map((j) => j.jobID),
      listing: "instances",
      events: { published: 0, undelivered: 0 },
    };
    if (body.final) {
      const groups = body.notLaunched ?? [];
      assert.ok(Array.isArray(groups), "notLaunched is the launch answers' groups");
      const notLaunched = groups.reduce((n, g) => n + g.recoveryInstanceIDs.length, 0);
      answer.finished = { ...counts, notLaunched };
      if (groups.length) answer.notLaunched = groups;
      events.runFinished.push(answer.finished);
    }
    // As the function does: past the budget, each job's instances are grouped.
    if (Buffer.byteLength(JSON.stringify(answer)) > 200 * 1024) {
      answer.listing = "jobGroups";
      for (const job of answer.jobs) {
        job.groups = group(job.instances);
        delete job.instances;
      }
    }
    return answer;
  }

  const invoke = async (resource, args, clock) => {
    assert.equal(resource, "arn:aws:states:::lambda:invoke");
    assert.equal(args.FunctionName, FUNCTION_ARN);
    const payload = args.Payload;
    calls.push(payload);
    const n = calls.length;
    clock.advance(callSeconds);
    const body = "detail-type" in payload && "detail" in payload ? payload.detail : payload;
    const failure = error(n, body);
    if (failure) throw failure;
    const answer = body.action === "track" ? track(body, clock) : launch(body, clock, n);
    return { ExecutedVersion: "$LATEST", Payload: answer, StatusCode: 200 };
  };
  return { invoke, calls, jobs, events };
}

function count(instances) {
  const counts = { succeeded: 0, failed: 0, running: 0 };
  for (const i of instances) counts[i.result] += 1;
  return counts;
}

function group(instances) {
  const groups = [];
  for (const i of instances) {
    let g = groups.find((x) => x.result === i.result && x.reason === i.reason);
    if (!g) groups.push((g = { result: i.result, reason: i.reason, recoveryInstanceIDs: [] }));
    g.recoveryInstanceIDs.push(i.recoveryInstanceID);
  }
  return groups;
}

/** Asserts where the execution ended, showing its error if it failed elsewhere. */
function assertEnded(run, state) {
  const why = run.status === "FAILED" ? `: ${run.error}: ${run.cause}` : "";
  assert.equal(run.state, state, `ended in ${run.state} (${run.status})${why}`);
}

// Recovery instance ids as long as real ones (19 characters): the size limits are tested honestly.
const ids = (prefix, count) => Array.from({ length: count }, (_, i) => `i-${prefix}${String(i + 1).padStart(15, "0")}`);
const launchCalls = (fake) => fake.calls.filter((c) => (c.detail ?? c).action !== "track");
const trackCalls = (fake) => fake.calls.filter((c) => c.action === "track");

/** Every instance's result in the output, whichever way it is listed. */
function results(output) {
  const found = {};
  const add = (id, result, reason) => {
    assert.ok(!(id in found), `${id} listed twice`);
    found[id] = reason ? `${result}:${reason}` : result;
  };
  for (const job of output.jobs ?? []) {
    for (const i of job.instances ?? []) add(i.recoveryInstanceID, i.result, i.reason);
    for (const g of job.groups ?? []) for (const id of g.recoveryInstanceIDs) add(id, g.result, g.reason);
  }
  for (const g of output.groups ?? []) for (const id of g.recoveryInstanceIDs) add(id, g.result, g.reason);
  for (const g of output.notLaunched ?? []) for (const id of g.recoveryInstanceIDs) add(id, g.outcome, g.reason);
  return found;
}

/** Each job announced once, and the run summed up once. */
function assertEventsOnce(fake) {
  assert.deepEqual([...fake.events.jobCompleted].sort(), [...new Set(fake.events.jobCompleted)].sort());
  assert.equal(fake.events.runFinished.length, 1);
}

test("every ${...} in the definition is a DefinitionSubstitutions key of template.yaml", () => {
  const used = new Set([...aslText.matchAll(/\$\{([^}]+)\}/g)].map((m) => m[1]));
  assert.deepEqual([...used].sort(), templateSubstitutionKeys().sort());
});

test("all succeed: launch, track until every job is done, sum up", async () => {
  const input = sample("stepfunctions-task.json");
  const fake = fakeFunction({ jobSeconds: 300 });
  const run = await execute(definition(), input, fake);
  assertEnded(run, "FailbackComplete");
  const interval = templateDefault("TrackIntervalSeconds");
  assert.deepEqual(fake.calls[0], input);
  // Tracking calls until the 300 s jobs are done, then the final call with every job.
  const tracks = trackCalls(fake);
  const expectedTracks = Math.ceil((300 - 2) / (interval + 2)) + 1;
  assert.equal(tracks.length, expectedTracks);
  assert.deepEqual(tracks[0], { action: "track", runId: input.runId, jobIDs: ["drsjob-00100000000000000", "drsjob-00100000000000001"], reportedJobIDs: [] });
  const last = tracks.at(-1);
  assert.equal(last.final, true);
  assert.deepEqual(last.jobIDs, ["drsjob-00100000000000000", "drsjob-00100000000000001"]);
  assert.deepEqual(last.reportedJobIDs, last.jobIDs, "the jobs were announced before the final call");
  assert.deepEqual(last.notLaunched, []);
  assertEventsOnce(fake);
  assert.equal(fake.events.jobCompleted.length, 2);
  const out = run.output;
  assert.equal(out.runId, input.runId);
  assert.equal(out.complete, true);
  assert.equal(out.stoppedBy, null);
  assert.equal(out.rounds, 1);
  assert.equal(out.trackingCalls, expectedTracks);
  assert.deepEqual(out.counts, { succeeded: 3, failed: 0, running: 0, launched: 3, skipped: 0, rejected: 0, deferred: 0 });
  assert.deepEqual(Object.values(results(out)), ["succeeded", "succeeded", "succeeded"]);
  assert.deepEqual(out.finished, { succeeded: 3, failed: 0, running: 0, notLaunched: 0 });
});

test("some fail: the output and the summary say which, and why", async () => {
  const requested = ids("0a", 5);
  const fake = fakeFunction({ fails: { [requested[1]]: "CONVERSION_FAIL", [requested[4]]: "LAUNCH_FAILED" }, rejects: [requested[3]] });
  const run = await execute(definition(), { runId: "wave-2", recoveryInstanceIDs: requested }, fake);
  // A rejected instance is final: the run is complete.
  assertEnded(run, "FailbackComplete");
  assert.deepEqual(results(run.output), {
    [requested[0]]: "succeeded",
    [requested[1]]: "failed:CONVERSION_FAIL",
    [requested[2]]: "succeeded",
    [requested[3]]: "rejected:REFUSED_BY_DRS",
    [requested[4]]: "failed:LAUNCH_FAILED",
  });
  assert.deepEqual(run.output.finished, { succeeded: 2, failed: 2, running: 0, notLaunched: 1 });
  assertEventsOnce(fake);
});

test("quota-bound: the deferred go again as jobs finish, with the run id and tags, until every instance is final", async () => {
  const requested = ids("0b", 10);
  const tags = { Wave: "4" };
  const fake = fakeFunction({ capacity: 4, jobSize: 2, jobSeconds: 600 });
  const run = await execute(definition(), { recoveryInstanceIDs: requested, tags }, fake);
  assertEnded(run, "FailbackComplete");
  const launches = launchCalls(fake);
  // 4 fit at a time: three rounds, each after the jobs before it finished.
  assert.equal(launches.length, 3);
  assert.deepEqual(launches[0], { recoveryInstanceIDs: requested, tags, runId: "test" });
  assert.deepEqual(launches[1], { recoveryInstanceIDs: requested.slice(4), runId: "test", tags });
  assert.deepEqual(launches[2], { recoveryInstanceIDs: requested.slice(8), runId: "test", tags });
  // A round is sent only right after a tracking call that saw a job finish.
  for (let i = 1; i < fake.calls.length; i++) {
    if (fake.calls[i].action === "track") continue;
    const before = fake.calls[i - 1];
    assert.equal(before.action, "track");
  }
  assert.equal(run.output.rounds, 3);
  assert.deepEqual(run.output.counts, { succeeded: 10, failed: 0, running: 0, launched: 10, skipped: 0, rejected: 0, deferred: 0 });
  assert.equal(Object.keys(results(run.output)).length, 10);
  assertEventsOnce(fake);
  assert.equal(fake.events.jobCompleted.length, 5);
  // The pipeline kept the quota busy: at most one tracking interval lost per wave.
  const interval = templateDefault("TrackIntervalSeconds");
  assert.ok(run.elapsed <= 3 * (600 + interval + 10), `${run.elapsed} s`);
});

test("the time limit ends tracking with what is known: running instances listed as such", async () => {
  const requested = ids("0c", 4);
  const fake = fakeFunction({ capacity: 2, jobSeconds: 7200 });
  const run = await execute(definition({ TimeLimitSeconds: 1800, TrackIntervalSeconds: 60 }), { runId: "wave-3", recoveryInstanceIDs: requested }, fake);
  assertEnded(run, "FailbackIncomplete");
  assert.equal(run.output.stoppedBy, "TIME_LIMIT");
  assert.equal(run.output.complete, false);
  assert.deepEqual(run.output.counts, { succeeded: 0, failed: 0, running: 2, launched: 2, skipped: 0, rejected: 0, deferred: 2 });
  assert.deepEqual(run.output.deferredRecoveryInstanceIDs, requested.slice(2));
  assert.deepEqual(results(run.output), {
    [requested[0]]: "running",
    [requested[1]]: "running",
    [requested[2]]: "deferred:QUOTA",
    [requested[3]]: "deferred:QUOTA",
  });
  // Polling is bounded: one call per interval until the limit, then the final one.
  assert.ok(trackCalls(fake).length <= Math.ceil(1800 / 60) + 1, `${trackCalls(fake).length} tracking calls`);
  assert.ok(run.elapsed >= 1800 && run.elapsed < 1800 + 60 + 10, `${run.elapsed} s`);
  assert.deepEqual(run.output.finished, { succeeded: 0, failed: 0, running: 2, notLaunched: 2 });
});

test("max rounds reached: the rest stays deferred, safe to send again", async () => {
  const requested = ids("0d", 6);
  const fake = fakeFunction({ capacity: 2, jobSize: 2, jobSeconds: 100 });
  const run = await execute(definition({ MaxRounds: 2 }), { runId: "wave-5", recoveryInstanceIDs: requested }, fake);
  assertEnded(run, "FailbackIncomplete");
  assert.equal(run.output.stoppedBy, "MAX_ROUNDS");
  assert.equal(launchCalls(fake).length, 2);
  assert.deepEqual(run.output.deferredRecoveryInstanceIDs, requested.slice(4));
  assert.deepEqual(run.output.counts, { succeeded: 4, failed: 0, running: 0, launched: 4, skipped: 0, rejected: 0, deferred: 2 });
  assert.deepEqual(trackCalls(fake).at(-1).notLaunched, [{ outcome: "deferred", reason: "QUOTA", recoveryInstanceIDs: requested.slice(4) }]);
});

test("a dry run plans and ends: one invocation", async () => {
  const input = sample("dry-run.json");
  const fake = fakeFunction();
  const run = await execute(definition(), input, fake);
  assertEnded(run, "DryRunPlanned");
  assert.deepEqual(fake.calls, [input]);
  assert.deepEqual(run.output, {
    runId: "wave-3-plan",
    dryRun: true,
    complete: false,
    rounds: 1,
    counts: { launched: 0, skipped: 0, rejected: 0, deferred: 2 },
    plannedJobSizes: [2],
    notLaunched: [{ outcome: "deferred", reason: "DRY_RUN", recoveryInstanceIDs: input.recoveryInstanceIDs }],
  });
});

test("an EventBridge event as input: every call is a direct request with the event id as run id", async () => {
  const input = sample("eventbridge-failback-request.json");
  const fake = fakeFunction({ capacity: 4 });
  const run = await execute(definition(), input, fake);
  assertEnded(run, "FailbackComplete");
  assert.deepEqual(fake.calls[0], { ...input.detail, runId: input.id });
  const second = launchCalls(fake)[1];
  assert.deepEqual(second, { recoveryInstanceIDs: input.detail.recoveryInstanceIDs.slice(4), runId: input.id, tags: input.detail.tags });
  assert.ok(trackCalls(fake).every((c) => c.runId === input.id));
  assert.equal(run.output.runId, input.id);
});

test("deferred source servers go again as source servers, deferred recovery instances as such", async () => {
  const instances = ids("11", 2);
  const sources = ["s-0123456789abcdef0", "s-0123456789abcdef1"];
  const input = { runId: "wave-7", recoveryInstanceIDs: instances, sourceServerIDs: sources };
  const fake = fakeFunction({ capacity: 1, jobSize: 1, jobSeconds: 60 });
  const run = await execute(definition(), input, fake);
  assertEnded(run, "FailbackComplete");
  const launches = launchCalls(fake);
  assert.deepEqual(launches[1], { recoveryInstanceIDs: [instances[1]], sourceServerIDs: sources, runId: "wave-7" });
  assert.deepEqual(launches[2], { sourceServerIDs: sources, runId: "wave-7" });
});

test("a Lambda service error is retried; the function's errors before any job end the run", async () => {
  let serviceErrors = 0;
  const fake = fakeFunction({
    error: (n) => {
      if (serviceErrors++ === 0) return new StatesError("Lambda.ServiceException", "try again");
      return functionError("DrsAccessDenied", "drs:StartFailbackLaunch denied");
    },
  });
  const run = await execute(definition(), { runId: "wave-6", recoveryInstanceIDs: ids("10", 2) }, fake);
  assertEnded(run, "DrsNotUsable");
  assert.equal(run.error, "DrsAccessDenied");
  assert.match(run.cause, /drs:StartFailbackLaunch denied/);
  assert.equal(fake.calls.length, 2);
  assert.deepEqual(fake.calls[0], fake.calls[1]);

  const refusedRun = await execute(definition(), sample("invalid-misspelt-field.json"), fakeFunction());
  assertEnded(refusedRun, "RequestRefused");
  assert.equal(refusedRun.error, "InvalidFailbackRequest");

  const broken = fakeFunction({ error: () => new StatesError("Lambda.Unknown", "crashed") });
  const brokenRun = await execute(definition(), { recoveryInstanceIDs: ids("12", 1) }, broken);
  assertEnded(brokenRun, "FailbackErrored");
});

test("a launch error after jobs exist stops launching, and the jobs are still tracked to the end", async () => {
  const requested = ids("13", 6);
  const fake = fakeFunction({
    capacity: 2,
    jobSeconds: 120,
    error: (n, body) => (body.action !== "track" && n > 1 ? functionError("DrsAccessDenied", "denied now") : undefined),
  });
  const run = await execute(definition(), { runId: "wave-8", recoveryInstanceIDs: requested }, fake);
  assertEnded(run, "FailbackIncomplete");
  assert.equal(run.output.stoppedBy, "LAUNCH_ERROR");
  assert.equal(run.output.launchError.Error, "DrsAccessDenied");
  assert.equal(launchCalls(fake).length, 2, "no round after the failed one");
  assert.deepEqual(run.output.counts.succeeded, 2);
  assert.deepEqual(run.output.deferredRecoveryInstanceIDs, requested.slice(2));
  assertEventsOnce(fake);
});

test("a failing tracking call is tried again at the next interval; three in a row sum the run up", async () => {
  let trackFailures = 0;
  const flaky = fakeFunction({
    error: (n, body) => (body.action === "track" && !body.final && trackFailures++ < 2 ? functionError("DrsThrottled", "slow down") : undefined),
    jobSeconds: 30,
  });
  const run = await execute(definition(), { runId: "wave-9", recoveryInstanceIDs: ids("14", 2) }, flaky);
  assertEnded(run, "FailbackComplete");
  assert.equal(run.output.stoppedBy, null);
  assert.equal(trackCalls(flaky).filter((c) => !c.final).length, 3, "two failed, then the one that saw the job done");

  const broken = fakeFunction({
    error: (n, body) => (body.action === "track" && !body.final ? new StatesError("Lambda.Unknown", "crashed") : undefined),
    jobSeconds: 30,
  });
  const stopped = await execute(definition(), { runId: "wave-9b", recoveryInstanceIDs: ids("16", 2) }, broken);
  assertEnded(stopped, "FailbackIncomplete");
  assert.equal(stopped.output.stoppedBy, "TRACKING_ERROR");
  assert.equal(stopped.output.trackingError.Error, "Lambda.Unknown");
  // Three failed calls, each after its two retries, then the final call, which succeeds.
  assert.equal(trackCalls(broken).filter((c) => !c.final).length, 3 * 3);
  assert.equal(stopped.output.counts.succeeded, 2, "the final call still reads every job");
});

test("the final call is retried while DRS cannot be read; if it keeps failing the run fails, naming the error", async () => {
  let readFailures = 0;
  const slow = fakeFunction({
    error: (n, body) => (body.final && readFailures++ < 2 ? functionError("DrsReadFailed", "DRS jobs could not be read") : undefined),
  });
  const run = await execute(definition(), { runId: "wave-10", recoveryInstanceIDs: ids("15", 2) }, slow);
  assertEnded(run, "FailbackComplete");
  assert.equal(trackCalls(slow).filter((c) => c.final).length, 3);
  assertEventsOnce(slow);

  const down = fakeFunction({ error: (n, body) => (body.final ? new StatesError("Lambda.Unknown", "crashed") : undefined) });
  const failed = await execute(definition(), { runId: "wave-11", recoveryInstanceIDs: ids("17", 2) }, down);
  assertEnded(failed, "TrackingFailed");
  assert.equal(failed.error, "Lambda.Unknown");
});

test("a run id that is null or not a string is not taken: the event id is", async () => {
  const input = sample("eventbridge-failback-request.json");
  const fake = fakeFunction();
  const run = await execute(definition(), { ...input, detail: { ...input.detail, runId: null } }, fake);
  assertEnded(run, "FailbackComplete");
  assert.equal(fake.calls[0].runId, input.id);
  assert.ok(trackCalls(fake).every((c) => c.runId === input.id));
});

test("the largest request: 5000 ids through a quota of 500 stay within every state and variable limit", async () => {
  const requested = ids("1a", 5000);
  const fails = Object.fromEntries(requested.filter((_, i) => i % 7 === 0).map((id) => [id, "CONVERSION_FAIL"]));
  const fake = fakeFunction({ capacity: 500, jobSize: 100, jobSeconds: 1200, fails });
  const run = await execute(definition(), { runId: "wave-big", recoveryInstanceIDs: requested }, fake);
  assertEnded(run, "FailbackComplete");
  assert.equal(run.output.rounds, 10);
  assert.equal(Object.keys(results(run.output)).length, 5000);
  assert.equal(run.output.counts.failed, Object.keys(fails).length);
  assert.equal(run.output.listing, "jobGroups");
  assert.ok(Buffer.byteLength(JSON.stringify(run.output)) < 256 * 1024);
  assertEventsOnce(fake);
  assert.equal(fake.events.jobCompleted.length, 50);
});
