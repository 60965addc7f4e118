//! `dependsOn`: when a container may start, when waiting for a dependency has
//! failed, and in which order a task's containers stop.
//!
//! Conditions: START (the dependency has started), COMPLETE (it exited), SUCCESS (it
//! exited with 0), HEALTHY (its health check passed). For the last three, the
//! dependency's `startTimeout` runs from its start (as the ECS agent does): past it,
//! or once the condition can no longer hold, the dependent gives up and the task
//! fails with a reason naming both. Stopping runs the graph backwards: a container
//! stops only when nothing that depends on it runs.

use embassy_time::Instant;

use super::observed::{ContainerState, HealthStatus, TaskRecord};
use super::time::{after, from_std};
use crate::spec::DependencyCondition;

/// May container `i` start?
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Gate {
    /// Every condition holds.
    Open,
    /// Some condition may still hold; give up at the deadline, if any.
    Wait(Option<Instant>),
    /// A condition cannot hold: ECS `stoppedReason` for the task.
    Fail(String),
}

fn cond_name(c: DependencyCondition) -> &'static str {
    match c {
        DependencyCondition::Start => "START",
        DependencyCondition::Complete => "COMPLETE",
        DependencyCondition::Success => "SUCCESS",
        DependencyCondition::Healthy => "HEALTHY",
    }
}

/// Evaluates the `dependsOn` of the container at index `i` at `now`.
pub(super) fn gate(task: &TaskRecord, i: usize, now: Instant) -> Gate {
    let Some(def) = task.definition.containers.get(i) else {
        return Gate::Wait(None);
    };
    let mut deadline: Option<Instant> = None;
    let mut waiting = false;
    for dep in &def.depends_on {
        let Some((dep_def, rec)) = task.container(&dep.container) else {
            return Gate::Fail(format!(
                "Container {} depends on unknown container {}",
                def.name, dep.container
            ));
        };
        let exited = match rec.state {
            ContainerState::Exited { code, .. } => Some(code),
            _ => None,
        };
        let met = match dep.condition {
            DependencyCondition::Start => rec.last_started_at.is_some(),
            DependencyCondition::Complete => exited.is_some(),
            DependencyCondition::Success => exited == Some(0),
            DependencyCondition::Healthy => rec.health.status == HealthStatus::Healthy,
        };
        if met {
            continue;
        }
        waiting = true;
        let name = cond_name(dep.condition);
        match (dep.condition, exited) {
            (DependencyCondition::Success, Some(code))
            | (DependencyCondition::Healthy, Some(code)) => {
                return Gate::Fail(format!(
                    "Container {} dependency {} exited with code {code} before reaching condition {name}",
                    def.name, dep.container
                ));
            }
            _ => {}
        }
        if dep.condition == DependencyCondition::Start {
            continue;
        }
        if let (Some(timeout), Some(started)) = (dep_def.start_timeout, rec.last_started_at) {
            let until = after(started, from_std(timeout));
            if now >= until {
                return Gate::Fail(format!(
                    "Container {} dependency {} did not reach condition {name} within startTimeout {}s",
                    def.name,
                    dep.container,
                    timeout.as_secs()
                ));
            }
            deadline = Some(deadline.map_or(until, |d| d.min(until)));
        }
    }
    if waiting {
        Gate::Wait(deadline)
    } else {
        Gate::Open
    }
}

/// May the container at index `i` be stopped now: nothing that depends on it runs or
/// has an operation under way?
pub(super) fn may_stop(task: &TaskRecord, i: usize) -> bool {
    let Some(name) = task.definition.containers.get(i).map(|d| d.name.as_str()) else {
        return false;
    };
    task.definition
        .containers
        .iter()
        .zip(&task.containers)
        .all(|(d, r)| !d.depends_on.iter().any(|dep| dep.container == name) || r.is_down())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::testutil::{generate_test_container, generate_test_task, record};
    use crate::spec::Dependency;

    fn dep(name: &str, condition: DependencyCondition) -> Dependency {
        Dependency {
            container: name.into(),
            condition,
        }
    }

    #[test]
    fn deps_start_condition_waits_for_a_start() {
        let db = generate_test_container("db");
        let mut app = generate_test_container("app");
        app.depends_on = vec![dep("db", DependencyCondition::Start)];
        let mut t = record(generate_test_task(vec![db, app]));
        let now = Instant::from_secs(1);
        assert_eq!(gate(&t, 1, now), Gate::Wait(None));
        t.containers[0].last_started_at = Some(now);
        assert_eq!(gate(&t, 1, now), Gate::Open);
    }

    #[test]
    fn deps_success_fails_on_nonzero_exit_naming_both() {
        let init = generate_test_container("init");
        let mut app = generate_test_container("app");
        app.depends_on = vec![dep("init", DependencyCondition::Success)];
        let mut t = record(generate_test_task(vec![init, app]));
        t.containers[0].state = ContainerState::Exited {
            code: 2,
            reason: super::super::ExitReason::Exited,
            finished_at: Instant::from_secs(3),
        };
        let Gate::Fail(reason) = gate(&t, 1, Instant::from_secs(3)) else {
            panic!("expected failure")
        };
        assert!(
            reason.contains("app") && reason.contains("init") && reason.contains("code 2"),
            "{reason}"
        );
    }

    #[test]
    fn deps_start_timeout_counts_from_the_dependency_start() {
        let mut db = generate_test_container("db");
        db.start_timeout = Some(std::time::Duration::from_secs(30));
        let mut app = generate_test_container("app");
        app.depends_on = vec![dep("db", DependencyCondition::Healthy)];
        let mut t = record(generate_test_task(vec![db, app]));
        t.containers[0].last_started_at = Some(Instant::from_secs(10));
        assert_eq!(
            gate(&t, 1, Instant::from_secs(20)),
            Gate::Wait(Some(Instant::from_secs(40)))
        );
        assert!(
            matches!(gate(&t, 1, Instant::from_secs(40)), Gate::Fail(r) if r.contains("startTimeout 30s"))
        );
    }

    #[test]
    fn deps_dependents_stop_first() {
        let db = generate_test_container("db");
        let mut app = generate_test_container("app");
        app.depends_on = vec![dep("db", DependencyCondition::Start)];
        let mut t = record(generate_test_task(vec![db, app]));
        for c in &mut t.containers {
            c.state = ContainerState::Running {
                pid: 1,
                started_at: Instant::from_secs(0),
            };
        }
        assert!(!may_stop(&t, 0));
        assert!(may_stop(&t, 1));
        t.containers[1].state = ContainerState::Exited {
            code: 0,
            reason: super::super::ExitReason::Killed,
            finished_at: Instant::from_secs(5),
        };
        assert!(may_stop(&t, 0));
    }
}
