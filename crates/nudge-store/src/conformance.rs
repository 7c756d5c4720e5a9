//! The stories every backend must pass, run by each store crate's tests through
//! [`conformance_suite!`](crate::conformance_suite). Each story gets a fresh, empty store.

#![allow(clippy::unwrap_used)] // Test code: a failed step should stop the story loudly.

use crate::Engagement;
use crate::{
    ChangeContext, ContactFilter, Delivery, ExistingPolicy, GroupPatch, ImportOptions, ImportRow,
    Memberships, MessageContent, MessageFilter, NewApiKey, NewMessage, NewTemplate, NewUser,
    PageRequest, RowOutcome, Store, StoreError, TemplatePatch,
};
use jiff::SignedDuration;
use jiff::Timestamp;
use nudge_core::{
    ChangeSource, ContactInput, ContactPatch, Email, FieldDef, Patch, Role, Status, TimelineKind,
};
use nudge_core::{MessageClass, MessageStatus, SkipRule};
use serde_json::json;
use std::collections::BTreeMap;
use uuid::Uuid;

mod admin;
mod sequences;
pub use admin::*;
pub use sequences::*;

/// Generates one `#[tokio::test]` per story; `$make` is an expression that yields a fresh store.
#[macro_export]
macro_rules! conformance_suite {
    ($make:expr) => {
        $crate::conformance_suite!(@tests $make;
            contacts_round_trip_with_fields_groups_and_tags,
            duplicate_email_is_a_conflict_whatever_the_case,
            invalid_input_writes_nothing,
            update_writes_old_and_new_values_to_the_timeline,
            leaving_unsubscribed_needs_a_reason,
            group_tree_refuses_cycles_and_selects_descendants,
            filters_combine_and_count_matches_list,
            cursor_pages_cover_everything_newest_first,
            erase_keeps_only_a_suppression_that_flags_a_return,
            import_creates_updates_skips_and_rejects_per_row,
            dry_run_import_writes_nothing,
            groups_in_use_cannot_be_deleted,
            deleting_a_field_or_tag_removes_it_from_contacts,
            api_keys_are_found_by_hash_and_users_are_unique,
            a_dkim_key_per_domain_is_stored_and_replaced,
            smtp_accounts_are_created_changed_listed_and_deleted,
            sent_messages_are_counted_per_account_since_a_time,
            a_queued_message_is_claimed_once_and_sent_once,
            an_idempotency_key_queues_one_message,
            the_send_gate_skips_at_queue_time_with_its_rule,
            a_retry_waits_for_its_time_and_a_dead_lease_is_reclaimed,
            a_hard_bounce_makes_the_contact_bounced,
            a_batch_of_outcomes_is_recorded_together_each_under_its_lease,
            contacts_are_read_by_the_batch_leaving_out_unknown_ids,
            messages_are_listed_by_contact_status_and_class,
            opens_are_recorded_once_and_every_click_is_recorded,
            templates_are_created_changed_paged_newest_first_and_deleted,
            a_template_name_is_trimmed_and_one_to_200_characters,
            sequences_are_created_listed_updated_and_deleted,
            starting_a_sequence_enrols_a_contact_or_a_group_tree_once,
            the_engine_runs_a_sequence_over_time,
            a_replayed_step_never_queues_twice,
            a_pending_contact_waits_for_confirmation,
            a_contact_unsubscribed_between_steps_is_skipped_and_cancelled,
            joining_a_start_group_enrols_through_a_job,
            a_condition_enrols_suspends_and_resumes_within_thirty_days,
            enrolment_actions_pause_resume_reactivate_and_postpone,
            enrolments_are_filtered_and_ordered_by_message_times,
            forms_are_created_listed_changed_and_deleted,
            a_form_submission_creates_or_updates_a_contact_and_starts_its_sequence,
            erasing_a_contact_removes_its_enrolments_and_jobs,
            a_group_a_sequence_or_form_uses_cannot_be_deleted,
            users_are_found_for_sign_in_by_address_and_listed,
            failed_sign_ins_lock_a_user_out_until_cleared,
            a_users_language_is_stored_and_cleared,
            sessions_are_created_found_with_their_user_touched_and_deleted,
            expired_sessions_are_purged_by_idle_time_or_age
        );
    };
    (@tests $make:expr; $($name:ident),* ) => {
        $(
            #[tokio::test]
            async fn $name() {
                let store = $make.await;
                $crate::conformance::$name(&store).await;
            }
        )*
    };
}

fn ctx(second: i64) -> ChangeContext {
    ChangeContext::new(
        ChangeSource::Admin,
        Timestamp::from_second(1_800_000_000 + second).unwrap(),
    )
}

fn input(email: &str) -> ContactInput {
    ContactInput {
        email: Some(email.into()),
        ..ContactInput::default()
    }
}

async fn field(store: &dyn Store, key: &str, kind: &str, options: &[&str]) {
    let def = FieldDef::new(
        key,
        None,
        kind,
        options.iter().map(|s| s.to_string()).collect(),
    )
    .unwrap();
    store.create_field(def).await.unwrap();
}

fn invalid_field(err: StoreError) -> String {
    match err {
        StoreError::Invalid(fields) => fields
            .iter()
            .map(|(k, _)| k.to_owned())
            .collect::<Vec<_>>()
            .join(","),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

async fn kinds(store: &dyn Store, id: Uuid) -> Vec<TimelineKind> {
    let page = store.timeline(id, PageRequest::first(100)).await.unwrap();
    page.items.iter().rev().map(|e| e.kind).collect()
}

pub async fn contacts_round_trip_with_fields_groups_and_tags(store: &dyn Store) {
    field(store, "score", "number", &[]).await;
    field(store, "tier", "choice", &["gold", "silver"]).await;
    let group = store.create_group("Klanten", None, false).await.unwrap();
    let mut i = input(" Anna@Example.NL ");
    i.first_name = Some("Anna".into());
    i.language = Some("nl".into());
    i.time_zone = Some("Europe/Amsterdam".into());
    i.fields = BTreeMap::from([("score".into(), json!(7)), ("tier".into(), json!("Gold"))]);
    i.groups = vec![group.id];
    i.tags = vec!["vip".into()];
    let created = store.create_contact(i, ctx(0)).await.unwrap();
    assert_eq!(created.contact.email.as_str(), "Anna@example.nl");
    assert_eq!(created.contact.status, Status::Subscribed);
    assert_eq!(created.groups, vec![group.id]);
    assert_eq!(created.tags, vec!["vip".to_owned()]);

    let got = store.get_contact(created.contact.id).await.unwrap();
    assert_eq!(got, created);
    assert_eq!(got.contact.fields.get("tier"), Some(&json!("gold")));
    assert_eq!(got.contact.created_at, ctx(0).at);
    let by_email = store
        .find_contact_by_email("anna@EXAMPLE.nl")
        .await
        .unwrap();
    assert_eq!(by_email.map(|r| r.contact.id), Some(created.contact.id));
    assert_eq!(
        kinds(store, created.contact.id).await,
        [
            TimelineKind::ContactCreated,
            TimelineKind::GroupJoined,
            TimelineKind::TagAdded
        ]
    );
    assert!(matches!(
        store.get_contact(Uuid::now_v7()).await,
        Err(StoreError::NotFound)
    ));
}

pub async fn duplicate_email_is_a_conflict_whatever_the_case(store: &dyn Store) {
    let first = store
        .create_contact(input("jan@example.com"), ctx(0))
        .await
        .unwrap();
    let err = store
        .create_contact(input("JAN@example.COM"), ctx(1))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Conflict {
                code: "duplicate_email",
                ..
            }
        ),
        "{err:?}"
    );

    let other = store
        .create_contact(input("piet@example.com"), ctx(2))
        .await
        .unwrap();
    let patch = ContactPatch {
        email: Some("Jan@Example.com".into()),
        ..ContactPatch::default()
    };
    let err = store
        .update_contact(other.contact.id, patch, Memberships::default(), ctx(3))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Conflict {
                code: "duplicate_email",
                ..
            }
        ),
        "{err:?}"
    );
    // Changing only the case of one's own address is no conflict.
    let patch = ContactPatch {
        email: Some("Jan@example.com".into()),
        ..ContactPatch::default()
    };
    let renamed = store
        .update_contact(first.contact.id, patch, Memberships::default(), ctx(4))
        .await
        .unwrap();
    assert_eq!(renamed.contact.email.as_str(), "Jan@example.com");
}

pub async fn invalid_input_writes_nothing(store: &dyn Store) {
    field(store, "score", "number", &[]).await;
    let mut i = input("a@example.com");
    i.fields.insert("score".into(), json!("high"));
    let err = store.create_contact(i, ctx(0)).await.unwrap_err();
    assert_eq!(invalid_field(err), "fields.score");

    let mut i = input("a@example.com");
    i.groups = vec![Uuid::now_v7()];
    i.tags = vec!["fine".into()];
    assert_eq!(
        invalid_field(store.create_contact(i, ctx(0)).await.unwrap_err()),
        "groups[0]"
    );
    assert_eq!(
        store
            .count_contacts(&ContactFilter::default())
            .await
            .unwrap(),
        0
    );
    assert!(
        store.list_tags().await.unwrap().is_empty(),
        "no tag half-created"
    );

    let c = store
        .create_contact(input("b@example.com"), ctx(1))
        .await
        .unwrap();
    let patch = ContactPatch {
        first_name: Patch::Set("Bea".into()),
        fields: BTreeMap::from([("score".into(), json!([1]))]),
        ..ContactPatch::default()
    };
    let err = store
        .update_contact(c.contact.id, patch, Memberships::default(), ctx(2))
        .await
        .unwrap_err();
    assert_eq!(invalid_field(err), "fields.score");
    assert_eq!(store.get_contact(c.contact.id).await.unwrap(), c);
    assert_eq!(
        kinds(store, c.contact.id).await,
        [TimelineKind::ContactCreated]
    );
}

pub async fn update_writes_old_and_new_values_to_the_timeline(store: &dyn Store) {
    field(store, "city", "text", &[]).await;
    let c = store
        .create_contact(input("c@example.com"), ctx(0))
        .await
        .unwrap();
    let patch = ContactPatch {
        first_name: Patch::Set("Carla".into()),
        fields: BTreeMap::from([("city".into(), json!("Utrecht"))]),
        ..ContactPatch::default()
    };
    let tags = Memberships {
        groups: None,
        tags: Some(vec!["a".into(), "b".into()]),
    };
    let updated = store
        .update_contact(c.contact.id, patch, tags, ctx(5))
        .await
        .unwrap();
    assert_eq!(updated.contact.first_name.as_deref(), Some("Carla"));
    assert_eq!(updated.contact.updated_at, ctx(5).at);
    assert_eq!(updated.tags, ["a", "b"]);
    let page = store
        .timeline(c.contact.id, PageRequest::first(10))
        .await
        .unwrap();
    let summaries: Vec<_> = page.items.iter().map(|e| e.summary.as_str()).collect();
    assert!(
        summaries.contains(&"first_name: (empty) → Carla"),
        "{summaries:?}"
    );
    assert!(
        summaries.contains(&"fields.city: (empty) → Utrecht"),
        "{summaries:?}"
    );
    let field_change = page
        .items
        .iter()
        .find(|e| e.summary.starts_with("fields.city"))
        .unwrap();
    assert_eq!(field_change.data["old"], json!(null));
    assert_eq!(field_change.data["new"], json!("Utrecht"));

    let only_b = Memberships {
        groups: None,
        tags: Some(vec!["b".into()]),
    };
    let updated = store
        .update_contact(c.contact.id, ContactPatch::default(), only_b, ctx(6))
        .await
        .unwrap();
    assert_eq!(updated.tags, ["b"]);
    assert_eq!(
        kinds(store, c.contact.id).await.last(),
        Some(&TimelineKind::TagRemoved)
    );
}

pub async fn leaving_unsubscribed_needs_a_reason(store: &dyn Store) {
    let c = store
        .create_contact(input("d@example.com"), ctx(0))
        .await
        .unwrap();
    let id = c.contact.id;
    let unsub = ChangeContext::new(ChangeSource::UnsubscribeLink, ctx(1).at);
    let r = store
        .change_status(id, Status::Unsubscribed, None, unsub)
        .await
        .unwrap();
    assert_eq!(r.contact.status, Status::Unsubscribed);

    let err = store
        .change_status(id, Status::Subscribed, None, ctx(2))
        .await
        .unwrap_err();
    assert_eq!(invalid_field(err), "reason");
    let bounce = ChangeContext::new(ChangeSource::Bounce, ctx(2).at);
    let err = store
        .change_status(id, Status::Pending, None, bounce)
        .await
        .unwrap_err();
    assert_eq!(invalid_field(err), "status");
    assert_eq!(
        store.get_contact(id).await.unwrap().contact.status,
        Status::Unsubscribed
    );

    let r = store
        .change_status(
            id,
            Status::Subscribed,
            Some("asked by phone".into()),
            ctx(3),
        )
        .await
        .unwrap();
    assert_eq!(r.contact.status, Status::Subscribed);
    let page = store.timeline(id, PageRequest::first(10)).await.unwrap();
    let last = &page.items[0];
    assert_eq!(last.kind, TimelineKind::StatusChanged);
    assert_eq!(last.data["reason"], json!("asked by phone"));
    assert_eq!(last.data["source"], json!("admin"));
    assert_eq!(last.at, ctx(3).at);
    // Setting the status it already has changes nothing and writes nothing.
    store
        .change_status(id, Status::Subscribed, None, ctx(4))
        .await
        .unwrap();
    assert_eq!(
        store
            .timeline(id, PageRequest::first(10))
            .await
            .unwrap()
            .items
            .len(),
        3
    );
}

pub async fn group_tree_refuses_cycles_and_selects_descendants(store: &dyn Store) {
    let top = store.create_group("Top", None, false).await.unwrap();
    let mid = store
        .create_group("Mid", Some(top.id), false)
        .await
        .unwrap();
    let leaf = store
        .create_group("Leaf", Some(mid.id), false)
        .await
        .unwrap();
    let other = store.create_group("Other", None, false).await.unwrap();
    let err = store
        .update_group(
            top.id,
            GroupPatch {
                name: None,
                parent_id: Some(Some(leaf.id)),
                public: None,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(invalid_field(err), "parent_id");
    let err = store
        .create_group("Orphan", Some(Uuid::now_v7()), false)
        .await
        .unwrap_err();
    assert_eq!(invalid_field(err), "parent_id");
    assert_eq!(
        invalid_field(store.create_group("  ", None, false).await.unwrap_err()),
        "name"
    );
    assert_eq!(store.get_group(top.id).await.unwrap().parent_id, None);

    for (email, group) in [
        ("l@example.com", leaf.id),
        ("m@example.com", mid.id),
        ("o@example.com", other.id),
    ] {
        let mut i = input(email);
        i.groups = vec![group];
        store.create_contact(i, ctx(0)).await.unwrap();
    }
    let under_top = ContactFilter {
        group: Some(top.id),
        ..ContactFilter::default()
    };
    assert_eq!(store.count_contacts(&under_top).await.unwrap(), 2);
    let page = store
        .list_contacts(&under_top, PageRequest::first(10))
        .await
        .unwrap();
    let mut emails: Vec<_> = page
        .items
        .iter()
        .map(|r| r.contact.email.to_string())
        .collect();
    emails.sort();
    assert_eq!(emails, ["l@example.com", "m@example.com"]);

    let moved = store
        .update_group(
            leaf.id,
            GroupPatch {
                name: Some("Blad".into()),
                parent_id: Some(Some(other.id)),
                public: Some(true),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (moved.name.as_str(), moved.parent_id, moved.public),
        ("Blad", Some(other.id), true)
    );
    assert!(store.get_group(leaf.id).await.unwrap().public);
    assert!(!store.get_group(top.id).await.unwrap().public);
    assert_eq!(store.count_contacts(&under_top).await.unwrap(), 1);
    let under_other = ContactFilter {
        group: Some(other.id),
        ..ContactFilter::default()
    };
    assert_eq!(store.count_contacts(&under_other).await.unwrap(), 2);
    assert_eq!(store.list_groups().await.unwrap().len(), 4);
}

pub async fn filters_combine_and_count_matches_list(store: &dyn Store) {
    let g = store.create_group("G", None, false).await.unwrap();
    let rows = [
        (
            "anna@example.com",
            Some("Anna"),
            true,
            true,
            Status::Subscribed,
        ),
        (
            "bert@example.com",
            Some("Bert"),
            true,
            true,
            Status::Unsubscribed,
        ),
        (
            "carl@example.com",
            Some("Carl"),
            true,
            false,
            Status::Subscribed,
        ),
        (
            "dora@example.com",
            Some("Dora"),
            false,
            true,
            Status::Subscribed,
        ),
        ("eve_x@example.org", None, true, true, Status::Subscribed),
    ];
    for (email, name, in_group, tagged, status) in rows {
        let mut i = input(email);
        i.first_name = name.map(str::to_owned);
        i.status = Some(status.as_str().into());
        if in_group {
            i.groups = vec![g.id];
        }
        if tagged {
            i.tags = vec!["vip".into()];
        }
        store.create_contact(i, ctx(0)).await.unwrap();
    }
    let check = |filter: ContactFilter, expected: &'static [&'static str]| async move {
        let n = store.count_contacts(&filter).await.unwrap();
        let page = store
            .list_contacts(&filter, PageRequest::first(100))
            .await
            .unwrap();
        let mut got: Vec<_> = page
            .items
            .iter()
            .map(|r| r.contact.email.to_string())
            .collect();
        got.sort();
        assert_eq!(got, expected, "{filter:?}");
        assert_eq!(n, expected.len() as u64, "{filter:?}");
    };
    let all = ContactFilter {
        group: Some(g.id),
        tag: Some("vip".into()),
        status: Some(Status::Subscribed),
        q: None,
    };
    check(all.clone(), &["anna@example.com", "eve_x@example.org"]).await;
    check(
        ContactFilter {
            q: Some("ANN".into()),
            ..ContactFilter::default()
        },
        &["anna@example.com"],
    )
    .await;
    check(
        ContactFilter {
            q: Some("dor".into()),
            ..ContactFilter::default()
        },
        &["dora@example.com"],
    )
    .await;
    // `q` matches the start of a word kept apart (email, first or last name), and wildcard
    // characters in it are taken literally.
    check(
        ContactFilter {
            q: Some("EVE_".into()),
            ..ContactFilter::default()
        },
        &["eve_x@example.org"],
    )
    .await;
    check(
        ContactFilter {
            q: Some("e_e".into()),
            ..ContactFilter::default()
        },
        &[],
    )
    .await;
    check(
        ContactFilter {
            q: Some("example".into()),
            ..ContactFilter::default()
        },
        &[],
    )
    .await;
    check(
        ContactFilter {
            q: Some("%".into()),
            ..ContactFilter::default()
        },
        &[],
    )
    .await;
    check(
        ContactFilter {
            tag: Some("nope".into()),
            ..ContactFilter::default()
        },
        &[],
    )
    .await;
    check(
        ContactFilter {
            status: Some(Status::Unsubscribed),
            ..ContactFilter::default()
        },
        &["bert@example.com"],
    )
    .await;
}

pub async fn cursor_pages_cover_everything_newest_first(store: &dyn Store) {
    let mut ids = Vec::new();
    for n in 0..25 {
        let c = store
            .create_contact(input(&format!("p{n}@example.com")), ctx(n))
            .await
            .unwrap();
        ids.push(c.contact.id);
    }
    ids.reverse();
    let mut seen = Vec::new();
    let mut page = PageRequest::first(10);
    loop {
        let got = store
            .list_contacts(&ContactFilter::default(), page)
            .await
            .unwrap();
        seen.extend(got.items.iter().map(|r| r.contact.id));
        match got.next_cursor {
            Some(cursor) => page = PageRequest::after(10, cursor),
            None => break,
        }
    }
    assert_eq!(seen, ids);
}

pub async fn erase_keeps_only_a_suppression_that_flags_a_return(store: &dyn Store) {
    let g = store.create_group("G", None, false).await.unwrap();
    let mut i = input("gone@example.com");
    i.groups = vec![g.id];
    i.tags = vec!["t".into()];
    let c = store.create_contact(i, ctx(0)).await.unwrap();
    let id = c.contact.id;
    let bounce = ChangeContext::new(ChangeSource::Bounce, ctx(1).at);
    store
        .change_status(id, Status::Bounced, None, bounce)
        .await
        .unwrap();
    let s = store.erase_contact(id, ctx(2).at).await.unwrap();
    assert_eq!(s.status, Status::Bounced);
    assert_eq!(
        s.email_hash,
        Email::parse("GONE@example.com").unwrap().suppression_hash()
    );
    assert!(!s.email_hash.contains("gone"));
    assert!(matches!(
        store.get_contact(id).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.timeline(id, PageRequest::first(5)).await,
        Err(StoreError::NotFound)
    ));
    assert!(
        store
            .find_contact_by_email("gone@example.com")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(store.list_tags().await.unwrap()[0].contacts, 0);
    assert_eq!(
        store.suppression(&s.email_hash).await.unwrap(),
        Some(s.clone())
    );
    // The group has no members left, so it can go.
    store.delete_group(g.id).await.unwrap();

    let back = store
        .create_contact(input("Gone@example.com"), ctx(3))
        .await
        .unwrap();
    assert_eq!(back.contact.status, Status::Bounced);
    assert!(
        kinds(store, back.contact.id)
            .await
            .contains(&TimelineKind::SuppressionMatched)
    );

    let rows = vec![ImportRow {
        line: 2,
        input: input("gone@example.com"),
    }];
    store
        .erase_contact(back.contact.id, ctx(4).at)
        .await
        .unwrap();
    let options = ImportOptions {
        existing: ExistingPolicy::Update,
        group: None,
        dry_run: false,
    };
    let outcomes = store.import_batch(rows, &options, ctx(5).at).await.unwrap();
    assert!(
        matches!(&outcomes[..], [RowOutcome::Flagged(_)]),
        "{outcomes:?}"
    );
    let again = store
        .find_contact_by_email("gone@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.contact.status, Status::Bounced);
}

pub async fn import_creates_updates_skips_and_rejects_per_row(store: &dyn Store) {
    field(store, "score", "number", &[]).await;
    let g = store.create_group("Imported", None, false).await.unwrap();
    let existing = store
        .create_contact(input("old@example.com"), ctx(0))
        .await
        .unwrap();
    let unsub = ChangeContext::new(ChangeSource::UnsubscribeLink, ctx(1).at);
    let gone = store
        .create_contact(input("unsub@example.com"), ctx(0))
        .await
        .unwrap();
    store
        .change_status(gone.contact.id, Status::Unsubscribed, None, unsub)
        .await
        .unwrap();

    let row = |line: u64, email: &str, name: Option<&str>, score: Option<serde_json::Value>| {
        let mut i = input(email);
        i.first_name = name.map(str::to_owned);
        if let Some(s) = score {
            i.fields.insert("score".into(), s);
        }
        ImportRow { line, input: i }
    };
    let mut resub = row(7, "unsub@example.com", None, None);
    resub.input.status = Some("subscribed".into());
    let rows = vec![
        row(2, "new@example.com", Some("New"), Some(json!(1))),
        row(3, "OLD@example.com", Some("Old"), None),
        row(4, "broken", None, None),
        row(5, "bad-score@example.com", None, Some(json!("x"))),
        row(6, "new@example.com", None, Some(json!(2))),
        resub,
    ];
    let options = ImportOptions {
        existing: ExistingPolicy::Update,
        group: Some(g.id),
        dry_run: false,
    };
    let outcomes = store
        .import_batch(rows.clone(), &options, ctx(2).at)
        .await
        .unwrap();
    assert_eq!(outcomes[0], RowOutcome::Created);
    assert_eq!(outcomes[1], RowOutcome::Updated);
    assert!(
        matches!(&outcomes[2], RowOutcome::Rejected(r) if r.contains("email")),
        "{outcomes:?}"
    );
    assert!(
        matches!(&outcomes[3], RowOutcome::Rejected(r) if r.contains("fields.score")),
        "{outcomes:?}"
    );
    assert_eq!(outcomes[4], RowOutcome::Updated);
    assert!(
        matches!(&outcomes[5], RowOutcome::Rejected(r) if r.contains("status")),
        "{outcomes:?}"
    );

    let new = store
        .find_contact_by_email("new@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(new.contact.first_name.as_deref(), Some("New"));
    assert_eq!(new.contact.fields.get("score"), Some(&json!(2)));
    assert_eq!(new.groups, vec![g.id]);
    let old = store.get_contact(existing.contact.id).await.unwrap();
    assert_eq!(old.contact.first_name.as_deref(), Some("Old"));
    assert_eq!(old.groups, vec![g.id]);
    assert!(
        kinds(store, old.contact.id)
            .await
            .contains(&TimelineKind::Imported)
    );
    assert_eq!(
        store
            .count_contacts(&ContactFilter::default())
            .await
            .unwrap(),
        3
    );

    let skip = ImportOptions {
        existing: ExistingPolicy::Skip,
        group: None,
        dry_run: false,
    };
    let outcomes = store
        .import_batch(rows[..2].to_vec(), &skip, ctx(3).at)
        .await
        .unwrap();
    assert_eq!(outcomes, [RowOutcome::Skipped, RowOutcome::Skipped]);
}

pub async fn dry_run_import_writes_nothing(store: &dyn Store) {
    let rows = vec![
        ImportRow {
            line: 2,
            input: input("x@example.com"),
        },
        ImportRow {
            line: 3,
            input: input("nope"),
        },
    ];
    let options = ImportOptions {
        existing: ExistingPolicy::Update,
        group: None,
        dry_run: true,
    };
    let outcomes = store.import_batch(rows, &options, ctx(0).at).await.unwrap();
    assert_eq!(outcomes[0], RowOutcome::Created);
    assert!(matches!(outcomes[1], RowOutcome::Rejected(_)));
    assert_eq!(
        store
            .count_contacts(&ContactFilter::default())
            .await
            .unwrap(),
        0
    );
}

pub async fn groups_in_use_cannot_be_deleted(store: &dyn Store) {
    let parent = store.create_group("P", None, false).await.unwrap();
    let child = store
        .create_group("C", Some(parent.id), false)
        .await
        .unwrap();
    let err = store.delete_group(parent.id).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Conflict {
                code: "group_not_empty",
                ..
            }
        ),
        "{err:?}"
    );
    let c = store
        .create_contact(input("e@example.com"), ctx(0))
        .await
        .unwrap();
    store
        .set_group_membership(c.contact.id, child.id, true, ctx(1))
        .await
        .unwrap();
    assert!(store.delete_group(child.id).await.is_err());
    let r = store
        .set_group_membership(c.contact.id, child.id, false, ctx(2))
        .await
        .unwrap();
    assert!(r.groups.is_empty());
    store.delete_group(child.id).await.unwrap();
    store.delete_group(parent.id).await.unwrap();
    assert!(matches!(
        store.delete_group(parent.id).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        kinds(store, c.contact.id).await,
        [
            TimelineKind::ContactCreated,
            TimelineKind::GroupJoined,
            TimelineKind::GroupLeft
        ]
    );
}

pub async fn deleting_a_field_or_tag_removes_it_from_contacts(store: &dyn Store) {
    field(store, "score", "number", &[]).await;
    let dup = FieldDef::new("score", None, "text", vec![]).unwrap();
    assert!(matches!(
        store.create_field(dup).await,
        Err(StoreError::Conflict {
            code: "duplicate_field",
            ..
        })
    ));
    let mut i = input("f@example.com");
    i.fields.insert("score".into(), json!(3));
    i.tags = vec!["old".into()];
    let c = store.create_contact(i, ctx(0)).await.unwrap();
    store.delete_field("score").await.unwrap();
    store.delete_tag("old", ctx(1).at).await.unwrap();
    let got = store.get_contact(c.contact.id).await.unwrap();
    assert!(got.contact.fields.is_empty());
    assert!(got.tags.is_empty());
    assert!(store.list_fields().await.unwrap().is_empty());
    assert!(matches!(
        store.delete_field("score").await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        kinds(store, c.contact.id).await.last(),
        Some(&TimelineKind::TagRemoved)
    );
    let tagged = store
        .set_tag(c.contact.id, "new", true, ctx(2))
        .await
        .unwrap();
    assert_eq!(tagged.tags, ["new"]);
    assert_eq!(store.create_tag("new").await.unwrap().contacts, 1);
}

pub async fn api_keys_are_found_by_hash_and_users_are_unique(store: &dyn Store) {
    let key = store
        .create_api_key(NewApiKey {
            name: "ci".into(),
            key_hash: "abc".into(),
            scopes: vec!["contacts:read".into()],
        })
        .await
        .unwrap();
    let found = store.api_key_by_hash("abc").await.unwrap().unwrap();
    assert_eq!(found.id, key.id);
    assert_eq!(found.scopes, ["contacts:read"]);
    assert!(store.api_key_by_hash("abd").await.unwrap().is_none());
    assert_eq!(
        store.list_api_keys().await.unwrap(),
        std::slice::from_ref(&key)
    );

    let user = || NewUser {
        email: Email::parse("Owner@example.com").unwrap(),
        password_hash: "$argon2id$...".into(),
        role: Role::Owner,
    };
    store.create_user(user()).await.unwrap();
    assert!(matches!(
        store.create_user(user()).await,
        Err(StoreError::Conflict { .. })
    ));
}

fn outgoing(contact_id: Uuid, class: MessageClass, key: &str, due: i64) -> NewMessage {
    NewMessage {
        contact_id,
        class,
        content: MessageContent {
            subject: format!("Hallo {key}"),
            html: "<p>Hallo</p>".into(),
            text: None,
            from_email: Some("news@example.com".into()),
            from_name: None,
        },
        idempotency_key: key.into(),
        due_at: ctx(due).at,
    }
}

const LEASE: SignedDuration = SignedDuration::from_secs(60);

pub async fn a_queued_message_is_claimed_once_and_sent_once(store: &dyn Store) {
    let c = store
        .create_contact(input("m1@example.com"), ctx(0))
        .await
        .unwrap();
    let id = c.contact.id;
    let (queued, new) = store
        .queue_message(outgoing(id, MessageClass::Campaign, "k1", 0), ctx(0).at)
        .await
        .unwrap();
    assert!(new);
    assert_eq!((queued.status, queued.attempts), (MessageStatus::Queued, 0));
    assert_eq!(queued.to_email, "m1@example.com");
    assert_eq!(store.next_due().await.unwrap(), Some(ctx(0).at));

    let claimed = store
        .claim_messages(ctx(1).at, 10, "a", LEASE)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(
        (claimed[0].status, claimed[0].attempts),
        (MessageStatus::Sending, 1)
    );
    assert!(
        store
            .claim_messages(ctx(2).at, 10, "b", LEASE)
            .await
            .unwrap()
            .is_empty(),
        "the lease holds"
    );

    let err = store
        .finish_message(
            queued.id,
            "b",
            Delivery::Sent {
                message_id: "<x@example.com>".into(),
                smtp_account_id: None,
            },
            ctx(3).at,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Conflict {
                code: "lease_lost",
                ..
            }
        ),
        "{err:?}"
    );
    let sent = store
        .finish_message(
            queued.id,
            "a",
            Delivery::Sent {
                message_id: "<x@example.com>".into(),
                smtp_account_id: None,
            },
            ctx(3).at,
        )
        .await
        .unwrap();
    assert_eq!(sent.status, MessageStatus::Sent);
    assert_eq!(sent.message_id.as_deref(), Some("<x@example.com>"));
    assert_eq!(sent.sent_at, Some(ctx(3).at));
    let again = store
        .finish_message(
            queued.id,
            "a",
            Delivery::Sent {
                message_id: "<y@example.com>".into(),
                smtp_account_id: None,
            },
            ctx(4).at,
        )
        .await;
    assert!(
        matches!(again, Err(StoreError::Conflict { .. })),
        "a finished message stays finished"
    );
    assert!(
        store
            .claim_messages(ctx(500).at, 10, "c", LEASE)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.next_due().await.unwrap(), None);
    assert_eq!(
        kinds(store, id).await,
        [
            TimelineKind::ContactCreated,
            TimelineKind::EmailQueued,
            TimelineKind::EmailSent
        ]
    );
}

pub async fn an_idempotency_key_queues_one_message(store: &dyn Store) {
    let c = store
        .create_contact(input("m2@example.com"), ctx(0))
        .await
        .unwrap();
    let (first, _) = store
        .queue_message(
            outgoing(c.contact.id, MessageClass::Transactional, "same", 0),
            ctx(0).at,
        )
        .await
        .unwrap();
    let (second, new) = store
        .queue_message(
            outgoing(c.contact.id, MessageClass::Transactional, "same", 5),
            ctx(5).at,
        )
        .await
        .unwrap();
    assert!(!new);
    assert_eq!(first, second);
    let page = store
        .list_messages(&MessageFilter::default(), PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    let missing = store
        .queue_message(
            outgoing(Uuid::now_v7(), MessageClass::Transactional, "other", 0),
            ctx(0).at,
        )
        .await;
    assert!(matches!(missing, Err(StoreError::NotFound)));
}

pub async fn the_send_gate_skips_at_queue_time_with_its_rule(store: &dyn Store) {
    let c = store
        .create_contact(input("m3@example.com"), ctx(0))
        .await
        .unwrap();
    let unsub = ChangeContext::new(ChangeSource::UnsubscribeLink, ctx(1).at);
    store
        .change_status(c.contact.id, Status::Unsubscribed, None, unsub)
        .await
        .unwrap();
    let (campaign, _) = store
        .queue_message(
            outgoing(c.contact.id, MessageClass::Campaign, "c", 2),
            ctx(2).at,
        )
        .await
        .unwrap();
    assert_eq!(campaign.status, MessageStatus::Skipped);
    assert_eq!(campaign.skip_rule, Some(SkipRule::Unsubscribed));
    let (receipt, _) = store
        .queue_message(
            outgoing(c.contact.id, MessageClass::Transactional, "t", 2),
            ctx(2).at,
        )
        .await
        .unwrap();
    assert_eq!(receipt.status, MessageStatus::Queued);
    let claimed = store
        .claim_messages(ctx(3).at, 10, "a", LEASE)
        .await
        .unwrap();
    assert_eq!(
        claimed.iter().map(|m| m.id).collect::<Vec<_>>(),
        [receipt.id]
    );
    // The gate is checked again before SMTP; the dispatcher records what it found.
    let skipped = store
        .finish_message(
            receipt.id,
            "a",
            Delivery::Skipped(SkipRule::Bounced),
            ctx(4).at,
        )
        .await
        .unwrap();
    assert_eq!(
        (skipped.status, skipped.skip_rule),
        (MessageStatus::Skipped, Some(SkipRule::Bounced))
    );
    assert!(
        kinds(store, c.contact.id)
            .await
            .contains(&TimelineKind::EmailSkipped)
    );
}

pub async fn a_retry_waits_for_its_time_and_a_dead_lease_is_reclaimed(store: &dyn Store) {
    let c = store
        .create_contact(input("m4@example.com"), ctx(0))
        .await
        .unwrap();
    let (m, _) = store
        .queue_message(
            outgoing(c.contact.id, MessageClass::Automation, "r", 0),
            ctx(0).at,
        )
        .await
        .unwrap();
    store
        .claim_messages(ctx(1).at, 10, "a", LEASE)
        .await
        .unwrap();
    let retry = Delivery::Retry {
        at: ctx(120).at,
        error: "451 try later".into(),
    };
    let deferred = store
        .finish_message(m.id, "a", retry, ctx(2).at)
        .await
        .unwrap();
    assert_eq!(
        (deferred.status, deferred.due_at),
        (MessageStatus::Retrying, ctx(120).at)
    );
    assert_eq!(deferred.last_error.as_deref(), Some("451 try later"));
    assert_eq!(store.next_due().await.unwrap(), Some(ctx(120).at));
    assert!(
        store
            .claim_messages(ctx(119).at, 10, "a", LEASE)
            .await
            .unwrap()
            .is_empty()
    );
    let second = store
        .claim_messages(ctx(120).at, 10, "a", LEASE)
        .await
        .unwrap();
    assert_eq!(second[0].attempts, 2);
    // Dispatcher "a" dies holding the lease; after it expires, "b" takes the message over.
    assert!(
        store
            .claim_messages(ctx(179).at, 10, "b", LEASE)
            .await
            .unwrap()
            .is_empty()
    );
    let third = store
        .claim_messages(ctx(181).at, 10, "b", LEASE)
        .await
        .unwrap();
    assert_eq!(third[0].attempts, 3);
    let late = store
        .finish_message(
            m.id,
            "a",
            Delivery::Sent {
                message_id: "<a@x.com>".into(),
                smtp_account_id: None,
            },
            ctx(182).at,
        )
        .await;
    assert!(matches!(
        late,
        Err(StoreError::Conflict {
            code: "lease_lost",
            ..
        })
    ));
    let failed = store
        .finish_message(
            m.id,
            "b",
            Delivery::Failed {
                error: "expired".into(),
                bounce: false,
            },
            ctx(183).at,
        )
        .await
        .unwrap();
    assert_eq!(failed.status, MessageStatus::Failed);
    assert_eq!(
        store
            .get_contact(c.contact.id)
            .await
            .unwrap()
            .contact
            .status,
        Status::Subscribed
    );
}

pub async fn a_hard_bounce_makes_the_contact_bounced(store: &dyn Store) {
    let c = store
        .create_contact(input("m5@example.com"), ctx(0))
        .await
        .unwrap();
    let (m, _) = store
        .queue_message(
            outgoing(c.contact.id, MessageClass::Campaign, "b", 0),
            ctx(0).at,
        )
        .await
        .unwrap();
    store
        .claim_messages(ctx(1).at, 10, "a", LEASE)
        .await
        .unwrap();
    let bounce = Delivery::Failed {
        error: "550 5.1.1 no such user".into(),
        bounce: true,
    };
    let failed = store
        .finish_message(m.id, "a", bounce, ctx(2).at)
        .await
        .unwrap();
    assert_eq!(failed.status, MessageStatus::Failed);
    let contact = store.get_contact(c.contact.id).await.unwrap();
    assert_eq!(contact.contact.status, Status::Bounced);
    let k = kinds(store, c.contact.id).await;
    assert!(
        k.ends_with(&[TimelineKind::EmailBounced, TimelineKind::StatusChanged]),
        "{k:?}"
    );
    // Erasing the contact takes its messages with it.
    store.erase_contact(c.contact.id, ctx(3).at).await.unwrap();
    assert!(matches!(
        store.get_message(m.id).await,
        Err(StoreError::NotFound)
    ));
}

pub async fn a_batch_of_outcomes_is_recorded_together_each_under_its_lease(store: &dyn Store) {
    let mut contacts = Vec::new();
    for email in ["b1@example.com", "b2@example.com", "b3@example.com"] {
        let c = store.create_contact(input(email), ctx(0)).await.unwrap();
        contacts.push(c.contact.id);
    }
    let [c1, c2, c3] = contacts[..] else {
        unreachable!()
    };
    let queue = async |contact, key, due| {
        let message = outgoing(contact, MessageClass::Campaign, key, due);
        store.queue_message(message, ctx(0).at).await.unwrap().0
    };
    let sent = queue(c1, "batch-sent", 0).await;
    let bounced = queue(c2, "batch-bounced", 0).await;
    let deferred = queue(c1, "batch-deferred", 0).await;
    let erased = queue(c3, "batch-erased", 0).await;
    let unclaimed = queue(c1, "batch-unclaimed", 100).await;
    let claimed = store
        .claim_messages(ctx(1).at, 10, "a", LEASE)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 4);
    store.erase_contact(c3, ctx(2).at).await.unwrap();

    let outcome = |message_id: &str| Delivery::Sent {
        message_id: message_id.into(),
        smtp_account_id: None,
    };
    let stranger = store
        .finish_messages("b", vec![(sent.id, outcome("<b@x>"))], ctx(3).at)
        .await
        .unwrap();
    assert!(
        matches!(
            stranger[..],
            [Err(StoreError::Conflict {
                code: "lease_lost",
                ..
            })]
        ),
        "only the lease holder records: {stranger:?}"
    );
    let outcomes = vec![
        (sent.id, outcome("<sent@x>")),
        (
            bounced.id,
            Delivery::Failed {
                error: "550 5.1.1 no such user".into(),
                bounce: true,
            },
        ),
        (
            deferred.id,
            Delivery::Retry {
                at: ctx(300).at,
                error: "451 later".into(),
            },
        ),
        (erased.id, outcome("<erased@x>")),
        (unclaimed.id, outcome("<unclaimed@x>")),
        (Uuid::now_v7(), outcome("<nobody@x>")),
    ];
    let done = store
        .finish_messages("a", outcomes, ctx(4).at)
        .await
        .unwrap();
    assert_eq!(done.len(), 6, "one result per outcome, in order");
    let statuses: Vec<_> = done[..3]
        .iter()
        .map(|r| r.as_ref().map(|m| (m.id, m.status)).unwrap())
        .collect();
    assert_eq!(
        statuses,
        [
            (sent.id, MessageStatus::Sent),
            (bounced.id, MessageStatus::Failed),
            (deferred.id, MessageStatus::Retrying)
        ]
    );
    assert!(matches!(done[3], Err(StoreError::NotFound)), "erased");
    assert!(
        matches!(
            done[4],
            Err(StoreError::Conflict {
                code: "lease_lost",
                ..
            })
        ),
        "never claimed"
    );
    assert!(matches!(done[5], Err(StoreError::NotFound)), "unknown");

    let stored = store.get_message(sent.id).await.unwrap();
    assert_eq!(stored.message_id.as_deref(), Some("<sent@x>"));
    assert_eq!(stored.sent_at, Some(ctx(4).at));
    let stored = store.get_message(deferred.id).await.unwrap();
    assert_eq!(stored.due_at, ctx(300).at);
    assert_eq!(stored.last_error.as_deref(), Some("451 later"));
    let stored = store.get_message(unclaimed.id).await.unwrap();
    assert_eq!(stored.status, MessageStatus::Queued, "left as it was");
    assert_eq!(
        store.get_contact(c2).await.unwrap().contact.status,
        Status::Bounced
    );
    let k = kinds(store, c2).await;
    assert!(
        k.ends_with(&[TimelineKind::EmailBounced, TimelineKind::StatusChanged]),
        "{k:?}"
    );
    let k = kinds(store, c1).await;
    assert!(
        k.ends_with(&[TimelineKind::EmailSent, TimelineKind::EmailDeferred]),
        "{k:?}"
    );
    let again = store
        .finish_messages("a", vec![(sent.id, outcome("<again@x>"))], ctx(5).at)
        .await
        .unwrap();
    assert!(
        matches!(again[..], [Err(StoreError::Conflict { .. })]),
        "a finished message stays finished"
    );
    let twice = queue(c1, "batch-twice", 200).await;
    store
        .claim_messages(ctx(200).at, 10, "a", LEASE)
        .await
        .unwrap();
    let both = store
        .finish_messages(
            "a",
            vec![
                (twice.id, outcome("<first@x>")),
                (twice.id, outcome("<second@x>")),
            ],
            ctx(201).at,
        )
        .await
        .unwrap();
    assert!(
        matches!(
            both[..],
            [
                Ok(_),
                Err(StoreError::Conflict {
                    code: "lease_lost",
                    ..
                })
            ]
        ),
        "the first outcome of a message named twice ends its lease: {both:?}"
    );
    assert_eq!(
        store
            .get_message(twice.id)
            .await
            .unwrap()
            .message_id
            .as_deref(),
        Some("<first@x>")
    );
    assert!(
        store
            .finish_messages("a", Vec::new(), ctx(5).at)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn contacts_are_read_by_the_batch_leaving_out_unknown_ids(store: &dyn Store) {
    let group = store.create_group("Lezers", None, false).await.unwrap();
    let mut tagged = input("r1@example.com");
    tagged.first_name = Some("Roos".into());
    tagged.groups = vec![group.id];
    tagged.tags = vec!["vip".into()];
    let tagged = store.create_contact(tagged, ctx(0)).await.unwrap();
    let plain = store
        .create_contact(input("r2@example.com"), ctx(0))
        .await
        .unwrap();
    let erased = store
        .create_contact(input("r3@example.com"), ctx(0))
        .await
        .unwrap();
    store
        .erase_contact(erased.contact.id, ctx(1).at)
        .await
        .unwrap();

    let ids = [
        plain.contact.id,
        Uuid::now_v7(),
        tagged.contact.id,
        erased.contact.id,
    ];
    let mut got = store.get_contacts(&ids).await.unwrap();
    got.sort_by_key(|r| r.contact.id);
    let mut want = vec![tagged, plain];
    want.sort_by_key(|r| r.contact.id);
    assert_eq!(got, want, "each as get_contact returns it");
    assert!(store.get_contacts(&[]).await.unwrap().is_empty());
}

pub async fn messages_are_listed_by_contact_status_and_class(store: &dyn Store) {
    let a = store
        .create_contact(input("m6@example.com"), ctx(0))
        .await
        .unwrap()
        .contact
        .id;
    let b = store
        .create_contact(input("m7@example.com"), ctx(0))
        .await
        .unwrap()
        .contact
        .id;
    for (n, (contact, class)) in [
        (a, MessageClass::Campaign),
        (a, MessageClass::Transactional),
        (b, MessageClass::Campaign),
    ]
    .into_iter()
    .enumerate()
    {
        store
            .queue_message(outgoing(contact, class, &format!("l{n}"), 0), ctx(0).at)
            .await
            .unwrap();
    }
    let count = |filter: MessageFilter| async move {
        store
            .list_messages(&filter, PageRequest::first(10))
            .await
            .unwrap()
            .items
            .len()
    };
    assert_eq!(
        count(MessageFilter {
            contact: Some(a),
            ..MessageFilter::default()
        })
        .await,
        2
    );
    assert_eq!(
        count(MessageFilter {
            class: Some(MessageClass::Campaign),
            ..MessageFilter::default()
        })
        .await,
        2
    );
    assert_eq!(
        count(MessageFilter {
            status: Some(MessageStatus::Queued),
            contact: Some(b),
            ..MessageFilter::default()
        })
        .await,
        1
    );
    assert_eq!(
        count(MessageFilter {
            status: Some(MessageStatus::Sent),
            ..MessageFilter::default()
        })
        .await,
        0
    );
    let first = store
        .list_messages(&MessageFilter::default(), PageRequest::first(2))
        .await
        .unwrap();
    let cursor = first.next_cursor.unwrap();
    let rest = store
        .list_messages(&MessageFilter::default(), PageRequest::after(2, cursor))
        .await
        .unwrap();
    assert_eq!(
        (first.items.len(), rest.items.len(), rest.next_cursor),
        (2, 1, None)
    );
}

pub async fn opens_are_recorded_once_and_every_click_is_recorded(store: &dyn Store) {
    let c = store
        .create_contact(input("m8@example.com"), ctx(0))
        .await
        .unwrap();
    let (m, _) = store
        .queue_message(
            outgoing(c.contact.id, MessageClass::Campaign, "e", 0),
            ctx(0).at,
        )
        .await
        .unwrap();
    for n in 1..=2 {
        store
            .record_engagement(m.id, Engagement::Opened, ctx(n).at)
            .await
            .unwrap();
    }
    for n in 3..=4 {
        let click = Engagement::Clicked {
            url: format!("https://example.com/{n}"),
        };
        store
            .record_engagement(m.id, click, ctx(n).at)
            .await
            .unwrap();
    }
    let k = kinds(store, c.contact.id).await;
    assert_eq!(
        &k[2..],
        [
            TimelineKind::EmailOpened,
            TimelineKind::EmailClicked,
            TimelineKind::EmailClicked
        ]
    );
    let page = store
        .timeline(c.contact.id, PageRequest::first(1))
        .await
        .unwrap();
    assert_eq!(page.items[0].data["url"], json!("https://example.com/4"));
    let missing = store
        .record_engagement(Uuid::now_v7(), Engagement::Opened, ctx(5).at)
        .await;
    assert!(matches!(missing, Err(StoreError::NotFound)));
}

pub async fn a_dkim_key_per_domain_is_stored_and_replaced(store: &dyn Store) {
    use crate::{DkimAlgorithm, NewDkimKey};
    assert!(store.dkim_keys().await.unwrap().is_empty());
    let key = |domain: &str, selector: &str, algorithm, pem: &str| NewDkimKey {
        domain: domain.into(),
        selector: selector.into(),
        algorithm,
        private_key_pem: pem.into(),
    };
    let first = store
        .save_dkim_key(key("Example.COM.", "nudge", DkimAlgorithm::Rsa, "PEM 1"))
        .await
        .unwrap();
    assert_eq!(first.domain, "example.com");
    store
        .save_dkim_key(key("b.example.org", "s1", DkimAlgorithm::Ed25519, "PEM 2"))
        .await
        .unwrap();
    store
        .save_dkim_key(key("example.com", "s2024", DkimAlgorithm::Ed25519, "PEM 3"))
        .await
        .unwrap();
    let keys = store.dkim_keys().await.unwrap();
    let summary: Vec<_> = keys
        .iter()
        .map(|k| {
            (
                k.domain.as_str(),
                k.selector.as_str(),
                k.algorithm,
                k.private_key_pem.as_str(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("b.example.org", "s1", DkimAlgorithm::Ed25519, "PEM 2"),
            ("example.com", "s2024", DkimAlgorithm::Ed25519, "PEM 3"),
        ]
    );
    assert!(!format!("{:?}", keys[0]).contains("PEM"), "Debug hides it");
    assert!(matches!(
        store
            .save_dkim_key(key(" ", "s", DkimAlgorithm::Rsa, "x"))
            .await,
        Err(StoreError::Invalid(_))
    ));
}

fn smtp_input(name: &str, host: &str) -> nudge_core::SmtpAccountInput {
    nudge_core::SmtpAccountInput {
        name: Some(name.into()),
        host: Some(host.into()),
        from_email: Some("news@example.com".into()),
        username: Patch::Set("user".into()),
        password: Patch::Set("s3cret".into()),
        ..nudge_core::SmtpAccountInput::default()
    }
}

pub async fn smtp_accounts_are_created_changed_listed_and_deleted(store: &dyn Store) {
    use nudge_core::{SmtpAccountInput, SmtpAccountSettings, SmtpTls};
    assert!(store.list_smtp_accounts().await.unwrap().is_empty());
    let mut main = smtp_input("Main", "smtp.example.com");
    main.rate_per_second = Some(2.5);
    main.daily_limit = Some(10_000);
    main.weight = Some(3);
    main.tracking = Some(false);
    let a = store
        .create_smtp_account(SmtpAccountSettings::create(main).unwrap())
        .await
        .unwrap();
    let b = store
        .create_smtp_account(
            SmtpAccountSettings::create(smtp_input("Backup", "backup.example.com")).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(store.get_smtp_account(a.id).await.unwrap(), a);
    let s = &a.settings;
    assert_eq!(
        (s.port, s.tls, s.weight, s.daily_limit, s.tracking),
        (587, SmtpTls::StartTls, 3, 10_000, false)
    );
    assert_eq!(s.rate_per_second, 2.5);
    assert_eq!(s.password.as_deref(), Some("s3cret"));
    let listed: Vec<Uuid> = store
        .list_smtp_accounts()
        .await
        .unwrap()
        .iter()
        .map(|x| x.id)
        .collect();
    assert_eq!(listed, [a.id, b.id], "oldest first");

    let changed = store
        .update_smtp_account(
            a.id,
            SmtpAccountInput {
                port: Some(2525),
                tls: Some("none".into()),
                from_name: Patch::Set("Nieuws".into()),
                ..SmtpAccountInput::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (changed.settings.port, changed.settings.tls),
        (2525, SmtpTls::None)
    );
    assert_eq!(changed.settings.password.as_deref(), Some("s3cret"), "kept");
    assert_eq!(changed.created_at, a.created_at);
    assert!(changed.updated_at >= a.updated_at);
    assert_eq!(store.get_smtp_account(a.id).await.unwrap(), changed);

    let refused = store
        .update_smtp_account(
            a.id,
            SmtpAccountInput {
                port: Some(25),
                weight: Some(0),
                ..SmtpAccountInput::default()
            },
        )
        .await;
    assert_eq!(invalid_field(refused.unwrap_err()), "weight");
    assert_eq!(
        store.get_smtp_account(a.id).await.unwrap(),
        changed,
        "a refused change writes nothing"
    );

    store.delete_smtp_account(a.id).await.unwrap();
    for gone in [
        store.get_smtp_account(a.id).await.map(|_| ()),
        store.delete_smtp_account(a.id).await,
        store
            .update_smtp_account(a.id, SmtpAccountInput::default())
            .await
            .map(|_| ()),
    ] {
        assert!(matches!(gone, Err(StoreError::NotFound)), "{gone:?}");
    }
    let left: Vec<Uuid> = store
        .list_smtp_accounts()
        .await
        .unwrap()
        .iter()
        .map(|x| x.id)
        .collect();
    assert_eq!(left, [b.id]);
}

pub async fn sent_messages_are_counted_per_account_since_a_time(store: &dyn Store) {
    let c = store
        .create_contact(input("counted@example.com"), ctx(0))
        .await
        .unwrap();
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    for (n, account) in [(1, Some(a)), (2, Some(b)), (3, Some(a)), (4, None)] {
        store
            .queue_message(
                outgoing(
                    c.contact.id,
                    MessageClass::Transactional,
                    &format!("count{n}"),
                    0,
                ),
                ctx(0).at,
            )
            .await
            .unwrap();
        let claimed = store
            .claim_messages(ctx(n).at, 1, "counter", LEASE)
            .await
            .unwrap();
        assert_eq!(claimed.len(), 1);
        let done = store
            .finish_message(
                claimed[0].id,
                "counter",
                Delivery::Sent {
                    message_id: format!("<{n}@example.com>"),
                    smtp_account_id: account,
                },
                ctx(n * 10).at,
            )
            .await
            .unwrap();
        assert_eq!(done.smtp_account_id, account);
        assert_eq!(store.get_message(done.id).await.unwrap(), done);
    }
    let mut all = store.sent_per_smtp_account(ctx(0).at).await.unwrap();
    all.sort();
    let mut expected = vec![(a, 2), (b, 1)];
    expected.sort();
    assert_eq!(all, expected);
    assert_eq!(
        store.sent_per_smtp_account(ctx(25).at).await.unwrap(),
        [(a, 1)],
        "only what was sent since then"
    );
    assert!(
        store
            .sent_per_smtp_account(ctx(41).at)
            .await
            .unwrap()
            .is_empty()
    );
}

fn template(name: &str) -> NewTemplate {
    NewTemplate {
        name: name.into(),
        subject: format!("{name}: Hallo {{{{ first_name | default(\"daar\") }}}}"),
        html: "<p>Grüße, {{ fields.city }}</p>".into(),
        text: None,
    }
}

pub async fn templates_are_created_changed_paged_newest_first_and_deleted(store: &dyn Store) {
    assert!(
        store
            .list_templates(PageRequest::first(10))
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let mut ids = Vec::new();
    for n in 0..5 {
        let t = store
            .create_template(template(&format!("T{n}")))
            .await
            .unwrap();
        assert_eq!(t.template, template(&format!("T{n}")));
        assert_eq!(t.created_at, t.updated_at);
        assert_eq!(store.get_template(t.id).await.unwrap(), t);
        ids.push(t.id);
    }
    ids.reverse();
    let mut seen = Vec::new();
    let mut page = PageRequest::first(2);
    loop {
        let got = store.list_templates(page).await.unwrap();
        assert!(got.items.len() <= 2);
        seen.extend(got.items.iter().map(|t| t.id));
        match got.next_cursor {
            Some(cursor) => page = PageRequest::after(2, cursor),
            None => break,
        }
    }
    assert_eq!(seen, ids, "every template once, newest first");

    let first = store.get_template(ids[4]).await.unwrap();
    let changed = store
        .update_template(
            first.id,
            TemplatePatch {
                html: Some("<p>Nieuw</p>".into()),
                text: Some(Some("Nieuw".into())),
                ..TemplatePatch::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(changed.template.name, "T0", "kept");
    assert_eq!(changed.template.subject, first.template.subject, "kept");
    assert_eq!(
        (
            changed.template.html.as_str(),
            changed.template.text.as_deref()
        ),
        ("<p>Nieuw</p>", Some("Nieuw"))
    );
    assert_eq!(changed.created_at, first.created_at);
    assert!(changed.updated_at >= first.updated_at);
    assert_eq!(store.get_template(first.id).await.unwrap(), changed);
    let cleared = store
        .update_template(
            first.id,
            TemplatePatch {
                text: Some(None),
                ..TemplatePatch::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(cleared.template.text, None);

    store.delete_template(first.id).await.unwrap();
    for gone in [
        store.get_template(first.id).await.map(|_| ()),
        store.delete_template(first.id).await,
        store
            .update_template(first.id, TemplatePatch::default())
            .await
            .map(|_| ()),
    ] {
        assert!(matches!(gone, Err(StoreError::NotFound)), "{gone:?}");
    }
    let left = store.list_templates(PageRequest::first(10)).await.unwrap();
    assert_eq!(left.items.len(), 4);
    assert!(!left.items.iter().any(|t| t.id == first.id));
}

pub async fn a_template_name_is_trimmed_and_one_to_200_characters(store: &dyn Store) {
    for bad in ["", "   ", &"é".repeat(201)] {
        let refused = store.create_template(template(bad)).await;
        assert_eq!(invalid_field(refused.unwrap_err()), "name", "{bad:?}");
    }
    assert!(
        store
            .list_templates(PageRequest::first(10))
            .await
            .unwrap()
            .items
            .is_empty(),
        "a refused template writes nothing"
    );
    let longest = "é".repeat(200);
    let t = store.create_template(template(&longest)).await.unwrap();
    assert_eq!(t.template.name, longest);
    let t = store.create_template(template("  Welkom  ")).await.unwrap();
    assert_eq!(t.template.name, "Welkom");
    let refused = store
        .update_template(
            t.id,
            TemplatePatch {
                name: Some(" ".into()),
                subject: Some("Changed".into()),
                ..TemplatePatch::default()
            },
        )
        .await;
    assert_eq!(invalid_field(refused.unwrap_err()), "name");
    assert_eq!(
        store.get_template(t.id).await.unwrap(),
        t,
        "a refused change writes nothing"
    );
}
