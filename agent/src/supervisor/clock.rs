//! The supervisor's clock: the embassy-time [`Instant`]s handed to the reconciler.
//!
//! The reconciler persists instants as raw ticks (1 MHz), and embassy's std driver
//! counts from process start, so it is not used. Ticks here are `CLOCK_BOOTTIME`
//! microseconds (it counts through suspend) shifted by an offset that keeps time
//! continuous across agent restarts:
//! - the state file stores the tick count, the boot id and the wall clock at save;
//! - on load in the same boot, ticks resume at `saved + (boottime now − boottime at
//!   save)`; after a reboot, at `saved + max(0, wall now − wall at save)`, so no
//!   persisted instant lies in the future and a 1970 wall clock (no RTC) can only make
//!   the gap look shorter, never negative.
//!
//! Test hook: `SKERRY_TEST_TIME_SCALE=N` makes the reconciler's time run N times
//! faster than real time (backoff, health intervals, restartAttemptPeriod, deadlines),
//! so real-container tests can exercise ECS minimums in seconds.

use embassy_time::Instant;
use nix::time::{clock_gettime, ClockId};
use serde::{Deserialize, Serialize};

/// Where the clock stood when the state was saved.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockMark {
    /// Reconciler ticks at save.
    pub ticks: u64,
    /// `CLOCK_BOOTTIME` µs at save.
    pub boottime_us: u64,
    /// `/proc/sys/kernel/random/boot_id` at save.
    pub boot_id: String,
    /// Wall clock (ms since the epoch) at save.
    pub wall_ms: u64,
}

/// Monotonic reconciler time.
#[derive(Debug, Clone)]
pub struct Clock {
    base_ticks: u64,
    base_boottime_us: u64,
    scale: u64,
    boot_id: String,
}

impl Clock {
    /// A clock resuming after `mark` (or starting at the current boot time).
    pub fn resume(mark: Option<&ClockMark>) -> Self {
        let scale = std::env::var("SKERRY_TEST_TIME_SCALE")
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .filter(|s| (1..=1000).contains(s))
            .unwrap_or(1);
        let boot_id = boot_id();
        let now_bt = boottime_us();
        let base_ticks = match mark {
            None => now_bt.saturating_mul(scale),
            Some(m) => {
                let elapsed_us = if m.boot_id == boot_id && now_bt >= m.boottime_us {
                    now_bt - m.boottime_us
                } else {
                    crate::runtime::record::now_ms()
                        .saturating_sub(m.wall_ms)
                        .saturating_mul(1000)
                };
                m.ticks.saturating_add(elapsed_us.saturating_mul(scale))
            }
        };
        Self {
            base_ticks,
            base_boottime_us: now_bt,
            scale,
            boot_id,
        }
    }

    /// Now, in reconciler time.
    pub fn now(&self) -> Instant {
        let elapsed = boottime_us().saturating_sub(self.base_boottime_us);
        Instant::from_ticks(
            self.base_ticks
                .saturating_add(elapsed.saturating_mul(self.scale)),
        )
    }

    /// The mark to persist now.
    pub fn mark(&self) -> ClockMark {
        ClockMark {
            ticks: self.now().as_ticks(),
            boottime_us: boottime_us(),
            boot_id: self.boot_id.clone(),
            wall_ms: crate::runtime::record::now_ms(),
        }
    }

    /// Real time until `at` (zero if passed).
    pub fn real_until(&self, at: Instant) -> std::time::Duration {
        let ticks = at.as_ticks().saturating_sub(self.now().as_ticks());
        std::time::Duration::from_micros(ticks / self.scale.max(1))
    }

    /// The test time scale (1 in production).
    pub fn scale(&self) -> u64 {
        self.scale
    }
}

fn boottime_us() -> u64 {
    clock_gettime(ClockId::CLOCK_BOOTTIME)
        .map(|t| {
            u64::try_from(t.tv_sec()).unwrap_or(0) * 1_000_000
                + u64::try_from(t.tv_nsec()).unwrap_or(0) / 1000
        })
        .unwrap_or(0)
}

fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_resumes_after_its_mark_and_is_monotonic() {
        let c = Clock::resume(None);
        let a = c.now();
        let mark = ClockMark {
            ticks: a.as_ticks() + 5_000_000,
            ..c.mark()
        };
        let d = Clock::resume(Some(&mark));
        assert!(d.now().as_ticks() >= mark.ticks);
        let rebooted = ClockMark {
            boot_id: "other".into(),
            wall_ms: 0,
            ..mark.clone()
        };
        assert!(Clock::resume(Some(&rebooted)).now().as_ticks() >= mark.ticks);
    }
}
