//! Waits between reconnection attempts: exponential, capped, with jitter so that clients a
//! server restart dropped together do not all come back at the same instant.

use std::time::Duration;

/// Exponential back-off with "equal jitter": half of each wait is fixed, half is random.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backoff {
    base_ms: u64,
    cap_ms: u64,
    attempt: u32,
}

impl Default for Backoff {
    /// 0.5 s, 1 s, 2 s … up to 10 s.
    fn default() -> Self {
        Self::new(500, 10_000)
    }
}

impl Backoff {
    /// Waits start near `base_ms` and never exceed `cap_ms`.
    pub const fn new(base_ms: u64, cap_ms: u64) -> Self {
        Self {
            base_ms,
            cap_ms,
            attempt: 0,
        }
    }

    /// The wait before the next attempt; `random` is uniform in `[0, 1)`.
    pub fn next(&mut self, random: f64) -> Duration {
        let ceiling = self
            .base_ms
            .saturating_mul(1u64 << self.attempt.min(20))
            .min(self.cap_ms);
        self.attempt = self.attempt.saturating_add(1);
        let half = ceiling / 2;
        let jitter = (random.clamp(0.0, 1.0) * (ceiling - half) as f64) as u64;
        Duration::from_millis(half + jitter)
    }

    /// Attempts made since the last success.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// A connection succeeded: the next failure waits the shortest time again.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_grow_to_the_cap_and_stay_within_their_jitter() {
        let mut b = Backoff::default();
        let lows: Vec<u64> = (0..8).map(|_| b.next(0.0).as_millis() as u64).collect();
        assert_eq!(lows, [250, 500, 1000, 2000, 4000, 5000, 5000, 5000]);
        let mut b = Backoff::default();
        let highs: Vec<u64> = (0..8)
            .map(|_| b.next(0.999_999).as_millis() as u64)
            .collect();
        assert_eq!(highs, [499, 999, 1999, 3999, 7999, 9999, 9999, 9999]);
        assert_eq!(b.attempts(), 8);
    }

    #[test]
    fn a_success_starts_again_from_the_shortest_wait() {
        let mut b = Backoff::default();
        for _ in 0..5 {
            b.next(0.5);
        }
        b.reset();
        assert_eq!(b.attempts(), 0);
        assert!(b.next(0.5) <= Duration::from_millis(500));
    }

    #[test]
    fn out_of_range_randomness_is_clamped_and_huge_counts_do_not_overflow() {
        let mut b = Backoff::new(1, u64::MAX);
        for _ in 0..100 {
            b.next(7.0);
        }
        let mut b = Backoff::new(500, 10_000);
        assert_eq!(b.next(-3.0), Duration::from_millis(250));
    }
}
