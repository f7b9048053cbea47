//! Talking to DRS under the rules: bounded concurrency, one retry layer, the deadline respected,
//! no blind resend after an ambiguous failure, and culprits isolated from refused chunks.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream;
use tokio::time::{Instant, sleep, sleep_until, timeout};
use tracing::{error, info, warn};

use crate::drs::{DescribeError, Drs, LaunchError, LaunchedJob, Unusable};
use crate::outcome::{DeferReason, Outcome};
use crate::pacing::Pacer;
use crate::plan::Chunk;
use crate::request::Tags;
use crate::retry::Backoff;

/// A connection that cannot be opened rarely opens a second later; a few tries are enough.
const MAX_UNSENT_RETRIES: u32 = 3;
/// After reconciliation proved a failed call created no job, it may be resent this many times.
const MAX_RECONCILED_RESENDS: u32 = 2;
/// Failed reads (5xx, timeouts) are retried this many times; throttled reads as launches are.
const MAX_READ_RETRIES: u32 = 3;
/// A launch that fails ambiguously is settled by two reads (the instances, then their job), so
/// a launch starts only when it and those two reads fit before the deadline: otherwise a job
/// created by a call that then hung could not be found and reported in the same answer.
const CALLS_PER_LAUNCH_BUDGET: u32 = 3;

/// A source of jitter in `[0, 1]`; random in production, fixed in tests.
pub type Jitter = dyn Fn() -> f64 + Send + Sync;

#[derive(Debug, Clone)]
pub struct LaunchSettings {
    pub max_concurrent: usize,
    pub backoff: Backoff,
    pub throttle_max_retries: u32,
    /// The longest one DRS call may take; no call starts unless this much time is left before
    /// `stop_at`, and a launch that overruns it is ambiguous.
    pub call_timeout: Duration,
}

/// Why a read did not give an answer, after its retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadFailure {
    Drs(DescribeError),
    /// Not enough time was left before the deadline for the read (or the wait before it).
    NoTime,
}

impl ReadFailure {
    /// The deferral that fits instances whose state could not be read.
    pub fn defer_reason(&self) -> Outcome {
        match self {
            ReadFailure::NoTime => Outcome::deferred(DeferReason::Deadline, None),
            ReadFailure::Drs(DescribeError::Throttled { message, .. }) => {
                Outcome::deferred(DeferReason::Throttled, Some(message.clone()))
            }
            ReadFailure::Drs(error) => {
                Outcome::deferred(DeferReason::ServerError, Some(error.to_string()))
            }
        }
    }

    pub fn unusable(&self) -> Option<(Unusable, String)> {
        match self {
            ReadFailure::Drs(DescribeError::Unusable { kind, message }) => {
                Some((*kind, message.clone()))
            }
            _ => None,
        }
    }
}

impl std::fmt::Display for ReadFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadFailure::Drs(error) => error.fmt(f),
            ReadFailure::NoTime => f.write_str("no time left before the deadline"),
        }
    }
}

#[derive(Debug, Default)]
pub struct LaunchReport {
    pub jobs: Vec<LaunchedJob>,
    pub outcomes: Vec<(String, Outcome)>,
    /// Set when DRS said it cannot be used at all; the run is then refused if no job was created.
    pub unusable: Option<(Unusable, String)>,
    /// DRS answered ServiceQuotaExceeded: nothing more fits until jobs finish.
    pub quota_full: bool,
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

/// DRS's refusal of a call, kept to reject the culprit it is finally pinned on.
#[derive(Debug, Clone)]
struct Refusal {
    code: String,
    message: String,
}

/// Part of a chunk still to launch. `known_bad` holds the parent's refusal when this piece is the
/// second half of a bisected chunk: if the first half launched whole, the culprit is in here and
/// this piece is split again without a call (so one culprit costs about log2(chunk) calls).
struct Piece {
    ids: Vec<String>,
    known_bad: Option<(Refusal, usize, usize)>,
}

#[derive(Default)]
struct ChunkResult {
    jobs: Vec<LaunchedJob>,
    outcomes: Vec<(String, Outcome)>,
    launched: usize,
    unusable: Option<(Unusable, String)>,
    quota_full: bool,
}

impl ChunkResult {
    fn settle(&mut self, ids: &[String], outcome: Outcome) {
        self.outcomes
            .extend(ids.iter().map(|id| (id.clone(), outcome.clone())));
    }

    fn launched(&mut self, ids: &[String], job: LaunchedJob) {
        self.settle(
            ids,
            Outcome::Launched {
                job_id: job.job_id.clone(),
            },
        );
        self.launched += ids.len();
        self.jobs.push(job);
    }
}

enum Reconciled {
    /// The failed call did create the job: the instances are launched in it.
    Created(LaunchedJob),
    /// None of the instances is in a job of this run: the call created nothing.
    NotCreated,
    /// The state could not be read: still ambiguous.
    Unknown(String),
}

pub struct Launcher<'a, D> {
    pub drs: &'a D,
    pub settings: &'a LaunchSettings,
    pub jitter: &'a Jitter,
    /// The invocation deadline minus the margin kept for publishing and answering.
    pub stop_at: Instant,
    /// Every job is tagged with it; a job carrying it is this run's.
    pub run_id: &'a str,
    /// Shared by every chunk: the send rate DRS tolerates, learnt from its throttling.
    pub pacer: &'a Pacer,
}

impl<D: Drs> Launcher<'_, D> {
    fn time_for_a_call(&self, wait: Duration) -> bool {
        Instant::now() + wait + self.settings.call_timeout <= self.stop_at
    }

    fn time_for_a_launch(&self, wait: Duration) -> bool {
        Instant::now() + wait + self.settings.call_timeout * CALLS_PER_LAUNCH_BUDGET <= self.stop_at
    }

    /// A read-only call, retried on throttling (after `Retry-After`) and on failures: reads have
    /// no side effects. Never starts a call or a wait that would end after `stop_at`.
    pub async fn read<T, F, Fut>(&self, what: &'static str, call: F) -> Result<T, ReadFailure>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, DescribeError>>,
    {
        let mut attempt = 0u32;
        loop {
            if !self.time_for_a_call(Duration::ZERO) {
                return Err(ReadFailure::NoTime);
            }
            let error = match timeout(self.settings.call_timeout, call()).await {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(error @ DescribeError::Unusable { .. })) => {
                    return Err(ReadFailure::Drs(error));
                }
                Ok(Err(error)) => error,
                Err(_) => DescribeError::Failed {
                    error: format!(
                        "no answer within {} ms",
                        self.settings.call_timeout.as_millis()
                    ),
                },
            };
            let (limit, wait) = match &error {
                DescribeError::Throttled { retry_after, .. } => (
                    self.settings.throttle_max_retries,
                    self.settings
                        .backoff
                        .throttle_delay(attempt, *retry_after, (self.jitter)()),
                ),
                _ => (
                    MAX_READ_RETRIES,
                    self.settings.backoff.delay(attempt, (self.jitter)()),
                ),
            };
            if attempt >= limit {
                warn!(what, error = %error, attempts = attempt + 1, "read failed");
                return Err(ReadFailure::Drs(error));
            }
            if !self.time_for_a_call(wait) {
                return Err(ReadFailure::NoTime);
            }
            attempt += 1;
            warn!(what, error = %error, wait_ms = wait.as_millis() as u64, attempt, "read failed: retrying");
            sleep(wait).await;
        }
    }

    pub async fn launch_all(&self, chunks: Vec<Chunk>, tags: &Tags) -> LaunchReport {
        let halt = Halt::default();
        let results: Vec<ChunkResult> = stream::iter(chunks)
            .map(|chunk| self.launch_chunk(chunk, tags, &halt))
            .buffer_unordered(self.settings.max_concurrent.max(1))
            .collect()
            .await;

        let mut report = LaunchReport::default();
        for result in results {
            report.jobs.extend(result.jobs);
            report.outcomes.extend(result.outcomes);
            report.quota_full |= result.quota_full;
            if report.unusable.is_none() {
                report.unusable = result.unusable;
            }
        }
        report
    }

    async fn launch_chunk(&self, chunk: Chunk, tags: &Tags, halt: &Halt) -> ChunkResult {
        let mut result = ChunkResult::default();
        let mut work = vec![Piece {
            ids: chunk.recovery_instance_ids,
            known_bad: None,
        }];
        while let Some(piece) = work.pop() {
            if let Some((refusal, launched_before, sibling_len)) = &piece.known_bad
                && result.launched == launched_before + sibling_len
            {
                // The sibling launched whole, so the refusal was caused by this half.
                if let [culprit] = piece.ids.as_slice() {
                    warn!(chunk_index = chunk.index, culprit = %culprit, code = %refusal.code, "isolated: rejected by DRS");
                    result.settle(
                        &piece.ids,
                        Outcome::refused_by_drs(&refusal.code, &refusal.message),
                    );
                } else {
                    bisect(piece.ids, refusal.clone(), &result, &mut work);
                }
                continue;
            }
            self.launch_piece(chunk.index, piece.ids, tags, halt, &mut work, &mut result)
                .await;
        }
        result
    }

    async fn launch_piece(
        &self,
        chunk_index: usize,
        mut ids: Vec<String>,
        tags: &Tags,
        halt: &Halt,
        work: &mut Vec<Piece>,
        result: &mut ChunkResult,
    ) {
        let mut throttled = 0u32;
        let mut unsent = 0u32;
        let mut reconciled_resends = 0u32;
        loop {
            let size = ids.len();
            if let Some((reason, why)) = halt.get() {
                info!(chunk_index, instances = size, reason = ?reason, "deferred: the run is halted");
                return result.settle(&ids, Outcome::deferred(reason, Some(why)));
            }
            if !self.time_for_a_launch(Duration::ZERO) {
                info!(
                    chunk_index,
                    instances = size,
                    "deferred: too close to the deadline to start a launch"
                );
                return result.settle(&ids, Outcome::deferred(DeferReason::Deadline, None));
            }

            let slot = self.pacer.reserve(Instant::now());
            if !self.time_for_a_launch(slot.saturating_duration_since(Instant::now())) {
                info!(
                    chunk_index,
                    instances = size,
                    "deferred: the next paced send slot is too close to the deadline"
                );
                return result.settle(&ids, Outcome::deferred(DeferReason::Deadline, None));
            }
            sleep_until(slot).await;
            let sent_at = Instant::now();

            let call_timeout = self.settings.call_timeout;
            let answer = timeout(call_timeout, self.drs.start_failback_launch(&ids, tags))
                .await
                .unwrap_or_else(|_| {
                    Err(LaunchError::Ambiguous {
                        error: format!("no answer within {} ms", call_timeout.as_millis()),
                    })
                });

            let error = match answer {
                Ok(job) => {
                    self.pacer.succeeded(Instant::now());
                    info!(chunk_index, instances = size, job_id = %job.job_id, "launched");
                    return result.launched(&ids, job);
                }
                Err(error) => error,
            };

            let wait = match error {
                LaunchError::Throttled {
                    retry_after,
                    message,
                } => {
                    self.pacer.throttled(sent_at, Instant::now(), retry_after);
                    if throttled >= self.settings.throttle_max_retries {
                        warn!(
                            chunk_index,
                            instances = size,
                            attempts = throttled + 1,
                            "deferred: still throttled"
                        );
                        return result.settle(
                            &ids,
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
                        return result.settle(
                            &ids,
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
                    // No idempotency token: a blind resend could start a second job for the same
                    // instances. Read what DRS did first.
                    warn!(chunk_index, instances = size, error = %error,
                        "ambiguous failure: the job may exist; reconciling before any resend");
                    match self.reconcile(&ids).await {
                        Reconciled::Created(job) => {
                            info!(chunk_index, instances = size, job_id = %job.job_id,
                                "reconciled: the job was created; launched");
                            return result.launched(&ids, job);
                        }
                        Reconciled::NotCreated if reconciled_resends < MAX_RECONCILED_RESENDS => {
                            let wait = self
                                .settings
                                .backoff
                                .delay(reconciled_resends, (self.jitter)());
                            reconciled_resends += 1;
                            info!(
                                chunk_index,
                                instances = size,
                                wait_ms = wait.as_millis() as u64,
                                "reconciled: no job was created; resending"
                            );
                            wait
                        }
                        Reconciled::NotCreated => {
                            warn!(chunk_index, instances = size, error = %error,
                                "deferred: DRS keeps failing; no job was created");
                            return result.settle(
                                &ids,
                                Outcome::deferred(DeferReason::ServerError, Some(error)),
                            );
                        }
                        Reconciled::Unknown(why) => {
                            warn!(chunk_index, instances = size, error = %error, reconcile_error = %why,
                                "deferred: ambiguous, and DRS could not be read to settle it; not resent");
                            let error = format!("{error}; state unreadable: {why}");
                            return result.settle(
                                &ids,
                                Outcome::deferred(DeferReason::Ambiguous, Some(error)),
                            );
                        }
                    }
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
                    result.quota_full = true;
                    return result.settle(&ids, Outcome::deferred(DeferReason::Quota, Some(why)));
                }
                LaunchError::Refused {
                    code,
                    message,
                    resource_id,
                    ..
                } => {
                    if size == 1 {
                        warn!(chunk_index, culprit = %ids[0], code = %code, "rejected by DRS");
                        return result.settle(&ids, Outcome::refused_by_drs(&code, &message));
                    }
                    // DRS refuses the whole call for one bad instance. When it names the culprit
                    // (resourceId, or the id in its message), drop just that one and go on.
                    let named = resource_id
                        .filter(|id| ids.contains(id))
                        .or_else(|| ids.iter().find(|id| message.contains(id.as_str())).cloned());
                    if let Some(culprit) = named {
                        warn!(chunk_index, culprit = %culprit, code = %code, "rejected by DRS; launching the rest");
                        result.settle(
                            std::slice::from_ref(&culprit),
                            Outcome::refused_by_drs(&code, &message),
                        );
                        ids.retain(|id| *id != culprit);
                        continue;
                    }
                    warn!(chunk_index, instances = size, code = %code, "refused without naming a culprit: bisecting");
                    return bisect(ids, Refusal { code, message }, result, work);
                }
                LaunchError::Unusable { kind, message } => {
                    error!(chunk_index, instances = size, kind = ?kind, error = %message,
                        "DRS cannot be used: halting the run");
                    halt.set(DeferReason::Halted, message.clone());
                    result.settle(
                        &ids,
                        Outcome::deferred(DeferReason::Halted, Some(message.clone())),
                    );
                    result.unusable = Some((kind, message));
                    return;
                }
            };

            if !self.time_for_a_launch(wait) {
                info!(
                    chunk_index,
                    instances = size,
                    wait_ms = wait.as_millis() as u64,
                    "deferred: the wait before resending would pass the deadline"
                );
                return result.settle(&ids, Outcome::deferred(DeferReason::Deadline, None));
            }
            sleep(wait).await;
        }
    }

    /// After an ambiguous failure: read the instances' `failbackJobID` and those jobs. A job of
    /// this run (its run-id tag) holding all the instances means the call did create it.
    async fn reconcile(&self, ids: &[String]) -> Reconciled {
        let instances = match self
            .read("recovery instances", || {
                self.drs.describe_recovery_instances(ids)
            })
            .await
        {
            Ok(instances) => instances,
            Err(failure) => return Reconciled::Unknown(failure.to_string()),
        };
        let job_ids: Vec<String> = instances
            .iter()
            .filter(|instance| ids.contains(&instance.recovery_instance_id))
            .filter_map(|instance| instance.failback_job_id.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if job_ids.is_empty() {
            return Reconciled::NotCreated;
        }
        let jobs = match self.read("jobs", || self.drs.describe_jobs(&job_ids)).await {
            Ok(jobs) => jobs,
            Err(failure) => return Reconciled::Unknown(failure.to_string()),
        };
        jobs.into_iter()
            .find(|job| {
                job.run_id.as_deref() == Some(self.run_id)
                    && ids.iter().all(|id| job.recovery_instance_ids.contains(id))
            })
            .map(|job| Reconciled::Created(job.into()))
            .unwrap_or(Reconciled::NotCreated)
    }
}

/// Splits a refused piece in two: the first half is tried; the second is split again without a
/// call if the first launches whole (the culprit must then be in it).
fn bisect(mut ids: Vec<String>, refusal: Refusal, result: &ChunkResult, work: &mut Vec<Piece>) {
    let second = ids.split_off(ids.len() / 2);
    let first_len = ids.len();
    work.push(Piece {
        ids: second,
        known_bad: Some((refusal, result.launched, first_len)),
    });
    work.push(Piece {
        ids,
        known_bad: None,
    });
}
