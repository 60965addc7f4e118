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
            Event::LogsKeptOnDevice { task, streams } => {
                let names: Vec<String> = streams
                    .iter()
                    .map(|(c, stream)| match stream {
                        Some(s) => format!("{c} (stream {s})"),
                        None => c.clone(),
                    })
                    .collect();
                write!(
                    f,
                    "task {task}: awslogs for {}: CloudWatch is not reached from the device; the output is kept in skerry's rotated log files (skerry logs {task})",
                    names.join(", ")
                )
            }
            Event::JournalAbsent { task, containers } => write!(
                f,
                "task {task}: journald log driver for {}: this host has no journal (no /run/systemd/journal/socket); the output is kept in skerry's rotated log files only (skerry logs {task})",
                containers.join(", ")
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::testutil::{generate_test_container, generate_test_task, Harness};
    use crate::reconcile::{Action, Desired, TaskId};
    use crate::spec::{AwsLogs, Journald, LogDriver};

    /// Each launch of a task with awslogs containers says once where the logs go.
    #[test]
    fn awslogs_task_launch_says_logs_stay_on_the_device() {
        let mut logged = generate_test_container("web");
        logged.log = LogDriver::Awslogs(AwsLogs {
            group: "/ecs/web".into(),
            region: "eu-west-1".into(),
            stream_prefix: Some("ecs".into()),
            event_start: None,
            flush_secs: None,
        });
        let plain = generate_test_container("sidecar");
        let mut desired = Desired::default();
        desired
            .tasks
            .insert("t1".into(), generate_test_task(vec![logged, plain]));
        let mut h = Harness::new(desired);
        let d = h.reconcile();
        let reports: Vec<&Event> = d
            .actions
            .iter()
            .filter_map(|a| match a {
                Action::Report(e) => Some(e),
                _ => None,
            })
            .collect();
        let at = reports
            .iter()
            .position(|e| matches!(e, Event::TaskLaunched { .. }))
            .expect("a launch event");
        let expected = Event::LogsKeptOnDevice {
            task: TaskId::from("t1"),
            streams: vec![("web".into(), Some("ecs/web/t1".into()))],
        };
        assert_eq!(reports.get(at + 1), Some(&&expected));
        assert_eq!(reports.iter().filter(|e| ***e == expected).count(), 1);
        assert_eq!(
            expected.to_string(),
            "task t1: awslogs for web (stream ecs/web/t1): CloudWatch is not reached from the device; the output is kept in skerry's rotated log files (skerry logs t1)"
        );
        h.answer(&d.actions);
        h.settle();
        assert_eq!(
            h.events()
                .filter(|e| matches!(e, Event::LogsKeptOnDevice { .. }))
                .count(),
            1,
            "said once per task"
        );
    }

    /// journald containers on a host without a journal: one notice per launch; with a
    /// journal, none.
    #[test]
    fn journald_task_launch_without_a_journal_says_where_the_output_is() {
        let mut logged = generate_test_container("web");
        logged.log = LogDriver::Journald(Journald {
            tag: None,
            labels: vec![],
            env: vec![],
            labels_regex: None,
            env_regex: None,
        });
        let mut desired = Desired::default();
        desired
            .tasks
            .insert("t1".into(), generate_test_task(vec![logged]));
        let notices = |journal: bool| {
            let mut h = Harness::new(desired.clone());
            h.r = crate::reconcile::Reconciler::new(crate::reconcile::Config {
                journal,
                ..Default::default()
            });
            let d = h.reconcile();
            h.answer(&d.actions);
            h.settle();
            h.events()
                .filter(|e| matches!(e, Event::JournalAbsent { .. }))
                .cloned()
                .collect::<Vec<_>>()
        };
        assert!(notices(true).is_empty());
        let said = notices(false);
        assert_eq!(
            said,
            vec![Event::JournalAbsent {
                task: TaskId::from("t1"),
                containers: vec!["web".into()],
            }]
        );
        assert_eq!(
            said[0].to_string(),
            "task t1: journald log driver for web: this host has no journal (no /run/systemd/journal/socket); the output is kept in skerry's rotated log files only (skerry logs t1)"
        );
    }

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
