//! The /etc/hosts, /etc/resolv.conf and /etc/hostname a container sees, generated
//! from the task definition (hostname, extraHosts, dnsServers, dnsSearchDomains) and
//! bind-mounted over the image's copies, as Docker does.

use std::fs;
use std::path::{Path, PathBuf};

use skerry_core::spec::{ContainerDefinition, NetworkMode};

use super::RuntimeError;

/// Writes the files into `dir` and returns (host path, container path) pairs.
pub fn write_etc_files(
    dir: &Path,
    c: &ContainerDefinition,
    network: NetworkMode,
    hostname: &str,
) -> Result<Vec<(PathBuf, &'static str)>, RuntimeError> {
    fs::create_dir_all(dir).map_err(|e| RuntimeError::io(dir, e))?;
    let mut hosts =
        String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    hosts.push_str(&format!("127.0.1.1\t{hostname}\n"));
    for (name, ip) in &c.extra_hosts {
        hosts.push_str(&format!("{ip}\t{name}\n"));
    }
    let resolv = if c.dns_servers.is_empty()
        && c.dns_search_domains.is_empty()
        && network == NetworkMode::Host
    {
        fs::read_to_string("/etc/resolv.conf").unwrap_or_default()
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
