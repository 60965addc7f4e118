//! What the reconciler is asked for: the desired tasks and services, and the knobs of
//! the reconciler itself ([`Config`]). Plain data, built by the agent from the stored
//! deployment; nothing here is checked against observed state.

use std::collections::BTreeMap;
use std::fmt;

use embassy_time::Duration;
use serde::{Deserialize, Serialize};

use super::observed::check_of;
use super::time::{duration, from_std, opt_duration, sum};
use crate::spec::TaskDefinition;

/// The shortest default stability window: long enough to see a crash at start-up.
pub const MIN_STABILITY_WINDOW: Duration = Duration::from_secs(30);

/// A task's identity on this device: a standalone task's name as deployed, or
/// `<service>-<n>` for a task the reconciler launched for a service.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TaskId(pub String);

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for TaskId {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

/// Everything that should run on this device.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Desired {
    /// Standalone tasks (ECS RunTask): run once, never replaced when they stop.
    pub tasks: BTreeMap<TaskId, TaskDefinition>,
    /// Services by name: kept at `desired_count` healthy tasks.
    pub services: BTreeMap<String, ServiceSpec>,
}

/// One service (ECS CreateService/UpdateService, reduced to one device).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceSpec {
    /// The revision to run. A change (any field) starts a rolling deployment.
    pub task_definition: TaskDefinition,
    /// `desiredCount`.
    pub desired_count: u32,
    /// `deploymentConfiguration`.
    pub deployment: DeploymentConfig,
}

/// `deploymentConfiguration`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentConfig {
    /// `minimumHealthyPercent` (default 100): serving tasks kept during a deployment,
    /// rounded up. Lowered to `max tasks − 1` when the two leave no room to move.
    pub minimum_healthy_percent: u32,
    /// `maximumPercent` (default 200): tasks allowed in PENDING, RUNNING or STOPPING,
    /// rounded down. Never exceeded by a launch.
    pub maximum_percent: u32,
    /// `deploymentCircuitBreaker`, if enabled.
    pub circuit_breaker: Option<CircuitBreaker>,
    /// skerry's `stabilityWindowSeconds`: how long the new revision's tasks must serve,
    /// continuously, before the deployment completes (`None`: see
    /// [`default_stability_window`]). Until then its failures count for the breaker.
    #[serde(default, with = "opt_duration")]
    pub stability_window: Option<Duration>,
}

impl Default for DeploymentConfig {
    fn default() -> Self {
        Self {
            minimum_healthy_percent: 100,
            maximum_percent: 200,
            circuit_breaker: None,
            stability_window: None,
        }
    }
}

impl DeploymentConfig {
    /// Upper bound on live (pending, running or stopping) tasks for `desired`.
    pub fn max_tasks(&self, desired: u32) -> u32 {
        let max = u64::from(desired) * u64::from(self.maximum_percent) / 100;
        u32::try_from(max).unwrap_or(u32::MAX)
    }

    /// The stability window for a deployment of `def`; `grace` is the reconciler's
    /// [`Config::grace`] (the wait past a health check's timeout).
    pub fn stability_window(&self, def: &TaskDefinition, grace: Duration) -> Duration {
        self.stability_window
            .unwrap_or_else(|| default_stability_window(def, grace))
    }

    /// Serving tasks a deployment keeps for `desired`.
    pub fn min_serving(&self, desired: u32) -> u32 {
        let min = (u64::from(desired) * u64::from(self.minimum_healthy_percent)).div_ceil(100);
        let min = u32::try_from(min).unwrap_or(u32::MAX).min(desired);
        min.min(self.max_tasks(desired).saturating_sub(1))
    }
}

/// The default stability window: the larger of [`MIN_STABILITY_WINDOW`] and, for each
/// essential container with a health check, the time a check that always fails (or
/// hangs) takes to turn it UNHEALTHY: `startPeriod + retries × (interval + timeout +
/// grace)`.
pub fn default_stability_window(def: &TaskDefinition, grace: Duration) -> Duration {
    def.containers
        .iter()
        .filter(|c| c.essential)
        .filter_map(check_of)
        .map(|hc| {
            let round = sum(sum(from_std(hc.interval), from_std(hc.timeout)), grace);
            let rounds = Duration::from_ticks(
                round
                    .as_ticks()
                    .saturating_mul(u64::from(hc.retries.max(1))),
            );
            sum(from_std(hc.start_period), rounds)
        })
        .fold(MIN_STABILITY_WINDOW, Duration::max)
}

/// `deploymentCircuitBreaker`: when a deployment is declared failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CircuitBreaker {
    /// `rollback`: return to the last completed revision when tripped.
    pub rollback: bool,
    /// Failed tasks of the new revision that trip it; `None` = ECS's rule,
    /// half the desired count clamped to 3..=200.
    pub failure_threshold: Option<u32>,
    /// Time for the new revision to become stable: the desired count of tasks serving
    /// for the stability window.
    #[serde(with = "duration")]
    pub deadline: Duration,
}

impl CircuitBreaker {
    /// The failure count that trips the breaker for `desired` tasks.
    pub fn threshold(&self, desired: u32) -> u32 {
        self.failure_threshold
            .unwrap_or((desired / 2).clamp(3, 200))
            .max(1)
    }
}

/// The reconciler's own knobs. Defaults follow ECS where ECS has a number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// Seed of the jitter stream (no RNG inside: same seed, same decisions).
    pub seed: u64,
    /// Shortest wait before relaunching a failed service task.
    #[serde(with = "duration")]
    pub backoff_floor: Duration,
    /// Longest such wait.
    #[serde(with = "duration")]
    pub backoff_cap: Duration,
    /// A task serving this long in a row resets its service's backoff and crash loop.
    #[serde(with = "duration")]
    pub backoff_reset: Duration,
    /// Failures of one service within `crash_loop_window` that make a crash loop.
    pub crash_loop_failures: u32,
    /// See `crash_loop_failures`.
    #[serde(with = "duration")]
    pub crash_loop_window: Duration,
    /// How long an issued pull may go unanswered before it is issued again.
    #[serde(with = "duration")]
    pub pull_timeout: Duration,
    /// Same for create, start, restart and delete.
    #[serde(with = "duration")]
    pub op_timeout: Duration,
    /// Extra time past `stopTimeout` / a health check's `timeout` before the
    /// reconciler stops waiting for the executor's answer.
    #[serde(with = "duration")]
    pub grace: Duration,
    /// Wait before retrying a failed stop or delete.
    #[serde(with = "duration")]
    pub retry_delay: Duration,
    /// The host's journal answers (the agent looks for journald's socket at start):
    /// when not, each launch of a task with `journald` containers says where their
    /// output goes instead ([`super::Event::JournalAbsent`]).
    #[serde(default = "journal_default")]
    pub journal: bool,
}

fn journal_default() -> bool {
    true
}

impl Default for Config {
    fn default() -> Self {
        Self {
            seed: 0x5eed_5eed,
            backoff_floor: Duration::from_secs(10),
            backoff_cap: Duration::from_secs(300),
            backoff_reset: Duration::from_secs(120),
            crash_loop_failures: 5,
            crash_loop_window: Duration::from_secs(600),
            pull_timeout: Duration::from_secs(600),
            op_timeout: Duration::from_secs(120),
            grace: Duration::from_secs(5),
            retry_delay: Duration::from_secs(10),
            journal: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_limits_round_like_ecs() {
        let d = DeploymentConfig::default();
        assert_eq!((d.max_tasks(3), d.min_serving(3)), (6, 3));
        let d = DeploymentConfig {
            minimum_healthy_percent: 50,
            maximum_percent: 150,
            ..d
        };
        assert_eq!((d.max_tasks(3), d.min_serving(3)), (4, 2));
        // 100/100 leaves no room: availability gives way to the resource bound.
        let d = DeploymentConfig {
            minimum_healthy_percent: 100,
            maximum_percent: 100,
            ..d
        };
        assert_eq!((d.max_tasks(2), d.min_serving(2)), (2, 1));
        assert_eq!((d.max_tasks(0), d.min_serving(0)), (0, 0));
    }

    #[test]
    fn service_circuit_breaker_threshold_follows_ecs() {
        let cb = CircuitBreaker {
            rollback: true,
            failure_threshold: None,
            deadline: Duration::from_secs(60),
        };
        assert_eq!(cb.threshold(1), 3);
        assert_eq!(cb.threshold(10), 5);
        assert_eq!(cb.threshold(1000), 200);
        assert_eq!(
            CircuitBreaker {
                failure_threshold: Some(0),
                ..cb
            }
            .threshold(1),
            1
        );
    }
}
