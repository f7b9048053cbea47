//! `drs-sim`: a local simulator of the AWS endpoints drs-failback talks to, AWS Elastic Disaster
//! Recovery (restJson1), EventBridge PutEvents (awsJson1_1) and STS AssumeRole (awsQuery), on one
//! loopback port.
//! The real AWS SDK for Rust clients work against it unchanged with `endpoint_url` set (see
//! [`sdk_config`]).
//!
//! What it models:
//! - requests validated against the DRS API model shipped in `model/` (lengths, patterns,
//!   list sizes, required members, integer bounds), SigV4 header presence and scope;
//! - a fleet of recovery instances ([`Fleet`]) and failback jobs that go PENDING → STARTED →
//!   COMPLETED on tokio time ([`Lifecycle`]), with each instance's launch ending LAUNCHED or
//!   FAILED as configured; the rules are in the `drs` module docs;
//! - failback replication that progresses over simulated time before an instance is ready
//!   ([`Replication`]): an ETA, a stall, a client that disconnects or never connects;
//! - the DRS quotas ([`Quotas`]) and the all-or-nothing StartFailbackLaunch;
//! - many accounts and regions ([`SimConfig::targets`]), each with its own DRS state, quotas,
//!   faults and calls, a call routed by the keys and region it is signed with; STS AssumeRole
//!   for the roles target accounts hold ([`Role`]), keys that expire; a region a target does not
//!   use refuses as an opt-in region not enabled does;
//! - faults on demand ([`Fault`]) and a record of every call ([`CallRecord`]) and delivered
//!   event ([`DeliveredEvent`]).
//!
//! Admin API on the same port, no SigV4, JSON: `GET /_sim/{health,calls,events,jobs,instances,
//! faults}`, `POST /_sim/faults` (a fault or a list), `DELETE /_sim/faults`, `POST
//! /_sim/instances` (`{"recoveryInstanceID", "state"?, "launchResult"?, "replication"?}`), `POST /_sim/reset`;
//! the same under `/_sim/targets/<account>/<region>/` for a target, `GET /_sim/targets` lists them.

mod admin;
mod clock;
mod config;
mod drs;
mod error;
mod eventbridge;
mod fleet;
mod history;
mod in_process;
mod model;
mod replication;
mod reply;
mod routing;
mod server;
mod sigv4;
mod state;
mod world;

pub use clock::iso8601;
pub use config::{Fault, History, Lifecycle, Operation, Quotas, Role, SimConfig};
pub use error::SimError;
pub use fleet::{FailbackState, Fleet, FleetInstance, LaunchResult};
pub use model::embedded_model;
pub use replication::{INITIATING_SECONDS, Replication};
pub use server::{SimHandle, Simulator};
pub use state::{CallRecord, DeliveredEvent, SimInstance, SimJob, SimParticipant};
pub use world::TargetKey;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;

/// Region of [`sdk_config`].
pub const REGION: &str = "us-east-1";

/// An SdkConfig for talking to the simulator: endpoint set, region us-east-1, static dummy
/// credentials. Built field by field rather than through `aws_config::defaults`, so the SDK
/// never reads the environment or profile files for credentials, region or endpoints, and
/// never probes instance metadata. SDK defaults (retries, timeouts, HTTP client) still apply.
pub async fn sdk_config(endpoint: &str) -> SdkConfig {
    let credentials = Credentials::new("AKIDDRSSIMULATOR", "drs-sim-secret", None, None, "drs-sim");
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .endpoint_url(endpoint)
        .build()
}
