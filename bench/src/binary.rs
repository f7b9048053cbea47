//! The Lambda's release binary, started as Lambda starts it: against a minimal Runtime API
//! stand-in on loopback. Measures start-up (process start to its first `invocation/next` poll),
//! peak resident memory over one real invocation, and the binary's size.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use drs_sim::{FailbackState, Fleet, Operation, SimConfig, Simulator};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::CONTENT_TYPE;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::workload::{DEADLINE, LATENCY, RAISED_QUOTAS};

const FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:111122223333:function:drs-failback";
const NEXT_PATH: &str = "/2018-06-01/runtime/invocation/next";
/// How long the stand-in holds a `next` poll it has no invocation for; the bench kills the
/// process long before.
const HOLD: Duration = Duration::from_secs(30);
const START_TIMEOUT: Duration = Duration::from_secs(10);
const INVOCATION_TIMEOUT: Duration = Duration::from_secs(300);

struct Invocation {
    request_id: String,
    deadline_ms: u64,
    body: String,
}

enum Event {
    Polled(Instant),
    Responded { path: String, body: Vec<u8> },
}

struct Shared {
    next: Mutex<Option<Invocation>>,
    events: mpsc::Sender<Event>,
}

/// The Runtime API stand-in: `GET .../invocation/next` hands out the queued invocation (or holds
/// the poll), `POST .../response`, `.../error` and `init/error` are recorded.
struct StandIn {
    addr: SocketAddr,
    shared: Arc<Shared>,
    events: mpsc::Receiver<Event>,
    stop: watch::Sender<bool>,
}

impl StandIn {
    /// Must run inside the runtime that will serve it.
    async fn start() -> io::Result<StandIn> {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let addr = listener.local_addr()?;
        let (sender, events) = mpsc::channel();
        let shared = Arc::new(Shared {
            next: Mutex::new(None),
            events: sender,
        });
        let (stop, stopped) = watch::channel(false);
        tokio::spawn(serve(listener, Arc::clone(&shared), stopped));
        Ok(StandIn {
            addr,
            shared,
            events,
            stop,
        })
    }

    fn queue(&self, invocation: Option<Invocation>) {
        *self
            .shared
            .next
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = invocation;
        while self.events.try_recv().is_ok() {}
    }

    fn wait_polled(&self, timeout: Duration) -> Option<Instant> {
        let until = Instant::now() + timeout;
        loop {
            let left = until.checked_duration_since(Instant::now())?;
            match self.events.recv_timeout(left) {
                Ok(Event::Polled(at)) => return Some(at),
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
    }

    fn wait_response(&self, timeout: Duration) -> Option<(String, Vec<u8>)> {
        let until = Instant::now() + timeout;
        loop {
            let left = until.checked_duration_since(Instant::now())?;
            match self.events.recv_timeout(left) {
                Ok(Event::Responded { path, body }) => return Some((path, body)),
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

async fn serve(listener: TcpListener, shared: Arc<Shared>, mut stopped: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = stopping(&mut stopped) => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                };
                let shared = Arc::clone(&shared);
                let mut stopped = stopped.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request| {
                        let shared = Arc::clone(&shared);
                        async move { Ok::<_, Infallible>(answer(&shared, request).await) }
                    });
                    let connection =
                        http1::Builder::new().serve_connection(TokioIo::new(stream), service);
                    // Bounded: a held poll ends after HOLD, and everything ends when stopped.
                    tokio::select! {
                        _ = connection => {}
                        _ = stopping(&mut stopped) => {}
                    }
                });
            }
        }
    }
}

async fn stopping(stopped: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns borrows the receiver: drop it here.
    let _ = stopped.wait_for(|&stop| stop).await;
}

fn reply(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
}

async fn answer(shared: &Shared, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let arrived = Instant::now();
    let path = request.uri().path().to_owned();
    if request.method() == Method::GET && path == NEXT_PATH {
        let _ = shared.events.send(Event::Polled(arrived));
        let invocation = shared
            .next
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let Some(invocation) = invocation else {
            tokio::time::sleep(HOLD).await;
            return reply(StatusCode::SERVICE_UNAVAILABLE, "no invocation");
        };
        let mut response = reply(StatusCode::OK, invocation.body);
        let headers = response.headers_mut();
        let pairs = [
            ("lambda-runtime-aws-request-id", invocation.request_id),
            (
                "lambda-runtime-deadline-ms",
                invocation.deadline_ms.to_string(),
            ),
            ("lambda-runtime-invoked-function-arn", FUNCTION_ARN.into()),
            (
                "lambda-runtime-trace-id",
                "Root=1-00000000-000000000000000000000000;Sampled=0".into(),
            ),
            ("content-type", "application/json".into()),
        ];
        for (name, value) in pairs {
            if let Ok(value) = value.parse() {
                headers.insert(name, value);
            }
        }
        return response;
    }
    let recorded = request.method() == Method::POST
        && (path == "/2018-06-01/runtime/init/error"
            || (path.starts_with("/2018-06-01/runtime/invocation/")
                && (path.ends_with("/response") || path.ends_with("/error"))));
    if recorded {
        let body = match request.into_body().collect().await {
            Ok(collected) => collected.to_bytes().to_vec(),
            Err(_) => Vec::new(),
        };
        let _ = shared.events.send(Event::Responded { path, body });
        let mut response = reply(StatusCode::ACCEPTED, r#"{"status":"OK"}"#);
        if let Ok(value) = "application/json".parse() {
            response.headers_mut().insert(CONTENT_TYPE, value);
        }
        return response;
    }
    reply(StatusCode::NOT_FOUND, "not a Runtime API path")
}

/// A started function process: killed and reaped when dropped, whatever happens.
struct Process(std::process::Child);

impl Process {
    fn id(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The environment Lambda gives the function, pointed at loopback only; nothing else is
/// inherited (no profile files, no real credentials).
pub(crate) fn lambda_env(
    runtime_api: SocketAddr,
    endpoint: &str,
    extra: &[(&str, String)],
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = [
        ("AWS_LAMBDA_RUNTIME_API", runtime_api.to_string()),
        ("AWS_LAMBDA_FUNCTION_NAME", "drs-failback".into()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".into()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
        (
            "AWS_LAMBDA_LOG_STREAM_NAME",
            "2026/11/27/[$LATEST]drs-failback-bench".into(),
        ),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME",
            "/aws/lambda/drs-failback".into(),
        ),
        ("AWS_ACCESS_KEY_ID", "AKIDBENCHLOCALONLY".into()),
        ("AWS_SECRET_ACCESS_KEY", "bench-local-only-secret".into()),
        ("AWS_REGION", drs_sim::REGION.into()),
        ("AWS_DEFAULT_REGION", drs_sim::REGION.into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
        (
            "AWS_CONFIG_FILE",
            "/nonexistent/drs-failback-bench/config".into(),
        ),
        (
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/drs-failback-bench/credentials".into(),
        ),
        ("AWS_ENDPOINT_URL_DRS", endpoint.into()),
        ("AWS_ENDPOINT_URL_EVENTBRIDGE", endpoint.into()),
        ("TZ", ":UTC".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    env.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
    env
}

fn spawn(binary: &Path, env: &[(String, String)]) -> Result<Process, String> {
    Command::new(binary)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map(Process)
        .map_err(|e| format!("cannot start {}: {e}", binary.display()))
}

/// A `/proc/<pid>/status` field in kB (VmRSS, VmHWM).
fn status_kb(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Startup {
    /// Process start to its first `invocation/next` poll, one per cold start.
    pub times: Vec<Duration>,
    /// VmRSS (kB) at that first poll: the idle footprint.
    pub idle_rss_kb: Vec<u64>,
    pub failures: usize,
}

/// Starts the binary `count` times, each a fresh process, and times it to its first poll.
pub fn startups(
    infra: &tokio::runtime::Runtime,
    binary: &Path,
    count: usize,
    extra_env: &[(&str, String)],
) -> Result<Startup, String> {
    let sim = infra
        .block_on(Simulator::start(SimConfig {
            fleet: Fleet::generated(1, FailbackState::FailbackReadyForLaunch),
            ..SimConfig::default()
        }))
        .map_err(|e| format!("the simulator did not start: {e}"))?;
    let stand_in = infra
        .block_on(StandIn::start())
        .map_err(|e| format!("the Runtime API stand-in did not start: {e}"))?;
    let env = lambda_env(stand_in.addr, &sim.endpoint(), extra_env);
    let mut startup = Startup::default();
    for _ in 0..count {
        stand_in.queue(None);
        let started = Instant::now();
        let process = spawn(binary, &env)?;
        match stand_in.wait_polled(START_TIMEOUT) {
            Some(at) => {
                startup.times.push(at.saturating_duration_since(started));
                if let Some(kb) = status_kb(process.id(), "VmRSS") {
                    startup.idle_rss_kb.push(kb);
                }
            }
            None => startup.failures += 1,
        }
        drop(process);
    }
    drop(stand_in);
    infra.block_on(sim.stop());
    Ok(startup)
}

/// Points the TLS trust store at nothing: what start-up costs without reading and parsing the
/// system's root certificates (rustls-native-certs honours these variables).
pub fn without_system_certificates() -> Vec<(&'static str, String)> {
    vec![
        (
            "SSL_CERT_FILE",
            "/nonexistent/drs-failback-bench/ca.pem".to_owned(),
        ),
        (
            "SSL_CERT_DIR",
            "/nonexistent/drs-failback-bench/certs".to_owned(),
        ),
    ]
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Rss {
    pub n: usize,
    /// VmHWM after the invocation answered: the peak resident set of the whole process life.
    pub peak_kb: u64,
    pub launched: usize,
    pub launches: usize,
    /// Invocation handed out to answer received.
    pub invocation: Duration,
}

/// One cold process serving one invocation of `n` ready instances (quotas raised so all
/// launch); its peak resident memory once it has answered.
pub fn peak_rss(infra: &tokio::runtime::Runtime, binary: &Path, n: usize) -> Result<Rss, String> {
    let fleet = Fleet::generated(n, FailbackState::FailbackReadyForLaunch);
    let ids = fleet.ids();
    let sim = infra
        .block_on(Simulator::start(SimConfig {
            fleet,
            quotas: RAISED_QUOTAS,
            latency: Some(LATENCY),
            ..SimConfig::default()
        }))
        .map_err(|e| format!("the simulator did not start: {e}"))?;
    let stand_in = infra
        .block_on(StandIn::start())
        .map_err(|e| format!("the Runtime API stand-in did not start: {e}"))?;
    let env = lambda_env(
        stand_in.addr,
        &sim.endpoint(),
        &[
            (
                "MAX_SERVERS_IN_FLIGHT",
                RAISED_QUOTAS.servers_in_active_jobs.to_string(),
            ),
            ("MAX_ACTIVE_JOBS", RAISED_QUOTAS.active_jobs.to_string()),
        ],
    );
    let deadline_ms = SystemTime::now()
        .checked_add(DEADLINE)
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    stand_in.queue(Some(Invocation {
        request_id: format!("bench-rss-{n}"),
        deadline_ms,
        body: json!({ "runId": format!("bench-rss-{n}"), "recoveryInstanceIDs": ids }).to_string(),
    }));
    let started = Instant::now();
    let process = spawn(binary, &env)?;
    let answered = stand_in.wait_response(INVOCATION_TIMEOUT);
    let invocation = started.elapsed();
    let peak_kb = status_kb(process.id(), "VmHWM");
    drop(process);
    drop(stand_in);
    let launches = sim
        .calls()
        .iter()
        .filter(|c| c.operation == Operation::StartFailbackLaunch)
        .count();
    infra.block_on(sim.stop());

    let (path, body) =
        answered.ok_or_else(|| format!("N = {n}: no answer within {INVOCATION_TIMEOUT:?}"))?;
    let answer: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if !path.ends_with("/response") {
        return Err(format!(
            "N = {n}: the function answered on {path}: {}",
            String::from_utf8_lossy(&body)
        ));
    }
    let launched = answer["counts"]["launched"].as_u64().unwrap_or(0) as usize;
    Ok(Rss {
        n,
        peak_kb: peak_kb.ok_or("VmHWM unreadable")?,
        launched,
        launches,
        invocation,
    })
}

/// Where cargo puts build output for this workspace.
pub fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|dir| {
            if dir.is_absolute() {
                dir
            } else {
                root.join(dir)
            }
        })
        .unwrap_or_else(|| root.join("target"))
}

pub fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

/// Builds the Lambda binary exactly as it ships (`[profile.release]`, the root crate's
/// features only) and returns its path.
pub fn build(root: &Path) -> Result<PathBuf, String> {
    eprintln!(
        "building the Lambda binary: cargo build --release -p drs-failback --bin drs-failback"
    );
    let status = Command::new(cargo())
        .current_dir(root)
        .args([
            "build",
            "--release",
            "-p",
            "drs-failback",
            "--bin",
            "drs-failback",
        ])
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err(format!("cargo build --release failed: {status}"));
    }
    let binary = target_dir(root).join("release").join("drs-failback");
    if !binary.is_file() {
        return Err(format!("{} was not built", binary.display()));
    }
    Ok(binary)
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Size {
    pub bytes: u64,
    /// After `strip --strip-all` (None when `strip` is not available).
    pub stripped: Option<u64>,
}

pub fn size(binary: &Path, scratch: &Path) -> Size {
    let bytes = std::fs::metadata(binary).map(|m| m.len()).unwrap_or(0);
    let copy = scratch.join("drs-failback.stripped");
    let _ = std::fs::create_dir_all(scratch);
    let stripped = Command::new("strip")
        .arg("--strip-all")
        .arg("-o")
        .arg(&copy)
        .arg(binary)
        .status()
        .ok()
        .filter(|s| s.success())
        .and_then(|_| std::fs::metadata(&copy).ok())
        .map(|m| m.len());
    let _ = std::fs::remove_file(&copy);
    Size { bytes, stripped }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Arm64 {
    Measured { bytes: u64 },
    NotMeasured { cause: String },
}

/// The stripped arm64 `bootstrap` from `cargo lambda build --release --arm64`, when this machine
/// can build it.
pub fn arm64(root: &Path) -> Arm64 {
    const TARGET: &str = "aarch64-unknown-linux-gnu";
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
    let installed = match installed {
        Ok(list) => list,
        Err(e) => {
            return Arm64::NotMeasured {
                cause: format!("rustup is not available to list the installed targets ({e})"),
            };
        }
    };
    if !installed.lines().any(|line| line.trim() == TARGET) {
        let list: Vec<&str> = installed.lines().map(str::trim).collect();
        return Arm64::NotMeasured {
            cause: format!(
                "the {TARGET} standard library is not installed (`rustup target list --installed`: {}), \
                 and `rustup target add {TARGET}` needs the Rust distribution server, which this \
                 machine cannot reach (only package registries are reachable)",
                list.join(", ")
            ),
        };
    }
    let has_cargo_lambda = Command::new(cargo())
        .args(["lambda", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !has_cargo_lambda {
        return Arm64::NotMeasured {
            cause: "cargo-lambda is not installed (`pip install cargo-lambda`)".into(),
        };
    }
    let status = Command::new(cargo())
        .current_dir(root)
        .args([
            "lambda",
            "build",
            "--release",
            "--arm64",
            "--bin",
            "drs-failback",
        ])
        .status();
    match status {
        Ok(s) if s.success() => {
            let bootstrap = target_dir(root)
                .join("lambda")
                .join("drs-failback")
                .join("bootstrap");
            match std::fs::metadata(&bootstrap) {
                Ok(m) => Arm64::Measured { bytes: m.len() },
                Err(e) => Arm64::NotMeasured {
                    cause: format!("{} not found after the build: {e}", bootstrap.display()),
                },
            }
        }
        Ok(s) => Arm64::NotMeasured {
            cause: format!("`cargo lambda build --release --arm64` failed: {s}"),
        },
        Err(e) => Arm64::NotMeasured {
            cause: format!("cannot run cargo lambda: {e}"),
        },
    }
}
