//! Bridge networking figures (prints, asserts nothing about time), with real agents
//! and containers, as root, on loopback only:
//! - `ports`: through a published port (bridge: DNAT from 127.0.0.1 over skerry0 and
//!   a veth) vs the same container with host networking: TCP throughput of 256 MiB
//!   into a sink, and the rate of fresh connections (one HTTP GET each, sequential);
//! - `rss`: the agent and its monitors with 10 bridged tasks, each publishing a port.
//!
//! Run: `SKERRY_TEST_IMAGES=… cargo bench -p skerry --bench bridge [-- ports|rss]`.

#[path = "../tests/common/mod.rs"]
#[allow(unused_imports)]
mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::time::{Duration, Instant};

use common::{proc_kib as field, task_container, TestEnv};

fn want(name: &str) -> bool {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    args.is_empty() || args.iter().any(|a| a == name)
}

/// A sink on `sink` (discards, one connection at a time, for ever) and an httpd on
/// `http`; bridged ones publish both on dynamic host ports.
fn server_task(family: &str, network: &str, sink: u16, http: u16) -> String {
    let ports = if network == "bridge" {
        format!(r#", "portMappings": [{{"containerPort": {sink}}}, {{"containerPort": {http}}}]"#)
    } else {
        String::new()
    };
    format!(
        r#"{{"family": "{family}", "networkMode": "{network}", "containerDefinitions": [
  {{"name": "srv", "image": "busybox:latest", "memory": 64, "stopTimeout": 1{ports},
    "command": ["sh", "-c", "echo ok > /tmp/i; httpd -p {http} -h /tmp; while true; do nc -l -p {sink} > /dev/null; done"]}}]}}"#
    )
}

fn binding(st: &serde_json::Value, task: &str, i: usize) -> u16 {
    task_container(st, task, "srv")["network_bindings"][i]["hostPort"]
        .as_u64()
        .and_then(|p| u16::try_from(p).ok())
        .unwrap_or(0)
}

fn connect(port: u16) -> TcpStream {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match TcpStream::connect((Ipv4Addr::LOCALHOST, port)) {
            Ok(s) => return s,
            Err(e) => {
                assert!(Instant::now() < deadline, "connect {port}: {e}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// MiB/s of 256 MiB written into the sink (best of 3).
fn throughput(port: u16) -> f64 {
    let chunk = vec![0x5au8; 1 << 20];
    let mut best: f64 = 0.0;
    for _ in 0..3 {
        let mut s = connect(port);
        let t = Instant::now();
        for _ in 0..256 {
            s.write_all(&chunk).expect("write");
        }
        s.shutdown(std::net::Shutdown::Write).expect("shutdown");
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
        best = best.max(256.0 / t.elapsed().as_secs_f64());
        // The sink's loop starts the next nc.
        std::thread::sleep(Duration::from_millis(200));
    }
    best
}

/// Fresh connections per second, each one HTTP GET answered in full (500 in a row).
fn connection_rate(port: u16) -> f64 {
    let get = |_: usize| {
        let mut s = connect(port);
        s.write_all(b"GET /i HTTP/1.0\r\n\r\n").expect("get");
        let mut body = String::new();
        s.read_to_string(&mut body).expect("answer");
        assert!(body.ends_with("ok\n"), "{body}");
    };
    (0..20).for_each(get);
    let t = Instant::now();
    (0..500).for_each(get);
    500.0 / t.elapsed().as_secs_f64()
}

fn ports() {
    let env = TestEnv::new();
    env.put_desired("bhost.json", &server_task("bhost", "host", 39701, 39702));
    env.put_desired("bbr.json", &server_task("bbr", "bridge", 5001, 80));
    let _agent = env.agent(&[]);
    let st = env.wait_status("both running, ports bound", 60, |st| {
        task_container(st, "bhost", "srv")["state"] == "RUNNING"
            && task_container(st, "bbr", "srv")["state"] == "RUNNING"
            && binding(st, "bbr", 1) != 0
    });
    let (bsink, bhttp) = (binding(&st, "bbr", 0), binding(&st, "bbr", 1));
    let (h_tp, b_tp) = (throughput(39701), throughput(bsink));
    let (h_cr, b_cr) = (connection_rate(39702), connection_rate(bhttp));
    println!("ports: TCP into a sink in the container, from 127.0.0.1 (best of 3 × 256 MiB): host networking {h_tp:.0} MiB/s, bridge through a published port {b_tp:.0} MiB/s ({:.0}%)", 100.0 * b_tp / h_tp);
    println!("ports: fresh connections, one HTTP GET each (busybox httpd, 500 in a row): host networking {h_cr:.0}/s, bridge through a published port {b_cr:.0}/s ({:.0}%)", 100.0 * b_cr / h_cr);
    println!("ports: no proxy process per published port (Docker's docker-proxy: one process per port and address family)");
}

fn rss() {
    let env = TestEnv::new();
    for i in 0..10 {
        env.put_desired(
            &format!("br{i}.json"),
            &server_task(&format!("br{i}"), "bridge", 5001, 80),
        );
    }
    let agent = env.agent(&[]);
    env.wait_status("10 bridged tasks running with ports", 120, |st| {
        (0..10).all(|i| binding(st, &format!("br{i}"), 1) != 0)
    });
    std::thread::sleep(Duration::from_secs(3));
    let pid = agent.pid();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    println!(
        "rss: agent with 10 bridged tasks (10 namespaces, veths, 20 published ports): VmRSS {} KiB, PSS {} KiB, private dirty {} KiB ({} build)",
        field(&status, "VmRSS:"),
        field(&smaps, "Pss:"),
        field(&smaps, "Private_Dirty:"),
        if cfg!(debug_assertions) { "debug" } else { "release" }
    );
    let (n, pss, dirty) = common::monitors_memory(&env.state());
    println!(
        "rss: {n} container monitors: PSS {pss} KiB in all, private dirty {dirty} KiB in all ({} KiB each)",
        dirty / n.max(1)
    );
}

fn main() {
    if want("ports") {
        ports();
    }
    if want("rss") {
        rss();
    }
}
