//! Publishing result events: PutEvents batches within EventBridge's limits, failed entries resent
//! a bounded number of times, and an honest count of what could not be delivered.

use std::future::Future;

use futures_util::{StreamExt, stream};
use std::time::Duration;

use tokio::time::{Instant, sleep, timeout};
use tracing::{error, warn};

use serde::Serialize;

use crate::config::Config;
use crate::drs::stats::CallStats;
use crate::retry::{Backoff, Jitter, RetryPolicy};

/// Kept free at the very end of an invocation for serialising and returning the answer.
const ANSWER_GUARD: Duration = Duration::from_millis(250);
/// PutEvents normally answers in tens of milliseconds.
const PUBLISH_CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// PutEvents accepts 1–10 entries per call.
pub const MAX_ENTRIES_PER_CALL: usize = 10;
/// PutEvents accepts 256 KB per call, entries summed.
pub const MAX_BYTES_PER_CALL: usize = 256 * 1024;
/// Bytes EventBridge counts for the `Time` field, when set.
const TIME_FIELD_BYTES: usize = 14;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventEntry {
    pub source: String,
    pub detail_type: String,
    /// A JSON object, serialised.
    pub detail: String,
    pub resources: Vec<String>,
}

impl EventEntry {
    /// The entry's size as EventBridge computes it (Source, DetailType, Detail, Resources, and 14
    /// bytes for Time), plus the bus name to stay on the safe side.
    pub fn size(&self, bus_name: &str) -> usize {
        TIME_FIELD_BYTES
            + bus_name.len()
            + self.source.len()
            + self.detail_type.len()
            + self.detail.len()
            + self.resources.iter().map(String::len).sum::<usize>()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryStatus {
    Delivered,
    Failed { code: String, message: String },
}

/// The whole call failed (throttled, 5xx, unreachable): every entry in it is to be resent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("PutEvents failed: {0}")]
pub struct PublishError(pub String);

pub trait EventPublisher: Send + Sync {
    /// The bus the entries go to; counted in the size bound.
    fn bus_name(&self) -> &str;

    /// One PutEvents call. Answers one status per entry, in order.
    fn put_events(
        &self,
        entries: &[EventEntry],
    ) -> impl Future<Output = Result<Vec<EntryStatus>, PublishError>> + Send;
}

/// Greedy batches of at most 10 entries and 256 KB, in order. An entry too large to ever be sent
/// is returned apart (the event builders keep entries far below the limit, so this is a guard).
pub fn batches<'a>(
    entries: &'a [EventEntry],
    bus_name: &str,
) -> (Vec<Vec<&'a EventEntry>>, Vec<&'a EventEntry>) {
    let mut batches: Vec<Vec<&EventEntry>> = Vec::new();
    let mut oversized = Vec::new();
    let mut current: Vec<&EventEntry> = Vec::new();
    let mut current_bytes = 0;
    for entry in entries {
        let size = entry.size(bus_name);
        if size > MAX_BYTES_PER_CALL {
            oversized.push(entry);
            continue;
        }
        if current.len() == MAX_ENTRIES_PER_CALL || current_bytes + size > MAX_BYTES_PER_CALL {
            batches.push(std::mem::take(&mut current));
            current_bytes = 0;
        }
        current.push(entry);
        current_bytes += size;
    }
    if !current.is_empty() {
        batches.push(current);
    }
    (batches, oversized)
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublishReport {
    pub published: usize,
    pub undelivered: usize,
    pub calls: usize,
    /// What could not be delivered, so a caller can say so — or offer it again next time.
    pub undelivered_entries: Vec<EventEntry>,
}

impl PublishReport {
    /// What an answer says of its events.
    pub fn delivery(&self) -> EventDelivery {
        EventDelivery {
            published: self.published,
            undelivered: self.undelivered,
        }
    }
}

/// How many of an invocation's events were delivered, and how many could not be.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventDelivery {
    pub published: usize,
    pub undelivered: usize,
}

/// Where one invocation's events go: the bus, the configured resends, and the time the
/// invocation has (its answer keeps a guard before the deadline).
pub struct Bus<'a, P> {
    publisher: &'a P,
    /// Where the invocation's undelivered events are counted, for its metrics record.
    stats: &'a CallStats,
    settings: PublishSettings,
    jitter: &'a Jitter,
    stop_at: Instant,
}

impl<'a, P: EventPublisher> Bus<'a, P> {
    pub fn new(
        publisher: &'a P,
        config: &Config,
        jitter: &'a Jitter,
        deadline: Instant,
        stats: &'a CallStats,
    ) -> Self {
        let policy = RetryPolicy::from_config(config);
        Bus {
            publisher,
            stats,
            settings: PublishSettings {
                max_attempts: policy.publish_max_attempts,
                backoff: policy.backoff,
                call_timeout: PUBLISH_CALL_TIMEOUT
                    .min(config.deadline_margin.saturating_sub(ANSWER_GUARD)),
            },
            jitter,
            stop_at: deadline.checked_sub(ANSWER_GUARD).unwrap_or(deadline),
        }
    }

    /// Publishes `entries` with the configured resends, leaving the answer its guard.
    pub async fn publish(&self, entries: Vec<EventEntry>) -> PublishReport {
        let report = publish_all(
            self.publisher,
            entries,
            &self.settings,
            self.jitter,
            self.stop_at,
        )
        .await;
        self.stats.events_not_published(report.undelivered);
        report
    }
}

/// A batch as sent, and PutEvents' answer (none: not sent, no time left for the call).
type Sent = (
    Vec<EventEntry>,
    Option<Result<Vec<EntryStatus>, PublishError>>,
);

/// PutEvents calls in flight at once (as many as launches: the run's events are a handful of
/// calls, and EventBridge's own PutEvents quota is thousands a second).
pub const PUBLISH_CONCURRENCY: usize = 4;

pub struct PublishSettings {
    pub max_attempts: u32,
    pub backoff: Backoff,
    pub call_timeout: Duration,
}

/// Sends every entry, resending failed ones up to `max_attempts` rounds, and never starting a
/// call or a wait that would end after `stop_at`. Resends make delivery at-least-once: consumers
/// de-duplicate on the run id and job id the events carry.
pub async fn publish_all<P: EventPublisher>(
    publisher: &P,
    entries: Vec<EventEntry>,
    settings: &PublishSettings,
    jitter: &Jitter,
    stop_at: Instant,
) -> PublishReport {
    let mut report = PublishReport::default();
    let mut pending = entries;
    for round in 0..settings.max_attempts {
        if pending.is_empty() {
            break;
        }
        if round > 0 {
            let wait = settings.backoff.delay(round - 1, jitter());
            if Instant::now() + wait + settings.call_timeout > stop_at {
                warn!(pending = pending.len(), "no time left to resend events");
                break;
            }
            sleep(wait).await;
        }
        let (batches, oversized) = batches(&pending, publisher.bus_name());
        if !oversized.is_empty() {
            error!(
                count = oversized.len(),
                "events over the PutEvents size limit were not sent"
            );
            report.undelivered += oversized.len();
            report
                .undelivered_entries
                .extend(oversized.into_iter().cloned());
        }
        let mut failed: Vec<EventEntry> = Vec::new();
        // The round's calls side by side: EventBridge promises no order between entries, so
        // nothing is lost by not sending them one after another, and a run's events take one
        // round trip per PUBLISH_CONCURRENCY calls instead of one per call.
        let sent: Vec<Sent> = stream::iter(batches)
            .map(|batch| async move {
                let owned: Vec<EventEntry> = batch.into_iter().cloned().collect();
                if Instant::now() + settings.call_timeout > stop_at {
                    return (owned, None);
                }
                let answer = timeout(settings.call_timeout, publisher.put_events(&owned))
                    .await
                    .unwrap_or_else(|_| Err(PublishError("no answer in time".into())));
                (owned, Some(answer))
            })
            .buffered(PUBLISH_CONCURRENCY)
            .collect()
            .await;
        for (owned, answer) in sent {
            let Some(answer) = answer else {
                failed.extend(owned);
                continue;
            };
            report.calls += 1;
            match answer {
                Ok(statuses) if statuses.len() == owned.len() => {
                    for (entry, status) in owned.into_iter().zip(statuses) {
                        match status {
                            EntryStatus::Delivered => report.published += 1,
                            EntryStatus::Failed { code, message } => {
                                warn!(detail_type = %entry.detail_type, code = %code, error = %message,
                                    "event entry failed; will resend");
                                failed.push(entry);
                            }
                        }
                    }
                }
                Ok(statuses) => {
                    warn!(
                        sent = owned.len(),
                        answered = statuses.len(),
                        "PutEvents answered the wrong number of entries"
                    );
                    failed.extend(owned);
                }
                Err(PublishError(why)) => {
                    warn!(entries = owned.len(), error = %why, "PutEvents call failed; will resend");
                    failed.extend(owned);
                }
            }
        }
        pending = failed;
    }
    if !pending.is_empty() {
        error!(
            undelivered = pending.len(),
            "events could not be delivered; the answer still carries every result"
        );
        report.undelivered += pending.len();
        report.undelivered_entries.extend(pending);
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn entry(detail_bytes: usize) -> EventEntry {
        EventEntry {
            source: "drs-failback".into(),
            detail_type: "Failback Launch Job Started".into(),
            detail: format!(
                "{{\"x\":\"{}\"}}",
                "a".repeat(detail_bytes.saturating_sub(8))
            ),
            resources: vec![],
        }
    }

    #[test]
    fn batches_hold_at_most_ten_entries_and_256_kb() {
        let small: Vec<EventEntry> = (0..23).map(|_| entry(100)).collect();
        let (batches_small, oversized) = batches(&small, "bus");
        assert!(oversized.is_empty());
        assert_eq!(
            batches_small.iter().map(Vec::len).collect::<Vec<_>>(),
            [10, 10, 3]
        );

        let big: Vec<EventEntry> = (0..5).map(|_| entry(100 * 1024)).collect();
        let (big_batches, _) = batches(&big, "bus");
        for batch in &big_batches {
            let bytes: usize = batch.iter().map(|e| e.size("bus")).sum();
            assert!(bytes <= MAX_BYTES_PER_CALL, "{bytes}");
        }
        assert_eq!(
            big_batches.iter().map(Vec::len).collect::<Vec<_>>(),
            [2, 2, 1]
        );

        let huge = [entry(300 * 1024)];
        let (none, too_big) = batches(&huge, "bus");
        assert!(none.is_empty());
        assert_eq!(too_big.len(), 1);
    }

    /// Answers from a script: each call takes the next answer; entries marked failed fail.
    struct Scripted {
        answers: Mutex<Vec<Result<Vec<bool>, ()>>>,
        calls: Mutex<Vec<usize>>,
    }

    impl EventPublisher for Scripted {
        fn bus_name(&self) -> &str {
            "bus"
        }
        async fn put_events(
            &self,
            entries: &[EventEntry],
        ) -> Result<Vec<EntryStatus>, PublishError> {
            self.calls.lock().unwrap().push(entries.len());
            let next = {
                let mut answers = self.answers.lock().unwrap();
                if answers.is_empty() {
                    Ok(vec![true; entries.len()])
                } else {
                    answers.remove(0)
                }
            };
            match next {
                Err(()) => Err(PublishError("InternalException".into())),
                Ok(flags) => Ok(flags
                    .into_iter()
                    .map(|ok| {
                        if ok {
                            EntryStatus::Delivered
                        } else {
                            EntryStatus::Failed {
                                code: "InternalFailure".into(),
                                message: "try again".into(),
                            }
                        }
                    })
                    .collect()),
            }
        }
    }

    fn settings(max_attempts: u32) -> PublishSettings {
        PublishSettings {
            max_attempts,
            backoff: Backoff {
                base: Duration::from_millis(100),
                cap: Duration::from_secs(1),
            },
            call_timeout: Duration::from_secs(1),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn only_failed_entries_are_resent() {
        let publisher = Scripted {
            answers: Mutex::new(vec![Ok(vec![true, false, true, false])]),
            calls: Mutex::new(vec![]),
        };
        let far = Instant::now() + Duration::from_secs(60);
        let report = publish_all(
            &publisher,
            (0..4).map(|_| entry(50)).collect(),
            &settings(3),
            &|| 1.0,
            far,
        )
        .await;
        assert_eq!(
            report,
            PublishReport {
                published: 4,
                undelivered: 0,
                calls: 2,
                undelivered_entries: Vec::new(),
            }
        );
        assert_eq!(*publisher.calls.lock().unwrap(), [4, 2]);
    }

    #[tokio::test(start_paused = true)]
    async fn an_outage_is_counted_not_hidden() {
        let publisher = Scripted {
            answers: Mutex::new(vec![Err(()); 4]),
            calls: Mutex::new(vec![]),
        };
        let far = Instant::now() + Duration::from_secs(60);
        let report = publish_all(
            &publisher,
            (0..12).map(|_| entry(50)).collect(),
            &settings(2),
            &|| 1.0,
            far,
        )
        .await;
        assert_eq!(report.published, 0);
        assert_eq!(report.undelivered, 12);
        assert_eq!(report.undelivered_entries.len(), 12, "each one handed back");
        assert_eq!(*publisher.calls.lock().unwrap(), [10, 2, 10, 2]);
    }

    #[tokio::test(start_paused = true)]
    async fn no_call_starts_past_the_stop_time() {
        let publisher = Scripted {
            answers: Mutex::new(vec![]),
            calls: Mutex::new(vec![]),
        };
        let soon = Instant::now() + Duration::from_millis(500);
        let report = publish_all(&publisher, vec![entry(50)], &settings(3), &|| 1.0, soon).await;
        assert_eq!(report.undelivered, 1);
        assert!(publisher.calls.lock().unwrap().is_empty());
    }
}
