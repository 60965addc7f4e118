//! The per-container line budget: a token bucket of `per_sec` lines a second with
//! room for `burst`. A line over budget is cut and counted, never silently lost:
//! the count travels in every batch and in the metrics.

/// One container's budget. Time is passed in (ms, any monotonic origin).
#[derive(Debug, Clone, PartialEq)]
pub struct LineBudget {
    per_sec: u32,
    burst: u32,
    tokens: f64,
    last_ms: Option<u64>,
    cut: u64,
}

impl LineBudget {
    /// A full bucket. `per_sec` 0 means unlimited.
    pub fn new(per_sec: u32, burst: u32) -> Self {
        Self {
            per_sec,
            burst: burst.max(1),
            tokens: f64::from(burst.max(1)),
            last_ms: None,
            cut: 0,
        }
    }

    /// Whether one more line may go now; a refused line is counted as cut.
    pub fn admit(&mut self, now_ms: u64) -> bool {
        if self.per_sec == 0 {
            return true;
        }
        if let Some(last) = self.last_ms {
            let dt = now_ms.saturating_sub(last) as f64 / 1000.0;
            self.tokens = (self.tokens + dt * f64::from(self.per_sec)).min(f64::from(self.burst));
        }
        self.last_ms = Some(now_ms);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            self.cut += 1;
            false
        }
    }

    /// Lines cut so far.
    pub fn cut(&self) -> u64 {
        self.cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_burst_then_steady() {
        let mut b = LineBudget::new(10, 5);
        let first: usize = (0..20).filter(|_| b.admit(0)).count();
        assert_eq!(first, 5);
        assert_eq!(b.cut(), 15);
        // One second later: ten more tokens, capped at the burst of five.
        let later: usize = (0..20).filter(|_| b.admit(1000)).count();
        assert_eq!(later, 5);
        // 100 ms: one token.
        assert!(b.admit(1100));
        assert!(!b.admit(1100));
        assert_eq!(b.cut(), 31);
    }

    #[test]
    fn rate_zero_is_unlimited() {
        let mut b = LineBudget::new(0, 1);
        assert!((0..10_000).all(|_| b.admit(0)));
        assert_eq!(b.cut(), 0);
    }
}
