//! Telemetry's own MQTT 5 session (client id `skerry-<fleet>-<device>-telemetry`,
//! same certificate, so the broker's ACL is the device's) and its queue. It is apart
//! from the state link (`crate::sync`) on purpose: telemetry has its own bounds, so a
//! flood of logs can never push a state report out of the outbox, and a slow telemetry
//! publish never delays a reported state. Up to [`WINDOW`] publishes are in flight; items
//! leave the queue in order once they and all before them are acknowledged, and a log
//! batch's cursor (or a spooled item's number, [`Uplink::spool_acked`]) is stored
//! then. A lost link resends every unacknowledged item.
//!
//! Two bounds: items with a copy in the spool (metrics reports, see [`super::spool`])
//! are bounded by the spool (`spool_max_bytes`; [`Uplink::forget_spooled_before`]
//! follows what it dropped); the rest (log batches, whose lines also wait in their
//! files, and anything the spool could not store) by `queue_max_bytes`: past it the
//! oldest of those go, counted (`dropped`). A log flood therefore never evicts a
//! metrics report.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::Duration;

use rumqttc::v5::mqttbytes::v5::{Packet, PubAckReason};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use rumqttc::{NetworkOptions, Outgoing, TlsConfiguration, Transport};
use skerry_core::proto::delivery::backoff_ms;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

use super::tail::Cursor;
use crate::sync::LinkSetup;

/// Publishes in flight at most.
const WINDOW: usize = 8;

/// Stored when an item is acknowledged: a log batch's cursor.
#[derive(Debug, Clone)]
pub struct AckMark {
    pub path: PathBuf,
    pub cursor: Cursor,
}

/// One message waiting for the link.
#[derive(Debug)]
pub struct Item {
    pub topic: String,
    pub payload: Vec<u8>,
    pub mark: Option<AckMark>,
    /// `(task, container, lines)` of a log batch (counted as lost if dropped).
    pub lines: Option<(String, String, u64)>,
    /// Its number in the spool, if it has a copy there.
    pub spool: Option<u64>,
}

/// The queue and the session.
pub struct Uplink {
    client: AsyncClient,
    pub events: UnboundedReceiver<Result<Event, String>>,
    queue: VecDeque<Item>,
    /// Bytes of the queued items with no copy in the spool (the bounded ones).
    bytes: usize,
    max_bytes: usize,
    connected: bool,
    /// The first `sent.len()` items were handed to rumqttc: their packet ids once
    /// known, and whether they were acknowledged.
    sent: VecDeque<(Option<u16>, bool)>,
    pub dropped: u64,
    /// Lines of dropped log batches, per (task, container), not yet reported.
    pub lost: Vec<(String, String, u64)>,
    /// The highest spool number acknowledged by the broker (with all before it).
    pub spool_acked: u64,
}

impl Uplink {
    pub fn connect(setup: &LinkSetup, max_bytes: usize) -> Self {
        let id = format!("skerry-{}-{}-telemetry", setup.topics.fleet(), setup.device);
        let mut o = MqttOptions::new(id, setup.addr.host.clone(), setup.addr.port);
        o.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
            setup.tls.clone(),
        )));
        o.set_keep_alive(Duration::from_secs(setup.keepalive_secs));
        o.set_clean_start(true);
        o.set_max_packet_size(Some((skerry_core::proto::MAX_PAYLOAD + 4096) as u32));
        // rumqttc sizes its in-flight table from this bound up front (one slot per
        // packet id, 65,535 by default: 13.5 MiB of this agent's memory).
        o.set_outgoing_inflight_upper_limit(WINDOW as u16 + 4);
        let mut net = NetworkOptions::new();
        net.set_tcp_nodelay(true);
        net.set_connection_timeout(10);
        o.set_network_options(net);
        let (client, eventloop) = AsyncClient::new(o, 16);
        let (tx, rx) = unbounded_channel();
        tokio::spawn(poll(eventloop, tx));
        Self {
            client,
            events: rx,
            queue: VecDeque::new(),
            bytes: 0,
            max_bytes,
            connected: false,
            sent: VecDeque::new(),
            dropped: 0,
            lost: Vec::new(),
            spool_acked: 0,
        }
    }

    /// Bytes waiting that have no copy in the spool.
    pub fn queued_bytes(&self) -> usize {
        self.bytes
    }

    pub fn push(&mut self, item: Item) {
        if item.spool.is_none() {
            self.bytes += item.payload.len();
        }
        self.queue.push_back(item);
        // Never drop what is in flight, nor the item just queued, nor a spooled one.
        let keep = self.sent.len();
        while self.bytes > self.max_bytes {
            let newest = self.queue.len().saturating_sub(1);
            let Some(i) = (keep..newest).find(|&i| self.queue[i].spool.is_none()) else {
                break;
            };
            if let Some(old) = self.queue.remove(i) {
                self.bytes -= old.payload.len();
                self.dropped += 1;
                if let Some(l) = old.lines {
                    self.lost.push(l);
                }
            }
        }
    }

    /// The spool's bound deleted every number below `oldest`: those items leave the
    /// queue too (unless in flight). The spool counts them.
    pub fn forget_spooled_before(&mut self, oldest: u64) {
        let keep = self.sent.len();
        let mut i = keep;
        while i < self.queue.len() {
            if self.queue[i].spool.is_some_and(|s| s < oldest) {
                self.queue.remove(i);
            } else {
                i += 1;
            }
        }
    }

    /// Handles one event of the session; returns the marks of the items that left
    /// the queue, in order.
    pub fn on_event(&mut self, ev: Result<Event, String>) -> Vec<AckMark> {
        let mut marks = Vec::new();
        match ev {
            Err(e) => {
                if self.connected {
                    tracing::warn!(error = %e, "telemetry link down; queueing");
                }
                self.connected = false;
                self.sent.clear();
            }
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                self.connected = true;
                self.sent.clear();
            }
            Ok(Event::Outgoing(Outgoing::Publish(pkid))) => {
                if let Some(slot) = self.sent.iter_mut().find(|s| s.0.is_none()) {
                    slot.0 = Some(pkid);
                }
            }
            Ok(Event::Incoming(Packet::PubAck(a))) => {
                let Some(slot) = self.sent.iter_mut().find(|s| s.0 == Some(a.pkid) && !s.1) else {
                    return marks;
                };
                slot.1 = true;
                if !matches!(
                    a.reason,
                    PubAckReason::Success | PubAckReason::NoMatchingSubscribers
                ) {
                    tracing::warn!(reason = ?a.reason, "broker refused a telemetry publish (check its ACL); dropped");
                    self.dropped += 1;
                }
                while self.sent.front().is_some_and(|s| s.1) {
                    self.sent.pop_front();
                    if let Some(item) = self.queue.pop_front() {
                        match item.spool {
                            Some(seq) => self.spool_acked = self.spool_acked.max(seq),
                            None => self.bytes -= item.payload.len(),
                        }
                        marks.extend(item.mark);
                    }
                }
            }
            Ok(_) => {}
        }
        marks
    }

    /// Hands queued items to rumqttc while the window has room.
    pub fn pump(&mut self) {
        if !self.connected {
            return;
        }
        while self.sent.len() < WINDOW {
            let Some(item) = self.queue.get(self.sent.len()) else {
                return;
            };
            match self.client.try_publish(
                item.topic.clone(),
                QoS::AtLeastOnce,
                true,
                item.payload.clone(),
            ) {
                Ok(()) => self.sent.push_back((None, false)),
                Err(e) => {
                    tracing::debug!(error = %e, "telemetry publish not queued yet");
                    return;
                }
            }
        }
    }
}

async fn poll(mut eventloop: rumqttc::v5::EventLoop, tx: UnboundedSender<Result<Event, String>>) {
    let mut failures = 0u32;
    loop {
        match eventloop.poll().await {
            Ok(ev) => {
                if matches!(ev, Event::Incoming(Packet::ConnAck(_))) {
                    failures = 0;
                }
                if tx.send(Ok(ev)).is_err() {
                    return;
                }
            }
            Err(e) => {
                failures += 1;
                if tx.send(Err(e.to_string())).is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(backoff_ms(failures, 500))).await;
            }
        }
    }
}
