//! Fleet mode end to end, against a real mosquitto (mTLS, the repo's ACL) started on
//! loopback by each test, real agents and real containers: deploy, update, removal,
//! rollback, groups with a device override, every refusal, a stuck version superseded,
//! broker outages and a broker that lost its persistence, the clock at 1970 and 2099.

mod common;

use std::time::{Duration, Instant};

use common::broker::OPERATOR;
use common::fleet::{device_events, task_status, Fleet, SilentRegistry, FLEET};
use skerry_core::proto::document::DOC_SCHEMA;
use skerry_core::proto::reported::ApplyState;
use skerry_core::proto::{sign_document, Body, DeploymentDoc, Entry, Envelope, Target};

fn service_json(family: &str, script: &str) -> String {
    format!(
        r#"{{"taskDefinition": {{"family": "{family}", "networkMode": "host", "containerDefinitions": [{{"name": "main", "image": "busybox:latest", "memory": 32, "stopTimeout": 2, "command": ["sh", "-c", {s}]}}]}}, "desiredCount": 1, "deploymentConfiguration": {{"minimumHealthyPercent": 0, "maximumPercent": 100, "stabilityWindowSeconds": 5}}}}"#,
        s = serde_json::to_string(script).expect("json")
    )
}

fn task_json(family: &str, script: &str) -> String {
    format!(
        r#"{{"family": "{family}", "networkMode": "host", "containerDefinitions": [{{"name": "main", "image": "busybox:latest", "memory": 32, "stopTimeout": 2, "command": ["sh", "-c", {s}]}}]}}"#,
        s = serde_json::to_string(script).expect("json")
    )
}

fn write(dir: &std::path::Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write");
    p.display().to_string()
}

fn applied(r: &skerry_core::proto::reported::ReportedState, target: &Target, version: u64) -> bool {
    r.documents
        .iter()
        .any(|d| d.target == *target && d.version == version && d.state == ApplyState::Applied)
}

fn running(r: &skerry_core::proto::reported::ReportedState, prefix: &str) -> bool {
    task_status(r, prefix).contains(&"RUNNING")
}

#[test]
fn fleet_deploy_update_remove_and_rollback() {
    let f = Fleet::start(&[("gw1", &[])]);
    let env = f.device("gw1", &[]);
    // ctl's events session is persistent: from its first run on, the broker keeps
    // the device's events for it.
    f.ctl_ok(&["events", "--device", "gw1"]);
    let _agent = env.agent(&[]);
    let dev = Target::Device("gw1".into());
    let ops = f.dir.path();
    let web = write(
        ops,
        "web.service.json",
        &service_json("web", "echo v1; sleep 3600"),
    );
    let out = f.ctl_ok(&["apply", "--device", "gw1", "--wait", "180", &web]);
    assert!(out.contains("version 1 applied"), "{out}");
    // Read back with a real MQTT client (mosquitto_sub), not only ctl.
    let r = f.wait_reported("gw1", "web running", 20, |r| {
        running(r, "web") && applied(r, &dev, 1)
    });
    assert!(
        r.tasks.iter().any(|t| t.source == "device gw1 v1"),
        "{r:#?}"
    );
    // Update: a new revision of the service rolls; the version grows.
    let web2 = write(ops, "web2.json", &task_json("web", "echo v2; sleep 3600"));
    let out = f.ctl_ok(&[
        "deploy",
        "--device",
        "gw1",
        "--service",
        "web",
        "--wait",
        "180",
        &web2,
    ]);
    assert!(out.contains("version 2 applied"), "{out}");
    // A one-off task beside it, then its removal.
    let job = write(ops, "job.json", &task_json("job", "sleep 3600"));
    f.ctl_ok(&[
        "deploy", "--device", "gw1", "--name", "job", "--wait", "180", &job,
    ]);
    f.wait_reported("gw1", "job running", 20, |r| running(r, "job"));
    f.ctl_ok(&["remove", "--device", "gw1", "job", "--wait", "180"]);
    f.wait_reported("gw1", "job gone", 30, |r| {
        !running(r, "job") && applied(r, &dev, 4)
    });
    // Rollback: the previous document (with job) again, under version 5.
    let out = f.ctl_ok(&["rollback", "--device", "gw1", "--wait", "180"]);
    assert!(out.contains("version 5 applied"), "{out}");
    // The removed job's record may still be stopping when it comes back: allow for
    // its stop timeout on a loaded machine.
    f.wait_reported("gw1", "job back", 60, |r| {
        running(r, "job") && running(r, "web")
    });
    // ctl status reads the same; json for scripts.
    let st = f.ctl_ok(&["status", "--output", "json"]);
    let v: serde_json::Value = serde_json::from_str(&st).expect("status json");
    assert_eq!(v[0]["device"], "gw1");
    assert_eq!(v[0]["presence"], "online");
    let table = f.ctl_ok(&["status"]);
    assert!(table.contains("gw1") && table.contains("online"), "{table}");
    // Events in order through the broker.
    let ev = f.ctl_ok(&["events", "--device", "gw1"]);
    let accepted: Vec<&str> = ev.lines().filter(|l| l.contains("accepted")).collect();
    assert!(accepted.len() >= 5, "{ev}");
    let seqs: Vec<u64> = ev
        .lines()
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "events out of order: {seqs:?}"
    );
    env.stop_all_tasks();
}

#[test]
fn fleet_group_deployment_with_device_override() {
    let f = Fleet::start(&[("gwa", &["north"]), ("gwb", &["north"])]);
    let a = f.device("gwa", &["north"]);
    let b = f.device("gwb", &["north"]);
    let _aa = a.agent(&[]);
    let _ab = b.agent(&[]);
    let ops = f.dir.path();
    let app = write(
        ops,
        "app.json",
        &task_json("app", "echo from-group; sleep 3600"),
    );
    let out = f.ctl_ok(&["apply", "--group", "north", &app]);
    assert!(out.contains("version 1"), "{out}");
    let g = Target::Group("north".into());
    f.wait_reported("gwa", "group doc applied", 60, |r| {
        applied(r, &g, 1) && running(r, "app")
    });
    f.wait_reported("gwb", "group doc applied", 60, |r| {
        applied(r, &g, 1) && running(r, "app")
    });
    // gwb overrides `app` with its own document.
    let own = ops.join("own");
    std::fs::create_dir_all(&own).expect("dir");
    write(
        &own,
        "app.json",
        &task_json("app", "echo from-device; sleep 3600"),
    );
    f.ctl_ok(&[
        "apply",
        "--device",
        "gwb",
        "--wait",
        "180",
        own.to_str().expect("path"),
    ]);
    let rb = f.wait_reported("gwb", "override runs", 60, |r| {
        r.tasks
            .iter()
            .any(|t| t.id == "app" && t.source == "device gwb v1" && t.status == "RUNNING")
    });
    let ra = f.reported("gwa").expect("gwa reported");
    assert!(
        ra.tasks
            .iter()
            .any(|t| t.id == "app" && t.source == "group north v1"),
        "{ra:#?}"
    );
    assert!(rb.documents.len() == 2, "{rb:#?}");
    // --wait on a group waits for every member.
    let app2 = write(
        ops,
        "app.json",
        &task_json("app", "echo group-v2; sleep 3600"),
    );
    let out = f.ctl_ok(&["apply", "--group", "north", "--wait", "180", &app2]);
    assert!(out.contains("version 2 applied"), "{out}");
    a.stop_all_tasks();
    b.stop_all_tasks();
}

/// Signs `doc` with a key of its own (not trusted by the devices) unless `key` given.
fn payload(doc: &DeploymentDoc, key: &ring::signature::Ed25519KeyPair) -> Vec<u8> {
    Envelope::new(
        "gw1",
        doc.version,
        Body::Deployment(sign_document(doc, key)),
    )
    .encode()
}

fn doc(target: Target, version: u64, tasks: Vec<Entry>) -> DeploymentDoc {
    DeploymentDoc {
        schema: DOC_SCHEMA,
        fleet: FLEET.into(),
        target,
        version,
        issued_at_ms: 0,
        tasks,
        services: vec![],
    }
}

fn operator_key(f: &Fleet) -> ring::signature::Ed25519KeyPair {
    let pem = std::fs::read_to_string(&f.signing_key).expect("key");
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64_decode(&b64);
    ring::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der).expect("pkcs8")
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

#[test]
fn fleet_refuses_bad_documents_and_changes_nothing() {
    let f = Fleet::start(&[("gw1", &["north"]), ("gw2", &[])]);
    let env =
        common::TestEnv::with_config(&f.mqtt_section("gw1", &["north"], "max_payload = 16384"));
    let _agent = env.agent(&[]);
    let dev = Target::Device("gw1".into());
    let ops = f.dir.path();
    let keep = write(ops, "keep.json", &task_json("keep", "sleep 3600"));
    f.ctl_ok(&["apply", "--device", "gw1", "--wait", "180", &keep]);
    let before = f.wait_reported("gw1", "keep running", 20, |r| running(r, "keep"));
    let pid_of = || -> String {
        let st = env.agent_status();
        st["tasks"]["keep"]["containers"]["main"]["pid"].to_string()
    };
    let pid = pid_of();
    let key = operator_key(&f);
    let stranger = ring::signature::Ed25519KeyPair::from_seed_unchecked(&[7; 32]).expect("key");
    let good_task = vec![Entry {
        name: "other".into(),
        json: task_json("other", "sleep 1"),
    }];
    let topic = f.broker.topic("gw1", "desired");
    let mut unsigned = sign_document(&doc(dev.clone(), 9, good_task.clone()), &key);
    unsigned.signature.clear();
    let mut unknown_schema = Envelope::decode(
        &payload(&doc(dev.clone(), 9, good_task.clone()), &key),
        usize::MAX,
    )
    .expect("env");
    unknown_schema.schema = 42;
    let big = vec![Entry {
        name: "big".into(),
        json: task_json("big", &"x".repeat(40_000)),
    }];
    let mut big_doc = payload(&doc(dev.clone(), 9, big), &key);
    big_doc.extend(std::iter::repeat_n(0u8, 20_000)); // deflate would shrink the JSON
    let bad_field = vec![Entry {
        name: "bad".into(),
        json: r#"{"family":"bad","containerDefinitions":[{"name":"c","image":"busybox","memory":32,"colour":"red"}]}"#.into(),
    }];
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "unsigned",
            Envelope::new("gw1", 9, Body::Deployment(unsigned)).encode(),
        ),
        (
            "untrusted-key",
            payload(&doc(dev.clone(), 9, good_task.clone()), &stranger),
        ),
        (
            "not-newer",
            payload(&doc(dev.clone(), 1, good_task.clone()), &key),
        ),
        (
            "not-addressed",
            payload(
                &doc(Target::Device("gw2".into()), 9, good_task.clone()),
                &key,
            ),
        ),
        ("oversized", big_doc),
        ("malformed", b"\x01\x02garbage bytes".to_vec()),
        ("unknown-schema", unknown_schema.encode()),
        ("invalid", payload(&doc(dev.clone(), 9, bad_field), &key)),
    ];
    for (code, bytes) in &cases {
        f.broker
            .publish(OPERATOR, &topic, bytes, true)
            .expect("publish");
        let r = f.wait_reported("gw1", &format!("rejection {code}"), 20, |r| {
            r.last_rejection.as_ref().is_some_and(|j| j.code == *code)
        });
        let rej = r.last_rejection.clone().expect("rejection");
        if *code == "invalid" {
            assert!(
                rej.reason.contains("colour"),
                "the refusal names the field: {rej:?}"
            );
        }
        assert!(running(&r, "keep"), "{code}: {r:#?}");
        assert!(
            !r.tasks.iter().any(|t| t.id == "other"),
            "{code} ran: {r:#?}"
        );
        assert_eq!(
            r.documents, before.documents,
            "{code} changed the stored document"
        );
    }
    assert_eq!(pid_of(), pid, "the workload was disturbed");
    let ev = device_events(&env);
    for (code, _) in &cases {
        assert!(
            ev.contains(&format!("rejected ({code})")),
            "no event for {code}:\n{ev}"
        );
    }
    // A replay of the current version's exact bytes is a re-delivery, not an error.
    env.stop_all_tasks();
}

#[test]
fn fleet_newer_version_supersedes_a_stuck_one() {
    let f = Fleet::start(&[("gw1", &[])]);
    // The agent's own pull settings (timeouts of tens of seconds, retries for many
    // minutes): v1 stays stuck unless its pull is cancelled when v2 arrives.
    let env = f.device("gw1", &[]);
    let _agent = env.agent(&[]);
    let ops = f.dir.path();
    // A registry on loopback that accepts connections and never answers: v1's image
    // pull hangs, as on a link that went dead mid-pull.
    let silent = SilentRegistry::start();
    let stuck = service_json("web", "sleep 3600").replace(
        "busybox:latest",
        &format!("127.0.0.1:{}/none:1", silent.port),
    );
    let p = write(ops, "web.service.json", &stuck);
    f.ctl_ok(&["apply", "--device", "gw1", &p]);
    let dev = Target::Device("gw1".into());
    f.wait_reported("gw1", "v1 stored", 20, |r| {
        r.documents.iter().any(|d| d.version == 1)
    });
    let t0 = Instant::now();
    while silent.accepted() == 0 {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "v1 never began its pull"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(1));
    let good = write(ops, "web.service.json", &service_json("web", "sleep 3600"));
    let begun = Instant::now();
    f.ctl_ok(&["apply", "--device", "gw1", &good]);
    // Without the cancel, v1's pull would hold its task for minutes (read timeouts,
    // then a dozen retries with backoff); the bound only tells the two apart.
    f.wait_reported("gw1", "v2 running", 60, |r| {
        r.tasks
            .iter()
            .any(|t| t.source == "device gw1 v2" && t.status == "RUNNING")
    });
    let to_running = begun.elapsed().as_secs_f64();
    f.wait_reported("gw1", "v2 applied", 60, |r| applied(r, &dev, 2));
    println!(
        "stuck v1 → v2 running in {to_running:.2} s, applied (5 s stability window) in {:.2} s",
        begun.elapsed().as_secs_f64()
    );
    let ev = device_events(&env);
    assert!(
        ev.contains("deployment 2 for device gw1 accepted; version 1 superseded"),
        "{ev}"
    );
    env.stop_all_tasks();
}

#[test]
fn fleet_survives_broker_outages_and_a_broker_that_forgot_everything() {
    let mut f = Fleet::start(&[("gw1", &[])]);
    let env = f.device("gw1", &[]);
    let mut agent = env.agent(&[]);
    let dev = Target::Device("gw1".into());
    let ops = f.dir.path();
    let a = write(ops, "a.json", &task_json("a", "sleep 3600"));
    f.ctl_ok(&["apply", "--device", "gw1", "--wait", "180", &a]);
    // Broker stopped mid-deploy: the retained document was published, the device not
    // told yet; it converges once the broker is back.
    f.broker.stop();
    std::thread::sleep(Duration::from_secs(1));
    f.broker.start_again();
    let b = write(ops, "b.json", &task_json("b", "sleep 3600"));
    f.ctl_ok(&["apply", "--device", "gw1", &a, &b]);
    f.broker.stop();
    std::thread::sleep(Duration::from_secs(2));
    f.broker.start_again();
    f.wait_reported("gw1", "v2 after outage", 60, |r| {
        applied(r, &dev, 2) && running(r, "b")
    });
    let pids = |st: &serde_json::Value| st["tasks"]["a"]["containers"]["main"]["pid"].clone();
    let pid_a = pids(&env.agent_status());
    // The broker loses its retained messages and sessions: workloads untouched, the
    // agent publishes its reported state again, nothing deleted.
    f.broker.restart(false);
    let r = f.wait_reported("gw1", "reported again", 60, |r| applied(r, &dev, 2));
    assert!(running(&r, "a") && running(&r, "b"), "{r:#?}");
    assert_eq!(pids(&env.agent_status()), pid_a, "a workload was restarted");
    // kill -9 of the agent with the broker down: workloads run on from the stored
    // document, the outbox survives, and ctl can deploy again: the next version is
    // above what the device reports, though the broker lost the retained document.
    f.broker.stop();
    agent.kill9();
    let _agent = env.agent(&[]);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(pids(&env.agent_status()), pid_a);
    f.broker.start_again();
    f.wait_reported("gw1", "back", 60, |r| applied(r, &dev, 2));
    let out = f.ctl_ok(&["apply", "--device", "gw1", "--wait", "180", &a]);
    assert!(out.contains("version 3 applied"), "{out}");
    f.wait_reported("gw1", "b removed", 30, |r| !running(r, "b"));
    env.stop_all_tasks();
}

#[test]
fn fleet_connects_and_applies_with_the_clock_at_1970_and_2099() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    for (label, offset) in [("1970", -now + 3600), ("2099", 4_070_908_800 - now)] {
        let f = Fleet::start(&[("gw1", &[])]);
        let env = f.device("gw1", &[]);
        let offset = offset.to_string();
        let _agent = env.agent(&[("SKERRY_TEST_WALL_OFFSET_SECS", offset.as_str())]);
        let p = write(f.dir.path(), "t.json", &task_json("t", "sleep 3600"));
        let out = f.ctl_ok(&["apply", "--device", "gw1", "--wait", "180", &p]);
        assert!(out.contains("version 1 applied"), "{label}: {out}");
        env.stop_all_tasks();
    }
}

/// Decodes the report batches a subscriber got: `(seq, line)` in arrival order.
fn batches(msgs: &[common::broker::Message]) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    for m in msgs {
        if let Ok(Envelope {
            body: Body::Reports(b),
            ..
        }) = Envelope::decode(&m.payload, usize::MAX)
        {
            for (seq, bytes) in b.reports {
                let line = skerry::report::Report::decode(&bytes)
                    .map(|r| r.line())
                    .unwrap_or_default();
                out.push((seq, line));
            }
        }
    }
    out
}

/// Appends `n` reports to the outbox of a stopped agent, as its own turns would.
fn append_reports(env: &common::TestEnv, n: u64, what: &str, max_bytes: u64) {
    let limits = skerry::config::OutboxConfig { max_bytes }.limits();
    let mut o =
        skerry::store::outbox::Outbox::open(&env.state().join("outbox"), limits).expect("outbox");
    for i in 0..n {
        let ev = skerry_core::reconcile::Event::TaskStopped {
            task: format!("{what}.{i}").as_str().into(),
            reason: "synthetic report for the drain test".into(),
        };
        o.append(&skerry::report::Report::event(ev).encode())
            .expect("append");
    }
    o.sync().expect("sync");
}

#[test]
fn fleet_10000_reports_queued_offline_drain_in_order_without_loss_or_duplicates() {
    let mut f = Fleet::start(&[("gw1", &[])]);
    let env = f.device("gw1", &[]);
    let events = f.broker.topic("gw1", "events");
    // The link is down from the start: the agent runs real tasks offline (their events
    // queue), is killed with -9, and 10,000 more reports are queued while it is down.
    f.broker.stop();
    let mut agent = env.agent(&[]);
    env.put_desired("crash.service.json", &service_json("crash", "exit 3"));
    let deadline = Instant::now() + Duration::from_secs(60);
    while device_events(&env).matches("exited with code 3").count() < 2 {
        assert!(
            Instant::now() < deadline,
            "no crash loop:\n{}",
            device_events(&env)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    agent.kill9();
    env.remove_desired("crash.service.json");
    append_reports(&env, 10_000, "bulk", 8 * 1024 * 1024);
    let _agent = env.agent(&[]);
    std::thread::sleep(Duration::from_secs(1));
    f.broker.start_again();
    let sub = f.broker.subscribe(OPERATOR, &events).expect("subscribe");
    let begun = Instant::now();
    let mut msgs = Vec::new();
    let mut seen = Vec::new();
    while !seen
        .iter()
        .any(|(_, l): &(u64, String)| l.contains("bulk.9999"))
    {
        let got = sub.collect(1, Duration::from_secs(90));
        assert!(
            !got.is_empty(),
            "drain stalled after {} reports",
            seen.len()
        );
        msgs.extend(got);
        seen = batches(&msgs);
    }
    let took = begun.elapsed();
    let mut dedup = skerry_core::proto::delivery::Dedup::default();
    let fresh: Vec<u64> = seen
        .iter()
        .map(|(s, _)| *s)
        .filter(|s| dedup.fresh(*s))
        .collect();
    let first = fresh[0];
    assert_eq!(first, 1, "reports from the start are there");
    assert!(
        fresh.windows(2).all(|w| w[1] == w[0] + 1),
        "a gap or reorder in {} reports",
        fresh.len()
    );
    let bulk = seen.iter().filter(|(_, l)| l.contains("bulk.")).count();
    assert!(bulk >= 10_000, "{bulk}");
    println!(
        "drained {} reports in {} publishes, {:.2} s after the broker came back ({} duplicates dropped)",
        fresh.len(),
        msgs.len(),
        took.as_secs_f64(),
        seen.len() - fresh.len()
    );
    assert!(
        msgs.len() <= 100 + 20,
        "{} publishes for {} reports",
        msgs.len(),
        fresh.len()
    );
    env.stop_all_tasks();
}

#[test]
fn fleet_outbox_bound_is_kept_and_the_loss_is_reported() {
    let mut f = Fleet::start(&[("gw1", &[])]);
    let env = common::TestEnv::with_config(&format!(
        "[outbox]\nmax_bytes = 65536\n{}",
        f.mqtt_section("gw1", &[], "")
    ));
    f.broker.stop();
    append_reports(&env, 5_000, "lost", 65_536);
    let bytes: u64 = std::fs::read_dir(env.state().join("outbox"))
        .expect("outbox")
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum();
    assert!(bytes <= 65_536 + 16 * 1024, "outbox holds {bytes} bytes");
    let _agent = env.agent(&[]);
    f.broker.start_again();
    let r = f.wait_reported("gw1", "loss reported", 60, |r| r.reports_dropped > 0);
    println!(
        "{} reports dropped by the bound, reported",
        r.reports_dropped
    );
    let sub = f
        .broker
        .subscribe(OPERATOR, &f.broker.topic("gw1", "events"))
        .expect("sub");
    drop(sub);
}

#[test]
fn fleet_status_marks_offline_devices_and_broker_refusals_are_errors() {
    let f = Fleet::start(&[("gw1", &[]), ("gw2", &[])]);
    // gw2 claims to be gw1's neighbour "gw9": the broker's ACL refuses its reports
    // (MQTT 5 NotAuthorized), which must surface as an error event, not silence.
    let liar = common::TestEnv::with_config(&f.mqtt_section("gw2", &[], "device_id = \"gw9\""));
    let _l = liar.agent(&[]);
    let env = f.device("gw1", &[]);
    let mut agent = env.agent(&[]);
    let dev = Target::Device("gw1".into());
    let p = write(f.dir.path(), "t.json", &task_json("t", "sleep 3600"));
    f.ctl_ok(&["apply", "--device", "gw1", "--wait", "180", &p]);
    let table = f.ctl_ok(&["status"]);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("gw1") && l.contains("online")),
        "{table}"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ev = device_events(&liar);
        if ev.contains("refused a publish: NotAuthorized") {
            break;
        }
        assert!(Instant::now() < deadline, "no NotAuthorized event:\n{ev}");
        std::thread::sleep(Duration::from_millis(200));
    }
    // The agent dies: its Last Will marks it offline; its last reported state stays.
    agent.kill9();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let table = f.ctl_ok(&["status"]);
        if table
            .lines()
            .any(|l| l.starts_with("gw1") && l.contains("OFFLINE"))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "gw1 never marked offline:\n{table}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let r = f.reported("gw1").expect("last reported state kept");
    assert!(applied(&r, &dev, 1), "{r:#?}");
    let detail = f.ctl_ok(&["status", "--device", "gw1"]);
    assert!(
        detail.contains("OFFLINE") && detail.contains("t "),
        "{detail}"
    );
    env.stop_all_tasks();
}

#[test]
fn fleet_restarted_agent_adopts_the_fleets_containers_and_leaves_them_alone() {
    let f = Fleet::start(&[("gw1", &[])]);
    let env = f.device("gw1", &[]);
    let mut agent = env.agent(&[]);
    let web = write(
        f.dir.path(),
        "web.service.json",
        &service_json("web", "sleep 3600"),
    );
    let out = f.ctl_ok(&["apply", "--device", "gw1", "--wait", "180", &web]);
    assert!(out.contains("version 1 applied"), "{out}");
    let before = device_events(&env);
    assert_eq!(before.matches(" launched").count(), 1, "{before}");
    agent.kill9();
    let log = env.dir.path().join("agent.log");
    let loaded = || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .matches("state loaded, tasks adopted")
            .count()
    };
    let n = loaded();
    let _agent = env.agent(&[]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while loaded() == n {
        assert!(Instant::now() < deadline, "the agent did not start again");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Its first decisions are made and their events stored by now: made without the
    // stored fleet document, they would stop the adopted task and relaunch it.
    let after = device_events(&env);
    let new: Vec<&str> = after.lines().skip(before.lines().count()).collect();
    assert!(
        !new.iter()
            .any(|l| l.contains("stopping") || l.contains(" launched")),
        "the restarted agent touched the fleet's task: {new:#?}"
    );
}
