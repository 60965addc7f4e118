//! Steps that need the fleet half: `skerry ctl apply` over MQTT to the board at 1970
//! (a-fleet) and every event queued offline drained in order once the link returns (d);
//! the registry step (e) is in `pulls.rs`.
//!
//! a-fleet starts mosquitto on the host's loopback (the board reaches it at 10.0.2.2),
//! writes the board's `[mqtt]` config and certificates to its state disk, restarts the
//! agent, and hands the heartbeat service over from the local desired directory to the
//! fleet: from then on b, b2, c and d run the service the fleet's signed, stored
//! document defines. Should a-fleet fail, the local file is put back so the standalone
//! steps still run.

use std::time::{Duration, Instant};

use skerry_hil::{Board, HilError, Outcome, Report, Result};

use crate::guest::{heartbeat, running, wait_until, CMD};
use crate::operator::{host_skerry, Operator, DEVICE};
use crate::{outcome, tasks, Scenario};

const LOCAL_BEAT: &str = "/var/lib/skerry/desired/beat.service.json";
const POLL: Duration = Duration::from_millis(500);

pub fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// Whether the host skerry binary knows `skerry <args> --help`.
fn host_has(args: &[&str]) -> bool {
    let Some(bin) = host_skerry() else {
        return false;
    };
    std::process::Command::new(bin)
        .args(args)
        .arg("--help")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// NOT LANDED while the host binary lacks `probe`; once it has it, a failure saying
/// the step is still to be written.
fn not_landed(probe: &[&str], part: &str) -> Outcome {
    if host_has(probe) {
        Outcome::Failed(format!(
            "skerry {} exists now but this step is not written: {part} (fill in hil-tests/tests/board/fleet.rs)",
            probe.join(" ")
        ))
    } else {
        Outcome::NotLanded(format!("not landed: {part}"))
    }
}

/// (a-fleet) broker up, board provisioned, `ctl apply` of the heartbeat service →
/// reported running on the host; its cgroup v2 limit on the board.
pub fn step_a_fleet_apply(report: &mut Report, s: &mut Scenario) {
    report.step("a-fleet ctl apply over MQTT, reported running", |r| {
        if !host_has(&["ctl"]) {
            return not_landed(&["ctl"], "MQTT sync and skerry ctl apply");
        }
        let result = fleet_apply(r, s);
        if result.is_err() {
            // Give the standalone steps their service back.
            if let Ok(board) = s.board() {
                let _ = board.shell.write_file(LOCAL_BEAT, tasks::BEAT_SERVICE);
            }
        }
        outcome(result)
    });
}

fn fleet_apply(r: &mut Report, s: &mut Scenario) -> Result<()> {
    let bin = host_skerry()
        .ok_or_else(|| HilError::Failed("SKERRY_HIL_HOST_SKERRY is not set".into()))?;
    let op = Operator::start(&bin, &s.files.work_dir, &s.pki.clone())?;
    // ctl's events session is persistent: registered now (before the link goes down
    // in b), the broker keeps every event the board sends from here on for step d.
    op.ctl(&["events", "--device", DEVICE])?;
    let board = s.board()?;
    op.provision(&mut board.shell)?;
    let year = board.shell.ok("date -u +%Y-%m-%dT%H:%M:%SZ", CMD)?;
    let took = restart_agent(board)?;
    r.figure("agent restarted with [mqtt] -> READY", secs(took));
    let ((), took) = wait_until(
        "the board online on the broker (TLS at 1970)",
        Duration::from_secs(60),
        POLL,
        || Ok(op.online()?.then_some(())),
    )?;
    r.figure(
        "agent READY -> online on the broker (mTLS, board clock at 1970)",
        secs(took),
    );
    println!("board clock {year}: rustls checked the broker's certificate against the agent's time floor");
    s.fleet = Some(op);

    // Hand the service over: the local file goes, the fleet's document brings it back.
    let shell = &mut s.board()?.shell;
    shell.ok(&format!("rm -f {LOCAL_BEAT} && sync"), CMD)?;
    wait_until(
        "the local beat to stop",
        Duration::from_secs(60),
        POLL,
        || Ok(running(shell, "beat")?.is_none().then_some(())),
    )?;
    let op = s
        .fleet
        .as_ref()
        .ok_or_else(|| HilError::Failed("no operator".into()))?;
    let file = op.dir.join("beat.service.json");
    std::fs::write(&file, tasks::BEAT_SERVICE)
        .map_err(|e| HilError::Failed(format!("write {}: {e}", file.display())))?;
    let start = Instant::now();
    let out = op.ctl(&[
        "apply",
        "--device",
        DEVICE,
        "--wait",
        "120",
        &file.display().to_string(),
    ])?;
    let applied = start.elapsed();
    println!("skerry ctl apply: {}", out.trim());
    if !out.contains("version 1 applied") {
        return Err(HilError::Failed(format!(
            "ctl apply did not report version 1 applied: {out}"
        )));
    }
    r.figure(
        "ctl apply on the host -> reported applied (ctl --wait)",
        secs(applied),
    );
    // Read back with a plain MQTT client, decoded with skerry-core's Envelope.
    let (task, took) = wait_until(
        "reported: beat RUNNING from the fleet",
        Duration::from_secs(60),
        POLL,
        || {
            Ok(op.reported()?.and_then(|rep| {
                rep.tasks.into_iter().find(|t| {
                    t.service.as_deref() == Some("beat")
                        && t.status == "RUNNING"
                        && t.source == format!("device {DEVICE} v1")
                })
            }))
        },
    )?;
    println!(
        "reported (mosquitto_sub, Envelope): task {} {} from {:?}, containers {:?}",
        task.id,
        task.status,
        task.source,
        task.containers
            .iter()
            .map(|c| (&c.name, &c.status))
            .collect::<Vec<_>>()
    );
    r.figure(
        "ctl apply -> reported RUNNING (retained reported, mosquitto_sub)",
        secs(applied + took),
    );
    let shell = &mut s.board()?.shell;
    let (task_id, pid) = running(shell, "beat")?
        .ok_or_else(|| HilError::Failed("beat is not running on the board".into()))?;
    if task_id != task.id {
        return Err(HilError::Failed(format!(
            "board runs beat as task {task_id}, reported says {}",
            task.id
        )));
    }
    let max = shell.ok(
        &format!("cat /sys/fs/cgroup/skerry/{task_id}/beat/memory.max"),
        CMD,
    )?;
    println!("fleet beat: task {task_id}, pid {pid}, memory.max {max}");
    if max != tasks::BEAT_MEMORY_MAX {
        return Err(HilError::Failed(format!(
            "cgroup v2 memory.max of the fleet's beat is {max:?}, want {}",
            tasks::BEAT_MEMORY_MAX
        )));
    }
    let (first, _) = wait_until("a heartbeat", Duration::from_secs(60), POLL, || {
        heartbeat(shell)
    })?;
    wait_until(
        "the fleet's heartbeat to advance",
        Duration::from_secs(30),
        POLL,
        || Ok(heartbeat(shell)?.filter(|(n, _)| *n > first.0)),
    )?;
    Ok(())
}

/// Restarts the board's agent after a config change (hil-svc starts it again, as the
/// service manager would); returns the time to its next READY.
pub fn restart_agent(board: &mut Board) -> Result<Duration> {
    let readies = board.console.count("HIL-SVC: agent READY");
    let agent = board.shell.ok("cat /run/hil/agent.pid", CMD)?;
    board.shell.ok(&format!("kill {agent}"), CMD)?;
    let start = Instant::now();
    board.console.wait_for(
        "HIL-SVC: agent READY",
        readies + 1,
        Duration::from_secs(120),
    )?;
    Ok(start.elapsed())
}

/// (d) link on → every event queued since (b) arrives at the host, in order, counted.
pub fn step_d_outbox_drain(report: &mut Report, s: &mut Scenario) {
    report.step("d link on, queued events drained in order", |r| {
        if !host_has(&["ctl"]) {
            if let Some(board) = s.board.as_mut() {
                if let Err(e) = board.set_link(true) {
                    return Outcome::Failed(format!("link on: {e}"));
                }
            }
            return not_landed(&["ctl"], "MQTT sync: outbox sender and a host subscriber");
        }
        let result = crate::drain::drain(r, s);
        // The link comes back whatever happened, for the steps after this one.
        if let Some(board) = s.board.as_mut() {
            let _ = board.set_link(true);
        }
        outcome(result)
    });
}
