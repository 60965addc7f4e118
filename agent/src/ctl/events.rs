//! `ctl events --device D [-f]`: the device's reports, in order. The session is
//! persistent under a client id of this fleet and device, so the broker keeps what
//! arrives between two runs; duplicates (a device re-publishing after a lost session)
//! are dropped by seq.

use std::time::Duration;

use serde::Serialize;
use skerry_core::proto::delivery::Dedup;
use skerry_core::proto::topics::check_name;
use skerry_core::proto::{Body, Envelope, Topics};

use super::client::Session;
use super::config::CtlConfig;
use super::Output;
use crate::report::Report;
use crate::runtime::logfile::format_rfc3339_ms;

#[derive(Serialize)]
struct EventView {
    seq: u64,
    time: String,
    text: String,
    task: Option<String>,
    service: Option<String>,
}

pub async fn events(
    cfg: &CtlConfig,
    device: &str,
    follow: bool,
    output: Output,
) -> anyhow::Result<i32> {
    check_name("device", device)?;
    let topics = Topics::new(cfg.fleet()?)?;
    let id = format!("skerry-ctl-{}-events-{device}", topics.fleet());
    let mut s = Session::connect(cfg, &id, true).await?;
    s.subscribe(&[topics.events(device)]).await?;
    let mut dedup = Dedup::default();
    let mut list = Vec::new();
    let quiet = Duration::from_millis(700);
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
        let env = match Envelope::decode(&payload, cfg.max_payload()) {
            Ok(e) => e,
            Err(e) => {
                eprintln!("skerry ctl: {}: {e}", topics.events(device));
                continue;
            }
        };
        let Body::Reports(batch) = env.body else {
            continue;
        };
        for (seq, bytes) in batch.reports {
            if !dedup.fresh(seq) {
                continue;
            }
            let view = match Report::decode(&bytes) {
                Ok(r) => EventView {
                    seq,
                    time: format_rfc3339_ms(r.wall_ms),
                    text: r
                        .line()
                        .split_once(' ')
                        .map(|x| x.1.to_string())
                        .unwrap_or_default(),
                    task: r.task().map(|t| t.0.clone()),
                    service: r.service().map(str::to_owned),
                },
                Err(e) => EventView {
                    seq,
                    time: String::new(),
                    text: format!("(unreadable report: {e})"),
                    task: None,
                    service: None,
                },
            };
            match (output, follow) {
                (Output::Json, true) => println!("{}", serde_json::to_string(&view)?),
                (Output::Json, false) => list.push(view),
                (Output::Table, _) => println!("{:>8} {} {}", view.seq, view.time, view.text),
            }
        }
        if batch.dropped > 0 && output == Output::Table {
            eprintln!(
                "({} reports were dropped by the device's outbox bound)",
                batch.dropped
            );
        }
    }
    if output == Output::Json {
        println!("{}", serde_json::to_string_pretty(&list)?);
    }
    s.close().await;
    Ok(0)
}
