// A small interpreter for the part of the Amazon States Language that failback.asl.json uses:
// JSONata states (Pass, Task, Choice, Wait, Succeed, Fail) with Arguments, Output, Assign, Retry
// and Catch, evaluated with the JSONata version Step Functions runs (2.0.6). Anything else in a
// definition is refused rather than ignored, so a change this interpreter does not model fails
// loudly instead of being tested wrongly. The Lambda function is a callback; waits do not sleep:
// a virtual clock moves on by each Wait's seconds and by whatever a task says it took, and the
// context object carries it (Execution.StartTime, State.EnteredTime, as ISO-8601 strings).
//
// Modelled from the Step Functions documentation: a JSONata expression is a whole string
// "{% ... %}"; one that evaluates to nothing (undefined) fails the state with
// States.QueryEvaluationError; Assign and Output both see the variables as they were when the
// state was entered; a state's input and output, a task's arguments, and the variables one Assign
// sets are each at most 256 KiB.
"use strict";

const jsonata = require("jsonata");

const MAX_PAYLOAD_BYTES = 256 * 1024;

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
  Task: ["Resource", "Arguments", "Retry", "Catch"],
  Choice: ["Choices", "Default"],
  Wait: ["Seconds"],
  Succeed: [],
  Fail: ["Error", "Cause"],
};

/** Replaces ${Name} as CloudFormation's DefinitionSubstitutions do: in the text, before parsing. */
function substitute(text, substitutions) {
  const out = text.replace(/\$\{([^}]+)\}/g, (whole, name) => {
    if (!(name in substitutions)) throw new Error(`no substitution for ${whole}`);
    return String(substitutions[name]);
  });
  return JSON.parse(out);
}

function checkSize(value, what) {
  const bytes = Buffer.byteLength(JSON.stringify(value) ?? "", "utf8");
  if (bytes > MAX_PAYLOAD_BYTES) {
    throw new StatesError("States.DataLimitExceeded", `${what} is ${bytes} bytes`);
  }
}

async function evaluate(expression, bindings, field) {
  let value;
  try {
    value = await jsonata(expression).evaluate(undefined, bindings);
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

const matches = (errorEquals, error) =>
  errorEquals.includes(error) || (errorEquals.includes("States.ALL") && !error.startsWith("States.Runtime"));

const START_TIME = Date.parse("2026-11-30T10:00:00.000Z");

/**
 * Runs `definition` on `input`. `invoke(resource, args, clock)` plays the task's service and either
 * returns its result or throws a StatesError; `clock.advance(seconds)` says how long it took, and
 * `clock.elapsed()` how long the execution has run; `sleep(seconds)`, when given, makes each Wait
 * really wait (for a run against a real function). Returns { status, output | error+cause, trace,
 * waits, elapsed, variables }.
 */
async function execute(definition, input, { invoke, sleep, maxTransitions = 10000 }) {
  let variables = {};
  const trace = [];
  const waits = [];
  let now = START_TIME;
  const clock = {
    advance: (seconds) => {
      now += Math.round(seconds * 1000);
    },
    elapsed: () => (now - START_TIME) / 1000,
  };
  const context = {
    Execution: {
      Id: "arn:aws:states:local:000000000000:execution:sm:test",
      Name: "test",
      Input: input,
      StartTime: new Date(START_TIME).toISOString(),
    },
  };
  let name = definition.StartAt;
  let stateInput = input;

  for (let transitions = 0; transitions < maxTransitions; transitions++) {
    const state = definition.States[name];
    if (!state) throw new Error(`no state ${name}`);
    const language = state.QueryLanguage ?? definition.QueryLanguage ?? "JSONPath";
    if (language !== "JSONata") throw new Error(`${name}: only JSONata states are modelled`);
    const allowed = [...FIELDS.common, ...(FIELDS[state.Type] ?? [])];
    for (const key of Object.keys(state)) {
      if (!allowed.includes(key)) throw new Error(`${name}: field ${key} of a ${state.Type} state is not modelled`);
    }
    checkSize(stateInput, `input of ${name}`);
    const states = {
      input: stateInput,
      context: { ...context, State: { Name: name, EnteredTime: new Date(now).toISOString() } },
    };
    const bindings = (extra) => ({ ...variables, states: { ...states, ...extra } });
    trace.push({ state: name, input: stateInput });

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
          const args = await resolve(state.Arguments, scope, "Arguments");
          checkSize(args, `arguments of ${name}`);
          let outcome;
          for (let retries = new Map(); ; ) {
            try {
              outcome = { result: await invoke(state.Resource, args, clock) };
              break;
            } catch (e) {
              if (!(e instanceof StatesError)) throw e;
              const retrier = (state.Retry ?? []).find((r) => matches(r.ErrorEquals, e.error));
              const used = retries.get(retrier) ?? 0;
              if (retrier && used < (retrier.MaxAttempts ?? 3)) {
                retries.set(retrier, used + 1);
                trace.push({ state: name, retry: e.error });
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
          if (sleep) await sleep(seconds);
          clock.advance(seconds);
          break;
        }
        case "Succeed":
          next = undefined;
          break;
        case "Fail":
          return {
            status: "FAILED",
            state: name,
            error: await resolve(state.Error, scope, "Error"),
            cause: await resolve(state.Cause, scope, "Cause"),
            trace,
            waits,
            elapsed: clock.elapsed(),
            variables,
          };
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
        return { status: "SUCCEEDED", state: name, output: stateOutput, trace, waits, elapsed: clock.elapsed(), variables };
      }
      name = next;
      stateInput = stateOutput;
    } catch (e) {
      if (!(e instanceof StatesError)) throw e;
      return { status: "FAILED", state: name, error: e.error, cause: e.cause, trace, waits, elapsed: clock.elapsed(), variables };
    }
  }
  throw new Error(`more than ${maxTransitions} transitions`);
}

module.exports = { execute, substitute, StatesError };
