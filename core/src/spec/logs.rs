//! A container's `logConfiguration`: the drivers skerry accepts, the checked
//! [`LogDriver`] and the validation of `awslogs` options as ECS documents them.
//!
//! Whatever the driver, CloudWatch is never reached from the device: `awslogs`,
//! `json-file`, `local` and `skerry` all keep the container's output in skerry's rotated log
//! files (`skerry logs`); `journald` writes each line to the host's journal too
//! ([`super::journald`]); `none` discards it. Other drivers are refused.

use std::collections::BTreeMap;

use super::ecs::RawLogConfiguration;
use super::error::Problems;
use super::journald::Journald;

/// The drivers accepted, as said in refusals.
const SUPPORTED: &str = "awslogs, journald, json-file, local, none and skerry";

/// What `logConfiguration` asks for, checked.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum LogDriver {
    /// No `logConfiguration`, `json-file` or `local`: skerry's rotated files (the
    /// driver's options are ignored: skerry rotates by its own config).
    #[default]
    Files,
    /// `none`: the container's output is discarded.
    None,
    /// `awslogs`: the output stays in skerry's rotated files; CloudWatch is not
    /// reached from the device.
    Awslogs(AwsLogs),
    /// `journald`: each line goes to the host's journal with the container's fields,
    /// and to skerry's rotated files (`skerry logs`).
    Journald(Journald),
    /// `skerry`: skerry's rotated files, shipped to the fleet with the container's
    /// own budget and filters ([`super::skerry_logs`]).
    Skerry(super::skerry_logs::SkerryLogs),
}

/// `awslogs` options, checked.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AwsLogs {
    /// `awslogs-group`.
    pub group: String,
    /// `awslogs-region`.
    pub region: String,
    /// `awslogs-stream-prefix`, if given.
    pub stream_prefix: Option<String>,
    /// The regular expression a line that starts an event matches: the
    /// `awslogs-multiline-pattern`, or the one `awslogs-datetime-format` stands for
    /// ([`crate::telemetry::multiline`]). Shipped lines are grouped into events by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_start: Option<String>,
    /// `awslogs-force-flush-interval-seconds` when given: an open event older than
    /// this is closed (default 5 s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flush_secs: Option<u64>,
}

impl AwsLogs {
    /// The stream ECS would write to: `prefix/container/task-id` when a prefix is
    /// given, else `None` (Docker names it after the container id).
    pub fn stream_name(&self, container: &str, task_id: &str) -> Option<String> {
        self.stream_prefix
            .as_ref()
            .map(|prefix| format!("{prefix}/{container}/{task_id}"))
    }
}

/// The options of Docker's awslogs driver. The first eight are those ECS documents;
/// all are checked for their form. The group, stream prefix, multiline pattern (or
/// datetime format) and flush interval shape what is shipped to the fleet; the others
/// would shape how CloudWatch is reached, which the device never does.
const AWSLOGS_OPTIONS: [&str; 13] = [
    "awslogs-group",
    "awslogs-region",
    "awslogs-stream-prefix",
    "awslogs-create-group",
    "awslogs-datetime-format",
    "awslogs-multiline-pattern",
    "mode",
    "max-buffer-size",
    "awslogs-endpoint",
    "awslogs-format",
    "awslogs-force-flush-interval-seconds",
    "awslogs-max-buffered-events",
    "tag",
];

pub(crate) fn check(raw: &RawLogConfiguration, at: &str, p: &mut Problems) -> LogDriver {
    let empty = BTreeMap::new();
    let options = raw.options.as_ref().unwrap_or(&empty);
    match raw.log_driver.as_deref() {
        Some("json-file" | "local") => LogDriver::Files,
        Some("none") => {
            if let Some(name) = options.keys().next() {
                p.push(
                    format!("{at}.options.{name}"),
                    "the none log driver takes no options",
                );
            }
            LogDriver::None
        }
        Some("awslogs") => awslogs(options, &format!("{at}.options"), p),
        Some("journald") => super::journald::check(options, &format!("{at}.options"), p),
        Some("skerry") => LogDriver::Skerry(super::skerry_logs::check(
            options,
            &format!("{at}.options"),
            p,
        )),
        Some("awsfirelens") => {
            p.push(
                format!("{at}.logDriver"),
                format!("\"awsfirelens\" is not supported: FireLens needs a log router sidecar and AWS access; skerry supports the {SUPPORTED} log drivers and keeps the output on the device (skerry logs)"),
            );
            LogDriver::Files
        }
        Some(other) => {
            p.push(
                format!("{at}.logDriver"),
                format!("{other:?} is not supported: skerry supports the {SUPPORTED} log drivers and keeps the output on the device (skerry logs)"),
            );
            LogDriver::Files
        }
        None => {
            p.push(format!("{at}.logDriver"), "is required");
            LogDriver::Files
        }
    }
}

fn awslogs(options: &BTreeMap<String, String>, at: &str, p: &mut Problems) -> LogDriver {
    for name in options.keys() {
        if !AWSLOGS_OPTIONS.contains(&name.as_str()) {
            p.push(
                format!("{at}.{name}"),
                "is not an awslogs option (see the awslogs log driver's options in the ECS documentation)",
            );
        }
    }
    let get = |name: &str| options.get(name).map(String::as_str);
    let group = required(get("awslogs-group"), &format!("{at}.awslogs-group"), p);
    if let Some(bad) = group
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "._-/#".contains(*c)))
    {
        p.push(
            format!("{at}.awslogs-group"),
            format!("a log group name has letters, digits and '.', '_', '-', '/', '#', got {bad:?} in {group:?}"),
        );
    }
    let region = required(get("awslogs-region"), &format!("{at}.awslogs-region"), p);
    if !region.is_empty() && !is_region(&region) {
        p.push(
            format!("{at}.awslogs-region"),
            format!("must be an AWS region such as \"us-west-2\", got {region:?}"),
        );
    }
    let stream_prefix = get("awslogs-stream-prefix").map(str::to_string);
    if let Some(prefix) = stream_prefix.as_deref() {
        if prefix.is_empty() || prefix.contains([':', '*']) {
            p.push(
                format!("{at}.awslogs-stream-prefix"),
                format!("must be non-empty and without ':' or '*', got {prefix:?}"),
            );
        }
    }
    if let Some(v) = get("awslogs-create-group").filter(|v| parse_bool(v).is_none()) {
        p.push(
            format!("{at}.awslogs-create-group"),
            format!("must be \"true\" or \"false\", got {v:?}"),
        );
    }
    let mode = get("mode").unwrap_or("blocking");
    if !matches!(mode, "blocking" | "non-blocking") {
        p.push(
            format!("{at}.mode"),
            format!("must be \"blocking\" or \"non-blocking\", got {mode:?}"),
        );
    }
    if let Some(size) = get("max-buffer-size") {
        if !is_size(size) {
            p.push(
                format!("{at}.max-buffer-size"),
                format!("must be a size such as \"25m\", got {size:?}"),
            );
        } else if mode == "blocking" {
            p.push(
                format!("{at}.max-buffer-size"),
                "is only supported with \"mode\": \"non-blocking\"",
            );
        }
    }
    if get("awslogs-datetime-format").is_some() && get("awslogs-multiline-pattern").is_some() {
        p.push(
            format!("{at}.awslogs-multiline-pattern"),
            "cannot be set together with awslogs-datetime-format",
        );
    }
    // Docker's driver takes the datetime format first, then the pattern.
    let event_start = match (
        get("awslogs-datetime-format"),
        get("awslogs-multiline-pattern"),
    ) {
        (Some(f), _) => Some((
            "awslogs-datetime-format",
            crate::telemetry::multiline::datetime_pattern(f),
        )),
        (None, Some(pattern)) => Some(("awslogs-multiline-pattern", pattern.to_string())),
        (None, None) => None,
    }
    .and_then(|(name, pattern)| {
        super::skerry_logs::checked_pattern(pattern, format!("{at}.{name}"), p)
    });
    for name in [
        "awslogs-force-flush-interval-seconds",
        "awslogs-max-buffered-events",
    ] {
        if let Some(v) = get(name).filter(|v| v.parse::<u32>().map_or(true, |n| n == 0)) {
            p.push(
                format!("{at}.{name}"),
                format!("must be a whole number above 0, got {v:?}"),
            );
        }
    }
    let flush_secs = get("awslogs-force-flush-interval-seconds").and_then(|v| v.parse().ok());
    LogDriver::Awslogs(AwsLogs {
        group,
        region,
        stream_prefix,
        event_start,
        flush_secs,
    })
}

fn required(value: Option<&str>, path: &str, p: &mut Problems) -> String {
    match value {
        Some(v) if !v.is_empty() => v.to_string(),
        _ => {
            p.push(path, "is required by the awslogs log driver");
            String::new()
        }
    }
}

/// The form of an AWS region name: lower-case letters, digits and at least one '-'.
fn is_region(v: &str) -> bool {
    v.contains('-')
        && v.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Go's `strconv.ParseBool`, which Docker uses for boolean log options.
fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// A Docker size (`units.RAMInBytes`): a number, then optionally k, m, g, t or p,
/// then optionally `b` or `ib`, any case.
fn is_size(v: &str) -> bool {
    let digits = v
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(v.len());
    let (number, unit) = v.split_at(digits);
    let unit = unit.trim_start().to_ascii_lowercase();
    number.parse::<f64>().is_ok()
        && matches!(
            unit.as_str(),
            "" | "b"
                | "k"
                | "kb"
                | "kib"
                | "m"
                | "mb"
                | "mib"
                | "g"
                | "gb"
                | "gib"
                | "t"
                | "tb"
                | "tib"
                | "p"
                | "pb"
                | "pib"
        )
}
