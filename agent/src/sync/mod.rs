//! `sync`: the agent's MQTT link, one adapter of the supervisor. It moves bytes and
//! nothing else: desired documents that arrive go to the supervisor unchecked (the
//! supervisor checks, stores and applies them: [`crate::supervisor`]'s `fleet`);
//! reports leave from the outbox in order, and the outbox is acked only by PUBACKs,
//! through the pure [`skerry_core::proto::delivery`] rules; the reported state is
//! published retained, at most about once a second; the Last Will marks the device
//! offline.
//!
//! It runs on its own thread with a current-thread tokio runtime ([`SyncHandle::spawn`]),
//! so the supervisor's loop stays synchronous; the two talk over channels
//! ([`ToSync`], [`FromSync`]), and every message to the supervisor also wakes its loop.
//! The link may be down for ever: nothing in the supervisor waits for it.

pub mod config;
mod session;
pub mod timefloor;
pub mod tls;

use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::Arc;

use skerry_core::proto::reported::ReportedState;
use skerry_core::proto::topics::Scope;
use skerry_core::proto::Topics;

use config::{parse_broker, BrokerAddr, MqttConfig};
use timefloor::TimeFloor;

/// Supervisor → link.
#[derive(Debug)]
pub enum ToSync {
    /// The outbox is durable up to this seq (and this many reports were dropped).
    Durable { seq: u64, dropped: u64 },
    /// The reported state changed.
    Reported(Box<ReportedState>),
}

/// Link → supervisor.
#[derive(Debug)]
pub enum FromSync {
    /// A payload arrived on the desired topic of `scope` (not yet checked).
    Document { scope: Scope, payload: Vec<u8> },
    /// A payload arrived on this device's secrets topic (not yet checked).
    Secret { payload: Vec<u8> },
    /// Every outbox record up to this seq was acknowledged by the broker.
    Acked(u64),
    /// The link came up or went down, or the broker refused something: for the log
    /// and the events.
    Link { up: Option<bool>, detail: String },
}

/// What the link needs, resolved from `[mqtt]` and the state directory.
#[derive(Clone)]
pub struct LinkSetup {
    pub addr: BrokerAddr,
    pub tls: Arc<rustls::ClientConfig>,
    pub floor: Arc<TimeFloor>,
    pub topics: Topics,
    pub device: String,
    pub groups: Vec<String>,
    pub max_payload: usize,
    pub keepalive_secs: u64,
    pub outbox_dir: PathBuf,
}

impl LinkSetup {
    /// Reads the certificate files (the device id defaults to the certificate's CN).
    pub fn resolve(
        cfg: &MqttConfig,
        state_dir: &std::path::Path,
        outbox_dir: PathBuf,
    ) -> anyhow::Result<Self> {
        let addr = parse_broker(&cfg.broker).map_err(|e| anyhow::anyhow!("mqtt.broker: {e}"))?;
        let floor = TimeFloor::load(Some(state_dir.join("fleet").join("time-floor")));
        let tls = tls::client_config(&cfg.ca, &cfg.cert, &cfg.key, floor.clone())?;
        let device = match &cfg.device_id {
            Some(d) => d.clone(),
            None => tls::common_name(&cfg.cert)?,
        };
        skerry_core::proto::topics::check_name("device", &device)
            .map_err(|e| anyhow::anyhow!("mqtt: device id from {}: {e}", cfg.cert.display()))?;
        Ok(Self {
            addr,
            tls,
            floor,
            topics: Topics::new(&cfg.fleet)?,
            device,
            groups: cfg.groups.clone(),
            max_payload: cfg.max_payload,
            keepalive_secs: cfg.keepalive_secs,
            outbox_dir,
        })
    }
}

/// The running link.
pub struct SyncHandle {
    tx: tokio::sync::mpsc::UnboundedSender<ToSync>,
}

impl SyncHandle {
    /// Starts the link thread. `from` carries its messages; `wake` is called after each.
    pub fn spawn(
        setup: LinkSetup,
        acked: u64,
        durable: u64,
        from: mpsc::Sender<FromSync>,
        wake: Box<dyn Fn() + Send>,
    ) -> anyhow::Result<Self> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        std::thread::Builder::new()
            .name("mqtt".into())
            .spawn(move || {
                rt.block_on(session::run(setup, acked, durable, rx, from, wake));
            })?;
        Ok(Self { tx })
    }

    /// Sends a message to the link (dropped if the link thread is gone).
    pub fn send(&self, m: ToSync) {
        let _ = self.tx.send(m);
    }
}
