//! Bridge networking with real containers, as root: published ports answer from the
//! host's loopback and from a client in a network namespace the test creates,
//! `hostPort` 0 gets a port that `ps` and `status.json` show, a taken port is refused
//! naming it, a task's containers reach each other by name and `links` alias, the
//! agent `kill -9`ed and restarted keeps the network as it was, a simulated reboot
//! (namespaces and rules gone) rebuilds it, and a stopped task leaves nothing behind.
//! Only loopback and namespaces the tests create are reached.

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::fleet::{device_events, Fleet};
use common::{task_container, TestEnv};
use serde_json::Value;

/// A web container (httpd serving `/i`, published on `host_port`, 0: dynamic; an
/// echo server on 7, published on a dynamic port), and
/// a client that fetches it by name and by link alias, then stays up.
fn web_task(family: &str, host_port: u16, extra: &str) -> String {
    format!(
        r#"{{"family": "{family}", "containerDefinitions": [
  {{"name": "web", "image": "busybox:latest", "memory": 32, "stopTimeout": 2{extra},
    "command": ["sh", "-c", "echo hello-$HOSTNAME > /tmp/i; nc -ll -p 7 -e cat & exec httpd -f -p 80 -h /tmp"],
    "portMappings": [{{"containerPort": 80, "hostPort": {host_port}}}, {{"containerPort": 7}}]}},
  {{"name": "cli", "image": "busybox:latest", "memory": 32, "stopTimeout": 2, "essential": false,
    "links": ["web:www"],
    "command": ["sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10; do wget -qO- http://www/i && wget -qO- http://web/i && break; sleep 0.5; done; exec sleep 3600"]}}
]}}"#
    )
}

/// GET /i from `addr:port` (a fresh connection), with retries while DNAT settles.
fn fetch(addr: Ipv4Addr, port: u16) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = (|| -> std::io::Result<String> {
            let mut s = TcpStream::connect_timeout(&(addr, port).into(), Duration::from_secs(2))?;
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
            s.write_all(b"GET /i HTTP/1.0\r\n\r\n")?;
            let mut out = String::new();
            s.read_to_string(&mut out)?;
            Ok(out)
        })();
        match got {
            Ok(body) if body.contains("hello-") => return body,
            other if Instant::now() >= deadline => panic!("GET {addr}:{port}/i: {other:?}"),
            _ => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

fn run(cmd: &str, args: &[&str]) -> std::process::Output {
    Command::new(cmd).args(args).output().expect(cmd)
}

fn ok(cmd: &str, args: &[&str]) -> String {
    let out = run(cmd, args);
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A client network namespace of the test's own, linked to the host by a veth pair
/// on a /30; removed on drop.
struct ClientNs {
    name: String,
    host_veth: String,
    host_ip: Ipv4Addr,
}

impl ClientNs {
    fn new(tag: u8) -> Self {
        let pid = std::process::id();
        let name = format!("skt-{pid}-{tag}");
        let host_veth = format!("skth{}{tag}", pid % 100_000);
        let peer = format!("sktc{}{tag}", pid % 100_000);
        let net = 64 + (pid % 60) as u8;
        let host_ip = Ipv4Addr::new(10, 213, net, 4 * tag + 1);
        let client_ip = Ipv4Addr::new(10, 213, net, 4 * tag + 2);
        let ns = Self {
            name: name.clone(),
            host_veth: host_veth.clone(),
            host_ip,
        };
        ok("ip", &["netns", "add", &name]);
        ok(
            "ip",
            &[
                "link", "add", &host_veth, "type", "veth", "peer", "name", &peer,
            ],
        );
        ok("ip", &["link", "set", &peer, "netns", &name]);
        ok(
            "ip",
            &["addr", "add", &format!("{host_ip}/30"), "dev", &host_veth],
        );
        ok("ip", &["link", "set", &host_veth, "up"]);
        let inside = |args: &[&str]| {
            let mut all = vec!["netns", "exec", name.as_str(), "ip"];
            all.extend_from_slice(args);
            ok("ip", &all);
        };
        inside(&["addr", "add", &format!("{client_ip}/30"), "dev", &peer]);
        inside(&["link", "set", &peer, "up"]);
        inside(&["link", "set", "lo", "up"]);
        ns
    }

    /// GET /i from inside the namespace (a thread that joins it), to the host's
    /// end of the veth.
    fn fetch(&self, port: u16) -> String {
        let ns = std::fs::File::open(format!("/run/netns/{}", self.name)).expect("netns file");
        let ip = self.host_ip;
        std::thread::scope(|s| {
            s.spawn(|| {
                nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
                fetch(ip, port)
            })
            .join()
            .expect("client thread")
        })
    }
}

impl Drop for ClientNs {
    fn drop(&mut self) {
        let _ = run("ip", &["link", "del", &self.host_veth]);
        let _ = run("ip", &["netns", "del", &self.name]);
    }
}

/// The task's `network.json`.
fn network(env: &TestEnv, task: &str) -> Value {
    let p = env.state().join("tasks").join(task).join("network.json");
    std::fs::read_to_string(&p)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null)
}

/// What the task's network left on the host: (netns files, veth links, table).
struct Footprint {
    netns: Vec<PathBuf>,
    veths: Vec<String>,
    table: String,
}

fn footprint(net: &Value) -> Footprint {
    let containers = net["containers"].as_array().cloned().unwrap_or_default();
    let netns: Vec<PathBuf> = containers
        .iter()
        .filter_map(|c| c["netns"].as_str().map(PathBuf::from))
        .collect();
    let veths = containers
        .iter()
        .filter_map(|c| c["host_veth"].as_str().map(str::to_string))
        .collect();
    // netns dir `/run/skerry/netns-<hash>` ↔ table `skerry-<hash>`.
    let dir = netns[0]
        .parent()
        .and_then(|d| d.file_name())
        .map(|d| d.to_string_lossy().into_owned());
    let table = dir.unwrap_or_default().replace("netns", "skerry");
    Footprint {
        netns,
        veths,
        table,
    }
}

fn link_index(name: &str) -> Option<String> {
    std::fs::read_to_string(format!("/sys/class/net/{name}/ifindex")).ok()
}

fn table_exists(table: &str) -> bool {
    run("nft", &["list", "table", "ip", table]).status.success()
}

fn host_port(st: &Value, task: &str) -> u16 {
    binding(st, task, 0)
}

fn binding(st: &Value, task: &str, i: usize) -> u16 {
    task_container(st, task, "web")["network_bindings"][i]["hostPort"]
        .as_u64()
        .and_then(|p| u16::try_from(p).ok())
        .unwrap_or(0)
}

fn ps_text(env: &TestEnv) -> String {
    let out = env.skerry(&["ps"]).output().expect("ps");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn bridge_published_port_from_loopback_and_netns_survives_kill9_and_leaves_nothing() {
    let env = TestEnv::new();
    env.put_desired("brweb.json", &web_task("brweb", 0, ""));
    let mut agent = env.agent(&[]);
    let st = env.wait_status("web running with a bound port", 60, |st| {
        task_container(st, "brweb", "web")["state"] == "RUNNING" && host_port(st, "brweb") != 0
    });
    let port = host_port(&st, "brweb");
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").expect("range");
    let (lo, hi) = range.split_once(char::is_whitespace).expect("two numbers");
    let (lo, hi): (u16, u16) = (
        lo.trim().parse().expect("low"),
        hi.trim().parse().expect("high"),
    );
    assert!(
        (lo..=hi).contains(&port),
        "hostPort 0 got {port}, outside {lo}-{hi}"
    );
    let b = &task_container(&st, "brweb", "web")["network_bindings"][0];
    assert_eq!(
        (b["containerPort"].as_u64(), b["protocol"].as_str()),
        (Some(80), Some("tcp"))
    );
    assert!(
        ps_text(&env).contains(&format!("0.0.0.0:{port}->80/tcp")),
        "{}",
        ps_text(&env)
    );
    // From the host's loopback and from another namespace.
    assert!(fetch(Ipv4Addr::LOCALHOST, port).contains("hello-web"));
    let client = ClientNs::new(1);
    assert!(client.fetch(port).contains("hello-web"));
    // The client container reached web by its name and its link alias.
    let deadline = Instant::now() + Duration::from_secs(20);
    while env.log("brweb", "cli").matches("hello-web").count() < 2 {
        assert!(
            Instant::now() < deadline,
            "cli log: {}",
            env.log("brweb", "cli")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let hosts = std::fs::read_to_string(env.container_dir("brweb", "cli").join("etc/hosts"))
        .expect("hosts");
    assert!(hosts.lines().any(|l| l.ends_with("\tweb www")), "{hosts}");

    // kill -9 and restart: the same namespaces and links, the port still answers and
    // a connection made before goes on working.
    let echo_port = binding(&st, "brweb", 1);
    assert!(echo_port != 0 && echo_port != port, "{st:#}");
    let mut echo = TcpStream::connect((Ipv4Addr::LOCALHOST, echo_port)).expect("echo connect");
    echo.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut round_trip = |text: &str| {
        echo.write_all(text.as_bytes()).expect("echo write");
        let mut buf = vec![0u8; text.len()];
        echo.read_exact(&mut buf).expect("echo read");
        String::from_utf8_lossy(&buf).into_owned()
    };
    assert_eq!(round_trip("before\n"), "before\n");
    let net = network(&env, "brweb");
    let fp = footprint(&net);
    let ino = |p: &PathBuf| {
        std::fs::metadata(p)
            .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
            .ok()
    };
    let before: Vec<_> = fp.netns.iter().map(ino).collect();
    let idx_before: Vec<_> = fp.veths.iter().map(|v| link_index(v)).collect();
    assert!(idx_before.iter().all(Option::is_some), "{idx_before:?}");
    agent.kill9();
    assert!(
        fetch(Ipv4Addr::LOCALHOST, port).contains("hello-web"),
        "while the agent is dead"
    );
    let _agent = env.agent(&[]);
    env.wait_status("re-adopted", 60, |st| {
        task_container(st, "brweb", "web")["state"] == "RUNNING" && host_port(st, "brweb") == port
    });
    std::thread::sleep(Duration::from_secs(1));
    assert!(fetch(Ipv4Addr::LOCALHOST, port).contains("hello-web"));
    assert!(client.fetch(port).contains("hello-web"));
    let after: Vec<_> = fp.netns.iter().map(ino).collect();
    assert_eq!(before, after, "namespaces kept");
    assert_eq!(
        idx_before,
        fp.veths.iter().map(|v| link_index(v)).collect::<Vec<_>>(),
        "veths kept"
    );
    assert_eq!(network(&env, "brweb"), net, "allocation kept");
    assert_eq!(round_trip("after\n"), "after\n", "the connection survived");

    // Stop: nothing is left.
    assert!(table_exists(&fp.table), "{} before the stop", fp.table);
    env.remove_desired("brweb.json");
    env.wait_status("task gone", 60, |st| st["tasks"].get("brweb").is_none());
    for p in &fp.netns {
        assert!(!p.exists(), "{} left behind", p.display());
    }
    for v in &fp.veths {
        assert!(link_index(v).is_none(), "veth {v} left behind");
    }
    assert!(!table_exists(&fp.table), "table {} left behind", fp.table);
    let dir = fp.netns[0].parent().expect("netns dir");
    assert!(!dir.exists(), "{} left behind", dir.display());
    assert!(TcpStream::connect_timeout(
        &(Ipv4Addr::LOCALHOST, port).into(),
        Duration::from_secs(1)
    )
    .is_err());
}

#[test]
fn bridge_same_host_port_twice_is_refused_naming_the_port() {
    let env = TestEnv::new();
    // A port that is free now (bound and released).
    let port = std::net::TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0))
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let mut first = env.spawn("brone", &web_task("brone", port, ""), false);
    env.wait_running("brone", "web");
    assert!(fetch(Ipv4Addr::LOCALHOST, port).contains("hello-web"));
    let second = env.run("brtwo", &web_task("brtwo", port, ""));
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success(), "second task ran: {err}");
    assert!(
        err.contains(&format!(
            "host port {port}/tcp is taken by task brone container web"
        )),
        "{err}"
    );
    // The first one still serves; the refused one left no claim or namespace.
    assert!(fetch(Ipv4Addr::LOCALHOST, port).contains("hello-web"));
    assert_eq!(network(&env, "brtwo"), Value::Null);
    let _ = env.skerry(&["stop", "brone"]).output();
    let _ = first.wait();
}

#[test]
fn bridge_simulated_reboot_rebuilds_namespaces_and_rules() {
    let env = TestEnv::with_config("restart_backoff_secs = 1");
    let policy = r#", "restartPolicy": {"enabled": true, "restartAttemptPeriod": 60}"#;
    env.put_desired("brboot.json", &web_task("brboot", 0, policy));
    let mut agent = env.agent(&[("SKERRY_TEST_TIME_SCALE", "20")]);
    let st = env.wait_status("web running", 60, |st| {
        task_container(st, "brboot", "web")["state"] == "RUNNING" && host_port(st, "brboot") != 0
    });
    let port = host_port(&st, "brboot");
    assert!(fetch(Ipv4Addr::LOCALHOST, port).contains("hello-web"));
    std::thread::sleep(Duration::from_secs(4)); // past restartAttemptPeriod (20x)
    let fp = footprint(&network(&env, "brboot"));
    // "Reboot": the agent, monitors and containers die, /run's namespaces and the
    // kernel's rules are gone.
    agent.kill9();
    for name in ["web", "cli"] {
        let m = env.container_dir("brboot", name).join("monitor.json");
        if let Some(v) = std::fs::read_to_string(&m)
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        {
            for k in ["monitor_pid", "container_pid"] {
                if let Some(pid) = v[k].as_i64() {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid as i32),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    for p in &fp.netns {
        let _ = nix::mount::umount2(p, nix::mount::MntFlags::MNT_DETACH);
        let _ = std::fs::remove_file(p);
    }
    let _ = run("nft", &["delete", "table", "ip", &fp.table]);
    std::thread::sleep(Duration::from_millis(300));
    for v in &fp.veths {
        assert!(link_index(v).is_none(), "veth {v} outlived its namespace");
    }
    let _agent = env.agent(&[("SKERRY_TEST_TIME_SCALE", "20")]);
    env.wait_status("web restarted", 60, |st| {
        task_container(st, "brboot", "web")["state"] == "RUNNING"
            && task_container(st, "brboot", "web")["restart_count"].as_u64() >= Some(1)
    });
    assert!(
        fetch(Ipv4Addr::LOCALHOST, port).contains("hello-web"),
        "same port after the reboot"
    );
    assert!(table_exists(&fp.table));
    for p in &fp.netns {
        assert!(p.exists(), "{} rebuilt", p.display());
    }
    env.remove_desired("brboot.json");
    env.wait_status("task gone", 60, |st| st["tasks"].get("brboot").is_none());
    assert!(!table_exists(&fp.table));
}

#[test]
fn bridge_host_ports_reach_events_ctl_status_and_the_reported_state() {
    let f = Fleet::start(&[("gw1", &[])]);
    let env = f.device("gw1", &[]);
    let _agent = env.agent(&[]);
    let def = f.dir.path().join("brrep.json");
    std::fs::write(&def, web_task("brrep", 0, "")).expect("write");
    f.ctl_ok(&[
        "apply",
        "--device",
        "gw1",
        "--wait",
        "120",
        def.to_str().expect("path"),
    ]);
    let st = env.wait_status("web running with a bound port", 60, |st| {
        task_container(st, "brrep", "web")["state"] == "RUNNING" && host_port(st, "brrep") != 0
    });
    let (web, echo) = (host_port(&st, "brrep"), binding(&st, "brrep", 1));
    // Retained reported state, read with mosquitto_sub: ECS networkBindings.
    let r = f.wait_reported("gw1", "host ports reported", 30, |r| {
        r.tasks
            .iter()
            .flat_map(|t| &t.containers)
            .any(|c| c.name == "web" && !c.host_ports.is_empty())
    });
    let ports: Vec<_> = r
        .tasks
        .iter()
        .filter(|t| t.id == "brrep")
        .flat_map(|t| &t.containers)
        .map(|c| (c.name.as_str(), c.host_ports.clone()))
        .collect();
    assert_eq!(
        ports,
        vec![
            (
                "web",
                vec![(80, web, "tcp".into()), (7, echo, "tcp".into())]
            ),
            ("cli", vec![])
        ],
        "{r:#?}"
    );
    let status = f.ctl_ok(&["status", "--device", "gw1"]);
    assert!(status.contains(&format!("{web}->80/tcp")), "{status}");
    // One event per container start that published ports, none for the client.
    let events = device_events(&env);
    let line =
        format!("task brrep container web: ports 0.0.0.0:{web}->80/tcp, 0.0.0.0:{echo}->7/tcp");
    assert_eq!(events.matches(&line).count(), 1, "{events}");
    assert!(!events.contains("container cli: ports"), "{events}");
}
