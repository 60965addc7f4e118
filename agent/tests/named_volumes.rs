//! `dockerVolumeConfiguration` (local driver) with real containers: a task-scoped
//! volume gets the image's content first (Docker's copy-up) and goes with the task; a
//! tmpfs volume is one tmpfs shared by the task's containers and is unmounted with
//! the task; a shared volume with autoprovision outlives the task; ECS's sourceless
//! `host: {}` volumes are copied up too; the local driver's bind form (`type=none`,
//! `o=bind`, `device`) uses an existing host directory and refuses a missing one.

mod common;

use common::{lines_of, TestEnv};

#[test]
fn named_volumes_copy_up_tmpfs_and_shared_scope() {
    let env = TestEnv::new();
    let json = r#"{"family": "named", "volumes": [
        {"name": "etc", "dockerVolumeConfiguration": {"scope": "task", "driver": "local"}},
        {"name": "fast", "dockerVolumeConfiguration": {"driverOpts": {"type": "tmpfs", "device": "tmpfs", "o": "size=4m"}}},
        {"name": "keep", "dockerVolumeConfiguration": {"scope": "shared", "autoprovision": true, "labels": {"app": "t"}}}],
      "containerDefinitions": [
        {"name": "writer", "image": "busybox", "memory": 32, "essential": false,
         "mountPoints": [{"sourceVolume": "fast", "containerPath": "/fast"}, {"sourceVolume": "keep", "containerPath": "/keep"}],
         "command": ["sh", "-c", "echo via-tmpfs > /fast/x; echo kept > /keep/k"]},
        {"name": "reader", "image": "busybox", "memory": 32,
         "dependsOn": [{"containerName": "writer", "condition": "SUCCESS"}],
         "mountPoints": [{"sourceVolume": "fast", "containerPath": "/fast"}, {"sourceVolume": "etc", "containerPath": "/etc"}],
         "command": ["sh", "-c", "cat /fast/x; grep ' /fast ' /proc/mounts | cut -d' ' -f3,4 | grep -o 'tmpfs.*size=4096k'; grep -c '^app:' /etc/passwd"]}]}"#;
    let task = env.write_task("named", json);
    let out = env
        .skerry(&["run", "--name", "named"])
        .arg(task)
        .output()
        .expect("skerry run");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = lines_of(&out, "reader");
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[0], "via-tmpfs");
    assert!(lines[1].starts_with("tmpfs"), "{lines:?}");
    // Copy-up: the image's /etc/passwd (with user app) was copied into the empty volume.
    assert_eq!(lines[2], "1", "{lines:?}");
    // The task is gone with its task-scoped volumes; its tmpfs is unmounted.
    let task_dir = env.state().join("tasks/named");
    assert!(!task_dir.exists(), "{} left behind", task_dir.display());
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    assert!(
        !mounts.contains(&task_dir.display().to_string()),
        "tmpfs volume left mounted"
    );
    // The shared volume is kept under the state directory.
    assert_eq!(
        std::fs::read_to_string(env.state().join("volumes/keep/k")).expect("shared volume"),
        "kept\n"
    );
}

#[test]
fn named_volumes_shared_without_autoprovision_must_exist() {
    let env = TestEnv::new();
    let json = r#"{"family": "noprov", "volumes": [
        {"name": "missing", "dockerVolumeConfiguration": {"scope": "shared"}}],
      "containerDefinitions": [{"name": "main", "image": "busybox", "memory": 32,
         "mountPoints": [{"sourceVolume": "missing", "containerPath": "/m"}], "command": ["true"]}]}"#;
    let out = env.run("noprov", json);
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("shared volume") && err.contains("does not exist and autoprovision is false"),
        "{err}"
    );
}

#[test]
fn named_volumes_sourceless_host_volumes_get_copy_up() {
    let env = TestEnv::new();
    let json = r#"{"family": "srcless", "volumes": [{"name": "e", "host": {}}, {"name": "plain"}],
      "containerDefinitions": [{"name": "main", "image": "busybox", "memory": 32,
         "mountPoints": [{"sourceVolume": "e", "containerPath": "/etc"}, {"sourceVolume": "plain", "containerPath": "/bin"}],
         "command": ["/bin/sh", "-c", "grep -c '^app:' /etc/passwd; test -x /bin/busybox && echo BIN-COPIED"]}]}"#;
    let out = env.run("srcless", json);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(lines_of(&out, "main"), vec!["1", "BIN-COPIED"]);
}

#[test]
fn named_volumes_bind_device_uses_an_existing_host_directory() {
    let env = TestEnv::new();
    let data = env.dir.path().join("bind-data");
    let empty = env.dir.path().join("bind-empty");
    std::fs::create_dir(&data).expect("mkdir");
    std::fs::create_dir(&empty).expect("mkdir");
    std::fs::write(data.join("from-host"), "host-note\n").expect("write");
    let json = format!(
        r#"{{"family": "bindvol", "volumes": [
        {{"name": "data", "dockerVolumeConfiguration": {{"scope": "task", "driver": "local", "driverOpts": {{"type": "none", "o": "bind", "device": "{data}"}}}}}},
        {{"name": "etc", "dockerVolumeConfiguration": {{"driverOpts": {{"type": "none", "o": "bind", "device": "{empty}"}}}}}}],
      "containerDefinitions": [{{"name": "main", "image": "busybox", "memory": 32,
         "mountPoints": [{{"sourceVolume": "data", "containerPath": "/data"}}, {{"sourceVolume": "etc", "containerPath": "/etc"}}],
         "command": ["sh", "-c", "cat /data/from-host; echo from-container > /data/written"]}}]}}"#,
        data = data.display(),
        empty = empty.display()
    );
    let task = env.write_task("bindvol", &json);
    // Without --keep: the task (scope task) is removed when it ends.
    let out = env
        .skerry(&["run", "--name", "bindvol"])
        .arg(task)
        .output()
        .expect("skerry run");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(lines_of(&out, "main"), vec!["host-note"]);
    // The container wrote into the host directory itself.
    assert_eq!(
        std::fs::read_to_string(data.join("written")).expect("written"),
        "from-container\n"
    );
    // The empty bound directory got the image's /etc first (copy-up, as Docker does).
    let passwd = std::fs::read_to_string(empty.join("passwd")).expect("copied-up passwd");
    assert!(passwd.lines().any(|l| l.starts_with("app:")), "{passwd}");
    // The task went (scope task) and left the host directory and its data alone.
    assert!(!env.state().join("tasks/bindvol").exists());
    assert!(data.join("from-host").exists() && data.join("written").exists());
}

#[test]
fn named_volumes_bind_device_missing_is_refused_by_name() {
    let env = TestEnv::new();
    let missing = env.dir.path().join("no-such-dir");
    let json = format!(
        r#"{{"family": "nobind", "volumes": [
        {{"name": "b", "dockerVolumeConfiguration": {{"driverOpts": {{"type": "none", "o": "bind", "device": "{}"}}}}}}],
      "containerDefinitions": [{{"name": "main", "image": "busybox", "memory": 32,
         "mountPoints": [{{"sourceVolume": "b", "containerPath": "/b"}}], "command": ["true"]}}]}}"#,
        missing.display()
    );
    let out = env.run("nobind", &json);
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(r#"volumes["b"].dockerVolumeConfiguration.driverOpts.device"#)
            && err.contains(&format!(
                "{:?} does not exist",
                missing.display().to_string()
            )),
        "{err}"
    );
    assert!(!missing.exists(), "the missing directory was created");
}
