//! Launching the planned chunks: bounded concurrency, the paced send rate, the deadline respected,
//! and each failed call handled as [`Tries::decide`](crate::retry::launch::Tries::decide) decides — resend, look at DRS's state,
//! isolate, bisect, shrink, settle or halt. This module carries the decisions out; it does not
//! make them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream;
use tokio::time::{Instant, sleep, sleep_until, timeout};
use tracing::{error, info, warn};

use super::capacity::Chunk;
use super::isolate::Pieces;
use super::outcome::{DeferReason, Outcome};
use super::pacing::Pacer;
use super::reconcile::Looker;
use super::report::{ChunkResult, Halt, LaunchReport};
use crate::drs::{Drs, JobRecord, Tags};
use crate::retry::deadline::AnswerTimes;
use crate::retry::launch::{Decision, HaltCause, Happened, Tries};
use crate::retry::{Jitter, LaunchError, RetryPolicy, describe};

/// A launch that fails ambiguously is settled by reads, so a launch starts only when it and two
/// reads fit before the deadline: otherwise a job created by a call that then hung could not be
/// found and reported in the same answer.
const CALLS_PER_LAUNCH_BUDGET: u32 = 3;

/// What becomes of a piece once a decision is carried out.
enum Next {
    /// Send what is left of it again.
    Resend,
    /// It was handed back to the chunk's pieces.
    Done,
    /// Every instance of it ends with this outcome.
    Settle(Outcome),
}

pub struct Launcher<'a, D> {
    pub drs: &'a D,
    /// Looks at DRS's state when a call's result is unknown or refused.
    pub looker: &'a Looker<'a, D>,
    pub policy: &'a RetryPolicy,
    pub jitter: &'a Jitter,
    /// Shared by every chunk: the send rate DRS tolerates, learnt from its throttling.
    pub pacer: &'a Pacer,
    /// How long DRS takes to answer a launch, at worst so far.
    pub answers: &'a AnswerTimes,
    pub max_concurrent: usize,
    /// Instances per call: the configured size, halved when DRS's per-job quota is smaller.
    pub per_job: &'a AtomicUsize,
}

impl<D: Drs> Launcher<'_, D> {
    /// The timeout a launch gets if it starts after `wait`: its share of the time left (with the
    /// two reads that would settle it), and never less than DRS has been seen to need.
    fn launch_timeout(&self, wait: Duration) -> Option<Duration> {
        let budget = &self.looker.reads.budget;
        let share = budget.timeout_for(wait, CALLS_PER_LAUNCH_BUDGET)?;
        (share >= self.answers.floor(budget.max_call_timeout)).then_some(share)
    }

    pub async fn launch_all(&self, chunks: Vec<Chunk>, tags: &Tags) -> LaunchReport {
        let halt = Halt::default();
        let results: Vec<LaunchReport> = stream::iter(chunks)
            .map(|chunk| self.launch_chunk(chunk, tags, &halt))
            .buffer_unordered(self.max_concurrent.max(1))
            .collect()
            .await;
        let mut report = LaunchReport {
            halted: halt.get(),
            ..LaunchReport::default()
        };
        for result in results {
            report.jobs.extend(result.jobs);
            report.outcomes.extend(result.outcomes);
            report.quota_full |= result.quota_full;
            report.unusable = report.unusable.or(result.unusable);
            report.refused_request = report.refused_request.or(result.refused_request);
        }
        report
    }

    async fn launch_chunk(&self, chunk: Chunk, tags: &Tags, halt: &Halt) -> LaunchReport {
        let mut result = ChunkResult::default();
        let mut pieces = Pieces::new(chunk.recovery_instance_ids);
        while let Some(ids) = pieces.next(result.launched) {
            self.launch_piece(chunk.index, ids, tags, halt, &mut pieces, &mut result)
                .await;
        }
        self.confirm(chunk.index, &mut result).await;
        result.report
    }

    /// Sends the piece until it is settled: each failure goes to the strategy, and its decision
    /// is carried out here.
    async fn launch_piece(
        &self,
        chunk_index: usize,
        mut ids: Vec<String>,
        tags: &Tags,
        halt: &Halt,
        pieces: &mut Pieces,
        result: &mut ChunkResult,
    ) {
        let mut tries = Tries {
            settled: result.settled,
            ..Tries::default()
        };
        while !ids.is_empty() {
            let size = ids.len();
            let Some(error) = self
                .send_piece(chunk_index, &mut ids, tags, halt, pieces, result)
                .await
            else {
                return;
            };
            let Some(decision) = self
                .decide(chunk_index, &error, &mut ids, &mut tries, result)
                .await
            else {
                return;
            };
            log_decision(chunk_index, size, &error, &decision, &tries);
            match self
                .carry_out(decision, &error, &mut ids, halt, pieces, result)
                .await
            {
                Next::Resend => {}
                Next::Done => return,
                Next::Settle(outcome) => return result.settle(&ids, outcome),
            }
        }
    }

    /// Sends the piece once in its turn, unless the run halted, the per-job size shrank or the
    /// deadline is too near (the piece is then settled or put back, and `ids` left empty). The
    /// error when the call failed.
    async fn send_piece(
        &self,
        chunk_index: usize,
        ids: &mut Vec<String>,
        tags: &Tags,
        halt: &Halt,
        pieces: &mut Pieces,
        result: &mut ChunkResult,
    ) -> Option<LaunchError> {
        let size = ids.len();
        // Waiting for a send slot takes time: what is known when it comes decides.
        let slot = self.pacer.reserve().await;
        if let Some(outcome) = halt.get() {
            self.pacer.release();
            info!(chunk_index, instances = size, "deferred: the run is halted");
            result.settle(&std::mem::take(ids), outcome);
            return None;
        }
        let per_job = self.per_job.load(Ordering::Relaxed);
        if size > per_job {
            self.pacer.release();
            pieces.push_apart(std::mem::take(ids), per_job);
            return None;
        }
        let wait = slot.saturating_duration_since(Instant::now());
        let Some(call_timeout) = self.launch_timeout(wait) else {
            self.pacer.release();
            info!(
                chunk_index,
                instances = size,
                "deferred: too close to the deadline to start a launch"
            );
            let outcome = Outcome::deferred(DeferReason::Deadline, None);
            result.settle(&std::mem::take(ids), outcome);
            return None;
        };
        sleep_until(slot).await;
        match self.send(ids, tags, call_timeout).await {
            Ok(job) => {
                self.launched(chunk_index, std::mem::take(ids), job, result)
                    .await;
                None
            }
            Err(error) => Some(error),
        }
    }

    /// The strategy's decision after `error`, looking at DRS's state as often as it asks first. `None`
    /// when a look found every instance of the piece in jobs of this run.
    async fn decide(
        &self,
        chunk_index: usize,
        error: &LaunchError,
        ids: &mut Vec<String>,
        tries: &mut Tries,
        result: &mut ChunkResult,
    ) -> Option<Decision> {
        let size = ids.len();
        let mut happened = Happened::Call(error.clone());
        loop {
            let settle = match tries.decide(happened, ids, self.policy, (self.jitter)()) {
                Decision::Look { settle } => settle,
                decision => return Some(decision),
            };
            warn!(chunk_index, instances = size, error = %describe(error), settle,
                "no job or a refusal: looking at DRS's state before anything else");
            result.settled |= settle;
            tries.settled |= settle;
            happened = match self.look(ids, settle).await {
                Ok(sighting) => {
                    result.take_sighting(ids, &sighting);
                    Happened::Looked {
                        cause: error.clone(),
                        unavailable: sighting.unavailable.into_iter().map(|(id, _)| id).collect(),
                    }
                }
                Err(why) => Happened::LookFailed {
                    cause: error.clone(),
                    why,
                },
            };
            if ids.is_empty() {
                info!(
                    chunk_index,
                    instances = size,
                    "found in jobs of this run: launched"
                );
                return None;
            }
        }
    }

    /// Carries the decision out: what becomes of the piece.
    async fn carry_out(
        &self,
        decision: Decision,
        error: &LaunchError,
        ids: &mut Vec<String>,
        halt: &Halt,
        pieces: &mut Pieces,
        result: &mut ChunkResult,
    ) -> Next {
        match decision {
            Decision::Resend(wait) => {
                if self.launch_timeout(wait).is_none() {
                    return Next::Settle(Outcome::deferred(DeferReason::Deadline, None));
                }
                sleep(wait).await;
                Next::Resend
            }
            Decision::Settle { why, error } => Next::Settle(Outcome::given_up(why, error)),
            Decision::Isolate(apart) => {
                ids.retain(|id| !apart.contains(id));
                pieces.push_apart(apart, 1);
                Next::Resend
            }
            Decision::Confirm {
                ids: refused,
                refusal,
            } => {
                ids.retain(|id| !refused.contains(id));
                result.last_refusal = Some(Instant::now());
                let outcome = Outcome::refused(&refusal);
                let refused = refused.into_iter().map(|id| (id, outcome.clone()));
                result.to_confirm.extend(refused);
                Next::Resend
            }
            Decision::Bisect { .. } => {
                pieces.bisect(std::mem::take(ids), result.launched);
                Next::Done
            }
            Decision::Shrink => {
                let half = ids.len().div_ceil(2);
                self.per_job.fetch_min(half, Ordering::Relaxed);
                pieces.push_apart(std::mem::take(ids), half);
                Next::Done
            }
            Decision::Halve => {
                let half = ids.len().div_ceil(2);
                pieces.push_apart(std::mem::take(ids), half);
                Next::Done
            }
            Decision::Halt { cause, why } => {
                result.report.quota_full |= cause == HaltCause::QuotaFull;
                if let HaltCause::Unusable(kind) = cause {
                    result.report.unusable = Some((kind, why.clone()));
                }
                let outcome = Outcome::halted(cause, why);
                halt.set(outcome.clone());
                Next::Settle(outcome)
            }
            Decision::RefuseRequest { field, message } => {
                let outcome = Outcome::request_refused(&field, &message);
                result.report.refused_request = Some((field, message));
                halt.set(outcome.clone());
                Next::Settle(outcome)
            }
            // Carried out by `decide`; settled as ambiguous rather than trusted absent.
            Decision::Look { .. } => Next::Settle(Outcome::deferred(
                DeferReason::Ambiguous,
                Some(describe(error)),
            )),
        }
    }

    /// One timed `StartFailbackLaunch`, in a slot reserved from the pacer; tells the pacer how
    /// DRS took it.
    async fn send(
        &self,
        ids: &[String],
        tags: &Tags,
        call_timeout: Duration,
    ) -> Result<JobRecord, LaunchError> {
        let sent_at = Instant::now();
        let answer = match timeout(call_timeout, self.drs.start_failback_launch(ids, tags)).await {
            Ok(answer) => answer,
            Err(_) => {
                // DRS took at least this long: later launches need at least as long.
                self.answers.record(call_timeout);
                Err(LaunchError::Ambiguous {
                    error: format!("no answer within {} ms", call_timeout.as_millis()),
                })
            }
        };
        let now = Instant::now();
        self.looker.reads.stats.launch(
            now - sent_at,
            answer.is_ok(),
            matches!(answer, Err(LaunchError::Throttled { .. })),
        );
        match &answer {
            Ok(_) => {
                self.answers.record(now - sent_at);
                self.pacer.succeeded(now);
            }
            Err(LaunchError::Throttled { retry_after, .. }) => {
                self.pacer.throttled(sent_at, now, *retry_after);
            }
            Err(_) => self.pacer.release(),
        }
        answer
    }
}

fn log_decision(
    chunk_index: usize,
    size: usize,
    error: &LaunchError,
    decision: &Decision,
    tries: &Tries,
) {
    match (decision, error) {
        (Decision::Resend(wait), LaunchError::Throttled { retry_after, .. }) => warn!(
            chunk_index,
            instances = size,
            retry_after_s = retry_after.map(|d| d.as_secs()),
            wait_ms = wait.as_millis() as u64,
            attempt = tries.throttled,
            "throttled: waiting before resending the same chunk"
        ),
        (Decision::Resend(wait), _) => warn!(chunk_index, instances = size,
            wait_ms = wait.as_millis() as u64, error = %describe(error), "resending"),
        (Decision::Settle { why, error }, _) => warn!(chunk_index, instances = size,
            why = ?why, error = %error, "settled without a job"),
        (Decision::Isolate(apart), _) => warn!(
            chunk_index,
            instances = apart.len(),
            "cannot launch now: each sent alone, the rest resent"
        ),
        (Decision::Confirm { ids, .. }, _) => warn!(chunk_index, culprit = ?ids,
            "refused by DRS: to be rejected once confirmed in no job of this run"),
        (Decision::Bisect { code, .. }, _) => warn!(chunk_index, instances = size, code = %code,
            "refused without naming a culprit: bisecting"),
        (Decision::Halve, _) => warn!(
            chunk_index,
            instances = size,
            "DRS has less room for servers in active jobs than counted: sending the piece in halves"
        ),
        (Decision::Shrink, _) => warn!(
            chunk_index,
            instances = size,
            "DRS's per-job quota is smaller: halving the chunks"
        ),
        (
            Decision::Halt {
                why,
                cause: HaltCause::Unusable(kind),
            },
            _,
        ) => error!(chunk_index, instances = size,
            kind = ?kind, error = %why, "DRS cannot be used: halting the run"),
        (Decision::Halt { why, .. }, _) => warn!(chunk_index, instances = size, error = %why,
            "deferred: DRS quota full; the chunks not yet started are deferred too"),
        (Decision::RefuseRequest { field, .. }, _) => error!(chunk_index, field = %field,
            "DRS refused the request itself: halting the run"),
        (Decision::Look { .. }, _) => {}
    }
}
