//! Stopping a whole task outside the reconciler (`skerry stop`): containers stop in
//! reverse `dependsOn` order, each within its own stopTimeout. Starting is the
//! reconciler's job (agent and `skerry run` alike).

use super::order::start_order;
use super::record::TaskRecord;
use crate::runtime::{ContainerState, Runtime};

/// Stops every running container, dependents first, each within its stopTimeout.
/// Returns the final states.
pub fn stop_task(runtime: &Runtime, rec: &TaskRecord) -> Vec<(String, ContainerState)> {
    let def = &rec.definition;
    let mut order = start_order(def);
    order.reverse();
    for name in &order {
        let Some(c) = def.container(name) else {
            continue;
        };
        if let ContainerState::Running { .. } | ContainerState::Lost =
            runtime.state(&rec.task_id, name)
        {
            if let Err(e) = runtime.stop(&rec.task_id, name, c.stop_timeout) {
                tracing::warn!(task = %rec.task_id, container = %name, error = %e, "stopping container failed");
            }
        }
    }
    task_states(runtime, rec)
}

/// The state of each container of the task, in definition order.
pub fn task_states(runtime: &Runtime, rec: &TaskRecord) -> Vec<(String, ContainerState)> {
    rec.definition
        .containers
        .iter()
        .map(|c| (c.name.clone(), runtime.state(&rec.task_id, &c.name)))
        .collect()
}
