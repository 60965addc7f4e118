//! Command-line parsing and dispatch. Each verb is a short file; the work happens in
//! the library modules. Exit codes are chosen on purpose (see [`ExitCode`] use below):
//! 0 ok, 1 runtime failure, 2 bad input (task definition, config, arguments).

mod errtext;
mod events;
pub mod generate;
mod image;
mod logs;
pub mod output;
mod ps;
mod pull;
pub mod run;
mod secret;
mod stop;
mod tail;
mod top;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

pub use crate::context::Context;

/// skerry: run ECS task definitions on edge gateways, with no Docker and no network.
#[derive(Debug, Parser)]
#[command(name = "skerry", version = VERSION, about)]
pub struct Cli {
    /// Agent config file (TOML). Default: /etc/skerry/agent.toml if present, else built-in defaults.
    #[arg(long, global = true, env = "SKERRY_CONFIG")]
    pub config: Option<PathBuf>,
    /// State directory (overrides the config's state_dir).
    #[arg(long, global = true, env = "SKERRY_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print version, git commit, target and build profile.
    Version,
    /// Run a task definition in the foreground until its essential container exits.
    Run(run::RunArgs),
    /// List tasks and their containers.
    Ps(ps::PsArgs),
    /// Print a task's container logs.
    Logs(logs::LogsArgs),
    /// Stop a task and delete it (containers, cgroups, rootfs).
    Stop(stop::StopArgs),
    /// Print the agent's events: launches, exits, restarts, health, deployments.
    Events(events::EventsArgs),
    /// The containers' and the device's figures, from the agent's local telemetry.
    Top(top::TopArgs),
    /// Manage local images.
    #[command(subcommand)]
    Image(image::ImageCommand),
    /// The device's local secrets (values from stdin; never printed).
    #[command(subcommand)]
    Secret(secret::SecretCommand),
    /// Run the agent: keep the desired tasks running (a local directory, and the fleet's
    /// signed documents when [mqtt] is configured).
    Agent(AgentArgs),
    /// Operator commands: sign and publish desired state to devices and groups over
    /// MQTT, read their status and events. `--config` names the ctl config here.
    Ctl(Box<crate::ctl::CtlArgs>),
    /// Internal: a container's monitor process.
    #[command(hide = true, subcommand)]
    Monitor(MonitorCommand),
    /// Internal: the init process for containers with initProcessEnabled.
    #[command(hide = true)]
    Init {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

#[derive(Debug, clap::Args)]
pub struct AgentArgs {
    /// Validate the config and exit.
    #[arg(long)]
    pub check_config: bool,
}

#[derive(Debug, Subcommand)]
pub enum MonitorCommand {
    Start {
        dir: PathBuf,
    },
    Reap {
        dir: PathBuf,
    },
    /// Runs CMD inside the container of DIR (health checks); prints `exit N` or `timeout`.
    Exec {
        dir: PathBuf,
        #[arg(long)]
        timeout: u64,
        #[arg(last = true, required = true)]
        cmd: Vec<String>,
    },
}

/// What `skerry version` and `skerry --version` print after `skerry `.
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("SKERRY_GIT_COMMIT"),
    ", target ",
    env!("SKERRY_TARGET"),
    ", profile ",
    env!("SKERRY_PROFILE"),
    ")"
);

/// The version line of `skerry version` (and `--version`, `-V`).
pub fn version_text() -> String {
    format!("skerry {VERSION}")
}

/// Runs a parsed command; returns the process exit code.
pub fn dispatch(cli: Cli) -> i32 {
    match cli.command {
        Command::Version => {
            println!("{}", version_text());
            0
        }
        Command::Monitor(MonitorCommand::Start { dir }) => {
            crate::runtime::monitor::monitor_start_main(&dir)
        }
        Command::Monitor(MonitorCommand::Reap { dir }) => {
            crate::runtime::monitor::monitor_reap_main(&dir)
        }
        Command::Monitor(MonitorCommand::Exec { dir, timeout, cmd }) => {
            crate::runtime::exec::monitor_exec_main(&dir, timeout, &cmd)
        }
        Command::Ctl(a) => crate::ctl::ctl_main(cli.config.as_deref(), *a),
        Command::Init { args } => {
            let args: Vec<String> = args.into_iter().skip_while(|a| a == "--").collect();
            crate::runtime::init::init_main(&args)
        }
        command => {
            let ctx = match Context::load(cli.config.as_deref(), cli.state_dir.as_deref()) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("skerry: {}", errtext::error_text(&e));
                    return 2;
                }
            };
            let result = match command {
                Command::Run(a) => run::run(&ctx, a),
                Command::Ps(a) => ps::ps(&ctx, a),
                Command::Logs(a) => logs::logs(&ctx, a),
                Command::Stop(a) => stop::stop(&ctx, a),
                Command::Events(a) => events::events(&ctx, a),
                Command::Top(a) => top::top(&ctx, a),
                Command::Image(c) => image::image(&ctx, c),
                Command::Secret(c) => secret::secret(&ctx, c),
                Command::Agent(a) if a.check_config => {
                    println!("config ok: state_dir {}", ctx.config.state_dir.display());
                    Ok(0)
                }
                Command::Agent(_) => crate::supervisor::agent_main(&ctx),
                _ => Ok(0),
            };
            match result {
                Ok(code) => code,
                Err(e) => {
                    eprintln!("skerry: {}", errtext::error_text(&e));
                    1
                }
            }
        }
    }
}
