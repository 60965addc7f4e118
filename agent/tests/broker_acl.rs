//! The fleet broker's configuration and ACL, checked with mosquitto's own clients
//! (no skerry code involved): who may read and write which topic, the CA check, the
//! size cap, and retained messages across restarts with and without persistence.
//!
//! "Never arrives" is proven without waiting: after the message that must not arrive,
//! an allowed marker is published by the same client (or after its PUBACK), and the
//! subscriber collects up to that marker. mosquitto delivers to one subscriber in
//! order, so anything the broker let through would come before the marker.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::broker::{Broker, Message, Mqtt, INTRUDER, OPERATOR};

const FLEET: &str = "plant";
const WAIT: Duration = Duration::from_secs(10);

fn two_devices() -> Broker {
    Broker::start(
        FLEET,
        &[("dev-a", &["g1", "all"]), ("dev-b", &["g2", "all"])],
    )
}

fn topics(msgs: &[Message]) -> BTreeSet<String> {
    msgs.iter().map(|m| m.topic.clone()).collect()
}

fn set(items: &[String]) -> BTreeSet<String> {
    items.iter().cloned().collect()
}

/// Every retained message in the fleet, as the operator sees it now.
fn retained(b: &Broker) -> Vec<Message> {
    let sub = b
        .subscribe(OPERATOR, "skerry/v1/plant/#")
        .expect("operator subscribes");
    let marker = "skerry/v1/plant/ops/marker";
    b.publish(OPERATOR, marker, b"marker", false)
        .expect("marker");
    let mut got = sub.until(WAIT, |m| m.topic == marker);
    got.pop();
    assert!(got.iter().all(|m| m.retained), "{got:?}");
    got
}

#[test]
fn broker_acl_device_reads_only_its_own_and_its_groups_desired() {
    let b = two_devices();
    let readable = [
        b.topic("dev-a", "desired"),
        b.topic("dev-a", "secrets"),
        b.group_topic("g1", "desired"),
        b.group_topic("all", "desired"),
    ];
    let hidden = [
        b.topic("dev-a", "desired/previous"),
        b.topic("dev-b", "desired"),
        b.topic("dev-b", "secrets"),
        b.topic("dev-b", "reported"),
        b.group_topic("g2", "desired"),
        b.group_topic("g1", "desired/previous"),
    ];
    for t in readable.iter().chain(&hidden) {
        b.publish(OPERATOR, t, t.as_bytes(), true)
            .expect("operator publishes");
    }
    // They exist: the operator reads every one of them.
    for t in readable.iter().chain(&hidden) {
        assert_eq!(
            b.sub_retained(OPERATOR, t, WAIT).as_deref(),
            Some(t.as_bytes())
        );
    }
    // A wildcard subscription delivers the retained messages A may read, and no more.
    let marker = b.topic("dev-a", "desired");
    let sub = b
        .subscribe("dev-a", "skerry/v1/plant/#")
        .expect("subscribe");
    b.publish(OPERATOR, &marker, b"marker", false)
        .expect("marker");
    let got = sub.until(WAIT, |m| m.payload == b"marker");
    assert_eq!(topics(&got), set(&readable), "dev-a received {got:?}");
    for m in &got[..got.len() - 1] {
        assert!(m.retained && m.payload == m.topic.as_bytes(), "{m:?}");
    }
    // Exact-topic subscriptions (as the agent and AWS IoT Core use them) likewise.
    let mut exact: Vec<&str> = hidden.iter().map(String::as_str).collect();
    exact.push(&marker);
    let sub = b
        .subscribe_with("dev-a", &exact, &[])
        .expect("subscribe exact");
    b.publish(OPERATOR, &hidden[1], b"marker", false)
        .expect("marker");
    b.publish(OPERATOR, &marker, b"marker", false)
        .expect("marker");
    let got = sub.until(WAIT, |m| m.payload == b"marker");
    assert!(
        got.iter().all(|m| m.topic == marker),
        "dev-a received {got:?}"
    );
    // B reads its own group's desired and not A's group.
    let gb = b.group_topic("g2", "desired");
    assert_eq!(
        b.sub_retained("dev-b", &gb, WAIT).as_deref(),
        Some(gb.as_bytes())
    );
}

#[test]
fn broker_acl_device_cannot_publish_another_devices_reports() {
    let b = two_devices();
    let ops = b
        .subscribe(OPERATOR, "skerry/v1/plant/#")
        .expect("operator subscribes");
    let leaves = ["reported", "events", "status", "metrics", "logs/web/nginx"];
    for leaf in leaves {
        let t = b.topic("dev-b", leaf);
        let err = b
            .publish("dev-a", &t, b"forged", false)
            .expect_err("dev-a writes dev-b");
        assert!(err.contains("0x87"), "not authorized expected: {err}");
        // MQTT 3.1.1 cannot say no: the broker acknowledges and drops the message.
        b.publish_with("dev-a", &t, b"forged", true, Mqtt::V311)
            .expect("3.1.1 publish is acknowledged");
    }
    let own: Vec<String> = leaves.iter().map(|l| b.topic("dev-a", l)).collect();
    for t in &own {
        b.publish("dev-a", t, b"own", false)
            .expect("dev-a writes its own");
    }
    b.publish("dev-a", &own[1], b"marker", false)
        .expect("marker");
    let got = ops.until(WAIT, |m| m.payload == b"marker");
    assert_eq!(topics(&got), set(&own), "operator received {got:?}");
    assert_eq!(retained(&b), [], "the 3.1.1 forgeries were retained");
}

#[test]
fn broker_acl_only_the_operator_writes_desired() {
    let b = two_devices();
    let mine = b.topic("dev-a", "desired");
    b.publish(OPERATOR, &mine, b"from operator", true)
        .expect("operator writes desired");
    let forbidden = [
        mine.clone(),
        b.topic("dev-a", "desired/previous"),
        b.topic("dev-a", "secrets"),
        b.topic("dev-b", "desired"),
        b.group_topic("g1", "desired"),
    ];
    for t in &forbidden {
        let err = b
            .publish("dev-a", t, b"forged", true)
            .expect_err("device writes desired");
        assert!(err.contains("0x87"), "not authorized expected: {err}");
        b.publish_with("dev-a", t, b"forged", true, Mqtt::V311)
            .expect("3.1.1 publish is acknowledged");
    }
    assert_eq!(
        b.sub_retained("dev-a", &mine, WAIT).as_deref(),
        Some(&b"from operator"[..])
    );
    let kept = retained(&b);
    assert_eq!(topics(&kept), set(std::slice::from_ref(&mine)), "{kept:?}");
    assert_eq!(kept[0].payload, b"from operator");
    // The group document too, and a member reads it.
    let group = b.group_topic("all", "desired");
    b.publish(OPERATOR, &group, b"group doc", true)
        .expect("operator writes group");
    assert_eq!(
        b.sub_retained("dev-b", &group, WAIT).as_deref(),
        Some(&b"group doc"[..])
    );
}

#[test]
fn broker_refuses_an_identity_from_another_ca() {
    let b = two_devices();
    let t = b.topic("dev-a", "desired");
    let err = b
        .subscribe(INTRUDER, &t)
        .err()
        .expect("forged operator subscribes");
    assert!(err.contains("no SUBACK"), "{err}");
    let err = b
        .publish(INTRUDER, &t, b"forged", true)
        .expect_err("forged operator publishes");
    assert!(err.contains("no PUBACK"), "{err}");
    assert!(b.log().contains("certificate verify failed"), "{}", b.log());
    assert_eq!(retained(&b), []);
    // The real operator, with the same CN, gets in.
    b.publish(OPERATOR, &t, b"real", true)
        .expect("operator publishes");
}

#[test]
fn broker_refuses_a_packet_over_the_cap_and_takes_a_full_128_kib_payload() {
    let b = two_devices();
    let t = b.topic("dev-a", "reported");
    let ops = b.subscribe(OPERATOR, &t).expect("operator subscribes");
    let payload = |n: usize| (0..n).map(|i| (i % 251) as u8).collect::<Vec<u8>>();
    // 3.1.1: the client does not learn the broker's limit and sends it anyway.
    let err = b
        .publish_with("dev-a", &t, &payload(133 * 1024), false, Mqtt::V311)
        .expect_err("133 KiB payload");
    assert!(err.contains("no PUBACK"), "{err}");
    assert!(
        b.log().contains("disconnected due to oversize packet"),
        "{}",
        b.log()
    );
    let fits = payload(128 * 1024);
    b.publish_with("dev-a", &t, &fits, false, Mqtt::V311)
        .expect("120 KiB payload");
    let got = ops.next(WAIT).expect("the 120 KiB message");
    assert_eq!(got.payload, fits, "first message after the refused one");
}

#[test]
fn broker_retained_survives_restart_with_persistence_only() {
    let mut b = two_devices();
    let t = b.topic("dev-a", "desired");
    let doc: Vec<u8> = (0..=255u8).chain(*b"\n\0\r\n end").collect();
    b.publish(OPERATOR, &t, &doc, true).expect("publish");
    assert_eq!(b.sub_retained("dev-a", &t, WAIT), Some(doc.clone()));
    let port = b.port();

    b.restart(true);
    assert_eq!(b.port(), port);
    assert_eq!(
        b.sub_retained("dev-a", &t, WAIT),
        Some(doc),
        "kept persistence"
    );

    b.restart(false);
    assert_eq!(b.port(), port);
    let sub = b.subscribe("dev-a", &t).expect("subscribe after restart");
    b.publish(OPERATOR, &t, b"marker", false).expect("marker");
    let got = sub.until(WAIT, |m| m.payload == b"marker");
    assert_eq!(
        got.len(),
        1,
        "retained message after a wiped restart: {got:?}"
    );
}

#[test]
fn broker_acl_reload_admits_a_new_device() {
    let b = Broker::start(FLEET, &[("dev-a", &[])]);
    let t = b.topic("dev-c", "desired");
    b.publish(OPERATOR, &t, b"for c", true).expect("publish");
    // dev-c's certificate is valid, but the ACL has no block for it: it reads nothing,
    // so no marker can end the wait; a second of silence, then the same read passes.
    assert_eq!(b.sub_retained("dev-c", &t, Duration::from_secs(1)), None);
    let err = b.publish("dev-c", &b.topic("dev-c", "reported"), b"r", false);
    assert!(err.expect_err("unknown device writes").contains("0x87"));

    b.set_inventory(&[("dev-a", &[]), ("dev-c", &["g1"])]);
    assert_eq!(
        b.sub_retained("dev-c", &t, WAIT).as_deref(),
        Some(&b"for c"[..])
    );
    b.publish("dev-c", &b.topic("dev-c", "reported"), b"r", false)
        .expect("dev-c writes its reported");
}

#[test]
fn broker_keeps_an_offline_session_across_restart_with_persistence_only() {
    let mut b = two_devices();
    let events = b.topic("dev-a", "events");
    let session = ["-c", "-i", "ops-session"];
    let ops = b
        .subscribe_with(OPERATOR, &[&events], &session)
        .expect("subscribe");
    drop(ops); // killed: the persistent session stays on the broker
    for n in 0..3u8 {
        b.publish("dev-a", &events, &[n], false).expect("event");
    }
    b.restart(true);
    let ops = b
        .subscribe_with(OPERATOR, &[&events], &session)
        .expect("resubscribe");
    b.publish("dev-a", &events, b"marker", false)
        .expect("marker");
    let got = ops.until(WAIT, |m| m.payload == b"marker");
    let queued: Vec<Vec<u8>> = got.iter().map(|m| m.payload.clone()).collect();
    assert_eq!(queued, [vec![0], vec![1], vec![2], b"marker".to_vec()]);
    drop(ops);

    b.publish("dev-a", &events, b"lost", false).expect("event");
    b.restart(false);
    let ops = b
        .subscribe_with(OPERATOR, &[&events], &session)
        .expect("resubscribe");
    b.publish("dev-a", &events, b"marker", false)
        .expect("marker");
    let got = ops.until(WAIT, |m| m.payload == b"marker");
    assert_eq!(got.len(), 1, "a queue survived a wiped restart: {got:?}");
}

#[test]
fn broker_acl_drops_a_last_will_on_another_devices_status() {
    let b = two_devices();
    let ops = b
        .subscribe(OPERATOR, "skerry/v1/plant/+/status")
        .expect("operator subscribes");
    let will = |id: &str, topic: &str| {
        let args = ["-i", id, "--will-topic", topic, "--will-payload", "offline"];
        b.subscribe_with("dev-a", &[&b.topic("dev-a", "desired")], &args)
            .expect("dev-a connects with a will")
    };
    let forger = will("will-forger", &b.topic("dev-b", "status"));
    let own = will("will-own", &b.topic("dev-a", "status"));
    // Killed, so the broker sends the wills; the forger's is handled first, in the
    // broker's one thread, before it logs the disconnection.
    drop(forger);
    let deadline = std::time::Instant::now() + WAIT;
    while !b
        .log()
        .lines()
        .any(|l| l.contains("will-forger") && l.contains("connection"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no disconnect logged: {}",
            b.log()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(own);
    let got = ops.until(WAIT, |m| m.payload == b"offline");
    assert_eq!(topics(&got), set(&[b.topic("dev-a", "status")]), "{got:?}");
}
