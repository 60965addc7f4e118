//! `[telemetry]`: sampling and publish periods, the per-container log budget, the
//! batch bounds, the in-memory queue's bound, the metrics spool's bound and the opt-in
//! Prometheus endpoint.
//! Defaults fit a cellular uplink (see docs/telemetry.md for the figures).
//!
//! ```text
//! [telemetry]
//! enabled = true
//! sample_secs = 10           # 1..=3600
//! publish_secs = 60          # sample_secs..=86400, a multiple of sample_secs
//! log_lines_per_sec = 5      # per container; 0 = unlimited
//! log_burst = 100            # 1..=100000
//! batch_lines = 200          # 1..=5000
//! batch_bytes = 16384        # 512..=65536
//! batch_wait_ms = 2000       # 50..=600000
//! queue_max_bytes = 2097152  # >= 65536: telemetry waiting for the link, in memory
//! spool_max_bytes = 1048576  # 4096..=268435456: metrics reports waiting, on disk
//! prometheus = "127.0.0.1:9464"   # or "unix:/run/skerry/metrics.sock"; unset = off
//! ```

use serde::{Deserialize, Serialize};

/// `[telemetry]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    pub enabled: bool,
    pub sample_secs: u64,
    pub publish_secs: u64,
    pub log_lines_per_sec: u32,
    pub log_burst: u32,
    pub batch_lines: usize,
    pub batch_bytes: usize,
    pub batch_wait_ms: u64,
    pub queue_max_bytes: usize,
    /// Bound of `<state>/telemetry/spool/` (metrics reports kept across restarts
    /// until the broker acknowledged them); past it the oldest go, counted.
    pub spool_max_bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<String>,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            sample_secs: 10,
            publish_secs: 60,
            log_lines_per_sec: 5,
            log_burst: 100,
            batch_lines: 200,
            batch_bytes: 16 * 1024,
            batch_wait_ms: 2000,
            queue_max_bytes: 2 * 1024 * 1024,
            // 18.8 h of reports at the default period for a 10-container gateway
            // (docs/telemetry.md has the arithmetic).
            spool_max_bytes: 1024 * 1024,
            prometheus: None,
        }
    }
}

/// Smallest and largest `spool_max_bytes`: at least a few segments of a few reports,
/// at most what a small gateway's disk should give to telemetry.
pub const SPOOL_MIN_BYTES: u64 = 4096;
pub const SPOOL_MAX_BYTES: u64 = 256 * 1024 * 1024;

/// Where the Prometheus endpoint listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    Tcp(std::net::SocketAddr),
    Unix(std::path::PathBuf),
}

impl TelemetryConfig {
    /// Checks every value; the error names the key.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let range = |key: &'static str, v: u64, lo: u64, hi: u64| {
            if (lo..=hi).contains(&v) {
                Ok(())
            } else {
                Err((key, format!("must be between {lo} and {hi}, got {v}")))
            }
        };
        range("telemetry.sample_secs", self.sample_secs, 1, 3600)?;
        range(
            "telemetry.publish_secs",
            self.publish_secs,
            self.sample_secs,
            86_400,
        )?;
        if self.publish_secs % self.sample_secs != 0 {
            return Err((
                "telemetry.publish_secs",
                format!(
                    "must be a multiple of sample_secs ({}), got {}",
                    self.sample_secs, self.publish_secs
                ),
            ));
        }
        range("telemetry.log_burst", self.log_burst.into(), 1, 100_000)?;
        range("telemetry.batch_lines", self.batch_lines as u64, 1, 5000)?;
        range(
            "telemetry.batch_bytes",
            self.batch_bytes as u64,
            512,
            65_536,
        )?;
        range("telemetry.batch_wait_ms", self.batch_wait_ms, 50, 600_000)?;
        if self.queue_max_bytes < 65_536 {
            return Err((
                "telemetry.queue_max_bytes",
                format!("must be at least 65536, got {}", self.queue_max_bytes),
            ));
        }
        range(
            "telemetry.spool_max_bytes",
            self.spool_max_bytes,
            SPOOL_MIN_BYTES,
            SPOOL_MAX_BYTES,
        )?;
        self.listen()?;
        Ok(())
    }

    /// The Prometheus endpoint: loopback TCP or a unix socket only.
    pub fn listen(&self) -> Result<Option<Listen>, (&'static str, String)> {
        let Some(p) = &self.prometheus else {
            return Ok(None);
        };
        let key = "telemetry.prometheus";
        if let Some(path) = p.strip_prefix("unix:") {
            if !path.starts_with('/') {
                return Err((
                    key,
                    format!("unix socket path must be absolute, got {path:?}"),
                ));
            }
            return Ok(Some(Listen::Unix(path.into())));
        }
        let addr: std::net::SocketAddr = p.parse().map_err(|_| {
            (
                key,
                format!("must be \"127.0.0.1:PORT\", \"[::1]:PORT\" or \"unix:/PATH\", got {p:?}"),
            )
        })?;
        if !addr.ip().is_loopback() {
            return Err((
                key,
                format!("must be a loopback address (run a collector on the device), got {addr}"),
            ));
        }
        Ok(Some(Listen::Tcp(addr)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn telemetry_config_defaults_valid_and_errors_named() {
        TelemetryConfig::default().validate().unwrap();
        let bad = |f: fn(&mut TelemetryConfig)| {
            let mut c = TelemetryConfig::default();
            f(&mut c);
            c.validate().unwrap_err()
        };
        assert_eq!(bad(|c| c.sample_secs = 0).0, "telemetry.sample_secs");
        assert_eq!(bad(|c| c.publish_secs = 15).0, "telemetry.publish_secs");
        assert_eq!(bad(|c| c.publish_secs = 5).0, "telemetry.publish_secs");
        assert_eq!(bad(|c| c.batch_bytes = 10).0, "telemetry.batch_bytes");
        assert_eq!(
            bad(|c| c.queue_max_bytes = 1).0,
            "telemetry.queue_max_bytes"
        );
        let e = bad(|c| c.spool_max_bytes = 1000);
        assert_eq!(e.0, "telemetry.spool_max_bytes");
        assert!(
            e.1.contains("between 4096 and 268435456, got 1000"),
            "{e:?}"
        );
        let e = bad(|c| c.prometheus = Some("0.0.0.0:9464".into()));
        assert!(e.1.contains("loopback"), "{e:?}");
        assert_eq!(
            bad(|c| c.prometheus = Some("unix:rel".into())).0,
            "telemetry.prometheus"
        );
        let c = TelemetryConfig {
            prometheus: Some("unix:/run/x.sock".into()),
            ..TelemetryConfig::default()
        };
        assert_eq!(
            c.listen().unwrap(),
            Some(Listen::Unix("/run/x.sock".into()))
        );
    }
}
