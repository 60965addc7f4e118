//! The `skerry` log driver: the container's output stays in skerry's rotated files
//! (`skerry logs`), as with `json-file`, and is shipped to the fleet
//! (`…/logs/<task>/<container>`) as `awslogs` output is, with the shipping budget
//! and filters set per container instead of by the agent's `[telemetry]` config:
//!
//! ```text
//! "logConfiguration": {"logDriver": "skerry", "options": {
//!     "lines-per-sec": "20", "burst": "200", "batch-lines": "100",
//!     "min-level": "warn", "include-regex": "sensor|modem", "exclude-regex": "heartbeat",
//!     "group": "plant-a"}}
//! ```
//!
//! Filters decide which lines are *shipped*; every line stays in the local files.
//! [`line_level`] recognises a level word (`ERROR`, `warn`, `level=info`, `[DEBUG]`, a
//! syslog `<3>` prefix) among a line's first words; a line without one is shipped
//! whatever `min-level` says, so nothing unrecognised disappears from the fleet view.

use std::collections::BTreeMap;

use super::error::Problems;

/// Largest compiled filter: a pattern cannot make the agent use much memory.
pub const REGEX_SIZE_LIMIT: usize = 256 * 1024;

/// A log option's regular expression, compiled within [`REGEX_SIZE_LIMIT`]: the one
/// way the spec checks and the agent uses every log pattern (the `skerry` driver's
/// filters, journald's selectors, awslogs' event start).
pub fn compile_regex(pattern: &str) -> Result<regex::Regex, regex::Error> {
    regex::RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
}

/// `pattern`, the value of the option at `path`, if it compiles; else a problem
/// naming the option, the pattern and why.
pub(crate) fn checked_pattern(pattern: String, path: String, p: &mut Problems) -> Option<String> {
    match compile_regex(&pattern) {
        Ok(_) => Some(pattern),
        Err(e) => {
            p.push(
                path,
                format!("is not a valid regular expression ({pattern:?}): {e}"),
            );
            None
        }
    }
}

const OPTIONS: [&str; 7] = [
    "lines-per-sec",
    "burst",
    "batch-lines",
    "min-level",
    "include-regex",
    "exclude-regex",
    "group",
];

/// A line's severity, most severe first.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Level {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl Level {
    fn parse(word: &str) -> Option<Self> {
        Some(match word.to_ascii_lowercase().as_str() {
            "error" | "err" | "fatal" | "panic" | "crit" | "critical" | "alert" | "emerg" => {
                Level::Error
            }
            "warn" | "warning" => Level::Warn,
            "info" | "notice" => Level::Info,
            "debug" => Level::Debug,
            "trace" => Level::Trace,
            _ => return None,
        })
    }
}

/// The `skerry` driver's options, checked.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SkerryLogs {
    /// Shown as the batches' group (default `skerry`).
    pub group: String,
    /// Lines shipped per second at most (0: unlimited); `None`: the agent's default.
    pub lines_per_sec: Option<u32>,
    pub burst: Option<u32>,
    pub batch_lines: Option<usize>,
    /// Lines with a recognised level less severe than this are not shipped.
    pub min_level: Option<Level>,
    /// Only lines matching it are shipped.
    pub include_regex: Option<String>,
    /// Lines matching it are not shipped.
    pub exclude_regex: Option<String>,
}

impl SkerryLogs {
    /// The stream name the batches carry, as awslogs without a prefix names it.
    pub fn stream_name(container: &str, task_id: &str) -> String {
        format!("{container}/{task_id}")
    }
}

/// A line's level, from its first six words (`None`: none recognised).
pub fn line_level(text: &str) -> Option<Level> {
    let t = text.trim_start();
    // Syslog/systemd priority prefix: <0>..<7>.
    if let Some(rest) = t.strip_prefix('<') {
        if let Some((n, _)) = rest.split_once('>') {
            if let Ok(p) = n.parse::<u8>() {
                return Some(match p {
                    0..=3 => Level::Error,
                    4 => Level::Warn,
                    5 | 6 => Level::Info,
                    _ => Level::Debug,
                });
            }
        }
    }
    t.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(6)
        .find_map(Level::parse)
}

pub(crate) fn check(options: &BTreeMap<String, String>, at: &str, p: &mut Problems) -> SkerryLogs {
    for name in options.keys() {
        if !OPTIONS.contains(&name.as_str()) {
            p.push(
                format!("{at}.{name}"),
                format!(
                    "is not an option of the skerry log driver (it takes {})",
                    OPTIONS.join(", ")
                ),
            );
        }
    }
    let get = |name: &str| options.get(name).map(String::as_str);
    let number = |name: &str, lo: u64, hi: u64, p: &mut Problems| -> Option<u64> {
        let v = get(name)?;
        match v.parse::<u64>() {
            Ok(n) if (lo..=hi).contains(&n) => Some(n),
            _ => {
                p.push(
                    format!("{at}.{name}"),
                    format!("must be a whole number from {lo} to {hi}, got {v:?}"),
                );
                None
            }
        }
    };
    let lines_per_sec = number("lines-per-sec", 0, 100_000, p).map(|n| n as u32);
    let burst = number("burst", 1, 100_000, p).map(|n| n as u32);
    let batch_lines = number("batch-lines", 1, 5000, p).map(|n| n as usize);
    let min_level = get("min-level").and_then(|v| {
        let l = match v {
            "error" | "warn" | "info" | "debug" | "trace" => Level::parse(v),
            _ => None,
        };
        if l.is_none() {
            p.push(
                format!("{at}.min-level"),
                format!("must be one of error, warn, info, debug, trace, got {v:?}"),
            );
        }
        l
    });
    let regex = |name: &str, p: &mut Problems| -> Option<String> {
        let v = get(name)?;
        match compile_regex(v) {
            Ok(_) => Some(v.to_string()),
            Err(e) => {
                let why = e.to_string();
                let last = why.lines().last().unwrap_or("invalid").trim();
                p.push(
                    format!("{at}.{name}"),
                    format!("is not a regular expression skerry can use: {last}"),
                );
                None
            }
        }
    };
    let include_regex = regex("include-regex", p);
    let exclude_regex = regex("exclude-regex", p);
    let group = get("group").unwrap_or("skerry").to_string();
    if group.is_empty()
        || group
            .chars()
            .any(|c| !(c.is_ascii_alphanumeric() || "._-/#".contains(c)))
    {
        p.push(
            format!("{at}.group"),
            format!("has letters, digits and '.', '_', '-', '/', '#', got {group:?}"),
        );
    }
    SkerryLogs {
        group,
        lines_per_sec,
        burst,
        batch_lines,
        min_level,
        include_regex,
        exclude_regex,
    }
}

/// Which lines a container's shipping keeps: its level floor and regexes, compiled.
pub struct LineFilter {
    min_level: Option<Level>,
    include: Option<regex::Regex>,
    exclude: Option<regex::Regex>,
}

impl LineFilter {
    /// Compiles `s`'s filters (checked already by [`check`]; a pattern that no longer
    /// compiles filters nothing rather than everything).
    pub fn new(s: &SkerryLogs) -> Self {
        let compile = |v: &Option<String>| v.as_deref().and_then(|v| compile_regex(v).ok());
        Self {
            min_level: s.min_level,
            include: compile(&s.include_regex),
            exclude: compile(&s.exclude_regex),
        }
    }

    /// Whether `text` is shipped.
    pub fn ships(&self, text: &str) -> bool {
        if let (Some(min), Some(l)) = (self.min_level, line_level(text)) {
            if l > min {
                return false;
            }
        }
        if self.include.as_ref().is_some_and(|r| !r.is_match(text)) {
            return false;
        }
        !self.exclude.as_ref().is_some_and(|r| r.is_match(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(p: Problems) -> String {
        p.finish(())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    }

    fn opts(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn skerry_logs_levels_are_recognised_among_the_first_words() {
        for (line, want) in [
            ("ERROR db gone", Some(Level::Error)),
            ("2026-12-02T10:00:00Z WARN modem reset", Some(Level::Warn)),
            ("time=1 level=info msg=up", Some(Level::Info)),
            ("[DEBUG] poll", Some(Level::Debug)),
            ("{\"level\":\"trace\",\"msg\":\"x\"}", Some(Level::Trace)),
            ("<3>disk failed", Some(Level::Error)),
            ("<6>started", Some(Level::Info)),
            ("reading 21.5 C", None),
            ("a b c d e f error", None),
        ] {
            assert_eq!(line_level(line), want, "{line}");
        }
    }

    #[test]
    fn skerry_logs_filter_keeps_unlevelled_lines_and_applies_regexes() {
        let mut p = Problems::default();
        let s = check(
            &opts(&[
                ("min-level", "warn"),
                ("include-regex", "modem|sensor|db"),
                ("exclude-regex", "heartbeat"),
            ]),
            "logConfiguration.options",
            &mut p,
        );
        assert_eq!(text(p), "");
        let f = LineFilter::new(&s);
        assert!(f.ships("ERROR db gone"));
        assert!(f.ships("WARN modem reset"));
        assert!(!f.ships("INFO modem up"), "below the floor");
        assert!(f.ships("sensor 21.5 C"), "no level: shipped");
        assert!(!f.ships("ERROR disk"), "not included");
        assert!(!f.ships("WARN modem heartbeat late"), "excluded");
    }

    #[test]
    fn skerry_logs_options_are_checked_by_name() {
        let mut p = Problems::default();
        check(
            &opts(&[
                ("lines-per-sec", "-1"),
                ("burst", "0"),
                ("batch-lines", "9000"),
                ("min-level", "loud"),
                ("include-regex", "(unclosed"),
                ("exclude-regex", "a{100000}{100000}"),
                ("group", "bad group"),
                ("rate", "5"),
            ]),
            "c.logConfiguration.options",
            &mut p,
        );
        let text = text(p);
        for field in [
            "c.logConfiguration.options.lines-per-sec: must be a whole number from 0 to 100000, got \"-1\"",
            "c.logConfiguration.options.burst: must be a whole number from 1 to 100000",
            "c.logConfiguration.options.batch-lines: must be a whole number from 1 to 5000",
            "c.logConfiguration.options.min-level: must be one of error, warn, info, debug, trace, got \"loud\"",
            "c.logConfiguration.options.include-regex: is not a regular expression skerry can use",
            "c.logConfiguration.options.exclude-regex: is not a regular expression skerry can use",
            "c.logConfiguration.options.group: has letters",
            "c.logConfiguration.options.rate: is not an option of the skerry log driver",
        ] {
            assert!(text.contains(field), "{field} missing from:\n{text}");
        }
        let mut ok = Problems::default();
        let d = check(&opts(&[]), "x", &mut ok);
        assert_eq!(super::tests::text(ok), "");
        assert_eq!(
            (d.group.as_str(), d.lines_per_sec, d.min_level),
            ("skerry", None, None)
        );
    }
}
