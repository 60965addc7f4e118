//! ECS's `ECS_IMAGE_PULL_BEHAVIOR`, as a pure decision: given the configured
//! behaviour and what the store holds, use the cached image or pull (and whether a
//! failed pull may fall back to the cached one). A digest-pinned reference that is
//! cached never re-resolves: its content cannot have changed. Under `default`, an
//! image that only ever came by `skerry image import` (cached, never pulled) is used
//! as it is: it has no registry to come from on an air-gapped device (`always`
//! pulls it anyway).

use crate::config::PullBehavior;

/// What to do for one container's image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullPlan {
    /// Use the cached image; no network.
    UseCached,
    /// Pull; if it fails and `fallback` is true, use the cached image instead.
    Pull { fallback: bool },
}

/// The plan for an image: `cached` (a usable image is in the store), `pulled_before`
/// (this store pulled it successfully), `pinned` (`name@sha256:..`).
pub fn plan(behavior: PullBehavior, cached: bool, pulled_before: bool, pinned: bool) -> PullPlan {
    if cached && pinned {
        return PullPlan::UseCached;
    }
    match behavior {
        PullBehavior::PreferCached if cached => PullPlan::UseCached,
        PullBehavior::Once if cached && pulled_before => PullPlan::UseCached,
        PullBehavior::Default if cached && !pulled_before => PullPlan::UseCached,
        PullBehavior::Default => PullPlan::Pull { fallback: cached },
        _ => PullPlan::Pull { fallback: false },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use PullBehavior::*;

    #[test]
    fn behavior_matches_ecs() {
        let pull = PullPlan::Pull { fallback: false };
        let pull_or_cache = PullPlan::Pull { fallback: true };
        // (behavior, cached, pulled_before, pinned) → plan
        for (b, c, p, d, want) in [
            (Default, false, false, false, pull),
            (Default, true, true, false, pull_or_cache),
            (Default, true, false, false, PullPlan::UseCached),
            (Always, true, true, false, pull),
            (Always, false, false, false, pull),
            (Once, true, true, false, PullPlan::UseCached),
            (Once, true, false, false, pull),
            (Once, false, true, false, pull),
            (PreferCached, true, false, false, PullPlan::UseCached),
            (PreferCached, false, false, false, pull),
            (Always, true, false, true, PullPlan::UseCached),
            (Default, false, false, true, pull),
        ] {
            assert_eq!(
                plan(b, c, p, d),
                want,
                "{b:?} cached={c} pulled={p} pinned={d}"
            );
        }
    }
}
