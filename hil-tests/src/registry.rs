//! The fleet's image registry on the host: Debian's `docker-registry` on 127.0.0.1 (a
//! free port), filesystem storage under the run directory, plain HTTP (the board lists
//! it as insecure). The board reaches it at 10.0.2.2:PORT. Images are pushed with
//! `skopeo` from OCI layouts; a new revision's layer is made with GNU tar and gzip.
//! docker-registry is killed by pid when the [`Registry`] is dropped.

use std::fs;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::broker::HOST_FROM_GUEST;
use crate::{HilError, Result};

/// A running docker-registry.
#[derive(Debug)]
pub struct Registry {
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn run(cmd: &mut Command, what: &str) -> Result<()> {
    let out = cmd
        .output()
        .map_err(|e| HilError::Failed(format!("{what}: {e}")))?;
    if !out.status.success() {
        return Err(HilError::Failed(format!(
            "{what}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

impl Registry {
    /// Starts docker-registry with its storage and log in `dir`.
    pub fn start(dir: &Path) -> Result<Self> {
        fs::create_dir_all(dir).map_err(|e| HilError::io("create", dir, e))?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| HilError::Failed(format!("no free port: {e}")))?
            .port();
        let config = dir.join("config.yml");
        let yml = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.join("data").display()
        );
        fs::write(&config, yml).map_err(|e| HilError::io("write", &config, e))?;
        let log = dir.join("registry.log");
        let log_file = fs::File::create(&log).map_err(|e| HilError::io("create", &log, e))?;
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .map_err(|e| HilError::Failed(format!("docker-registry: {e} (bash scripts/setup)")))?;
        let pid_file = dir.join("registry.pid");
        fs::write(&pid_file, child.id().to_string())
            .map_err(|e| HilError::io("write", &pid_file, e))?;
        let mut reg = Self {
            dir: dir.to_owned(),
            port,
            child: Some(child),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                reg.stop();
                return Err(HilError::Failed(format!(
                    "docker-registry did not listen on 127.0.0.1:{port}: {}",
                    fs::read_to_string(&log).unwrap_or_default()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(reg)
    }

    /// `host:port` as the board names it (and its agent config lists as insecure).
    pub fn guest_host(&self) -> String {
        format!("{HOST_FROM_GUEST}:{}", self.port)
    }

    /// Pushes the OCI layout's `latest` to `name:tag` (skopeo, plain HTTP).
    pub fn push(&self, layout: &Path, name: &str, tag: &str) -> Result<()> {
        run(
            Command::new("skopeo")
                .args(["copy", "--quiet", "--dest-tls-verify=false"])
                .arg(format!("oci:{}:latest", layout.display()))
                .arg(format!("docker://127.0.0.1:{}/{name}:{tag}", self.port)),
            &format!("skopeo copy {} to {name}:{tag}", layout.display()),
        )
    }

    /// A copy of `base` (an OCI layout, tag `latest`) in the registry's directory with
    /// one more gzip layer holding `files` under `/srv` (`(name, content)`): the tar is
    /// made by GNU tar, the config's `diff_ids`, the manifest and the index are
    /// rewritten here. (`umoci insert` 0.4.7 wrote a truncated gzip stream.)
    pub fn layout_with(&self, base: &Path, name: &str, files: &[(&str, &[u8])]) -> Result<PathBuf> {
        let layout = self.dir.join(name);
        let _ = fs::remove_dir_all(&layout);
        run(
            Command::new("cp").arg("-a").arg(base).arg(&layout),
            "copy the base layout",
        )?;
        let staging = self.dir.join(format!("{name}-files"));
        let _ = fs::remove_dir_all(&staging);
        for (path, content) in files {
            let at = staging.join("srv").join(path);
            if let Some(parent) = at.parent() {
                fs::create_dir_all(parent).map_err(|e| HilError::io("create", parent, e))?;
            }
            fs::write(&at, content).map_err(|e| HilError::io("write", &at, e))?;
        }
        let tar = self.dir.join(format!("{name}-layer.tar"));
        run(
            Command::new("tar")
                .arg("--owner=0")
                .arg("--group=0")
                .arg("--numeric-owner")
                .arg("-C")
                .arg(&staging)
                .arg("-cf")
                .arg(&tar)
                .arg("srv"),
            "tar of the new layer",
        )?;
        let raw = fs::read(&tar).map_err(|e| HilError::io("read", &tar, e))?;
        run(
            Command::new("gzip").arg("-n").arg("-f").arg(&tar),
            "gzip of the new layer",
        )?;
        let gz_path = tar.with_extension("tar.gz");
        let gz = fs::read(&gz_path).map_err(|e| HilError::io("read", &gz_path, e))?;
        let blobs = layout.join("blobs/sha256");
        let put = |bytes: &[u8]| -> Result<String> {
            let hex = sha256_hex(bytes);
            let path = blobs.join(&hex);
            fs::write(&path, bytes).map_err(|e| HilError::io("write", &path, e))?;
            Ok(format!("sha256:{hex}"))
        };
        let read_json = |digest: &str| -> Result<serde_json::Value> {
            let path = blobs.join(digest.trim_start_matches("sha256:"));
            let text = fs::read(&path).map_err(|e| HilError::io("read", &path, e))?;
            serde_json::from_slice(&text)
                .map_err(|e| HilError::Failed(format!("{}: {e}", path.display())))
        };
        let bad = |what: &str| HilError::Failed(format!("{}: {what}", base.display()));
        let index_path = layout.join("index.json");
        let index_text = fs::read(&index_path).map_err(|e| HilError::io("read", &index_path, e))?;
        let mut index: serde_json::Value = serde_json::from_slice(&index_text)
            .map_err(|e| HilError::Failed(format!("{}: {e}", index_path.display())))?;
        let manifest_digest = index["manifests"][0]["digest"]
            .as_str()
            .ok_or_else(|| bad("index.json has no manifest"))?
            .to_owned();
        let mut manifest = read_json(&manifest_digest)?;
        let config_digest = manifest["config"]["digest"]
            .as_str()
            .ok_or_else(|| bad("manifest has no config"))?
            .to_owned();
        let mut config = read_json(&config_digest)?;
        let layer_digest = put(&gz)?;
        config["rootfs"]["diff_ids"]
            .as_array_mut()
            .ok_or_else(|| bad("config has no rootfs.diff_ids"))?
            .push(format!("sha256:{}", sha256_hex(&raw)).into());
        let config_bytes = config.to_string().into_bytes();
        manifest["config"]["digest"] = put(&config_bytes)?.into();
        manifest["config"]["size"] = config_bytes.len().into();
        manifest["layers"]
            .as_array_mut()
            .ok_or_else(|| bad("manifest has no layers"))?
            .push(serde_json::json!({
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": layer_digest,
                "size": gz.len(),
            }));
        let manifest_bytes = manifest.to_string().into_bytes();
        index["manifests"][0]["digest"] = put(&manifest_bytes)?.into();
        index["manifests"][0]["size"] = manifest_bytes.len().into();
        fs::write(&index_path, index.to_string())
            .map_err(|e| HilError::io("write", &index_path, e))?;
        Ok(layout)
    }

    /// Kills docker-registry (by pid) and reaps it.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
            let _ = fs::remove_file(self.dir.join("registry.pid"));
        }
    }

    /// The registry's log (for a failure report).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("registry.log")).unwrap_or_default()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}
