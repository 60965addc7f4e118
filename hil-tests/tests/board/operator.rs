//! The operator's side of the fleet, on the host: the broker (mosquitto on loopback,
//! [`skerry_hil::broker`]), a signing key from `skerry ctl keygen`, `ctl.toml`, `skerry
//! ctl` runs, the board's `[mqtt]` config and files, the device's retained reported
//! state read with `mosquitto_sub` and decoded with skerry-core's [`Envelope`], and a
//! `skerry ctl events -f --output json` follower for the drain count (step d).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use skerry_core::proto::reported::ReportedState;
use skerry_core::proto::{Body, Envelope, Presence};
use skerry_hil::broker::{Broker, OPERATOR};
use skerry_hil::{HilError, Result, Shell};

use crate::guest::CMD;

pub const FLEET: &str = "hil";
pub const DEVICE: &str = "board1";
/// Where the board keeps its config and certificates (on the state disk; `/init`
/// links /etc/skerry/agent.toml there).
pub const GUEST_ETC: &str = "/var/lib/skerry/hil-etc";

/// The broker plus the operator's files.
pub struct Operator {
    pub broker: Broker,
    pub dir: PathBuf,
    pub ctl_config: PathBuf,
    pub public_key: String,
    bin: PathBuf,
}

/// The host skerry binary (it has `skerry ctl`).
pub fn host_skerry() -> Option<PathBuf> {
    std::env::var_os("SKERRY_HIL_HOST_SKERRY").map(PathBuf::from)
}

impl Operator {
    /// Starts the broker in `work_dir/broker` (PKI kept in `pki`), makes a signing key
    /// and `ctl.toml`.
    pub fn start(bin: &Path, work_dir: &Path, pki: &Path) -> Result<Self> {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let broker = Broker::start(&repo, pki, &work_dir.join("broker"), FLEET, &[DEVICE])?;
        let dir = work_dir.join("operator");
        std::fs::create_dir_all(&dir)
            .map_err(|e| HilError::Failed(format!("create {}: {e}", dir.display())))?;
        let key = dir.join("signing.key");
        let _ = std::fs::remove_file(&key);
        let out = run(
            Command::new(bin).args(["ctl", "keygen", "--out"]).arg(&key),
            "skerry ctl keygen",
        )?;
        let tls = broker.tls(OPERATOR);
        let ctl_config = dir.join("ctl.toml");
        let text = format!(
            "broker = \"{}\"\nca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\nfleet = \"{FLEET}\"\nsigning_key = \"{}\"\n",
            broker.url(),
            tls.ca.display(),
            tls.cert.display(),
            tls.key.display(),
            key.display()
        );
        std::fs::write(&ctl_config, text)
            .map_err(|e| HilError::Failed(format!("write {}: {e}", ctl_config.display())))?;
        println!(
            "broker: mosquitto pid {:?} on {} (board: {})",
            broker.pid(),
            broker.url(),
            broker.guest_url()
        );
        Ok(Self {
            broker,
            dir,
            ctl_config,
            public_key: out.trim().to_owned(),
            bin: bin.to_path_buf(),
        })
    }

    fn ctl_cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("ctl")
            .arg("--config")
            .arg(&self.ctl_config)
            .args(args);
        cmd.env("SKERRY_LOG", "warn");
        cmd
    }

    /// `skerry ctl --config ctl.toml ARGS`, required to succeed; returns stdout.
    pub fn ctl(&self, args: &[&str]) -> Result<String> {
        run(
            &mut self.ctl_cmd(args),
            &format!("skerry ctl {}", args.join(" ")),
        )
    }

    /// Writes the device's CA, certificate, key and agent config (with `[mqtt]`) to
    /// the board's state disk.
    pub fn provision(&self, shell: &mut Shell) -> Result<()> {
        let tls = self.broker.tls(DEVICE);
        for (name, path) in [
            ("ca.pem", &tls.ca),
            ("device.pem", &tls.cert),
            ("device.key", &tls.key),
        ] {
            let text = std::fs::read_to_string(path)
                .map_err(|e| HilError::Failed(format!("read {}: {e}", path.display())))?;
            shell.write_file(&format!("{GUEST_ETC}/{name}"), text.trim_end())?;
        }
        shell.ok(&format!("chmod 600 {GUEST_ETC}/device.key"), CMD)?;
        let toml = format!(
            "[mqtt]\nbroker = \"{}\"\nca = \"{GUEST_ETC}/ca.pem\"\ncert = \"{GUEST_ETC}/device.pem\"\nkey = \"{GUEST_ETC}/device.key\"\nfleet = \"{FLEET}\"\ntrusted_keys = [\"{}\"]\nkeepalive_secs = 5\n",
            self.broker.guest_url(),
            self.public_key
        );
        shell.write_file(&format!("{GUEST_ETC}/agent.toml"), &toml)
    }

    /// A retained message of the device, decoded; None when there is none.
    fn retained(&self, leaf: &str) -> Result<Option<Body>> {
        let topic = self.broker.topic(DEVICE, leaf);
        let Some(bytes) = self
            .broker
            .sub_retained(OPERATOR, &topic, Duration::from_secs(2))?
        else {
            return Ok(None);
        };
        let env = Envelope::decode(&bytes, usize::MAX)
            .map_err(|e| HilError::Failed(format!("{topic}: {e}")))?;
        Ok(Some(env.body))
    }

    /// The device's retained `reported` state (mosquitto_sub, Envelope).
    pub fn reported(&self) -> Result<Option<ReportedState>> {
        Ok(match self.retained("reported")? {
            Some(Body::Reported(r)) => Some(r),
            _ => None,
        })
    }

    /// Whether the device's retained `status` says online.
    pub fn online(&self) -> Result<bool> {
        Ok(matches!(
            self.retained("status")?,
            Some(Body::Status(Presence::Online { .. }))
        ))
    }

    /// Starts `skerry ctl events --device D -f --output json`; returns once the broker
    /// logged its subscription.
    pub fn follow_events(&self) -> Result<Follower> {
        let sub_line = format!(" {}", self.broker.topic(DEVICE, "events"));
        let before = self.broker.log().matches(&sub_line).count();
        let mut child = self
            .ctl_cmd(&["events", "--device", DEVICE, "-f", "--output", "json"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| HilError::Failed(format!("start skerry ctl events -f: {e}")))?;
        let (tx, rx) = mpsc::channel();
        if let Some(out) = child.stdout.take() {
            thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(std::io::Result::ok) {
                    if tx.send((Instant::now(), line)).is_err() {
                        return;
                    }
                }
            });
        }
        let follower = Follower { child, rx };
        let start = Instant::now();
        while self.broker.log().matches(&sub_line).count() == before {
            if start.elapsed() > Duration::from_secs(20) {
                return Err(HilError::Failed(format!(
                    "skerry ctl events -f did not subscribe within 20 s; broker log:\n{}",
                    self.broker.log()
                )));
            }
            thread::sleep(Duration::from_millis(50));
        }
        Ok(follower)
    }
}

/// One event as `ctl events --output json` prints it.
#[derive(Debug, Clone)]
pub struct HostEvent {
    pub seq: u64,
    /// `<time> <text>`: the same line the device's `skerry events` prints.
    pub line: String,
    pub at: Instant,
}

/// A running `skerry ctl events -f`; killed by pid on drop.
pub struct Follower {
    child: Child,
    rx: mpsc::Receiver<(Instant, String)>,
}

impl Follower {
    /// The events that arrived within `wait`.
    pub fn take(&mut self, wait: Duration) -> Result<Vec<HostEvent>> {
        let mut got = Vec::new();
        let Ok(first) = self.rx.recv_timeout(wait) else {
            return Ok(got);
        };
        for (at, line) in std::iter::once(first).chain(self.rx.try_iter()) {
            let v: serde_json::Value = serde_json::from_str(&line)
                .map_err(|e| HilError::Failed(format!("ctl events line {line:?}: {e}")))?;
            let seq = v["seq"]
                .as_u64()
                .ok_or_else(|| HilError::Failed(format!("no seq in {line}")))?;
            let s = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
            got.push(HostEvent {
                seq,
                line: format!("{} {}", s("time"), s("text")),
                at,
            });
        }
        Ok(got)
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run(cmd: &mut Command, what: &str) -> Result<String> {
    let out = cmd
        .output()
        .map_err(|e| HilError::Failed(format!("{what}: {e}")))?;
    if !out.status.success() {
        return Err(HilError::Failed(format!(
            "{what} exited {}:\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
