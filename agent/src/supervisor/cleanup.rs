//! Leftovers of half-done operations, removed on start after re-adoption:
//! - task directories the agent owns (or with no `task.json`) that no task record
//!   knows (e.g. the state fell back to its previous copy): containers stopped or
//!   reaped, rootfs unmounted, cgroups and directory removed;
//! - container directories of known tasks that the definition does not name, or that
//!   were prepared but never started while the record says pending;
//! - libcontainer state directories whose task directory is gone, or whose container
//!   is not running (older than a minute: a start may be under way);
//! - empty cgroups `/sys/fs/cgroup/*/<cgroup parent>/<task>` of tasks with no
//!   directory here, untouched for five minutes (each state directory has its own
//!   parent, `StateLayout::cgroup_parent`; tasks of `skerry run` hold processes, or
//!   are younger, and are left alone).
//!
//! - bridge networking of tasks with no record: namespace files, veths, address
//!   and port claims; skerry's nf_tables table is rebuilt from the records.
//!
//! Tasks of a live `skerry run` are never touched.

use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime};

use skerry_core::reconcile::{ContainerState as Rec, Observed, TaskId};

use super::ops::delete_task;
use crate::images::ImageStore;
use crate::runtime::cgroup::{remove_task_cgroups, task_cgroup_dirs};
use crate::runtime::{ContainerState, Runtime};
use crate::task::{list_tasks, Owner, TaskRecord};

/// Removes leftovers; returns how many things were removed.
pub fn remove_leftovers(rt: &Runtime, images: &ImageStore, observed: &Observed) -> usize {
    let layout = rt.layout().clone();
    let mut removed = 0;
    for id in list_tasks(&layout) {
        let known = observed.tasks.get(&TaskId::from(id.as_str()));
        if known.is_none() {
            match TaskRecord::load(&layout, &id) {
                Ok(Some(r)) if matches!(r.owner, Owner::Run { .. }) => continue,
                _ => {}
            }
            tracing::warn!(task = %id, "leftover task directory: removing");
            if let Err(e) = delete_task(rt, images, &id) {
                tracing::error!(task = %id, error = %e, "removing leftover task failed");
            }
            removed += 1;
            continue;
        }
        let Some(t) = known else { continue };
        let dir = layout.task(&id).join("containers");
        for e in fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let rec = t.containers.iter().find(|c| c.name == name);
            let stray = match rec {
                None => true,
                Some(c) => {
                    matches!(c.state, Rec::Pending)
                        && rt.state(&id, &name) == ContainerState::NotStarted
                }
            };
            if !stray {
                continue;
            }
            tracing::warn!(task = %id, container = %name, "half-done container directory: removing");
            if matches!(rt.state(&id, &name), ContainerState::Running { .. }) {
                let _ = rt.stop(&id, &name, Duration::from_secs(10));
            }
            if let Err(e) = rt.remove(images, &id, &name) {
                tracing::error!(task = %id, container = %name, error = %e, "removing failed");
            }
            removed += 1;
        }
    }
    removed + stale_libcontainer_dirs(rt) + orphan_cgroups(rt) + rt.bridge().sweep()
}

fn stale_libcontainer_dirs(rt: &Runtime) -> usize {
    let layout = rt.layout();
    let mut removed = 0;
    for e in fs::read_dir(layout.libcontainer())
        .into_iter()
        .flatten()
        .flatten()
    {
        let id = e.file_name().to_string_lossy().into_owned();
        let Some((task, name)) = id.rsplit_once('.') else {
            continue;
        };
        let gone = !layout.task(task).exists();
        let idle = !matches!(rt.state(task, name), ContainerState::Running { .. })
            && older_than(&e.path(), Duration::from_secs(60));
        if gone || idle {
            tracing::warn!(container = %id, "stale libcontainer state: removing");
            if !gone {
                let _ = rt.reap(task, name);
            }
            if e.path().exists() && fs::remove_dir_all(e.path()).is_ok() {
                removed += 1;
            }
        }
    }
    removed
}

fn orphan_cgroups(rt: &Runtime) -> usize {
    let parent = rt.layout().cgroup_parent();
    let mut tasks = std::collections::BTreeSet::new();
    for root in fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        let base = root.path().join(&parent);
        for e in fs::read_dir(&base).into_iter().flatten().flatten() {
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            tasks.insert(e.file_name().to_string_lossy().into_owned());
        }
    }
    let mut removed = 0;
    for task in tasks {
        if rt.layout().task(&task).exists() {
            continue;
        }
        let dirs = task_cgroup_dirs(&parent, &task);
        if dirs.iter().all(|d| older_than(d, Duration::from_secs(300)))
            && remove_task_cgroups(&parent, &task).is_ok()
        {
            tracing::warn!(task = %task, "orphaned cgroups removed");
            removed += 1;
        }
    }
    removed
}

fn older_than(path: &Path, age: Duration) -> bool {
    fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .is_some_and(|d| d >= age)
}
