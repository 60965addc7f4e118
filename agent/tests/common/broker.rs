//! A real mosquitto broker for the fleet tests: mTLS on a loopback port, the fleet's
//! ACL, persistence in its own directory, started from `broker/mosquitto.conf.in`.
//! The test PKI (`scripts/make-test-pki.sh`) lives in the target's tmp dir and is
//! made once and extended with the devices each broker needs; each broker has its own
//! temp dir (config, ACL, persistence, log). Helpers run Debian's `mosquitto_pub` and
//! `mosquitto_sub` as a given identity: `operator`, a device id, or [`INTRUDER`]
//! (CN `operator`, signed by another CA). Payloads cross as hex (`-F %x`) or stdin (`-s`), so binary
//! bytes come back intact. The broker's log is printed when a test panics (or always
//! with `SKERRY_BROKER_LOG=1`; `SKERRY_BROKER_DEBUG=1` adds `log_type all`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The operator identity (client certificate CN).
pub const OPERATOR: &str = "operator";
/// A forged operator: CN `operator`, signed by the *other* CA. The broker refuses it.
pub const INTRUDER: &str = "intruder";

/// PEM files a client needs: the CA it trusts for the server, its certificate and key.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// One message a subscriber received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub topic: String,
    pub payload: Vec<u8>,
    pub retained: bool,
}

/// MQTT protocol version a helper client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mqtt {
    /// MQTT 5: a refused QoS 1 publish comes back as a PUBACK reason code (an error).
    V5,
    /// MQTT 3.1.1: a refused publish is acknowledged and dropped; the client does not
    /// know the broker's packet size limit, so it sends oversized packets.
    V311,
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The shared PKI directory, with certificates for `devices` made if missing.
fn pki(devices: &[&str]) -> PathBuf {
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

/// A mosquitto process and its files. Killed (SIGKILL by pid) on drop.
pub struct Broker {
    dir: tempfile::TempDir,
    pki: PathBuf,
    fleet: String,
    port: u16,
    child: Option<Child>,
}

impl Broker {
    /// Starts a broker for `fleet` whose ACL lets each `(device, groups)` of the
    /// inventory (and the operator) in; waits until it accepts TLS connections.
    pub fn start(fleet: &str, inventory: &[(&str, &[&str])]) -> Broker {
        let dir = tempfile::Builder::new()
            .prefix("skerry-broker-")
            .tempdir()
            .expect("broker tempdir");
        let devices: Vec<&str> = inventory.iter().map(|(d, _)| *d).collect();
        let mut broker = Broker {
            dir,
            pki: pki(&devices),
            fleet: fleet.to_string(),
            port: 0,
            child: None,
        };
        broker.write_acl(inventory);
        std::fs::create_dir_all(broker.data_dir()).expect("persistence dir");
        for _ in 0..5 {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
            broker.port = listener.local_addr().expect("port").port();
            drop(listener);
            if broker.launch() {
                return broker;
            }
        }
        broker.print_log();
        panic!("mosquitto did not start on any of 5 free ports");
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `mqtts://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("mqtts://127.0.0.1:{}", self.port)
    }

    pub fn fleet(&self) -> &str {
        &self.fleet
    }

    /// `skerry/v1/<fleet>/<device>/<leaf>`, e.g. `topic("dev1", "desired")`.
    pub fn topic(&self, device: &str, leaf: &str) -> String {
        format!("skerry/v1/{}/{device}/{leaf}", self.fleet)
    }

    /// `skerry/v1/<fleet>/groups/<group>/<leaf>`.
    pub fn group_topic(&self, group: &str, leaf: &str) -> String {
        format!("skerry/v1/{}/groups/{group}/{leaf}", self.fleet)
    }

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

    /// Rewrites the ACL for a new inventory and makes mosquitto reload it (SIGHUP).
    pub fn set_inventory(&self, inventory: &[(&str, &[&str])]) {
        let devices: Vec<&str> = inventory.iter().map(|(d, _)| *d).collect();
        pki(&devices);
        self.write_acl(inventory);
        self.signal(nix::sys::signal::Signal::SIGHUP);
    }

    /// The mosquitto pid while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGTERM and wait: mosquitto saves its persistence and exits.
    pub fn stop(&mut self) {
        self.end(nix::sys::signal::Signal::SIGTERM);
    }

    /// SIGKILL and wait: no final save (what autosave wrote survives).
    pub fn kill(&mut self) {
        self.end(nix::sys::signal::Signal::SIGKILL);
    }

    /// Starts the stopped broker again on the same port with the same files.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "broker still running");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.launch() {
            if Instant::now() > deadline {
                self.print_log();
                panic!("mosquitto did not start again on port {}", self.port);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stop, then start on the same port; without `keep_persistence` its database
    /// is deleted first: retained messages and sessions are gone.
    pub fn restart(&mut self, keep_persistence: bool) {
        self.stop();
        if !keep_persistence {
            std::fs::remove_dir_all(self.data_dir()).expect("delete persistence");
            std::fs::create_dir_all(self.data_dir()).expect("persistence dir");
        }
        self.start_again();
    }

    /// The broker's log so far (all runs).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_file()).unwrap_or_default()
    }

    pub fn print_log(&self) {
        eprintln!(
            "---- mosquitto log ({}) ----\n{}---- end ----",
            self.log_file().display(),
            self.log()
        );
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log_file(&self) -> PathBuf {
        self.dir.path().join("mosquitto.log")
    }

    fn write_acl(&self, inventory: &[(&str, &[&str])]) {
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

    /// Writes the config and starts mosquitto; true once it runs, false when it
    /// exited (port taken).
    fn launch(&mut self) -> bool {
        let d = self.dir.path();
        let mut conf = include_str!("../../../broker/mosquitto.conf.in")
            .replace("@USER@", "root")
            .replace(
                "@PERSISTENCE_DIR@",
                &format!("{}/", self.data_dir().display()),
            )
            .replace("@LOG_FILE@", &self.log_file().display().to_string())
            .replace("@PORT@", &self.port.to_string())
            .replace("@CAFILE@", &self.ca_file().display().to_string())
            .replace(
                "@CERTFILE@",
                &self.pki.join("server.pem").display().to_string(),
            )
            .replace(
                "@KEYFILE@",
                &self.pki.join("server.key").display().to_string(),
            )
            .replace("@ACL_FILE@", &d.join("acl").display().to_string());
        if std::env::var_os("SKERRY_BROKER_DEBUG").is_some() {
            conf.push_str("log_type all\n");
        }
        std::fs::write(d.join("mosquitto.conf"), conf).expect("write mosquitto.conf");
        let from = self.log().len();
        let mut child = Command::new("mosquitto")
            .arg("-c")
            .arg(d.join("mosquitto.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn mosquitto (apt-get install mosquitto)");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.log();
            if child.try_wait().expect("mosquitto wait").is_some() {
                return false;
            }
            if log.get(from..).is_some_and(|l| l.contains(" running")) {
                self.child = Some(child);
                return true;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                self.print_log();
                panic!("mosquitto did not report running within 10 s");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn signal(&self, sig: nix::sys::signal::Signal) {
        if let Some(pid) = self.pid() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig);
        }
    }

    fn end(&mut self, sig: nix::sys::signal::Signal) {
        self.signal(sig);
        let Some(mut child) = self.child.take() else {
            return;
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while child.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if std::thread::panicking() || std::env::var_os("SKERRY_BROKER_LOG").is_some() {
            self.print_log();
        }
        self.kill();
    }
}

mod clients;
#[allow(unused_imports)] // not every test binary names it
pub use clients::Subscriber;
