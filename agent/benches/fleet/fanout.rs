//! The fan-out simulation of the fleet bench: `n` device sessions in this process,
//! each a real MQTT 5 session over mTLS with its own certificate, running the real
//! document check (`check_document`) and spec validation of every entry, then
//! publishing its reported state retained. The container runtime is replaced by a
//! recording stub (the accepted version is recorded, nothing is started). This code is
//! the bench's own; the agent has no simulated mode.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rumqttc::v5::mqttbytes::v5::Packet;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use rumqttc::{TlsConfiguration, Transport};
use skerry_core::proto::reported::{ApplyState, DocumentState, ReportedState};
use skerry_core::proto::topics::Scope;
use skerry_core::proto::{check_document, Body, DeploymentDoc, Envelope, Expect, Target, Topics};
use skerry_core::spec::{parse_task_definition, ParseOptions};
use tokio::sync::mpsc;

use super::common::broker::OPERATOR;
use super::common::fleet::{Fleet, FLEET};

fn raise_nofile() {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit write/read the struct we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 {
            r.rlim_cur = r.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        }
    }
}

fn options(id: &str, port: u16, tls: Arc<rustls::ClientConfig>) -> MqttOptions {
    let mut o = MqttOptions::new(id, "127.0.0.1", port);
    o.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(tls)));
    o.set_keep_alive(Duration::from_secs(60));
    o.set_max_packet_size(Some(256 * 1024));
    // rumqttc's in-flight table is allocated up front: 13.5 MiB per session at its
    // default bound, which would make the simulation measure the allocator.
    o.set_outgoing_inflight_upper_limit(16);
    o
}

fn tls(f: &Fleet, identity: &str) -> Arc<rustls::ClientConfig> {
    let t = f.broker.tls(identity);
    skerry::sync::tls::client_config(
        &t.ca,
        &t.cert,
        &t.key,
        skerry::sync::timefloor::TimeFloor::load(None),
    )
    .expect("tls")
}

/// One simulated device: the real check, a recording stub instead of containers.
async fn device(
    id: String,
    port: u16,
    tls: Arc<rustls::ClientConfig>,
    trusted: [u8; 32],
    ready: mpsc::UnboundedSender<()>,
) {
    let topics = Topics::new(FLEET).expect("topics");
    let (client, mut ev) = AsyncClient::new(options(&id, port, tls), 16);
    let scope = Scope::Group("sim".into());
    let groups = vec!["sim".to_string()];
    let mut applied: Option<u64> = None;
    loop {
        let Ok(e) = ev.poll().await else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        match e {
            Event::Incoming(Packet::ConnAck(_)) => {
                let _ = client
                    .subscribe(topics.desired(&scope), QoS::AtLeastOnce)
                    .await;
            }
            Event::Incoming(Packet::SubAck(_)) => {
                let _ = ready.send(());
            }
            Event::Incoming(Packet::Publish(p)) => {
                let keys = [trusted];
                let checked = check_document(
                    &p.payload,
                    &Expect {
                        fleet: FLEET,
                        device: &id,
                        groups: &groups,
                        trusted: &keys,
                        max_bytes: skerry_core::proto::MAX_PAYLOAD,
                        scope: &scope,
                        have: None,
                    },
                );
                let Ok(acc) = checked else { continue };
                let valid = acc
                    .doc
                    .tasks
                    .iter()
                    .all(|e| parse_task_definition(&e.json, &ParseOptions::default()).is_ok());
                if !valid || applied == Some(acc.doc.version) {
                    continue;
                }
                applied = Some(acc.doc.version); // the recording stub: nothing runs
                let r = ReportedState {
                    agent_version: "sim".into(),
                    documents: vec![DocumentState {
                        target: acc.doc.target.clone(),
                        version: acc.doc.version,
                        state: ApplyState::Applied,
                    }],
                    ..ReportedState::default()
                };
                let env = Envelope::new(&id, acc.doc.version, Body::Reported(r));
                let _ = client
                    .publish(topics.reported(&id), QoS::AtLeastOnce, true, env.encode())
                    .await;
            }
            _ => {}
        }
    }
}

pub fn run(n: usize) {
    raise_nofile();
    let names: Vec<String> = (0..n).map(|i| format!("sim{i:04}")).collect();
    let groups: &[&str] = &["sim"];
    let inventory: Vec<(&str, &[&str])> = names.iter().map(|d| (d.as_str(), groups)).collect();
    let made = Instant::now();
    let f = Fleet::start(&inventory);
    let setup = made.elapsed();
    let key = ring::signature::Ed25519KeyPair::from_seed_unchecked(&[5; 32]).expect("key");
    let mut trusted = [0u8; 32];
    trusted.copy_from_slice(ring::signature::KeyPair::public_key(&key).as_ref());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let (ready_tx, mut ready_rx) = mpsc::unbounded_channel();
        let port = f.broker.port();
        for id in &names {
            tokio::spawn(device(id.clone(), port, tls(&f, id), trusted, ready_tx.clone()));
        }
        let connecting = Instant::now();
        for _ in 0..n {
            ready_rx.recv().await.expect("ready");
        }
        let connected = connecting.elapsed();
        let topics = Topics::new(FLEET).expect("topics");
        let (op, mut opev) = AsyncClient::new(options("sim-operator", port, tls(&f, OPERATOR)), 64);
        op.subscribe(topics.all_reported(), QoS::AtLeastOnce).await.expect("sub");
        loop {
            if let Ok(Event::Incoming(Packet::SubAck(_))) = opev.poll().await {
                break;
            }
        }
        let doc = DeploymentDoc {
            schema: skerry_core::proto::document::DOC_SCHEMA,
            fleet: FLEET.into(),
            target: Target::Group("sim".into()),
            version: 1,
            issued_at_ms: 0,
            tasks: vec![skerry_core::proto::Entry {
                name: "app".into(),
                json: r#"{"family":"app","networkMode":"host","containerDefinitions":[{"name":"main","image":"busybox:latest","memory":32}]}"#.into(),
            }],
            services: vec![],
        };
        let payload = Envelope::new("", 1, Body::Deployment(skerry_core::proto::sign_document(&doc, &key))).encode();
        let t0 = Instant::now();
        op.publish(topics.desired(&Scope::Group("sim".into())), QoS::AtLeastOnce, true, payload)
            .await
            .expect("publish");
        let mut done = BTreeSet::new();
        while done.len() < n {
            let e = tokio::time::timeout(Duration::from_secs(120), opev.poll()).await;
            let Ok(Ok(Event::Incoming(Packet::Publish(p)))) = e else {
                assert!(e.is_ok(), "fan-out stalled at {} of {n}", done.len());
                continue;
            };
            if let Some(dev) = topics.device_of(&String::from_utf8_lossy(&p.topic), "reported") {
                done.insert(dev.to_string());
            }
        }
        println!(
            "fanout: {n} simulated device sessions (mTLS, real check + spec, recording stub runtime): all reported applied {:.3} s after the group publish; {n} sessions connected in {:.1} s; PKI + broker setup {:.1} s",
            t0.elapsed().as_secs_f64(),
            connected.as_secs_f64(),
            setup.as_secs_f64()
        );
    });
    rt.shutdown_timeout(Duration::from_secs(1));
}
