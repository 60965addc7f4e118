//! `ctl logs --device D TASK [CONTAINER] [-f] [--since T]`: a container's shipped
//! lines. Without `-f` it prints what the broker holds (each container's newest
//! batch, retained, and what its persistent session kept since the last run) and
//! exits; with `-f` it follows. Lines are numbered by the
//! device (per `epoch`): a repeated batch (a resend after a lost PUBACK) is dropped, a gap is said,
//! and lines the device's rate limit cut or its queue dropped are reported on stderr.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use skerry_core::proto::topics::check_name;
use skerry_core::proto::{Body, Envelope, Topics};
use skerry_core::telemetry::rate::parse_stamp_ms;

use super::client::Session;
use super::config::CtlConfig;
use super::Output;

#[derive(Serialize)]
struct LineView<'a> {
    container: &'a str,
    line: u64,
    time: &'a str,
    stream: &'a str,
    text: &'a str,
    /// The line continues the event of the line before it (awslogs' multiline
    /// grouping); left out when false.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    continues: bool,
}

#[derive(Default)]
struct Seen {
    epoch: u64,
    next: u64,
    cut: u64,
    lost: u64,
    lost_files: u64,
}

/// `--since`: an RFC 3339 time (`2026-12-02T01:00:00.000Z`) or an age (`90s`, `10m`, `2h`).
pub fn parse_since(s: &str, now_ms: u64) -> anyhow::Result<u64> {
    if let Some(t) = parse_stamp_ms(s) {
        return Ok(t);
    }
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num.parse().map_err(|_| {
        anyhow::anyhow!(
            "--since {s:?}: want an age like 90s, 10m, 2h or a time like 2026-12-02T01:00:00.000Z"
        )
    })?;
    let secs = match unit {
        "s" | "" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => anyhow::bail!("--since {s:?}: unit must be s, m, h or d"),
    };
    Ok(now_ms.saturating_sub(secs * 1000))
}

pub async fn logs(
    cfg: &CtlConfig,
    device: &str,
    task: &str,
    container: Option<&str>,
    follow: bool,
    since: Option<&str>,
    output: Output,
) -> anyhow::Result<i32> {
    check_name("device", device)?;
    check_name("task", task)?;
    if let Some(c) = container {
        check_name("container", c)?;
    }
    let since_ms = since
        .map(|s| parse_since(s, crate::runtime::record::now_ms()))
        .transpose()?;
    let topics = Topics::new(cfg.fleet()?)?;
    let topic = match container {
        Some(c) => topics.logs(device, task, c),
        None => topics.task_logs(device, task),
    };
    let id = format!(
        "skerry-ctl-{}-logs-{device}-{}",
        topics.fleet(),
        std::process::id()
    );
    let mut s = Session::connect(cfg, &id, false).await?;
    s.subscribe(std::slice::from_ref(&topic)).await?;
    let mut seen: BTreeMap<String, Seen> = BTreeMap::new();
    let quiet = Duration::from_millis(700);
    // Without -f, `--output json` prints one array (the listing convention of
    // cli::output); with -f, one object per line.
    let mut list = Vec::new();
    loop {
        let Some((_, payload)) = s
            .message(if follow {
                Duration::from_secs(3600)
            } else {
                quiet
            })
            .await?
        else {
            if follow {
                continue;
            }
            break;
        };
        let batch = match Envelope::decode(&payload, cfg.max_payload()) {
            Ok(Envelope {
                body: Body::Logs(b),
                ..
            }) => b,
            Ok(_) => continue,
            Err(e) => {
                eprintln!("skerry ctl: {topic}: {e}");
                continue;
            }
        };
        let lines = match batch.lines(4 * cfg.max_payload()) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("skerry ctl: {e}");
                continue;
            }
        };
        let st = seen.entry(batch.container.clone()).or_default();
        if st.epoch != batch.epoch {
            // A new numbering (the task id was used again): start over.
            *st = Seen {
                epoch: batch.epoch,
                ..Seen::default()
            };
        }
        if st.next > 0 && batch.first_line > st.next {
            eprintln!(
                "({}: lines {}..{} not received)",
                batch.container,
                st.next,
                batch.first_line - 1
            );
        }
        if batch.cut > st.cut {
            eprintln!(
                "({}: {} lines cut by the device's rate limit)",
                batch.container,
                batch.cut - st.cut
            );
            st.cut = batch.cut;
        }
        if batch.lost > st.lost {
            eprintln!(
                "({}: {} lines dropped by the device's telemetry queue bound)",
                batch.container,
                batch.lost - st.lost
            );
            st.lost = batch.lost;
        }
        if batch.lost_files > st.lost_files {
            eprintln!(
                "({}: {} log files rotated away on the device before they were shipped)",
                batch.container,
                batch.lost_files - st.lost_files
            );
            st.lost_files = batch.lost_files;
        }
        for (i, l) in lines.iter().enumerate() {
            let n = batch.first_line + i as u64;
            if n < st.next {
                continue;
            }
            st.next = n + 1;
            if since_ms.is_some_and(|t| parse_stamp_ms(&l.time).is_some_and(|at| at < t)) {
                continue;
            }
            let view = LineView {
                container: &batch.container,
                line: n,
                time: &l.time,
                stream: &l.stream,
                text: &l.text,
                continues: batch.continues(i),
            };
            match output {
                Output::Json if follow => println!("{}", serde_json::to_string(&view)?),
                Output::Json => list.push(serde_json::to_value(&view)?),
                // A line that continues an event is indented under its first line.
                Output::Table if view.continues => println!("    {}", l.text),
                Output::Table if container.is_none() => {
                    println!("{} {} {} {}", batch.container, l.time, l.stream, l.text)
                }
                Output::Table => println!("{} {} {}", l.time, l.stream, l.text),
            }
        }
    }
    if output == Output::Json && !follow {
        println!("{}", serde_json::to_string_pretty(&list)?);
    }
    s.close().await;
    Ok(0)
}
