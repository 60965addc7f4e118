//! Every accepted form, and the defaults and normalizations applied to it.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;

use super::*;
use crate::spec::*;

#[test]
fn defaults_of_a_minimal_task() {
    let def = parse_ok(&generate_test_task());
    assert_eq!(def.revision, 0);
    assert_eq!(def.network_mode, NetworkMode::Bridge);
    assert_eq!(def.pid_mode, NamespaceMode::Private);
    assert_eq!(def.ipc_mode, NamespaceMode::Private);
    assert_eq!((def.cpu_units, def.memory_mib), (None, None));
    let c = &def.containers[0];
    assert!(c.essential && !c.privileged && !c.readonly_root_filesystem);
    assert_eq!(c.stop_timeout, DEFAULT_STOP_TIMEOUT);
    assert_eq!(
        (c.cpu_units, c.memory_mib, c.start_timeout),
        (0, Some(32), None)
    );
    assert_eq!(c.linux, LinuxParameters::default());
    assert_eq!(
        (
            c.command.clone(),
            c.health_check.clone(),
            c.restart_policy.clone()
        ),
        (None, None, None)
    );
}

#[test]
fn essential_defaults_to_true() {
    let mut task = generate_test_task();
    task["containerDefinitions"][0]
        .as_object_mut()
        .map(|c| c.remove("essential"));
    assert!(parse_ok(&task).containers[0].essential);
}

#[test]
fn accepts_describe_output_and_keeps_revision() {
    let mut inner = generate_test_task();
    inner["revision"] = json!(7);
    let describe = json!({ "taskDefinition": inner, "tags": [{ "key": "team", "value": "edge" }] });
    let def = parse_ok(&describe);
    assert_eq!((def.family.as_str(), def.revision), ("test", 7));
}

#[test]
fn describe_output_problems_are_under_task_definition() {
    let inner = generate_test_task_with("networkMode", json!("awsvpc"));
    assert_refused(
        &json!({ "taskDefinition": inner }),
        "taskDefinition.networkMode",
        "\"awsvpc\" is not supported",
    );
    let typo = generate_test_task_with_container_field("memry", json!(1));
    assert_refused(
        &json!({ "taskDefinition": typo }),
        "taskDefinition.containerDefinitions[0].memry",
        "unknown field",
    );
}

#[test]
fn network_and_namespace_modes() {
    assert_eq!(
        parse_ok(&generate_test_task_with("networkMode", json!("host"))).network_mode,
        NetworkMode::Host
    );
    assert_eq!(
        parse_ok(&generate_test_task_with("networkMode", json!("none"))).network_mode,
        NetworkMode::None
    );
    for (value, mode) in [("host", NamespaceMode::Host), ("task", NamespaceMode::Task)] {
        assert_eq!(
            parse_ok(&generate_test_task_with("pidMode", json!(value))).pid_mode,
            mode
        );
        assert_eq!(
            parse_ok(&generate_test_task_with("ipcMode", json!(value))).ipc_mode,
            mode
        );
    }
}

#[test]
fn volumes_host_path_and_task_scoped() {
    let mut task = generate_test_task_with(
        "volumes",
        json!([
            { "name": "config", "host": { "sourcePath": "/etc/app" } },
            { "name": "scratch" },
            { "name": "empty-host", "host": {} }
        ]),
    );
    task["containerDefinitions"][0]["mountPoints"] = json!([
        { "sourceVolume": "config", "containerPath": "/config", "readOnly": true },
        { "sourceVolume": "scratch", "containerPath": "/scratch" }
    ]);
    let def = parse_ok(&task);
    assert_eq!(
        def.volume("config").map(|v| &v.source),
        Some(&VolumeSource::HostPath(PathBuf::from("/etc/app")))
    );
    assert_eq!(
        def.volume("scratch").map(|v| &v.source),
        Some(&VolumeSource::TaskScoped)
    );
    assert_eq!(
        def.volume("empty-host").map(|v| &v.source),
        Some(&VolumeSource::TaskScoped)
    );
    let mounts = &def.containers[0].mount_points;
    assert_eq!(
        mounts[0],
        MountPoint {
            source_volume: "config".into(),
            container_path: "/config".into(),
            read_only: true
        }
    );
    assert!(!mounts[1].read_only);
}

#[test]
fn task_cpu_and_memory_forms() {
    for (cpu, units) in [
        (json!("256"), 256),
        (json!(512), 512),
        (json!("1 vCPU"), 1024),
        (json!("0.5 vcpu"), 512),
    ] {
        assert_eq!(
            parse_ok(&generate_test_task_with("cpu", cpu)).cpu_units,
            Some(units)
        );
    }
    for (memory, mib) in [
        (json!("512"), 512),
        (json!(256), 256),
        (json!("1 GB"), 1024),
        (json!("512 MiB"), 512),
    ] {
        assert_eq!(
            parse_ok(&generate_test_task_with("memory", memory)).memory_mib,
            Some(mib)
        );
    }
}

#[test]
fn compatibility_and_ignored_fields() {
    let mut task = generate_test_task_with("requiresCompatibilities", json!(["EC2", "FARGATE"]));
    task["runtimePlatform"] =
        json!({ "operatingSystemFamily": "LINUX", "cpuArchitecture": "ARM64" });
    task["executionRoleArn"] = json!("arn:aws:iam::123456789012:role/ecsTaskExecutionRole");
    task["taskRoleArn"] = json!("arn:aws:iam::123456789012:role/app");
    task["tags"] = json!([{ "key": "env", "value": "prod" }]);
    task["placementConstraints"] = json!([]);
    task["inferenceAccelerators"] = json!([]);
    task["enableFaultInjection"] = json!(false);
    parse_ok(&task);
    parse_ok(&generate_test_task_with(
        "requiresCompatibilities",
        json!(["EXTERNAL"]),
    ));
}

#[test]
fn process_settings() {
    let mut task = generate_test_task();
    let c = &mut task["containerDefinitions"][0];
    c["entryPoint"] = json!(["/bin/sh", "-c"]);
    c["command"] = json!(["echo hi"]);
    c["environment"] = json!([{ "name": "A", "value": "1" }, { "name": "B", "value": "x" }, { "name": "A", "value": "2" }]);
    c["workingDirectory"] = json!("/srv");
    c["cpu"] = json!(128);
    c["memoryReservation"] = json!(16);
    c["stopTimeout"] = json!(120);
    c["startTimeout"] = json!(60);
    c["readonlyRootFilesystem"] = json!(true);
    c["dockerLabels"] = json!({ "com.example.role": "worker" });
    let c = parse_ok(&task).containers.remove(0);
    assert_eq!(
        c.entry_point,
        Some(vec!["/bin/sh".to_string(), "-c".to_string()])
    );
    assert_eq!(c.command, Some(vec!["echo hi".to_string()]));
    assert_eq!(
        c.environment.get("A").map(String::as_str),
        Some("2"),
        "later duplicates win"
    );
    assert_eq!(c.environment.len(), 2);
    assert_eq!(c.working_directory.as_deref(), Some("/srv"));
    assert_eq!((c.cpu_units, c.memory_reservation_mib), (128, Some(16)));
    assert_eq!(
        (c.stop_timeout, c.start_timeout),
        (Duration::from_secs(120), Some(Duration::from_secs(60)))
    );
    assert!(c.readonly_root_filesystem);
    assert_eq!(
        c.labels.get("com.example.role").map(String::as_str),
        Some("worker")
    );
}

#[test]
fn empty_command_means_not_set() {
    let task = generate_test_task_with_container_field("command", json!([]));
    assert_eq!(parse_ok(&task).containers[0].command, None);
}

#[test]
fn user_forms() {
    let cases = [
        (
            "1000",
            UserSpec::Id {
                uid: 1000,
                gid: None,
            },
        ),
        (
            "1000:1000",
            UserSpec::Id {
                uid: 1000,
                gid: Some(1000),
            },
        ),
        (
            "nobody",
            UserSpec::Name {
                user: "nobody".into(),
                group: None,
            },
        ),
        (
            "app:staff",
            UserSpec::Name {
                user: "app".into(),
                group: Some("staff".into()),
            },
        ),
    ];
    for (user, expected) in cases {
        let task = generate_test_task_with_container_field("user", json!(user));
        assert_eq!(parse_ok(&task).containers[0].user, Some(expected));
    }
}

#[test]
fn privileged_when_the_agent_allows_it() {
    let task = generate_test_task_with_container_field("privileged", json!(true));
    let def = parse_with(
        &task,
        &ParseOptions {
            allow_privileged: true,
        },
    )
    .unwrap();
    assert!(def.containers[0].privileged);
    parse_ok(&generate_test_task_with_container_field(
        "privileged",
        json!(false),
    ));
}

#[test]
fn network_settings() {
    let mut task = generate_test_task();
    let c = &mut task["containerDefinitions"][0];
    c["hostname"] = json!("gw-sensor-1");
    c["extraHosts"] = json!([{ "hostname": "broker", "ipAddress": "10.0.0.5" }, { "hostname": "v6", "ipAddress": "fd00::5" }]);
    c["dnsServers"] = json!(["1.1.1.1", "2606:4700:4700::1111"]);
    c["dnsSearchDomains"] = json!(["plant.example.com"]);
    c["portMappings"] = json!([{ "containerPort": 8080 }, { "containerPort": 5353, "hostPort": 5353, "protocol": "udp", "name": "mdns" }]);
    let c = parse_ok(&task).containers.remove(0);
    assert_eq!(c.hostname.as_deref(), Some("gw-sensor-1"));
    assert_eq!(
        c.extra_hosts[0],
        ("broker".to_string(), "10.0.0.5".to_string())
    );
    assert_eq!(c.dns_servers.len(), 2);
    assert_eq!(c.dns_search_domains, vec!["plant.example.com".to_string()]);
    assert_eq!(
        c.port_mappings[0],
        PortMapping {
            container_port: 8080,
            host_port: None,
            protocol: "tcp".into()
        }
    );
    assert_eq!(c.port_mappings[1].protocol, "udp");
}

#[test]
fn disable_networking_gives_the_container_loopback_only() {
    let task = generate_test_task_with_container_field("disableNetworking", json!(true));
    assert!(parse_ok(&task).containers[0].disable_networking);
    let task = generate_test_task_with_container_field("disableNetworking", json!(false));
    assert!(!parse_ok(&task).containers[0].disable_networking);
    let mut task = generate_test_task_with_container_field("disableNetworking", json!(true));
    task["containerDefinitions"][0]["portMappings"] = json!([{ "containerPort": 80 }]);
    assert_refused(
        &task,
        "containerDefinitions[0].portMappings",
        "cannot publish ports of a container with disableNetworking",
    );
    let task = generate_test_task_with_container_field("disableNetworking", json!("yes"));
    assert!(parse(&task)
        .expect_err("a string")
        .to_string()
        .contains("disableNetworking"));
}

#[test]
fn log_drivers_json_file_and_local() {
    for driver in ["json-file", "local"] {
        let log = json!({ "logDriver": driver, "options": { "max-size": "10m" } });
        parse_ok(&generate_test_task_with_container_field(
            "logConfiguration",
            log,
        ));
    }
}

#[test]
fn refused_fields_with_empty_values_are_accepted() {
    let mut task = generate_test_task();
    let c = &mut task["containerDefinitions"][0];
    for field in [
        "secrets",
        "environmentFiles",
        "volumesFrom",
        "links",
        "resourceRequirements",
        "dockerSecurityOptions",
        "credentialSpecs",
    ] {
        c[field] = json!([]);
    }
    for field in ["interactive", "pseudoTerminal"] {
        c[field] = json!(false);
    }
    c["systemControls"] = json!([]);
    c["versionConsistency"] = json!("enabled");
    parse_ok(&task);
}
