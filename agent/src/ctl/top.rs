//! `ctl top --device D`: the device's metrics reports as they arrive (the newest is
//! retained, so the first screen comes at once), redrawn in place on a terminal;
//! `--output json` prints one report and exits.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use skerry_core::proto::topics::check_name;
use skerry_core::proto::{Body, Envelope, Topics};

use super::client::Session;
use super::config::CtlConfig;
use super::Output;
use crate::telemetry::view;

pub async fn top(cfg: &CtlConfig, device: &str, once: bool, output: Output) -> anyhow::Result<i32> {
    check_name("device", device)?;
    let topics = Topics::new(cfg.fleet()?)?;
    let id = format!(
        "skerry-ctl-{}-top-{device}-{}",
        topics.fleet(),
        std::process::id()
    );
    let mut s = Session::connect(cfg, &id, false).await?;
    let topic = topics.metrics(device);
    s.subscribe(std::slice::from_ref(&topic)).await?;
    let live = output == Output::Table && !once && std::io::stdout().is_terminal();
    loop {
        let wait = if live { 3600 } else { 15 };
        let Some((_, payload)) = s.message(Duration::from_secs(wait)).await? else {
            if live {
                continue;
            }
            anyhow::bail!(
                "{topic}: no metrics report within {wait} s (is the device's telemetry on?)"
            );
        };
        let report = match Envelope::decode(&payload, cfg.max_payload()) {
            Ok(Envelope {
                body: Body::Metrics(r),
                ..
            }) => r,
            Ok(_) => continue,
            Err(e) => {
                eprintln!("skerry ctl: {topic}: {e}");
                continue;
            }
        };
        let mut out = std::io::stdout().lock();
        match output {
            Output::Json => {
                serde_json::to_writer_pretty(&mut out, &report)?;
                writeln!(out)?;
                break;
            }
            Output::Table => {
                if live {
                    out.write_all(view::CLEAR.as_bytes())?;
                }
                out.write_all(view::screen(device, &report).as_bytes())?;
                out.flush()?;
                if !live {
                    break;
                }
            }
        }
    }
    s.close().await;
    Ok(0)
}
