//! The fleet's identities and ACL for a test [`Broker`]: the shared test PKI
//! (`scripts/make-test-pki.sh`, in the target's tmp dir, made once and extended with
//! the devices each broker needs) and the ACL from an inventory
//! (`scripts/make-fleet-acl.sh`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{Broker, INTRUDER, OPERATOR};

/// PEM files a client needs: the CA it trusts for the server, its certificate and key.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

pub(super) fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The shared PKI directory, with certificates for `devices` made if missing.
pub(super) fn pki(devices: &[&str]) -> PathBuf {
    static LOCK: Mutex<()> = Mutex::new(());
    let dir = option_env!("CARGO_TARGET_TMPDIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
        .join("skerry-test-pki");
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let out = Command::new("bash")
        .arg(repo().join("scripts/make-test-pki.sh"))
        .arg(&dir)
        .args(devices)
        .output()
        .expect("run make-test-pki.sh");
    assert!(
        out.status.success(),
        "make-test-pki.sh {devices:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

impl Broker {
    /// The fleet CA (what clients trust for the server).
    pub fn ca_file(&self) -> PathBuf {
        self.pki.join("ca.pem")
    }

    /// The other CA, which signed [`INTRUDER`]'s certificate.
    pub fn other_ca_file(&self) -> PathBuf {
        self.pki.join("other-ca/ca.pem")
    }

    /// CA, certificate and key of `identity` (`operator`, [`INTRUDER`] or a device
    /// id; a device's certificate is made if missing, even when the ACL omits it).
    pub fn tls(&self, identity: &str) -> TlsFiles {
        let base = match identity {
            OPERATOR => self.pki.join("operator"),
            INTRUDER => self.pki.join("other-ca/intruder"),
            id => {
                let base = self.pki.join("devices").join(id);
                if !base.with_extension("key").exists() {
                    pki(&[id]);
                }
                base
            }
        };
        TlsFiles {
            ca: self.ca_file(),
            cert: base.with_extension("pem"),
            key: base.with_extension("key"),
        }
    }

    /// Rewrites the ACL for a new inventory and makes mosquitto reload it (SIGHUP);
    /// returns once it logged the reload (connections after that see the new ACL;
    /// mosquitto reloads in its one thread, right after that line).
    pub fn set_inventory(&self, inventory: &[(&str, &[&str])]) {
        const RELOAD: &str = "Reloading config.";
        let devices: Vec<&str> = inventory.iter().map(|(d, _)| *d).collect();
        pki(&devices);
        self.write_acl(inventory);
        let before = self.log().matches(RELOAD).count();
        self.signal(nix::sys::signal::Signal::SIGHUP);
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.log().matches(RELOAD).count() == before {
            assert!(
                Instant::now() < deadline,
                "mosquitto did not reload its ACL"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub(super) fn write_acl(&self, inventory: &[(&str, &[&str])]) {
        let entries: Vec<String> = inventory
            .iter()
            .map(|(d, g)| format!("{d}:{}", g.join(",")))
            .collect();
        let out = Command::new("bash")
            .arg(repo().join("scripts/make-fleet-acl.sh"))
            .arg(&self.fleet)
            .args(&entries)
            .output()
            .expect("run make-fleet-acl.sh");
        assert!(
            out.status.success(),
            "make-fleet-acl.sh: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::write(self.dir.path().join("acl"), &out.stdout).expect("write acl");
    }
}
