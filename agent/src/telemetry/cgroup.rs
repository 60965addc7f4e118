//! One container's cgroup figures, read from the files the kernel exports, on v2
//! (unified) and v1 (and hybrid: v1 controllers). libcgroups' `stats()` reads the
//! same files but needs a manager per call and returns no OOM-kill count on v1;
//! reading ~6 small files directly costs no dependency (see docs/design.md D28).

use std::fs;
use std::path::{Path, PathBuf};

use libcgroups::common::{get_cgroup_setup, CgroupSetup};

const ROOT: &str = "/sys/fs/cgroup";

/// Raw cumulative figures; `None` when the cgroup is gone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CgroupStats {
    pub cpu_total_ns: u64,
    pub throttled_periods: u64,
    pub throttled_ns: u64,
    pub memory_bytes: u64,
    pub memory_limit_bytes: Option<u64>,
    pub oom_kills: u64,
    pub pids: u64,
}

fn read(p: PathBuf) -> Option<String> {
    fs::read_to_string(p).ok()
}

fn num(p: PathBuf) -> Option<u64> {
    read(p)?.trim().parse().ok()
}

fn key(text: &str, k: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (name, v) = l.split_once(' ')?;
        (name == k).then(|| v.trim().parse().ok()).flatten()
    })
}

/// Whether the host is cgroup v2 only.
pub fn unified() -> bool {
    matches!(get_cgroup_setup(), Ok(CgroupSetup::Unified))
}

/// Reads the figures of `cgroup_path` (as given to libcontainer, absolute).
pub fn read_stats(cgroup_path: &str, unified: bool) -> Option<CgroupStats> {
    let rel = cgroup_path.trim_start_matches('/');
    if unified {
        read_v2(&Path::new(ROOT).join(rel))
    } else {
        read_v1(rel)
    }
}

fn read_v2(dir: &Path) -> Option<CgroupStats> {
    let cpu = read(dir.join("cpu.stat"))?;
    let limit = read(dir.join("memory.max")).and_then(|t| t.trim().parse().ok());
    Some(CgroupStats {
        cpu_total_ns: key(&cpu, "usage_usec").unwrap_or(0) * 1000,
        throttled_periods: key(&cpu, "nr_throttled").unwrap_or(0),
        throttled_ns: key(&cpu, "throttled_usec").unwrap_or(0) * 1000,
        memory_bytes: num(dir.join("memory.current")).unwrap_or(0),
        memory_limit_bytes: limit,
        oom_kills: read(dir.join("memory.events"))
            .and_then(|t| key(&t, "oom_kill"))
            .unwrap_or(0),
        pids: num(dir.join("pids.current")).unwrap_or(0),
    })
}

fn read_v1(rel: &str) -> Option<CgroupStats> {
    let c = |ctl: &str, file: &str| Path::new(ROOT).join(ctl).join(rel).join(file);
    let memory_bytes = num(c("memory", "memory.usage_in_bytes"))?;
    let cpu = read(c("cpu", "cpu.stat")).unwrap_or_default();
    // v1 reports "unlimited" as a huge page-rounded number.
    let limit = num(c("memory", "memory.limit_in_bytes")).filter(|l| *l < (1u64 << 62));
    Some(CgroupStats {
        cpu_total_ns: num(c("cpuacct", "cpuacct.usage")).unwrap_or(0),
        throttled_periods: key(&cpu, "nr_throttled").unwrap_or(0),
        throttled_ns: key(&cpu, "throttled_time").unwrap_or(0),
        memory_bytes,
        memory_limit_bytes: limit,
        oom_kills: read(c("memory", "memory.oom_control"))
            .and_then(|t| key(&t, "oom_kill"))
            .unwrap_or(0),
        pids: num(c("pids", "pids.current")).unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_key_lines() {
        let t = "usage_usec 1500\nnr_throttled 3\nthrottled_usec 20\n";
        assert_eq!(key(t, "usage_usec"), Some(1500));
        assert_eq!(key(t, "nr_throttled"), Some(3));
        assert_eq!(key(t, "nr_periods"), None);
    }

    #[test]
    fn cgroup_of_this_process_reads() {
        // The agent's own cgroup: some controller files must read on any host.
        let text = fs::read_to_string("/proc/self/cgroup").unwrap();
        let u = unified();
        let path = text
            .lines()
            .find_map(|l| {
                let mut f = l.splitn(3, ':');
                let (_, ctl, p) = (f.next()?, f.next()?, f.next()?);
                let want = if u {
                    ctl.is_empty()
                } else {
                    ctl.split(',').any(|c| c == "memory")
                };
                want.then(|| p.to_string())
            })
            .unwrap();
        let s = read_stats(&path, u).expect("own cgroup readable");
        assert!(s.memory_bytes > 0, "{s:?}");
    }
}
