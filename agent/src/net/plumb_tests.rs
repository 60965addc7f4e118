//! Real namespaces, as root: a thread that unshares its own network namespace plays
//! the host, so nothing here touches the machine's network.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};

use super::*;
use crate::net::nft;

/// Runs `f` on a thread in a fresh network namespace (the test's "host").
fn on_fake_host<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare");
            f()
        })
        .join()
        .expect("fake host thread")
    })
}

/// Runs `f` on a thread inside the namespace at `ns`.
fn in_ns<T: Send>(ns: &Path, f: impl FnOnce() -> T + Send) -> T {
    let file = std::fs::File::open(ns).expect("open netns");
    std::thread::scope(|s| {
        s.spawn(|| {
            nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
            f()
        })
        .join()
        .expect("netns thread")
    })
}

fn serve_once(addr: SocketAddr, reply: &'static [u8]) -> TcpListener {
    let l = TcpListener::bind(addr).expect("bind");
    let l2 = l.try_clone().expect("clone listener");
    std::thread::spawn(move || {
        if let Ok((mut c, _)) = l2.accept() {
            let _ = c.write_all(reply);
        }
    });
    l
}

fn fetch(addr: SocketAddr) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    out
}

#[test]
fn net_bridge_plumbing_connects_a_namespace_both_ways_and_tears_down() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bridge = Bridge {
        name: "skerry0".into(),
        gateway: Ipv4Addr::new(10, 88, 0, 1),
        prefix: 24,
    };
    let a = Attachment {
        netns: dir.path().join("netns/t1.main"),
        host_veth: "sk-t1main".into(),
        address: Ipv4Addr::new(10, 88, 0, 2),
    };
    netns::create(&a.netns).expect("create netns");
    assert!(netns::is_mounted(&a.netns));
    on_fake_host(|| {
        let mut rt = Rtnl::new().expect("rtnl");
        let lo = rt.require_link("lo").expect("lo");
        rt.set_up(lo, None).expect("lo up");
        let br = ensure_bridge(&mut rt, &bridge).expect("bridge");
        attach(&mut rt, br, &bridge, &a).expect("attach");
        // Again, over what exists: nothing fails, nothing doubles.
        assert_eq!(ensure_bridge(&mut rt, &bridge).expect("bridge again"), br);
        attach(&mut rt, br, &bridge, &a).expect("attach again");

        // Host → container, on the bridge.
        let inside = SocketAddr::from((a.address, 8080));
        let _l = in_ns(&a.netns, || serve_once(inside, b"from-container"));
        assert_eq!(fetch(inside), "from-container");
        // Container → an address off its subnet (on the host's lo), which only the
        // default route via the bridge reaches.
        let off_subnet = Ipv4Addr::new(192, 0, 2, 1);
        rt.add_address(lo, off_subnet, 32).expect("host address");
        let _h = serve_once(SocketAddr::from((off_subnet, 9090)), b"from-host");
        let got = in_ns(&a.netns, || fetch(SocketAddr::from((off_subnet, 9090))));
        assert_eq!(got, "from-host");

        detach(&mut rt, &a).expect("detach");
        assert_eq!(rt.link_index(&a.host_veth).expect("lookup"), None);
        detach(&mut rt, &a).expect("detach twice");
    });
    assert!(!a.netns.exists(), "namespace file left behind");
}

#[test]
fn net_netns_survives_without_any_process_and_remove_is_idempotent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("ns");
    netns::create(&p).expect("create");
    // No process is in it; the bind mount alone keeps it alive and usable.
    let mut rt = Rtnl::in_netns(&p).expect("rtnl in netns");
    assert!(rt.require_link("lo").is_ok());
    netns::remove(&p).expect("remove");
    assert!(!netns::is_mounted(&p) && !p.exists());
    netns::remove(&p).expect("remove again");
}

/// Accepts connections forever (the thread ends with the test process), answering
/// each with `reply` and the peer's address.
fn serve(l: TcpListener, reply: &'static str) {
    std::thread::spawn(move || {
        for c in l.incoming().flatten() {
            let mut c = c;
            let peer = c
                .peer_addr()
                .map(|p| p.ip().to_string())
                .unwrap_or_default();
            let _ = c.write_all(format!("{reply} {peer}").as_bytes());
        }
    });
}

#[test]
fn net_published_ports_answer_from_host_loopback_and_another_namespace() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bridge = Bridge {
        name: "skerry0".into(),
        gateway: Ipv4Addr::new(10, 88, 0, 1),
        prefix: 24,
    };
    let ctr = Attachment {
        netns: dir.path().join("ctr"),
        host_veth: "sk-ctr".into(),
        address: Ipv4Addr::new(10, 88, 0, 2),
    };
    // The "other host": its own namespace on a point-to-point link to the host.
    let client_ns = dir.path().join("client");
    netns::create(&ctr.netns).expect("container netns");
    netns::create(&client_ns).expect("client netns");
    let (host_ip, client_ip) = (
        Ipv4Addr::new(192, 168, 77, 1),
        Ipv4Addr::new(192, 168, 77, 2),
    );
    on_fake_host(|| {
        let mut rt = Rtnl::new().expect("rtnl");
        let lo = rt.require_link("lo").expect("lo");
        rt.set_up(lo, None).expect("lo up");
        let br = ensure_bridge(&mut rt, &bridge).expect("bridge");
        attach(&mut rt, br, &bridge, &ctr).expect("attach");
        let cfile = std::fs::File::open(&client_ns).expect("client ns");
        rt.add_veth("sk-cli", "eth0", cfile.as_fd())
            .expect("client veth");
        let cli = rt.require_link("sk-cli").expect("sk-cli");
        rt.add_address(cli, host_ip, 24).expect("host address");
        rt.set_up(cli, None).expect("sk-cli up");
        let mut inner = Rtnl::in_netns(&client_ns).expect("client rtnl");
        let eth0 = inner.require_link("eth0").expect("eth0");
        inner
            .add_address(eth0, client_ip, 24)
            .expect("client address");
        inner.set_up(eth0, None).expect("eth0 up");

        in_ns(&ctr.netns, || {
            serve(
                TcpListener::bind((ctr.address, 80)).expect("bind tcp"),
                "tcp-from-container",
            );
            let udp = std::net::UdpSocket::bind((ctr.address, 53)).expect("bind udp");
            std::thread::spawn(move || {
                let mut b = [0u8; 64];
                while let Ok((n, from)) = udp.recv_from(&mut b) {
                    let _ = udp.send_to(&b[..n], from);
                }
            });
        });
        let rules = nft::Ruleset {
            subnet: Ipv4Addr::new(10, 88, 0, 0),
            prefix: 24,
            dnat: vec![
                nft::Dnat {
                    protocol: 6,
                    host_port: 8080,
                    host_ip: None,
                    address: ctr.address,
                    port: 80,
                },
                nft::Dnat {
                    protocol: 17,
                    host_port: 5353,
                    host_ip: None,
                    address: ctr.address,
                    port: 53,
                },
            ],
        };
        nft::apply(nft::TABLE, &rules).expect("nft apply");
        nft::apply(nft::TABLE, &rules).expect("nft apply again (replaces)");

        // Host loopback: DNAT in output, masqueraded to the bridge address.
        let got = fetch(SocketAddr::from(([127, 0, 0, 1], 8080)));
        assert_eq!(got, format!("tcp-from-container {}", bridge.gateway));
        // Another namespace: DNAT in prerouting; the container sees the client.
        let via = SocketAddr::from((host_ip, 8080));
        let got = in_ns(&client_ns, || fetch(via));
        assert_eq!(got, format!("tcp-from-container {client_ip}"));
        let echoed = in_ns(&client_ns, || {
            let s = std::net::UdpSocket::bind((client_ip, 0)).expect("udp client");
            s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
                .expect("timeout");
            s.send_to(b"ping", (host_ip, 5353)).expect("send");
            let mut b = [0u8; 16];
            let n = s.recv(&mut b).expect("udp echo through DNAT");
            b[..n].to_vec()
        });
        assert_eq!(echoed, b"ping");

        nft::remove(nft::TABLE).expect("nft remove");
        nft::remove(nft::TABLE).expect("nft remove again");
        let refused = in_ns(&client_ns, || TcpStream::connect(via).is_err());
        assert!(refused, "port still published after the table was removed");
        detach(&mut rt, &ctr).expect("detach");
    });
    netns::remove(&client_ns).expect("remove client ns");
}
