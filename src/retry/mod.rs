//! The one retry layer, as pure decisions: what a failed call means ([`failure`]: classified by
//! what is safe to do next), what to do after it ([`launch`] for `StartFailbackLaunch`, [`read`]
//! for the Describe calls), every retry limit in one [`RetryPolicy`], and the time an invocation
//! has for its calls and waits ([`deadline`]). The effects (calls,
//! waits, pacing, logs) are carried out by the launch stage, the DRS reads and event publishing;
//! these functions only decide, so tests check every decision and every delay exactly
//! (classification and strategy apart from effects, as smithy-rs splits them).
//!
//! The SDK's own retries are switched off for `StartFailbackLaunch`: its standard mode ignores
//! DRS's `Retry-After` header (it reads only `x-amz-retry-after`) and would resend after a 5xx,
//! which for a call without an idempotency token can start a second job.

use std::time::Duration;

use crate::config::Config;

pub mod deadline;
pub mod failure;
pub mod launch;
pub mod read;

pub use failure::{DescribeError, LaunchError, Unusable, describe};

/// A source of jitter in `[0, 1]`; random in production, fixed in tests.
pub type Jitter = dyn Fn() -> f64 + Send + Sync;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
}

impl Backoff {
    /// Exponential backoff with full jitter: `jitter * min(cap, base * 2^attempt)`, with
    /// `attempt` counted from 0 and `jitter` in `[0, 1]` (clamped). Full jitter spreads the
    /// chunks that were throttled together so they do not come back together.
    pub fn delay(&self, attempt: u32, jitter: f64) -> Duration {
        let ceiling = self
            .base
            .checked_mul(2u32.saturating_pow(attempt.min(31)))
            .unwrap_or(self.cap)
            .min(self.cap);
        ceiling.mul_f64(jitter.clamp(0.0, 1.0))
    }

    /// The wait before resending a throttled call: never shorter than the service's `Retry-After`,
    /// and never shorter than the jittered backoff either (so a `Retry-After: 0` does not turn
    /// into a tight loop).
    pub fn throttle_delay(
        &self,
        attempt: u32,
        retry_after: Option<Duration>,
        jitter: f64,
    ) -> Duration {
        self.delay(attempt, jitter)
            .max(retry_after.unwrap_or_default())
    }
}

/// Reads DRS's `Retry-After` header value: whole seconds, sent as a string.
pub fn parse_retry_after(raw: &str) -> Option<Duration> {
    let seconds: u64 = raw.trim().parse().ok()?;
    // A bogus huge value must not overflow; the deadline check bounds the real wait anyway.
    Some(Duration::from_secs(seconds.min(3_600)))
}

/// Every retry limit of the function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub backoff: Backoff,
    /// Resends of a throttled call (and retries of a throttled read).
    pub throttle_max_retries: u32,
    /// A connection that cannot be opened rarely opens a second later; a few tries are enough.
    pub unsent_max_retries: u32,
    /// After reconciliation proved a failed call created no job, it may be resent this often.
    pub reconciled_max_resends: u32,
    /// Failed reads (5xx, timeouts) are retried this often; reads have no side effects.
    pub read_max_retries: u32,
    /// PutEvents rounds for failed entries.
    pub publish_max_attempts: u32,
}

impl RetryPolicy {
    pub fn from_config(config: &Config) -> Self {
        RetryPolicy {
            backoff: Backoff {
                base: config.retry_base_delay,
                cap: config.retry_max_delay,
            },
            throttle_max_retries: config.throttle_max_retries,
            unsent_max_retries: 3,
            reconciled_max_resends: 2,
            read_max_retries: 3,
            publish_max_attempts: config.publish_max_attempts,
        }
    }
}

/// DRS's per-job quota (servers per job): a smaller chunk meets it.
pub const PER_JOB_QUOTA_CODE: &str = "L-B827C881";
/// DRS's quota of source servers in all active jobs: a smaller piece may still fit the room left.
pub const SERVERS_IN_FLIGHT_QUOTA_CODE: &str = "L-05AFA8C6";

/// The policy the retry tests decide with: 1 s backoff up to 20 s, 8 throttled resends.
#[cfg(test)]
pub(crate) const TEST_POLICY: RetryPolicy = RetryPolicy {
    backoff: Backoff {
        base: Duration::from_secs(1),
        cap: Duration::from_secs(20),
    },
    throttle_max_retries: 8,
    unsent_max_retries: 3,
    reconciled_max_resends: 2,
    read_max_retries: 3,
    publish_max_attempts: 3,
};

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const POLICY: Backoff = TEST_POLICY.backoff;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let full: Vec<u64> = (0..7)
            .map(|a| POLICY.delay(a, 1.0).as_millis() as u64)
            .collect();
        assert_eq!(full, [1_000, 2_000, 4_000, 8_000, 16_000, 20_000, 20_000]);
        assert_eq!(POLICY.delay(2, 0.5), Duration::from_secs(2));
        assert_eq!(POLICY.delay(3, 0.0), Duration::ZERO);
        assert_eq!(POLICY.delay(u32::MAX, 1.0), Duration::from_secs(20));
    }

    #[test]
    fn retry_after_is_a_floor() {
        let five = Some(Duration::from_secs(5));
        assert_eq!(POLICY.throttle_delay(0, five, 1.0), Duration::from_secs(5));
        assert_eq!(POLICY.throttle_delay(4, five, 1.0), Duration::from_secs(16));
        assert_eq!(POLICY.throttle_delay(4, five, 0.25), Duration::from_secs(5));
        assert_eq!(POLICY.throttle_delay(1, None, 0.5), Duration::from_secs(1));
    }

    #[test]
    fn retry_after_header_parses_whole_seconds() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after(" 0 "), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(
            parse_retry_after("99999999999"),
            Some(Duration::from_secs(3_600))
        );
    }

    proptest! {
        #[test]
        fn delay_stays_within_bounds(attempt in 0u32..100, jitter in 0.0f64..=1.0, after in 0u64..100) {
            let delay = POLICY.delay(attempt, jitter);
            prop_assert!(delay <= POLICY.cap);
            let throttled = POLICY.throttle_delay(attempt, Some(Duration::from_secs(after)), jitter);
            prop_assert!(throttled >= Duration::from_secs(after));
            prop_assert!(throttled >= delay);
        }
    }
}
