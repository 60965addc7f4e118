//! Standalone desired state: the files of the desired directory, turned into the
//! reconciler's [`Desired`].
//!
//! ```text
//! <desired_dir>/<task-id>.json         one ECS task definition = one standalone task
//! <desired_dir>/<name>.service.json    one service (ECS CreateService words):
//!   {"taskDefinition": <task definition object, or a path relative to the directory>,
//!    "desiredCount": N,
//!    "deploymentConfiguration": {"minimumHealthyPercent": 100, "maximumPercent": 200,
//!      "stabilityWindowSeconds": 30,                        (skerry's)
//!      "deploymentCircuitBreaker": {"enable": true, "rollback": true,
//!        "failureThreshold": 3, "deadlineSeconds": 600}}}   (last two: skerry's)
//! ```
//!
//! `stabilityWindowSeconds` (0–86400; default the larger of 30 s and the time a
//! failing health check takes to turn UNHEALTHY) is how long the new revision must
//! serve before its deployment completes; with the breaker on it must be shorter
//! than `deadlineSeconds`, or every deployment would fail.
//!
//! A file is parsed again only when its size or mtime changed (or on SIGHUP). A file
//! that does not parse is reported once per content and changes nothing: its task or
//! service keeps the definition last applied (persisted in the state file). Removing
//! a file removes its task or service (which stops it). Unknown keys are refused,
//! naming them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::Deserialize;
use skerry_core::reconcile::{
    time::from_std, CircuitBreaker, Config, DeploymentConfig, Desired, ServiceSpec, TaskId,
};
use skerry_core::spec::{parse_task_definition, validate_name, ParseOptions, TaskDefinition};

use crate::taskdef::read_task_definition_text;

const SERVICE_SUFFIX: &str = ".service.json";
/// Largest `desiredCount` accepted on one device.
const MAX_DESIRED_COUNT: u32 = 100;

#[derive(Debug, Clone)]
enum Item {
    Task(TaskId, Box<TaskDefinition>),
    Service(String, Box<ServiceSpec>),
}

#[derive(Debug)]
struct Entry {
    stamp: (Option<SystemTime>, u64),
    parsed: Result<Item, String>,
}

/// The desired directory and what was last read from it.
#[derive(Debug)]
pub struct DesiredDir {
    dir: PathBuf,
    opts: ParseOptions,
    files: BTreeMap<PathBuf, Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawService {
    task_definition: serde_json::Value,
    desired_count: u32,
    #[serde(default)]
    deployment_configuration: Option<RawDeployment>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawDeployment {
    minimum_healthy_percent: Option<u32>,
    maximum_percent: Option<u32>,
    stability_window_seconds: Option<u64>,
    deployment_circuit_breaker: Option<RawBreaker>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawBreaker {
    enable: bool,
    rollback: bool,
    failure_threshold: Option<u32>,
    deadline_seconds: Option<u64>,
}

impl DesiredDir {
    pub fn new(dir: PathBuf, opts: ParseOptions) -> Self {
        Self {
            dir,
            opts,
            files: BTreeMap::new(),
        }
    }

    /// Reads the directory (changed files only, or all when `force`) and returns the
    /// desired state; `last` supplies what a bad file keeps.
    pub fn read(&mut self, force: bool, last: &Desired) -> Desired {
        let mut seen = Vec::new();
        for entry in std::fs::read_dir(&self.dir).into_iter().flatten().flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.ends_with(".json") || name.starts_with('.') {
                continue;
            }
            let meta = entry.metadata().ok();
            let stamp = (
                meta.as_ref().and_then(|m| m.modified().ok()),
                meta.as_ref().map_or(0, |m| m.len()),
            );
            seen.push(path.clone());
            if !force && self.files.get(&path).is_some_and(|e| e.stamp == stamp) {
                continue;
            }
            let parsed = self.parse(&path, &name);
            if let Err(msg) = &parsed {
                tracing::error!(file = %path.display(), error = %msg, "desired file refused; keeping what runs");
            }
            self.files.insert(path, Entry { stamp, parsed });
        }
        self.files.retain(|p, _| seen.contains(p));
        let mut out = Desired::default();
        for (path, e) in &self.files {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            match &e.parsed {
                Ok(Item::Task(id, def)) => {
                    out.tasks.insert(id.clone(), (**def).clone());
                }
                Ok(Item::Service(n, spec)) => {
                    out.services.insert(n.clone(), (**spec).clone());
                }
                Err(_) => {
                    if let Some(n) = name.strip_suffix(SERVICE_SUFFIX) {
                        if let Some(s) = last.services.get(n) {
                            out.services.insert(n.to_string(), s.clone());
                        }
                    } else if let Some(id) = name.strip_suffix(".json") {
                        if let Some(d) = last.tasks.get(&TaskId::from(id)) {
                            out.tasks.insert(TaskId::from(id), d.clone());
                        }
                    }
                }
            }
        }
        out
    }

    fn parse(&self, path: &Path, name: &str) -> Result<Item, String> {
        let text = read_task_definition_text(path)?;
        if let Some(svc) = name.strip_suffix(SERVICE_SUFFIX) {
            validate_name("service name (file name)", svc)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            let spec = self
                .parse_service(&text)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            return Ok(Item::Service(svc.to_string(), Box::new(spec)));
        }
        let id = name.strip_suffix(".json").unwrap_or(name);
        validate_name("task id (file name)", id).map_err(|e| format!("{}: {e}", path.display()))?;
        let def = parse_task_definition(&text, &self.opts)
            .map_err(|e| format!("{}: invalid task definition:\n{e}", path.display()))?;
        Ok(Item::Task(TaskId::from(id), Box::new(def)))
    }

    fn parse_service(&self, text: &str) -> Result<ServiceSpec, String> {
        parse_service_text(text, &self.opts, Some(&self.dir))
    }
}

/// Parses a service in the desired directory's shape. `base` resolves a
/// `taskDefinition` given as a file path; without one (a fleet document, whose
/// definitions `ctl` inlines), a path is refused.
pub fn parse_service_text(
    text: &str,
    opts: &ParseOptions,
    base: Option<&Path>,
) -> Result<ServiceSpec, String> {
    let de = &mut serde_json::Deserializer::from_str(text);
    let raw: RawService = serde_path_to_error::deserialize(de).map_err(|e| {
        let at = e.path().to_string();
        format!("invalid service: at {at}: {}", e.inner())
    })?;
    let def_text = match &raw.task_definition {
            serde_json::Value::String(p) => match base {
                Some(dir) => read_task_definition_text(&dir.join(p))?,
                None => {
                    return Err(format!(
                        "taskDefinition: a file path ({p:?}) cannot be resolved on the device; inline the definition"
                    ))
                }
            },
            v @ serde_json::Value::Object(_) => v.to_string(),
            _ => return Err("taskDefinition: must be an object or a file path".into()),
        };
    let task_definition = parse_task_definition(&def_text, opts)
        .map_err(|e| format!("taskDefinition: invalid task definition:\n{e}"))?;
    if raw.desired_count > MAX_DESIRED_COUNT {
        return Err(format!(
            "desiredCount: must be between 0 and {MAX_DESIRED_COUNT}, got {}",
            raw.desired_count
        ));
    }
    let mut deployment = DeploymentConfig::default();
    if let Some(d) = raw.deployment_configuration {
        deployment.minimum_healthy_percent = d.minimum_healthy_percent.unwrap_or(100);
        deployment.maximum_percent = d.maximum_percent.unwrap_or(200);
        check_range(
            "deploymentConfiguration.minimumHealthyPercent",
            deployment.minimum_healthy_percent,
            0,
            100,
        )?;
        check_range(
            "deploymentConfiguration.maximumPercent",
            deployment.maximum_percent,
            100,
            400,
        )?;
        if let Some(secs) = d.stability_window_seconds {
            if secs > 86_400 {
                return Err(format!("deploymentConfiguration.stabilityWindowSeconds: must be between 0 and 86400, got {secs}"));
            }
            deployment.stability_window = Some(from_std(std::time::Duration::from_secs(secs)));
        }
        if let Some(b) = d.deployment_circuit_breaker.filter(|b| b.enable) {
            let secs = b.deadline_seconds.unwrap_or(600);
            if !(10..=86_400).contains(&secs) {
                return Err(format!("deploymentConfiguration.deploymentCircuitBreaker.deadlineSeconds: must be between 10 and 86400, got {secs}"));
            }
            if let Some(t) = b.failure_threshold {
                check_range(
                    "deploymentConfiguration.deploymentCircuitBreaker.failureThreshold",
                    t,
                    1,
                    200,
                )?;
            }
            deployment.circuit_breaker = Some(CircuitBreaker {
                rollback: b.rollback,
                failure_threshold: b.failure_threshold,
                deadline: from_std(std::time::Duration::from_secs(secs)),
            });
            let window = deployment
                .stability_window(&task_definition, Config::default().grace)
                .as_secs();
            if window >= secs {
                let from = if d.stability_window_seconds.is_some() {
                    "deploymentConfiguration.stabilityWindowSeconds"
                } else {
                    "the default stability window (from the health check)"
                };
                return Err(format!("deploymentConfiguration.deploymentCircuitBreaker.deadlineSeconds: {secs} s leaves no time to become stable: {from} is {window} s; raise deadlineSeconds above it or set a shorter stabilityWindowSeconds"));
            }
        }
    }
    Ok(ServiceSpec {
        task_definition,
        desired_count: raw.desired_count,
        deployment,
    })
}

fn check_range(at: &str, v: u32, min: u32, max: u32) -> Result<(), String> {
    if (min..=max).contains(&v) {
        Ok(())
    } else {
        Err(format!("{at}: must be between {min} and {max}, got {v}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEF: &str = r#"{"family": "web", "containerDefinitions": [{"name": "main", "image": "busybox:latest", "memory": 32}]}"#;

    fn dir_with(files: &[(&str, &str)]) -> (tempfile::TempDir, DesiredDir) {
        let dir = tempfile::tempdir().expect("tempdir");
        for (n, t) in files {
            std::fs::write(dir.path().join(n), t).expect("write");
        }
        let d = DesiredDir::new(dir.path().to_path_buf(), ParseOptions::default());
        (dir, d)
    }

    #[test]
    fn desired_tasks_and_services_parse() {
        let svc = format!(
            r#"{{"taskDefinition": {DEF}, "desiredCount": 2, "deploymentConfiguration": {{"minimumHealthyPercent": 50, "maximumPercent": 150, "deploymentCircuitBreaker": {{"enable": true, "rollback": true, "failureThreshold": 1}}}}}}"#
        );
        let (_d, mut dd) = dir_with(&[("a.json", DEF), ("web.service.json", &svc)]);
        let got = dd.read(false, &Desired::default());
        assert!(got.tasks.contains_key(&TaskId::from("a")));
        let s = &got.services["web"];
        assert_eq!(s.desired_count, 2);
        assert_eq!(s.deployment.maximum_percent, 150);
        assert_eq!(
            s.deployment.circuit_breaker.as_ref().map(|c| c.rollback),
            Some(true)
        );
    }

    #[test]
    fn desired_stability_window_key_is_checked_against_the_deadline() {
        let (_dir, dd) = dir_with(&[]);
        let with = |dep: &str| {
            dd.parse_service(&format!(
                r#"{{"taskDefinition": {DEF}, "desiredCount": 1, "deploymentConfiguration": {dep}}}"#
            ))
        };
        let s = with(r#"{"stabilityWindowSeconds": 45}"#).expect("window alone");
        assert_eq!(s.deployment.stability_window.map(|d| d.as_secs()), Some(45));
        let s = with(r#"{}"#).expect("default");
        assert_eq!(s.deployment.stability_window, None);
        let err = with(r#"{"stabilityWindowSeconds": 90000}"#).expect_err("range");
        assert!(
            err.contains("stabilityWindowSeconds: must be between 0 and 86400"),
            "{err}"
        );
        let err = with(r#"{"stabilityWindowSeconds": 60, "deploymentCircuitBreaker": {"enable": true, "rollback": true, "deadlineSeconds": 60}}"#)
            .expect_err("window not shorter than the deadline");
        assert!(
            err.contains("deadlineSeconds: 60 s leaves no time"),
            "{err}"
        );
        let err = with(r#"{"stabilityWindowSeconds": "x"}"#).expect_err("type");
        assert!(err.contains("stabilityWindowSeconds"), "{err}");
        // The default window (30 s here) against a 20 s deadline is named as the default.
        let err = with(r#"{"deploymentCircuitBreaker": {"enable": true, "rollback": true, "deadlineSeconds": 20}}"#)
            .expect_err("default window too long");
        assert!(err.contains("default stability window"), "{err}");
    }

    #[test]
    fn desired_bad_files_keep_last_and_name_unknown_keys() {
        let (dir, mut dd) = dir_with(&[(
            "web.service.json",
            r#"{"taskDefinition": {}, "desiredCount": 1, "launchType": "EC2"}"#,
        )]);
        let err = dd
            .parse(&dir.path().join("web.service.json"), "web.service.json")
            .expect_err("refused");
        assert!(err.contains("launchType"), "{err}");
        let mut last = Desired::default();
        last.tasks.insert(
            TaskId::from("a"),
            parse_task_definition(DEF, &ParseOptions::default()).expect("def"),
        );
        std::fs::write(dir.path().join("a.json"), "{broken").expect("write");
        let got = dd.read(false, &last);
        assert_eq!(got.tasks, last.tasks);
        assert!(got.services.is_empty());
    }
}
