//! Debian's `mosquitto_pub` / `mosquitto_sub` run as one identity against a test
//! [`Broker`]. Both run with `-d` so the fixture sees the protocol: a publish is Ok
//! only when its PUBACK came back with a success reason code, a subscriber is ready
//! once its SUBACK came back. Messages are printed as `MSG <topic> <retain> <hex>`.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::{Broker, Message, Mqtt};

const MSG_FORMAT: &str = "MSG %t %r %x";

impl Broker {
    /// `mosquitto_pub`/`mosquitto_sub` connected as `identity`, with `-d`. Under
    /// `stdbuf -oL`: the clients flush stdout only after a message, so without it a
    /// SUBACK line would wait in the pipe until the first message.
    fn client(&self, program: &str, identity: &str, version: Mqtt) -> Command {
        let tls = self.tls(identity);
        let mut cmd = Command::new("stdbuf");
        cmd.args(["-oL", program])
            .args(["-h", "127.0.0.1", "-p", &self.port().to_string()])
            .arg("--cafile")
            .arg(&tls.ca)
            .arg("--cert")
            .arg(&tls.cert)
            .arg("--key")
            .arg(&tls.key)
            .args(["-V", if version == Mqtt::V5 { "5" } else { "311" }, "-d"]);
        cmd
    }

    /// Publishes `payload` (any bytes; empty clears a retained message) at QoS 1 over
    /// MQTT 5. Err names what went wrong: no connection, no PUBACK, a refusal code.
    pub fn publish(
        &self,
        identity: &str,
        topic: &str,
        payload: &[u8],
        retain: bool,
    ) -> Result<(), String> {
        self.publish_with(identity, topic, payload, retain, Mqtt::V5)
    }

    /// [`publish`](Self::publish) over the given MQTT version.
    pub fn publish_with(
        &self,
        identity: &str,
        topic: &str,
        payload: &[u8],
        retain: bool,
        version: Mqtt,
    ) -> Result<(), String> {
        let mut cmd = self.client("mosquitto_pub", identity, version);
        cmd.args(["-q", "1", "-t", topic]);
        if retain {
            cmd.arg("-r");
        }
        cmd.arg(if payload.is_empty() { "-n" } else { "-s" });
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn mosquitto_pub (apt-get install mosquitto-clients)");
        let mut stdin = child.stdin.take().expect("stdin");
        // A client the broker disconnects may stop reading: ignore a broken pipe.
        let _ = stdin.write_all(payload);
        drop(stdin);
        let out = child.wait_with_output().expect("mosquitto_pub");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let what = format!("publish as {identity} to {topic} ({} bytes)", payload.len());
        let Some(ack) = stdout.lines().find(|l| l.contains("received PUBACK")) else {
            return Err(format!(
                "{what}: no PUBACK ({}): {stderr}{stdout}",
                out.status
            ));
        };
        let rc: u8 = ack
            .rsplit_once("RC:")
            .and_then(|(_, rc)| rc.trim_end_matches(')').parse().ok())
            .expect("PUBACK reason code");
        if rc >= 0x80 {
            return Err(format!("{what}: PUBACK reason {rc:#04x}: {stderr}"));
        }
        Ok(())
    }

    /// The retained message on `topic` as `identity` sees it, waiting at most
    /// `timeout` (rounded up to whole seconds): None when nothing is delivered (no
    /// retained message, or the ACL hides it). Panics if the client cannot connect,
    /// so a refused identity never passes for "nothing retained".
    pub fn sub_retained(&self, identity: &str, topic: &str, timeout: Duration) -> Option<Vec<u8>> {
        self.try_sub_retained(identity, topic, timeout)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`sub_retained`](Self::sub_retained) with a connection failure as Err.
    pub fn try_sub_retained(
        &self,
        identity: &str,
        topic: &str,
        timeout: Duration,
    ) -> Result<Option<Vec<u8>>, String> {
        let secs = timeout.as_millis().div_ceil(1000).max(1).to_string();
        let out = self
            .client("mosquitto_sub", identity, Mqtt::V5)
            .args(["-q", "1", "-t", topic, "--retained-only", "-C", "1"])
            .args(["-W", &secs, "-F", MSG_FORMAT])
            .output()
            .expect("spawn mosquitto_sub (apt-get install mosquitto-clients)");
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !stdout.contains("received SUBACK") {
            return Err(format!(
                "subscribe as {identity} to {topic}: not subscribed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(stdout.lines().find_map(parse_msg).map(|m| m.payload))
    }

    /// A running subscriber to `topic` (wildcards allowed) as `identity`, once the
    /// broker acknowledged the subscription; Err when it cannot connect or subscribe.
    pub fn subscribe(&self, identity: &str, topic: &str) -> Result<Subscriber, String> {
        self.subscribe_with(identity, &[topic], &[])
    }

    /// [`subscribe`](Self::subscribe) to several topics with extra `mosquitto_sub`
    /// arguments (e.g. `["-c", "-i", "ops"]` for a persistent session).
    pub fn subscribe_with(
        &self,
        identity: &str,
        topics: &[&str],
        extra: &[&str],
    ) -> Result<Subscriber, String> {
        let mut cmd = self.client("mosquitto_sub", identity, Mqtt::V5);
        cmd.args(["-q", "1", "-F", MSG_FORMAT]).args(extra);
        for t in topics {
            cmd.args(["-t", t]);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn mosquitto_sub (apt-get install mosquitto-clients)");
        let stdout = child.stdout.take().expect("stdout");
        let (ready_tx, ready_rx) = mpsc::channel();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.contains("received SUBACK") {
                    let _ = ready_tx.send(());
                } else if let Some(m) = parse_msg(&line) {
                    if tx.send(m).is_err() {
                        return;
                    }
                }
            }
        });
        let what = format!("subscribe as {identity} to {topics:?}");
        match ready_rx.recv_timeout(Duration::from_secs(10)) {
            Ok(()) => Ok(Subscriber { child, rx }),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                Err(format!("{what}: no SUBACK: {err}"))
            }
        }
    }

    /// Up to `count` messages on `topic` as `identity` (retained ones included),
    /// whatever arrived within `timeout`. Panics if the client cannot subscribe.
    pub fn sub_collect(
        &self,
        identity: &str,
        topic: &str,
        count: usize,
        timeout: Duration,
    ) -> Vec<Message> {
        self.subscribe(identity, topic)
            .unwrap_or_else(|e| panic!("{e}"))
            .collect(count, timeout)
    }
}

/// `MSG <topic> <retain> <hex>` → a message (topics with spaces are not used).
fn parse_msg(line: &str) -> Option<Message> {
    let mut parts = line.strip_prefix("MSG ")?.splitn(3, ' ');
    let topic = parts.next()?.to_string();
    let retained = parts.next()? == "1";
    let payload = hex::decode(parts.next().unwrap_or("")).expect("hex payload");
    Some(Message {
        topic,
        payload,
        retained,
    })
}

/// A `mosquitto_sub` process; killed (by its pid) on drop.
pub struct Subscriber {
    child: Child,
    rx: mpsc::Receiver<Message>,
}

impl Subscriber {
    /// The next message, or None after `timeout` (or when the client ended).
    pub fn next(&self, timeout: Duration) -> Option<Message> {
        self.rx.recv_timeout(timeout).ok()
    }

    /// Messages until `count` arrived or `timeout` passed.
    pub fn collect(&self, count: usize, timeout: Duration) -> Vec<Message> {
        let deadline = Instant::now() + timeout;
        let mut got = Vec::new();
        while got.len() < count {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(m) => got.push(m),
                Err(_) => break,
            }
        }
        got
    }

    /// Every message up to and including the first that satisfies `pred`; panics
    /// with what arrived if none does within `timeout`. Publish a marker after the
    /// message that must not arrive, then wait for the marker: no sleeping needed.
    pub fn until(&self, timeout: Duration, pred: impl Fn(&Message) -> bool) -> Vec<Message> {
        let deadline = Instant::now() + timeout;
        let mut got = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(m) => {
                    let done = pred(&m);
                    got.push(m);
                    if done {
                        return got;
                    }
                }
                Err(_) => panic!("no matching message within {timeout:?}; got {got:?}"),
            }
        }
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
