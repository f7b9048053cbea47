//! Logs are JSON lines carrying the request id and run id; tag values never appear.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use drs_failback::drs::LaunchError;
use drs_failback::logging::json_subscriber;
use serde_json::{Value, json};
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
    let subscriber = json_subscriber(EnvFilter::new("info"), move || sink.clone());
    let _guard = tracing::subscriber::set_default(subscriber);
    let runtime = paused_runtime();
    runtime.block_on(async {
        let drs = FakeDrs::scripted([Step::Fail(LaunchError::Throttled {
            retry_after: Some(Duration::from_secs(4)),
            message: "Rate exceeded".into(),
        })]);
        let fb = failback(config(&[]), drs, 0.0);
        let payload = json!({
            "runId": "run-logs",
            "recoveryInstanceIDs": ids(150),
            "tags": {"Secret": "hunter2-tag-value"}
        });
        fb.invoke(lambda_event(payload, "req-123", 120))
            .await
            .unwrap();
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
        !text.contains("hunter2-tag-value"),
        "a tag value was logged"
    );
    let lines: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON: {line}: {e}")))
        .collect();
    assert!(lines.len() >= 5, "{text}");
    for line in &lines {
        let request_id = line["span"]["requestId"].as_str().unwrap_or_default();
        assert!(request_id == "req-123" || request_id == "req-456", "{line}");
        if request_id == "req-123" {
            assert_eq!(line["span"]["runId"], "run-logs", "{line}");
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
            .any(|l| l["message"] == "request refused" && l["span"]["requestId"] == "req-456")
    );
}
