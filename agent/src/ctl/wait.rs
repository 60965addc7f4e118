//! `--wait`: follow the retained reported states until the target reports the new
//! version applied, failed or refused. For a group, its members are the devices that
//! report holding any document of that group; at least one must report.

use std::collections::BTreeMap;
use std::time::Duration;

use skerry_core::proto::reported::{ApplyState, Rejection, ReportedState};
use skerry_core::proto::{Body, Envelope, Target, Topics};

use super::client::Session;

/// The reported states seen, by device.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    pub devices: BTreeMap<String, ReportedState>,
}

impl Seen {
    /// Takes a `…/reported` payload (undecodable ones are skipped).
    pub fn take(&mut self, device: &str, payload: &[u8], max: usize) {
        if let Ok(Envelope {
            body: Body::Reported(r),
            ..
        }) = Envelope::decode(payload, max)
        {
            self.devices.insert(device.to_string(), r);
        }
    }

    /// Highest version of `target` any device reports holding.
    pub fn max_version(&self, target: &Target) -> u64 {
        self.devices
            .values()
            .flat_map(|r| &r.documents)
            .filter(|d| d.target == *target)
            .map(|d| d.version)
            .max()
            .unwrap_or(0)
    }

    fn members(&self, target: &Target) -> Vec<&String> {
        self.devices
            .iter()
            .filter(|(dev, r)| match target {
                Target::Device(d) => *dev == d,
                Target::Group(_) => r.documents.iter().any(|d| d.target == *target),
            })
            .map(|(d, _)| d)
            .collect()
    }
}

enum Verdict {
    Done,
    Waiting(String),
    Failed(String),
}

fn verdict(seen: &Seen, before: &Seen, target: &Target, version: u64) -> Verdict {
    let scope = target.scope().to_string();
    let members = seen.members(target);
    if members.is_empty() {
        return Verdict::Waiting(format!(
            "no device has reported a document for {target} yet"
        ));
    }
    let mut waiting = Vec::new();
    for dev in members {
        let r = &seen.devices[dev];
        let old_rej: Option<&Rejection> = before
            .devices
            .get(dev)
            .and_then(|b| b.last_rejection.as_ref());
        if let Some(rej) = r
            .last_rejection
            .as_ref()
            .filter(|rej| Some(*rej) != old_rej && rej.topic == scope)
        {
            return Verdict::Failed(format!(
                "device {dev} rejected it ({}): {}",
                rej.code, rej.reason
            ));
        }
        match r.documents.iter().find(|d| d.target == *target) {
            Some(d) if d.version > version => {}
            Some(d) if d.version == version => match &d.state {
                ApplyState::Applied => {}
                ApplyState::Failed { reason } => {
                    return Verdict::Failed(format!(
                        "device {dev}: version {version} failed: {reason}"
                    ))
                }
                ApplyState::Applying => waiting.push(format!("{dev} applying")),
            },
            Some(d) => waiting.push(format!("{dev} at version {}", d.version)),
            None => waiting.push(format!("{dev} has no document")),
        }
    }
    if waiting.is_empty() {
        Verdict::Done
    } else {
        Verdict::Waiting(waiting.join(", "))
    }
}

/// Waits up to `limit` for `version` of `target` to be applied; exit code 0 or 1.
pub async fn applied(
    s: &mut Session,
    topics: &Topics,
    target: &Target,
    version: u64,
    limit: Duration,
    before: &Seen,
) -> anyhow::Result<i32> {
    let begun = tokio::time::Instant::now();
    let mut seen = before.clone();
    loop {
        let last = match verdict(&seen, before, target, version) {
            Verdict::Done => {
                println!(
                    "{target}: version {version} applied ({:.1} s)",
                    begun.elapsed().as_secs_f64()
                );
                return Ok(0);
            }
            Verdict::Failed(why) => {
                eprintln!("skerry ctl: {target}: version {version}: {why}");
                return Ok(1);
            }
            Verdict::Waiting(why) => why,
        };
        let left = limit.saturating_sub(begun.elapsed());
        if left.is_zero() {
            eprintln!(
                "skerry ctl: {target}: version {version} not reported applied within {} s ({last})",
                limit.as_secs()
            );
            return Ok(1);
        }
        if let Some((topic, payload)) = s.message(left).await? {
            if let Some(dev) = topics.device_of(&topic, "reported") {
                seen.take(dev, &payload, usize::MAX);
            }
        }
    }
}
