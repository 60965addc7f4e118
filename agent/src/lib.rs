//! skerry: a small static edge agent that runs ECS task definitions on gateways.
//!
//! Module map (each owns one job; see `docs/design.md`):
//! - [`spec`]: ECS task definition JSON in, checked model out. Pure.
//! - [`images`]: content-addressed image store, OCI import, safe layer unpack, rootfs.
//! - [`runtime`]: one container's life through libcontainer, in a per-container monitor.
//! - [`store`]: the state directory layout, atomic files, and the outbox of reports.
//! - [`report`]: what the agent tells its operator (events), as stored and sent.
//! - [`config`]: the agent's TOML configuration.
//! - [`supervisor`]: keeps the desired tasks running (local directory and fleet documents).
//! - [`sync`]: the MQTT link (fleet mode): documents in, reports out.
//! - [`telemetry`]: metrics from cgroups and /proc, log shipping, the Prometheus endpoint.
//! - [`ctl`]: the operator commands (`skerry ctl`): sign, publish, read status and events.
//! - [`context`], [`signals`], [`taskdef`]: what the commands and the supervisor share
//!   (opened config and stores, stop signals, the task-definition file reader).
//! - [`cli`]: argument parsing and dispatch; thin. Nothing below it reaches back into it.
//! - [`logging`]: where logs go (journald, stderr) and the fields events carry.

pub mod cli;
pub mod config;
pub mod context;
pub mod ctl;
pub mod images;
pub mod logging;
pub mod net;
pub mod notify;
pub mod report;
pub mod runtime;
pub mod secrets;
pub mod signals;
pub use skerry_core::spec;
pub mod store;
pub mod supervisor;
pub mod sync;
pub mod task;
pub mod taskdef;
pub mod telemetry;
