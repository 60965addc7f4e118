//! Container ordering inside a task (`dependsOn`); the spec parser already refused
//! cycles and unknown names.

use skerry_core::spec::TaskDefinition;

/// Container names in an order where every dependency comes before its dependents
/// (stable: definition order among independent containers).
pub fn start_order(task: &TaskDefinition) -> Vec<String> {
    let mut done: Vec<String> = Vec::with_capacity(task.containers.len());
    while done.len() < task.containers.len() {
        let before = done.len();
        for c in &task.containers {
            if done.contains(&c.name) {
                continue;
            }
            if c.depends_on.iter().all(|d| done.contains(&d.container)) {
                done.push(c.name.clone());
            }
        }
        if done.len() == before {
            // A cycle (the parser refuses these): append the rest in definition order.
            for c in &task.containers {
                if !done.contains(&c.name) {
                    done.push(c.name.clone());
                }
            }
        }
    }
    done
}
