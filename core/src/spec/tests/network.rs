//! Network modes: an omitted `networkMode` is ECS's `bridge` (accepted), no refusal
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
fn omitted_network_mode_is_bridge_with_dynamic_and_remapped_ports() {
    let task = generate_test_task_with_container_field(
        "portMappings",
        json!([
            { "containerPort": 80, "hostPort": 8080 },
            { "containerPort": 81 },
            { "containerPort": 53, "hostPort": 0, "protocol": "udp" }
        ]),
    );
    let def = parse_ok(&task);
    assert_eq!(def.network_mode, NetworkMode::Bridge);
    let ports: Vec<_> = def.containers[0]
        .port_mappings
        .iter()
        .map(|m| (m.container_port, m.host_port))
        .collect();
    assert_eq!(ports, [(80, Some(8080)), (81, None), (53, None)]);
}

#[test]
fn bridge_accepts_links_to_task_containers_and_net_sysctls() {
    let mut task = generate_test_task_with_container_field("links", json!(["db:database"]));
    task["networkMode"] = json!("bridge");
    task["containerDefinitions"][0]["systemControls"] =
        json!([{ "namespace": "net.core.somaxconn", "value": "1024" }]);
    let mut db = task["containerDefinitions"][0].clone();
    db["name"] = json!("db");
    db["links"] = json!(["nope"]);
    task["containerDefinitions"]
        .as_array_mut()
        .expect("containers")
        .push(db);
    let text = only_problem(&task).0;
    assert!(
        text.starts_with("containerDefinitions[1].links[0]: \"nope\" is not another container"),
        "{text}"
    );
    task["containerDefinitions"][1]["links"] = json!([]);
    let def = parse_ok(&task);
    assert_eq!(
        def.containers[0].links,
        [("db".to_string(), "database".to_string())]
    );
    task["containerDefinitions"][1]["links"] = json!(["db:bad alias"]);
    assert!(only_problem(&task).0.contains("host-name alias"));
}

#[test]
fn a_refused_network_mode_has_no_knock_ons() {
    for mode in ["awsvpc", "nat"] {
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
