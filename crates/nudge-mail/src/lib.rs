//! Mail delivery: turns a queued message and its contact into signed bytes and hands them on.
//!
//! [`template`] checks user-authored templates when they are saved and renders them for a
//! contact; [`compose`] builds the MIME message with its deliverability headers; [`dkim`] signs
//! it. These three do no I/O, and times are arguments, except a DKIM signature's `t=` tag, which
//! mail-auth takes from the system clock. [`transport`] hands a message to an SMTP relay (or a
//! folder of `.eml` files) or through the sending account [`routing`] picks, [`tracking`] routes links and an open pixel through the server, and
//! [`dispatch`] runs the send ledger: claim, gate, render, send,
//! record.

pub mod compose;
pub mod dispatch;
pub mod dkim;
pub mod routing;
pub mod template;
pub mod tracking;
pub mod transport;

pub use compose::{ComposeError, ListUnsubscribe, Mailbox, Outgoing, compose};
pub use dispatch::{Dispatcher, SenderSettings};
pub use dkim::{Algorithm, DkimError, DkimKey, DnsRecord, GeneratedKey};
pub use routing::SmtpDefaults;
pub use template::{RenderContext, RenderError, Rendered, Template};
pub use transport::{
    DeliveryError, EmlFolder, Envelope, SmtpRelay, SmtpSettings, TlsMode, Transport,
};
