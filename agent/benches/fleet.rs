//! Fleet figures (prints, asserts nothing about time), against a real mosquitto on
//! loopback and real agents and containers, as root:
//! - `size`: a deployment's postcard envelope (deflated, signed) vs the JSON it came from;
//! - `deploy`: publish → container running, median of 20 deploys (a new task each time);
//! - `drain`: 10,000 reports queued while the broker is down, drained after it returns:
//!   seconds and publishes;
//! - `fanout`: one group deployment to 100 and 1,000 simulated device sessions in this
//!   process — each a real MQTT 5 mTLS session that runs the device's real document
//!   check and spec validation, with the container runtime replaced by a recording stub
//!   (this simulation lives in the bench only; the agent has no such mode) — time until
//!   all report it applied;
//! - `rss`: the agent's resident and private memory, connected over mTLS with 10 tasks;
//! - `supersede`: a service revision stuck pulling from a registry that never answers,
//!   then a good revision: publish of the good one → its task RUNNING, median of 10.
//!
//! Run: `SKERRY_TEST_IMAGES=… cargo bench -p skerry --bench fleet [-- size|deploy|drain|fanout|rss|supersede]`.

#[path = "../tests/common/mod.rs"]
#[allow(unused_imports)]
mod common;

#[path = "fleet/fanout.rs"]
mod fanout;

use std::time::{Duration, Instant};

use common::broker::OPERATOR;
use common::fleet::{Fleet, FLEET};
use skerry_core::proto::document::DOC_SCHEMA;
use skerry_core::proto::{sign_document, Body, DeploymentDoc, Entry, Envelope, Target};

fn want(name: &str) -> bool {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    args.is_empty() || args.iter().any(|a| a == name)
}

fn key() -> ring::signature::Ed25519KeyPair {
    ring::signature::Ed25519KeyPair::from_seed_unchecked(&[3; 32]).expect("key")
}

fn size() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut files: Vec<_> = std::fs::read_dir(&root)
        .expect("examples")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let (mut all_json, mut tasks) = (0usize, Vec::new());
    println!(
        "{:<28} {:>8} {:>9} {:>6}",
        "deployment of", "JSON B", "envelope", "ratio"
    );
    for f in &files {
        let text = std::fs::read_to_string(f).expect("read");
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(&text).expect("json");
        let e = Entry {
            name: name
                .replace(".service.json", "")
                .replace(".json", "")
                .replace('.', "-"),
            json: v.to_string(),
        };
        let one = env_bytes(vec![e.clone()]);
        println!(
            "{name:<28} {:>8} {one:>9} {:>5.0}%",
            text.len(),
            100.0 * one as f64 / text.len() as f64
        );
        all_json += text.len();
        tasks.push(e);
    }
    let all = env_bytes(tasks);
    println!(
        "{:<28} {all_json:>8} {all:>9} {:>5.0}%",
        "all of them, one document",
        100.0 * all as f64 / all_json as f64
    );
}

fn env_bytes(tasks: Vec<Entry>) -> usize {
    let doc = DeploymentDoc {
        schema: DOC_SCHEMA,
        fleet: FLEET.into(),
        target: Target::Device("gw1".into()),
        version: 1,
        issued_at_ms: 0,
        tasks,
        services: vec![],
    };
    Envelope::new("gw1", 1, Body::Deployment(sign_document(&doc, &key())))
        .encode()
        .len()
}

fn task(name: &str) -> Entry {
    Entry {
        name: name.into(),
        json: format!(
            r#"{{"family":"{name}","networkMode":"host","containerDefinitions":[{{"name":"main","image":"busybox:latest","memory":32,"stopTimeout":1,"command":["sleep","3600"]}}]}}"#
        ),
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Device gw1's agent, trusting the bench's own signing key too, connected.
fn device_trusting_bench_key(f: &Fleet) -> (common::TestEnv, common::AgentProc) {
    let section = f.mqtt_section("gw1", &[], "").replace(
        &format!("trusted_keys = [\"{}\"]", f.public_key),
        &format!(
            "trusted_keys = [\"{}\", \"{}\"]",
            f.public_key,
            hex_of_key()
        ),
    );
    let env = common::TestEnv::with_config(&section);
    let agent = env.agent(&[]);
    std::thread::sleep(Duration::from_secs(2));
    (env, agent)
}

fn deploy() {
    let f = Fleet::start(&[("gw1", &[])]);
    let (env, _agent) = device_trusting_bench_key(&f);
    let topic = f.broker.topic("gw1", "desired");
    // What a publish costs with mosquitto_pub (process, TLS handshake, PUBACK).
    let mut pub_cost = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        f.broker
            .publish(OPERATOR, "skerry/v1/acme/gw1/desired/previous", b"x", false)
            .expect("pub");
        pub_cost.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let mut total = Vec::new();
    for i in 1..=20u64 {
        let name = format!("d{i}");
        let doc = DeploymentDoc {
            schema: DOC_SCHEMA,
            fleet: FLEET.into(),
            target: Target::Device("gw1".into()),
            version: i,
            issued_at_ms: 0,
            tasks: vec![task(&name)],
            services: vec![],
        };
        let payload =
            Envelope::new("gw1", i, Body::Deployment(sign_document(&doc, &key()))).encode();
        let t = Instant::now();
        f.broker
            .publish(OPERATOR, &topic, &payload, true)
            .expect("publish");
        loop {
            let st = env.agent_status();
            if st["tasks"][&name]["containers"]["main"]["state"] == "RUNNING" {
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "deploy {i} never ran: {st:#}"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        total.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let p = median(&mut pub_cost);
    let m = median(&mut total);
    println!("deploy: publish → container RUNNING, median of 20: {m:.1} ms (of which mosquitto_pub itself ≈ {p:.1} ms: process start, TLS, PUBACK); min {:.1}, max {:.1} ms", total[0], total[total.len() - 1]);
    // The container's own start through the same agent, without the fleet: the same
    // task side-loaded into the desired directory, the loop woken at once through its
    // wake socket (as a monitor wakes it), the previous one replaced as above.
    let wake = std::os::unix::net::UnixDatagram::unbound().expect("socket");
    let sock = env.state().join("supervisor/wake.sock");
    let mut local = Vec::new();
    for i in 1..=20u64 {
        let name = format!("l{i}");
        let t = Instant::now();
        if i > 1 {
            env.remove_desired(&format!("l{}.json", i - 1));
        }
        env.put_desired(&format!("{name}.json"), &task(&name).json);
        wake.send_to(b"w", &sock).expect("wake the agent");
        loop {
            let st = env.agent_status();
            if st["tasks"][&name]["containers"]["main"]["state"] == "RUNNING" {
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "local {i} never ran: {st:#}"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        local.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let l = median(&mut local);
    println!("deploy: the container's own start (desired file → RUNNING, same agent, no fleet), median of 20: {l:.1} ms; min {:.1}, max {:.1} ms", local[0], local[local.len() - 1]);
    println!("deploy: the fleet's share (publish → RUNNING minus the container's own start): {:.1} ms, goal ≤ 50 ms", m - l);
    env.stop_all_tasks();
}

fn hex_of_key() -> String {
    use ring::signature::KeyPair;
    key()
        .public_key()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn drain() {
    let mut f = Fleet::start(&[("gw1", &[])]);
    let env = f.device("gw1", &[]);
    f.broker.stop();
    let limits = skerry::config::OutboxConfig {
        max_bytes: 8 * 1024 * 1024,
    }
    .limits();
    let mut o =
        skerry::store::outbox::Outbox::open(&env.state().join("outbox"), limits).expect("outbox");
    for i in 0..10_000u32 {
        let ev = skerry_core::reconcile::Event::TaskStopped {
            task: format!("bulk.{i}").as_str().into(),
            reason: "Essential container in task exited".into(),
        };
        o.append(&skerry::report::Report::event(ev).encode())
            .expect("append");
    }
    o.sync().expect("sync");
    drop(o);
    let _agent = env.agent(&[]);
    std::thread::sleep(Duration::from_secs(1));
    f.broker.start_again();
    let sub = f
        .broker
        .subscribe(OPERATOR, &f.broker.topic("gw1", "events"))
        .expect("sub");
    let mut publishes = 0;
    let mut reports = 0usize;
    let mut first: Option<Instant> = None;
    while reports < 10_000 {
        let Some(m) = sub.next(Duration::from_secs(120)) else {
            panic!("stalled at {reports}")
        };
        first.get_or_insert_with(Instant::now);
        publishes += 1;
        if let Ok(Envelope {
            body: Body::Reports(b),
            ..
        }) = Envelope::decode(&m.payload, usize::MAX)
        {
            reports += b.reports.len();
        }
    }
    let took = first.map(|t| t.elapsed().as_secs_f64()).unwrap_or_default();
    println!("drain: {reports} reports in {publishes} publishes, {took:.3} s from the first batch to the last ({:.0} reports/s)", reports as f64 / took.max(1e-6));
}

fn rss() {
    let f = Fleet::start(&[("gw1", &[])]);
    let env = f.device("gw1", &[]);
    let agent = env.agent(&[]);
    let dir = f.dir.path().join("ten");
    std::fs::create_dir_all(&dir).expect("dir");
    for i in 0..10 {
        let t = task(&format!("r{i}"));
        std::fs::write(dir.join(format!("r{i}.json")), t.json).expect("write");
    }
    f.ctl_ok(&[
        "apply",
        "--device",
        "gw1",
        "--wait",
        "120",
        dir.to_str().expect("path"),
    ]);
    std::thread::sleep(Duration::from_secs(3));
    let pid = agent.pid();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = common::proc_kib;
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    let private_dirty = field(&smaps, "Private_Dirty:");
    let private = field(&smaps, "Private_Clean:") + private_dirty;
    println!(
        "rss: agent connected over mTLS with 10 tasks: VmRSS {} KiB, VmHWM {} KiB, PSS {} KiB, private {private} KiB (dirty {private_dirty} KiB, the rest clean program text), shared with the monitors {} KiB ({} build)",
        field(&status, "VmRSS:"),
        field(&status, "VmHWM:"),
        field(&smaps, "Pss:"),
        field(&smaps, "Shared_Clean:"),
        if cfg!(debug_assertions) { "debug" } else { "release" }
    );
    // The per-container monitors (one process each, the same binary).
    let (n, pss, dirty) = common::monitors_memory(&env.state());
    println!("rss: {n} container monitors: PSS {pss} KiB in all, private dirty {dirty} KiB in all ({} KiB each)", dirty / n.max(1));
    env.stop_all_tasks();
}

fn service(image: &str, script: &str) -> Entry {
    Entry {
        name: "web".into(),
        json: format!(
            r#"{{"taskDefinition":{{"family":"web","networkMode":"host","containerDefinitions":[{{"name":"main","image":"{image}","memory":32,"stopTimeout":1,"command":["sh","-c","{script}"]}}]}},"desiredCount":1,"deploymentConfiguration":{{"minimumHealthyPercent":0,"maximumPercent":100}}}}"#
        ),
    }
}

fn supersede() {
    let f = Fleet::start(&[("gw1", &[])]);
    let (env, _agent) = device_trusting_bench_key(&f);
    let silent = common::fleet::SilentRegistry::start();
    let topic = f.broker.topic("gw1", "desired");
    let publish = |version: u64, entry: Entry| {
        let doc = DeploymentDoc {
            schema: DOC_SCHEMA,
            fleet: FLEET.into(),
            target: Target::Device("gw1".into()),
            version,
            issued_at_ms: 0,
            tasks: vec![],
            services: vec![entry],
        };
        let payload = Envelope::new(
            "gw1",
            version,
            Body::Deployment(sign_document(&doc, &key())),
        )
        .encode();
        f.broker
            .publish(OPERATOR, &topic, &payload, true)
            .expect("publish");
    };
    let mut took = Vec::new();
    for i in 1..=10u64 {
        let before = silent.accepted();
        publish(
            2 * i - 1,
            service(&format!("127.0.0.1:{}/none:{i}", silent.port), "sleep 3600"),
        );
        let t = Instant::now();
        while silent.accepted() == before {
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "stuck revision {i} never pulled"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        let marker = format!("good{i}");
        let t = Instant::now();
        publish(
            2 * i,
            service("busybox:latest", &format!("echo {marker}; sleep 3600")),
        );
        loop {
            let st = env.agent_status();
            // The stuck revision never runs and stopped the previous good one before
            // it launched (maximumPercent 100): a running task is the new good one.
            let running = st["tasks"].as_object().is_some_and(|m| {
                m.values()
                    .any(|t| t["containers"]["main"]["state"] == "RUNNING")
            });
            if running {
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "good revision {i} never ran: {st:#}"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        took.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let m = median(&mut took);
    println!("supersede: revision stuck on a silent registry, then a good one: publish → good task RUNNING, median of 10: {m:.1} ms; min {:.1}, max {:.1} ms", took[0], took[took.len() - 1]);
    env.stop_all_tasks();
}

fn main() {
    if want("supersede") {
        supersede();
    }
    if want("size") {
        size();
    }
    if want("deploy") {
        deploy();
    }
    if want("drain") {
        drain();
    }
    if want("rss") {
        rss();
    }
    if want("fanout") {
        for n in [100, 1000] {
            fanout::run(n);
        }
    }
}
