//! Telemetry's pure half: the wire types of metrics reports and log batches, the
//! per-container line budget ([`rate`]), the batching rule and the compression
//! choice ([`batch`]), and the CPU-rate and peak aggregation between publishes
//! ([`aggregate`]). No file, socket or clock: the agent's `telemetry` module samples
//! cgroups and `/proc`, tails the log files and passes `now` in.
//!
//! ```text
//! …/<device>/metrics                 Envelope{Metrics(MetricsReport)}   every publish period
//! …/<device>/logs/<task>/<container> Envelope{Logs(LogBatch)}           retained (the newest batch)
//! ```

pub mod aggregate;
pub mod batch;
pub mod multiline;
pub mod rate;

use serde::{Deserialize, Serialize};

/// One container's figures over a publish period.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerMetrics {
    pub task: String,
    pub container: String,
    /// Mean CPU use over the period, in thousandths of one CPU (1000 = one core busy).
    pub cpu_millis: u64,
    /// Cumulative CPU time, nanoseconds.
    pub cpu_total_ns: u64,
    /// Cumulative periods in which the cgroup was throttled, and time throttled (ns).
    pub throttled_periods: u64,
    pub throttled_ns: u64,
    /// Memory in use at the last sample, the highest sample of the period, the limit
    /// (`None`: unlimited).
    pub memory_bytes: u64,
    pub memory_peak_bytes: u64,
    pub memory_limit_bytes: Option<u64>,
    /// Times the cgroup's OOM killer fired (cumulative, as the kernel counts).
    pub oom_kills: u64,
    pub pids: u64,
    /// From the supervisor's status: restarts and ECS health.
    pub restarts: u32,
    pub health: String,
    pub state: String,
    /// Log lines the rate limit cut, so far (cumulative).
    pub log_lines_cut: u64,
    /// Log lines lost before they were read (rotated away while the link was down).
    pub log_lines_lost: u64,
}

/// The device's figures at the end of a publish period.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceMetrics {
    /// 1-minute load average, in thousandths.
    pub load1_milli: u64,
    pub memory_total_bytes: u64,
    pub memory_available_bytes: u64,
    /// Free bytes on the file system of the state directory.
    pub state_disk_free_bytes: u64,
    pub state_disk_total_bytes: u64,
    pub uptime_secs: u64,
    /// Resident memory of the agent process (the supervisor).
    pub agent_rss_bytes: u64,
    /// CPU time used by the agent process so far, milliseconds.
    pub agent_cpu_ms: u64,
    /// Telemetry reports dropped unsent by the telemetry queue's bound, so far.
    pub telemetry_dropped: u64,
}

/// One metrics report: the device and every running container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetricsReport {
    /// Wall-clock time of the last sample, ms since the epoch.
    pub at_ms: u64,
    /// Length of the period the figures cover, ms.
    pub period_ms: u64,
    pub device: DeviceMetrics,
    pub containers: Vec<ContainerMetrics>,
}

/// One line a container wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// RFC 3339 time the monitor stamped on the line.
    pub time: String,
    /// `stdout` or `stderr`.
    pub stream: String,
    pub text: String,
}

/// Consecutive log lines of one container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogBatch {
    pub task: String,
    pub container: String,
    /// The ECS stream name (`prefix/container/task-id`) for `awslogs`.
    pub stream: String,
    /// `awslogs-group`.
    pub group: String,
    /// When this container's numbering began (ms since the epoch, set when its first
    /// cursor was made): a task id used again (a new state directory, a redeployed
    /// file) starts a new numbering, and a receiver starts over on a new `epoch`.
    pub epoch: u64,
    /// Number of the first line in this container's shipped sequence (from 1): a
    /// receiver drops lines it has seen and notices gaps.
    pub first_line: u64,
    /// Cumulative lines cut by the rate limit / lost before they were read.
    pub cut: u64,
    pub lost: u64,
    /// The lines, or their deflated postcard when that was smaller.
    pub lines: LogLines,
    /// Cumulative log files rotated away on the device before they were read (their
    /// lines were never numbered, so a receiver sees no gap: this says it).
    pub lost_files: u64,
}

/// The batch's lines, plain or deflated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogLines {
    Plain(Vec<LogLine>),
    /// `postcard(Vec<LogLine>)` compressed with raw deflate.
    Deflated(Vec<u8>),
    /// Lines grouped into events ([`multiline`]): the indices of the lines that
    /// continue the line before them (index 0: the last batch's last event goes on).
    /// Only containers with a multiline pattern send it, so an older reader fails on
    /// those batches alone.
    Grouped {
        continued: Vec<u32>,
        lines: Box<LogLines>,
    },
}

/// A batch whose lines cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("log batch of {task}/{container}: {why}")]
pub struct LogBatchError {
    pub task: String,
    pub container: String,
    pub why: String,
}

impl LogBatch {
    /// The lines, inflated if need be (at most `max_bytes` once inflated).
    pub fn lines(&self, max_bytes: usize) -> Result<Vec<LogLine>, LogBatchError> {
        let err = |why: String| LogBatchError {
            task: self.task.clone(),
            container: self.container.clone(),
            why,
        };
        let mut lines = &self.lines;
        if let LogLines::Grouped { lines: inner, .. } = lines {
            lines = inner;
        }
        match lines {
            LogLines::Plain(l) => Ok(l.clone()),
            LogLines::Deflated(bytes) => {
                let raw = miniz_oxide::inflate::decompress_to_vec_with_limit(bytes, max_bytes)
                    .map_err(|e| err(format!("inflate: {e:?}")))?;
                postcard::from_bytes(&raw).map_err(|e| err(format!("decode: {e}")))
            }
            LogLines::Grouped { .. } => Err(err("grouped lines inside grouped lines".into())),
        }
    }

    /// Whether line `i` of this batch continues the event of the line before it.
    pub fn continues(&self, i: usize) -> bool {
        match &self.lines {
            LogLines::Grouped { continued, .. } => {
                u32::try_from(i).is_ok_and(|i| continued.binary_search(&i).is_ok())
            }
            _ => false,
        }
    }
}
