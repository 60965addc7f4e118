//! A container's network-facing settings: `portMappings`, `links` (bridge mode),
//! `hostname`, `extraHosts`, `dnsServers` and `dnsSearchDomains`.

use super::ecs::{is_meaningful, RawContainer, RawPortMapping};
use super::error::Problems;
use super::model::{NetworkMode, PortMapping};
use super::names::{check_hostname, check_ip};

/// What [`check`] fills in on the container.
#[derive(Debug, Default)]
pub(crate) struct NetSettings {
    pub port_mappings: Vec<PortMapping>,
    pub links: Vec<(String, String)>,
    pub hostname: Option<String>,
    pub extra_hosts: Vec<(String, String)>,
    pub dns_servers: Vec<String>,
    pub dns_search_domains: Vec<String>,
}

pub(crate) fn check(
    raw: &RawContainer,
    at: &str,
    network_mode: NetworkMode,
    network_refused: bool,
    p: &mut Problems,
) -> NetSettings {
    let ports = raw.port_mappings.as_deref().unwrap_or_default();
    if network_mode == NetworkMode::None && !ports.is_empty() {
        p.push(
            format!("{at}.portMappings"),
            "cannot be used with networkMode \"none\": the task has only loopback",
        );
    }
    let port_mappings = ports
        .iter()
        .enumerate()
        .filter_map(|(i, m)| {
            let at = format!("{at}.portMappings[{i}]");
            port_mapping(m, &at, network_mode, network_refused, p)
        })
        .collect();
    // Each container gets its own UTS namespace, so a hostname is fine in host mode.
    if let Some(hostname) = &raw.hostname {
        p.check(format!("{at}.hostname"), check_hostname(hostname));
    }
    let mut extra_hosts = Vec::new();
    for (i, entry) in raw
        .extra_hosts
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let host = entry.hostname.clone().unwrap_or_default();
        let ip = entry.ip_address.clone().unwrap_or_default();
        if host.is_empty() || host.chars().any(char::is_whitespace) {
            p.push(
                format!("{at}.extraHosts[{i}].hostname"),
                format!("must be a host name without spaces, got {host:?}"),
            );
        }
        p.check(format!("{at}.extraHosts[{i}].ipAddress"), check_ip(&ip));
        extra_hosts.push((host, ip));
    }
    let dns_servers = raw.dns_servers.clone().unwrap_or_default();
    for (i, ip) in dns_servers.iter().enumerate() {
        p.check(format!("{at}.dnsServers[{i}]"), check_ip(ip));
    }
    let dns_search_domains = raw.dns_search_domains.clone().unwrap_or_default();
    for (i, domain) in dns_search_domains.iter().enumerate() {
        p.check(
            format!("{at}.dnsSearchDomains[{i}]"),
            check_hostname(domain.trim_end_matches('.')),
        );
    }
    let links = if network_mode == NetworkMode::Bridge {
        links(raw, at, p)
    } else {
        Vec::new()
    };
    NetSettings {
        port_mappings,
        links,
        hostname: raw.hostname.clone(),
        extra_hosts,
        dns_servers,
        dns_search_domains,
    }
}

/// `links`: `name` or `name:alias` strings (the names are checked against the
/// task's containers by the task-level checks).
fn links(raw: &RawContainer, at: &str, p: &mut Problems) -> Vec<(String, String)> {
    let Some(v) = raw.links.as_ref().filter(|v| is_meaningful(v)) else {
        return Vec::new();
    };
    let Some(items) = v.as_array() else {
        p.push(
            format!("{at}.links"),
            "must be a list of \"name\" or \"name:alias\" strings",
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let text = item.as_str().unwrap_or_default();
        let (name, alias) = text.split_once(':').unwrap_or((text, text));
        if name.is_empty() || alias.is_empty() || check_hostname(alias).is_err() {
            p.push(
                format!("{at}.links[{i}]"),
                format!("must be \"name\" or \"name:alias\" with a host-name alias, got {item}"),
            );
            continue;
        }
        out.push((name.to_string(), alias.to_string()));
    }
    out
}

/// In host mode `hostPort` must be absent or equal `containerPort` (as in ECS) and
/// is filled in with it. When `networkMode` was refused (`network_refused`), the
/// host port is not checked: that refusal already covers it.
fn port_mapping(
    raw: &RawPortMapping,
    at: &str,
    network_mode: NetworkMode,
    network_refused: bool,
    p: &mut Problems,
) -> Option<PortMapping> {
    if raw.container_port_range.as_ref().is_some_and(is_meaningful) {
        p.push(
            format!("{at}.containerPortRange"),
            "is not supported: list each port in its own mapping",
        );
    }
    let protocol = raw.protocol.clone().unwrap_or_else(|| "tcp".to_string());
    if protocol != "tcp" && protocol != "udp" {
        p.push(
            format!("{at}.protocol"),
            format!("must be \"tcp\" or \"udp\", got {protocol:?}"),
        );
    }
    let port = |value: u32, field: &str, p: &mut Problems| match u16::try_from(value) {
        Ok(port) if port > 0 => Some(port),
        _ => {
            p.push(
                format!("{at}.{field}"),
                format!("must be between 1 and 65535, got {value}"),
            );
            None
        }
    };
    let Some(container_port) = raw.container_port else {
        p.push(format!("{at}.containerPort"), "is required");
        return None;
    };
    let container_port = port(container_port, "containerPort", p)?;
    let host_port = match raw.host_port {
        Some(_) if network_refused => None,
        Some(host) if network_mode == NetworkMode::Host && host != u32::from(container_port) => {
            p.push(
                format!("{at}.hostPort"),
                format!("must equal containerPort ({container_port}) with networkMode \"host\", got {host}"),
            );
            None
        }
        // Bridge: 0 asks for a dynamic port, as an absent hostPort does.
        Some(0) if network_mode == NetworkMode::Bridge => None,
        Some(host) => port(host, "hostPort", p),
        None if network_mode == NetworkMode::Host => Some(container_port),
        None => None,
    };
    Some(PortMapping {
        container_port,
        host_port,
        protocol,
    })
}
