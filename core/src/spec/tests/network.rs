//! Refusals that are true: an omitted `networkMode` is ECS's `bridge`, no refusal
//! names a mode the author did not write, none is a knock-on of another, and the
//! platform refusals (FARGATE-only, awsvpc, GPUs, App Mesh, FireLens, Fargate
//! storage) are one line each.

use serde_json::{json, Value};

use super::*;
use crate::spec::NetworkMode;

fn only_problem(task: &Value) -> FieldProblemText {
    let err = parse(task).unwrap_err();
    assert_eq!(err.problems.len(), 1, "expected one problem, got:\n{err}");
    FieldProblemText(err.problems[0].to_string())
}

/// One problem as displayed (`path: reason`).
struct FieldProblemText(String);

#[test]
fn omitted_network_mode_with_a_port_remap_is_one_refusal_naming_bridge() {
    for (mapping, needs) in [
        (
            json!({ "containerPort": 5000, "hostPort": 0 }),
            "(hostPort 0, a dynamic port)",
        ),
        (
            json!({ "containerPort": 80, "hostPort": 8080 }),
            "(hostPort 8080 to containerPort 80)",
        ),
    ] {
        let task = generate_test_task_with_container_field("portMappings", json!([mapping]));
        let text = only_problem(&task).0;
        assert!(text.starts_with("networkMode: omitted"), "{text}");
        assert!(
            text.contains("bridge (the ECS default when networkMode is omitted)"),
            "{text}"
        );
        assert!(
            text.contains(&format!("containerDefinitions[0].portMappings[0] {needs}")),
            "{text}"
        );
        assert!(text.contains("set \"networkMode\": \"host\""), "{text}");
        assert!(!text.contains("with networkMode \"host\""), "{text}");
    }
}

#[test]
fn omitted_network_mode_with_links_or_net_sysctls_names_bridge_only() {
    let mut task = generate_test_task_with_container_field("links", json!(["db:db"]));
    task["containerDefinitions"][0]["systemControls"] =
        json!([{ "namespace": "net.core.somaxconn", "value": "1024" }]);
    let text = only_problem(&task).0;
    assert!(text.starts_with("networkMode: omitted"), "{text}");
    assert!(text.contains("containerDefinitions[0].links"), "{text}");
    assert!(
        text.contains("containerDefinitions[0].systemControls[0] (net.core.somaxconn)"),
        "{text}"
    );
}

#[test]
fn omitted_network_mode_without_bridge_features_still_runs_as_host() {
    let task = generate_test_task_with_container_field(
        "portMappings",
        json!([{ "containerPort": 80, "hostPort": 80 }, { "containerPort": 81 }]),
    );
    let def = parse_ok(&task);
    assert_eq!(def.network_mode, NetworkMode::Host);
    assert_eq!(def.containers[0].port_mappings[1].host_port, Some(81));
}

#[test]
fn a_refused_network_mode_has_no_knock_ons() {
    for mode in ["bridge", "awsvpc"] {
        let mut task = generate_test_task_with_container_field(
            "portMappings",
            json!([{ "containerPort": 80, "hostPort": 8080 }, { "containerPort": 81, "hostPort": 0 }]),
        );
        task["networkMode"] = json!(mode);
        task["containerDefinitions"][0]["links"] = json!(["db"]);
        task["containerDefinitions"][0]["systemControls"] =
            json!([{ "namespace": "net.ipv4.tcp_keepalive_time", "value": "60" }]);
        let text = only_problem(&task).0;
        assert!(
            text.starts_with(&format!("networkMode: \"{mode}\" is not supported")),
            "{text}"
        );
    }
}

#[test]
fn explicit_host_mode_keeps_its_own_checks() {
    let mut task = generate_test_task_with_container_field("links", json!(["db"]));
    task["networkMode"] = json!("host");
    assert_refused(&task, "containerDefinitions[0].links", "bridge-mode only");
}

#[test]
fn fargate_only_is_one_line_covering_awsvpc_and_fargate_storage() {
    let mut task = generate_test_task_with("requiresCompatibilities", json!(["FARGATE"]));
    task["networkMode"] = json!("awsvpc");
    task["ephemeralStorage"] = json!({ "sizeInGiB": 30 });
    task["containerDefinitions"][0]["portMappings"] =
        json!([{ "containerPort": 80, "hostPort": 80 }]);
    let text = only_problem(&task).0;
    assert!(
        text.starts_with("requiresCompatibilities: [\"FARGATE\"] is not supported: a FARGATE-only definition runs on AWS's hosts"),
        "{text}"
    );
    assert!(text.contains("list \"EXTERNAL\""), "{text}");
    // With EXTERNAL listed too, awsvpc and the Fargate setting are each refused.
    task["requiresCompatibilities"] = json!(["FARGATE", "EXTERNAL"]);
    let err = parse(&task).unwrap_err();
    let paths: Vec<&str> = err.problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(paths, ["ephemeralStorage", "networkMode"], "{err}");
}

#[test]
fn platform_features_are_refused_in_one_line_each() {
    let cases = [
        (
            "resourceRequirements",
            json!([{ "type": "GPU", "value": "1" }]),
            "does not reserve or expose GPUs",
        ),
        (
            "firelensConfiguration",
            json!({ "type": "fluentbit" }),
            "use the awslogs or json-file log driver",
        ),
    ];
    for (field, value, reason) in cases {
        let text = only_problem(&generate_test_task_with_container_field(field, value)).0;
        assert!(text.contains(reason), "{text}");
    }
    let task = generate_test_task_with(
        "proxyConfiguration",
        json!({ "type": "APPMESH", "containerName": "envoy" }),
    );
    assert!(only_problem(&task)
        .0
        .contains("App Mesh needs AWS's mesh control plane"));
    let task = generate_test_task_with("ephemeralStorage", json!({ "sizeInGiB": 30 }));
    assert!(only_problem(&task)
        .0
        .contains("it sizes Fargate's task storage"));
}

#[test]
fn the_advice_for_an_omitted_mode_fits_what_needs_bridge() {
    let task = generate_test_task_with_container_field("links", json!(["db"]));
    let text = only_problem(&task).0;
    assert!(
        text.ends_with("set \"networkMode\": \"host\" (drop links: the task's containers then reach each other on localhost)"),
        "{text}"
    );
}
