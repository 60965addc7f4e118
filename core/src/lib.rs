//! skerry's pure core. Nothing here touches the disk, the network or the clock:
//! - [`spec`]: ECS task definition JSON in, checked model out.
//! - [`reconcile`]: the reconciler: (desired, observed, now) → actions.
//! - [`proto`]: the MQTT wire: topics, envelopes, signed documents, delivery rules.
//! - [`devfilter`]: the cgroup v2 device filter program (eBPF) for a rule set.
//! - [`bridge`]: bridge subnet, container addresses and host-port choices.
//! - [`telemetry`]: metrics and log-batch wire types, the line budget, batching.
//!
//! Kept as its own crate so it builds without tokio or libcontainer, and so its tests
//! can link embassy-time's mock driver while the agent links the std driver.

pub mod bridge;
pub mod devfilter;
pub mod proto;
pub mod reconcile;
pub mod spec;
pub mod telemetry;
