//! Steps that need no fleet half: boot and a service (a), offline operation (b), a
//! power cut with no network (c), the armv7 binary (f), an OOM kill (g), figures.

use std::time::{Duration, Instant};

use skerry_hil::{HilError, Report, Result};

use crate::guest::{self, heartbeat, running, wait_until, CMD};
use crate::{outcome, tasks, Scenario};

const DESIRED: &str = "/var/lib/skerry/desired";
const POLL: Duration = Duration::from_millis(500);
const SLOW: Duration = Duration::from_secs(180);

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// Waits for the beat container to run and its heartbeat to move; returns its pid.
fn wait_beat_running(s: &mut Scenario, after_uptime: f64) -> Result<(String, Duration)> {
    let shell = &mut s.board()?.shell;
    let ((task, pid), took) = wait_until("beat container running", SLOW, POLL, || {
        running(shell, "beat")
    })?;
    let ((n, up), _) = wait_until("a heartbeat newer than the start", SLOW, POLL, || {
        Ok(heartbeat(shell)?.filter(|(_, up)| *up > after_uptime))
    })?;
    println!("beat running: task {task}, pid {pid}, heartbeat #{n} at guest uptime {up}");
    Ok((pid, took))
}

/// Requires the heartbeat to advance (a liveness bound, generous for a loaded TCG host).
fn heartbeat_moves(s: &mut Scenario) -> Result<()> {
    let shell = &mut s.board()?.shell;
    let (first, _) = wait_until("a heartbeat", SLOW, POLL, || heartbeat(shell))?;
    let ((n, _), took) = wait_until(
        "the heartbeat to advance",
        Duration::from_secs(30),
        POLL,
        || Ok(heartbeat(shell)?.filter(|(n, _)| *n > first.0)),
    )?;
    println!("heartbeat advanced #{} -> #{n} in {}", first.0, secs(took));
    Ok(())
}

fn guest_uptime(s: &mut Scenario) -> Result<f64> {
    let out = s.board()?.shell.ok("cut -d' ' -f1 /proc/uptime", CMD)?;
    out.parse()
        .map_err(|_| HilError::Failed(format!("/proc/uptime: {out:?}")))
}

/// (a-standalone) boot → READY → service in the desired dir → running with its limit.
pub fn step_a_boot_and_service(report: &mut Report, s: &mut Scenario) {
    report.step("a-standalone boot, READY, service running", |r| {
        outcome((|| {
            let ready = s.boot(true)?;
            r.figure(
                "boot -> agent READY (first boot, images imported)",
                secs(ready),
            );
            let at = s.board()?.shell.ok("cat /run/hil/ready", CMD)?;
            println!("hil-svc READY record (agent pid, guest uptime): {at}");
            let start = Instant::now();
            s.board()?
                .shell
                .write_file(&format!("{DESIRED}/beat.service.json"), tasks::BEAT_SERVICE)?;
            let (_, _) = wait_beat_running(s, 0.0)?;
            r.figure(
                "service file placed -> container running",
                secs(start.elapsed()),
            );
            heartbeat_moves(s)?;
            let shell = &mut s.board()?.shell;
            let max = shell.ok("cat /sys/fs/cgroup/skerry/*/beat/memory.max", CMD)?;
            if max != tasks::BEAT_MEMORY_MAX {
                return Err(HilError::Failed(format!(
                    "cgroup v2 memory.max of beat is {max:?}, want {} (memory: 24)",
                    tasks::BEAT_MEMORY_MAX
                )));
            }
            let procs = shell.ok("cat /sys/fs/cgroup/skerry/*/beat/cgroup.procs", CMD)?;
            let fs = shell.ok(
                "awk '$2 == \"/sys/fs/cgroup\" { print $3 }' /proc/mounts",
                CMD,
            )?;
            println!("/sys/fs/cgroup is {fs}: memory.max {max}, cgroup.procs {procs:?}");
            if fs != "cgroup2" || procs.is_empty() {
                return Err(HilError::Failed(format!(
                    "want beat's processes in a cgroup2 hierarchy, got {fs:?} with procs {procs:?}"
                )));
            }
            Ok(())
        })())
    });
}

/// (b) link off → the workload keeps running; a container killed is replaced offline.
pub fn step_b_offline(report: &mut Report, s: &mut Scenario) {
    report.step("b link off, workload runs, kill replaced", |r| {
        outcome((|| {
            s.board()?.set_link(false)?;
            let shell = &mut s.board()?.shell;
            let (_, took) = wait_until("guest carrier 0", Duration::from_secs(30), POLL, || {
                Ok((shell.ok("cat /sys/class/net/eth0/carrier", CMD)? == "0").then_some(()))
            })?;
            println!("link off: guest eth0 carrier 0 after {}", secs(took));
            s.events_at_link_off = Some(crate::guest::events(shell)?.len());
            heartbeat_moves(s)?;
            let shell = &mut s.board()?.shell;
            let (_, pid) = running(shell, "beat")?
                .ok_or_else(|| HilError::Failed("beat is not running".into()))?;
            let up = guest_uptime(s)?;
            let shell = &mut s.board()?.shell;
            shell.ok(&format!("kill -9 {pid}"), CMD)?;
            let start = Instant::now();
            println!("killed beat's init, pid {pid}, at guest uptime {up}");
            let shell = &mut s.board()?.shell;
            let ((_, new_pid), _) = wait_until("a new beat container", SLOW, POLL, || {
                Ok(running(shell, "beat")?.filter(|(_, p)| *p != pid))
            })?;
            let (_, _) = wait_beat_running(s, up)?;
            r.figure(
                "container killed -> replacement running (offline)",
                secs(start.elapsed()),
            );
            let shell = &mut s.board()?.shell;
            let ev = shell.ok("skerry events -n 12", CMD)?;
            println!("new beat pid {new_pid}; last events:\n{ev}");
            if !ev.contains("/beat exited with code 137") {
                return Err(HilError::Failed(format!(
                    "no exit event for the killed beat in:\n{ev}"
                )));
            }
            Ok(())
        })())
    });
}

/// (c) power cut with the link off → boot at 1970 → workload back from stored state.
pub fn step_c_power_cut(report: &mut Report, s: &mut Scenario) {
    report.step("c power cut offline, back at 1970", |r| {
        outcome((|| {
            let ready = s.boot(false)?;
            r.figure(
                "boot -> agent READY (offline, after power cut)",
                secs(ready),
            );
            let booted = s.board()?.booted_at;
            let shell = &mut s.board()?.shell;
            let year = shell.ok("date -u +%Y", CMD)?;
            let carrier = shell.ok("cat /sys/class/net/eth0/carrier", CMD)?;
            println!("guest clock year {year}, eth0 carrier {carrier}");
            if year != "1970" || carrier != "0" {
                return Err(HilError::Failed(format!(
                    "want clock 1970 and no link, got {year}, carrier {carrier}"
                )));
            }
            wait_beat_running(s, 0.0)?;
            r.figure(
                "boot -> workload running (no network, from stored state)",
                secs(booted.elapsed()),
            );
            // The lost task counts as a service failure: the relaunch waits its backoff.
            let ev = s.board()?.shell.ok("skerry events -n 8", CMD)?;
            println!("events since the boot:\n{ev}");
            heartbeat_moves(s)
        })())
    });
}

/// (f) the armv7 static binary runs a container from an arm/v7 busybox image.
pub fn step_f_armv7(report: &mut Report, s: &mut Scenario) {
    report.step("f armv7 binary runs an arm/v7 container", |_| {
        outcome((|| {
            let shell = &mut s.board()?.shell;
            if shell.run("test -x /hil/bin/skerry-armv7 && test -f /hil/images/busybox-armv7.tar", CMD)?.code != 0 {
                return Err(HilError::Failed(
                    "the board has no armv7 skerry or busybox-armv7 image (hil-tests/run builds them)".into(),
                ));
            }
            let v = shell.ok("skerry-armv7 version", CMD)?;
            println!("{v}");
            // Its own state and no config: /etc/skerry/agent.toml is the fleet agent's.
            let st = "--config /dev/null --state-dir /var/lib/skerry-armv7";
            shell.ok(&format!("skerry-armv7 {st} image import /hil/images/busybox-armv7.tar --name busybox"), SLOW)?;
            shell.write_file("/tmp/armv7.json", tasks::ARMV7_TASK)?;
            let out = shell.run(&format!("skerry-armv7 {st} run /tmp/armv7.json"), SLOW)?;
            println!("skerry-armv7 run exited {}:\n{}", out.code, out.text.trim());
            let class = shell.ok("od -An -tx1 -j4 -N1 /hil/bin/skerry-armv7 | tr -d ' '", CMD)?;
            if !v.contains("armv7-unknown-linux-gnueabihf") || class != "01" {
                return Err(HilError::Failed(format!("want a 32-bit armv7 skerry, got {v:?}, ELF class {class}")));
            }
            if out.code != 7 || !out.text.contains("elfclass=01") || !out.text.contains("armv7-container-ok") {
                return Err(HilError::Failed("want the 32-bit busybox container to run and exit 7".into()));
            }
            Ok(())
        })())
    });
}

/// (g) a container allocating past its limit ends OutOfMemory on cgroup v2.
pub fn step_g_oom(report: &mut Report, s: &mut Scenario) {
    report.step("g OOM on cgroup v2", |r| {
        outcome((|| {
            let start = Instant::now();
            let shell = &mut s.board()?.shell;
            shell.write_file(&format!("{DESIRED}/hog.json"), tasks::OOM_TASK)?;
            let (line, _) = wait_until("the hog's exit event", SLOW, POLL, || {
                let ev = shell.ok("skerry events | grep '/hog exited' || true", CMD)?;
                Ok((!ev.is_empty()).then_some(ev))
            })?;
            r.figure("OOM task placed -> exit reported", secs(start.elapsed()));
            println!("{line}");
            shell.ok(&format!("rm -f {DESIRED}/hog.json"), CMD)?;
            if !line.contains("exited with code 137 (OutOfMemory)") {
                return Err(HilError::Failed(format!(
                    "want 137 (OutOfMemory), got: {line}"
                )));
            }
            Ok(())
        })())
    });
}

/// One idle task of the ten the figures step adds.
fn idle_task(i: usize) -> String {
    format!(
        r#"{{"family": "rss{i}", "networkMode": "host", "containerDefinitions": [{{"name": "idle", "image": "busybox:latest", "memory": 8, "stopTimeout": 1, "command": ["sleep", "3600"]}}]}}"#
    )
}

/// Figures: agent and monitor RSS on the board (also with ten more tasks); a short
/// container on board and host.
pub fn step_figures(report: &mut Report, s: &mut Scenario) {
    report.step("figures (RSS, container run board vs host)", |r| {
        outcome((|| {
            let shell = &mut s.board()?.shell;
            let agent = shell.ok("cat /run/hil/agent.pid", CMD)?;
            // The running beat's own task: an earlier task of the service (before the
            // fleet took it over in a-fleet) may have left its directory.
            let (task, _) = running(shell, "beat")?
                .ok_or_else(|| HilError::Failed("beat is not running".into()))?;
            let monitor = shell.ok(
                &format!("sed -n 's/.*\"monitor_pid\": *\\([0-9]*\\).*/\\1/p' /var/lib/skerry/tasks/{task}/containers/beat/monitor.json"),
                CMD,
            )?;
            r.figure("agent VmRSS on the board", format!("{} kB", guest::rss_kb(shell, &agent)?));
            r.figure("beat monitor VmRSS on the board", format!("{} kB", guest::rss_kb(shell, &monitor)?));
            // With ten more tasks, side-loaded beside the fleet's (the x86_64 fleet
            // bench's 10-task case, here on the target architecture).
            for i in 0..10 {
                shell.write_file(&format!("{DESIRED}/rss{i}.json"), &idle_task(i))?;
            }
            let idle = |shell: &mut skerry_hil::Shell| -> Result<usize> {
                Ok(guest::ps(shell, None)?
                    .iter()
                    .filter(|r| r.container == "idle" && r.state == "running")
                    .count())
            };
            wait_until("ten more tasks running", SLOW, POLL, || {
                Ok((idle(shell)? == 10).then_some(()))
            })?;
            r.figure(
                "agent VmRSS on the board, connected over mTLS, with 10 more tasks",
                format!("{} kB", guest::rss_kb(shell, &agent)?),
            );
            for i in 0..10 {
                shell.ok(&format!("rm -f {DESIRED}/rss{i}.json"), CMD)?;
            }
            wait_until("the ten tasks gone", SLOW, POLL, || {
                Ok((idle(shell)? == 0).then_some(()))
            })?;
            let board = crate::bench::board(s)?;
            r.figure("skerry run of busybox true on the board (create→start→exit→delete, median of 5)", secs(board));
            match crate::bench::host(&s.files.work_dir) {
                Ok(host) => r.figure("the same on the host (x86_64 musl, cgroup v1, median of 5)", secs(host)),
                Err(e) => return Err(e),
            }
            Ok(())
        })())
    });
}

/// The agent killed with SIGKILL → hil-svc restarts it → READY again; the running
/// container is adopted, not restarted (same pid), still with no network.
pub fn step_agent_restart(report: &mut Report, s: &mut Scenario) {
    report.step("b2 agent kill -9, restarted, container adopted", |r| {
        outcome((|| {
            let board = s.board()?;
            let readies = board.console.count("HIL-SVC: agent READY");
            let shell = &mut board.shell;
            let (task, pid) = running(shell, "beat")?
                .ok_or_else(|| HilError::Failed("beat is not running".into()))?;
            let agent = shell.ok("cat /run/hil/agent.pid", CMD)?;
            let events_before = shell.ok("skerry events 2>/dev/null | wc -l", CMD)?;
            shell.ok(&format!("kill -9 {agent}"), CMD)?;
            let start = Instant::now();
            board
                .console
                .wait_for("HIL-SVC: agent READY", readies + 1, SLOW)?;
            r.figure(
                "agent SIGKILLed -> restarted and READY (1 container adopted)",
                secs(start.elapsed()),
            );
            let shell = &mut s.board()?.shell;
            let now = shell.ok("cat /run/hil/agent.pid", CMD)?;
            let after = running(shell, "beat")?.map(|(_, p)| p);
            println!("agent pid {agent} -> {now}; beat pid {pid} -> {after:?}");
            if now == agent || after.as_deref() != Some(pid.as_str()) {
                return Err(HilError::Failed(format!(
                    "want a new agent and the same beat container, got agent {now}, beat {after:?}"
                )));
            }
            heartbeat_moves(s)?;
            // Adopted means left alone: no stop or relaunch after the restart either
            // (a first decision made without the stored fleet documents would stop it).
            let shell = &mut s.board()?.shell;
            let since = shell.ok(
                &format!("skerry events 2>/dev/null | tail -n +$(({events_before} + 1))"),
                CMD,
            )?;
            println!("events since the agent was killed:\n{since}");
            let touched: Vec<&str> = since
                .lines()
                .filter(|l| l.contains(&format!("task {task} stopping")) || l.contains("launched"))
                .collect();
            if !touched.is_empty() || running(shell, "beat")?.map(|(_, p)| p) != Some(pid.clone()) {
                return Err(HilError::Failed(format!(
                    "the restarted agent did not leave the adopted beat (pid {pid}) alone: {touched:?}"
                )));
            }
            Ok(())
        })())
    });
}
