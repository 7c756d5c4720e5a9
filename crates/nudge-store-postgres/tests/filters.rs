//! Every combination of contact filters, counted and listed, against an answer worked out by
//! hand. The count picks its query by the filters it has (from the tag's rows or from the
//! contacts, with or without the contact row) and plans it with the values it looked up, so
//! each shape is checked here, before and after the statistics are refreshed. Skipped, with a
//! line on stderr, without `NUDGE_TEST_POSTGRES_URL`.

#![allow(clippy::unwrap_used)] // Test code: a failed step should stop the test loudly.

mod common;

use common::{URL_VAR, fresh_store};
use jiff::Timestamp;
use nudge_core::{ChangeSource, ContactInput, Status};
use nudge_store::{ChangeContext, ContactFilter, PageRequest, Store};
use uuid::Uuid;

const CONTACTS: usize = 60;

/// One generated contact and what the filters may match on.
struct Row {
    email: String,
    first_name: String,
    status: Status,
    groups: Vec<usize>,
    tags: Vec<&'static str>,
}

fn rows() -> Vec<Row> {
    (0..CONTACTS)
        .map(|n| Row {
            email: format!("c{n:02}@example.com"),
            first_name: if n % 3 == 0 { "Anna" } else { "Bert" }.to_owned(),
            status: if n % 4 == 0 {
                Status::Unsubscribed
            } else {
                Status::Subscribed
            },
            // Groups 0 > 1 > 2 form a chain; 3 stands apart. Some contacts are in two groups of
            // one subtree, which a count must not count twice.
            groups: match n % 6 {
                0 => vec![0],
                1 => vec![1],
                2 => vec![2, 0],
                3 => vec![3],
                4 => vec![1, 3],
                _ => vec![],
            },
            tags: match n % 5 {
                0 => vec!["vip", "news"],
                1 | 2 => vec!["news"],
                3 => vec!["vip"],
                _ => vec![],
            },
        })
        .collect()
}

/// The emails a filter should find, sorted.
fn expected(rows: &[Row], filter: &Filter) -> Vec<String> {
    let mut out: Vec<String> = rows
        .iter()
        .filter(|r| filter.status.is_none_or(|s| r.status == s))
        .filter(|r| {
            filter
                .group
                .is_none_or(|g| r.groups.iter().any(|i| SUBTREES[g].contains(i)))
        })
        .filter(|r| filter.tag.is_none_or(|t| r.tags.contains(&t)))
        .filter(|r| {
            filter.q.is_none_or(|q| {
                r.email.starts_with(q) || r.first_name.to_lowercase().starts_with(q)
            })
        })
        .map(|r| r.email.clone())
        .collect();
    out.sort();
    out
}

/// The groups under each group of `rows`, by index, itself included; index 4 is a group that
/// does not exist.
const SUBTREES: [&[usize]; 5] = [&[0, 1, 2], &[1, 2], &[2], &[3], &[]];

#[derive(Debug, Clone, Copy)]
struct Filter {
    q: Option<&'static str>,
    status: Option<Status>,
    group: Option<usize>,
    tag: Option<&'static str>,
}

fn ctx() -> ChangeContext {
    ChangeContext::new(ChangeSource::Admin, Timestamp::now())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_filter_combination_counts_what_it_lists() {
    let Some(store) = fresh_store().await else {
        eprintln!("{URL_VAR} is unset: skipped the PostgreSQL filter test");
        return;
    };
    let top = store.create_group("Top", None, false).await.unwrap();
    let mid = store
        .create_group("Mid", Some(top.id), false)
        .await
        .unwrap();
    let low = store
        .create_group("Low", Some(mid.id), false)
        .await
        .unwrap();
    let apart = store.create_group("Apart", None, false).await.unwrap();
    let ids = [top.id, mid.id, low.id, apart.id, Uuid::now_v7()];
    let rows = rows();
    for r in &rows {
        let input = ContactInput {
            email: Some(r.email.clone()),
            first_name: Some(r.first_name.clone()),
            status: Some(r.status.as_str().into()),
            groups: r.groups.iter().map(|&i| ids[i]).collect(),
            tags: r.tags.iter().map(|&t| t.to_owned()).collect(),
            ..ContactInput::default()
        };
        store.create_contact(input, ctx()).await.unwrap();
    }
    // A tag nobody carries any more ("old"), next to one that never existed ("nope").
    let gone = ContactInput {
        email: Some("gone@example.org".into()),
        ..ContactInput::default()
    };
    let gone = store.create_contact(gone, ctx()).await.unwrap().contact.id;
    store.set_tag(gone, "old", true, ctx()).await.unwrap();
    store.erase_contact(gone, Timestamp::now()).await.unwrap();

    let mut filters = Vec::new();
    for q in [None, Some("c1"), Some("anna")] {
        for status in [None, Some(Status::Subscribed), Some(Status::Unsubscribed)] {
            for group in [None, Some(0), Some(1), Some(3), Some(4)] {
                for tag in [None, Some("vip"), Some("news"), Some("old"), Some("nope")] {
                    filters.push(Filter {
                        q,
                        status,
                        group,
                        tag,
                    });
                }
            }
        }
    }
    for round in ["before refresh_statistics", "after it"] {
        for f in &filters {
            let filter = ContactFilter {
                q: f.q.map(str::to_owned),
                status: f.status,
                group: f.group.map(|i| ids[i]),
                tag: f.tag.map(str::to_owned),
            };
            let want = expected(&rows, f);
            let n = store.count_contacts(&filter).await.unwrap();
            assert_eq!(n, want.len() as u64, "count, {round}: {f:?}");
            let mut got = Vec::new();
            let mut page = PageRequest::first(7);
            loop {
                let found = store.list_contacts(&filter, page).await.unwrap();
                got.extend(found.items.iter().map(|r| r.contact.email.to_string()));
                match found.next_cursor {
                    Some(cursor) => page = PageRequest::after(7, cursor),
                    None => break,
                }
            }
            got.sort();
            assert_eq!(got, want, "list, {round}: {f:?}");
        }
        store.refresh_statistics().await.unwrap();
    }
}
