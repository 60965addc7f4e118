//! `usage.json`: when each reference was last pulled and last used to prepare a
//! container rootfs (a `record` envelope, written under the store lock). The `once`
//! pull behaviour reads the first, `image ls` shows both, and prune keeps the most
//! recently used unreferenced images. A missing or unreadable file only loses history.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

use super::error::ImageError;
use super::record;
use super::reference::Reference;
use super::store::{ImageStore, StoreLock};
use super::GcReport;

const USAGE_MAGIC: &str = "skerry-image-usage";

/// What the store remembers about one reference (milliseconds since 1970).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub pulled_ms: Option<u64>,
    pub used_ms: Option<u64>,
}

/// What one prune removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PruneReport {
    pub untagged: Vec<String>,
    pub gc: GcReport,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl ImageStore {
    /// Usage of every reference the store remembers.
    pub fn usage(&self) -> BTreeMap<String, Usage> {
        record::load(&self.root.join("usage.json"), USAGE_MAGIC)
            .ok()
            .flatten()
            .unwrap_or_default()
    }

    fn update_usage(
        &self,
        _lock: &StoreLock,
        reference: &str,
        f: impl FnOnce(&mut Usage),
    ) -> Result<(), ImageError> {
        let mut all = self.usage();
        f(all.entry(reference.to_owned()).or_default());
        let refs = self.load_refs()?;
        all.retain(|k, _| refs.contains_key(k));
        record::save(&self.root.join("usage.json"), USAGE_MAGIC, &all)
    }

    pub(crate) fn record_pull(&self, lock: &StoreLock, reference: &str) -> Result<(), ImageError> {
        self.update_usage(lock, reference, |u| u.pulled_ms = Some(now_ms()))
    }

    pub(crate) fn record_use(&self, lock: &StoreLock, reference: &str) -> Result<(), ImageError> {
        self.update_usage(lock, reference, |u| u.used_ms = Some(now_ms()))
    }

    /// True if `reference` was pulled successfully by this store and is still tagged.
    pub fn pulled_before(&self, reference: &str) -> bool {
        let Ok(key) = Reference::parse(reference).map(|r| r.normalized()) else {
            return false;
        };
        self.usage()
            .get(&key)
            .is_some_and(|u| u.pulled_ms.is_some())
            && self.load_refs().is_ok_and(|r| r.contains_key(&key))
    }

    /// Untags every image no desired task references (`referenced`: references as
    /// task definitions write them) except the `keep_unused` most recently used, then
    /// collects garbage. Leased layers stay until their containers are deleted.
    pub fn prune(
        &self,
        keep_unused: usize,
        referenced: &HashSet<String>,
    ) -> Result<PruneReport, ImageError> {
        let wanted: HashSet<String> = referenced
            .iter()
            .filter_map(|r| Reference::parse(r).ok().map(|r| r.normalized()))
            .collect();
        let lock = self.lock()?;
        let mut refs = self.load_refs()?;
        let usage = self.usage();
        let last = |k: &str| {
            usage
                .get(k)
                .map_or(0, |u| u.used_ms.max(u.pulled_ms).unwrap_or(0))
        };
        let mut unused: Vec<String> = refs
            .keys()
            .filter(|k| !wanted.contains(*k))
            .cloned()
            .collect();
        unused.sort_by_key(|k| std::cmp::Reverse(last(k)));
        let untagged: Vec<String> = unused.into_iter().skip(keep_unused).collect();
        for key in &untagged {
            refs.remove(key);
            tracing::info!(reference = %key, "image pruned");
        }
        self.save_refs(&refs)?;
        let gc = self.gc_locked(&lock)?;
        Ok(PruneReport { untagged, gc })
    }
}
