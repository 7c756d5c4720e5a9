//! The send ledger under concurrency: several dispatchers (each a store with a pool of its own,
//! as separate processes would have) claiming from one database, racing queues with one
//! idempotency key, and finishes racing erasures. Skipped, with a line on stderr, without
//! `NUDGE_TEST_POSTGRES_URL`.

#![allow(clippy::unwrap_used)] // Test code: a failed step should stop the test loudly.

mod common;

use common::{URL_VAR, fresh_schema};
use jiff::{SignedDuration, Timestamp};
use nudge_core::{ChangeSource, ContactInput, MessageClass, MessageStatus, Status, TimelineKind};
use nudge_store::{
    ChangeContext, Delivery, MessageContent, MessageFilter, NewMessage, PageRequest, Store,
    StoreError,
};
use nudge_store_postgres::PgStore;
use std::collections::HashSet;
use std::sync::Arc;
use tokio::sync::Barrier;
use uuid::Uuid;

const MESSAGES: usize = 200;
const CONTACTS: usize = 10;
const CLAIMERS_PER_STORE: usize = 4;
const QUEUERS: usize = 16;
const ERASED: usize = 24;
const LEASE: SignedDuration = SignedDuration::from_secs(3600);

/// Two stores over the same fresh tables, like two dispatcher processes.
async fn two_stores_or_skip() -> Option<(PgStore, PgStore)> {
    let Some(options) = fresh_schema().await else {
        eprintln!("{URL_VAR} is unset: skipped a PostgreSQL send-ledger concurrency test");
        return None;
    };
    let a = PgStore::connect_with(options.clone()).await.unwrap();
    let b = PgStore::connect_with(options).await.unwrap();
    Some((a, b))
}

fn at(second: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + second).unwrap()
}

async fn contact(store: &PgStore, email: &str) -> Uuid {
    let input = ContactInput {
        email: Some(email.into()),
        ..ContactInput::default()
    };
    let ctx = ChangeContext::new(ChangeSource::Admin, at(0));
    store.create_contact(input, ctx).await.unwrap().contact.id
}

fn outgoing(contact_id: Uuid, key: &str) -> NewMessage {
    NewMessage {
        contact_id,
        class: MessageClass::Transactional,
        content: MessageContent {
            subject: format!("Bestelling {key}"),
            html: "<p>Dank u</p>".into(),
            text: None,
            from_email: None,
            from_name: None,
        },
        idempotency_key: key.into(),
        due_at: at(0),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_dispatchers_never_claim_one_message_twice() {
    let Some((a, b)) = two_stores_or_skip().await else {
        return;
    };
    let mut contacts = Vec::new();
    for n in 0..CONTACTS {
        contacts.push(contact(&a, &format!("d{n}@example.com")).await);
    }
    for n in 0..MESSAGES {
        let new = outgoing(contacts[n % CONTACTS], &format!("claim-{n}"));
        a.queue_message(new, at(0)).await.unwrap();
    }
    // Every claimer starts at once and claims small batches until nothing is left, so that
    // claims overlap all the way through the backlog.
    let start = Arc::new(Barrier::new(2 * CLAIMERS_PER_STORE));
    let tasks: Vec<_> = (0..2 * CLAIMERS_PER_STORE)
        .map(|n| {
            let store = if n % 2 == 0 { a.clone() } else { b.clone() };
            let start = start.clone();
            tokio::spawn(async move {
                let owner = format!("dispatcher-{n}");
                start.wait().await;
                let mut claimed = Vec::new();
                loop {
                    let batch = store.claim_messages(at(1), 7, &owner, LEASE).await.unwrap();
                    if batch.is_empty() {
                        return claimed;
                    }
                    claimed.extend(batch.into_iter().map(|m| (m.id, m.attempts)));
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let distinct: HashSet<Uuid> = all.iter().map(|(id, _)| *id).collect();
    assert_eq!(all.len(), MESSAGES, "each message claimed exactly once");
    assert_eq!(distinct.len(), MESSAGES);
    assert!(all.iter().all(|(_, attempts)| *attempts == 1));
    let sending = b
        .list_messages(
            &MessageFilter {
                status: Some(MessageStatus::Sending),
                ..MessageFilter::default()
            },
            PageRequest::first(1000),
        )
        .await
        .unwrap();
    assert_eq!(sending.items.len(), MESSAGES);
    assert!(
        a.claim_messages(at(2), 1000, "late", LEASE)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(a.next_due().await.unwrap(), Some(at(1) + LEASE));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_queues_with_one_key_create_one_message() {
    let Some((a, b)) = two_stores_or_skip().await else {
        return;
    };
    let id = contact(&a, "once@example.com").await;
    // All start at once, so most get past the first lookup of the key and meet at the insert.
    let start = Arc::new(Barrier::new(QUEUERS));
    let tasks: Vec<_> = (0..QUEUERS)
        .map(|n| {
            let store = if n % 2 == 0 { a.clone() } else { b.clone() };
            let start = start.clone();
            tokio::spawn(async move {
                start.wait().await;
                store.queue_message(outgoing(id, "order-1"), at(1)).await
            })
        })
        .collect();
    let mut created = 0;
    let mut ids = HashSet::new();
    for t in tasks {
        let (message, new) = t.await.unwrap().unwrap();
        created += usize::from(new);
        ids.insert(message.id);
    }
    assert_eq!(created, 1, "exactly one queue creates the message");
    assert_eq!(ids.len(), 1, "every queue returns that message");
    let listed = a
        .list_messages(&MessageFilter::default(), PageRequest::first(100))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
    let timeline = a.timeline(id, PageRequest::first(100)).await.unwrap();
    let queued = timeline
        .items
        .iter()
        .filter(|e| e.kind == TimelineKind::EmailQueued)
        .count();
    assert_eq!(queued, 1, "one timeline entry for the one message");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn finishing_while_the_contact_is_erased_deadlocks_nothing() {
    let Some((a, b)) = two_stores_or_skip().await else {
        return;
    };
    let mut messages = Vec::new();
    for n in 0..ERASED {
        let id = contact(&a, &format!("gone{n}@example.com")).await;
        let (m, _) = a
            .queue_message(outgoing(id, &format!("erase-{n}")), at(0))
            .await
            .unwrap();
        messages.push((id, m.id));
    }
    let claimed = a.claim_messages(at(1), 1000, "d", LEASE).await.unwrap();
    assert_eq!(claimed.len(), ERASED);
    // An erasure locks the contact and then, by cascade, its messages; a finish that locked the
    // message first and the contact second (for its timeline entry or the bounce) would
    // deadlock against it, and Postgres would abort one of the two.
    let tasks: Vec<_> = messages
        .iter()
        .enumerate()
        .map(|(n, (contact_id, message_id))| {
            let (eraser, finisher) = (a.clone(), b.clone());
            let (contact_id, message_id) = (*contact_id, *message_id);
            let start = Arc::new(Barrier::new(2));
            let erase_start = start.clone();
            let erase = tokio::spawn(async move {
                erase_start.wait().await;
                eraser.erase_contact(contact_id, at(3)).await
            });
            let finish = tokio::spawn(async move {
                let delivery = if n % 2 == 0 {
                    Delivery::Failed {
                        error: "550 5.1.1 no such user".into(),
                        bounce: true,
                    }
                } else {
                    Delivery::Sent {
                        message_id: format!("<{n}@example.com>"),
                        smtp_account_id: None,
                    }
                };
                start.wait().await;
                finisher
                    .finish_message(message_id, "d", delivery, at(2))
                    .await
            });
            (erase, finish)
        })
        .collect();
    for (n, (erase, finish)) in tasks.into_iter().enumerate() {
        let suppression = erase.await.unwrap().unwrap();
        match finish.await.unwrap() {
            // The finish went first: with a bounce, the erasure kept the bounced status.
            Ok(m) => {
                assert!(m.status.is_final());
                if n % 2 == 0 {
                    assert_eq!(suppression.status, Status::Bounced);
                }
            }
            // The erasure went first and took the message with it.
            Err(StoreError::NotFound) => {}
            Err(other) => panic!("finish {n}: {other:?}"),
        }
    }
    let left = a
        .list_messages(&MessageFilter::default(), PageRequest::first(1000))
        .await
        .unwrap();
    assert!(left.items.is_empty());
}
