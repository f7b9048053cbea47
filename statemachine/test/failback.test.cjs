// Runs statemachine/failback.asl.json, with the substitutions template.yaml passes it, against a
// fake drs-failback function that answers by the README's contract, round after round.
// Run with statemachine/test/run (installs jsonata 2.0.6 into a cache and calls node --test).
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
    RetryWaitSeconds: templateDefault("RetryWaitSeconds"),
    MaxRounds: templateDefault("MaxRounds"),
    ...overrides,
  });
}

const functionError = (errorType, errorMessage) =>
  new StatesError(errorType, JSON.stringify({ errorType, errorMessage }));

/**
 * A fake drs-failback: refuses what the real one refuses for shape, and answers round `n` (1-based)
 * with `plan(n, ids)`: { launch, reject } counts taken from the front of the request, the rest
 * deferred (QUOTA), or an error to throw. Jobs hold at most `jobSize` (default 2) instances.
 * Records every payload.
 */
function fakeFunction(plan) {
  const calls = [];
  const invoke = async (resource, args) => {
    assert.equal(resource, "arn:aws:states:::lambda:invoke");
    assert.equal(args.FunctionName, FUNCTION_ARN);
    const payload = args.Payload;
    calls.push(payload);
    const n = calls.length;
    const body = "detail-type" in payload && "detail" in payload ? payload.detail : payload;
    for (const key of Object.keys(body)) {
      if (!["recoveryInstanceIDs", "sourceServerIDs", "tags", "runId", "dryRun"].includes(key)) {
        throw functionError("InvalidFailbackRequest", `invalid failback request: unknown field ${key}`);
      }
    }
    const ids = [...(body.recoveryInstanceIDs ?? []), ...(body.sourceServerIDs ?? [])];
    if (ids.length === 0 || !ids.every((id) => typeof id === "string")) {
      throw functionError("InvalidFailbackRequest", "invalid failback request: recoveryInstanceIDs and sourceServerIDs must hold ids");
    }
    if ("tags" in body && (typeof body.tags !== "object" || body.tags === null || Array.isArray(body.tags))) {
      throw functionError("InvalidFailbackRequest", "invalid failback request: tags must be an object");
    }
    const step = plan(n, ids, body);
    if (step instanceof Error) throw step;
    const runId = body.runId ?? (payload === body ? "generated-run-id" : payload.id);
    if (body.dryRun) {
      return lambdaResult({
        runId, dryRun: true, complete: false, requested: ids.length, duplicatesCollapsed: 0,
        counts: { launched: 0, skipped: 0, rejected: 0, deferred: ids.length },
        jobs: [],
        notLaunched: [{ outcome: "deferred", reason: "DRY_RUN", recoveryInstanceIDs: ids }],
        deferredRecoveryInstanceIDs: ids.filter((id) => !id.startsWith("s-")),
        deferredSourceServerIDs: ids.filter((id) => id.startsWith("s-")),
        plannedJobSizes: [ids.length],
        events: { published: 1, undelivered: 0 },
      });
    }
    const launched = ids.slice(0, step.launch);
    const rejected = ids.slice(step.launch, step.launch + (step.reject ?? 0));
    const deferred = ids.slice(step.launch + (step.reject ?? 0));
    const jobs = [];
    const jobSize = step.jobSize ?? 2;
    for (let i = 0; i < launched.length; i += jobSize) {
      const jobID = `drsjob-${String(n).padStart(2, "0")}${String(i / jobSize).padStart(15, "0")}`;
      jobs.push({
        jobID,
        arn: `arn:aws:drs:us-east-1:111122223333:job/${jobID}`,
        status: "PENDING",
        recoveryInstanceIDs: launched.slice(i, i + jobSize),
      });
    }
    const notLaunched = [];
    if (rejected.length) notLaunched.push({ outcome: "rejected", reason: "REFUSED_BY_DRS", code: "ConflictException", recoveryInstanceIDs: rejected });
    if (deferred.length) notLaunched.push({ outcome: "deferred", reason: "QUOTA", recoveryInstanceIDs: deferred });
    return lambdaResult({
      runId, dryRun: false, complete: deferred.length === 0, requested: ids.length, duplicatesCollapsed: 0,
      counts: { launched: launched.length, skipped: 0, rejected: rejected.length, deferred: deferred.length },
      jobs, notLaunched,
      deferredRecoveryInstanceIDs: deferred.filter((id) => !id.startsWith("s-")),
      deferredSourceServerIDs: deferred.filter((id) => id.startsWith("s-")),
      events: { published: jobs.length + 2, undelivered: 0 },
    });
  };
  return { invoke, calls };
}

// What lambda:invoke returns to the state machine.
const lambdaResult = (answer) => ({ ExecutedVersion: "$LATEST", Payload: answer, StatusCode: 200 });

/** Asserts where the execution ended, showing its error if it failed elsewhere. */
function assertEnded(run, state) {
  const why = run.status === "FAILED" ? `: ${run.error}: ${run.cause}` : "";
  assert.equal(run.state, state, `ended in ${run.state} (${run.status})${why}`);
}

const ids = (prefix, count) => Array.from({ length: count }, (_, i) => `i-${prefix}${String(i + 1).padStart(8, "0")}`);

test("every ${...} in the definition is a DefinitionSubstitutions key of template.yaml", () => {
  const used = new Set([...aslText.matchAll(/\$\{([^}]+)\}/g)].map((m) => m[1]));
  assert.deepEqual([...used].sort(), templateSubstitutionKeys().sort());
});

test("complete on round 1: one invocation with the request as given", async () => {
  const input = sample("stepfunctions-task.json");
  const fake = fakeFunction(() => ({ launch: 3 }));
  const run = await execute(definition(), input, fake);
  assertEnded(run, "FailbackComplete");
  assert.deepEqual(fake.calls, [input]);
  assert.deepEqual(run.waits, []);
  assert.deepEqual(run.output, {
    runId: "wave-2-2026-11-27",
    dryRun: false,
    complete: true,
    rounds: 1,
    counts: { launched: 3, skipped: 0, rejected: 0, deferred: 0 },
    jobIDs: ["drsjob-01000000000000000", "drsjob-01000000000000001"],
    deferredRecoveryInstanceIDs: [],
    deferredSourceServerIDs: [],
    plannedJobSizes: null,
  });
});

test("incomplete, then complete on round 2: the deferred ids go again with the run id and tags", async () => {
  const requested = ids("0d", 5);
  const input = { recoveryInstanceIDs: requested, tags: { Wave: "4" } }; // no runId
  const fake = fakeFunction((n) => (n === 1 ? { launch: 3, reject: 1 } : { launch: 1 }));
  const run = await execute(definition(), input, fake);
  assertEnded(run, "FailbackComplete");
  assert.equal(fake.calls.length, 2);
  // Without a runId, the execution's name is the run id, from the first round on: a retried
  // first round is the same run.
  assert.deepEqual(fake.calls[0], { ...input, runId: "test" });
  // A single deferred id stays a list (JSONata keeps one-element arrays as arrays).
  assert.deepEqual(fake.calls[1], { recoveryInstanceIDs: [requested[4]], runId: "test", tags: { Wave: "4" } });
  assert.deepEqual(run.waits, [templateDefault("RetryWaitSeconds")]);
  assert.deepEqual(run.output, {
    runId: "test",
    dryRun: false,
    complete: true,
    rounds: 2,
    counts: { launched: 4, skipped: 0, rejected: 1, deferred: 0 },
    jobIDs: ["drsjob-01000000000000000", "drsjob-01000000000000001", "drsjob-02000000000000000"],
    deferredRecoveryInstanceIDs: [],
    deferredSourceServerIDs: [],
    plannedJobSizes: null,
  });
});

test("max rounds reached: stops after MaxRounds invocations, still deferred ones in the output", async () => {
  const requested = ids("0e", 6);
  const input = { runId: "wave-5", recoveryInstanceIDs: requested }; // no tags
  const fake = fakeFunction(() => ({ launch: 1 }));
  const run = await execute(definition({ MaxRounds: 3, RetryWaitSeconds: 5 }), input, fake);
  assertEnded(run, "FailbackIncomplete");
  assert.deepEqual(fake.calls, [
    input,
    { recoveryInstanceIDs: requested.slice(1), runId: "wave-5" }, // no tags field at all
    { recoveryInstanceIDs: requested.slice(2), runId: "wave-5" },
  ]);
  assert.deepEqual(run.waits, [5, 5]);
  assert.deepEqual(run.output, {
    runId: "wave-5",
    dryRun: false,
    complete: false,
    rounds: 3,
    counts: { launched: 3, skipped: 0, rejected: 0, deferred: 3 },
    jobIDs: ["drsjob-01000000000000000", "drsjob-02000000000000000", "drsjob-03000000000000000"],
    deferredRecoveryInstanceIDs: requested.slice(3),
    deferredSourceServerIDs: [],
    plannedJobSizes: null,
  });
});

test("MaxRounds 1: a single invocation, as before the loop existed", async () => {
  const fake = fakeFunction(() => ({ launch: 0 }));
  const run = await execute(definition({ MaxRounds: 1 }), { recoveryInstanceIDs: ids("0f", 2) }, fake);
  assertEnded(run, "FailbackIncomplete");
  assert.equal(fake.calls.length, 1);
  assert.deepEqual(run.output.counts, { launched: 0, skipped: 0, rejected: 0, deferred: 2 });
});

test("a dry run does not loop", async () => {
  const input = sample("dry-run.json");
  const fake = fakeFunction(() => ({}));
  const run = await execute(definition(), input, fake);
  assertEnded(run, "DryRunPlanned");
  assert.deepEqual(fake.calls, [input]);
  assert.deepEqual(run.output, {
    runId: "wave-3-plan",
    dryRun: true,
    complete: false,
    rounds: 1,
    counts: { launched: 0, skipped: 0, rejected: 0, deferred: 2 },
    jobIDs: [],
    deferredRecoveryInstanceIDs: input.recoveryInstanceIDs,
    deferredSourceServerIDs: [],
    plannedJobSizes: [2],
  });
});

test("an EventBridge event as input: every round is a direct request with the event id as run id", async () => {
  const input = sample("eventbridge-failback-request.json");
  const fake = fakeFunction((n) => ({ launch: n === 1 ? 4 : 2 }));
  const run = await execute(definition(), input, fake);
  assertEnded(run, "FailbackComplete");
  assert.deepEqual(fake.calls[0], { ...input.detail, runId: input.id });
  assert.deepEqual(fake.calls[1], {
    recoveryInstanceIDs: input.detail.recoveryInstanceIDs.slice(4),
    runId: input.id,
    tags: input.detail.tags,
  });
  assert.equal(run.output.runId, input.id);
  assert.deepEqual(run.output.counts, { launched: 6, skipped: 0, rejected: 0, deferred: 0 });
});

test("deferred source servers go again as source servers, deferred recovery instances as such", async () => {
  const instances = ids("11", 2);
  const sources = ["s-0123456789abcdef0", "s-0123456789abcdef1"];
  const input = { runId: "wave-7", recoveryInstanceIDs: instances, sourceServerIDs: sources };
  // Round 1 launches the first instance; the other and both source servers are deferred.
  const fake = fakeFunction((n) => ({ launch: n === 1 ? 1 : 3 }));
  const run = await execute(definition(), input, fake);
  assertEnded(run, "FailbackComplete");
  assert.deepEqual(fake.calls[1], { recoveryInstanceIDs: [instances[1]], sourceServerIDs: sources, runId: "wave-7" });
  // Only source servers left: no empty recoveryInstanceIDs list.
  const onlySources = fakeFunction((n) => ({ launch: n === 1 ? 2 : 2 }));
  const second = await execute(definition(), input, onlySources);
  assertEnded(second, "FailbackComplete");
  assert.deepEqual(onlySources.calls[1], { sourceServerIDs: sources, runId: "wave-7" });
});

test("a Lambda service error is retried within the round; the function's errors end the run", async () => {
  const requested = ids("10", 4);
  let serviceErrors = 0;
  const fake = fakeFunction((n) => {
    if (n === 1) return { launch: 2 };
    if (serviceErrors++ === 0) return new StatesError("Lambda.ServiceException", "try again");
    return functionError("DrsAccessDenied", "drs:StartFailbackLaunch denied");
  });
  const run = await execute(definition(), { runId: "wave-6", recoveryInstanceIDs: requested }, fake);
  assertEnded(run, "DrsNotUsable");
  assert.equal(run.status, "FAILED");
  assert.equal(run.error, "DrsAccessDenied");
  assert.match(run.cause, /drs:StartFailbackLaunch denied/);
  // Round 2 was sent twice (the retry), both times with the same request.
  assert.equal(fake.calls.length, 3);
  assert.deepEqual(fake.calls[1], fake.calls[2]);
});

test("a refused first request fails as before, with the function's error", async () => {
  const fake = fakeFunction(() => ({ launch: 1 }));
  const run = await execute(definition(), sample("invalid-misspelt-field.json"), fake);
  assertEnded(run, "RequestRefused");
  assert.equal(run.error, "InvalidFailbackRequest");
});

test("the largest request: 5000 ids over 10 rounds stay within the 256 KiB state limit", async () => {
  const requested = ids("1a", 5000);
  const fake = fakeFunction(() => ({ launch: 500, jobSize: 100 }));
  const run = await execute(definition(), { runId: "wave-big", recoveryInstanceIDs: requested }, fake);
  assertEnded(run, "FailbackComplete");
  assert.equal(run.output.rounds, 10);
  assert.equal(run.output.jobIDs.length, 50);
  assert.deepEqual(run.output.counts, { launched: 5000, skipped: 0, rejected: 0, deferred: 0 });
});
