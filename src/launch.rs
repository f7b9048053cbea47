//! Launching the planned chunks: bounded concurrency, one retry layer, the deadline respected.

use std::sync::Mutex;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream;
use tokio::time::{Instant, sleep, timeout};
use tracing::{error, info, warn};

use crate::drs::{Drs, LaunchError, LaunchedJob, Unusable};
use crate::outcome::{DeferReason, Outcome};
use crate::plan::Chunk;
use crate::request::Tags;
use crate::retry::Backoff;

/// A connection that cannot be opened rarely opens a second later; a few tries are enough.
const MAX_UNSENT_RETRIES: u32 = 3;

/// A source of jitter in `[0, 1]`; random in production, fixed in tests.
pub type Jitter = dyn Fn() -> f64 + Send + Sync;

#[derive(Debug, Clone)]
pub struct LaunchSettings {
    pub max_concurrent: usize,
    pub backoff: Backoff,
    pub throttle_max_retries: u32,
    /// The longest one `StartFailbackLaunch` call may take; no call starts unless this much time
    /// is left before `stop_at`, and a call that overruns it is ambiguous.
    pub call_timeout: Duration,
}

#[derive(Debug, Default)]
pub struct LaunchReport {
    pub jobs: Vec<LaunchedJob>,
    /// In chunk order, so outcomes follow the request's order.
    pub outcomes: Vec<(String, Outcome)>,
    /// Set when DRS said it cannot be used at all; the run is then refused if no job was created.
    pub unusable: Option<(Unusable, String)>,
}

/// Why the remaining chunks must not start: set by the first chunk that learns it.
#[derive(Default)]
struct Halt(Mutex<Option<(DeferReason, String)>>);

impl Halt {
    fn get(&self) -> Option<(DeferReason, String)> {
        self.0.lock().map(|guard| guard.clone()).unwrap_or(None)
    }
    fn set(&self, reason: DeferReason, why: String) {
        if let Ok(mut guard) = self.0.lock() {
            guard.get_or_insert((reason, why));
        }
    }
}

struct ChunkResult {
    index: usize,
    job: Option<LaunchedJob>,
    outcomes: Vec<(String, Outcome)>,
    unusable: Option<(Unusable, String)>,
}

impl ChunkResult {
    fn all(chunk: &Chunk, outcome: Outcome) -> Self {
        ChunkResult {
            index: chunk.index,
            job: None,
            outcomes: chunk
                .recovery_instance_ids
                .iter()
                .map(|id| (id.clone(), outcome.clone()))
                .collect(),
            unusable: None,
        }
    }
}

pub struct Launcher<'a, D> {
    pub drs: &'a D,
    pub settings: &'a LaunchSettings,
    pub jitter: &'a Jitter,
    /// The invocation deadline minus the margin kept for publishing and answering.
    pub stop_at: Instant,
}

impl<D: Drs> Launcher<'_, D> {
    pub async fn launch_all(&self, chunks: Vec<Chunk>, tags: &Tags) -> LaunchReport {
        let halt = Halt::default();
        let mut results: Vec<ChunkResult> = stream::iter(chunks)
            .map(|chunk| self.launch_chunk(chunk, tags, &halt))
            .buffer_unordered(self.settings.max_concurrent.max(1))
            .collect()
            .await;
        results.sort_by_key(|result| result.index);

        let mut report = LaunchReport::default();
        for result in results {
            report.jobs.extend(result.job);
            report.outcomes.extend(result.outcomes);
            if report.unusable.is_none() {
                report.unusable = result.unusable;
            }
        }
        report
    }

    async fn launch_chunk(&self, chunk: Chunk, tags: &Tags, halt: &Halt) -> ChunkResult {
        let size = chunk.recovery_instance_ids.len();
        let chunk_index = chunk.index;
        let mut throttled = 0u32;
        let mut unsent = 0u32;
        loop {
            if let Some((reason, why)) = halt.get() {
                info!(chunk_index, instances = size, reason = ?reason, "deferred: the run is halted");
                return ChunkResult::all(&chunk, Outcome::deferred(reason, Some(why)));
            }
            let call_timeout = self.settings.call_timeout;
            if Instant::now() + call_timeout > self.stop_at {
                info!(
                    chunk_index,
                    instances = size,
                    "deferred: too close to the deadline to start a call"
                );
                return ChunkResult::all(&chunk, Outcome::deferred(DeferReason::Deadline, None));
            }

            let answer = timeout(
                call_timeout,
                self.drs
                    .start_failback_launch(&chunk.recovery_instance_ids, tags),
            )
            .await
            .unwrap_or_else(|_| {
                Err(LaunchError::Ambiguous {
                    error: format!("no answer within {} ms", call_timeout.as_millis()),
                })
            });

            let error = match answer {
                Ok(job) => {
                    info!(chunk_index, instances = size, job_id = %job.job_id, "launched");
                    let outcome = Outcome::Launched {
                        job_id: job.job_id.clone(),
                    };
                    let mut result = ChunkResult::all(&chunk, outcome);
                    result.job = Some(job);
                    return result;
                }
                Err(error) => error,
            };

            let wait = match error {
                LaunchError::Throttled {
                    retry_after,
                    message,
                } => {
                    if throttled >= self.settings.throttle_max_retries {
                        warn!(
                            chunk_index,
                            instances = size,
                            attempts = throttled + 1,
                            "deferred: still throttled"
                        );
                        return ChunkResult::all(
                            &chunk,
                            Outcome::deferred(DeferReason::Throttled, Some(message)),
                        );
                    }
                    let wait = self.settings.backoff.throttle_delay(
                        throttled,
                        retry_after,
                        (self.jitter)(),
                    );
                    throttled += 1;
                    warn!(
                        chunk_index,
                        instances = size,
                        retry_after_s = retry_after.map(|d| d.as_secs()),
                        wait_ms = wait.as_millis() as u64,
                        attempt = throttled,
                        "throttled: waiting before resending the same chunk"
                    );
                    wait
                }
                LaunchError::NotSent { error } => {
                    if unsent >= MAX_UNSENT_RETRIES {
                        warn!(chunk_index, instances = size, error = %error, "deferred: DRS unreachable");
                        return ChunkResult::all(
                            &chunk,
                            Outcome::deferred(DeferReason::Unreachable, Some(error)),
                        );
                    }
                    let wait = self.settings.backoff.delay(unsent, (self.jitter)());
                    unsent += 1;
                    warn!(chunk_index, instances = size, wait_ms = wait.as_millis() as u64, error = %error,
                        "request never left: waiting before resending");
                    wait
                }
                LaunchError::Ambiguous { error } => {
                    // No idempotency token: a resend could start a second job for the same
                    // instances. Report them instead; reconciliation decides later.
                    warn!(chunk_index, instances = size, error = %error,
                        "deferred: ambiguous failure, the job may exist; not resent");
                    return ChunkResult::all(
                        &chunk,
                        Outcome::deferred(DeferReason::Ambiguous, Some(error)),
                    );
                }
                LaunchError::QuotaExceeded {
                    message,
                    quota_code,
                } => {
                    let why = match quota_code {
                        Some(code) => format!("{message} (quota {code})"),
                        None => message,
                    };
                    warn!(chunk_index, instances = size, error = %why,
                        "deferred: DRS quota full; the chunks not yet started are deferred too");
                    halt.set(DeferReason::Quota, why.clone());
                    return ChunkResult::all(
                        &chunk,
                        Outcome::deferred(DeferReason::Quota, Some(why)),
                    );
                }
                LaunchError::Refused { code, message, .. } => {
                    warn!(chunk_index, instances = size, code = %code, error = %message, "rejected by DRS");
                    return ChunkResult::all(&chunk, Outcome::refused_by_drs(&code, &message));
                }
                LaunchError::Unusable { kind, message } => {
                    error!(chunk_index, instances = size, kind = ?kind, error = %message,
                        "DRS cannot be used: halting the run");
                    halt.set(DeferReason::Halted, message.clone());
                    let mut result = ChunkResult::all(
                        &chunk,
                        Outcome::deferred(DeferReason::Halted, Some(message.clone())),
                    );
                    result.unusable = Some((kind, message));
                    return result;
                }
            };

            if Instant::now() + wait + call_timeout > self.stop_at {
                info!(
                    chunk_index,
                    instances = size,
                    wait_ms = wait.as_millis() as u64,
                    "deferred: the wait before resending would pass the deadline"
                );
                return ChunkResult::all(&chunk, Outcome::deferred(DeferReason::Deadline, None));
            }
            sleep(wait).await;
        }
    }
}
