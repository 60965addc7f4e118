//! The link's event loop: one MQTT 5 session (persistent, QoS 1, Last Will) driven by
//! rumqttc, whose `poll` runs in its own task and reports here through a channel (so
//! no poll is ever cancelled half-way). Reconnects back off exponentially with jitter,
//! capped at 30 s (rumqttc itself retries at once). Publishing is non-blocking
//! (`try_publish`), bounded by the delivery rules' in-flight window.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use rumqttc::v5::mqttbytes::v5::{LastWill, Packet, PubAckReason};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, ConnectionError, Event, MqttOptions};
use rumqttc::{NetworkOptions, Outgoing, TlsConfiguration, Transport};
use skerry_core::proto::delivery::{backoff_ms, Delivery, Limits};
use skerry_core::proto::reported::ReportedState;
use skerry_core::proto::topics::Scope;
use skerry_core::proto::{Body, Envelope, Presence, ReportBatch};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

use super::{FromSync, LinkSetup, ToSync};
use crate::store::outbox::read_outbox;

/// Reported state is published at most this often.
const REPORTED_EVERY: Duration = Duration::from_secs(1);

struct Link {
    setup: LinkSetup,
    client: AsyncClient,
    delivery: Delivery,
    durable: u64,
    dropped: u64,
    reported: Option<Box<ReportedState>>,
    reported_dirty: bool,
    reported_at: Option<Instant>,
    reported_seq: u64,
    connected: bool,
    begun: Instant,
    from: mpsc::Sender<FromSync>,
    wake: Box<dyn Fn() + Send>,
    last_refusal: Option<String>,
}

fn options(s: &LinkSetup) -> MqttOptions {
    let id = format!("skerry-{}-{}", s.topics.fleet(), s.device);
    let mut o = MqttOptions::new(id, s.addr.host.clone(), s.addr.port);
    o.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
        s.tls.clone(),
    )));
    o.set_keep_alive(Duration::from_secs(s.keepalive_secs));
    o.set_clean_start(false);
    o.set_session_expiry_interval(Some(7 * 24 * 3600));
    // rumqttc's default is 10 KiB. The limit sent to the broker is at least the fleet
    // cap (AWS IoT Core's 128 KiB) plus headers, so a payload over this device's own
    // smaller cap still arrives and is refused by name (an MQTT 5 broker silently drops
    // what exceeds the client's limit); anything larger never reaches the device, so a
    // huge retained message cannot make it reconnect for ever.
    let limit = s.max_payload.max(skerry_core::proto::MAX_PAYLOAD) + 4096;
    o.set_max_packet_size(Some(limit as u32));
    // Also the size of rumqttc's in-flight table, allocated up front (one slot per
    // packet id: its default of 65,535 costs 13.5 MiB).
    o.set_outgoing_inflight_upper_limit(Limits::default().max_inflight as u16 + 4);
    let will = Envelope::new(&s.device, 0, Body::Status(Presence::Offline)).encode();
    o.set_last_will(LastWill::new(
        s.topics.status(&s.device),
        will,
        QoS::AtLeastOnce,
        true,
        None,
    ));
    let mut net = NetworkOptions::new();
    net.set_tcp_nodelay(true);
    net.set_connection_timeout(10);
    o.set_network_options(net);
    o
}

/// Runs until the supervisor's side of the channel is gone.
pub async fn run(
    setup: LinkSetup,
    acked: u64,
    durable: u64,
    mut rx: UnboundedReceiver<ToSync>,
    from: mpsc::Sender<FromSync>,
    wake: Box<dyn Fn() + Send>,
) {
    let (client, eventloop) = AsyncClient::new(options(&setup), 64);
    let (ev_tx, mut ev_rx) = unbounded_channel();
    tokio::spawn(poll_forever(eventloop, ev_tx));
    let mut link = Link {
        setup,
        client,
        delivery: Delivery::new(acked, Limits::default()),
        durable,
        dropped: 0,
        reported: None,
        reported_dirty: false,
        reported_at: None,
        reported_seq: 0,
        connected: false,
        begun: Instant::now(),
        from,
        wake,
        last_refusal: None,
    };
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            ev = ev_rx.recv() => match ev {
                Some(ev) => link.on_event(ev),
                None => return,
            },
            m = rx.recv() => match m {
                Some(ToSync::Durable { seq, dropped }) => {
                    link.durable = link.durable.max(seq);
                    link.dropped = dropped;
                }
                Some(ToSync::Reported(r)) => {
                    link.reported = Some(r);
                    link.reported_dirty = true;
                }
                None => return,
            },
            _ = tick.tick() => {}
        }
        link.pump();
    }
}

/// What the poll task reports.
enum Polled {
    Event(Box<Event>),
    Error(String),
}

async fn poll_forever(mut eventloop: rumqttc::v5::EventLoop, tx: UnboundedSender<Polled>) {
    let mut failures = 0u32;
    loop {
        match eventloop.poll().await {
            Ok(ev) => {
                if matches!(ev, Event::Incoming(Packet::ConnAck(_))) {
                    failures = 0;
                }
                if tx.send(Polled::Event(Box::new(ev))).is_err() {
                    return;
                }
            }
            Err(e) => {
                failures += 1;
                let msg = describe(&e);
                if tx.send(Polled::Error(msg)).is_err() {
                    return;
                }
                let delay = backoff_ms(failures, jitter());
                tokio::time::sleep(Duration::from_millis(delay)).await;
            }
        }
    }
}

fn describe(e: &ConnectionError) -> String {
    match e {
        ConnectionError::ConnectionRefused(code) => {
            format!("broker refused the connection: {code:?}")
        }
        ConnectionError::Tls(t) => format!("TLS: {t}"),
        other => other.to_string(),
    }
}

fn jitter() -> u64 {
    let mut b = [0u8; 2];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
    u64::from(u16::from_le_bytes(b)) % 1001
}

impl Link {
    fn tell(&self, m: FromSync) {
        if self.from.send(m).is_ok() {
            (self.wake)();
        }
    }

    fn now_ms(&self) -> u64 {
        self.begun.elapsed().as_millis() as u64
    }

    fn on_event(&mut self, ev: Polled) {
        match ev {
            Polled::Error(msg) => {
                let was = self.connected;
                self.connected = false;
                self.delivery.disconnected();
                let mut detail = format!("broker {}: {msg}", self.setup.addr);
                if self.setup.floor.clock_behind() && msg.contains("TLS") {
                    detail.push_str(
                        " (system clock not set: certificates are checked against the time floor)",
                    );
                }
                if was || self.last_refusal.as_deref() != Some(detail.as_str()) {
                    self.tell(FromSync::Link {
                        up: Some(false),
                        detail: detail.clone(),
                    });
                }
                self.last_refusal = Some(detail);
            }
            Polled::Event(ev) => match *ev {
                Event::Incoming(p) => self.on_packet(p),
                Event::Outgoing(Outgoing::Publish(pkid)) => self.delivery.outgoing(pkid),
                Event::Outgoing(_) => {}
            },
        }
    }

    fn on_packet(&mut self, p: Packet) {
        match p {
            Packet::ConnAck(ack) => {
                self.connected = true;
                self.last_refusal = None;
                self.delivery.connected(ack.session_present);
                self.setup.floor.persist();
                self.subscribe();
                let online = Envelope::new(
                    &self.setup.device,
                    0,
                    Body::Status(Presence::Online {
                        agent_version: env!("CARGO_PKG_VERSION").to_string(),
                    }),
                );
                self.publish(
                    self.setup.topics.status(&self.setup.device),
                    online.encode(),
                    true,
                );
                self.reported_dirty = self.reported.is_some();
                self.reported_at = None;
                self.tell(FromSync::Link {
                    up: Some(true),
                    detail: format!(
                        "connected to {} as {} (session {})",
                        self.setup.addr,
                        self.setup.device,
                        if ack.session_present {
                            "resumed"
                        } else {
                            "new"
                        }
                    ),
                });
            }
            Packet::Publish(p) => {
                let topic = String::from_utf8_lossy(&p.topic).into_owned();
                if topic == self.setup.topics.secrets(&self.setup.device) {
                    self.tell(FromSync::Secret {
                        payload: p.payload.to_vec(),
                    });
                    return;
                }
                match self.scope_of(&topic) {
                    Some(scope) => self.tell(FromSync::Document {
                        scope,
                        payload: p.payload.to_vec(),
                    }),
                    None => tracing::warn!(%topic, "message on an unexpected topic ignored"),
                }
            }
            Packet::PubAck(a) => {
                let ok = matches!(
                    a.reason,
                    PubAckReason::Success | PubAckReason::NoMatchingSubscribers
                );
                if !ok {
                    self.tell(FromSync::Link {
                        up: None,
                        detail: format!(
                            "broker {} refused a publish: {:?} (check the broker's ACL for this device)",
                            self.setup.addr, a.reason
                        ),
                    });
                }
                if let Some(seq) = self.delivery.puback(a.pkid, ok, self.now_ms()) {
                    self.tell(FromSync::Acked(seq));
                }
            }
            Packet::SubAck(s) => {
                let refused: Vec<String> = s
                    .return_codes
                    .iter()
                    .filter(|c| {
                        !matches!(
                            c,
                            rumqttc::v5::mqttbytes::v5::SubscribeReasonCode::Success(_)
                        )
                    })
                    .map(|c| format!("{c:?}"))
                    .collect();
                if !refused.is_empty() {
                    self.tell(FromSync::Link {
                        up: None,
                        detail: format!(
                            "broker {} refused a subscription: {}",
                            self.setup.addr,
                            refused.join(", ")
                        ),
                    });
                }
            }
            Packet::Disconnect(d) => {
                tracing::warn!(reason = ?d.reason_code, "broker sent DISCONNECT");
            }
            _ => {}
        }
    }

    fn scope_of(&self, topic: &str) -> Option<Scope> {
        let t = &self.setup.topics;
        let dev = Scope::Device(self.setup.device.clone());
        if topic == t.desired(&dev) {
            return Some(dev);
        }
        self.setup
            .groups
            .iter()
            .map(|g| Scope::Group(g.clone()))
            .find(|s| topic == t.desired(s))
    }

    /// Exact topics only: AWS IoT Core sends retained messages to exact subscriptions.
    fn subscribe(&mut self) {
        let mut topics = vec![self
            .setup
            .topics
            .desired(&Scope::Device(self.setup.device.clone()))];
        for g in &self.setup.groups {
            topics.push(self.setup.topics.desired(&Scope::Group(g.clone())));
        }
        topics.push(self.setup.topics.secrets(&self.setup.device));
        for t in topics {
            if let Err(e) = self.client.try_subscribe(t.clone(), QoS::AtLeastOnce) {
                tracing::warn!(topic = %t, error = %e, "subscribe not queued");
            }
        }
    }

    fn publish(&mut self, topic: String, payload: Vec<u8>, retain: bool) -> bool {
        match self
            .client
            .try_publish(topic.clone(), QoS::AtLeastOnce, retain, payload)
        {
            Ok(()) => {
                self.delivery.queued_other();
                true
            }
            Err(e) => {
                tracing::warn!(%topic, error = %e, "publish not queued");
                false
            }
        }
    }

    /// Sends what is due: report batches up to the durable mark, the reported state.
    fn pump(&mut self) {
        if !self.connected {
            return;
        }
        let now = self.now_ms();
        while let Some(after) = self.delivery.wants(self.durable, now) {
            let entries = match read_outbox(&self.setup.outbox_dir, after, 500) {
                Ok(e) => e,
                Err(e) => {
                    tracing::warn!(error = %e, "outbox not readable; retrying");
                    return;
                }
            };
            let entries: Vec<_> = entries
                .into_iter()
                .filter(|e| e.seq <= self.durable)
                .collect();
            let sizes: Vec<(u64, usize)> = entries
                .iter()
                .map(|e| (e.seq, e.payload.len() + 12))
                .collect();
            let n = self.delivery.take(&sizes, self.durable);
            if n == 0 {
                if let Some(seq) = Some(self.delivery.acked()).filter(|&a| a > after) {
                    self.tell(FromSync::Acked(seq));
                }
                continue;
            }
            let batch = ReportBatch {
                reports: entries
                    .into_iter()
                    .take(n)
                    .map(|e| (e.seq, e.payload))
                    .collect(),
                dropped: self.dropped,
            };
            let first = batch.reports[0].0;
            let env = Envelope::new(&self.setup.device, first, Body::Reports(batch));
            let topic = self.setup.topics.events(&self.setup.device);
            if let Err(e) = self
                .client
                .try_publish(topic, QoS::AtLeastOnce, false, env.encode())
            {
                // Not handed over: the delivery rules will send it again after a reset.
                tracing::warn!(error = %e, "report batch not queued");
                self.delivery.abandon_last();
                return;
            }
        }
        let due = self
            .reported_at
            .is_none_or(|t| t.elapsed() >= REPORTED_EVERY);
        if self.reported_dirty && due {
            if let Some(r) = self.reported.clone() {
                self.reported_seq += 1;
                let env = Envelope::new(&self.setup.device, self.reported_seq, Body::Reported(*r));
                let topic = self.setup.topics.reported(&self.setup.device);
                if self.publish(topic, env.encode(), true) {
                    self.reported_dirty = false;
                    self.reported_at = Some(Instant::now());
                }
            }
        }
    }
}
