//! The time an invocation has: when to stop starting work, and how long one DRS call may take.

use std::time::Duration;

use tokio::time::Instant;

/// No call or wait may end after `stop_at` (the invocation deadline minus the margin kept for
/// publishing and answering); a call taking longer than `call_timeout` is given up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub stop_at: Instant,
    pub call_timeout: Duration,
}

impl Budget {
    /// Whether `calls` calls, after waiting `wait`, can all finish before `stop_at`.
    pub fn fits(&self, wait: Duration, calls: u32) -> bool {
        Instant::now() + wait + self.call_timeout * calls <= self.stop_at
    }
}
