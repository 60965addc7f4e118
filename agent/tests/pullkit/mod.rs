//! Real parts for the pull tests: Debian's `docker-registry` on a loopback port
//! (filesystem storage in a temp dir, optionally htpasswd auth and TLS with a test CA
//! made by openssl), `skopeo` pushes, and a fault-injecting HTTP proxy (cut after N
//! bytes, throttle, strip Range, flip a body byte) plus a hostile server for answers
//! no real registry gives (garbage, huge or unknown manifests).
#![allow(dead_code)]

use std::fs;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// A running `docker-registry serve`, killed on drop.
pub struct Registry {
    child: Child,
    pub addr: String,
    pub dir: tempfile::TempDir,
    /// The test CA (PEM) when TLS is on.
    pub ca: Option<PathBuf>,
    pub creds: Option<(String, String)>,
}

#[derive(Default)]
pub struct RegistryOpts {
    pub htpasswd: Option<(&'static str, &'static str)>,
    pub tls: bool,
}

impl Registry {
    pub fn start(opts: RegistryOpts) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let mut yml = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
            dir.path().join("data").display()
        );
        let mut ca = None;
        if opts.tls {
            let (ca_pem, cert, key) = make_certs(dir.path());
            yml.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                cert.display(),
                key.display()
            ));
            ca = Some(ca_pem);
        }
        if let Some((user, pass)) = opts.htpasswd {
            let file = dir.path().join("htpasswd");
            let st = Command::new("htpasswd")
                .args(["-Bbc"])
                .arg(&file)
                .args([user, pass])
                .stderr(Stdio::null())
                .status()
                .expect("htpasswd (apt-get install apache2-utils)");
            assert!(st.success());
            yml.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: skerry-test\n    path: {}\n",
                file.display()
            ));
        }
        let config = dir.path().join("config.yml");
        fs::write(&config, yml).expect("config");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(fs::File::create(dir.path().join("log")).expect("log"))
            .spawn()
            .expect("docker-registry");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(&addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "registry did not listen on {addr}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Self {
            child,
            addr,
            dir,
            ca,
            creds: opts.htpasswd.map(|(u, p)| (u.to_owned(), p.to_owned())),
        }
    }

    /// `skopeo copy` of an OCI layout (tag `latest`) to `name:tag` here (`--all` for indexes).
    pub fn push(&self, layout: &Path, name: &str, tag: &str) {
        let mut cmd = Command::new("skopeo");
        cmd.args(["copy", "--all", "--dest-tls-verify=false"]);
        if let Some((u, p)) = &self.creds {
            cmd.arg(format!("--dest-creds={u}:{p}"));
        }
        let out = cmd
            .arg(format!("oci:{}:latest", layout.display()))
            .arg(format!("docker://{}/{name}:{tag}", self.addr))
            .output()
            .expect("skopeo");
        assert!(
            out.status.success(),
            "skopeo push {}: {}",
            layout.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A CA and a server cert for 127.0.0.1 signed by it: (ca.pem, cert.pem, key.pem).
fn make_certs(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let p = |n: &str| dir.join(n);
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=skerry test CA",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "key.pem",
        "-out",
        "srv.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    fs::write(p("ext.cnf"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n").expect("ext");
    run(&[
        "x509",
        "-req",
        "-in",
        "srv.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "cert.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
    (p("ca.pem"), p("cert.pem"), p("key.pem"))
}

// ---- fault-injecting proxy -------------------------------------------------------------

/// What the proxy does to traffic (changeable while it runs).
#[derive(Default)]
pub struct Faults {
    /// Cut the connection when the total bytes sent to clients reach each of these.
    pub cut_at: Mutex<Vec<u64>>,
    /// Strip `Range` from requests (the registry then answers 200).
    pub strip_range: AtomicBool,
    /// Flip one byte of the body of the next response larger than this many bytes.
    pub corrupt_next_over: Mutex<Option<u64>>,
    /// Bytes per second to clients (0: unlimited).
    pub throttle: AtomicU64,
    /// Stop forwarding (hold the connection open, send nothing) after this many bytes.
    pub stall_after: Mutex<Option<u64>>,
}

/// An HTTP proxy in front of a plain-HTTP registry: one request per connection
/// (`Connection: close`), counting the bytes it sends to clients.
pub struct Proxy {
    pub addr: String,
    pub faults: Arc<Faults>,
    pub sent: Arc<AtomicU64>,
    pub cuts: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    pub fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let faults = Arc::new(Faults::default());
        let sent = Arc::new(AtomicU64::new(0));
        let cuts = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (f, s, c, st, up) = (
            faults.clone(),
            sent.clone(),
            cuts.clone(),
            stop.clone(),
            upstream.to_owned(),
        );
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (f, s, c, up) = (f.clone(), s.clone(), c.clone(), up.clone());
                std::thread::spawn(move || {
                    let _ = handle(conn, &up, &f, &s, &c);
                });
            }
        });
        Self {
            addr,
            faults,
            sent,
            cuts,
            stop,
        }
    }

    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(&self.addr);
    }
}

fn read_head(conn: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if conn.read(&mut byte)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        head.push(byte[0]);
    }
    Ok(head)
}

fn handle(
    mut client: TcpStream,
    upstream: &str,
    f: &Faults,
    sent: &AtomicU64,
    cuts: &AtomicU64,
) -> std::io::Result<()> {
    let head = String::from_utf8_lossy(&read_head(&mut client)?).into_owned();
    let mut lines: Vec<&str> = head.trim_end().split("\r\n").collect();
    lines.retain(|l| {
        let lower = l.to_ascii_lowercase();
        let range = f.strip_range.load(Ordering::Relaxed) && lower.starts_with("range:");
        !(lower.starts_with("connection:") || range)
    });
    let request = format!("{}\r\nConnection: close\r\n\r\n", lines.join("\r\n"));
    let mut server = TcpStream::connect(upstream)?;
    server.write_all(request.as_bytes())?;
    let resp_head = read_head(&mut server)?;
    let mut body_seen = 0u64;
    let content_length = String::from_utf8_lossy(&resp_head)
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse::<u64>().unwrap_or(0))
        })
        .unwrap_or(0);
    let corrupt = {
        let mut c = f.corrupt_next_over.lock().expect("lock");
        match *c {
            Some(over) if content_length > over => {
                *c = None;
                Some(content_length / 2)
            }
            _ => None,
        }
    };
    let mut pending = resp_head;
    let mut buf = vec![0u8; 16 * 1024];
    let mut first = true;
    loop {
        let mut data = if first {
            first = false;
            std::mem::take(&mut pending)
        } else {
            let n = server.read(&mut buf)?;
            if n == 0 {
                break;
            }
            let mut d = buf[..n].to_vec();
            if let Some(at) = corrupt {
                if at >= body_seen && at < body_seen + n as u64 {
                    d[(at - body_seen) as usize] ^= 0xff;
                }
            }
            body_seen += n as u64;
            d
        };
        // Cut: send only up to the next threshold, then close.
        let total = sent.load(Ordering::Relaxed);
        let next_cut = f.cut_at.lock().expect("lock").first().copied();
        let mut cut = false;
        if let Some(at) = next_cut {
            if total + data.len() as u64 >= at {
                data.truncate(at.saturating_sub(total) as usize);
                f.cut_at.lock().expect("lock").remove(0);
                cut = true;
            }
        }
        // Copied out: the guard must not be held through the stall below.
        let stall_after = *f.stall_after.lock().expect("lock");
        if let Some(after) = stall_after {
            if total + data.len() as u64 >= after {
                data.truncate(after.saturating_sub(total) as usize);
                client.write_all(&data)?;
                sent.fetch_add(data.len() as u64, Ordering::Relaxed);
                std::thread::sleep(Duration::from_secs(30));
                return Ok(());
            }
        }
        let rate = f.throttle.load(Ordering::Relaxed);
        for piece in data.chunks(4096) {
            client.write_all(piece)?;
            sent.fetch_add(piece.len() as u64, Ordering::Relaxed);
            if rate > 0 {
                std::thread::sleep(Duration::from_secs_f64(piece.len() as f64 / rate as f64));
            }
        }
        if cut {
            cuts.fetch_add(1, Ordering::Relaxed);
            let _ = client.shutdown(Shutdown::Both);
            return Ok(());
        }
    }
    Ok(())
}

// ---- hostile server ---------------------------------------------------------------------

/// A server answering every request with `answer(path)`: raw bytes, sent as they are.
pub struct Hostile {
    pub addr: String,
}

impl Hostile {
    pub fn start(answer: impl Fn(&str) -> Vec<u8> + Send + Sync + 'static) -> Self {
        Self::start_with_head(move |head| answer(head.split(' ').nth(1).unwrap_or("/")))
    }

    /// Like [`start`](Self::start), given the whole request head.
    pub fn start_with_head(answer: impl Fn(&str) -> Vec<u8> + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let answer = Arc::new(answer);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let answer = answer.clone();
                std::thread::spawn(move || {
                    let Ok(head) = read_head(&mut conn) else {
                        return;
                    };
                    let head = String::from_utf8_lossy(&head).into_owned();
                    let _ = conn.write_all(&answer(&head));
                    let _ = conn.shutdown(Shutdown::Write);
                });
            }
        });
        Self { addr }
    }
}

/// An HTTP/1.1 answer with a body and `Connection: close`.
pub fn http(status: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

// ---- layouts -------------------------------------------------------------------------------

pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn put_blob(layout: &Path, bytes: &[u8]) -> (String, usize) {
    let digest = sha256(bytes);
    fs::write(layout.join("blobs/sha256").join(&digest[7..]), bytes).expect("blob");
    (digest, bytes.len())
}

/// One layer of a generated image: its blob and the uncompressed tar it decodes to.
pub struct Layer {
    pub media_type: &'static str,
    pub blob: Vec<u8>,
    pub tar: Vec<u8>,
}

impl Layer {
    pub fn gzip(tar: Vec<u8>) -> Self {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&tar).expect("gzip");
        Self {
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip",
            blob: enc.finish().expect("gzip"),
            tar,
        }
    }

    pub fn zstd(tar: Vec<u8>) -> Self {
        let blob = ruzstd::encoding::compress_to_vec(
            &tar[..],
            ruzstd::encoding::CompressionLevel::Fastest,
        );
        Self {
            media_type: "application/vnd.oci.image.layer.v1.tar+zstd",
            blob,
            tar,
        }
    }
}

/// A tar holding `files` (path, content), all 0644 root-owned.
pub fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, name, *data).expect("append");
    }
    b.into_inner().expect("tar")
}

/// A one-image OCI layout (tag `latest`) for `arch` with these layers; returns the
/// manifest digest.
pub fn generate_test_layout(layout: &Path, arch: &str, layers: &[Layer]) -> String {
    fs::create_dir_all(layout.join("blobs/sha256")).expect("mkdir");
    fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .expect("oci-layout");
    let mut descriptors = Vec::new();
    let mut diff_ids = Vec::new();
    for layer in layers {
        let (digest, size) = put_blob(layout, &layer.blob);
        descriptors.push(
            serde_json::json!({"mediaType": layer.media_type, "digest": digest, "size": size}),
        );
        diff_ids.push(sha256(&layer.tar));
    }
    let config = serde_json::json!({
        "architecture": arch, "os": "linux", "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let (config_digest, config_size) = put_blob(layout, config.to_string().as_bytes());
    let manifest = serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
        "layers": descriptors,
    });
    let (manifest_digest, manifest_size) = put_blob(layout, manifest.to_string().as_bytes());
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_digest,
        "size": manifest_size, "annotations": {"org.opencontainers.image.ref.name": "latest"}}]});
    fs::write(layout.join("index.json"), index.to_string()).expect("index");
    manifest_digest
}

/// `n` bytes that do not compress (a deterministic xorshift stream).
pub fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
