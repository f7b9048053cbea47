//! The `drs-sim` binary as CI uses it: the ready line on stdout, real SDK calls against it, a
//! clean stop on SIGTERM, and clear refusals of bad arguments.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_sdk_drs::operation::start_failback_launch::StartFailbackLaunchError;

const BIN: &str = env!("CARGO_BIN_EXE_drs-sim");

fn temp_file(name: &str, contents: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("drs-sim-test-{}-{name}", std::process::id()));
    std::fs::write(&path, contents).expect("write temp file");
    path
}

/// Starts the binary and waits (bounded) for its ready line.
async fn spawn(args: &[&str]) -> (Child, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn drs-sim");
    let stdout = child.stdout.take().unwrap();
    let line = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            BufReader::new(stdout).read_line(&mut line).map(|_| line)
        }),
    )
    .await
    .expect("ready line within 30 s")
    .unwrap()
    .unwrap();
    let endpoint = line
        .trim()
        .strip_prefix("drs-sim listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    (child, endpoint)
}

fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    for _ in 0..500 {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    panic!("drs-sim did not stop within 5 s of SIGTERM");
}

async fn client(endpoint: &str) -> aws_sdk_drs::Client {
    let sdk = drs_sim::sdk_config(endpoint)
        .await
        .to_builder()
        .retry_config(RetryConfig::disabled())
        .build();
    aws_sdk_drs::Client::new(&sdk)
}

#[tokio::test]
async fn serves_a_generated_fleet_and_stops_on_sigterm() {
    let (mut child, endpoint) = spawn(&["--port", "0", "--generate", "3"]).await;
    assert!(endpoint.starts_with("http://127.0.0.1:"), "{endpoint}");
    let out = client(&endpoint)
        .await
        .describe_recovery_instances()
        .send()
        .await
        .expect("describe");
    assert_eq!(out.items().len(), 3);

    let status = terminate(&mut child);
    assert!(status.success(), "{status:?}");
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(
        stderr.contains("DescribeRecoveryInstances"),
        "calls are logged on stderr: {stderr}"
    );
}

#[tokio::test]
async fn fleet_from_a_sample_request_and_faults_from_a_config_file() {
    let sample = temp_file(
        "sample.json",
        r#"{"version":"0","id":"e1","detail-type":"Failback Requested","source":"x","account":"111122223333",
            "time":"2024-01-01T00:00:00Z","region":"us-east-1","resources":[],
            "detail":{"recoveryInstanceIDs":["i-0123456789abcdef0","i-0123456789abcdef1","bad-id"]}}"#,
    );
    let config = temp_file(
        "config.json",
        r#"{"faults":[{"type":"throttle","operation":"StartFailbackLaunch","calls":1,"retryAfterSeconds":5}],
            "quotas":{"serversPerJob":50}}"#,
    );
    let (mut child, endpoint) = spawn(&[
        "--port",
        "0",
        "--ids-from",
        sample.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
    ])
    .await;
    let drs = client(&endpoint).await;
    let listed = drs.describe_recovery_instances().send().await.unwrap();
    let ids: Vec<_> = listed
        .items()
        .iter()
        .filter_map(|i| i.recovery_instance_id())
        .collect();
    assert_eq!(ids, ["i-0123456789abcdef0", "i-0123456789abcdef1"]);
    let launch = || {
        drs.start_failback_launch()
            .recovery_instance_ids("i-0123456789abcdef0")
            .send()
    };
    match launch().await.map_err(|e| e.into_service_error()) {
        Err(StartFailbackLaunchError::ThrottlingException(e)) => {
            assert_eq!(e.retry_after_seconds(), Some("5"))
        }
        other => panic!("expected the configured throttle, got {other:?}"),
    }
    launch().await.expect("then the launch goes through");
    let jobs = common::raw(
        endpoint.trim_start_matches("http://").parse().unwrap(),
        "GET",
        "/_sim/jobs",
        &[],
        b"",
    )
    .await;
    assert_eq!(jobs.json().as_array().unwrap().len(), 1);

    assert!(terminate(&mut child).success());
    let _ = std::fs::remove_file(sample);
    let _ = std::fs::remove_file(config);
}

#[test]
fn bad_arguments_exit_2_with_a_message() {
    for (args, needle) in [
        (&["--host", "0.0.0.0"][..], "non-loopback"),
        (&["--fleet", "/nonexistent/fleet.json"], "cannot read"),
        (&["--generate", "many"], "--generate"),
        (&["--bogus"], "unexpected argument '--bogus'"),
    ] {
        let out = Command::new(BIN).args(args).output().expect("run drs-sim");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
    let bad_config = temp_file("bad-config.json", r#"{"pageSize": 0}"#);
    let out = Command::new(BIN)
        .args(["--config", bad_config.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let _ = std::fs::remove_file(bad_config);
    let help = Command::new(BIN).arg("--help").output().unwrap();
    assert!(help.status.success() && String::from_utf8_lossy(&help.stdout).contains("--ids-from"));
}
