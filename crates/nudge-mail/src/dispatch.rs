//! The dispatcher: claims due messages from the send ledger under a lease, checks the send gate
//! again against the contact's current status, renders, composes, signs and hands each message
//! to the transport, then records the outcome.
//!
//! The run loop is one pass after another ([`Dispatcher::run_once`]); between passes it sleeps
//! until the next message is due or it is woken. Time comes from the [`Clock`], so tests drive it
//! with a test clock and call `run_once` instead of waiting.

use crate::compose::{ListUnsubscribe, Mailbox, Outgoing, compose};
use crate::dkim::DkimKey;
use crate::template::{RenderContext, Template};
use crate::transport::{DeliveryError, Envelope, Transport};
use jiff::SignedDuration;
use nudge_core::token::{Purpose, sign};
use nudge_core::{Email, MessageClass, RetryPolicy, SendDecision};
use nudge_engine::Clock;
use nudge_store::{Delivery, Message, Store, StoreError};
use std::sync::Arc;
use tokio::sync::Notify;

/// Who sends, and where links in mail point.
#[derive(Debug, Clone)]
pub struct SenderSettings {
    /// The From address when a message names none; its domain signs and receives bounces.
    pub from_email: Email,
    pub from_name: Option<String>,
    /// The address users reach the server at, e.g. `https://news.example.com`.
    pub public_url: String,
}

pub struct Dispatcher {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    transport: Arc<dyn Transport>,
    sender: SenderSettings,
    secret: Arc<[u8]>,
    dkim: Option<Arc<DkimKey>>,
    /// This process's name on the leases it takes.
    owner: String,
    lease: SignedDuration,
    retry: RetryPolicy,
    batch: u32,
    wake: Arc<Notify>,
}

impl Dispatcher {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        transport: Arc<dyn Transport>,
        sender: SenderSettings,
        secret: Arc<[u8]>,
    ) -> Self {
        Self {
            store,
            clock,
            transport,
            sender,
            secret,
            dkim: None,
            owner: format!("dispatcher-{}", uuid::Uuid::now_v7().simple()),
            lease: SignedDuration::from_mins(2),
            retry: RetryPolicy::default(),
            batch: 50,
            wake: Arc::new(Notify::new()),
        }
    }

    /// Signs mail whose From domain is the key's.
    pub fn with_dkim(mut self, key: Option<Arc<DkimKey>>) -> Self {
        self.dkim = key;
        self
    }

    /// Something to call `notify_one` on when a message was queued, to end the sleep early.
    pub fn waker(&self) -> Arc<Notify> {
        Arc::clone(&self.wake)
    }

    /// One pass: claims what is due now and attempts each message once. Returns how many were
    /// attempted.
    pub async fn run_once(&self) -> Result<usize, StoreError> {
        let now = self.clock.now();
        let claimed = self
            .store
            .claim_messages(now, self.batch, &self.owner, self.lease)
            .await?;
        for message in &claimed {
            let delivery = self.attempt(message).await;
            match self
                .store
                .finish_message(message.id, &self.owner, delivery, self.clock.now())
                .await
            {
                Ok(done) => {
                    tracing::info!(message = %done.id, status = done.status.as_str(), "delivery attempt recorded")
                }
                // Another dispatcher took the message over after our lease ran out; its outcome
                // stands.
                Err(StoreError::Conflict { .. }) => {
                    tracing::warn!(message = %message.id, "lease lost before the outcome was recorded");
                }
                Err(e) => return Err(e),
            }
        }
        Ok(claimed.len())
    }

    /// Runs passes until `stop` resolves, sleeping between them until the next due message (at
    /// most a second, so that messages queued by other processes are seen) or a wake-up.
    pub async fn run(self, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            let worked = match self.run_once().await {
                Ok(n) => n,
                Err(e) => {
                    tracing::error!(error = %e, "dispatcher pass failed");
                    0
                }
            };
            if worked > 0 {
                continue;
            }
            let pause = match self.store.next_due().await {
                Ok(Some(due)) => {
                    let wait = due.duration_since(self.clock.now());
                    wait.clamp(SignedDuration::ZERO, SignedDuration::from_secs(1))
                }
                _ => SignedDuration::from_secs(1),
            };
            let pause =
                std::time::Duration::try_from(pause).unwrap_or(std::time::Duration::from_secs(1));
            tokio::select! {
                _ = &mut stop => return,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// One attempt at one claimed message; every way it can end is a [`Delivery`].
    async fn attempt(&self, message: &Message) -> Delivery {
        let contact = match self.store.get_contact(message.contact_id).await {
            Ok(record) => record.contact,
            Err(StoreError::NotFound) => {
                return Delivery::Failed {
                    error: "the contact was erased".into(),
                    bounce: false,
                };
            }
            Err(e) => return self.retry_or_fail(message, format!("storage: {e}")),
        };
        // The status may have changed since the message was queued: the gate decides now.
        if let SendDecision::Skipped(rule) = nudge_core::send_gate(contact.status, message.class) {
            return Delivery::Skipped(rule);
        }
        let fields = match self.store.list_fields().await {
            Ok(f) => f,
            Err(e) => return self.retry_or_fail(message, format!("storage: {e}")),
        };
        let content = &message.content;
        let template = match Template::check(
            &content.subject,
            &content.html,
            content.text.as_deref(),
            &fields,
        ) {
            Ok(t) => t,
            Err(errors) => {
                return Delivery::Failed {
                    error: format!("the template no longer renders: {errors}"),
                    bounce: false,
                };
            }
        };
        let from_email = content
            .from_email
            .as_deref()
            .and_then(|e| Email::parse(e).ok())
            .unwrap_or_else(|| self.sender.from_email.clone());
        let from_name = content
            .from_name
            .clone()
            .or_else(|| self.sender.from_name.clone());
        let token = sign(&self.secret, Purpose::Unsubscribe, message.id);
        let base = self.sender.public_url.trim_end_matches('/');
        let unsubscribe_url = format!("{base}/unsubscribe/{token}");
        let preferences_url = format!("{base}/preferences/{token}");
        let rendered = match template.render(&RenderContext {
            contact: &contact,
            sender_name: from_name.as_deref().unwrap_or_default(),
            sender_email: from_email.as_str(),
            unsubscribe_url: &unsubscribe_url,
            preferences_url: &preferences_url,
        }) {
            Ok(r) => r,
            Err(e) => {
                return Delivery::Failed {
                    error: format!("rendering failed: {e}"),
                    bounce: false,
                };
            }
        };
        let domain = from_email.domain().to_owned();
        let (Ok(return_path), Ok(unsubscribe_mailto)) = (
            Email::parse(&format!("bounces+{}@{domain}", message.id.simple())),
            Email::parse(&format!("unsubscribe+{token}@{domain}")),
        ) else {
            return Delivery::Failed {
                error: format!("the sender domain {domain} cannot carry a return path"),
                bounce: false,
            };
        };
        let outgoing = Outgoing {
            id: message.id,
            from: Mailbox {
                name: from_name,
                email: from_email,
            },
            to: Mailbox {
                name: Some(contact.display_name()).filter(|n| *n != contact.email.as_str()),
                email: contact.email.clone(),
            },
            return_path,
            subject: rendered.subject,
            html: rendered.html,
            text: rendered.text,
            class: message.class,
            date: self.clock.now(),
            list_unsubscribe: (message.class != MessageClass::Transactional).then(|| {
                ListUnsubscribe {
                    mailto: unsubscribe_mailto,
                    url: unsubscribe_url.clone(),
                }
            }),
        };
        let mut bytes = match compose(&outgoing) {
            Ok(b) => b,
            Err(e) => {
                return Delivery::Failed {
                    error: format!("the message could not be built: {e}"),
                    bounce: false,
                };
            }
        };
        if let Some(key) = self.dkim.as_ref().filter(|k| k.domain() == domain) {
            match key.sign(&bytes) {
                Ok(signed) => bytes = signed,
                Err(e) => return self.retry_or_fail(message, format!("DKIM signing failed: {e}")),
            }
        }
        let envelope = Envelope {
            mail_from: outgoing.return_path.to_string(),
            rcpt_to: contact.email.to_string(),
        };
        match self.transport.deliver(&envelope, &bytes).await {
            Ok(()) => Delivery::Sent {
                message_id: outgoing.message_id(),
            },
            Err(DeliveryError::Temporary(error)) => self.retry_or_fail(message, error),
            Err(DeliveryError::Permanent { reply, recipient }) => Delivery::Failed {
                error: reply,
                bounce: recipient,
            },
        }
    }

    /// A temporary failure: the next attempt by the retry policy, or a final failure once the
    /// message has expired.
    fn retry_or_fail(&self, message: &Message, error: String) -> Delivery {
        match self
            .retry
            .next_attempt(message.attempts, message.created_at, self.clock.now())
        {
            Some(at) => Delivery::Retry { at, error },
            None => Delivery::Failed {
                error: format!("gave up after {} attempts: {error}", message.attempts),
                bounce: false,
            },
        }
    }
}
