//! The wire between the operator (`skerry ctl`), the broker and the agent: topic
//! names, the versioned postcard [`Envelope`] every payload travels in, signed
//! deployment documents, the merge rule of device and group documents, the reported
//! state, and the outbox sender's delivery rules. Pure: no sockets, no clock, no disk.
//!
//! ```text
//! skerry/v1/<fleet>/<device>/desired            retained   operator → device  Envelope{Deployment}
//! skerry/v1/<fleet>/<device>/desired/previous   retained   operator only      the document it replaced
//! skerry/v1/<fleet>/<device>/reported           retained   device → operator  Envelope{Reported}
//! skerry/v1/<fleet>/<device>/events                        device → operator  Envelope{Reports}
//! skerry/v1/<fleet>/<device>/status             retained   device (LWT)       Envelope{Status}
//! skerry/v1/<fleet>/<device>/secrets                       operator → device  Envelope{Secret} (sealed)
//! skerry/v1/<fleet>/<device>/logs/<task>/<c>, …/metrics    (telemetry)
//! skerry/v1/<fleet>/groups/<group>/desired      retained   operator → devices Envelope{Deployment}
//! ```
//!
//! Every payload is checked against one size cap ([`MAX_PAYLOAD`] by default) *before*
//! it is decoded, and its first field is the schema version: an unknown version is
//! refused by name, never misread (postcard is not self-describing).
//! Nothing downstream of [`check::check_document`] sees unverified bytes.

pub mod check;
pub mod delivery;
pub mod document;
pub mod envelope;
pub mod events;
pub mod json_pack;
pub mod legacy;
pub mod merge;
pub mod reported;
pub mod sealed;
pub mod topics;

pub use check::{check_document, Accepted, Expect, Refusal};
pub use document::{sign_document, DeploymentDoc, Entry, SignedDocument, Target};
pub use envelope::{Body, Envelope, Presence, ReportBatch, WireError, SCHEMA};
pub use events::FleetEvent;
pub use topics::{TopicError, Topics};

/// Default largest payload: AWS IoT Core's packet limit, 128 KiB. `ctl`, the agent and
/// the broker config enforce the same number.
pub const MAX_PAYLOAD: usize = 128 * 1024;
