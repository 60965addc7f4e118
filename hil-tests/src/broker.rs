//! The fleet's broker on the host: mosquitto on 127.0.0.1 (a free port) with mTLS and
//! the fleet's ACL, from the repo's own template (`broker/mosquitto.conf.in`), PKI
//! (`scripts/make-test-pki.sh`) and ACL (`scripts/make-fleet-acl.sh`). The board
//! reaches it at 10.0.2.2:PORT (QEMU user-net forwards that to the host's loopback),
//! which the test server certificate names in its SAN. Host-side reads use Debian's
//! `mosquitto_sub`. mosquitto is killed by pid when the [`Broker`] is dropped.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::{HilError, Result};

/// The operator identity (client certificate CN).
pub const OPERATOR: &str = "operator";
/// Where the board reaches the host's loopback.
pub const HOST_FROM_GUEST: &str = "10.0.2.2";

/// CA, certificate and key of one identity (PEM files).
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A running mosquitto and its files.
#[derive(Debug)]
pub struct Broker {
    dir: PathBuf,
    pki: PathBuf,
    fleet: String,
    port: u16,
    child: Option<Child>,
}

fn run_script(repo: &Path, script: &str, args: &[&str]) -> Result<Vec<u8>> {
    let path = repo.join("scripts").join(script);
    let out = Command::new("bash")
        .arg(&path)
        .args(args)
        .output()
        .map_err(|e| HilError::io("run", &path, e))?;
    if !out.status.success() {
        return Err(HilError::Failed(format!(
            "{script} {args:?} exited {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(out.stdout)
}

impl Broker {
    /// Makes (or reuses) the PKI in `pki` with certificates for `devices`, writes the
    /// ACL of `fleet` (the devices in no group), and starts mosquitto in `dir`.
    pub fn start(
        repo: &Path,
        pki: &Path,
        dir: &Path,
        fleet: &str,
        devices: &[&str],
    ) -> Result<Self> {
        let pki_arg = pki.display().to_string();
        let mut args = vec![pki_arg.as_str()];
        args.extend_from_slice(devices);
        run_script(repo, "make-test-pki.sh", &args)?;
        let mut acl_args = vec![fleet];
        acl_args.extend_from_slice(devices);
        let acl = run_script(repo, "make-fleet-acl.sh", &acl_args)?;
        fs::create_dir_all(dir.join("data")).map_err(|e| HilError::io("create", dir, e))?;
        fs::write(dir.join("acl"), acl).map_err(|e| HilError::io("write", dir.join("acl"), e))?;
        let template = repo.join("broker/mosquitto.conf.in");
        let template =
            fs::read_to_string(&template).map_err(|e| HilError::io("read", &template, e))?;
        let mut broker = Self {
            dir: dir.to_path_buf(),
            pki: pki.to_path_buf(),
            fleet: fleet.to_owned(),
            port: 0,
            child: None,
        };
        // A free port can be taken between the probe and mosquitto's bind: retry.
        for _ in 0..5 {
            let probe = std::net::TcpListener::bind("127.0.0.1:0")
                .map_err(|e| HilError::io("bind", "127.0.0.1:0", e))?;
            broker.port = probe
                .local_addr()
                .map_err(|e| HilError::io("local address of", "127.0.0.1:0", e))?
                .port();
            drop(probe);
            if broker.launch(&template)? {
                return Ok(broker);
            }
        }
        Err(HilError::Failed(format!(
            "mosquitto did not start on any of 5 free ports; log:\n{}",
            broker.log()
        )))
    }

    /// Writes the config and starts mosquitto; false when it exited (port taken).
    fn launch(&mut self, template: &str) -> Result<bool> {
        let d = &self.dir;
        let pki = |f: &str| self.pki.join(f).display().to_string();
        let conf = template
            .replace("@USER@", "root")
            .replace(
                "@PERSISTENCE_DIR@",
                &format!("{}/", d.join("data").display()),
            )
            .replace("@LOG_FILE@", &self.log_file().display().to_string())
            .replace("@PORT@", &self.port.to_string())
            .replace("@CAFILE@", &pki("ca.pem"))
            .replace("@CERTFILE@", &pki("server.pem"))
            .replace("@KEYFILE@", &pki("server.key"))
            .replace("@ACL_FILE@", &d.join("acl").display().to_string());
        let conf_file = d.join("mosquitto.conf");
        fs::write(&conf_file, conf).map_err(|e| HilError::io("write", &conf_file, e))?;
        let from = self.log().len();
        let mut child = Command::new("mosquitto")
            .arg("-c")
            .arg(&conf_file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| HilError::io("start (apt-get install mosquitto)", "mosquitto", e))?;
        let start = Instant::now();
        loop {
            if child.try_wait().ok().flatten().is_some() {
                return Ok(false);
            }
            if self
                .log()
                .get(from..)
                .is_some_and(|l| l.contains(" running"))
            {
                // For hil-tests/run's exit trap, should this process be killed.
                let _ = fs::write(d.join("mosquitto.pid"), format!("{}\n", child.id()));
                self.child = Some(child);
                return Ok(true);
            }
            if start.elapsed() > Duration::from_secs(10) {
                let _ = child.kill();
                let _ = child.wait();
                return Err(HilError::Timeout {
                    what: "mosquitto to report running".into(),
                    secs: 10.0,
                    detail: format!("; log:\n{}", self.log()),
                });
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The mosquitto pid while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The host's url: `mqtts://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("mqtts://127.0.0.1:{}", self.port)
    }

    /// The board's url: `mqtts://10.0.2.2:PORT`.
    pub fn guest_url(&self) -> String {
        format!("mqtts://{HOST_FROM_GUEST}:{}", self.port)
    }

    pub fn fleet(&self) -> &str {
        &self.fleet
    }

    /// `skerry/v1/<fleet>/<device>/<leaf>`.
    pub fn topic(&self, device: &str, leaf: &str) -> String {
        format!("skerry/v1/{}/{device}/{leaf}", self.fleet)
    }

    /// The files of `identity`: [`OPERATOR`] or a device id made at [`start`](Self::start).
    pub fn tls(&self, identity: &str) -> TlsFiles {
        let base = if identity == OPERATOR {
            self.pki.join(OPERATOR)
        } else {
            self.pki.join("devices").join(identity)
        };
        TlsFiles {
            ca: self.pki.join("ca.pem"),
            cert: base.with_extension("pem"),
            key: base.with_extension("key"),
        }
    }

    /// The retained message on `topic`, read as `identity` with `mosquitto_sub`
    /// (MQTT 5, QoS 1); None when there is none within `wait`.
    pub fn sub_retained(
        &self,
        identity: &str,
        topic: &str,
        wait: Duration,
    ) -> Result<Option<Vec<u8>>> {
        let tls = self.tls(identity);
        let out = Command::new("mosquitto_sub")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .arg("--cafile")
            .arg(&tls.ca)
            .arg("--cert")
            .arg(&tls.cert)
            .arg("--key")
            .arg(&tls.key)
            .args(["-V", "5", "-q", "1", "-t", topic, "-C", "1", "-F", "%x"])
            .args(["-W", &wait.as_secs().max(1).to_string()])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| HilError::io("run", "mosquitto_sub", e))?;
        let text = String::from_utf8_lossy(&out.stdout);
        let hex = text.trim();
        if hex.is_empty() {
            // -W ends it with status 27 when nothing came: no retained message.
            if out.status.code() == Some(27) {
                return Ok(None);
            }
            return Err(HilError::Failed(format!(
                "mosquitto_sub {topic} exited {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        decode_hex(hex).map(Some)
    }

    fn log_file(&self) -> PathBuf {
        self.dir.join("mosquitto.log")
    }

    /// The broker's log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_file()).unwrap_or_default()
    }
}

fn decode_hex(hex: &str) -> Result<Vec<u8>> {
    let bad = || HilError::Failed(format!("mosquitto_sub printed no hex payload: {hex:.80}"));
    if hex.len() % 2 != 0 {
        return Err(bad());
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2).ok_or_else(bad)?, 16).map_err(|_| bad()))
        .collect()
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            let _ = fs::remove_file(self.dir.join("mosquitto.pid"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::decode_hex;

    #[test]
    fn hex_payloads_decode_and_garbage_is_refused() {
        assert_eq!(decode_hex("00ff10").unwrap(), vec![0, 255, 16]);
        assert!(decode_hex("0").is_err());
        assert!(decode_hex("zz").is_err());
    }
}
