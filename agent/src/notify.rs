//! systemd service notifications (`sd_notify(3)`): readiness, status text,
//! watchdog keep-alives and shutdown, sent as datagrams to `NOTIFY_SOCKET`.
//!
//! Owns only the protocol; the agent's main loop decides when to call it. Every
//! call is a no-op when the agent was not started by systemd with
//! `Type=notify` (no `NOTIFY_SOCKET`), so the same code runs from a shell.
//! It must not be used from container monitors: `skerry.service` sets
//! `NotifyAccess=main`, so systemd ignores any other process.
//!
//! Datagrams sent (one per call, newline-separated assignments):
//!
//! ```text
//! ready("3 tasks running")  READY=1\nSTATUS=3 tasks running\n
//! status("pulling nginx")   STATUS=pulling nginx\n
//! ping()                    WATCHDOG=1\n          (only when systemd asked)
//! stopping()                STOPPING=1\n
//! ```

use std::ffi::OsString;
use std::io;
use std::time::Duration;

use sd_notify::NotifyState;

/// A failed send to the service manager. Not fatal: the agent logs it and
/// carries on (systemd restarts it if the watchdog starves).
#[derive(Debug, thiserror::Error)]
#[error("sd_notify to {}: {source}", socket.to_string_lossy())]
pub struct NotifyError {
    /// The `NOTIFY_SOCKET` address.
    socket: OsString,
    /// What the OS said.
    #[source]
    source: io::Error,
}

/// Talks to systemd on behalf of the agent's main process.
///
/// Build it once with [`Notifier::from_env`] at startup, then call
/// [`ready`](Self::ready) once the config is loaded and running containers are
/// adopted (not after image pulls: systemd gives up after `TimeoutStartSec`,
/// 90 s by default), [`ping`](Self::ping) every
/// [`watchdog_period`](Self::watchdog_period) from the main loop itself (not a
/// side thread, so a stuck loop starves the watchdog), and
/// [`stopping`](Self::stopping) on shutdown.
#[derive(Debug, Clone)]
pub struct Notifier {
    socket: Option<OsString>,
    watchdog: Option<Duration>,
}

impl Notifier {
    /// Reads `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID` from the
    /// environment (they are left set; libcontainer gives containers their own
    /// environment, and systemd ignores other processes).
    pub fn from_env() -> Self {
        let watchdog = sd_notify::watchdog_enabled()
            .filter(|d| !d.is_zero())
            .map(|d| d / 2);
        Self {
            socket: std::env::var_os("NOTIFY_SOCKET"),
            watchdog,
        }
    }

    /// A notifier that never sends anything.
    pub fn disabled() -> Self {
        Self {
            socket: None,
            watchdog: None,
        }
    }

    /// Turns the watchdog off when `enabled` is false (config `watchdog`).
    pub fn with_watchdog(mut self, enabled: bool) -> Self {
        if !enabled {
            self.watchdog = None;
        }
        self
    }

    /// Whether notifications go anywhere.
    pub fn is_enabled(&self) -> bool {
        self.socket.is_some()
    }

    /// How often to [`ping`](Self::ping): half of `WATCHDOG_USEC`, or `None`
    /// when systemd runs no watchdog for this process.
    pub fn watchdog_period(&self) -> Option<Duration> {
        self.watchdog.filter(|_| self.socket.is_some())
    }

    /// Startup finished: `READY=1` with a status line.
    pub fn ready(&self, status: &str) -> Result<(), NotifyError> {
        let status = one_line(status);
        self.send(&[NotifyState::Ready, NotifyState::Status(&status)])
    }

    /// Free-form status shown by `systemctl status skerry`.
    pub fn status(&self, text: &str) -> Result<(), NotifyError> {
        let text = one_line(text);
        self.send(&[NotifyState::Status(&text)])
    }

    /// Watchdog keep-alive (`WATCHDOG=1`); nothing when no watchdog is armed.
    pub fn ping(&self) -> Result<(), NotifyError> {
        if self.watchdog_period().is_none() {
            return Ok(());
        }
        self.send(&[NotifyState::Watchdog])
    }

    /// Shutdown began (`STOPPING=1`).
    pub fn stopping(&self) -> Result<(), NotifyError> {
        self.send(&[NotifyState::Stopping])
    }

    fn send(&self, states: &[NotifyState<'_>]) -> Result<(), NotifyError> {
        let Some(socket) = &self.socket else {
            return Ok(());
        };
        sd_notify::notify(states).map_err(|source| NotifyError {
            socket: socket.clone(),
            source,
        })
    }
}

/// Status text may come from task names; a newline would let it inject
/// another assignment (`READY=1`, `MAINPID=`) into the datagram.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic; clippy.toml has no allow-unwrap-in-tests
mod tests {
    use std::os::unix::net::UnixDatagram;

    use super::*;

    fn recv(sock: &UnixDatagram) -> String {
        let mut buf = [0u8; 4096];
        let n = sock.recv(&mut buf).unwrap();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    /// The only test that touches the process environment: all of the
    /// environment-dependent cases run here, one after another.
    #[test]
    fn notify_datagrams_over_a_test_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let sock = UnixDatagram::bind(&path).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();

        std::env::set_var("NOTIFY_SOCKET", &path);
        std::env::set_var("WATCHDOG_USEC", "30000000");
        std::env::remove_var("WATCHDOG_PID");
        let n = Notifier::from_env();
        let off = Notifier::from_env().with_watchdog(false);
        std::env::set_var("WATCHDOG_PID", "1");
        let other_pid = Notifier::from_env();
        std::env::remove_var("WATCHDOG_USEC");
        std::env::remove_var("WATCHDOG_PID");
        let no_wd = Notifier::from_env();
        std::env::remove_var("NOTIFY_SOCKET");
        let absent = Notifier::from_env();

        assert!(n.is_enabled());
        assert_eq!(n.watchdog_period(), Some(Duration::from_secs(15)));
        assert_eq!(off.watchdog_period(), None);
        assert_eq!(other_pid.watchdog_period(), None);
        assert_eq!(no_wd.watchdog_period(), None);

        // The sends themselves read NOTIFY_SOCKET again (sd-notify), so set it
        // back for the enabled notifiers only.
        std::env::set_var("NOTIFY_SOCKET", &path);
        n.ready("2 tasks running").unwrap();
        assert_eq!(recv(&sock), "READY=1\nSTATUS=2 tasks running\n");
        n.status("pulling\nREADY=1").unwrap();
        assert_eq!(recv(&sock), "STATUS=pulling READY=1\n");
        n.ping().unwrap();
        assert_eq!(recv(&sock), "WATCHDOG=1\n");
        off.ping().unwrap();
        no_wd.ping().unwrap();
        n.stopping().unwrap();
        assert_eq!(recv(&sock), "STOPPING=1\n");
        std::env::remove_var("NOTIFY_SOCKET");

        // Without NOTIFY_SOCKET everything is a quiet no-op.
        assert!(!absent.is_enabled());
        assert_eq!(absent.watchdog_period(), None);
        absent.ready("x").unwrap();
        absent.status("x").unwrap();
        absent.ping().unwrap();
        absent.stopping().unwrap();
        Notifier::disabled().ready("x").unwrap();
        sock.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(
            sock.recv(&mut buf).unwrap_err().kind(),
            io::ErrorKind::WouldBlock,
            "off/no-watchdog/absent notifiers sent something"
        );
    }
}
