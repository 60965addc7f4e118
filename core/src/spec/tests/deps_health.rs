//! `dependsOn`, `healthCheck` and `restartPolicy`.

use std::time::Duration;

use serde_json::{json, Value};

use super::*;
use crate::spec::*;

fn generate_test_dependent(name: &str, depends_on: Value) -> Value {
    let mut c = generate_test_container(name);
    c["dependsOn"] = depends_on;
    c
}

fn generate_test_checked_container(name: &str) -> Value {
    let mut c = generate_test_container(name);
    c["healthCheck"] = json!({ "command": ["CMD", "true"] });
    c
}

fn generate_test_sidecar(name: &str) -> Value {
    let mut c = generate_test_container(name);
    c["essential"] = json!(false);
    c
}

#[test]
fn every_condition_is_accepted() {
    let task = generate_test_task_with_containers(vec![
        generate_test_checked_container("db"),
        generate_test_sidecar("migrate"),
        generate_test_sidecar("seed"),
        generate_test_dependent(
            "app",
            json!([
                { "containerName": "db", "condition": "HEALTHY" },
                { "containerName": "db", "condition": "START" },
                { "containerName": "migrate", "condition": "SUCCESS" },
                { "containerName": "seed", "condition": "COMPLETE" }
            ]),
        ),
    ]);
    let deps = parse_ok(&task).containers.remove(3).depends_on;
    let conditions: Vec<_> = deps.iter().map(|d| d.condition).collect();
    use DependencyCondition::*;
    assert_eq!(conditions, vec![Healthy, Start, Success, Complete]);
    assert_eq!(
        deps[2],
        Dependency {
            container: "migrate".into(),
            condition: Success
        }
    );
}

#[test]
fn dependency_entries_are_checked() {
    let task = generate_test_task_with_containers(vec![
        generate_test_container("db"),
        generate_test_dependent(
            "app",
            json!([
                { "containerName": "dbb", "condition": "START" },
                { "containerName": "app", "condition": "START" },
                { "containerName": "db", "condition": "RUNNING" },
                { "condition": "START" },
                { "containerName": "db" }
            ]),
        ),
    ]);
    let at = "containerDefinitions[1].dependsOn";
    assert_refused(
        &task,
        &format!("{at}[0].containerName"),
        "unknown container \"dbb\"",
    );
    assert_refused(
        &task,
        &format!("{at}[1].containerName"),
        "container \"app\" cannot depend on itself",
    );
    assert_refused(
        &task,
        &format!("{at}[2].condition"),
        "must be START, COMPLETE, SUCCESS or HEALTHY, got \"RUNNING\"",
    );
    assert_refused(&task, &format!("{at}[3].containerName"), "is required");
    assert_refused(&task, &format!("{at}[4].condition"), "is required");
}

#[test]
fn healthy_needs_a_health_check() {
    let mut none = generate_test_container("none");
    none["healthCheck"] = json!({ "command": ["NONE"] });
    let task = generate_test_task_with_containers(vec![
        generate_test_container("db"),
        none,
        generate_test_dependent(
            "app",
            json!([
                { "containerName": "db", "condition": "HEALTHY" },
                { "containerName": "none", "condition": "HEALTHY" }
            ]),
        ),
    ]);
    assert_refused(
        &task,
        "containerDefinitions[2].dependsOn[0].condition",
        "HEALTHY needs a healthCheck on container \"db\"",
    );
    assert_refused(
        &task,
        "containerDefinitions[2].dependsOn[1].condition",
        "container \"none\"",
    );
}

#[test]
fn complete_and_success_cannot_wait_for_essential_containers() {
    let task = generate_test_task_with_containers(vec![
        generate_test_container("db"),
        generate_test_dependent(
            "app",
            json!([
                { "containerName": "db", "condition": "COMPLETE" },
                { "containerName": "db", "condition": "SUCCESS" }
            ]),
        ),
    ]);
    assert_refused(
        &task,
        "containerDefinitions[1].dependsOn[0].condition",
        "COMPLETE cannot wait for essential container \"db\"",
    );
    assert_refused(
        &task,
        "containerDefinitions[1].dependsOn[1].condition",
        "SUCCESS cannot wait",
    );
}

#[test]
fn dependency_cycles_name_the_containers() {
    let start = |name: &str| json!([{ "containerName": name, "condition": "START" }]);
    let task = generate_test_task_with_containers(vec![
        generate_test_container("standalone"),
        generate_test_dependent("a", start("b")),
        generate_test_dependent("b", start("c")),
        generate_test_dependent("c", start("a")),
        generate_test_dependent("d", start("a")),
    ]);
    let err = assert_refused(
        &task,
        "containerDefinitions[1].dependsOn",
        "dependency cycle: a -> b -> c -> a",
    );
    assert_eq!(err.problems.len(), 1, "{err}");
}

#[test]
fn health_check_defaults_and_forms() {
    let mut task = generate_test_task_with_container_field(
        "healthCheck",
        json!({ "command": ["CMD-SHELL", "curl -f http://localhost/ || exit 1"] }),
    );
    let check = parse_ok(&task).containers.remove(0).health_check.unwrap();
    assert_eq!(
        check,
        HealthCheck {
            command: HealthCommand::Shell("curl -f http://localhost/ || exit 1".into()),
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(5),
            retries: 3,
            start_period: Duration::ZERO,
        }
    );
    task["containerDefinitions"][0]["healthCheck"] = json!({ "command": ["CMD", "/bin/check", "--quick"], "interval": 5, "timeout": 60, "retries": 10, "startPeriod": 300 });
    let check = parse_ok(&task).containers.remove(0).health_check.unwrap();
    assert_eq!(
        check.command,
        HealthCommand::Exec(vec!["/bin/check".into(), "--quick".into()])
    );
    assert_eq!(
        (check.interval, check.timeout, check.retries),
        (Duration::from_secs(5), Duration::from_secs(60), 10)
    );
    task["containerDefinitions"][0]["healthCheck"] = json!({ "command": ["NONE"] });
    assert_eq!(
        parse_ok(&task).containers[0]
            .health_check
            .as_ref()
            .map(|h| &h.command),
        Some(&HealthCommand::None)
    );
}

#[test]
fn health_check_ranges_and_commands_are_checked() {
    let check = json!({ "command": ["CMD", "true"], "interval": 2, "timeout": 61, "retries": 0, "startPeriod": 301 });
    let task = generate_test_task_with_container_field("healthCheck", check);
    let err = assert_refused(
        &task,
        "containerDefinitions[0].healthCheck.interval",
        "must be between 5 and 300 seconds, got 2",
    );
    assert!(err.to_string().contains(
        "containerDefinitions[0].healthCheck.interval: must be between 5 and 300 seconds, got 2"
    ));
    assert_refused(
        &task,
        "containerDefinitions[0].healthCheck.timeout",
        "between 2 and 60 seconds, got 61",
    );
    assert_refused(
        &task,
        "containerDefinitions[0].healthCheck.retries",
        "between 1 and 10, got 0",
    );
    assert_refused(
        &task,
        "containerDefinitions[0].healthCheck.startPeriod",
        "between 0 and 300 seconds, got 301",
    );
    for (command, reason) in [
        (json!(["CMD"]), "CMD needs a command"),
        (json!(["CMD-SHELL", " "]), "CMD-SHELL needs a command"),
        (json!(["NONE", "x"]), "NONE takes nothing"),
        (
            json!(["curl", "-f", "http://localhost"]),
            "must start with \"CMD\", \"CMD-SHELL\" or \"NONE\"",
        ),
        (json!([]), "is required"),
    ] {
        let task =
            generate_test_task_with_container_field("healthCheck", json!({ "command": command }));
        assert_refused(&task, "containerDefinitions[0].healthCheck.command", reason);
    }
}

#[test]
fn restart_policy_defaults_and_ranges() {
    let task = generate_test_task_with_container_field("restartPolicy", json!({ "enabled": true }));
    let policy = parse_ok(&task).containers.remove(0).restart_policy.unwrap();
    assert_eq!(
        policy,
        RestartPolicy {
            enabled: true,
            ignored_exit_codes: vec![],
            restart_attempt_period: Duration::from_secs(300)
        }
    );
    let task = generate_test_task_with_container_field(
        "restartPolicy",
        json!({ "enabled": false, "ignoredExitCodes": [0, 143], "restartAttemptPeriod": 60 }),
    );
    let policy = parse_ok(&task).containers.remove(0).restart_policy.unwrap();
    assert_eq!(
        (
            policy.enabled,
            policy.ignored_exit_codes,
            policy.restart_attempt_period
        ),
        (false, vec![0, 143], Duration::from_secs(60))
    );

    let codes: Vec<i32> = (0..51).collect();
    let task = generate_test_task_with_container_field(
        "restartPolicy",
        json!({ "enabled": true, "ignoredExitCodes": codes, "restartAttemptPeriod": 30 }),
    );
    assert_refused(
        &task,
        "containerDefinitions[0].restartPolicy.ignoredExitCodes",
        "at most 50 exit codes, got 51",
    );
    assert_refused(
        &task,
        "containerDefinitions[0].restartPolicy.restartAttemptPeriod",
        "between 60 and 1800 seconds, got 30",
    );
    let task = generate_test_task_with_container_field(
        "restartPolicy",
        json!({ "restartAttemptPeriod": 1801 }),
    );
    assert_refused(
        &task,
        "containerDefinitions[0].restartPolicy.enabled",
        "is required",
    );
    assert_refused(
        &task,
        "containerDefinitions[0].restartPolicy.restartAttemptPeriod",
        "got 1801",
    );
}
