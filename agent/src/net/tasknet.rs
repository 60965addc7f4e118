//! A bridged task's network record, `<task dir>/network.json` (written atomically):
//! per container its address, host veth, namespace file and published ports
//! (ECS `networkBindings`). It is what re-adoption and a post-reboot rebuild work
//! from, and what `skerry ps` and `status.json` show.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::NetError;
use crate::store::atomic::write_atomic;

/// The record's file name in the task directory.
pub const NETWORK_FILE: &str = "network.json";

/// One published port, as ECS reports it in `networkBindings`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    /// `tcp` or `udp`.
    pub protocol: String,
    /// `0.0.0.0`: every address of the host, 127.0.0.1 included.
    pub host_ip: Ipv4Addr,
    pub host_port: u16,
    pub container_port: u16,
}

impl Binding {
    /// `0.0.0.0:32768->80/tcp`, as `docker ps` shows it.
    pub fn display(&self) -> String {
        format!(
            "{}:{}->{}/{}",
            self.host_ip, self.host_port, self.container_port, self.protocol
        )
    }

    /// The IP protocol number.
    pub fn proto_number(&self) -> u8 {
        if self.protocol == "udp" {
            17
        } else {
            6
        }
    }

    /// The claim key of the host port.
    pub fn claim_key(&self) -> String {
        format!("{}-{}", self.protocol, self.host_port)
    }
}

/// One container's place on the bridge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerNet {
    pub name: String,
    pub address: Ipv4Addr,
    pub host_veth: String,
    pub netns: PathBuf,
    pub bindings: Vec<Binding>,
}

/// A bridged task's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskNet {
    /// The bridge the task hangs off.
    pub bridge: String,
    pub containers: Vec<ContainerNet>,
}

impl TaskNet {
    pub fn container(&self, name: &str) -> Option<&ContainerNet> {
        self.containers.iter().find(|c| c.name == name)
    }

    /// Loads the record of the task in `task_dir` (`None`: not bridged).
    pub fn load(task_dir: &Path) -> Result<Option<Self>, NetError> {
        let path = task_dir.join(NETWORK_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| NetError::Record(path, e.to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(NetError::io(&path, e)),
        }
    }

    /// Writes the record atomically.
    pub fn save(&self, task_dir: &Path) -> Result<(), NetError> {
        std::fs::create_dir_all(task_dir).map_err(|e| NetError::io(task_dir, e))?;
        let path = task_dir.join(NETWORK_FILE);
        let bytes = serde_json::to_vec_pretty(self)
            .map_err(|e| NetError::Record(path.clone(), e.to_string()))?;
        write_atomic(&path, &bytes).map_err(|e| NetError::io(&path, e))
    }
}

/// The host end of a container's veth: `vsk` + 8 hex digits of a hash of the state
/// directory, task and container (15 bytes at most, stable across restarts).
pub fn veth_name(state_dir: &Path, task: &str, container: &str) -> String {
    // FNV-1a, 32 bits: stable across builds, unlike std's hasher.
    let mut h: u32 = 0x811c_9dc5;
    let key = format!("{}\0{task}\0{container}", state_dir.display());
    for b in key.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    format!("vsk{h:08x}")
}

/// Whether `port`/`protocol` can be bound on every host address right now.
pub fn bindable(protocol: &str, port: u16) -> bool {
    let addr = (Ipv4Addr::UNSPECIFIED, port);
    if protocol == "udp" {
        std::net::UdpSocket::bind(addr).is_ok()
    } else {
        std::net::TcpListener::bind(addr).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn net_veth_names_are_short_stable_and_distinct() {
        let a = veth_name(Path::new("/var/lib/skerry"), "t1", "web");
        assert_eq!(a, veth_name(Path::new("/var/lib/skerry"), "t1", "web"));
        assert!(a.len() <= 15 && a.starts_with("vsk"), "{a}");
        assert_ne!(a, veth_name(Path::new("/var/lib/skerry"), "t1", "db"));
        assert_ne!(a, veth_name(Path::new("/tmp/other"), "t1", "web"));
    }

    #[test]
    fn net_task_record_round_trips_and_shows_bindings_like_docker() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(TaskNet::load(dir.path()).expect("load"), None);
        let b = Binding {
            protocol: "udp".into(),
            host_ip: Ipv4Addr::UNSPECIFIED,
            host_port: 32768,
            container_port: 53,
        };
        assert_eq!(b.display(), "0.0.0.0:32768->53/udp");
        let t = TaskNet {
            bridge: "skerry0".into(),
            containers: vec![ContainerNet {
                name: "dns".into(),
                address: Ipv4Addr::new(10, 203, 0, 2),
                host_veth: "vsk00000000".into(),
                netns: "/run/skerry/netns/t.dns".into(),
                bindings: vec![b],
            }],
        };
        t.save(dir.path()).expect("save");
        assert_eq!(TaskNet::load(dir.path()).expect("load"), Some(t));
    }
}
