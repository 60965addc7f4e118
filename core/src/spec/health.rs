//! `healthCheck` and `restartPolicy`: ECS ranges checked, ECS defaults filled in.

use std::time::Duration;

use super::ecs::{RawHealthCheck, RawRestartPolicy};
use super::error::Problems;
use super::model::{HealthCheck, HealthCommand, RestartPolicy};

/// At most this many `restartPolicy.ignoredExitCodes` (ECS limit).
const MAX_IGNORED_EXIT_CODES: usize = 50;

/// A seconds field: `default` when absent, refused outside `min..=max`.
fn seconds(
    value: Option<u32>,
    default: u32,
    (min, max): (u32, u32),
    at: String,
    p: &mut Problems,
) -> Duration {
    let value = value.unwrap_or(default);
    if !(min..=max).contains(&value) {
        p.push(
            at,
            format!("must be between {min} and {max} seconds, got {value}"),
        );
    }
    Duration::from_secs(u64::from(value))
}

pub(crate) fn check_health(raw: &RawHealthCheck, at: &str, p: &mut Problems) -> HealthCheck {
    let command = health_command(raw.command.as_deref(), &format!("{at}.command"), p);
    let interval = seconds(raw.interval, 30, (5, 300), format!("{at}.interval"), p);
    let timeout = seconds(raw.timeout, 5, (2, 60), format!("{at}.timeout"), p);
    let start_period = seconds(
        raw.start_period,
        0,
        (0, 300),
        format!("{at}.startPeriod"),
        p,
    );
    let retries = raw.retries.unwrap_or(3);
    if !(1..=10).contains(&retries) {
        p.push(
            format!("{at}.retries"),
            format!("must be between 1 and 10, got {retries}"),
        );
    }
    HealthCheck {
        command,
        interval,
        timeout,
        retries,
        start_period,
    }
}

/// `["CMD", argv...]`, `["CMD-SHELL", "cmd"]` or `["NONE"]`. Several strings after
/// `CMD-SHELL` are joined with spaces, as Docker does.
fn health_command(raw: Option<&[String]>, at: &str, p: &mut Problems) -> HealthCommand {
    let Some((kind, rest)) = raw.and_then(<[String]>::split_first) else {
        p.push(
            at,
            "is required: [\"CMD\", argv...], [\"CMD-SHELL\", \"command\"] or [\"NONE\"]",
        );
        return HealthCommand::None;
    };
    match kind.as_str() {
        "CMD" if !rest.is_empty() && !rest[0].is_empty() => HealthCommand::Exec(rest.to_vec()),
        "CMD-SHELL" if rest.iter().any(|s| !s.trim().is_empty()) => {
            HealthCommand::Shell(rest.join(" "))
        }
        "NONE" if rest.is_empty() => HealthCommand::None,
        "CMD" | "CMD-SHELL" => {
            p.push(at, format!("{kind} needs a command after it"));
            HealthCommand::None
        }
        "NONE" => {
            p.push(at, "NONE takes nothing after it");
            HealthCommand::None
        }
        other => {
            p.push(
                at,
                format!("must start with \"CMD\", \"CMD-SHELL\" or \"NONE\", got {other:?}"),
            );
            HealthCommand::None
        }
    }
}

pub(crate) fn check_restart(raw: &RawRestartPolicy, at: &str, p: &mut Problems) -> RestartPolicy {
    let enabled = raw.enabled.unwrap_or_else(|| {
        p.push(format!("{at}.enabled"), "is required");
        false
    });
    let ignored_exit_codes = raw.ignored_exit_codes.clone().unwrap_or_default();
    if ignored_exit_codes.len() > MAX_IGNORED_EXIT_CODES {
        p.push(
            format!("{at}.ignoredExitCodes"),
            format!(
                "may list at most {MAX_IGNORED_EXIT_CODES} exit codes, got {}",
                ignored_exit_codes.len()
            ),
        );
    }
    let restart_attempt_period = seconds(
        raw.restart_attempt_period,
        300,
        (60, 1800),
        format!("{at}.restartAttemptPeriod"),
        p,
    );
    RestartPolicy {
        enabled,
        ignored_exit_codes,
        restart_attempt_period,
    }
}
