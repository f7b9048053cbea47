//! The time an invocation has: when to stop starting work, how long one DRS call may take, and
//! the wall-clock time DRS's dates are compared with.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

/// A call given less than this is not started: DRS answers in well under a second, but a call
/// cut shorter would time out on an ordinary network hiccup.
pub const MIN_CALL_TIMEOUT: Duration = Duration::from_secs(1);

/// No call or wait may end after `stop_at` (the invocation deadline minus the margin kept for
/// publishing and answering). Each call's timeout comes from the time left, capped by
/// `max_call_timeout`, so a short Lambda timeout still leaves room for the calls it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub stop_at: Instant,
    pub max_call_timeout: Duration,
    /// The wall-clock time at `wall_at`: wall-clock dates follow the tokio clock from there, so
    /// a paused test clock moves them too.
    pub wall: SystemTime,
    pub wall_at: Instant,
}

/// A wall clock that follows the tokio clock from now: on a paused clock (the tests, the
/// benchmark) dates then move as the simulator's DRS dates do, across invocations too, so a
/// job's age read against DRS's dates is right there. The function itself reads the system's
/// clock at each invocation (a process Lambda froze may find its monotonic clock behind).
pub fn following_tokio() -> impl Fn() -> SystemTime + Send + Sync + 'static {
    let (wall, at) = (SystemTime::now(), Instant::now());
    move || wall + Instant::now().saturating_duration_since(at)
}

impl Budget {
    /// `wall`: the wall-clock time now (the invocation's clock), followed by the tokio clock
    /// from here.
    pub fn new(stop_at: Instant, max_call_timeout: Duration, wall: SystemTime) -> Self {
        Budget {
            stop_at,
            max_call_timeout,
            wall,
            wall_at: Instant::now(),
        }
    }

    /// The timeout for each of `calls` calls that must all end, after waiting `wait`, before
    /// `stop_at`: their share of the time left, at most `max_call_timeout`. `None` when that
    /// share is below [`MIN_CALL_TIMEOUT`].
    pub fn timeout_for(&self, wait: Duration, calls: u32) -> Option<Duration> {
        let left = self
            .stop_at
            .saturating_duration_since(Instant::now())
            .checked_sub(wait)?;
        let share = (left / calls.max(1)).min(self.max_call_timeout);
        (share >= MIN_CALL_TIMEOUT).then_some(share)
    }

    /// Whether `calls` calls, after waiting `wait`, can all be given a workable timeout.
    pub fn fits(&self, wait: Duration, calls: u32) -> bool {
        self.timeout_for(wait, calls).is_some()
    }

    /// Now, on the wall clock.
    pub fn wall_now(&self) -> SystemTime {
        self.wall + Instant::now().saturating_duration_since(self.wall_at)
    }
}

/// The slowest answer DRS gave a launch so far: a launch is not started with a timeout it could
/// not meet, but deferred (it would otherwise be cut off and turn ambiguous).
#[derive(Debug, Default)]
pub struct AnswerTimes(AtomicU64);

impl AnswerTimes {
    pub fn record(&self, took: Duration) {
        let millis = u64::try_from(took.as_millis()).unwrap_or(u64::MAX);
        self.0.fetch_max(millis, Ordering::Relaxed);
    }

    /// The least timeout a launch may start with: half again the slowest answer seen, at least
    /// [`MIN_CALL_TIMEOUT`], at most `cap`.
    pub fn floor(&self, cap: Duration) -> Duration {
        Duration::from_millis(self.0.load(Ordering::Relaxed))
            .mul_f64(1.5)
            .max(MIN_CALL_TIMEOUT)
            .min(cap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn call_timeouts_share_the_time_left() {
        let budget = Budget::new(
            Instant::now() + Duration::from_secs(12),
            Duration::from_secs(10),
            SystemTime::now(),
        );
        let secs = Duration::from_secs;
        assert_eq!(
            budget.timeout_for(Duration::ZERO, 1),
            Some(secs(10)),
            "capped"
        );
        assert_eq!(budget.timeout_for(Duration::ZERO, 3), Some(secs(4)));
        assert_eq!(budget.timeout_for(secs(6), 3), Some(secs(2)));
        assert_eq!(budget.timeout_for(secs(10), 3), None, "under a second each");
        assert_eq!(budget.timeout_for(secs(13), 1), None, "past the stop");
        let wall = budget.wall_now();
        tokio::time::advance(secs(5)).await;
        assert_eq!(budget.wall_now().duration_since(wall).unwrap(), secs(5));
        assert_eq!(
            budget.timeout_for(Duration::ZERO, 3),
            Some(Duration::from_secs(7) / 3)
        );
    }

    #[test]
    fn the_floor_follows_the_slowest_answer() {
        let answers = AnswerTimes::default();
        let cap = Duration::from_secs(10);
        assert_eq!(answers.floor(cap), MIN_CALL_TIMEOUT);
        answers.record(Duration::from_secs(2));
        answers.record(Duration::from_millis(300));
        assert_eq!(answers.floor(cap), Duration::from_secs(3));
        answers.record(Duration::from_secs(60));
        assert_eq!(answers.floor(cap), cap);
    }
}
