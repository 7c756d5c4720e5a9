//! The pure domain of Nudge: contacts, statuses and the send gate, custom fields, groups, tags
//! and timeline entries.
//!
//! This crate does no I/O and reads no clock: times, ids and random choices are arguments, so
//! every rule here is a plain function that tests can drive from a table.

pub mod access;
pub mod contact;
pub mod email;
pub mod error;
pub mod field;
pub mod form;
pub mod group;
pub mod message;
pub mod sequence;
pub mod smtp;
pub mod status;
pub mod tag;
pub mod timeline;
pub mod token;

pub use access::{Area, Role, Scope};
pub use contact::{Consent, Contact, ContactInput, ContactPatch, Patch};
pub use email::{Email, EmailError};
pub use error::FieldErrors;
pub use field::{FieldDef, FieldKey, FieldType};
pub use group::GroupTree;
pub use message::{MessageStatus, ReplyClass, RetryPolicy};
pub use sequence::{
    Condition, Delay, EnrolmentAction, EnrolmentState, EnrolmentStatus, SendingWindow, SequenceDef,
    Step, Suspension,
};
pub use smtp::{SmtpAccountInput, SmtpAccountSettings, SmtpTls};
pub use status::{ChangeSource, MessageClass, SendDecision, SkipRule, Status, send_gate};
pub use tag::TagName;
pub use timeline::{TimelineEntry, TimelineKind};
