//! `ImageStore`: opening the store directory, its lock and `refs.json`, and the
//! read-side operations (list, resolve) plus remove. Import, rootfs and GC live in their
//! own files as further `impl ImageStore` blocks.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use super::blobs::BlobDir;
use super::digest::Digest;
use super::error::{ImageError, IoContext};
use super::fsutil;
use super::oci::Image;
use super::platform::Platform;
use super::record;
use super::reference::Reference;
use super::{ImageSummary, ResolvedImage};

const REFS_MAGIC: &str = "skerry-image-refs";
/// Set to `1` to build every rootfs by copying (the overlay fallback), e.g. on a
/// filesystem overlayfs cannot use as upper dir.
pub const COPY_ENV: &str = "SKERRY_ROOTFS_COPY";

/// The image store rooted at `<state>/images`. Cheap to open; safe to use from several
/// processes at once (mutations take an flock on `lock`).
#[derive(Debug, Clone)]
pub struct ImageStore {
    pub(crate) root: PathBuf,
    pub(crate) blobs: BlobDir,
    pub(crate) layers_dir: PathBuf,
    pub(crate) leases_dir: PathBuf,
    pub(crate) tmp_dir: PathBuf,
    refs_path: PathBuf,
    pub(crate) platform: Platform,
    pub(crate) force_copy: bool,
}

/// Held while mutating the store; released on drop.
pub(crate) struct StoreLock(#[allow(dead_code)] Flock<File>);

impl ImageStore {
    /// Opens (creating if needed) the store at `dir`. The directory is made 0700: layers
    /// hold image files, setuid binaries included, that host users must not reach.
    pub fn open(dir: &Path) -> Result<Self, ImageError> {
        let store = Self {
            root: dir.to_path_buf(),
            blobs: BlobDir::new(dir.join("blobs").join("sha256")),
            layers_dir: dir.join("layers"),
            leases_dir: dir.join("leases"),
            tmp_dir: dir.join("tmp"),
            refs_path: dir.join("refs.json"),
            platform: Platform::host(),
            force_copy: std::env::var(COPY_ENV).is_ok_and(|v| v == "1"),
        };
        fs::create_dir_all(dir).at(dir)?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).at(dir)?;
        for sub in [
            store.blobs.dir(),
            &store.layers_dir,
            &store.leases_dir,
            &store.tmp_dir,
        ] {
            fs::create_dir_all(sub).at(sub)?;
        }
        store.remove_stale_temps()?;
        Ok(store)
    }

    /// Always builds a rootfs by copying layers, never with overlayfs (the fallback
    /// path; also selected by `SKERRY_ROOTFS_COPY=1`).
    pub fn with_copy_fallback(mut self) -> Self {
        self.force_copy = true;
        self
    }

    /// Treats `platform` as this machine's (default: [`Platform::host`]).
    pub fn with_platform(mut self, platform: Platform) -> Self {
        self.platform = platform;
        self
    }

    /// The platform images are selected for.
    pub fn platform(&self) -> &Platform {
        &self.platform
    }

    /// Every tagged image, sorted by reference.
    pub fn list(&self) -> Result<Vec<ImageSummary>, ImageError> {
        self.load_refs()?
            .into_iter()
            .map(|(reference, digest)| {
                let image = Image::read(&[&self.blobs], &digest)?;
                Ok(summary(reference, &image))
            })
            .collect()
    }

    /// Finds `reference` and checks it runs on this machine.
    pub fn resolve(&self, reference: &str) -> Result<ResolvedImage, ImageError> {
        let refs = self.load_refs()?;
        let (key, digest) = lookup(&refs, reference)?
            .into_iter()
            .next()
            .ok_or_else(|| not_found(reference))?;
        let image = Image::read(&[&self.blobs], &digest)?;
        self.platform.check_config(&key, &image.config)?;
        Ok(ResolvedImage {
            reference: key,
            manifest_digest: digest.to_string(),
            layers: image.layers.iter().map(ToString::to_string).collect(),
            diff_ids: image.diff_ids.iter().map(ToString::to_string).collect(),
            defaults: image.defaults(),
        })
    }

    /// Untags `reference` (for `name@digest`, every tag of that name on that manifest),
    /// then collects garbage. Layers a lease holds stay until released.
    pub fn remove(&self, reference: &str) -> Result<(), ImageError> {
        let lock = self.lock()?;
        let mut refs = self.load_refs()?;
        let keys = lookup(&refs, reference)?;
        if keys.is_empty() {
            return Err(not_found(reference));
        }
        for (key, digest) in &keys {
            refs.remove(key);
            tracing::info!(reference = %key, manifest = %digest, "image untagged");
        }
        self.save_refs(&refs)?;
        self.gc_logged(&lock);
        Ok(())
    }

    pub(crate) fn lock(&self) -> Result<StoreLock, ImageError> {
        let path = self.root.join("lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .at(&path)?;
        Flock::lock(file, FlockArg::LockExclusive)
            .map(StoreLock)
            .map_err(|(_, errno)| errno)
            .at(&path)
    }

    pub(crate) fn load_refs(&self) -> Result<BTreeMap<String, Digest>, ImageError> {
        let raw: BTreeMap<String, String> =
            record::load(&self.refs_path, REFS_MAGIC)?.unwrap_or_default();
        raw.into_iter()
            .map(|(k, v)| Ok((k, Digest::parse(&v)?)))
            .collect::<Result<_, ImageError>>()
            .map_err(|e| ImageError::CorruptFile {
                path: self.refs_path.clone(),
                reason: e.to_string(),
            })
    }

    pub(crate) fn save_refs(&self, refs: &BTreeMap<String, Digest>) -> Result<(), ImageError> {
        let raw: BTreeMap<&str, &str> =
            refs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        record::save(&self.refs_path, REFS_MAGIC, &raw)
    }

    /// Deletes temporaries left by dead processes (crashed imports and unpacks).
    fn remove_stale_temps(&self) -> Result<(), ImageError> {
        for dir in [&self.tmp_dir, &self.layers_dir, self.blobs.dir()] {
            for entry in fs::read_dir(dir).at(dir)? {
                let entry = entry.at(dir)?;
                if fsutil::is_stale_temp(&entry.file_name().to_string_lossy()) {
                    fsutil::remove_any(&entry.path()).at(&entry.path())?;
                }
            }
        }
        Ok(())
    }
}

pub(crate) fn summary(reference: String, image: &Image) -> ImageSummary {
    ImageSummary {
        reference,
        manifest_digest: image.manifest_digest.to_string(),
        architecture: image.architecture(),
        size_bytes: image.size_bytes(),
    }
}

/// The refs `reference` names: its exact normal form, or for `name@digest` any tag of
/// `name` on that manifest.
fn lookup(
    refs: &BTreeMap<String, Digest>,
    reference: &str,
) -> Result<Vec<(String, Digest)>, ImageError> {
    let parsed = Reference::parse(reference)?;
    let key = parsed.normalized();
    if let Some(d) = refs.get(&key) {
        return Ok(vec![(key, d.clone())]);
    }
    let Some(want) = &parsed.digest else {
        return Ok(Vec::new());
    };
    Ok(refs
        .iter()
        .filter(|(k, d)| *d == want && Reference::parse(k).is_ok_and(|r| r.name == parsed.name))
        .map(|(k, d)| (k.clone(), d.clone()))
        .collect())
}

fn not_found(reference: &str) -> ImageError {
    ImageError::NotFound {
        reference: normalize_or_raw(reference),
    }
}

fn normalize_or_raw(reference: &str) -> String {
    Reference::parse(reference).map_or_else(|_| reference.to_owned(), |r| r.normalized())
}
