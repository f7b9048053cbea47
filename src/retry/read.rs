//! What to do after a read-only Describe call failed: reads have no side effects, so they are
//! retried within their own limits.

use std::time::Duration;

use super::RetryPolicy;
use super::failure::DescribeError;

/// What to do after a failed read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadDecision {
    Retry(Duration),
    /// The read has failed for good.
    Stop,
}

/// The decision after a read failed for the `attempt`-th time (from 0): throttled reads wait
/// for `Retry-After` as launches do; other failures back off; "DRS cannot be used" is final.
pub fn decide_read(
    error: &DescribeError,
    attempt: u32,
    policy: &RetryPolicy,
    jitter: f64,
) -> ReadDecision {
    let (limit, wait) = match error {
        DescribeError::Unusable { .. } => return ReadDecision::Stop,
        DescribeError::Throttled { retry_after, .. } => (
            policy.throttle_max_retries,
            policy.backoff.throttle_delay(attempt, *retry_after, jitter),
        ),
        DescribeError::Failed { .. } => (
            policy.read_max_retries,
            policy.backoff.delay(attempt, jitter),
        ),
    };
    if attempt >= limit {
        ReadDecision::Stop
    } else {
        ReadDecision::Retry(wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retry::{TEST_POLICY, Unusable};

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn reads_retry_failures_and_throttles_within_their_limits() {
        let policy = TEST_POLICY;
        let failed = DescribeError::Failed {
            error: "500".into(),
        };
        let throttled = DescribeError::Throttled {
            retry_after: Some(secs(5)),
            message: "slow".into(),
        };
        let unusable = DescribeError::Unusable {
            kind: Unusable::AccessDenied,
            message: "denied".into(),
        };
        assert_eq!(
            decide_read(&failed, 0, &policy, 1.0),
            ReadDecision::Retry(secs(1))
        );
        assert_eq!(
            decide_read(&failed, 2, &policy, 1.0),
            ReadDecision::Retry(secs(4))
        );
        assert_eq!(decide_read(&failed, 3, &policy, 1.0), ReadDecision::Stop);
        assert_eq!(
            decide_read(&throttled, 0, &policy, 0.0),
            ReadDecision::Retry(secs(5))
        );
        assert_eq!(
            decide_read(&throttled, 7, &policy, 1.0),
            ReadDecision::Retry(secs(20))
        );
        assert_eq!(decide_read(&throttled, 8, &policy, 1.0), ReadDecision::Stop);
        assert_eq!(decide_read(&unusable, 0, &policy, 1.0), ReadDecision::Stop);
    }
}
