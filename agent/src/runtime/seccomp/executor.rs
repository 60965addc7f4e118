//! libcontainer's last step of a container process (init or exec'd), with the seccomp
//! filter installed right before `execvp`: after libcontainer has dropped
//! capabilities and set no_new_privs, so the filter also covers everything the
//! workload does and nothing libcontainer still needs is filtered.

use std::ffi::CString;
use std::sync::Arc;

use libcontainer::workload::default::DefaultExecutor;
use libcontainer::workload::{Executor, ExecutorError, ExecutorValidationError};
use oci_spec::runtime::Spec;

use super::{install, SockFilter};

/// Runs the spec's process like libcontainer's default executor, filtered by
/// `program` when there is one.
#[derive(Clone, Default)]
pub struct SeccompExecutor {
    program: Option<Arc<Vec<SockFilter>>>,
}

impl SeccompExecutor {
    /// An executor installing `program` (none: unfiltered).
    pub fn new(program: Option<Vec<SockFilter>>) -> Self {
        Self {
            program: program.map(Arc::new),
        }
    }
}

impl Executor for SeccompExecutor {
    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        let args = spec
            .process()
            .as_ref()
            .and_then(|p| p.args().as_ref())
            .filter(|a| !a.is_empty())
            .ok_or(ExecutorError::InvalidArg)?;
        let argv: Vec<CString> = args
            .iter()
            .map(|a| CString::new(a.as_bytes()))
            .collect::<Result<_, _>>()
            .map_err(|_| ExecutorError::InvalidArg)?;
        if let Some(prog) = &self.program {
            install(prog).map_err(|e| ExecutorError::Other(e.to_string()))?;
        }
        let err = match nix::unistd::execvp(&argv[0], &argv) {
            Err(e) => e,
            Ok(never) => match never {},
        };
        Err(ExecutorError::Other(format!(
            "executing {:?}: {err}",
            args[0]
        )))
    }

    fn validate(&self, spec: &Spec) -> Result<(), ExecutorValidationError> {
        DefaultExecutor {}.validate(spec)
    }
}
