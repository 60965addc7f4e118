//! The device's secrets: the local store (`skerry secret put|ls|rm`, and the agent
//! reading values at launch) and the resolution of a container's
//! [`ContainerSecrets`](skerry_core::spec::ContainerSecrets) against it.
//!
//! Also the device's own keys (`device_key`) and the inbox of secrets sealed to it
//! over MQTT (`inbox`).
//!
//! Values never leave this module except into a container's process environment
//! (through its monitor, see `runtime::monitor`) and a pull's registry credentials;
//! errors and logs name secrets, never values.

pub mod device_key;
mod inbox;
mod resolve;
mod store;
mod wait;

pub use device_key::SealingKey;
pub use inbox::{InboxIdentity, SecretInbox};
pub use resolve::{registry_credentials, resolve_named, Missing};
pub use store::{SecretStore, SecretsError, MAX_SECRET_BYTES};
pub use wait::{check, wait_for};
