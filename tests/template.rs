//! `template.yaml` agrees with the code: the function's role grants exactly the API actions the
//! SDK adapters call (plus `drs:TagResource`, which tagging a job on create is authorised as), and
//! no setting the template passes is one the function would refuse.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use drs_failback::config::Config;

fn read(path: &str) -> String {
    fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).expect("readable")
}

/// `drs:StartFailbackLaunch`-style actions named in the text (not condition keys, which are
/// followed by a colon: `drs:CreateAction: StartFailbackLaunch`).
fn actions(text: &str, service: &str) -> BTreeSet<String> {
    let prefix = format!("{service}:");
    text.match_indices(&prefix)
        .filter_map(|(at, _)| {
            let rest = &text[at + prefix.len()..];
            let name: String = rest
                .chars()
                .take_while(char::is_ascii_alphanumeric)
                .collect();
            let key = rest[name.len()..].starts_with(':');
            (!name.is_empty() && !key).then(|| format!("{service}:{name}"))
        })
        .collect()
}

/// The operations an adapter calls on its SDK client (`.client.start_failback_launch()`), as IAM
/// actions.
fn called(adapter: &str, service: &str) -> BTreeSet<String> {
    let code = read(adapter);
    let code = code.split("#[cfg(test)]").next().unwrap_or_default();
    let mut found = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find(".client") {
        rest = &rest[at + ".client".len()..];
        let call = rest.trim_start().trim_start_matches('.');
        let name: String = call
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let pascal: String = name
            .split('_')
            .map(|word| {
                let mut chars = word.chars();
                chars.next().map_or_else(String::new, |first| {
                    first.to_ascii_uppercase().to_string() + chars.as_str()
                })
            })
            .collect();
        found.insert(format!("{service}:{pascal}"));
    }
    found
}

#[test]
fn the_role_grants_exactly_what_the_function_calls() {
    let template = read("template.yaml");
    let policies = template
        .split("      Policies:")
        .nth(1)
        .expect("the function has Policies")
        .split("\n  FailbackStateMachine:")
        .next()
        .unwrap_or_default();
    let mut granted = actions(policies, "drs");
    granted.extend(actions(policies, "events"));

    let mut needed = called("src/aws/drs.rs", "drs");
    needed.extend(called("src/aws/eventbridge.rs", "events"));
    assert!(needed.contains("drs:StartFailbackLaunch"), "{needed:?}");
    needed.insert("drs:TagResource".into());
    assert_eq!(granted, needed);
    assert!(!policies.contains("drs:*"), "never drs:*");
}

#[test]
fn every_parameter_value_the_template_allows_is_a_valid_setting() {
    let template = read("template.yaml");
    assert!(
        !template.contains("MAX_REQUEST_INSTANCES:"),
        "the request limit follows the job size"
    );
    // MaxInstancesPerJob ranges 1-200 in the template: every value gives a valid configuration.
    for per_job in 1..=200 {
        let per_job = per_job.to_string();
        let config = Config::from_pairs(&[
            ("MAX_INSTANCES_PER_JOB", per_job.as_str()),
            ("DEADLINE_MARGIN_MS", "3000"),
        ]);
        assert!(
            config.is_ok(),
            "MAX_INSTANCES_PER_JOB={per_job}: {config:?}"
        );
    }
}

/// The metrics the state machines write (their PutMetricData tasks), each under the function's
/// dimension set `[service]` = drs-failback.
fn state_machine_metrics() -> Vec<String> {
    let mut names = Vec::new();
    for path in [
        "statemachine/failback.asl.json",
        "statemachine/step.asl.json",
        "statemachine/rehearsal.asl.json",
    ] {
        let definition: serde_json::Value = serde_json::from_str(&read(path)).expect("JSON");
        let mut states = vec![definition["States"].clone()];
        while let Some(group) = states.pop() {
            for state in group.as_object().into_iter().flat_map(|m| m.values()) {
                if let Some(inner) = state.get("ItemProcessor") {
                    states.push(inner["States"].clone());
                }
                if state["Resource"] != "arn:aws:states:::aws-sdk:cloudwatch:putMetricData" {
                    continue;
                }
                assert_eq!(state["Arguments"]["Namespace"], "${MetricsNamespace}");
                for datum in state["Arguments"]["MetricData"].as_array().expect("data") {
                    assert_eq!(
                        datum["Dimensions"],
                        serde_json::json!([{"Name": "service", "Value": "drs-failback"}]),
                        "{path}: the function's dimension set"
                    );
                    names.push(datum["MetricName"].as_str().expect("a name").to_owned());
                }
            }
        }
    }
    names.sort();
    names.dedup();
    names
}

/// The alarms and the dashboard read only metrics the function or the state machines write (or
/// the stack's own `RunsIncomplete` metric filter), under the dimensions they write them with.
#[test]
fn alarms_and_dashboard_read_what_the_function_writes() {
    use drs_failback::telemetry::measure::metric_names;
    let template = read("template.yaml");
    let mut names = metric_names();
    // And what the state machines write themselves (PutMetricData, under [service]).
    let written_by_state_machines = state_machine_metrics();
    names.extend(written_by_state_machines.iter().map(String::as_str));
    let known = |name: &str| names.contains(&name) || name == "RunsIncomplete";
    let mut read_by_template = BTreeSet::new();
    // Alarms: a MetricName within the block that names the function's namespace.
    let lines: Vec<&str> = template.lines().collect();
    for (at, line) in lines.iter().enumerate() {
        if line.trim() == "Namespace: !Ref MetricsNamespace" {
            let block = &lines[at.saturating_sub(8)..(at + 8).min(lines.len())];
            let name = block
                .iter()
                .find_map(|l| l.trim().strip_prefix("MetricName: "))
                .expect("an alarm on the function's namespace names its metric");
            read_by_template.insert(name.to_owned());
            let dimensions: Vec<&str> = block
                .iter()
                .filter_map(|l| l.trim().strip_prefix("- Name: "))
                .collect();
            let expected: &[&str] = if name == "RunsIncomplete" {
                &[]
            } else {
                &["service"]
            };
            assert_eq!(
                dimensions, expected,
                "{name}: the dimension set it is written with"
            );
        }
    }
    // The dashboard: ["${MetricsNamespace}", "Name", ...] and SEARCH(... MetricName=\"Name\").
    for (at, _) in template.match_indices("[\"${MetricsNamespace}\", \"") {
        let rest = &template[at + "[\"${MetricsNamespace}\", \"".len()..];
        read_by_template.insert(rest[..rest.find('"').unwrap()].to_owned());
    }
    for (at, _) in template.match_indices("MetricName=\\\"") {
        let rest = &template[at + "MetricName=\\\"".len()..];
        read_by_template.insert(rest[..rest.find('\\').unwrap()].to_owned());
    }
    assert!(read_by_template.len() >= 10, "{read_by_template:?}");
    let unknown: Vec<&String> = read_by_template.iter().filter(|n| !known(n)).collect();
    assert!(
        unknown.is_empty(),
        "the template reads metrics nothing writes: {unknown:?}"
    );
}

/// The rule that sums up a run whose execution ended without its summary sends exactly the
/// events the function reads as such: Step Functions' status events of this state machine, for
/// every end the function takes (and no other, which it would refuse).
#[test]
fn the_execution_ended_rule_matches_what_the_function_sums_up() {
    use drs_failback::request::{EXECUTION_STATUS_CHANGE, EndStatus, STATES_SOURCE};
    let template = read("template.yaml");
    let start = template
        .find("  ExecutionEndedRule:\n")
        .expect("template.yaml has ExecutionEndedRule");
    let rule = &template[start..];
    let rule = &rule[..rule[3..]
        .find("\n  Execution")
        .map_or(rule.len(), |end| end + 3)];
    let statuses: Vec<String> = [EndStatus::Aborted, EndStatus::TimedOut, EndStatus::Failed]
        .iter()
        .map(|s| {
            serde_json::to_value(s)
                .unwrap()
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    for expected in [
        format!("source: [{STATES_SOURCE}]"),
        format!("detail-type: [\"{EXECUTION_STATUS_CHANGE}\"]"),
        format!("status: [{}]", statuses.join(", ")),
        "stateMachineArn: [!Ref FailbackStateMachine]".to_owned(),
        "Arn: !GetAtt FailbackFunction.Arn".to_owned(),
    ] {
        assert!(
            rule.contains(&expected),
            "ExecutionEndedRule lacks {expected}:\n{rule}"
        );
    }
    assert!(template.contains("SourceArn: !GetAtt ExecutionEndedRule.Arn"));
    assert!(template.contains("MetricName: ExecutionsAborted"));
}

/// A step's place (the plan's Map child) only follows the function's answer about a step
/// execution that did not answer it.
#[test]
fn the_plan_follows_the_functions_answer_about_a_step_execution() {
    let definition: serde_json::Value =
        serde_json::from_str(&read("statemachine/failback.asl.json")).expect("JSON");
    let states = &definition["States"]["RunPlaces"]["ItemProcessor"]["States"];
    let conditions: Vec<&str> = states["FollowStep"]["Choices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["Condition"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        conditions,
        ["adopt", "redrive", "start", "wait", "look"]
            .map(|a| format!("{{% $next.action = \"{a}\" %}}"))
    );
    // An answer the plan does not know fails it there, rather than being taken for another.
    assert!(states["FollowStep"]["Default"].is_null());
    assert_eq!(states["WaitForStep"]["Seconds"], "{% $next.waitSeconds %}");
    assert_eq!(states["WaitToStart"]["Seconds"], "{% $next.waitSeconds %}");
    assert!(
        states["StepGate"]["Catch"].is_null(),
        "the place fails at the question"
    );
    // ... and a place that failed fails the plan at its Map, for a redrive.
    let map = &definition["States"]["RunPlaces"];
    assert_eq!(map["ToleratedFailurePercentage"], 0);
    assert!(map["Catch"].is_null());
}

/// The step only follows the function's `next` in its loop: its one count of its own (tracking
/// calls that did not answer, in a row) is the function's MAX_TRACKING_ERRORS, from which the
/// function decides the step's end.
#[test]
fn the_step_follows_the_functions_next() {
    use drs_failback::track::end::MAX_TRACKING_ERRORS;
    let definition: serde_json::Value =
        serde_json::from_str(&read("statemachine/step.asl.json")).expect("JSON");
    let states = &definition["States"];
    let condition = |state: &str, index: usize| {
        states[state]["Choices"][index]["Condition"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(
        condition("TrackFailed", 0),
        format!("{{% $trackingErrors < {MAX_TRACKING_ERRORS} %}}")
    );
    assert_eq!(
        condition("FollowNext", 0),
        "{% $next.action = \"finish\" %}"
    );
    assert_eq!(condition("NextCall", 0), "{% $next.action = \"launch\" %}");
    assert_eq!(states["WaitForNext"]["Seconds"], "{% $next.waitSeconds %}");
    for (name, state) in states.as_object().unwrap() {
        let text = state.to_string();
        for gone in [
            "$maxRounds >",
            "$roundsDone <",
            "< $timeLimitSeconds",
            "$freed",
        ] {
            assert!(!text.contains(gone), "{name} decides with {gone}");
        }
    }
}
