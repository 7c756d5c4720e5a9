//! Sequences on a server with concurrent engines: claims of due enrolments and trigger jobs
//! by several engines (each a store with a pool of its own, as separate processes would have),
//! racing runs of one step, and the statement-level triggers that write the jobs. Skipped,
//! with a line on stderr, without `NUDGE_TEST_POSTGRES_URL`.

#![allow(clippy::unwrap_used)] // Test code: a failed step should stop the test loudly.

mod common;

use common::{URL_VAR, fresh_schema};
use jiff::{SignedDuration, Timestamp};
use nudge_core::form::{
    FillMode, FormDef, FormField, FormFieldType, FormResponse, Target, check_submission,
};
use nudge_core::{
    ChangeSource, Condition, ContactInput, ContactPatch, Delay, FieldDef, MessageClass,
    SequenceDef, Status, Step,
};
use nudge_store::sequences::step_key;
use nudge_store::{
    ChangeContext, ContactFilter, EnrolmentFilter, EnrolmentOrder, ExistingPolicy, FormSubmission,
    ImportOptions, ImportRow, Memberships, MessageContent, MessageFilter, NewMessage, PageRequest,
    StartTarget, Store,
};
use nudge_store_postgres::PgStore;
use serde_json::json;
use sqlx::Connection;
use sqlx::postgres::PgConnection;
use std::collections::{BTreeMap, HashSet};
use uuid::Uuid;

const CONTACTS: usize = 40;
const SEQUENCES: usize = 5;
const ENGINES_PER_STORE: usize = 4;
const BATCH: u32 = 7;
const LEASE: SignedDuration = SignedDuration::from_secs(3600);

/// Two stores over the same fresh tables, like two engine processes, and a connection to
/// look at the tables directly.
async fn two_stores_or_skip() -> Option<(PgStore, PgStore, PgConnection)> {
    let Some(options) = fresh_schema().await else {
        eprintln!("{URL_VAR} is unset: skipped a PostgreSQL sequence test");
        return None;
    };
    let a = PgStore::connect_with(options.clone()).await.unwrap();
    let b = PgStore::connect_with(options.clone()).await.unwrap();
    let conn = PgConnection::connect_with(&options).await.unwrap();
    Some((a, b, conn))
}

fn at(second: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + second).unwrap()
}

fn ctx(second: i64) -> ChangeContext {
    ChangeContext::new(ChangeSource::Admin, at(second))
}

fn mails(name: &str, delays: &[&str]) -> SequenceDef {
    SequenceDef {
        name: name.into(),
        messages: delays
            .iter()
            .enumerate()
            .map(|(i, d)| Step {
                id: Uuid::now_v7(),
                subject: format!("{name} {}", i + 1),
                html: format!("<p>{name} {}</p>", i + 1),
                text: None,
                delay: Delay::parse(d).unwrap(),
            })
            .collect(),
        start_groups: vec![],
        condition: None,
        window: None,
    }
}

fn rows(prefix: &str, n: usize) -> Vec<ImportRow> {
    (0..n)
        .map(|i| ImportRow {
            line: i as u64 + 2,
            input: ContactInput {
                email: Some(format!("{prefix}{i}@example.com")),
                ..ContactInput::default()
            },
        })
        .collect()
}

fn into(group: Option<Uuid>) -> ImportOptions {
    ImportOptions {
        existing: ExistingPolicy::Update,
        group,
        dry_run: false,
    }
}

/// The jobs waiting, as (contact, joined group), oldest first.
async fn jobs_table(conn: &mut PgConnection) -> Vec<(Uuid, Option<Uuid>)> {
    sqlx::query_as("SELECT contact_id, group_id FROM jobs ORDER BY id")
        .fetch_all(conn)
        .await
        .unwrap()
}

async fn contact(store: &PgStore, email: &str) -> Uuid {
    let input = ContactInput {
        email: Some(email.into()),
        ..ContactInput::default()
    };
    store
        .create_contact(input, ctx(0))
        .await
        .unwrap()
        .contact
        .id
}

/// An engine: claims and runs due enrolments at `now` until none is due or held by another.
/// Returns every enrolment it claimed and every message its steps queued.
async fn engine(store: PgStore, owner: String, now: Timestamp) -> (Vec<Uuid>, Vec<Uuid>) {
    let (mut claimed, mut queued) = (Vec::new(), Vec::new());
    loop {
        let ids = store
            .claim_due_enrolments(now, BATCH, &owner, LEASE)
            .await
            .unwrap();
        if ids.is_empty() {
            // Others may still hold enrolments whose next step falls due at once.
            match store.next_engine_due().await.unwrap() {
                Some(due) if due <= now => {
                    tokio::task::yield_now().await;
                    continue;
                }
                _ => break,
            }
        }
        let ran = store.run_steps(&ids, &owner, now).await.unwrap();
        assert_eq!(
            ran.len(),
            ids.len(),
            "{owner} lost a lease it had just taken"
        );
        claimed.extend(ids);
        queued.extend(ran.iter().filter_map(|o| o.message));
    }
    (claimed, queued)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn engines_claiming_side_by_side_never_take_one_enrolment_twice() {
    let Some((a, b, _)) = two_stores_or_skip().await else {
        return;
    };
    let group = a.create_group("Everyone", None, false).await.unwrap();
    a.import_batch(rows("e", CONTACTS), &into(Some(group.id)), at(0))
        .await
        .unwrap();
    // Each contact is in every sequence, so engines also meet on the same contacts.
    for n in 0..SEQUENCES {
        let seq = a
            .create_sequence(mails(&format!("S{n}"), &["P0D", "P0D"]), at(0))
            .await
            .unwrap();
        a.start_sequence(seq.id, StartTarget::Group(group.id), at(0))
            .await
            .unwrap();
    }
    let engines: Vec<_> = (0..2 * ENGINES_PER_STORE)
        .map(|n| {
            let store = if n % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(engine(store, format!("engine-{n}"), at(1)))
        })
        .collect();
    let (mut claims, mut messages) = (Vec::new(), Vec::new());
    for e in engines {
        let (claimed, queued) = e.await.unwrap();
        claims.extend(claimed);
        messages.extend(queued);
    }
    let enrolments = CONTACTS * SEQUENCES;
    // Two steps each: every enrolment was claimed exactly twice, once per step.
    assert_eq!(claims.len(), 2 * enrolments);
    let distinct: HashSet<Uuid> = claims.iter().copied().collect();
    assert_eq!(distinct.len(), enrolments);
    let unique: HashSet<Uuid> = messages.iter().copied().collect();
    assert_eq!(unique.len(), 2 * enrolments);
    let stored = a
        .list_messages(&MessageFilter::default(), PageRequest::first(1000))
        .await
        .unwrap();
    assert_eq!(stored.items.len(), 2 * enrolments);
    assert!(
        stored
            .items
            .iter()
            .all(|m| m.class == MessageClass::Automation)
    );
    assert_eq!(a.next_engine_due().await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn engines_claiming_side_by_side_run_each_job_once() {
    let Some((a, b, mut conn)) = two_stores_or_skip().await else {
        return;
    };
    let group = a.create_group("Start", None, false).await.unwrap();
    let mut def = mails("Welcome", &["P0D"]);
    def.start_groups = vec![group.id];
    let seq = a.create_sequence(def, at(0)).await.unwrap();
    a.import_batch(rows("j", CONTACTS), &into(Some(group.id)), at(0))
        .await
        .unwrap();
    assert_eq!(jobs_table(&mut conn).await.len(), CONTACTS);

    let engines: Vec<_> = (0..2 * ENGINES_PER_STORE)
        .map(|n| {
            let store = if n % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move {
                let owner = format!("engine-{n}");
                let (mut claimed, mut ran) = (Vec::new(), 0);
                loop {
                    let ids = store.claim_jobs(at(1), BATCH, &owner, LEASE).await.unwrap();
                    if ids.is_empty() {
                        break;
                    }
                    ran += store.run_jobs(&ids, &owner, at(1)).await.unwrap();
                    claimed.extend(ids);
                }
                (claimed, ran)
            })
        })
        .collect();
    let (mut claims, mut ran) = (Vec::new(), 0);
    for e in engines {
        let (claimed, n) = e.await.unwrap();
        claims.extend(claimed);
        ran += n;
    }
    assert_eq!(claims.len(), CONTACTS);
    assert_eq!(claims.iter().collect::<HashSet<_>>().len(), CONTACTS);
    assert_eq!(ran, CONTACTS as u64);
    assert!(jobs_table(&mut conn).await.is_empty());
    let filter = EnrolmentFilter {
        sequence: Some(seq.id),
        ..EnrolmentFilter::default()
    };
    let enrolled = a
        .list_enrolments(&filter, EnrolmentOrder::Newest, PageRequest::first(1000))
        .await
        .unwrap()
        .items;
    assert_eq!(enrolled.len(), CONTACTS);
    let people: HashSet<Uuid> = enrolled.iter().map(|e| e.contact_id).collect();
    assert_eq!(people.len(), CONTACTS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_runs_of_a_step_queue_one_message() {
    let Some((a, b, _)) = two_stores_or_skip().await else {
        return;
    };
    let seq = a
        .create_sequence(mails("Once", &["P0D", "P1D"]), at(0))
        .await
        .unwrap();
    let mut people = Vec::new();
    for n in 0..CONTACTS {
        let c = contact(&a, &format!("r{n}@example.com")).await;
        a.start_sequence(seq.id, StartTarget::Contact(c), at(0))
            .await
            .unwrap();
        people.push(c);
    }
    let lease = SignedDuration::from_secs(60);
    let stalled = a
        .claim_due_enrolments(at(0), 1000, "a", lease)
        .await
        .unwrap();
    assert_eq!(stalled.len(), CONTACTS);
    // "a" stalls past its lease and "b" takes every enrolment over; then "a" wakes up and runs
    // its batch while "b" runs the same one, and a third party queues some of the steps'
    // messages itself (a run whose answer was lost).
    let taken = b
        .claim_due_enrolments(at(61), 1000, "b", lease)
        .await
        .unwrap();
    assert_eq!(taken.len(), CONTACTS);
    let first = seq.def.messages[0].id;
    let mut replays = Vec::new();
    for e in taken.iter().step_by(2) {
        let contact_id = a.get_enrolment(*e).await.unwrap().contact_id;
        let (store, key) = (a.clone(), step_key(*e, first, seq.version));
        replays.push(tokio::spawn(async move {
            let message = NewMessage {
                contact_id,
                class: MessageClass::Automation,
                content: MessageContent {
                    subject: "Once 1".into(),
                    html: "<p>Once 1</p>".into(),
                    text: None,
                    from_email: None,
                    from_name: None,
                },
                idempotency_key: key,
                due_at: at(61),
            };
            store.queue_message(message, at(61)).await.unwrap()
        }));
    }
    let (late, current) = tokio::join!(
        a.run_steps(&stalled, "a", at(62)),
        b.run_steps(&taken, "b", at(62))
    );
    assert!(late.unwrap().is_empty(), "a lost lease runs nothing");
    let current = current.unwrap();
    assert_eq!(current.len(), CONTACTS);
    for r in replays {
        r.await.unwrap();
    }
    for c in people {
        let filter = MessageFilter {
            contact: Some(c),
            ..MessageFilter::default()
        };
        let mine = a
            .list_messages(&filter, PageRequest::first(10))
            .await
            .unwrap();
        assert_eq!(mine.items.len(), 1, "{:?}", mine.items);
    }
    assert!(current.iter().all(|o| o.message.is_some()));
    assert!(current.iter().all(|o| o.state.next_step == Some(1)));
}

#[tokio::test]
async fn joining_a_start_group_writes_a_job_naming_the_group() {
    let Some((store, _, mut conn)) = two_stores_or_skip().await else {
        return;
    };
    let start = store.create_group("Start", None, false).await.unwrap();
    let other = store.create_group("Other", None, false).await.unwrap();
    let mut def = mails("Welcome", &["P0D"]);
    def.start_groups = vec![start.id];
    store.create_sequence(def, at(0)).await.unwrap();

    // No sequence has a condition: creating and editing contacts writes no job.
    let c = contact(&store, "join@example.com").await;
    let patch = ContactPatch {
        first_name: nudge_core::Patch::Set("Jo".into()),
        ..ContactPatch::default()
    };
    store
        .update_contact(c, patch, Memberships::default(), ctx(1))
        .await
        .unwrap();
    store
        .set_group_membership(c, other.id, true, ctx(1))
        .await
        .unwrap();
    assert!(jobs_table(&mut conn).await.is_empty());

    store
        .set_group_membership(c, start.id, true, ctx(2))
        .await
        .unwrap();
    assert_eq!(jobs_table(&mut conn).await, [(c, Some(start.id))]);
    // Joining again changes nothing, so it writes nothing.
    store
        .set_group_membership(c, start.id, true, ctx(3))
        .await
        .unwrap();
    assert_eq!(jobs_table(&mut conn).await.len(), 1);

    let input = ContactInput {
        email: Some("both@example.com".into()),
        groups: vec![other.id, start.id],
        ..ContactInput::default()
    };
    let d = store
        .create_contact(input, ctx(4))
        .await
        .unwrap()
        .contact
        .id;
    assert_eq!(jobs_table(&mut conn).await[1..], [(d, Some(start.id))]);

    // One multi-row statement inserts the memberships of a whole import batch: one job each.
    let batch = rows("i", 50);
    store
        .import_batch(batch.clone(), &into(Some(start.id)), at(5))
        .await
        .unwrap();
    let jobs = jobs_table(&mut conn).await;
    assert_eq!(jobs.len(), 52);
    assert!(jobs[2..].iter().all(|(_, g)| *g == Some(start.id)));
    assert_eq!(
        jobs[2..]
            .iter()
            .map(|(c, _)| *c)
            .collect::<HashSet<_>>()
            .len(),
        50
    );
    // Imported again, the contacts are members already: no job.
    store
        .import_batch(batch, &into(Some(start.id)), at(6))
        .await
        .unwrap();
    // Into a group that starts nothing: no job.
    store
        .import_batch(rows("o", 10), &into(Some(other.id)), at(6))
        .await
        .unwrap();
    assert_eq!(jobs_table(&mut conn).await.len(), 52);

    // Waiting jobs are due at once, whatever the engine's clock says; claimed ones when their
    // lease runs out (in case their engine died).
    let due = store.next_engine_due().await.unwrap();
    assert!(due.is_some_and(|t| t <= at(0)), "{due:?}");
    let claimed = store.claim_jobs(at(10), 1000, "e", LEASE).await.unwrap();
    assert_eq!(claimed.len(), 52);
    assert_eq!(
        store.next_engine_due().await.unwrap(),
        Some(at(10).checked_add(LEASE).unwrap())
    );
}

#[tokio::test]
async fn field_and_status_changes_write_jobs_only_while_a_sequence_has_a_condition() {
    let Some((store, _, mut conn)) = two_stores_or_skip().await else {
        return;
    };
    let stage = FieldDef::new("stage", None, "text", vec![]).unwrap();
    store.create_field(stage).await.unwrap();
    let c = contact(&store, "lead@example.com").await;
    let set_stage = |value: &str| ContactPatch {
        fields: BTreeMap::from([("stage".to_owned(), json!(value))]),
        ..ContactPatch::default()
    };
    store
        .update_contact(c, set_stage("lead"), Memberships::default(), ctx(1))
        .await
        .unwrap();
    assert!(jobs_table(&mut conn).await.is_empty());

    let mut def = mails("Nurture", &["P0D"]);
    def.condition = Some(Condition {
        field: "stage".into(),
        values: vec!["lead".into()],
    });
    let seq = store.create_sequence(def.clone(), at(2)).await.unwrap();

    // A change to anything but the fields or the status writes no job.
    let patch = ContactPatch {
        last_name: nudge_core::Patch::Set("Lee".into()),
        ..ContactPatch::default()
    };
    store
        .update_contact(c, patch, Memberships::default(), ctx(3))
        .await
        .unwrap();
    assert!(jobs_table(&mut conn).await.is_empty());

    store
        .update_contact(c, set_stage("customer"), Memberships::default(), ctx(4))
        .await
        .unwrap();
    assert_eq!(jobs_table(&mut conn).await, [(c, None)]);
    store
        .change_status(c, Status::Unsubscribed, None, ctx(5))
        .await
        .unwrap();
    assert_eq!(jobs_table(&mut conn).await.len(), 2);
    let d = contact(&store, "new@example.com").await;
    assert_eq!(jobs_table(&mut conn).await[2..], [(d, None)]);

    // A multi-row import: one job per new contact, and one per updated contact whose fields
    // changed (not for one that stays as it was).
    let mut batch = rows("m", 20);
    batch.push(ImportRow {
        line: 100,
        input: ContactInput {
            email: Some("lead@example.com".into()),
            fields: BTreeMap::from([("stage".to_owned(), json!("lead"))]),
            ..ContactInput::default()
        },
    });
    batch.push(ImportRow {
        line: 101,
        input: ContactInput {
            email: Some("new@example.com".into()),
            ..ContactInput::default()
        },
    });
    store.import_batch(batch, &into(None), at(6)).await.unwrap();
    let jobs = jobs_table(&mut conn).await;
    assert_eq!(jobs.len(), 3 + 20 + 1, "{jobs:?}");
    assert!(jobs.iter().all(|(_, g)| g.is_none()));

    // Once no sequence has a condition, changes write no jobs again.
    let mut unbound = def;
    unbound.condition = None;
    store.update_sequence(seq.id, unbound, at(7)).await.unwrap();
    store
        .update_contact(c, set_stage("customer"), Memberships::default(), ctx(8))
        .await
        .unwrap();
    contact(&store, "late@example.com").await;
    assert_eq!(jobs_table(&mut conn).await.len(), 24);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_submissions_of_one_new_address_make_one_contact_and_one_enrolment() {
    let Some((a, b, _)) = two_stores_or_skip().await else {
        return;
    };
    let seq = a
        .create_sequence(mails("Course", &["P0D"]), at(0))
        .await
        .unwrap();
    let def = FormDef {
        slug: "course".into(),
        name: "Course".into(),
        fields: vec![FormField {
            name: "email".into(),
            label: "Email".into(),
            kind: FormFieldType::Email,
            required: true,
            maps_to: Some(Target::Email),
            mode: FillMode::Overwrite,
            options: vec![],
            value: None,
        }],
        group_choices: vec![],
        groups: vec![],
        double_opt_in: true,
        sequence_id: Some(seq.id),
        notify: vec!["owner@example.com".into()],
        response: FormResponse::Message("Thanks!".into()),
    };
    let form = a.create_form(def.clone(), at(0)).await.unwrap();
    let values = BTreeMap::from([("email".to_owned(), vec!["Race@Example.com".to_owned()])]);
    let checked = check_submission(&def, &[], &values, &[]).unwrap();
    let content = MessageContent {
        subject: "Hi".into(),
        html: "<p>Hi</p>".into(),
        text: None,
        from_email: None,
        from_name: None,
    };
    let submissions: Vec<_> = (0..2 * ENGINES_PER_STORE)
        .map(|n| {
            let store = if n % 2 == 0 { a.clone() } else { b.clone() };
            let submission = FormSubmission {
                form_id: form.id,
                submission: checked.clone(),
                ip: None,
                confirmation: content.clone(),
                notification: content.clone(),
            };
            // Each at its own microsecond, so that each queues its own mail.
            let second = at(1)
                .checked_add(SignedDuration::from_micros(n as i64))
                .unwrap();
            tokio::spawn(async move { store.submit_form(submission, second).await })
        })
        .collect();
    let mut outcomes = Vec::new();
    for s in submissions {
        outcomes.push(s.await.unwrap().unwrap());
    }
    assert_eq!(outcomes.iter().filter(|o| o.created).count(), 1);
    assert_eq!(outcomes.iter().filter(|o| o.enrolment.is_some()).count(), 1);
    let people: HashSet<Uuid> = outcomes.iter().map(|o| o.contact_id).collect();
    assert_eq!(people.len(), 1);
    let all = a.count_contacts(&ContactFilter::default()).await.unwrap();
    assert_eq!(all, 1);
    // Every submission asked for a confirmation and told the owner.
    assert!(outcomes.iter().all(|o| o.confirmation));
    let sent = a
        .list_messages(&MessageFilter::default(), PageRequest::first(100))
        .await
        .unwrap();
    assert_eq!(sent.items.len(), 2 * outcomes.len());
}
