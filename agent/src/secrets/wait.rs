//! Waiting for a container's secrets before its image is pulled, as ECS resolves
//! secrets and registry auth before it pulls: the worker checks the store every
//! [`POLL`] and tells `on_wait` each time what it waits for changes, so a secret
//! that arrives (`skerry secret put`, or sealed over MQTT) starts the task without
//! an agent restart.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use skerry_core::spec::ContainerSecrets;

use super::resolve::{registry_credentials, resolve_named, Missing};
use super::store::SecretStore;
use crate::images::pull::Credentials;

/// How often a waiting container looks at the store again.
pub const POLL: Duration = Duration::from_millis(250);

/// Checks that every secret of `secrets` resolves; returns the registry credentials
/// (`repositoryCredentials`) if any. Values of env vars and log options are dropped
/// here: the monitor reads them again when it starts the container.
pub fn check(
    store: &SecretStore,
    secrets: &ContainerSecrets,
) -> Result<Option<Credentials>, Missing> {
    resolve_named(store, &secrets.env)?;
    resolve_named(store, &secrets.log_options)?;
    secrets
        .registry
        .as_ref()
        .map(|r| registry_credentials(store, r))
        .transpose()
}

/// Blocks until [`check`] passes (`Some`) or `cancel` is set (`None`).
pub fn wait_for(
    store: &SecretStore,
    secrets: &ContainerSecrets,
    cancel: &AtomicBool,
    mut on_wait: impl FnMut(&Missing),
) -> Option<Option<Credentials>> {
    let mut last: Option<Missing> = None;
    loop {
        match check(store, secrets) {
            Ok(creds) => return Some(creds),
            Err(m) => {
                if last.as_ref() != Some(&m) {
                    on_wait(&m);
                    last = Some(m);
                }
            }
        }
        if cancel.load(Ordering::Relaxed) {
            return None;
        }
        std::thread::sleep(POLL);
    }
}
