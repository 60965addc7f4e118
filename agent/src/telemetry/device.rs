//! The device's figures from `/proc` and `statvfs`: load, memory, the state
//! directory's disk, uptime, and the agent's own RSS and CPU time.

use std::fs;
use std::path::Path;

use skerry_core::telemetry::DeviceMetrics;

fn meminfo(text: &str, k: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(k)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Samples the device now; missing files read as 0.
pub fn sample(state_dir: &Path) -> DeviceMetrics {
    let load1_milli = fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0, |l| (l * 1000.0) as u64);
    let mem = fs::read_to_string("/proc/meminfo").unwrap_or_default();
    // The casts matter on 32-bit targets (armv7), where these are u32.
    #[allow(clippy::unnecessary_cast)]
    let (free, total) = nix::sys::statvfs::statvfs(state_dir)
        .map(|s| {
            let f = s.fragment_size() as u64;
            (s.blocks_available() as u64 * f, s.blocks() as u64 * f)
        })
        .unwrap_or((0, 0));
    let uptime_secs = fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0, |u| u as u64);
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    DeviceMetrics {
        load1_milli,
        memory_total_bytes: meminfo(&mem, "MemTotal"),
        memory_available_bytes: meminfo(&mem, "MemAvailable"),
        state_disk_free_bytes: free,
        state_disk_total_bytes: total,
        uptime_secs,
        agent_rss_bytes: meminfo(&status, "VmRSS"),
        agent_cpu_ms: self_cpu_ms(),
        telemetry_dropped: 0,
    }
}

/// utime + stime of this process, in ms.
pub fn self_cpu_ms() -> u64 {
    let stat = fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map_or("", |r| r.1);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .filter(|h| *h > 0)
        .map_or(100, |h| h as u64);
    (ticks(11) + ticks(12)) * 1000 / hz
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_sample_reads_this_machine() {
        let d = sample(Path::new("/"));
        assert!(d.memory_total_bytes > 0 && d.memory_available_bytes <= d.memory_total_bytes);
        assert!(
            d.state_disk_total_bytes >= d.state_disk_free_bytes && d.state_disk_total_bytes > 0
        );
        assert!(d.uptime_secs > 0 && d.agent_rss_bytes > 0);
        assert_eq!(meminfo("MemTotal:  2048 kB\n", "MemTotal"), 2048 * 1024);
    }
}
