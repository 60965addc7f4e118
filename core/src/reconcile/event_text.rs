//! How an [`Event`] reads in a log: one plain sentence with its facts, for the journal.

use std::fmt;

use embassy_time::Duration;

use super::actions::Event;

fn secs(d: &Duration) -> String {
    format!("{:.1}s", d.as_millis() as f64 / 1000.0)
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::TaskLaunched { task, service, revision } => match service {
                Some(s) => write!(f, "task {task} launched for service {s} (revision {revision})"),
                None => write!(f, "task {task} launched (revision {revision})"),
            },
            Event::ContainerExited { task, container, code, reason } => {
                write!(f, "container {task}/{container} exited with code {code} ({reason:?})")
            }
            Event::ContainerRestarted { task, container, restart_count } => {
                write!(f, "container {task}/{container} restarted in place (restart {restart_count})")
            }
            Event::HealthChanged { task, container, status } => {
                write!(f, "container {task}/{container} health is now {status:?}")
            }
            Event::TaskStopping { task, reason, failed } => {
                let how = if *failed { "failed" } else { "stopping" };
                write!(f, "task {task} {how}: {reason}")
            }
            Event::TaskStopped { task, reason } => write!(f, "task {task} stopped: {reason}"),
            Event::ServiceBackoff { service, consecutive_failures, delay } => write!(
                f,
                "service {service}: {consecutive_failures} consecutive failure(s), next launch in {}",
                secs(delay)
            ),
            Event::CrashLoop { service, failures, window } => write!(
                f,
                "service {service} is crash-looping: {failures} failures within {}; launches now wait the longest backoff",
                secs(window)
            ),
            Event::DeploymentStarted { service, revision } => {
                write!(f, "service {service}: deployment of revision {revision} started")
            }
            Event::DeploymentCompleted { service, revision } => {
                write!(f, "service {service}: deployment of revision {revision} completed")
            }
            Event::DeploymentRolledBack { service, from, to, reason } => {
                write!(f, "service {service}: rolled back from revision {from} to {to}: {reason}")
            }
            Event::DeploymentFailed { service, revision, reason } => {
                write!(f, "service {service}: deployment of revision {revision} failed: {reason}")
            }
            Event::ActionFailed { task, container, op, error } => match container {
                Some(c) => write!(f, "{op:?} of {task}/{c} failed: {error}"),
                None => write!(f, "{op:?} of task {task} failed: {error}"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_text_reads_in_seconds() {
        let ev = Event::ServiceBackoff {
            service: "hello".into(),
            consecutive_failures: 1,
            delay: Duration::from_millis(12_646),
        };
        assert_eq!(
            ev.to_string(),
            "service hello: 1 consecutive failure(s), next launch in 12.6s"
        );
    }
}
