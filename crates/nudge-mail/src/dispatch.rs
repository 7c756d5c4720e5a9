//! The dispatcher: claims due messages from the send ledger under a lease, checks the send gate
//! again against the contact's current status, renders, composes, signs and hands each message
//! to a sending account (or, with none configured, the default transport), then records the
//! outcome.
//!
//! Sending accounts and DKIM keys are read from the store at the start of every pass (see
//! [`crate::routing`]), so accounts and keys added while it runs are used at once. It claims
//! no more messages than the accounts' rate and daily limits allow, so a throttled message
//! stays queued.
//!
//! The run loop is one pass after another ([`Dispatcher::run_once`]); between passes it sleeps
//! until the next message is due or it is woken. Time comes from the [`Clock`], so tests drive it
//! with a test clock and call `run_once` instead of waiting.

use crate::compose::{ListUnsubscribe, Mailbox, Outgoing, compose};
use crate::routing::{Capacity, Routes, SmtpDefaults, Way};
use crate::template::{RenderContext, Template};
use crate::transport::{DeliveryError, Envelope, Transport};
use futures_util::StreamExt;
use jiff::{SignedDuration, Timestamp};
use nudge_core::token::{Purpose, sign};
use nudge_core::{Contact, Email, MessageClass, RetryPolicy, SendDecision};
use nudge_engine::Clock;
use nudge_store::{Delivery, Message, Store, StoreError};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::sync::Notify;

/// Who sends, and where links in mail point.
#[derive(Debug, Clone)]
pub struct SenderSettings {
    /// The From address when a message names none and no sending account is configured (an
    /// account's own address is used otherwise); its domain signs and receives bounces.
    pub from_email: Email,
    pub from_name: Option<String>,
    /// The address users reach the server at, e.g. `https://news.example.com`.
    pub public_url: String,
    /// Open pixel and click redirects in campaign and automation mail (never in transactional
    /// mail, which people expect to be private).
    pub tracking: bool,
}

pub struct Dispatcher {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    /// The way out while no sending account is configured.
    transport: Arc<dyn Transport>,
    sender: SenderSettings,
    secret: Arc<[u8]>,
    /// Sending accounts, their buckets and pools, and the DKIM keys. A std mutex: it is never
    /// held across an await.
    routes: Mutex<Routes>,
    smtp: SmtpDefaults,
    /// When the accounts could take nothing at the last pass: nothing is claimed before this.
    throttled_until: Mutex<Option<Timestamp>>,
    /// This process's name on the leases it takes.
    owner: String,
    lease: SignedDuration,
    retry: RetryPolicy,
    batch: u32,
    /// How many claimed messages one pass attempts at once (see [`Dispatcher::with_concurrency`]).
    concurrency: usize,
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
            routes: Mutex::new(Routes::default()),
            smtp: SmtpDefaults::default(),
            throttled_until: Mutex::new(None),
            owner: format!("dispatcher-{}", uuid::Uuid::now_v7().simple()),
            lease: SignedDuration::from_mins(2),
            retry: RetryPolicy::default(),
            batch: 50,
            concurrency: 1,
            wake: Arc::new(Notify::new()),
        }
    }

    /// How connections to sending accounts are made (EHLO name, time-out, pool size).
    pub fn with_smtp_defaults(mut self, smtp: SmtpDefaults) -> Self {
        self.smtp = smtp;
        self
    }

    /// Attempts up to `n` claimed messages of a pass at once (at least 1; 1 is the default).
    ///
    /// One message at a time leaves the relay idle while a message is rendered, signed and
    /// recorded, and a pool of several connections serves one of them only. With `n` set to the
    /// pool size, each connection carries a transaction while the others' messages are being
    /// built or finished. A pass still claims, attempts and finishes every message it claimed
    /// before it returns, and each message is finished by the attempt that sent it, so the
    /// ledger's contract (only the lease holder finishes a row) is unchanged; only the order in
    /// which a batch's outcomes are recorded is no longer the claim order.
    pub fn with_concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    fn routes(&self) -> MutexGuard<'_, Routes> {
        // Every change under this lock is a plain assignment, so a panic elsewhere cannot
        // leave it half done: a poisoned lock still holds usable state.
        self.routes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn throttle(&self) -> MutexGuard<'_, Option<Timestamp>> {
        self.throttled_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads the sending accounts and the DKIM keys again, and the daily counts when they are
    /// due. A read that fails keeps what was read before.
    async fn refresh(&self, now: Timestamp) {
        let read = tokio::try_join!(self.store.list_smtp_accounts(), self.store.dkim_keys());
        let (accounts, keys) = match read {
            Ok(read) => read,
            Err(e) => {
                tracing::warn!(error = %e, "could not read the sending accounts and DKIM keys");
                return;
            }
        };
        let since = self.routes().needs_ledger(&accounts, now);
        let sent = match since {
            Some(since) => match self.store.sent_per_smtp_account(since).await {
                Ok(sent) => Some(sent),
                Err(e) => {
                    tracing::warn!(error = %e, "could not count today's messages per account");
                    None
                }
            },
            None => None,
        };
        self.routes().update(accounts, keys, sent, &self.smtp, now);
    }

    /// Something to call `notify_one` on when a message was queued, to end the sleep early.
    pub fn waker(&self) -> Arc<Notify> {
        Arc::clone(&self.wake)
    }

    /// One pass: claims what is due now and attempts each message once. Returns how many were
    /// attempted.
    pub async fn run_once(&self) -> Result<usize, StoreError> {
        let now = self.clock.now();
        self.refresh(now).await;
        let capacity = self.routes().capacity(now);
        let limit = match capacity {
            Capacity::Unlimited => self.batch,
            Capacity::Messages(n) => u32::try_from(n).unwrap_or(u32::MAX).min(self.batch),
            Capacity::Exhausted(until) => {
                *self.throttle() = Some(until);
                return Ok(0);
            }
        };
        *self.throttle() = None;
        let claimed = self
            .store
            .claim_messages(now, limit, &self.owner, self.lease)
            .await?;
        // Up to `concurrency` attempts in flight; each records its own outcome as it ends.
        // The futures are made first (they start nothing until polled): a stream that maps with
        // a borrowing closure is not `Send` for every lifetime, which `tokio::spawn` requires.
        let attempts: Vec<_> = claimed
            .iter()
            .map(|message| self.attempt_and_finish(message))
            .collect();
        let mut outcomes = futures_util::stream::iter(attempts).buffer_unordered(self.concurrency);
        let mut failure = None;
        while let Some(outcome) = outcomes.next().await {
            // A storage error is returned once the whole batch has been attempted: stopping at
            // once would drop attempts in the middle of an SMTP transaction. Messages whose
            // outcome could not be recorded are claimed again when their lease runs out.
            if let Err(e) = outcome {
                failure.get_or_insert(e);
            }
        }
        if let Some(e) = failure {
            return Err(e);
        }
        Ok(claimed.len())
    }

    /// One attempt at one claimed message, and its outcome recorded under our lease.
    async fn attempt_and_finish(&self, message: &Message) -> Result<(), StoreError> {
        let delivery = self.attempt(message).await;
        match self
            .store
            .finish_message(message.id, &self.owner, delivery, self.clock.now())
            .await
        {
            Ok(done) => {
                tracing::info!(message = %done.id, status = done.status.as_str(), "delivery attempt recorded");
                Ok(())
            }
            // Another dispatcher took the message over after our lease ran out; its outcome
            // stands.
            Err(StoreError::Conflict { .. }) => {
                tracing::warn!(message = %message.id, "lease lost before the outcome was recorded");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Runs passes until `stop` resolves, sleeping between them until the next due message (at
    /// most a second, so that messages queued by other processes are seen) or a wake-up.
    pub async fn run(&self, stop: impl std::future::Future<Output = ()>) {
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
            let throttled = *self.throttle();
            let pause = match self.store.next_due().await {
                Ok(Some(due)) => {
                    // A due message waits for the accounts to have room again.
                    let due = throttled.map_or(due, |until| until.max(due));
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
        // A form's notification to its owner is about this contact but addressed to the owner:
        // it goes to the address it was queued for, and a refusal there says nothing about the
        // contact's own address.
        let notification = match Email::parse(&message.to_email) {
            Ok(to)
                if message.class == MessageClass::Transactional
                    && to.key() != contact.email.key() =>
            {
                Some(to)
            }
            _ => None,
        };
        let to = match &notification {
            Some(owner) => Mailbox {
                name: None,
                email: owner.clone(),
            },
            None => Mailbox {
                name: Some(contact.display_name()).filter(|n| *n != contact.email.as_str()),
                email: contact.email.clone(),
            },
        };
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
        let now = self.clock.now();
        let ways = self.ways(message, now);
        if ways.is_empty() {
            return self.throttled(now);
        }
        let mut unreachable = None;
        let mut built: Option<(Sender, Built)> = None;
        for way in ways {
            if let Some(account) = way.account
                && !self.routes().take(account, self.clock.now())
            {
                continue;
            }
            let sender = Sender {
                email: content
                    .from_email
                    .as_deref()
                    .and_then(|e| Email::parse(e).ok())
                    .unwrap_or_else(|| way.from_email.clone()),
                name: content.from_name.clone().or_else(|| way.from_name.clone()),
                tracking: way.tracking,
            };
            // A fall-over to an account with another sender builds the message again; one with
            // the same sender sends the same bytes.
            let reuse = built.take().filter(|(s, _)| *s == sender);
            let message_bytes = match reuse {
                Some((_, b)) => b,
                None => match self.build(message, &contact, &to, &template, &sender).await {
                    Ok(b) => b,
                    Err(outcome) => return outcome,
                },
            };
            match way
                .transport
                .deliver(&message_bytes.envelope, &message_bytes.bytes)
                .await
            {
                Ok(()) => {
                    if let Some(account) = way.account {
                        self.routes().sent(account);
                    }
                    return Delivery::Sent {
                        message_id: message_bytes.message_id,
                        smtp_account_id: way.account,
                    };
                }
                // Nothing of this message reached the relay: the next account may take it now.
                Err(DeliveryError::Unreachable(error)) => {
                    if let Some(account) = way.account {
                        tracing::warn!(%account, %error, "sending account unreachable; trying the next");
                        self.routes().down(account, self.clock.now());
                    }
                    unreachable = Some(error);
                    built = Some((sender, message_bytes));
                }
                Err(DeliveryError::Temporary(error)) => return self.retry_or_fail(message, error),
                Err(DeliveryError::Permanent { reply, recipient }) => {
                    return Delivery::Failed {
                        error: reply,
                        bounce: recipient && notification.is_none(),
                    };
                }
            }
        }
        match unreachable {
            Some(error) => self.retry_or_fail(message, error),
            None => self.throttled(self.clock.now()),
        }
    }

    /// The ways to try for a message: the sending accounts in the order [`Routes::ways`] gives,
    /// or the default transport while there is no account.
    fn ways(&self, message: &Message, now: Timestamp) -> Vec<Way> {
        let mut routes = self.routes();
        if routes.has_accounts() {
            return routes.ways(message.id, now);
        }
        vec![Way {
            account: None,
            transport: Arc::clone(&self.transport),
            from_email: self.sender.from_email.clone(),
            from_name: self.sender.from_name.clone(),
            tracking: true,
        }]
    }

    /// Every account is at its rate or daily limit (rare: the claim takes only what they allow,
    /// but a fall-over spends two tokens on one message). Counts as an attempt, yet never fails
    /// the message.
    fn throttled(&self, now: Timestamp) -> Delivery {
        Delivery::Retry {
            at: self.routes().available_at(now),
            error: "every sending account is at its rate or daily limit".into(),
        }
    }

    /// Renders, composes and signs the message for one sender.
    async fn build(
        &self,
        message: &Message,
        contact: &Contact,
        to: &Mailbox,
        template: &Template,
        sender: &Sender,
    ) -> Result<Built, Delivery> {
        let from_email = sender.email.clone();
        let from_name = sender.name.clone();
        let token = sign(&self.secret, Purpose::Unsubscribe, message.id);
        let base = self.sender.public_url.trim_end_matches('/');
        let unsubscribe_url = format!("{base}/unsubscribe/{token}");
        let preferences_url = format!("{base}/preferences/{token}");
        let confirm_url = format!(
            "{base}/confirm/{}",
            sign(&self.secret, Purpose::Confirm, contact.id)
        );
        let rendered = match template.render(&RenderContext {
            contact,
            sender_name: from_name.as_deref().unwrap_or_default(),
            sender_email: from_email.as_str(),
            unsubscribe_url: &unsubscribe_url,
            preferences_url: &preferences_url,
            confirm_url: &confirm_url,
        }) {
            Ok(r) => r,
            Err(e) => {
                return Err(Delivery::Failed {
                    error: format!("rendering failed: {e}"),
                    bounce: false,
                });
            }
        };
        let html = if self.sender.tracking
            && sender.tracking
            && message.class != MessageClass::Transactional
        {
            crate::tracking::track(&rendered.html, base, &self.secret, message.id)
        } else {
            rendered.html
        };
        let domain = from_email.domain().to_owned();
        let (Ok(return_path), Ok(unsubscribe_mailto)) = (
            Email::parse(&format!("bounces+{}@{domain}", message.id.simple())),
            Email::parse(&format!("unsubscribe+{token}@{domain}")),
        ) else {
            return Err(Delivery::Failed {
                error: format!("the sender domain {domain} cannot carry a return path"),
                bounce: false,
            });
        };
        let outgoing = Outgoing {
            id: message.id,
            from: Mailbox {
                name: from_name,
                email: from_email,
            },
            to: to.clone(),
            return_path,
            subject: rendered.subject,
            html,
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
                return Err(Delivery::Failed {
                    error: format!("the message could not be built: {e}"),
                    bounce: false,
                });
            }
        };
        // Taken out of the lock before signing: an RSA signature takes a millisecond.
        let key = self.routes().key_for(&domain);
        if let Some(key) = key {
            // On the blocking pool: the attempts of a pass share one task, and signing there
            // would sign one message at a time on one core.
            let unsigned = std::mem::take(&mut bytes);
            let signed = tokio::task::spawn_blocking(move || key.sign(&unsigned)).await;
            match signed {
                Ok(Ok(signed)) => bytes = signed,
                Ok(Err(e)) => {
                    return Err(self.retry_or_fail(message, format!("DKIM signing failed: {e}")));
                }
                Err(e) => {
                    return Err(self.retry_or_fail(message, format!("DKIM signing failed: {e}")));
                }
            }
        }
        Ok(Built {
            envelope: Envelope {
                mail_from: outgoing.return_path.to_string(),
                rcpt_to: to.email.to_string(),
            },
            message_id: outgoing.message_id(),
            bytes,
        })
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

/// Who a message is sent as; the same sender gives the same bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Sender {
    email: Email,
    name: Option<String>,
    tracking: bool,
}

/// A message ready for the wire.
struct Built {
    envelope: Envelope,
    message_id: String,
    bytes: Vec<u8>,
}
