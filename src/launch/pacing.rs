//! Adaptive pacing of `StartFailbackLaunch`: a client-side rate limiter shared by all chunks.
//!
//! DRS publishes no request rate for its API, so the rate is learnt: nothing is paced until DRS
//! first throttles; then the send rate is what DRS was just admitting, every sender waits out the
//! `Retry-After`, each success raises the rate a little (additive increase) and each later burst
//! of throttles cuts it (multiplicative decrease). A large batch under throttling thus settles
//! near the service's rate instead of bursting and wasting calls — like the SDK's adaptive retry
//! mode, but honouring DRS's `Retry-After` header, which the SDK ignores.
//!
//! Until the rate is known, a slow start keeps a small batch from paying for the discovery: three
//! launches in flight at first, one more for each success (the window grows every round trip),
//! halved by a throttle — so DRS refuses a few calls while the rate is learnt, not every chunk at
//! once. Once the rate is known, it alone spaces the launches.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// How far back the admitted rate is measured when DRS throttles.
const MEASURE_WINDOW: Duration = Duration::from_secs(5);
/// Once pacing, the rate after a burst of throttles is this fraction of the rate in force.
const DECREASE: f64 = 0.85;
/// Each success adds this many calls per second, up to `MAX_RATE`.
const INCREASE_PER_SUCCESS: f64 = 0.02;
const MIN_RATE: f64 = 0.05;
/// A rate measured over fewer calls says nothing; a throttle then only holds for `Retry-After`
/// (and halves the slow-start window). Slow start's first round trips make three: the first
/// launch admitted, then one of the next two.
const MIN_SAMPLES: usize = 3;
const MAX_RATE: f64 = 100.0;
/// Launches in flight before DRS has admitted any. Three, not one: with no throttling, two round
/// trips then carry seven chunks (three, then the four MAX_CONCURRENT_LAUNCHES allows), where a
/// window of one needed three round trips for the same (1, 2, 4) — a no-fault launch of 1 000
/// paid a whole extra round trip for the caution (BENCHMARKS.md). A DRS admitting fewer refuses
/// the first round's extra calls, and the window halves (the benchmark's throttled N = 1 000:
/// one refused call at the median, four in the worst run).
const INITIAL_WINDOW: usize = 3;

#[derive(Debug)]
struct State {
    /// Calls per second; `None` until the first throttle: no pacing while DRS keeps up.
    rate: Option<f64>,
    next_slot: Instant,
    /// When the rate was last cut: a throttled call sent before then was part of the burst
    /// that cut it, and must not cut it again (one decrease per burst, as in TCP).
    last_decrease: Option<Instant>,
    /// Sends in the window, and which of them DRS admitted.
    recent: VecDeque<(Instant, bool)>,
    /// Launches allowed in flight at once (slow start), and those in flight now.
    window: usize,
    in_flight: usize,
}

#[derive(Debug)]
pub struct Pacer {
    enabled: bool,
    state: Mutex<State>,
    /// Woken when a launch in flight ends.
    freed: Notify,
}

impl Pacer {
    pub fn new(enabled: bool) -> Self {
        Pacer {
            enabled,
            state: Mutex::new(State {
                rate: None,
                next_slot: Instant::now(),
                last_decrease: None,
                recent: VecDeque::new(),
                window: INITIAL_WINDOW,
                in_flight: 0,
            }),
            freed: Notify::new(),
        }
    }

    /// The current rate in calls per second, once DRS has throttled.
    pub fn rate(&self) -> Option<f64> {
        self.state.lock().ok().and_then(|state| state.rate)
    }

    /// Waits for room in the slow-start window, then reserves the next send slot and returns when
    /// it is; the caller sends then, or gives the slot up (`release`) if it is too late for the
    /// deadline. Every reservation ends with `succeeded`, `throttled` or `release`.
    pub async fn reserve(&self) -> Instant {
        loop {
            let freed = self.freed.notified();
            let mut freed = std::pin::pin!(freed);
            freed.as_mut().enable();
            {
                let now = Instant::now();
                let Ok(mut state) = self.state.lock() else {
                    return now;
                };
                if !self.enabled {
                    return now;
                }
                if state.rate.is_some() || state.in_flight < state.window {
                    state.in_flight += 1;
                    let slot = state.next_slot.max(now);
                    state.next_slot = match state.rate {
                        Some(rate) => slot + Duration::from_secs_f64(1.0 / rate),
                        None => slot,
                    };
                    return slot;
                }
            }
            freed.await;
        }
    }

    /// A reserved launch ended without DRS admitting or throttling it (or was never sent).
    pub fn release(&self) {
        if let Ok(mut state) = self.state.lock() {
            Self::end(&mut state);
        }
        self.freed.notify_waiters();
    }

    /// How many launches may be in flight now: the slow-start window, until the rate is known.
    pub fn window(&self) -> Option<usize> {
        self.state
            .lock()
            .ok()
            .and_then(|state| state.rate.is_none().then_some(state.window))
    }

    fn end(state: &mut State) {
        state.in_flight = state.in_flight.saturating_sub(1);
    }

    fn record(state: &mut State, at: Instant, admitted: bool) {
        state.recent.push_back((at, admitted));
        while state
            .recent
            .front()
            .is_some_and(|(first, _)| at.duration_since(*first) > MEASURE_WINDOW)
        {
            state.recent.pop_front();
        }
    }

    /// DRS accepted a call: one more launch may be in flight, and the rate goes up a little.
    pub fn succeeded(&self, now: Instant) {
        if let Ok(mut state) = self.state.lock() {
            Self::end(&mut state);
            Self::record(&mut state, now, true);
            if state.rate.is_none() {
                state.window += 1;
            }
            if let Some(rate) = state.rate {
                state.rate = Some((rate + INCREASE_PER_SUCCESS).min(MAX_RATE));
            }
        }
        self.freed.notify_waiters();
    }

    /// DRS throttled a call sent at `sent_at`: slow everyone down (once per burst), and hold
    /// every sender until `Retry-After`.
    pub fn throttled(&self, sent_at: Instant, now: Instant, retry_after: Option<Duration>) {
        self.cut(sent_at, now, retry_after);
        self.freed.notify_waiters();
    }

    fn cut(&self, sent_at: Instant, now: Instant, retry_after: Option<Duration>) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        Self::end(&mut state);
        if !self.enabled {
            return;
        }
        Self::record(&mut state, now, false);
        let samples = state.recent.len();
        let same_burst = state.last_decrease.is_some_and(|cut| sent_at < cut);
        if !same_burst {
            state.window = (state.window / 2).max(1);
        }
        if !same_burst && (samples >= MIN_SAMPLES || state.rate.is_some()) {
            state.last_decrease = Some(now);
            // What DRS admitted per second over the window, or over the time since the first
            // call in it (at least a second) when the run is younger than the window.
            let span = state
                .recent
                .front()
                .map_or(MEASURE_WINDOW, |(first, _)| now.duration_since(*first))
                .clamp(Duration::from_secs(1), MEASURE_WINDOW);
            let admitted = state
                .recent
                .iter()
                .filter(|(_, admitted)| *admitted)
                .count();
            let measured = admitted as f64 / span.as_secs_f64();
            // First, what DRS admitted is the rate. Once pacing, the rate in force is what
            // overshot; the measured one also counts the idle `Retry-After` holds and would
            // undershoot.
            let rate = match state.rate {
                None => measured,
                Some(in_force) => in_force * DECREASE,
            };
            state.rate = Some(rate.clamp(MIN_RATE, MAX_RATE));
        }
        if let Some(wait) = retry_after {
            state.next_slot = state.next_slot.max(now + wait);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn no_pacing_until_the_first_throttle() {
        let pacer = Pacer::new(true);
        let now = Instant::now();
        for _ in 0..10 {
            assert_eq!(pacer.reserve().await, now);
            pacer.succeeded(now);
        }
        assert_eq!(pacer.rate(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_throttle_holds_everyone_for_retry_after_then_paces() {
        let pacer = Pacer::new(true);
        let now = Instant::now();
        for _ in 0..10 {
            pacer.succeeded(now);
        }
        pacer.throttled(now, now, Some(Duration::from_secs(3)));
        // 10 admitted within the first second: 10/s
        let rate = pacer.rate().unwrap();
        assert!((rate - 10.0).abs() < 1e-9, "{rate}");
        let first = pacer.reserve().await;
        assert_eq!(first, now + Duration::from_secs(3));
        let second = pacer.reserve().await;
        assert_eq!(second - first, Duration::from_secs_f64(1.0 / 10.0));
        pacer.succeeded(now);
        assert!((pacer.rate().unwrap() - 10.0 - INCREASE_PER_SUCCESS).abs() < 1e-9);
    }

    #[tokio::test(start_paused = true)]
    async fn calls_throttled_in_one_burst_cut_the_rate_once() {
        let pacer = Pacer::new(true);
        let start = Instant::now();
        for _ in 0..4 {
            pacer.succeeded(start);
        }
        tokio::time::advance(Duration::from_millis(50)).await;
        let now = Instant::now();
        // three calls sent together at `start`, throttled one after another
        pacer.throttled(start, now, None);
        let after_first = pacer.rate().unwrap();
        pacer.throttled(start, now, None);
        pacer.throttled(start, now, None);
        assert_eq!(pacer.rate(), Some(after_first), "the same burst cuts once");
        // a call sent after the cut that is throttled again cuts again, to 0.85 of the rate
        tokio::time::advance(Duration::from_secs(1)).await;
        pacer.throttled(Instant::now(), Instant::now(), None);
        let cut = pacer.rate().unwrap();
        assert!((cut - after_first * DECREASE).abs() < 1e-9, "{cut}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_lone_throttled_call_only_holds_for_retry_after() {
        let pacer = Pacer::new(true);
        let now = Instant::now();
        pacer.succeeded(now);
        pacer.throttled(now, now, Some(Duration::from_secs(2)));
        assert_eq!(pacer.rate(), None);
        assert_eq!(pacer.reserve().await, now + Duration::from_secs(2));
        pacer.release();
        assert_eq!(pacer.reserve().await, now + Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn slow_start_widens_on_success_and_halves_on_a_throttle() {
        let pacer = Pacer::new(true);
        assert_eq!(pacer.window(), Some(INITIAL_WINDOW));
        let now = pacer.reserve().await;
        pacer.reserve().await;
        pacer.reserve().await;
        // a fourth launch waits until one of the first three ends
        let waiting = pacer.reserve();
        let mut waiting = std::pin::pin!(waiting);
        assert!(futures_util::poll!(waiting.as_mut()).is_pending());
        pacer.release();
        assert_eq!(waiting.await, now);
        assert_eq!(
            pacer.window(),
            Some(3),
            "a failure that is no throttle leaves it"
        );
        pacer.succeeded(now);
        assert_eq!(pacer.window(), Some(4), "one more in flight per success");
        pacer.reserve().await;
        // too few calls yet to measure a rate: the throttle halves the window
        pacer.throttled(now, now, None);
        assert_eq!(pacer.window(), Some(2));
        assert_eq!(pacer.rate(), None);
        pacer.release();
        pacer.release();
        pacer.release();
        // the next throttle has enough: the rate is known and the window no longer binds
        tokio::time::advance(Duration::from_secs(1)).await;
        pacer.reserve().await;
        pacer.throttled(Instant::now(), Instant::now(), None);
        assert_eq!(pacer.window(), None);
        assert!(pacer.rate().is_some());
        pacer.reserve().await;
        pacer.reserve().await;
    }

    #[tokio::test(start_paused = true)]
    async fn disabled_pacing_never_waits() {
        let pacer = Pacer::new(false);
        let now = Instant::now();
        pacer.throttled(now, now, Some(Duration::from_secs(30)));
        assert_eq!(pacer.reserve().await, now);
        assert_eq!(pacer.reserve().await, now, "nor holds a launch back");
        assert_eq!(pacer.rate(), None);
    }
}
