//! The merge rule: what a device runs from its fleet documents.
//!
//! 1. Group documents apply in the order the device's config lists its groups; a name
//!    (task or service) defined by two groups is taken from the first group listed,
//!    and the clash is reported.
//! 2. The device's own document overrides its groups per name: an entry there
//!    replaces the group entry of that name, whether task or service.
//! 3. Names are one namespace across tasks and services: a task `web` and a service
//!    `web` cannot both run.
//!
//! The local desired directory (side-loaded files) is combined by the agent after this
//! merge: a local name that the fleet also defines is refused with an event, and the
//! fleet's entry runs (it is signed; the local file is not).

use std::collections::BTreeMap;

use super::document::{DeploymentDoc, Entry, Target};

/// Whether an entry is a task or a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Task,
    Service,
}

/// One entry of the merged state and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merged {
    pub kind: Kind,
    pub json: String,
    pub from: Target,
    pub version: u64,
}

/// A name two groups both define.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clash {
    pub name: String,
    pub kept: Target,
    pub ignored: Target,
}

/// Merges the device's document and its groups' (in the config's group order).
pub fn merge(
    device: Option<&DeploymentDoc>,
    groups: &[&DeploymentDoc],
) -> (BTreeMap<String, Merged>, Vec<Clash>) {
    let mut out: BTreeMap<String, Merged> = BTreeMap::new();
    let mut clashes = Vec::new();
    for doc in groups {
        for (kind, e) in entries(doc) {
            match out.get(&e.name) {
                Some(kept) => clashes.push(Clash {
                    name: e.name.clone(),
                    kept: kept.from.clone(),
                    ignored: doc.target.clone(),
                }),
                None => {
                    out.insert(e.name.clone(), merged(doc, kind, e));
                }
            }
        }
    }
    if let Some(doc) = device {
        for (kind, e) in entries(doc) {
            out.insert(e.name.clone(), merged(doc, kind, e));
        }
    }
    (out, clashes)
}

fn entries(doc: &DeploymentDoc) -> impl Iterator<Item = (Kind, &Entry)> {
    doc.tasks
        .iter()
        .map(|e| (Kind::Task, e))
        .chain(doc.services.iter().map(|e| (Kind::Service, e)))
}

fn merged(doc: &DeploymentDoc, kind: Kind, e: &Entry) -> Merged {
    Merged {
        kind,
        json: e.json.clone(),
        from: doc.target.clone(),
        version: doc.version,
    }
}

#[cfg(test)]
mod tests {
    use super::super::document::DOC_SCHEMA;
    use super::*;

    fn doc(target: Target, tasks: &[(&str, &str)], services: &[(&str, &str)]) -> DeploymentDoc {
        let e = |v: &[(&str, &str)]| {
            v.iter()
                .map(|(n, j)| Entry {
                    name: n.to_string(),
                    json: j.to_string(),
                })
                .collect()
        };
        DeploymentDoc {
            schema: DOC_SCHEMA,
            fleet: "f".into(),
            target,
            version: 1,
            issued_at_ms: 0,
            tasks: e(tasks),
            services: e(services),
        }
    }

    #[test]
    fn merge_device_overrides_groups_and_first_group_wins() {
        let g1 = doc(
            Target::Group("g1".into()),
            &[("a", "g1-a")],
            &[("web", "g1-web")],
        );
        let g2 = doc(
            Target::Group("g2".into()),
            &[("a", "g2-a"), ("b", "g2-b")],
            &[],
        );
        let d = doc(
            Target::Device("d".into()),
            &[("web", "dev-web-as-task")],
            &[],
        );
        let (m, clashes) = merge(Some(&d), &[&g1, &g2]);
        assert_eq!(m["a"].json, "g1-a");
        assert_eq!(m["b"].json, "g2-b");
        assert_eq!(m["web"].json, "dev-web-as-task");
        assert_eq!(m["web"].kind, Kind::Task);
        assert_eq!(m["web"].from, Target::Device("d".into()));
        assert_eq!(
            clashes,
            vec![Clash {
                name: "a".into(),
                kept: Target::Group("g1".into()),
                ignored: Target::Group("g2".into())
            }]
        );
    }

    #[test]
    fn merge_a_document_omitting_a_name_removes_it() {
        let before = doc(Target::Device("d".into()), &[("a", "1"), ("b", "1")], &[]);
        let after = doc(Target::Device("d".into()), &[("a", "2")], &[]);
        assert!(merge(Some(&before), &[]).0.contains_key("b"));
        let (m, _) = merge(Some(&after), &[]);
        assert_eq!(m.keys().collect::<Vec<_>>(), ["a"]);
        assert!(merge(None, &[]).0.is_empty());
    }
}
