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
use crate::dkim::DkimKey;
use crate::routing::{Capacity, Routes, SmtpDefaults, Way};
use crate::template::{RenderContext, Template};
use crate::transport::{DeliveryError, Envelope, Transport};
use futures_util::future::{FusedFuture, OptionFuture};
use futures_util::{FutureExt, StreamExt};
use jiff::{SignedDuration, Timestamp};
use nudge_core::token::{Purpose, sign};
use nudge_core::{Contact, Email, MessageClass, RetryPolicy, SendDecision};
use nudge_engine::Clock;
use nudge_store::{Delivery, Message, Store, StoreError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::sync::{Notify, Semaphore};
use uuid::Uuid;

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
    /// How many SMTP transactions run at once (see [`Dispatcher::with_concurrency`]).
    concurrency: usize,
    /// Holds `concurrency` permits; an attempt takes one for its hand-over to the relay.
    sending: Semaphore,
    /// How many messages are built ahead, beyond those being handed over: one per core.
    builders: usize,
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
            // A pass records its outcomes in few transactions and reads its contacts at once,
            // so a larger batch costs the ledger less per message; at 200 a pass still ends
            // well within its lease on a slow relay.
            batch: 200,
            concurrency: 1,
            sending: Semaphore::new(1),
            builders: std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
            wake: Arc::new(Notify::new()),
        }
    }

    /// How connections to sending accounts are made (EHLO name, time-out, pool size).
    pub fn with_smtp_defaults(mut self, smtp: SmtpDefaults) -> Self {
        self.smtp = smtp;
        self
    }

    /// Hands up to `n` messages of a pass to the relay at once (at least 1; 1 is the default).
    ///
    /// One message at a time leaves the relay idle while a message is rendered, signed and
    /// recorded, and a pool of several connections serves one of them only. With `n` set to the
    /// pool size, each connection carries a transaction while further messages are being built
    /// (up to one per core ahead) and earlier outcomes recorded. A pass still claims, attempts
    /// and records every message it claimed before it returns, only under the lease it claimed
    /// with, so the ledger's contract is unchanged; only the order in which a batch's outcomes
    /// are recorded is no longer the claim order.
    pub fn with_concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self.sending = Semaphore::new(self.concurrency);
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
    ///
    /// The pass reads the contacts of its batch and the custom fields once and checks each
    /// distinct template once. Outcomes are recorded in batches while the remaining attempts go
    /// on: whenever no recording is under way, everything that ended since the last one is
    /// written in one transaction (`Store::finish_messages`), so the ledger costs a commit per
    /// batch rather than per message and the relay is not idle while it is written.
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
        if claimed.is_empty() {
            return Ok(0);
        }
        let pass = self.prepare(&claimed).await;
        // The futures are made first (they start nothing until polled): a stream that maps with
        // a borrowing closure is not `Send` for every lifetime, which `tokio::spawn` requires.
        let attempts: Vec<_> = claimed
            .iter()
            .zip(&pass.templates)
            .map(|(message, template)| async {
                (message.id, self.attempt(message, &pass, template).await)
            })
            .collect();
        // More attempts than connections are under way, so that the next messages are being
        // built on the blocking pool while the connections carry the previous ones; the
        // `sending` semaphore keeps SMTP transactions to `concurrency`.
        let in_flight = self.concurrency + self.builders;
        let mut attempts = futures_util::stream::iter(attempts).buffer_unordered(in_flight);
        let mut ended = Vec::new();
        let mut attempting = true;
        let mut recording = std::pin::pin!(OptionFuture::from(None));
        let mut failure = None;
        loop {
            if recording.is_terminated() && !ended.is_empty() {
                let batch = std::mem::take(&mut ended);
                recording.set(Some(self.record(batch).fuse()).into());
            }
            if !attempting && recording.is_terminated() {
                break;
            }
            tokio::select! {
                outcome = attempts.next(), if attempting => match outcome {
                    Some(outcome) => ended.push(outcome),
                    None => attempting = false,
                },
                Some(recorded) = &mut recording, if !recording.is_terminated() => {
                    // A storage error is returned once the whole batch has been attempted:
                    // stopping at once would drop attempts in the middle of an SMTP
                    // transaction. Messages whose outcome could not be recorded are claimed
                    // again when their lease runs out.
                    if let Err(e) = recorded {
                        failure.get_or_insert(e);
                    }
                }
            }
        }
        if let Some(e) = failure {
            return Err(e);
        }
        Ok(claimed.len())
    }

    /// Reads what every attempt of a pass needs: the contacts of the batch and, for each
    /// distinct content, its template checked against the custom fields defined now.
    async fn prepare(&self, claimed: &[Message]) -> Pass {
        let ids: Vec<Uuid> = claimed.iter().map(|m| m.contact_id).collect();
        let (contacts, fields) =
            tokio::join!(self.store.get_contacts(&ids), self.store.list_fields());
        let contacts = contacts
            .map(|records| {
                records
                    .into_iter()
                    .map(|r| (r.contact.id, r.contact))
                    .collect()
            })
            .map_err(|e| format!("storage: {e}"));
        let mut checked = HashMap::new();
        let templates = claimed
            .iter()
            .map(|message| {
                let c = &message.content;
                let key = (c.subject.as_str(), c.html.as_str(), c.text.as_deref());
                let check = || match &fields {
                    Err(e) => Err(Unusable::Storage(format!("storage: {e}"))),
                    Ok(fields) => Template::check(&c.subject, &c.html, c.text.as_deref(), fields)
                        .map(Arc::new)
                        .map_err(|errors| {
                            Unusable::Refused(format!("the template no longer renders: {errors}"))
                        }),
                };
                Arc::clone(checked.entry(key).or_insert_with(|| Arc::new(check())))
            })
            .collect();
        Pass {
            contacts,
            templates,
        }
    }

    /// Records the outcomes of a batch of attempts under our lease, in one transaction.
    async fn record(&self, outcomes: Vec<(Uuid, Delivery)>) -> Result<(), StoreError> {
        let done = self
            .store
            .finish_messages(&self.owner, outcomes, self.clock.now())
            .await?;
        for result in done {
            match result {
                Ok(done) => {
                    tracing::debug!(message = %done.id, status = done.status.as_str(), "delivery attempt recorded");
                }
                // Another dispatcher took the message over after our lease ran out (or it was
                // erased meanwhile); its outcome stands.
                Err(e) => tracing::warn!(error = %e, "an attempt's outcome was not recorded"),
            }
        }
        Ok(())
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
    async fn attempt(&self, message: &Message, pass: &Pass, template: &Checked) -> Delivery {
        let contact = match &pass.contacts {
            Ok(contacts) => match contacts.get(&message.contact_id) {
                Some(contact) => contact,
                None => {
                    return Delivery::Failed {
                        error: "the contact was erased".into(),
                        bounce: false,
                    };
                }
            },
            Err(e) => return self.retry_or_fail(message, e.clone()),
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
        let template = match template {
            Ok(template) => Arc::clone(template),
            Err(Unusable::Refused(error)) => {
                return Delivery::Failed {
                    error: error.clone(),
                    bounce: false,
                };
            }
            Err(Unusable::Storage(error)) => return self.retry_or_fail(message, error.clone()),
        };
        let content = &message.content;
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
                None => match self.build(message, contact, &to, &template, &sender).await {
                    Ok(b) => b,
                    Err(outcome) => {
                        self.release(way.account);
                        return outcome;
                    }
                },
            };
            let delivered = {
                // The semaphore is never closed; were it, the hand-over would go ahead unbounded.
                let _permit = self.sending.acquire().await.ok();
                way.transport
                    .deliver(&message_bytes.envelope, &message_bytes.bytes)
                    .await
            };
            match delivered {
                Ok(()) => {
                    return Delivery::Sent {
                        message_id: message_bytes.message_id,
                        smtp_account_id: way.account,
                    };
                }
                // Nothing of this message reached the relay: the next account may take it now.
                Err(DeliveryError::Unreachable(error)) => {
                    self.release(way.account);
                    if let Some(account) = way.account {
                        tracing::warn!(%account, %error, "sending account unreachable; trying the next");
                        self.routes().down(account, self.clock.now());
                    }
                    unreachable = Some(error);
                    built = Some((sender, message_bytes));
                }
                Err(DeliveryError::Temporary(error)) => {
                    self.release(way.account);
                    return self.retry_or_fail(message, error);
                }
                Err(DeliveryError::Permanent { reply, recipient }) => {
                    self.release(way.account);
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

    /// Gives back the daily place a message took on `account` when it did not go out.
    fn release(&self, account: Option<Uuid>) {
        if let Some(account) = account {
            self.routes().release(account);
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

    /// Renders, composes and signs the message for one sender, on the blocking pool: this is
    /// CPU work (an RSA signature alone takes about a millisecond), and the attempts of a pass
    /// share one task, which would otherwise build one message at a time on one core.
    async fn build(
        &self,
        message: &Message,
        contact: &Contact,
        to: &Mailbox,
        template: &Arc<Template>,
        sender: &Sender,
    ) -> Result<Built, Delivery> {
        let job = Job {
            id: message.id,
            class: message.class,
            contact: contact.clone(),
            to: to.clone(),
            template: Arc::clone(template),
            sender: sender.clone(),
            secret: Arc::clone(&self.secret),
            base: self.sender.public_url.trim_end_matches('/').to_owned(),
            tracking: self.sender.tracking && sender.tracking,
            date: self.clock.now(),
            key: self.routes().key_for(sender.email.domain()),
        };
        match tokio::task::spawn_blocking(move || job.build()).await {
            Ok(Ok(built)) => Ok(built),
            Ok(Err(Unbuilt::Failed(error))) => Err(Delivery::Failed {
                error,
                bounce: false,
            }),
            Ok(Err(Unbuilt::Signing(error))) => Err(self.retry_or_fail(message, error)),
            Err(e) => Err(self.retry_or_fail(message, format!("building the message failed: {e}"))),
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

/// What the attempts of one pass share.
struct Pass {
    /// The contacts of the batch by id, or why they could not be read.
    contacts: Result<HashMap<Uuid, Contact>, String>,
    /// Each claimed message's checked template, in claim order; messages with the same content
    /// share one.
    templates: Vec<Arc<Checked>>,
}

type Checked = Result<Arc<Template>, Unusable>;

/// Why a message's template cannot be used in this pass.
enum Unusable {
    /// The custom fields could not be read: worth another attempt.
    Storage(String),
    /// The template no longer passes its check (a field it uses was deleted): final.
    Refused(String),
}

/// Everything building one message needs, owned, so that it can move to the blocking pool.
struct Job {
    id: Uuid,
    class: MessageClass,
    contact: Contact,
    /// The recipient: the contact, or the owner a form notifies about it.
    to: Mailbox,
    template: Arc<Template>,
    sender: Sender,
    secret: Arc<[u8]>,
    /// The public URL without a trailing slash.
    base: String,
    /// Whether links and the open pixel are tracked for this sender (never in transactional
    /// mail).
    tracking: bool,
    date: Timestamp,
    key: Option<Arc<DkimKey>>,
}

/// Why a message could not be built.
enum Unbuilt {
    /// It never will be (the template fails for this contact, the sender domain is unusable).
    Failed(String),
    /// Signing failed; a later attempt may succeed.
    Signing(String),
}

impl Job {
    fn build(self) -> Result<Built, Unbuilt> {
        let Job {
            id,
            class,
            contact,
            to,
            template,
            sender,
            secret,
            base,
            tracking,
            date,
            key,
        } = self;
        let token = sign(&secret, Purpose::Unsubscribe, id);
        let unsubscribe_url = format!("{base}/unsubscribe/{token}");
        let preferences_url = format!("{base}/preferences/{token}");
        let confirm_url = format!(
            "{base}/confirm/{}",
            sign(&secret, Purpose::Confirm, contact.id)
        );
        let rendered = template
            .render(&RenderContext {
                contact: &contact,
                sender_name: sender.name.as_deref().unwrap_or_default(),
                sender_email: sender.email.as_str(),
                unsubscribe_url: &unsubscribe_url,
                preferences_url: &preferences_url,
                confirm_url: &confirm_url,
            })
            .map_err(|e| Unbuilt::Failed(format!("rendering failed: {e}")))?;
        let html = if tracking && class != MessageClass::Transactional {
            crate::tracking::track(&rendered.html, &base, &secret, id)
        } else {
            rendered.html
        };
        let domain = sender.email.domain().to_owned();
        let (Ok(return_path), Ok(unsubscribe_mailto)) = (
            Email::parse(&format!("bounces+{}@{domain}", id.simple())),
            Email::parse(&format!("unsubscribe+{token}@{domain}")),
        ) else {
            return Err(Unbuilt::Failed(format!(
                "the sender domain {domain} cannot carry a return path"
            )));
        };
        let outgoing = Outgoing {
            id,
            from: Mailbox {
                name: sender.name,
                email: sender.email,
            },
            to: to.clone(),
            return_path,
            subject: rendered.subject,
            html,
            text: rendered.text,
            class,
            date,
            list_unsubscribe: (class != MessageClass::Transactional).then(|| ListUnsubscribe {
                mailto: unsubscribe_mailto,
                url: unsubscribe_url.clone(),
            }),
        };
        let mut bytes = compose(&outgoing)
            .map_err(|e| Unbuilt::Failed(format!("the message could not be built: {e}")))?;
        if let Some(key) = key {
            bytes = key
                .sign(&bytes)
                .map_err(|e| Unbuilt::Signing(format!("DKIM signing failed: {e}")))?;
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
}
