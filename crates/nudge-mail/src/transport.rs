//! Where composed messages go: an SMTP relay over a small pool of reused connections, or a
//! folder of `.eml` files for a server that has no relay configured yet.

use async_trait::async_trait;
use mail_send::smtp::message::{Address, Message as SmtpMessage};
use mail_send::{SmtpClient, SmtpClientBuilder};
use std::path::PathBuf;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::Mutex;
use tokio_rustls::client::TlsStream;

/// The SMTP envelope: the VERP return path and the one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub mail_from: String,
    pub rcpt_to: String,
}

/// Why a hand-over failed, in the terms the send ledger needs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// Try again later: a 4xx reply, a connection dropped during a transaction, a time-out.
    #[error("{0}")]
    Temporary(String),
    /// No session with the relay came about (connection refused, TLS, greeting, EHLO or AUTH
    /// failed): nothing about this message was sent, so it may go through another account at
    /// once, and otherwise is tried again later.
    #[error("{0}")]
    Unreachable(String),
    /// Refused for good. `recipient` is set when the refusal was about the address (a 5xx to
    /// RCPT TO, or a 5.1.x status), which makes it a hard bounce.
    #[error("{reply}")]
    Permanent { reply: String, recipient: bool },
}

#[async_trait]
pub trait Transport: Send + Sync + 'static {
    async fn deliver(&self, envelope: &Envelope, message: &[u8]) -> Result<(), DeliveryError>;
    /// For the start-up message and logs.
    fn describe(&self) -> String;
}

/// Writes each message to `<dir>/<name>.eml`, so a new user sees mail without any relay.
pub struct EmlFolder {
    dir: PathBuf,
}

impl EmlFolder {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }
}

#[async_trait]
impl Transport for EmlFolder {
    async fn deliver(&self, envelope: &Envelope, message: &[u8]) -> Result<(), DeliveryError> {
        let temporary =
            |e: std::io::Error| DeliveryError::Temporary(format!("{}: {e}", self.dir.display()));
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(temporary)?;
        // The VERP local part names the message, so a retry overwrites instead of duplicating.
        let name: String = envelope
            .mail_from
            .split('@')
            .next()
            .unwrap_or("message")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let path = self.dir.join(format!("{name}.eml"));
        let partial = self.dir.join(format!(".{name}.eml.part"));
        // Write then rename: a reader never sees half a message.
        tokio::fs::write(&partial, message)
            .await
            .map_err(temporary)?;
        tokio::fs::rename(&partial, &path)
            .await
            .map_err(temporary)?;
        Ok(())
    }

    fn describe(&self) -> String {
        format!(
            "the folder {} (no SMTP relay configured)",
            self.dir.display()
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    None,
    StartTls,
    Implicit,
}

/// How to reach an SMTP relay.
#[derive(Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub credentials: Option<(String, String)>,
    /// The name given in EHLO.
    pub helo: String,
    pub timeout: Duration,
    /// Connections kept open between messages.
    pub pool_size: usize,
}

impl std::fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.credentials.as_ref().map(|(u, _)| u))
            .finish_non_exhaustive()
    }
}

enum Connection {
    Plain(SmtpClient<TcpStream>),
    // Boxed: a TLS session is over a kilobyte, and idle connections sit in a Vec.
    Tls(Box<SmtpClient<TlsStream<TcpStream>>>),
}

/// An SMTP relay. Connections are kept and reused across messages (a new MAIL FROM starts the
/// next transaction); one that failed in any way is dropped, never reused.
pub struct SmtpRelay {
    settings: SmtpSettings,
    idle: Mutex<Vec<Connection>>,
}

impl SmtpRelay {
    pub fn new(settings: SmtpSettings) -> Self {
        // mail-send builds its TLS connector from rustls's process-wide provider, and panics when
        // more than one provider is compiled in and none was chosen. Nudge uses ring everywhere;
        // an error here means a provider was installed already, which is all we need.
        let _ = rustls::crypto::ring::default_provider().install_default();
        Self {
            settings,
            idle: Mutex::new(Vec::new()),
        }
    }

    async fn connect(&self) -> Result<Connection, DeliveryError> {
        let s = &self.settings;
        let mut builder = SmtpClientBuilder::new(s.host.clone(), s.port)
            .map_err(|e| DeliveryError::Unreachable(format!("{}:{}: {e}", s.host, s.port)))?
            .helo_host(s.helo.clone())
            .timeout(s.timeout)
            .implicit_tls(s.tls == TlsMode::Implicit);
        if let Some((user, password)) = &s.credentials {
            builder = builder.credentials((user.clone(), password.clone()));
        }
        let connected = match s.tls {
            TlsMode::None => builder.connect_plain().await.map(Connection::Plain),
            TlsMode::StartTls | TlsMode::Implicit => builder
                .connect()
                .await
                .map(|c| Connection::Tls(Box::new(c))),
        };
        let connection = connected.map_err(|e| {
            DeliveryError::Unreachable(format!("connecting to {}:{}: {e}", s.host, s.port))
        })?;
        // Without TCP_NODELAY the message's last write (the ".") waits behind Nagle's algorithm
        // for the relay's delayed ACK, about 40 ms per message on Linux: 4 connections then
        // carry some 80 messages a second whatever the CPU. Failing to set it only costs speed.
        let nodelay = match &connection {
            Connection::Plain(client) => client.stream.set_nodelay(true),
            Connection::Tls(client) => client.stream.get_ref().0.set_nodelay(true),
        };
        if let Err(e) = nodelay {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
        Ok(connection)
    }
}

#[async_trait]
impl Transport for SmtpRelay {
    async fn deliver(&self, envelope: &Envelope, message: &[u8]) -> Result<(), DeliveryError> {
        let pooled = self.idle.lock().await.pop();
        let mut connection = match pooled {
            Some(c) => c,
            None => self.connect().await?,
        };
        let result = match &mut connection {
            Connection::Plain(client) => transaction(client, envelope, message).await,
            Connection::Tls(client) => transaction(client.as_mut(), envelope, message).await,
        };
        if result.is_ok() {
            let mut idle = self.idle.lock().await;
            if idle.len() < self.settings.pool_size {
                idle.push(connection);
            }
        }
        result
    }

    fn describe(&self) -> String {
        format!(
            "the SMTP relay {}:{}",
            self.settings.host, self.settings.port
        )
    }
}

/// One SMTP transaction, step by step, so that a refusal is attributed to the step that got it.
async fn transaction<T>(
    client: &mut SmtpClient<T>,
    envelope: &Envelope,
    message: &[u8],
) -> Result<(), DeliveryError>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let smtp = SmtpMessage {
        mail_from: Address::from(envelope.mail_from.as_str()),
        rcpt_to: vec![Address::from(envelope.rcpt_to.as_str())],
        body: message.into(),
    };
    client
        .mail_from(smtp.mail_from.email.as_ref(), &smtp.mail_from.parameters)
        .await
        .map_err(|e| classify(e, false))?;
    for rcpt in &smtp.rcpt_to {
        client
            .rcpt_to(rcpt.email.as_ref(), &rcpt.parameters)
            .await
            .map_err(|e| classify(e, true))?;
    }
    client
        .data(smtp.body.as_ref())
        .await
        .map_err(|e| classify(e, false))?;
    Ok(())
}

/// Reads mail-send's error as temporary or permanent. A 5xx is permanent; it is about the
/// recipient when it answered RCPT TO or carries an enhanced status 5.1.x (bad address).
fn classify(error: mail_send::Error, at_rcpt: bool) -> DeliveryError {
    match error {
        mail_send::Error::UnexpectedReply(reply) => {
            let text = reply.to_string();
            let code = reply.code();
            match nudge_core::message::classify_reply(code) {
                nudge_core::ReplyClass::Permanent => {
                    let [class, subject, _] = reply.esc;
                    DeliveryError::Permanent {
                        reply: text,
                        recipient: at_rcpt || (class == 5 && subject == 1),
                    }
                }
                _ => DeliveryError::Temporary(text),
            }
        }
        other => DeliveryError::Temporary(other.to_string()),
    }
}
