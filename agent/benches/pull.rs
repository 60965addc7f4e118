//! Pull benchmarks (figures printed, nothing asserted): pull + unpack of a ~1 MB
//! (busybox) and a ~50 MB image from a loopback `docker-registry`, side by side with
//! `skopeo copy` of the same image into an OCI layout; bytes sent through a proxy
//! that cuts the connection 5 times vs the image size; peak RSS of `skerry image
//! pull` for the 50 MB layer.
//!
//! `SKERRY_TEST_IMAGES=... cargo bench -p skerry --bench pull`

#[path = "../tests/pullkit/mod.rs"]
mod pullkit;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use pullkit::{generate_test_layout, noise, tar_of, Layer, Proxy, Registry, RegistryOpts};
use skerry::config::{AgentConfig, RegistryConfig};
use skerry::images::pull::PullOptions;
use skerry::images::{ImageStore, Platform};

fn opts(host: &str) -> PullOptions {
    let mut cfg = AgentConfig::default();
    cfg.registries.insert(
        host.to_owned(),
        RegistryConfig {
            insecure: true,
            ..RegistryConfig::default()
        },
    );
    cfg.images.min_retry_delay_ms = 20;
    let mut o = PullOptions::from_config(&cfg);
    o.give_up_after = Some(5);
    o
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let images = std::env::var_os("SKERRY_TEST_IMAGES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-images"));
    let reg = Registry::start(RegistryOpts::default());
    let work = tempfile::tempdir().expect("tempdir");
    reg.push(&images.join("busybox-amd64"), "small", "latest");
    let big = work.path().join("big");
    let tar = tar_of(&[("data/noise.bin", &noise(50 << 20, 7))]);
    generate_test_layout(&big, &Platform::host().architecture, &[Layer::gzip(tar)]);
    reg.push(&big, "big", "latest");

    for (name, runs) in [("small", 5), ("big", 3)] {
        let reference = format!("{}/{name}:latest", reg.addr);
        let mut ours = Vec::new();
        let mut size = 0;
        for _ in 0..runs {
            let dir = tempfile::tempdir().expect("tempdir");
            let store = ImageStore::open(&dir.path().join("images")).expect("store");
            let t = Instant::now();
            size = store
                .pull(&reference, &opts(&reg.addr))
                .expect("pull")
                .image
                .size_bytes;
            ours.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        let mut skopeo = Vec::new();
        for _ in 0..runs {
            let dir = tempfile::tempdir().expect("tempdir");
            let t = Instant::now();
            let st = Command::new("skopeo")
                .args(["copy", "-q", "--src-tls-verify=false"])
                .arg(format!("docker://{reference}"))
                .arg(format!("oci:{}:latest", dir.path().join("oci").display()))
                .status()
                .expect("skopeo");
            assert!(st.success());
            skopeo.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        println!(
            "pull {name} ({size} bytes): skerry pull+unpack median {:.0} ms; skopeo copy to an OCI layout (no unpack) median {:.0} ms",
            median(ours),
            median(skopeo)
        );
    }

    // 5 cuts during the 50 MB blob.
    let proxy = Proxy::start(&reg.addr);
    *proxy.faults.cut_at.lock().expect("lock") =
        vec![8 << 20, 16 << 20, 24 << 20, 32 << 20, 40 << 20];
    let dir = tempfile::tempdir().expect("tempdir");
    let store = ImageStore::open(&dir.path().join("images")).expect("store");
    let got = store
        .pull(&format!("{}/big:latest", proxy.addr), &opts(&proxy.addr))
        .expect("pull through cuts");
    println!(
        "5 cuts: image {} bytes, proxy sent {} bytes ({:.4}x), cuts {}",
        got.image.size_bytes,
        proxy.sent(),
        proxy.sent() as f64 / got.image.size_bytes as f64,
        proxy.cuts.load(std::sync::atomic::Ordering::Relaxed)
    );

    // Peak RSS of the binary pulling the 50 MB layer.
    let state = tempfile::tempdir().expect("state");
    let config = state.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = \"{}\"\n[registries.\"{}\"]\ninsecure = true\n",
            state.path().join("s").display(),
            reg.addr
        ),
    )
    .expect("config");
    let mut child = Command::new(env!("CARGO_BIN_EXE_skerry"))
        .env("SKERRY_CONFIG", &config)
        .env("SKERRY_LOG", "warn")
        .args(["image", "pull", &format!("{}/big:latest", reg.addr)])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("skerry image pull");
    let status = format!("/proc/{}/status", child.id());
    let mut hwm_kb = 0u64;
    loop {
        if let Ok(text) = std::fs::read_to_string(&status) {
            if let Some(v) = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            {
                hwm_kb = hwm_kb.max(v);
            }
        }
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    println!(
        "peak RSS (VmHWM) of `skerry image pull` of the 50 MB layer: {:.1} MiB",
        hwm_kb as f64 / 1024.0
    );
}
