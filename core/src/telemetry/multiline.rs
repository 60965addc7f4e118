//! Grouping of log lines into events, as Docker's awslogs driver does for
//! `awslogs-multiline-pattern` and `awslogs-datetime-format`: a line that matches the
//! pattern starts a new event, one that does not continues the open event (a stack
//! trace under its first line). An event is also closed once it is older than the
//! flush interval (`awslogs-force-flush-interval-seconds`, default 5 s) or would pass
//! CloudWatch's event size, so the next line starts a new one.
//!
//! The decision runs on the lines' own timestamps (the monitor's), not on the clock:
//! re-reading the same lines after an agent restart groups them the same way.
//! Lines stay lines on the wire (numbering and the cursor are per line); a batch
//! marks the ones that continue the line before them ([`super::LogLines::Grouped`]).

use regex::Regex;

/// Docker's awslogs default for `awslogs-force-flush-interval-seconds`.
pub const DEFAULT_FLUSH_SECS: u64 = 5;

/// CloudWatch's largest event (262,144 bytes less its 26 bytes of overhead), the
/// bound Docker's driver splits at.
pub const MAX_EVENT_BYTES: usize = 262_144 - 26;

/// The regular expression `awslogs-datetime-format` stands for: each strftime
/// sequence replaced by a pattern for its field, as Docker's driver converts it
/// (a sequence it does not know stands for nothing; other text is kept as written,
/// so it is a regular expression too).
pub fn datetime_pattern(format: &str) -> String {
    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let Some(spec) = chars.next() else {
            out.push('%');
            break;
        };
        out.push_str(match spec {
            'a' => "(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)",
            'A' => "(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)",
            'w' => "[0-6]",
            'd' => "(?:0[1-9]|[1,2][0-9]|3[0,1])",
            'b' => "(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)",
            'B' => "(?:January|February|March|April|May|June|July|August|September|October|November|December)",
            'm' => "(?:0[1-9]|1[0-2])",
            'Y' => r"\d{4}",
            'y' => r"\d{2}",
            'H' => "(?:[0,1][0-9]|2[0-3])",
            'I' => "(?:0[0-9]|1[0-2])",
            'p' => "[A,P]M",
            'M' => "[0-5][0-9]",
            'S' => "[0-5][0-9]",
            'f' => r"\d{6}",
            'z' => r"[+-]\d{4}",
            'Z' => "[A-Z]{1,4}T",
            'j' => "(?:0[0-9][1-9]|[1,2][0-9][0-9]|3[0-5][0-9]|36[0-6])",
            'L' => r"\.\d{3}",
            _ => "",
        });
    }
    out
}

/// Decides, line by line, which lines continue the open event.
#[derive(Debug, Clone)]
pub struct EventGrouper {
    start: Regex,
    flush_ms: u64,
    /// The open event: its first line's time and its size so far.
    open: Option<(u64, usize)>,
}

impl EventGrouper {
    /// A grouper for a checked `event_start` pattern ([`crate::spec::AwsLogs`]), with
    /// the size limit the task definition's check compiled it with.
    pub fn from_pattern(pattern: &str, flush_secs: u64) -> Result<Self, regex::Error> {
        Ok(Self::new(crate::spec::compile_regex(pattern)?, flush_secs))
    }

    pub fn new(start: Regex, flush_secs: u64) -> Self {
        Self {
            start,
            flush_ms: flush_secs.saturating_mul(1000),
            open: None,
        }
    }

    /// Whether the line written at `at_ms` joins the open event (else it starts one).
    pub fn continues(&mut self, at_ms: u64, text: &str) -> bool {
        if !self.start.is_match(text) {
            if let Some((started, bytes)) = self.open.as_mut() {
                let fresh = at_ms.saturating_sub(*started) < self.flush_ms;
                if fresh && *bytes + 1 + text.len() <= MAX_EVENT_BYTES {
                    *bytes += 1 + text.len();
                    return true;
                }
            }
        }
        self.open = Some((at_ms, text.len()));
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grouper(pattern: &str) -> EventGrouper {
        EventGrouper::new(Regex::new(pattern).unwrap(), DEFAULT_FLUSH_SECS)
    }

    #[test]
    fn multiline_a_stack_trace_joins_the_line_that_starts_it() {
        let mut g = grouper("^INFO|^ERROR");
        let lines = [
            "INFO started",
            "ERROR boom",
            "  at a.b(c.java:1)",
            "  at d.e(f.java:2)",
            "INFO next",
        ];
        let got: Vec<bool> = lines.iter().map(|l| g.continues(1000, l)).collect();
        assert_eq!(got, [false, false, true, true, false]);
    }

    #[test]
    fn multiline_the_first_line_starts_an_event_whatever_it_says() {
        let mut g = grouper("^INFO");
        assert!(!g.continues(0, "  orphan continuation"));
        assert!(g.continues(0, "  and its follower"));
    }

    #[test]
    fn multiline_an_event_older_than_the_flush_interval_is_closed() {
        let mut g = grouper("^START");
        assert!(!g.continues(10_000, "START"));
        assert!(g.continues(14_999, "late but in time"));
        assert!(!g.continues(15_000, "too late: a new event"));
        assert!(g.continues(15_001, "joins the new one"));
    }

    #[test]
    fn multiline_an_event_never_passes_cloudwatchs_size() {
        let mut g = grouper("^START");
        let big = "x".repeat(100_000);
        assert!(!g.continues(0, "START"));
        assert!(g.continues(0, &big));
        assert!(g.continues(0, &big));
        assert!(!g.continues(0, &big), "a third would pass 256 KiB");
    }

    #[test]
    fn multiline_datetime_format_converts_as_dockers_driver_does() {
        let p = datetime_pattern("%Y-%m-%d %H:%M:%S");
        let re = Regex::new(&p).unwrap();
        assert!(re.is_match("2026-12-02 17:30:59 worker up"));
        assert!(!re.is_match("    at com.example.Main(Main.java:3)"));
        let p = datetime_pattern("[%b %d, %Y %I:%M:%S %p]");
        assert_eq!(
            p,
            "[(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) (?:0[1-9]|[1,2][0-9]|3[0,1]), \\d{4} (?:0[0-9]|1[0-2]):[0-5][0-9]:[0-5][0-9] [A,P]M]"
        );
        assert_eq!(
            datetime_pattern("%Q%"),
            "%",
            "unknown sequences stand for nothing"
        );
    }
}
