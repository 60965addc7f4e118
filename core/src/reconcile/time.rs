//! Time plumbing for the reconciler: conversion from the spec's `std::time::Duration`
//! to embassy-time's, and serde for [`Instant`] / [`Duration`] (embassy-time has none).
//!
//! Persisted instants are raw ticks of the agent's embassy-time driver (1 MHz). They
//! mean something across an agent restart only if that driver counts from a fixed
//! origin (e.g. `CLOCK_BOOTTIME`); the std driver counts from process start.

use embassy_time::{Duration, Instant};

/// `std` → embassy duration, saturating at the largest representable value.
pub fn from_std(d: std::time::Duration) -> Duration {
    let ticks = d
        .as_nanos()
        .saturating_mul(u128::from(embassy_time::TICK_HZ))
        .div_ceil(1_000_000_000);
    Duration::from_ticks(u64::try_from(ticks).unwrap_or(u64::MAX))
}

/// `a + b`, saturating.
pub(crate) fn sum(a: Duration, b: Duration) -> Duration {
    a.checked_add(b).unwrap_or(Duration::MAX)
}

/// `now + d`, saturating instead of overflowing.
pub(crate) fn after(now: Instant, d: Duration) -> Instant {
    now.checked_add(d).unwrap_or(Instant::MAX)
}

/// Keeps the earliest of two optional wakeups.
pub(crate) fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

/// `#[serde(with = "instant")]`: an [`Instant`] as its tick count.
pub(crate) mod instant {
    use embassy_time::Instant;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(i: &Instant, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(i.as_ticks())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Instant, D::Error> {
        u64::deserialize(d).map(Instant::from_ticks)
    }
}

/// `#[serde(with = "opt_instant")]`: an optional [`Instant`] as its tick count.
pub(crate) mod opt_instant {
    use embassy_time::Instant;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub(crate) fn serialize<S: Serializer>(i: &Option<Instant>, s: S) -> Result<S::Ok, S::Error> {
        i.map(|i| i.as_ticks()).serialize(s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Instant>, D::Error> {
        Option::<u64>::deserialize(d).map(|t| t.map(Instant::from_ticks))
    }
}

/// `#[serde(with = "duration")]`: a [`Duration`] as its tick count.
pub(crate) mod duration {
    use embassy_time::Duration;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_ticks())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_ticks)
    }
}

/// `#[serde(with = "opt_duration")]`: an optional [`Duration`] as its tick count.
pub(crate) mod opt_duration {
    use embassy_time::Duration;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub(crate) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        d.map(|d| d.as_ticks()).serialize(s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        Option::<u64>::deserialize(d).map(|t| t.map(Duration::from_ticks))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_from_std_saturates_and_converts() {
        assert_eq!(
            from_std(std::time::Duration::from_secs(3)),
            Duration::from_secs(3)
        );
        assert_eq!(from_std(std::time::Duration::MAX).as_ticks(), u64::MAX);
        assert_eq!(sum(Duration::MAX, Duration::from_secs(1)), Duration::MAX);
        assert_eq!(after(Instant::MAX, Duration::from_secs(1)), Instant::MAX);
    }

    #[test]
    fn time_earliest_picks_min() {
        let a = Some(Instant::from_secs(2));
        let b = Some(Instant::from_secs(1));
        assert_eq!(earliest(a, b), b);
        assert_eq!(earliest(None, b), b);
        assert_eq!(earliest(a, None), a);
        assert_eq!(earliest(None, None), None);
    }
}
