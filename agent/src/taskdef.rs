//! Task-definition (and service) files: one size-capped reader for `skerry run`, the
//! desired directory and `skerry ctl`, so every path refuses an oversized file alike.

/// Largest task definition file accepted.
pub const MAX_TASK_DEFINITION_BYTES: u64 = 1 << 20;

/// Reads a task-definition (or service) file, refusing one over
/// [`MAX_TASK_DEFINITION_BYTES`]; errors name the file.
pub fn read_task_definition_text(path: &std::path::Path) -> Result<String, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if meta.len() > MAX_TASK_DEFINITION_BYTES {
        return Err(format!(
            "{}: larger than {MAX_TASK_DEFINITION_BYTES} bytes",
            path.display()
        ));
    }
    std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}
