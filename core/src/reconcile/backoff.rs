//! Relaunch backoff and crash-loop detection for service tasks.
//!
//! After the n-th failure in a row the service waits `floor · 2^(n−1)` (capped) plus
//! up to half of that again as jitter, never less than the floor nor more than the
//! cap. Jitter comes from a splitmix64 stream over the configured seed: no RNG, same
//! inputs give the same delays. `crash_loop_failures` failures within
//! `crash_loop_window` make a crash loop: one event, then every relaunch waits the
//! cap until a task of the service serves again.

use std::collections::VecDeque;

use embassy_time::{Duration, Instant};
use serde::{Deserialize, Serialize};

use super::actions::Event;
use super::model::Config;
use super::time::{after, opt_instant};
use super::Sink;

/// Per-service backoff state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backoff {
    /// Failures since a task last became serving.
    pub consecutive: u32,
    /// No launch before this.
    #[serde(with = "opt_instant")]
    pub next_launch_at: Option<Instant>,
    /// Failure times within the crash-loop window, in ticks.
    pub recent: VecDeque<u64>,
    /// In a crash loop.
    pub crash_loop: bool,
}

/// splitmix64: one step of a fixed, well-mixed sequence.
pub(super) fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The wait after the `n`-th failure in a row (n ≥ 1), with jitter from `random`.
pub fn delay(cfg: &Config, n: u32, random: u64) -> Duration {
    let floor = cfg.backoff_floor.as_ticks().max(1);
    let cap = cfg.backoff_cap.as_ticks().max(floor);
    let base = floor
        .saturating_mul(1u64 << n.saturating_sub(1).min(32))
        .min(cap);
    let jitter = random % (base / 2 + 1);
    Duration::from_ticks(base.saturating_add(jitter).clamp(floor, cap))
}

impl Backoff {
    /// May a task be launched at `now`?
    pub fn ready(&self, now: Instant) -> bool {
        self.next_launch_at.is_none_or(|t| now >= t)
    }

    /// Records one failed task of `service` at `now`.
    pub(super) fn on_failure(
        &mut self,
        cfg: &Config,
        service: &str,
        now: Instant,
        random: u64,
        sink: &mut Sink,
    ) {
        self.consecutive = self.consecutive.saturating_add(1);
        let window_start = now
            .as_ticks()
            .saturating_sub(cfg.crash_loop_window.as_ticks());
        self.recent.push_back(now.as_ticks());
        while self.recent.front().is_some_and(|&t| t < window_start) {
            self.recent.pop_front();
        }
        let failures = u32::try_from(self.recent.len()).unwrap_or(u32::MAX);
        if !self.crash_loop && failures >= cfg.crash_loop_failures.max(1) {
            self.crash_loop = true;
            sink.event(Event::CrashLoop {
                service: service.to_owned(),
                failures,
                window: cfg.crash_loop_window,
            });
        }
        let wait = if self.crash_loop {
            cfg.backoff_cap.max(cfg.backoff_floor)
        } else {
            delay(cfg, self.consecutive, random)
        };
        let until = after(now, wait);
        self.next_launch_at = Some(self.next_launch_at.map_or(until, |t| t.max(until)));
        sink.event(Event::ServiceBackoff {
            service: service.to_owned(),
            consecutive_failures: self.consecutive,
            delay: wait,
        });
    }

    /// The service went back to a known-good revision: the failures and the wait they
    /// earned are forgotten, except the floor after the latest failure.
    pub fn forgive(&mut self, floor: Duration) {
        let earliest = self
            .recent
            .back()
            .map(|&t| after(Instant::from_ticks(t), floor));
        if let (Some(next), Some(earliest)) = (self.next_launch_at, earliest) {
            self.next_launch_at = Some(next.min(earliest));
        }
        self.on_serving();
    }

    /// A task of the service serves: failures are forgiven.
    pub fn on_serving(&mut self) {
        self.consecutive = 0;
        self.crash_loop = false;
        self.recent.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_floor_to_cap_with_bounded_jitter() {
        let cfg = Config::default();
        assert_eq!(delay(&cfg, 1, 0), Duration::from_secs(10));
        assert_eq!(delay(&cfg, 2, 0), Duration::from_secs(20));
        assert_eq!(delay(&cfg, 3, 0), Duration::from_secs(40));
        assert_eq!(delay(&cfg, 30, 0), Duration::from_secs(300));
        assert_eq!(
            delay(&cfg, 1, u64::MAX - 1),
            Duration::from_ticks(10_000_000 + (u64::MAX - 1) % 5_000_001)
        );
        for n in 1..40 {
            for r in [0, 1, 12345, u64::MAX] {
                let d = delay(&cfg, n, splitmix64(r));
                assert!(
                    d >= cfg.backoff_floor && d <= cfg.backoff_cap,
                    "n={n} d={d:?}"
                );
            }
        }
    }

    #[test]
    fn backoff_crash_loop_reported_once_and_waits_the_cap() {
        let cfg = Config::default();
        let mut b = Backoff::default();
        let mut sink = Sink::default();
        for i in 0..7 {
            b.on_failure(
                &cfg,
                "web",
                Instant::from_secs(i * 20),
                splitmix64(i),
                &mut sink,
            );
        }
        let loops = sink
            .events
            .iter()
            .filter(|e| matches!(e, Event::CrashLoop { .. }))
            .count();
        assert_eq!(loops, 1);
        assert!(b.crash_loop);
        assert_eq!(b.next_launch_at, Some(Instant::from_secs(120 + 300)));
        b.on_serving();
        assert!(!b.crash_loop && b.consecutive == 0);
    }

    #[test]
    fn backoff_old_failures_leave_the_window() {
        let cfg = Config::default();
        let mut b = Backoff::default();
        let mut sink = Sink::default();
        for i in 0..6 {
            b.on_failure(&cfg, "web", Instant::from_secs(i * 700), 0, &mut sink);
        }
        assert!(!b.crash_loop);
        assert_eq!(b.recent.len(), 1);
    }
}
