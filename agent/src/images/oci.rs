//! Reading OCI documents out of blobs: size-capped, digest-checked parsing of indexes,
//! manifests and configs, the media types skerry accepts (OCI and their Docker v2
//! equivalents), and the image defaults a container starts from.

use std::path::Path;

use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest, MediaType};

use super::blobs::BlobDir;
use super::digest::Digest;
use super::error::ImageError;
use super::record::METADATA_LIMIT;
use super::ImageDefaults;

const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
const DOCKER_LAYER_FOREIGN: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";

/// An image manifest and its config, read from a blob directory.
pub(crate) struct Image {
    pub(crate) manifest_digest: Digest,
    pub(crate) manifest_size: u64,
    pub(crate) config_digest: Digest,
    pub(crate) manifest: ImageManifest,
    pub(crate) config: ImageConfiguration,
    /// Layer blob digests, bottom first.
    pub(crate) layers: Vec<Digest>,
    /// The config's diff_ids, bottom first (same length as `layers`).
    pub(crate) diff_ids: Vec<Digest>,
}

impl Image {
    /// Reads and checks manifest `digest` and its config, each from the first of `dirs`
    /// that holds it.
    pub(crate) fn read(dirs: &[&BlobDir], digest: &Digest) -> Result<Self, ImageError> {
        let (bytes, path) = read_any(dirs, digest)?;
        let manifest: ImageManifest = parse(&bytes, &path, "image manifest")?;
        let config_desc = manifest.config();
        let config_digest = Digest::from_oci(config_desc.digest())?;
        let media = config_desc.media_type();
        if !matches!(media, MediaType::ImageConfig) && media.to_string() != DOCKER_CONFIG {
            return Err(unsupported(&config_digest, media));
        }
        let (config_bytes, config_path) = read_any(dirs, &config_digest)?;
        check_size(
            &config_digest,
            config_desc.size(),
            config_bytes.len() as u64,
        )?;
        let config: ImageConfiguration = parse(&config_bytes, &config_path, "image config")?;
        let mut layers = Vec::new();
        for layer in manifest.layers() {
            let d = Digest::from_oci(layer.digest())?;
            if !is_layer(layer.media_type()) {
                return Err(unsupported(&d, layer.media_type()));
            }
            layers.push(d);
        }
        let diff_ids = config
            .rootfs()
            .diff_ids()
            .iter()
            .map(|d| Digest::parse(d))
            .collect::<Result<Vec<_>, _>>()?;
        if diff_ids.len() != layers.len() {
            return Err(ImageError::Malformed {
                path,
                what: "image manifest",
                reason: format!(
                    "{} layers but {} diff_ids in the config",
                    layers.len(),
                    diff_ids.len()
                ),
            });
        }
        Ok(Self {
            manifest_digest: digest.clone(),
            manifest_size: bytes.len() as u64,
            config_digest,
            manifest,
            config,
            layers,
            diff_ids,
        })
    }

    /// Manifest + config + compressed layers, in bytes.
    pub(crate) fn size_bytes(&self) -> u64 {
        self.manifest_size
            + self.manifest.config().size()
            + self
                .manifest
                .layers()
                .iter()
                .map(Descriptor::size)
                .sum::<u64>()
    }

    /// Every blob this image needs: manifest, config, layers.
    pub(crate) fn blobs(&self) -> impl Iterator<Item = &Digest> {
        [&self.manifest_digest, &self.config_digest]
            .into_iter()
            .chain(&self.layers)
    }

    pub(crate) fn architecture(&self) -> String {
        self.config.architecture().to_string()
    }

    pub(crate) fn defaults(&self) -> ImageDefaults {
        let Some(c) = self.config.config() else {
            return ImageDefaults::default();
        };
        let non_empty = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
        ImageDefaults {
            entrypoint: c.entrypoint().clone(),
            cmd: c.cmd().clone(),
            env: c.env().clone().unwrap_or_default(),
            working_dir: non_empty(c.working_dir()),
            user: non_empty(c.user()),
        }
    }
}

/// Reads metadata blob `digest` from the first of `dirs` holding it (size-capped, checked).
fn read_any(
    dirs: &[&BlobDir],
    digest: &Digest,
) -> Result<(Vec<u8>, std::path::PathBuf), ImageError> {
    let mut last = None;
    for dir in dirs {
        match dir.read_verified(digest, METADATA_LIMIT) {
            Ok(bytes) => return Ok((bytes, dir.path(digest))),
            Err(e @ ImageError::MissingBlob { .. }) => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| ImageError::MissingBlob {
        digest: digest.to_string(),
        path: std::path::PathBuf::new(),
    }))
}

/// Parses an image index (or Docker manifest list).
pub(crate) fn parse_index(bytes: &[u8], path: &Path) -> Result<ImageIndex, ImageError> {
    parse(bytes, path, "image index")
}

/// True for an image index or Docker manifest list.
pub(crate) fn is_index(media: &MediaType) -> bool {
    matches!(media, MediaType::ImageIndex) || media.to_string() == DOCKER_LIST
}

/// [`is_index`] for a media type string (a registry's `Content-Type`).
pub(crate) fn is_index_str(media: &str) -> bool {
    media == "application/vnd.oci.image.index.v1+json" || media == DOCKER_LIST
}

/// [`is_manifest`] for a media type string.
pub(crate) fn is_manifest_str(media: &str) -> bool {
    media == "application/vnd.oci.image.manifest.v1+json" || media == DOCKER_MANIFEST
}

/// True for an image manifest (OCI or Docker v2 schema 2).
pub(crate) fn is_manifest(media: &MediaType) -> bool {
    matches!(media, MediaType::ImageManifest) || media.to_string() == DOCKER_MANIFEST
}

/// True for the layer types `unpack` handles (tar, gzip and zstd).
pub(crate) fn is_layer(media: &MediaType) -> bool {
    matches!(
        media,
        MediaType::ImageLayer
            | MediaType::ImageLayerGzip
            | MediaType::ImageLayerZstd
            | MediaType::ImageLayerNonDistributable
            | MediaType::ImageLayerNonDistributableGzip
            | MediaType::ImageLayerNonDistributableZstd
    ) || matches!(
        media.to_string().as_str(),
        DOCKER_LAYER_GZIP | DOCKER_LAYER_FOREIGN
    )
}

pub(crate) fn unsupported(digest: &Digest, media: &MediaType) -> ImageError {
    ImageError::UnsupportedMediaType {
        digest: digest.to_string(),
        media_type: media.to_string(),
    }
}

pub(crate) fn check_size(digest: &Digest, expected: u64, actual: u64) -> Result<(), ImageError> {
    if expected == actual {
        Ok(())
    } else {
        Err(ImageError::SizeMismatch {
            digest: digest.to_string(),
            expected,
            actual,
        })
    }
}

fn parse<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    path: &Path,
    what: &'static str,
) -> Result<T, ImageError> {
    serde_json::from_slice(bytes).map_err(|e| ImageError::Malformed {
        path: path.to_path_buf(),
        what,
        reason: e.to_string(),
    })
}
