//! skerry's own nf_tables table (`ip skerry`) over netlink (netlink-packet-netfilter,
//! MIT, pure Rust; no `nft` binary, no GPL libnftnl): masquerading for the bridge's
//! subnet and DNAT for published ports. The whole table is replaced in one atomic
//! batch each time (`add table; delete table; add table; chains; rules`), so it never
//! shows half a state and nothing outside it is touched.
//!
//! ```text
//! table ip skerry {
//!   chain prerouting  { type nat hook prerouting priority -100; fib daddr type local <dnat rules> }
//!   chain output      { type nat hook output priority -100;     fib daddr type local <dnat rules> }
//!   chain postrouting { type nat hook postrouting priority 100;
//!     ip saddr SUBNET ip daddr != SUBNET masquerade
//!     ip saddr 127.0.0.0/8 ip daddr SUBNET masquerade }   # published on 127.0.0.1
//! }
//! dnat rule: meta l4proto P th dport HOSTPORT [ip daddr HOSTIP] dnat to ADDR:PORT
//! ```

use std::net::Ipv4Addr;
use std::os::fd::AsFd;
use std::time::Duration;

use netlink_packet_netfilter::nftables::{
    Bitwise, ChainAttribute, ChainMessage, Cmp, DataAttribute, Expressions, Hook, Immediate,
    InetHookNumber, Meta, MetaKey, NfTablesMessage, Operator, Payload, Register, RuleAttribute,
    RuleMessage, TableAttribute, TableMessage,
};
use netlink_packet_netfilter::none::ControlMessage;
use netlink_packet_netfilter::{NetfilterHeader, NetfilterMessage, NetfilterProtoFamily};
use netlink_sys::Socket;
use nlcore9::{
    DefaultNla, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_APPEND, NLM_F_CREATE,
    NLM_F_REQUEST,
};

use super::NetError;

/// How long to wait for the kernel's answer to a batch.
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

/// The table skerry owns by default (an agent with another state directory owns
/// `skerry-<hash>`).
pub const TABLE: &str = "skerry";

/// One published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dnat {
    /// 6 (tcp) or 17 (udp).
    pub protocol: u8,
    pub host_port: u16,
    /// Only traffic to this host address (None: any of the host's addresses).
    pub host_ip: Option<Ipv4Addr>,
    pub address: Ipv4Addr,
    pub port: u16,
}

/// Everything the table holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ruleset {
    pub subnet: Ipv4Addr,
    pub prefix: u8,
    pub dnat: Vec<Dnat>,
}

fn header() -> NetfilterHeader {
    NetfilterHeader::new(NetfilterProtoFamily::IPv4, 0, 0)
}

fn be32(kind: u16, v: u32) -> DefaultNla {
    DefaultNla::new(kind, v.to_be_bytes().to_vec())
}

fn cmp(op: Operator, data: Vec<u8>) -> Expressions {
    Expressions::Cmp(vec![
        Cmp::SourceRegister(Register::Reg1),
        Cmp::Op(op),
        Cmp::Data(DataAttribute::Value(data)),
    ])
}

/// Loads `len` bytes at `offset` of header `base` (1 network, 2 transport) into reg 1.
fn payload(base: u32, offset: u32, len: u32) -> Expressions {
    Expressions::Payload(vec![
        Payload::DestinationRegister(Register::Reg1),
        Payload::Base(base),
        Payload::Offset(offset),
        Payload::Len(len),
    ])
}

fn masked(prefix: u8) -> Expressions {
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    };
    Expressions::Bitwise(vec![
        Bitwise::SourceRegister(Register::Reg1),
        Bitwise::DestinationRegister(Register::Reg1),
        Bitwise::Length(4),
        Bitwise::Mask(DataAttribute::Value(mask.to_be_bytes().to_vec())),
        Bitwise::Xor(DataAttribute::Value(vec![0; 4])),
    ])
}

fn net(addr: Ipv4Addr, prefix: u8) -> Vec<u8> {
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    };
    (u32::from(addr) & mask).to_be_bytes().to_vec()
}

/// `fib daddr type local`: NFTA_FIB_DREG (1) = reg 1, NFTA_FIB_RESULT (2) =
/// NFT_FIB_RESULT_ADDRTYPE (3), NFTA_FIB_FLAGS (3) = NFTA_FIB_F_DADDR (1 << 1).
fn fib_daddr_local() -> Vec<Expressions> {
    vec![
        Expressions::Other {
            expression_type: "fib".into(),
            attributes: vec![be32(1, 1), be32(2, 3), be32(3, 2)],
        },
        cmp(Operator::Equal, 2u32.to_ne_bytes().to_vec()), // RTN_LOCAL
    ]
}

fn masquerade() -> Expressions {
    Expressions::Other {
        expression_type: "masq".into(),
        attributes: vec![],
    }
}

fn dnat_rule(d: &Dnat) -> Vec<Expressions> {
    let mut e = vec![
        Expressions::Meta(vec![
            Meta::Key(MetaKey::L4Proto),
            Meta::DestinationRegister(Register::Reg1),
        ]),
        cmp(Operator::Equal, vec![d.protocol]),
        payload(2, 2, 2),
        cmp(Operator::Equal, d.host_port.to_be_bytes().to_vec()),
    ];
    if let Some(ip) = d.host_ip {
        e.push(payload(1, 16, 4));
        e.push(cmp(Operator::Equal, ip.octets().to_vec()));
    }
    e.push(Expressions::Immediate(vec![
        Immediate::DestinationRegister(Register::Reg1),
        Immediate::Data(DataAttribute::Value(d.address.octets().to_vec())),
    ]));
    e.push(Expressions::Immediate(vec![
        Immediate::DestinationRegister(Register::Reg2),
        Immediate::Data(DataAttribute::Value(d.port.to_be_bytes().to_vec())),
    ]));
    // NFTA_NAT_TYPE = DNAT, NFTA_NAT_FAMILY = IPv4, REG_ADDR_MIN = 1, REG_PROTO_MIN = 2.
    e.push(Expressions::Other {
        expression_type: "nat".into(),
        attributes: vec![be32(1, 1), be32(2, 2), be32(3, 1), be32(5, 2)],
    });
    e
}

fn chain(table: &str, name: &str, hook: InetHookNumber, priority: i32) -> NfTablesMessage {
    NfTablesMessage::NewChain(ChainMessage {
        attributes: vec![
            ChainAttribute::Table(table.into()),
            ChainAttribute::Name(name.into()),
            ChainAttribute::Type("nat".into()),
            ChainAttribute::Hook(vec![
                Hook::Number(hook.into()),
                Hook::Priority(priority as u32),
            ]),
            ChainAttribute::Policy(1), // accept
        ],
    })
}

fn rule(table: &str, chain: &str, exprs: Vec<Expressions>) -> NfTablesMessage {
    NfTablesMessage::NewRule(RuleMessage {
        attributes: vec![
            RuleAttribute::Table(table.into()),
            RuleAttribute::Chain(chain.into()),
            RuleAttribute::Expressions(exprs.into_iter().map(Into::into).collect()),
        ],
    })
}

fn table_msg(table: &str, create: bool) -> NfTablesMessage {
    let t = TableMessage {
        attributes: vec![TableAttribute::Name(table.into())],
    };
    if create {
        NfTablesMessage::NewTable(t)
    } else {
        NfTablesMessage::DeleteTable(t)
    }
}

/// The batch that replaces the table with `rs` (or only deletes it).
fn batch(table: &str, rs: Option<&Ruleset>) -> Vec<(NfTablesMessage, u16)> {
    let mut m = vec![
        (table_msg(table, true), NLM_F_CREATE),
        (table_msg(table, false), 0),
    ];
    let Some(rs) = rs else { return m };
    m.push((table_msg(table, true), NLM_F_CREATE));
    for (name, hook, prio) in [
        ("prerouting", InetHookNumber::PreRouting, -100),
        ("output", InetHookNumber::LocalOut, -100),
        ("postrouting", InetHookNumber::PostRouting, 100),
    ] {
        m.push((chain(table, name, hook, prio), NLM_F_CREATE));
    }
    let add = NLM_F_CREATE | NLM_F_APPEND;
    let subnet = net(rs.subnet, rs.prefix);
    let mut out = vec![
        payload(1, 12, 4),
        masked(rs.prefix),
        cmp(Operator::Equal, subnet.clone()),
    ];
    out.extend([
        payload(1, 16, 4),
        masked(rs.prefix),
        cmp(Operator::NotEqual, subnet.clone()),
    ]);
    out.push(masquerade());
    m.push((rule(table, "postrouting", out), add));
    let mut lo = vec![
        payload(1, 12, 4),
        masked(8),
        cmp(Operator::Equal, vec![127, 0, 0, 0]),
    ];
    lo.extend([
        payload(1, 16, 4),
        masked(rs.prefix),
        cmp(Operator::Equal, subnet),
    ]);
    lo.push(masquerade());
    m.push((rule(table, "postrouting", lo), add));
    for d in &rs.dnat {
        for c in ["prerouting", "output"] {
            let mut e = fib_daddr_local();
            e.extend(dnat_rule(d));
            m.push((rule(table, c, e), add));
        }
    }
    m
}

/// Replaces skerry's table `table` with `rs` in one transaction.
pub fn apply(table: &str, rs: &Ruleset) -> Result<(), NetError> {
    send_batch(&batch(table, Some(rs)))
}

/// Deletes skerry's table `table` (fine when there is none).
pub fn remove(table: &str) -> Result<(), NetError> {
    send_batch(&batch(table, None))
}

fn send_batch(msgs: &[(NfTablesMessage, u16)]) -> Result<(), NetError> {
    let mut sock = Socket::new(libc::NETLINK_NETFILTER as isize).map_err(|e| {
        if e.raw_os_error() == Some(libc::EPROTONOSUPPORT) {
            NetError::MissingFeature("nfnetlink")
        } else {
            NetError::Netlink("netfilter socket", e)
        }
    })?;
    sock.bind_auto()
        .map_err(|e| NetError::Netlink("netfilter bind", e))?;
    nix::sys::socket::setsockopt(
        &sock.as_fd(),
        nix::sys::socket::sockopt::ReceiveTimeout,
        &nix::sys::time::TimeVal::new(REPLY_TIMEOUT.as_secs() as _, 0),
    )
    .map_err(|e| NetError::Sys("SO_RCVTIMEO", e))?;
    let mut buf = Vec::new();
    let mut push = |seq: u32, flags: u16, inner: NetfilterMessage| {
        let mut nl = NetlinkMessage::from(inner);
        nl.header.flags = NLM_F_REQUEST | flags;
        nl.header.sequence_number = seq;
        nl.finalize();
        let start = buf.len();
        buf.resize(start + nl.buffer_len(), 0);
        nl.serialize(&mut buf[start..]);
    };
    let batch_header = NetfilterHeader::new(
        NetfilterProtoFamily::Unspec,
        0,
        libc::NFNL_SUBSYS_NFTABLES as u16,
    );
    push(
        0,
        0,
        NetfilterMessage::new(batch_header.clone(), ControlMessage::BatchBegin),
    );
    for (i, (m, flags)) in msgs.iter().enumerate() {
        push(
            i as u32 + 1,
            flags | NLM_F_ACK,
            NetfilterMessage::new(header(), m.clone()),
        );
    }
    push(
        msgs.len() as u32 + 1,
        0,
        NetfilterMessage::new(batch_header, ControlMessage::BatchEnd),
    );
    sock.send(&buf, 0)
        .map_err(|e| NetError::Netlink("nf_tables batch", e))?;
    let mut acked = 0;
    let mut rx = vec![0u8; 64 * 1024];
    while acked < msgs.len() {
        let n = sock
            .recv(&mut &mut rx[..], 0)
            .map_err(|e| NetError::Netlink("nf_tables batch reply", e))?;
        let mut off = 0;
        while off < n {
            let reply = NetlinkMessage::<NetfilterMessage>::deserialize(&rx[off..n])
                .map_err(|e| NetError::Decode("nf_tables", e.to_string()))?;
            let len = reply.header.length as usize;
            if let NetlinkPayload::Error(err) = reply.payload {
                if let Some(code) = err.code {
                    let seq = reply.header.sequence_number as usize;
                    let refused = match seq {
                        0 => Refused::Batch,
                        n => Refused::Message(msgs.get(n - 1).map(|m| &m.0)),
                    };
                    return Err(refusal(refused, -code.get()));
                }
                acked += 1;
            }
            if len == 0 {
                break;
            }
            off += len;
        }
    }
    Ok(())
}

/// What the kernel's error answers: the batch as a whole (sequence 0, the batch
/// header) or one message of it (`None`: a sequence number skerry did not send).
#[derive(Debug, Clone, Copy)]
enum Refused<'a> {
    Batch,
    Message(Option<&'a NfTablesMessage>),
}

/// Names the missing kernel piece when the kernel refuses the batch or part of it.
fn refusal(refused: Refused<'_>, errno: i32) -> NetError {
    let msg = match refused {
        // nfnetlink without the nf_tables subsystem (module absent, autoload off or
        // failing) answers the batch header itself with EOPNOTSUPP.
        Refused::Batch if errno == libc::EOPNOTSUPP => {
            return NetError::MissingFeature("nf_tables")
        }
        Refused::Batch => None,
        Refused::Message(m) => m,
    };
    match (msg, errno) {
        (Some(NfTablesMessage::NewTable(_)), libc::EOPNOTSUPP) => {
            NetError::MissingFeature("nf_tables")
        }
        (Some(NfTablesMessage::NewChain(_)), libc::ENOENT | libc::EOPNOTSUPP) => {
            NetError::MissingFeature("nf_tables nat chains (nft_chain_nat)")
        }
        (Some(NfTablesMessage::NewRule(_)), libc::ENOENT | libc::EOPNOTSUPP) => {
            NetError::MissingFeature(
                "nf_tables nat, masq or fib expressions (nft_nat, nft_masq, nft_fib_ipv4)",
            )
        }
        _ => NetError::Netlink("nf_tables batch", std::io::Error::from_raw_os_error(errno)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(e: NetError) -> Option<&'static str> {
        match e {
            NetError::MissingFeature(f) => Some(f),
            _ => None,
        }
    }

    #[test]
    fn refusals_name_the_missing_kernel_piece() {
        let msgs = batch(
            TABLE,
            Some(&Ruleset {
                subnet: Ipv4Addr::new(10, 203, 0, 0),
                prefix: 24,
                dnat: vec![],
            }),
        );
        let of = |pick: fn(&NfTablesMessage) -> bool| msgs.iter().map(|m| &m.0).find(|m| pick(m));
        let table = of(|m| matches!(m, NfTablesMessage::NewTable(_)));
        let chain = of(|m| matches!(m, NfTablesMessage::NewChain(_)));
        let rule = of(|m| matches!(m, NfTablesMessage::NewRule(_)));
        assert!(table.is_some() && chain.is_some() && rule.is_some());
        // The batch header refused: nfnetlink is there, nf_tables is not (seen on the
        // board with nf_tables unloaded and module autoloading off).
        assert_eq!(
            named(refusal(Refused::Batch, libc::EOPNOTSUPP)),
            Some("nf_tables")
        );
        assert_eq!(named(refusal(Refused::Batch, libc::EPERM)), None);
        assert_eq!(
            named(refusal(Refused::Message(table), libc::EOPNOTSUPP)),
            Some("nf_tables")
        );
        assert_eq!(
            named(refusal(Refused::Message(chain), libc::ENOENT)),
            Some("nf_tables nat chains (nft_chain_nat)")
        );
        assert!(named(refusal(Refused::Message(rule), libc::ENOENT))
            .is_some_and(|f| f.contains("nft_nat")));
        assert_eq!(
            named(refusal(Refused::Message(None), libc::EOPNOTSUPP)),
            None
        );
        assert_eq!(named(refusal(Refused::Message(table), libc::EPERM)), None);
    }
}
