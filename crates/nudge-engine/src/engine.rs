//! The sequence engine: claims due trigger jobs and due enrolments under a lease and has the
//! store run them (the store decides each with the pure core and writes the outcome with the
//! message it queues, in one transaction), then wakes the dispatcher.
//!
//! Like the dispatcher, it is a loop of passes ([`Engine::run_once`]) that sleeps until the
//! next due time or a wake-up; tests and the test clock call `run_once` after moving the clock.

use crate::Clock;
use jiff::{SignedDuration, Timestamp};
use nudge_store::{Store, StoreError};
use std::sync::Arc;
use tokio::sync::Notify;

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassStats {
    pub jobs: u64,
    pub steps: u64,
    /// Messages the steps queued (skipped ones included).
    pub messages: u64,
}

pub struct Engine {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    owner: String,
    lease: SignedDuration,
    batch: u32,
    wake: Arc<Notify>,
    /// Woken when a pass queued messages: the dispatcher's waker.
    dispatcher: Option<Arc<Notify>>,
}

impl Engine {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            clock,
            owner: format!("engine-{}", uuid::Uuid::now_v7().simple()),
            lease: SignedDuration::from_mins(2),
            batch: 500,
            wake: Arc::new(Notify::new()),
            dispatcher: None,
        }
    }

    /// Wakes `dispatcher` whenever a pass queued messages.
    pub fn with_dispatcher(mut self, dispatcher: Arc<Notify>) -> Self {
        self.dispatcher = Some(dispatcher);
        self
    }

    /// How many jobs or enrolments one claim takes (at least 1).
    pub fn with_batch(mut self, batch: u32) -> Self {
        self.batch = batch.max(1);
        self
    }

    /// Something to call `notify_one` on when a change may have made work due now (a form
    /// submission, a manual start), to end the sleep early.
    pub fn waker(&self) -> Arc<Notify> {
        Arc::clone(&self.wake)
    }

    /// One pass: every trigger job, then every enrolment due now, batch by batch, until none
    /// is left. Jobs go first because the enrolments they create may be due at once.
    pub async fn run_once(&self) -> Result<PassStats, StoreError> {
        let mut stats = PassStats::default();
        loop {
            let now = self.clock.now();
            let jobs = self
                .store
                .claim_jobs(now, self.batch, &self.owner, self.lease)
                .await?;
            if jobs.is_empty() {
                break;
            }
            stats.jobs += self.store.run_jobs(&jobs, &self.owner, now).await?;
        }
        loop {
            let now = self.clock.now();
            let due = self
                .store
                .claim_due_enrolments(now, self.batch, &self.owner, self.lease)
                .await?;
            if due.is_empty() {
                break;
            }
            let outcomes = self.store.run_steps(&due, &self.owner, now).await?;
            stats.steps += outcomes.len() as u64;
            let queued = outcomes.iter().filter(|o| o.message.is_some()).count() as u64;
            stats.messages += queued;
            if queued > 0
                && let Some(dispatcher) = &self.dispatcher
            {
                dispatcher.notify_one();
            }
        }
        Ok(stats)
    }

    /// The earliest time the engine has work, if any.
    pub async fn next_due(&self) -> Result<Option<Timestamp>, StoreError> {
        self.store.next_engine_due().await
    }

    /// Runs passes until `stop` resolves, sleeping between them until the next due time (at
    /// most a second, so that work written by other processes is seen) or a wake-up.
    pub async fn run(&self, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            if let Err(e) = self.run_once().await {
                tracing::error!(error = %e, "engine pass failed");
            }
            let pause = match self.next_due().await {
                Ok(Some(due)) => due
                    .duration_since(self.clock.now())
                    .clamp(SignedDuration::ZERO, SignedDuration::from_secs(1)),
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
}
