//! `volumesFrom`: a container gets the mount points of another container of the same
//! task, as Docker's `--volumes-from` does: the source's own `mountPoints` and, in
//! turn, what the source gets through its own `volumesFrom`. `readOnly` makes every
//! one of them read-only; otherwise each keeps the source's mode. A container's own
//! `mountPoints` win over an inherited mount of the same path. Sources must be other
//! containers of the task, and the references must not form a cycle.

use std::collections::BTreeSet;

use super::ecs::RawVolumesFrom;
use super::error::Problems;
use super::model::{ContainerDefinition, MountPoint, TaskDefinition, VolumesFrom};

/// Parses one container's `volumesFrom` list (references are checked task-wide).
pub(crate) fn parse(raw: &[RawVolumesFrom], at: &str, p: &mut Problems) -> Vec<VolumesFrom> {
    raw.iter()
        .enumerate()
        .map(|(i, v)| {
            if v.source_container.is_none() {
                p.push(format!("{at}[{i}].sourceContainer"), "is required");
            }
            VolumesFrom {
                source_container: v.source_container.clone().unwrap_or_default(),
                read_only: v.read_only.unwrap_or(false),
            }
        })
        .collect()
}

/// Every `sourceContainer` names another container of the task; no cycles.
pub(crate) fn check_graph(containers: &[ContainerDefinition], p: &mut Problems) {
    for (i, c) in containers.iter().enumerate() {
        for (j, v) in c.volumes_from.iter().enumerate() {
            let at = format!("containerDefinitions[{i}].volumesFrom[{j}].sourceContainer");
            let name = &v.source_container;
            if name.is_empty() {
                continue;
            }
            if *name == c.name {
                p.push(at, "a container cannot take volumes from itself");
            } else if !containers.iter().any(|o| o.name == *name) {
                p.push(at, format!("no container named {name:?} in the task"));
            } else if reaches(containers, name, &c.name) {
                p.push(
                    at,
                    format!("{name:?} takes volumes from {:?} in turn: volumesFrom must not form a cycle", c.name),
                );
            }
        }
    }
}

/// Whether `from` reaches `target` by following volumesFrom.
fn reaches(containers: &[ContainerDefinition], from: &str, target: &str) -> bool {
    let mut seen = BTreeSet::new();
    let mut stack = vec![from.to_string()];
    while let Some(name) = stack.pop() {
        if name == target {
            return true;
        }
        if !seen.insert(name.clone()) {
            continue;
        }
        if let Some(c) = containers.iter().find(|c| c.name == name) {
            stack.extend(c.volumes_from.iter().map(|v| v.source_container.clone()));
        }
    }
    false
}

impl TaskDefinition {
    /// The mounts of `c`: its own `mountPoints`, then those it gets through
    /// `volumesFrom` (depth first, in order; a path already mounted is skipped).
    pub fn mounts_of(&self, c: &ContainerDefinition) -> Vec<MountPoint> {
        let mut out = c.mount_points.clone();
        let mut visited = BTreeSet::from([c.name.clone()]);
        self.inherit(c, false, &mut visited, &mut out);
        out
    }

    fn inherit(
        &self,
        c: &ContainerDefinition,
        read_only: bool,
        visited: &mut BTreeSet<String>,
        out: &mut Vec<MountPoint>,
    ) {
        for v in &c.volumes_from {
            let Some(source) = self.container(&v.source_container) else {
                continue;
            };
            if !visited.insert(source.name.clone()) {
                continue;
            }
            let read_only = read_only || v.read_only;
            for mp in &source.mount_points {
                let path = mp.container_path.trim_end_matches('/');
                if !out
                    .iter()
                    .any(|o| o.container_path.trim_end_matches('/') == path)
                {
                    out.push(MountPoint {
                        read_only: mp.read_only || read_only,
                        ..mp.clone()
                    });
                }
            }
            self.inherit(source, read_only, visited, out);
        }
    }
}
