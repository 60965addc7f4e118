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

/// Milliseconds since the epoch of a log line's `YYYY-MM-DDTHH:MM:SS.mmmZ` stamp
/// (the form the monitor writes); `None` for anything else. The budget runs on the
/// lines' own times, so a backlog read after an outage is judged by when it was
/// written, not cut for arriving all at once.
pub fn parse_stamp_ms(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() != 24 || b[4] != b'-' || b[10] != b'T' || b[19] != b'.' || b[23] != b'Z' {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (n(0..4)?, n(5..7)?, n(8..10)?);
    let (hh, mm, ss, ms) = (n(11..13)?, n(14..16)?, n(17..19)?, n(20..23)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hh * 3600 + mm * 60 + ss;
    u64::try_from(secs * 1000 + ms).ok()
}

#[cfg(test)]
mod stamp_tests {
    use super::parse_stamp_ms;

    #[test]
    fn rate_stamps_parse() {
        assert_eq!(parse_stamp_ms("1970-01-01T00:00:00.000Z"), Some(0));
        assert_eq!(
            parse_stamp_ms("2024-02-29T12:00:00.000Z"),
            Some(1_709_208_000_000)
        );
        assert_eq!(
            parse_stamp_ms("2026-11-30T00:53:19.123Z"),
            Some(1_795_999_999_123)
        );
        assert_eq!(parse_stamp_ms("2026-13-30T00:53:19.123Z"), None);
        assert_eq!(parse_stamp_ms("garbage"), None);
    }
}
