//! A small synchronous rtnetlink client (netlink-packet-route 0.31, the copy
//! libcontainer already links): the link, address and route requests bridge
//! networking needs, each acknowledged by the kernel before it returns.
//!
//! A netlink socket works in the network namespace it was created in, whatever
//! thread later uses it: [`Rtnl::in_netns`] opens one inside a container's namespace
//! from a short-lived thread, so the agent's own threads never change namespace.

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::path::Path;

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL,
    NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket};

use super::NetError;

/// One rtnetlink socket, bound to the namespace it was opened in.
pub struct Rtnl {
    sock: Socket,
    seq: u32,
}

impl Rtnl {
    /// A socket in the calling thread's network namespace.
    pub fn new() -> Result<Self, NetError> {
        let mut sock = Socket::new(NETLINK_ROUTE).map_err(|e| NetError::Netlink("socket", e))?;
        sock.bind_auto().map_err(|e| NetError::Netlink("bind", e))?;
        Ok(Self { sock, seq: 0 })
    }

    /// A socket inside the network namespace bind-mounted at `ns`.
    pub fn in_netns(ns: &Path) -> Result<Self, NetError> {
        let file = std::fs::File::open(ns).map_err(|e| NetError::io(ns, e))?;
        std::thread::scope(|s| {
            s.spawn(|| {
                nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(|e| NetError::Sys("setns", e))?;
                Self::new()
            })
            .join()
            .unwrap_or(Err(NetError::Sys("setns thread", nix::errno::Errno::EIO)))
        })
    }

    /// Sends one request and waits for its acknowledgement.
    fn request(
        &mut self,
        what: &'static str,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<(), NetError> {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
        header.sequence_number = self.seq;
        let mut nl = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
        nl.finalize();
        let mut buf = vec![0u8; nl.buffer_len()];
        nl.serialize(&mut buf);
        self.sock
            .send(&buf, 0)
            .map_err(|e| NetError::Netlink(what, e))?;
        let mut rx = vec![0u8; 64 * 1024];
        loop {
            let n = self
                .sock
                .recv(&mut &mut rx[..], 0)
                .map_err(|e| NetError::Netlink(what, e))?;
            let mut off = 0;
            while off < n {
                let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&rx[off..n])
                    .map_err(|e| NetError::Decode(what, e.to_string()))?;
                let len = reply.header.length as usize;
                if reply.header.sequence_number == self.seq {
                    if let NetlinkPayload::Error(err) = reply.payload {
                        return match err.code {
                            None => Ok(()),
                            Some(code) => Err(NetError::Netlink(
                                what,
                                std::io::Error::from_raw_os_error(-code.get()),
                            )),
                        };
                    }
                }
                if len == 0 {
                    break;
                }
                off += len;
            }
        }
    }

    /// The index of link `name`, if it exists in this namespace.
    pub fn link_index(&mut self, name: &str) -> Result<Option<u32>, NetError> {
        self.seq = self.seq.wrapping_add(1);
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST;
        header.sequence_number = self.seq;
        let mut nl = NetlinkMessage::new(
            header,
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::GetLink(msg)),
        );
        nl.finalize();
        let mut buf = vec![0u8; nl.buffer_len()];
        nl.serialize(&mut buf);
        self.sock
            .send(&buf, 0)
            .map_err(|e| NetError::Netlink("getlink", e))?;
        let mut rx = vec![0u8; 64 * 1024];
        loop {
            let n = self
                .sock
                .recv(&mut &mut rx[..], 0)
                .map_err(|e| NetError::Netlink("getlink", e))?;
            let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&rx[..n])
                .map_err(|e| NetError::Decode("getlink", e.to_string()))?;
            if reply.header.sequence_number != self.seq {
                continue;
            }
            return match reply.payload {
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(l)) => {
                    Ok(Some(l.header.index))
                }
                NetlinkPayload::Error(e) if e.code.is_some_and(|c| c.get() == -libc::ENODEV) => {
                    Ok(None)
                }
                NetlinkPayload::Error(e) => Err(NetError::Netlink(
                    "getlink",
                    std::io::Error::from_raw_os_error(e.code.map_or(libc::EIO, |c| -c.get())),
                )),
                _ => Ok(None),
            };
        }
    }

    /// The index of `name`, which must exist.
    pub fn require_link(&mut self, name: &str) -> Result<u32, NetError> {
        self.link_index(name)?
            .ok_or_else(|| NetError::NoLink(name.to_string()))
    }

    /// Creates bridge `name` (EEXIST when it exists).
    pub fn add_bridge(&mut self, name: &str) -> Result<(), NetError> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        msg.attributes
            .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
                InfoKind::Bridge,
            )]));
        self.request(
            "create bridge",
            RouteNetlinkMessage::NewLink(msg),
            NLM_F_CREATE | NLM_F_EXCL,
        )
    }

    /// Creates veth pair `host` ↔ `peer`, with `peer` created directly inside the
    /// namespace `peer_ns`.
    pub fn add_veth(
        &mut self,
        host: &str,
        peer: &str,
        peer_ns: BorrowedFd<'_>,
    ) -> Result<(), NetError> {
        let mut peer_msg = LinkMessage::default();
        peer_msg
            .attributes
            .push(LinkAttribute::IfName(peer.to_string()));
        peer_msg
            .attributes
            .push(LinkAttribute::NetNsFd(peer_ns.as_raw_fd()));
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(host.to_string()));
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer_msg))),
        ]));
        self.request(
            "create veth",
            RouteNetlinkMessage::NewLink(msg),
            NLM_F_CREATE | NLM_F_EXCL,
        )
    }

    /// Deletes link `index` (a veth's peer goes with it).
    pub fn del_link(&mut self, index: u32) -> Result<(), NetError> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        self.request("delete link", RouteNetlinkMessage::DelLink(msg), 0)
    }

    /// Sets link `index` up, optionally enslaving it to bridge `controller`.
    pub fn set_up(&mut self, index: u32, controller: Option<u32>) -> Result<(), NetError> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.header.flags = LinkFlags::Up;
        msg.header.change_mask = LinkFlags::Up;
        if let Some(c) = controller {
            msg.attributes.push(LinkAttribute::Controller(c));
        }
        self.request("set link up", RouteNetlinkMessage::SetLink(msg), 0)
    }

    /// Adds `addr/prefix` to link `index` (EEXIST when present).
    pub fn add_address(&mut self, index: u32, addr: Ipv4Addr, prefix: u8) -> Result<(), NetError> {
        let mut msg = AddressMessage::default();
        msg.header.family = AddressFamily::Inet;
        msg.header.prefix_len = prefix;
        msg.header.index = index;
        msg.attributes
            .push(AddressAttribute::Local(IpAddr::V4(addr)));
        msg.attributes
            .push(AddressAttribute::Address(IpAddr::V4(addr)));
        self.request(
            "add address",
            RouteNetlinkMessage::NewAddress(msg),
            NLM_F_CREATE | NLM_F_EXCL,
        )
    }

    /// Adds the default route via `gateway`.
    pub fn add_default_route(&mut self, gateway: Ipv4Addr) -> Result<(), NetError> {
        let mut msg = RouteMessage::default();
        msg.header.address_family = AddressFamily::Inet;
        msg.header.table = RouteHeader::RT_TABLE_MAIN;
        msg.header.protocol = RouteProtocol::Boot;
        msg.header.scope = RouteScope::Universe;
        msg.header.kind = RouteType::Unicast;
        msg.attributes
            .push(RouteAttribute::Gateway(RouteAddress::Inet(gateway)));
        self.request(
            "add default route",
            RouteNetlinkMessage::NewRoute(msg),
            NLM_F_CREATE | NLM_F_EXCL,
        )
    }
}
