//! Container ordering inside a task (`dependsOn`) and the features this build's task
//! runner executes; the spec parser already refused cycles and unknown names.

use skerry_core::spec::{DependencyCondition, HealthCommand, TaskDefinition};

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

/// Refuses task-definition features that parse but that this build's task runner does
/// not execute yet, naming the field: nothing is silently ignored.
pub fn check_supported(task: &TaskDefinition) -> Result<(), Vec<String>> {
    let mut problems = Vec::new();
    for (i, c) in task.containers.iter().enumerate() {
        if c.health_check
            .as_ref()
            .is_some_and(|h| h.command != HealthCommand::None)
        {
            problems.push(format!("containerDefinitions[{i}].healthCheck: health checks are not supported by this build yet"));
        }
        if c.restart_policy.as_ref().is_some_and(|r| r.enabled) {
            problems.push(format!("containerDefinitions[{i}].restartPolicy: in-place restarts are not supported by this build yet"));
        }
        for (j, d) in c.depends_on.iter().enumerate() {
            if d.condition == DependencyCondition::Healthy {
                problems.push(format!("containerDefinitions[{i}].dependsOn[{j}].condition: HEALTHY needs health checks, not supported by this build yet"));
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}
