//! Pure decisions of `bridge` networking: the bridge's subnet, container addresses
//! from it, and host ports for `hostPort: 0` picked the way the ECS agent (1.70+)
//! picks them: from the ephemeral range (`/proc/sys/net/ipv4/ip_local_port_range`),
//! round-robin starting after the last port given, skipping ECS's reserved ports and
//! ports in use, each candidate test-bound by the caller before it is taken.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

/// The default bridge subnet: outside Docker's 172.17.0.0/16 and its default address
/// pools (172.17–31/16, 192.168/16) and podman's 10.88/16, 10.89/16.
pub const DEFAULT_SUBNET: &str = "10.203.0.0/24";

/// Docker's default bridge network, which skerry's must not overlap.
pub const DOCKER_BRIDGE: (Ipv4Addr, u8) = (Ipv4Addr::new(172, 17, 0, 0), 16);

/// Ports the ECS agent never hands out (`ECS_RESERVED_PORTS` default).
pub const ECS_RESERVED_PORTS: [u16; 5] = [22, 2375, 2376, 51678, 51679];

/// An IPv4 subnet of the bridge, /16 to /29.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    base: Ipv4Addr,
    prefix: u8,
}

/// Why a subnet or port range is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BridgeError {
    #[error("{0:?} is not an IPv4 subnet like 10.203.0.0/24")]
    NotASubnet(String),
    #[error("{0}: the prefix must be between /16 and /29")]
    Prefix(String),
    #[error("{0}: host bits are set (did you mean {1}?)")]
    HostBits(String, String),
    #[error("{0} overlaps Docker's bridge 172.17.0.0/16")]
    OverlapsDocker(String),
    #[error("{0:?} is not a port range like \"32768 60999\"")]
    NotARange(String),
}

fn mask(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

impl Subnet {
    /// Parses `a.b.c.d/n`, refusing host bits, odd sizes and Docker's bridge.
    pub fn parse(s: &str) -> Result<Self, BridgeError> {
        let bad = || BridgeError::NotASubnet(s.to_string());
        let (ip, prefix) = s.split_once('/').ok_or_else(bad)?;
        let base: Ipv4Addr = ip.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        if !(16..=29).contains(&prefix) {
            return Err(BridgeError::Prefix(s.to_string()));
        }
        let net = Ipv4Addr::from(u32::from(base) & mask(prefix));
        if net != base {
            return Err(BridgeError::HostBits(
                s.to_string(),
                format!("{net}/{prefix}"),
            ));
        }
        let subnet = Self { base, prefix };
        let (d, dp) = DOCKER_BRIDGE;
        let common = mask(prefix.min(dp));
        if u32::from(base) & common == u32::from(d) & common {
            return Err(BridgeError::OverlapsDocker(s.to_string()));
        }
        Ok(subnet)
    }

    pub fn base(&self) -> Ipv4Addr {
        self.base
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// The bridge's own address: the first host address.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.base) + 1)
    }

    /// Whether `ip` lies in the subnet.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & mask(self.prefix) == u32::from(self.base)
    }

    /// The lowest free container address (after the gateway, before broadcast).
    pub fn allocate(&self, taken: &BTreeSet<Ipv4Addr>) -> Option<Ipv4Addr> {
        let first = u32::from(self.base) + 2;
        let broadcast = u32::from(self.base) | !mask(self.prefix);
        (first..broadcast)
            .map(Ipv4Addr::from)
            .find(|ip| !taken.contains(ip))
    }
}

/// The ephemeral port range, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    pub low: u16,
    pub high: u16,
}

impl PortRange {
    /// The ECS agent's fallback when the kernel's range cannot be read.
    pub const ECS_DEFAULT: PortRange = PortRange {
        low: 49153,
        high: 65535,
    };

    /// Parses `/proc/sys/net/ipv4/ip_local_port_range` ("32768\t60999").
    pub fn parse(text: &str) -> Result<Self, BridgeError> {
        let bad = || BridgeError::NotARange(text.trim().to_string());
        let mut it = text.split_whitespace().map(|p| p.parse::<u16>());
        match (it.next(), it.next(), it.next()) {
            (Some(Ok(low)), Some(Ok(high)), None) if low <= high && low > 0 => {
                Ok(Self { low, high })
            }
            _ => Err(bad()),
        }
    }
}

/// Picks a host port for `hostPort: 0`: the first port after `last` (wrapping in
/// `range`) that is neither reserved nor `taken` by skerry and that `bindable` (the
/// caller's test bind) accepts. `None` when the whole range is used.
pub fn pick_host_port(
    range: PortRange,
    last: Option<u16>,
    taken: &BTreeSet<u16>,
    mut bindable: impl FnMut(u16) -> bool,
) -> Option<u16> {
    let span = u32::from(range.high - range.low) + 1;
    let start = match last {
        Some(l) if (range.low..range.high).contains(&l) => u32::from(l - range.low) + 1,
        _ => 0,
    };
    (0..span)
        .map(|i| range.low + ((start + i) % span) as u16)
        .find(|p| !ECS_RESERVED_PORTS.contains(p) && !taken.contains(p) && bindable(*p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bridge_subnet_parsed_checked_and_allocated() {
        let s = Subnet::parse(DEFAULT_SUBNET).expect("default subnet");
        assert_eq!(s.gateway(), Ipv4Addr::new(10, 203, 0, 1));
        assert!(
            s.contains(Ipv4Addr::new(10, 203, 0, 200)) && !s.contains(Ipv4Addr::new(10, 203, 1, 1))
        );
        let mut taken = BTreeSet::new();
        assert_eq!(s.allocate(&taken), Some(Ipv4Addr::new(10, 203, 0, 2)));
        taken.insert(Ipv4Addr::new(10, 203, 0, 2));
        assert_eq!(s.allocate(&taken), Some(Ipv4Addr::new(10, 203, 0, 3)));
        let tiny = Subnet::parse("192.0.2.0/29").expect("/29");
        let all: BTreeSet<_> = (2..7).map(|i| Ipv4Addr::new(192, 0, 2, i)).collect();
        assert_eq!(tiny.allocate(&all), None, "broadcast .7 is never given");
        for (bad, why) in [
            ("10.203.0.1/24", "host bits"),
            ("172.17.5.0/24", "Docker"),
            ("172.0.0.0/8", "between /16"),
            ("172.16.0.0/15", "between /16"),
            ("10.0.0.0/30", "between /16"),
            ("ten/24", "not an IPv4 subnet"),
        ] {
            let err = Subnet::parse(bad).expect_err(bad).to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn bridge_host_ports_round_robin_skip_reserved_taken_and_unbindable() {
        let range = PortRange::parse("32768\t60999\n").expect("range");
        assert_eq!(
            range,
            PortRange {
                low: 32768,
                high: 60999
            }
        );
        assert!(PortRange::parse("60999 32768").is_err() && PortRange::parse("x").is_err());
        let none = BTreeSet::new();
        assert_eq!(pick_host_port(range, None, &none, |_| true), Some(32768));
        assert_eq!(
            pick_host_port(range, Some(40000), &none, |_| true),
            Some(40001)
        );
        // Wraps after the top of the range.
        assert_eq!(
            pick_host_port(range, Some(60999), &none, |_| true),
            Some(32768)
        );
        let taken: BTreeSet<u16> = [40001].into();
        assert_eq!(
            pick_host_port(range, Some(40000), &taken, |p| p != 40002),
            Some(40003)
        );
        let small = PortRange {
            low: 51677,
            high: 51680,
        };
        assert_eq!(pick_host_port(small, None, &none, |_| true), Some(51677));
        assert_eq!(
            pick_host_port(small, Some(51677), &none, |_| true),
            Some(51680),
            "51678/9 reserved"
        );
        assert_eq!(pick_host_port(small, None, &none, |_| false), None);
    }
}
