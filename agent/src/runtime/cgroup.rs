//! cgroup facts skerry reads or cleans up itself; libcontainer creates, limits and
//! deletes each container's own cgroup. Works on v1, v2 and hybrid hosts.

use std::fs;
use std::path::{Path, PathBuf};

use libcgroups::common::{get_cgroup_setup, CgroupSetup};

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// How many times the cgroup's OOM killer fired (0 when unknown).
pub fn oom_kill_count(cgroup_path: &str) -> u64 {
    let rel = cgroup_path.trim_start_matches('/');
    let (file, key) = match get_cgroup_setup() {
        Ok(CgroupSetup::Unified) => (
            Path::new(CGROUP_ROOT).join(rel).join("memory.events"),
            "oom_kill",
        ),
        _ => (
            Path::new(CGROUP_ROOT)
                .join("memory")
                .join(rel)
                .join("memory.oom_control"),
            "oom_kill",
        ),
    };
    fs::read_to_string(file)
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix(key).and_then(|v| v.trim().parse().ok()))
        })
        .unwrap_or(0)
}

/// Every directory of `/skerry/<task_id>` (or deeper) across all mounted hierarchies.
pub fn task_cgroup_dirs(task_id: &str) -> Vec<PathBuf> {
    let mut roots = vec![PathBuf::from(CGROUP_ROOT)];
    if let Ok(entries) = fs::read_dir(CGROUP_ROOT) {
        roots.extend(entries.flatten().map(|e| e.path()));
    }
    roots
        .into_iter()
        .map(|r| r.join("skerry").join(task_id))
        .filter(|p| p.is_dir())
        .collect()
}

/// Removes what is left of a task's cgroups (empty directories only: a cgroup with
/// processes cannot be removed, and that is reported). The kernel may need a moment
/// after the last process exits before a cgroup can go (EBUSY/ENOTEMPTY): retried
/// for up to about a second.
pub fn remove_task_cgroups(task_id: &str) -> Result<(), String> {
    let mut failures = Vec::new();
    for attempt in 0..50 {
        failures.clear();
        for dir in task_cgroup_dirs(task_id) {
            remove_tree(&dir, &mut failures);
        }
        if failures.is_empty() {
            return Ok(());
        }
        if attempt < 49 {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
    Err(failures.join("; "))
}

fn remove_tree(dir: &Path, failures: &mut Vec<String>) {
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                remove_tree(&e.path(), failures);
            }
        }
    }
    if let Err(e) = fs::remove_dir(dir) {
        if e.kind() != std::io::ErrorKind::NotFound {
            failures.push(format!("{}: {e}", dir.display()));
        }
    }
}
