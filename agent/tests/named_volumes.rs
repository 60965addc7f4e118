//! `dockerVolumeConfiguration` (local driver) with real containers: a task-scoped
//! volume gets the image's content first (Docker's copy-up) and goes with the task; a
//! tmpfs volume is one tmpfs shared by the task's containers and is unmounted with
//! the task; a shared volume with autoprovision outlives the task.

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
