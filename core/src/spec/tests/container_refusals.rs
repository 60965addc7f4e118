//! Refusals of container fields: identity, process, resources, mounts, network,
//! logging, and the ECS features skerry cannot honour.

use serde_json::json;

use super::*;

#[test]
fn name_and_image_are_required_and_checked() {
    let task = generate_test_task_with_containers(vec![json!({ "memory": 32 })]);
    let err = assert_refused(&task, "containerDefinitions[0].name", "is required");
    assert!(
        err.problems
            .iter()
            .any(|p| p.path == "containerDefinitions[0].image" && p.reason == "is required"),
        "{err}"
    );
    assert_container_field_refused(
        "name",
        json!("web/1"),
        "container name \"web/1\" may only contain",
    );
    assert_container_field_refused("image", json!("BusyBox:latest"), "lower-case");
    assert_container_field_refused("image", json!(""), "must not be empty");
}

#[test]
fn unsupported_features_are_refused_naming_the_field() {
    let cases = [
        (
            "environmentFiles",
            json!([{ "value": "arn:aws:s3:::bucket/app.env", "type": "s3" }]),
            "S3",
        ),
        (
            "resourceRequirements",
            json!([{ "type": "GPU", "value": "1" }]),
            "GPU",
        ),
        (
            "firelensConfiguration",
            json!({ "type": "fluentbit" }),
            "skerry logs",
        ),
        ("interactive", json!(true), "no stdin"),
        ("pseudoTerminal", json!(true), "no terminal"),
        (
            "credentialSpecs",
            json!(["credentialspec:arn:aws:s3:::b/spec.json"]),
            "Windows",
        ),
    ];
    for (field, value, reason) in cases {
        assert_container_field_refused(field, value, reason);
    }
}

#[test]
fn docker_security_options_honoured_or_refused_by_name() {
    let task = generate_test_task_with_container_field(
        "dockerSecurityOptions",
        json!([
            "no-new-privileges",
            "seccomp=unconfined",
            "apparmor:unconfined",
            "label=disable"
        ]),
    );
    let c = &parse_ok(&task).containers[0];
    assert!(c.security.no_new_privileges && c.security.seccomp_unconfined);
    let plain = parse_ok(&generate_test_task());
    assert_eq!(
        plain.containers[0].security,
        crate::spec::SecurityOptions::default()
    );
    for (opt, reason) in [
        (
            "seccomp=/etc/profile.json",
            "custom profiles are not supported",
        ),
        ("apparmor=docker-default", "no AppArmor profiles"),
        ("label=type:svirt_apache_t", "no SELinux labels"),
        ("no-new-privileges:false", "always sets no-new-privileges"),
        ("credentialspec:file://x.json", "Windows"),
        (
            "systempaths=unconfined",
            "\"systempaths=unconfined\" is not supported",
        ),
    ] {
        let task = generate_test_task_with_container_field("dockerSecurityOptions", json!([opt]));
        assert_refused(
            &task,
            "containerDefinitions[0].dockerSecurityOptions[0]",
            reason,
        );
    }
}

#[test]
fn privileged_needs_the_agent_setting() {
    assert_container_field_refused(
        "privileged",
        json!(true),
        "set allow_privileged = true in the agent config",
    );
}

#[test]
fn environment_entries_are_checked() {
    let task = generate_test_task_with_container_field("environment", json!([{ "name": "A" }]));
    assert_refused(
        &task,
        "containerDefinitions[0].environment[0].value",
        "is required",
    );
    let task = generate_test_task_with_container_field(
        "environment",
        json!([{ "name": "A=B", "value": "1" }]),
    );
    assert_refused(
        &task,
        "containerDefinitions[0].environment[0].name",
        "without '='",
    );
    let task = generate_test_task_with_container_field("environment", json!([{ "value": "1" }]));
    assert_refused(
        &task,
        "containerDefinitions[0].environment[0].name",
        "non-empty",
    );
}

#[test]
fn process_fields_are_checked() {
    assert_container_field_refused("workingDirectory", json!("srv"), "must be an absolute path");
    assert_container_field_refused("user", json!("1000:staff"), "numeric gid");
    assert_container_field_refused(
        "user",
        json!("app user"),
        "must be uid, uid:gid, user or user:group",
    );
    assert_container_field_refused(
        "stopTimeout",
        json!(121),
        "must be at most 120 seconds, got 121",
    );
    assert_container_field_refused("startTimeout", json!(0), "at least 1 second");
    assert_container_field_refused(
        "versionConsistency",
        json!("sometimes"),
        "\"enabled\" or \"disabled\"",
    );
}

#[test]
fn resources_are_checked() {
    assert_container_field_refused("cpu", json!(300_000), "at most 262144 cpu units");
    assert_container_field_refused("memory", json!(5), "must be at least 6 MiB, got 5");
    assert_container_field_refused(
        "memoryReservation",
        json!(4),
        "must be at least 6 MiB, got 4",
    );
    assert_container_field_refused(
        "memoryReservation",
        json!(64),
        "must not exceed memory (64 MiB > 32 MiB)",
    );
}

#[test]
fn mount_points_are_checked() {
    let mut task = generate_test_task_with("volumes", json!([{ "name": "data" }]));
    task["containerDefinitions"][0]["mountPoints"] = json!([
        { "sourceVolume": "dta", "containerPath": "/data" },
        { "sourceVolume": "data", "containerPath": "data" },
        { "sourceVolume": "data", "containerPath": "/" },
        { "sourceVolume": "data", "containerPath": "/data/" },
        { "containerPath": "/x" }
    ]);
    let at = "containerDefinitions[0].mountPoints";
    assert_refused(
        &task,
        &format!("{at}[0].sourceVolume"),
        "no volume named \"dta\"",
    );
    assert_refused(
        &task,
        &format!("{at}[1].containerPath"),
        "must be an absolute path",
    );
    assert_refused(
        &task,
        &format!("{at}[2].containerPath"),
        "cannot mount over the root filesystem",
    );
    assert_refused(
        &task,
        &format!("{at}[3].containerPath"),
        "already mounted by mountPoints[0]",
    );
    assert_refused(&task, &format!("{at}[4].sourceVolume"), "is required");
}

#[test]
fn port_mappings_are_checked() {
    let field = "portMappings";
    let mut task = generate_test_task_with_container_field(
        field,
        json!([{ "containerPort": 80, "hostPort": 8080 }]),
    );
    task["networkMode"] = json!("host");
    assert_refused(
        &task,
        "containerDefinitions[0].portMappings[0].hostPort",
        "must equal containerPort (80) with networkMode \"host\", got 8080",
    );
    let mut task = generate_test_task_with_container_field(field, json!([{ "containerPort": 80 }]));
    task["networkMode"] = json!("none");
    assert_refused(
        &task,
        "containerDefinitions[0].portMappings",
        "networkMode \"none\"",
    );
    let bad = json!([{ "containerPort": 0 }, { "containerPort": 70000 }, { "containerPort": 53, "protocol": "sctp" }, { "hostPort": 1 }]);
    let task = generate_test_task_with_container_field(field, bad);
    assert_refused(
        &task,
        "containerDefinitions[0].portMappings[0].containerPort",
        "between 1 and 65535, got 0",
    );
    assert_refused(
        &task,
        "containerDefinitions[0].portMappings[1].containerPort",
        "got 70000",
    );
    assert_refused(
        &task,
        "containerDefinitions[0].portMappings[2].protocol",
        "\"tcp\" or \"udp\"",
    );
    assert_refused(
        &task,
        "containerDefinitions[0].portMappings[3].containerPort",
        "is required",
    );
    let range = json!([{ "containerPort": 80, "containerPortRange": "8000-8010" }]);
    let task = generate_test_task_with_container_field(field, range);
    assert_refused(
        &task,
        "containerDefinitions[0].portMappings[0].containerPortRange",
        "is not supported",
    );
}

#[test]
fn names_and_addresses_are_checked() {
    assert_container_field_refused("hostname", json!("bad_host"), "not a valid host name");
    let hosts = json!([{ "hostname": "broker", "ipAddress": "10.0.0.300" }, { "hostname": "", "ipAddress": "10.0.0.1" }]);
    let task = generate_test_task_with_container_field("extraHosts", hosts);
    assert_refused(
        &task,
        "containerDefinitions[0].extraHosts[0].ipAddress",
        "\"10.0.0.300\" is not an IP address",
    );
    assert_refused(
        &task,
        "containerDefinitions[0].extraHosts[1].hostname",
        "host name",
    );
    let task =
        generate_test_task_with_container_field("dnsServers", json!(["8.8.8.8", "dns.google"]));
    assert_refused(
        &task,
        "containerDefinitions[0].dnsServers[1]",
        "not an IP address",
    );
    let task = generate_test_task_with_container_field("dnsSearchDomains", json!(["bad domain"]));
    assert_refused(
        &task,
        "containerDefinitions[0].dnsSearchDomains[0]",
        "not a valid host name",
    );
}
