//! The container figure: `skerry run` of a busybox `true` task (create, start, exit,
//! delete), five times, median, on the board and on the host.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use skerry_hil::{HilError, Result};

use crate::guest::CMD;
use crate::{tasks, Scenario};

const RUNS: usize = 5;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// On the board, timed inside the guest (/proc/uptime, 10 ms steps: busybox date has
/// no %N), in a scratch state dir.
pub fn board(s: &mut Scenario) -> Result<Duration> {
    let shell = &mut s.board()?.shell;
    let st = "--state-dir /run/skerry-bench";
    shell.ok(
        &format!("skerry {st} image import /hil/images/busybox-arm64.tar --name busybox"),
        CMD,
    )?;
    shell.write_file("/tmp/true.json", tasks::TRUE_TASK)?;
    let mut times = Vec::new();
    for i in 0..RUNS {
        let out = shell.ok(
            &format!("t0=$(cut -d' ' -f1 /proc/uptime); skerry {st} run --name bench-{i} /tmp/true.json >/tmp/bench.log 2>&1 || {{ cat /tmp/bench.log; false; }} && t1=$(cut -d' ' -f1 /proc/uptime) && awk \"BEGIN {{ print ($t1 - $t0) * 1000 }}\""),
            CMD,
        )?;
        let ms: f64 = out
            .lines()
            .last()
            .and_then(|l| l.trim().parse().ok())
            .ok_or_else(|| HilError::Failed(format!("board run timing: {out:?}")))?;
        times.push(Duration::from_secs_f64(ms / 1000.0));
    }
    println!("board runs: {times:?}");
    Ok(median(times))
}

/// On the host: SKERRY_HIL_HOST_SKERRY with SKERRY_TEST_IMAGES/busybox-amd64.tar.
pub fn host(work_dir: &Path) -> Result<Duration> {
    let bin = std::env::var("SKERRY_HIL_HOST_SKERRY").map_err(|_| {
        HilError::Failed("SKERRY_HIL_HOST_SKERRY is not set (hil-tests/run sets it)".into())
    })?;
    let images = std::env::var("SKERRY_TEST_IMAGES").map_err(|_| {
        HilError::Failed("SKERRY_TEST_IMAGES is not set (hil-tests/run sets it)".into())
    })?;
    let state = work_dir.join("host-state");
    let task = work_dir.join("true.json");
    std::fs::write(&task, tasks::TRUE_TASK)
        .map_err(|e| HilError::Failed(format!("write {}: {e}", task.display())))?;
    let run = |args: &[&str]| -> Result<()> {
        let out = Command::new(&bin)
            .arg("--state-dir")
            .arg(&state)
            .args(args)
            .output()
            .map_err(|e| HilError::Failed(format!("run {bin}: {e}")))?;
        if !out.status.success() {
            return Err(HilError::Failed(format!(
                "{bin} {args:?}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(())
    };
    let archive = format!("{images}/busybox-amd64.tar");
    run(&["image", "import", &archive, "--name", "busybox"])?;
    let mut times = Vec::new();
    for i in 0..RUNS {
        let name = format!("bench-{i}");
        let start = Instant::now();
        run(&["run", "--name", &name, &task.to_string_lossy()])?;
        times.push(start.elapsed());
    }
    println!("host runs: {times:?}");
    Ok(median(times))
}
