//! Step i: bridge networking on the board, and its refusal when the kernel lacks a
//! piece of it (issue 11). Bridge, veth and nf_tables are modules on the board's
//! kernel, so the step takes each away for real: module autoloading off
//! (`/proc/sys/kernel/modprobe` pointed at nothing) and the module unloaded. A bridged
//! task with a published port is then refused, its stop reason in the events naming
//! the missing feature (bridge, veth, nf_tables), and nothing of its network is left;
//! meanwhile the host-mode beat keeps its container (same pid) and a `none` task runs.
//! With autoloading back the bridged task runs: its port answers on the board's
//! 127.0.0.1 and eth0 address (busybox nc), `skerry ps` shows the binding; once it is
//! stopped no veth, namespace file or nat chain (nft_chain_nat's use count 0) is left.

use std::time::{Duration, Instant};

use skerry_hil::{HilError, Report, Result, Shell};

use crate::guest::{running, wait_until, CMD};
use crate::{outcome, Scenario};

const DESIRED: &str = "/var/lib/skerry/desired";
const POLL: Duration = Duration::from_millis(500);
const SLOW: Duration = Duration::from_secs(120);
/// The published host port (fixed, so the refusal cannot be a port clash).
const HOST_PORT: u16 = 18080;
/// The agent's namespace files (default state directory).
const NETNS_DIR: &str = "/run/skerry/netns";

/// A one-shot bridged task (file `<name>.json`, container `name`): busybox httpd on
/// port 80, published on HOST_PORT.
fn web_task(name: &str) -> String {
    format!(
        r#"{{
  "family": "{name}",
  "requiresCompatibilities": ["EXTERNAL"],
  "networkMode": "bridge",
  "containerDefinitions": [{{
    "name": "{name}",
    "image": "busybox:latest",
    "essential": true,
    "memory": 16,
    "stopTimeout": 1,
    "portMappings": [{{"containerPort": 80, "hostPort": {HOST_PORT}, "protocol": "tcp"}}],
    "command": ["sh", "-c", "mkdir -p /www && echo bridged-{name}-ok >/www/index.html && exec httpd -f -p 80 -h /www"]
  }}]
}}"#
    )
}

/// A `none` task: only `lo` in its namespace; exits 3 so its exit event is its own.
const NONE_TASK: &str = r#"{
  "family": "isolated",
  "requiresCompatibilities": ["EXTERNAL"],
  "networkMode": "none",
  "containerDefinitions": [{
    "name": "isolated",
    "image": "busybox:latest",
    "essential": true,
    "memory": 16,
    "command": ["sh", "-c", "echo links: $(ls /sys/class/net); exit 3"]
  }]
}"#;

/// Unloads the loaded ones of `modules` (in that order) and checks the last is gone.
fn unload(shell: &mut Shell, modules: &[&str]) -> Result<()> {
    let list = modules.join(" ");
    let last = modules.last().copied().unwrap_or_default();
    let out = shell.run(
        &format!(
            "for m in {list}; do if grep -q \"^$m \" /proc/modules; then rmmod $m; fi; done; \
             if grep -q '^{last} ' /proc/modules; then echo STILL; grep -E '^({})' /proc/modules; fi",
            modules.join("|")
        ),
        CMD,
    )?;
    if out.text.contains("STILL") {
        return Err(HilError::Failed(format!(
            "could not unload {last}: {}",
            out.text.trim()
        )));
    }
    println!("unloaded {list}: {}", out.text.trim());
    Ok(())
}

/// A container's row of `skerry ps --output json`, as JSON.
fn ps_row(shell: &mut Shell, container: &str) -> Result<Option<serde_json::Value>> {
    let text = shell.ok("skerry ps --output json", CMD)?;
    let (Some(start), Some(end)) = (text.find('['), text.rfind(']')) else {
        return Err(HilError::Failed(format!(
            "skerry ps: no JSON array in {text:?}"
        )));
    };
    let v: serde_json::Value = serde_json::from_str(&text[start..=end])
        .map_err(|e| HilError::Failed(format!("skerry ps --output json: {e}: {text:?}")))?;
    Ok(v.as_array()
        .into_iter()
        .flatten()
        .find(|r| r["container"] == container)
        .cloned())
}

/// Waits for `container`'s task to be gone from `skerry ps` (its file removed), then
/// requires that no veth, namespace file or (with `nat_chains`) nat chain is left.
fn gone_and_clean(shell: &mut Shell, container: &str, nat_chains: bool) -> Result<()> {
    wait_until(&format!("task {container} removed"), SLOW, POLL, || {
        Ok(ps_row(shell, container)?.is_none().then_some(()))
    })?;
    let veths = shell.ok("ls /sys/class/net | grep '^vsk' || true", CMD)?;
    let netns = shell.ok(&format!("ls {NETNS_DIR} 2>/dev/null || true"), CMD)?;
    if !veths.is_empty() || !netns.is_empty() {
        return Err(HilError::Failed(format!(
            "task {container} left veths {veths:?} and namespace files {netns:?}"
        )));
    }
    if nat_chains {
        // Base chains of type nat hold a reference on nft_chain_nat, rules one on
        // nft_nat/nft_masq/nft_fib_ipv4: skerry's table is the board's only one, so
        // use counts of 0 say it is gone (released after the transaction: polled).
        let (counts, _) = wait_until("skerry's nat table released", SLOW, POLL, || {
            let out = shell.ok(
                "awk '$1 ~ /^(nft_chain_nat|nft_nat|nft_masq|nft_fib_ipv4)$/ { print $1, $3 }' /proc/modules",
                CMD,
            )?;
            let zero = out.lines().all(|l| l.ends_with(" 0"));
            Ok(zero.then_some(out))
        })?;
        println!("after {container}: no veth, no namespace file; use counts {counts:?}");
    }
    Ok(())
}

/// Places a bridged task while a feature is missing: it must stop with a reason naming
/// `feature`, and leave nothing behind. Returns the event line.
fn refused(shell: &mut Shell, name: &str, feature: &str) -> Result<String> {
    let start = Instant::now();
    shell.write_file(&format!("{DESIRED}/{name}.json"), &web_task(name))?;
    let needle = format!("stopped: CannotCreateContainerError: {name}:");
    let (line, _) = wait_until(&format!("task {name} refused"), SLOW, POLL, || {
        let ev = shell.ok(&format!("skerry events | grep '{needle}' || true"), CMD)?;
        Ok((!ev.is_empty()).then_some(ev))
    })?;
    let took = start.elapsed();
    println!("{name}: refused after {:.2} s: {line}", took.as_secs_f64());
    let want = format!("the kernel has no {feature} support");
    if !line.contains(&want) {
        return Err(HilError::Failed(format!(
            "want the refusal of {name} to say {want:?}, got: {line}"
        )));
    }
    shell.ok(&format!("rm -f {DESIRED}/{name}.json"), CMD)?;
    gone_and_clean(shell, name, false)?;
    // Its release must not have failed on the missing feature either.
    let failed = shell.ok(
        &format!("skerry events | grep -E 'Delete of (task )?[^ ]*{name}' || true"),
        CMD,
    )?;
    if !failed.is_empty() {
        return Err(HilError::Failed(format!(
            "releasing the refused {name} failed: {failed}"
        )));
    }
    Ok(line)
}

/// Requires beat's container to be the one it was (same pid).
fn beat_same(shell: &mut Shell, pid: &str, when: &str) -> Result<()> {
    match running(shell, "beat")? {
        Some((_, p)) if p == pid => Ok(()),
        other => Err(HilError::Failed(format!(
            "{when}: the host-mode beat should still run as pid {pid}, got {other:?}"
        ))),
    }
}

fn refusals(shell: &mut Shell, beat: &str) -> Result<()> {
    shell.ok("ip link del skerry0 2>/dev/null; true", CMD)?;
    unload(shell, &["bridge"])?;
    refused(shell, "nobridge", "bridge")?;
    beat_same(shell, beat, "bridge missing")?;

    shell.ok("modprobe bridge", CMD)?;
    unload(shell, &["veth"])?;
    refused(shell, "noveth", "veth")?;
    beat_same(shell, beat, "veth missing")?;

    shell.ok("modprobe veth", CMD)?;
    // nfnetlink stays: the kernel then refuses the nf_tables batch itself.
    unload(
        shell,
        &[
            "nft_masq",
            "nft_nat",
            "nft_chain_nat",
            "nft_fib_ipv4",
            "nft_fib",
            "nf_tables",
        ],
    )?;
    refused(shell, "nonft", "nf_tables")?;
    shell.write_file(&format!("{DESIRED}/isolated.json"), NONE_TASK)?;
    let (line, _) = wait_until("the none task's exit", SLOW, POLL, || {
        let ev = shell.ok("skerry events | grep '/isolated exited' || true", CMD)?;
        Ok((!ev.is_empty()).then_some(ev))
    })?;
    println!("none task with nf_tables missing: {line}");
    shell.ok(&format!("rm -f {DESIRED}/isolated.json"), CMD)?;
    if !line.contains("exited with code 3") {
        return Err(HilError::Failed(format!(
            "want the none task to run (exit 3) without nf_tables, got: {line}"
        )));
    }
    beat_same(shell, beat, "nf_tables missing")
}

/// The body of `GET /` from `addr:port`, `None` when nothing answered with 200. With
/// busybox nc: the board's busybox wget (Debian's busybox-static) segfaults there.
fn http_get(shell: &mut Shell, addr: &str, port: u16) -> Result<Option<String>> {
    let out = shell.run(
        &format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 {addr} {port}"),
        CMD,
    )?;
    let text = out.text.trim_start();
    if !text.starts_with("HTTP/1.0 200") && !text.starts_with("HTTP/1.1 200") {
        return Ok(None);
    }
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
    Ok(Some(body.trim().to_owned()))
}

/// What the board shows when the published port does not answer.
const DIAGNOSE: &str = r#"set -x; cat /var/lib/skerry/tasks/web/network.json; ip addr; ip route
cat /proc/sys/net/ipv4/ip_forward /proc/sys/net/ipv4/conf/skerry0/route_localnet
a=$(sed -n 's/.*"address": *"\([0-9.]*\)".*/\1/p' /var/lib/skerry/tasks/web/network.json)
printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 5 $a 80; cut -d' ' -f1,3,4 /proc/modules
skerry logs web 2>&1 | tail -n 20; ping -c1 -W2 $a; set +x"#;

/// The bridged task with every feature back: the published port answers, ps shows it.
fn bridged_runs(shell: &mut Shell, r: &mut Report) -> Result<()> {
    let start = Instant::now();
    shell.write_file(&format!("{DESIRED}/web.json"), &web_task("web"))?;
    let (row, _) = wait_until("web running", SLOW, POLL, || {
        if let Some(ev) = shell
            .ok(
                "skerry events | grep 'stopped: CannotCreateContainerError: web:' || true",
                CMD,
            )
            .ok()
            .filter(|e| !e.is_empty())
        {
            return Err(HilError::Failed(format!("web was refused: {ev}")));
        }
        Ok(ps_row(shell, "web")?.filter(|r| r["state"] == "running"))
    })?;
    let url = format!("127.0.0.1:{HOST_PORT}");
    let answered = wait_until("web's published port answering", SLOW, POLL, || {
        Ok(http_get(shell, "127.0.0.1", HOST_PORT)?.filter(|b| !b.is_empty()))
    });
    let (body, _) = match answered {
        Ok(v) => v,
        Err(e) => {
            let diag = shell.run(DIAGNOSE, CMD)?;
            println!(
                "web's port did not answer; the board's network:\n{}",
                diag.text
            );
            return Err(e);
        }
    };
    r.figure(
        "bridged task placed -> published port answers (board)",
        format!("{:.2} s", start.elapsed().as_secs_f64()),
    );
    let via_eth0 = http_get(shell, "10.0.2.15", HOST_PORT)?.unwrap_or_default();
    let bindings = &row["network_bindings"];
    println!("web: {url} -> {body:?}, via eth0 {via_eth0:?}, ps bindings {bindings}");
    let published = bindings.as_array().into_iter().flatten().any(|b| {
        b["host_port"] == HOST_PORT && b["container_port"] == 80 && b["protocol"] == "tcp"
    });
    if body != "bridged-web-ok" || via_eth0 != "bridged-web-ok" || !published {
        return Err(HilError::Failed(format!(
            "want web's page on 127.0.0.1 and 10.0.2.15 port {HOST_PORT} and ps showing the binding, got {body:?}, {via_eth0:?}, {bindings}"
        )));
    }
    let veth = shell.ok("ls /sys/class/net | grep '^vsk' || true", CMD)?;
    let netns = shell.ok(&format!("ls {NETNS_DIR}"), CMD)?;
    let chain_nat = shell.ok(
        "awk '$1 == \"nft_chain_nat\" { print $3 }' /proc/modules",
        CMD,
    )?;
    println!("while web runs: veth {veth:?}, namespace files {netns:?}, nft_chain_nat use count {chain_nat:?}");
    if veth.is_empty() || netns.is_empty() || chain_nat.is_empty() || chain_nat == "0" {
        return Err(HilError::Failed(format!(
            "want a veth, a namespace file and nat chains while web runs, got {veth:?}, {netns:?}, use count {chain_nat:?}"
        )));
    }
    shell.ok(&format!("rm -f {DESIRED}/web.json"), CMD)?;
    gone_and_clean(shell, "web", true)
}

/// (i) bridge networking; refused naming a missing kernel feature (issue 11).
pub fn step_i_bridge(report: &mut Report, s: &mut Scenario) {
    report.step("i bridge networking, missing feature named", |r| {
        outcome((|| {
            let shell = &mut s.board()?.shell;
            let (_, beat) = running(shell, "beat")?
                .ok_or_else(|| HilError::Failed("beat is not running".into()))?;
            let modprobe = shell.ok("cat /proc/sys/kernel/modprobe", CMD)?;
            let mods = shell.ok(
                "awk '$1 ~ /^(bridge|veth|nfnetlink|nf_tables|nft_.*|nf_nat)$/ { print $1 }' /proc/modules | sort | tr '\\n' ' '",
                CMD,
            )?;
            println!("beat pid {beat}; kernel.modprobe {modprobe}; loaded: {mods}");
            shell.ok("echo /nonexistent/modprobe >/proc/sys/kernel/modprobe", CMD)?;
            let res = refusals(shell, &beat);
            // Back as booted whatever happened: autoloading on, bridge and veth loaded.
            shell.ok(
                &format!("echo {modprobe} >/proc/sys/kernel/modprobe && modprobe bridge && modprobe veth"),
                CMD,
            )?;
            res?;
            bridged_runs(shell, r)?;
            beat_same(shell, &beat, "after the bridged task")
        })())
    });
}
