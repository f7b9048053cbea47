// A small interpreter for the part of the Amazon States Language that failback.asl.json uses:
// JSONata states (Pass, Task, Choice, Wait, Succeed, Fail) with Arguments, Output, Assign, Retry,
// Catch and TimeoutSeconds, evaluated with the JSONata version Step Functions runs (2.0.6), and
// these task resources: lambda:invoke (a callback plays the function), events:putEvents (recorded,
// with a hook that may fail the call or some of its entries), events:putEvents.waitForTaskToken
// (the same, then a hook answers the task token: success, failure, or never), CloudWatch's
// putMetricData (recorded, with a hook that may fail it) and Systems Manager's getParameter (from
// the run's parameters); and Step Functions' own (below). Anything else in a definition -- a field, a
// retrier's, catcher's or choice rule's field, a resource -- is refused rather than ignored, so a
// change this interpreter does not model fails loudly instead of being tested wrongly. Waits do
// not sleep: a virtual clock moves on by each Wait's seconds, each retry's delay, each callback's
// answer time and whatever a task says it took, and the context object carries it
// (Execution.StartTime, State.EnteredTime, as ISO-8601 strings).
//
// Modelled from the Step Functions documentation: a JSONata expression is a whole string
// "{% ... %}"; one that evaluates to nothing (undefined) fails the state with
// States.QueryEvaluationError; Assign and Output both see the variables as they were when the
// state was entered; a state's input and output, a task's arguments and result, and the variables
// one Assign sets are each at most 256 KiB; a retrier waits IntervalSeconds x BackoffRate^n
// (capped by MaxDelaySeconds; with JitterStrategy FULL the interpreter takes the whole delay, the
// longest a real run waits); a task that runs longer than its TimeoutSeconds fails with
// States.Timeout; a .waitForTaskToken task finds its token in $states.context.Task.Token (only
// there), and its result is the output SendTaskSuccess gave, its error SendTaskFailure's; the
// EventBridge integration takes Detail as a JSON object, at most 10 entries, and answers
// {Entries: [{EventId}], FailedEntryCount}; a call with failed entries fails the task with
// EventBridge.FailedEntry (the entries that did not fail are delivered; the cause is taken to be
// the PutEvents answer, which the documentation does not say), and the call's own errors are
// named EventBridge.<exception> (as the other integrations name theirs: Lambda.ServiceException).
// Each attempt of a .waitForTaskToken task (a retry too) has a token of its own.
//
// A Distributed Map state (Mode DISTRIBUTED, ExecutionType STANDARD; Items, ItemSelector with
// $states.context.Map.Item.Index and .Value, MaxConcurrency, ToleratedFailurePercentage 0, Label)
// runs each item as a child execution of its ItemProcessor, with a history and a redrive count of
// its own and none of the parent's variables; the children run side by side (each starts when the
// Map does; the parent goes on when the last ends); the output is their outputs in item order. One
// child failing fails the Map Run (States.ExceedToleratedFailureThreshold, more than 0 % failed).
// Not modelled: Step Functions then aborts the children still running -- here they run to their
// end, as a redrive of an aborted child would have them. A redrive of the parent redrives the Map
// Run: the children that succeeded keep their outputs, the others are redriven where they stopped.
"use strict";

const jsonata = require("jsonata");

const MAX_PAYLOAD_BYTES = 256 * 1024;
const MAX_TIMEOUT_SECONDS = 99999999;
// What Step Functions keeps of a failure's error and cause (ExecutionFailedEventDetails: "maximum
// length" 256 and 32768). What it does with a longer one is not documented, so a Fail state that
// gives one is refused; the length is taken in UTF-8 bytes, the stricter reading.
const MAX_ERROR_LENGTH = 256;
const MAX_CAUSE_LENGTH = 32768;

class StatesError extends Error {
  constructor(error, cause) {
    super(`${error}: ${cause}`);
    this.error = error;
    this.cause = cause;
  }
}

const FIELDS = {
  common: ["Type", "Comment", "QueryLanguage", "Next", "End", "Assign", "Output"],
  Pass: [],
  Task: ["Resource", "Arguments", "Retry", "Catch", "TimeoutSeconds"],
  Choice: ["Choices", "Default"],
  Wait: ["Seconds"],
  Succeed: [],
  Fail: ["Error", "Cause"],
  Map: ["Items", "ItemSelector", "ItemProcessor", "MaxConcurrency", "ToleratedFailurePercentage", "Label"],
};
const RETRIER_FIELDS = ["ErrorEquals", "IntervalSeconds", "MaxAttempts", "BackoffRate", "MaxDelaySeconds", "JitterStrategy"];
const CATCHER_FIELDS = ["ErrorEquals", "Next", "Assign", "Output"];
const CHOICE_RULE_FIELDS = ["Condition", "Next", "Assign"];

const LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke";
const PUT_EVENTS = "arn:aws:states:::events:putEvents";
// Step Functions itself: a child execution run and waited for (its output parsed: .sync:2), and
// the AWS SDK integration's GetExecutionHistory (the newest event) and RedriveExecution, over the
// executions of `options.sfn` (stepFunctions(): the state machines by ARN, and every execution
// they ran).
const START_EXECUTION_SYNC = "arn:aws:states:::states:startExecution.sync:2";
const EXECUTION_HISTORY = "arn:aws:states:::aws-sdk:sfn:getExecutionHistory";
const REDRIVE_EXECUTION = "arn:aws:states:::aws-sdk:sfn:redriveExecution";
/** Step Functions stops an execution whose history reaches this many events. */
const MAX_HISTORY_EVENTS = 25000;
const PUT_EVENTS_WAIT = "arn:aws:states:::events:putEvents.waitForTaskToken";
// The AWS SDK integrations of CloudWatch's PutMetricData (a metric the alarms watch, written by the
// state machine itself) and Systems Manager's GetParameter (the rehearsal's stored plan). Their
// error names follow the SDK integrations' rule (ServiceName.ErrorName: CloudWatch.*, Ssm.*), taken
// from the documentation's examples; the definitions catch them with States.ALL and rely on none.
const PUT_METRIC_DATA = "arn:aws:states:::aws-sdk:cloudwatch:putMetricData";
const GET_PARAMETER = "arn:aws:states:::aws-sdk:ssm:getParameter";
const RESOURCES = [START_EXECUTION_SYNC, EXECUTION_HISTORY, REDRIVE_EXECUTION, LAMBDA_INVOKE, PUT_EVENTS, PUT_EVENTS_WAIT, PUT_METRIC_DATA, GET_PARAMETER];
const METRIC_DATUM_FIELDS = ["MetricName", "Dimensions", "Value", "Unit", "Timestamp"];
// PutMetricData's units (the API reference's StandardUnit, the ones a count or a time takes).
const METRIC_UNITS = ["Count", "Seconds", "Milliseconds", "None"];
const EVENT_ENTRY_FIELDS = ["Detail", "DetailType", "EventBusName", "Source", "Resources", "Time", "TraceHeader"];

/** Replaces ${Name} as CloudFormation's DefinitionSubstitutions do: in the text, before parsing. */
function substitute(text, substitutions) {
  const out = text.replace(/\$\{([^}]+)\}/g, (whole, name) => {
    if (!(name in substitutions)) throw new Error(`no substitution for ${whole}`);
    return String(substitutions[name]);
  });
  return JSON.parse(out);
}

const byteSize = (value) => Buffer.byteLength(JSON.stringify(value) ?? "", "utf8");

function checkSize(value, what) {
  const bytes = byteSize(value);
  if (bytes > MAX_PAYLOAD_BYTES) {
    throw new StatesError("States.DataLimitExceeded", `${what} is ${bytes} bytes`);
  }
}

/** A Fail state's Error or Cause: a string Step Functions keeps whole, or nothing. */
function checkFailure(name, field, value, max) {
  if (value === undefined) return;
  if (typeof value !== "string") throw new Error(`${name}: ${field} must be a string, got ${JSON.stringify(value)?.slice(0, 80)}`);
  const bytes = Buffer.byteLength(value, "utf8");
  if (bytes > max) throw new Error(`${name}: ${field} is ${bytes} bytes, more than the ${max} Step Functions keeps`);
}

function checkFields(object, allowed, what) {
  for (const key of Object.keys(object)) {
    if (!allowed.includes(key)) throw new Error(`${what}: field ${key} is not modelled`);
  }
}

/** Refuses what the interpreter does not model, before the state runs. */
function checkState(name, state) {
  checkFields(state, [...FIELDS.common, ...(FIELDS[state.Type] ?? [])], `${name} (a ${state.Type} state)`);
  for (const [i, r] of (state.Retry ?? []).entries()) {
    checkFields(r, RETRIER_FIELDS, `${name}.Retry[${i}]`);
    if (r.JitterStrategy !== undefined && !["FULL", "NONE"].includes(r.JitterStrategy)) {
      throw new Error(`${name}.Retry[${i}]: JitterStrategy ${r.JitterStrategy}`);
    }
  }
  for (const [i, c] of (state.Catch ?? []).entries()) checkFields(c, CATCHER_FIELDS, `${name}.Catch[${i}]`);
  for (const [i, r] of (state.Choices ?? []).entries()) checkFields(r, CHOICE_RULE_FIELDS, `${name}.Choices[${i}]`);
  if (state.Type === "Task" && !RESOURCES.includes(state.Resource)) {
    throw new Error(`${name}: resource ${state.Resource} is not modelled`);
  }
}

/**
 * Functions Step Functions adds to JSONata 2.0.6 that the definitions use: $hash(value,
 * algorithm), a hex digest ("MD5", "SHA-1", "SHA-256", "SHA-384", "SHA-512"); $parse(text), a
 * JSON string to its value.
 */
const STEP_FUNCTIONS_FUNCTIONS = {
  parse: (text) => {
    if (typeof text !== "string") throw new Error("$parse needs a JSON string");
    return JSON.parse(text);
  },
  hash: (value, algorithm) => {
    const names = { MD5: "md5", "SHA-1": "sha1", "SHA-256": "sha256", "SHA-384": "sha384", "SHA-512": "sha512" };
    if (typeof value !== "string" || !(algorithm in names)) {
      throw new Error(`$hash needs a string and one of ${Object.keys(names).join(", ")}`);
    }
    return require("node:crypto").createHash(names[algorithm]).update(value, "utf8").digest("hex");
  },
};

async function evaluate(expression, bindings, field) {
  let value;
  try {
    value = await jsonata(expression).evaluate(undefined, { ...STEP_FUNCTIONS_FUNCTIONS, ...bindings });
  } catch (e) {
    throw new StatesError("States.QueryEvaluationError", `${field}: ${e.message}`);
  }
  if (value === undefined) {
    throw new StatesError(
      "States.QueryEvaluationError",
      `The JSONata expression '${expression.trim()}' specified for the field '${field}' returned nothing (undefined).`,
    );
  }
  return JSON.parse(JSON.stringify(value));
}

/** A field value: a JSONata string is evaluated, objects and arrays are walked, the rest is kept. */
async function resolve(value, bindings, field) {
  if (typeof value === "string") {
    const m = /^\{%([\s\S]*)%\}$/.exec(value);
    return m ? evaluate(m[1], bindings, field) : value;
  }
  if (Array.isArray(value)) {
    const out = [];
    for (const [i, item] of value.entries()) out.push(await resolve(item, bindings, `${field}[${i}]`));
    return out;
  }
  if (value !== null && typeof value === "object") {
    const out = {};
    for (const [k, v] of Object.entries(value)) out[k] = await resolve(v, bindings, `${field}/${k}`);
    return out;
  }
  return value;
}

// States.ALL matches any error but two terminal ones: States.Runtime and States.DataLimitExceeded
// (a result, input or output over 256 KiB), which no Retry or Catch takes.
const TERMINAL = ["States.Runtime", "States.DataLimitExceeded"];
const matches = (errorEquals, error) =>
  errorEquals.includes(error) || (errorEquals.includes("States.ALL") && !TERMINAL.some((t) => error.startsWith(t)));

/** The delay before retry number `used` (0-based) of a retrier, as long as a real run may wait. */
function retryDelay(retrier, used) {
  const delay = (retrier.IntervalSeconds ?? 1) * (retrier.BackoffRate ?? 2) ** used;
  return Math.min(delay, retrier.MaxDelaySeconds ?? Infinity);
}

const isPlainObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);

/**
 * What the `publish` hook made of a PutEvents call: nothing (every entry delivered), or
 * `{failedEntries: {index: {ErrorCode, ErrorMessage}}}` (those entries not delivered). Returns the
 * failed entries by index; anything else is refused.
 */
function failedEntriesOf(outcome, entries, name) {
  if (outcome === undefined) return {};
  if (!isPlainObject(outcome) || Object.keys(outcome).join() !== "failedEntries" || !isPlainObject(outcome.failedEntries)) {
    throw new Error(`${name}: the publish hook answers nothing or {failedEntries: {index: {ErrorCode, ErrorMessage}}}`);
  }
  for (const [i, e] of Object.entries(outcome.failedEntries)) {
    if (!/^\d+$/.test(i) || Number(i) >= entries.length) throw new Error(`${name}: failed entry ${i} is not one of the ${entries.length} entries`);
    checkFields(e, ["ErrorCode", "ErrorMessage"], `${name}: failed entry ${i}`);
    if (typeof e.ErrorCode !== "string" || e.ErrorCode === "") throw new Error(`${name}: failed entry ${i} needs an ErrorCode`);
  }
  return outcome.failedEntries;
}

/** The publish hook may fail the call only as the integration does: EventBridge.<exception>. */
function checkPublishError(e, name) {
  if (!(e instanceof StatesError)) throw e;
  if (!/^EventBridge\.[A-Za-z]+$/.test(e.error) || e.error === "EventBridge.FailedEntry") {
    throw new Error(
      `${name}: the publish hook failed the call with ${e.error}; the EventBridge integration fails it with EventBridge.<exception>, ` +
        "or with EventBridge.FailedEntry for failed entries (answer {failedEntries})",
    );
  }
  return e;
}

/** The entries of an events:putEvents task, checked as the EventBridge integration takes them. */
function eventEntries(args, name) {
  checkFields(args, ["Entries", "EndpointId"], `${name}: arguments of events:putEvents`);
  const entries = args.Entries;
  if (!Array.isArray(entries) || entries.length < 1 || entries.length > 10) {
    throw new StatesError("States.Runtime", `${name}: Entries must be a list of 1 to 10 events`);
  }
  for (const [i, e] of entries.entries()) {
    checkFields(e, EVENT_ENTRY_FIELDS, `${name}: Entries[${i}]`);
    for (const key of ["DetailType", "Source", "EventBusName"]) {
      if (typeof e[key] !== "string" || e[key] === "") {
        throw new StatesError("States.Runtime", `${name}: Entries[${i}].${key} must be a non-empty string`);
      }
    }
    if (e.Detail === null || typeof e.Detail !== "object" || Array.isArray(e.Detail)) {
      throw new StatesError("States.Runtime", `${name}: Entries[${i}].Detail must be a JSON object`);
    }
  }
  return entries;
}

const DEFAULT_START_TIME = "2026-11-30T10:00:00.000Z";

/**
 * Runs `definition` on `input`. Options:
 * - `invoke(resource, args, clock)` plays lambda:invoke and either returns its result or throws a
 *   StatesError; `clock.advance(seconds)` says how long it took, `clock.elapsed()` how long the
 *   execution has run, `clock.now()` the time (ISO-8601);
 * - `publish(entries, clock, state)`, when given, sees every PutEvents call (of both event
 *   resources) before it is recorded; it may throw a StatesError named EventBridge.<exception> (the
 *   call failed: nothing delivered), or answer `{failedEntries: {index: {ErrorCode,
 *   ErrorMessage}}}` (those entries not delivered: the task fails EventBridge.FailedEntry);
 * - `answer({token, state, entries, clock})` answers a .waitForTaskToken task once its events are
 *   published: `{output, afterSeconds}` (SendTaskSuccess), `{error, cause, afterSeconds}`
 *   (SendTaskFailure), or nothing (never answered: the task times out after its TimeoutSeconds);
 * - `putMetric(datum, clock, state)`, when given, sees each metric datum a PutMetricData call writes
 *   before it is recorded in the run's `metrics`, and may throw a StatesError (the call failed);
 * - `parameters`: the Systems Manager parameters GetParameter reads, by name (a missing one fails
 *   the call Ssm.ParameterNotFoundException);
 * - `sleep(seconds, state)`, when given, makes each Wait really wait (for a run against a real
 *   function); `executionName` (default "test"), `startTime` (ISO-8601; a second execution of the
 *   same run starts after the first ended), `maxTransitions`.
 * Returns { status, output | error+cause, trace, waits, events, elapsed, ended, variables }: `trace`
 * has each state entered (with its input and the seconds elapsed then: `at`), each retry, catch
 * and wait; `events` are the events the state machine published ({state, eventBusName, source, detailType, detail,
 * time}).
 */
async function execute(definition, input, options) {
  const { invoke, publish, answer, putMetric, parameters = {}, sleep, executionName = "test", startTime = DEFAULT_START_TIME, maxTransitions = 100000, redrive } = options;
  // A redrive (RedriveExecution) of a failed, aborted or timed-out execution: the same execution,
  // from its unsuccessful state, with the input that state had and the variables as they were;
  // the states that succeeded do not run again. Its clock goes on from the redrive's start time.
  if (redrive && !["FAILED", "TIMED_OUT", "ABORTED"].includes(redrive.status)) {
    throw new Error(`only a failed, timed-out or aborted execution can be redriven, not ${redrive.status}`);
  }
  const START_TIME = redrive ? Date.parse(redrive.started) : Date.parse(startTime);
  let variables = redrive ? { ...redrive.variables } : {};
  const trace = [];
  const waits = [];
  const events = [];
  const metrics = [];
  let now = START_TIME;
  let tokens = 0;
  const clock = {
    advance: (seconds) => {
      now += Math.round(seconds * 1000);
    },
    elapsed: () => (now - START_TIME) / 1000,
    now: () => new Date(now).toISOString(),
  };
  const stateMachineArn = options.stateMachineArn ?? "arn:aws:states:local:000000000000:stateMachine:sm";
  const executionArn = `${stateMachineArn.replace(":stateMachine:", ":execution:")}:${executionName}`;
  const sfn = options.sfn;
  const redriveCount = redrive ? (redrive.redriveCount ?? 0) + 1 : 0;
  // The execution's history, counted as Step Functions writes it: the execution's start and end,
  // each state entered and exited, each task attempt scheduled, started and ended.
  let history = redrive?.history ?? 2;
  // Each entry into a Map state starts a Map Run of its own; a redrive resumes the one its
  // unsuccessful Map state had.
  const mapRuns = { ...(redrive?.mapRuns ?? {}) };
  let mapRunCount = redrive?.mapRunCount ?? 0;
  let resuming = !!redrive;
  const context = {
    StateMachine: { Id: stateMachineArn, Name: stateMachineArn.split(":").at(-1) },
    Execution: {
      Id: executionArn,
      Name: executionName,
      Input: input,
      StartTime: new Date(START_TIME).toISOString(),
      RedriveCount: redriveCount,
    },
  };
  const finish = (result) => {
    const run = { ...result, trace, waits, events, metrics, elapsed: clock.elapsed(), ended: clock.now(), started: new Date(START_TIME).toISOString(), variables, history, redriveCount, executionArn, stateMachineArn, input, mapRuns, mapRunCount };
    sfn?.record(run);
    return run;
  };
  /** A child execution's trace, waits and events, in this one's (its trace marked with its name). */
  function absorb(child) {
    const offset = (Date.parse(child.started) - START_TIME) / 1000;
    const name = child.executionArn.split(":").at(-1);
    trace.push(...child.trace.map((t) => ({ ...t, at: t.at + offset, execution: t.execution ?? name })));
    waits.push(...child.waits);
    events.push(...child.events);
    metrics.push(...child.metrics);
  }

  /** One attempt of a task: its result, or a thrown StatesError. */
  async function attempt(name, state, args, scope) {
    const started = clock.elapsed();
    const timeout = state.TimeoutSeconds === undefined ? MAX_TIMEOUT_SECONDS : await resolve(state.TimeoutSeconds, scope, "TimeoutSeconds");
    if (!Number.isInteger(timeout) || timeout < 1 || timeout > MAX_TIMEOUT_SECONDS) {
      throw new StatesError("States.QueryEvaluationError", `TimeoutSeconds must be an integer 1..${MAX_TIMEOUT_SECONDS}, got ${timeout}`);
    }
    const timedOut = () => new StatesError("States.Timeout", `${name} ran longer than ${timeout} s`);
    history += 3;
    if (state.Resource === START_EXECUTION_SYNC) {
      // Scheduled, started, submitted, then its end: one event more than other tasks.
      history += 1;
      checkFields(args, ["StateMachineArn", "Input", "Name"], `${name}: arguments of states:startExecution.sync:2`);
      checkSize(args.Input, `${name}: the input of the execution it starts`);
      if (!sfn) throw new Error(`${name}: a child execution needs options.sfn`);
      const child = await sfn.start(args.StateMachineArn, args.Name, args.Input, { ...options, startTime: clock.now() });
      absorb(child);
      clock.advance(child.elapsed);
      if (child.status !== "SUCCEEDED") {
        throw new StatesError("States.TaskFailed", JSON.stringify({ ExecutionArn: child.executionArn, Status: child.status, Error: child.error, Cause: child.cause }));
      }
      // .sync:2: the child's input and output as JSON, together in the one result (256 KiB at most).
      const result = { ExecutionArn: child.executionArn, Name: args.Name, Status: "SUCCEEDED", StartDate: child.started, StopDate: child.ended, Input: args.Input, InputDetails: { Included: true }, Output: child.output, OutputDetails: { Included: true } };
      checkSize(result, `the result of ${name} (the child's input and output)`);
      return result;
    }
    if (state.Resource === EXECUTION_HISTORY || state.Resource === REDRIVE_EXECUTION) {
      if (!sfn) throw new Error(`${name}: ${state.Resource} needs options.sfn`);
      if (state.Resource === EXECUTION_HISTORY) {
        checkFields(args, ["ExecutionArn", "ReverseOrder", "MaxResults", "IncludeExecutionData"], `${name}: arguments of getExecutionHistory`);
        if (args.ReverseOrder !== true || args.MaxResults !== 1) throw new Error(`${name}: only the newest event (ReverseOrder, MaxResults 1) is modelled`);
        return sfn.lastEvent(args.ExecutionArn, clock.now(), args.IncludeExecutionData !== false);
      }
      checkFields(args, ["ExecutionArn"], `${name}: arguments of redriveExecution`);
      const child = await sfn.redrive(args.ExecutionArn, { ...options, startTime: clock.now() });
      absorb(child);
      return { RedriveDate: clock.now() };
    }
    if (state.Resource === PUT_METRIC_DATA) {
      checkFields(args, ["Namespace", "MetricData"], `${name}: arguments of putMetricData`);
      if (typeof args.Namespace !== "string" || args.Namespace === "" || args.Namespace.startsWith("AWS/")) {
        throw new StatesError("CloudWatch.InvalidParameterValueException", `${name}: Namespace must be a name of your own, not ${JSON.stringify(args.Namespace)}`);
      }
      if (!Array.isArray(args.MetricData) || args.MetricData.length < 1 || args.MetricData.length > 1000) {
        throw new StatesError("CloudWatch.InvalidParameterValueException", `${name}: MetricData must hold 1..1000 data`);
      }
      for (const datum of args.MetricData) {
        checkFields(datum, METRIC_DATUM_FIELDS, `${name}: a metric datum`);
        const dimensions = datum.Dimensions ?? [];
        const valid = typeof datum.MetricName === "string" && datum.MetricName !== "" && typeof datum.Value === "number" && Number.isFinite(datum.Value)
          && (datum.Unit === undefined || METRIC_UNITS.includes(datum.Unit))
          && Array.isArray(dimensions) && dimensions.length <= 30 && dimensions.every((d) => typeof d.Name === "string" && typeof d.Value === "string" && d.Value !== "");
        if (!valid) throw new StatesError("CloudWatch.InvalidParameterValueException", `${name}: not a metric datum: ${JSON.stringify(datum)}`);
      }
      for (const datum of args.MetricData) await putMetric?.(datum, clock, name);
      const time = clock.now();
      for (const datum of args.MetricData) {
        metrics.push({ state: name, namespace: args.Namespace, name: datum.MetricName, dimensions: Object.fromEntries((datum.Dimensions ?? []).map((d) => [d.Name, d.Value])), value: datum.Value, unit: datum.Unit, time });
      }
      return {};
    }
    if (state.Resource === GET_PARAMETER) {
      checkFields(args, ["Name", "WithDecryption"], `${name}: arguments of getParameter`);
      if (!Object.hasOwn(parameters, args.Name)) throw new StatesError("Ssm.ParameterNotFoundException", `${name}: no parameter ${args.Name}`);
      return { Parameter: { Name: args.Name, Type: "String", Value: parameters[args.Name], Version: 1 } };
    }
    if (state.Resource === LAMBDA_INVOKE) {
      checkFields(args, ["FunctionName", "Payload", "Qualifier", "InvocationType", "ClientContext"], `${name}: arguments of lambda:invoke`);
      const result = await invoke(state.Resource, args, clock);
      if (clock.elapsed() - started > timeout) throw timedOut();
      return result;
    }
    const entries = eventEntries(args, name);
    let failed = {};
    if (publish) {
      try {
        failed = failedEntriesOf(await publish(entries, clock, name), entries, name);
      } catch (e) {
        throw checkPublishError(e, name);
      }
    }
    const time = clock.now();
    const published = { Entries: [], FailedEntryCount: Object.keys(failed).length };
    for (const [i, e] of entries.entries()) {
      if (i in failed) {
        published.Entries.push({ ErrorCode: failed[i].ErrorCode, ErrorMessage: failed[i].ErrorMessage ?? "" });
        continue;
      }
      events.push({ state: name, eventBusName: e.EventBusName, source: e.Source, detailType: e.DetailType, detail: e.Detail, time });
      published.Entries.push({ EventId: `${executionName}-${events.length - 1}` });
    }
    if (published.FailedEntryCount > 0) throw new StatesError("EventBridge.FailedEntry", JSON.stringify(published));
    if (state.Resource === PUT_EVENTS) return published;

    // .waitForTaskToken: the task waits until the token is answered, or times out.
    const token = scope.states.context.Task.Token;
    if (!JSON.stringify(args).includes(token)) {
      throw new Error(`${name}: a .waitForTaskToken task whose arguments do not carry $states.context.Task.Token waits until it times out`);
    }
    const reply = answer ? await answer({ token, state: name, entries, clock }) : undefined;
    const after = reply?.afterSeconds ?? 0;
    if (!reply || after >= timeout) {
      clock.advance(timeout);
      throw timedOut();
    }
    clock.advance(after);
    if ("error" in reply || "cause" in reply) throw new StatesError(reply.error ?? "", reply.cause ?? "");
    return reply.output;
  }

  /** A Distributed Map: each item a child execution, side by side; their outputs in order. */
  async function runMap(name, state, scope, entering) {
    const processor = state.ItemProcessor;
    checkFields(processor, ["ProcessorConfig", "StartAt", "States"], `${name}.ItemProcessor`);
    const config = processor.ProcessorConfig ?? {};
    if (config.Mode !== "DISTRIBUTED" || config.ExecutionType !== "STANDARD") {
      throw new Error(`${name}: only a Distributed Map of Standard child executions is modelled`);
    }
    if ((state.ToleratedFailurePercentage ?? 0) !== 0) throw new Error(`${name}: only ToleratedFailurePercentage 0 is modelled`);
    if (!sfn) throw new Error(`${name}: a Distributed Map needs options.sfn`);
    const items = await resolve(state.Items, scope, "Items");
    if (!Array.isArray(items)) throw new StatesError("States.QueryEvaluationError", `${name}: Items is not an array`);
    const concurrency = state.MaxConcurrency === undefined ? 0 : await resolve(state.MaxConcurrency, scope, "MaxConcurrency");
    if (!Number.isInteger(concurrency) || concurrency < 0) throw new StatesError("States.QueryEvaluationError", `${name}: MaxConcurrency must be a whole number`);
    const label = state.Label ?? name;
    const machineArn = `${stateMachineArn}/${label}`;
    const mapRun = entering && redrive.state === name && mapRuns[name] ? mapRuns[name] : ++mapRunCount;
    mapRuns[name] = mapRun;
    sfn.machines[machineArn] = { QueryLanguage: definition.QueryLanguage, StartAt: processor.StartAt, States: processor.States };
    // Map run started and ended.
    history += 2;
    const start = clock.now();
    let last = Date.parse(start);
    const outputs = [];
    let failed = null;
    for (const [index, value] of items.entries()) {
      const itemScope = { ...scope, states: { ...scope.states, context: { ...scope.states.context, Map: { Item: { Index: index, Value: value } } } } };
      const input = state.ItemSelector === undefined ? value : await resolve(state.ItemSelector, itemScope, "ItemSelector");
      checkSize(input, `${name}: the input of item ${index}`);
      const childName = `${executionName}-${label}-${mapRun}-${index}`;
      const arn = `${machineArn.replace(":stateMachine:", ":execution:")}:${childName}`;
      const before = sfn.executions.get(arn);
      let child;
      if (before?.status === "SUCCEEDED") {
        child = before;
      } else if (before) {
        child = await sfn.redrive(arn, { ...options, startTime: start });
        absorb(child);
      } else {
        child = await execute(sfn.machines[machineArn], input, { ...options, redrive: undefined, redriveAfterSeconds: undefined, startTime: start, stateMachineArn: machineArn, executionName: childName, sfn });
        absorb(child);
      }
      last = Math.max(last, Date.parse(child.ended));
      if (child.status !== "SUCCEEDED") failed ??= child;
      outputs.push(child.output);
    }
    clock.advance((last - Date.parse(start)) / 1000);
    if (failed) {
      throw new StatesError("States.ExceedToleratedFailureThreshold", `The specified tolerated failure threshold was exceeded: ${failed.executionArn} ${failed.status} ${failed.error ?? ""}`);
    }
    checkSize(outputs, `the output of ${name}`);
    return outputs;
  }

  let name = redrive ? redrive.state : definition.StartAt;
  let stateInput = redrive ? redrive.stateInput : input;
  if (redrive) now = Date.parse(redrive.ended) + (options.redriveAfterSeconds ?? 0) * 1000;

  // The execution's own limit: past it Step Functions stops the execution (TIMED_OUT), whatever
  // state it is in; nothing of the definition runs after that.
  const runTimeout = definition.TimeoutSeconds;
  if (runTimeout !== undefined && !(Number.isInteger(runTimeout) && runTimeout >= 1 && runTimeout <= MAX_TIMEOUT_SECONDS)) {
    throw new Error(`TimeoutSeconds must be an integer 1..${MAX_TIMEOUT_SECONDS}, got ${runTimeout}`);
  }
  for (let transitions = 0; transitions < maxTransitions; transitions++) {
    if (runTimeout !== undefined && clock.elapsed() > runTimeout) {
      return finish({ status: "TIMED_OUT", state: name, stateInput, error: "States.Timeout", cause: `the execution ran longer than ${runTimeout} s` });
    }
    const state = definition.States[name];
    if (!state) throw new Error(`no state ${name}`);
    const language = state.QueryLanguage ?? definition.QueryLanguage ?? "JSONPath";
    if (language !== "JSONata") throw new Error(`${name}: only JSONata states are modelled`);
    checkState(name, state);
    checkSize(stateInput, `input of ${name}`);
    const stateContext = { Name: name, EnteredTime: new Date(now).toISOString() };
    const states = { input: stateInput, context: { ...context, State: stateContext } };
    const bindings = (extra) => ({ ...variables, states: { ...states, ...extra } });
    trace.push({ state: name, input: stateInput, at: clock.elapsed() });
    const entering = resuming;
    resuming = false;
    history += 2;
    if (history > MAX_HISTORY_EVENTS) {
      return finish({ status: "FAILED", state: name, stateInput, error: "States.Runtime", cause: `the execution history reached ${MAX_HISTORY_EVENTS} events` });
    }

    // What the state produced, the bindings its Output and Assign see, and where it goes.
    let produced = stateInput;
    let scope = bindings({});
    let next = state.Next;
    let assign = state.Assign;
    let output = state.Output;
    try {
      switch (state.Type) {
        case "Pass":
          break;
        case "Task": {
          let outcome;
          for (let retries = new Map(); ; ) {
            // Each attempt of a callback task has its own token; the context carries it only there.
            const taskScope =
              state.Resource === PUT_EVENTS_WAIT
                ? { ...scope, states: { ...scope.states, context: { ...scope.states.context, Task: { Token: `token-${executionName}-${++tokens}-${"0123456789abcdef".repeat(8)}` } } } }
                : scope;
            const args = await resolve(state.Arguments, taskScope, "Arguments");
            checkSize(args, `arguments of ${name}`);
            try {
              outcome = { result: await attempt(name, state, args, taskScope) };
              break;
            } catch (e) {
              if (!(e instanceof StatesError)) throw e;
              const retrier = (state.Retry ?? []).find((r) => matches(r.ErrorEquals, e.error));
              const used = retries.get(retrier) ?? 0;
              if (retrier && used < (retrier.MaxAttempts ?? 3)) {
                retries.set(retrier, used + 1);
                const delay = retryDelay(retrier, used);
                trace.push({ state: name, retry: e.error, delay });
                clock.advance(delay);
                continue;
              }
              outcome = { error: e };
              break;
            }
          }
          if (outcome.error) {
            const e = outcome.error;
            const catcher = (state.Catch ?? []).find((c) => matches(c.ErrorEquals, e.error));
            if (!catcher) throw e;
            const errorOutput = { Error: e.error, Cause: e.cause };
            produced = errorOutput;
            scope = bindings({ errorOutput });
            next = catcher.Next;
            assign = catcher.Assign;
            output = catcher.Output;
            trace.push({ state: name, caught: e.error, next });
          } else {
            checkSize(outcome.result, `result of ${name}`);
            produced = outcome.result;
            scope = bindings({ result: outcome.result });
          }
          break;
        }
        case "Choice": {
          const rule = await (async () => {
            for (const [i, r] of state.Choices.entries()) {
              const verdict = await resolve(r.Condition, scope, `Choices[${i}]/Condition`);
              if (typeof verdict !== "boolean") {
                throw new StatesError("States.QueryEvaluationError", `Choices[${i}]/Condition is not a boolean`);
              }
              if (verdict) return r;
            }
            return null;
          })();
          if (rule) {
            next = rule.Next;
            assign = { ...state.Assign, ...rule.Assign };
          } else if (state.Default) {
            next = state.Default;
          } else {
            throw new StatesError("States.NoChoiceMatched", name);
          }
          break;
        }
        case "Wait": {
          const seconds = await resolve(state.Seconds, scope, "Seconds");
          if (!Number.isInteger(seconds) || seconds < 0 || seconds > 99999999) {
            throw new StatesError("States.QueryEvaluationError", `Seconds must be an integer 0..99999999, got ${seconds}`);
          }
          waits.push(seconds);
          trace.push({ state: name, wait: seconds });
          if (sleep) await sleep(seconds, name, clock);
          clock.advance(seconds);
          break;
        }
        case "Succeed":
          next = undefined;
          break;
        case "Fail": {
          const error = await resolve(state.Error, scope, "Error");
          const cause = await resolve(state.Cause, scope, "Cause");
          checkFailure(name, "Error", error, MAX_ERROR_LENGTH);
          checkFailure(name, "Cause", cause, MAX_CAUSE_LENGTH);
          return finish({ status: "FAILED", state: name, stateInput, error, cause });
        }
        case "Map": {
          produced = await runMap(name, state, scope, entering);
          scope = bindings({ result: produced });
          break;
        }
        default:
          throw new Error(`${name}: state type ${state.Type} is not modelled`);
      }
      // Output and Assign are both evaluated with the variables of state entry.
      const stateOutput = output === undefined ? produced : await resolve(output, scope, "Output");
      const assigned = assign === undefined ? {} : await resolve(assign, scope, "Assign");
      checkSize(stateOutput, `output of ${name}`);
      checkSize(assigned, `variables assigned by ${name}`);
      variables = { ...variables, ...assigned };
      if (state.Type === "Succeed" || (state.End && !next)) {
        return finish({ status: "SUCCEEDED", state: name, output: stateOutput });
      }
      name = next;
      stateInput = stateOutput;
    } catch (e) {
      if (!(e instanceof StatesError)) throw e;
      return finish({ status: "FAILED", state: name, stateInput, error: e.error, cause: e.cause });
    }
  }
  throw new Error(`more than ${maxTransitions} transitions`);
}

/**
 * Step Functions' side of nested executions: the state machines (definitions by ARN) and every
 * execution they ran, by ARN, as they last ended. `start` runs a child to its end (a name taken
 * already fails, as StartExecution does for a closed execution: ExecutionAlreadyExists);
 * `lastEvent` answers GetExecutionHistory for the newest event -- a state's event while the
 * execution runs (until its end on the caller's clock: a redriven execution runs on while the
 * caller waits), then ExecutionSucceeded with its output (as a JSON string), ExecutionFailed,
 * ExecutionAborted or ExecutionTimedOut with its error and cause (execution data left out when
 * not asked for);
 * `redrive` is RedriveExecution: the execution goes on from its unsuccessful state (it is run to
 * its end at once; describe shows it running until then). Executions names are checked as the
 * plan makes them (letters, digits, - and _, at most 80). `faults.start(name)` may refuse a start
 * with an error (a throttled StartExecution, the running executions' quota reached).
 */
function stepFunctions(machines, faults = {}) {
  const executions = new Map();
  const notFound = (arn) => new StatesError("Sfn.ExecutionDoesNotExistException", `Execution Does Not Exist: '${arn}'`);
  return {
    machines,
    executions,
    record(run) {
      executions.set(run.executionArn, run);
    },
    async start(machineArn, name, input, options) {
      const definition = machines[machineArn];
      if (!definition) throw new StatesError("StepFunctions.StateMachineDoesNotExistException", `State Machine Does Not Exist: '${machineArn}'`);
      if (typeof name !== "string" || !/^[A-Za-z0-9_-]{1,80}$/.test(name)) throw new StatesError("StepFunctions.InvalidNameException", `Invalid Name: '${name}'`);
      const arn = `${machineArn.replace(":stateMachine:", ":execution:")}:${name}`;
      const refusal = faults.start?.(name);
      if (refusal) throw refusal;
      if (executions.has(arn)) throw new StatesError("StepFunctions.ExecutionAlreadyExistsException", `Execution Already Exists: '${arn}'`);
      return execute(definition, input, { ...options, redrive: undefined, redriveAfterSeconds: undefined, stateMachineArn: machineArn, executionName: name, sfn: this });
    },
    lastEvent(arn, now, withData) {
      const run = executions.get(arn);
      if (!run) throw notFound(arn);
      const event = { Id: run.history, Timestamp: now };
      if (Date.parse(now) < Date.parse(run.ended)) {
        // Running: a state's event, with that state's input when execution data is asked for (a
        // whole call's answer, as a JSON string: it may pass what a task result may hold).
        const entered = run.trace.filter((t) => "input" in t).at(-1);
        const details = withData ? { Name: entered.state, Input: JSON.stringify(entered.input), InputDetails: { Truncated: false } } : { Name: entered.state };
        const running = { ...event, Type: "TaskStateEntered", StateEnteredEventDetails: details };
        checkSize(running, `the newest event of ${arn}`);
        return { Events: [running] };
      }
      const data = (details) => (withData ? details : Object.fromEntries(Object.keys(details).map((k) => [k, undefined])));
      const ends = {
        SUCCEEDED: () => ({ Type: "ExecutionSucceeded", ExecutionSucceededEventDetails: withData ? { Output: JSON.stringify(run.output), OutputDetails: { Truncated: false } } : {} }),
        FAILED: () => ({ Type: "ExecutionFailed", ExecutionFailedEventDetails: data({ Error: run.error, Cause: run.cause }) }),
        ABORTED: () => ({ Type: "ExecutionAborted", ExecutionAbortedEventDetails: data({ Error: run.error, Cause: run.cause }) }),
        TIMED_OUT: () => ({ Type: "ExecutionTimedOut", ExecutionTimedOutEventDetails: data({ Error: run.error, Cause: run.cause }) }),
      };
      const ended = JSON.parse(JSON.stringify({ ...event, ...ends[run.status]() }));
      checkSize(ended, `the newest event of ${arn}`);
      return { Events: [ended] };
    },
    async redrive(arn, options) {
      const run = executions.get(arn);
      if (!run) throw notFound(arn);
      if (Date.parse(options.startTime) < Date.parse(run.ended) || !["FAILED", "TIMED_OUT", "ABORTED"].includes(run.status)) {
        throw new StatesError("Sfn.ExecutionNotRedrivableException", `Execution is ${Date.parse(options.startTime) < Date.parse(run.ended) ? "RUNNING" : run.status} and cannot be redriven: '${arn}'`);
      }
      const after = (Date.parse(options.startTime) - Date.parse(run.ended)) / 1000;
      // RedriveExecution: within 14 days of the execution's end.
      if (after > 14 * 24 * 3600) throw new StatesError("Sfn.ExecutionNotRedrivableException", `Execution redrivable period exceeded: '${arn}'`);
      return execute(machines[run.stateMachineArn], run.input, { ...options, redrive: run, redriveAfterSeconds: after, stateMachineArn: run.stateMachineArn, executionName: arn.split(":").at(-1), sfn: this });
    },
  };
}

module.exports = { execute, substitute, stepFunctions, StatesError };
