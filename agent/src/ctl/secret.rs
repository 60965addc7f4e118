//! `skerry ctl secret put --device D NAME`: reads the value from stdin, seals it to
//! the device's public sealing key (from its retained reported state), signs it
//! with the operator's key and publishes it on the device's `…/secrets` topic
//! (QoS 1, not retained: the device's persistent session queues it while offline).
//!
//! The version is the operator's wall clock in milliseconds (or `--version`): the
//! device refuses a version not newer than the one it stored for that name, so a
//! captured message cannot be replayed to roll a secret back.

use std::io::Read as _;

use anyhow::Context as _;
use ring::rand::{SecureRandom as _, SystemRandom};
use skerry_core::proto::sealed::{seal_secret, SealInput};
use skerry_core::proto::topics::check_name;
use skerry_core::proto::Topics;

use super::client::Session;
use super::config::CtlConfig;
use super::publish::{client_id, QUIET};
use super::{keys, wait};
use crate::secrets::MAX_SECRET_BYTES;

/// `ctl secret put`.
pub async fn put(
    cfg: &CtlConfig,
    device: &str,
    name: &str,
    version: Option<u64>,
) -> anyhow::Result<i32> {
    check_name("device", device)?;
    let topics = Topics::new(cfg.fleet()?)?;
    let signer = keys::load(cfg.signing_key()?)?;
    let mut value = Vec::new();
    std::io::stdin()
        .take(MAX_SECRET_BYTES as u64 + 2)
        .read_to_end(&mut value)
        .context("reading the secret's value from stdin")?;
    if value.ends_with(b"\n") {
        value.pop();
    }
    if value.is_empty() || value.len() > MAX_SECRET_BYTES {
        anyhow::bail!(
            "secret {name:?}: the value must be 1 to {MAX_SECRET_BYTES} bytes, got {}",
            value.len()
        );
    }
    let mut s = Session::connect(cfg, &client_id(cfg, "secret"), false).await?;
    let got = s.retained(&[topics.reported(device)], QUIET).await?;
    let mut seen = wait::Seen::default();
    if let Some(p) = got.get(&topics.reported(device)) {
        seen.take(device, p, cfg.max_payload());
    }
    let Some(device_key) = seen.devices.get(device).and_then(|r| r.sealing_key) else {
        anyhow::bail!(
            "device {device} has reported no sealing key yet (it publishes one once its agent, of this version or newer, has connected)"
        );
    };
    let mut seed = [0u8; 32];
    SystemRandom::new()
        .fill(&mut seed)
        .map_err(|_| anyhow::anyhow!("no system randomness"))?;
    let now = crate::runtime::record::now_ms();
    let version = version.unwrap_or(now);
    let payload = seal_secret(
        &SealInput {
            fleet: topics.fleet(),
            device,
            name,
            version,
            issued_at_ms: now,
            device_key,
            value: &value,
        },
        seed,
        &signer,
    )?;
    s.publish(&topics.secrets(device), payload, false).await?;
    s.close().await;
    println!("sealed secret {name:?} version {version} published for device {device}");
    Ok(0)
}
