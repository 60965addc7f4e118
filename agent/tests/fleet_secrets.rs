//! Secrets sent sealed through a real mosquitto: `skerry ctl secret put --device`
//! seals a value to one device's reported key; that device opens and stores it and
//! its waiting task starts; the broker's copy (read with mosquitto_sub as the
//! operator) holds no clear value; the other device cannot subscribe to it and never
//! holds it. Replays, a message sealed for another key, an untrusted signer, a bad
//! signature and garbage are each refused with an event, and change nothing.

mod common;

use std::io::Write as _;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::broker::OPERATOR;
use common::fleet::{device_events, Fleet, FLEET};
use common::{task_container, TestEnv};
use ring::signature::KeyPair as _;
use skerry_core::proto::sealed::{seal_secret, SealInput};
use skerry_core::proto::{Body, Envelope};

const VALUE: &str = "sealed-VALUE-b2c4e6a8";
const WAIT: Duration = Duration::from_secs(10);

fn ctl_put(f: &Fleet, device: &str, name: &str, value: &str, extra: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_skerry"))
        .arg("ctl")
        .arg("--config")
        .arg(&f.ctl_config)
        .args(["secret", "put", "--device", device, name])
        .args(extra)
        .env("SKERRY_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("skerry ctl secret put");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(value.as_bytes())
        .expect("value");
    child.wait_with_output().expect("ctl output")
}

fn wait_events(env: &TestEnv, what: &str, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = device_events(env);
        if text.contains(needle) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn ls(env: &TestEnv) -> String {
    let out = env.skerry(&["secret", "ls"]).output().expect("secret ls");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn holds(dir: &std::path::Path, needle: &[u8], skip: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            let Ok(m) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            if p == skip {
                continue;
            }
            if m.is_dir() {
                stack.push(p);
            } else if m.is_file()
                && std::fs::read(&p).is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle))
            {
                out.push(p.display().to_string());
            }
        }
    }
    out
}

#[test]
fn fleet_secrets_sealed_reach_only_their_device() {
    let f = Fleet::start(&[("gwsa", &[]), ("gwsb", &[])]);
    let env_a = f.device("gwsa", &[]);
    let env_b = f.device("gwsb", &[]);
    env_a.put_desired(
        "scfleet.json",
        r#"{"family": "scfleet", "containerDefinitions": [{"name": "main", "image": "busybox:latest", "memory": 32, "stopTimeout": 2,
        "command": ["sh", "-c", "test -n \"$API_KEY\" && echo key-len=${#API_KEY}; trap 'exit 0' TERM; while true; do sleep 0.2; done"],
        "secrets": [{"name": "API_KEY", "valueFrom": "api.key"}]}]}"#,
    );
    let _a = env_a.agent(&[]);
    let _b = env_b.agent(&[]);
    let key_a = f
        .wait_reported("gwsa", "a sealing key", 60, |r| r.sealing_key.is_some())
        .sealing_key;
    let key_b = f
        .wait_reported("gwsb", "a sealing key", 60, |r| r.sealing_key.is_some())
        .sealing_key;
    assert_ne!(key_a, key_b);
    wait_events(
        &env_a,
        "the task waiting",
        "secret \"api.key\": not in the device's secret store",
    );

    // The operator's view of the wire, and device B trying to read A's topic.
    let topic_a = f.broker.topic("gwsa", "secrets");
    let marker_topic = f.broker.topic("gwsb", "desired");
    let wire = f
        .broker
        .subscribe(OPERATOR, &topic_a)
        .expect("operator sub");
    let snoop = f
        .broker
        .subscribe_with("gwsb", &[&topic_a, &marker_topic], &[])
        .expect("gwsb sub");

    let out = ctl_put(&f, "gwsa", "api.key", VALUE, &[]);
    assert!(out.status.success(), "{out:?}");
    let sent = wire.next(WAIT).expect("the sealed message on the wire");
    assert!(
        !sent
            .payload
            .windows(VALUE.len())
            .any(|w| w == VALUE.as_bytes()),
        "the value travels in clear"
    );
    f.broker
        .publish(OPERATOR, &marker_topic, b"marker", false)
        .expect("marker");
    let seen = snoop.until(WAIT, |m| m.payload == b"marker");
    assert_eq!(seen.len(), 1, "gwsb received A's secret: {seen:?}");

    wait_events(&env_a, "the secret stored", "secret \"api.key\" version");
    env_a.wait_status("scfleet running", 60, |st| {
        task_container(st, "scfleet", "main")["state"] == "RUNNING"
    });
    let log = env_a.log("scfleet", "main");
    assert!(log.contains(&format!("key-len={}", VALUE.len())), "{log}");
    assert_eq!(ls(&env_a), "api.key\n");
    assert_eq!(ls(&env_b), "");

    // Refusals: each an event, none changes the store.
    let signer = {
        let pem = std::fs::read_to_string(&f.signing_key).expect("key");
        let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = base64_decode(&b64);
        ring::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der).expect("pkcs8")
    };
    assert!(!f.public_key.is_empty() && signer.public_key().as_ref().len() == 32);
    let sealed = |key: [u8; 32], version: u64, signer: &ring::signature::Ed25519KeyPair| {
        seal_secret(
            &SealInput {
                fleet: FLEET,
                device: "gwsa",
                name: "api.key",
                version,
                issued_at_ms: 0,
                device_key: key,
                value: b"rolled-back",
            },
            [3; 32],
            signer,
        )
        .expect("seal")
    };
    let stranger = ring::signature::Ed25519KeyPair::from_seed_unchecked(&[5; 32]).expect("key");
    let mut forged = sealed(key_a.expect("key a"), u64::MAX, &signer);
    let Ok(Envelope {
        body: Body::Secret(mut s),
        ..
    }) = Envelope::decode(&forged, usize::MAX)
    else {
        panic!("not a sealed secret");
    };
    s.signature[0] ^= 1;
    forged = Envelope::new("gwsa", 1, Body::Secret(s)).encode();
    for (what, payload, code) in [
        ("a replay", sent.payload.clone(), "not-newer"),
        (
            "sealed for B's key",
            sealed(key_b.expect("key b"), u64::MAX, &signer),
            "other-key",
        ),
        (
            "an untrusted signer",
            sealed(key_a.expect("key a"), u64::MAX, &stranger),
            "untrusted-key",
        ),
        ("a bad signature", forged, "bad-signature"),
        ("garbage", b"\x01\x00garbage".to_vec(), "malformed"),
    ] {
        f.broker
            .publish(OPERATOR, &topic_a, &payload, false)
            .expect("publish");
        wait_events(&env_a, what, &format!("secret rejected ({code})"));
    }
    let out = env_a.skerry(&["secret", "ls"]).output().expect("ls");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "api.key\n");
    // The stored value is still the first one (no refused message replaced it).
    let stored = std::fs::read(env_a.state().join("secrets/api.key")).expect("stored");
    assert!(stored.ends_with(VALUE.as_bytes()));

    // Not in clear anywhere on either device but A's store.
    let store = env_a.state().join("secrets");
    assert_eq!(
        holds(env_a.dir.path(), VALUE.as_bytes(), &store),
        Vec::<String>::new()
    );
    assert_eq!(
        holds(env_b.dir.path(), VALUE.as_bytes(), &store),
        Vec::<String>::new()
    );
    assert_eq!(
        holds(f.broker.dir(), VALUE.as_bytes(), &store),
        Vec::<String>::new()
    );
    assert!(!device_events(&env_a).contains(VALUE));
    let st = format!("{:?}", f.reported("gwsa"));
    assert!(!st.contains(VALUE));
}

fn base64_decode(s: &str) -> Vec<u8> {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let mut buf = 0u32;
    let mut bits = 0;
    for c in s.bytes().filter(|&c| c != b'=') {
        let v = A.iter().position(|&x| x == c).expect("base64") as u32;
        buf = (buf << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
        }
    }
    out
}
