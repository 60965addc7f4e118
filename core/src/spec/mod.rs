//! Task definitions: ECS RegisterTaskDefinition JSON (or describe-task-definition
//! output) in, a checked [`TaskDefinition`] out. Pure: no I/O, no clock.
//!
//! Every refusal names the JSON path and the reason, e.g.
//! `containerDefinitions[1].memory: must be ≥ 6 MiB`.

mod model;

pub use model::*;
