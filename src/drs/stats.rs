//! The calls of one invocation, counted where they are made (DRS reads and launches, and the
//! events EventBridge never took): what its throttling, wasted-call, latency and
//! events-not-published metrics say.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Launch latencies kept per invocation: as many values as one EMF metric may carry.
pub const MAX_LATENCIES: usize = 100;

/// DRS calls of one invocation, counted where they are made (reads and launches): what the
/// throttling and wasted-call metrics say.
#[derive(Debug, Default)]
pub struct CallStats {
    /// Launch calls that created no job: throttled, refused, failed or lost.
    launches_wasted: AtomicU64,
    /// Calls (launches and reads) DRS throttled.
    throttled: AtomicU64,
    /// How long each launch call took, the first [`MAX_LATENCIES`].
    launch_latency_ms: Mutex<Vec<f64>>,
    /// Events still undelivered after their resends.
    events_undelivered: AtomicU64,
}

impl CallStats {
    pub fn launch(&self, took: Duration, created: bool, throttled: bool) {
        if !created {
            self.launches_wasted.fetch_add(1, Ordering::Relaxed);
        }
        if throttled {
            self.throttled.fetch_add(1, Ordering::Relaxed);
        }
        if let Ok(mut latencies) = self.launch_latency_ms.lock()
            && latencies.len() < MAX_LATENCIES
        {
            latencies.push(took.as_secs_f64() * 1000.0);
        }
    }

    /// A read DRS throttled.
    pub fn read_throttled(&self) {
        self.throttled.fetch_add(1, Ordering::Relaxed);
    }

    /// Events EventBridge did not take, after their resends.
    pub fn events_not_published(&self, events: usize) {
        self.events_undelivered
            .fetch_add(events as u64, Ordering::Relaxed);
    }

    /// Events of the invocation that were never published.
    pub fn events_undelivered(&self) -> u64 {
        self.events_undelivered.load(Ordering::Relaxed)
    }

    /// Calls (launches and reads) DRS throttled.
    pub fn throttled(&self) -> u64 {
        self.throttled.load(Ordering::Relaxed)
    }

    /// Launch calls that created no job.
    pub fn wasted(&self) -> u64 {
        self.launches_wasted.load(Ordering::Relaxed)
    }

    /// How long the launch calls took, in milliseconds (the first [`MAX_LATENCIES`]).
    pub fn launch_latencies_ms(&self) -> Vec<f64> {
        self.launch_latency_ms
            .lock()
            .map(|latencies| latencies.clone())
            .unwrap_or_default()
    }
}
