// Runs the plan (statemachine/failback.asl.json) and its step executions (statemachine/step.asl.json),
// with the substitutions template.yaml passes them, against a
// fake drs-failback function that answers plan, launch and track requests by the contract of
// docs/requests.md and docs/plans.md, over a small model of DRS: jobs that take time on the interpreter's
// virtual clock, a quota of servers in active jobs, per-instance results, recovery instances with
// tags (for selectors) and source servers, and the jobs of a run remembered across executions (a
// redrive). Run with statemachine/test/run (installs jsonata 2.0.6 into a cache and calls node
// --test).
"use strict";

const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const { test } = require("node:test");

const { execute: executeOne, substitute, stepFunctions, StatesError } = require("./asl-jsonata.cjs");

const PLAN_ARN = "arn:aws:states:us-east-1:111122223333:stateMachine:drs-failback-plan";
const STEP_ARN = "arn:aws:states:us-east-1:111122223333:stateMachine:drs-failback-step";

/**
 * Runs a failback to its end as Step Functions would: the plan's execution, each step a child
 * execution it waits for (a step handed over goes on in its next part). A redrive (options.redrive,
 * the failed run) is of the same plan execution, over the same step executions; `sfnFaults` are
 * Step Functions' own (stepFunctions()). The result is the
 * plan's, its trace, waits and events holding its step executions' (each trace entry of a step
 * execution names it), with `sfn` (Step Functions: every execution) and `steps` (each step
 * execution's own result, its `history` included, in the order they started).
 */
async function execute(defs, input, options = {}) {
  const sfn = options.redrive?.sfn ?? options.sfn ?? stepFunctions({ [PLAN_ARN]: defs.plan, [STEP_ARN]: defs.step }, options.sfnFaults);
  const run = await executeOne(defs.plan, input, { ...options, sfn, stateMachineArn: PLAN_ARN });
  const steps = [...sfn.executions.values()].filter((e) => e.stateMachineArn === STEP_ARN);
  // Each step's places: the child executions of the plan's Distributed Map.
  const places = [...sfn.executions.values()].filter((e) => e.stateMachineArn === `${PLAN_ARN}/Places`);
  return { ...run, sfn, steps, places };
}
/** A step execution by its name's end (-s<index>-g<place>-p<part>), as it last ended. */
const stepExecution = (run, index, part = 1, place = 0) => run.steps.find((e) => e.executionArn.endsWith(`-s${index}-g${place}-p${part}`));

const repo = path.resolve(__dirname, "..", "..");
const planText = fs.readFileSync(path.join(repo, "statemachine", "failback.asl.json"), "utf8");
const stepText = fs.readFileSync(path.join(repo, "statemachine", "step.asl.json"), "utf8");
const rehearsalText = fs.readFileSync(path.join(repo, "statemachine", "rehearsal.asl.json"), "utf8");
const templateText = fs.readFileSync(path.join(repo, "template.yaml"), "utf8");
const sample = (name) => JSON.parse(fs.readFileSync(path.join(repo, "events", name), "utf8"));

const FUNCTION_ARN = "arn:aws:lambda:us-east-1:111122223333:function:drs-failback";
const REHEARSAL_PARAMETER = "/drs-failback/rehearsal-plan";
const RESULT_BUS = "drs-failback-results"; // the bus the stack creates when ResultEventBusName is empty
const MAX_BYTES = 256 * 1024;

/** The Default of a parameter of template.yaml (a number for Number parameters). */
function templateDefault(parameter) {
  const m = new RegExp(`^  ${parameter}:\\n(?:    .*\\n)*?    Default: (.+)\\n`, "m").exec(templateText);
  assert.ok(m, `template.yaml has no parameter ${parameter} with a Default`);
  return /^\d+$/.test(m[1]) ? Number(m[1]) : m[1].replace(/^"(.*)"$/, "$1");
}

/** The keys of a state machine's DefinitionSubstitutions in template.yaml, by its DefinitionUri. */
function templateSubstitutionKeys(uri) {
  const m = new RegExp(`^      DefinitionUri: ${uri}\\n      DefinitionSubstitutions:\\n((?:        .*\\n)+)`, "m").exec(templateText);
  assert.ok(m, `template.yaml has no DefinitionSubstitutions for ${uri}`);
  return m[1].split("\n").filter(Boolean).map((line) => line.trim().split(":")[0]);
}

/** The plan's and the step's definitions, substituted as the stack does (`overrides` replace). */
function definition(overrides = {}) {
  const substitutions = {
    FailbackFunctionArn: FUNCTION_ARN,
    FunctionTimeoutSeconds: templateDefault("FunctionTimeoutSeconds"),
    TrackIntervalSeconds: templateDefault("TrackIntervalSeconds"),
    TimeLimitSeconds: templateDefault("TimeLimitSeconds"),
    MaxRounds: templateDefault("MaxRounds"),
    ApprovalTimeoutSeconds: templateDefault("ApprovalTimeoutSeconds"),
    ApprovalPendingAlarmSeconds: templateDefault("ApprovalPendingAlarmSeconds"),
    MetricsNamespace: templateDefault("MetricsNamespace"),
    ResultEventBusName: RESULT_BUS,
    EventSource: templateDefault("EventSource"),
    StepStateMachineArn: STEP_ARN,
    StepExecutionArnPrefix: `${STEP_ARN.replace(":stateMachine:", ":execution:")}:`,
    TargetConcurrency: templateDefault("TargetConcurrency"),
    ...overrides,
  };
  return { plan: substitute(planText, substitutions), step: substitute(stepText, substitutions), rehearsal: substitute(rehearsalText, { ...substitutions, RehearsalPlanParameter: REHEARSAL_PARAMETER }) };
}

/** What bounds a run's length, as the plan's execution sends it with its plan call (src/plan/duration.rs). */
const PLAN_LIMITS = {
  timeLimitSeconds: templateDefault("TimeLimitSeconds"),
  approvalTimeoutSeconds: templateDefault("ApprovalTimeoutSeconds"),
  runTimeoutSeconds: 90 * 24 * 3600,
  trackIntervalSeconds: templateDefault("TrackIntervalSeconds"),
};

const functionError = (errorType, errorMessage) =>
  new StatesError(errorType, JSON.stringify({ errorType, errorMessage }));
const refused = (message) => functionError("InvalidFailbackRequest", `invalid failback request: ${message}`);

const PLAN_FIELDS = ["action", "runId", "tags", "dryRun", "steps", "recoveryInstanceIDs", "sourceServerIDs", "limits", "finish"];
const FINISH_FIELDS = ["action", "runId", "step", "finishing", "dryRun", "sinceMillis", "calls", "intervalSeconds", "recoveryInstanceIDs"];
const STEP_FIELDS = ["name", "recoveryInstanceIDs", "sourceServerIDs", "selector", "critical", "maxFailed", "waitAfterSeconds", "approval", "waitForReadySeconds", "finish"];
const LAUNCH_FIELDS = ["recoveryInstanceIDs", "sourceServerIDs", "selector", "tags", "runId", "dryRun", "action", "step", "otherSteps", "loop", "waitForReadySeconds", "waiting", "target"];
const TRACK_FIELDS = ["action", "runId", "step", "critical", "maxFailed", "jobIDs", "reportedJobIDs", "final", "notLaunched", "loop", "heldByOtherSteps", "target"];
const JOB_ID = /^drsjob-[0-9a-zA-Z]{17}$/;
/**
 * What comes next, as the function decides it (src/launch/next.rs, src/track/end.rs), asked of the real decision:
 * drs-failback-decide (local/src/bin), built by statemachine/test/run. The fake answers like the
 * function but decides nothing of the step's course itself.
 */
const DECIDE = process.env.DRS_FAILBACK_DECIDE;
function decide(ask) {
  assert.ok(DECIDE, "DRS_FAILBACK_DECIDE names the drs-failback-decide binary (statemachine/test/run sets it)");
  const run = require("node:child_process").spawnSync(DECIDE, [], { input: JSON.stringify(ask) + "\n", encoding: "utf8" });
  assert.equal(run.status, 0, `drs-failback-decide: ${run.stderr}`);
  return JSON.parse(run.stdout);
}
/** The loop each launch and track call carries, checked as the function reads it. */
function checkLoop(body) {
  assert.ok(isObject(body.loop), "every launch and track call of a step carries its loop");
  const { limits, elapsedSeconds } = body.loop;
  assert.ok(isObject(limits) && Number.isInteger(limits.maxRounds) && Number.isInteger(limits.timeLimitSeconds) && Number.isInteger(limits.trackIntervalSeconds), "loop.limits");
  assert.ok(Number.isInteger(elapsedSeconds) && elapsedSeconds >= 0, "loop.elapsedSeconds");
  assert.ok(Number.isInteger(body.loop.executionSeconds) && Number.isInteger(body.loop.calls), "loop.executionSeconds, loop.calls");
}
/** The skip reason of an instance already failed back: it came back (src/track/verdict.rs). */
const ALREADY_FAILED_BACK = "FAILBACK_COMPLETED";
/** How many critical instances a verdict names (criticalFailedCount has them all). */
const CRITICAL_LISTED_MAX = 100;
/** An instance ARN's account and region and id; a bare id, the function's own. */
const ARN = /^arn:aws:drs:([a-z0-9-]+):(\d{12}):recovery-instance\/(i-[0-9a-f]+)$/;
const bareId = (id) => ARN.exec(id)?.[3] ?? id;
/** A step's ids by place: the bare ones, and each account and region's (in the order first named). */
function byPlace(list) {
  const home = [];
  const places = [];
  for (const id of list) {
    const m = ARN.exec(id);
    if (!m) {
      home.push(id);
      continue;
    }
    const target = { account: m[2], region: m[1] };
    const place = places.find((p) => p.target.account === target.account && p.target.region === target.region) ?? places[places.push({ target, ids: [] }) - 1];
    place.ids.push(m[3]);
  }
  return { home, places };
}
/** The time on the virtual clock, in seconds: the same scale across executions. */
const seconds = (clock) => Date.parse(clock.now()) / 1000;
const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);

// A source server and its recovery instance share their 17 characters: s-X <-> i-X.
const recoveryOf = (id) => (id.startsWith("s-") ? `i-${id.slice(2)}` : id);
const sourceOf = (id) => `s-${id.slice(2)}`;

/**
 * A fake drs-failback over a model of DRS. Options:
 * - `capacity`: servers in active jobs (the quota); `jobSize`: instances per job;
 * - `jobSeconds`: how long a job runs; `callSeconds`: how long each invocation takes;
 * - `fails`: { id: reason } instances whose launch fails (read when a job starts); `rejects`: ids
 *   refused at launch; `skips`: ids skipped at launch, a list (reason FAILBACK_COMPLETED: already
 *   failed back) or { id: reason } (the instance's failback state, NOT_FOUND, ...); `tags`: {
 *   recoveryInstanceID: {key: value} }, what selectors match;
 * - `readyAt`: { id: seconds } instances whose failback replication makes them ready that long
 *   after the run's first launch (Infinity: never): until then a launch that waits for readiness
 *   (waitForReadySeconds, the function's own word on whether the wait goes on) defers them
 *   REPLICATING, else skips them FAILBACK_NOT_READY_FOR_LAUNCH;
 * - `error(call, body)`: an error to throw instead of answering (or nothing);
 * - `crash(call, body)`: an error to throw after the call did its work (DRS accepted the launch,
 *   the jobs exist) but before it answered: the process died (Runtime.ExitError), the function
 *   timed out (Sandbox.Timedout), a panic, whatever Lambda names it. The state machine saw no
 *   outcome, so the instances may be sent again; the jobs stay.
 * Like the function, a launch finds the instances this run already launched (the jobs are
 * remembered across executions): they are reported launched in their job and not launched again,
 * unless their job failed them and the test marked them ready for launch again (`readyAgain`).
 * A step's tracking calls count each instance once, by its latest attempt (the job that launched
 * it last), and its last call decides the step's verdict as the function does (src/track/verdict.rs).
 * Records every payload (`calls`), the jobs, and the events the function would publish.
 */
function fakeFunction(options = {}) {
  const {
    capacity = Infinity,
    jobSize = 2,
    jobSeconds = 300,
    callSeconds = 2,
    fails = {},
    rejects = [],
    skips: skipsGiven = [],
    tags = {},
    readyAt = {},
    error = () => undefined,
    crash = () => undefined,
    gone = [],
  } = options;
  let firstLaunchAt;
  const skips = Array.isArray(skipsGiven) ? Object.fromEntries(skipsGiven.map((id) => [id, ALREADY_FAILED_BACK])) : skipsGiven;
  const calls = [];
  const jobs = new Map();
  const finished = [];
  const readyAgain = new Set();
  const events = { jobCompleted: [], stepFinished: [], runFinished: [] };
  let handled = new Set(); // instances with an outcome in this execution: each is sent at most once
  let jobCount = 0;

  const running = (now) => [...jobs.values()].filter((j) => now < j.started + jobSeconds);
  const inFlight = (now) => running(now).reduce((n, j) => n + j.ids.length, 0);
  const selected = (selector) =>
    Object.keys(tags).filter((id) => Object.entries(selector.tags).every(([k, v]) => tags[id][k] === v));

  function checkIds(body, where) {
    for (const field of ["recoveryInstanceIDs", "sourceServerIDs"]) {
      if (field in body && (!Array.isArray(body[field]) || body[field].length === 0 || !body[field].every((id) => typeof id === "string"))) {
        throw refused(`${where}${field} must be a non-empty list of ids`);
      }
    }
    if ("selector" in body) {
      const s = body.selector;
      if (!isObject(s) || Object.keys(s).join() !== "tags" || !isObject(s.tags) || Object.keys(s.tags).length === 0) {
        throw refused(`${where}selector must be {"tags": {...}}`);
      }
      if (selected(s).length === 0) throw refused(`${where}selector matches no recovery instance`);
    }
  }
  /** The step of otherSteps that names an instance (by itself or its source server), if any. */
  const heldBy = (body, id) =>
    (body.otherSteps ?? []).find((o) => [...(o.recoveryInstanceIDs ?? []), ...(o.sourceServerIDs ?? [])].map(recoveryOf).includes(id))?.step;
  /** The instances a request or step names: its ids, then its selector's (less those another step names), each once. */
  function resolveIds(body) {
    const named = [...(body.recoveryInstanceIDs ?? []), ...(body.sourceServerIDs ?? [])];
    const ids = [...named, ...(body.selector ? selected(body.selector).filter((id) => !heldBy(body, id)) : [])];
    const seen = new Set();
    return ids.filter((id) => !seen.has(recoveryOf(id)) && seen.add(recoveryOf(id)));
  }
  /** The selector's matches another step names: left to it, listed with that step. */
  function heldByOtherSteps(body) {
    const groups = [];
    for (const id of body.selector ? selected(body.selector) : []) {
      const step = heldBy(body, id);
      if (!step) continue;
      const group = groups.find((g) => g.step === step) ?? groups[groups.push({ step, recoveryInstanceIDs: [] }) - 1];
      group.recoveryInstanceIDs.push(id);
    }
    return groups.length ? { heldByOtherSteps: groups } : {};
  }
  // A dry run: the launchable ids planned in jobs (their DRY_RUN group left out of the answer, as
  // the function leaves it), the ones DRS no longer knows (`gone`) skipped NOT_FOUND.
  const dryRunOf = (all) => {
    const ids = all.filter((id) => !gone.includes(id));
    const missing = all.filter((id) => gone.includes(id));
    return {
      counts: { launched: 0, skipped: missing.length, rejected: 0, deferred: ids.length },
      plannedJobSizes: Array.from({ length: Math.ceil(ids.length / jobSize) }, (_, i) => Math.min(jobSize, ids.length - i * jobSize)),
      notLaunched: missing.length ? [{ outcome: "skipped", reason: "NOT_FOUND", recoveryInstanceIDs: missing }] : [],
    };
  };
  /** A rehearsal: the stored plan's text read, dry-run, and judged by the function's own judgment. */
  function rehearsal(body) {
    for (const key of Object.keys(body)) {
      if (!["action", "runId", "plan", "limits"].includes(key)) throw refused(`unknown field ${key}`);
    }
    let stored;
    try {
      stored = JSON.parse(body.plan);
    } catch {
      throw refused("plan is not JSON: store the plan as a JSON object");
    }
    if (!isObject(stored)) throw refused("plan must be a JSON object: a plan or a plain request");
    const { runId, dryRun, action, limits, ...given } = stored;
    const answer = plan({ ...given, action: "plan", runId: body.runId, dryRun: true, limits: body.limits });
    return decide({ after: "rehearsal", runId: body.runId, steps: answer.steps });
  }

  function plan(body) {
    for (const key of Object.keys(body)) {
      if (!PLAN_FIELDS.includes(key)) throw refused(`unknown field ${key}`);
    }
    if (typeof body.runId !== "string") throw refused("runId is required");
    if ("dryRun" in body && typeof body.dryRun !== "boolean") throw refused("dryRun must be a boolean");
    if ("tags" in body && !isObject(body.tags)) throw refused("tags must be an object");
    let steps = body.steps;
    if (steps === undefined) {
      if (!("recoveryInstanceIDs" in body) && !("sourceServerIDs" in body)) throw refused("recoveryInstanceIDs or sourceServerIDs or steps is required");
      checkIds(body, "");
      steps = [{ name: "failback", ...Object.fromEntries(["recoveryInstanceIDs", "sourceServerIDs"].filter((f) => f in body).map((f) => [f, body[f]])) }];
    } else {
      if ("recoveryInstanceIDs" in body || "sourceServerIDs" in body) throw refused("steps and recoveryInstanceIDs/sourceServerIDs exclude each other");
      if (!Array.isArray(steps) || steps.length === 0) throw refused("steps must be a non-empty list");
    }
    const names = new Set();
    const normalized = steps.map((step, i) => {
      const where = `steps[${i}] (${step.name}).`;
      for (const key of Object.keys(step)) {
        if (!STEP_FIELDS.includes(key)) throw refused(`${where}${key} is not a step field`);
      }
      if (typeof step.name !== "string" || names.has(step.name)) throw refused(`steps[${i}].name must be a unique string`);
      names.add(step.name);
      if (!["recoveryInstanceIDs", "sourceServerIDs", "selector"].some((f) => f in step)) throw refused(`${where}names no instance`);
      checkIds(step, where);
      // Its places, as the function groups them (src/request/groups.rs): instances named by ARN
      // in their account and region, the rest in the function's own.
      const { home: named, places } = byPlace(step.recoveryInstanceIDs ?? []);
      const own = { ...step, ...(named.length ? { recoveryInstanceIDs: named } : {}) };
      if (!named.length) delete own.recoveryInstanceIDs;
      const ids = resolveIds(own);
      const critical = (ids) => (Array.isArray(step.critical) ? step.critical.map(bareId).filter((id) => ids.includes(id)) : step.critical ?? false);
      const hasOwn = ["recoveryInstanceIDs", "sourceServerIDs", "selector"].some((f) => f in own);
      const group = {
        ...Object.fromEntries(["recoveryInstanceIDs", "sourceServerIDs", "selector"].filter((f) => f in own).map((f) => [f, own[f]])),
        critical: Array.isArray(step.critical) && places.length ? critical(ids) : step.critical ?? false,
        instances: ids.length,
      };
      const remote = places.map(({ target, ids: there }) => ({ target, recoveryInstanceIDs: there, critical: critical(there), instances: there.length }));
      const groups = [...(hasOwn ? [group] : []), ...remote];
      const total = groups.reduce((n, g) => n + g.instances, 0);
      const out = {
        name: step.name,
        maxFailed: step.maxFailed ?? null,
        waitAfterSeconds: step.waitAfterSeconds ?? 0,
        approval: step.approval ?? false,
        waitForReadySeconds: step.waitForReadySeconds ?? 0,
        ...("finish" in step ? { finish: step.finish } : {}),
        instances: total,
      };
      if (!body.dryRun) return { ...out, groups };
      const { counts, ...planned } = dryRunOf(ids);
      return { ...out, counts, groups: [{ ...group, counts, ...planned }] };
    });
    if ("finish" in body && !["disconnect", "terminate"].includes(body.finish)) throw refused("finish must be \"disconnect\" or \"terminate\"");
    return { runId: body.runId, dryRun: body.dryRun ?? false, steps: normalized, ...("finish" in body ? { finish: body.finish } : {}) };
  }

  /**
   * The finishing of a run, as the function does it over the model: the run's instances that came
   * back (their latest job done, not failed) are eligible, the failed ones not (FAILBACK_ERROR); a
   * dry run lists them; a real call disconnects at once, or starts one terminate job that is
   * TERMINATED by the next call. Records what it finished (`finished`).
   */
  function finish(body, clock) {
    for (const key of Object.keys(body)) {
      if (!FINISH_FIELDS.includes(key)) throw refused(`unknown field ${key}`);
    }
    assert.ok(["disconnect", "terminate"].includes(body.finishing), "finishing");
    assert.ok(Number.isInteger(body.sinceMillis) && body.sinceMillis <= Date.parse(clock.now()), "sinceMillis: the run's start");
    assert.ok(Number.isInteger(body.calls) && Number.isInteger(body.intervalSeconds), "calls, intervalSeconds");
    const now = seconds(clock);
    const latest = new Map();
    for (const job of jobs.values()) if (job.runId === body.runId && (body.step === undefined || job.step === body.step)) for (const id of job.ids) latest.set(id, job);
    assert.equal(Array.isArray(body.recoveryInstanceIDs), !body.dryRun, "a real call carries what was approved, a dry run nothing");
    // Only what was approved is ever finished.
    const back = [...latest].filter(([id, job]) => now >= job.started + jobSeconds && !(id in job.fails)).map(([id]) => id).filter((id) => body.dryRun || body.recoveryInstanceIDs.includes(id));
    const failed = [...latest].filter(([id, job]) => id in job.fails).map(([id]) => id);
    const groups = [];
    const counts = { done: 0, failed: 0, running: 0, notEligible: failed.length, deferred: 0, planned: 0 };
    if (failed.length) groups.push({ result: "notEligible", reason: "FAILBACK_ERROR", recoveryInstanceIDs: failed });
    let next = { action: "done" };
    if (body.dryRun) {
      counts.planned = back.length;
      if (back.length) groups.push({ result: "planned", reason: `would ${body.finishing}`, recoveryInstanceIDs: back });
    } else if (body.finishing === "terminate" && body.calls === 0) {
      counts.running = back.length;
      finished.push(...back);
      groups.push({ result: "running", reason: "TERMINATED", jobID: "drsjob-terminate000000001", recoveryInstanceIDs: back });
      next = { action: "finish", waitSeconds: body.intervalSeconds };
    } else {
      counts.done = back.length;
      if (body.finishing === "disconnect") finished.push(...back);
      groups.push({ result: "done", reason: body.finishing === "terminate" ? "TERMINATED" : "DISCONNECTED", recoveryInstanceIDs: back });
    }
    const complete = counts.running === 0;
    return { runId: body.runId, finishing: body.finishing, dryRun: body.dryRun ?? false, complete, counts, groups, jobIDs: body.finishing === "terminate" && !body.dryRun ? ["drsjob-terminate000000001"] : [], next, events: { published: complete && !body.dryRun ? 1 : 0, undelivered: 0 } };
  }

  function nextAfterLaunch(body, jobCount, deferredCount, reasons) {
    checkLoop(body);
    return { next: decide({ after: "launch", loop: body.loop, jobs: jobCount, deferred: deferredCount, deferredReasons: reasons }) };
  }

  /** The job of this run that last launched an instance, if any. */
  function jobOf(runId, rid) {
    return [...jobs.values()].reverse().find((j) => j.runId === runId && j.ids.includes(rid));
  }

  function launch(body, clock) {
    for (const key of Object.keys(body)) {
      if (!LAUNCH_FIELDS.includes(key)) throw refused(`unknown field ${key}`);
    }
    if (body.action !== undefined && body.action !== "launch") throw refused(`action ${body.action}`);
    if ("step" in body && typeof body.step !== "string") throw refused("step must be a string");
    if (!["recoveryInstanceIDs", "sourceServerIDs", "selector"].some((f) => f in body)) throw refused("recoveryInstanceIDs and sourceServerIDs must hold ids");
    checkIds(body, "");
    if ("tags" in body && !isObject(body.tags)) throw refused("tags must be an object");
    const ids = resolveIds(body);
    const runId = body.runId ?? "generated-run-id";
    const step = body.step === undefined ? {} : { step: body.step };
    if (body.dryRun) {
      return {
        runId, ...step, dryRun: true, complete: false, requested: ids.length, duplicatesCollapsed: 0, jobs: [],
        ...dryRunOf(ids),
        deferredRecoveryInstanceIDs: ids.filter((id) => !id.startsWith("s-")),
        deferredSourceServerIDs: ids.filter((id) => id.startsWith("s-")),
        events: { published: 1, undelivered: 0 },
      };
    }
    for (const id of ids) {
      assert.ok(!handled.has(recoveryOf(id)), `${id} sent again after it had an outcome`);
    }
    const now = seconds(clock);
    // Pre-flight: an instance this run launched stays in its job, unless that job failed it and
    // DRS shows it ready for launch again.
    const earlier = new Map();
    for (const id of ids) {
      const job = jobOf(runId, recoveryOf(id));
      const relaunch = job && now >= job.started + jobSeconds && recoveryOf(id) in job.fails && readyAgain.has(recoveryOf(id));
      if (job && !relaunch) earlier.set(id, job);
    }
    const rejected = ids.filter((id) => !earlier.has(id) && rejects.includes(id));
    const skipped = ids.filter((id) => !earlier.has(id) && !rejects.includes(id) && id in skips);
    firstLaunchAt ??= now;
    const notReady = (id) => (readyAt[recoveryOf(id)] ?? 0) > now - firstLaunchAt;
    const candidates = ids.filter((id) => !earlier.has(id) && !rejects.includes(id) && !(id in skips));
    const waits = candidates.some(notReady) && decide({ after: "waits", seconds: body.waitForReadySeconds ?? 0, elapsed: body.loop?.elapsedSeconds ?? null });
    const waiting = waits ? candidates.filter(notReady) : [];
    const late = waits ? [] : candidates.filter(notReady);
    const launchable = candidates.filter((id) => !notReady(id));
    const free = Math.max(0, capacity - inFlight(now));
    const launched = launchable.slice(0, free);
    const deferred = launchable.slice(free);
    const newJobs = [];
    for (let i = 0; i < launched.length; i += jobSize) {
      const jobID = `drsjob-${String(jobCount++).padStart(17, "0")}`;
      const jobIds = launched.slice(i, i + jobSize).map(recoveryOf);
      const job = { jobID, ids: jobIds, started: now, runId, ...step, target: body.target ?? null, fails: Object.fromEntries(jobIds.filter((id) => id in fails).map((id) => [id, fails[id]])) };
      jobs.set(jobID, job);
      newJobs.push(job);
      for (const id of jobIds) readyAgain.delete(id);
    }
    for (const id of [...earlier.keys(), ...launched, ...rejected, ...skipped, ...late]) handled.add(recoveryOf(id));
    const answered = [
      ...[...new Set(earlier.values())].map((j) => ({ jobID: j.jobID, status: now >= j.started + jobSeconds ? "COMPLETED" : "STARTED", recoveryInstanceIDs: ids.filter((id) => earlier.get(id) === j).map(recoveryOf) })),
      ...newJobs.map((j) => ({ jobID: j.jobID, status: "PENDING", recoveryInstanceIDs: j.ids })),
    ];
    const notLaunched = [];
    if (rejected.length) notLaunched.push({ outcome: "rejected", reason: "REFUSED_BY_DRS", code: "ConflictException", message: "busy", recoveryInstanceIDs: rejected });
    for (const reason of new Set(skipped.map((id) => skips[id]))) {
      notLaunched.push({ outcome: "skipped", reason, recoveryInstanceIDs: skipped.filter((id) => skips[id] === reason) });
    }
    if (late.length) notLaunched.push({ outcome: "skipped", reason: "FAILBACK_NOT_READY_FOR_LAUNCH", code: "INITIAL_SYNC", message: "not ready when the wait for readiness ended", recoveryInstanceIDs: late });
    if (deferred.length) notLaunched.push({ outcome: "deferred", reason: "QUOTA", recoveryInstanceIDs: deferred });
    if (waiting.length) notLaunched.push({ outcome: "deferred", reason: "REPLICATING", code: "INITIAL_SYNC", recoveryInstanceIDs: waiting });
    const later = [...deferred, ...waiting];
    const reasons = [...(deferred.length ? ["QUOTA"] : []), ...(waiting.length ? ["REPLICATING"] : [])];
    return {
      runId, ...step, dryRun: false, complete: later.length === 0, requested: ids.length, duplicatesCollapsed: 0,
      counts: { launched: launched.length + earlier.size, skipped: skipped.length + late.length, rejected: rejected.length, deferred: later.length },
      jobs: answered,
      notLaunched,
      deferredRecoveryInstanceIDs: later.filter((id) => !id.startsWith("s-")),
      deferredSourceServerIDs: later.filter((id) => id.startsWith("s-")),
      ...heldByOtherSteps(body),
      ...(waiting.length ? { waiting: { instances: waiting.length, byState: { INITIAL_SYNC: waiting.length }, bytesLeft: waiting.length * 1024 } } : {}),
      ...(body.loop === undefined ? {} : nextAfterLaunch(body, answered.length, later.length, reasons)),
      events: { published: newJobs.length + 1, undelivered: 0 },
    };
  }

  /**
   * Whether the step may go on, as the function decides it on the step's last call, over each
   * instance's latest result and the groups never launched: an instance did not come back when it
   * failed, or was rejected, or skipped for any reason but FAILBACK_COMPLETED (already failed
   * back: it came back); the critical ones among them are counted, and the first 100 named.
   */
  function verdict(body, instances, groups) {
    const critical = body.critical ?? false;
    const maxFailed = body.maxFailed ?? null;
    const isCritical = (id) => critical === true || (Array.isArray(critical) && (critical.includes(recoveryOf(id)) || critical.includes(sourceOf(recoveryOf(id)))));
    const bad = [
      ...instances.filter((i) => i.result === "failed").map((i) => i.recoveryInstanceID),
      ...groups
        .filter((g) => g.outcome === "rejected" || (g.outcome === "skipped" && g.reason !== ALREADY_FAILED_BACK))
        .flatMap((g) => g.recoveryInstanceIDs),
    ];
    const unfinished = instances.filter((i) => i.result === "running").length + groups.filter((g) => g.outcome === "deferred").reduce((n, g) => n + g.recoveryInstanceIDs.length, 0);
    const criticalFailed = bad.filter(isCritical);
    const reason = criticalFailed.length > 0 ? "CRITICAL_FAILED" : maxFailed !== null && bad.length > maxFailed ? "TOO_MANY_FAILED" : unfinished > 0 ? "STEP_INCOMPLETE" : null;
    return {
      halt: reason !== null, reason, failed: bad.length, maxFailed,
      criticalFailed: criticalFailed.slice(0, CRITICAL_LISTED_MAX), criticalFailedCount: criticalFailed.length, unfinished,
    };
  }

  /**
   * One result per instance, by its latest attempt: an instance launched again after a failed
   * attempt is in two of the step's jobs, and counts by the one created last.
   */
  function latestResults(tracked) {
    const created = [...jobs.keys()];
    const byId = new Map();
    for (const job of [...tracked].sort((a, b) => created.indexOf(a.jobID) - created.indexOf(b.jobID))) {
      for (const i of job.instances) byId.set(i.recoveryInstanceID, i);
    }
    return [...byId.values()];
  }

  function track(body, clock) {
    for (const key of Object.keys(body)) {
      if (!TRACK_FIELDS.includes(key)) throw refused(`unknown field ${key}`);
    }
    assert.equal(typeof body.runId, "string", "runId");
    assert.ok(Array.isArray(body.jobIDs), "jobIDs is a list");
    assert.ok(body.jobIDs.length > 0 || body.final === true || isObject(body.loop), "jobIDs may be empty only on the final call, or in a step's loop");
    assert.ok(body.jobIDs.every((id) => JOB_ID.test(id)), "job ids");
    assert.ok(Array.isArray(body.reportedJobIDs ?? []), "reportedJobIDs is a list");
    if (!body.final) assert.ok(!("critical" in body) && !("maxFailed" in body), "critical and maxFailed go with the final call");
    if ("critical" in body) assert.ok(typeof body.critical === "boolean" || Array.isArray(body.critical), "critical is true, false or ids");
    if ("maxFailed" in body) assert.ok(body.maxFailed === null || (Number.isInteger(body.maxFailed) && body.maxFailed >= 0), "maxFailed");
    // A place tracks its own jobs, in its own account and region.
    for (const id of body.jobIDs) {
      const job = jobs.get(id);
      if (job) assert.deepEqual(job.target, body.target ?? null, `${id} is tracked where it was launched`);
    }
    const now = seconds(clock);
    const reported = [...(body.reportedJobIDs ?? [])];
    const tracked = body.jobIDs.map((jobID) => {
      const job = jobs.get(jobID);
      assert.ok(job, `${jobID} is a job of the run`);
      assert.equal(job.runId, body.runId);
      const done = now >= job.started + jobSeconds;
      const instances = job.ids.map((id) => {
        const sourceServerID = sourceOf(id);
        if (!done) return { recoveryInstanceID: id, sourceServerID, result: "running", launchStatus: "IN_PROGRESS" };
        return id in job.fails
          ? { recoveryInstanceID: id, sourceServerID, result: "failed", reason: job.fails[id], launchStatus: "FAILED", failbackState: "FAILBACK_ERROR" }
          : { recoveryInstanceID: id, sourceServerID, result: "succeeded", launchStatus: "LAUNCHED", failbackState: "FAILBACK_COMPLETED" };
      });
      const counts = count(instances);
      if (done && !reported.includes(jobID)) {
        events.jobCompleted.push({ runId: body.runId, step: body.step, jobID });
        reported.push(jobID);
      }
      return { jobID, status: done ? "COMPLETED" : "STARTED", done, counts, instances };
    });
    // A step counts each instance once, by its latest attempt; a run's jobs hold each once anyway.
    const counted = body.step === undefined ? tracked.flatMap((j) => j.instances) : latestResults(tracked);
    const counts = count(counted);
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
    // The step's shortest job so far, as the function learns it from DRS's dates: the fake's
    // jobs all take jobSeconds, so once one is done that is it (the loop's otherwise).
    if (tracked.some((j) => j.done)) answer.jobSeconds = jobSeconds;
    else if (body.loop?.jobSeconds != null) answer.jobSeconds = body.loop.jobSeconds;
    if (body.final) {
      const groups = body.notLaunched ?? [];
      assert.ok(Array.isArray(groups), "notLaunched is the launch answers' groups");
      const notLaunched = groups.reduce((n, g) => n + g.recoveryInstanceIDs.length, 0);
      answer.finished = { ...counts, notLaunched };
      if (groups.length) answer.notLaunched = groups;
      if (body.step === undefined) {
        events.runFinished.push(answer.finished);
      } else {
        answer.verdict = verdict(body, counted, groups);
        // Step Finished lists every instance of the step by its latest attempt.
        const listed = results({ groups: group(counted), notLaunched: answer.notLaunched });
        events.stepFinished.push({ runId: body.runId, step: body.step, counts: answer.finished, verdict: answer.verdict, results: listed, heldByOtherSteps: body.heldByOtherSteps ?? [] });
      }
      if (body.loop !== undefined) {
        checkLoop(body);
        answer.stepEnd = decide({ after: "final", loop: body.loop, allFinal: answer.complete, halt: answer.verdict?.halt ? answer.verdict.reason : null });
      }
    } else if (body.loop !== undefined) {
      checkLoop(body);
      answer.next = decide({ after: "track", loop: body.loop, running: answer.runningJobIDs.length });
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
    const before = new Set(handled);
    if (body.action === "stepExecution") {
      // The plan's question about a step execution: the function's own decision.
      const answer = decide({ after: "stepExecution", request: body });
      if (answer.errorType) throw functionError(answer.errorType, answer.errorMessage);
      return { ExecutedVersion: "$LATEST", Payload: answer, StatusCode: 200 };
    }
    const answer = body.action === "track" ? track(body, clock) : body.action === "plan" ? plan(body) : body.action === "finish" ? finish(body, clock) : body.action === "stepSum" ? decide({ after: "stepSum", request: body }) : body.action === "rehearsal" ? rehearsal(body) : launch(body, clock);
    const died = crash(n, body);
    if (died) {
      handled = before; // the outcomes never reached the state machine
      throw died;
    }
    return { ExecutedVersion: "$LATEST", Payload: answer, StatusCode: 200 };
  };
  /** A second execution (a redrive): instances may be sent again, the jobs are remembered. */
  const newExecution = () => {
    handled = new Set();
  };
  return { invoke, calls, jobs, events, fails, readyAgain, newExecution, finished };
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

/** Every instance's result in a final track answer, whichever way it is listed. */
function results(answer) {
  const found = {};
  const add = (id, result, reason) => {
    assert.ok(!(id in found), `${id} listed twice`);
    found[id] = reason ? `${result}:${reason}` : result;
  };
  for (const job of answer.jobs ?? []) {
    for (const i of job.instances ?? []) add(i.recoveryInstanceID, i.result, i.reason);
    for (const g of job.groups ?? []) for (const id of g.recoveryInstanceIDs) add(id, g.result, g.reason);
  }
  for (const g of answer.groups ?? []) for (const id of g.recoveryInstanceIDs) add(id, g.result, g.reason);
  for (const g of answer.notLaunched ?? []) for (const id of g.recoveryInstanceIDs) add(id, g.outcome, g.reason);
  return found;
}

/** Asserts where the execution ended, showing its error if it failed elsewhere. */
function assertEnded(run, state) {
  const why = run.status === "FAILED" ? `: ${run.error}: ${run.cause}` : "";
  assert.equal(run.state, state, `ended in ${run.state} (${run.status})${why}`);
}

/**
 * The run stopped at a step execution that failed at `state` (with `error`, when given): its place
 * (a child execution of the plan's Map) failed at StepGate, naming that step execution, and the
 * plan at its Map (RunPlaces) -- a redrive of the plan goes on from there.
 */
function assertStepFailed(run, state, error) {
  assertEnded(run, "RunPlaces");
  assert.equal(run.error, "States.ExceedToleratedFailureThreshold");
  const place = run.places.filter((e) => e.status !== "SUCCEEDED");
  assert.equal(place.length, 1, "one place failed");
  assertEnded(place[0], "StepGate");
  assert.equal(place[0].error, "StepExecutionFailed");
  const failed = run.steps.filter((e) => e.status !== "SUCCEEDED");
  assert.equal(failed.length, 1, "one step execution failed");
  assertEnded(failed[0], state);
  if (error !== undefined) assert.equal(failed[0].error, error);
  assert.ok(place[0].cause.includes(failed[0].executionArn.split(":").at(-1)), `the cause names the step execution: ${place[0].cause}`);
}
/** Where a redriven run went on: the plan at its Map, its place at StepGate, then the step execution it redrove, at its failed state. */
function assertResumedAt(redriven, state) {
  assert.equal(redriven.trace[0].state, "RunPlaces", "the plan resumed at the step's places");
  assert.equal(redriven.trace.find((t) => isPlace(t.execution))?.state, "StepGate", "the place resumed at the question it failed at");
  assert.equal(redriven.trace.find((t) => t.execution && !isPlace(t.execution))?.state, state, "the step execution resumed at its failed call");
}
/** The plan failed at a step's places: the place that failed (its execution, as it ended). */
function placeFailed(run) {
  assertEnded(run, "RunPlaces");
  assert.equal(run.error, "States.ExceedToleratedFailureThreshold");
  const failed = run.places.filter((e) => e.status !== "SUCCEEDED");
  assert.equal(failed.length, 1, "one place failed");
  return failed[0];
}
/** A child execution of the plan's Map (a step's place), by its name. */
const isPlace = (execution) => typeof execution === "string" && execution.includes("-Places-");

// Recovery instance ids as long as real ones (19 characters): the size limits are tested honestly.
const ids = (prefix, count) => Array.from({ length: count }, (_, i) => `i-${prefix}${String(i + 1).padStart(15, "0")}`);
const bodyOf = (c) => c.detail ?? c;
/** A call as sent, less its loop (checked by the fake, decided on by the function): what it asks. */
const withoutLoop = (c) => {
  const { loop, ...rest } = c;
  return rest;
};
const launchCalls = (fake, step) => fake.calls.filter((c) => !["track", "plan", "stepExecution", "stepSum"].includes(bodyOf(c).action) && (step === undefined || c.step === step)).map(withoutLoop);
const trackCalls = (fake, step) => fake.calls.filter((c) => c.action === "track" && (step === undefined || c.step === step)).map(withoutLoop);
/** The loops the calls of a step carried, in order. */
const loops = (fake, step) => fake.calls.filter((c) => c.step === step && c.loop !== undefined).map((c) => ({ call: c.action === "track" ? (c.final ? "final" : "track") : "launch", ...c.loop }));
const planCalls = (fake) => fake.calls.filter((c) => bodyOf(c).action === "plan");
/** The events the state machine published of one detail-type (their details). */
const published = (run, detailType) => run.events.filter((e) => e.detailType === detailType).map((e) => e.detail);
/** Every instance's result, over the steps the function summed up. */
const stepResults = (fake) => Object.assign({}, ...fake.events.stepFinished.map((e) => e.results));

/**
 * What every run must show: each event the state machine published went to the result bus with
 * the stack's source, under 256 KB; each job announced once; each started step summed up once by
 * the function (Step Finished) and never as a whole run (no Run Finished from the function); one
 * Run Finished from the state machine, whose detail is the output.
 */
function assertEvents(run, fake) {
  for (const e of run.events) {
    assert.equal(e.eventBusName, RESULT_BUS);
    assert.equal(e.source, templateDefault("EventSource"));
    assert.ok(Buffer.byteLength(JSON.stringify(e.detail)) < MAX_BYTES, `${e.detailType} is too large`);
  }
  const completed = fake.events.jobCompleted.map((e) => e.jobID);
  assert.deepEqual([...completed].sort(), [...new Set(completed)].sort(), "each job announced once");
  const started = published(run, "Failback Step Started").map((d) => d.step);
  const finished = fake.events.stepFinished.map((e) => e.step);
  assert.deepEqual(finished, started, "each started step summed up once, in order");
  assert.equal(fake.events.runFinished.length, 0, "the function no longer sums up the run");
  assert.deepEqual(published(run, "Failback Run Finished"), [run.output]);
}

/** assertEvents over the attempts of one execution (a run and its redrives): their events together. */
function assertEventsAcross(attempts, fake) {
  const last = attempts.at(-1);
  assertEvents({ ...last, events: attempts.flatMap((a) => a.events) }, fake);
}

const ALL_ZERO = { succeeded: 0, failed: 0, running: 0, notLaunched: 0, launched: 0, skipped: 0, rejected: 0, deferred: 0 };

// ---- The template and the definition -------------------------------------------------------

test("every ${...} in each definition is a DefinitionSubstitutions key of its state machine in template.yaml, and every key is used", () => {
  for (const [text, uri] of [[planText, "statemachine/failback.asl.json"], [stepText, "statemachine/step.asl.json"], [rehearsalText, "statemachine/rehearsal.asl.json"]]) {
    const used = new Set([...text.matchAll(/\$\{([^}]+)\}/g)].map((m) => m[1]));
    assert.deepEqual([...used].sort(), templateSubstitutionKeys(uri).sort(), uri);
  }
});

test("ApprovalTimeoutSeconds: a day by default, a minute to a week", () => {
  const m = /^  ApprovalTimeoutSeconds:\n((?:    .*\n)+)/m.exec(templateText);
  assert.ok(m, "template.yaml has no parameter ApprovalTimeoutSeconds");
  assert.match(m[1], /^    Type: Number$/m);
  assert.match(m[1], /^    Default: 86400$/m);
  assert.match(m[1], /^    MinValue: 60$/m);
  assert.match(m[1], /^    MaxValue: 604800$/m);
});

// ---- A plain launch request: a plan of one step named failback ------------------------------

test("all succeed: plan, launch, track until every job is done, sum up", async () => {
  const input = sample("stepfunctions-task.json");
  const fake = fakeFunction({ jobSeconds: 300 });
  const run = await execute(definition(), input, fake);
  assertEnded(run, "FailbackComplete");
  const interval = templateDefault("TrackIntervalSeconds");
  assert.deepEqual(fake.calls[0], { ...input, action: "plan", limits: PLAN_LIMITS });
  assert.deepEqual(withoutLoop(fake.calls[1]), { runId: input.runId, tags: input.tags, step: "failback", recoveryInstanceIDs: input.recoveryInstanceIDs });
  // Tracking calls until the 300 s jobs are done, then the final call with every job.
  const tracks = trackCalls(fake);
  const expectedTracks = Math.ceil((300 - 2) / (interval + 2)) + 1;
  assert.equal(tracks.length, expectedTracks);
  const jobs = ["drsjob-00000000000000000", "drsjob-00000000000000001"];
  assert.deepEqual(tracks[0], { action: "track", runId: input.runId, step: "failback", jobIDs: jobs, reportedJobIDs: [] });
  const last = tracks.at(-1);
  assert.deepEqual(last, { action: "track", runId: input.runId, step: "failback", critical: false, maxFailed: null, jobIDs: jobs, reportedJobIDs: jobs, final: true, notLaunched: [], heldByOtherSteps: [] });
  assert.equal(fake.events.jobCompleted.length, 2);
  assert.ok(fake.events.jobCompleted.every((e) => e.step === "failback"), "Job Completed names the step");
  assertEvents(run, fake);
  assert.deepEqual(published(run, "Failback Step Started"), [{ runId: input.runId, step: "failback", index: 0, steps: 1, instances: 3 }]);
  assert.deepEqual(published(run, "Failback Plan Halted"), []);
  const counts = { succeeded: 3, failed: 0, running: 0, notLaunched: 0, launched: 3, skipped: 0, rejected: 0, deferred: 0 };
  assert.deepEqual(run.output, {
    runId: input.runId,
    complete: true,
    halted: null,
    counts,
    steps: [{
      name: "failback", status: "finished", stoppedBy: null, complete: true, counts, rounds: 1, trackingCalls: expectedTracks,
      verdict: { halt: false, reason: null, failed: 0, maxFailed: null, criticalFailed: [], criticalFailedCount: 0, unfinished: 0 },
    }],
  });
  assert.deepEqual(Object.values(stepResults(fake)), ["succeeded", "succeeded", "succeeded"]);
});

test("some fail: a step without critical instances or maxFailed goes on; the function's summary says which failed, and why", async () => {
  const requested = ids("0a", 5);
  const fake = fakeFunction({ fails: { [requested[1]]: "CONVERSION_FAIL", [requested[4]]: "LAUNCH_FAILED" }, rejects: [requested[3]] });
  const run = await execute(definition(), { runId: "wave-2", recoveryInstanceIDs: requested }, fake);
  // A rejected instance is final: the run is complete.
  assertEnded(run, "FailbackComplete");
  assert.deepEqual(stepResults(fake), {
    [requested[0]]: "succeeded",
    [requested[1]]: "failed:CONVERSION_FAIL",
    [requested[2]]: "succeeded",
    [requested[3]]: "rejected:REFUSED_BY_DRS",
    [requested[4]]: "failed:LAUNCH_FAILED",
  });
  assert.deepEqual(run.output.counts, { succeeded: 2, failed: 2, running: 0, notLaunched: 1, launched: 4, skipped: 0, rejected: 1, deferred: 0 });
  assert.equal(run.output.steps[0].verdict.failed, 3);
  assertEvents(run, fake);
});

test("quota-bound: the deferred go again as jobs finish, with the run id, step and tags, until every instance is final", async () => {
  const requested = ids("0b", 10);
  const tags = { Wave: "4" };
  const fake = fakeFunction({ capacity: 4, jobSize: 2, jobSeconds: 600 });
  const run = await execute(definition(), { recoveryInstanceIDs: requested, tags }, fake);
  assertEnded(run, "FailbackComplete");
  const launches = launchCalls(fake);
  // 4 fit at a time: three rounds, each after the jobs before it finished.
  assert.equal(launches.length, 3);
  assert.deepEqual(launches[0], { recoveryInstanceIDs: requested, tags, runId: "test", step: "failback" });
  assert.deepEqual(launches[1], { recoveryInstanceIDs: requested.slice(4), runId: "test", step: "failback", tags });
  assert.deepEqual(launches[2], { recoveryInstanceIDs: requested.slice(8), runId: "test", step: "failback", tags });
  // A round is sent only right after a tracking call that saw a job finish.
  for (let i = 2; i < fake.calls.length; i++) {
    if (fake.calls[i].action === "track") continue;
    assert.equal(fake.calls[i - 1].action, "track");
  }
  assert.equal(run.output.steps[0].rounds, 3);
  assert.deepEqual(run.output.counts, { succeeded: 10, failed: 0, running: 0, notLaunched: 0, launched: 10, skipped: 0, rejected: 0, deferred: 0 });
  assert.equal(Object.keys(stepResults(fake)).length, 10);
  assertEvents(run, fake);
  assert.equal(fake.events.jobCompleted.length, 5);
  // The pipeline kept the quota busy: at most one tracking interval lost per wave.
  const interval = templateDefault("TrackIntervalSeconds");
  assert.ok(run.elapsed <= 3 * (600 + interval + 10), `${run.elapsed} s`);
});

test("the time limit ends the step with what is known: running instances listed as such, the plan halted STEP_INCOMPLETE", async () => {
  const requested = ids("0c", 4);
  const fake = fakeFunction({ capacity: 2, jobSeconds: 7200 });
  const run = await execute(definition({ TimeLimitSeconds: 1800, TrackIntervalSeconds: 60 }), { runId: "wave-3", recoveryInstanceIDs: requested }, fake);
  assertEnded(run, "FailbackIncomplete");
  const [step] = run.output.steps;
  assert.equal(step.stoppedBy, "TIME_LIMIT");
  assert.equal(step.status, "halted");
  assert.equal(step.reason, "STEP_INCOMPLETE");
  assert.equal(run.output.complete, false);
  assert.deepEqual(run.output.halted, { step: "failback", reason: "STEP_INCOMPLETE" });
  assert.deepEqual(run.output.counts, { succeeded: 0, failed: 0, running: 2, notLaunched: 2, launched: 2, skipped: 0, rejected: 0, deferred: 2 });
  assert.deepEqual(stepResults(fake), {
    [requested[0]]: "running",
    [requested[1]]: "running",
    [requested[2]]: "deferred:QUOTA",
    [requested[3]]: "deferred:QUOTA",
  });
  // Polling is bounded: one call per interval until the limit, then the final one.
  assert.ok(trackCalls(fake).length <= Math.ceil(1800 / 60) + 1, `${trackCalls(fake).length} tracking calls`);
  assert.ok(run.elapsed >= 1800 && run.elapsed < 1800 + 60 + 10, `${run.elapsed} s`);
  assert.deepEqual(published(run, "Failback Plan Halted"), [
    { runId: "wave-3", step: "failback", reason: "STEP_INCOMPLETE", verdict: step.verdict, notStarted: [] },
  ]);
  assert.equal(step.verdict.unfinished, 4);
  assertEvents(run, fake);
});

test("max rounds reached: the rest stays deferred, safe to send again", async () => {
  const requested = ids("0d", 6);
  const fake = fakeFunction({ capacity: 2, jobSize: 2, jobSeconds: 100 });
  const run = await execute(definition({ MaxRounds: 2 }), { runId: "wave-5", recoveryInstanceIDs: requested }, fake);
  assertEnded(run, "FailbackIncomplete");
  assert.equal(run.output.steps[0].stoppedBy, "MAX_ROUNDS");
  assert.equal(run.output.halted.reason, "STEP_INCOMPLETE");
  assert.equal(launchCalls(fake).length, 2);
  assert.deepEqual(run.output.counts, { succeeded: 4, failed: 0, running: 0, notLaunched: 2, launched: 4, skipped: 0, rejected: 0, deferred: 2 });
  assert.deepEqual(trackCalls(fake).at(-1).notLaunched, [{ outcome: "deferred", reason: "QUOTA", recoveryInstanceIDs: requested.slice(4) }]);
});

test("waiting for readiness: each instance launched once, in the round after DRS shows it ready, past MaxRounds; one never ready skipped when the wait ends; each round passes back the wait and what it announced waiting", async () => {
  const [ready, soon, later, never] = ids("0w", 4);
  const interval = templateDefault("TrackIntervalSeconds");
  const fake = fakeFunction({ jobSeconds: 300, readyAt: { [soon]: 900, [later]: 2000, [never]: Infinity } });
  const steps = [{ name: "wave", recoveryInstanceIDs: [ready, soon, later, never], waitForReadySeconds: 2400 }];
  const run = await execute(definition({ MaxRounds: 2 }), { runId: "wave-r", steps }, fake);
  // The one never ready is skipped, a final outcome: the step and the run end complete.
  assertEnded(run, "FailbackComplete");
  const launches = fake.calls.filter((c) => !["track", "plan", "stepExecution", "stepSum"].includes(c.action));
  assert.ok(launches.length > 2, `waiting rounds are not capped by MaxRounds: ${launches.length}`);
  assert.ok(launches.every((c) => c.waitForReadySeconds === 2400), "every round carries the step's wait");
  // Each round passes back what the round before announced waiting, by state.
  assert.equal(launches[0].waiting, undefined);
  assert.deepEqual(launches[1].waiting, [{ state: "INITIAL_SYNC", recoveryInstanceIDs: [soon, later, never] }]);
  assert.deepEqual(launches.at(-1).waiting, [{ state: "INITIAL_SYNC", recoveryInstanceIDs: [never] }]);
  const launchedIn = (id) => [...fake.jobs.values()].filter((j) => j.ids.includes(id));
  for (const id of [ready, soon, later]) assert.equal(launchedIn(id).length, 1, `${id} launched once`);
  assert.equal(launchedIn(never).length, 0);
  const start = launchedIn(ready)[0].started;
  for (const [id, at] of [[soon, 900], [later, 2000]]) {
    const took = launchedIn(id)[0].started - start;
    assert.ok(took >= at && took <= at + interval + 10, `${id} ready at ${at} s, launched at ${took} s`);
  }
  const final = trackCalls(fake).at(-1);
  assert.deepEqual(final.notLaunched, [{ outcome: "skipped", reason: "FAILBACK_NOT_READY_FOR_LAUNCH", code: "INITIAL_SYNC", message: "not ready when the wait for readiness ended", recoveryInstanceIDs: [never] }]);
  // The tracking calls between carry the waiting as the last round found them.
  assert.ok(fake.calls.some((c) => c.action === "track" && !c.final && c.loop.waiting?.instances === 2), "the loop carries the waiting");
  assert.deepEqual(run.output.counts, { succeeded: 3, failed: 0, running: 0, notLaunched: 1, launched: 3, skipped: 1, rejected: 0, deferred: 0 });
});

test("finishing approved: the run's instances that came back are listed, approved, terminated and followed to the end, never the failed one; the run's summary carries the result", async () => {
  const requested = ids("0f", 4);
  const fake = fakeFunction({ jobSeconds: 300, fails: { [requested[2]]: "CONVERSION_FAIL" } });
  const steps = [{ name: "wave", recoveryInstanceIDs: requested }];
  let asked;
  const run = await execute(definition(), { runId: "wave-fin", steps, finish: "terminate" }, {
    ...fake,
    answer: ({ entries }) => {
      asked = typeof entries[0].Detail === "string" ? JSON.parse(entries[0].Detail) : entries[0].Detail;
      return { output: { approvedBy: "ops" }, afterSeconds: 120 };
    },
  });
  assertEnded(run, "FailbackComplete");
  const finishes = fake.calls.filter((c) => c.action === "finish");
  assert.deepEqual(finishes.map((c) => [c.dryRun, c.calls]), [[true, 0], [false, 0], [false, 1]], "listed, then finished and followed once more");
  assert.ok(finishes.every((c) => c.finishing === "terminate" && c.runId === "wave-fin" && !("step" in c)));
  // The real calls carry exactly the list the operator approved.
  for (const c of finishes.slice(1)) assert.deepEqual([...c.recoveryInstanceIDs].sort(), [requested[0], requested[1], requested[3]].sort());
  // The approval shows exactly what will be done, and what will not.
  assert.equal(asked.finishing, "terminate");
  assert.deepEqual(asked.counts.planned, 3);
  assert.deepEqual(asked.groups.find((g) => g.result === "notEligible").recoveryInstanceIDs, [requested[2]]);
  assert.ok(!fake.finished.includes(requested[2]), "the failed instance is never finished");
  assert.deepEqual(fake.finished.sort(), [requested[0], requested[1], requested[3]].sort());
  assert.equal(run.output.finish.status, "finished");
  assert.equal(run.output.finish.complete, true);
  assert.equal(run.output.finish.counts.done, 3);
  assert.deepEqual(published(run, "Failback Run Finished"), [run.output]);
  assert.equal(published(run, "Failback Finishing Approval Requested").length, 1);
});

test("a step's finishing: right after the step, its instances only, approved, before the next step starts; the step's result carries it", async () => {
  const db = ids("0h", 2);
  const app = ids("0i", 2);
  const fake = fakeFunction({ jobSeconds: 300 });
  const steps = [{ name: "db", recoveryInstanceIDs: db, finish: "disconnect" }, { name: "app", recoveryInstanceIDs: app }];
  const asked = [];
  const run = await execute(definition(), { runId: "wave-step-fin", steps }, {
    ...fake,
    answer: ({ entries }) => {
      asked.push(typeof entries[0].Detail === "string" ? JSON.parse(entries[0].Detail) : entries[0].Detail);
      return { output: { approvedBy: "ops" }, afterSeconds: 60 };
    },
  });
  assertEnded(run, "FailbackComplete");
  assert.deepEqual(asked.map((a) => [a.step, a.finishing, a.counts.planned]), [["db", "disconnect", 2]]);
  const finishes = fake.calls.filter((c) => c.action === "finish");
  assert.ok(finishes.length >= 2 && finishes.every((c) => c.step === "db"), "the step's instances only");
  const firstApp = fake.calls.findIndex((c) => c.step === "app");
  assert.ok(fake.calls.lastIndexOf(finishes.at(-1)) < firstApp, "finished before the next step starts");
  assert.deepEqual(fake.finished.sort(), [...db].sort());
  assert.equal(run.output.steps[0].finish.status, "finished");
  assert.equal(run.output.steps[1].finish, undefined);
  assert.equal(run.output.finish, undefined);
});

test("finishing refused, or never answered: nothing is finished, the failback itself stands; nothing to finish asks nobody", async () => {
  const requested = ids("0g", 2);
  const steps = [{ name: "wave", recoveryInstanceIDs: requested }];
  const refusedFake = fakeFunction({ jobSeconds: 300 });
  const refusedRun = await execute(definition(), { runId: "wave-no", steps, finish: "disconnect" }, { ...refusedFake, answer: () => ({ error: "Rejected", cause: "keep them for a week", afterSeconds: 60 }) });
  assertEnded(refusedRun, "FailbackComplete");
  assert.equal(refusedRun.output.finish.status, "refused");
  assert.equal(refusedRun.output.finish.error.Cause, "keep them for a week");
  assert.deepEqual(refusedFake.calls.filter((c) => c.action === "finish").map((c) => c.dryRun), [true], "only listed");
  assert.deepEqual(refusedFake.finished, []);

  const silentFake = fakeFunction({ jobSeconds: 300 });
  const silent = await execute(definition({ ApprovalTimeoutSeconds: 600 }), { runId: "wave-silent", steps, finish: "terminate" }, { ...silentFake, answer: () => undefined });
  assertEnded(silent, "FailbackComplete");
  assert.equal(silent.output.finish.status, "timed out");
  assert.deepEqual(silentFake.finished, []);

  const allFailed = fakeFunction({ jobSeconds: 300, fails: Object.fromEntries(requested.map((id) => [id, "LAUNCH_FAILED"])) });
  const nothing = await execute(definition(), { runId: "wave-none", steps, finish: "terminate" }, { ...allFailed, answer: () => assert.fail("nobody is asked") });
  assert.equal(nothing.output.finish.status, "nothing to finish");
  assert.equal(nothing.output.finish.counts.notEligible, 2);
  assert.equal(published(nothing, "Failback Finishing Approval Requested").length, 0);
});

test("a dry run plans and ends: one invocation, the plan of one step", async () => {
  const input = sample("dry-run.json");
  const fake = fakeFunction();
  const run = await execute(definition(), input, fake);
  assertEnded(run, "DryRunPlanned");
  assert.deepEqual(fake.calls, [{ ...input, action: "plan", limits: PLAN_LIMITS }]);
  assert.deepEqual(run.output, {
    runId: "wave-3-plan",
    dryRun: true,
    steps: [{
      name: "failback", maxFailed: null, waitAfterSeconds: 0, approval: false, waitForReadySeconds: 0, instances: 2,
      counts: { launched: 0, skipped: 0, rejected: 0, deferred: 2 },
      groups: [{
        recoveryInstanceIDs: input.recoveryInstanceIDs, critical: false, instances: 2,
        counts: { launched: 0, skipped: 0, rejected: 0, deferred: 2 },
        plannedJobSizes: [2],
        // What would be skipped or rejected; the launchable ones are in plannedJobSizes (the
        // function leaves their DRY_RUN group out).
        notLaunched: [],
      }],
    }],
  });
  assert.deepEqual(run.events, [], "a dry run publishes nothing from the state machine");
});

test("an EventBridge event as input: every call is a direct request with the event id as run id", async () => {
  const input = sample("eventbridge-failback-request.json");
  const fake = fakeFunction({ capacity: 4 });
  const run = await execute(definition(), input, fake);
  assertEnded(run, "FailbackComplete");
  assert.deepEqual(fake.calls[0], { ...input.detail, runId: input.id, action: "plan", limits: PLAN_LIMITS });
  assert.deepEqual(launchCalls(fake)[0], { ...input.detail, runId: input.id, step: "failback" });
  const second = launchCalls(fake)[1];
  assert.deepEqual(second, { recoveryInstanceIDs: input.detail.recoveryInstanceIDs.slice(4), runId: input.id, step: "failback", tags: input.detail.tags });
  assert.ok(trackCalls(fake).every((c) => c.runId === input.id));
  assert.equal(run.output.runId, input.id);
  assertEvents(run, fake);
});

test("deferred source servers go again as source servers, deferred recovery instances as such", async () => {
  const instances = ids("11", 2);
  const sources = ["s-0123456789abcdef0", "s-0123456789abcdef1"];
  const input = { runId: "wave-7", recoveryInstanceIDs: instances, sourceServerIDs: sources };
  const fake = fakeFunction({ capacity: 1, jobSize: 1, jobSeconds: 60 });
  const run = await execute(definition(), input, fake);
  assertEnded(run, "FailbackComplete");
  const launches = launchCalls(fake);
  assert.deepEqual(launches[1], { recoveryInstanceIDs: [instances[1]], sourceServerIDs: sources, runId: "wave-7", step: "failback" });
  assert.deepEqual(launches[2], { sourceServerIDs: sources, runId: "wave-7", step: "failback" });
});

test("a Lambda service error is retried; the function's errors before any job end the run; a plan execution failed at its check, redriven, goes on", async () => {
  let serviceErrors = 0;
  const fake = fakeFunction({
    error: () => {
      if (serviceErrors++ === 0) return new StatesError("Lambda.ServiceException", "try again");
      return functionError("DrsAccessDenied", "drs:DescribeRecoveryInstances denied");
    },
  });
  const run = await execute(definition(), { runId: "wave-6", recoveryInstanceIDs: ids("10", 2) }, fake);
  assertEnded(run, "DrsNotUsable");
  assert.equal(run.error, "DrsAccessDenied");
  assert.match(run.cause, /denied/);
  assert.equal(fake.calls.length, 2);
  assert.deepEqual(fake.calls[0], fake.calls[1]);
  assert.equal(fake.calls[0].action, "plan");

  const refusedRun = await execute(definition(), sample("invalid-misspelt-field.json"), fakeFunction());
  assertEnded(refusedRun, "RequestRefused");
  assert.equal(refusedRun.error, "InvalidFailbackRequest");

  let crashing = true;
  const broken = fakeFunction({ error: () => (crashing ? new StatesError("Lambda.Unknown", "crashed") : undefined) });
  const brokenInput = { recoveryInstanceIDs: ids("12", 1) };
  const brokenRun = await execute(definition(), brokenInput, broken);
  assertEnded(brokenRun, "Plan");
  assert.equal(brokenRun.status, "FAILED", "failed at the call: a redrive makes it again");
  assert.equal(brokenRun.error, "Lambda.Unknown");
  assert.equal(broken.calls.length, 3, "a crash is tried twice more");
  assert.equal(brokenRun.steps.length, 0, "no step started");
  // A failed plan execution, redriven: the plan is checked again, under the run id it had, and the run goes on.
  crashing = false;
  const mended = await execute(definition(), brokenInput, { ...broken, redrive: brokenRun });
  assertEnded(mended, "FailbackComplete");
  assert.equal(mended.trace[0].state, "Plan");
  assert.equal(planCalls(broken).at(-1).runId, planCalls(broken)[0].runId);
  assert.equal(mended.output.counts.succeeded, 1);

  // The plan passed, the first launch is refused: in the first step, before any job, the run ends.
  const launchRefused = fakeFunction({ error: (n, body) => (body.action === undefined ? functionError("InvalidFailbackRequest", "tags: DRS refuses the key") : undefined) });
  const launchRun = await execute(definition(), { runId: "wave-6b", recoveryInstanceIDs: ids("18", 2) }, launchRefused);
  assertEnded(launchRun, "RequestRefused");
  assert.equal(launchCalls(launchRefused).length, 1);
});

test("a crash after DRS accepted a launch is retried, whatever Lambda names it: nothing launched twice, every instance ends with a result", async () => {
  // Lambda names a function that died by its errorType when it has one: the process killed
  // (Runtime.ExitError), the function's timeout (Sandbox.Timedout), a panic (its type); no answer
  // in time is Lambda.ClientExecutionTimeoutException or States.Timeout.
  const names = ["Runtime.ExitError", "Sandbox.Timedout", "alloc::string::String", "Lambda.ClientExecutionTimeoutException", "Lambda.Unknown"];
  for (const [i, name] of names.entries()) {
    const requested = ids(`4${i}`, 4);
    let crashes = 0;
    const fake = fakeFunction({
      jobSeconds: 60,
      crash: (n, body) => (body.action === undefined && crashes++ === 0 ? functionError(name, "the process died") : undefined),
    });
    const run = await execute(definition(), { runId: `wave-crash-${i}`, recoveryInstanceIDs: requested }, fake);
    assertEnded(run, "FailbackComplete");
    assert.equal(crashes, 2, `${name}: the crashed launch was sent again`);
    assert.equal(fake.jobs.size, 2, `${name}: the jobs the crashed call made, no more`);
    assert.equal(run.output.counts.succeeded, 4, name);
    assertEvents(run, fake);
  }
  // The function's own refusals are not retried: sending them again cannot help.
  for (const name of ["InvalidFailbackRequest", "DrsAccountNotInitialized", "DrsAccessDenied", "DrsClientMisconfigured"]) {
    const fake = fakeFunction({ error: (n, body) => (body.action === undefined ? functionError(name, "no") : undefined) });
    const run = await execute(definition(), { runId: "wave-refused", recoveryInstanceIDs: ids("49", 2) }, fake);
    if (name === "DrsClientMisconfigured") {
      // The function's own setup is wrong: sent once more, then the execution fails at that call,
      // so that a redrive after the fix goes on.
      assert.equal(launchCalls(fake).length, 2, name);
      assertStepFailed(run, "LaunchAgain", name);
    } else {
      assert.equal(launchCalls(fake).length, 1, name);
    }
  }
});

test("a launch error after jobs exist stops launching; the jobs are tracked to the end, then the failed round is sent once more and the execution fails there; a redrive after the fix goes on, nothing launched twice", async () => {
  const requested = ids("13", 6);
  let denied = true;
  const fake = fakeFunction({
    capacity: 2,
    jobSeconds: 120,
    error: (n, body) => (denied && body.action === undefined && launchCalls(fake).length > 1 ? functionError("DrsAccessDenied", "denied now") : undefined),
  });
  const run = await execute(definition(), { runId: "wave-8", recoveryInstanceIDs: requested }, fake);
  assertStepFailed(run, "LaunchAgain", "DrsAccessDenied");
  // The first round's jobs were tracked to the end before the failed round was sent again.
  assert.equal(fake.events.jobCompleted.length, 1);
  const failedRound = launchCalls(fake)[1];
  assert.deepEqual(launchCalls(fake)[2], failedRound, "the same round, once more");
  assert.equal(launchCalls(fake).length, 3);
  assert.deepEqual(published(run, "Failback Plan Halted"), [], "not halted: failed at a call");

  denied = false; // the role is fixed; the operator redrives the execution
  const redriven = await execute(definition(), { runId: "wave-8", recoveryInstanceIDs: requested }, { ...fake, redrive: run });
  assertEnded(redriven, "FailbackComplete");
  assertResumedAt(redriven, "LaunchAgain");
  assert.equal(redriven.output.counts.succeeded, 6);
  assert.equal(fake.jobs.size, 3, "each instance launched once");
  // The run's events across both attempts: the step summed up once, the run finished once, each job announced once.
  assert.equal(fake.events.stepFinished.length, 1);
  assert.equal(published(redriven, "Failback Run Finished").length, 1);
  assert.equal(fake.events.jobCompleted.length, new Set(fake.events.jobCompleted.map((e) => e.jobID)).size);
});

test("a later step's launch the function refuses (InvalidFailbackRequest) is not sent again: the step is summed up and the plan halts LAUNCH_ERROR", async () => {
  const fake = fakeFunction({
    tags: THREE_TAGS,
    error: (n, body) => (body.step === "app-servers" && body.action === undefined ? functionError("InvalidFailbackRequest", "invalid failback request: selector reaches 6000 instances") : undefined),
  });
  const run = await execute(definition(), THREE, { ...fake, answer: approve() });
  assertEnded(run, "FailbackIncomplete");
  assert.deepEqual(run.output.halted, { step: "app-servers", reason: "LAUNCH_ERROR" });
  assert.equal(launchCalls(fake, "app-servers").length, 1, "a refusal is not sent again");
  assert.equal(run.output.steps[1].error.Error, "InvalidFailbackRequest");
  assert.deepEqual(loops(fake, "app-servers").map((l) => [l.call, l.launchErrorName ?? null]), [["launch", null], ["track", "InvalidFailbackRequest"], ["final", "InvalidFailbackRequest"]]);
  assert.equal(published(run, "Failback Plan Halted").length, 1);
  assertEvents(run, fake);
});

test("a failing tracking call is tried again at the next interval; after three in a row once more, and if that fails the execution fails there; a redrive goes on", async () => {
  let trackFailures = 0;
  const flaky = fakeFunction({
    error: (n, body) => (body.action === "track" && !body.final && trackFailures++ < 2 ? functionError("DrsThrottled", "slow down") : undefined),
    jobSeconds: 30,
  });
  const run = await execute(definition(), { runId: "wave-9", recoveryInstanceIDs: ids("14", 2) }, flaky);
  assertEnded(run, "FailbackComplete");
  assert.equal(run.output.steps[0].stoppedBy, null);
  assert.equal(trackCalls(flaky).filter((c) => !c.final).length, 3, "two failed, then the one that saw the job done");

  let down = true;
  const broken = fakeFunction({
    error: (n, body) => (down && body.action === "track" && !body.final ? new StatesError("Lambda.Unknown", "crashed") : undefined),
    jobSeconds: 30,
  });
  const input = { runId: "wave-9b", recoveryInstanceIDs: ids("16", 2) };
  const stopped = await execute(definition(), input, broken);
  assertStepFailed(stopped, "TrackAgain", "Lambda.Unknown");
  // Three failed calls, each after its two retries, then TrackAgain with its own.
  assert.equal(trackCalls(broken).filter((c) => !c.final).length, 4 * 3);
  down = false;
  const redriven = await execute(definition(), input, { ...broken, redrive: stopped });
  assertEnded(redriven, "FailbackComplete");
  assertResumedAt(redriven, "TrackAgain");
  assert.equal(redriven.output.counts.succeeded, 2);
  assert.equal(launchCalls(broken).length, 1, "nothing launched again");
  // The run's events across both attempts: the step summed up once, the run finished once, each job announced once.
  assert.equal(broken.events.stepFinished.length, 1);
  assert.equal(published(redriven, "Failback Run Finished").length, 1);
  assert.equal(broken.events.jobCompleted.length, new Set(broken.events.jobCompleted.map((e) => e.jobID)).size);
});

test("the final call is retried while DRS cannot be read; if it keeps failing the run fails, naming the error", async () => {
  let readFailures = 0;
  const slow = fakeFunction({
    error: (n, body) => (body.final && readFailures++ < 2 ? functionError("DrsReadFailed", "DRS jobs could not be read") : undefined),
  });
  const run = await execute(definition(), { runId: "wave-10", recoveryInstanceIDs: ids("15", 2) }, slow);
  assertEnded(run, "FailbackComplete");
  assert.equal(trackCalls(slow).filter((c) => c.final).length, 3);
  assertEvents(run, slow);

  const down = fakeFunction({ error: (n, body) => (body.final ? new StatesError("Lambda.Unknown", "crashed") : undefined) });
  const failed = await execute(definition(), { runId: "wave-11", recoveryInstanceIDs: ids("17", 2) }, down);
  assertStepFailed(failed, "FinalTrack", "Lambda.Unknown");
});

/** The three-step plan, run until step three's last call fails for good (DRS unreadable); `mend` makes DRS readable. */
async function failAtWebsLastCall() {
  let down = true;
  const fake = fakeFunction({
    tags: THREE_TAGS,
    error: (n, body) => (down && body.final && body.step === "web" ? functionError("DrsReadFailed", "DRS jobs could not be read") : undefined),
  });
  const first = await execute(definition(), THREE, { ...fake, answer: approve() });
  assertStepFailed(first, "FinalTrack", "DrsReadFailed");
  return { fake, first, mend: () => (down = false) };
}

test("redrive: a run that failed at its last call of step three resumes there — nothing launched again, no wait, approval or Step Started repeated, the run completes", async () => {
  const { fake, first, mend } = await failAtWebsLastCall();
  const launchesBefore = launchCalls(fake).length;
  const startedBefore = published(first, "Failback Step Started").length;
  assert.equal(startedBefore, 3);

  mend(); // DRS can be read again; the operator redrives the execution
  const redriven = await execute(definition(), THREE, { ...fake, answer: approve(), redrive: first, redriveAfterSeconds: 3600 });
  assertEnded(redriven, "FailbackComplete");
  assertResumedAt(redriven, "FinalTrack");
  assert.equal(launchCalls(fake).length, launchesBefore, "nothing launched again");
  assert.deepEqual(published(redriven, "Failback Step Started"), [], "no step started again");
  assert.deepEqual(published(redriven, "Failback Step Approval Requested"), [], "no approval asked again");
  assert.deepEqual(redriven.trace.filter((t) => t.wait !== undefined && t.state !== "WaitForStep"), [], "no wait again (only for the redriven step execution to end)");
  assert.equal(redriven.output.counts.succeeded, 8);
  assert.deepEqual(redriven.output.steps.map((s) => s.status), ["finished", "finished", "finished"]);
  assert.equal(fake.events.jobCompleted.length, new Set(fake.events.jobCompleted.map((e) => e.jobID)).size, "each job announced once");
});

test("redrive: a first launch that fails for good (not a refusal) is sent once more, then fails the execution at that call; a redrive sends it again and the run completes, nothing launched twice", async () => {
  let down = true;
  const fake = fakeFunction({ error: (n, body) => (down && body.action === undefined ? new StatesError("Sandbox.Timedout", "timed out") : undefined) });
  const input = { runId: "wave-12", recoveryInstanceIDs: ids("19", 3) };
  const first = await execute(definition(), input, fake);
  assertStepFailed(first, "LaunchAgain", "Sandbox.Timedout");
  assert.equal(launchCalls(fake).length, 6, "three attempts of Launch, three of LaunchAgain");
  down = false;
  const redriven = await execute(definition(), input, { ...fake, redrive: first });
  assertEnded(redriven, "FailbackComplete");
  assertResumedAt(redriven, "LaunchAgain");
  assert.equal(redriven.output.counts.succeeded, 3);
  assert.equal(fake.jobs.size, 2, "one launch reached DRS: 3 instances in jobs of 2");
  assert.ok(!planCalls(fake).slice(1).length, "the plan is not checked again");
});

test("redrive of a step execution by hand, then of the plan: the plan adopts the step's result — nothing launched, waited for, approved or announced again", async () => {
  const { fake, first, mend } = await failAtWebsLastCall();
  const web = stepExecution(first, 2);
  const launchesBefore = launchCalls(fake).length;

  mend(); // the operator redrives the step execution that failed...
  const again = await first.sfn.redrive(web.executionArn, { ...fake, startTime: new Date(Date.parse(first.ended) + 600e3).toISOString() });
  assertEnded(again, "StepEnded");
  assert.equal(again.trace[0].state, "FinalTrack", "the step execution resumed at its failed call");
  assert.equal(again.redriveCount, 1);
  // ... and then the plan, which finds the step ended well and takes its result.
  const redriven = await execute(definition(), THREE, { ...fake, answer: approve(), redrive: first, redriveAfterSeconds: 3600 });
  assertEnded(redriven, "FailbackComplete");
  // What the plan read before it was redriven is read again: the step execution ended well since.
  assert.deepEqual(placeStates(redriven).slice(0, 7), ["StepGate", "FollowStep", "CheckStep", "StepGate", "FollowStep", "ReadStepOutput", "StepRan"]);
  assert.ok(!redriven.trace.some((t) => t.execution && !isPlace(t.execution)), "no step execution ran again");
  assert.equal(stepExecution(redriven, 2).redriveCount, 1, "redriven once, by hand");
  assert.equal(launchCalls(fake).length, launchesBefore, "nothing launched again");
  assert.deepEqual(published(redriven, "Failback Step Started"), []);
  assert.deepEqual(published(redriven, "Failback Step Approval Requested"), []);
  assert.deepEqual(redriven.waits, []);
  assert.deepEqual(redriven.output.steps.map((s) => s.status), ["finished", "finished", "finished"]);
  assert.equal(redriven.output.counts.succeeded, 8);
  assert.equal(fake.events.stepFinished.length, 3, "each step summed up once");
  assert.equal(fake.events.jobCompleted.length, new Set(fake.events.jobCompleted.map((e) => e.jobID)).size, "each job announced once");
  assert.equal(published(redriven, "Failback Run Finished").length, 1);
});

test("a failed step execution redriven by hand while the plan waits for it: the plan takes its result and goes on — one redrive, of the execution that failed", async () => {
  let down = true;
  const fake = fakeFunction({
    tags: THREE_TAGS,
    error: (n, body) => (down && body.final && body.step === "web" ? functionError("DrsReadFailed", "DRS jobs could not be read") : undefined),
  });
  const defs = definition();
  const sfn = stepFunctions({ [PLAN_ARN]: defs.plan, [STEP_ARN]: defs.step });
  let redriven;
  // The operator sees the step execution's failure (its own alarm), mends DRS and redrives it,
  // while the plan waits for it.
  const sleep = async (seconds, state, clock) => {
    if (state !== "WaitForStep" || redriven) return;
    const failed = [...sfn.executions.values()].find((e) => e.stateMachineArn === STEP_ARN && e.status === "FAILED");
    assert.equal(failed.state, "FinalTrack");
    down = false;
    redriven = await sfn.redrive(failed.executionArn, { ...fake, startTime: clock.now() });
  };
  const run = await execute(defs, THREE, { ...fake, answer: approve(), sfn, sleep });
  assertEnded(run, "FailbackComplete");
  assertEnded(redriven, "StepEnded");
  assert.equal(redriven.trace[0].state, "FinalTrack", "the step execution went on at its failed call");
  assert.equal(run.redriveCount, 0, "the plan was not redriven");
  const place = placeStates(run);
  assert.deepEqual(place.slice(place.lastIndexOf("RunStep")), ["RunStep", "CheckStep", "StepGate", "FollowStep", "WaitForStep", "CheckStep", "StepGate", "FollowStep", "ReadStepOutput", "StepRan", "StepSummed"]);
  const plan = planStates(run);
  assert.deepEqual(plan.slice(plan.lastIndexOf("RunPlaces")), ["RunPlaces", "PlacesRan", "SumStep", "StepDone", "AfterStep", "SumUp", "FinishOrPublish", "PublishRunFinished", "Finished", "FailbackComplete"]);
  assert.equal(placeStates(run).filter((n) => n === "ReadStepOutput").length, 1, "its result read once it ended well");
  assert.equal(run.output.counts.succeeded, 8);
  assert.deepEqual(run.output.steps.map((s) => s.status), ["finished", "finished", "finished"]);
  assert.equal(published(run, "Failback Step Started").length, 3);
  assert.equal(fake.events.stepFinished.length, 3, "each step summed up once");
  assert.equal(fake.events.jobCompleted.length, new Set(fake.events.jobCompleted.map((e) => e.jobID)).size, "each job announced once");
  assert.equal(published(run, "Failback Run Finished").length, 1);
});

test("each step execution has its own looks: a step redriven by hand at its fourth look leaves the next step's throttled start its own starts again", async () => {
  let down = true;
  const fake = fakeFunction({
    tags: THREE_TAGS,
    error: (n, body) => (down && body.final && body.step === "databases" ? functionError("DrsReadFailed", "DRS jobs could not be read") : undefined),
  });
  const defs = definition();
  let throttled = 0;
  const sfn = stepFunctions({ [PLAN_ARN]: defs.plan, [STEP_ARN]: defs.step }, { start: (name) => (name.endsWith("-s1-g0-p1") && throttled++ === 0 ? new StatesError("StepFunctions.ExecutionLimitExceededException", "too many running executions") : undefined) });
  let looks = 0;
  const sleep = async (seconds, state, clock) => {
    if (state !== "WaitForStep" || ++looks !== 4) return;
    const failed = [...sfn.executions.values()].find((e) => e.status === "FAILED");
    down = false;
    await sfn.redrive(failed.executionArn, { ...fake, startTime: clock.now() });
  };
  const run = await execute(defs, THREE, { ...fake, answer: approve(), sfn, sleep });
  assertEnded(run, "FailbackComplete");
  assert.equal(throttled, 2, "the second step's start was refused once, then made again");
  assert.ok(run.trace.some((t) => t.state === "WaitToStart" && t.wait === 30), "its first start again after 30 s: its own count");
  assert.equal(run.output.counts.succeeded, 8);
  assert.equal(fake.events.stepFinished.length, 3);
});

test("a redrive of the plan redrives its failed step execution and waits for it: the plan looks again while it runs, then takes its result", async () => {
  let down = true;
  const fake = fakeFunction({ jobSeconds: 30, error: (n, body) => (down && body.action === "track" && !body.final ? new StatesError("Lambda.Unknown", "crashed") : undefined) });
  const input = { runId: "wave-redrive-both", recoveryInstanceIDs: ids("5c", 2) };
  const first = await execute(definition(), input, fake);
  assertStepFailed(first, "TrackAgain", "Lambda.Unknown");
  // The plan waits for the step execution to be redriven, about an hour, then fails at its
  // question: it does not redrive the step on its own.
  assert.deepEqual(first.trace.filter((t) => t.state === "WaitForStep" && t.wait !== undefined).map((t) => t.wait), [30, 60, 120, 240, 480, 900, 900, 900]);
  assert.deepEqual(placeStates(first).slice(-3), ["WaitForStep", "CheckStep", "StepGate"]);
  assert.equal(stepExecution(first, 0).redriveCount, 0);
  down = false;
  const redriven = await execute(definition(), input, { ...fake, redrive: first, redriveAfterSeconds: 60 });
  assertEnded(redriven, "FailbackComplete");
  assertResumedAt(redriven, "TrackAgain");
  assert.deepEqual(
    placeStates(redriven).slice(0, 13),
    ["StepGate", "FollowStep", "CheckStep", "StepGate", "FollowStep", "RedriveStep", "CheckStep", "StepGate", "FollowStep", "WaitForStep", "CheckStep", "StepGate", "FollowStep"],
    "read again, redriven, then running: looked at again after a wait",
  );
  assert.ok(redriven.trace.some((t) => t.state === "WaitForStep" && t.wait === 30), "the first look after 30 s");
  assert.equal(stepExecution(redriven, 0).redriveCount, 1);
  assert.equal(redriven.output.counts.succeeded, 2);
  assert.equal(launchCalls(fake).length, 1, "nothing launched again");
  assertEventsAcross([first, redriven], fake);
});

test("a plan that failed while its redriven step execution ran (which failed again since) reads it again on its next redrive: one redrive goes on", async () => {
  let tracking = false;
  let gateDown = false;
  const fake = fakeFunction({
    jobSeconds: 30,
    error: (n, body) => {
      if (!tracking && body.action === "track" && !body.final) return new StatesError("Lambda.Unknown", "crashed");
      if (gateDown && body.action === "stepExecution" && body.execution.status === "RUNNING") return new StatesError("Lambda.ServiceException", "the function cannot be reached");
      return undefined;
    },
  });
  const input = { runId: "wave-stale", recoveryInstanceIDs: ids("5f", 2) };
  const first = await execute(definition(), input, fake);
  assertStepFailed(first, "TrackAgain", "Lambda.Unknown");
  // Redriven with tracking still broken and the function unreachable for the plan's question
  // while the step execution runs: the plan fails at that question, having read it RUNNING; the
  // step execution fails again meanwhile.
  gateDown = true;
  const second = await execute(definition(), input, { ...fake, redrive: first });
  const secondPlace = placeFailed(second);
  assertEnded(secondPlace, "StepGate");
  assert.equal(secondPlace.error, "Lambda.ServiceException");
  assert.equal(secondPlace.variables.stepExecution.status, "RUNNING");
  assert.equal(stepExecution(second, 0).status, "FAILED");
  // Everything mended: one redrive reads the step execution again (FAILED, not RUNNING), redrives it, and the run completes.
  tracking = true;
  gateDown = false;
  const third = await execute(definition(), input, { ...fake, redrive: second, redriveAfterSeconds: 3600 });
  assertEnded(third, "FailbackComplete");
  assert.deepEqual(placeStates(third).slice(0, 6), ["StepGate", "FollowStep", "CheckStep", "StepGate", "FollowStep", "RedriveStep"]);
  assert.equal(stepExecution(third, 0).redriveCount, 2);
  assert.equal(launchCalls(fake).length, 1, "nothing launched again");
  assertEventsAcross([first, second, third], fake);
});

test("a step execution that can no longer be redriven (past its 14 days) stops the redriven plan at once, saying to start the run again", async () => {
  let down = true;
  const fake = fakeFunction({ jobSeconds: 30, error: (n, body) => (down && body.action === "track" && !body.final ? new StatesError("Lambda.Unknown", "crashed") : undefined) });
  const input = { runId: "wave-too-late", recoveryInstanceIDs: ids("5a", 2) };
  const first = await execute(definition(), input, fake);
  assertStepFailed(first, "TrackAgain", "Lambda.Unknown");
  down = false;
  // The plan's own 14 days are not over (it failed about an hour after its step execution); the step execution's are.
  const late = await execute(definition(), input, { ...fake, redrive: first, redriveAfterSeconds: 14 * 24 * 3600 - 600 });
  const latePlace = placeFailed(late);
  assertEnded(latePlace, "StepGate");
  assert.equal(latePlace.error, "StepExecutionFailed");
  assert.match(latePlace.cause, /could not be redriven \(Sfn\.ExecutionNotRedrivableException: Execution redrivable period exceeded/);
  assert.match(latePlace.cause, /same runId/);
  assert.deepEqual(placeStates(late).filter((n) => n === "RedriveStep"), ["RedriveStep"], "tried once, not waited on for an hour");
  assert.equal(launchCalls(fake).length, 1);
});

test("a step execution that could not be started is started again a few times; then the plan fails at its question, and a redrive starts it", async () => {
  // Refused once (a throttled start): started again after a while, the run completes on its own.
  let refusals = 1;
  const once = fakeFunction({});
  const refuseOnce = { start: () => (refusals-- > 0 ? new StatesError("StepFunctions.ExecutionLimitExceededException", "too many running executions") : undefined) };
  const recovered = await execute(definition(), { runId: "wave-start-again", recoveryInstanceIDs: ids("5e", 2) }, { ...once, sfnFaults: refuseOnce });
  assertEnded(recovered, "FailbackComplete");
  assert.deepEqual(placeStates(recovered).filter((n) => ["RunStep", "CheckStep", "StepGate", "WaitToStart"].includes(n)), ["RunStep", "CheckStep", "StepGate", "WaitToStart", "RunStep"]);
  assert.ok(recovered.trace.some((t) => t.state === "WaitToStart" && t.wait === 30));

  let refuse = true;
  const fake = fakeFunction({});
  const sfnFaults = { start: () => (refuse ? new StatesError("StepFunctions.ExecutionLimitExceededException", "too many running executions") : undefined) };
  const input = { runId: "wave-not-started", recoveryInstanceIDs: ids("5d", 2) };
  const first = await execute(definition(), input, { ...fake, sfnFaults });
  const firstPlace = placeFailed(first);
  assertEnded(firstPlace, "StepGate");
  assert.equal(firstPlace.error, "StepExecutionFailed");
  assert.match(firstPlace.cause, /could not be started or read \(Sfn\.ExecutionDoesNotExistException/);
  assert.equal(placeStates(first).filter((n) => n === "RunStep").length, 4, "started, then 3 times more");
  assert.equal(first.steps.length, 0);
  assert.equal(launchCalls(fake).length, 0, "nothing launched");
  refuse = false;
  const redriven = await execute(definition(), input, { ...fake, redrive: first });
  assertEnded(redriven, "FailbackComplete");
  assert.deepEqual(placeStates(redriven).slice(0, 7), ["StepGate", "FollowStep", "CheckStep", "StepGate", "FollowStep", "WaitToStart", "RunStep"]);
  assert.equal(redriven.output.counts.succeeded, 2);
  assertEventsAcross([first, redriven], fake);
});

test("redrive models Step Functions: an execution that ended in a Fail state re-enters it", async () => {
  const run = await execute(definition(), sample("invalid-misspelt-field.json"), fakeFunction());
  assertEnded(run, "RequestRefused");
  const again = await execute(definition(), sample("invalid-misspelt-field.json"), { ...fakeFunction(), redrive: run });
  assertEnded(again, "RequestRefused");
  assert.equal(again.trace.length, 1);
});

test("a run id that is null or not a string is not taken: the event id is", async () => {
  const input = sample("eventbridge-failback-request.json");
  const fake = fakeFunction();
  const run = await execute(definition(), { ...input, detail: { ...input.detail, runId: null } }, fake);
  assertEnded(run, "FailbackComplete");
  assert.equal(fake.calls[0].runId, input.id);
  assert.ok(fake.calls.every((c) => c.runId === input.id));
});

test("an event that cannot be published does not stop the failback", async () => {
  const fake = fakeFunction();
  const run = await execute(definition(), sample("stepfunctions-task.json"), {
    ...fake,
    publish: (entries) => {
      if (entries[0].DetailType === "Failback Step Started") throw new StatesError("EventBridge.AmazonEventBridgeException", "unavailable");
    },
  });
  assertEnded(run, "FailbackComplete");
  assert.deepEqual(published(run, "Failback Step Started"), []);
  assert.equal(run.trace.filter((t) => t.state === "PublishStepStarted" && t.retry).length, 3, "retried first");
  assert.deepEqual(published(run, "Failback Run Finished"), [run.output]);
});

/** A publish hook that fails every Failback Run Finished call: with an EventBridge error, or by failing its entry. */
const runFinishedFails = (failure) => (entries) => {
  if (entries[0].DetailType !== "Failback Run Finished") return undefined;
  if (failure === "failedEntry") return { failedEntries: { 0: { ErrorCode: "InternalFailure", ErrorMessage: "try again" } } };
  throw new StatesError(failure, "unavailable");
};
/** The input of the state a run ended in (for a Fail state: what it was given, the summary). */
const lastInput = (run) => run.trace.findLast((t) => "input" in t).input;

test("an incomplete run whose Run Finished event cannot be published fails FailbackIncomplete, its summary as the cause; a complete one still succeeds", async () => {
  const request = { runId: "wave-5", recoveryInstanceIDs: ids("0d", 6) };
  const options = { capacity: 2, jobSize: 2, jobSeconds: 100 };
  const announced = await execute(definition({ MaxRounds: 2 }), request, fakeFunction(options));
  assertEnded(announced, "FailbackIncomplete");
  for (const failure of ["EventBridge.InternalException", "failedEntry"]) {
    const run = await execute(definition({ MaxRounds: 2 }), request, { ...fakeFunction(options), publish: runFinishedFails(failure) });
    assertEnded(run, "FailbackIncompleteUnannounced");
    assert.deepEqual([run.status, run.error], ["FAILED", "FailbackIncomplete"], failure);
    assert.deepEqual(run.trace.filter((t) => t.state === "PublishRunFinished" && t.retry).map((t) => t.delay), [2, 4, 8], `${failure}: retried first`);
    assert.deepEqual(published(run, "Failback Run Finished"), []);
    // The cause is the summary the event would have carried, whole.
    assert.deepEqual(lastInput(run), announced.output);
    assert.deepEqual(JSON.parse(run.cause), announced.output);
    assert.deepEqual([announced.output.complete, announced.output.halted], [false, { step: "failback", reason: "STEP_INCOMPLETE" }]);
  }
  // A complete run whose event is lost still succeeds: nothing is missing but the event.
  const complete = await execute(definition(), sample("stepfunctions-task.json"), { ...fakeFunction(), publish: runFinishedFails("EventBridge.InternalException") });
  assertEnded(complete, "FailbackComplete");
  assert.equal(complete.output.complete, true);
  assert.deepEqual(published(complete, "Failback Run Finished"), []);
});

test("an unannounced incomplete run's cause stays within the 32768 characters Step Functions keeps: cut when longer, ASCII when it could be", async () => {
  const CAUSE_MAX = 32000;
  // An approval refused after step two with a long cause: the summary carries it (the step's error).
  const haltedBy = (message) => {
    const fake = fakeFunction({ tags: THREE_TAGS });
    return execute(definition(), THREE, { ...fake, answer: () => ({ error: "Rejected", cause: message, afterSeconds: 60 }), publish: runFinishedFails("EventBridge.InternalException") });
  };

  const long = await haltedBy(`denied ${"x".repeat(32000)}`); // a task failure's cause is at most 32768 characters too
  assertEnded(long, "FailbackIncompleteUnannounced");
  const whole = JSON.stringify(lastInput(long));
  assert.ok(whole.length > CAUSE_MAX, `${whole.length} characters`);
  assert.equal(long.cause.length, CAUSE_MAX);
  assert.match(long.cause, /\.\.\. \(cut at 32000 characters: the whole summary is the input of FailbackIncompleteUnannounced in the execution history\)$/);
  assert.ok(whole.startsWith(long.cause.slice(0, long.cause.indexOf("... (cut at"))), "the summary's beginning, as it is");

  // 16 000 characters of two bytes each: under 32000 characters, but over 32768 bytes. Each
  // non-ASCII character becomes "?", and the cause is the summary otherwise whole.
  const wide = await haltedBy(`refusé ${"é".repeat(16000)}`);
  assertEnded(wide, "FailbackIncompleteUnannounced");
  const summary = lastInput(wide);
  assert.ok(JSON.stringify(summary).length < CAUSE_MAX && Buffer.byteLength(JSON.stringify(summary)) > 32768);
  assert.equal(Buffer.byteLength(wide.cause), wide.cause.length, "ASCII only");
  const asciiCause = summary.steps[1].error.Cause.replace(/[^\x00-\x7F]/g, "?");
  assert.deepEqual(JSON.parse(wide.cause), { ...summary, steps: summary.steps.map((s, i) => (i === 1 ? { ...s, error: { ...s.error, Cause: asciiCause } } : s)) });

  // A short summary with a non-ASCII character is kept as it is.
  const short = await haltedBy("refusé");
  assertEnded(short, "FailbackIncompleteUnannounced");
  assert.deepEqual(JSON.parse(short.cause), lastInput(short));
  assert.match(short.cause, /refusé/);
});

test("the interpreter refuses a Fail state whose error or cause Step Functions would not keep whole", async () => {
  const failWith = (Error, Cause) => executeOne({ QueryLanguage: "JSONata", StartAt: "F", States: { F: { Type: "Fail", Error, Cause } } }, {}, { invoke: () => assert.fail("no function") });
  const ok = await failWith("E", "c".repeat(32768));
  assert.deepEqual([ok.status, ok.error, ok.cause.length], ["FAILED", "E", 32768]);
  await assert.rejects(failWith("E", "c".repeat(32769)), /Cause is 32769 bytes/);
  await assert.rejects(failWith("E", "é".repeat(16385)), /Cause is 32770 bytes/);
  await assert.rejects(failWith("E".repeat(257), "c"), /Error is 257 bytes/);
  await assert.rejects(failWith("E", "{% {'a': 1} %}"), /Cause must be a string/);
});

test("the largest request: 5000 ids through a quota of 500 stay within every state and variable limit", async () => {
  const requested = ids("1a", 5000);
  const fails = Object.fromEntries(requested.filter((_, i) => i % 7 === 0).map((id) => [id, "CONVERSION_FAIL"]));
  const fake = fakeFunction({ capacity: 500, jobSize: 100, jobSeconds: 1200, fails });
  const run = await execute(definition(), { runId: "wave-big", recoveryInstanceIDs: requested }, fake);
  assertEnded(run, "FailbackComplete");
  assert.equal(run.output.steps[0].rounds, 10);
  assert.equal(Object.keys(stepResults(fake)).length, 5000);
  assert.equal(run.output.counts.failed, Object.keys(fails).length);
  assertEvents(run, fake);
  assert.equal(fake.events.jobCompleted.length, 50);
});

// ---- Ordered plans ---------------------------------------------------------------------------

const THREE = sample("plan-three-steps.json");
const [DB_PRIMARY, DB_REPLICA] = THREE.steps[0].recoveryInstanceIDs;
const APP = ["i-0e1b2c3d4e5f60003", "i-0e1b2c3d4e5f60004", "i-0e1b2c3d4e5f60005", "i-0e1b2c3d4e5f60006"];
const WEB = THREE.steps[2].sourceServerIDs;
/** The fleet of the three-step sample: four app servers carry Tier=app, the others other tags. */
const THREE_TAGS = {
  ...Object.fromEntries(APP.map((id) => [id, { Tier: "app" }])),
  [DB_PRIMARY]: { Tier: "db" },
  [DB_REPLICA]: { Tier: "db" },
  "i-0e1b2c3d4e5f60007": { Tier: "batch" },
};
const approve = (afterSeconds = 60) => () => ({ output: { approvedBy: "ops" }, afterSeconds });

/** Each step's calls come after the step before it is summed up: strictly in order. */
function assertStepsInOrder(fake, names) {
  const stepOf = fake.calls.map((c) => c.step).filter(Boolean);
  const order = stepOf.filter((s, i) => s !== stepOf[i - 1]);
  assert.deepEqual(order, names, `steps called in order ${order}`);
  for (const name of names.slice(0, -1)) {
    const lastOfStep = fake.calls.findLastIndex((c) => c.step === name && c.action !== "stepSum");
    assert.equal(fake.calls[lastOfStep].final, true, `${name} ends with its final call`);
  }
}

test("a three-step plan: every step launched, tracked and summed up in order, with the wait and the approval between", async () => {
  const fake = fakeFunction({ tags: THREE_TAGS, jobSeconds: 600 });
  const approvals = [];
  const run = await execute(definition(), THREE, {
    ...fake,
    answer: (request) => {
      approvals.push(request);
      return { output: { approvedBy: "ops" }, afterSeconds: 1800 };
    },
  });
  assertEnded(run, "FailbackComplete");
  assert.deepEqual(fake.calls[0], { ...THREE, action: "plan", limits: PLAN_LIMITS });
  assertStepsInOrder(fake, ["databases", "app-servers", "web"]);
  const tags = THREE.tags;
  assert.deepEqual(launchCalls(fake), [
    { runId: THREE.runId, tags, step: "databases", recoveryInstanceIDs: [DB_PRIMARY, DB_REPLICA] },
    { runId: THREE.runId, tags, step: "app-servers", selector: { tags: { Tier: "app" } }, otherSteps: [{ step: "databases", recoveryInstanceIDs: [DB_PRIMARY, DB_REPLICA] }, { step: "web", sourceServerIDs: WEB }] },
    { runId: THREE.runId, tags, step: "web", sourceServerIDs: WEB },
  ]);
  const finals = trackCalls(fake).filter((c) => c.final);
  // One place each: it decides with the step's maxFailed, and the step's sum again.
  assert.deepEqual(finals.map((c) => [c.step, c.critical, c.maxFailed]), [
    ["databases", [DB_PRIMARY], null],
    ["app-servers", false, 1],
    ["web", [WEB[0]], null],
  ]);
  const sums = fake.calls.filter((c) => c.action === "stepSum");
  assert.deepEqual(sums.map((c) => [c.step, c.maxFailed, c.groups.length]), [["databases", null, 1], ["app-servers", 1, 1], ["web", null, 1]]);
  // Each step tracks only its own jobs.
  for (const c of trackCalls(fake)) {
    assert.ok(c.jobIDs.every((id) => fake.jobs.get(id).step === c.step), `${c.step} tracks its own jobs`);
  }
  assert.deepEqual(published(run, "Failback Step Started"), [
    { runId: THREE.runId, step: "databases", index: 0, steps: 3, instances: 2 },
    { runId: THREE.runId, step: "app-servers", index: 1, steps: 3, instances: 4 },
    { runId: THREE.runId, step: "web", index: 2, steps: 3, instances: 2 },
  ]);
  // The approval: after app-servers (which asks for it), before web, with this task's token.
  const [asked] = published(run, "Failback Step Approval Requested");
  assert.equal(approvals.length, 1);
  // It says what it approves: the next step and its instances in each place.
  // answered in half an hour: no reminder; answerBy a day (ApprovalTimeoutSeconds) after it was asked.
  assert.deepEqual(asked, {
    runId: THREE.runId, reminder: 0, pendingSince: asked.pendingSince, answerBy: new Date(Date.parse(asked.pendingSince) + 86400 * 1000).toISOString(),
    step: "app-servers", nextStep: "web", approving: "start step web", taskToken: approvals[0].token,
    counts: run.output.steps[1].counts, nextStepInstances: 2, nextStepPlaces: [{ sourceServerIDs: WEB }],
  });
  assert.equal(asked.pendingSince, run.events.find((e) => e.detailType === "Failback Step Approval Requested").time);
  assert.deepEqual(run.metrics, [], "nothing overdue, nothing unpublished");
  assert.equal(run.events.map((e) => e.detailType).indexOf("Failback Step Approval Requested"), 2, "asked after app-servers started, before web");
  assert.deepEqual(published(run, "Failback Plan Halted"), []);
  assert.deepEqual(run.waits.filter((w) => w === 300), [300], "databases waits 300 s after it finished");
  assert.deepEqual(run.output.steps.map((s) => [s.name, s.status, s.counts.succeeded]), [
    ["databases", "finished", 2],
    ["app-servers", "finished", 4],
    ["web", "finished", 2],
  ]);
  assert.equal(run.output.complete, true);
  assert.equal(run.output.halted, null);
  assert.deepEqual(run.output.counts, { ...ALL_ZERO, succeeded: 8, launched: 8 });
  assert.deepEqual(stepResults(fake)[recoveryOf(WEB[0])], "succeeded");
  assertEvents(run, fake);
});

test("a critical instance failing in step one halts the plan before step two: never launched, reported not started", async () => {
  const fake = fakeFunction({ tags: THREE_TAGS, fails: { [DB_PRIMARY]: "CONVERSION_FAIL" } });
  const run = await execute(definition(), THREE, { ...fake, answer: approve() });
  assertEnded(run, "FailbackIncomplete");
  assertStepsInOrder(fake, ["databases"]);
  assert.deepEqual(launchCalls(fake).map((c) => c.step), ["databases"], "app-servers and web never launched");
  assert.deepEqual(run.waits.filter((w) => w === 300), [], "no wait after a halted step");
  assert.deepEqual(published(run, "Failback Step Approval Requested"), []);
  const verdict = { halt: true, reason: "CRITICAL_FAILED", failed: 1, maxFailed: null, criticalFailed: [DB_PRIMARY], criticalFailedCount: 1, unfinished: 0 };
  assert.deepEqual(published(run, "Failback Plan Halted"), [
    { runId: THREE.runId, step: "databases", reason: "CRITICAL_FAILED", verdict, notStarted: ["app-servers", "web"] },
  ]);
  assert.deepEqual(run.output.halted, { step: "databases", reason: "CRITICAL_FAILED" });
  assert.equal(run.output.complete, false);
  assert.deepEqual(run.output.steps.map((s) => [s.name, s.status, s.reason]), [
    ["databases", "halted", "CRITICAL_FAILED"],
    ["app-servers", "not started", "PLAN_HALTED"],
    ["web", "not started", "PLAN_HALTED"],
  ]);
  assert.deepEqual(run.output.steps[1], { name: "app-servers", status: "not started", reason: "PLAN_HALTED" });
  assert.deepEqual(run.output.steps[0].verdict, verdict);
  assert.deepEqual(run.output.counts, { ...ALL_ZERO, succeeded: 1, failed: 1, launched: 2 });
  assertEvents(run, fake);

  // The replica is not critical: its failure alone does not halt the plan.
  const replica = fakeFunction({ tags: THREE_TAGS, fails: { [DB_REPLICA]: "LAUNCH_FAILED" } });
  const goesOn = await execute(definition(), THREE, { ...replica, answer: approve() });
  assertEnded(goesOn, "FailbackComplete");
  assert.equal(goesOn.output.steps[0].counts.failed, 1);
});

test("maxFailed: one failed app server is tolerated, two halt the plan TOO_MANY_FAILED before the approval", async () => {
  const tolerated = fakeFunction({ tags: THREE_TAGS, fails: { [APP[1]]: "LAUNCH_FAILED" } });
  const ok = await execute(definition(), THREE, { ...tolerated, answer: approve() });
  assertEnded(ok, "FailbackComplete");
  assert.deepEqual(ok.output.steps[1].verdict, { halt: false, reason: null, failed: 1, maxFailed: 1, criticalFailed: [], criticalFailedCount: 0, unfinished: 0 });
  assert.deepEqual(ok.output.steps.map((s) => s.status), ["finished", "finished", "finished"]);
  assert.equal(ok.output.counts.failed, 1);

  const exceeded = fakeFunction({ tags: THREE_TAGS, fails: { [APP[1]]: "LAUNCH_FAILED" }, rejects: [] , skips: [] });
  exceeded.fails[APP[2]] = "CONVERSION_FAIL";
  const halted = await execute(definition(), THREE, { ...exceeded, answer: approve() });
  assertEnded(halted, "FailbackIncomplete");
  assert.deepEqual(halted.output.halted, { step: "app-servers", reason: "TOO_MANY_FAILED" });
  assert.deepEqual(halted.output.steps.map((s) => [s.name, s.status]), [["databases", "finished"], ["app-servers", "halted"], ["web", "not started"]]);
  assert.deepEqual(published(halted, "Failback Step Approval Requested"), [], "a halted step asks for no approval");
  assert.deepEqual(launchCalls(exceeded).map((c) => c.step), ["databases", "app-servers"]);
  const [event] = published(halted, "Failback Plan Halted");
  assert.equal(event.verdict.failed, 2);
  assert.deepEqual(event.notStarted, ["web"]);
});

test("approval refused: the plan halts APPROVAL_REFUSED with the error and cause; the next step never starts", async () => {
  const fake = fakeFunction({ tags: THREE_TAGS });
  const run = await execute(definition(), THREE, { ...fake, answer: () => ({ error: "Rejected", cause: "not during the trading day", afterSeconds: 900 }) });
  assertEnded(run, "FailbackIncomplete");
  assert.deepEqual(run.output.halted, { step: "app-servers", reason: "APPROVAL_REFUSED" });
  assert.deepEqual(run.output.steps.map((s) => [s.name, s.status, s.reason]), [
    ["databases", "finished", undefined],
    ["app-servers", "halted", "APPROVAL_REFUSED"],
    ["web", "not started", "PLAN_HALTED"],
  ]);
  const error = { Error: "Rejected", Cause: "not during the trading day" };
  assert.deepEqual(run.output.steps[1].error, error);
  assert.equal(run.output.steps[1].counts.succeeded, 4, "the step itself finished");
  assert.deepEqual(published(run, "Failback Plan Halted"), [{ runId: THREE.runId, step: "app-servers", reason: "APPROVAL_REFUSED", error, notStarted: ["web"] }]);
  assert.deepEqual(launchCalls(fake).map((c) => c.step), ["databases", "app-servers"]);
  assert.deepEqual(published(run, "Failback Step Started").map((d) => d.step), ["databases", "app-servers"]);
  assert.deepEqual(run.trace.filter((t) => t.state === "RequestApproval" && t.retry), [], "an operator's refusal is not retried");
  assert.equal(published(run, "Failback Step Approval Requested").length, 1, "asked once");
  assertEvents(run, fake);
});

test("approval never given: the plan halts APPROVAL_TIMED_OUT after ApprovalTimeoutSeconds", async () => {
  const fake = fakeFunction({ tags: THREE_TAGS });
  const run = await execute(definition(), THREE, { ...fake, answer: () => undefined });
  assertEnded(run, "FailbackIncomplete");
  assert.deepEqual(run.output.halted, { step: "app-servers", reason: "APPROVAL_TIMED_OUT" });
  assert.equal(run.output.steps[1].error.Error, "States.Timeout");
  const asked = run.trace.findIndex((t) => t.state === "RequestApproval");
  const halted = run.trace.findIndex((t) => t.state === "HaltPlan");
  assert.ok(asked > 0 && halted > asked);
  assert.ok(run.elapsed >= 86400, `the default timeout is a day: ${run.elapsed} s`);
  assert.deepEqual(run.trace.filter((t) => t.state === "RequestApproval" && t.retry), [], "a timeout is not retried");
  assert.ok(run.elapsed < 2 * 86400, `asked once: ${run.elapsed} s`);

  // An answer later than the timeout is too late.
  const late = fakeFunction({ tags: THREE_TAGS });
  const tooLate = await execute(definition({ ApprovalTimeoutSeconds: 600 }), THREE, { ...late, answer: approve(700) });
  assertEnded(tooLate, "FailbackIncomplete");
  assert.equal(tooLate.output.halted.reason, "APPROVAL_TIMED_OUT");
  assert.ok(tooLate.elapsed < 86400, `${tooLate.elapsed} s`);
  // In time, it goes on.
  const inTime = fakeFunction({ tags: THREE_TAGS });
  const approved = await execute(definition({ ApprovalTimeoutSeconds: 600 }), THREE, { ...inTime, answer: approve(500) });
  assertEnded(approved, "FailbackComplete");
});

test("an approval pending past ApprovalPendingAlarmSeconds: counted for the approval-pending alarm and asked again with a new token, until answered; past ApprovalTimeoutSeconds from the first request it times out", async () => {
  const fake = fakeFunction({ tags: THREE_TAGS });
  const requests = [];
  // The approver answers the third request, 10 minutes after it: 40 minutes after the first.
  const run = await execute(definition({ ApprovalPendingAlarmSeconds: 900 }), THREE, {
    ...fake,
    answer: (request) => {
      requests.push(request);
      return requests.length === 3 ? { output: { approvedBy: "arn:aws:sts::111122223333:assumed-role/approver/ops" }, afterSeconds: 600 } : undefined;
    },
  });
  assertEnded(run, "FailbackComplete");
  const asked = published(run, "Failback Step Approval Requested");
  assert.deepEqual(asked.map((d) => d.reminder), [0, 1, 2]);
  assert.equal(new Set(asked.map((d) => d.taskToken)).size, 3, "each request its own token");
  assert.deepEqual(asked.map((d) => d.taskToken), requests.map((r) => r.token));
  assert.equal(new Set(asked.map((d) => d.pendingSince)).size, 1, "pending since the first request");
  assert.equal(new Set(asked.map((d) => d.answerBy)).size, 1, "one deadline for all");
  const times = run.events.filter((e) => e.detailType === "Failback Step Approval Requested").map((e) => Date.parse(e.time) / 1000);
  assert.deepEqual(times.slice(1).map((t, i) => t - times[i]), [900, 900], "asked again every ApprovalPendingAlarmSeconds");
  assert.deepEqual(run.metrics.map((m) => [m.state, m.namespace, m.name, m.dimensions, m.value, m.unit]), [
    ["ApprovalOverdue", "DrsFailback", "ApprovalsOverdue", { service: "drs-failback" }, 1, "Count"],
    ["ApprovalOverdue", "DrsFailback", "ApprovalsOverdue", { service: "drs-failback" }, 1, "Count"],
  ]);
  assert.deepEqual(run.output.steps[1].approval, { approvedBy: "arn:aws:sts::111122223333:assumed-role/approver/ops" });
  assert.deepEqual(launchCalls(fake).map((c) => c.step), ["databases", "app-servers", "web"]);

  // Never answered: reminders every 5 minutes for a week would be 2016; a run makes at most 48
  // (its history stays bounded), then waits out the week, and halts APPROVAL_TIMED_OUT on time.
  const silent = fakeFunction({ tags: THREE_TAGS });
  const timedOut = await execute(definition({ ApprovalPendingAlarmSeconds: 300, ApprovalTimeoutSeconds: 604800 }), THREE, { ...silent, answer: () => undefined });
  assertEnded(timedOut, "FailbackIncomplete");
  assert.deepEqual(timedOut.output.halted, { step: "app-servers", reason: "APPROVAL_TIMED_OUT" });
  assert.equal(timedOut.output.steps[1].error.Error, "States.Timeout");
  const reminders = published(timedOut, "Failback Step Approval Requested");
  assert.equal(reminders.length, 49, "the request and 48 reminders");
  assert.equal(timedOut.metrics.filter((m) => m.name === "ApprovalsOverdue").length, 48);
  const first = Date.parse(reminders[0].pendingSince) / 1000;
  const halted = Date.parse(timedOut.events.find((e) => e.detailType === "Failback Plan Halted").time) / 1000;
  assert.ok(halted - first >= 604800 && halted - first < 604800 + 60, `timed out a week after the first request: ${halted - first} s`);

  // A metric that cannot be written does not stop the approval.
  const failing = fakeFunction({ tags: THREE_TAGS });
  const tries = [];
  const unwritten = await execute(definition({ ApprovalPendingAlarmSeconds: 900 }), THREE, {
    ...failing,
    putMetric: () => {
      throw new StatesError("CloudWatch.CloudWatchException", "Rate exceeded");
    },
    answer: (request) => {
      tries.push(request);
      return tries.length === 2 ? { output: { approvedBy: "ops" }, afterSeconds: 60 } : undefined;
    },
  });
  assertEnded(unwritten, "FailbackComplete");
  assert.deepEqual(unwritten.metrics, []);
  assert.equal(published(unwritten, "Failback Step Approval Requested").length, 2);
});

test("the finishing's approval is reminded like a step's: counted, asked again with a new token, and times out from the first request", async () => {
  const fake = fakeFunction({ tags: THREE_TAGS });
  const requests = [];
  const run = await execute(definition({ ApprovalPendingAlarmSeconds: 1800, ApprovalTimeoutSeconds: 3600 }), { ...THREE, steps: THREE.steps.map((s) => ({ ...s, approval: false })), finish: "terminate" }, {
    ...fake,
    answer: (request) => {
      requests.push(request);
      return undefined;
    },
  });
  assertEnded(run, "FailbackComplete");
  const asked = published(run, "Failback Finishing Approval Requested");
  assert.deepEqual(asked.map((d) => d.reminder), [0, 1]);
  assert.notEqual(asked[0].taskToken, asked[1].taskToken);
  assert.deepEqual(run.metrics.map((m) => [m.state, m.name]), [["FinishApprovalOverdue", "ApprovalsOverdue"]]);
  assert.equal(run.output.finish.status, "timed out");
  assert.equal(run.output.finish.error.Error, "States.Timeout");
});

test("an event the plan cannot publish after its retries is counted (EventsNotPublished) for the events-not-published alarm, and the run goes on", async () => {
  const fake = fakeFunction({ tags: THREE_TAGS });
  const failing = ["PublishStepStarted", "PublishRunFinished"];
  const run = await execute(definition(), THREE, {
    ...fake,
    answer: approve(),
    publish: (entries, clock, state) => {
      if (failing.includes(state)) throw new StatesError("EventBridge.InternalException", "internal error");
      return undefined;
    },
  });
  // Complete: a Run Finished that cannot be published does not fail a complete run.
  assertEnded(run, "FailbackComplete");
  const counted = run.metrics.map((m) => [m.state, m.name, m.dimensions, m.value]);
  assert.deepEqual(counted, [
    ["StepStartedNotPublished", "EventsNotPublished", { service: "drs-failback" }, 1],
    ["StepStartedNotPublished", "EventsNotPublished", { service: "drs-failback" }, 1],
    ["StepStartedNotPublished", "EventsNotPublished", { service: "drs-failback" }, 1],
    ["CountRunFinishedNotPublished", "EventsNotPublished", { service: "drs-failback" }, 1],
  ]);
  assert.deepEqual(launchCalls(fake).map((c) => c.step), ["databases", "app-servers", "web"]);

  // A Plan Halted and an approval request that cannot be published are counted too; an incomplete
  // run whose Run Finished is lost still fails (FailbackIncompleteUnannounced), counted as well.
  const halting = fakeFunction({ tags: THREE_TAGS });
  const halted = await execute(definition(), THREE, {
    ...halting,
    publish: (entries, clock, state) => {
      if (["RequestApproval", "HaltPlan", "PublishRunFinished"].includes(state)) throw new StatesError("EventBridge.InternalException", "internal error");
      return undefined;
    },
    answer: () => assert.fail("nobody was asked"),
  });
  assertEnded(halted, "FailbackIncompleteUnannounced");
  assert.deepEqual(halted.metrics.map((m) => m.state), ["ApprovalNotPublished", "PlanHaltedNotPublished", "CountRunFinishedNotPublished"]);
});

/** A publish hook that fails the approval request's PutEvents call `times` times (all: Infinity). */
function approvalPublishFails(times, failure) {
  const tried = [];
  const publish = (entries, clock, state) => {
    if (state !== "RequestApproval") return undefined;
    tried.push(entries[0].Detail.taskToken);
    if (tried.length > times) return undefined;
    if (failure === "failedEntry") return { failedEntries: { 0: { ErrorCode: "ThrottlingException", ErrorMessage: "Rate exceeded" } } };
    throw new StatesError(failure, "Rate exceeded (Service: EventBridge, Status Code: 400)");
  };
  return { publish, tried };
}

test("an approval request whose publishing fails once is sent again, with a new token, and waits for the operator", async () => {
  for (const failure of ["EventBridge.AmazonEventBridgeException", "EventBridge.ThrottlingException", "failedEntry"]) {
    const fake = fakeFunction({ tags: THREE_TAGS });
    const { publish, tried } = approvalPublishFails(1, failure);
    const answered = [];
    const run = await execute(definition(), THREE, {
      ...fake,
      publish,
      answer: (request) => {
        answered.push(request.token);
        return { output: { approvedBy: "ops" }, afterSeconds: 600 };
      },
    });
    assertEnded(run, "FailbackComplete");
    assert.equal(tried.length, 2, `${failure}: published twice`);
    assert.notEqual(tried[0], tried[1], `${failure}: each attempt has its own token`);
    assert.deepEqual(answered, [tried[1]], `${failure}: the operator answers the request that was published`);
    assert.deepEqual(published(run, "Failback Step Approval Requested").map((d) => d.taskToken), [tried[1]]);
    assert.deepEqual(run.trace.filter((t) => t.state === "RequestApproval" && t.retry).map((t) => [t.retry, t.delay]), [
      [failure === "failedEntry" ? "EventBridge.FailedEntry" : failure, 2],
    ]);
    assert.deepEqual(launchCalls(fake).map((c) => c.step), ["databases", "app-servers", "web"]);
    assert.equal(run.output.halted, null);
    assertEvents(run, fake);
  }
});

test("an approval request that cannot be published halts the plan APPROVAL_NOT_REQUESTED after three retries", async () => {
  for (const failure of ["EventBridge.InternalException", "failedEntry"]) {
    const fake = fakeFunction({ tags: THREE_TAGS });
    const { publish, tried } = approvalPublishFails(Infinity, failure);
    const run = await execute(definition(), THREE, { ...fake, publish, answer: () => assert.fail("nobody was asked") });
    assertEnded(run, "FailbackIncomplete");
    assert.equal(tried.length, 4, `${failure}: the first attempt and three retries`);
    assert.deepEqual(run.trace.filter((t) => t.state === "RequestApproval" && t.retry).map((t) => t.delay), [2, 4, 8]);
    assert.deepEqual(run.output.halted, { step: "app-servers", reason: "APPROVAL_NOT_REQUESTED" });
    assert.deepEqual(run.output.steps.map((s) => [s.name, s.status, s.reason]), [
      ["databases", "finished", undefined],
      ["app-servers", "halted", "APPROVAL_NOT_REQUESTED"],
      ["web", "not started", "PLAN_HALTED"],
    ]);
    const { error } = run.output.steps[1];
    if (failure === "failedEntry") {
      assert.equal(error.Error, "EventBridge.FailedEntry");
      assert.deepEqual(JSON.parse(error.Cause), { Entries: [{ ErrorCode: "ThrottlingException", ErrorMessage: "Rate exceeded" }], FailedEntryCount: 1 });
    } else {
      assert.equal(error.Error, failure);
    }
    assert.equal(run.output.steps[1].counts.succeeded, 4, "the step itself finished");
    assert.deepEqual(published(run, "Failback Step Approval Requested"), []);
    assert.deepEqual(published(run, "Failback Plan Halted"), [{ runId: THREE.runId, step: "app-servers", reason: "APPROVAL_NOT_REQUESTED", error, notStarted: ["web"] }]);
    assert.deepEqual(launchCalls(fake).map((c) => c.step), ["databases", "app-servers"], "web never launched");
    assertEvents(run, fake);
  }
});

test("the interpreter fails a PutEvents call only as the EventBridge integration does", async () => {
  const oneEvent = {
    QueryLanguage: "JSONata",
    StartAt: "Put",
    States: { Put: { Type: "Task", Resource: "arn:aws:states:::events:putEvents", Arguments: { Entries: [{ EventBusName: "b", Source: "s", DetailType: "d", Detail: { a: 1 } }] }, End: true } },
  };
  const run = (publish) => executeOne(oneEvent, {}, { invoke: () => assert.fail("no function"), publish });
  const ok = await run(() => undefined);
  assert.deepEqual([ok.status, ok.output.FailedEntryCount, ok.events.length], ["SUCCEEDED", 0, 1]);
  const failed = await run(() => ({ failedEntries: { 0: { ErrorCode: "InternalFailure", ErrorMessage: "x" } } }));
  assert.deepEqual([failed.status, failed.error, failed.events.length], ["FAILED", "EventBridge.FailedEntry", 0]);
  await assert.rejects(run(() => { throw new StatesError("States.TaskFailed", "x"); }), /EventBridge\.<exception>/);
  await assert.rejects(run(() => { throw new StatesError("EventBridge.FailedEntry", "x"); }), /failedEntries/);
  await assert.rejects(run(() => ({ failedEntries: { 1: { ErrorCode: "X" } } })), /not one of the 1 entries/);
  await assert.rejects(run(() => ({ failed: [0] })), /publish hook answers/);
});

test("waitAfterSeconds waits on the clock; each step has its own TimeLimitSeconds clock and MaxRounds", async () => {
  const fake = fakeFunction({ tags: THREE_TAGS, jobSeconds: 300 });
  const run = await execute(definition(), THREE, { ...fake, answer: approve(0) });
  assertEnded(run, "FailbackComplete");
  const dbSummed = run.trace.findIndex((t) => t.state === "FinalTrack");
  const wait = run.trace.findIndex((t) => t.wait === 300);
  const appStart = run.trace.findIndex((t, i) => i > wait && t.state === "StartStep");
  assert.ok(dbSummed < wait && wait < appStart, "the wait comes after databases is summed up, before app-servers starts");
  assert.equal(run.trace.filter((t) => t.state === "WaitAfterStep" && "input" in t).length, 1, "app-servers and web have no waitAfterSeconds");
  // On the clock: app-servers' first launch is 300 s (and the calls around it) after databases' last call.
  const dbLast = fake.calls.findLastIndex((c) => c.step === "databases");
  assert.equal(fake.calls[dbLast + 1].step, "app-servers");
  const dbEnd = run.trace[dbSummed + 1].at; // the state after databases' last call
  const appStarted = run.trace[appStart].at;
  assert.ok(appStarted - dbEnd >= 300 && appStarted - dbEnd < 310, `app-servers started ${appStarted - dbEnd} s after databases ended`);

  // Three steps of 1500 s each under a limit of 1800 s per step: each step gets its full limit.
  const slowPlan = { runId: "slow", steps: [0, 1, 2].map((k) => ({ name: `wave-${k}`, recoveryInstanceIDs: ids(`2${k}`, 4) })) };
  const slow = fakeFunction({ capacity: 2, jobSize: 2, jobSeconds: 700 });
  const slowRun = await execute(definition({ TimeLimitSeconds: 1800, MaxRounds: 2 }), slowPlan, slow);
  assertEnded(slowRun, "FailbackComplete");
  assert.ok(slowRun.elapsed > 3 * 1400, `${slowRun.elapsed} s: longer than one limit, every step complete`);
  assert.deepEqual(slowRun.output.steps.map((s) => [s.rounds, s.stoppedBy]), [[2, null], [2, null], [2, null]]);
  assert.equal(launchCalls(slow).length, 6, "two rounds per step, MaxRounds 2 each");
});

test("a selector step: the first launch carries the selector, later rounds the deferred ids", async () => {
  const fake = fakeFunction({ tags: THREE_TAGS, capacity: 2, jobSize: 1, jobSeconds: 120 });
  const run = await execute(definition(), THREE, { ...fake, answer: approve() });
  assertEnded(run, "FailbackComplete");
  const app = launchCalls(fake, "app-servers");
  assert.deepEqual(app[0], {
    runId: THREE.runId, tags: THREE.tags, step: "app-servers", selector: { tags: { Tier: "app" } },
    otherSteps: [{ step: "databases", recoveryInstanceIDs: [DB_PRIMARY, DB_REPLICA] }, { step: "web", sourceServerIDs: WEB }],
  });
  assert.deepEqual(app[1], { runId: THREE.runId, tags: THREE.tags, step: "app-servers", recoveryInstanceIDs: APP.slice(2) });
  assert.equal(app.length, 2);
  assert.deepEqual(Object.keys(stepResults(fake)).filter((id) => APP.includes(id)).sort(), APP);
  assert.ok(!("i-0e1b2c3d4e5f60007" in stepResults(fake)), "an instance with another tag is not selected");
});

test("every instance in exactly one step: an instance tagged after the plan was accepted so that step 2's selector matches it stays in step 3, which names it", async () => {
  const tags = structuredClone(THREE_TAGS);
  const webInstance = recoveryOf(WEB[0]);
  const fake = fakeFunction({
    tags,
    // Tagged once the plan was checked, before the app servers' step starts.
    error: (_, body) => {
      if (body.step === "app-servers") tags[webInstance] = { Tier: "app" };
    },
  });
  const run = await execute(definition(), THREE, { ...fake, answer: approve() });
  assertEnded(run, "FailbackComplete");
  const [appLaunch] = launchCalls(fake, "app-servers");
  assert.deepEqual(appLaunch.otherSteps, [{ step: "databases", recoveryInstanceIDs: [DB_PRIMARY, DB_REPLICA] }, { step: "web", sourceServerIDs: WEB }]);
  const appJobs = [...fake.jobs.values()].filter((j) => j.step === "app-servers");
  assert.ok(!appJobs.some((j) => j.ids.includes(webInstance)), "not launched by the app servers' step");
  const webJobs = [...fake.jobs.values()].filter((j) => j.step === "web");
  assert.ok(webJobs.some((j) => j.ids.includes(webInstance)), "launched by the step that names it");
  const finished = Object.fromEntries(fake.events.stepFinished.map((e) => [e.step, Object.keys(e.results)]));
  assert.ok(!finished["app-servers"].includes(webInstance) && finished.web.includes(webInstance), "counted once, in its own step");
  assert.equal(run.output.counts.succeeded, 8, "2 databases + 4 app servers + 2 web servers, each once");
  const appFinal = trackCalls(fake, "app-servers").find((c) => c.final);
  assert.deepEqual(appFinal.heldByOtherSteps, [{ step: "web", recoveryInstanceIDs: [webInstance] }], "its last call names the instance the web step holds");
});

test("redrive: the same runId again runs the plan from the start; what was launched stays in its jobs, the fixed step succeeds", async () => {
  const fake = fakeFunction({ tags: THREE_TAGS, fails: { [APP[0]]: "LAUNCH_FAILED", [APP[1]]: "LAUNCH_FAILED" } });
  const first = await execute(definition(), THREE, { ...fake, answer: approve(), executionName: "first" });
  assertEnded(first, "FailbackIncomplete");
  assert.deepEqual(first.output.halted, { step: "app-servers", reason: "TOO_MANY_FAILED" });
  const jobsAfterFirst = new Map(fake.jobs);

  // The cause is fixed; DRS shows the two failed app servers ready for launch again.
  delete fake.fails[APP[0]];
  delete fake.fails[APP[1]];
  fake.readyAgain.add(APP[0]).add(APP[1]);
  fake.newExecution();
  const calls = fake.calls.length;
  const startTime = new Date(Date.parse(first.ended) + 3600 * 1000).toISOString();
  const second = await execute(definition(), THREE, { ...fake, answer: approve(), executionName: "second", startTime });
  assertEnded(second, "FailbackComplete");
  const redriveCalls = fake.calls.slice(calls);
  assert.ok(redriveCalls.every((c) => c.runId === THREE.runId), "the same run");
  // databases: launched again by the state machine, reported launched in its old job, no new job.
  const dbJobs = [...fake.jobs.values()].filter((j) => j.step === "databases");
  assert.equal(dbJobs.length, 1, "no database launched twice");
  const dbTracks = redriveCalls.filter((c) => c.action === "track" && c.step === "databases");
  assert.equal(dbTracks.length, 2, "finished at its first tracking call, then summed up");
  assert.deepEqual(dbTracks[0].jobIDs, dbJobs.map((j) => j.jobID));
  // app-servers: the two that failed launched again in a new job, the two that succeeded not.
  const newJobs = [...fake.jobs.values()].filter((j) => !jobsAfterFirst.has(j.jobID));
  assert.deepEqual(newJobs.map((j) => [j.step, j.ids]), [["app-servers", [APP[0], APP[1]]], ["web", WEB.map(recoveryOf)]]);
  assert.deepEqual(second.output.steps.map((s) => [s.name, s.status]), [["databases", "finished"], ["app-servers", "finished"], ["web", "finished"]]);
  assert.deepEqual(second.output.steps[1].counts, { ...ALL_ZERO, succeeded: 4, launched: 4 });
  assert.equal(second.output.complete, true);
});

test("redrive: a failed and a succeeded instance of one job; resumed, the step counts each by its latest attempt and the plan completes", async () => {
  const [primary, replica] = ids("4a", 2);
  const plan = { runId: "redrive-shared-job", steps: [{ name: "db", recoveryInstanceIDs: [primary, replica], critical: [primary] }, { name: "app", recoveryInstanceIDs: ids("4b", 1) }] };
  const fake = fakeFunction({ jobSize: 2, fails: { [primary]: "LAUNCH_FAILED" } });
  const first = await execute(definition(), plan, { ...fake, executionName: "first" });
  assertEnded(first, "FailbackIncomplete");
  assert.deepEqual(first.output.halted, { step: "db", reason: "CRITICAL_FAILED" });
  assert.deepEqual(first.output.steps[0].counts, { ...ALL_ZERO, succeeded: 1, failed: 1, launched: 2 });
  const [shared] = fake.jobs.values();
  assert.deepEqual([fake.jobs.size, shared.ids], [1, [primary, replica]], "one job holds both");

  // Fixed; DRS shows the primary ready for launch again. The replica stays in the first job.
  delete fake.fails[primary];
  fake.readyAgain.add(primary);
  fake.newExecution();
  const startTime = new Date(Date.parse(first.ended) + 3600 * 1000).toISOString();
  const second = await execute(definition(), plan, { ...fake, executionName: "second", startTime });
  assertEnded(second, "FailbackComplete");
  const again = [...fake.jobs.values()].filter((j) => j.step === "db" && j !== shared);
  assert.deepEqual(again.map((j) => j.ids), [[primary]], "only the primary launched again");
  // The step's last call reads both jobs: the first one still holds the primary's failed attempt.
  const final = trackCalls(fake, "db").at(-1);
  assert.deepEqual(final.jobIDs, [shared.jobID, again[0].jobID]);
  const db = second.output.steps[0];
  assert.deepEqual(db.counts, { ...ALL_ZERO, succeeded: 2, launched: 2 });
  assert.deepEqual(db.verdict, { halt: false, reason: null, failed: 0, maxFailed: null, criticalFailed: [], criticalFailedCount: 0, unfinished: 0 });
  assert.deepEqual(fake.events.stepFinished.at(-2).results, { [primary]: "succeeded", [replica]: "succeeded" }, "Step Finished: each instance once, by its latest attempt");
  assert.deepEqual(second.output.steps.map((s) => [s.name, s.status]), [["db", "finished"], ["app", "finished"]]);
  assert.equal(second.output.complete, true);
});

test("a critical instance skipped as already failed back came back; skipped for another reason, it halts the plan", async () => {
  const [done, other] = ids("5a", 2);
  const plan = { runId: "skips", steps: [{ name: "db", recoveryInstanceIDs: [done, other], critical: true, maxFailed: 0 }, { name: "app", recoveryInstanceIDs: ids("5b", 1) }] };
  const fake = fakeFunction({ skips: [done] });
  const run = await execute(definition(), plan, fake);
  assertEnded(run, "FailbackComplete");
  assert.deepEqual(run.output.steps[0].verdict, { halt: false, reason: null, failed: 0, maxFailed: 0, criticalFailed: [], criticalFailedCount: 0, unfinished: 0 });
  assert.deepEqual(run.output.steps[0].counts, { ...ALL_ZERO, succeeded: 1, launched: 1, skipped: 1, notLaunched: 1 });
  assert.equal(stepResults(fake)[done], "skipped:FAILBACK_COMPLETED");
  assertEvents(run, fake);

  const notReady = fakeFunction({ skips: { [done]: "FAILBACK_NOT_STARTED" } });
  const halted = await execute(definition(), plan, notReady);
  assertEnded(halted, "FailbackIncomplete");
  assert.deepEqual(halted.output.steps[0].verdict, { halt: true, reason: "CRITICAL_FAILED", failed: 1, maxFailed: 0, criticalFailed: [done], criticalFailedCount: 1, unfinished: 0 });
  assert.deepEqual(launchCalls(notReady).map((c) => c.step), ["db"]);
});

test("a dry run of a plan: one plan call, each step's counts and planned jobs; nothing launched or published", async () => {
  const input = sample("plan-dry-run.json");
  const fake = fakeFunction();
  const run = await execute(definition(), input, fake);
  assertEnded(run, "DryRunPlanned");
  assert.deepEqual(fake.calls, [{ ...input, action: "plan", limits: PLAN_LIMITS }]);
  assert.deepEqual(run.events, []);
  assert.equal(run.output.runId, input.runId);
  assert.equal(run.output.dryRun, true);
  // The function's answer, as the fake gives it (ids of two per job): each step with its defaults.
  assert.deepEqual(run.output.steps.map((s) => [s.name, s.instances, s.counts.deferred, s.groups[0].plannedJobSizes, s.groups[0].critical, s.maxFailed, s.approval, s.waitAfterSeconds]),
    input.steps.map((s) => {
      const n = s.recoveryInstanceIDs.length;
      return [s.name, n, n, n > 2 ? [2, n - 2] : [n], s.critical ?? false, s.maxFailed ?? null, s.approval ?? false, s.waitAfterSeconds ?? 0];
    }));
  assert.ok(input.steps.length > 1, "the sample is a plan of several steps");
  assert.deepEqual(run.output.steps[1].groups[0].notLaunched, [], "nothing it would not launch (the DRY_RUN group is left out, as the function leaves it)");
});

test("a plan the function refuses ends the run before anything is launched", async () => {
  const bad = { ...THREE, steps: [THREE.steps[0], { ...THREE.steps[1], selector: { tags: { Tier: "nothing" } } }] };
  const fake = fakeFunction({ tags: THREE_TAGS });
  const run = await execute(definition(), bad, fake);
  assertEnded(run, "RequestRefused");
  assert.match(run.cause, /steps\[1\] \(app-servers\)\.selector matches no recovery instance/);
  assert.equal(fake.calls.length, 1);
  assert.deepEqual(run.events, []);
});

test("the function decides what comes next: each launch and track call carries the step's loop, and the state machine waits and calls as the answer's next says", async () => {
  const input = sample("stepfunctions-task.json");
  const fake = fakeFunction({ capacity: 1, jobSize: 1, jobSeconds: 120 });
  const run = await execute(definition(), input, fake);
  assertEnded(run, "FailbackComplete");
  const interval = templateDefault("TrackIntervalSeconds");
  const seen = loops(fake, "failback");
  assert.deepEqual(seen.filter((l) => l.call === "launch").map((l) => [l.rounds, l.deferred]), [[0, 0], [1, 2], [2, 1]]);
  assert.ok(seen.every((l) => l.limits.maxRounds === templateDefault("MaxRounds") && l.limits.trackIntervalSeconds === interval), "the deploy-time settings");
  assert.ok(seen.filter((l) => l.call === "track" && l.deferred > 0).every((l) => l.deferredReasons.join() === "QUOTA"), "why the deferred wait");
  // Each call followed the answer before it: the wait it named, then the call it named.
  const answered = [];
  for (const step of run.trace) {
    if (step.state === "WaitForNext") answered.push(step.wait);
  }
  assert.ok(answered.includes(0) && answered.includes(interval), `waits as told: ${answered}`);
  const calls = fake.calls.slice(1).filter((c) => c.action !== "stepSum").map((c) => (c.action === "track" ? (c.final ? "final" : "track") : "launch"));
  assert.equal(calls.at(-1), "final");
  for (const [i, call] of calls.entries()) {
    if (call === "launch" && i > 0) assert.equal(calls[i - 1], "track", "a round again only after a tracking call said so");
  }
  // The step's end is the function's: stepEnd on the last call.
  assert.deepEqual(run.output.steps[0].stoppedBy, null);
  assert.equal(run.output.steps[0].complete, true);
});

test("a long step hands itself over to fresh step executions before nearing the history cap: each execution stays far under 25 000 events, nothing is launched, announced or started twice, the run ends as one", async () => {
  // Two rounds of 10 h jobs tracked every 30 s: 2 400 tracking calls, far more than one execution makes.
  const input = { runId: "wave-long", recoveryInstanceIDs: ids("21", 4) };
  const fake = fakeFunction({ jobSeconds: 10 * 3600, capacity: 2, jobSize: 1 });
  const d = definition({ TrackIntervalSeconds: 30, TimeLimitSeconds: 43200 * 2, MaxRounds: 500 });
  const run = await execute(d, input, fake);
  assertEnded(run, "FailbackComplete");
  assert.ok(run.steps.length >= 5, `${run.steps.length} step executions`);
  assert.ok(run.history < 400, `the plan: ${run.history} history events`);
  // Named after the run (its first execution and run id, hashed), the step and the part: a start
  // made again is the same execution.
  const runHash = require("node:crypto").createHash("sha256").update("test wave-long").digest("hex").slice(0, 40);
  for (const [i, e] of run.steps.entries()) {
    assert.equal(e.executionArn.split(":").at(-1), `drs-${runHash}-s0-g0-p${i + 1}`);
    assert.ok(e.history < 20000, `part ${i + 1}: ${e.history} history events`);
    assert.equal(e.status, "SUCCEEDED");
    if (i < run.steps.length - 1) {
      assert.equal(e.state, "HandOver");
      assert.equal(e.output.handover.runId, "wave-long");
      // Each part after the first went on with a tracking call where the one before stopped.
      // reading the part before's output itself (its input only names that part).
      assert.deepEqual(run.steps[i + 1].trace.filter((t) => "input" in t).slice(0, 4).map((t) => t.state), ["Begin", "ReadHandover", "Resume", "Track"]);
      // Started by the step's place (a child execution of the plan's Map), named in the console.
      assert.deepEqual(run.steps[i + 1].input, { continueFrom: e.executionArn, AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID: run.places[0].executionArn });
    } else {
      assert.equal(e.state, "StepEnded");
    }
  }
  assert.equal(launchCalls(fake).length, 2, "two rounds: the quota holds two at a time");
  // What a tracking call learnt of a job's length (jobSeconds) is in every later call's loop,
  // across the handovers too; before the first job ended, nothing.
  const tracks = fake.calls.filter((c) => c.action === "track" && c.loop);
  const learnt = tracks.findIndex((c) => c.loop.jobSeconds != null);
  assert.ok(learnt > 0, "learnt once a job ended");
  assert.ok(tracks.slice(0, learnt).every((c) => c.loop.jobSeconds === null));
  assert.ok(tracks.slice(learnt).every((c) => c.loop.jobSeconds === 10 * 3600), "carried to the end");
  assert.ok(run.steps.slice(1).some((e) => e.output?.handover?.jobSeconds === 10 * 3600 || e.state === "StepEnded"));
  assert.equal(fake.jobs.size, 4);
  assert.equal(run.output.counts.succeeded, 4);
  assert.equal(published(run, "Failback Step Started").length, 1, "the step started once");
  assert.equal(published(run, "Failback Run Finished").length, 1, "the run finished once");
  assertEvents(run, fake);
});

test("the largest step handed over: 5 000 ids through a quota of 500, with jobs of an hour tracked every 30 s, fits every part's input and output within 256 KiB", async () => {
  const requested = ids("6a", 5000);
  const critical = requested.slice(0, 1000);
  const fake = fakeFunction({ capacity: 500, jobSize: 100, jobSeconds: 3600 });
  const d = definition({ TrackIntervalSeconds: 30, TimeLimitSeconds: 43200, MaxRounds: 500 });
  const plan = { runId: "wave-big-long", tags: { Wave: "w".repeat(200) }, steps: [{ name: "bulk", recoveryInstanceIDs: requested, critical }] };
  const run = await execute(d, plan, fake);
  assertEnded(run, "FailbackComplete");
  assert.ok(run.steps.length >= 3, `${run.steps.length} parts`);
  assert.equal(run.output.counts.succeeded, 5000);
  const sizes = run.steps.map((e) => Buffer.byteLength(JSON.stringify({ Input: e.input, Output: e.output })));
  assert.ok(Math.max(...sizes) < 256 * 1024, `parts' input and output: ${sizes.join(", ")} bytes`);
  assertEvents(run, fake);
});

test("every execution has an overall TimeoutSeconds: past it the run stops TIMED_OUT wherever it is, without a Run Finished of its own (the stack's ExecutionEndedRule has the function publish it)", async () => {
  const d = definition();
  assert.equal(d.plan.TimeoutSeconds, 90 * 24 * 3600, "90 days");
  assert.equal(d.step.TimeoutSeconds, 90 * 24 * 3600, "90 days");
  const fake = fakeFunction({ tags: THREE_TAGS });
  // An approval answered after three hours (no reminder before), under a limit of two: the run
  // stops once it returns.
  const quiet = definition({ ApprovalPendingAlarmSeconds: 43200 });
  const run = await execute({ ...quiet, plan: { ...quiet.plan, TimeoutSeconds: 7200 } }, THREE, { ...fake, answer: approve(3 * 3600) });
  assert.equal(run.status, "TIMED_OUT");
  assert.equal(run.error, "States.Timeout");
  assert.equal(run.state, "StartStep", "stopped where it was: the next step was about to start");
  assert.deepEqual(published(run, "Failback Run Finished"), []);
  assert.deepEqual(launchCalls(fake).map((c) => c.step), ["databases", "app-servers"]);
});

test("a launch error in a later step without a job: a tracking call at once says send the round again, and when that fails too the execution fails there — no wait or approval to replay on a redrive", async () => {
  const fake = fakeFunction({
    tags: THREE_TAGS,
    error: (n, body) => (body.step === "app-servers" && body.action === undefined ? functionError("DrsAccessDenied", "denied") : undefined),
  });
  const run = await execute(definition(), THREE, { ...fake, answer: approve() });
  assertStepFailed(run, "LaunchAgain", "DrsAccessDenied");
  // No answer to follow: a tracking call at once, told of the launch error, answers what comes
  // next — nothing of the step runs, so the round is sent once more.
  assert.deepEqual(trackCalls(fake, "app-servers"), [{ action: "track", runId: THREE.runId, step: "app-servers", jobIDs: [], reportedJobIDs: [] }]);
  assert.deepEqual(loops(fake, "app-servers").map((l) => [l.call, l.launchError]), [["launch", false], ["track", true], ["launch", true]]);
  assert.equal(launchCalls(fake, "app-servers").length, 2);
  assert.deepEqual(published(run, "Failback Plan Halted"), []);
});

/** The states the plan's execution entered, in order (not its step executions'). */
const planStates = (run) => run.trace.filter((t) => "input" in t && !t.execution).map((t) => t.state);
/** The states of a step's places (the plan's Map children), in order. */
const placeStates = (run) => run.trace.filter((t) => "input" in t && isPlace(t.execution)).map((t) => t.state);
/** The most history events any execution of a run recorded (Step Functions stops one at 25 000). */
const historyEvents = (run) => Math.max(run.history, ...run.steps.map((e) => e.history));

/** The largest input, output and variables of any state of a run, in bytes. */
function largest(run) {
  const sizes = run.trace.filter((t) => "input" in t).map((t) => Buffer.byteLength(JSON.stringify(t.input)));
  return Math.max(...sizes, Buffer.byteLength(JSON.stringify(run.output ?? null)));
}

test("the largest plan: 5000 instances over 41 steps stay within every state, variable and event limit", async () => {
  // One step of 3000 instances (through a quota of 500), then 40 steps of 50; every seventh
  // instance fails, in steps that tolerate it.
  const all = ids("3a", 5000);
  const steps = [{ name: "bulk", recoveryInstanceIDs: all.slice(0, 3000) }];
  for (let k = 0; k < 40; k++) steps.push({ name: `wave-${String(k).padStart(2, "0")}`, recoveryInstanceIDs: all.slice(3000 + k * 50, 3050 + k * 50), approval: k % 10 === 9 });
  const fails = Object.fromEntries(all.filter((_, i) => i % 7 === 0).map((id) => [id, "CONVERSION_FAIL"]));
  const fake = fakeFunction({ capacity: 500, jobSize: 100, jobSeconds: 1200, fails });
  const run = await execute(definition(), { runId: "plan-big", steps }, { ...fake, answer: approve() });
  assertEnded(run, "FailbackComplete");
  assert.equal(run.output.steps.length, 41);
  assert.equal(run.output.counts.failed, Object.keys(fails).length);
  assert.equal(run.output.counts.succeeded + run.output.counts.failed, 5000);
  assert.equal(Object.keys(stepResults(fake)).length, 5000);
  assert.ok(largest(run) < MAX_BYTES, `${largest(run)} bytes`);
  assert.ok(historyEvents(run) < 25000, `about ${historyEvents(run)} history events`);
  assertEvents(run, fake);

  // The worst halt: one critical step of 5000 in which every instance fails: the verdict (in the
  // output and the Plan Halted event) names the first 100 and counts all 5000; the Step Finished
  // event lists every one.
  const doomed = fakeFunction({ capacity: 500, jobSize: 100, jobSeconds: 1200, fails: Object.fromEntries(all.map((id) => [id, "CONVERSION_FAIL"])) });
  const plan = { runId: "plan-big-halt", steps: [{ name: "everything", recoveryInstanceIDs: all, critical: true }, { name: "after", recoveryInstanceIDs: ids("3b", 1) }] };
  const halted = await execute(definition(), plan, doomed);
  assertEnded(halted, "FailbackIncomplete");
  const worst = halted.output.steps[0].verdict;
  assert.deepEqual([worst.reason, worst.failed, worst.criticalFailedCount, worst.criticalFailed.length], ["CRITICAL_FAILED", 5000, 5000, 100]);
  assert.deepEqual(published(halted, "Failback Plan Halted")[0].verdict, worst);
  assert.equal(Object.values(stepResults(doomed)).filter((r) => r === "failed:CONVERSION_FAIL").length, 5000);
  assert.deepEqual(halted.output.steps[1], { name: "after", status: "not started", reason: "PLAN_HALTED" });
  assert.ok(largest(halted) < MAX_BYTES, `${largest(halted)} bytes`);
  assertEvents(halted, doomed);
});

test("a step across accounts and regions: each place a child execution of the plan's Map, side by side, its calls in its own account and region; the step summed up across them — a critical failure in one account halts the plan before the next step's places", async () => {
  const A = { account: "222233334444", region: "us-east-1" };
  const B = { account: "333344445555", region: "us-west-2" };
  const arn = (t, id) => `arn:aws:drs:${t.region}:${t.account}:recovery-instance/${id}`;
  const [a1, a2, b1, b2, own] = ids("7a", 5);
  const input = {
    runId: "wave-across",
    steps: [
      { name: "databases", recoveryInstanceIDs: [arn(A, a1), arn(B, b1)], critical: [arn(B, b1)] },
      { name: "apps", recoveryInstanceIDs: [own, arn(A, a2), arn(B, b2)], maxFailed: 1 },
    ],
  };
  const fake = fakeFunction({ jobSeconds: 600, fails: { [a2]: "CONVERSION_FAIL" } });
  const run = await execute(definition(), input, fake);
  assertEnded(run, "FailbackComplete");
  // Two places, then three: each its own child execution, started together.
  assert.equal(run.places.length, 5);
  const started = (step) => run.places.filter((p) => p.input.stepIndex === step).map((p) => p.started);
  assert.equal(new Set(started(0)).size, 1, "a step's places start together");
  assert.deepEqual(launchCalls(fake, "databases").map((c) => [c.target, c.recoveryInstanceIDs]), [[A, [a1]], [B, [b1]]]);
  assert.deepEqual(launchCalls(fake, "apps").map((c) => [c.target, c.recoveryInstanceIDs]), [[undefined, [own]], [A, [a2]], [B, [b2]]]);
  assert.ok(trackCalls(fake, "apps").filter((c) => c.final).every((c) => c.maxFailed === null), "across places, maxFailed is the sum's to apply");
  // The step's sum: every place's counts, maxFailed over all of them (one failure tolerated).
  const sums = fake.calls.filter((c) => c.action === "stepSum");
  assert.deepEqual(sums.map((c) => [c.step, c.groups.map((g) => g.stepResult.target ?? null)]), [["databases", [A, B]], ["apps", [null, A, B]]]);
  assert.equal(run.output.steps[1].counts.failed, 1);
  assert.equal(run.output.steps[1].status, "finished");
  assert.deepEqual(run.output.steps[1].targets.map((t) => [t.target ?? null, t.counts.succeeded]), [[null, 1], [A, 0], [B, 1]]);
  // The step's places took as long as the slowest, not the sum of them.
  const databases = run.places.filter((p) => p.input.stepIndex === 0);
  const took = (p) => (Date.parse(p.ended) - Date.parse(p.started)) / 1000;
  assert.ok(Math.max(...databases.map(took)) < 2 * Math.min(...databases.map(took)), "side by side");
  const mapRan = run.trace.filter((t) => !t.execution && ["RunPlaces", "PlacesRan"].includes(t.state) && t.input !== undefined).slice(0, 2).map((t) => t.at);
  assert.ok(mapRan[1] - mapRan[0] < 1.5 * Math.max(...databases.map(took)), "the step waited for its slowest place, not for the sum of them");

  // The critical database fails in 333344445555: the apps never start, in any account.
  const failing = fakeFunction({ jobSeconds: 600, fails: { [b1]: "CONVERSION_FAIL" } });
  const halted = await execute(definition(), { ...input, runId: "wave-across-halt" }, failing);
  assertEnded(halted, "FailbackIncomplete");
  assert.deepEqual(halted.output.halted, { step: "databases", reason: "CRITICAL_FAILED" });
  assert.deepEqual(halted.output.steps[0].verdict.criticalFailed, [b1]);
  assert.equal(launchCalls(failing, "apps").length, 0, "no place of the next step started");
  assert.equal(halted.places.length, 2);
});

test("a place that fails fails the plan at the step's Map; a redrive of the plan redrives that place alone, and the run completes — nothing launched twice", async () => {
  const A = { account: "222233334444", region: "us-east-1" };
  const arn = (t, id) => `arn:aws:drs:${t.region}:${t.account}:recovery-instance/${id}`;
  const [a1, own] = ids("7b", 2);
  let down = true;
  // DRS in 222233334444 cannot be read by the step's last call: that place's step execution fails
  // at FinalTrack, its place at StepGate (about an hour later), the plan at RunPlaces.
  const fake = fakeFunction({ jobSeconds: 120, error: (n, body) => (down && body.final && body.target?.account === A.account ? new StatesError("DrsReadFailed", "DRS could not be read") : undefined) });
  const input = { runId: "wave-place-fails", steps: [{ name: "all", recoveryInstanceIDs: [own, arn(A, a1)] }] };
  const first = await execute(definition(), input, fake);
  assertStepFailed(first, "FinalTrack", "DrsReadFailed");
  const [home, there] = first.places;
  assert.equal(home.status, "SUCCEEDED", "the other place ended well");
  assert.equal(there.status, "FAILED");
  down = false;
  const redriven = await execute(definition(), input, { ...fake, redrive: first, redriveAfterSeconds: 600 });
  assertEnded(redriven, "FailbackComplete");
  assertResumedAt(redriven, "FinalTrack");
  assert.equal(redriven.places.find((p) => p.executionArn === home.executionArn).redriveCount, 0, "the place that ended well is not run again");
  assert.equal(redriven.places.find((p) => p.executionArn === there.executionArn).redriveCount, 1);
  assert.equal(launchCalls(fake).length, 2, "each place launched once");
  assert.equal(redriven.output.counts.succeeded, 2);
});

test("an approval is recorded with who gave it: the step it let go carries the approver's answer in the run's output and its Failback Run Finished event; an oversized answer only its length", async () => {
  const fake = fakeFunction({ tags: THREE_TAGS, jobSeconds: 120 });
  const approver = { approvedBy: "arn:aws:sts::111122223333:assumed-role/dr-approver/alice", change: "CHG-1042" };
  const run = await execute(definition(), THREE, { ...fake, answer: () => ({ output: approver, afterSeconds: 60 }) });
  assertEnded(run, "FailbackComplete");
  assert.deepEqual(run.output.steps.map((s) => s.approval), [undefined, approver, undefined], "the step whose approval let the next one go");
  assert.deepEqual(published(run, "Failback Run Finished"), [run.output]);

  const chatty = fakeFunction({ tags: THREE_TAGS, jobSeconds: 120 });
  const long = await execute(definition(), THREE, { ...chatty, answer: () => ({ output: { note: "x".repeat(5000) }, afterSeconds: 60 }) });
  assertEnded(long, "FailbackComplete");
  assert.equal(long.output.steps[1].approval.truncated, true);
  assert.ok(long.output.steps[1].approval.length > 5000);
});

/** A rehearsal, started by the schedule at `startTime`, with the stored plan `stored` (text, or none). */
function rehearse(fake, stored, options = {}) {
  const parameters = stored === undefined ? {} : { [REHEARSAL_PARAMETER]: stored };
  return executeOne(definition().rehearsal, {}, { ...fake, parameters, startTime: "2026-12-04T06:00:00.000Z", executionName: "schedule-1", ...options });
}
const rehearsalCalls = (fake) => fake.calls.filter((c) => c.action === "rehearsal");
const REHEARSAL_RUN = "rehearsal-2026-12-04T060000";

test("a rehearsal: the stored plan read, dry-run and judged by the function, announced and counted 0 when a failback of it would start now", async () => {
  const fake = fakeFunction({ tags: THREE_TAGS });
  const run = await rehearse(fake, JSON.stringify(THREE));
  assert.equal(run.status, "SUCCEEDED", `${run.error}: ${run.cause}`);
  assert.deepEqual(run.output, { runId: REHEARSAL_RUN, ready: true, steps: 3, instances: 8, findings: [] });
  assert.deepEqual(rehearsalCalls(fake), [{ action: "rehearsal", runId: REHEARSAL_RUN, plan: JSON.stringify(THREE), limits: PLAN_LIMITS }]);
  assert.equal(fake.calls.length, 1, "one call: nothing launched, nothing tracked");
  assert.deepEqual(published(run, "Failback Rehearsal Finished"), [{ ...run.output, parameter: REHEARSAL_PARAMETER }]);
  assert.deepEqual(run.metrics.map((m) => [m.namespace, m.name, m.dimensions, m.value, m.unit]), [["DrsFailback", "RehearsalsFailed", { service: "drs-failback" }, 0, "Count"]]);
});

test("the schedule's dry run refused, DRS not usable, the stored plan unreadable or missing, or instances gone: the rehearsal fails, announced, and the alarm metric is written", async () => {
  const failed = (run) => {
    assert.equal(run.status, "FAILED");
    assert.equal(run.error, "RehearsalNotReady");
    assert.deepEqual(run.metrics.map((m) => [m.name, m.value]), [["RehearsalsFailed", 1]], "counted for the rehearsal alarm");
    const [event] = published(run, "Failback Rehearsal Finished");
    assert.equal(event.ready, false);
    assert.deepEqual(JSON.parse(run.cause), (({ parameter, ...verdict }) => verdict)(event), "the verdict is the failure's cause");
    return event;
  };
  // A selector that no longer matches (a tag changed): the plan check refuses the plan.
  const renamed = fakeFunction({ tags: {} });
  const refusedRun = await rehearse(renamed, JSON.stringify(THREE));
  const refusal = failed(refusedRun);
  assert.equal(refusal.stage, "dry run");
  assert.equal(refusal.error.Error, "InvalidFailbackRequest");
  assert.equal(rehearsalCalls(renamed).length, 1, "a refusal is not retried");

  // The function may not read DRS (its role drifted): DrsAccessDenied, not retried.
  const denied = fakeFunction({ tags: THREE_TAGS, error: () => functionError("DrsAccessDenied", "not authorized to perform drs:DescribeRecoveryInstances") });
  const deniedRun = await rehearse(denied, JSON.stringify(THREE));
  assert.equal(failed(deniedRun).error.Error, "DrsAccessDenied");

  // The stored plan is not JSON.
  const garbled = fakeFunction({ tags: THREE_TAGS });
  const garbledRun = await rehearse(garbled, '{"steps": [');
  assert.match(failed(garbledRun).error.Cause, /plan is not JSON/);

  // The parameter is gone: nothing to rehearse, and the function is not called.
  const missing = fakeFunction({ tags: THREE_TAGS });
  const missingRun = await rehearse(missing, undefined);
  const unread = failed(missingRun);
  assert.equal(unread.stage, "read the stored plan");
  assert.equal(unread.error.Error, "Ssm.ParameterNotFoundException");
  assert.equal(missing.calls.length, 0);

  // An instance the plan names by id is gone from DRS: the dry run skips it NOT_FOUND, a finding.
  const deleted = fakeFunction({ tags: THREE_TAGS, gone: [DB_REPLICA] });
  const deletedRun = await rehearse(deleted, JSON.stringify({ recoveryInstanceIDs: [DB_PRIMARY, DB_REPLICA] }));
  const found = failed(deletedRun);
  assert.deepEqual(found.findings, [{ step: "failback", problem: "INSTANCES_GONE", reason: "NOT_FOUND", instances: 1, recoveryInstanceIDs: [DB_REPLICA] }]);
});

test("a rehearsal whose event cannot be published is still counted (and the lost event too); one whose metric cannot be written fails, for the rehearsal alarm's executions-failed half", async () => {
  const fake = fakeFunction({ tags: THREE_TAGS });
  const lost = await rehearse(fake, JSON.stringify(THREE), {
    publish: () => {
      throw new StatesError("EventBridge.InternalException", "internal error");
    },
  });
  assert.equal(lost.status, "SUCCEEDED");
  assert.deepEqual(lost.metrics.map((m) => [m.name, m.value]), [["EventsNotPublished", 1], ["RehearsalsFailed", 0]]);

  const unwritten = await rehearse(fakeFunction({ tags: THREE_TAGS }), JSON.stringify(THREE), {
    putMetric: () => {
      throw new StatesError("CloudWatch.CloudWatchException", "Rate exceeded");
    },
  });
  assert.equal(unwritten.status, "FAILED");
  assert.equal(unwritten.state, "RecordRehearsal");
  assert.equal(published(unwritten, "Failback Rehearsal Finished").length, 1, "announced before");
});
