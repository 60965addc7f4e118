//! Between two publishes: the CPU rate from cumulative counters and the memory peak.
//! Samples come in with their monotonic time; [`Aggregate::close`] ends the period.

/// One container's raw cumulative sample.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sample {
    pub at_ms: u64,
    pub cpu_total_ns: u64,
    pub memory_bytes: u64,
}

/// A container's period so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Aggregate {
    start: Option<Sample>,
    last: Option<Sample>,
    peak: u64,
}

/// What a closed period yields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    /// Mean CPU in thousandths of a core.
    pub cpu_millis: u64,
    pub memory_peak_bytes: u64,
}

impl Aggregate {
    pub fn add(&mut self, s: Sample) {
        if self.start.is_none() {
            self.start = Some(s);
        }
        // A counter that went back (the container restarted, a new cgroup) starts over.
        if self.last.is_some_and(|l| s.cpu_total_ns < l.cpu_total_ns) {
            self.start = Some(s);
        }
        self.last = Some(s);
        self.peak = self.peak.max(s.memory_bytes);
    }

    /// Ends the period; the last sample starts the next one.
    pub fn close(&mut self) -> Period {
        let cpu_millis = match (self.start, self.last) {
            (Some(a), Some(b)) if b.at_ms > a.at_ms => {
                let ns = b.cpu_total_ns.saturating_sub(a.cpu_total_ns);
                let wall_ns = (b.at_ms - a.at_ms) * 1_000_000;
                ns.saturating_mul(1000) / wall_ns
            }
            _ => 0,
        };
        let p = Period {
            cpu_millis,
            memory_peak_bytes: self.peak,
        };
        self.start = self.last;
        self.peak = self.last.map_or(0, |l| l.memory_bytes);
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(at_ms: u64, cpu_ms: u64, mem: u64) -> Sample {
        Sample {
            at_ms,
            cpu_total_ns: cpu_ms * 1_000_000,
            memory_bytes: mem,
        }
    }

    #[test]
    fn aggregate_cpu_rate_and_peak() {
        let mut a = Aggregate::default();
        a.add(s(0, 0, 10));
        a.add(s(1000, 500, 50));
        a.add(s(2000, 1000, 20));
        let p = a.close();
        assert_eq!(p.cpu_millis, 500);
        assert_eq!(p.memory_peak_bytes, 50);
        a.add(s(3000, 3000, 30));
        let p = a.close();
        assert_eq!(p.cpu_millis, 2000, "two cores busy");
        assert_eq!(p.memory_peak_bytes, 30);
    }

    #[test]
    fn aggregate_counter_reset_starts_over() {
        let mut a = Aggregate::default();
        a.add(s(0, 5000, 1));
        a.add(s(1000, 10, 1));
        a.add(s(2000, 260, 1));
        assert_eq!(a.close().cpu_millis, 250);
        assert_eq!(Aggregate::default().close().cpu_millis, 0);
    }
}
