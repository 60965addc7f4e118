//! Registry pulls into the image store, for bad links and small disks.
//!
//! [`ImageStore::pull`] resolves a reference at its registry (`client`), picks this
//! machine's manifest from an index (or refuses a single manifest for another
//! platform, naming both), checks free space, downloads the missing blobs a few at a
//! time with resume (`ingest`) and backoff (`backoff`), and commits like an import:
//! under the store lock, layers are unpacked from verified blobs, blobs move into
//! `blobs/`, and `refs.json` is written last. Any failure leaves refs, blobs and
//! layers as they were; partial downloads stay in `ingest/` for the next attempt.
//!
//! Transient failures (network, 5xx, a blob damaged in transit) are retried with
//! backoff; [`PullOptions::give_up_after`] attempts in a row that put no new bytes on
//! disk end the pull (`None`: never, for a desired task that still needs the image).

mod auth;
mod backoff;
mod behavior;
mod client;
mod ensure;
mod error;
mod ingest;
pub mod status;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{self, StreamExt, TryStreamExt};
use oci_spec::image::{ImageIndex, ImageManifest};

pub use auth::{credentials_for, Credentials};
pub use behavior::{plan, PullPlan};
pub use client::{install_crypto_provider, Endpoint, TIME_FLOOR_SECS};
pub use ensure::{ensure_image, PullJob, PullSettings};
pub use error::PullError;

use self::backoff::Backoff;
use self::client::{Registry, MANIFEST_ACCEPT};
use self::ingest::{Ingest, Wanted};
use super::digest::Digest;
use super::error::ImageError;
use super::import::Planned;
use super::oci::{self, Image};
use super::platform::{describe_entries, Platform};
use super::record::METADATA_LIMIT;
use super::reference::Reference;
use super::store::{summary, ImageStore};
use super::ImageSummary;
use crate::config::{AgentConfig, RegistryConfig};

/// Unpack headroom: a layer is assumed to unpack to this many times its compressed size.
const UNPACK_FACTOR: u64 = 2;
/// Left free on the disk beyond what a pull needs.
const FREE_MARGIN: u64 = 1 << 20;

/// What a pull reports as it goes (for progress bars and task status).
#[derive(Debug, Clone)]
pub enum PullEvent {
    /// The manifest is known: `total_bytes` of blobs, `missing_bytes` to fetch.
    Resolved {
        manifest: String,
        layers: usize,
        total_bytes: u64,
        missing_bytes: u64,
    },
    /// Bytes of one blob on disk.
    Blob {
        digest: String,
        on_disk: u64,
        size: u64,
    },
    /// An attempt failed; the next one starts after `delay`.
    Retry {
        what: String,
        error: String,
        delay: Duration,
    },
    /// All blobs are here; layers are being unpacked.
    Unpacking,
}

/// Callback for [`PullEvent`]s.
pub type Progress = Arc<dyn Fn(&PullEvent) + Send + Sync>;

/// How to pull.
#[derive(Clone)]
pub struct PullOptions {
    /// The platform to pick (default: the store's).
    pub platform: Option<Platform>,
    pub registries: BTreeMap<String, RegistryConfig>,
    pub docker_config: Option<PathBuf>,
    pub concurrency: usize,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub retry_min: Duration,
    pub retry_max: Duration,
    /// Give up after this many attempts in a row without new bytes (`None`: never).
    pub give_up_after: Option<u32>,
    pub cancel: Arc<AtomicBool>,
    pub progress: Option<Progress>,
    /// A TLS pull with the clock before this fails at once: "system clock not set".
    pub clock_floor_secs: u64,
    /// The task's own credentials (`repositoryCredentials`, from a secret): used
    /// instead of `[registries]` and the Docker config.
    pub credentials: Option<Credentials>,
}

impl PullOptions {
    /// The agent config's `[images]` and `[registries]`.
    pub fn from_config(cfg: &AgentConfig) -> Self {
        let i = &cfg.images;
        Self {
            platform: None,
            registries: cfg.registries.clone(),
            docker_config: i.docker_config.clone(),
            concurrency: usize::try_from(i.max_concurrent_downloads)
                .unwrap_or(1)
                .max(1),
            connect_timeout: Duration::from_secs(i.connect_timeout_secs),
            read_timeout: Duration::from_secs(i.read_timeout_secs),
            retry_min: Duration::from_millis(i.min_retry_delay_ms),
            retry_max: Duration::from_secs(i.max_retry_delay_secs),
            give_up_after: None,
            cancel: Arc::default(),
            progress: None,
            // The fleet link's floor (build time, or what a broker connection proved).
            clock_floor_secs: crate::sync::timefloor::TimeFloor::load(Some(
                cfg.state_dir.join("fleet").join("time-floor"),
            ))
            .floor_secs(),
            credentials: None,
        }
    }

    fn emit(&self, event: PullEvent) {
        if let Some(p) = &self.progress {
            p(&event);
        }
    }
}

/// What a pull brought.
#[derive(Debug, Clone)]
pub struct PullSummary {
    pub image: ImageSummary,
    /// Bytes received over the network for blobs (manifests and retries included).
    pub received_bytes: u64,
}

/// `registry.example.com:5000/team/app` → (`registry.example.com:5000`, `team/app`);
/// a name without a registry host is Docker Hub's (`library/` added to one component).
pub fn split_name(name: &str) -> (String, String) {
    if let Some((first, rest)) = name.split_once('/') {
        if first.contains('.') || first.contains(':') || first == "localhost" {
            return (first.to_owned(), rest.to_owned());
        }
        return ("docker.io".to_owned(), name.to_owned());
    }
    ("docker.io".to_owned(), format!("library/{name}"))
}

impl ImageStore {
    /// Pulls `reference` from its registry and tags it (see the module doc).
    pub fn pull(&self, reference: &str, opts: &PullOptions) -> Result<PullSummary, PullError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ImageError::Io {
                path: self.root.clone(),
                source: e,
            })?;
        runtime.block_on(async {
            tokio::select! {
                pulled = self.pull_async(reference, opts) => pulled,
                () = cancelled(&opts.cancel) => Err(PullError::Cancelled {
                    reference: reference.to_owned(),
                }),
            }
        })
    }

    async fn pull_async(
        &self,
        reference: &str,
        opts: &PullOptions,
    ) -> Result<PullSummary, PullError> {
        let started = std::time::Instant::now();
        let parsed = Reference::parse(reference)?;
        let key = parsed.normalized();
        let (_tracker, progress) = status::track(&self.pulling_dir(), &key, opts.progress.clone());
        let opts = &PullOptions {
            progress: Some(progress),
            ..opts.clone()
        };
        let (host, repository) = split_name(&parsed.name);
        let configured = opts.registries.get(&host);
        let ca_pem = match configured.and_then(|r| r.ca_file.as_ref()) {
            Some(path) => Some(std::fs::read(path).map_err(|e| PullError::Credentials {
                path: path.clone(),
                reason: format!("cannot read ca_file: {e}"),
            })?),
            None => None,
        };
        let endpoint = Endpoint {
            host: host.clone(),
            insecure: configured.is_some_and(|r| r.insecure),
            ca_pem,
            connect_timeout: opts.connect_timeout,
            read_timeout: opts.read_timeout,
            clock_floor_secs: opts.clock_floor_secs,
        };
        let creds = match &opts.credentials {
            Some(task_creds) => task_creds.clone(),
            None => credentials_for(&host, configured, opts.docker_config.as_deref())?,
        };
        let reg = Registry::new(&endpoint, &repository, creds)?;
        let platform = opts
            .platform
            .clone()
            .unwrap_or_else(|| self.platform.clone());
        let ingest = Ingest::open(self.root.join("ingest"))?;
        let received = AtomicU64::new(0);

        retry(opts, "login", || reg.login()).await?;
        let tag_or_digest = match (&parsed.digest, &parsed.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_owned(),
        };
        let (bytes, media, digest) = retry(opts, "manifest", || {
            fetch_manifest(&reg, &tag_or_digest, parsed.digest.as_ref(), &received)
        })
        .await?;
        let (bytes, digest) = if oci::is_index_str(&media) {
            let index: ImageIndex =
                parse_json(&bytes, &reg.manifest_url(&tag_or_digest), "image index")?;
            let child = platform.select(index.manifests()).ok_or_else(|| {
                ImageError::NoMatchingPlatform {
                    reference: key.clone(),
                    host: platform.to_string(),
                    available: describe_entries(index.manifests()),
                }
            })?;
            let child_digest = Digest::from_oci(child.digest())?;
            let (b, m, d) = retry(opts, "manifest", || {
                fetch_manifest(&reg, child_digest.as_str(), Some(&child_digest), &received)
            })
            .await?;
            if !oci::is_manifest_str(&m) {
                return Err(unsupported(&d, &m));
            }
            oci::check_size(&d, child.size(), b.len() as u64)?;
            (b, d)
        } else if oci::is_manifest_str(&media) {
            (bytes, digest)
        } else {
            return Err(unsupported(&digest, &media));
        };
        let manifest: ImageManifest =
            parse_json(&bytes, &reg.manifest_url(digest.as_str()), "image manifest")?;
        let staged = &ingest.done;
        staged.write_verified(
            &bytes[..],
            &digest,
            Some(METADATA_LIMIT),
            &PathBuf::from(reg.manifest_url(digest.as_str())),
        )?;
        let config = manifest.config();
        let config_digest = Digest::from_oci(config.digest())?;
        if config.size() > METADATA_LIMIT {
            return Err(PullError::TooLarge {
                url: reg.blob_url(config_digest.as_str()),
                limit: METADATA_LIMIT,
            });
        }
        if self.blobs.size(&config_digest).is_none() {
            let want = Wanted {
                digest: &config_digest,
                size: config.size(),
            };
            let quiet = PullOptions {
                progress: None,
                ..opts.clone()
            };
            fetch_blob(&ingest, &reg, &want, &quiet, &received).await?;
        }
        for layer in manifest.layers() {
            if !oci::is_layer(layer.media_type()) {
                return Err(unsupported(
                    &Digest::from_oci(layer.digest())?,
                    layer.media_type().as_ref(),
                ));
            }
        }
        let image = Image::read(&[staged, &self.blobs], &digest)?;
        platform.check_config(&key, &image.config)?;
        let layers: Vec<(Digest, u64)> = manifest
            .layers()
            .iter()
            .map(|l| Ok((Digest::from_oci(l.digest())?, l.size())))
            .collect::<Result<_, ImageError>>()?;
        let missing: Vec<&(Digest, u64)> = layers
            .iter()
            .filter(|(d, _)| self.blobs.size(d).is_none())
            .collect();
        let missing_bytes: u64 = missing.iter().map(|(_, s)| s).sum();
        opts.emit(PullEvent::Resolved {
            manifest: digest.to_string(),
            layers: layers.len(),
            total_bytes: image.size_bytes(),
            missing_bytes,
        });
        let on_disk: u64 = missing.iter().map(|(d, _)| ingest.on_disk(d)).sum();
        self.check_space(missing_bytes.saturating_sub(on_disk) + missing_bytes * UNPACK_FACTOR)?;
        stream::iter(missing.iter().map(|(d, size)| {
            let want = Wanted {
                digest: d,
                size: *size,
            };
            let (ingest, reg, received) = (&ingest, &reg, &received);
            async move { fetch_blob(ingest, reg, &want, opts, received).await }
        }))
        .buffer_unordered(opts.concurrency.max(1))
        .try_collect::<Vec<()>>()
        .await?;
        opts.emit(PullEvent::Unpacking);
        let planned = [Planned {
            reference: key.clone(),
            image,
        }];
        let lock = self.lock()?;
        let committed = self.commit(&lock, &planned, staged);
        // Verified blobs stay in ingest only for a commit the disk cut short (the next
        // pull resumes); after success they are in the store, after bad content useless.
        let keep = matches!(&committed, Err(e) if is_disk_full(e));
        if !keep {
            for blob in planned[0].image.blobs() {
                ingest.discard(blob);
            }
        }
        committed?;
        if let Err(err) = self.record_pull(&lock, &key) {
            tracing::warn!(reference = %key, %err, "pull time not recorded");
        }
        self.gc_logged(&lock);
        drop(lock);
        let image = summary(key.clone(), &planned[0].image);
        tracing::info!(
            reference = %key,
            manifest = %image.manifest_digest,
            size = image.size_bytes,
            received = received.load(Ordering::Relaxed),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "image pulled"
        );
        Ok(PullSummary {
            image,
            received_bytes: received.load(Ordering::Relaxed),
        })
    }

    /// Where live pulls record their progress (`status`).
    pub fn pulling_dir(&self) -> PathBuf {
        self.root.join("ingest").join("pulling")
    }

    /// How far a live pull of `reference` got, if one runs.
    pub fn pull_status(&self, reference: &str) -> Option<status::PullStatus> {
        let key = Reference::parse(reference).ok()?.normalized();
        status::read(&self.pulling_dir(), &key)
    }

    /// Refuses a pull that needs more than the free space of the store's filesystem.
    fn check_space(&self, needed: u64) -> Result<(), PullError> {
        let stat = nix::sys::statvfs::statvfs(&self.root).map_err(|e| ImageError::Io {
            path: self.root.clone(),
            source: e.into(),
        })?;
        #[allow(clippy::useless_conversion)]
        let available = u64::from(stat.blocks_available()) * u64::from(stat.fragment_size());
        if available < needed + FREE_MARGIN {
            return Err(PullError::NoSpace {
                path: self.root.clone(),
                needed: needed + FREE_MARGIN,
                available,
            });
        }
        Ok(())
    }
}

fn is_disk_full(e: &ImageError) -> bool {
    let errno = match e {
        ImageError::Io { source, .. } | ImageError::Unpack { source, .. } => source.raw_os_error(),
        _ => None,
    };
    matches!(errno, Some(libc::ENOSPC) | Some(libc::EDQUOT))
}

fn unsupported(digest: &Digest, media: &str) -> PullError {
    PullError::Image(ImageError::UnsupportedMediaType {
        digest: digest.to_string(),
        media_type: media.to_owned(),
    })
}

fn parse_json<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    url: &str,
    what: &'static str,
) -> Result<T, PullError> {
    serde_json::from_slice(bytes).map_err(|e| {
        PullError::Image(ImageError::Malformed {
            path: PathBuf::from(url),
            what,
            reason: e.to_string(),
        })
    })
}

/// GETs a manifest (size-capped), checks a pinned digest; returns body, media type
/// and digest.
async fn fetch_manifest(
    reg: &Registry,
    reference: &str,
    pinned: Option<&Digest>,
    received: &AtomicU64,
) -> Result<(Vec<u8>, String, Digest), PullError> {
    let url = reg.manifest_url(reference);
    let resp = reg.get(&url, Some(MANIFEST_ACCEPT), None).await?;
    match resp.status().as_u16() {
        200 => {}
        404 => {
            return Err(PullError::ManifestUnknown {
                reference: format!("{}/{}:{reference}", reg.host, reg.repository),
                url,
            })
        }
        _ => return Err(reg.status_error(resp, &url).await),
    }
    let header_type = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or(v).trim().to_owned());
    let body = reg.read_limited(resp, &url, METADATA_LIMIT).await?;
    received.fetch_add(body.len() as u64, Ordering::Relaxed);
    let digest = Digest::of_bytes(&body);
    if let Some(pinned) = pinned.filter(|p| **p != digest) {
        return Err(PullError::BlobMismatch {
            digest: pinned.to_string(),
            url,
            actual: digest.to_string(),
        });
    }
    let body_type = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| {
            v.get("mediaType")
                .and_then(|m| m.as_str())
                .map(str::to_owned)
        });
    let media = body_type
        .or(header_type)
        .unwrap_or_else(|| "(no media type)".to_owned());
    Ok((body, media, digest))
}

/// Fetches one blob into ingest, retrying transient failures.
async fn fetch_blob(
    ingest: &Ingest,
    reg: &Registry,
    want: &Wanted<'_>,
    opts: &PullOptions,
    received: &AtomicU64,
) -> Result<(), PullError> {
    let mut backoff = Backoff::new(opts.retry_min, opts.retry_max);
    let digest = want.digest.to_string();
    let size = want.size;
    let on_bytes = |on_disk: u64| {
        opts.emit(PullEvent::Blob {
            digest: digest.clone(),
            on_disk,
            size,
        })
    };
    loop {
        let before = ingest.on_disk(want.digest);
        let attempt = ingest.fetch(reg, want, &opts.cancel, &on_bytes).await;
        match attempt {
            Ok(n) => {
                received.fetch_add(n, Ordering::Relaxed);
                return Ok(());
            }
            Err(e) => {
                let after = ingest.on_disk(want.digest);
                wait_or_fail(opts, &mut backoff, after > before, &digest, e).await?;
            }
        }
    }
}

/// Resolves once `flag` is set (checked every 50 ms). Whatever the pull was doing is
/// dropped at its next await: partial blobs stay in ingest for a later pull to resume.
async fn cancelled(flag: &AtomicBool) {
    while !flag.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Retries `f` on transient errors (login and manifests: no bytes count as progress).
async fn retry<T, F, Fut>(opts: &PullOptions, what: &str, mut f: F) -> Result<T, PullError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, PullError>>,
{
    let mut backoff = Backoff::new(opts.retry_min, opts.retry_max);
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) => wait_or_fail(opts, &mut backoff, false, what, e).await?,
        }
    }
}

/// After a failed attempt: the error if it is permanent, cancelled or past the
/// give-up count; else sleeps the backoff delay.
async fn wait_or_fail(
    opts: &PullOptions,
    backoff: &mut Backoff,
    progressed: bool,
    what: &str,
    e: PullError,
) -> Result<(), PullError> {
    if !e.is_transient() || opts.cancel.load(Ordering::Relaxed) {
        return Err(e);
    }
    let delay = backoff.next_delay(progressed);
    if opts.give_up_after.is_some_and(|n| backoff.failures >= n) {
        return Err(PullError::GaveUp {
            attempts: backoff.failures,
            last: Box::new(e),
        });
    }
    tracing::info!(what, error = %e, delay_ms = delay.as_millis() as u64, "pull attempt failed; retrying");
    opts.emit(PullEvent::Retry {
        what: what.to_owned(),
        error: e.to_string(),
        delay,
    });
    let step = Duration::from_millis(100);
    let mut left = delay;
    while !left.is_zero() {
        if opts.cancel.load(Ordering::Relaxed) {
            return Err(e);
        }
        let d = left.min(step);
        tokio::time::sleep(d).await;
        left -= d;
    }
    Ok(())
}
