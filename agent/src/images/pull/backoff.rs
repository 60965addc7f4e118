//! Retry delays: exponential from `min` (doubling per attempt without progress), capped
//! at `max`, each drawn uniformly from its upper half (jitter, so devices cut off by the
//! same outage do not come back in step). An attempt that put bytes on disk resets
//! the count: progress is measured in bytes, not attempts.

use std::time::Duration;

/// Backoff state for one blob or request.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    min: Duration,
    max: Duration,
    /// Attempts in a row that made no progress.
    pub(crate) failures: u32,
    seed: u64,
}

impl Backoff {
    pub(crate) fn new(min: Duration, max: Duration) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        Self {
            min,
            max: max.max(min),
            failures: 0,
            seed: u64::from(nanos) ^ (u64::from(std::process::id()) << 32) | 1,
        }
    }

    /// Records an attempt; returns the delay before the next one.
    pub(crate) fn next_delay(&mut self, progressed: bool) -> Duration {
        if progressed {
            self.failures = 0;
        }
        let exp = self.failures.min(30);
        self.failures = self.failures.saturating_add(1);
        let full = self
            .min
            .checked_mul(1u32 << exp.min(20))
            .unwrap_or(self.max)
            .min(self.max);
        let half = full / 2;
        let spread = u64::try_from((full - half).as_micros()).unwrap_or(u64::MAX);
        let jitter = if spread == 0 {
            0
        } else {
            self.random() % (spread + 1)
        };
        half + Duration::from_micros(jitter)
    }

    /// xorshift64: enough to spread retries, not for secrets.
    fn random(&mut self) -> u64 {
        let mut x = self.seed;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.seed = x;
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_caps_and_resets_on_progress() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(300));
        let mut last_cap = Duration::ZERO;
        for i in 0..12u32 {
            let d = b.next_delay(false);
            let cap = Duration::from_secs(1u64 << i).min(Duration::from_secs(300));
            assert!(
                d >= cap / 2 && d <= cap,
                "attempt {i}: {d:?} outside {cap:?}"
            );
            last_cap = cap;
        }
        assert_eq!(last_cap, Duration::from_secs(300));
        let d = b.next_delay(true);
        assert!(d <= Duration::from_secs(1), "{d:?} after progress");
        assert_eq!(b.failures, 1);
    }
}
