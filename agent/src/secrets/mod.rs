//! The device's secrets: the local store (`skerry secret put|ls|rm`, and the agent
//! reading values at launch) and the resolution of a container's
//! [`ContainerSecrets`](skerry_core::spec::ContainerSecrets) against it.
//!
//! Values never leave this module except into a container's process environment
//! (through its monitor, see `runtime::monitor`) and a pull's registry credentials;
//! errors and logs name secrets, never values.

mod resolve;
mod store;
mod wait;

pub use resolve::{registry_credentials, resolve_named, Missing};
pub use store::{SecretStore, SecretsError, MAX_SECRET_BYTES};
pub use wait::{check, wait_for};
