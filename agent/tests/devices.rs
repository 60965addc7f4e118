//! `linuxParameters.devices` with real containers: a node the test makes on the host
//! appears in the container and passes the cgroup device rule; a node not listed
//! (made inside the container with the same kind of numbers) is denied by the rule;
//! a `hostPath` that is not a device node is refused by field and path. On a
//! cgroup v2 host (the QEMU board) the first test exercises skerry's eBPF device
//! filter end to end; the filter test below attaches it to a cgroup of the unified
//! hierarchy directly, so it runs on this hybrid VM too.
//!
//! Major 240 is in Linux's "local/experimental" range with no driver behind it, so
//! an open the cgroup allows fails with ENXIO ("No such device or address") and one
//! it denies fails with EPERM ("Operation not permitted"): no host driver needed.

mod common;

use std::path::Path;

use common::{lines_of, sh_task, TestEnv};
use nix::sys::stat::{makedev, mknod, Mode, SFlag};

fn make_char_device(path: &Path, major: u64, minor: u64) {
    mknod(
        path,
        SFlag::S_IFCHR,
        Mode::from_bits_truncate(0o666),
        makedev(major, minor),
    )
    .expect("mknod");
}

/// The unified (v2) hierarchy: the cgroup root on a v2 host, `unified/` on a hybrid
/// one (as this VM is); `None` on a pure v1 host.
fn cgroup_v2_root() -> Option<&'static Path> {
    ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.join("cgroup.controllers").exists())
}

#[test]
fn devices_listed_nodes_work_and_unlisted_ones_are_denied() {
    let env = TestEnv::new();
    let zero = env.dir.path().join("zero-copy");
    let local = env.dir.path().join("local-240-7");
    make_char_device(&zero, 1, 5);
    let local_ro = env.dir.path().join("local-240-9");
    make_char_device(&local, 240, 7);
    make_char_device(&local_ro, 240, 9);
    let script = "head -c 4 /dev/my-zero | wc -c; \
        (exec 3</dev/local) 2>&1; \
        (exec 3>/dev/local-ro) 2>&1; \
        mknod /tmp/unlisted c 240 8 && echo MKNOD-OK; \
        (exec 3</tmp/unlisted) 2>&1; true";
    let extra = format!(
        r#""linuxParameters": {{"devices": [
            {{"hostPath": "{zero}", "containerPath": "/dev/my-zero", "permissions": ["read"]}},
            {{"hostPath": "{local}", "containerPath": "/dev/local"}},
            {{"hostPath": "{local_ro}", "containerPath": "/dev/local-ro", "permissions": ["read"]}}]}}"#,
        zero = zero.display(),
        local = local.display(),
        local_ro = local_ro.display()
    );
    let out = env.run("devices", &sh_task("devices", script, &extra));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = lines_of(&out, "main");
    assert_eq!(lines.len(), 5, "{lines:?}");
    assert_eq!(lines[0].trim(), "4", "{lines:?}");
    // Listed: the cgroup rule lets the open through to the (absent) driver.
    assert!(lines[1].ends_with("No such device or address"), "{lines:?}");
    assert_eq!(lines[3], "MKNOD-OK", "{lines:?}");
    // Listed read-only: opening for write is denied by the rule.
    assert!(lines[2].ends_with("Operation not permitted"), "{lines:?}");
    // Not listed: the node can be made (mknod is allowed) but not opened.
    assert!(lines[4].ends_with("Operation not permitted"), "{lines:?}");
}

#[test]
fn devices_host_path_that_is_not_a_device_is_refused() {
    let env = TestEnv::new();
    let file = env.dir.path().join("plain-file");
    std::fs::write(&file, "x").expect("write");
    let extra = format!(
        r#""linuxParameters": {{"devices": [{{"hostPath": "{}"}}]}}"#,
        file.display()
    );
    let out = env.run("baddev", &sh_task("baddev", "true", &extra));
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("linuxParameters.devices[0].hostPath")
            && err.contains(&format!(
                "{:?} is not a device node (a regular file)",
                file.display().to_string()
            )),
        "{err}"
    );
}

/// The cgroup v2 device filter, loaded with bpf(2) and attached to a fresh cgroup of
/// the unified hierarchy; a shell moved into that cgroup opens a listed node (the
/// open reaches the absent driver: ENXIO), an unlisted one (EPERM), a listed one for
/// a write it may not do (EPERM) and /dev/null (a default: allowed).
#[test]
fn devices_v2_filter_denies_what_is_not_listed() {
    use skerry::runtime::devfilter::{attach, FilterRule};
    let Some(root) = cgroup_v2_root() else {
        eprintln!("no cgroup v2 hierarchy on this host: filter not testable here");
        return;
    };
    let env = TestEnv::new();
    let listed = env.dir.path().join("c-240-3");
    let ro = env.dir.path().join("c-240-4");
    let unlisted = env.dir.path().join("c-240-5");
    make_char_device(&listed, 240, 3);
    make_char_device(&ro, 240, 4);
    make_char_device(&unlisted, 240, 5);
    let cg = root.join(format!("skerry-devfilter-test-{}", std::process::id()));
    std::fs::create_dir(&cg).expect("mkdir cgroup");
    let rules = [
        FilterRule {
            kind: 'c',
            major: 240,
            minor: 3,
            access: "rwm".into(),
        },
        FilterRule {
            kind: 'c',
            major: 240,
            minor: 4,
            access: "r".into(),
        },
    ];
    let attached = attach(&cg, &rules);
    let script = format!(
        "echo $$ > {procs} || exit 9; \
         (exec 3<{listed}) 2>&1; (exec 3>{ro}) 2>&1; (exec 3<{unlisted}) 2>&1; \
         (exec 3</dev/null) && echo NULL-OK",
        procs = cg.join("cgroup.procs").display(),
        listed = listed.display(),
        ro = ro.display(),
        unlisted = unlisted.display(),
    );
    let out = attached.as_ref().ok().map(|_| {
        std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(&script)
            .output()
            .expect("sh")
    });
    let _ = std::fs::remove_dir(&cg);
    attached.expect("attach the device filter");
    let out = out.expect("ran");
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(out.status.code(), Some(0), "{lines:?}");
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert!(lines[0].ends_with("No such device or address"), "{lines:?}");
    assert!(lines[1].ends_with("Operation not permitted"), "{lines:?}");
    assert!(lines[2].ends_with("Operation not permitted"), "{lines:?}");
    assert_eq!(lines[3], "NULL-OK", "{lines:?}");
}
