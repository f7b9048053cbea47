//! Logs are JSON lines with the keys Powertools writes (the request id, the run id as
//! `correlation_id`, the cold start, the X-Ray trace); tag values never appear.
// The invocation future nests the launch, read and retry futures deeply enough to pass the default.
#![recursion_limit = "256"]

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use drs_failback::handler::Reply;
use drs_failback::telemetry::logging::json_subscriber;
use drs_sim::{Fault, Operation, SimConfig};
use serde_json::{Value, json};
use support::*;
use tracing_subscriber::EnvFilter;

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn every_line_is_json_with_request_and_run_id_and_no_tag_value() {
    let buffer = Buffer::default();
    let sink = buffer.clone();
    // The function's lines only: the simulator, running in the same process, logs its own.
    let subscriber = json_subscriber(EnvFilter::new("info,drs_sim=off"), move || sink.clone());
    let _guard = tracing::subscriber::set_default(subscriber);
    let runtime = paused_runtime();
    runtime.block_on(async {
        let fleet = ready(150);
        let ids = fleet.ids();
        let sim = start(SimConfig {
            fleet,
            faults: vec![Fault::Throttle {
                operation: Operation::StartFailbackLaunch,
                calls: 1,
                retry_after_seconds: 4,
            }],
            ..SimConfig::default()
        })
        .await;
        let fb = failback_in_process(&sim, &[], 0.0).await;
        let payload = json!({
            "runId": "run-logs",
            "recoveryInstanceIDs": ids,
            "tags": {"Secret": "hunter2-tag-value"}
        });
        let mut event = lambda_event(payload, "req-123", 120);
        event.context.xray_trace_id = Some("Root=1-5759e988-bd862e3fe1be46a994272793".into());
        let Reply::Launch(answer) = fb.invoke(event).await.unwrap() else {
            panic!("a launch answer")
        };
        let jobs: Vec<&str> = answer.jobs.iter().map(|j| j.job_id.as_str()).collect();
        // A tracking call and a plan check (with a selector, whose tag value must not show).
        fb.invoke(lambda_event(
            json!({"action": "track", "runId": "run-logs", "jobIDs": jobs, "final": true}),
            "req-789",
            120,
        ))
        .await
        .unwrap();
        fb.invoke(lambda_event(
            json!({"action": "plan", "runId": "run-logs", "steps": [
                {"name": "db", "selector": {"tags": {"Tier": "hunter2-selector-value"}}}]}),
            "req-999",
            120,
        ))
        .await
        .unwrap_err();
        fb.invoke(lambda_event(
            json!({"recoveryInstanceIDs": []}),
            "req-456",
            120,
        ))
        .await
        .unwrap_err();
    });

    let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    assert!(
        !text.contains("hunter2-tag-value") && !text.contains("hunter2-selector-value"),
        "a tag value was logged"
    );
    for request_id in ["req-789", "req-999"] {
        assert!(text.contains(request_id), "{request_id}'s lines");
    }
    let lines: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON: {line}: {e}")))
        .collect();
    assert!(lines.len() >= 5, "{text}");
    for line in &lines {
        for key in ["level", "message", "timestamp", "service", "cold_start"] {
            assert!(line.get(key).is_some(), "{key} missing: {line}");
        }
        assert!(
            ["INFO", "WARN", "ERROR", "DEBUG"].contains(&line["level"].as_str().unwrap()),
            "{line}"
        );
        assert_eq!(line["service"], "drs-failback");
        assert!(line["timestamp"].as_str().unwrap().ends_with('Z'), "{line}");
        let request_id = line["function_request_id"].as_str().unwrap_or_default();
        assert!(
            ["req-123", "req-456", "req-789", "req-999"].contains(&request_id),
            "{line}"
        );
        if request_id != "req-456" {
            assert_eq!(line["correlation_id"], "run-logs", "{line}");
        }
        if request_id == "req-123" {
            assert_eq!(line["correlation_id"], "run-logs", "{line}");
            assert_eq!(line["cold_start"], true, "the process's first invocation");
            assert_eq!(
                line["xray_trace_id"],
                "Root=1-5759e988-bd862e3fe1be46a994272793"
            );
        } else {
            assert_eq!(line["cold_start"], false, "{line}");
        }
    }
    let throttled = lines
        .iter()
        .find(|l| {
            l["message"]
                .as_str()
                .unwrap_or_default()
                .starts_with("throttled")
        })
        .expect("a throttling decision is logged");
    assert_eq!(throttled["wait_ms"], 4000);
    assert_eq!(throttled["retry_after_s"], 4);
    let launched = lines.iter().filter(|l| l["message"] == "launched").count();
    assert_eq!(launched, 2, "one line per launch decision");
    assert!(
        lines
            .iter()
            .any(|l| l["message"] == "request refused" && l["function_request_id"] == "req-456")
    );
}
