//! A clock you cannot trust. Boards without a real-time clock boot at 1970; a bad
//! NTP answer can throw the clock to 2099. No decision of skerry's depends on the wall
//! clock (document versions and signatures never use it); only certificate validity
//! needs a time, and that time is the *floor*: the newest of the system clock, this
//! build's commit time, and the last time persisted after a successful connection.
//! So a board at 1970 still accepts a broker certificate issued after its build.
//!
//! Test hook: `SKERRY_TEST_WALL_OFFSET_SECS` (signed) shifts what this module reads
//! as the system clock, to test 1970 and 2099 without touching the host's clock.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::pki_types::UnixTime;

/// The wall clock as this agent reads it (seconds since the epoch), test offset included.
pub fn wall_now_secs() -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let offset: i64 = std::env::var("SKERRY_TEST_WALL_OFFSET_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    now.saturating_add(offset).max(0) as u64
}

/// This build's commit time (seconds since the epoch), 0 if unknown.
pub fn build_time_secs() -> u64 {
    env!("SKERRY_BUILD_UNIX").parse().unwrap_or(0)
}

/// The time floor, shared by the TLS verifier and the sync loop.
#[derive(Debug)]
pub struct TimeFloor {
    path: Option<PathBuf>,
    floor: AtomicU64,
}

impl TimeFloor {
    /// The floor from the build time and the file at `path` (if readable).
    pub fn load(path: Option<PathBuf>) -> Arc<Self> {
        let persisted = path
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or(0);
        Arc::new(Self {
            path,
            floor: AtomicU64::new(persisted.max(build_time_secs())),
        })
    }

    /// The time to check certificates against.
    pub fn now_secs(&self) -> u64 {
        wall_now_secs().max(self.floor.load(Ordering::Relaxed))
    }

    /// The floor itself: build time, or the newest time a connection proved good.
    pub fn floor_secs(&self) -> u64 {
        self.floor.load(Ordering::Relaxed)
    }

    /// Whether the system clock is behind the floor (not set, on a board without RTC).
    pub fn clock_behind(&self) -> bool {
        wall_now_secs() < self.floor.load(Ordering::Relaxed)
    }

    /// Raises the floor to now and stores it (after a connection proved the time good
    /// enough for the broker's certificate).
    pub fn persist(&self) {
        let now = self.now_secs();
        self.floor.fetch_max(now, Ordering::Relaxed);
        if let Some(p) = &self.path {
            // The fleet directory may not exist yet on the first connection.
            if let Some(dir) = p.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            if let Err(e) = crate::store::atomic::write_atomic(p, format!("{now}\n").as_bytes()) {
                tracing::warn!(file = %p.display(), error = %e, "time floor not persisted");
            }
        }
    }
}

/// rustls' clock: the floor.
#[derive(Debug)]
pub struct FloorClock(pub Arc<TimeFloor>);

impl rustls::time_provider::TimeProvider for FloorClock {
    fn current_time(&self) -> Option<UnixTime> {
        Some(UnixTime::since_unix_epoch(Duration::from_secs(
            self.0.now_secs(),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timefloor_never_goes_below_build_or_persisted_time() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("floor");
        std::fs::write(&p, "4102444800\n").expect("write"); // 2100-01-01
        let f = TimeFloor::load(Some(p.clone()));
        assert!(f.now_secs() >= 4_102_444_800);
        assert!(f.clock_behind());
        let g = TimeFloor::load(None);
        assert!(g.now_secs() >= build_time_secs());
        g.persist();
        assert!(
            build_time_secs() > 1_600_000_000,
            "build.rs records the commit time"
        );
    }
}
