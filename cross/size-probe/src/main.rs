//! Size probe: exercises the agent's heavy dependencies so the linker keeps
//! them (see Cargo.toml). Only built by cross/bench-sizes; it is never run
//! against real containers.

use std::io::Read;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use libcgroups::common::{create_cgroup_manager, CgroupConfig, CgroupManager};
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::Container;
use libcontainer::signal::Signal;
use libcontainer::syscall::syscall::SyscallType;
use sha2::Digest;

#[derive(Parser)]
#[command(name = "skerry", version)]
struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Print a version line.
    Version,
    /// Run one container from a bundle.
    Run { id: String, root: PathBuf, bundle: PathBuf },
    /// Kill and delete a container.
    Kill { state: PathBuf },
    /// Unpack a .tar.gz layer and print its sha256.
    Unpack { layer: PathBuf, dest: PathBuf },
    /// Parse a config and a spec.
    Parse { config: PathBuf, spec: PathBuf },
    /// Print cgroup stats.
    Stats { cgroup: PathBuf },
}

#[derive(serde::Deserialize, serde::Serialize, Debug)]
#[serde(deny_unknown_fields)]
struct Conf {
    state_dir: PathBuf,
    restart_backoff_secs: u64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    match args.cmd {
        Cmd::Version => println!("skerry 0.0.0 (probe) {}", std::env::consts::ARCH),
        Cmd::Run { id, root, bundle } => {
            let mut c = ContainerBuilder::new(id, SyscallType::default())
                .with_root_path(root)?
                .validate_id()?
                .as_init(bundle)
                .with_systemd(false)
                .with_detach(true)
                .build()?;
            c.start()?;
            let pid = c.pid().context("no pid")?;
            nix::sys::wait::waitpid(pid, None)?;
            c.delete(true)?;
        }
        Cmd::Kill { state } => {
            let mut c = Container::load(state)?;
            tracing::info!(status = ?c.status(), "loaded");
            c.kill(Signal::try_from("SIGTERM")?, true)?;
            c.delete(true)?;
        }
        Cmd::Unpack { layer, dest } => {
            let mut raw = Vec::new();
            std::fs::File::open(&layer)?.read_to_end(&mut raw)?;
            println!("sha256:{}", hex::encode(sha2::Sha256::digest(&raw)));
            tar::Archive::new(flate2::read::GzDecoder::new(&raw[..])).unpack(dest)?;
        }
        Cmd::Parse { config, spec } => {
            let conf: Conf = toml::from_str(&std::fs::read_to_string(config)?)?;
            let spec: oci_spec::runtime::Spec =
                serde_json::from_str(&std::fs::read_to_string(spec)?)?;
            let image: oci_spec::image::ImageConfiguration = serde_json::from_str("{}")
                .unwrap_or_default();
            println!("{}", serde_json::to_string(&(conf, spec, image))?);
        }
        Cmd::Stats { cgroup } => {
            let m = create_cgroup_manager(CgroupConfig {
                cgroup_path: cgroup,
                systemd_cgroup: false,
                container_name: "probe".into(),
            })?;
            println!("{:?}", m.stats()?);
        }
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<u32>(8);
        tokio::spawn(async move {
            let _ = tx.send(1).await;
        });
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = term.recv() => {}
            v = rx.recv() => tracing::debug!(?v, "got"),
            _ = tokio::time::sleep(std::time::Duration::from_millis(1)) => {}
        }
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
        let l = tokio::net::UnixListener::bind("/nonexistent/probe.sock");
        tracing::debug!(ok = l.is_ok(), "bind");
        let _ = tokio::fs::read("/etc/hostname").await;
        anyhow::Ok(())
    })
}
