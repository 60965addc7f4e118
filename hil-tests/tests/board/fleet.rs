//! Steps that need the fleet half, which has not landed yet: `skerry ctl apply` over
//! MQTT (a-fleet), the outbox drained in order after the link returns (d), a new
//! revision pulled from the host's registry with a rolling update and a rollback (e).
//!
//! Each one fails loudly as NOT LANDED, naming the missing part, until the lead fills
//! it in. The planned interface: `skerry ctl --config ctl.toml apply --device D --wait
//! 60 FILE...` (ctl.toml: broker url, CA, cert, key, signing key, fleet), the agent's
//! `[mqtt]` config section, mosquitto on host loopback (the guest reaches it at
//! 10.0.2.2), the broker fixture in `agent/tests/common/broker.rs`. A probe checks
//! whether the host binary already has `skerry ctl`, so a landed part is noticed.

use std::process::Command;

use skerry_hil::{Outcome, Report};

use crate::Scenario;

/// Whether the host skerry binary knows `skerry ctl` yet.
fn host_has_ctl() -> bool {
    let Ok(bin) = std::env::var("SKERRY_HIL_HOST_SKERRY") else {
        return false;
    };
    Command::new(bin)
        .args(["ctl", "--help"])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn not_landed(part: &str) -> Outcome {
    if host_has_ctl() {
        Outcome::Failed(format!(
            "skerry ctl exists now but this step is not written: {part} (fill in hil-tests/tests/board/fleet.rs)"
        ))
    } else {
        Outcome::NotLanded(format!("not landed: {part}"))
    }
}

/// (a) `skerry ctl apply` of the heartbeat service over MQTT → reported running on the host.
pub fn step_a_fleet_apply(report: &mut Report, _s: &mut Scenario) {
    report.step("a-fleet ctl apply over MQTT, reported running", |_| {
        not_landed("MQTT sync (agent [mqtt], mosquitto fixture) and skerry ctl apply")
    });
}

/// (d) link on → every event queued since (b) arrives at the host, in order, counted.
pub fn step_d_outbox_drain(report: &mut Report, s: &mut Scenario) {
    report.step("d link on, queued events drained in order", |r| {
        // The link part works today; the delivery part needs the sync.
        if let Some(board) = s.board.as_mut() {
            if let Err(e) = board.set_link(true) {
                return Outcome::Failed(format!("link on: {e}"));
            }
            if let Some(n) = s.events_at_link_off {
                r.figure(
                    "events in the outbox when the link went down",
                    n.to_string(),
                );
            }
        }
        not_landed(
            "MQTT sync: outbox sender and a host subscriber counting events (events/s figure)",
        )
    });
}

/// (e) new revision from the host's docker-registry → rolling update; bad health → rollback.
pub fn step_e_rolling_update(report: &mut Report, _s: &mut Scenario) {
    report.step("e registry pull, rolling update, rollback", |_| {
        not_landed("registry pulls (docker-registry on host loopback) and skerry ctl apply of a new revision")
    });
}
