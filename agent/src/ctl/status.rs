//! `ctl status`: the fleet (or one device) from the retained `reported` and `status`
//! messages. A device whose status is offline (its Last Will) or that never said it
//! is online is marked; its reported state is the last it sent.

use std::collections::BTreeMap;

use serde::Serialize;
use skerry_core::proto::reported::{ApplyState, ReportedState};
use skerry_core::proto::{Body, Envelope, Presence, Topics};

use super::client::Session;
use super::config::CtlConfig;
use super::publish::{client_id, QUIET};
use super::Output;

#[derive(Serialize)]
struct DeviceView {
    device: String,
    presence: &'static str,
    reported: Option<ReportedState>,
}

fn docs_text(r: &ReportedState) -> String {
    let parts: Vec<String> = r
        .documents
        .iter()
        .map(|d| {
            let st = match &d.state {
                ApplyState::Applying => "applying",
                ApplyState::Applied => "applied",
                ApplyState::Failed { .. } => "FAILED",
            };
            format!("{} v{} {st}", d.target, d.version)
        })
        .collect();
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join("; ")
    }
}

pub async fn status(cfg: &CtlConfig, device: Option<&str>, output: Output) -> anyhow::Result<i32> {
    let topics = Topics::new(cfg.fleet()?)?;
    let mut s = Session::connect(cfg, &client_id(cfg, "status"), false).await?;
    let subs = match device {
        Some(d) => vec![topics.reported(d), topics.status(d)],
        None => vec![topics.all_reported(), topics.all_status()],
    };
    let got = s.retained(&subs, QUIET).await?;
    s.close().await;
    let mut views: BTreeMap<String, DeviceView> = BTreeMap::new();
    for (topic, payload) in &got {
        let (dev, leaf) = match (
            topics.device_of(topic, "reported"),
            topics.device_of(topic, "status"),
        ) {
            (Some(d), _) => (d, "reported"),
            (_, Some(d)) => (d, "status"),
            _ => continue,
        };
        let v = views.entry(dev.to_string()).or_insert_with(|| DeviceView {
            device: dev.to_string(),
            presence: "unknown",
            reported: None,
        });
        match Envelope::decode(payload, cfg.max_payload()).map(|e| e.body) {
            Ok(Body::Reported(r)) if leaf == "reported" => v.reported = Some(r),
            Ok(Body::Status(Presence::Online { .. })) => v.presence = "online",
            Ok(Body::Status(Presence::Offline)) => v.presence = "OFFLINE",
            Ok(_) => {}
            Err(e) => eprintln!("skerry ctl: {topic}: {e}"),
        }
    }
    if output == Output::Json {
        let list: Vec<&DeviceView> = views.values().collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(0);
    }
    if let (Some(d), Some(v)) = (device, views.values().next()) {
        print_device(d, v);
        return Ok(0);
    }
    if device.is_some() {
        println!(
            "no reported state for that device on broker {}",
            s_broker(cfg)
        );
        return Ok(1);
    }
    println!(
        "{:<20} {:<8} {:>5} {:>7}  {:<36} LAST ERROR",
        "DEVICE", "PRESENCE", "TASKS", "RUNNING", "DOCUMENTS"
    );
    for v in views.values() {
        let (tasks, running, docs, err) = match &v.reported {
            Some(r) => (
                r.tasks.len(),
                r.tasks.iter().filter(|t| t.status == "RUNNING").count(),
                docs_text(r),
                r.last_error.clone().unwrap_or_else(|| "-".into()),
            ),
            None => (0, 0, "(no reported state)".into(), "-".into()),
        };
        println!(
            "{:<20} {:<8} {tasks:>5} {running:>7}  {docs:<36} {err}",
            v.device, v.presence
        );
    }
    Ok(0)
}

fn s_broker(cfg: &CtlConfig) -> String {
    cfg.values.broker.clone().unwrap_or_default()
}

fn print_device(d: &str, v: &DeviceView) {
    println!("device {d}: {}", v.presence);
    let Some(r) = &v.reported else {
        println!("  (no reported state)");
        return;
    };
    println!("  agent {}; documents: {}", r.agent_version, docs_text(r));
    if let Some(rej) = &r.last_rejection {
        println!(
            "  last rejection ({}): {} {}",
            rej.topic, rej.code, rej.reason
        );
    }
    if let Some(e) = &r.last_error {
        println!("  last error: {e}");
    }
    println!(
        "  {:<24} {:<9} {:<24} {:<12} CONTAINERS",
        "TASK", "STATUS", "SOURCE", "REVISION"
    );
    for t in &r.tasks {
        let cs: Vec<String> = t
            .containers
            .iter()
            .map(|c| {
                let mut s = format!("{}={}", c.name, c.status);
                if let Some(h) = &c.health {
                    s.push_str(&format!("/{h}"));
                }
                if let Some(code) = c.exit_code {
                    s.push_str(&format!("({code})"));
                }
                if c.restarts > 0 {
                    s.push_str(&format!(" restarts={}", c.restarts));
                }
                if let Some((bytes, total)) = c.pulling {
                    let pct = (bytes.min(total) * 100).checked_div(total).unwrap_or(100);
                    s.push_str(&format!(" pulling {pct}%"));
                }
                for (container_port, host_port, protocol) in &c.host_ports {
                    s.push_str(&format!(" {host_port}->{container_port}/{protocol}"));
                }
                s
            })
            .collect();
        println!(
            "  {:<24} {:<9} {:<24} {:<12} {}",
            t.id,
            t.status,
            t.source,
            t.revision,
            cs.join(", ")
        );
    }
}
