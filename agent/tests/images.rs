//! Image store tests against real files, run as root (overlay mounts, chown, mknod).
//!
//! Images come from `scripts/build-test-images.sh`, built once into `$SKERRY_TEST_IMAGES`
//! or `<workspace>/target/test-images` (the script skips work when up to date and
//! serializes concurrent callers). Malicious layers are hand-made tars built here.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Instant;

use sha2::{Digest as _, Sha256};
use skerry::images::{ImageError, ImageStore, Platform};
use tar::EntryType;

// ---- fixtures ------------------------------------------------------------------------

/// Builds (once per process) and returns the test images directory.
fn test_images() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let dir = std::env::var_os("SKERRY_TEST_IMAGES")
            .map(PathBuf::from)
            .unwrap_or_else(|| manifest_dir.join("../target/test-images"));
        let script = manifest_dir.join("../scripts/build-test-images.sh");
        let out = Command::new(&script)
            .arg(&dir)
            .output()
            .expect("run build-test-images.sh");
        assert!(
            out.status.success(),
            "build-test-images.sh failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        dir
    })
}

fn image(name: &str) -> PathBuf {
    test_images().join(name)
}

/// A temporary directory that, when dropped, first detaches any mount left under it
/// (a failed test may stop before `release_rootfs`).
struct TestDir(tempfile::TempDir);

impl TestDir {
    fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut mounts: Vec<&str> = mountinfo
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|m| Path::new(m).starts_with(self.0.path()))
            .collect();
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in mounts {
            let _ = nix::mount::umount2(m, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

fn generate_test_store() -> (TestDir, ImageStore) {
    let dir = TestDir(tempfile::tempdir().expect("tempdir"));
    let store = ImageStore::open(&dir.path().join("images")).expect("open store");
    (dir, store)
}

/// Everything under the store that matters (paths, plus refs.json content), to prove a
/// failed operation changed nothing.
fn snapshot(store_root: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for entry in fs::read_dir(dir).expect("readdir") {
            let path = entry.expect("entry").path();
            let rel = path
                .strip_prefix(root)
                .expect("prefix")
                .to_string_lossy()
                .into_owned();
            if rel == "lock" || rel == "tmp" {
                continue;
            }
            let meta = fs::symlink_metadata(&path).expect("lstat");
            let content = if rel == "refs.json" {
                fs::read_to_string(&path).expect("refs")
            } else {
                format!("{:o}", meta.mode())
            };
            out.insert(rel, content);
            if meta.is_dir() {
                walk(root, &path, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(store_root, store_root, &mut out);
    let tmp: Vec<_> = fs::read_dir(store_root.join("tmp")).expect("tmp").collect();
    assert!(tmp.is_empty(), "staging left behind");
    out
}

fn manifest_digest_of(layout: &Path) -> String {
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).expect("index")).expect("json");
    index["manifests"][0]["digest"]
        .as_str()
        .expect("digest")
        .to_owned()
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn put_blob(layout: &Path, bytes: &[u8]) -> (String, usize) {
    let digest = sha256(bytes);
    fs::write(layout.join("blobs/sha256").join(&digest[7..]), bytes).expect("blob");
    (digest, bytes.len())
}

/// A one-image OCI layout for this machine whose layers are the given plain tars.
/// Returns the layer digests.
fn generate_test_layout(layout: &Path, layers: &[Vec<u8>]) -> Vec<String> {
    fs::create_dir_all(layout.join("blobs/sha256")).expect("mkdir");
    fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .expect("oci-layout");
    let mut descriptors = Vec::new();
    let mut digests = Vec::new();
    for layer in layers {
        let (digest, size) = put_blob(layout, layer);
        descriptors.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest, "size": size
        }));
        digests.push(digest);
    }
    let config = serde_json::json!({
        "architecture": Platform::host().architecture, "os": "linux",
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": digests},
    });
    let (config_digest, config_size) = put_blob(layout, config.to_string().as_bytes());
    let manifest = serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
        "layers": descriptors,
    });
    let (manifest_digest, manifest_size) = put_blob(layout, manifest.to_string().as_bytes());
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_digest,
        "size": manifest_size, "annotations": {"org.opencontainers.image.ref.name": "latest"}}]});
    fs::write(layout.join("index.json"), index.to_string()).expect("index");
    digests
}

/// A tar written header by header, so names `tar::Builder` would refuse (`..`, `/abs`)
/// can be tested. Entries: (name, type, link target, data).
fn raw_tar(entries: &[(&str, EntryType, &str, &[u8])]) -> Vec<u8> {
    raw_tar_with_modes(entries, |_| None)
}

/// [`raw_tar`] where `mode_of(name)` can override the default mode (0755 dirs, 0644 files).
fn raw_tar_with_modes(
    entries: &[(&str, EntryType, &str, &[u8])],
    mode_of: impl Fn(&str) -> Option<u32>,
) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, kind, link, data) in entries {
        let mut header = tar::Header::new_gnu();
        {
            let gnu = header.as_gnu_mut().expect("gnu header");
            gnu.name[..name.len()].copy_from_slice(name.as_bytes());
            gnu.linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        header.set_entry_type(*kind);
        header.set_size(data.len() as u64);
        let default = if *kind == EntryType::Directory {
            0o755
        } else {
            0o644
        };
        header.set_mode(mode_of(name).unwrap_or(default));
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(1_700_000_000);
        header.set_cksum();
        builder.append(&header, *data).expect("append");
    }
    builder.into_inner().expect("finish tar")
}

fn is_mount_point(path: &Path) -> bool {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let want = path.to_string_lossy().into_owned();
    mountinfo
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(want.as_str()))
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("readdir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn other_arch_image() -> &'static str {
    if Platform::host().architecture == "arm64" {
        "busybox-amd64"
    } else {
        "busybox-arm64"
    }
}

// ---- import, list, resolve -----------------------------------------------------------

#[test]
fn images_import_layout_dir_names_from_file_or_argument() {
    let (_dir, store) = generate_test_store();
    let layout = image("busybox-amd64");
    if Platform::host().architecture != "amd64" {
        return;
    }
    let got = store.import(&layout).expect("import layout");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].reference, "busybox-amd64:latest");
    assert_eq!(got[0].architecture, "amd64");
    assert_eq!(got[0].manifest_digest, manifest_digest_of(&layout));
    assert!(got[0].size_bytes > 500_000, "{:?}", got[0]);
    let named = store
        .import_as(&layout, Some("busybox"))
        .expect("import as busybox");
    assert_eq!(named[0].reference, "busybox:latest");
    let pinned = store
        .import_as(&layout, Some("registry.local/bb:v1"))
        .expect("import with full reference");
    assert_eq!(pinned[0].reference, "registry.local/bb:v1");
    let list: Vec<String> = store
        .list()
        .expect("list")
        .into_iter()
        .map(|s| s.reference)
        .collect();
    assert_eq!(
        list,
        [
            "busybox-amd64:latest",
            "busybox:latest",
            "registry.local/bb:v1"
        ]
    );
    let resolved = store.resolve("busybox").expect("resolve bare name");
    assert_eq!(resolved.reference, "busybox:latest");
    assert_eq!(resolved.layers.len(), 1);
    let by_digest = store
        .resolve(&format!("busybox@{}", got[0].manifest_digest))
        .expect("resolve by digest");
    assert_eq!(by_digest.manifest_digest, got[0].manifest_digest);
    // Importing again changes nothing.
    let before = snapshot(&_dir.path().join("images"));
    store
        .import_as(&layout, Some("busybox"))
        .expect("re-import");
    assert_eq!(before, snapshot(&_dir.path().join("images")));
}

#[test]
fn images_import_archives_plain_and_gzip() {
    if Platform::host().architecture != "amd64" {
        return;
    }
    let (dir, store) = generate_test_store();
    let tar_path = image("busybox-amd64.tar");
    let plain = store
        .import_as(&tar_path, Some("bb-tar"))
        .expect("import tar");
    assert_eq!(plain[0].reference, "bb-tar:latest");
    assert_eq!(
        plain[0].manifest_digest,
        manifest_digest_of(&image("busybox-amd64"))
    );
    let gz_path = dir.path().join("busybox.tar.gz");
    let mut gz = flate2::write::GzEncoder::new(
        fs::File::create(&gz_path).expect("create"),
        flate2::Compression::fast(),
    );
    gz.write_all(&fs::read(&tar_path).expect("read tar"))
        .expect("gzip");
    gz.finish().expect("finish gzip");
    let gzipped = store.import(&gz_path).expect("import tar.gz");
    assert_eq!(gzipped[0].reference, "busybox:latest");
    assert_eq!(gzipped[0].manifest_digest, plain[0].manifest_digest);
    let layers = names_in(&dir.path().join("images/layers"));
    assert_eq!(layers.len(), 1, "one shared layer: {layers:?}");
}

#[test]
fn images_import_multi_arch_index_picks_this_machine() {
    let (_dir, store) = generate_test_store();
    let host = Platform::host().architecture;
    let got = store.import(&image("busybox-multi")).expect("import multi");
    assert_eq!(got[0].reference, "busybox-multi:latest");
    assert_eq!(got[0].architecture, host);
    let single = if host == "arm64" {
        "busybox-arm64"
    } else {
        "busybox-amd64"
    };
    assert_eq!(got[0].manifest_digest, manifest_digest_of(&image(single)));

    // The same archive on an arm64 gateway takes the arm64/v8 manifest.
    let (_dir2, arm) = generate_test_store();
    let arm = arm.with_platform(Platform::from_rust_arch("aarch64"));
    let got = arm
        .import(&image("busybox-multi.tar"))
        .expect("import multi as arm64");
    assert_eq!(got[0].architecture, "arm64");
    assert_eq!(
        got[0].manifest_digest,
        manifest_digest_of(&image("busybox-arm64"))
    );
    assert_eq!(
        arm.resolve("busybox-multi").expect("resolve").layers.len(),
        1
    );

    // And an armv7 one has nothing to run.
    let (_dir3, armv7) = generate_test_store();
    let armv7 = armv7.with_platform(Platform::from_rust_arch("arm"));
    let err = armv7
        .import(&image("busybox-multi"))
        .expect_err("no arm/v7 entry");
    let msg = err.to_string();
    assert!(
        matches!(err, ImageError::NoMatchingPlatform { .. }),
        "{msg}"
    );
    assert!(
        msg.contains("busybox-multi:latest") && msg.contains("linux/arm64/v8"),
        "{msg}"
    );
}

#[test]
fn images_wrong_architecture_refused_and_store_unchanged() {
    let (dir, store) = generate_test_store();
    let root = dir.path().join("images");
    let before = snapshot(&root);
    let other = other_arch_image();
    let err = store.import(&image(other)).expect_err("foreign image");
    let host = Platform::host().to_string();
    let image_arch = if other == "busybox-arm64" {
        "arm64"
    } else {
        "amd64"
    };
    assert_eq!(
        err.to_string(),
        format!("image {other}:latest is {image_arch}, this machine is {host}")
    );
    assert_eq!(before, snapshot(&root));
    assert!(store.list().expect("list").is_empty());
}

#[test]
fn images_resolve_returns_image_defaults() {
    if Platform::host().architecture != "amd64" {
        return;
    }
    let (_dir, store) = generate_test_store();
    store.import(&image("busybox-app")).expect("import app");
    store.import(&image("busybox-amd64")).expect("import base");
    let app = store
        .resolve("busybox-app:latest")
        .expect("resolve app")
        .defaults;
    assert_eq!(
        app.entrypoint,
        Some(vec!["/bin/sh".to_owned(), "-c".to_owned()])
    );
    assert_eq!(app.cmd, Some(vec!["echo image-default".to_owned()]));
    assert!(
        app.env.contains(&"FOO=from-image".to_owned()),
        "{:?}",
        app.env
    );
    assert!(app.env.iter().any(|e| e.starts_with("PATH=")));
    assert_eq!(app.working_dir.as_deref(), Some("/tmp"));
    assert_eq!(app.user.as_deref(), Some("app"));
    let base = store
        .resolve("busybox-amd64")
        .expect("resolve base")
        .defaults;
    assert_eq!(base.entrypoint, None);
    assert_eq!(base.cmd, Some(vec!["/bin/sh".to_owned()]));
    assert_eq!(base.working_dir.as_deref(), Some("/"));
    assert_eq!(base.user, None);
}

#[test]
fn images_unknown_and_invalid_references() {
    let (_dir, store) = generate_test_store();
    let err = store.resolve("nope").expect_err("unknown");
    assert!(matches!(err, ImageError::NotFound { .. }));
    assert_eq!(err.to_string(), "image nope:latest not found in the store");
    let err = store.resolve("Not A Ref").expect_err("invalid");
    assert!(err.to_string().contains("\"Not A Ref\""), "{err}");
    assert!(matches!(
        store.remove("nope:1"),
        Err(ImageError::NotFound { .. })
    ));
}

// ---- rootfs ----------------------------------------------------------------------------

#[test]
fn images_prepare_rootfs_shares_layers_between_containers() {
    if Platform::host().architecture != "amd64" {
        return;
    }
    let (dir, store) = generate_test_store();
    store.import(&image("busybox-amd64")).expect("import");
    store.import(&image("busybox-app")).expect("import app");
    let a = store.resolve("busybox-amd64").expect("resolve");
    let b = store.resolve("busybox-app").expect("resolve app");
    assert_eq!(a.layers, b.layers, "same layer blob");
    let c1 = dir.path().join("tasks/t1/c1");
    let c2 = dir.path().join("tasks/t1/c2");
    let r1 = store.prepare_rootfs(&a, "t1-c1", &c1).expect("prepare c1");
    let r2 = store.prepare_rootfs(&b, "t1-c2", &c2).expect("prepare c2");
    assert_eq!(r1, c1.join("rootfs"));
    assert_eq!(
        store.prepare_rootfs(&a, "t1-c1", &c1).expect("again"),
        r1,
        "idempotent"
    );
    for rootfs in [&r1, &r2] {
        assert!(
            is_mount_point(rootfs),
            "{} is an overlay mount",
            rootfs.display()
        );
        let busybox = fs::metadata(rootfs.join("bin/busybox")).expect("busybox");
        assert!(busybox.permissions().mode() & 0o111 != 0);
        assert_eq!(
            fs::read_link(rootfs.join("bin/sh")).expect("sh link"),
            Path::new("busybox")
        );
        let tmp = fs::metadata(rootfs.join("tmp")).expect("tmp");
        assert_eq!(tmp.permissions().mode() & 0o7777, 0o1777);
        assert_eq!(
            fs::metadata(rootfs.join("home/app")).expect("home").uid(),
            1000
        );
    }
    assert_eq!(
        names_in(&dir.path().join("images/layers")).len(),
        1,
        "layer unpacked once"
    );
    fs::write(r1.join("tmp/only-c1"), "x").expect("write in c1");
    assert!(
        !r2.join("tmp/only-c1").exists(),
        "containers do not share writes"
    );
    let out = Command::new("chroot")
        .arg(&r1)
        .args(["/bin/sh", "-c", "echo hello; id -u app"])
        .output()
        .expect("chroot");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello\n1000\n",
        "{out:?}"
    );
    assert_eq!(store.lease_ids().expect("leases"), ["t1-c1", "t1-c2"]);

    store.release_rootfs("t1-c1", &c1).expect("release c1");
    store.release_rootfs("t1-c1", &c1).expect("release twice");
    store.release_rootfs("t1-c2", &c2).expect("release c2");
    for (rootfs, c) in [(&r1, &c1), (&r2, &c2)] {
        assert!(!is_mount_point(rootfs));
        assert!(names_in(c).is_empty(), "{:?}", names_in(c));
    }
    assert!(store.lease_ids().expect("leases").is_empty());
    assert_eq!(
        names_in(&dir.path().join("images/layers")).len(),
        1,
        "still tagged"
    );
}

fn check_whiteouts(rootfs: &Path) {
    assert!(
        !rootfs.join("etc/removed").exists(),
        "whiteout hides etc/removed"
    );
    assert_eq!(
        fs::read_to_string(rootfs.join("etc/added")).expect("added"),
        "added\n"
    );
    assert_eq!(
        names_in(&rootfs.join("opq")),
        ["c"],
        "opaque dir hides a and b"
    );
    assert!(rootfs.join("etc/passwd").exists());
    assert!(rootfs.join("bin/busybox").exists());
}

#[test]
fn images_whiteouts_and_opaque_dirs_in_overlay_and_copy() {
    let (dir, store) = generate_test_store();
    if Platform::host().architecture != "amd64" {
        return;
    }
    store
        .import(&image("busybox-layers.tar"))
        .expect("import layers");
    let resolved = store.resolve("busybox-layers").expect("resolve");
    assert_eq!(resolved.layers.len(), 3);
    // The unpacked layers hold overlay whiteouts and the opaque xattr.
    let layer = |i: usize| {
        dir.path()
            .join("images/layers")
            .join(&resolved.layers[i][7..])
    };
    let whiteout = fs::symlink_metadata(layer(1).join("etc/removed")).expect("whiteout");
    assert!(whiteout.file_type().is_char_device() && whiteout.rdev() == 0);
    assert!(!layer(1).join("etc/.wh.removed").exists());
    assert!(!layer(2).join("opq/.wh..wh..opq").exists());

    let overlay_dir = dir.path().join("c-overlay");
    let rootfs = store
        .prepare_rootfs(&resolved, "overlay", &overlay_dir)
        .expect("overlay");
    assert!(is_mount_point(&rootfs));
    check_whiteouts(&rootfs);

    let copying = store.clone().with_copy_fallback();
    let copy_dir = dir.path().join("c-copy");
    let rootfs = copying
        .prepare_rootfs(&resolved, "copy", &copy_dir)
        .expect("copy");
    assert!(!is_mount_point(&rootfs));
    check_whiteouts(&rootfs);
    assert_eq!(
        fs::metadata(rootfs.join("tmp"))
            .expect("tmp")
            .permissions()
            .mode()
            & 0o7777,
        0o1777
    );
    assert_eq!(
        fs::metadata(rootfs.join("home/app")).expect("home").uid(),
        1000
    );
    assert_eq!(
        copying
            .prepare_rootfs(&resolved, "copy", &copy_dir)
            .expect("again"),
        rootfs
    );

    store
        .release_rootfs("overlay", &overlay_dir)
        .expect("release overlay");
    copying
        .release_rootfs("copy", &copy_dir)
        .expect("release copy");
    assert!(names_in(&copy_dir).is_empty());
}

// ---- untrusted input -------------------------------------------------------------------

#[test]
fn images_path_traversal_layers_refused_naming_layer_and_entry() {
    let (dir, store) = generate_test_store();
    let root = dir.path().join("images");
    let outside = dir.path().join("outside");
    fs::create_dir(&outside).expect("outside");
    let outside_str = outside.to_string_lossy().into_owned();
    let file = EntryType::Regular;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("dotdot", raw_tar(&[("../evil", file, "", b"x")]), "../evil"),
        (
            "deep-dotdot",
            raw_tar(&[("a/../../evil", file, "", b"x")]),
            "a/../../evil",
        ),
        (
            "absolute",
            raw_tar(&[("/skerry-test-abs-evil", file, "", b"x")]),
            "/skerry-test-abs-evil",
        ),
        (
            "symlink-escape",
            raw_tar(&[
                ("link", EntryType::Symlink, &outside_str, b""),
                ("link/passwd", file, "", b"owned"),
            ]),
            "link/passwd",
        ),
        (
            "symlink-etc",
            raw_tar(&[
                ("etc", EntryType::Symlink, "/etc", b""),
                ("etc/skerry-test-evil", file, "", b"owned"),
            ]),
            "etc/skerry-test-evil",
        ),
        (
            "hardlink-escape",
            raw_tar(&[("x", EntryType::Link, "../../x", b"")]),
            "x",
        ),
        (
            "hardlink-absent",
            raw_tar(&[("y", EntryType::Link, "not-here", b"")]),
            "y",
        ),
        (
            "hardlink-via-symlink",
            raw_tar(&[
                ("l", EntryType::Symlink, &outside_str, b""),
                ("z", EntryType::Link, "l/secret", b""),
            ]),
            "z",
        ),
    ];
    fs::write(outside.join("secret"), "s").expect("secret");
    let before = snapshot(&root);
    for (name, layer, entry) in cases {
        let layout = dir.path().join(name);
        let good = raw_tar(&[
            ("bin/", EntryType::Directory, "", b""),
            ("bin/ok", file, "", b"ok"),
        ]);
        let digests = generate_test_layout(&layout, &[good, layer]);
        let err = store.import(&layout).expect_err(name);
        let msg = err.to_string();
        assert!(
            matches!(err, ImageError::UnsafeEntry { .. }),
            "{name}: {msg}"
        );
        assert!(msg.contains(&digests[1]), "{name}: names the layer: {msg}");
        assert!(
            msg.contains(&format!("{entry:?}")),
            "{name}: names the entry: {msg}"
        );
        assert_eq!(before, snapshot(&root), "{name}: store unchanged");
    }
    assert_eq!(
        names_in(&outside),
        ["secret"],
        "nothing written through the symlink"
    );
    assert!(!dir.path().join("evil").exists() && !root.join("evil").exists());
    assert!(!Path::new("/skerry-test-abs-evil").exists());
    assert!(!Path::new("/etc/skerry-test-evil").exists());
}

#[test]
fn images_safe_odd_layers_are_accepted() {
    // Hard links inside the layer, symlinks pointing anywhere (never followed), `./`.
    let (dir, store) = generate_test_store();
    let layout = dir.path().join("odd");
    let layer = raw_tar(&[
        ("./", EntryType::Directory, "", b""),
        ("./data/", EntryType::Directory, "", b""),
        ("./data/a", EntryType::Regular, "", b"hello"),
        ("./data/b", EntryType::Link, "data/a", b""),
        ("./data/etc", EntryType::Symlink, "/etc", b""),
        ("./data/up", EntryType::Symlink, "../../../..", b""),
    ]);
    // An upper layer writing /tmp/x without a /tmp entry must not reset /tmp's 1777.
    let base = raw_tar_with_modes(&[("tmp/", EntryType::Directory, "", b"")], |_| Some(0o1777));
    let upper = raw_tar(&[("tmp/x", EntryType::Regular, "", b"x")]);
    generate_test_layout(&layout, &[base, layer, upper]);
    store
        .import_as(&layout, Some("odd"))
        .expect("import odd layers");
    let resolved = store.resolve("odd").expect("resolve");
    let rootfs = store
        .prepare_rootfs(&resolved, "odd", &dir.path().join("c"))
        .expect("rootfs");
    let a = fs::metadata(rootfs.join("data/a")).expect("a");
    let b = fs::metadata(rootfs.join("data/b")).expect("b");
    assert_eq!(a.ino(), b.ino(), "hard link kept");
    assert_eq!(
        fs::read_link(rootfs.join("data/etc")).expect("link"),
        Path::new("/etc")
    );
    let tmp = fs::metadata(rootfs.join("tmp")).expect("tmp");
    assert_eq!(
        tmp.permissions().mode() & 0o7777,
        0o1777,
        "implied dir keeps the lower mode"
    );
    assert!(rootfs.join("tmp/x").exists());
    store
        .release_rootfs("odd", &dir.path().join("c"))
        .expect("release");
}

#[test]
fn images_truncated_archive_refused_and_store_unchanged() {
    let (dir, store) = generate_test_store();
    let root = dir.path().join("images");
    let full = fs::read(image("busybox-multi.tar")).expect("read archive");
    let before = snapshot(&root);
    // (The archive ends in zero padding: cutting only that would leave it complete.)
    for cut in [
        100,
        1536,
        full.len() / 3,
        full.len() / 2,
        full.len() * 4 / 5,
    ] {
        let path = dir.path().join(format!("cut-{cut}.tar"));
        fs::write(&path, &full[..cut]).expect("write");
        let err = store.import(&path).expect_err("truncated");
        assert!(!err.to_string().is_empty());
        assert_eq!(before, snapshot(&root), "cut at {cut}: {err}");
    }
    let path = dir.path().join("cut.tar.gz");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&full).expect("gzip");
    let gz = gz.finish().expect("gzip");
    fs::write(&path, &gz[..gz.len() / 2]).expect("write");
    let err = store.import(&path).expect_err("truncated gzip");
    assert_eq!(before, snapshot(&root), "{err}");
}

#[test]
fn images_digest_mismatch_and_missing_blob_refused() {
    let (dir, store) = generate_test_store();
    let root = dir.path().join("images");
    let before = snapshot(&root);
    let layout = dir.path().join("tampered");
    let digests = generate_test_layout(
        &layout,
        &[raw_tar(&[("f", EntryType::Regular, "", b"good")])],
    );
    let blob = layout.join("blobs/sha256").join(&digests[0][7..]);
    let mut bytes = fs::read(&blob).expect("blob");
    let at = bytes
        .windows(4)
        .position(|w| w == b"good")
        .expect("file data");
    bytes[at] = b'b'; // same size, different content
    fs::write(&blob, &bytes).expect("tamper");
    let err = store.import(&layout).expect_err("tampered blob");
    assert!(matches!(err, ImageError::DigestMismatch { .. }), "{err}");
    assert!(err.to_string().contains(&digests[0]), "{err}");
    assert_eq!(before, snapshot(&root));

    fs::remove_file(&blob).expect("remove blob");
    let err = store.import(&layout).expect_err("missing blob");
    assert!(matches!(err, ImageError::MissingBlob { .. }), "{err}");
    assert!(err.to_string().contains(&digests[0]), "{err}");
    assert_eq!(before, snapshot(&root));
}

// ---- remove and GC ---------------------------------------------------------------------

#[test]
fn images_remove_collects_unreferenced_blobs_and_layers() {
    if Platform::host().architecture != "amd64" {
        return;
    }
    let (dir, store) = generate_test_store();
    let root = dir.path().join("images");
    store.import(&image("busybox-amd64")).expect("import");
    store.import(&image("busybox-app")).expect("import app");
    assert_eq!(
        names_in(&root.join("blobs/sha256")).len(),
        5,
        "shared layer blob stored once"
    );
    store.remove("busybox-app").expect("remove app");
    assert_eq!(names_in(&root.join("blobs/sha256")).len(), 3);
    assert_eq!(
        names_in(&root.join("layers")).len(),
        1,
        "layer still used by busybox-amd64"
    );
    assert!(matches!(
        store.resolve("busybox-app"),
        Err(ImageError::NotFound { .. })
    ));
    store.remove("busybox-amd64:latest").expect("remove base");
    assert!(names_in(&root.join("blobs/sha256")).is_empty());
    assert!(names_in(&root.join("layers")).is_empty());
    assert!(store.list().expect("list").is_empty());
    assert!(matches!(
        store.remove("busybox-amd64"),
        Err(ImageError::NotFound { .. })
    ));
}

#[test]
fn images_remove_keeps_leased_layers_until_release() {
    let (dir, store) = generate_test_store();
    let root = dir.path().join("images");
    store
        .import_as(&image("busybox-multi"), Some("bb"))
        .expect("import");
    let resolved = store.resolve("bb").expect("resolve");
    let c = dir.path().join("c");
    let rootfs = store
        .prepare_rootfs(&resolved, "leased", &c)
        .expect("prepare");
    store.remove("bb").expect("remove while leased");
    assert!(matches!(
        store.resolve("bb"),
        Err(ImageError::NotFound { .. })
    ));
    assert_eq!(names_in(&root.join("layers")).len(), 1, "leased layer kept");
    assert!(
        rootfs.join("bin/busybox").exists(),
        "running container unaffected"
    );
    // A second prepare with the same lease (agent restart) still works.
    assert_eq!(
        store
            .prepare_rootfs(&resolved, "leased", &c)
            .expect("again"),
        rootfs
    );
    store.release_rootfs("leased", &c).expect("release");
    assert!(
        names_in(&root.join("layers")).is_empty(),
        "collected after release"
    );
    assert!(names_in(&root.join("blobs/sha256")).is_empty());
}

#[test]
fn images_bad_lease_ids_refused() {
    let (dir, store) = generate_test_store();
    let resolved = skerry::images::ResolvedImage {
        reference: "x:latest".to_owned(),
        manifest_digest: format!("sha256:{}", "0".repeat(64)),
        layers: vec![],
        diff_ids: vec![],
        defaults: Default::default(),
    };
    for bad in ["../x", "", ".x", "a/b"] {
        let err = store
            .prepare_rootfs(&resolved, bad, dir.path())
            .expect_err(bad);
        assert!(matches!(err, ImageError::InvalidLeaseId { .. }), "{err}");
    }
}

// ---- measurements ----------------------------------------------------------------------

#[test]
fn images_measure_busybox_import_and_rootfs() {
    let (dir, store) = generate_test_store();
    let archive = image("busybox-multi.tar");
    let t = Instant::now();
    store.import_as(&archive, Some("bb")).expect("import");
    let import = t.elapsed();
    let resolved = store.resolve("bb").expect("resolve");
    let t = Instant::now();
    store
        .prepare_rootfs(&resolved, "m1", &dir.path().join("m1"))
        .expect("overlay");
    let overlay = t.elapsed();
    let copying = store.clone().with_copy_fallback();
    let t = Instant::now();
    copying
        .prepare_rootfs(&resolved, "m2", &dir.path().join("m2"))
        .expect("copy");
    let copy = t.elapsed();
    let t = Instant::now();
    store
        .release_rootfs("m1", &dir.path().join("m1"))
        .expect("release");
    copying
        .release_rootfs("m2", &dir.path().join("m2"))
        .expect("release");
    let release = t.elapsed();
    eprintln!(
        "busybox ({} bytes archive): import+verify+unpack {import:?}, overlay rootfs {overlay:?}, copy rootfs {copy:?}, release both {release:?}",
        fs::metadata(&archive).expect("size").len()
    );
}
