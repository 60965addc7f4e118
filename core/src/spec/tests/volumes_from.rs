//! `volumesFrom`: inherited mounts, their modes, and the refused references.

use serde_json::{json, Value};

use super::*;
use crate::spec::*;

/// `data` mounts volume `v` at /data (and `logs` read-only at /logs); `mid` takes
/// from `data`; `app` takes from `mid` with `app_vf` as its volumesFrom entry.
fn generate_test_chain(app_vf: Value) -> Value {
    let mut data = generate_test_container("data");
    data["mountPoints"] = json!([
        { "sourceVolume": "v", "containerPath": "/data" },
        { "sourceVolume": "logs", "containerPath": "/logs", "readOnly": true }
    ]);
    let mut mid = generate_test_container("mid");
    mid["volumesFrom"] = json!([{ "sourceContainer": "data" }]);
    let mut app = generate_test_container("app");
    app["volumesFrom"] = app_vf;
    app["mountPoints"] = json!([{ "sourceVolume": "v", "containerPath": "/logs/" }]);
    let mut task = generate_test_task_with_containers(vec![data, mid, app]);
    task["volumes"] = json!([{ "name": "v" }, { "name": "logs" }]);
    task
}

fn mount(volume: &str, path: &str, read_only: bool) -> MountPoint {
    MountPoint {
        source_volume: volume.into(),
        container_path: path.into(),
        read_only,
    }
}

#[test]
fn volumes_from_inherits_mounts_transitively_keeping_modes() {
    let def = parse_ok(&generate_test_chain(json!([{ "sourceContainer": "mid" }])));
    let mid = def.container("mid").unwrap();
    assert_eq!(
        def.mounts_of(mid),
        vec![mount("v", "/data", false), mount("logs", "/logs", true)]
    );
    // app's own /logs/ wins over the inherited /logs.
    let app = def.container("app").unwrap();
    assert_eq!(
        def.mounts_of(app),
        vec![mount("v", "/logs/", false), mount("v", "/data", false)]
    );
}

#[test]
fn volumes_from_read_only_applies_to_every_inherited_mount() {
    let def = parse_ok(&generate_test_chain(
        json!([{ "sourceContainer": "mid", "readOnly": true }]),
    ));
    let app = def.container("app").unwrap();
    assert_eq!(
        def.mounts_of(app),
        vec![mount("v", "/logs/", false), mount("v", "/data", true)]
    );
}

#[test]
fn volumes_from_bad_references_are_refused_by_name() {
    let at = "containerDefinitions[2].volumesFrom[0].sourceContainer";
    let task = generate_test_chain(json!([{ "sourceContainer": "ghost" }]));
    assert_refused(&task, at, "no container named \"ghost\" in the task");
    let task = generate_test_chain(json!([{ "sourceContainer": "app" }]));
    assert_refused(&task, at, "cannot take volumes from itself");
    let task = generate_test_chain(json!([{ "readOnly": true }]));
    assert_refused(&task, at, "is required");
    let mut task = generate_test_chain(json!([{ "sourceContainer": "mid" }]));
    task["containerDefinitions"][0]["volumesFrom"] = json!([{ "sourceContainer": "app" }]);
    assert_refused(
        &task,
        at,
        "\"mid\" takes volumes from \"app\" in turn: volumesFrom must not form a cycle",
    );
}
