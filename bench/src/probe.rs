//! The pacer itself, driven directly: how far one throttle cuts its rate, what a burst of
//! throttles arriving together does, and how many admitted launches it takes to climb back.
//! On a paused clock, no I/O: this describes the code in `src/launch/pacing.rs` as built. Every launch
//! slot it takes is handed back (`succeeded` / `throttled`), so the slow-start window never
//! holds it up.

use std::time::Duration;

use drs_failback::launch::pacing::Pacer;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::workload::{BURST, CONCURRENCY, RATE_PER_SECOND};

/// What the pacer does in the throttling profile's situations.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PacerProbe {
    /// Its rate after the first round: `BURST` launches admitted, the rest of the
    /// `CONCURRENCY` in flight throttled at once (`Retry-After` 1 s).
    pub after_first_round: Option<f64>,
    /// Admitted launches, sent at the pacer's own pace, until its rate is back at the service's.
    pub climb_calls: Option<usize>,
    /// Seconds that climb takes.
    pub climb_seconds: Option<f64>,
    /// Its rate before and after each of `CONCURRENCY - 1` throttles arriving together once it
    /// paces at the service's rate.
    pub burst: Vec<Option<f64>>,
}

const CLIMB_LIMIT: usize = 10_000;

pub fn probe() -> PacerProbe {
    match tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
    {
        Ok(runtime) => runtime.block_on(run()),
        Err(_) => PacerProbe::default(),
    }
}

async fn run() -> PacerProbe {
    let pacer = Pacer::new(true);
    let start = Instant::now();
    let mut probe = PacerProbe::default();
    for _ in 0..BURST {
        pacer.succeeded(start);
    }
    let first_answers = start + Duration::from_millis(50);
    for _ in BURST as usize..CONCURRENCY {
        pacer.throttled(start, first_answers, Some(Duration::from_secs(1)));
    }
    probe.after_first_round = pacer.rate();

    // Climb: one admitted launch per slot the pacer hands out.
    tokio::time::advance(Duration::from_millis(1_050)).await;
    let mut now = Instant::now();
    let mut calls = 0;
    while pacer.rate().is_some_and(|rate| rate < RATE_PER_SECOND) && calls < CLIMB_LIMIT {
        now = pacer.reserve().await.max(now);
        pacer.succeeded(now);
        calls += 1;
    }
    if pacer.rate().is_some_and(|rate| rate >= RATE_PER_SECOND) {
        probe.climb_calls = Some(calls);
        probe.climb_seconds = Some(now.duration_since(first_answers).as_secs_f64());
    }

    // A burst: the other chunks in flight throttled at the same moment.
    probe.burst.push(pacer.rate());
    let at = now + Duration::from_millis(50);
    for _ in 1..CONCURRENCY {
        pacer.throttled(now, at, Some(Duration::from_secs(1)));
        probe.burst.push(pacer.rate());
    }
    probe
}
