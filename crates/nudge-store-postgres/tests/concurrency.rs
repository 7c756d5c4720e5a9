//! What only a server with concurrent writers can get wrong: lost updates, and races reported
//! as database errors instead of the conflicts the checks would have given. Skipped, with a line
//! on stderr, without `NUDGE_TEST_POSTGRES_URL`.

#![allow(clippy::unwrap_used)] // Test code: a failed step should stop the test loudly.

mod common;

use common::{URL_VAR, fresh_store};
use jiff::Timestamp;
use nudge_core::{ChangeSource, ContactInput, ContactPatch, FieldDef};
use nudge_store::{
    ChangeContext, ContactFilter, ExistingPolicy, ImportOptions, ImportRow, Memberships,
    RowOutcome, Store, StoreError,
};
use nudge_store_postgres::PgStore;
use serde_json::json;
use std::collections::BTreeMap;

const WRITERS: usize = 16;
const IMPORTED: u64 = 500;

async fn store_or_skip() -> Option<PgStore> {
    let store = fresh_store().await;
    if store.is_none() {
        eprintln!("{URL_VAR} is unset: skipped a PostgreSQL concurrency test");
    }
    store
}

fn ctx() -> ChangeContext {
    ChangeContext::new(ChangeSource::Admin, Timestamp::now())
}

fn input(email: &str) -> ContactInput {
    ContactInput {
        email: Some(email.into()),
        ..ContactInput::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_creates_of_one_address_give_one_contact_and_conflicts() {
    let Some(store) = store_or_skip().await else {
        return;
    };
    let tasks: Vec<_> = (0..WRITERS)
        .map(|n| {
            let store = store.clone();
            let email = if n % 2 == 0 {
                "race@example.com"
            } else {
                "RACE@example.com"
            };
            tokio::spawn(async move { store.create_contact(input(email), ctx()).await })
        })
        .collect();
    let mut created = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => created += 1,
            Err(StoreError::Conflict {
                code: "duplicate_email",
                ..
            }) => {}
            Err(other) => panic!("expected a duplicate_email conflict, got {other:?}"),
        }
    }
    assert_eq!(created, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_updates_of_one_contact_lose_nothing() {
    let Some(store) = store_or_skip().await else {
        return;
    };
    for n in 0..WRITERS {
        let def = FieldDef::new(&format!("f{n}"), None, "number", vec![]).unwrap();
        store.create_field(def).await.unwrap();
    }
    let id = store
        .create_contact(input("busy@example.com"), ctx())
        .await
        .unwrap()
        .contact
        .id;
    // Each writer rewrites the whole fields object from what it read; without the row lock
    // most of them would overwrite the others' values.
    let tasks: Vec<_> = (0..WRITERS)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move {
                let patch = ContactPatch {
                    fields: BTreeMap::from([(format!("f{n}"), json!(n))]),
                    ..ContactPatch::default()
                };
                let tags = Memberships {
                    groups: None,
                    tags: None,
                };
                store.update_contact(id, patch, tags, ctx()).await?;
                store.set_tag(id, &format!("t{n}"), true, ctx()).await
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let got = store.get_contact(id).await.unwrap();
    assert_eq!(
        got.contact.fields.len(),
        WRITERS,
        "{:?}",
        got.contact.fields
    );
    assert_eq!(got.tags.len(), WRITERS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_imports_of_the_same_new_addresses_all_succeed() {
    let Some(store) = store_or_skip().await else {
        return;
    };
    let rows: Vec<ImportRow> = (0..IMPORTED)
        .map(|n| ImportRow {
            line: n + 2,
            input: input(&format!("i{n}@example.com")),
        })
        .collect();
    let options = ImportOptions {
        existing: ExistingPolicy::Update,
        group: None,
        dry_run: false,
    };
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (store, rows, options) = (store.clone(), rows.clone(), options.clone());
            tokio::spawn(async move { store.import_batch(rows, &options, Timestamp::now()).await })
        })
        .collect();
    let mut created = 0;
    for t in tasks {
        let outcomes = t.await.unwrap().unwrap();
        assert!(
            outcomes
                .iter()
                .all(|o| matches!(o, RowOutcome::Created | RowOutcome::Updated)),
            "{outcomes:?}"
        );
        created += outcomes
            .iter()
            .filter(|o| **o == RowOutcome::Created)
            .count();
    }
    assert_eq!(created, IMPORTED as usize);
    let all = store
        .count_contacts(&ContactFilter::default())
        .await
        .unwrap();
    assert_eq!(all, IMPORTED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deleting_a_tag_while_it_is_being_added_fails_nothing() {
    let Some(store) = store_or_skip().await else {
        return;
    };
    let mut ids = Vec::new();
    for n in 0..WRITERS {
        let c = store
            .create_contact(input(&format!("t{n}@example.com")), ctx())
            .await
            .unwrap();
        ids.push(c.contact.id);
    }
    store.create_tag("hot").await.unwrap();
    let taggers: Vec<_> = ids
        .iter()
        .map(|id| {
            let (store, id) = (store.clone(), *id);
            tokio::spawn(async move { store.set_tag(id, "hot", true, ctx()).await.map(|_| ()) })
        })
        .collect();
    let deleter = {
        let store = store.clone();
        tokio::spawn(async move { store.delete_tag("hot", Timestamp::now()).await })
    };
    for t in taggers {
        t.await.unwrap().unwrap();
    }
    match deleter.await.unwrap() {
        Ok(()) | Err(StoreError::NotFound) => {}
        Err(other) => panic!("{other:?}"),
    }
    // Whoever was tagged after the deletion has the tag, recreated, and its count says so.
    let tagged = store
        .count_contacts(&ContactFilter {
            tag: Some("hot".into()),
            ..ContactFilter::default()
        })
        .await
        .unwrap();
    let listed = store.list_tags().await.unwrap();
    let counted = listed
        .iter()
        .find(|t| t.name == "hot")
        .map_or(0, |t| t.contacts);
    assert_eq!(tagged, counted);
}
