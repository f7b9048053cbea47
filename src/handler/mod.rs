//! The function as a whole: [`Failback`], its settings and the two things it talks to, built once
//! per cold start; each invocation's payload dispatched to its stage ([`dispatch`]); the Lambda
//! adapter around it ([`lambda`]): the envelope, the deadline, the log span, errors as Lambda
//! diagnostics.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::config::Config;
use crate::drs::Drs;
use crate::drs::reach::Reach;
use crate::events::EventPublisher;
use crate::retry::Jitter;
use crate::telemetry::metrics::MetricsTarget;

pub mod dispatch;
pub mod lambda;

pub use dispatch::Reply;

/// The function: its settings and the two things it talks to. Built once per cold start (by
/// `aws::failback`, which wires it to the SDK clients) and shared by every invocation.
pub struct Failback<D, P> {
    config: Config,
    drs: D,
    /// DRS in the target accounts and regions; none: the function acts in its own only.
    reach: Option<Box<dyn Reach<D>>>,
    publisher: P,
    jitter: Box<Jitter>,
    /// The wall-clock time, read at each invocation (DRS dates a job's creation and end in it).
    wall_clock: Box<dyn Fn() -> std::time::SystemTime + Send + Sync>,
    new_run_id: fn() -> String,
    /// Where the metrics go (EMF) and what writes each record's line: stdout, the log stream.
    metrics: MetricsTarget,
    emit: Box<dyn Fn(&str) + Send + Sync>,
    /// No invocation has run in this process yet: the next one is a cold start.
    cold: AtomicBool,
}

pub fn random_run_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl<D: Drs, P: EventPublisher> Failback<D, P> {
    pub fn new(config: Config, drs: D, publisher: P) -> Self {
        Failback {
            config,
            drs,
            reach: None,
            publisher,
            jitter: Box::new(fastrand::f64),
            wall_clock: Box::new(std::time::SystemTime::now),
            new_run_id: random_run_id,
            metrics: MetricsTarget::from_lookup(|name| std::env::var(name).ok()),
            emit: Box::new(|line| println!("{line}")),
            cold: AtomicBool::new(true),
        }
    }

    /// Reaches other accounts and regions through `reach` (a call naming one is otherwise
    /// answered as unreachable).
    pub fn with_reach(mut self, reach: impl Reach<D> + 'static) -> Self {
        self.reach = Some(Box::new(reach));
        self
    }

    /// Draws retry jitter from `jitter` instead of at random (tests fix it).
    pub fn with_jitter(mut self, jitter: impl Fn() -> f64 + Send + Sync + 'static) -> Self {
        self.jitter = Box::new(jitter);
        self
    }

    /// Reads the wall-clock time from `clock` instead of the system's (a paused test clock:
    /// [`crate::retry::deadline::following_tokio`]).
    pub fn with_wall_clock(
        mut self,
        clock: impl Fn() -> std::time::SystemTime + Send + Sync + 'static,
    ) -> Self {
        self.wall_clock = Box::new(clock);
        self
    }

    /// The wall-clock time now.
    pub(crate) fn wall_now(&self) -> std::time::SystemTime {
        (self.wall_clock)()
    }

    /// Names runs that bring no run id with `new_run_id` instead of a random UUID.
    pub fn with_run_ids(mut self, new_run_id: fn() -> String) -> Self {
        self.new_run_id = new_run_id;
        self
    }

    /// Writes each invocation's metrics record with `emit` instead of to stdout.
    pub fn with_metrics_output(mut self, emit: impl Fn(&str) + Send + Sync + 'static) -> Self {
        self.emit = Box::new(emit);
        self
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Whether this invocation is the process's first (read once per invocation).
    fn cold_start(&self) -> bool {
        self.cold.swap(false, Ordering::Relaxed)
    }
}
