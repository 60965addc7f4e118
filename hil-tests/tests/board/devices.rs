//! Step h: `linuxParameters.devices` under cgroup v2, where skerry's own eBPF device
//! filter (design D32) is the only thing enforcing device rules. A node made in the
//! guest (char 240:0, a major with no driver) is listed; the container opens it (the
//! filter lets it through: ENXIO from the absent driver), makes an unlisted 240:1
//! with mknod (allowed, as Docker allows) and cannot open it (EPERM from the filter).

use skerry_hil::{HilError, Report};

use crate::guest::CMD;
use crate::{outcome, Scenario};

const SLOW: std::time::Duration = std::time::Duration::from_secs(180);

/// The one-shot task: one listed device, one made inside.
const DEVICES_TASK: &str = r#"{
  "family": "devices",
  "requiresCompatibilities": ["EXTERNAL"],
  "networkMode": "host",
  "containerDefinitions": [{
    "name": "dev",
    "image": "busybox:latest",
    "essential": true,
    "memory": 16,
    "linuxParameters": {"devices": [{"hostPath": "/run/hil-dev-240-0", "containerPath": "/dev/listed"}]},
    "command": ["sh", "-c", "for f in /dev/listed /tmp/unlisted; do [ -e $f ] || mknod $f c 240 1; if (exec 3<$f) 2>/tmp/err; then echo \"OPEN $f ok\"; else echo \"OPEN $f $(cat /tmp/err)\"; fi; done"]
  }]
}"#;

/// (h) a listed device opens, an unlisted one made by mknod is denied, on cgroup v2.
pub fn step_h_devices(report: &mut Report, s: &mut Scenario) {
    report.step("h device rules on cgroup v2 (eBPF filter)", |_| {
        outcome((|| {
            let shell = &mut s.board()?.shell;
            let st = "--state-dir /run/skerry-devices";
            shell.ok("test -f /sys/fs/cgroup/cgroup.controllers", CMD)?;
            shell.ok(
                "rm -f /run/hil-dev-240-0 && mknod -m 666 /run/hil-dev-240-0 c 240 0",
                CMD,
            )?;
            shell.ok(
                &format!("skerry {st} image import /hil/images/busybox-arm64.tar --name busybox"),
                SLOW,
            )?;
            shell.write_file("/tmp/devices.json", DEVICES_TASK)?;
            let out = shell.run(&format!("skerry {st} run /tmp/devices.json 2>&1"), SLOW)?;
            println!("skerry run exited {}:\n{}", out.code, out.text.trim());
            let line = |path: &str| {
                out.text
                    .lines()
                    .find(|l| l.contains(&format!("OPEN {path} ")))
                    .unwrap_or("")
                    .to_string()
            };
            let (listed, unlisted) = (line("/dev/listed"), line("/tmp/unlisted"));
            if out.code != 0
                || !listed.ends_with("No such device or address")
                || !unlisted.ends_with("Operation not permitted")
            {
                return Err(HilError::Failed(format!(
                    "want the listed node to reach its (absent) driver and the unlisted one denied, got {listed:?} and {unlisted:?}"
                )));
            }
            Ok(())
        })())
    });
}
