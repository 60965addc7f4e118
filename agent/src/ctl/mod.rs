//! `skerry ctl`: the operator's side of fleet mode, in the same binary. It validates
//! task definitions and services with the device's own `spec` code, signs complete
//! target documents ([`skerry_core::proto::DeploymentDoc`]), publishes them retained,
//! and reads back the retained `reported`/`status` and the `events` stream.
//! Argument types and dispatch live here; each verb is a short module.

mod client;
pub mod config;
mod documents;
mod events;
mod keys;
mod logs;
mod publish;
mod secret;
mod status;
mod top;
mod wait;

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand, ValueEnum};

use config::{CtlConfig, CtlFlags};

/// `skerry ctl …`.
#[derive(Debug, Args)]
pub struct CtlArgs {
    #[command(flatten)]
    pub flags: CtlFlags,
    #[command(subcommand)]
    pub command: CtlCommand,
}

/// A deployment's target: one device or one group.
#[derive(Debug, Clone, Args)]
#[group(required = true, multiple = false)]
pub struct TargetArgs {
    /// The device id (its certificate's CN).
    #[arg(long)]
    pub device: Option<String>,
    /// A device group.
    #[arg(long)]
    pub group: Option<String>,
}

/// `table` for people, `json` for scripts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Output {
    #[default]
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum CtlCommand {
    /// Make an ed25519 signing key pair; prints the public key for the agents' trusted_keys.
    Keygen {
        /// Where to write the private key (mode 0600; never overwritten).
        #[arg(long, default_value = "skerry-signing.key")]
        out: PathBuf,
    },
    /// Publish the complete desired state of a target: task definitions (`NAME.json`)
    /// and services (`NAME.service.json`), files or directories.
    Apply {
        #[command(flatten)]
        target: TargetArgs,
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Wait up to SECS for the target to report the version applied.
        #[arg(long, value_name = "SECS")]
        wait: Option<u64>,
    },
    /// Add or replace one task definition (or service) in the target's document.
    Deploy {
        #[command(flatten)]
        target: TargetArgs,
        task_definition: PathBuf,
        /// Run it as this service (ECS CreateService) instead of a one-off task.
        #[arg(long)]
        service: Option<String>,
        /// desiredCount of the service.
        #[arg(long, default_value_t = 1, requires = "service")]
        count: u32,
        /// Name of the task (default: the definition's family).
        #[arg(long, conflicts_with = "service")]
        name: Option<String>,
        #[arg(long, value_name = "SECS")]
        wait: Option<u64>,
    },
    /// Remove one task or service from the target's document.
    Remove {
        #[command(flatten)]
        target: TargetArgs,
        name: String,
        #[arg(long, value_name = "SECS")]
        wait: Option<u64>,
    },
    /// Publish the previous document again, under a new version.
    Rollback {
        #[command(flatten)]
        target: TargetArgs,
        #[arg(long, value_name = "SECS")]
        wait: Option<u64>,
    },
    /// The fleet, or one device: retained reported state and presence.
    Status {
        #[arg(long)]
        device: Option<String>,
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// A device's events, in order (kept by the broker for ctl between runs).
    Events {
        #[arg(long)]
        device: String,
        /// Keep following.
        #[arg(short, long)]
        follow: bool,
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// A device's containers and figures (telemetry), redrawn as reports arrive.
    Top {
        #[arg(long)]
        device: String,
        /// Print one screen and exit.
        #[arg(long)]
        once: bool,
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Secrets sealed to one device (only it can open them).
    #[command(subcommand)]
    Secret(SecretCtl),
    /// A task's container logs as the device ships them (`awslogs` containers).
    Logs {
        #[arg(long)]
        device: String,
        task: String,
        container: Option<String>,
        /// Keep following.
        #[arg(short, long)]
        follow: bool,
        /// Only lines from this age (`10m`, `2h`) or RFC 3339 time on.
        #[arg(long)]
        since: Option<String>,
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
}

/// `skerry ctl secret …`.
#[derive(Debug, Subcommand)]
pub enum SecretCtl {
    /// Seal the value on stdin to DEVICE's key, sign it and publish it to the device.
    Put {
        #[arg(long)]
        device: String,
        name: String,
        /// The version (default: now, in milliseconds); must grow per name.
        #[arg(long)]
        version: Option<u64>,
    },
}

/// Runs `skerry ctl`; `config` is the global `--config` (the ctl config here).
pub fn ctl_main(config: Option<&Path>, args: CtlArgs) -> i32 {
    if let CtlCommand::Keygen { out } = &args.command {
        return match keys::keygen(out) {
            Ok(public) => {
                println!("{public}");
                eprintln!(
                    "private key written to {} (keep it secret); add the public key above to the agents' [mqtt] trusted_keys",
                    out.display()
                );
                0
            }
            Err(e) => {
                eprintln!("skerry ctl: {e:#}");
                1
            }
        };
    }
    let cfg = match CtlConfig::load(config, &args.flags) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("skerry ctl: {e:#}");
            return 2;
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("skerry ctl: {e}");
            return 1;
        }
    };
    match rt.block_on(run(&cfg, args.command)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("skerry ctl: {e:#}");
            1
        }
    }
}

async fn run(cfg: &CtlConfig, cmd: CtlCommand) -> anyhow::Result<i32> {
    match cmd {
        CtlCommand::Keygen { .. } => Ok(0),
        CtlCommand::Apply {
            target,
            paths,
            wait,
        } => {
            let entries = documents::read_paths(&paths)?;
            publish::replace(cfg, &target, |_| Ok(entries), wait).await
        }
        CtlCommand::Deploy {
            target,
            task_definition,
            service,
            count,
            name,
            wait,
        } => {
            let entry =
                documents::one_entry(&task_definition, service.as_deref(), count, name.as_deref())?;
            publish::replace(cfg, &target, move |cur| documents::upsert(cur, entry), wait).await
        }
        CtlCommand::Remove { target, name, wait } => {
            publish::replace(cfg, &target, move |cur| documents::remove(cur, &name), wait).await
        }
        CtlCommand::Rollback { target, wait } => publish::rollback(cfg, &target, wait).await,
        CtlCommand::Status { device, output } => {
            status::status(cfg, device.as_deref(), output).await
        }
        CtlCommand::Events {
            device,
            follow,
            output,
        } => events::events(cfg, &device, follow, output).await,
        CtlCommand::Top {
            device,
            once,
            output,
        } => top::top(cfg, &device, once, output).await,
        CtlCommand::Secret(SecretCtl::Put {
            device,
            name,
            version,
        }) => secret::put(cfg, &device, &name, version).await,
        CtlCommand::Logs {
            device,
            task,
            container,
            follow,
            since,
            output,
        } => {
            let (c, s) = (container.as_deref(), since.as_deref());
            logs::logs(cfg, &device, &task, c, follow, s, output).await
        }
    }
}
