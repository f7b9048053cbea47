//! What the local runner's tests share: the state machine's settings they run with, and the
//! sample requests they run.
#![allow(dead_code)]

use std::time::Duration;

use drs_failback_local::arc::ArcSettings;
use serde_json::Value;

/// The stack's defaults, with a 6-hour step time limit.
pub fn settings() -> ArcSettings {
    ArcSettings {
        track_interval: Duration::from_secs(60),
        time_limit: Duration::from_secs(6 * 3600),
        max_rounds: 100,
        invocation_timeout: Duration::from_secs(300),
        crashes_after_launch: 0,
    }
}

/// A sample of `events/`, parsed.
pub fn sample(name: &str) -> Value {
    let path = format!("{}/../events/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}
