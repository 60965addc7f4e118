//! Publishing a target's document: read the retained one, change it, sign the next
//! version, publish the old one to `desired/previous` and the new one to `desired`
//! (both retained, QoS 1), then optionally wait for the target to report it applied.
//!
//! The next version is one more than the highest of the retained document's and of
//! every version the target's devices report, so a broker that lost its retained
//! messages cannot make ctl publish a version the devices would refuse as old.
//! MQTT has no compare-and-set: a document that changes between ctl's read and its
//! publish (seen as a new message on the subscribed topic) is refused.

use std::time::Duration;

use skerry_core::proto::document::DOC_SCHEMA;
use skerry_core::proto::topics::check_name;
use skerry_core::proto::{sign_document, Body, DeploymentDoc, Envelope, Target, Topics};

use super::client::Session;
use super::config::CtlConfig;
use super::documents::Entries;
use super::{keys, wait, TargetArgs};

/// How long to wait for retained messages after a SUBACK.
pub const QUIET: Duration = Duration::from_millis(400);

pub fn target_of(t: &TargetArgs) -> anyhow::Result<Target> {
    match (&t.device, &t.group) {
        (Some(d), None) => {
            check_name("device", d)?;
            Ok(Target::Device(d.clone()))
        }
        (None, Some(g)) => {
            check_name("group", g)?;
            Ok(Target::Group(g.clone()))
        }
        _ => anyhow::bail!("give exactly one of --device or --group"),
    }
}

pub fn client_id(cfg: &CtlConfig, what: &str) -> String {
    format!(
        "skerry-ctl-{}-{what}-{}",
        cfg.values.fleet.as_deref().unwrap_or("_"),
        std::process::id()
    )
}

/// Decodes a retained document payload (the operator's own: its signature is not
/// what makes it trusted here; the devices check that).
fn decode(payload: &[u8], max: usize) -> anyhow::Result<DeploymentDoc> {
    let env = Envelope::decode(payload, max)?;
    let Body::Deployment(s) = env.body else {
        anyhow::bail!("not a deployment document");
    };
    Ok(DeploymentDoc::unpack(&s.doc)?)
}

/// What the broker holds for a target.
pub struct Current {
    pub doc: Option<DeploymentDoc>,
    pub previous: Option<DeploymentDoc>,
    pub payload: Option<Vec<u8>>,
    pub reported: wait::Seen,
}

pub async fn read_current(
    s: &mut Session,
    topics: &Topics,
    target: &Target,
    max: usize,
) -> anyhow::Result<Current> {
    let scope = target.scope();
    let reported_topic = match target {
        Target::Device(d) => topics.reported(d),
        Target::Group(_) => topics.all_reported(),
    };
    let got = s
        .retained(
            &[
                topics.desired(&scope),
                topics.previous(&scope),
                reported_topic,
            ],
            QUIET,
        )
        .await?;
    let doc_of = |t: &str| -> anyhow::Result<Option<DeploymentDoc>> {
        got.get(t)
            .map(|p| {
                decode(p, max)
                    .map_err(|e| anyhow::anyhow!("broker {}: retained {t}: {e}", s.broker))
            })
            .transpose()
    };
    let doc = doc_of(&topics.desired(&scope))?;
    let previous = doc_of(&topics.previous(&scope))?;
    let mut reported = wait::Seen::default();
    for (topic, payload) in &got {
        if let Some(dev) = topics.device_of(topic, "reported") {
            reported.take(dev, payload, max);
        }
    }
    Ok(Current {
        doc,
        previous,
        payload: got.get(&topics.desired(&scope)).cloned(),
        reported,
    })
}

async fn publish_doc(
    cfg: &CtlConfig,
    s: &mut Session,
    topics: &Topics,
    target: &Target,
    cur: &Current,
    entries: Entries,
    wait_secs: Option<u64>,
) -> anyhow::Result<i32> {
    let key = keys::load(cfg.signing_key()?)?;
    let scope = target.scope();
    let have = cur.doc.as_ref().map_or(0, |d| d.version);
    let version = have.max(cur.reported.max_version(target)) + 1;
    let doc = DeploymentDoc {
        schema: DOC_SCHEMA,
        fleet: topics.fleet().to_string(),
        target: target.clone(),
        version,
        issued_at_ms: crate::runtime::record::now_ms(),
        tasks: entries.tasks,
        services: entries.services,
    };
    let device = match target {
        Target::Device(d) => d.clone(),
        Target::Group(_) => String::new(),
    };
    let payload = Envelope::new(
        &device,
        version,
        Body::Deployment(sign_document(&doc, &key)),
    )
    .encode();
    if payload.len() > cfg.max_payload() {
        anyhow::bail!(
            "the document for {target} is {} bytes, over the {}-byte cap; split it across groups or shrink the definitions",
            payload.len(),
            cfg.max_payload()
        );
    }
    let desired_topic = topics.desired(&scope);
    if s.inbox.iter().any(|(t, _)| *t == desired_topic) {
        anyhow::bail!("the document for {target} changed while ctl was preparing this one; run the command again");
    }
    if let Some(old) = &cur.payload {
        s.publish(&topics.previous(&scope), old.clone(), true)
            .await?;
    }
    s.publish(&desired_topic, payload.clone(), true).await?;
    println!(
        "published version {version} for {target}: {} task(s), {} service(s), {} bytes",
        doc.tasks.len(),
        doc.services.len(),
        payload.len()
    );
    match wait_secs {
        Some(secs) => {
            wait::applied(
                s,
                topics,
                target,
                version,
                Duration::from_secs(secs),
                &cur.reported,
            )
            .await
        }
        None => Ok(0),
    }
}

/// Replaces the target's document with what `change` makes of the current one.
pub async fn replace<F>(
    cfg: &CtlConfig,
    target: &TargetArgs,
    change: F,
    wait_secs: Option<u64>,
) -> anyhow::Result<i32>
where
    F: FnOnce(Option<&DeploymentDoc>) -> anyhow::Result<Entries>,
{
    let topics = Topics::new(cfg.fleet()?)?;
    let target = target_of(target)?;
    let mut s = Session::connect(cfg, &client_id(cfg, "pub"), false).await?;
    let cur = read_current(&mut s, &topics, &target, cfg.max_payload()).await?;
    let entries = change(cur.doc.as_ref())?;
    let code = publish_doc(cfg, &mut s, &topics, &target, &cur, entries, wait_secs).await?;
    s.close().await;
    Ok(code)
}

/// Publishes the previous document's entries again, under a new version.
pub async fn rollback(
    cfg: &CtlConfig,
    target: &TargetArgs,
    wait_secs: Option<u64>,
) -> anyhow::Result<i32> {
    let topics = Topics::new(cfg.fleet()?)?;
    let target = target_of(target)?;
    let mut s = Session::connect(cfg, &client_id(cfg, "pub"), false).await?;
    let cur = read_current(&mut s, &topics, &target, cfg.max_payload()).await?;
    let Some(prev) = &cur.previous else {
        anyhow::bail!(
            "broker {}: no previous document for {target} on {}",
            s.broker,
            topics.previous(&target.scope())
        );
    };
    let entries = Entries {
        tasks: prev.tasks.clone(),
        services: prev.services.clone(),
    };
    println!(
        "rolling {target} back to the entries of version {}",
        prev.version
    );
    let code = publish_doc(cfg, &mut s, &topics, &target, &cur, entries, wait_secs).await?;
    s.close().await;
    Ok(code)
}
