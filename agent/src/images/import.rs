//! Import of an OCI layout directory or archive, all or nothing.
//!
//! 1. Plan (no lock, nothing in the store touched): read `index.json`; per entry pick
//!    this machine's manifest (following image indexes), check the config's platform,
//!    and copy every blob it needs that the store lacks into `tmp/` (hash and size
//!    checked against its descriptor).
//! 2. Commit (under the store lock): unpack missing layers (so a bad layer is refused
//!    now, not when a container starts offline), move staged blobs into `blobs/`, then
//!    write `refs.json`, the commit point. Any error undoes the layers and blobs added.
//!
//! Names: see `naming`. Entries for other platforms are skipped with a warning unless none fits, which is an
//! error (`image busybox:latest is arm64, this machine is amd64`).

use std::fs;
use std::path::Path;

use oci_spec::image::Descriptor;

use super::blobs::BlobDir;
use super::digest::Digest;
use super::error::{ImageError, IoContext};
use super::fsutil::{self, TempTree};
use super::naming::{base_name, entry_reference};
use super::oci::{self, Image};
use super::platform::describe_entries;
use super::record::METADATA_LIMIT;
use super::source::{self, Layout};
use super::store::{summary, ImageStore, StoreLock};
use super::unpack::{unpack_layer, LayerSource};
use super::ImageSummary;

const MAX_INDEX_DEPTH: usize = 4;

/// One image to commit (imported or pulled).
pub(super) struct Planned {
    pub(super) reference: String,
    pub(super) image: Image,
}

impl ImageStore {
    /// Imports an OCI layout directory or OCI archive (tar, plain or gzip), naming its
    /// images after the file (see the module doc). Returns what was tagged.
    pub fn import(&self, path: &Path) -> Result<Vec<ImageSummary>, ImageError> {
        self.import_as(path, None)
    }

    /// [`import`](Self::import) with an explicit repository name (`busybox`,
    /// `registry.local/team/app`) or, for a single-image layout, a full reference.
    pub fn import_as(
        &self,
        path: &Path,
        name: Option<&str>,
    ) -> Result<Vec<ImageSummary>, ImageError> {
        let started = std::time::Instant::now();
        let staging = TempTree::new(self.tmp_dir.join(fsutil::temp_name("import")));
        let staged = BlobDir::new(staging.path().join("blobs"));
        fs::create_dir_all(staged.dir()).at(staged.dir())?;
        let layout = source::open(path, staging.path())?;
        let base = base_name(path, name)?;
        let entries = layout.index.manifests();
        if entries.is_empty() {
            return Err(ImageError::NothingToImport {
                path: path.to_path_buf(),
                reason: "index.json lists no images".to_owned(),
            });
        }
        if !base.is_bare_name() && entries.len() > 1 {
            return Err(ImageError::NothingToImport {
                path: path.to_path_buf(),
                reason: format!(
                    "{} images but one reference given ({})",
                    entries.len(),
                    base.normalized()
                ),
            });
        }
        let mut planned: Vec<Planned> = Vec::new();
        let mut skipped = Vec::new();
        for entry in entries {
            let reference = entry_reference(&base, entry, name.is_some())?;
            if planned.iter().any(|p| p.reference == reference) {
                return Err(malformed_index(
                    path,
                    format!("{reference} is tagged twice"),
                ));
            }
            match self.plan_image(&layout, &staged, entry, &reference, 0) {
                Ok(image) => planned.push(Planned { reference, image }),
                Err(
                    e @ (ImageError::WrongPlatform { .. } | ImageError::NoMatchingPlatform { .. }),
                ) => skipped.push(e),
                Err(e) => return Err(e),
            }
        }
        if planned.is_empty() {
            return Err(skipped.remove(0));
        }
        for err in &skipped {
            tracing::warn!(path = %path.display(), %err, "skipping image for another platform");
        }
        let lock = self.lock()?;
        self.commit(&lock, &planned, &staged)?;
        self.gc_logged(&lock);
        tracing::info!(
            path = %path.display(),
            images = planned.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "images imported"
        );
        Ok(planned
            .into_iter()
            .map(|p| summary(p.reference, &p.image))
            .collect())
    }

    /// Follows `entry` to this platform's manifest and stages everything it needs.
    fn plan_image(
        &self,
        layout: &Layout,
        staged: &BlobDir,
        entry: &Descriptor,
        reference: &str,
        depth: usize,
    ) -> Result<Image, ImageError> {
        let digest = Digest::from_oci(entry.digest())?;
        let media = entry.media_type();
        if oci::is_index(media) {
            if depth >= MAX_INDEX_DEPTH {
                return Err(malformed_index(
                    &layout.origin,
                    "image indexes nested too deep".to_owned(),
                ));
            }
            let dir = self.stage(layout, staged, &digest, entry.size(), Some(METADATA_LIMIT))?;
            let index = oci::parse_index(
                &dir.read_verified(&digest, METADATA_LIMIT)?,
                &dir.path(&digest),
            )?;
            let child = self.platform.select(index.manifests()).ok_or_else(|| {
                ImageError::NoMatchingPlatform {
                    reference: reference.to_owned(),
                    host: self.platform.to_string(),
                    available: describe_entries(index.manifests()),
                }
            })?;
            return self.plan_image(layout, staged, child, reference, depth + 1);
        }
        if !oci::is_manifest(media) {
            return Err(oci::unsupported(&digest, media));
        }
        let dir = self.stage(layout, staged, &digest, entry.size(), Some(METADATA_LIMIT))?;
        let bytes = dir.read_verified(&digest, METADATA_LIMIT)?;
        let manifest: oci_spec::image::ImageManifest =
            serde_json::from_slice(&bytes).map_err(|e| ImageError::Malformed {
                path: dir.path(&digest),
                what: "image manifest",
                reason: e.to_string(),
            })?;
        let config = manifest.config();
        self.stage(
            layout,
            staged,
            &Digest::from_oci(config.digest())?,
            config.size(),
            Some(METADATA_LIMIT),
        )?;
        let image = Image::read(&[staged, &self.blobs], &digest)?;
        self.platform.check_config(reference, &image.config)?;
        for layer in manifest.layers() {
            self.stage(
                layout,
                staged,
                &Digest::from_oci(layer.digest())?,
                layer.size(),
                None,
            )?;
        }
        Ok(image)
    }

    /// Makes blob `digest` of `size` bytes available in the store or `staged`, checked,
    /// and returns the directory holding it.
    fn stage<'a>(
        &'a self,
        layout: &Layout,
        staged: &'a BlobDir,
        digest: &Digest,
        size: u64,
        limit: Option<u64>,
    ) -> Result<&'a BlobDir, ImageError> {
        for dir in [&self.blobs, staged] {
            if let Some(actual) = dir.size(digest) {
                oci::check_size(digest, size, actual)?;
                return Ok(dir);
            }
        }
        if let Some(limit) = limit.filter(|l| size > *l) {
            return Err(ImageError::TooLarge {
                path: layout.blobs.path(digest),
                limit,
            });
        }
        let source = layout.blobs.path(digest);
        let missing = || ImageError::MissingBlob {
            digest: digest.to_string(),
            path: layout.origin.clone(),
        };
        let actual = layout.blobs.size(digest).ok_or_else(missing)?;
        oci::check_size(digest, size, actual)?;
        if layout.verified {
            fs::rename(&source, staged.path(digest)).at(&source)?;
        } else {
            let file = fs::File::open(&source).map_err(|_| missing())?;
            let written = staged.write_verified(file, digest, Some(size), &source)?;
            oci::check_size(digest, size, written)?;
        }
        Ok(staged)
    }

    /// Unpacks layers, moves staged blobs in, writes refs; undoes the first two on error.
    pub(super) fn commit(
        &self,
        _lock: &StoreLock,
        planned: &[Planned],
        staged: &BlobDir,
    ) -> Result<(), ImageError> {
        // A concurrent remove may have collected a blob planning found in the store.
        for digest in planned.iter().flat_map(|p| p.image.blobs()) {
            if self.blobs.size(digest).is_none() && staged.size(digest).is_none() {
                return Err(ImageError::MissingBlob {
                    digest: digest.to_string(),
                    path: self.blobs.dir().to_path_buf(),
                });
            }
        }
        let mut new_layers = Vec::new();
        let mut new_blobs = Vec::new();
        let result = (|| {
            for p in planned {
                for (i, (layer, diff_id)) in
                    p.image.layers.iter().zip(&p.image.diff_ids).enumerate()
                {
                    let in_store = self.blobs.size(layer).is_some();
                    let blob = if in_store {
                        self.blobs.path(layer)
                    } else {
                        staged.path(layer)
                    };
                    let lowers: Vec<_> = p.image.layers[..i]
                        .iter()
                        .rev()
                        .map(|l| self.layers_dir.join(l.hex()))
                        .collect();
                    let source = LayerSource {
                        blob: &blob,
                        digest: layer,
                        diff_id: Some(diff_id),
                        lowers: &lowers,
                    };
                    if unpack_layer(&source, &self.layers_dir)? {
                        new_layers.push(layer.clone());
                    }
                }
            }
            for digest in planned.iter().flat_map(|p| p.image.blobs()) {
                if self.blobs.size(digest).is_none() && staged.size(digest).is_some() {
                    self.blobs.adopt(&staged.path(digest), digest)?;
                    new_blobs.push(digest.clone());
                }
            }
            self.blobs.sync()?;
            let mut refs = self.load_refs()?;
            for p in planned {
                refs.insert(p.reference.clone(), p.image.manifest_digest.clone());
            }
            self.save_refs(&refs)
        })();
        if result.is_err() {
            for layer in &new_layers {
                let _ = fsutil::remove_any(&self.layers_dir.join(layer.hex()));
            }
            for blob in &new_blobs {
                let _ = fs::remove_file(self.blobs.path(blob));
            }
        }
        result
    }
}

fn malformed_index(path: &Path, reason: String) -> ImageError {
    ImageError::Malformed {
        path: path.join("index.json"),
        what: "index.json",
        reason,
    }
}
