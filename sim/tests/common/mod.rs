//! Helpers shared by the simulator's integration tests: SDK clients pointed at a simulator
//! (retries off, so a 429/500 reaches the test as it was answered) and a bare HTTP/1.1 client
//! for what the SDK cannot send (unsigned, malformed, admin).

#![allow(dead_code)]

use std::net::SocketAddr;

use aws_config::retry::RetryConfig;
use drs_sim::{SimConfig, SimHandle, Simulator, sdk_config};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const DRS_AUTH: &str = "AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/drs/aws4_request, SignedHeaders=host;x-amz-date, Signature=0f";
pub const EVENTS_AUTH: &str = "AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/events/aws4_request, SignedHeaders=host;x-amz-date, Signature=0f";

pub async fn start(config: SimConfig) -> SimHandle {
    Simulator::start(config).await.expect("simulator starts")
}

pub async fn drs(sim: &SimHandle) -> aws_sdk_drs::Client {
    let sdk = sdk_config(&sim.endpoint())
        .await
        .to_builder()
        .retry_config(RetryConfig::disabled())
        .build();
    aws_sdk_drs::Client::new(&sdk)
}

/// The same, handed to the simulator in-process: no socket, so waits are exact on a paused clock.
pub async fn in_process_drs(sim: &SimHandle) -> aws_sdk_drs::Client {
    let sdk = sim
        .in_process_sdk_config()
        .await
        .to_builder()
        .retry_config(RetryConfig::disabled())
        .build();
    aws_sdk_drs::Client::new(&sdk)
}

/// `StartFailbackLaunch` of these instances: the job id, or the error DRS answered.
pub async fn launch(
    client: &aws_sdk_drs::Client,
    ids: &[String],
) -> Result<String, aws_sdk_drs::operation::start_failback_launch::StartFailbackLaunchError> {
    client
        .start_failback_launch()
        .set_recovery_instance_ids(Some(ids.to_vec()))
        .send()
        .await
        .map(|o| o.job().expect("job").job_id().to_owned())
        .map_err(|e| e.into_service_error())
}

pub async fn events(sim: &SimHandle) -> aws_sdk_eventbridge::Client {
    let sdk = sdk_config(&sim.endpoint())
        .await
        .to_builder()
        .retry_config(RetryConfig::disabled())
        .build();
    aws_sdk_eventbridge::Client::new(&sdk)
}

#[derive(Debug)]
pub struct Raw {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Raw {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// One request on a fresh connection (`Connection: close`), the whole answer read back.
pub async fn raw(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Raw {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.expect("write head");
    stream.write_all(body).await.expect("write body");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.expect("read");
    let text = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Raw {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// A signed-looking DRS call (the simulator checks the SigV4 header's shape, not the signature).
pub async fn drs_raw(sim: &SimHandle, operation: &str, body: &str) -> Raw {
    raw(
        sim.addr(),
        "POST",
        &format!("/{operation}"),
        &[
            ("authorization", DRS_AUTH),
            ("content-type", "application/json"),
        ],
        body.as_bytes(),
    )
    .await
}

pub async fn events_raw(sim: &SimHandle, body: &str) -> Raw {
    raw(
        sim.addr(),
        "POST",
        "/",
        &[
            ("authorization", EVENTS_AUTH),
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", "AWSEvents.PutEvents"),
        ],
        body.as_bytes(),
    )
    .await
}

pub async fn admin(sim: &SimHandle, method: &str, path: &str, body: &str) -> Raw {
    raw(
        sim.addr(),
        method,
        path,
        &[("content-type", "application/json")],
        body.as_bytes(),
    )
    .await
}
