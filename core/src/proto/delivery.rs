//! Delivery of the outbox over MQTT, as a state machine that does no I/O.
//!
//! The outbox is the only source of truth: a record leaves it only when the PUBACK of
//! the publish that carried it came back. The adapter (the agent's `sync`) calls:
//! - [`Delivery::connected`] on every CONNACK, [`Delivery::disconnected`] on a loss;
//! - [`Delivery::wants`] to learn whether (and after which seq) to read records, then
//!   [`Delivery::take`] with what it read (at most up to the outbox's durable mark),
//!   and publishes the chosen prefix as one batch;
//! - [`Delivery::queued_other`] for each other QoS 1 publish it hands the client;
//! - [`Delivery::outgoing`] for every `Outgoing::Publish(pkid)` the client reports,
//!   in order: publishes are matched to packet ids by FIFO order, since the client
//!   returns no packet id; a pkid already awaiting its ack is a retransmission;
//! - [`Delivery::puback`] for every PUBACK; `Some(seq)` means "ack the outbox up to seq".
//!
//! A batch covers the seq range from the cursor it was read after, so a gap (records
//! the outbox bound deleted) is covered too. The outbox is acked only up to the end
//! of the contiguous prefix of acknowledged ranges, so a late PUBACK reorders nothing.
//! A session the broker lost (`session_present = false`), or a refused publish, sets
//! the cursor back to the acked mark: everything after it is published again, and the
//! receiver drops what it already has by seq ([`Dedup`]).

use std::collections::{BTreeMap, VecDeque};

/// Bounds of one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Publishes handed to the client and not yet acknowledged.
    pub max_inflight: usize,
    /// Records in one batch.
    pub max_batch_records: usize,
    /// Payload bytes of one batch (records' own sizes; keep it under the size cap).
    pub max_batch_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_inflight: 10,
            max_batch_records: 500,
            max_batch_bytes: 64 * 1024,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tag {
    Batch { from: u64, last: u64 },
    Other,
}

/// The sender's state.
#[derive(Debug, Clone)]
pub struct Delivery {
    limits: Limits,
    acked: u64,
    sent: u64,
    done: BTreeMap<u64, u64>,
    fifo: VecDeque<Tag>,
    by_pkid: BTreeMap<u16, Tag>,
    connected: bool,
    paused_until: u64,
    refusals: u32,
}

impl Delivery {
    /// A sender whose outbox has everything up to `acked` delivered.
    pub fn new(acked: u64, limits: Limits) -> Self {
        Self {
            limits,
            acked,
            sent: acked,
            done: BTreeMap::new(),
            fifo: VecDeque::new(),
            by_pkid: BTreeMap::new(),
            connected: false,
            paused_until: 0,
            refusals: 0,
        }
    }

    /// Everything up to this seq is delivered.
    pub fn acked(&self) -> u64 {
        self.acked
    }

    /// Publishes handed over and not yet acknowledged.
    pub fn inflight(&self) -> usize {
        self.fifo.len() + self.by_pkid.len()
    }

    /// A CONNACK came. Without a stored session the broker and client forgot every
    /// unacknowledged publish: publish again from the acked mark.
    pub fn connected(&mut self, session_present: bool) {
        self.connected = true;
        if !session_present {
            self.by_pkid.clear();
            self.sent = self.acked;
        }
    }

    pub fn disconnected(&mut self) {
        self.connected = false;
    }

    /// `Some(after)`: read records after `after` (up to `durable`) and [`take`](Self::take) them.
    pub fn wants(&self, durable: u64, now_ms: u64) -> Option<u64> {
        (self.connected
            && now_ms >= self.paused_until
            && self.sent < durable
            && self.inflight() < self.limits.max_inflight)
            .then_some(self.sent)
    }

    /// Given `(seq, len)` of the records read after the cursor (none above `durable`),
    /// returns how many of them the next batch carries. With none read, the range up to
    /// `durable` holds nothing to deliver and counts as delivered once all before it is.
    pub fn take(&mut self, records: &[(u64, usize)], durable: u64) -> usize {
        let from = self.sent + 1;
        if records.is_empty() {
            self.sent = durable.max(self.sent);
            self.done.insert(from, self.sent);
            self.advance();
            return 0;
        }
        let mut n = 0;
        let mut bytes = 0;
        for &(_, len) in records {
            if n > 0
                && (n == self.limits.max_batch_records || bytes + len > self.limits.max_batch_bytes)
            {
                break;
            }
            n += 1;
            bytes += len;
        }
        let last = records[n - 1].0;
        self.sent = last;
        self.fifo.push_back(Tag::Batch { from, last });
        n
    }

    /// The batch [`take`](Self::take) chose last could not be handed to the client:
    /// forget it, so its records are taken again.
    pub fn abandon_last(&mut self) {
        if let Some(Tag::Batch { from, .. }) = self.fifo.back().copied() {
            self.fifo.pop_back();
            self.sent = from - 1;
        }
    }

    /// Another QoS 1 publish (reported state, status) was handed to the client.
    pub fn queued_other(&mut self) {
        self.fifo.push_back(Tag::Other);
    }

    /// The client sent a PUBLISH with this packet id.
    pub fn outgoing(&mut self, pkid: u16) {
        if pkid == 0 || self.by_pkid.contains_key(&pkid) {
            return;
        }
        if let Some(tag) = self.fifo.pop_front() {
            self.by_pkid.insert(pkid, tag);
        }
    }

    /// A PUBACK came (`ok`: success or no matching subscribers). Returns the seq to ack
    /// the outbox up to when the acked mark moved. A refusal pauses sending with backoff
    /// and publishes again from the acked mark.
    pub fn puback(&mut self, pkid: u16, ok: bool, now_ms: u64) -> Option<u64> {
        let tag = self.by_pkid.remove(&pkid)?;
        let Tag::Batch { from, last } = tag else {
            return None;
        };
        if !ok {
            self.refusals += 1;
            self.paused_until = now_ms + backoff_ms(self.refusals, 500);
            self.sent = self.acked;
            return None;
        }
        self.refusals = 0;
        self.done.insert(from, last);
        let before = self.acked;
        self.advance();
        (self.acked > before).then_some(self.acked)
    }

    fn advance(&mut self) {
        while let Some((&from, &last)) = self.done.first_key_value() {
            if from > self.acked + 1 {
                break;
            }
            self.acked = self.acked.max(last);
            self.done.remove(&from);
        }
        self.sent = self.sent.max(self.acked);
    }
}

/// Exponential backoff with jitter: attempt 1 waits ~1 s, doubling, capped at 30 s;
/// `jitter_permille` (0..=1000, random from the caller) spreads it over its upper half.
pub fn backoff_ms(attempt: u32, jitter_permille: u64) -> u64 {
    let ceiling = 1000u64
        .saturating_mul(1u64 << attempt.saturating_sub(1).min(5))
        .min(30_000);
    ceiling / 2 + ceiling / 2 * jitter_permille.min(1000) / 1000
}

/// A receiver's duplicate filter: reports are taken once, in seq order.
#[derive(Debug, Clone, Default)]
pub struct Dedup {
    last: u64,
}

impl Dedup {
    pub fn new(last: u64) -> Self {
        Self { last }
    }

    /// Whether `seq` is new (and remembers it).
    pub fn fresh(&mut self, seq: u64) -> bool {
        if seq <= self.last {
            return false;
        }
        self.last = seq;
        true
    }

    pub fn last(&self) -> u64 {
        self.last
    }
}

#[cfg(test)]
mod tests;
