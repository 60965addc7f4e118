//! Bridge networking for the runtime: a task's containers each get a network
//! namespace (bind-mounted, so it outlives the agent), an address on the bridge and
//! their published ports, recorded in the task's `network.json`; the agent's one
//! nf_tables table is rebuilt from all records after each change. [`BridgeNet::attach_task`]
//! is idempotent (re-run after a reboot it rebuilds what is gone),
//! [`BridgeNet::release_task`] undoes it, [`BridgeNet::sweep`] removes leftovers at start.
//!
//! Several agents (state directories) may share a host: addresses and host ports are
//! claimed host-wide ([`Claims`]); the table and the namespace directory are the
//! agent's own (`skerry`, `/run/skerry/netns` for `/var/lib/skerry`; else suffixed
//! with a hash of the state directory).

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use skerry_core::bridge::Subnet;
use skerry_core::spec::TaskDefinition;

use super::claims::Claims;
use super::plumb::{self, Attachment, Bridge};
use super::rtnl::Rtnl;
use super::tasknet::{veth_name, ContainerNet, TaskNet};
use super::{netns, nft, NetError};
use crate::store::StateLayout;

/// Where host-wide claims and namespace files live.
const RUN_DIR: &str = "/run/skerry";

/// The agent's bridge networking.
#[derive(Debug, Clone)]
pub struct BridgeNet {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    layout: StateLayout,
    bridge: Bridge,
    subnet: Subnet,
    table: String,
    netns_dir: PathBuf,
    addrs: Claims,
    ports: Claims,
    /// Serializes allocation and table rebuilds (containers are created in parallel).
    lock: Mutex<Option<u16>>,
}

impl BridgeNet {
    pub fn new(layout: StateLayout, bridge_name: &str, subnet: Subnet) -> Self {
        let run = PathBuf::from(RUN_DIR);
        let suffix = layout.host_suffix();
        Self {
            inner: Arc::new(Inner {
                bridge: Bridge {
                    name: bridge_name.to_string(),
                    gateway: subnet.gateway(),
                    prefix: subnet.prefix(),
                },
                subnet,
                table: format!("{}{suffix}", nft::TABLE),
                netns_dir: run.join(format!("netns{suffix}")),
                addrs: Claims::new(run.join(format!("claims/addr-{bridge_name}"))),
                ports: Claims::new(run.join("claims/ports")),
                layout,
                lock: Mutex::new(None),
            }),
        }
    }

    /// The agent's nf_tables table.
    pub fn table(&self) -> &str {
        &self.inner.table
    }

    /// Where the agent's namespace files are.
    pub fn netns_dir(&self) -> &Path {
        &self.inner.netns_dir
    }

    fn owner(&self, task: &str, container: &str) -> String {
        format!("{} {task} {container}", self.inner.layout.root().display())
    }

    /// Allocates (once) and plumbs the task's network: every container's namespace,
    /// veth, address, route, and the table with its published ports.
    pub fn attach_task(&self, task: &str, def: &TaskDefinition) -> Result<TaskNet, NetError> {
        let mut last_port = self
            .inner
            .lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let dir = self.inner.layout.task(task);
        let net = match TaskNet::load(&dir)? {
            Some(net) => {
                self.reclaim(task, &net)?;
                net
            }
            None => {
                let net = self.allocate(task, def, &mut last_port)?;
                if let Err(e) = net.save(&dir) {
                    self.unclaim(task, &net);
                    return Err(e);
                }
                net
            }
        };
        let mut rt = Rtnl::new()?;
        let index = plumb::ensure_bridge(&mut rt, &self.inner.bridge)?;
        for c in &net.containers {
            if !netns::is_mounted(&c.netns) {
                netns::create(&c.netns)?;
            }
            plumb::attach(&mut rt, index, &self.inner.bridge, &attachment(c))?;
        }
        self.apply_table()?;
        tracing::info!(task, bridge = %self.inner.bridge.name, "bridge network attached");
        Ok(net)
    }

    /// Tears the task's network down: veths, namespaces, claims, record, rules.
    pub fn release_task(&self, task: &str) -> Result<(), NetError> {
        let _one = self
            .inner
            .lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let dir = self.inner.layout.task(task);
        let Some(net) = TaskNet::load(&dir)? else {
            return Ok(());
        };
        let mut rt = Rtnl::new()?;
        for c in &net.containers {
            plumb::detach(&mut rt, &attachment(c))?;
        }
        self.unclaim(task, &net);
        let path = dir.join(super::tasknet::NETWORK_FILE);
        std::fs::remove_file(&path).map_err(|e| NetError::io(&path, e))?;
        // The agent's namespace directory goes with its last namespace.
        let _ = std::fs::remove_dir(&self.inner.netns_dir);
        self.apply_table()?;
        tracing::info!(task, "bridge network released");
        Ok(())
    }

    /// At start: namespace files, veths and claims of this agent that no task record
    /// names are removed; the table is rebuilt from the records (or deleted).
    pub fn sweep(&self) -> usize {
        let _one = self
            .inner
            .lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let records = self.records();
        let live: BTreeSet<PathBuf> = records
            .iter()
            .flat_map(|(_, n)| n.containers.iter().map(|c| c.netns.clone()))
            .collect();
        let mut removed = 0;
        let files = std::fs::read_dir(&self.inner.netns_dir)
            .into_iter()
            .flatten();
        for e in files.flatten().filter(|e| e.path().is_file()) {
            let path = e.path();
            if live.contains(&path) {
                continue;
            }
            let name = e.file_name().to_string_lossy().into_owned();
            let (task, container) = name.split_once('.').unwrap_or((&name, ""));
            let veth = veth_name(self.inner.layout.root(), task, container);
            tracing::warn!(netns = %path.display(), %veth, "leftover network namespace: removing");
            let gone = Rtnl::new().and_then(|mut rt| {
                plumb::detach(
                    &mut rt,
                    &Attachment {
                        netns: path.clone(),
                        host_veth: veth,
                        address: Ipv4Addr::UNSPECIFIED,
                    },
                )
            });
            if let Err(e) = gone {
                tracing::error!(netns = %path.display(), error = %e, "removing leftover namespace failed");
            }
            removed += 1;
        }
        let ours = format!("{} ", self.inner.layout.root().display());
        let known: BTreeSet<&str> = records.iter().map(|(t, _)| t.as_str()).collect();
        for claims in [&self.inner.addrs, &self.inner.ports] {
            for (key, owner) in claims.list() {
                let task = owner.strip_prefix(&ours).and_then(|r| r.split(' ').next());
                if task.is_some_and(|t| !known.contains(t)) {
                    claims.release(&key, &owner);
                    removed += 1;
                }
            }
        }
        if let Err(e) = self.apply_table() {
            tracing::error!(table = %self.inner.table, error = %e, "rebuilding the bridge rules failed")
        }
        removed
    }

    /// Every bridged task's record in the state directory.
    fn records(&self) -> Vec<(String, TaskNet)> {
        let dirs = std::fs::read_dir(self.inner.layout.tasks())
            .into_iter()
            .flatten();
        dirs.flatten()
            .filter_map(|e| {
                let id = e.file_name().into_string().ok()?;
                Some((id, TaskNet::load(&e.path()).ok().flatten()?))
            })
            .collect()
    }

    /// Replaces the table with the published ports of every record (deletes it
    /// when no task is bridged).
    fn apply_table(&self) -> Result<(), NetError> {
        let records = self.records();
        if records.is_empty() {
            return match nft::remove(&self.inner.table) {
                // No nf_tables in the kernel, so no table of ours to delete: host and
                // none networking, and the release of a task refused for the missing
                // feature, must not fail on it.
                Err(NetError::MissingFeature(_)) => Ok(()),
                other => other,
            };
        }
        let dnat = records
            .iter()
            .flat_map(|(_, n)| n.containers.iter())
            .flat_map(|c| {
                c.bindings.iter().map(|b| nft::Dnat {
                    protocol: b.proto_number(),
                    host_port: b.host_port,
                    host_ip: (!b.host_ip.is_unspecified()).then_some(b.host_ip),
                    address: c.address,
                    port: b.container_port,
                })
            })
            .collect();
        nft::apply(
            &self.inner.table,
            &nft::Ruleset {
                subnet: self.inner.subnet.base(),
                prefix: self.inner.subnet.prefix(),
                dnat,
            },
        )
    }
}

fn attachment(c: &ContainerNet) -> Attachment {
    Attachment {
        netns: c.netns.clone(),
        host_veth: c.host_veth.clone(),
        address: c.address,
    }
}

#[path = "bridge_alloc.rs"]
mod alloc;
