//! The local secret store: `<state_dir>/secrets/`, mode 0700, one file per secret
//! named by its local name ([`validate_secret_name`]: never a path), mode 0600.
//!
//! File layout: the magic line `skerry-secret 1\n`, then the value's bytes. Writes
//! are atomic (write, fsync, rename, fsync dir: `store::write_atomic_mode`); a
//! reader sees the old value or the new one. Values are at most
//! [`MAX_SECRET_BYTES`] (Secrets Manager's own limit).

use std::fs::{self, DirBuilder, File};
use std::io::{self, Read as _};
use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use skerry_core::spec::validate_secret_name;

use crate::store::{sync_dir, write_atomic_mode, StateLayout};

/// Largest secret value, in bytes (Secrets Manager allows 64 KiB).
pub const MAX_SECRET_BYTES: usize = 65_536;
const MAGIC: &[u8] = b"skerry-secret 1\n";

/// What can go wrong with the store; names paths and secret names, never values.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("secret name {name:?}: {why}")]
    BadName { name: String, why: String },
    #[error("secret {name:?}: the value is {len} bytes, more than {MAX_SECRET_BYTES}")]
    TooLarge { name: String, len: usize },
    #[error("secret {name:?}: the value is empty")]
    Empty { name: String },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{}: not a skerry secret file (bad magic)", path.display())]
    Corrupt { path: PathBuf },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> SecretsError + '_ {
    move |source| SecretsError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The store of one state directory.
#[derive(Debug, Clone)]
pub struct SecretStore {
    dir: PathBuf,
}

impl SecretStore {
    /// The store of `layout` (the directory is made on first write).
    pub fn new(layout: &StateLayout) -> Self {
        Self {
            dir: layout.secrets(),
        }
    }

    /// The store in `dir` (what a launch plan records).
    pub fn at(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
        }
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, name: &str) -> Result<PathBuf, SecretsError> {
        validate_secret_name(name).map_err(|why| SecretsError::BadName {
            name: name.to_string(),
            why,
        })?;
        Ok(self.dir.join(name))
    }

    /// Makes the directory 0700 (and tightens it if it exists).
    fn ensure_dir(&self) -> Result<(), SecretsError> {
        let err = io_err(&self.dir);
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(err)?;
        fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o700)).map_err(io_err(&self.dir))
    }

    /// Stores `value` as `name`, replacing any older value.
    pub fn put(&self, name: &str, value: &[u8]) -> Result<(), SecretsError> {
        let path = self.path(name)?;
        if value.is_empty() {
            return Err(SecretsError::Empty { name: name.into() });
        }
        if value.len() > MAX_SECRET_BYTES {
            return Err(SecretsError::TooLarge {
                name: name.into(),
                len: value.len(),
            });
        }
        self.ensure_dir()?;
        let mut data = Vec::with_capacity(MAGIC.len() + value.len());
        data.extend_from_slice(MAGIC);
        data.extend_from_slice(value);
        write_atomic_mode(&path, &data, 0o600).map_err(io_err(&path))
    }

    /// The value of `name`, or `None` when it is not stored.
    pub fn get(&self, name: &str) -> Result<Option<Vec<u8>>, SecretsError> {
        let path = self.path(name)?;
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(&path)(e)),
        };
        let mut data = Vec::new();
        file.take((MAGIC.len() + MAX_SECRET_BYTES) as u64)
            .read_to_end(&mut data)
            .map_err(io_err(&path))?;
        match data.strip_prefix(MAGIC) {
            Some(value) => Ok(Some(value.to_vec())),
            None => Err(SecretsError::Corrupt { path }),
        }
    }

    /// Whether `name` is stored.
    pub fn contains(&self, name: &str) -> bool {
        self.path(name).is_ok_and(|p| p.is_file())
    }

    /// Stored names, sorted (temporary files of unfinished writes left out).
    pub fn list(&self) -> Result<Vec<String>, SecretsError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(io_err(&self.dir)(e)),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_err(&self.dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if validate_secret_name(&name).is_ok() {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    /// Removes `name`; returns whether it was stored.
    pub fn remove(&self, name: &str) -> Result<bool, SecretsError> {
        let path = self.path(name)?;
        match fs::remove_file(&path) {
            Ok(()) => {
                sync_dir(&self.dir).map_err(io_err(&self.dir))?;
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_err(&path)(e)),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic; clippy.toml has no allow-unwrap-in-tests
mod tests {
    use std::os::unix::fs::MetadataExt as _;

    use super::*;

    #[test]
    fn secret_store_put_get_list_remove_with_modes() {
        let tmp = tempfile::tempdir().unwrap();
        let store = SecretStore::new(&StateLayout::new(tmp.path()));
        assert_eq!(store.list().unwrap(), Vec::<String>::new());
        store.put("db.pass", b"s3cret\n").unwrap();
        store.put("db.pass", b"newer").unwrap();
        assert_eq!(
            store.get("db.pass").unwrap().as_deref(),
            Some(&b"newer"[..])
        );
        assert_eq!(store.get("other").unwrap(), None);
        assert_eq!(store.list().unwrap(), ["db.pass"]);
        let dir_mode = fs::metadata(store.dir()).unwrap().mode() & 0o777;
        let file_mode = fs::metadata(store.dir().join("db.pass")).unwrap().mode() & 0o777;
        assert_eq!((dir_mode, file_mode), (0o700, 0o600));
        assert!(store.remove("db.pass").unwrap());
        assert!(!store.remove("db.pass").unwrap());
    }

    #[test]
    fn secret_store_refuses_paths_and_bad_values() {
        let tmp = tempfile::tempdir().unwrap();
        let store = SecretStore::new(&StateLayout::new(tmp.path()));
        for name in ["../x", "a/b", "..", ""] {
            let err = store.put(name, b"v").unwrap_err().to_string();
            assert!(err.starts_with("secret name"), "{name}: {err}");
        }
        assert!(matches!(
            store.put("e", b""),
            Err(SecretsError::Empty { .. })
        ));
        let big = vec![b'x'; MAX_SECRET_BYTES + 1];
        assert!(matches!(
            store.put("b", &big),
            Err(SecretsError::TooLarge { .. })
        ));
        assert!(!tmp.path().join("x").exists());
    }
}
