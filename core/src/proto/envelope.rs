//! The envelope every payload travels in: `schema | device | seq | body`, postcard.
//! The size cap is checked before a byte is decoded, and the schema version is read
//! first, so a newer sender's message is refused by name instead of misread; an older
//! agent's bodies, from before a field was appended, are read by [`super::legacy`].

use serde::{Deserialize, Serialize};

use super::document::SignedDocument;
use super::reported::ReportedState;

/// The wire schema this build writes and reads.
pub const SCHEMA: u16 = 1;

/// One message on any skerry topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// [`SCHEMA`] when written.
    pub schema: u16,
    /// The device the message is from or for; empty for a group document.
    pub device: String,
    /// The sender's sequence number: the document version for a deployment, the
    /// first report's outbox number for a batch, a counter for reported state.
    pub seq: u64,
    pub body: Body,
}

/// What an envelope carries. New kinds are added at the end only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Body {
    /// A signed desired-state document (operator → device or group).
    Deployment(SignedDocument),
    /// Reports from the device's outbox, in order (device → operator).
    Reports(ReportBatch),
    /// The device's current state, retained (device → operator).
    Reported(ReportedState),
    /// Online (retained on connect) or offline (the Last Will).
    Status(Presence),
    /// Device and container figures of one period (device → operator, `…/metrics`).
    Metrics(crate::telemetry::MetricsReport),
    /// Lines of one container (device → operator, `…/logs/<task>/<container>`).
    Logs(crate::telemetry::LogBatch),
    /// A secret sealed to one device (operator → device, `…/<device>/secrets`).
    Secret(super::sealed::SignedSecret),
}

/// Consecutive outbox records; a receiver drops any `seq` it has seen already.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportBatch {
    /// `(outbox seq, encoded report)`, ascending.
    pub reports: Vec<(u64, Vec<u8>)>,
    /// Reports the device's outbox deleted undelivered (its bound), so far.
    pub dropped: u64,
}

/// The device's presence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Presence {
    Online { agent_version: String },
    Offline,
}

/// A payload that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("payload of {size} bytes is over the {max}-byte cap")]
    Oversized { size: usize, max: usize },
    #[error("payload is not a skerry envelope: {0}")]
    Malformed(String),
    #[error("wire schema {got} is not understood by this skerry (it reads {SCHEMA})")]
    UnknownSchema { got: u16 },
}

impl Envelope {
    pub fn new(device: &str, seq: u64, body: Body) -> Self {
        Self {
            schema: SCHEMA,
            device: device.to_owned(),
            seq,
            body,
        }
    }

    /// The bytes sent.
    pub fn encode(&self) -> Vec<u8> {
        // Plain data into a Vec: postcard cannot fail here.
        postcard::to_allocvec(self).unwrap_or_default()
    }

    /// Reads an envelope: size cap first, then the schema version, then the rest.
    pub fn decode(bytes: &[u8], max: usize) -> Result<Self, WireError> {
        if bytes.len() > max {
            return Err(WireError::Oversized {
                size: bytes.len(),
                max,
            });
        }
        let (schema, _) = postcard::take_from_bytes::<u16>(bytes)
            .map_err(|e| WireError::Malformed(e.to_string()))?;
        if schema != SCHEMA {
            return Err(WireError::UnknownSchema { got: schema });
        }
        let (env, rest) = match postcard::take_from_bytes::<Envelope>(bytes) {
            Ok(decoded) => decoded,
            // An older agent's body, one appended field short ([`super::legacy`]).
            Err(e) => {
                return super::legacy::decode(bytes).ok_or(WireError::Malformed(e.to_string()))
            }
        };
        if !rest.is_empty() {
            return Err(WireError::Malformed(format!(
                "{} trailing bytes after the envelope",
                rest.len()
            )));
        }
        Ok(env)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status() -> Envelope {
        Envelope::new(
            "gw1",
            7,
            Body::Status(Presence::Online {
                agent_version: "0.1.0".into(),
            }),
        )
    }

    #[test]
    fn envelope_roundtrips() {
        let e = status();
        assert_eq!(Envelope::decode(&e.encode(), 1024).unwrap(), e);
    }

    #[test]
    fn envelope_size_is_checked_before_decoding() {
        let bytes = vec![0xffu8; 2000];
        assert_eq!(
            Envelope::decode(&bytes, 1000),
            Err(WireError::Oversized {
                size: 2000,
                max: 1000
            })
        );
    }

    #[test]
    fn envelope_unknown_schema_and_garbage_are_refused() {
        let mut e = status();
        e.schema = 9;
        assert_eq!(
            Envelope::decode(&e.encode(), 1024),
            Err(WireError::UnknownSchema { got: 9 })
        );
        for garbage in [
            &b""[..],
            b"\x01",
            b"\x01\xff\xff\xff\xff\xff\xff",
            b"hello world",
        ] {
            assert!(Envelope::decode(garbage, 1024).is_err(), "{garbage:?}");
        }
        let mut bytes = status().encode();
        bytes.push(0);
        assert!(matches!(
            Envelope::decode(&bytes, 1024),
            Err(WireError::Malformed(_))
        ));
    }

    /// Golden bytes of schema 1: a change to the encoding breaks this test, and must
    /// come with a new schema number (core/tests/wire/ keeps the older ones).
    #[test]
    fn envelope_golden_bytes_of_schema_1() {
        let golden: &[u8] = include_bytes!("../../tests/wire/status-v1.bin");
        assert_eq!(Envelope::decode(golden, 1024).unwrap(), status());
        assert_eq!(status().encode(), golden);
    }
}
