//! Step e: a new revision of the beat service, its image pulled by the board from
//! docker-registry on the host's loopback (10.0.2.2 from the guest), rolls out through
//! the fleet (`skerry ctl apply --wait`); then a revision whose health check fails is
//! rolled back by the circuit breaker, on the board, with the result in the retained
//! reported state.
//!
//! The new image is the arm64 busybox plus one layer made here (GNU tar, gzip): a
//! revision file and 2 MiB of incompressible bytes, so the pull really crosses the
//! emulated link (the busybox layer is on the board already).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use skerry_core::proto::reported::{ApplyState, ReportedState};
use skerry_hil::registry::Registry;
use skerry_hil::{HilError, Outcome, Report, Result};

use crate::fleet::{restart_agent, secs};
use crate::guest::{events, wait_until, CMD};
use crate::operator::{DEVICE, GUEST_ETC};
use crate::{outcome, tasks, Scenario};

const POLL: Duration = Duration::from_millis(500);
const NOISE_BYTES: usize = 2 << 20;

/// (e) registry pull → rolling update; failing health check → rollback.
pub fn step_e_rolling_update(report: &mut Report, s: &mut Scenario) {
    report.step("e registry pull, rolling update, rollback", |r| {
        if s.fleet.is_none() {
            return Outcome::Failed(
                "needs the broker and operator of step a-fleet, which failed".into(),
            );
        }
        let mut registry = None;
        let result = rolling_update(r, s, &mut registry);
        if result.is_err() {
            if let Some(reg) = &registry {
                println!("----- docker-registry log\n{}", reg.log());
            }
        }
        outcome(result)
    });
}

/// Deterministic bytes that do not compress (xorshift).
fn noise(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn beat_revision(r: &ReportedState) -> Option<String> {
    r.tasks
        .iter()
        .find(|t| t.service.as_deref() == Some("beat") && t.status == "RUNNING")
        .map(|t| t.revision.clone())
}

fn rolling_update(r: &mut Report, s: &mut Scenario, keep: &mut Option<Registry>) -> Result<()> {
    let images = std::env::var_os("SKERRY_TEST_IMAGES")
        .map(PathBuf::from)
        .ok_or_else(|| HilError::Failed("SKERRY_TEST_IMAGES is not set".into()))?;
    let reg = keep.insert(Registry::start(&s.files.work_dir.join("registry"))?);
    let layout = reg.layout_with(
        &images.join("busybox-arm64"),
        "beat-v2",
        &[
            ("revision", b"beat-v2\n"),
            ("noise.bin", &noise(NOISE_BYTES)),
        ],
    )?;
    reg.push(&layout, "beat", "v2")?;
    let host = reg.guest_host();
    let image = format!("{host}/beat:v2");

    // The board trusts this registry over plain HTTP (its agent config), then restarts.
    let board = s.board()?;
    board.shell.ok(
        &format!(
            "printf '\\n[registries.\"{host}\"]\\ninsecure = true\\n' >> {GUEST_ETC}/agent.toml"
        ),
        CMD,
    )?;
    restart_agent(board)?;
    let op = s
        .fleet
        .as_ref()
        .ok_or_else(|| HilError::Failed("no operator".into()))?;
    wait_until(
        "the board online again",
        Duration::from_secs(90),
        POLL,
        || Ok(op.online()?.then_some(())),
    )?;
    let before = op
        .reported()?
        .and_then(|rep| beat_revision(&rep))
        .ok_or_else(|| HilError::Failed("beat is not reported running before step e".into()))?;

    // v2 from the registry: pulled over the emulated link, rolled out, stable.
    let file = op.dir.join("beat.service.json");
    let write = |text: &str| {
        std::fs::write(&file, text)
            .map_err(|e| HilError::Failed(format!("write {}: {e}", file.display())))
    };
    write(&tasks::beat_service_from(&image, false))?;
    let start = Instant::now();
    let out = op.ctl(&[
        "apply",
        "--device",
        DEVICE,
        "--wait",
        "300",
        &file.display().to_string(),
    ])?;
    let rolled = start.elapsed();
    println!("skerry ctl apply (pulled revision): {}", out.trim());
    if !out.contains("applied") {
        return Err(HilError::Failed(format!("v2 not applied: {out}")));
    }
    r.figure(
        "rolling update to a pulled revision (ctl apply -> applied, 10 s stability window)",
        secs(rolled),
    );
    let shell = &mut s.board()?.shell;
    let rev = shell.ok("cat /run/hb/rev", CMD)?;
    if rev.trim() != "beat-v2" {
        return Err(HilError::Failed(format!(
            "the board's beat does not run the pulled image: /run/hb/rev is {rev:?}"
        )));
    }
    let ev = events(shell)?;
    let pulled = ev
        .iter()
        .find(|l| l.contains(&format!("pulling {image}: 100%")))
        .ok_or_else(|| {
            HilError::Failed(format!(
                "no completed pull of {image} in the board's events:\n{}",
                ev.join("\n")
            ))
        })?;
    println!("board event: {pulled}");
    let ls = shell.ok("skerry image ls", CMD)?;
    if !ls.contains(&format!("{host}/beat")) {
        return Err(HilError::Failed(format!("image ls lacks {image}:\n{ls}")));
    }
    let op = s
        .fleet
        .as_ref()
        .ok_or_else(|| HilError::Failed("no operator".into()))?;
    let (good, _) = wait_until(
        "reported: beat running the pulled revision",
        Duration::from_secs(60),
        POLL,
        || {
            Ok(op
                .reported()?
                .and_then(|rep| beat_revision(&rep))
                .filter(|v| *v != before))
        },
    )?;

    // v3 fails its health check: the breaker trips on the first failed task and the
    // board goes back to v2 on its own.
    write(&tasks::beat_service_from(&image, true))?;
    let start = Instant::now();
    let out = op.ctl(&["apply", "--device", DEVICE, &file.display().to_string()])?;
    let version = out
        .split_whitespace()
        .skip_while(|w| *w != "version")
        .nth(1)
        .and_then(|v| v.parse::<u64>().ok())
        .ok_or_else(|| HilError::Failed(format!("no version in ctl's answer: {out}")))?;
    let (reason, took) = wait_until(
        "reported: the failing revision rolled back, beat on the pulled revision again",
        Duration::from_secs(300),
        POLL,
        || {
            Ok(op.reported()?.and_then(|rep| {
                let failed = rep.documents.iter().find_map(|d| match &d.state {
                    ApplyState::Failed { reason } if d.version == version => Some(reason.clone()),
                    _ => None,
                })?;
                (beat_revision(&rep)? == good).then_some(failed)
            }))
        },
    )?;
    println!("reported version {version}: failed: {reason}");
    r.figure(
        "failing health check -> rolled back, reported (ctl apply -> reported)",
        secs(start.elapsed().max(took)),
    );
    let shell = &mut s.board()?.shell;
    let ev = events(shell)?;
    if !ev.iter().any(|l| l.contains("rolled back")) {
        return Err(HilError::Failed(format!(
            "no rollback in the board's events:\n{}",
            ev.join("\n")
        )));
    }
    Ok(())
}
