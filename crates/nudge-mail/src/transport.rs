//! Where composed messages go: an SMTP relay over a small pool of reused connections, or a
//! folder of `.eml` files for a server that has no relay configured yet.

use async_trait::async_trait;
use mail_send::smtp::AssertReply;
use mail_send::smtp::message::Address;
use mail_send::{Credentials, SmtpClient, SmtpClientBuilder};
use smtp_proto::EXT_PIPELINING;
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
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

enum Stream {
    Plain(SmtpClient<TcpStream>),
    // Boxed: a TLS session is over a kilobyte, and idle connections sit in a Vec.
    Tls(Box<SmtpClient<TlsStream<TcpStream>>>),
}

struct Connection {
    stream: Stream,
    /// The relay offered PIPELINING (RFC 2920) in its EHLO answer.
    pipelining: bool,
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
        let unreachable = |e: mail_send::Error| {
            DeliveryError::Unreachable(format!("connecting to {}:{}: {e}", s.host, s.port))
        };
        // EHLO is said here rather than by mail-send, which drops the answer: it tells whether
        // the relay takes pipelined commands.
        let builder = SmtpClientBuilder::new(s.host.clone(), s.port)
            .map_err(|e| DeliveryError::Unreachable(format!("{}:{}: {e}", s.host, s.port)))?
            .helo_host(s.helo.clone())
            .timeout(s.timeout)
            .implicit_tls(s.tls == TlsMode::Implicit)
            .say_ehlo(false);
        let mut stream = match s.tls {
            TlsMode::None => builder.connect_plain().await.map(Stream::Plain),
            TlsMode::StartTls | TlsMode::Implicit => {
                builder.connect().await.map(|c| Stream::Tls(Box::new(c)))
            }
        }
        .map_err(unreachable)?;
        let pipelining = match &mut stream {
            Stream::Plain(client) => greet(client, s).await,
            Stream::Tls(client) => greet(client.as_mut(), s).await,
        }
        .map_err(unreachable)?;
        // Without TCP_NODELAY the message's last write (the ".") waits behind Nagle's algorithm
        // for the relay's delayed ACK, about 40 ms per message on Linux: 4 connections then
        // carry some 80 messages a second whatever the CPU. Failing to set it only costs speed.
        let nodelay = match &stream {
            Stream::Plain(client) => client.stream.set_nodelay(true),
            Stream::Tls(client) => client.stream.get_ref().0.set_nodelay(true),
        };
        if let Err(e) = nodelay {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
        Ok(Connection { stream, pipelining })
    }

    /// Connects as for a message (TLS as configured, EHLO, AUTH with credentials) and says
    /// what was reached, sending nothing: the admin UI's "test connection". The connection is
    /// closed, not pooled.
    pub async fn probe(&self) -> Result<String, DeliveryError> {
        let s = &self.settings;
        let connection = self.connect().await?;
        let tls = match connection.stream {
            Stream::Plain(_) => "without TLS",
            Stream::Tls(_) => "over TLS",
        };
        let signed_in = match &s.credentials {
            Some((user, _)) => format!(", signed in as {user}"),
            None => String::new(),
        };
        Ok(format!(
            "connected to {}:{} {tls}; EHLO accepted{signed_in}",
            s.host, s.port
        ))
    }
}

/// EHLO and, with credentials, AUTH. Returns whether the relay offers PIPELINING.
async fn greet<T>(client: &mut SmtpClient<T>, s: &SmtpSettings) -> mail_send::Result<bool>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let capabilities = client.ehlo(&s.helo).await?;
    if let Some((user, password)) = &s.credentials {
        let credentials = Credentials::new(user.as_str(), password.as_str());
        client.authenticate(&credentials, &capabilities).await?;
    }
    Ok(capabilities.has_capability(EXT_PIPELINING))
}

#[async_trait]
impl Transport for SmtpRelay {
    async fn deliver(&self, envelope: &Envelope, message: &[u8]) -> Result<(), DeliveryError> {
        let pooled = self.idle.lock().await.pop();
        let mut connection = match pooled {
            Some(c) => c,
            None => self.connect().await?,
        };
        let pipelining = connection.pipelining;
        let result = match &mut connection.stream {
            Stream::Plain(client) => transaction(client, pipelining, envelope, message).await,
            Stream::Tls(client) => {
                transaction(client.as_mut(), pipelining, envelope, message).await
            }
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

/// One SMTP transaction; each reply is checked against the command it answers, so that a
/// refusal is attributed to the step that got it.
///
/// With PIPELINING, MAIL, RCPT and DATA go out in one write and their three replies are read
/// together, then the content goes out in one write: two round trips a message instead of
/// four, and no small writes that each cost a packet and a wake-up of the relay.
async fn transaction<T>(
    client: &mut SmtpClient<T>,
    pipelining: bool,
    envelope: &Envelope,
    message: &[u8],
) -> Result<(), DeliveryError>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mail_from = Address::from(envelope.mail_from.as_str());
    let rcpt_to = Address::from(envelope.rcpt_to.as_str());
    if !pipelining {
        client
            .mail_from(mail_from.email.as_ref(), &mail_from.parameters)
            .await
            .map_err(|e| classify(e, false))?;
        client
            .rcpt_to(rcpt_to.email.as_ref(), &rcpt_to.parameters)
            .await
            .map_err(|e| classify(e, true))?;
        client.data(message).await.map_err(|e| classify(e, false))?;
        return Ok(());
    }
    let commands = format!(
        "MAIL FROM:<{}>{}\r\nRCPT TO:<{}>{}\r\nDATA\r\n",
        mail_from.email, mail_from.parameters, rcpt_to.email, rcpt_to.parameters
    );
    let timeout = client.timeout;
    let replies = tokio::time::timeout(timeout, async {
        client.stream.write_all(commands.as_bytes()).await?;
        client.stream.flush().await?;
        client.read_many(3).await
    })
    .await
    .map_err(|_| mail_send::Error::Timeout)
    .and_then(|r| r)
    .map_err(|e| classify(e, false))?;
    let [mail, rcpt, data] = <[_; 3]>::try_from(replies)
        .map_err(|_| DeliveryError::Temporary("the relay did not answer every command".into()))?;
    mail.assert_positive_completion()
        .map_err(|e| classify(e, false))?;
    rcpt.assert_positive_completion()
        .map_err(|e| classify(e, true))?;
    data.assert_code(354).map_err(|e| classify(e, false))?;
    let content = dot_stuffed(message);
    tokio::time::timeout(timeout, async {
        client.stream.write_all(&content).await?;
        client.stream.flush().await?;
        client.read().await
    })
    .await
    .map_err(|_| mail_send::Error::Timeout)
    .and_then(|r| r)
    .and_then(|reply| reply.into_positive_completion())
    .map_err(|e| classify(e, false))?;
    Ok(())
}

/// The message as DATA carries it: a dot doubled at the start of every line, then the end
/// marker (after a line break of its own, as mail-send writes it).
fn dot_stuffed(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + message.len() / 64 + 5);
    let mut line_start = true;
    for &byte in message {
        if byte == b'.' && line_start {
            out.push(b'.');
        }
        out.push(byte);
        line_start = byte == b'\n' || byte == b'\r';
    }
    out.extend_from_slice(b"\r\n.\r\n");
    out
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
