//! The operator's MQTT 5 session: connect (mTLS), read retained messages, publish and
//! wait for the PUBACK, follow a topic. Every error names the broker, the topic and
//! the reason (a refused publish is NotAuthorized, never silence).

use std::collections::BTreeMap;
use std::time::Duration;

use rumqttc::v5::mqttbytes::v5::{Packet, PubAckReason, SubscribeReasonCode};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, EventLoop, MqttOptions};
use rumqttc::{NetworkOptions, TlsConfiguration, Transport};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

use super::config::CtlConfig;
use crate::sync::config::{parse_broker, BrokerAddr};
use crate::sync::timefloor::TimeFloor;

/// One connected session.
pub struct Session {
    pub broker: BrokerAddr,
    client: AsyncClient,
    events: UnboundedReceiver<Result<Event, String>>,
    /// Publishes that arrived while waiting for something else.
    pub inbox: Vec<(String, Vec<u8>)>,
}

/// A message that arrived.
pub type Message = (String, Vec<u8>);

impl Session {
    /// Connects as the operator. `client_id` with `persistent` keeps a session on the
    /// broker (events queued while ctl is away).
    pub async fn connect(
        cfg: &CtlConfig,
        client_id: &str,
        persistent: bool,
    ) -> anyhow::Result<Self> {
        let broker = parse_broker(cfg.broker()?).map_err(|e| anyhow::anyhow!("broker: {e}"))?;
        let tls = crate::sync::tls::client_config(
            cfg.ca()?,
            cfg.cert()?,
            cfg.key()?,
            TimeFloor::load(None),
        )?;
        let mut o = MqttOptions::new(client_id, broker.host.clone(), broker.port);
        o.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(tls)));
        o.set_keep_alive(Duration::from_secs(30));
        o.set_clean_start(!persistent);
        if persistent {
            o.set_session_expiry_interval(Some(7 * 24 * 3600));
        }
        o.set_max_packet_size(Some((cfg.max_payload() + 1024) as u32));
        // rumqttc allocates one in-flight slot per packet id up front (13.5 MiB at its
        // default); ctl never has more than a few publishes out.
        o.set_outgoing_inflight_upper_limit(64);
        let mut net = NetworkOptions::new();
        net.set_tcp_nodelay(true);
        net.set_connection_timeout(10);
        o.set_network_options(net);
        let (client, eventloop) = AsyncClient::new(o, 64);
        let (tx, rx) = unbounded_channel();
        tokio::spawn(poll(eventloop, tx));
        let mut s = Self {
            broker,
            client,
            events: rx,
            inbox: Vec::new(),
        };
        loop {
            match s.next(Duration::from_secs(15)).await? {
                Some(Event::Incoming(Packet::ConnAck(_))) => return Ok(s),
                Some(_) => {}
                None => anyhow::bail!("broker {}: no answer to CONNECT within 15 s", s.broker),
            }
        }
    }

    async fn next(&mut self, within: Duration) -> anyhow::Result<Option<Event>> {
        match tokio::time::timeout(within, self.events.recv()).await {
            Err(_) => Ok(None),
            Ok(None) => anyhow::bail!("broker {}: connection closed", self.broker),
            Ok(Some(Err(e))) => anyhow::bail!("broker {}: {e}", self.broker),
            Ok(Some(Ok(ev))) => {
                if let Event::Incoming(Packet::Publish(p)) = &ev {
                    self.inbox.push((
                        String::from_utf8_lossy(&p.topic).into_owned(),
                        p.payload.to_vec(),
                    ));
                }
                Ok(Some(ev))
            }
        }
    }

    /// Subscribes and waits for the SUBACK (a refused filter is an error).
    pub async fn subscribe(&mut self, topics: &[String]) -> anyhow::Result<()> {
        for t in topics {
            self.client
                .subscribe(t.clone(), QoS::AtLeastOnce)
                .await
                .map_err(|e| anyhow::anyhow!("broker {}: subscribe {t}: {e}", self.broker))?;
            loop {
                match self.next(Duration::from_secs(10)).await? {
                    Some(Event::Incoming(Packet::SubAck(a))) => {
                        if let Some(bad) = a
                            .return_codes
                            .iter()
                            .find(|c| !matches!(c, SubscribeReasonCode::Success(_)))
                        {
                            anyhow::bail!(
                                "broker {}: subscribe {t}: refused: {bad:?}",
                                self.broker
                            );
                        }
                        break;
                    }
                    Some(_) => {}
                    None => anyhow::bail!(
                        "broker {}: subscribe {t}: no SUBACK within 10 s",
                        self.broker
                    ),
                }
            }
        }
        Ok(())
    }

    /// The retained messages of `topics` (exact or wildcard): subscribes, then collects
    /// until nothing arrives for `quiet`.
    pub async fn retained(
        &mut self,
        topics: &[String],
        quiet: Duration,
    ) -> anyhow::Result<BTreeMap<String, Vec<u8>>> {
        self.subscribe(topics).await?;
        while self.next(quiet).await?.is_some() {}
        Ok(self
            .inbox
            .drain(..)
            .filter(|(_, p)| !p.is_empty())
            .collect())
    }

    /// Publishes at QoS 1 and waits for the PUBACK; a refusal names its reason.
    pub async fn publish(
        &mut self,
        topic: &str,
        payload: Vec<u8>,
        retain: bool,
    ) -> anyhow::Result<()> {
        self.client
            .publish(topic, QoS::AtLeastOnce, retain, payload)
            .await
            .map_err(|e| anyhow::anyhow!("broker {}: publish {topic}: {e}", self.broker))?;
        loop {
            match self.next(Duration::from_secs(15)).await? {
                Some(Event::Incoming(Packet::PubAck(a))) => {
                    return match a.reason {
                        PubAckReason::Success | PubAckReason::NoMatchingSubscribers => Ok(()),
                        r => {
                            anyhow::bail!("broker {}: publish {topic}: refused: {r:?}", self.broker)
                        }
                    }
                }
                Some(_) => {}
                None => anyhow::bail!(
                    "broker {}: publish {topic}: no PUBACK within 15 s",
                    self.broker
                ),
            }
        }
    }

    /// The next message on the subscribed topics, within `within`.
    pub async fn message(&mut self, within: Duration) -> anyhow::Result<Option<Message>> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if !self.inbox.is_empty() {
                return Ok(Some(self.inbox.remove(0)));
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() || self.next(left).await?.is_none() {
                return Ok(None);
            }
        }
    }

    /// Disconnects cleanly.
    pub async fn close(self) {
        let _ = self.client.disconnect().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn poll(
    mut eventloop: EventLoop,
    tx: tokio::sync::mpsc::UnboundedSender<Result<Event, String>>,
) {
    loop {
        let ev = eventloop.poll().await;
        let failed = ev.is_err();
        let msg = ev.map_err(|e| match e {
            rumqttc::v5::ConnectionError::ConnectionRefused(c) => {
                format!("connection refused: {c:?}")
            }
            other => other.to_string(),
        });
        if tx.send(msg).is_err() || failed {
            return;
        }
    }
}
