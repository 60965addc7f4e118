//! The supervisor's side of fleet mode: the [`Fleet`] documents and the sync thread's
//! channel. Each turn takes what the link sent (documents to check and store, PUBACK
//! marks for the outbox, link changes for the events), and after the turn tells the
//! link the outbox's durable mark and the reported state when it changed.

use std::sync::mpsc::{self, Receiver};

use skerry_core::proto::reported::ReportedState;
use skerry_core::proto::FleetEvent;
use skerry_core::reconcile::{Desired, Snapshot};

use super::fleet::{Fleet, Identity};
use super::reported;
use crate::config::MqttConfig;
use crate::context::Context;
use crate::secrets::{InboxIdentity, SealingKey, SecretInbox, SecretStore};
use crate::store::outbox::Outbox;
use crate::sync::{FromSync, LinkSetup, SyncHandle, ToSync};

/// Fleet documents plus the running link.
pub struct FleetLink {
    pub fleet: Fleet,
    sync: SyncHandle,
    rx: Receiver<FromSync>,
    device: String,
    last_reported: Option<ReportedState>,
    last_durable: (u64, u64),
    last_error: Option<String>,
    /// Secrets sealed to this device (`None` when its sealing key cannot be made).
    inbox: Option<SecretInbox>,
}

impl FleetLink {
    /// Resolves the link (certificate files, device id), loads the stored documents
    /// and starts the sync thread.
    pub fn start(
        ctx: &Context,
        m: &MqttConfig,
        acked: u64,
        durable: u64,
        wake: Box<dyn Fn() + Send>,
    ) -> anyhow::Result<Self> {
        let setup = LinkSetup::resolve(m, ctx.layout.root(), ctx.layout.outbox())?;
        let id = Identity {
            fleet: m.fleet.clone(),
            device: setup.device.clone(),
            groups: m.groups.clone(),
            trusted: m.trusted(),
            max_payload: m.max_payload,
        };
        let device = setup.device.clone();
        let inbox = match SealingKey::load_or_create(&ctx.layout) {
            Ok(key) => Some(SecretInbox::open(
                InboxIdentity {
                    fleet: id.fleet.clone(),
                    device: id.device.clone(),
                    trusted: id.trusted.clone(),
                    max_payload: id.max_payload,
                },
                key,
                SecretStore::new(&ctx.layout),
                ctx.layout.root().join("fleet"),
            )),
            Err(e) => {
                tracing::error!(error = %e, "no sealing key: secrets sent over MQTT are refused");
                None
            }
        };
        let (fleet, events) = Fleet::open(ctx.layout.root().join("fleet"), id, ctx.parse_options());
        for e in events {
            tracing::warn!(event = %e, "fleet");
        }
        let (tx, rx) = mpsc::channel();
        let sync = SyncHandle::spawn(setup, acked, durable, tx, wake)?;
        Ok(Self {
            fleet,
            sync,
            rx,
            device,
            last_reported: None,
            last_durable: (0, 0),
            last_error: None,
            inbox,
        })
    }

    pub fn device(&self) -> &str {
        &self.device
    }

    /// Takes the link's messages; returns the desired state (fleet ∪ local).
    pub fn take_messages(
        &mut self,
        local: Desired,
        mut outbox: Option<&mut Outbox>,
        events: &mut Vec<FleetEvent>,
    ) -> Desired {
        while let Ok(m) = self.rx.try_recv() {
            match m {
                FromSync::Document { scope, payload } => {
                    let (ev, _) = self.fleet.offer(&scope, &payload);
                    events.extend(ev);
                }
                FromSync::Secret { payload } => {
                    let ev = match self.inbox.as_mut() {
                        Some(inbox) => inbox.offer(&payload),
                        None => FleetEvent::SecretRejected {
                            code: "no-key".into(),
                            reason: "this device has no sealing key (see the agent's log)".into(),
                        },
                    };
                    tracing::info!(event = %ev, "fleet");
                    events.push(ev);
                }
                FromSync::Acked(seq) => {
                    if let Some(o) = outbox.as_deref_mut() {
                        if let Err(e) = o.ack(seq) {
                            tracing::warn!(error = %e, seq, "outbox ack not stored");
                        }
                    }
                }
                FromSync::Link { up, detail } => {
                    match up {
                        Some(true) => {
                            tracing::info!(%detail, "broker link up");
                            self.last_error = None;
                        }
                        Some(false) => {
                            tracing::warn!(%detail, "broker link down; workloads keep running")
                        }
                        None => {
                            tracing::error!(%detail, "broker refused");
                            self.last_error = Some(detail.clone());
                        }
                    }
                    if up == Some(false) {
                        self.last_error = Some(detail.clone());
                    }
                    events.push(FleetEvent::Link { up, detail });
                }
            }
        }
        let (desired, ev) = self.fleet.combine(local);
        events.extend(ev);
        desired
    }

    /// Tells the link the outbox's durable mark and the reported state, when changed.
    pub fn after_turn(
        &mut self,
        snap: &Snapshot,
        outbox: Option<&Outbox>,
        pulls: &reported::Pulls,
        ports: &super::ports::Ports,
    ) {
        let durable = outbox.map_or((0, 0), |o| (o.durable_seq(), o.dropped()));
        if durable != self.last_durable {
            self.last_durable = durable;
            self.sync.send(ToSync::Durable {
                seq: durable.0,
                dropped: durable.1,
            });
        }
        let r = reported::build(
            snap,
            &self.fleet,
            pulls,
            ports,
            durable.1,
            self.last_error.clone(),
            self.inbox.as_ref().map(SecretInbox::public_key),
        );
        if self.last_reported.as_ref() != Some(&r) {
            self.last_reported = Some(r.clone());
            self.sync.send(ToSync::Reported(Box::new(r)));
        }
    }
}
