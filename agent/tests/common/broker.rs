//! A real mosquitto broker for the fleet tests: mTLS on a loopback port, the fleet's
//! ACL, persistence in its own directory, started from `broker/mosquitto.conf.in`,
//! one temp dir per broker (config, ACL, persistence, log). `identity` makes the PKI
//! and ACL; `clients` runs Debian's `mosquitto_pub`/`mosquitto_sub` as a given
//! identity: `operator`, a device id, or [`INTRUDER`] (CN `operator`, signed by another
//! CA), with binary payloads intact. The broker's log is printed when a test panics
//! (or always with `SKERRY_BROKER_LOG=1`; `SKERRY_BROKER_DEBUG=1` adds `log_type all`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod clients;
mod identity;

// Not every test binary names them.
#[allow(unused_imports)]
pub use clients::Subscriber;
#[allow(unused_imports)]
pub use identity::TlsFiles;

/// The operator identity (client certificate CN).
pub const OPERATOR: &str = "operator";
/// A forged operator: CN `operator`, signed by the *other* CA. The broker refuses it.
pub const INTRUDER: &str = "intruder";

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
            pki: identity::pki(&devices),
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
