//! Registry pull tests against real parts: Debian's `docker-registry` on loopback
//! ports, images pushed with `skopeo` from the busybox OCI layouts of
//! `scripts/build-test-images.sh` and from layouts generated here, a registry with
//! htpasswd auth behind TLS with a test CA, and a fault-injecting proxy (cuts, Range
//! stripped, a flipped byte, stalls). Answers no real registry gives come from a
//! hostile server. Run as root (layer unpack keeps owners; tmpfs mounts).

mod common;
mod pullkit;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::Ordering;
use std::sync::OnceLock;
use std::time::Duration;

use pullkit::{
    generate_test_layout, http, noise, tar_of, Hostile, Layer, Proxy, Registry, RegistryOpts,
};
use skerry::config::{AgentConfig, RegistryConfig};
use skerry::images::pull::{PullError, PullOptions};
use skerry::images::{ImageStore, Platform};

fn test_images() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let dir = std::env::var_os("SKERRY_TEST_IMAGES")
            .map(PathBuf::from)
            .unwrap_or_else(|| manifest_dir.join("../target/test-images"));
        let out = Command::new(manifest_dir.join("../scripts/build-test-images.sh"))
            .arg(&dir)
            .output()
            .expect("run build-test-images.sh");
        assert!(
            out.status.success(),
            "build-test-images.sh: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        dir
    })
}

/// Options for `host`, plain HTTP, fast retries, giving up after `give_up` idle attempts.
fn opts_for(host: &str, give_up: u32) -> PullOptions {
    let mut cfg = AgentConfig::default();
    cfg.registries.insert(
        host.to_owned(),
        RegistryConfig {
            insecure: true,
            ..RegistryConfig::default()
        },
    );
    cfg.images.min_retry_delay_ms = 20;
    cfg.images.read_timeout_secs = 2;
    cfg.images.connect_timeout_secs = 2;
    let mut o = PullOptions::from_config(&cfg);
    o.give_up_after = Some(give_up);
    o
}

fn new_store() -> (tempfile::TempDir, ImageStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = ImageStore::open(&dir.path().join("images")).expect("store");
    (dir, store)
}

/// refs.json and the names under blobs/ and layers/: what a failed pull must not change.
fn store_state(store_root: &Path) -> (String, Vec<String>) {
    let refs = fs::read_to_string(store_root.join("refs.json")).unwrap_or_default();
    let mut names = Vec::new();
    for sub in ["blobs/sha256", "layers"] {
        for e in fs::read_dir(store_root.join(sub)).expect("readdir") {
            names.push(format!(
                "{sub}/{}",
                e.expect("entry").file_name().to_string_lossy()
            ));
        }
    }
    names.sort();
    (refs, names)
}

fn blob_size_of(store_root: &Path) -> u64 {
    fs::read_dir(store_root.join("blobs/sha256"))
        .expect("blobs")
        .map(|e| e.expect("entry").metadata().expect("meta").len())
        .sum()
}

/// A generated amd64-or-host image with one incompressible layer of `n` bytes.
fn noise_layout(dir: &Path, n: usize, seed: u64) -> PathBuf {
    let layout = dir.join(format!("noise-{n}-{seed}"));
    let tar = tar_of(&[("data/noise.bin", &noise(n, seed))]);
    generate_test_layout(&layout, &Platform::host().architecture, &[Layer::gzip(tar)]);
    layout
}

// ---- by tag, by digest, platforms ------------------------------------------------------

#[test]
fn pull_by_tag_and_by_digest() {
    let reg = Registry::start(RegistryOpts::default());
    reg.push(&test_images().join("busybox-amd64"), "busybox", "1.0");
    let (dir, store) = new_store();
    let opts = opts_for(&reg.addr, 3);
    let by_tag = store
        .pull(&format!("{}/busybox:1.0", reg.addr), &opts)
        .expect("pull by tag");
    assert_eq!(by_tag.image.reference, format!("{}/busybox:1.0", reg.addr));
    assert_eq!(by_tag.image.architecture, "amd64");
    let resolved = store
        .resolve(&format!("{}/busybox:1.0", reg.addr))
        .expect("resolve");
    let layer = dir
        .path()
        .join("images/layers")
        .join(resolved.layers[0].trim_start_matches("sha256:"));
    assert!(layer.join("bin/busybox").is_file(), "layer not unpacked");
    let pinned = format!("{}/busybox@{}", reg.addr, by_tag.image.manifest_digest);
    let by_digest = store.pull(&pinned, &opts).expect("pull by digest");
    assert_eq!(
        by_digest.image.manifest_digest,
        by_tag.image.manifest_digest
    );
    assert_eq!(by_digest.image.reference, pinned);
    assert!(store.resolve(&pinned).is_ok());
    // Nothing left in ingest once committed.
    let ingest: Vec<_> = fs::read_dir(dir.path().join("images/ingest/blobs"))
        .expect("ingest")
        .collect();
    assert!(ingest.is_empty(), "ingest not emptied: {ingest:?}");
    let err = store
        .pull(&format!("{}/busybox:nope", reg.addr), &opts)
        .expect_err("unknown tag");
    assert!(matches!(err, PullError::ManifestUnknown { .. }), "{err}");
    assert!(err.to_string().contains("busybox:nope"), "{err}");
}

#[test]
fn pull_multi_arch_picks_the_asked_platform() {
    let reg = Registry::start(RegistryOpts::default());
    reg.push(&test_images().join("busybox-multi"), "multi", "latest");
    let reference = format!("{}/multi", reg.addr);
    for (platform, arch) in [("linux/arm64/v8", "arm64"), ("linux/amd64", "amd64")] {
        let (_dir, store) = new_store();
        let mut opts = opts_for(&reg.addr, 3);
        opts.platform = Some(Platform::parse(platform).expect("platform"));
        let got = store.pull(&reference, &opts).expect(platform);
        assert_eq!(got.image.architecture, arch, "{platform}");
    }
    let (_dir, store) = new_store();
    let mut opts = opts_for(&reg.addr, 3);
    opts.platform = Some(Platform::parse("linux/riscv64").expect("riscv64"));
    let err = store
        .pull(&reference, &opts)
        .expect_err("no riscv64")
        .to_string();
    assert!(
        err.contains("riscv64") && err.contains("linux/arm64/v8") && err.contains("linux/amd64"),
        "{err}"
    );
}

#[test]
fn pull_single_manifest_for_another_arch_refused_naming_both() {
    let reg = Registry::start(RegistryOpts::default());
    let other = if Platform::host().architecture == "arm64" {
        "busybox-amd64"
    } else {
        "busybox-arm64"
    };
    reg.push(&test_images().join(other), "foreign", "latest");
    let (dir, store) = new_store();
    let before = store_state(&dir.path().join("images"));
    let err = store
        .pull(&format!("{}/foreign", reg.addr), &opts_for(&reg.addr, 3))
        .expect_err("foreign arch");
    let msg = err.to_string();
    let host = Platform::host().to_string();
    assert!(
        msg.contains(&host) && msg.contains(if host == "arm64" { "amd64" } else { "arm64" }),
        "{msg}"
    );
    assert_eq!(
        store_state(&dir.path().join("images")),
        before,
        "store changed"
    );
}

#[test]
fn pull_zstd_and_gzip_layers() {
    let reg = Registry::start(RegistryOpts::default());
    let work = tempfile::tempdir().expect("tempdir");
    let layout = work.path().join("zstd");
    generate_test_layout(
        &layout,
        &Platform::host().architecture,
        &[
            Layer::gzip(tar_of(&[("etc/gz.txt", b"from gzip\n")])),
            Layer::zstd(tar_of(&[
                ("etc/zstd.txt", b"from zstd\n"),
                ("big.bin", &vec![7u8; 300_000]),
            ])),
        ],
    );
    reg.push(&layout, "zstd", "latest");
    let (dir, store) = new_store();
    let got = store
        .pull(&format!("{}/zstd", reg.addr), &opts_for(&reg.addr, 3))
        .expect("zstd pull");
    let resolved = store.resolve(&got.image.reference).expect("resolve");
    let top = dir
        .path()
        .join("images/layers")
        .join(resolved.layers[1].trim_start_matches("sha256:"));
    assert_eq!(
        fs::read(top.join("etc/zstd.txt")).expect("zstd file"),
        b"from zstd\n"
    );
    assert_eq!(
        fs::metadata(top.join("big.bin")).expect("big").len(),
        300_000
    );
}

// ---- auth and TLS ------------------------------------------------------------------------

#[test]
fn pull_auth_and_tls_right_and_wrong() {
    let reg = Registry::start(RegistryOpts {
        htpasswd: Some(("edge", "s3cret")),
        tls: true,
    });
    reg.push(
        &test_images().join("busybox-amd64"),
        "private/busybox",
        "latest",
    );
    let reference = format!("{}/private/busybox", reg.addr);
    let ca = reg.ca.clone().expect("ca");
    let with = |creds: Option<(&str, &str)>, ca_file: Option<PathBuf>| {
        let mut o = opts_for(&reg.addr, 2);
        o.registries.insert(
            reg.addr.clone(),
            RegistryConfig {
                username: creds.map(|c| c.0.to_owned()),
                password: creds.map(|c| c.1.to_owned()),
                ca_file,
                ..RegistryConfig::default()
            },
        );
        o
    };
    let (dir, store) = new_store();
    // No test CA: the certificate is refused (not retried forever).
    let err = store
        .pull(&reference, &with(Some(("edge", "s3cret")), None))
        .expect_err("unknown CA");
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );
    let err = store
        .pull(&reference, &with(None, Some(ca.clone())))
        .expect_err("anonymous");
    assert!(
        matches!(err, PullError::Denied { status: 401, .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("no credentials configured"),
        "{err}"
    );
    let err = store
        .pull(&reference, &with(Some(("edge", "wrong")), Some(ca.clone())))
        .expect_err("wrong password");
    assert!(matches!(err, PullError::Denied { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("refused the configured credentials"),
        "{err}"
    );
    assert_eq!(store.list().expect("list").len(), 0);
    store
        .pull(
            &reference,
            &with(Some(("edge", "s3cret")), Some(ca.clone())),
        )
        .expect("right credentials");
    // The same credentials from a Docker config.json.
    let docker = dir.path().join("config.json");
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode("edge:s3cret");
    fs::write(
        &docker,
        format!(r#"{{"auths":{{"{}":{{"auth":"{b64}"}}}}}}"#, reg.addr),
    )
    .expect("docker config");
    let mut o = with(None, Some(ca.clone()));
    o.docker_config = Some(docker.clone());
    let (_d2, store2) = new_store();
    store2
        .pull(&reference, &o)
        .expect("docker config.json auths");
    fs::write(
        &docker,
        format!(r#"{{"credHelpers":{{"{}":"ecr-login"}}}}"#, reg.addr),
    )
    .expect("helpers");
    let err = store2.pull(&reference, &o).expect_err("credHelpers");
    assert!(
        err.to_string().contains("docker-credential-ecr-login"),
        "{err}"
    );
}

// ---- bad links ------------------------------------------------------------------------------

#[test]
fn pull_five_cuts_mid_blob_complete_with_little_extra() {
    let reg = Registry::start(RegistryOpts::default());
    let work = tempfile::tempdir().expect("tempdir");
    let layout = noise_layout(work.path(), 3 << 20, 1);
    reg.push(&layout, "noise", "latest");
    let proxy = Proxy::start(&reg.addr);
    *proxy.faults.cut_at.lock().expect("lock") =
        vec![400_000, 900_000, 1_500_000, 2_000_000, 2_600_000];
    let (dir, store) = new_store();
    let got = store
        .pull(&format!("{}/noise", proxy.addr), &opts_for(&proxy.addr, 3))
        .expect("pull through cuts");
    let size = got.image.size_bytes;
    let sent = proxy.sent();
    println!(
        "5 cuts: image {size} bytes, {sent} bytes sent by the proxy ({:.3}x)",
        sent as f64 / size as f64
    );
    assert_eq!(
        proxy.cuts.load(Ordering::Relaxed),
        5,
        "not every cut happened"
    );
    assert!(
        sent as f64 <= 1.3 * size as f64,
        "{sent} bytes for a {size} byte image"
    );
    assert_eq!(blob_size_of(&dir.path().join("images")), size);
}

#[test]
fn pull_range_ignored_restarts_the_blob_once() {
    let reg = Registry::start(RegistryOpts::default());
    let work = tempfile::tempdir().expect("tempdir");
    let layout = noise_layout(work.path(), 2 << 20, 2);
    reg.push(&layout, "norange", "latest");
    let proxy = Proxy::start(&reg.addr);
    proxy.faults.strip_range.store(true, Ordering::Relaxed);
    *proxy.faults.cut_at.lock().expect("lock") = vec![1_000_000];
    let (_dir, store) = new_store();
    let got = store
        .pull(
            &format!("{}/norange", proxy.addr),
            &opts_for(&proxy.addr, 3),
        )
        .expect("pull");
    let (size, sent) = (got.image.size_bytes, proxy.sent());
    println!("Range ignored, 1 cut: image {size} bytes, {sent} sent");
    assert_eq!(proxy.cuts.load(Ordering::Relaxed), 1);
    // One restart from zero: the cut prefix plus the whole image, no more.
    assert!(
        sent > size + 900_000 && sent < size + 1_200_000,
        "{sent} for {size}"
    );
}

#[test]
fn pull_corrupted_blob_refused_and_fetched_again() {
    let reg = Registry::start(RegistryOpts::default());
    let work = tempfile::tempdir().expect("tempdir");
    let layout = noise_layout(work.path(), 1 << 20, 3);
    reg.push(&layout, "corrupt", "latest");
    let proxy = Proxy::start(&reg.addr);
    *proxy.faults.corrupt_next_over.lock().expect("lock") = Some(100_000);
    let (dir, store) = new_store();
    let retries = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut opts = opts_for(&proxy.addr, 3);
    let seen = retries.clone();
    opts.progress = Some(std::sync::Arc::new(move |e| {
        if let skerry::images::pull::PullEvent::Retry { error, .. } = e {
            seen.lock().expect("lock").push(error.clone());
        }
    }));
    let got = store
        .pull(&format!("{}/corrupt", proxy.addr), &opts)
        .expect("pull");
    let retries = retries.lock().expect("lock").clone();
    assert_eq!(retries.len(), 1, "{retries:?}");
    assert!(retries[0].contains("discarded"), "{retries:?}");
    assert!(
        proxy.sent() > 2 * (1 << 20),
        "the blob was not fetched twice"
    );
    assert_eq!(
        blob_size_of(&dir.path().join("images")),
        got.image.size_bytes
    );
}

#[test]
fn pull_stalled_link_times_out_and_resumes() {
    let reg = Registry::start(RegistryOpts::default());
    let work = tempfile::tempdir().expect("tempdir");
    let layout = noise_layout(work.path(), 1 << 20, 4);
    reg.push(&layout, "stall", "latest");
    let proxy = Proxy::start(&reg.addr);
    *proxy.faults.stall_after.lock().expect("lock") = Some(500_000);
    let (_dir, store) = new_store();
    let opts = opts_for(&proxy.addr, 8);
    let reference = format!("{}/stall", proxy.addr);
    let handle = {
        let (store, opts, reference) = (store.clone(), opts.clone(), reference.clone());
        std::thread::spawn(move || store.pull(&reference, &opts))
    };
    // Once the link has stalled, lift the stall for the retry: the read timeout (2 s)
    // ends the stalled attempt.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while proxy.sent() < 500_000 {
        assert!(
            std::time::Instant::now() < deadline,
            "the pull never reached the stall"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    *proxy.faults.stall_after.lock().expect("lock") = None;
    let got = handle.join().expect("join").expect("pull after a stall");
    assert!(
        proxy.sent() < got.image.size_bytes + 200_000,
        "restarted from zero: {}",
        proxy.sent()
    );
}

/// A gateway with no CA bundle (the QEMU board has none): a plain-HTTP registry still
/// pulls; a TLS one without `ca_file` is refused naming what is missing, not with
/// reqwest's bare "builder error".
#[test]
fn pull_works_on_a_system_without_ca_certificates() {
    let plain = Registry::start(RegistryOpts::default());
    plain.push(&test_images().join("busybox-amd64"), "noca", "latest");
    let tls = Registry::start(RegistryOpts {
        tls: true,
        ..RegistryOpts::default()
    });
    let state = tempfile::tempdir().expect("state");
    let empty = state.path().join("no-certs");
    fs::create_dir_all(&empty).expect("dir");
    let config = state.path().join("agent.toml");
    fs::write(
        &config,
        format!(
            "state_dir = \"{}\"\n[images]\nmin_retry_delay_ms = 20\n[registries.\"{}\"]\ninsecure = true\n",
            state.path().join("s").display(),
            plain.addr
        ),
    )
    .expect("config");
    let pull = |reference: String| {
        Command::new(env!("CARGO_BIN_EXE_skerry"))
            .env("SKERRY_CONFIG", &config)
            .env("SKERRY_LOG", "warn")
            .env("SSL_CERT_FILE", empty.join("none.pem"))
            .env("SSL_CERT_DIR", &empty)
            .args(["image", "pull", &reference])
            .output()
            .expect("skerry image pull")
    };
    let ok = pull(format!("{}/noca:latest", plain.addr));
    assert!(
        ok.status.success(),
        "plain HTTP pull without CA certificates: {}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let refused = pull(format!("{}/noca:latest", tls.addr));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        err.contains("no CA certificate") && err.contains(&tls.addr),
        "{err}"
    );
}

// ---- restart and disk ---------------------------------------------------------------------------

#[test]
fn pull_killed_midway_resumes_from_disk() {
    let reg = Registry::start(RegistryOpts::default());
    let work = tempfile::tempdir().expect("tempdir");
    let layout = noise_layout(work.path(), 6 << 20, 5);
    reg.push(&layout, "kill", "latest");
    let proxy = Proxy::start(&reg.addr);
    proxy.faults.throttle.store(2 << 20, Ordering::Relaxed);
    let state = tempfile::tempdir().expect("state");
    let config = state.path().join("agent.toml");
    fs::write(
        &config,
        format!(
            "state_dir = \"{}\"\n[images]\nmin_retry_delay_ms = 20\n[registries.\"{}\"]\ninsecure = true\n",
            state.path().join("s").display(),
            proxy.addr
        ),
    )
    .expect("config");
    let reference = format!("{}/kill", proxy.addr);
    let skerry = || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_skerry"));
        c.env("SKERRY_CONFIG", &config)
            .env("SKERRY_LOG", "warn")
            .args(["image", "pull", &reference]);
        c
    };
    let mut child = skerry()
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let ingest = state.path().join("s/images/ingest");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let synced = fs::read_dir(&ingest)
            .ok()
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| {
                e.file_name().to_string_lossy().ends_with(".partial")
                    && e.metadata().is_ok_and(|m| m.len() > 3 << 20)
            });
        if synced {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "download never got going"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // What `skerry ps` shows for a container waiting on this pull.
    let live = ImageStore::open(&state.path().join("s/images")).expect("store");
    let st = live
        .pull_status(&reference)
        .expect("pull status while pulling");
    assert!(
        st.bytes > 0 && st.total >= st.bytes && st.pid == child.id(),
        "{st:?}"
    );
    child.kill().expect("kill -9");
    child.wait().expect("wait");
    assert!(
        live.pull_status(&reference).is_none(),
        "a dead pull's status is still shown"
    );
    let first = proxy.sent();
    proxy.faults.throttle.store(0, Ordering::Relaxed);
    let out = skerry().output().expect("second pull");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8_lossy(&out.stdout).into_owned();
    let size: u64 = line
        .split_whitespace()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .expect("size printed");
    let second = proxy.sent() - first;
    println!("killed after {first} bytes; the next pull fetched {second} of {size}");
    assert!(
        second + (2 << 20) <= size,
        "the second pull did not resume: {second} of {size}"
    );
}

#[test]
fn pull_disk_full_fails_clearly_then_succeeds_after_space_is_freed() {
    let reg = Registry::start(RegistryOpts::default());
    let work = tempfile::tempdir().expect("tempdir");
    // 24 MiB of zeros: a tiny blob that fills the disk only when unpacked.
    let layout = work.path().join("bomb");
    let tar = tar_of(&[("zeros.bin", &vec![0u8; 24 << 20])]);
    generate_test_layout(&layout, &Platform::host().architecture, &[Layer::gzip(tar)]);
    reg.push(&layout, "bomb", "latest");
    let state = tempfile::tempdir().expect("state");
    let mnt = state.path().join("mnt");
    fs::create_dir_all(&mnt).expect("mnt");
    let mount = |opts: &str, flags: nix::mount::MsFlags| {
        nix::mount::mount(Some("tmpfs"), &mnt, Some("tmpfs"), flags, Some(opts))
            .expect("mount tmpfs");
    };
    mount("size=8m,mode=0700", nix::mount::MsFlags::empty());
    let _unmount = Unmount(mnt.clone());
    let store = ImageStore::open(&mnt.join("images")).expect("store");
    let reference = format!("{}/bomb", reg.addr);
    let before = store_state(&mnt.join("images"));
    let err = store
        .pull(&reference, &opts_for(&reg.addr, 2))
        .expect_err("disk full");
    assert!(err.is_disk_full(), "{err:?}");
    assert!(err.to_string().contains("No space left on device"), "{err}");
    assert_eq!(store_state(&mnt.join("images")), before, "store changed");
    let tmp: Vec<_> = fs::read_dir(mnt.join("images/layers"))
        .expect("layers")
        .collect();
    assert!(tmp.is_empty(), "half layer left: {tmp:?}");
    mount("size=64m", nix::mount::MsFlags::MS_REMOUNT);
    store
        .pull(&reference, &opts_for(&reg.addr, 2))
        .expect("pull after space is freed");
}

struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

#[test]
fn pull_free_space_checked_before_download() {
    let reg = Registry::start(RegistryOpts::default());
    let work = tempfile::tempdir().expect("tempdir");
    let layout = noise_layout(work.path(), 4 << 20, 6);
    reg.push(&layout, "big", "latest");
    let mnt = work.path().join("mnt");
    fs::create_dir_all(&mnt).expect("mnt");
    nix::mount::mount(
        Some("tmpfs"),
        &mnt,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        Some("size=6m"),
    )
    .expect("mount");
    let _unmount = Unmount(mnt.clone());
    let store = ImageStore::open(&mnt.join("images")).expect("store");
    let err = store
        .pull(&format!("{}/big", reg.addr), &opts_for(&reg.addr, 2))
        .expect_err("too big");
    assert!(matches!(err, PullError::NoSpace { .. }), "{err}");
    assert!(err.to_string().contains("not enough free space"), "{err}");
    let partials: Vec<_> = fs::read_dir(mnt.join("images/ingest"))
        .expect("ingest")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".partial"))
        .collect();
    assert!(partials.is_empty(), "download started anyway");
}

// ---- bad input ------------------------------------------------------------------------------------

#[test]
fn pull_path_traversal_layer_refused_by_the_unpacker() {
    let reg = Registry::start(RegistryOpts::default());
    let work = tempfile::tempdir().expect("tempdir");
    let layout = work.path().join("evil");
    let mut header = tar::Header::new_gnu();
    let name = b"../../escaped";
    header.as_gnu_mut().expect("gnu").name[..name.len()].copy_from_slice(name);
    header.set_size(4);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    let mut b = tar::Builder::new(Vec::new());
    b.append(&header, &b"evil"[..]).expect("append");
    let tar = b.into_inner().expect("tar");
    generate_test_layout(&layout, &Platform::host().architecture, &[Layer::gzip(tar)]);
    reg.push(&layout, "evil", "latest");
    let (dir, store) = new_store();
    let before = store_state(&dir.path().join("images"));
    let err = store
        .pull(&format!("{}/evil", reg.addr), &opts_for(&reg.addr, 2))
        .expect_err("traversal");
    assert!(err.to_string().contains("../../escaped"), "{err}");
    assert_eq!(store_state(&dir.path().join("images")), before);
    assert!(!dir.path().join("escaped").exists() && !dir.path().join("images/escaped").exists());
}

/// A hostile registry answering manifests with `manifest` (status 200, `media`).
fn hostile_manifest(media: &'static str, body: Vec<u8>) -> Hostile {
    Hostile::start(move |path| {
        if path == "/v2/" {
            http("200 OK", "application/json", b"{}")
        } else {
            http("200 OK", media, &body)
        }
    })
}

#[test]
fn pull_bad_answers_are_clear_errors_and_change_nothing() {
    let (dir, store) = new_store();
    let before = store_state(&dir.path().join("images"));
    let cases: Vec<(&str, Hostile, &str)> = vec![
        (
            "unknown media type",
            hostile_manifest(
                "application/vnd.example.thing+json",
                br#"{"schemaVersion":2,"mediaType":"application/vnd.example.thing+json"}"#.to_vec(),
            ),
            "unsupported media type application/vnd.example.thing+json",
        ),
        (
            "huge manifest",
            hostile_manifest(
                "application/vnd.oci.image.manifest.v1+json",
                vec![b' '; 5 << 20],
            ),
            "larger than the 4194304 byte limit",
        ),
        (
            "garbage",
            Hostile::start(|_| b"\x00\x01 this is not HTTP at all \xff\r\n\r\n".to_vec()),
            "/v2/",
        ),
        (
            "garbage JSON",
            hostile_manifest(
                "application/vnd.oci.image.manifest.v1+json",
                b"{\"schemaVersion\":2,\"layers\":7".to_vec(),
            ),
            "malformed image manifest",
        ),
    ];
    for (what, server, want) in cases {
        let err = store
            .pull(&format!("{}/x:1", server.addr), &opts_for(&server.addr, 2))
            .expect_err(what);
        assert!(err.to_string().contains(want), "{what}: {err}");
        assert_eq!(store_state(&dir.path().join("images")), before, "{what}");
    }
    // A pinned digest the registry answers with other content.
    let server = hostile_manifest(
        "application/vnd.oci.image.manifest.v1+json",
        br#"{"schemaVersion":2}"#.to_vec(),
    );
    let pinned = format!("{}/x@sha256:{}", server.addr, "a".repeat(64));
    let err = store
        .pull(&pinned, &opts_for(&server.addr, 2))
        .expect_err("digest mismatch");
    let msg = err.to_string();
    assert!(
        msg.contains(&"a".repeat(64)) && msg.contains("discarded"),
        "{msg}"
    );
    assert_eq!(store_state(&dir.path().join("images")), before);
    let _ = BTreeMap::<(), ()>::new();
}

// ---- pull behaviour through skerry run ------------------------------------------------------

fn task(image: &str) -> String {
    format!(
        r#"{{"family": "pb", "containerDefinitions": [{{"name": "app", "image": "{image}", "memory": 32, "essential": true, "command": ["sh", "-c", "echo pulled-ok"]}}]}}"#
    )
}

fn run_env(behavior: &str, registry: &str) -> common::TestEnv {
    common::TestEnv::with_config(&format!(
        "[images]\npull_behavior = \"{behavior}\"\nmin_retry_delay_ms = 20\nconnect_timeout_secs = 2\n[registries.\"{registry}\"]\ninsecure = true\n"
    ))
}

#[test]
fn pull_behaviour_online_and_offline() {
    let reg = Registry::start(RegistryOpts::default());
    reg.push(&test_images().join("busybox-amd64"), "busybox", "latest");
    let image = format!("{}/busybox:latest", reg.addr);
    let mut envs = Vec::new();
    for behavior in ["default", "always", "once", "prefer-cached"] {
        let env = run_env(behavior, &reg.addr);
        let out = env.run(&format!("on{}", &behavior[..4]), &task(&image));
        assert!(
            out.status.success(),
            "{behavior} online: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            env.log(&format!("on{}", &behavior[..4]), "app")
                .contains("pulled-ok"),
            "{behavior}"
        );
        envs.push((behavior, env));
    }
    drop(reg); // offline from here on
    for (behavior, env) in &envs {
        let name = format!("off{}", &behavior[..4]);
        let out = env.run(&name, &task(&image));
        let stderr = String::from_utf8_lossy(&out.stderr);
        if *behavior == "always" {
            assert!(!out.status.success(), "always offline ran");
            assert!(stderr.contains("CannotPullContainerError"), "{stderr}");
            assert!(stderr.contains(&image), "{stderr}");
        } else {
            assert!(out.status.success(), "{behavior} offline: {stderr}");
            assert!(env.log(&name, "app").contains("pulled-ok"), "{behavior}");
        }
    }
    // Never pulled and offline: the task says why.
    let env = run_env("default", "127.0.0.1:1");
    let out = env.run("never", &task("127.0.0.1:1/busybox:latest"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("cannot pull"),
        "{stderr}"
    );
    assert!(stderr.contains("127.0.0.1:1"), "{stderr}");
}

#[test]
fn pull_prune_keeps_referenced_and_recent_images() {
    let work = tempfile::tempdir().expect("tempdir");
    let (dir, store) = new_store();
    for (i, name) in ["app:1", "old:1", "older:1"].iter().enumerate() {
        let layout = noise_layout(work.path(), 10_000 + i, i as u64 + 10);
        store.import_as(&layout, Some(name)).expect("import");
    }
    let referenced: std::collections::HashSet<String> = ["app:1".to_owned()].into();
    let report = store.prune(1, &referenced).expect("prune keep 1");
    assert_eq!(report.untagged.len(), 1, "{report:?}");
    let left: Vec<String> = store
        .list()
        .expect("list")
        .into_iter()
        .map(|i| i.reference)
        .collect();
    assert_eq!(left.len(), 2);
    assert!(left.contains(&"app:1".to_owned()), "{left:?}");
    let report = store.prune(0, &referenced).expect("prune all unused");
    assert_eq!(report.untagged.len(), 1);
    assert!(report.gc.blobs_removed >= 3, "{report:?}");
    let left: Vec<String> = store
        .list()
        .expect("list")
        .into_iter()
        .map(|i| i.reference)
        .collect();
    assert_eq!(left, ["app:1"]);
    assert!(store.resolve("app:1").is_ok());
    let _ = dir;
}

/// Air gap: one OCI archive holding several images (a bundle on a USB stick).
#[test]
fn pull_air_gap_multi_image_archive_imports_every_image() {
    let work = tempfile::tempdir().expect("tempdir");
    let bundle = work.path().join("bundle");
    fs::create_dir_all(bundle.join("blobs/sha256")).expect("mkdir");
    fs::write(
        bundle.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .expect("layout");
    let mut manifests = Vec::new();
    for (src, name) in [
        ("busybox-amd64", "edge.example/busybox:1.36"),
        ("busybox-app", "edge.example/app:2"),
    ] {
        let layout = test_images().join(src);
        for e in fs::read_dir(layout.join("blobs/sha256")).expect("blobs") {
            let e = e.expect("entry");
            fs::copy(e.path(), bundle.join("blobs/sha256").join(e.file_name())).expect("copy");
        }
        let index: serde_json::Value =
            serde_json::from_slice(&fs::read(layout.join("index.json")).expect("index"))
                .expect("json");
        let mut m = index["manifests"][0].clone();
        m["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": name});
        manifests.push(m);
    }
    fs::write(
        bundle.join("index.json"),
        serde_json::json!({"schemaVersion": 2, "manifests": manifests}).to_string(),
    )
    .expect("index");
    let archive = work.path().join("bundle.tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg(&bundle)
        .arg("-cf")
        .arg(&archive)
        .args(["oci-layout", "index.json", "blobs"])
        .status()
        .expect("tar");
    assert!(st.success());
    let (_dir, store) = new_store();
    let imported = store.import(&archive).expect("import bundle");
    let mut names: Vec<String> = imported.into_iter().map(|i| i.reference).collect();
    names.sort();
    assert_eq!(names, ["edge.example/app:2", "edge.example/busybox:1.36"]);
    assert!(store.resolve("edge.example/app:2").is_ok());
}

/// `skerry agent`: a desired task whose image is only in the registry is pulled by the
/// executor (off the main loop) and then runs.
#[test]
fn pull_agent_pulls_a_desired_tasks_image() {
    let reg = Registry::start(RegistryOpts::default());
    reg.push(
        &test_images().join("busybox-amd64"),
        "agent/busybox",
        "latest",
    );
    let env = run_env("default", &reg.addr);
    let desired = env.state().join("desired");
    fs::create_dir_all(&desired).expect("desired");
    // It keeps running: a task that ends is deleted with its log by the agent.
    let def = task(&format!("{}/agent/busybox:latest", reg.addr))
        .replace("echo pulled-ok", "echo pulled-ok; sleep 3600");
    fs::write(desired.join("agentpull.json"), def).expect("task");
    let agent_log = env.state().join("agent-test.log");
    let mut agent = env
        .skerry(&["agent"])
        .env("SKERRY_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(fs::File::create(&agent_log).expect("agent log"))
        .spawn()
        .expect("agent");
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    while !env.log("agentpull", "app").contains("pulled-ok") {
        if std::time::Instant::now() > deadline {
            let _ = agent.kill();
            let _ = agent.wait();
            panic!(
                "the agent did not pull and run the task; its log:\n{}\nps:\n{}",
                fs::read_to_string(&agent_log).unwrap_or_default(),
                String::from_utf8_lossy(&env.skerry(&["ps", "-a"]).output().expect("ps").stdout)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // The pull's progress is an event, as ECS users see in `skerry events`.
    let ev = String::from_utf8_lossy(
        &env.skerry(&["events", "--task", "agentpull"])
            .output()
            .expect("events")
            .stdout,
    )
    .into_owned();
    assert!(
        ev.contains("pulling") && ev.contains("100%"),
        "no pull progress in the events:\n{ev}"
    );
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(agent.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    agent.wait().expect("agent exit");
    let store = ImageStore::open(&env.state().join("images")).expect("store");
    assert!(store.pulled_before(&format!("{}/agent/busybox:latest", reg.addr)));
}

/// The agent prunes by policy (`prune_interval_secs`, here shortened by the test hook):
/// unreferenced images beyond `keep_unused` go, the running task's image stays.
#[test]
fn pull_agent_prunes_unused_images_by_policy() {
    let env = common::TestEnv::with_config("[images]\nkeep_unused = 0\n");
    let layers = test_images().join("busybox-layers");
    let out = env
        .skerry(&["image", "import", "--name", "extra"])
        .arg(&layers)
        .output()
        .expect("import");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let refs = |env: &common::TestEnv| -> Vec<String> {
        let out = env
            .skerry(&["image", "ls", "--output", "json"])
            .output()
            .expect("ls");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ls json");
        v.as_array()
            .expect("array")
            .iter()
            .filter_map(|i| i["reference"].as_str().map(str::to_owned))
            .collect()
    };
    let before = refs(&env);
    assert!(before.iter().any(|r| r == "extra:latest"), "{before:?}");
    fs::create_dir_all(env.desired_dir()).expect("desired");
    fs::write(
        env.desired_dir().join("keeper.json"),
        task("busybox:latest").replace("echo pulled-ok", "sleep 3600"),
    )
    .expect("task");
    let _agent = env.agent(&[("SKERRY_TEST_PRUNE_INTERVAL_MS", "500")]);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let now = refs(&env);
        if !now
            .iter()
            .any(|r| r == "extra:latest" || r == "busybox-app:latest")
        {
            assert!(now.iter().any(|r| r == "busybox:latest"), "{now:?}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "unused images never pruned: {now:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    env.wait_status("keeper running", 60, |s| {
        s["tasks"]["keeper"]["containers"]["app"]["pid"].is_u64()
    });
}

/// Bearer tokens from a token endpoint, and a token that expires mid-pull answering
/// 403 (as ECR does): the pull logs in again once and completes.
#[test]
fn pull_bearer_token_and_relogin_on_403() {
    let work = tempfile::tempdir().expect("tempdir");
    let layout = noise_layout(work.path(), 50_000, 20);
    let blobs = layout.join("blobs/sha256");
    let manifest_digest = {
        let index: serde_json::Value =
            serde_json::from_slice(&fs::read(layout.join("index.json")).expect("index"))
                .expect("json");
        index["manifests"][0]["digest"]
            .as_str()
            .expect("digest")
            .to_owned()
    };
    let issued = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let uses = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let addr_cell = std::sync::Arc::new(std::sync::OnceLock::<String>::new());
    let (i2, u2, a2, md) = (
        issued.clone(),
        uses.clone(),
        addr_cell.clone(),
        manifest_digest.clone(),
    );
    let server = Hostile::start_with_head(move |head| {
        let path = head.split(' ').nth(1).unwrap_or("/");
        let auth = head
            .lines()
            .find_map(|l| {
                l.strip_prefix("authorization: ")
                    .or_else(|| l.strip_prefix("Authorization: "))
            })
            .unwrap_or("")
            .trim()
            .to_owned();
        let realm = format!(
            "http://{}/token",
            a2.get().map(String::as_str).unwrap_or("")
        );
        let challenge = format!(
            "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"{realm}\",service=\"fake\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .into_bytes();
        if path.starts_with("/token") {
            let n = i2.fetch_add(1, Ordering::Relaxed) + 1;
            return http(
                "200 OK",
                "application/json",
                format!(r#"{{"token":"tok-{n}"}}"#).as_bytes(),
            );
        }
        if path == "/v2/" {
            return challenge;
        }
        let current = format!("Bearer tok-{}", i2.load(Ordering::Relaxed));
        if auth != current {
            return challenge;
        }
        // The first token expires after two uses: 403, like an expired ECR token.
        if i2.load(Ordering::Relaxed) == 1 && u2.fetch_add(1, Ordering::Relaxed) >= 2 {
            return http(
                "403 Forbidden",
                "application/json",
                br#"{"errors":[{"code":"DENIED"}]}"#,
            );
        }
        let digest = path.rsplit('/').next().unwrap_or("");
        let name = if path.contains("/manifests/") {
            md.trim_start_matches("sha256:").to_owned()
        } else {
            digest.trim_start_matches("sha256:").to_owned()
        };
        match fs::read(blobs.join(&name)) {
            Ok(body) if path.contains("/manifests/") => http(
                "200 OK",
                "application/vnd.oci.image.manifest.v1+json",
                &body,
            ),
            Ok(body) => http("200 OK", "application/octet-stream", &body),
            Err(_) => http("404 Not Found", "application/json", b"{}"),
        }
    });
    addr_cell.set(server.addr.clone()).expect("addr");
    let (_dir, store) = new_store();
    let got = store
        .pull(
            &format!("{}/ecr/app:1", server.addr),
            &opts_for(&server.addr, 2),
        )
        .expect("bearer pull");
    assert_eq!(got.image.manifest_digest, manifest_digest);
    assert_eq!(
        issued.load(Ordering::Relaxed),
        2,
        "expected one login and one re-login"
    );
}
