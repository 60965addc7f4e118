//! Fleet-mode fixtures: a [`Broker`], an operator signing key made by `skerry ctl
//! keygen`, a ctl config, and agents configured as devices of the fleet.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use skerry_core::proto::reported::ReportedState;
use skerry_core::proto::{Body, Envelope};

use super::broker::{Broker, OPERATOR};
use super::TestEnv;

pub const FLEET: &str = "acme";

/// A broker plus the operator's files.
pub struct Fleet {
    pub broker: Broker,
    pub dir: tempfile::TempDir,
    pub signing_key: PathBuf,
    pub public_key: String,
    pub ctl_config: PathBuf,
}

impl Fleet {
    /// A broker whose ACL admits `inventory`, and an operator key.
    pub fn start(inventory: &[(&str, &[&str])]) -> Self {
        let broker = Broker::start(FLEET, inventory);
        let dir = tempfile::Builder::new()
            .prefix("skerry-op-")
            .tempdir()
            .expect("tempdir");
        let signing_key = dir.path().join("signing.key");
        let out = Command::new(env!("CARGO_BIN_EXE_skerry"))
            .args(["ctl", "keygen", "--out"])
            .arg(&signing_key)
            .output()
            .expect("skerry ctl keygen");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let public_key = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let tls = broker.tls(OPERATOR);
        let ctl_config = dir.path().join("ctl.toml");
        std::fs::write(
            &ctl_config,
            format!(
                "broker = \"{}\"\nca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\nfleet = \"{FLEET}\"\nsigning_key = \"{}\"\n",
                broker.url(),
                tls.ca.display(),
                tls.cert.display(),
                tls.key.display(),
                signing_key.display()
            ),
        )
        .expect("ctl.toml");
        Self {
            broker,
            dir,
            signing_key,
            public_key,
            ctl_config,
        }
    }

    /// The `[mqtt]` section for `device` in `groups` (plus extra keys).
    pub fn mqtt_section(&self, device: &str, groups: &[&str], extra: &str) -> String {
        let tls = self.broker.tls(device);
        let groups: Vec<String> = groups.iter().map(|g| format!("\"{g}\"")).collect();
        format!(
            "[mqtt]\nbroker = \"{}\"\nca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\nfleet = \"{FLEET}\"\ngroups = [{}]\ntrusted_keys = [\"{}\"]\nkeepalive_secs = 5\n{extra}\n",
            self.broker.url(),
            tls.ca.display(),
            tls.cert.display(),
            tls.key.display(),
            groups.join(", "),
            self.public_key
        )
    }

    /// A device environment (images imported) configured for this fleet.
    pub fn device(&self, device: &str, groups: &[&str]) -> TestEnv {
        TestEnv::with_config(&self.mqtt_section(device, groups, ""))
    }

    /// `skerry ctl --config <ctl.toml> ARGS`.
    pub fn ctl(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_skerry"))
            .arg("ctl")
            .arg("--config")
            .arg(&self.ctl_config)
            .args(args)
            .env("SKERRY_LOG", "warn")
            .output()
            .expect("skerry ctl")
    }

    /// Like [`ctl`](Self::ctl), panicking unless it succeeds; returns stdout.
    pub fn ctl_ok(&self, args: &[&str]) -> String {
        let out = self.ctl(args);
        assert!(
            out.status.success(),
            "skerry ctl {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The device's retained reported state, read with mosquitto_sub as the operator.
    pub fn reported(&self, device: &str) -> Option<ReportedState> {
        let topic = self.broker.topic(device, "reported");
        let bytes = self
            .broker
            .sub_retained(OPERATOR, &topic, Duration::from_secs(3))?;
        match Envelope::decode(&bytes, usize::MAX).ok()?.body {
            Body::Reported(r) => Some(r),
            _ => None,
        }
    }

    /// Polls the reported state (mosquitto_sub) until `pred` holds.
    pub fn wait_reported(
        &self,
        device: &str,
        what: &str,
        secs: u64,
        pred: impl Fn(&ReportedState) -> bool,
    ) -> ReportedState {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let r = self.reported(device);
            if let Some(r) = r.as_ref().filter(|r| pred(r)) {
                return r.clone();
            }
            if Instant::now() > deadline {
                self.broker.print_log();
                panic!("timed out waiting for {device}: {what}; last reported: {r:#?}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// A task's status in a reported state.
pub fn task_status<'a>(r: &'a ReportedState, id_prefix: &str) -> Vec<&'a str> {
    r.tasks
        .iter()
        .filter(|t| t.id.starts_with(id_prefix))
        .map(|t| t.status.as_str())
        .collect()
}

/// The agent's events (`skerry events`), as text.
pub fn device_events(env: &TestEnv) -> String {
    let out = env
        .skerry(&["events", "-n", "100000"])
        .output()
        .expect("skerry events");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A registry on loopback that accepts connections and never answers: a pull from it
/// hangs, as on a link that went dead mid-pull. Counts the connections it took.
pub struct SilentRegistry {
    pub port: u16,
    accepted: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl SilentRegistry {
    pub fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = accepted.clone();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for conn in listener.incoming().flatten() {
                held.push(conn);
                seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        });
        Self { port, accepted }
    }

    /// Connections taken so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(std::sync::atomic::Ordering::SeqCst)
    }
}
