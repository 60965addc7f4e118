//! Keys made on the device and never leaving it: `<state_dir>/keys/` (0700), one
//! file per key (0600, `skerry-key <kind> 1\n` then the raw secret, written
//! atomically). Today: the X25519 sealing key operators seal secrets to (its public
//! half goes out in the reported state). The device-provisioning work (a key made
//! here, a CSR signed over MQTT) adds its TLS key beside it through the same
//! [`load_or_create`].

use std::fs::{self, DirBuilder};
use std::io;
use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use ring::rand::{SecureRandom as _, SystemRandom};
use skerry_core::proto::sealed::sealing_public;

use crate::store::{write_atomic_mode, StateLayout};

/// A key file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{}: not a skerry {kind} key (bad header or length)", path.display())]
    Corrupt { path: PathBuf, kind: &'static str },
    #[error("no system randomness to make a key")]
    Random,
}

/// The directory of the device's own keys.
pub fn keys_dir(layout: &StateLayout) -> PathBuf {
    layout.root().join("keys")
}

/// Reads the 32-byte key `kind` from `path`, or makes and stores a new one.
pub fn load_or_create(path: &Path, kind: &'static str) -> Result<[u8; 32], KeyError> {
    let io_err = |source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    };
    let header = format!("skerry-key {kind} 1\n");
    match fs::read(path) {
        Ok(bytes) => {
            let raw = bytes
                .strip_prefix(header.as_bytes())
                .ok_or(KeyError::Corrupt {
                    path: path.to_path_buf(),
                    kind,
                })?;
            return raw.try_into().map_err(|_| KeyError::Corrupt {
                path: path.to_path_buf(),
                kind,
            });
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(e)),
    }
    let mut key = [0u8; 32];
    SystemRandom::new()
        .fill(&mut key)
        .map_err(|_| KeyError::Random)?;
    if let Some(dir) = path.parent() {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io_err)?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io_err)?;
    }
    let mut data = header.into_bytes();
    data.extend_from_slice(&key);
    write_atomic_mode(path, &data, 0o600).map_err(io_err)?;
    Ok(key)
}

/// The device's X25519 sealing key pair.
#[derive(Clone)]
pub struct SealingKey {
    secret: [u8; 32],
    public: [u8; 32],
}

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SealingKey(public {:02x?}…)", &self.public[..4])
    }
}

impl SealingKey {
    /// `<state_dir>/keys/sealing.key`, made on first use.
    pub fn load_or_create(layout: &StateLayout) -> Result<Self, KeyError> {
        let secret = load_or_create(&keys_dir(layout).join("sealing.key"), "x25519")?;
        Ok(Self {
            public: sealing_public(&secret),
            secret,
        })
    }

    pub fn public(&self) -> [u8; 32] {
        self.public
    }

    pub fn secret(&self) -> &[u8; 32] {
        &self.secret
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic; clippy.toml has no allow-unwrap-in-tests
mod tests {
    use std::os::unix::fs::MetadataExt as _;

    use super::*;

    #[test]
    fn device_key_is_made_once_private_and_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let layout = StateLayout::new(tmp.path());
        let a = SealingKey::load_or_create(&layout).unwrap();
        let b = SealingKey::load_or_create(&layout).unwrap();
        assert_eq!(a.public(), b.public());
        let file = keys_dir(&layout).join("sealing.key");
        assert_eq!(fs::metadata(&file).unwrap().mode() & 0o777, 0o600);
        assert_eq!(
            fs::metadata(keys_dir(&layout)).unwrap().mode() & 0o777,
            0o700
        );
        fs::write(&file, b"junk").unwrap();
        assert!(matches!(
            SealingKey::load_or_create(&layout),
            Err(KeyError::Corrupt { .. })
        ));
    }
}
