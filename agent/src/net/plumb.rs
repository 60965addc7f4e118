//! The bridge and veth plumbing of bridge networking: the `skerry0`-style bridge on
//! the host (address = the subnet's gateway, IPv4 forwarding on), and per container a
//! veth pair whose inner end is `eth0` in the container's namespace, with its address,
//! `lo` up and a default route via the bridge. Every step is idempotent, so a
//! restarted agent can run it again over what exists.

use std::net::Ipv4Addr;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use super::rtnl::Rtnl;
use super::{netns, NetError};

/// The bridge every bridged container hangs off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bridge {
    pub name: String,
    /// The bridge's own address, the containers' default gateway.
    pub gateway: Ipv4Addr,
    pub prefix: u8,
}

/// One container's place on the bridge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The bind-mounted namespace file.
    pub netns: PathBuf,
    /// The host end of the veth pair (at most 15 bytes).
    pub host_veth: String,
    pub address: Ipv4Addr,
}

fn exists(e: &NetError) -> bool {
    matches!(e, NetError::Netlink(_, io) if io.raw_os_error() == Some(libc::EEXIST))
}

fn unsupported(e: &NetError) -> bool {
    matches!(e, NetError::Netlink(_, io) if io.raw_os_error() == Some(libc::EOPNOTSUPP))
}

/// Creates (or finds) the bridge, gives it its address, brings it up and turns on
/// IPv4 forwarding in the caller's namespace. Returns its link index.
pub fn ensure_bridge(rt: &mut Rtnl, b: &Bridge) -> Result<u32, NetError> {
    let index = match rt.link_index(&b.name)? {
        Some(i) => i,
        None => {
            match rt.add_bridge(&b.name) {
                Ok(()) => {}
                Err(e) if unsupported(&e) => return Err(NetError::MissingFeature("bridge")),
                Err(e) if exists(&e) => {}
                Err(e) => return Err(e),
            }
            rt.require_link(&b.name)?
        }
    };
    match rt.add_address(index, b.gateway, b.prefix) {
        Ok(()) => {}
        Err(e) if exists(&e) => {}
        Err(e) => return Err(e),
    }
    rt.set_up(index, None)?;
    // Forwarding for the containers' traffic; route_localnet so that ports published
    // on 127.0.0.1 can be DNATed onto the bridge (as Docker does for docker0).
    let localnet = format!("/proc/sys/net/ipv4/conf/{}/route_localnet", b.name);
    for knob in ["/proc/sys/net/ipv4/ip_forward", localnet.as_str()] {
        std::fs::write(knob, b"1").map_err(|e| NetError::io(Path::new(knob), e))?;
    }
    Ok(index)
}

/// Connects the namespace of `a` to the bridge (index `bridge_index`): veth pair,
/// address, `lo` and `eth0` up, default route via the gateway.
pub fn attach(
    rt: &mut Rtnl,
    bridge_index: u32,
    b: &Bridge,
    a: &Attachment,
) -> Result<(), NetError> {
    let ns = std::fs::File::open(&a.netns).map_err(|e| NetError::io(&a.netns, e))?;
    let mut inner = Rtnl::in_netns(&a.netns)?;
    if rt.link_index(&a.host_veth)?.is_none() {
        match rt.add_veth(&a.host_veth, "eth0", ns.as_fd()) {
            Ok(()) => {}
            Err(e) if unsupported(&e) => return Err(NetError::MissingFeature("veth")),
            Err(e) => return Err(e),
        }
    }
    let host = rt.require_link(&a.host_veth)?;
    rt.set_up(host, Some(bridge_index))?;
    let lo = inner.require_link("lo")?;
    inner.set_up(lo, None)?;
    let eth0 = inner.require_link("eth0")?;
    match inner.add_address(eth0, a.address, b.prefix) {
        Ok(()) => {}
        Err(e) if exists(&e) => {}
        Err(e) => return Err(e),
    }
    inner.set_up(eth0, None)?;
    match inner.add_default_route(b.gateway) {
        Ok(()) => Ok(()),
        Err(e) if exists(&e) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Removes the veth pair and the namespace of `a`; what is already gone is fine.
pub fn detach(rt: &mut Rtnl, a: &Attachment) -> Result<(), NetError> {
    if let Some(index) = rt.link_index(&a.host_veth)? {
        rt.del_link(index)?;
    }
    netns::remove(&a.netns)
}

#[cfg(test)]
#[path = "plumb_tests.rs"]
mod tests;
