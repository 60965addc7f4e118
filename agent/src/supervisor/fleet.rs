//! The fleet half of the desired state on the device: signed documents from the
//! broker, checked by [`skerry_core::proto::check_document`], re-validated with this
//! device's own `spec`, stored atomically *before* they act, merged
//! ([`skerry_core::proto::merge`]) and combined with the local desired directory.
//!
//! ```text
//! <state>/fleet/device.doc          the device's own document (the envelope as received)
//! <state>/fleet/group.<name>.doc    one per group of the config
//! <state>/fleet/time-floor          see crate::sync::timefloor
//! ```
//!
//! A stored document is checked again on start (a key no longer trusted stops
//! counting). Nothing is inferred from a missing message: a wiped retained topic
//! changes nothing; only a newer signed document does. Local files whose name the
//! fleet also defines are refused (the fleet's signed entry runs), with an event.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use skerry_core::proto::merge::{merge, Kind};
use skerry_core::proto::reported::{ApplyState, Rejection};
use skerry_core::proto::topics::Scope;
use skerry_core::proto::{
    check_document, Accepted, DeploymentDoc, Expect, FleetEvent, Refusal, Target,
};
use skerry_core::reconcile::{Desired, ServiceSpec, Snapshot, TaskId, TaskPhase};
use skerry_core::spec::{parse_task_definition, validate_name, ParseOptions, TaskDefinition};

use super::desired::parse_service_text;
use crate::store::atomic::write_atomic;

/// Who this device is on the wire.
#[derive(Debug, Clone)]
pub struct Identity {
    pub fleet: String,
    pub device: String,
    pub groups: Vec<String>,
    pub trusted: Vec<[u8; 32]>,
    pub max_payload: usize,
}

struct Stored {
    accepted: Accepted,
    state: ApplyState,
}

/// The device's fleet documents and what they ask for.
pub struct Fleet {
    dir: PathBuf,
    id: Identity,
    opts: ParseOptions,
    docs: BTreeMap<Scope, Stored>,
    desired: Desired,
    sources: BTreeMap<String, (Target, u64)>,
    clashes: BTreeSet<String>,
    pub last_rejection: Option<Rejection>,
}

/// A checked entry.
enum Item {
    Task(TaskDefinition),
    Service(ServiceSpec),
}

fn file_of(dir: &Path, scope: &Scope) -> PathBuf {
    match scope {
        Scope::Device(_) => dir.join("device.doc"),
        Scope::Group(g) => dir.join(format!("group.{g}.doc")),
    }
}

/// Every entry of `doc`, validated with this device's spec; the first bad one named.
fn parse_entries(doc: &DeploymentDoc, opts: &ParseOptions) -> Result<Vec<(String, Item)>, String> {
    let mut out = Vec::new();
    for e in &doc.tasks {
        validate_name("task name", &e.name).map_err(|err| format!("tasks[{}]: {err}", e.name))?;
        let def = parse_task_definition(&e.json, opts)
            .map_err(|err| format!("tasks[{}]: invalid task definition:\n{err}", e.name))?;
        out.push((e.name.clone(), Item::Task(def)));
    }
    for e in &doc.services {
        validate_name("service name", &e.name)
            .map_err(|err| format!("services[{}]: {err}", e.name))?;
        let spec = parse_service_text(&e.json, opts, None)
            .map_err(|err| format!("services[{}]: {err}", e.name))?;
        out.push((e.name.clone(), Item::Service(spec)));
    }
    Ok(out)
}

impl Fleet {
    /// Loads and re-checks the stored documents of `dir`.
    pub fn open(dir: PathBuf, id: Identity, opts: ParseOptions) -> (Self, Vec<FleetEvent>) {
        let mut f = Self {
            dir,
            id,
            opts,
            docs: BTreeMap::new(),
            desired: Desired::default(),
            sources: BTreeMap::new(),
            clashes: BTreeSet::new(),
            last_rejection: None,
        };
        let mut events = Vec::new();
        let mut scopes = vec![Scope::Device(f.id.device.clone())];
        scopes.extend(f.id.groups.iter().map(|g| Scope::Group(g.clone())));
        for scope in scopes {
            let path = file_of(&f.dir, &scope);
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            match f.check(&bytes, &scope, None) {
                Ok(accepted) => {
                    f.docs.insert(
                        scope,
                        Stored {
                            accepted,
                            state: ApplyState::Applying,
                        },
                    );
                }
                Err(reason) => {
                    tracing::error!(file = %path.display(), %reason, "stored fleet document no longer accepted");
                    events.push(FleetEvent::Rejected {
                        topic: scope.to_string(),
                        version: None,
                        code: "stored".into(),
                        reason: format!("{}: {reason}", path.display()),
                    });
                }
            }
        }
        events.extend(f.rebuild());
        (f, events)
    }

    fn check(
        &self,
        bytes: &[u8],
        scope: &Scope,
        have: Option<(u64, [u8; 32])>,
    ) -> Result<Accepted, String> {
        let acc = check_document(bytes, &self.expect(scope, have)).map_err(|r| r.to_string())?;
        parse_entries(&acc.doc, &self.opts)?;
        Ok(acc)
    }

    /// What this device expects of a document on the topic of `scope`.
    fn expect<'a>(&'a self, scope: &'a Scope, have: Option<(u64, [u8; 32])>) -> Expect<'a> {
        Expect {
            fleet: &self.id.fleet,
            device: &self.id.device,
            groups: &self.id.groups,
            trusted: &self.id.trusted,
            max_bytes: self.id.max_payload,
            scope,
            have,
        }
    }

    /// A payload from the desired topic of `scope`. Returns the events to report;
    /// `true` when the desired state changed.
    pub fn offer(&mut self, scope: &Scope, payload: &[u8]) -> (Vec<FleetEvent>, bool) {
        let have = self
            .docs
            .get(scope)
            .map(|s| (s.accepted.doc.version, s.accepted.digest));
        let checked = check_document(payload, &self.expect(scope, have));
        let accepted = match checked {
            Err(Refusal::Unchanged(_)) => return (vec![], false),
            Err(r) => {
                return (
                    vec![self.reject(scope, None, r.code(), r.to_string())],
                    false,
                )
            }
            Ok(a) => a,
        };
        let version = accepted.doc.version;
        if let Err(reason) = parse_entries(&accepted.doc, &self.opts) {
            return (
                vec![self.reject(scope, Some(version), "invalid", reason)],
                false,
            );
        }
        // Stored before anything acts on it.
        let path = file_of(&self.dir, scope);
        let stored = std::fs::create_dir_all(&self.dir).and_then(|()| write_atomic(&path, payload));
        if let Err(e) = stored {
            let reason = format!(
                "not stored ({}: {e}); it will be taken when it arrives again",
                path.display()
            );
            return (
                vec![self.reject(scope, Some(version), "store-failed", reason)],
                false,
            );
        }
        let superseded = self
            .docs
            .get(scope)
            .filter(|s| s.state == ApplyState::Applying)
            .map(|s| s.accepted.doc.version);
        let target = accepted.doc.target.clone();
        self.docs.insert(
            scope.clone(),
            Stored {
                accepted,
                state: ApplyState::Applying,
            },
        );
        let mut events = vec![FleetEvent::Accepted {
            target,
            version,
            superseded,
        }];
        events.extend(self.rebuild());
        (events, true)
    }

    fn reject(
        &mut self,
        scope: &Scope,
        version: Option<u64>,
        code: &str,
        reason: String,
    ) -> FleetEvent {
        tracing::warn!(topic = %scope, code, %reason, "fleet document rejected; nothing changed");
        let r = Rejection {
            topic: scope.to_string(),
            version,
            code: code.to_string(),
            reason: reason.clone(),
        };
        self.last_rejection = Some(r);
        FleetEvent::Rejected {
            topic: scope.to_string(),
            version,
            code: code.to_string(),
            reason,
        }
    }

    /// Recomputes the merged desired state; reports new group clashes.
    fn rebuild(&mut self) -> Vec<FleetEvent> {
        let device = self
            .docs
            .get(&Scope::Device(self.id.device.clone()))
            .map(|s| &s.accepted.doc);
        let groups: Vec<&DeploymentDoc> = self
            .id
            .groups
            .iter()
            .filter_map(|g| {
                self.docs
                    .get(&Scope::Group(g.clone()))
                    .map(|s| &s.accepted.doc)
            })
            .collect();
        let (merged, clashes) = merge(device, &groups);
        let mut desired = Desired::default();
        let mut sources = BTreeMap::new();
        for (name, m) in merged {
            let item = match m.kind {
                Kind::Task => parse_task_definition(&m.json, &self.opts)
                    .map(Item::Task)
                    .map_err(|e| e.to_string()),
                Kind::Service => parse_service_text(&m.json, &self.opts, None).map(Item::Service),
            };
            match item {
                Ok(Item::Task(d)) => {
                    desired.tasks.insert(TaskId::from(name.as_str()), d);
                }
                Ok(Item::Service(s)) => {
                    desired.services.insert(name.clone(), s);
                }
                Err(e) => tracing::error!(%name, error = %e, "stored entry no longer parses"),
            }
            sources.insert(name, (m.from, m.version));
        }
        self.desired = desired;
        self.sources = sources;
        let mut events = Vec::new();
        for c in clashes {
            if self.clashes.insert(c.name.clone()) {
                events.push(FleetEvent::Clash {
                    name: c.name,
                    kept: c.kept.to_string(),
                    ignored: c.ignored.to_string(),
                });
            }
        }
        events
    }

    /// The fleet's desired state combined with the local directory's: a local name the
    /// fleet also defines is dropped (the fleet's runs). Returns new clashes as events.
    pub fn combine(&mut self, local: Desired) -> (Desired, Vec<FleetEvent>) {
        let mut out = self.desired.clone();
        let mut events = Vec::new();
        for (id, def) in local.tasks {
            if self.sources.contains_key(&id.0) {
                events.extend(self.local_clash(&id.0));
                continue;
            }
            out.tasks.insert(id, def);
        }
        for (name, spec) in local.services {
            if self.sources.contains_key(&name) {
                events.extend(self.local_clash(&name));
                continue;
            }
            out.services.insert(name, spec);
        }
        (out, events)
    }

    fn local_clash(&mut self, name: &str) -> Option<FleetEvent> {
        let key = format!("local:{name}");
        if !self.clashes.insert(key) {
            return None;
        }
        let kept = self
            .sources
            .get(name)
            .map(|(t, v)| format!("{t} v{v}"))
            .unwrap_or_default();
        tracing::warn!(%name, %kept, "local desired file refused: the fleet defines this name");
        Some(FleetEvent::Clash {
            name: name.to_string(),
            kept,
            ignored: "the local desired directory".into(),
        })
    }

    /// Where a task or service name's definition came from.
    pub fn source_of(&self, name: &str) -> String {
        match self.sources.get(name) {
            Some((t, v)) => format!("{t} v{v}"),
            None => "local".into(),
        }
    }

    /// Moves documents from applying to applied (or failed) as the snapshot shows.
    pub fn progress(&mut self, snap: &Snapshot, desired: &Desired) -> Vec<FleetEvent> {
        let mut events = Vec::new();
        let names: BTreeMap<Scope, Vec<String>> = self
            .docs
            .iter()
            .map(|(s, d)| {
                (
                    s.clone(),
                    d.accepted.doc.names().map(str::to_owned).collect(),
                )
            })
            .collect();
        for (scope, names) in names {
            let Some(stored) = self.docs.get(&scope) else {
                continue;
            };
            if stored.state != ApplyState::Applying {
                continue;
            }
            let (target, version) = (
                stored.accepted.doc.target.clone(),
                stored.accepted.doc.version,
            );
            // Only the entries this document still provides after the merge count.
            let mine: Vec<&String> = names
                .iter()
                .filter(|n| {
                    self.sources
                        .get(n.as_str())
                        .is_some_and(|(t, _)| *t == target)
                })
                .collect();
            let mut failed = None;
            let done = mine.iter().all(|n| match entry_progress(n, snap, desired) {
                Progress::Done => true,
                Progress::Pending => false,
                Progress::Failed(r) => {
                    failed = Some(r);
                    false
                }
            });
            let new_state = if let Some(reason) = failed {
                events.push(FleetEvent::Failed {
                    target,
                    version,
                    reason: reason.clone(),
                });
                ApplyState::Failed { reason }
            } else if done {
                events.push(FleetEvent::Applied { target, version });
                ApplyState::Applied
            } else {
                continue;
            };
            if let Some(s) = self.docs.get_mut(&scope) {
                s.state = new_state;
            }
        }
        events
    }

    /// Every stored document's target, version and state.
    pub fn documents(&self) -> Vec<skerry_core::proto::reported::DocumentState> {
        self.docs
            .values()
            .map(|s| skerry_core::proto::reported::DocumentState {
                target: s.accepted.doc.target.clone(),
                version: s.accepted.doc.version,
                state: s.state.clone(),
            })
            .collect()
    }
}

fn has_started(c: &skerry_core::reconcile::ContainerRecord) -> bool {
    use skerry_core::reconcile::ContainerState;
    matches!(
        c.state,
        ContainerState::Running { .. } | ContainerState::Exited { .. }
    )
}

enum Progress {
    Done,
    Pending,
    Failed(String),
}

/// Whether the task or service `name` runs as desired.
fn entry_progress(name: &str, snap: &Snapshot, desired: &Desired) -> Progress {
    if let Some(def) = desired.tasks.get(&TaskId::from(name)) {
        return match snap.observed.tasks.get(&TaskId::from(name)) {
            Some(t) if &t.definition == def && t.containers.iter().all(has_started) => {
                Progress::Done
            }
            Some(t) if t.definition == *def && t.phase != TaskPhase::Active => Progress::Failed(
                t.stopped_reason
                    .clone()
                    .unwrap_or_else(|| format!("task {name} stopped")),
            ),
            _ => Progress::Pending,
        };
    }
    let Some(spec) = desired.services.get(name) else {
        return Progress::Pending;
    };
    let Some(st) = snap.services.get(name) else {
        return Progress::Pending;
    };
    match &st.deployment {
        Some(d) if d.definition == spec.task_definition && d.rolled_back => {
            Progress::Failed(format!("service {name}: deployment rolled back"))
        }
        Some(d) if d.definition == spec.task_definition && d.tripped => Progress::Failed(format!(
            "service {name}: deployment failed (circuit breaker)"
        )),
        Some(d) if d.definition == spec.task_definition && d.completed => Progress::Done,
        None if spec.desired_count == 0 => Progress::Done,
        _ => Progress::Pending,
    }
}
