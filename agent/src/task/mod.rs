//! A task: a set of containers from one task definition, with a durable record, and
//! the stop of a whole task outside the reconciler (`skerry stop`). Used by the CLI and
//! the supervisor; the runtime does the per-container work.
//!
//! ```text
//! tasks/<task-id>/task.json   TaskRecord (atomic write)
//! tasks/<task-id>/containers/ one directory per container (see runtime)
//! tasks/<task-id>/volumes/    task-scoped volumes
//! ```

mod lifecycle;
mod order;
mod record;

pub use lifecycle::{stop_task, task_states};
pub use order::start_order;
pub use record::{list_tasks, new_task_id, Owner, TaskRecord, TASK_FILE};
