//! The sender against a simulated client and broker: reorders, session losses,
//! refusals, gaps, and a 10,000-record backlog.

use super::*;

/// Drives `d` like the adapter with an in-memory outbox of `durable` records of `len`
/// bytes; returns the batches published (first..=last seq of records carried).
fn publish_all(d: &mut Delivery, durable: u64, len: usize, pkid: &mut u16) -> Vec<(u64, u64)> {
    let mut batches = Vec::new();
    while let Some(after) = d.wants(durable, 0) {
        let recs: Vec<(u64, usize)> = (after + 1..=durable).map(|s| (s, len)).collect();
        let n = d.take(&recs, durable);
        if n == 0 {
            continue;
        }
        batches.push((recs[0].0, recs[n - 1].0));
        *pkid = *pkid % 20 + 1;
        d.outgoing(*pkid);
    }
    batches
}

#[test]
fn delivery_10000_records_drain_in_at_most_100_publishes() {
    let mut d = Delivery::new(0, Limits::default());
    d.connected(false);
    let mut pkid = 0;
    let mut publishes = 0;
    while d.acked() < 10_000 {
        let batches = publish_all(&mut d, 10_000, 80, &mut pkid);
        publishes += batches.len();
        let pending: Vec<u16> = d.by_pkid.keys().copied().collect();
        for p in pending {
            d.puback(p, true, 0);
        }
        assert!(publishes <= 100, "{publishes} publishes");
    }
    assert_eq!(d.acked(), 10_000);
    assert!(publishes <= 20, "{publishes}");
}

#[test]
fn delivery_late_first_ack_holds_back_the_mark() {
    let mut d = Delivery::new(
        0,
        Limits {
            max_batch_records: 10,
            ..Limits::default()
        },
    );
    d.connected(false);
    let mut pkid = 0;
    let b = publish_all(&mut d, 30, 10, &mut pkid);
    assert_eq!(b, vec![(1, 10), (11, 20), (21, 30)]);
    assert_eq!(d.puback(2, true, 0), None, "second batch acked first");
    assert_eq!(d.puback(3, true, 0), None);
    assert_eq!(
        d.puback(1, true, 0),
        Some(30),
        "all three at once, in order"
    );
}

#[test]
fn delivery_session_loss_republishes_from_the_acked_mark() {
    let mut d = Delivery::new(
        5,
        Limits {
            max_batch_records: 10,
            ..Limits::default()
        },
    );
    d.connected(true);
    let mut pkid = 0;
    publish_all(&mut d, 25, 10, &mut pkid);
    assert_eq!(d.puback(1, true, 0), Some(15));
    d.disconnected();
    assert_eq!(d.wants(25, 0), None, "nothing is sent while down");
    d.connected(false);
    let b = publish_all(&mut d, 25, 10, &mut pkid);
    assert_eq!(b, vec![(16, 25)], "the lost batch again");
    assert_eq!(d.puback(pkid, true, 0), Some(25));
}

#[test]
fn delivery_resumed_session_retransmission_keeps_its_mapping() {
    let mut d = Delivery::new(
        0,
        Limits {
            max_batch_records: 10,
            ..Limits::default()
        },
    );
    d.connected(false);
    let mut pkid = 0;
    publish_all(&mut d, 20, 10, &mut pkid);
    d.disconnected();
    d.connected(true);
    // The client retransmits pkid 1 and 2 with the same ids; a status publish follows.
    d.outgoing(1);
    d.outgoing(2);
    d.queued_other();
    d.outgoing(3);
    assert_eq!(d.puback(3, true, 0), None, "status ack acks no record");
    assert_eq!(d.puback(1, true, 0), Some(10));
    assert_eq!(d.puback(2, true, 0), Some(20));
}

#[test]
fn delivery_refused_publish_pauses_and_sends_again() {
    let mut d = Delivery::new(0, Limits::default());
    d.connected(false);
    let mut pkid = 0;
    publish_all(&mut d, 3, 10, &mut pkid);
    assert_eq!(d.puback(1, false, 1000), None, "NotAuthorized acks nothing");
    assert_eq!(d.wants(3, 1000), None, "paused");
    assert_eq!(
        d.wants(3, 1000 + 30_000),
        Some(0),
        "then from the acked mark"
    );
    assert_eq!(d.acked(), 0);
}

#[test]
fn delivery_gap_of_dropped_records_is_covered() {
    let mut d = Delivery::new(0, Limits::default());
    d.connected(false);
    // The outbox dropped 1..=50 undelivered; 51..=60 remain.
    let after = d.wants(60, 0).unwrap();
    let recs: Vec<(u64, usize)> = (51..=60).map(|s| (s, 10)).collect();
    assert_eq!(d.take(&recs, 60), 10);
    assert_eq!(after, 0);
    d.outgoing(1);
    assert_eq!(d.puback(1, true, 0), Some(60));
    // Nothing readable up to the durable mark (all dropped): counted as done.
    assert_eq!(d.wants(70, 0), Some(60));
    assert_eq!(d.take(&[], 70), 0);
    assert_eq!(d.acked(), 70);
}

#[test]
fn delivery_inflight_is_bounded() {
    let mut d = Delivery::new(
        0,
        Limits {
            max_inflight: 2,
            max_batch_records: 1,
            max_batch_bytes: 1000,
        },
    );
    d.connected(false);
    let mut pkid = 0;
    let b = publish_all(&mut d, 10, 10, &mut pkid);
    assert_eq!(b.len(), 2);
}

#[test]
fn delivery_backoff_grows_to_its_cap_with_jitter() {
    assert_eq!(backoff_ms(1, 0), 500);
    assert_eq!(backoff_ms(1, 1000), 1000);
    assert_eq!(backoff_ms(3, 1000), 4000);
    assert_eq!(backoff_ms(50, 1000), 30_000);
    assert!(backoff_ms(50, 0) >= 15_000);
}

#[test]
fn delivery_dedup_drops_repeats_and_old() {
    let mut r = Dedup::default();
    assert!(r.fresh(1));
    assert!(r.fresh(2));
    assert!(!r.fresh(2));
    assert!(!r.fresh(1));
    assert!(r.fresh(10));
}
