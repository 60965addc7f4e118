//! Published ports of running bridged containers (ECS `networkBindings`): read from
//! each task's `network.json` (written once, when its network is set up, before any
//! container starts), announced once per container start as a report, and handed to
//! the reported state. Host and none networking publish nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use skerry_core::reconcile::{ContainerState, Observed, TaskId};

use crate::net::tasknet::{Binding, TaskNet};
use crate::report::PortsPublished;

/// The ports tracker.
pub struct Ports {
    tasks_dir: PathBuf,
    /// Each task's network file once it exists (`None`: not written, or host/none).
    nets: BTreeMap<TaskId, Option<TaskNet>>,
    /// Container runs already announced: (task, container, init pid).
    announced: BTreeSet<(TaskId, String, u32)>,
}

impl Ports {
    pub fn new(tasks_dir: PathBuf) -> Self {
        Self {
            tasks_dir,
            nets: BTreeMap::new(),
            announced: BTreeSet::new(),
        }
    }

    /// Follows `observed`: forgets tasks that are gone and returns the bindings of
    /// each container run not announced before (once per start).
    pub fn refresh(&mut self, observed: &Observed) -> Vec<PortsPublished> {
        self.nets.retain(|id, _| observed.tasks.contains_key(id));
        self.announced
            .retain(|(id, _, _)| observed.tasks.contains_key(id));
        let mut fresh = Vec::new();
        for (id, t) in &observed.tasks {
            for c in &t.containers {
                let ContainerState::Running { pid, .. } = c.state else {
                    continue;
                };
                let key = (id.clone(), c.name.clone(), pid);
                if self.announced.contains(&key) {
                    continue;
                }
                let bindings = self.bindings(id, &c.name);
                self.announced.insert(key);
                if !bindings.is_empty() {
                    fresh.push(PortsPublished {
                        task: id.clone(),
                        container: c.name.clone(),
                        bindings,
                    });
                }
            }
        }
        fresh
    }

    /// A running container's published ports as last read by [`refresh`](Self::refresh)
    /// (empty for host and none networking).
    pub fn of(&self, task: &TaskId, container: &str) -> Vec<Binding> {
        self.nets
            .get(task)
            .and_then(Option::as_ref)
            .and_then(|n| n.container(container))
            .map(|c| c.bindings.clone())
            .unwrap_or_default()
    }

    fn bindings(&mut self, task: &TaskId, container: &str) -> Vec<Binding> {
        let dir = self.tasks_dir.join(&task.0);
        let net = self.nets.entry(task.clone()).or_insert(None);
        if net.is_none() {
            *net = TaskNet::load(&dir).ok().flatten();
        }
        net.as_ref()
            .and_then(|n| n.container(container))
            .map(|c| c.bindings.clone())
            .unwrap_or_default()
    }
}
