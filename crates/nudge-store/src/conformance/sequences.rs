//! Stories of sequences, enrolments, trigger jobs and forms (product.md §4-5, seed 002).
//!
//! Time runs on fixed timestamps (`at(second)`); the engine is driven by hand: [`tick`] claims
//! and runs the due enrolments, [`jobs`] the trigger jobs, as `nudge_engine::Engine` does.

use super::{LEASE, ctx, field, input, invalid_field, kinds};
use crate::sequences::step_key;
use crate::{
    ChangeContext, Enrolment, EnrolmentFilter, EnrolmentOrder, ExistingPolicy, FormSubmission,
    ImportOptions, ImportRow, Memberships, Message, MessageContent, MessageFilter, NewMessage,
    PageRequest, StartOutcome, StartTarget, StepOutcome, Store, StoreError,
};
use jiff::Timestamp;
use nudge_core::form::{
    FillMode, FormDef, FormField, FormFieldType, FormResponse, Target, check_submission,
};
use nudge_core::sequence::WAITING_FOR_CONFIRMATION;
use nudge_core::{
    ChangeSource, Condition, ContactPatch, Delay, EnrolmentAction, EnrolmentStatus, MessageClass,
    MessageStatus, SequenceDef, SkipRule, Status, Step, Suspension, TimelineEntry, TimelineKind,
};
use serde_json::json;
use std::collections::BTreeMap;
use uuid::Uuid;

const DAY: i64 = 86_400;

fn at(second: i64) -> Timestamp {
    ctx(second).at
}

fn step(subject: &str, delay: &str) -> Step {
    Step {
        id: Uuid::now_v7(),
        subject: subject.into(),
        html: format!("<p>{subject}</p>"),
        text: None,
        delay: Delay::parse(delay).unwrap(),
    }
}

/// A sequence named `name` whose messages are `"{name} 1"`, `"{name} 2"`, ... after `delays`.
fn mails(name: &str, delays: &[&str]) -> SequenceDef {
    SequenceDef {
        name: name.into(),
        messages: delays
            .iter()
            .enumerate()
            .map(|(i, d)| step(&format!("{name} {}", i + 1), d))
            .collect(),
        start_groups: vec![],
        condition: None,
        window: None,
    }
}

/// One engine pass over the enrolments due at `second`.
async fn tick(store: &dyn Store, second: i64) -> Vec<StepOutcome> {
    let due = store
        .claim_due_enrolments(at(second), 100, "engine", LEASE)
        .await
        .unwrap();
    store.run_steps(&due, "engine", at(second)).await.unwrap()
}

/// Runs the trigger jobs waiting at `second`; returns how many ran.
async fn jobs(store: &dyn Store, second: i64) -> u64 {
    let claimed = store
        .claim_jobs(at(second), 100, "engine", LEASE)
        .await
        .unwrap();
    store
        .run_jobs(&claimed, "engine", at(second))
        .await
        .unwrap()
}

async fn enrolments_of(store: &dyn Store, contact: Uuid) -> Vec<Enrolment> {
    let filter = EnrolmentFilter {
        contact: Some(contact),
        ..EnrolmentFilter::default()
    };
    store
        .list_enrolments(&filter, EnrolmentOrder::Newest, PageRequest::first(100))
        .await
        .unwrap()
        .items
}

async fn only_enrolment(store: &dyn Store, contact: Uuid) -> Enrolment {
    let mut all = enrolments_of(store, contact).await;
    assert_eq!(all.len(), 1, "{all:?}");
    all.remove(0)
}

/// The contact's messages, oldest first.
async fn messages_of(store: &dyn Store, contact: Uuid) -> Vec<Message> {
    let filter = MessageFilter {
        contact: Some(contact),
        ..MessageFilter::default()
    };
    let mut page = store
        .list_messages(&filter, PageRequest::first(100))
        .await
        .unwrap()
        .items;
    page.reverse();
    page
}

async fn entries(store: &dyn Store, contact: Uuid, kind: TimelineKind) -> Vec<TimelineEntry> {
    let page = store
        .timeline(contact, PageRequest::first(100))
        .await
        .unwrap();
    page.items
        .into_iter()
        .rev()
        .filter(|e| e.kind == kind)
        .collect()
}

fn conflict(err: StoreError) -> (&'static str, Option<&'static str>) {
    match err {
        StoreError::Conflict { code, field, .. } => (code, field),
        other => panic!("expected Conflict, got {other:?}"),
    }
}

async fn contact(store: &dyn Store, email: &str, second: i64) -> Uuid {
    store
        .create_contact(input(email), ctx(second))
        .await
        .unwrap()
        .contact
        .id
}

pub async fn sequences_are_created_listed_updated_and_deleted(store: &dyn Store) {
    let g = store.create_group("Start", None, false).await.unwrap();
    let mut def = mails("Welcome", &["P0D", "P3D", "P4D"]);
    def.start_groups = vec![g.id];
    let created = store.create_sequence(def.clone(), at(0)).await.unwrap();
    assert_eq!(created.def, def);
    assert_eq!(created.version, 1);
    assert_eq!((created.created_at, created.updated_at), (at(0), at(0)));
    assert_eq!(store.get_sequence(created.id).await.unwrap(), created);
    let other = store
        .create_sequence(mails("Other", &["P1D"]), at(5))
        .await
        .unwrap();
    assert_eq!(
        store.list_sequences().await.unwrap(),
        vec![created.clone(), other.clone()],
        "oldest first"
    );

    let mut changed = def.clone();
    changed.name = "Welcome back".into();
    changed.messages.push(step("Four", "P1W"));
    changed.start_groups = vec![];
    let updated = store
        .update_sequence(created.id, changed.clone(), at(10))
        .await
        .unwrap();
    assert_eq!(updated.def, changed);
    assert_eq!(updated.version, 2);
    assert_eq!((updated.created_at, updated.updated_at), (at(0), at(10)));
    assert_eq!(store.get_sequence(created.id).await.unwrap(), updated);
    let again = store
        .update_sequence(created.id, changed.clone(), at(11))
        .await
        .unwrap();
    assert_eq!(again.version, 3);

    // The group no longer starts the sequence: joining it enrols nobody.
    let c = contact(store, "joins@example.com", 12).await;
    store
        .set_group_membership(c, g.id, true, ctx(13))
        .await
        .unwrap();
    jobs(store, 14).await;
    assert!(enrolments_of(store, c).await.is_empty());

    let mut bad = mails(" ", &[]);
    let fields = invalid_field(
        store
            .create_sequence(bad.clone(), at(20))
            .await
            .unwrap_err(),
    );
    assert!(
        fields.contains("name") && fields.contains("messages"),
        "{fields}"
    );
    bad = mails("Bad", &["P1D"]);
    bad.start_groups = vec![g.id, Uuid::now_v7()];
    let refused = store
        .create_sequence(bad.clone(), at(20))
        .await
        .unwrap_err();
    assert_eq!(invalid_field(refused), "start_groups[1]");
    let refused = store
        .update_sequence(created.id, bad, at(20))
        .await
        .unwrap_err();
    assert_eq!(invalid_field(refused), "start_groups[1]");
    assert_eq!(store.get_sequence(created.id).await.unwrap(), again);
    assert_eq!(store.list_sequences().await.unwrap().len(), 2);
    for missing in [
        store.get_sequence(Uuid::now_v7()).await.map(|_| ()),
        store
            .update_sequence(Uuid::now_v7(), changed.clone(), at(21))
            .await
            .map(|_| ()),
        store.delete_sequence(Uuid::now_v7()).await,
    ] {
        assert!(matches!(missing, Err(StoreError::NotFound)), "{missing:?}");
    }

    // Deleting takes the enrolments along; the messages stay in the ledger.
    store
        .start_sequence(created.id, StartTarget::Contact(c), at(30))
        .await
        .unwrap();
    assert_eq!(tick(store, 30).await.len(), 1);
    store.delete_sequence(created.id).await.unwrap();
    assert!(matches!(
        store.get_sequence(created.id).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.list_sequences().await.unwrap(), vec![other]);
    assert!(enrolments_of(store, c).await.is_empty());
    assert_eq!(messages_of(store, c).await.len(), 1);
    assert_eq!(store.next_engine_due().await.unwrap(), None);
}

pub async fn starting_a_sequence_enrols_a_contact_or_a_group_tree_once(store: &dyn Store) {
    let seq = store
        .create_sequence(mails("Course", &["P0D", "P1D"]), at(0))
        .await
        .unwrap();
    let parent = store.create_group("Parent", None, false).await.unwrap();
    let child = store
        .create_group("Child", Some(parent.id), false)
        .await
        .unwrap();
    let mut members = Vec::new();
    for (email, groups) in [
        ("p@example.com", vec![parent.id]),
        ("c@example.com", vec![child.id]),
        ("both@example.com", vec![parent.id, child.id]),
    ] {
        let mut i = input(email);
        i.groups = groups;
        members.push(store.create_contact(i, ctx(1)).await.unwrap().contact.id);
    }
    let loner = contact(store, "loner@example.com", 1).await;

    let started = store
        .start_sequence(seq.id, StartTarget::Group(parent.id), at(10))
        .await
        .unwrap();
    assert_eq!(
        started,
        StartOutcome {
            enrolled: 3,
            already: 0
        }
    );
    let one = store
        .start_sequence(seq.id, StartTarget::Contact(loner), at(11))
        .await
        .unwrap();
    assert_eq!(
        one,
        StartOutcome {
            enrolled: 1,
            already: 0
        }
    );
    let again = store
        .start_sequence(seq.id, StartTarget::Group(parent.id), at(12))
        .await
        .unwrap();
    assert_eq!(
        again,
        StartOutcome {
            enrolled: 0,
            already: 3
        }
    );
    let again = store
        .start_sequence(seq.id, StartTarget::Contact(members[0]), at(12))
        .await
        .unwrap();
    assert_eq!(
        again,
        StartOutcome {
            enrolled: 0,
            already: 1
        }
    );

    let e = only_enrolment(store, members[0]).await;
    assert_eq!(
        (e.sequence_id, e.sequence_name.as_str()),
        (seq.id, "Course")
    );
    assert_eq!(e.contact_email, "p@example.com");
    assert_eq!(e.state.status, EnrolmentStatus::Active);
    assert_eq!(e.state.next_step, Some(0));
    assert_eq!(
        e.state.next_due_at,
        Some(at(10)),
        "unchanged by the second start"
    );
    assert_eq!((e.state.last_step, e.state.last_message_at), (None, None));
    assert_eq!(e.created_at, at(10));
    assert_eq!(store.get_enrolment(e.id).await.unwrap(), e);
    let filter = EnrolmentFilter {
        sequence: Some(seq.id),
        ..EnrolmentFilter::default()
    };
    let all = store
        .list_enrolments(&filter, EnrolmentOrder::Newest, PageRequest::first(100))
        .await
        .unwrap();
    assert_eq!(all.items.len(), 4);
    let entered = entries(store, members[2], TimelineKind::SequenceEntered).await;
    assert_eq!(entered.len(), 1, "one entry, for the start that enrolled");
    assert_eq!(entered[0].data["how"], json!("manual"));
    assert_eq!(entered[0].data["sequence_id"], json!(seq.id));
    assert_eq!(entered[0].at, at(10));

    for missing in [
        store
            .start_sequence(Uuid::now_v7(), StartTarget::Contact(loner), at(13))
            .await,
        store
            .start_sequence(seq.id, StartTarget::Contact(Uuid::now_v7()), at(13))
            .await,
        store
            .start_sequence(seq.id, StartTarget::Group(Uuid::now_v7()), at(13))
            .await,
    ] {
        assert!(matches!(missing, Err(StoreError::NotFound)), "{missing:?}");
    }
    assert!(matches!(
        store.get_enrolment(Uuid::now_v7()).await,
        Err(StoreError::NotFound)
    ));
}

pub async fn the_engine_runs_a_sequence_over_time(store: &dyn Store) {
    let seq = store
        .create_sequence(mails("Welcome", &["P0D", "P3D", "P4D"]), at(0))
        .await
        .unwrap();
    let steps = seq.def.messages.clone();
    let mut i = input("eve@example.com");
    i.first_name = Some("Eve".into());
    let c = store.create_contact(i, ctx(0)).await.unwrap().contact.id;
    store
        .start_sequence(seq.id, StartTarget::Contact(c), at(0))
        .await
        .unwrap();
    let e = only_enrolment(store, c).await;
    assert_eq!(e.contact_name, "Eve");
    assert_eq!(store.next_engine_due().await.unwrap(), Some(at(0)));

    let first = tick(store, 0).await;
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0].enrolment_id, e.id);
    let m1 = store.get_message(first[0].message.unwrap()).await.unwrap();
    assert_eq!(m1.class, MessageClass::Automation);
    assert_eq!(m1.status, MessageStatus::Queued);
    assert_eq!(m1.idempotency_key, step_key(e.id, steps[0].id, 1));
    assert_eq!(m1.content.subject, "Welcome 1");
    assert_eq!(m1.content.html, "<p>Welcome 1</p>");
    assert_eq!(
        (m1.due_at, m1.to_email.as_str()),
        (at(0), "eve@example.com")
    );
    let s = &first[0].state;
    assert_eq!(s.status, EnrolmentStatus::Active);
    assert_eq!((s.last_step, s.last_message_at), (Some(0), Some(at(0))));
    assert_eq!((s.next_step, s.next_due_at), (Some(1), Some(at(3 * DAY))));
    assert_eq!(store.get_enrolment(e.id).await.unwrap().state, *s);

    assert!(
        tick(store, DAY).await.is_empty(),
        "nothing is due after one day"
    );
    assert_eq!(store.next_engine_due().await.unwrap(), Some(at(3 * DAY)));

    // Run a minute late: the next gap still counts from when the message was due.
    let second = tick(store, 3 * DAY + 60).await;
    assert_eq!(second.len(), 1);
    let m2 = store.get_message(second[0].message.unwrap()).await.unwrap();
    assert_eq!(m2.content.subject, "Welcome 2");
    assert_eq!(m2.idempotency_key, step_key(e.id, steps[1].id, 1));
    assert_eq!(m2.due_at, at(3 * DAY + 60));
    let s = &second[0].state;
    assert_eq!(s.last_message_at, Some(at(3 * DAY + 60)));
    assert_eq!(s.next_due_at, Some(at(7 * DAY)));

    assert!(tick(store, 7 * DAY - 1).await.is_empty());
    let third = tick(store, 7 * DAY).await;
    assert_eq!(third.len(), 1);
    let m3 = store.get_message(third[0].message.unwrap()).await.unwrap();
    assert_eq!(m3.content.subject, "Welcome 3");
    let done = store.get_enrolment(e.id).await.unwrap();
    assert_eq!(done.state, third[0].state);
    assert_eq!(done.state.status, EnrolmentStatus::Completed);
    assert_eq!(
        (done.state.last_step, done.state.last_message_at),
        (Some(2), Some(at(7 * DAY)))
    );
    assert_eq!((done.state.next_step, done.state.next_due_at), (None, None));
    assert_eq!(done.updated_at, at(7 * DAY));
    assert_eq!(store.next_engine_due().await.unwrap(), None);
    assert!(tick(store, 30 * DAY).await.is_empty());

    assert_eq!(
        messages_of(store, c)
            .await
            .iter()
            .map(|m| m.id)
            .collect::<Vec<_>>(),
        [m1.id, m2.id, m3.id]
    );
    assert_eq!(
        kinds(store, c).await,
        [
            TimelineKind::ContactCreated,
            TimelineKind::SequenceEntered,
            TimelineKind::EmailQueued,
            TimelineKind::EmailQueued,
            TimelineKind::EmailQueued,
            TimelineKind::SequenceLeft,
        ]
    );
    let left = entries(store, c, TimelineKind::SequenceLeft).await;
    assert_eq!(left[0].data["status"], json!("completed"));
    assert_eq!(left[0].at, at(7 * DAY));
}

pub async fn a_replayed_step_never_queues_twice(store: &dyn Store) {
    let seq = store
        .create_sequence(mails("Once", &["P0D", "P1D"]), at(0))
        .await
        .unwrap();
    let c = contact(store, "once@example.com", 0).await;
    store
        .start_sequence(seq.id, StartTarget::Contact(c), at(0))
        .await
        .unwrap();
    let e = only_enrolment(store, c).await;

    let a = store
        .claim_due_enrolments(at(0), 10, "a", LEASE)
        .await
        .unwrap();
    assert_eq!(a, [e.id]);
    assert!(
        store
            .claim_due_enrolments(at(30), 10, "b", LEASE)
            .await
            .unwrap()
            .is_empty(),
        "the lease holds"
    );
    // Engine "a" stalls past its lease; "b" takes the enrolment over.
    let b = store
        .claim_due_enrolments(at(61), 10, "b", LEASE)
        .await
        .unwrap();
    assert_eq!(b, [e.id]);
    assert!(
        store.run_steps(&a, "a", at(62)).await.unwrap().is_empty(),
        "a lost lease runs nothing"
    );
    assert!(messages_of(store, c).await.is_empty());

    // The step's message exists already (a run whose answer was lost): it is returned, not
    // queued again.
    let key = step_key(e.id, seq.def.messages[0].id, seq.version);
    let (earlier, _) = store
        .queue_message(
            NewMessage {
                contact_id: c,
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
            },
            at(61),
        )
        .await
        .unwrap();
    let ran = store.run_steps(&b, "b", at(62)).await.unwrap();
    assert_eq!(ran.len(), 1);
    assert_eq!(ran[0].message, Some(earlier.id));
    assert_eq!(ran[0].state.next_step, Some(1));
    assert_eq!(messages_of(store, c).await.len(), 1);
    assert!(
        store.run_steps(&b, "b", at(63)).await.unwrap().is_empty(),
        "the lease was released with the step"
    );
    assert_eq!(
        store.get_enrolment(e.id).await.unwrap().state.next_due_at,
        Some(at(DAY))
    );
}

pub async fn a_pending_contact_waits_for_confirmation(store: &dyn Store) {
    let seq = store
        .create_sequence(mails("Course", &["P0D", "P2D"]), at(0))
        .await
        .unwrap();
    let mut i = input("pending@example.com");
    i.status = Some("pending".into());
    let c = store.create_contact(i, ctx(0)).await.unwrap().contact.id;
    store
        .start_sequence(seq.id, StartTarget::Contact(c), at(0))
        .await
        .unwrap();

    let waited = tick(store, 0).await;
    assert_eq!(waited.len(), 1);
    assert_eq!(waited[0].message, None);
    let s = &waited[0].state;
    assert_eq!(s.status, EnrolmentStatus::Active);
    assert_eq!((s.next_step, s.next_due_at), (Some(0), None));
    assert_eq!(s.reason.as_deref(), Some(WAITING_FOR_CONFIRMATION));
    let e = only_enrolment(store, c).await;
    assert_eq!(e.state, *s);
    assert!(tick(store, DAY).await.is_empty());
    assert_eq!(store.next_engine_due().await.unwrap(), None);
    assert!(messages_of(store, c).await.is_empty());
    assert_eq!(
        kinds(store, c).await.last(),
        Some(&TimelineKind::SequenceChanged)
    );

    let confirmed = store.confirm_contact(c, at(2 * DAY)).await.unwrap();
    assert_eq!(confirmed.contact.status, Status::Subscribed);
    let e = store.get_enrolment(e.id).await.unwrap();
    assert_eq!(e.state.status, EnrolmentStatus::Active);
    assert_eq!(e.state.next_due_at, Some(at(2 * DAY)));
    assert_eq!(e.state.reason, None);
    let changed = entries(store, c, TimelineKind::StatusChanged).await;
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0].at, at(2 * DAY));
    assert_eq!(store.next_engine_due().await.unwrap(), Some(at(2 * DAY)));

    let twice = store.confirm_contact(c, at(2 * DAY + 5)).await.unwrap();
    assert_eq!(
        twice,
        store.get_contact(c).await.unwrap(),
        "nothing to confirm"
    );
    assert_eq!(
        entries(store, c, TimelineKind::StatusChanged).await.len(),
        1
    );

    let sent = tick(store, 2 * DAY).await;
    assert_eq!(sent.len(), 1);
    let m = store.get_message(sent[0].message.unwrap()).await.unwrap();
    assert_eq!(m.status, MessageStatus::Queued);
    assert_eq!(sent[0].state.next_due_at, Some(at(4 * DAY)));
    assert!(matches!(
        store.confirm_contact(Uuid::now_v7(), at(0)).await,
        Err(StoreError::NotFound)
    ));
}

pub async fn a_contact_unsubscribed_between_steps_is_skipped_and_cancelled(store: &dyn Store) {
    let seq = store
        .create_sequence(mails("Drip", &["P0D", "P3D", "P4D"]), at(0))
        .await
        .unwrap();
    let c = contact(store, "leaves@example.com", 0).await;
    store
        .start_sequence(seq.id, StartTarget::Contact(c), at(0))
        .await
        .unwrap();
    assert!(tick(store, 0).await[0].message.is_some());
    let unsub = ChangeContext::new(ChangeSource::UnsubscribeLink, at(DAY));
    store
        .change_status(c, Status::Unsubscribed, None, unsub)
        .await
        .unwrap();

    let stopped = tick(store, 3 * DAY).await;
    assert_eq!(stopped.len(), 1);
    let skipped = store
        .get_message(stopped[0].message.unwrap())
        .await
        .unwrap();
    assert_eq!(skipped.status, MessageStatus::Skipped);
    assert_eq!(skipped.skip_rule, Some(SkipRule::Unsubscribed));
    assert_eq!(skipped.content.subject, "Drip 2");
    let s = &stopped[0].state;
    assert_eq!(s.status, EnrolmentStatus::Cancelled);
    assert_eq!((s.next_step, s.next_due_at), (None, None));
    assert!(
        s.reason
            .as_deref()
            .is_some_and(|r| r.contains("unsubscribed")),
        "{s:?}"
    );
    assert_eq!(only_enrolment(store, c).await.state, *s);
    assert!(tick(store, 7 * DAY).await.is_empty());
    assert_eq!(messages_of(store, c).await.len(), 2);
    let all = kinds(store, c).await;
    assert_eq!(
        all[all.len() - 3..],
        [
            TimelineKind::EmailQueued,
            TimelineKind::EmailSkipped,
            TimelineKind::SequenceLeft
        ]
    );
    let left = entries(store, c, TimelineKind::SequenceLeft).await;
    assert_eq!(left[0].data["status"], json!("cancelled"));
}

pub async fn joining_a_start_group_enrols_through_a_job(store: &dyn Store) {
    let start = store.create_group("Start", None, false).await.unwrap();
    let other = store.create_group("Other", None, false).await.unwrap();
    let mut def = mails("Onboarding", &["P0D"]);
    def.start_groups = vec![start.id];
    let seq = store.create_sequence(def, at(0)).await.unwrap();

    // By hand.
    let a = contact(store, "a@example.com", 1).await;
    assert_eq!(
        jobs(store, 1).await,
        0,
        "creating a contact is no trigger here"
    );
    store
        .set_group_membership(a, other.id, true, ctx(2))
        .await
        .unwrap();
    assert_eq!(jobs(store, 2).await, 0, "other groups start nothing");
    store
        .set_group_membership(a, start.id, true, ctx(3))
        .await
        .unwrap();
    assert!(store.next_engine_due().await.unwrap().is_some());
    // A claimed job is leased: another engine gets nothing, and the holder runs it.
    let claimed = store.claim_jobs(at(4), 10, "x", LEASE).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert!(
        store
            .claim_jobs(at(5), 10, "y", LEASE)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.run_jobs(&claimed, "y", at(5)).await.unwrap(), 0);
    assert_eq!(store.run_jobs(&claimed, "x", at(5)).await.unwrap(), 1);
    let e = only_enrolment(store, a).await;
    assert_eq!(e.sequence_id, seq.id);
    assert_eq!(e.state.status, EnrolmentStatus::Active);
    assert_eq!(e.state.next_due_at, Some(at(5)));
    let entered = entries(store, a, TimelineKind::SequenceEntered).await;
    assert_eq!(entered[0].data["how"], json!("start_group"));
    assert_eq!(jobs(store, 6).await, 0, "the job is gone");

    // By a new contact's groups.
    let mut i = input("b@example.com");
    i.groups = vec![start.id];
    let b = store.create_contact(i, ctx(10)).await.unwrap().contact.id;
    assert_eq!(jobs(store, 11).await, 1);
    assert_eq!(only_enrolment(store, b).await.sequence_id, seq.id);

    // By an import into the group.
    let options = ImportOptions {
        existing: ExistingPolicy::Update,
        group: Some(start.id),
        dry_run: false,
    };
    let rows = vec![ImportRow {
        line: 2,
        input: input("c@example.com"),
    }];
    store.import_batch(rows, &options, at(20)).await.unwrap();
    assert_eq!(jobs(store, 21).await, 1);
    let c = store
        .find_contact_by_email("c@example.com")
        .await
        .unwrap()
        .unwrap()
        .contact
        .id;
    assert_eq!(
        only_enrolment(store, c).await.state.next_due_at,
        Some(at(21))
    );

    // Joining again while enrolled changes nothing.
    store
        .set_group_membership(a, start.id, false, ctx(30))
        .await
        .unwrap();
    store
        .set_group_membership(a, start.id, true, ctx(31))
        .await
        .unwrap();
    assert_eq!(jobs(store, 32).await, 1);
    assert_eq!(only_enrolment(store, a).await, e);
    assert_eq!(
        entries(store, a, TimelineKind::SequenceEntered).await.len(),
        1
    );
}

pub async fn a_condition_enrols_suspends_and_resumes_within_thirty_days(store: &dyn Store) {
    field(store, "stage", "text", &[]).await;
    let mut def = mails("Nurture", &["P0D", "P3D", "P40D"]);
    def.condition = Some(Condition {
        field: "stage".into(),
        values: vec!["lead".into()],
    });
    let seq = store.create_sequence(def, at(0)).await.unwrap();
    let with_stage = |email: &str, stage: &str| {
        let mut i = input(email);
        i.fields = BTreeMap::from([("stage".into(), json!(stage))]);
        i
    };
    let stage = |s: &str| ContactPatch {
        fields: BTreeMap::from([("stage".into(), json!(s))]),
        ..ContactPatch::default()
    };
    let x = store
        .create_contact(with_stage("x@example.com", "lead"), ctx(0))
        .await
        .unwrap()
        .contact
        .id;
    let y = store
        .create_contact(with_stage("y@example.com", "customer"), ctx(0))
        .await
        .unwrap()
        .contact
        .id;
    assert_eq!(jobs(store, 0).await, 2);
    let e = only_enrolment(store, x).await;
    assert_eq!(e.sequence_id, seq.id);
    assert!(enrolments_of(store, y).await.is_empty());
    let entered = entries(store, x, TimelineKind::SequenceEntered).await;
    assert_eq!(entered[0].data["how"], json!("condition"));
    assert_eq!(tick(store, 0).await.len(), 1);

    let enrolment = e.id;
    let update = |id: Uuid, s: &'static str, second: i64| async move {
        store
            .update_contact(id, stage(s), Memberships::default(), ctx(second))
            .await
            .unwrap();
        assert_eq!(jobs(store, second).await, 1);
        store.get_enrolment(enrolment).await.unwrap().state
    };

    let s = update(x, "customer", DAY).await;
    assert_eq!(s.status, EnrolmentStatus::Suspended);
    assert_eq!(s.suspension, Some(Suspension::Condition));
    assert_eq!(s.next_due_at, Some(at(3 * DAY)), "kept for the resume");
    assert!(tick(store, 3 * DAY).await.is_empty());

    // Back within 30 days of the missed due time: it resumes by itself, the overdue message
    // due at once and the later gaps counted from then.
    let s = update(x, "lead", 10 * DAY).await;
    assert_eq!(s.status, EnrolmentStatus::Active);
    assert_eq!((s.suspension, s.reason.as_deref()), (None, None));
    assert_eq!(s.next_due_at, Some(at(10 * DAY)));
    let sent = tick(store, 10 * DAY).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].state.next_due_at, Some(at(50 * DAY)));

    // Back after the next message was due more than 30 days before: it stays suspended.
    let s = update(x, "customer", 11 * DAY).await;
    assert_eq!(s.status, EnrolmentStatus::Suspended);
    let s = update(x, "lead", 80 * DAY + 1).await;
    assert_eq!(s.status, EnrolmentStatus::Suspended);
    assert_eq!(s.suspension, Some(Suspension::Stale));
    assert!(
        s.reason.as_deref().is_some_and(|r| r.contains("30 days")),
        "{s:?}"
    );
    assert_eq!(s.next_due_at, Some(at(50 * DAY)), "kept for a hand to see");
    assert!(tick(store, 80 * DAY + 1).await.is_empty());
    assert_eq!(messages_of(store, x).await.len(), 2);
    assert!(
        entries(store, x, TimelineKind::SequenceChanged).await.len() >= 4,
        "each suspension and resumption is on the timeline"
    );

    // The condition holds for y at last: it enters.
    store
        .update_contact(y, stage("lead"), Memberships::default(), ctx(81 * DAY))
        .await
        .unwrap();
    assert_eq!(jobs(store, 81 * DAY).await, 1);
    let ye = only_enrolment(store, y).await;
    assert_eq!(ye.state.status, EnrolmentStatus::Active);
    assert_eq!(ye.state.next_due_at, Some(at(81 * DAY)));
}

pub async fn enrolment_actions_pause_resume_reactivate_and_postpone(store: &dyn Store) {
    let seq = store
        .create_sequence(mails("Steps", &["P0D", "P3D", "P4D"]), at(0))
        .await
        .unwrap();
    let c = contact(store, "hand@example.com", 0).await;
    store
        .start_sequence(seq.id, StartTarget::Contact(c), at(0))
        .await
        .unwrap();
    tick(store, 0).await;
    let id = only_enrolment(store, c).await.id;

    let paused = store
        .change_enrolment(id, EnrolmentAction::Pause, at(DAY))
        .await
        .unwrap();
    assert_eq!(paused.state.status, EnrolmentStatus::Paused);
    assert!(paused.state.reason.is_some());
    assert_eq!(paused.updated_at, at(DAY));
    assert_eq!(store.get_enrolment(id).await.unwrap(), paused);
    assert!(
        tick(store, 3 * DAY).await.is_empty(),
        "a paused enrolment waits"
    );
    let twice = store
        .change_enrolment(id, EnrolmentAction::Pause, at(DAY + 1))
        .await
        .unwrap_err();
    assert_eq!(conflict(twice), ("invalid_action", Some("action")));

    let resumed = store
        .change_enrolment(id, EnrolmentAction::Resume, at(4 * DAY))
        .await
        .unwrap();
    assert_eq!(resumed.state.status, EnrolmentStatus::Active);
    assert_eq!(
        resumed.state.next_due_at,
        Some(at(4 * DAY)),
        "the overdue message goes now"
    );
    assert_eq!(resumed.state.reason, None);

    store
        .change_enrolment(id, EnrolmentAction::Pause, at(4 * DAY))
        .await
        .unwrap();
    let woken = store
        .change_enrolment(id, EnrolmentAction::Reactivate, at(5 * DAY))
        .await
        .unwrap();
    assert_eq!(woken.state.status, EnrolmentStatus::Active);
    assert_eq!(woken.state.next_due_at, Some(at(5 * DAY + 60)));
    assert!(tick(store, 5 * DAY + 59).await.is_empty());
    let sent = tick(store, 5 * DAY + 60).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].state.next_due_at,
        Some(at(9 * DAY + 60)),
        "the later gap is kept"
    );

    let refused = store
        .change_enrolment(id, EnrolmentAction::Postpone(at(6 * DAY)), at(6 * DAY))
        .await
        .unwrap_err();
    assert_eq!(conflict(refused), ("invalid_action", Some("action")));
    let later = store
        .change_enrolment(id, EnrolmentAction::Postpone(at(20 * DAY)), at(6 * DAY))
        .await
        .unwrap();
    assert_eq!(later.state.next_due_at, Some(at(20 * DAY)));
    assert_eq!(later.state.status, EnrolmentStatus::Active);
    assert!(tick(store, 20 * DAY - 1).await.is_empty());
    let last = tick(store, 20 * DAY).await;
    assert_eq!(last[0].state.status, EnrolmentStatus::Completed);

    for action in [
        EnrolmentAction::Pause,
        EnrolmentAction::Resume,
        EnrolmentAction::Reactivate,
        EnrolmentAction::Postpone(at(30 * DAY)),
    ] {
        let refused = store
            .change_enrolment(id, action, at(21 * DAY))
            .await
            .unwrap_err();
        assert_eq!(conflict(refused), ("invalid_action", Some("action")));
    }
    assert_eq!(
        store.get_enrolment(id).await.unwrap().state,
        last[0].state,
        "a refused action writes nothing"
    );
    assert!(matches!(
        store
            .change_enrolment(Uuid::now_v7(), EnrolmentAction::Pause, at(0))
            .await,
        Err(StoreError::NotFound)
    ));
    // Pause, resume, pause, reactivate and postpone are each on the timeline.
    assert_eq!(
        entries(store, c, TimelineKind::SequenceChanged).await.len(),
        5
    );
}

type Key = fn(&Enrolment) -> Option<Timestamp>;

/// Checks that `items` are sorted by `key` (ascending or not), the ones without it last.
fn assert_sorted(items: &[Enrolment], key: Key, ascending: bool) {
    let keys: Vec<Option<Timestamp>> = items.iter().map(key).collect();
    let first_none = keys.iter().position(Option::is_none).unwrap_or(keys.len());
    assert!(
        keys[first_none..].iter().all(Option::is_none),
        "times before blanks: {keys:?}"
    );
    for pair in keys[..first_none].windows(2) {
        let ordered = if ascending {
            pair[0] <= pair[1]
        } else {
            pair[0] >= pair[1]
        };
        assert!(ordered, "out of order: {keys:?}");
    }
}

async fn all_pages(
    store: &dyn Store,
    filter: &EnrolmentFilter,
    order: EnrolmentOrder,
    limit: u32,
) -> Vec<Enrolment> {
    let mut seen = Vec::new();
    let mut page = PageRequest::first(limit);
    loop {
        let got = store.list_enrolments(filter, order, page).await.unwrap();
        assert!(got.items.len() <= limit as usize);
        seen.extend(got.items);
        match got.next_cursor {
            Some(cursor) => page = PageRequest::after(limit, cursor),
            None => break,
        }
    }
    seen
}

pub async fn enrolments_are_filtered_and_ordered_by_message_times(store: &dyn Store) {
    let a = store
        .create_sequence(mails("A", &["P0D", "P3D", "P4D"]), at(0))
        .await
        .unwrap();
    let b = store
        .create_sequence(mails("B", &["P1D", "P1D"]), at(0))
        .await
        .unwrap();
    let mut named = input("c1@example.com");
    named.first_name = Some("Ann".into());
    named.last_name = Some("Bee".into());
    let c1 = store
        .create_contact(named, ctx(0))
        .await
        .unwrap()
        .contact
        .id;
    let c2 = contact(store, "c2@example.com", 0).await;
    let c3 = contact(store, "c3@example.com", 0).await;
    let c4 = contact(store, "c4@example.com", 0).await;
    let mut waiting = input("c5@example.com");
    waiting.status = Some("pending".into());
    let c5 = store
        .create_contact(waiting, ctx(0))
        .await
        .unwrap()
        .contact
        .id;
    for (c, second) in [(c1, 0), (c2, 100), (c3, 200), (c4, 300), (c5, 600)] {
        store
            .start_sequence(a.id, StartTarget::Contact(c), at(second))
            .await
            .unwrap();
    }
    store
        .start_sequence(b.id, StartTarget::Contact(c1), at(400))
        .await
        .unwrap();
    // c1 and c2 get their first message at the same moment (a tie on the last message time).
    assert_eq!(tick(store, 150).await.len(), 2);
    let c3a = enrolments_of(store, c3).await[0].id;
    store
        .change_enrolment(c3a, EnrolmentAction::Pause, at(500))
        .await
        .unwrap();
    // c4 gets its first message; c5 waits for its confirmation (no next time).
    assert_eq!(tick(store, 700).await.len(), 2);

    let by = |filter: EnrolmentFilter| async move {
        let mut ids: Vec<Uuid> = all_pages(store, &filter, EnrolmentOrder::Newest, 100)
            .await
            .iter()
            .map(|e| e.contact_id)
            .collect();
        ids.sort();
        ids
    };
    let sorted = |mut v: Vec<Uuid>| {
        v.sort();
        v
    };
    assert_eq!(
        by(EnrolmentFilter {
            sequence: Some(b.id),
            ..EnrolmentFilter::default()
        })
        .await,
        [c1]
    );
    assert_eq!(
        by(EnrolmentFilter {
            status: Some(EnrolmentStatus::Paused),
            ..EnrolmentFilter::default()
        })
        .await,
        [c3]
    );
    assert_eq!(
        by(EnrolmentFilter {
            contact: Some(c1),
            ..EnrolmentFilter::default()
        })
        .await,
        [c1, c1]
    );
    assert_eq!(
        by(EnrolmentFilter {
            sequence: Some(a.id),
            status: Some(EnrolmentStatus::Active),
            contact: None,
        })
        .await,
        sorted(vec![c1, c2, c4, c5])
    );
    assert!(
        by(EnrolmentFilter {
            sequence: Some(b.id),
            status: Some(EnrolmentStatus::Paused),
            contact: None,
        })
        .await
        .is_empty()
    );

    let everything = all_pages(
        store,
        &EnrolmentFilter::default(),
        EnrolmentOrder::Newest,
        100,
    )
    .await;
    assert_eq!(everything.len(), 6);
    let mut newest: Vec<Uuid> = everything.iter().map(|e| e.id).collect();
    let mut expected = newest.clone();
    expected.sort_by(|x, y| y.cmp(x));
    assert_eq!(newest, expected, "newest first");
    newest.sort();
    let ann = everything
        .iter()
        .find(|e| e.contact_id == c1 && e.sequence_id == b.id)
        .unwrap();
    assert_eq!(
        (
            ann.contact_name.as_str(),
            ann.contact_email.as_str(),
            ann.sequence_name.as_str()
        ),
        ("Ann Bee", "c1@example.com", "B")
    );
    let plain = everything.iter().find(|e| e.contact_id == c2).unwrap();
    assert_eq!(plain.contact_name, "c2@example.com");

    let last: Key = |e| e.state.last_message_at;
    let next: Key = |e| e.state.next_due_at;
    for (order, key, ascending) in [
        (EnrolmentOrder::LastMessageAsc, last, true),
        (EnrolmentOrder::LastMessageDesc, last, false),
        (EnrolmentOrder::NextMessageAsc, next, true),
        (EnrolmentOrder::NextMessageDesc, next, false),
    ] {
        for limit in [1, 2, 4] {
            let got = all_pages(store, &EnrolmentFilter::default(), order, limit).await;
            let mut ids: Vec<Uuid> = got.iter().map(|e| e.id).collect();
            ids.sort();
            assert_eq!(ids, newest, "{order:?} by {limit}: every enrolment once");
            assert_sorted(&got, key, ascending);
        }
        let only_a = EnrolmentFilter {
            sequence: Some(a.id),
            ..EnrolmentFilter::default()
        };
        let got = all_pages(store, &only_a, order, 2).await;
        assert_eq!(got.len(), 5, "{order:?}");
        assert_sorted(&got, key, ascending);
    }
    let first = all_pages(
        store,
        &EnrolmentFilter::default(),
        EnrolmentOrder::NextMessageAsc,
        100,
    )
    .await;
    assert_eq!(first[0].contact_id, c3, "the paused one was due first");
    assert_eq!(first[5].contact_id, c5, "the waiting one has no next time");
}

fn email_field() -> FormField {
    FormField {
        name: "email".into(),
        label: "Email".into(),
        kind: FormFieldType::Email,
        required: true,
        maps_to: Some(Target::Email),
        mode: FillMode::Overwrite,
        options: vec![],
        value: None,
    }
}

fn form_def(slug: &str) -> FormDef {
    FormDef {
        slug: slug.into(),
        name: format!("Form {slug}"),
        fields: vec![email_field()],
        group_choices: vec![],
        groups: vec![],
        double_opt_in: false,
        sequence_id: None,
        notify: vec![],
        response: FormResponse::Message("Thanks!".into()),
    }
}

pub async fn forms_are_created_listed_changed_and_deleted(store: &dyn Store) {
    field(store, "company", "text", &[]).await;
    let g = store.create_group("Newsletter", None, false).await.unwrap();
    let seq = store
        .create_sequence(mails("Course", &["P0D"]), at(0))
        .await
        .unwrap();
    let mut def = form_def("course");
    def.fields.push(FormField {
        name: "company".into(),
        label: "Company".into(),
        kind: FormFieldType::Text,
        required: false,
        maps_to: Some(Target::Custom("company".into())),
        mode: FillMode::FillEmpty,
        options: vec![],
        value: None,
    });
    def.group_choices = vec![g.id];
    def.double_opt_in = true;
    def.sequence_id = Some(seq.id);
    def.notify = vec!["owner@example.com".into()];
    def.response = FormResponse::Redirect("https://example.com/thanks".into());
    let created = store.create_form(def.clone(), at(1)).await.unwrap();
    assert_eq!(created.def, def);
    assert_eq!((created.created_at, created.updated_at), (at(1), at(1)));
    assert_eq!(store.get_form(created.id).await.unwrap(), created);
    assert_eq!(store.form_by_slug("course").await.unwrap(), created);
    let other = store.create_form(form_def("other"), at(2)).await.unwrap();
    assert_eq!(
        store.list_forms().await.unwrap(),
        vec![created.clone(), other.clone()],
        "oldest first"
    );

    let taken = store
        .create_form(form_def("course"), at(3))
        .await
        .unwrap_err();
    assert_eq!(conflict(taken), ("duplicate_slug", Some("slug")));
    let taken = store
        .update_form(other.id, form_def("course"), at(3))
        .await
        .unwrap_err();
    assert_eq!(conflict(taken), ("duplicate_slug", Some("slug")));

    let mut bad = form_def("Not A Slug");
    bad.group_choices = vec![Uuid::now_v7()];
    let fields = invalid_field(store.create_form(bad, at(4)).await.unwrap_err());
    assert!(
        fields.contains("slug") && fields.contains("group_choices[0]"),
        "{fields}"
    );
    let mut bad = form_def("lost");
    bad.sequence_id = Some(Uuid::now_v7());
    assert_eq!(
        invalid_field(store.create_form(bad.clone(), at(4)).await.unwrap_err()),
        "sequence_id"
    );
    assert_eq!(
        invalid_field(store.update_form(other.id, bad, at(4)).await.unwrap_err()),
        "sequence_id"
    );
    assert_eq!(store.list_forms().await.unwrap().len(), 2);

    let mut changed = def.clone();
    changed.slug = "course-2".into();
    changed.name = "Course, again".into();
    changed.double_opt_in = false;
    let updated = store
        .update_form(created.id, changed.clone(), at(5))
        .await
        .unwrap();
    assert_eq!(updated.def, changed);
    assert_eq!((updated.created_at, updated.updated_at), (at(1), at(5)));
    assert_eq!(store.form_by_slug("course-2").await.unwrap(), updated);
    assert!(matches!(
        store.form_by_slug("course").await,
        Err(StoreError::NotFound)
    ));
    // Keeping its own slug is no conflict.
    store
        .update_form(created.id, changed.clone(), at(6))
        .await
        .unwrap();

    store.delete_form(created.id).await.unwrap();
    for gone in [
        store.get_form(created.id).await.map(|_| ()),
        store.form_by_slug("course-2").await.map(|_| ()),
        store
            .update_form(created.id, changed, at(7))
            .await
            .map(|_| ()),
        store.delete_form(created.id).await,
    ] {
        assert!(matches!(gone, Err(StoreError::NotFound)), "{gone:?}");
    }
    assert_eq!(store.list_forms().await.unwrap(), vec![other]);
}

fn values(pairs: &[(&str, &str)]) -> BTreeMap<String, Vec<String>> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in pairs {
        map.entry((*k).into()).or_default().push((*v).into());
    }
    map
}

fn content(subject: &str) -> MessageContent {
    MessageContent {
        subject: subject.into(),
        html: format!("<p>{subject}</p>"),
        text: None,
        from_email: None,
        from_name: None,
    }
}

pub async fn a_form_submission_creates_or_updates_a_contact_and_starts_its_sequence(
    store: &dyn Store,
) {
    field(store, "company", "text", &[]).await;
    let picked = store.create_group("Picked", None, false).await.unwrap();
    let later = store.create_group("Later", None, false).await.unwrap();
    let fixed = store.create_group("Fixed", None, false).await.unwrap();
    let seq = store
        .create_sequence(mails("Course", &["P0D", "P1D"]), at(0))
        .await
        .unwrap();
    let mut def = form_def("course");
    def.fields.extend([
        FormField {
            name: "name".into(),
            label: "Name".into(),
            kind: FormFieldType::Text,
            required: false,
            maps_to: Some(Target::FirstName),
            mode: FillMode::FillEmpty,
            options: vec![],
            value: None,
        },
        FormField {
            name: "company".into(),
            label: "Company".into(),
            kind: FormFieldType::Text,
            required: false,
            maps_to: Some(Target::Custom("company".into())),
            mode: FillMode::Overwrite,
            options: vec![],
            value: None,
        },
        FormField {
            name: "consent".into(),
            label: "Yes, send me the course".into(),
            kind: FormFieldType::Consent,
            required: true,
            maps_to: None,
            mode: FillMode::Overwrite,
            options: vec![],
            value: None,
        },
    ]);
    def.group_choices = vec![picked.id, later.id];
    def.groups = vec![fixed.id];
    def.double_opt_in = true;
    def.sequence_id = Some(seq.id);
    def.notify = vec!["owner@example.com".into(), "sales@example.com".into()];
    let form = store.create_form(def, at(0)).await.unwrap();
    let defs = store.list_fields().await.unwrap();
    let submit = |pairs: &[(&str, &str)], groups: &[Uuid]| FormSubmission {
        form_id: form.id,
        submission: check_submission(
            &form.def,
            &defs,
            &values(pairs),
            &groups.iter().map(Uuid::to_string).collect::<Vec<_>>(),
        )
        .unwrap(),
        ip: Some("192.0.2.7".into()),
        confirmation: content("Please confirm"),
        notification: content("New sign-up"),
    };

    let first = submit(
        &[
            ("email", "new@example.com"),
            ("name", "Nina"),
            ("company", "OldCo"),
            ("consent", "on"),
        ],
        &[picked.id],
    );
    let outcome = store.submit_form(first, at(10)).await.unwrap();
    assert!(outcome.created && outcome.confirmation);
    let id = outcome.contact_id;
    let record = store.get_contact(id).await.unwrap();
    let c = &record.contact;
    assert_eq!(c.status, Status::Pending);
    assert_eq!(c.first_name.as_deref(), Some("Nina"));
    assert_eq!(c.fields.get("company"), Some(&json!("OldCo")));
    assert_eq!(c.source.as_deref(), Some("form:course"));
    let consent = c.consent.clone().unwrap();
    assert_eq!(consent.form_id, Some(form.id));
    assert_eq!(consent.ip.as_deref(), Some("192.0.2.7"));
    assert_eq!(consent.text.as_deref(), Some("Yes, send me the course"));
    assert_eq!(consent.at, at(10));
    let mut groups = record.groups.clone();
    groups.sort();
    let mut expected = vec![picked.id, fixed.id];
    expected.sort();
    assert_eq!(groups, expected);

    let sent = messages_of(store, id).await;
    assert_eq!(sent.len(), 3, "{sent:?}");
    assert!(sent.iter().all(|m| m.class == MessageClass::Transactional));
    assert!(sent.iter().all(|m| m.status == MessageStatus::Queued));
    let confirmations: Vec<&Message> = sent
        .iter()
        .filter(|m| m.content.subject == "Please confirm")
        .collect();
    assert_eq!(confirmations.len(), 1);
    assert_eq!(confirmations[0].to_email, "new@example.com");
    assert_eq!(confirmations[0].due_at, at(10));
    let mut notified: Vec<&str> = sent
        .iter()
        .filter(|m| m.content.subject == "New sign-up")
        .map(|m| m.to_email.as_str())
        .collect();
    notified.sort();
    assert_eq!(notified, ["owner@example.com", "sales@example.com"]);

    let e = only_enrolment(store, id).await;
    assert_eq!(outcome.enrolment, Some(e.id));
    assert_eq!(e.sequence_id, seq.id);
    let entered = entries(store, id, TimelineKind::SequenceEntered).await;
    assert_eq!(entered[0].data["how"], json!("form"));
    let submitted = entries(store, id, TimelineKind::FormSubmitted).await;
    assert_eq!(submitted.len(), 1);
    assert_eq!(submitted[0].data["form_id"], json!(form.id));
    // The enrolment waits for the confirmation.
    let waited = tick(store, 10).await;
    assert_eq!(
        waited[0].state.reason.as_deref(),
        Some(WAITING_FOR_CONFIRMATION)
    );

    let second = submit(
        &[
            ("email", "NEW@example.com"),
            ("name", "Other"),
            ("company", "NewCo"),
            ("consent", "on"),
        ],
        &[later.id],
    );
    let again = store.submit_form(second, at(20)).await.unwrap();
    assert_eq!(again.contact_id, id);
    assert!(!again.created);
    assert!(again.confirmation, "still pending: asked again");
    assert_eq!(again.enrolment, None, "already in the sequence");
    let record = store.get_contact(id).await.unwrap();
    assert_eq!(
        record.contact.first_name.as_deref(),
        Some("Nina"),
        "fill_empty"
    );
    assert_eq!(
        record.contact.fields.get("company"),
        Some(&json!("NewCo")),
        "overwrite"
    );
    assert_eq!(record.contact.status, Status::Pending);
    assert_eq!(record.groups.len(), 3, "groups are only added");
    assert_eq!(enrolments_of(store, id).await.len(), 1);
    assert_eq!(messages_of(store, id).await.len(), 6);
    assert_eq!(
        entries(store, id, TimelineKind::FormSubmitted).await.len(),
        2
    );

    // Without double opt-in a new contact is subscribed at once and gets no confirmation. (A
    // group a form uses cannot be deleted: `a_group_a_sequence_or_form_uses_cannot_be_deleted`.)
    let plain = store.create_form(form_def("plain"), at(30)).await.unwrap();
    let submission = check_submission(
        &plain.def,
        &defs,
        &values(&[("email", "plain@example.com")]),
        &[],
    )
    .unwrap();
    let outcome = store
        .submit_form(
            FormSubmission {
                form_id: plain.id,
                submission,
                ip: None,
                confirmation: content("Please confirm"),
                notification: content("New sign-up"),
            },
            at(31),
        )
        .await
        .unwrap();
    assert!(outcome.created);
    assert!(!outcome.confirmation);
    assert_eq!(outcome.enrolment, None);
    let record = store.get_contact(outcome.contact_id).await.unwrap();
    assert_eq!(record.contact.status, Status::Subscribed);
    assert!(record.groups.is_empty());
    assert!(messages_of(store, outcome.contact_id).await.is_empty());
}

pub async fn erasing_a_contact_removes_its_enrolments_and_jobs(store: &dyn Store) {
    let start = store.create_group("Start", None, false).await.unwrap();
    let mut def = mails("Welcome", &["P0D", "P1D"]);
    def.start_groups = vec![start.id];
    let seq = store.create_sequence(def, at(0)).await.unwrap();
    let mut i = input("erase@example.com");
    i.groups = vec![start.id];
    let c = store.create_contact(i, ctx(1)).await.unwrap().contact.id;
    store
        .start_sequence(seq.id, StartTarget::Contact(c), at(2))
        .await
        .unwrap();
    let e = only_enrolment(store, c).await;
    let keep = contact(store, "keep@example.com", 3).await;
    store
        .start_sequence(seq.id, StartTarget::Contact(keep), at(3))
        .await
        .unwrap();

    store.erase_contact(c, at(4)).await.unwrap();
    assert!(matches!(
        store.get_enrolment(e.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(
        store
            .claim_jobs(at(5), 10, "engine", LEASE)
            .await
            .unwrap()
            .is_empty(),
        "the job went with the contact"
    );
    let filter = EnrolmentFilter {
        sequence: Some(seq.id),
        ..EnrolmentFilter::default()
    };
    let left = store
        .list_enrolments(&filter, EnrolmentOrder::Newest, PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(
        left.items.iter().map(|e| e.contact_id).collect::<Vec<_>>(),
        [keep]
    );
    let ran = tick(store, 5).await;
    assert_eq!(ran.len(), 1);
    assert_eq!(ran[0].enrolment_id, left.items[0].id);
    // Nothing is left that keeps the engine busy for the erased contact.
    assert_eq!(store.next_engine_due().await.unwrap(), Some(at(3 + DAY)));
}

pub async fn a_group_a_sequence_or_form_uses_cannot_be_deleted(store: &dyn Store) {
    let starts = store.create_group("Starts", None, false).await.unwrap();
    let offered = store.create_group("Offered", None, false).await.unwrap();
    let mut def = mails("Start group", &["P0D"]);
    def.start_groups = vec![starts.id];
    let sequence = store.create_sequence(def, at(0)).await.unwrap();
    let mut form = form_def("offers");
    form.group_choices = vec![offered.id];
    let form = store.create_form(form, at(0)).await.unwrap();
    for group in [starts.id, offered.id] {
        let err = store.delete_group(group).await.unwrap_err();
        assert_eq!(conflict(err).0, "group_in_use");
    }
    store.delete_sequence(sequence.id).await.unwrap();
    store.delete_form(form.id).await.unwrap();
    for group in [starts.id, offered.id] {
        store.delete_group(group).await.unwrap();
    }
}
