//! `volumesFrom` with real containers: a file one container writes through its task
//! volume is read by another that takes that container's volumes, and `readOnly`
//! makes the inherited mount refuse writes.

mod common;

use common::{lines_of, TestEnv};

#[test]
fn volumes_from_shares_the_source_mounts_and_read_only_is_enforced() {
    let env = TestEnv::new();
    // `writer` writes via its own mount; `reader` (rw inheritance) and `ro` (readOnly)
    // start once writer is done and see the file at the same path.
    let json = r#"{"family": "vfrom", "volumes": [{"name": "shared"}], "containerDefinitions": [
        {"name": "writer", "image": "busybox", "memory": 32, "essential": false,
         "mountPoints": [{"sourceVolume": "shared", "containerPath": "/data"}],
         "command": ["sh", "-c", "echo from-writer > /data/note"]},
        {"name": "reader", "image": "busybox", "memory": 32, "essential": false,
         "volumesFrom": [{"sourceContainer": "writer"}],
         "dependsOn": [{"containerName": "writer", "condition": "SUCCESS"}],
         "command": ["sh", "-c", "cat /data/note; echo appended >> /data/note && echo RW-OK"]},
        {"name": "ro", "image": "busybox", "memory": 32, "essential": true,
         "volumesFrom": [{"sourceContainer": "writer", "readOnly": true}],
         "dependsOn": [{"containerName": "reader", "condition": "SUCCESS"}],
         "command": ["sh", "-c", "cat /data/note; (echo x >> /data/note) 2>&1; true"]}]}"#;
    let out = env.run("vfrom", json);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(lines_of(&out, "reader"), vec!["from-writer", "RW-OK"]);
    let ro = lines_of(&out, "ro");
    assert_eq!(ro.len(), 3, "{ro:?}");
    assert_eq!(ro[..2], ["from-writer", "appended"]);
    assert!(ro[2].ends_with("Read-only file system"), "{ro:?}");
    let note = env.state().join("tasks/vfrom/volumes/shared/note");
    assert_eq!(
        std::fs::read_to_string(note).expect("note"),
        "from-writer\nappended\n"
    );
}

#[test]
fn volumes_from_unknown_source_is_refused_by_name() {
    let env = TestEnv::new();
    let json = r#"{"family": "vbad", "containerDefinitions": [
        {"name": "main", "image": "busybox", "memory": 32,
         "volumesFrom": [{"sourceContainer": "nobody"}], "command": ["true"]}]}"#;
    let out = env.run("vbad", json);
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("containerDefinitions[0].volumesFrom[0].sourceContainer: no container named \"nobody\" in the task"),
        "{err}"
    );
}
