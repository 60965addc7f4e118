//! `linuxParameters`, `ulimits` and `systemControls`: accepted forms and refusals.

use serde_json::{json, Value};

use super::*;
use crate::spec::*;

fn generate_test_task_with_linux(params: Value) -> Value {
    generate_test_task_with_container_field("linuxParameters", params)
}

#[test]
fn capabilities_are_normalized() {
    let params = json!({
        "capabilities": { "add": ["NET_ADMIN", "cap_sys_time", "CAP_NET_ADMIN"], "drop": ["ALL", "chown"] },
        "initProcessEnabled": true,
        "sharedMemorySize": 64
    });
    let linux = parse_ok(&generate_test_task_with_linux(params))
        .containers
        .remove(0)
        .linux;
    assert_eq!(
        linux.cap_add,
        vec!["CAP_NET_ADMIN".to_string(), "CAP_SYS_TIME".to_string()]
    );
    assert_eq!(
        linux.cap_drop,
        vec!["ALL".to_string(), "CAP_CHOWN".to_string()]
    );
    assert!(linux.init_process_enabled);
    assert_eq!(linux.shared_memory_size_mib, Some(64));
}

#[test]
fn unknown_capabilities_are_refused() {
    let params =
        json!({ "capabilities": { "add": ["NET_ADMIN", "CAP_FLY"], "drop": ["MAKE_COFFEE"] } });
    let task = generate_test_task_with_linux(params);
    let at = "containerDefinitions[0].linuxParameters.capabilities";
    assert_refused(
        &task,
        &format!("{at}.add[1]"),
        "\"CAP_FLY\" is not a Linux capability",
    );
    assert_refused(
        &task,
        &format!("{at}.drop[0]"),
        "\"MAKE_COFFEE\" is not a Linux capability",
    );
    let task = generate_test_task_with_linux(json!({ "capabilities": { "add": ["ALL"] } }));
    assert_refused(
        &task,
        &format!("{at}.add[0]"),
        "\"ALL\" can only be dropped",
    );
}

#[test]
fn tmpfs_is_checked() {
    let ok = json!({ "tmpfs": [{ "containerPath": "/run", "size": 8, "mountOptions": ["rw", "noexec", "mode=0755", "uid=1000"] }] });
    let tmpfs = parse_ok(&generate_test_task_with_linux(ok))
        .containers
        .remove(0)
        .linux
        .tmpfs;
    assert_eq!(
        tmpfs,
        vec![Tmpfs {
            container_path: "/run".into(),
            size_mib: 8,
            mount_options: vec![
                "rw".into(),
                "noexec".into(),
                "mode=0755".into(),
                "uid=1000".into()
            ],
        }]
    );
    let bad = json!({ "tmpfs": [
        { "containerPath": "run", "size": 0, "mountOptions": ["hugepages", "mode", "noexec=1"] },
        { "mountOptions": [] }
    ] });
    let task = generate_test_task_with_linux(bad);
    let at = "containerDefinitions[0].linuxParameters.tmpfs";
    assert_refused(&task, &format!("{at}[0].containerPath"), "absolute");
    assert_refused(&task, &format!("{at}[0].size"), "at least 1 MiB");
    assert_refused(
        &task,
        &format!("{at}[0].mountOptions[0]"),
        "\"hugepages\" is not a tmpfs mount option ECS allows",
    );
    assert_refused(
        &task,
        &format!("{at}[0].mountOptions[1]"),
        "mode needs a value",
    );
    assert_refused(
        &task,
        &format!("{at}[0].mountOptions[2]"),
        "not a tmpfs mount option",
    );
    assert_refused(&task, &format!("{at}[1].containerPath"), "is required");
    assert_refused(&task, &format!("{at}[1].size"), "is required");
}

#[test]
fn tmpfs_cannot_shadow_a_mount_point() {
    let mut task = generate_test_task_with("volumes", json!([{ "name": "data" }]));
    task["containerDefinitions"][0]["mountPoints"] =
        json!([{ "sourceVolume": "data", "containerPath": "/data" }]);
    task["containerDefinitions"][0]["linuxParameters"] =
        json!({ "tmpfs": [{ "containerPath": "/data", "size": 4 }] });
    assert_refused(
        &task,
        "containerDefinitions[0].linuxParameters.tmpfs[0].containerPath",
        "also the target of mountPoints[0]",
    );
}

#[test]
fn shared_memory_size_is_checked() {
    let task = generate_test_task_with_linux(json!({ "sharedMemorySize": 0 }));
    assert_refused(
        &task,
        "containerDefinitions[0].linuxParameters.sharedMemorySize",
        "at least 1 MiB",
    );
    let mut task = generate_test_task_with_linux(json!({ "sharedMemorySize": 64 }));
    task["ipcMode"] = json!("host");
    assert_refused(
        &task,
        "containerDefinitions[0].linuxParameters.sharedMemorySize",
        "ipcMode \"host\"",
    );
}

#[test]
fn swap_settings_are_not_supported_yet() {
    for (field, value) in [("maxSwap", json!(0)), ("swappiness", json!(10))] {
        let task = generate_test_task_with_linux(json!({ field: value }));
        assert_refused(
            &task,
            &format!("containerDefinitions[0].linuxParameters.{field}"),
            "is not supported yet",
        );
    }
}

#[test]
fn devices_map_to_paths_and_cgroup_access() {
    let devices = json!([
        { "hostPath": "/dev/ttyUSB0" },
        { "hostPath": "/dev/i2c-1", "containerPath": "/dev/i2c", "permissions": ["write", "read"] }
    ]);
    let linux = parse_ok(&generate_test_task_with_linux(
        json!({ "devices": devices }),
    ))
    .containers
    .remove(0)
    .linux;
    assert_eq!(
        linux.devices,
        vec![
            Device {
                host_path: "/dev/ttyUSB0".into(),
                container_path: "/dev/ttyUSB0".into(),
                permissions: "rwm".into()
            },
            Device {
                host_path: "/dev/i2c-1".into(),
                container_path: "/dev/i2c".into(),
                permissions: "rw".into()
            },
        ]
    );
    parse_ok(&generate_test_task_with_linux(json!({ "devices": [] })));
}

#[test]
fn devices_bad_entries_are_refused_by_path() {
    let at = "containerDefinitions[0].linuxParameters.devices";
    let cases = [
        (
            json!([{ "containerPath": "/dev/x" }]),
            "[0].hostPath",
            "is required",
        ),
        (
            json!([{ "hostPath": "dev/ttyS0" }]),
            "[0].hostPath",
            "absolute",
        ),
        (
            json!([{ "hostPath": "/dev/ttyS0", "containerPath": "tty" }]),
            "[0].containerPath",
            "absolute",
        ),
        (
            json!([{ "hostPath": "/dev/ttyS0", "permissions": ["read", "execute"] }]),
            "[0].permissions[1]",
            "must be read, write or mknod, got \"execute\"",
        ),
        (
            json!([{ "hostPath": "/dev/ttyS0", "permissions": [] }]),
            "[0].permissions",
            "at least one",
        ),
        (
            json!([{ "hostPath": "/dev/ttyS0" }, { "hostPath": "/dev/ttyS1", "containerPath": "/dev/ttyS0" }]),
            "[1].containerPath",
            "already the path of devices[0]",
        ),
    ];
    for (devices, path, reason) in cases {
        let task = generate_test_task_with_linux(json!({ "devices": devices }));
        assert_refused(&task, &format!("{at}{path}"), reason);
    }
}

#[test]
fn ulimits_map_to_rlimits() {
    let ulimits = json!([{ "name": "nofile", "softLimit": 1024, "hardLimit": 4096 }, { "name": "core", "softLimit": -1, "hardLimit": -1 }]);
    let got = parse_ok(&generate_test_task_with_container_field("ulimits", ulimits))
        .containers
        .remove(0)
        .ulimits;
    assert_eq!(
        got[0],
        Ulimit {
            rlimit: "RLIMIT_NOFILE".into(),
            soft: 1024,
            hard: 4096
        }
    );
    assert_eq!(
        got[1],
        Ulimit {
            rlimit: "RLIMIT_CORE".into(),
            soft: u64::MAX,
            hard: u64::MAX
        }
    );
}

#[test]
fn ulimits_are_checked() {
    let ulimits = json!([
        { "name": "files", "softLimit": 1, "hardLimit": 1 },
        { "name": "nproc", "softLimit": 200, "hardLimit": 100 },
        { "name": "nproc", "softLimit": 1, "hardLimit": 1 },
        { "name": "stack", "softLimit": -5, "hardLimit": 1 },
        { "name": "nice", "softLimit": 1 }
    ]);
    let task = generate_test_task_with_container_field("ulimits", ulimits);
    assert_refused(
        &task,
        "containerDefinitions[0].ulimits[0].name",
        "must be one of core, cpu, data",
    );
    assert_refused(
        &task,
        "containerDefinitions[0].ulimits[1].softLimit",
        "must not exceed hardLimit (200 > 100)",
    );
    assert_refused(
        &task,
        "containerDefinitions[0].ulimits[2].name",
        "set twice",
    );
    assert_refused(
        &task,
        "containerDefinitions[0].ulimits[3].softLimit",
        "got -5",
    );
    assert_refused(
        &task,
        "containerDefinitions[0].ulimits[4].hardLimit",
        "is required",
    );
}

#[test]
fn system_controls_must_be_namespaced() {
    let mut task = generate_test_task_with("networkMode", json!("none"));
    task["containerDefinitions"][0]["systemControls"] = json!([
        { "namespace": "net.ipv4.tcp_keepalive_time", "value": "60" },
        { "namespace": "kernel.shmmax", "value": "68719476736" }
    ]);
    let sysctls = parse_ok(&task).containers.remove(0).system_controls;
    assert_eq!(
        sysctls
            .get("net.ipv4.tcp_keepalive_time")
            .map(String::as_str),
        Some("60")
    );
    assert_eq!(sysctls.len(), 2);

    let controls = json!([
        { "namespace": "net.ipv4.ip_forward", "value": "1" },
        { "namespace": "vm.swappiness", "value": "10" },
        { "namespace": "fs.mqueue.msg_max", "value": "" },
        { "namespace": "fs.mqueue.msg_max", "value": "20" }
    ]);
    let at = "containerDefinitions[0].systemControls";
    let mut task = generate_test_task_with_container_field("systemControls", controls);
    task["networkMode"] = json!("host");
    assert_refused(
        &task,
        &format!("{at}[0].namespace"),
        "cannot be set with networkMode \"host\"",
    );
    assert_refused(
        &task,
        &format!("{at}[1].namespace"),
        "\"vm.swappiness\" is not a namespaced sysctl",
    );
    assert_refused(&task, &format!("{at}[2].value"), "is required");
    assert_refused(&task, &format!("{at}[3].namespace"), "set twice");
    let mut task = generate_test_task_with_container_field(
        "systemControls",
        json!([{ "namespace": "kernel.sem", "value": "1 2 3 4" }]),
    );
    task["ipcMode"] = json!("host");
    assert_refused(&task, &format!("{at}[0].namespace"), "ipcMode \"host\"");
}
