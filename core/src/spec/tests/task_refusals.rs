//! Refusals of task-level fields, and of the rules that span containers.

use serde_json::json;

use super::*;

#[test]
fn family_is_required_and_checked() {
    let mut task = generate_test_task();
    task.as_object_mut().map(|t| t.remove("family"));
    assert_refused(&task, "family", "is required");
    assert_refused(
        &generate_test_task_with("family", json!("my app")),
        "family",
        "may only contain letters, digits",
    );
    assert_refused(
        &generate_test_task_with("family", json!("")),
        "family",
        "must not be empty",
    );
}

#[test]
fn awsvpc_and_unknown_modes_are_refused() {
    for (mode, why) in [
        ("awsvpc", "which ECS Anywhere refuses too"),
        ("nat", "skerry runs bridge, host or none networking"),
    ] {
        let err = assert_refused(
            &generate_test_task_with("networkMode", json!(mode)),
            "networkMode",
            why,
        );
        assert!(err.problems[0]
            .reason
            .starts_with(&format!("\"{mode}\" is not supported")));
    }
}

#[test]
fn namespace_modes_are_checked() {
    assert_refused(
        &generate_test_task_with("pidMode", json!("none")),
        "pidMode",
        "must be \"host\" or \"task\"",
    );
    assert_refused(
        &generate_test_task_with("ipcMode", json!("none")),
        "ipcMode",
        "\"none\" is not supported",
    );
    assert_refused(
        &generate_test_task_with("ipcMode", json!("shareable")),
        "ipcMode",
        "got \"shareable\"",
    );
}

#[test]
fn unsupported_volume_kinds_are_refused() {
    for field in [
        "efsVolumeConfiguration",
        "fsxWindowsFileServerVolumeConfiguration",
    ] {
        let task = generate_test_task_with("volumes", json!([{ "name": "v", field: { "x": 1 } }]));
        assert_refused(&task, &format!("volumes[0].{field}"), "is not supported");
    }
    let task = generate_test_task_with(
        "volumes",
        json!([{ "name": "v", "configuredAtLaunch": true }]),
    );
    assert_refused(&task, "volumes[0].configuredAtLaunch", "EBS");
}

#[test]
fn docker_volumes_with_the_local_driver_are_accepted() {
    let task = generate_test_task_with(
        "volumes",
        json!([
            { "name": "t", "dockerVolumeConfiguration": { "scope": "task", "driver": "local", "labels": { "a": "b" } } },
            { "name": "s", "dockerVolumeConfiguration": { "scope": "shared", "autoprovision": true } },
            { "name": "m", "dockerVolumeConfiguration": { "driverOpts": { "type": "tmpfs", "device": "tmpfs", "o": "size=16m,mode=1777" } } },
            { "name": "b", "dockerVolumeConfiguration": { "driverOpts": { "type": "none", "o": "bind", "device": "/srv/data" } } }
        ]),
    );
    let def = parse_ok(&task);
    let named = |i: usize| match &def.volumes[i].source {
        crate::spec::VolumeSource::Named(n) => n.clone(),
        other => panic!("volumes[{i}] is {other:?}"),
    };
    assert!(!named(0).shared && named(0).tmpfs_options.is_none());
    assert_eq!(named(0).labels.get("a").map(String::as_str), Some("b"));
    assert!(named(1).shared && named(1).autoprovision);
    assert_eq!(
        named(2).tmpfs_options,
        Some(vec!["size=16m".to_string(), "mode=1777".to_string()])
    );
    assert_eq!(named(3).bind_device.as_deref(), Some("/srv/data"));
    assert!(named(3).tmpfs_options.is_none() && named(2).bind_device.is_none());
}

#[test]
fn docker_volumes_other_drivers_and_options_are_refused_by_name() {
    let at = "volumes[0].dockerVolumeConfiguration";
    let cases = [
        (
            json!({ "driver": "rexray/ebs" }),
            "driver",
            "only the \"local\" driver",
        ),
        (json!({ "scope": "global" }), "scope", "got \"global\""),
        (
            json!({ "autoprovision": true }),
            "autoprovision",
            "scope \"shared\"",
        ),
        (
            json!({ "driverOpts": { "type": "nfs" } }),
            "driverOpts.type",
            "the local driver's types here are \"tmpfs\" and \"none\"",
        ),
        (
            json!({ "driverOpts": { "type": "none", "device": "srv", "o": "bind" } }),
            "driverOpts.device",
            "absolute",
        ),
        (
            json!({ "driverOpts": { "type": "none", "device": "/srv", "o": "bind,nosuid" } }),
            "driverOpts.o",
            "\"nosuid\" is not supported with type \"none\"",
        ),
        (
            json!({ "driverOpts": { "type": "none", "device": "/srv" } }),
            "driverOpts.o",
            "is required with type \"none\"",
        ),
        (
            json!({ "driverOpts": { "type": "none", "o": "bind" } }),
            "driverOpts.device",
            "is required with type \"none\"",
        ),
        (
            json!({ "driverOpts": { "device": "/dev/sda1" } }),
            "driverOpts.device",
            "needs type \"tmpfs\" or \"none\"",
        ),
        (
            json!({ "driverOpts": { "type": "tmpfs", "o": "size=1m,exec" } }),
            "driverOpts.o",
            "\"exec\" is not supported",
        ),
        (
            json!({ "driverOpts": { "copy": "no" } }),
            "driverOpts.copy",
            "not a local driver option",
        ),
    ];
    for (config, path, reason) in cases {
        let task = generate_test_task_with(
            "volumes",
            json!([{ "name": "v", "dockerVolumeConfiguration": config }]),
        );
        assert_refused(&task, &format!("{at}.{path}"), reason);
    }
    let task = generate_test_task_with(
        "volumes",
        json!([{ "name": "v", "host": { "sourcePath": "/srv" }, "dockerVolumeConfiguration": {} }]),
    );
    assert_refused(&task, at, "cannot be combined with host.sourcePath");
}

#[test]
fn volume_names_and_paths_are_checked() {
    let task = generate_test_task_with(
        "volumes",
        json!([{ "name": "v", "host": { "sourcePath": "data/v" } }]),
    );
    assert_refused(
        &task,
        "volumes[0].host.sourcePath",
        "must be an absolute path",
    );
    let task = generate_test_task_with("volumes", json!([{ "name": "v" }, { "name": "v" }]));
    assert_refused(
        &task,
        "volumes[1].name",
        "duplicate volume name \"v\": also used by volumes[0]",
    );
    assert_refused(
        &generate_test_task_with("volumes", json!([{ "host": {} }])),
        "volumes[0].name",
        "is required",
    );
    assert_refused(
        &generate_test_task_with("volumes", json!([{ "name": "a b" }])),
        "volumes[0].name",
        "volume name",
    );
}

#[test]
fn task_size_is_checked() {
    assert_refused(
        &generate_test_task_with("cpu", json!("lots")),
        "cpu",
        "must be cpu units",
    );
    assert_refused(
        &generate_test_task_with("cpu", json!(64)),
        "cpu",
        "between 128 and 196608",
    );
    assert_refused(
        &generate_test_task_with("memory", json!("1 TB")),
        "memory",
        "must be MiB",
    );
    assert_refused(
        &generate_test_task_with("memory", json!(4)),
        "memory",
        "at least 6 MiB",
    );
}

#[test]
fn platform_requirements_are_checked() {
    assert_refused(
        &generate_test_task_with("requiresCompatibilities", json!(["FARGATE"])),
        "requiresCompatibilities",
        "skerry runs EXTERNAL (ECS Anywhere) and EC2 definitions",
    );
    assert_refused(
        &generate_test_task_with("requiresCompatibilities", json!(["EXTERNAL", "MARS"])),
        "requiresCompatibilities[1]",
        "unknown launch type \"MARS\"",
    );
    let windows = json!({ "operatingSystemFamily": "WINDOWS_SERVER_2022_CORE" });
    assert_refused(
        &generate_test_task_with("runtimePlatform", windows),
        "runtimePlatform.operatingSystemFamily",
        "skerry runs LINUX",
    );
    let arch = json!({ "cpuArchitecture": "MIPS" });
    assert_refused(
        &generate_test_task_with("runtimePlatform", arch),
        "runtimePlatform.cpuArchitecture",
        "X86_64 or ARM64",
    );
}

#[test]
fn task_features_without_meaning_on_a_device_are_refused() {
    let cases = [
        (
            "placementConstraints",
            json!([{ "type": "memberOf", "expression": "attribute:site == a" }]),
        ),
        (
            "inferenceAccelerators",
            json!([{ "deviceName": "d", "deviceType": "eia2.medium" }]),
        ),
        (
            "proxyConfiguration",
            json!({ "type": "APPMESH", "containerName": "envoy" }),
        ),
        ("ephemeralStorage", json!({ "sizeInGiB": 30 })),
        ("enableFaultInjection", json!(true)),
    ];
    for (field, value) in cases {
        assert_refused(
            &generate_test_task_with(field, value),
            field,
            "is not supported",
        );
    }
}

#[test]
fn containers_are_required() {
    assert_refused(
        &generate_test_task_with_containers(vec![]),
        "containerDefinitions",
        "at least one container",
    );
    let mut task = generate_test_task();
    task.as_object_mut()
        .map(|t| t.remove("containerDefinitions"));
    assert_refused(&task, "containerDefinitions", "at least one container");
}

#[test]
fn duplicate_container_names_name_both_indexes() {
    let task = generate_test_task_with_containers(vec![
        generate_test_container("web"),
        generate_test_container("db"),
        generate_test_container("web"),
    ]);
    assert_refused(
        &task,
        "containerDefinitions[2].name",
        "duplicate container name \"web\": also used by containerDefinitions[0]",
    );
}

#[test]
fn a_task_needs_an_essential_container() {
    let task = generate_test_task_with_container_field("essential", json!(false));
    assert_refused(
        &task,
        "containerDefinitions",
        "task has no essential container",
    );
}

#[test]
fn container_sizes_must_fit_the_task() {
    let mut task = generate_test_task_with_containers(vec![
        generate_test_container("a"),
        generate_test_container("b"),
    ]);
    task["memory"] = json!(48);
    assert_refused(
        &task,
        "memory",
        "adds up to 64 MiB, more than the task's 48 MiB",
    );
    task["memory"] = json!(64);
    task["containerDefinitions"][1]["memoryReservation"] = json!(32);
    parse_ok(&task);
    task["memory"] = json!(128);
    task["containerDefinitions"][1]["memory"] = json!(256);
    task["containerDefinitions"][1]["memoryReservation"] = json!(200);
    assert_refused(
        &task,
        "containerDefinitions[1].memoryReservation",
        "more than the task's memory of 128 MiB",
    );
    let mut task = generate_test_task_with("cpu", json!(256));
    task["containerDefinitions"][0]["cpu"] = json!(512);
    assert_refused(
        &task,
        "cpu",
        "adds up to 512 units, more than the task's 256",
    );
}

#[test]
fn host_ports_cannot_clash() {
    let mut a = generate_test_container("a");
    a["portMappings"] = json!([{ "containerPort": 80 }]);
    let mut b = generate_test_container("b");
    b["portMappings"] = json!([{ "containerPort": 80, "protocol": "udp" }, { "containerPort": 80, "hostPort": 80 }]);
    let mut task = generate_test_task_with_containers(vec![a, b]);
    task["networkMode"] = json!("host");
    let err = assert_refused(
        &task,
        "containerDefinitions[1].portMappings[1].hostPort",
        "host port 80/tcp is already used by containerDefinitions[0].portMappings[0]",
    );
    assert_eq!(err.problems.len(), 1, "80/udp does not clash with 80/tcp");
}

#[test]
fn a_container_needs_some_memory_setting_like_ecs() {
    let mut task = generate_test_task_with_containers(vec![
        generate_test_container("a"),
        generate_test_container("b"),
    ]);
    task["containerDefinitions"][1]
        .as_object_mut()
        .unwrap()
        .remove("memory");
    assert_refused(
        &task,
        "containerDefinitions[1]",
        "set memory (hard limit, MiB) or memoryReservation, or the task's memory",
    );
    // A soft reservation, or a task-level limit, is enough (as in ECS).
    task["containerDefinitions"][1]["memoryReservation"] = json!(16);
    parse_ok(&task);
    task["containerDefinitions"][1]
        .as_object_mut()
        .unwrap()
        .remove("memoryReservation");
    task["memory"] = json!("256");
    parse_ok(&task);
}
