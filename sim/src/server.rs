//! The listener: one loopback port for DRS, EventBridge and the admin API, HTTP/1.1. Each request
//! runs in its own task so a panic answers 500 and the server keeps serving; what a request gets
//! back is decided in [`crate::routing`].

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use aws_config::SdkConfig;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderName, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use crate::config::{Fault, SimConfig};
use crate::fleet::{FailbackState, LaunchResult};
use crate::routing;
use crate::state::{CallRecord, DeliveredEvent, Shared, SimInstance, SimJob};
use crate::world::World;

/// Bodies beyond this are refused unread; PutEvents' own limit (256 KB) is checked on content.
const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// Starts simulators.
pub struct Simulator;

impl Simulator {
    /// Listens on an ephemeral loopback port.
    pub async fn start(config: SimConfig) -> io::Result<SimHandle> {
        Simulator::start_on(config, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Listens on `addr`, which must be a loopback address.
    pub async fn start_on(config: SimConfig, addr: SocketAddr) -> io::Result<SimHandle> {
        if !addr.ip().is_loopback() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "refusing to listen on {addr}: the simulator only binds loopback addresses"
                ),
            ));
        }
        config
            .check()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let world = Arc::new(World::new(config));
        let (shutdown, rx) = watch::channel(false);
        let task = tokio::spawn(serve(listener, Arc::clone(&world), rx));
        Ok(SimHandle {
            addr,
            shared: Arc::clone(world.home()),
            world,
            shutdown,
            task: Some(task),
        })
    }
}

/// A running simulator. Dropping it stops the server (a view of one target, [`SimHandle::at`],
/// does not).
pub struct SimHandle {
    addr: SocketAddr,
    /// The (account, region) this handle's methods act on: the home one, or a target's.
    shared: Arc<Shared>,
    world: Arc<World>,
    shutdown: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl SimHandle {
    /// `http://127.0.0.1:PORT`, for `endpoint_url`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The same simulator seen from one (account, region) it holds: its fleet, jobs, faults and
    /// calls. Dropping the view leaves the server running.
    pub fn at(&self, account_id: &str, region: &str) -> Option<SimHandle> {
        let shared = Arc::clone(self.world.at(account_id, region)?);
        Some(SimHandle {
            addr: self.addr,
            shared,
            world: Arc::clone(&self.world),
            shutdown: self.shutdown.clone(),
            task: None,
        })
    }

    /// The next `calls` STS AssumeRole calls answer `Throttling`.
    pub fn throttle_assume_role(&self, calls: u32) {
        self.world.throttle_assume_role(calls);
    }

    /// How many times STS AssumeRole gave keys out.
    pub fn sts_sessions(&self) -> usize {
        self.world.sessions_given()
    }

    /// Every (account, region) the simulator holds, the home one first.
    pub fn targets(&self) -> Vec<(String, String)> {
        self.world.keys()
    }

    /// An SdkConfig for this simulator over loopback HTTP ([`crate::sdk_config`]).
    pub async fn sdk_config(&self) -> SdkConfig {
        crate::sdk_config(&self.endpoint()).await
    }

    /// An SdkConfig whose HTTP client hands each request straight to this simulator, in the same
    /// process and on the same tokio clock: no socket, so a paused test clock measures retry
    /// waits exactly. Everything else — signing, serialisation, error parsing, the simulator's
    /// routing, validation, faults and state — is what a loopback call goes through.
    pub async fn in_process_sdk_config(&self) -> SdkConfig {
        crate::in_process::sdk_config(Arc::clone(&self.world)).await
    }

    pub fn inject(&self, fault: Fault) {
        self.shared.lock().inject(fault);
    }

    pub fn clear_faults(&self) {
        self.shared.lock().clear_faults();
    }

    /// Faults still pending (exhausted ones are gone).
    pub fn faults(&self) -> Vec<Fault> {
        self.shared.lock().faults()
    }

    /// The `seq` the next call to arrive will get: `calls_since` of it are the calls made from
    /// now on, however late they are recorded.
    pub fn next_call(&self) -> u64 {
        self.shared.lock().arrivals
    }

    /// The calls that arrived at or after `seq` (see [`SimHandle::next_call`]).
    pub fn calls_since(&self, seq: u64) -> Vec<CallRecord> {
        let mut calls: Vec<CallRecord> = self
            .shared
            .lock()
            .calls
            .iter()
            .filter(|call| call.seq >= seq)
            .cloned()
            .collect();
        calls.sort_by_key(|call| call.seq);
        calls
    }

    pub fn calls(&self) -> Vec<CallRecord> {
        self.shared.lock().calls.clone()
    }

    pub fn delivered_events(&self) -> Vec<DeliveredEvent> {
        self.shared.lock().events.clone()
    }

    /// Jobs in creation order, as they are now.
    pub fn jobs(&self) -> Vec<SimJob> {
        self.shared.lock().sim_jobs(Instant::now())
    }

    /// Instances in fleet order, as they are now.
    pub fn instances(&self) -> Vec<SimInstance> {
        self.shared.lock().sim_instances(Instant::now())
    }

    /// Sets an instance's failback state (it no longer follows its last job). False if unknown.
    pub fn set_instance_state(&self, id: &str, state: FailbackState) -> bool {
        self.shared.lock().set_state(id, state)
    }

    /// Replaces an instance's tags (what a plan's selector matches); false when it is unknown.
    pub fn set_tags(&self, id: &str, tags: &[(&str, &str)]) -> bool {
        let tags = tags
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.shared.lock().set_tags(id, tags)
    }

    /// How the instance's next launch ends. False if unknown.
    pub fn set_launch_result(&self, id: &str, result: LaunchResult) -> bool {
        self.shared.lock().set_launch_result(id, result)
    }

    /// Starts a failback job as another tool would: DRS's own checks and quotas apply, no call is
    /// recorded and no fault fires. The job's id, or DRS's refusal.
    pub fn start_job(
        &self,
        recovery_instance_ids: &[String],
        tags: &[(&str, &str)],
    ) -> Result<String, String> {
        self.shared.lock().start_job(recovery_instance_ids, tags)
    }

    /// Starts another tool's drill: an active job of these source servers (which have no
    /// recovery instance), counted against the quotas like any job.
    pub fn start_drill(&self, source_server_ids: &[String]) -> Result<String, String> {
        self.shared.lock().start_drill(source_server_ids)
    }

    /// Back to the configured fleet; jobs, calls, events and faults cleared.
    pub fn reset(&self) {
        self.shared.lock().reset();
    }

    /// Stops accepting; open connections finish their current request.
    pub fn shutdown(self) {}

    /// Stops and waits (at most 5 s) for open connections to finish.
    pub async fn stop(mut self) {
        if self.task.is_none() {
            return;
        }
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        if self.task.is_some() {
            let _ = self.shutdown.send(true);
        }
    }
}

async fn serve(listener: TcpListener, shared: Arc<World>, mut shutdown: watch::Receiver<bool>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = stopping(&mut shutdown) => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let shared = Arc::clone(&shared);
                    let mut shutdown = shutdown.clone();
                    connections.spawn(async move {
                        let svc = service_fn(move |req| {
                            let shared = Arc::clone(&shared);
                            async move { Ok::<_, Infallible>(serve_one(shared, req).await) }
                        });
                        let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), svc);
                        let mut conn = std::pin::pin!(conn);
                        tokio::select! {
                            _ = conn.as_mut() => {}
                            _ = stopping(&mut shutdown) => {
                                conn.as_mut().graceful_shutdown();
                                let _ = conn.await;
                            }
                        }
                    });
                }
                Err(e) => {
                    // Out of descriptors and the like: back off rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}

async fn stopping(shutdown: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is not Send: drop it here, inside a plain statement.
    let _ = shutdown.wait_for(|&stop| stop).await;
}

/// One HTTP request: the body read whole (within `MAX_BODY_BYTES`), the answer decided apart.
async fn serve_one(shared: Arc<World>, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let body = Limited::new(body, MAX_BODY_BYTES)
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|e| e.to_string());
    let reply = routing::answer(shared, Request::from_parts(parts, body)).await;
    let mut response = Response::new(Full::new(reply.body));
    *response.status_mut() =
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in reply.headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response
                .headers_mut()
                .insert(HeaderName::from_static(name), value);
        }
    }
    response
}
