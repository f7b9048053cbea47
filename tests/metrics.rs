//! The metrics records (CloudWatch Embedded Metric Format) a launch run and a step's tracking run
//! write, checked against the format's JSON schema (`tests/fixtures/emf.schema.json`) and its
//! target-member rules, with the values the runs' answers and the simulator's records say.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use drs_sim::{Fault, Operation, SimConfig};
use serde_json::{Value, json};
use support::*;
use tokio::time::sleep;

fn capture(fb: SimFailback) -> (SimFailback, Arc<Mutex<Vec<String>>>) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&lines);
    let fb = fb.with_metrics_output(move |line| sink.lock().unwrap().push(line.to_owned()));
    (fb, lines)
}

fn validator() -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(include_str!("fixtures/emf.schema.json")).unwrap();
    jsonschema::validator_for(&schema).expect("the EMF schema compiles")
}

/// A record a CloudWatch agent would accept: valid against the schema, every dimension a
/// string member of the root, every metric a number or at most 100 numbers there; one line.
fn accepted(line: &str) -> Value {
    assert!(!line.contains('\n'), "one line: {line}");
    let record: Value = serde_json::from_str(line).expect("JSON");
    let validator = validator();
    let errors: Vec<String> = validator
        .iter_errors(&record)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:?}: {record}");
    for directive in record["_aws"]["CloudWatchMetrics"].as_array().unwrap() {
        for set in directive["Dimensions"].as_array().unwrap() {
            for key in set.as_array().unwrap() {
                assert!(record[key.as_str().unwrap()].is_string(), "dimension {key}");
            }
        }
        for metric in directive["Metrics"].as_array().unwrap() {
            let value = &record[metric["Name"].as_str().unwrap()];
            let numbers = match value {
                Value::Number(_) => 1,
                Value::Array(values) if values.iter().all(Value::is_number) => values.len(),
                other => panic!("metric {metric} is {other}"),
            };
            assert!((1..=100).contains(&numbers), "{metric}: {numbers} values");
        }
    }
    record
}

fn names(record: &Value) -> Vec<String> {
    record["_aws"]["CloudWatchMetrics"][0]["Metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["Name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn the_schema_refuses_what_cloudwatch_would() {
    let validator = validator();
    let good = json!({"_aws": {"Timestamp": 1, "CloudWatchMetrics": [
        {"Namespace": "N", "Dimensions": [["service"]], "Metrics": [{"Name": "M", "Unit": "Count"}]}]},
        "service": "s", "M": 1});
    assert!(validator.is_valid(&good));
    for bad in [
        json!({"_aws": {"CloudWatchMetrics": []}}),
        json!({"_aws": {"Timestamp": 1, "CloudWatchMetrics": [{"Dimensions": [], "Metrics": []}]}}),
        json!({"_aws": {"Timestamp": 1, "CloudWatchMetrics": [
            {"Namespace": "N", "Dimensions": [], "Metrics": [{"Name": "M", "Unit": "Things"}]}]}}),
        json!({"_aws": {"Timestamp": "now", "CloudWatchMetrics": []}}),
    ] {
        assert!(!validator.is_valid(&bad), "{bad}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_launch_run_writes_one_record_with_its_outcomes_and_calls() {
    let fleet = ready(150);
    let ids = fleet.ids();
    let sim = start(SimConfig {
        fleet,
        faults: vec![Fault::Throttle {
            operation: Operation::StartFailbackLaunch,
            calls: 1,
            retry_after_seconds: 2,
        }],
        ..SimConfig::default()
    })
    .await;
    let (fb, lines) = capture(failback_in_process(&sim, &[], 0.0).await);
    let mut request = json!({"runId": "run-emf", "recoveryInstanceIDs": ids});
    request["recoveryInstanceIDs"]
        .as_array_mut()
        .unwrap()
        .push(json!("not-an-id"));
    fb.invoke(lambda_event(request, "req-emf-1", 300))
        .await
        .unwrap();
    let records: Vec<Value> = lines.lock().unwrap().iter().map(|l| accepted(l)).collect();
    assert_eq!(records.len(), 1, "one record per invocation");
    let record = &records[0];
    assert_eq!(
        record["_aws"]["CloudWatchMetrics"][0]["Namespace"],
        "DrsFailback"
    );
    assert_eq!(
        record["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        json!([["service"]])
    );
    assert_eq!(record["service"], "drs-failback");
    assert_eq!(record["correlation_id"], "run-emf");
    assert_eq!(record["function_request_id"], "req-emf-1");
    assert_eq!(record["InstancesLaunched"], 150.0);
    assert_eq!(record["InstancesRejected"], 1.0);
    assert_eq!(record["InstancesSkipped"], 0.0);
    // A round's deferred instances are sent again by the next: the run's last call counts them.
    assert!(
        record.get("InstancesDeferred").is_none() && record.get("InstancesRequested").is_none()
    );
    assert_eq!(record["ColdStart"], 1.0, "the process's first invocation");
    // The simulator's record of the calls is what the metrics must say.
    let launch_calls = launches(&sim);
    let throttled = launch_calls.iter().filter(|c| c.status == 429).count();
    assert_eq!(throttled, 1);
    assert_eq!(record["ThrottledCalls"], 1.0);
    assert_eq!(record["WastedCalls"], 1.0);
    let latencies = record["LaunchLatency"]
        .as_array()
        .cloned()
        .unwrap_or_else(|| vec![record["LaunchLatency"].clone()]);
    assert_eq!(latencies.len(), launch_calls.len());
    assert!(
        record["InvocationDuration"].as_f64().unwrap() >= 2.0,
        "waited out Retry-After"
    );
    assert!(names(record).contains(&"InvocationDuration".to_owned()));
    assert!(
        record.get("RunDuration").is_none(),
        "a run's duration is its last call's"
    );

    // A second invocation of the same process is warm.
    fb.invoke(lambda_event(
        json!({"runId": "run-emf", "recoveryInstanceIDs": ids}),
        "req-emf-2",
        300,
    ))
    .await
    .unwrap();
    let second = accepted(&lines.lock().unwrap()[1]);
    assert!(second.get("ColdStart").is_none());
    assert_eq!(second["InstancesLaunched"], 150.0, "reported in their jobs");
    assert_eq!(second["WastedCalls"], 0.0);
}

#[tokio::test(start_paused = true)]
async fn a_steps_last_tracking_call_writes_its_results_under_the_step() {
    let mut fleet = ready(4);
    let ids = fleet.ids();
    fleet.set_failure(&ids[2], "CONVERSION_FAIL");
    let sim = start_with(fleet).await;
    let (fb, lines) = capture(failback_in_process(&sim, &[], 0.0).await);
    let launched = fb
        .handle(
            json!({"runId": "run-emf", "step": "databases", "recoveryInstanceIDs": ids}),
            in_minutes(5),
        )
        .await
        .unwrap();
    sleep(Duration::from_secs(60)).await;
    let jobs: Vec<&str> = launched.jobs.iter().map(|j| j.job_id.as_str()).collect();
    fb.handle_track(
        json!({"action": "track", "runId": "run-emf", "step": "databases", "jobIDs": jobs,
            "final": true, "critical": [ids[2]]}),
        in_minutes(5),
    )
    .await
    .unwrap();
    let records: Vec<Value> = lines.lock().unwrap().iter().map(|l| accepted(l)).collect();
    assert_eq!(records.len(), 2, "the launch's and the tracking call's");
    let track = &records[1];
    assert_eq!(
        track["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        json!([["service"], ["service", "step"]])
    );
    assert_eq!(track["step"], "databases");
    assert_eq!(track["InstancesRequested"], 4.0);
    assert_eq!(track["InstancesDeferred"], 0.0);
    assert_eq!(track["InstancesSucceeded"], 3.0);
    assert_eq!(track["InstancesFailed"], 1.0);
    assert_eq!(track["InstancesStillRunning"], 0.0);
    assert_eq!(track["StepsHalted"], 1.0, "a critical instance failed");
    // From the step's first job (created by the simulator's clock) to its last call.
    assert!(track["RunDuration"].as_f64().is_some(), "{track}");
    assert!(
        track.get("InstancesLaunched").is_none(),
        "launches are the launch's"
    );
    assert_eq!(records[0]["step"], "databases");
}

/// Every invocation writes its record, whatever it came to: a refused request and a plan check
/// too (the first invocation of a process is usually a plan check: it carries ColdStart).
#[tokio::test(start_paused = true)]
async fn refusals_and_plan_checks_write_their_record_too() {
    let fleet = ready(3);
    let ids = fleet.ids();
    let sim = start_with(fleet).await;
    let (fb, lines) = capture(failback_in_process(&sim, &[], 0.0).await);
    let plan = json!({"action": "plan", "runId": "run-emf", "steps": [
        {"name": "db", "recoveryInstanceIDs": [ids[0]]},
        {"name": "app", "recoveryInstanceIDs": [ids[1], ids[2]]}]});
    fb.invoke(lambda_event(plan, "req-plan", 300))
        .await
        .unwrap();
    fb.invoke(lambda_event(
        json!({"recoveryInstanceIDs": []}),
        "req-bad",
        300,
    ))
    .await
    .unwrap_err();
    let records: Vec<Value> = lines.lock().unwrap().iter().map(|l| accepted(l)).collect();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0]["ColdStart"], 1.0);
    assert_eq!(records[0]["correlation_id"], "run-emf");
    assert!(
        records[0].get("step").is_none(),
        "a plan's check is no step's"
    );
    assert!(records[0]["InvocationDuration"].is_number());
    assert_eq!(records[1]["InvocationErrors"], 1.0);
    assert_eq!(records[1]["error"], "InvalidFailbackRequest");
    assert_eq!(records[1]["function_request_id"], "req-bad");
}

/// Events EventBridge never took (after their resends) are counted in the invocation's record,
/// for the events-not-published alarm; the record of an invocation whose events all went says 0.
#[tokio::test(start_paused = true)]
async fn events_never_published_are_counted() {
    let fleet = ready(300);
    let ids = fleet.ids();
    let sim = start(SimConfig {
        fleet,
        faults: vec![Fault::PutEventsDown { calls: 100 }],
        ..SimConfig::default()
    })
    .await;
    let (fb, lines) =
        capture(failback_in_process(&sim, &[("PUBLISH_MAX_ATTEMPTS", "3")], 1.0).await);
    fb.invoke(lambda_event(
        json!({"runId": "run-emf-down", "recoveryInstanceIDs": ids}),
        "req-down",
        300,
    ))
    .await
    .unwrap();
    let records: Vec<Value> = lines.lock().unwrap().iter().map(|l| accepted(l)).collect();
    assert_eq!(records.len(), 1);
    // Three jobs started and the run's summary: four events, none delivered.
    assert_eq!(records[0]["EventsNotPublished"], 4.0);
    assert_eq!(
        records[0]["InstancesLaunched"], 300.0,
        "the results are kept"
    );

    let fleet = ready(2);
    let ids = fleet.ids();
    let sim = start_with(fleet).await;
    let (fb, lines) = capture(failback_in_process(&sim, &[], 0.0).await);
    fb.invoke(lambda_event(
        json!({"runId": "run-emf-up", "recoveryInstanceIDs": ids}),
        "req-up",
        300,
    ))
    .await
    .unwrap();
    let records: Vec<Value> = lines.lock().unwrap().iter().map(|l| accepted(l)).collect();
    assert_eq!(records[0]["EventsNotPublished"], 0.0);
}
