//! Envelopes as older agents wrote them, so a newer `ctl` still reads a fleet that is
//! upgraded device by device. postcard has no field names or lengths: a field
//! appended to a body shifts nothing before it but leaves an older sender's message
//! one field short, which the current types refuse. Each body that gained a field
//! keeps its previous shape here, and [`decode`] converts it, with the new field at
//! its default. Appended so far (wire schema 1):
//! - `ReportedState::sealing_key` (session 5, sealed secrets);
//! - `LogBatch::lost_files` (session 5, rotated-away log files).
//!
//! A body that changes again gets another shape here; a change that cannot be read
//! this way (a field in the middle, a changed type) bumps [`super::envelope::SCHEMA`].

use serde::Deserialize;

use super::document::SignedDocument;
use super::envelope::{Body, Envelope, Presence, ReportBatch};
use super::reported::{DocumentState, Rejection, ReportedState, TaskReport};
use super::sealed::SignedSecret;
use crate::telemetry::{LogBatch, LogLines, MetricsReport};

#[derive(Deserialize)]
struct OldEnvelope {
    schema: u16,
    device: String,
    seq: u64,
    body: OldBody,
}

/// [`Body`]'s variants in its order (postcard names a variant by its index).
#[derive(Deserialize)]
enum OldBody {
    Deployment(SignedDocument),
    Reports(ReportBatch),
    Reported(ReportedStateWithoutSealingKey),
    Status(Presence),
    Metrics(MetricsReport),
    Logs(LogBatchWithoutLostFiles),
    Secret(SignedSecret),
}

#[derive(Deserialize)]
struct ReportedStateWithoutSealingKey {
    agent_version: String,
    documents: Vec<DocumentState>,
    tasks: Vec<TaskReport>,
    reports_dropped: u64,
    last_error: Option<String>,
    last_rejection: Option<Rejection>,
}

#[derive(Deserialize)]
struct LogBatchWithoutLostFiles {
    task: String,
    container: String,
    stream: String,
    group: String,
    epoch: u64,
    first_line: u64,
    cut: u64,
    lost: u64,
    lines: LogLines,
}

/// An older sender's envelope, as the current types, if `bytes` is one.
pub fn decode(bytes: &[u8]) -> Option<Envelope> {
    let (old, rest) = postcard::take_from_bytes::<OldEnvelope>(bytes).ok()?;
    if !rest.is_empty() {
        return None;
    }
    let body = match old.body {
        OldBody::Deployment(d) => Body::Deployment(d),
        OldBody::Reports(r) => Body::Reports(r),
        OldBody::Reported(r) => Body::Reported(ReportedState {
            agent_version: r.agent_version,
            documents: r.documents,
            tasks: r.tasks,
            reports_dropped: r.reports_dropped,
            last_error: r.last_error,
            last_rejection: r.last_rejection,
            sealing_key: None,
        }),
        OldBody::Status(s) => Body::Status(s),
        OldBody::Metrics(m) => Body::Metrics(m),
        OldBody::Logs(b) => Body::Logs(LogBatch {
            task: b.task,
            container: b.container,
            stream: b.stream,
            group: b.group,
            epoch: b.epoch,
            first_line: b.first_line,
            cut: b.cut,
            lost: b.lost,
            lines: b.lines,
            lost_files: 0,
        }),
        OldBody::Secret(s) => Body::Secret(s),
    };
    Some(Envelope {
        schema: old.schema,
        device: old.device,
        seq: old.seq,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An envelope whose body's last field (one byte: `None`, or varint 0) is cut
    /// off, as an agent from before that field wrote it.
    fn without_last_byte(e: &Envelope) -> Vec<u8> {
        let mut bytes = e.encode();
        assert_eq!(bytes.pop(), Some(0));
        bytes
    }

    #[test]
    fn legacy_reported_state_of_an_agent_before_sealing_keys_is_read() {
        let state = ReportedState {
            agent_version: "0.1.0".into(),
            reports_dropped: 3,
            last_error: Some("disk full".into()),
            ..ReportedState::default()
        };
        let e = Envelope::new("gw1", 9, Body::Reported(state));
        let old = without_last_byte(&e);
        assert_eq!(Envelope::decode(&old, 1 << 16), Ok(e));
    }

    #[test]
    fn legacy_log_batch_of_an_agent_before_lost_files_is_read() {
        let b = LogBatch {
            task: "t".into(),
            container: "c".into(),
            stream: "ecs/c/t".into(),
            group: "/ecs/x".into(),
            epoch: 5,
            first_line: 1,
            cut: 0,
            lost: 0,
            lines: LogLines::Plain(Vec::new()),
            lost_files: 0,
        };
        let e = Envelope::new("gw1", 1, Body::Logs(b));
        let old = without_last_byte(&e);
        assert_eq!(Envelope::decode(&old, 1 << 16), Ok(e));
    }

    #[test]
    fn legacy_shapes_do_not_hide_a_damaged_envelope() {
        let e = Envelope::new(
            "gw1",
            9,
            Body::Reported(ReportedState {
                agent_version: "0.1.0".into(),
                ..ReportedState::default()
            }),
        );
        let mut bytes = e.encode();
        bytes.truncate(bytes.len() - 3);
        assert!(matches!(
            Envelope::decode(&bytes, 1 << 16),
            Err(super::super::envelope::WireError::Malformed(_))
        ));
    }
}
