//! Simulated time. Everything is measured on tokio's clock so a paused test clock drives job
//! lifecycles; wall-clock timestamps are derived from it (start wall time + tokio elapsed) so
//! they move with a paused clock too instead of drifting apart from it.

use std::num::NonZeroU8;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use time::OffsetDateTime;
use time::format_description::well_known::Iso8601;
use time::format_description::well_known::iso8601::{Config, TimePrecision};
use tokio::time::Instant;

#[derive(Clone, Copy, Debug)]
pub(crate) struct Clock {
    start: Instant,
    start_wall: SystemTime,
}

impl Clock {
    pub(crate) fn new() -> Self {
        Clock {
            start: Instant::now(),
            start_wall: SystemTime::now(),
        }
    }

    pub(crate) fn ms(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.start).as_millis()).unwrap_or(u64::MAX)
    }

    pub(crate) fn iso(&self, at: Instant) -> String {
        iso8601(self.wall(at))
    }

    /// Wall-clock time of a tokio instant.
    pub(crate) fn wall(&self, at: Instant) -> SystemTime {
        self.start_wall + at.saturating_duration_since(self.start)
    }

    pub(crate) fn start_wall(&self) -> SystemTime {
        self.start_wall
    }

    /// Epoch milliseconds of a tokio instant.
    pub(crate) fn epoch_ms(&self, at: Instant) -> i64 {
        self.wall(at)
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`, the form the model's ISO8601DatetimeString pattern accepts.
pub fn iso8601(t: SystemTime) -> String {
    // Always three decimals: DRS writes milliseconds, and the model's pattern expects them.
    const MILLIS: u128 = Config::DEFAULT
        .set_time_precision(TimePrecision::Second {
            decimal_digits: NonZeroU8::new(3),
        })
        .encode();
    OffsetDateTime::from(t)
        .format(&Iso8601::<MILLIS>)
        .unwrap_or_default()
}

/// Epoch seconds (possibly fractional, as awsJson1_1 sends timestamps) to ISO-8601.
pub(crate) fn iso8601_from_epoch(secs: f64) -> Option<String> {
    if !(0.0..=253_402_300_799.0).contains(&secs) {
        return None;
    }
    Some(iso8601(UNIX_EPOCH + Duration::from_secs_f64(secs)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(iso8601(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_709_251_199_123); // leap year, end of Feb
        assert_eq!(iso8601(t), "2024-02-29T23:59:59.123Z");
        assert_eq!(
            iso8601_from_epoch(951_782_400.5).as_deref(),
            Some("2000-02-29T00:00:00.500Z")
        );
        assert_eq!(iso8601_from_epoch(-1.0), None);
    }
}
