//! Step d's body: the link comes back and the host must receive, in order and with
//! none missing, every event the board queued since the link went off in step b.
//!
//! The expected list is the board's own: `skerry events` (the outbox, oldest first)
//! and the first segment's name in `<state>/outbox/` (its first seq), so the k-th line
//! is seq `first + k`; the events queued offline are the lines after the count taken
//! at link-off. The host side is `skerry ctl events -f --output json`, whose
//! persistent session was registered in a-fleet, started before the link comes back.
//! What arrives must be contiguous in seq, and each line must equal the board's line
//! of the same seq (time and text).

use std::time::{Duration, Instant};

use skerry_hil::{HilError, Report, Result, Shell};

use crate::guest::CMD;
use crate::operator::HostEvent;
use crate::Scenario;

const DRAIN_TIMEOUT: Duration = Duration::from_secs(150);

/// The seq of the oldest record in the board's outbox.
fn first_seq(shell: &mut Shell) -> Result<u64> {
    let name = shell.ok(
        "ls /var/lib/skerry/outbox | grep '\\.seg$' | sort | head -n1",
        CMD,
    )?;
    name.strip_suffix(".seg")
        .and_then(|h| u64::from_str_radix(h, 16).ok())
        .ok_or_else(|| HilError::Failed(format!("no outbox segment on the board: {name:?}")))
}

pub fn drain(r: &mut Report, s: &mut Scenario) -> Result<()> {
    let at_off = s
        .events_at_link_off
        .ok_or_else(|| HilError::Failed("step b did not count the events at link-off".into()))?;
    let op = s
        .fleet
        .as_ref()
        .ok_or_else(|| HilError::Failed("no broker: step a-fleet failed".into()))?;
    let board = s
        .board
        .as_mut()
        .ok_or_else(|| HilError::Failed("no board is running (an earlier step failed)".into()))?;
    // A subscriber on the host before the link comes back.
    let mut follower = op.follow_events()?;
    let carrier = board.shell.ok("cat /sys/class/net/eth0/carrier", CMD)?;
    if carrier != "0" {
        return Err(HilError::Failed(format!(
            "the link should still be off since b, eth0 carrier is {carrier}"
        )));
    }
    let lines = crate::guest::events(&mut board.shell)?;
    let base = first_seq(&mut board.shell)?;
    if lines.len() <= at_off {
        return Err(HilError::Failed(format!(
            "no event was queued since the link went off ({at_off} then, {} now)",
            lines.len()
        )));
    }
    let first_off = base + at_off as u64;
    let last = base + lines.len() as u64 - 1;
    let queued = lines.len() - at_off;
    println!("board outbox: seq {base}..={last}; {queued} queued since link-off (seq {first_off}..={last}):");
    for l in &lines[at_off..] {
        println!("  {l}");
    }
    r.figure(
        "events queued on the board while the link was off (b, b2, c)",
        queued.to_string(),
    );

    board.set_link(true)?;
    let on = Instant::now();
    let mut got: Vec<HostEvent> = Vec::new();
    while got.last().is_none_or(|e| e.seq < last) {
        if on.elapsed() > DRAIN_TIMEOUT {
            return Err(HilError::Timeout {
                what: format!("the host to receive seq {first_off}..={last}"),
                secs: DRAIN_TIMEOUT.as_secs_f64(),
                detail: format!(
                    ", got {} events up to seq {:?}",
                    got.len(),
                    got.last().map(|e| e.seq)
                ),
            });
        }
        got.extend(follower.take(Duration::from_secs(1))?);
    }
    drop(follower);
    check(&got, &lines, base, first_off)?;
    let first_at = got.iter().find(|e| e.seq >= first_off).map_or(on, |e| e.at);
    let last_at = got.iter().find(|e| e.seq == last).map_or(on, |e| e.at);
    let drained = last_at.saturating_duration_since(on);
    println!(
        "host received seq {}..={} ({} events, contiguous, in order), the {queued} queued offline all equal to the board's lines",
        got[0].seq,
        got[got.len() - 1].seq,
        got.len()
    );
    r.figure(
        "link restored -> first queued event at the host",
        format!(
            "{:.2} s",
            first_at.saturating_duration_since(on).as_secs_f64()
        ),
    );
    r.figure(
        "link restored -> outbox drained at the host",
        format!("{:.2} s", drained.as_secs_f64()),
    );
    r.figure(
        "outbox drain rate (queued events / drain time, reconnect backoff included)",
        format!(
            "{:.1} events/s",
            queued as f64 / drained.as_secs_f64().max(0.001)
        ),
    );
    if let Some(rep) = op.reported()? {
        println!(
            "reported after the drain: reports_dropped {}, last_error {:?}",
            rep.reports_dropped, rep.last_error
        );
        if rep.reports_dropped != 0 {
            return Err(HilError::Failed(format!(
                "the board's outbox dropped {} reports",
                rep.reports_dropped
            )));
        }
    }
    Ok(())
}

/// `got` must be contiguous in seq, start no later than `first_off`, and match the
/// board's `lines` (line k is seq `base + k`) wherever both have the seq.
fn check(got: &[HostEvent], lines: &[String], base: u64, first_off: u64) -> Result<()> {
    let Some(first) = got.first() else {
        return Err(HilError::Failed("the host received no event".into()));
    };
    for w in got.windows(2) {
        if w[1].seq != w[0].seq + 1 {
            return Err(HilError::Failed(format!(
                "host events out of order or missing: seq {} then {}",
                w[0].seq, w[1].seq
            )));
        }
    }
    if first.seq > first_off {
        return Err(HilError::Failed(format!(
            "the host's first event is seq {}, after link-off's first {first_off}: events missing",
            first.seq
        )));
    }
    for e in got {
        let Some(want) = e.seq.checked_sub(base).and_then(|k| lines.get(k as usize)) else {
            continue;
        };
        if *want != e.line {
            return Err(HilError::Failed(format!(
                "seq {}: the host got {:?}, the board has {want:?}",
                e.seq, e.line
            )));
        }
    }
    Ok(())
}
