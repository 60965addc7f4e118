//! Tests of [`super::parse_task_definition`] end to end: fixture builders here,
//! accepted forms and refusals by topic in the submodules.

use serde_json::{json, Value};

use super::{parse_task_definition, ParseOptions, SpecError, TaskDefinition};

mod accepted;
mod container_refusals;
mod deps_health;
mod document;
mod linux_refusals;
mod logs;
mod network;
mod realistic;
mod secrets;
mod task_refusals;
mod volumes_from;

/// A minimal valid container named `name`.
fn generate_test_container(name: &str) -> Value {
    json!({ "name": name, "image": "busybox:latest", "memory": 32, "essential": true })
}

/// A minimal valid task: family `test`, one container `app`.
fn generate_test_task() -> Value {
    json!({ "family": "test", "containerDefinitions": [generate_test_container("app")] })
}

/// [`generate_test_task`] with top-level `field` set to `value`.
fn generate_test_task_with(field: &str, value: Value) -> Value {
    let mut task = generate_test_task();
    task[field] = value;
    task
}

/// [`generate_test_task`] with `field` of its only container set to `value`.
fn generate_test_task_with_container_field(field: &str, value: Value) -> Value {
    let mut task = generate_test_task();
    task["containerDefinitions"][0][field] = value;
    task
}

/// A task with the given containers.
fn generate_test_task_with_containers(containers: Vec<Value>) -> Value {
    generate_test_task_with("containerDefinitions", Value::Array(containers))
}

fn parse_with(task: &Value, opts: &ParseOptions) -> Result<TaskDefinition, SpecError> {
    parse_task_definition(&task.to_string(), opts)
}

fn parse(task: &Value) -> Result<TaskDefinition, SpecError> {
    parse_with(task, &ParseOptions::default())
}

/// Parses `task`, failing the test with every problem when it is refused.
fn parse_ok(task: &Value) -> TaskDefinition {
    match parse(task) {
        Ok(def) => def,
        Err(err) => panic!("expected the task to be accepted, got:\n{err}"),
    }
}

/// Asserts `task` is refused with a problem at exactly `path` whose reason
/// contains `reason`; returns the error for further checks.
fn assert_refused(task: &Value, path: &str, reason: &str) -> SpecError {
    assert_refused_with(task, &ParseOptions::default(), path, reason)
}

fn assert_refused_with(task: &Value, opts: &ParseOptions, path: &str, reason: &str) -> SpecError {
    let err = match parse_with(task, opts) {
        Ok(def) => panic!("expected a refusal at {path}, got {def:#?}"),
        Err(err) => err,
    };
    assert!(
        err.problems
            .iter()
            .any(|p| p.path == path && p.reason.contains(reason)),
        "expected `{path}: …{reason}…`, got:\n{err}"
    );
    err
}

/// Asserts the container field `field: value` is refused at
/// `containerDefinitions[0].<field>` with `reason`.
fn assert_container_field_refused(field: &str, value: Value, reason: &str) {
    let task = generate_test_task_with_container_field(field, value);
    assert_refused(&task, &format!("containerDefinitions[0].{field}"), reason);
}

#[test]
fn fixture_builders_produce_a_valid_task() {
    let def = parse_ok(&generate_test_task());
    assert_eq!(def.family, "test");
    assert_eq!(def.containers.len(), 1);
    assert_eq!(def.containers[0].name, "app");
}

#[test]
fn all_problems_are_collected() {
    let mut task = generate_test_task_with("networkMode", json!("awsvpc"));
    task["containerDefinitions"][0]["memory"] = json!(4);
    task["containerDefinitions"][0]["stopTimeout"] = json!(500);
    task["containerDefinitions"][0]["workingDirectory"] = json!("app");
    let err = parse(&task).unwrap_err();
    assert_eq!(err.problems.len(), 4, "{err}");
    let text = err.to_string();
    assert_eq!(text.lines().count(), 4);
    assert!(text.contains("networkMode: \"awsvpc\" is not supported"));
    assert!(text.contains("containerDefinitions[0].memory: must be at least 6 MiB, got 4"));
}
