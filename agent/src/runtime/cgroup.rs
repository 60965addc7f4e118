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

/// Every directory of `/<parent>/<task_id>` across all mounted hierarchies (`parent`
/// is the agent's cgroup parent, [`StateLayout::cgroup_parent`]).
///
/// [`StateLayout::cgroup_parent`]: crate::store::StateLayout::cgroup_parent
pub fn task_cgroup_dirs(parent: &str, task_id: &str) -> Vec<PathBuf> {
    let mut roots = vec![PathBuf::from(CGROUP_ROOT)];
    if let Ok(entries) = fs::read_dir(CGROUP_ROOT) {
        roots.extend(entries.flatten().map(|e| e.path()));
    }
    roots
        .into_iter()
        .map(|r| r.join(parent).join(task_id))
        .filter(|p| p.is_dir())
        .collect()
}

/// Removes what is left of a task's cgroups (empty directories only: a cgroup with
/// processes cannot be removed, and that is reported). The kernel may need a moment
/// after the last process exits before a cgroup can go (EBUSY/ENOTEMPTY): retried
/// for up to about a second.
pub fn remove_task_cgroups(parent: &str, task_id: &str) -> Result<(), String> {
    let mut failures = Vec::new();
    for attempt in 0..50 {
        failures.clear();
        for dir in task_cgroup_dirs(parent, task_id) {
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

/// Applies the task-level `memory` (hard MiB) and `cpu` (units) of a task definition to
/// the task's parent cgroup `/<parent>/<task_id>`, which holds every container's cgroup:
/// the kernel then caps the task as a whole, as ECS does. Idempotent.
pub fn apply_task_limits(
    parent: &str,
    task_id: &str,
    memory_mib: Option<u64>,
    cpu_units: Option<u32>,
) -> Result<(), String> {
    if memory_mib.is_none() && cpu_units.is_none() {
        return Ok(());
    }
    let write = |path: PathBuf, value: String| -> Result<(), String> {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        fs::write(&path, &value).map_err(|e| format!("{}: writing {value}: {e}", path.display()))
    };
    let root = Path::new(CGROUP_ROOT);
    match get_cgroup_setup() {
        Ok(CgroupSetup::Unified) => {
            let mut controllers = Vec::new();
            if memory_mib.is_some() {
                controllers.push("+memory");
            }
            if cpu_units.is_some() {
                controllers.push("+cpu");
            }
            for c in &controllers {
                // Enable the controllers down to the task's cgroup (root → parent → task).
                for dir in [root.to_path_buf(), root.join(parent)] {
                    fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
                    write(dir.join("cgroup.subtree_control"), (*c).to_string())?;
                }
            }
            let task = root.join(parent).join(task_id);
            fs::create_dir_all(&task).map_err(|e| format!("{}: {e}", task.display()))?;
            for c in &controllers {
                write(task.join("cgroup.subtree_control"), (*c).to_string())?;
            }
            if let Some(m) = memory_mib {
                write(task.join("memory.max"), (m << 20).to_string())?;
            }
            if let Some(cpu) = cpu_units {
                write(task.join("cpu.weight"), shares_to_weight(cpu).to_string())?;
            }
        }
        _ => {
            if let Some(m) = memory_mib {
                write(
                    root.join("memory")
                        .join(parent)
                        .join(task_id)
                        .join("memory.limit_in_bytes"),
                    (m << 20).to_string(),
                )?;
            }
            if let Some(cpu) = cpu_units {
                write(
                    root.join("cpu")
                        .join(parent)
                        .join(task_id)
                        .join("cpu.shares"),
                    cpu.max(2).to_string(),
                )?;
            }
        }
    }
    Ok(())
}

/// cgroup v1 cpu.shares (2..=262144) to v2 cpu.weight (1..=10000), as runc converts.
fn shares_to_weight(shares: u32) -> u64 {
    let shares = u64::from(shares.clamp(2, 262_144));
    1 + ((shares - 2) * 9999) / 262_142
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_shares_to_weight_matches_runc() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
    }
}
