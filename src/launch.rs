//! Launching the planned chunks: bounded concurrency, the paced send rate, the deadline respected,
//! and each failed call handled as [`Tries::next_step`] decides — resend, reconcile, drop the
//! culprit DRS named, bisect, settle or halt. This module carries the decisions out; it does not
//! make them.

use std::sync::Mutex;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream;
use tokio::time::{Instant, sleep, sleep_until, timeout};
use tracing::{error, info, warn};

use crate::deadline::Budget;
use crate::drs::{Drs, LaunchError, LaunchedJob, Unusable};
use crate::isolate::{Next, Pieces};
use crate::outcome::{DeferReason, Outcome};
use crate::pacing::Pacer;
use crate::plan::Chunk;
use crate::reads::DrsReads;
use crate::reconcile::reconcile;
use crate::request::Tags;
use crate::retry::{Happened, Jitter, Reconciled, RetryPolicy, Step, Tries};

/// A launch that fails ambiguously is settled by two reads (the instances, then their job), so
/// a launch starts only when it and those two reads fit before the deadline: otherwise a job
/// created by a call that then hung could not be found and reported in the same answer.
const CALLS_PER_LAUNCH_BUDGET: u32 = 3;

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

pub struct Launcher<'a, D> {
    pub drs: &'a D,
    /// The reads that settle an ambiguous launch.
    pub reads: &'a DrsReads<'a, D>,
    pub policy: &'a RetryPolicy,
    pub jitter: &'a Jitter,
    pub budget: Budget,
    /// Every job is tagged with it; a job carrying it is this run's.
    pub run_id: &'a str,
    /// Shared by every chunk: the send rate DRS tolerates, learnt from its throttling.
    pub pacer: &'a Pacer,
    pub max_concurrent: usize,
}

impl<D: Drs> Launcher<'_, D> {
    fn time_for_a_launch(&self, wait: Duration) -> bool {
        self.budget.fits(wait, CALLS_PER_LAUNCH_BUDGET)
    }

    pub async fn launch_all(&self, chunks: Vec<Chunk>, tags: &Tags) -> LaunchReport {
        let halt = Halt::default();
        let results: Vec<ChunkResult> = stream::iter(chunks)
            .map(|chunk| self.launch_chunk(chunk, tags, &halt))
            .buffer_unordered(self.max_concurrent.max(1))
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
        let mut pieces = Pieces::new(chunk.recovery_instance_ids);
        while let Some(next) = pieces.next(result.launched) {
            match next {
                Next::Launch(ids) => {
                    self.launch_piece(chunk.index, ids, tags, halt, &mut pieces, &mut result)
                        .await;
                }
                Next::Culprit { id, code, message } => {
                    warn!(chunk_index = chunk.index, culprit = %id, code = %code, "isolated: rejected by DRS");
                    result.settle(&[id], Outcome::refused_by_drs(&code, &message));
                }
            }
        }
        result
    }

    /// Sends the piece until it is settled: each failure goes to the strategy, and its step is
    /// carried out here.
    async fn launch_piece(
        &self,
        chunk_index: usize,
        mut ids: Vec<String>,
        tags: &Tags,
        halt: &Halt,
        pieces: &mut Pieces,
        result: &mut ChunkResult,
    ) {
        let mut tries = Tries::default();
        loop {
            let size = ids.len();
            if let Some((reason, why)) = halt.get() {
                info!(chunk_index, instances = size, reason = ?reason, "deferred: the run is halted");
                return result.settle(&ids, Outcome::deferred(reason, Some(why)));
            }
            let error = match self.send(chunk_index, &ids, tags).await {
                Some(Ok(job)) => {
                    info!(chunk_index, instances = size, job_id = %job.job_id, "launched");
                    return result.launched(&ids, job);
                }
                Some(Err(error)) => error,
                None => return result.settle(&ids, Outcome::deferred(DeferReason::Deadline, None)),
            };
            let mut happened = Happened::Call(error.clone());
            let step = loop {
                match tries.next_step(happened, &ids, self.policy, (self.jitter)()) {
                    Step::Reconcile => {
                        warn!(chunk_index, instances = size, error = %describe(&error),
                            "ambiguous failure: the job may exist; reconciling before any resend");
                        let found = reconcile(self.reads, &ids, self.run_id).await;
                        log_reconciled(chunk_index, size, &found);
                        happened = Happened::Reconciled {
                            found,
                            error: describe(&error),
                        };
                    }
                    step => break step,
                }
            };
            match step {
                Step::Resend(wait) => {
                    log_resend(chunk_index, size, &error, wait, &tries);
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
                // Taken by the loop above; settled as ambiguous rather than trusted to be absent.
                Step::Reconcile => {
                    return result.settle(
                        &ids,
                        Outcome::deferred(DeferReason::Ambiguous, Some(describe(&error))),
                    );
                }
                Step::Launched(job) => {
                    info!(chunk_index, instances = size, job_id = %job.job_id,
                        "reconciled: the job was created; launched");
                    return result.launched(&ids, job);
                }
                Step::Settle(outcome) => {
                    log_settled(chunk_index, &ids, &outcome);
                    return result.settle(&ids, outcome);
                }
                Step::DropCulprit { id, outcome } => {
                    warn!(chunk_index, culprit = %id, code = ?refused_code(&outcome), "rejected by DRS; launching the rest");
                    result.settle(std::slice::from_ref(&id), outcome);
                    ids.retain(|other| *other != id);
                }
                Step::Bisect { code, message } => {
                    warn!(chunk_index, instances = size, code = %code, "refused without naming a culprit: bisecting");
                    return pieces.bisect(ids, code, message, result.launched);
                }
                Step::Halt {
                    reason,
                    why,
                    quota_full,
                    unusable,
                } => {
                    if quota_full {
                        warn!(chunk_index, instances = size, error = %why,
                            "deferred: DRS quota full; the chunks not yet started are deferred too");
                        result.quota_full = true;
                    }
                    if let Some(kind) = unusable {
                        error!(chunk_index, instances = size, kind = ?kind, error = %why,
                            "DRS cannot be used: halting the run");
                        result.unusable = Some((kind, why.clone()));
                    }
                    halt.set(reason, why.clone());
                    return result.settle(&ids, Outcome::deferred(reason, Some(why)));
                }
            }
        }
    }

    /// One paced, timed `StartFailbackLaunch`; `None` when it cannot start and still be settled
    /// before the deadline. Tells the pacer how DRS took it.
    async fn send(
        &self,
        chunk_index: usize,
        ids: &[String],
        tags: &Tags,
    ) -> Option<Result<LaunchedJob, LaunchError>> {
        let size = ids.len();
        if !self.time_for_a_launch(Duration::ZERO) {
            info!(
                chunk_index,
                instances = size,
                "deferred: too close to the deadline to start a launch"
            );
            return None;
        }
        let slot = self.pacer.reserve(Instant::now());
        if !self.time_for_a_launch(slot.saturating_duration_since(Instant::now())) {
            info!(
                chunk_index,
                instances = size,
                "deferred: the next paced send slot is too close to the deadline"
            );
            return None;
        }
        sleep_until(slot).await;
        let sent_at = Instant::now();
        let call_timeout = self.budget.call_timeout;
        let answer = timeout(call_timeout, self.drs.start_failback_launch(ids, tags))
            .await
            .unwrap_or_else(|_| {
                Err(LaunchError::Ambiguous {
                    error: format!("no answer within {} ms", call_timeout.as_millis()),
                })
            });
        match &answer {
            Ok(_) => self.pacer.succeeded(Instant::now()),
            Err(LaunchError::Throttled { retry_after, .. }) => {
                self.pacer.throttled(sent_at, Instant::now(), *retry_after);
            }
            Err(_) => {}
        }
        Some(answer)
    }
}

/// The failure as the answer reports it.
fn describe(error: &LaunchError) -> String {
    match error {
        LaunchError::Throttled { message, .. } => message.clone(),
        LaunchError::NotSent { error } | LaunchError::Ambiguous { error } => error.clone(),
        LaunchError::QuotaExceeded { message, .. }
        | LaunchError::Refused { message, .. }
        | LaunchError::Unusable { message, .. } => message.clone(),
    }
}

fn refused_code(outcome: &Outcome) -> Option<&str> {
    match outcome {
        Outcome::Rejected { code, .. } => code.as_deref(),
        _ => None,
    }
}

fn log_resend(chunk_index: usize, size: usize, error: &LaunchError, wait: Duration, tries: &Tries) {
    let wait_ms = wait.as_millis() as u64;
    match error {
        LaunchError::Throttled { retry_after, .. } => warn!(
            chunk_index,
            instances = size,
            retry_after_s = retry_after.map(|d| d.as_secs()),
            wait_ms,
            attempt = tries.throttled,
            "throttled: waiting before resending the same chunk"
        ),
        LaunchError::NotSent { error } => {
            warn!(chunk_index, instances = size, wait_ms, error = %error,
            "request never left: waiting before resending")
        }
        _ => info!(
            chunk_index,
            instances = size,
            wait_ms,
            "reconciled: no job was created; resending"
        ),
    }
}

fn log_reconciled(chunk_index: usize, size: usize, found: &Reconciled) {
    if let Reconciled::Unknown(why) = found {
        warn!(chunk_index, instances = size, reconcile_error = %why,
            "DRS could not be read to settle an ambiguous launch");
    }
}

fn log_settled(chunk_index: usize, ids: &[String], outcome: &Outcome) {
    let size = ids.len();
    match outcome {
        Outcome::Rejected { code, .. } => {
            warn!(chunk_index, culprit = %ids.first().map_or("", String::as_str), code = ?code, "rejected by DRS");
        }
        Outcome::Deferred { reason, error } => {
            let error = error.as_deref().unwrap_or_default();
            match reason {
                DeferReason::Throttled => {
                    warn!(
                        chunk_index,
                        instances = size,
                        error,
                        "deferred: still throttled"
                    );
                }
                DeferReason::Unreachable => {
                    warn!(
                        chunk_index,
                        instances = size,
                        error,
                        "deferred: DRS unreachable"
                    );
                }
                DeferReason::ServerError => warn!(
                    chunk_index,
                    instances = size,
                    error,
                    "deferred: DRS keeps failing; no job was created"
                ),
                _ => warn!(
                    chunk_index,
                    instances = size,
                    error,
                    "deferred: ambiguous, and DRS could not be read to settle it; not resent"
                ),
            }
        }
        _ => {}
    }
}
