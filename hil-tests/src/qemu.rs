//! One emulated gateway: a `qemu-system-aarch64 -M virt -cpu cortex-a57` process with
//! Debian's arm64 kernel, the board initramfs, a persistent virtio-blk state disk,
//! user-mode networking (netdev `n0`; the guest is 10.0.2.15 and reaches the host's
//! loopback at 10.0.2.2), the monitor and the command channel on unix sockets, and the
//! serial console in `console-<boot>.log`.
//!
//! QEMU starts paused (`-S`) so the link can be cut before the guest runs a single
//! instruction; [`Board::boot`] then continues it. [`Board::power_cut`] is SIGKILL of
//! QEMU's pid: whatever the guest had not written to the disk is lost, as on a real
//! power loss. Dropping a `Board` kills its QEMU the same way.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::{Console, HilError, Monitor, Result, Shell};

/// The files a board boots from.
#[derive(Debug, Clone)]
pub struct BoardFiles {
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    /// Raw ext4 image (see [`crate::create_disk`]).
    pub disk: PathBuf,
    /// Where sockets and console logs go.
    pub work_dir: PathBuf,
}

/// How to boot.
#[derive(Debug, Clone, Copy)]
pub struct BootOptions {
    /// Link state when the guest starts.
    pub link_up: bool,
    pub memory_mib: u32,
    pub cpus: u32,
}

impl Default for BootOptions {
    fn default() -> Self {
        Self {
            link_up: true,
            memory_mib: 1024,
            cpus: 2,
        }
    }
}

/// A running board.
#[derive(Debug)]
pub struct Board {
    child: Option<Child>,
    pid_file: PathBuf,
    pub monitor: Monitor,
    pub shell: Shell,
    pub console: Console,
    /// When the guest was let run (after `cont`).
    pub booted_at: Instant,
    pub boot_number: u32,
}

fn wait_for_socket(path: &Path, child: &mut Child, timeout: Duration) -> Result<()> {
    let start = Instant::now();
    while !path.exists() {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(HilError::Failed(format!(
                "qemu-system-aarch64 exited before creating {}: {status}",
                path.display()
            )));
        }
        if start.elapsed() > timeout {
            return Err(HilError::Timeout {
                what: format!("QEMU socket {}", path.display()),
                secs: timeout.as_secs_f64(),
                detail: String::new(),
            });
        }
        thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

impl Board {
    /// Starts QEMU paused, connects the monitor and the command channel, sets the
    /// link, and lets the guest run. `boot_number` names the console log.
    pub fn boot(files: &BoardFiles, opts: BootOptions, boot_number: u32) -> Result<Self> {
        fs::create_dir_all(&files.work_dir)
            .map_err(|e| HilError::io("create work dir", &files.work_dir, e))?;
        let mon = files.work_dir.join("monitor.sock");
        let cmd = files.work_dir.join("cmd.sock");
        let log = files.work_dir.join(format!("console-{boot_number}.log"));
        for p in [&mon, &cmd, &log] {
            let _ = fs::remove_file(p);
        }
        let qemu_err = files.work_dir.join(format!("qemu-{boot_number}.stderr"));
        let stderr = fs::File::create(&qemu_err)
            .map_err(|e| HilError::io("create QEMU stderr log", &qemu_err, e))?;
        let mut child = Command::new("qemu-system-aarch64")
            .args([
                "-M",
                "virt",
                "-cpu",
                "cortex-a57",
                "-S",
                "-display",
                "none",
                "-no-reboot",
            ])
            .args([
                "-smp",
                &opts.cpus.to_string(),
                "-m",
                &opts.memory_mib.to_string(),
            ])
            .arg("-kernel")
            .arg(&files.kernel)
            .arg("-initrd")
            .arg(&files.initrd)
            .args([
                "-append",
                "console=ttyAMA0 rdinit=/init panic=-1 quiet loglevel=4",
            ])
            // No RTC battery on the board: its clock starts at the epoch.
            .args(["-rtc", "base=1970-01-01T00:00:00"])
            .arg("-serial")
            .arg(format!("file:{}", log.display()))
            .arg("-monitor")
            .arg(format!("unix:{},server=on,wait=off", mon.display()))
            .args([
                "-netdev",
                "user,id=n0",
                "-device",
                "virtio-net-device,netdev=n0",
            ])
            .args(["-device", "virtio-rng-device"])
            .arg("-drive")
            .arg(format!(
                "file={},format=raw,if=none,id=d0",
                files.disk.display()
            ))
            .args([
                "-device",
                "virtio-blk-device,drive=d0",
                "-device",
                "virtio-serial-device",
            ])
            .arg("-chardev")
            .arg(format!(
                "socket,id=hilcmd,path={},server=on,wait=off",
                cmd.display()
            ))
            .args(["-device", "virtserialport,chardev=hilcmd,name=hil.cmd"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|e| HilError::io("start", "qemu-system-aarch64", e))?;
        // For hil-tests/run's exit trap, should this process die without dropping us.
        let pid_file = files.work_dir.join("qemu.pid");
        let _ = fs::write(&pid_file, format!("{}\n", child.id()));
        let ready = wait_for_socket(&mon, &mut child, Duration::from_secs(20))
            .and_then(|()| wait_for_socket(&cmd, &mut child, Duration::from_secs(20)));
        if let Err(e) = ready {
            let _ = child.kill();
            let _ = child.wait();
            let _ = fs::remove_file(&pid_file);
            let err = fs::read_to_string(&qemu_err).unwrap_or_default();
            return Err(HilError::Failed(format!(
                "{e}; QEMU stderr: {}",
                err.trim()
            )));
        }
        let mut board = Self {
            monitor: Monitor::connect(&mon)?,
            shell: Shell::connect(&cmd)?,
            console: Console::new(log),
            child: Some(child),
            pid_file,
            booted_at: Instant::now(),
            boot_number,
        };
        if !opts.link_up {
            board.monitor.set_link("n0", false)?;
        }
        board.monitor.command("cont")?;
        board.booted_at = Instant::now();
        Ok(board)
    }

    /// QEMU's pid (while it runs).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Cuts or restores the guest's network link.
    pub fn set_link(&mut self, up: bool) -> Result<()> {
        self.monitor.set_link("n0", up)
    }

    /// Waits for hil-svc's `n`th READY of this boot; returns the time since boot.
    pub fn wait_ready(&self, n: usize, timeout: Duration) -> Result<Duration> {
        self.console.wait_for("HIL-SVC: agent READY", n, timeout)?;
        Ok(self.booted_at.elapsed())
    }

    /// Power cut: SIGKILL to QEMU, by pid, and reap it.
    pub fn power_cut(mut self) -> Result<()> {
        self.kill()
    }

    fn kill(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            child
                .kill()
                .map_err(|e| HilError::io("kill QEMU", format!("pid {}", child.id()), e))?;
            child
                .wait()
                .map_err(|e| HilError::io("reap QEMU", format!("pid {}", child.id()), e))?;
            let _ = fs::remove_file(&self.pid_file);
        }
        Ok(())
    }
}

impl Drop for Board {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}
