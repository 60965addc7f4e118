//! Where skerry's own logs go, and the fields a reconciler event carries there.
//!
//! [`init`] picks one sink, once, before any thread starts:
//! - **journald, natively**, when the process runs under systemd (stderr is the
//!   `JOURNAL_STREAM`, or `NOTIFY_SOCKET` is set and the journal socket exists) and
//!   `/run/systemd/journal/socket` answers: every event becomes a journal entry whose
//!   fields are the event's fields, upper-cased, with no prefix (`TASK=web.1`,
//!   `CONTAINER=app`, `SERVICE=web`, `EVENT=ContainerExited`, `ERROR=…`) and whose
//!   `PRIORITY` is the level's (error 3, warn 4, info 5, debug 6, trace 7), so
//!   `journalctl -u skerry -p err` and `journalctl -u skerry TASK=web.1` work;
//! - **stderr with `<N>` priority prefixes** (sd-daemon(3) style, which journald reads
//!   from a stream) when under systemd but the journal socket does not answer;
//! - **stderr, plain**, otherwise: timestamps, and ANSI colour only when stderr is a
//!   terminal (a pipe or a file gets no escape sequences).
//!
//! The level comes from `SKERRY_LOG` (an `EnvFilter`, default `info`).
//! [`event`] logs one reconciler [`Event`] at its level with its task, container and
//! service fields; the supervisor calls it for every `Action::Report`.

use std::io::IsTerminal;
use std::path::Path;

use skerry_core::reconcile::{Event, ExitReason, HealthStatus};
use tracing::Level;
use tracing_subscriber::fmt::format::{self, FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::FmtContext;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

/// journald's native protocol socket (fixed by systemd).
pub const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

/// Sets up the process's logging (see the module doc). Call once.
pub fn init() {
    let filter =
        || EnvFilter::try_from_env("SKERRY_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    if under_systemd() {
        if let Ok(journal) = tracing_journald::layer() {
            let journal = journal.with_field_prefix(None);
            tracing_subscriber::registry()
                .with(filter())
                .with(journal)
                .init();
            return;
        }
        tracing_subscriber::fmt()
            .with_env_filter(filter())
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .event_format(PriorityPrefix(
                format().without_time().with_target(false).with_ansi(false),
            ))
            .init();
        return;
    }
    tracing_subscriber::fmt()
        .with_env_filter(filter())
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

fn format() -> format::Format {
    format::Format::default()
}

/// Whether systemd started this process with its output going to the journal:
/// stderr is the stream `JOURNAL_STREAM` names (`<dev>:<inode>`, as systemd.exec(5)
/// says to check: the variable leaks into shells started from a unit), or the
/// process is a notify service and the journal is there.
fn under_systemd() -> bool {
    let stream = std::env::var("JOURNAL_STREAM").ok();
    stream.as_deref().is_some_and(stderr_is)
        || (std::env::var_os("NOTIFY_SOCKET").is_some() && Path::new(JOURNAL_SOCKET).exists())
}

/// Whether stderr is the file `<dev>:<inode>`.
fn stderr_is(dev_ino: &str) -> bool {
    let Some((dev, ino)) = dev_ino.split_once(':') else {
        return false;
    };
    let (Ok(dev), Ok(ino)) = (dev.parse::<libc::dev_t>(), ino.parse::<libc::ino_t>()) else {
        return false;
    };
    nix::sys::stat::fstat(libc::STDERR_FILENO).is_ok_and(|st| st.st_dev == dev && st.st_ino == ino)
}

/// The syslog priority of a level, as journald numbers it.
pub fn priority(level: Level) -> u8 {
    match level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 5,
        Level::DEBUG => 6,
        Level::TRACE => 7,
    }
}

/// Writes `<N>` (the level's priority) before each line of the wrapped format.
struct PriorityPrefix<F>(F);

impl<S, N, F> FormatEvent<S, N> for PriorityPrefix<F>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        write!(writer, "<{}>", priority(*event.metadata().level()))?;
        self.0.format_event(ctx, writer, event)
    }
}

/// What a journal reader filters an event by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventFields<'a> {
    /// The variant's name (`ContainerExited`).
    pub kind: &'static str,
    /// Error for failures the operator must act on, warn for trouble skerry handles
    /// (non-zero exits, backoff, rollbacks, unhealthy), info for the rest.
    pub level: Level,
    pub task: Option<&'a str>,
    pub container: Option<&'a str>,
    /// The service, named by the event or by its task id (`<service>.<n>`).
    pub service: Option<&'a str>,
}

impl<'a> EventFields<'a> {
    /// The fields of `ev`.
    pub fn of(ev: &'a Event) -> Self {
        let (kind, level, task, container, service) = match ev {
            Event::TaskLaunched { task, service, .. } => (
                "TaskLaunched",
                Level::INFO,
                Some(task),
                None,
                service.as_deref(),
            ),
            Event::ContainerExited {
                task,
                container,
                code,
                reason,
            } => {
                let level = if *code == 0 && *reason == ExitReason::Exited {
                    Level::INFO
                } else {
                    Level::WARN
                };
                ("ContainerExited", level, Some(task), Some(container), None)
            }
            Event::ContainerRestarted {
                task, container, ..
            } => (
                "ContainerRestarted",
                Level::WARN,
                Some(task),
                Some(container),
                None,
            ),
            Event::HealthChanged {
                task,
                container,
                status,
            } => {
                let level = if *status == HealthStatus::Unhealthy {
                    Level::WARN
                } else {
                    Level::INFO
                };
                ("HealthChanged", level, Some(task), Some(container), None)
            }
            Event::TaskStopping { task, failed, .. } => {
                let level = if *failed { Level::WARN } else { Level::INFO };
                ("TaskStopping", level, Some(task), None, None)
            }
            Event::TaskStopped { task, .. } => ("TaskStopped", Level::INFO, Some(task), None, None),
            Event::LogsKeptOnDevice { task, .. } => {
                ("LogsKeptOnDevice", Level::INFO, Some(task), None, None)
            }
            Event::JournalAbsent { task, .. } => {
                ("JournalAbsent", Level::WARN, Some(task), None, None)
            }
            Event::ServiceBackoff { service, .. } => (
                "ServiceBackoff",
                Level::WARN,
                None,
                None,
                Some(service.as_str()),
            ),
            Event::CrashLoop { service, .. } => (
                "CrashLoop",
                Level::ERROR,
                None,
                None,
                Some(service.as_str()),
            ),
            Event::DeploymentStarted { service, .. } => (
                "DeploymentStarted",
                Level::INFO,
                None,
                None,
                Some(service.as_str()),
            ),
            Event::DeploymentCompleted { service, .. } => (
                "DeploymentCompleted",
                Level::INFO,
                None,
                None,
                Some(service.as_str()),
            ),
            Event::DeploymentRolledBack { service, .. } => (
                "DeploymentRolledBack",
                Level::WARN,
                None,
                None,
                Some(service.as_str()),
            ),
            Event::DeploymentFailed { service, .. } => (
                "DeploymentFailed",
                Level::ERROR,
                None,
                None,
                Some(service.as_str()),
            ),
            Event::ActionFailed {
                task, container, ..
            } => (
                "ActionFailed",
                Level::ERROR,
                Some(task),
                container.as_ref(),
                None,
            ),
        };
        let task = task.map(|t| t.0.as_str());
        Self {
            kind,
            level,
            task,
            container: container.map(String::as_str),
            service: service.or_else(|| task.and_then(service_of_task)),
        }
    }
}

/// `web` for the service task id `web.3`. Task and service names cannot hold a
/// dot, so only a service task's id has one.
fn service_of_task(task: &str) -> Option<&str> {
    task.rsplit_once('.')
        .filter(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        .map(|(s, _)| s)
}

/// Logs one reconciler event with its fields (see [`EventFields`]); the message is
/// the event in words.
pub fn event(ev: &Event) {
    let f = EventFields::of(ev);
    macro_rules! log_at {
        ($mac:ident) => {
            tracing::$mac!(
                event = display(f.kind),
                task = f.task.map(display),
                container = f.container.map(display),
                service = f.service.map(display),
                "{ev}"
            )
        };
    }
    match f.level {
        Level::ERROR => log_at!(error),
        Level::WARN => log_at!(warn),
        Level::INFO => log_at!(info),
        Level::DEBUG => log_at!(debug),
        Level::TRACE => log_at!(trace),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use skerry_core::reconcile::OpKind;

    #[test]
    fn logging_event_fields_name_task_container_service_and_level() {
        let exited = Event::ContainerExited {
            task: "web.12".into(),
            container: "app".into(),
            code: 137,
            reason: ExitReason::OutOfMemory,
        };
        let f = EventFields::of(&exited);
        assert_eq!(f.kind, "ContainerExited");
        assert_eq!(f.level, Level::WARN);
        assert_eq!(
            (f.task, f.container, f.service),
            (Some("web.12"), Some("app"), Some("web"))
        );

        let failed = Event::ActionFailed {
            task: "job".into(),
            container: None,
            op: OpKind::Create,
            error: "image busybox:nope not found".into(),
        };
        let f = EventFields::of(&failed);
        assert_eq!(
            (f.level, f.task, f.service),
            (Level::ERROR, Some("job"), None)
        );

        let ok = Event::ContainerExited {
            task: "job".into(),
            container: "main".into(),
            code: 0,
            reason: ExitReason::Exited,
        };
        assert_eq!(EventFields::of(&ok).level, Level::INFO);
    }

    #[test]
    fn logging_service_of_task_needs_a_numbered_suffix() {
        assert_eq!(service_of_task("web.3"), Some("web"));
        assert_eq!(service_of_task("web"), None);
        assert_eq!(service_of_task("web."), None);
        assert_eq!(service_of_task("web.x"), None);
    }

    #[test]
    fn logging_priorities_are_journald_numbers() {
        let all = [
            Level::ERROR,
            Level::WARN,
            Level::INFO,
            Level::DEBUG,
            Level::TRACE,
        ];
        assert_eq!(all.map(priority), [3, 4, 5, 6, 7]);
    }
}
