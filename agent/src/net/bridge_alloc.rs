//! Allocation of a task's addresses and host ports (claimed host-wide), and
//! giving them back.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use skerry_core::bridge::{pick_host_port, PortRange};
use skerry_core::spec::TaskDefinition;

use super::super::tasknet::{bindable, veth_name, Binding, ContainerNet, TaskNet};
use super::super::NetError;
use super::BridgeNet;

const PORT_RANGE_FILE: &str = "/proc/sys/net/ipv4/ip_local_port_range";

/// `"<state dir> <task> <container>"` → `task T container C (agent state dir D)`.
fn holder(owner: &str) -> String {
    let mut it = owner.rsplitn(3, ' ');
    match (it.next(), it.next(), it.next()) {
        (Some(c), Some(t), Some(d)) => format!("task {t} container {c} (agent state dir {d})"),
        _ => owner.to_string(),
    }
}

impl BridgeNet {
    /// Picks addresses and host ports for every container of `def`; on failure
    /// nothing stays claimed.
    pub(super) fn allocate(
        &self,
        task: &str,
        def: &TaskDefinition,
        last_port: &mut Option<u16>,
    ) -> Result<TaskNet, NetError> {
        let mut net = TaskNet {
            bridge: self.inner.bridge.name.clone(),
            containers: Vec::new(),
        };
        let made = self.allocate_into(task, def, last_port, &mut net);
        if made.is_err() {
            self.unclaim(task, &net);
        }
        made.map(|()| net)
    }

    fn allocate_into(
        &self,
        task: &str,
        def: &TaskDefinition,
        last_port: &mut Option<u16>,
        net: &mut TaskNet,
    ) -> Result<(), NetError> {
        let records = self.records();
        let mut addrs: BTreeSet<Ipv4Addr> = self
            .inner
            .addrs
            .list()
            .iter()
            .filter_map(|(k, _)| k.parse().ok())
            .collect();
        addrs.extend(
            records
                .iter()
                .flat_map(|(_, n)| n.containers.iter().map(|c| c.address)),
        );
        let range = std::fs::read_to_string(PORT_RANGE_FILE)
            .ok()
            .and_then(|t| PortRange::parse(&t).ok())
            .unwrap_or(PortRange::ECS_DEFAULT);
        // A `disableNetworking` container gets no address, veth or port.
        for c in def.containers.iter().filter(|c| !c.disable_networking) {
            let owner = self.owner(task, &c.name);
            let address = loop {
                let ip = self.inner.subnet.allocate(&addrs).ok_or_else(|| {
                    NetError::Exhausted(format!(
                        "no free address left on bridge {} ({}/{})",
                        self.inner.bridge.name,
                        self.inner.subnet.base(),
                        self.inner.subnet.prefix()
                    ))
                })?;
                addrs.insert(ip);
                if self.inner.addrs.claim(&ip.to_string(), &owner)?.is_none() {
                    break ip;
                }
            };
            net.containers.push(ContainerNet {
                name: c.name.clone(),
                address,
                host_veth: veth_name(self.inner.layout.root(), task, &c.name),
                netns: self.inner.netns_dir.join(format!("{task}.{}", c.name)),
                bindings: Vec::new(),
            });
            for m in &c.port_mappings {
                let taken: BTreeSet<u16> = self
                    .inner
                    .ports
                    .list()
                    .iter()
                    .filter_map(|(k, _)| k.strip_prefix(&format!("{}-", m.protocol))?.parse().ok())
                    .collect();
                let host_port = match m.host_port {
                    Some(port) => {
                        let key = format!("{}-{port}", m.protocol);
                        if let Some(h) = self.inner.ports.claim(&key, &owner)? {
                            return Err(NetError::PortTaken(
                                format!("{port}/{}", m.protocol),
                                holder(&h),
                            ));
                        }
                        if !bindable(&m.protocol, port) {
                            self.inner.ports.release(&key, &owner);
                            return Err(NetError::PortInUse(format!("{port}/{}", m.protocol)));
                        }
                        port
                    }
                    None => {
                        let picked = pick_host_port(range, *last_port, &taken, |p| {
                            bindable(&m.protocol, p)
                                && matches!(
                                    self.inner
                                        .ports
                                        .claim(&format!("{}-{p}", m.protocol), &owner),
                                    Ok(None)
                                )
                        });
                        let port = picked.ok_or_else(|| {
                            NetError::Exhausted(format!(
                                "no free host port left in {}-{} for {}/{}",
                                range.low, range.high, m.container_port, m.protocol
                            ))
                        })?;
                        *last_port = Some(port);
                        port
                    }
                };
                if let Some(last) = net.containers.last_mut() {
                    last.bindings.push(Binding {
                        protocol: m.protocol.clone(),
                        host_ip: Ipv4Addr::UNSPECIFIED,
                        host_port,
                        container_port: m.container_port,
                    });
                }
            }
        }
        Ok(())
    }

    /// Claims a recorded allocation again (after a reboot the claims are gone).
    pub(super) fn reclaim(&self, task: &str, net: &TaskNet) -> Result<(), NetError> {
        for c in &net.containers {
            let owner = self.owner(task, &c.name);
            if let Some(h) = self.inner.addrs.claim(&c.address.to_string(), &owner)? {
                return Err(NetError::Exhausted(format!(
                    "address {} of container {} is now held by {}",
                    c.address,
                    c.name,
                    holder(&h)
                )));
            }
            for b in &c.bindings {
                if let Some(h) = self.inner.ports.claim(&b.claim_key(), &owner)? {
                    return Err(NetError::PortTaken(
                        format!("{}/{}", b.host_port, b.protocol),
                        holder(&h),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Gives back the task's addresses and host ports.
    pub(super) fn unclaim(&self, task: &str, net: &TaskNet) {
        for c in &net.containers {
            let owner = self.owner(task, &c.name);
            self.inner.addrs.release(&c.address.to_string(), &owner);
            for b in &c.bindings {
                self.inner.ports.release(&b.claim_key(), &owner);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn net_holder_names_task_container_and_agent() {
        assert_eq!(
            super::holder("/var/lib/skerry t1 web"),
            "task t1 container web (agent state dir /var/lib/skerry)"
        );
    }
}
