//! The /etc/hosts, /etc/resolv.conf and /etc/hostname a container sees, generated
//! from the task definition (hostname, extraHosts, dnsServers, dnsSearchDomains) and,
//! in bridge mode, the container's own address and its task's other containers by
//! name and `links` alias; bind-mounted over the image's copies, as Docker does.

use std::fs;
use std::path::{Path, PathBuf};

use skerry_core::spec::{ContainerDefinition, NetworkMode};

use super::RuntimeError;

/// A bridged container's own address and its task's other containers: (address,
/// names: the container name, then `links` aliases).
#[derive(Debug, Clone)]
pub struct BridgedHosts {
    pub own: std::net::Ipv4Addr,
    pub peers: Vec<(std::net::Ipv4Addr, Vec<String>)>,
}

/// Writes the files into `dir` and returns (host path, container path) pairs.
pub fn write_etc_files(
    dir: &Path,
    c: &ContainerDefinition,
    network: NetworkMode,
    hostname: &str,
    bridged: Option<&BridgedHosts>,
) -> Result<Vec<(PathBuf, &'static str)>, RuntimeError> {
    fs::create_dir_all(dir).map_err(|e| RuntimeError::io(dir, e))?;
    let mut hosts =
        String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    match bridged {
        Some(b) => {
            hosts.push_str(&format!("{}\t{hostname}\n", b.own));
            for (ip, names) in &b.peers {
                hosts.push_str(&format!("{ip}\t{}\n", names.join(" ")));
            }
        }
        None => hosts.push_str(&format!("127.0.1.1\t{hostname}\n")),
    }
    for (name, ip) in &c.extra_hosts {
        hosts.push_str(&format!("{ip}\t{name}\n"));
    }
    let resolv = if c.dns_servers.is_empty()
        && c.dns_search_domains.is_empty()
        && network != NetworkMode::None
    {
        let host = fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        if network == NetworkMode::Bridge {
            // A resolver on the host's loopback is not reachable from the bridge
            // (Docker drops these lines too).
            host.lines()
                .filter(|l| !l.trim_start().starts_with("nameserver 127."))
                .map(|l| format!("{l}\n"))
                .collect()
        } else {
            host
        }
    } else {
        let mut r = String::new();
        if !c.dns_search_domains.is_empty() {
            r.push_str(&format!("search {}\n", c.dns_search_domains.join(" ")));
        }
        for s in &c.dns_servers {
            r.push_str(&format!("nameserver {s}\n"));
        }
        r
    };
    let files = [
        ("hosts", hosts, "/etc/hosts"),
        ("resolv.conf", resolv, "/etc/resolv.conf"),
        ("hostname", format!("{hostname}\n"), "/etc/hostname"),
    ];
    let mut out = Vec::new();
    for (name, content, dest) in files {
        let path = dir.join(name);
        fs::write(&path, content).map_err(|e| RuntimeError::io(&path, e))?;
        out.push((path, dest));
    }
    Ok(out)
}
