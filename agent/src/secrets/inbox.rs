//! Secrets arriving sealed over MQTT: each payload goes through the one pure gate
//! ([`open_secret`]); an opened value goes into the local [`SecretStore`] (a task
//! waiting for it starts on the next poll), its version into
//! `<state_dir>/fleet/secret-versions.json` (atomic) so a replay of an older message
//! is refused after a restart too. Every outcome is one fleet event naming the
//! secret, never its value; a refusal changes nothing.

use std::collections::BTreeMap;
use std::path::PathBuf;

use skerry_core::proto::sealed::{open_secret, SecretExpect};
use skerry_core::proto::FleetEvent;

use super::device_key::SealingKey;
use super::store::SecretStore;
use crate::store::write_atomic;

/// Who the device is on the wire, as the inbox checks it.
#[derive(Debug, Clone)]
pub struct InboxIdentity {
    pub fleet: String,
    pub device: String,
    /// The operator keys trusted for deployments.
    pub trusted: Vec<[u8; 32]>,
    pub max_payload: usize,
}

/// The device's receiver of sealed secrets.
pub struct SecretInbox {
    id: InboxIdentity,
    key: SealingKey,
    store: SecretStore,
    versions_path: PathBuf,
    versions: BTreeMap<String, u64>,
}

impl SecretInbox {
    /// Opens the inbox: `fleet_dir` holds the versions file.
    pub fn open(
        id: InboxIdentity,
        key: SealingKey,
        store: SecretStore,
        fleet_dir: PathBuf,
    ) -> Self {
        let versions_path = fleet_dir.join("secret-versions.json");
        let versions = std::fs::read(&versions_path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        Self {
            id,
            key,
            store,
            versions_path,
            versions,
        }
    }

    /// The public sealing key, for the reported state.
    pub fn public_key(&self) -> [u8; 32] {
        self.key.public()
    }

    /// Checks, opens and stores one payload; the event says what happened.
    pub fn offer(&mut self, payload: &[u8]) -> FleetEvent {
        let versions = &self.versions;
        let have = |name: &str| versions.get(name).copied();
        let expect = SecretExpect {
            fleet: &self.id.fleet,
            device: &self.id.device,
            trusted: &self.id.trusted,
            max_bytes: self.id.max_payload,
            have: &have,
        };
        let opened = match open_secret(payload, &expect, self.key.secret()) {
            Ok(o) => o,
            Err(r) => {
                return FleetEvent::SecretRejected {
                    code: r.code().to_string(),
                    reason: r.to_string(),
                }
            }
        };
        let mut versions = self.versions.clone();
        versions.insert(opened.name.clone(), opened.version);
        let stored = serde_json::to_vec(&versions)
            .map_err(|e| e.to_string())
            .and_then(|bytes| {
                if let Some(dir) = self.versions_path.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
                }
                write_atomic(&self.versions_path, &bytes).map_err(|e| e.to_string())
            })
            .and_then(|()| {
                self.store
                    .put(&opened.name, &opened.value)
                    .map_err(|e| e.to_string())
            });
        match stored {
            Ok(()) => {
                self.versions = versions;
                FleetEvent::SecretStored {
                    name: opened.name,
                    version: opened.version,
                }
            }
            Err(reason) => FleetEvent::SecretRejected {
                code: "not-stored".into(),
                reason: format!("secret {:?}: {reason}", opened.name),
            },
        }
    }
}
