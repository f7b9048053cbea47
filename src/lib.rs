//! drs-failback: fail back many AWS DRS recovery instances at once, safely and observably.
//!
//! The core (request → plan → launch → outcomes → events) depends only on the [`drs::Drs`] and
//! [`publish::EventPublisher`] traits; the AWS SDK adapters live in [`aws`].

pub mod aws;
pub mod config;
pub mod drs;
pub mod error;
pub mod events;
pub mod handler;
pub mod launch;
pub mod logging;
pub mod outcome;
pub mod pacing;
pub mod plan;
pub mod preflight;
pub mod publish;
pub mod request;
pub mod retry;
