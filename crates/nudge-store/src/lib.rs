//! The storage contract: what the rest of Nudge asks of a database, whichever it is.
//!
//! `nudge-store-sqlite` and `nudge-store-postgres` implement [`Store`]; the [`conformance`]
//! suite (behind the `conformance` feature) runs the same stories against both, so a behaviour
//! that passes on one passes on the other.
//!
//! Every method that changes a contact writes the change and its timeline entries in one
//! transaction, and decides what to write with the pure functions of `nudge-core`, called inside
//! that transaction on the rows it read there.

#[cfg(feature = "conformance")]
pub mod conformance;
pub mod plan;
pub mod sequences;
mod types;

pub use sequences::{
    Enrolment, EnrolmentFilter, EnrolmentOrder, FormRecord, FormSubmission, SequenceRecord,
    StartOutcome, StartTarget, StepOutcome, SubmissionOutcome,
};
pub use types::*;

use async_trait::async_trait;
use nudge_core::form::FormDef;
use nudge_core::{
    ContactInput, ContactPatch, EnrolmentAction, FieldDef, SequenceDef, Status, TimelineEntry,
};
use uuid::Uuid;

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Now, at the precision both databases keep (microseconds), so that a record a store returns
/// equals the one it reads back later.
pub fn stored_now() -> jiff::Timestamp {
    let now = jiff::Timestamp::now();
    jiff::Timestamp::from_microsecond(now.as_microsecond()).unwrap_or(now)
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// Input that breaks a rule; reasons keyed by field.
    #[error("invalid: {0}")]
    Invalid(nudge_core::FieldErrors),
    /// The change collides with what is stored (a duplicate, a group still in use).
    #[error("{message}")]
    Conflict {
        code: &'static str,
        field: Option<&'static str>,
        message: String,
    },
    #[error("database error: {0}")]
    Backend(String),
}

impl StoreError {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid(nudge_core::FieldErrors::one(field, reason))
    }

    pub fn duplicate_email(email: &str) -> Self {
        Self::Conflict {
            code: "duplicate_email",
            field: Some("email"),
            message: format!("a contact with the email {email} already exists"),
        }
    }
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The backend's name, for logs and benchmark output.
    fn backend(&self) -> &'static str;

    // API keys and users.
    async fn create_api_key(&self, key: NewApiKey) -> Result<ApiKey>;
    /// The key whose SHA-256 is `key_hash`, if any.
    async fn api_key_by_hash(&self, key_hash: &str) -> Result<Option<ApiKey>>;
    /// Every API key (never its hash), oldest first.
    async fn list_api_keys(&self) -> Result<Vec<ApiKey>>;
    async fn create_user(&self, user: NewUser) -> Result<User>;
    /// Every user, oldest first.
    async fn list_users(&self) -> Result<Vec<User>>;
    /// Sets the admin UI's language of a user (`None`: follow the browser).
    async fn set_user_language(&self, user_id: Uuid, language: Option<&str>) -> Result<User>;

    // Admin sign-in: credentials, lock-out and sessions.
    /// The user with this address (matched by its key, like contacts), with what sign-in checks.
    async fn user_credentials(&self, email: &nudge_core::Email) -> Result<Option<UserCredentials>>;
    /// Counts a failed sign-in at `at`. The failure that reaches `policy.after_failures` locks
    /// the user until `at + policy.duration` and starts the count again; returns that lock.
    /// One statement counts and locks, so guesses sent side by side cannot slip past the limit.
    async fn record_failed_sign_in(
        &self,
        user_id: Uuid,
        policy: LockOut,
        at: jiff::Timestamp,
    ) -> Result<Option<jiff::Timestamp>>;
    /// After a successful sign-in: no failures counted, no lock.
    async fn clear_failed_sign_ins(&self, user_id: Uuid) -> Result<()>;
    /// A new session for the cookie value whose SHA-256 is `id_hash`, seen last at `at`.
    async fn create_session(
        &self,
        id_hash: &str,
        user_id: Uuid,
        at: jiff::Timestamp,
    ) -> Result<Session>;
    /// The session and its user; expiry is the caller's to judge from the two instants.
    async fn session(&self, id_hash: &str) -> Result<Option<Session>>;
    async fn touch_session(&self, id_hash: &str, at: jiff::Timestamp) -> Result<()>;
    /// Signs one browser out; an unknown session is no error.
    async fn delete_session(&self, id_hash: &str) -> Result<()>;
    /// Deletes the sessions last seen before `idle_before` or created before `created_before`;
    /// returns how many.
    async fn delete_expired_sessions(
        &self,
        idle_before: jiff::Timestamp,
        created_before: jiff::Timestamp,
    ) -> Result<u64>;

    // Custom fields.
    async fn create_field(&self, def: FieldDef) -> Result<FieldDef>;
    async fn list_fields(&self) -> Result<Vec<FieldDef>>;
    /// Removes the definition and the values every contact had for it.
    async fn delete_field(&self, key: &str) -> Result<()>;

    // Groups.
    async fn create_group(
        &self,
        name: &str,
        parent_id: Option<Uuid>,
        public: bool,
    ) -> Result<Group>;
    async fn list_groups(&self) -> Result<Vec<Group>>;
    async fn get_group(&self, id: Uuid) -> Result<Group>;
    async fn update_group(&self, id: Uuid, patch: GroupPatch) -> Result<Group>;
    /// Refuses while the group has subgroups or contacts.
    async fn delete_group(&self, id: Uuid) -> Result<()>;

    // Tags.
    async fn create_tag(&self, name: &str) -> Result<Tag>;
    async fn list_tags(&self) -> Result<Vec<Tag>>;
    /// Removes the tag from every contact, with a timeline entry for each.
    async fn delete_tag(&self, name: &str, at: jiff::Timestamp) -> Result<()>;

    // Contacts.
    async fn create_contact(
        &self,
        input: ContactInput,
        ctx: ChangeContext,
    ) -> Result<ContactRecord>;
    async fn get_contact(&self, id: Uuid) -> Result<ContactRecord>;
    /// The contacts of `ids` that exist (an unknown or erased one is left out), in no
    /// particular order: one read for a dispatcher pass instead of one per message.
    async fn get_contacts(&self, ids: &[Uuid]) -> Result<Vec<ContactRecord>>;
    async fn find_contact_by_email(&self, email: &str) -> Result<Option<ContactRecord>>;
    async fn update_contact(
        &self,
        id: Uuid,
        patch: ContactPatch,
        memberships: Memberships,
        ctx: ChangeContext,
    ) -> Result<ContactRecord>;
    async fn change_status(
        &self,
        id: Uuid,
        to: Status,
        reason: Option<String>,
        ctx: ChangeContext,
    ) -> Result<ContactRecord>;
    /// Adds (`true`) or removes (`false`) one group; doing what is already so changes nothing.
    async fn set_group_membership(
        &self,
        id: Uuid,
        group_id: Uuid,
        member: bool,
        ctx: ChangeContext,
    ) -> Result<ContactRecord>;
    async fn set_tag(
        &self,
        id: Uuid,
        tag: &str,
        tagged: bool,
        ctx: ChangeContext,
    ) -> Result<ContactRecord>;
    async fn list_contacts(
        &self,
        filter: &ContactFilter,
        page: PageRequest,
    ) -> Result<Page<ContactRecord>>;
    async fn count_contacts(&self, filter: &ContactFilter) -> Result<u64>;
    async fn timeline(&self, id: Uuid, page: PageRequest) -> Result<Page<TimelineEntry>>;
    /// Deletes the contact and everything about it, keeping only a hashed suppression entry.
    async fn erase_contact(&self, id: Uuid, at: jiff::Timestamp) -> Result<Suppression>;
    async fn suppression(&self, email_hash: &str) -> Result<Option<Suppression>>;

    // The send ledger.
    /// Queues a message for a contact, checking the send gate now (a refused message is stored
    /// as skipped with its rule). The same idempotency key returns the first message and
    /// `false`. The message and its timeline entry are written in one transaction.
    async fn queue_message(
        &self,
        message: NewMessage,
        at: jiff::Timestamp,
    ) -> Result<(Message, bool)>;
    /// Claims up to `limit` messages due at `now` that no live lease holds, marking them
    /// sending under `owner`'s lease until `now + lease`.
    async fn claim_messages(
        &self,
        now: jiff::Timestamp,
        limit: u32,
        owner: &str,
        lease: jiff::SignedDuration,
    ) -> Result<Vec<Message>>;
    /// Records how an attempt ended, only while `owner` still holds the lease (else
    /// `Conflict { code: "lease_lost" }`), with the timeline entry and, for a bounce, the
    /// contact's change to bounced, in one transaction.
    async fn finish_message(
        &self,
        id: Uuid,
        owner: &str,
        delivery: Delivery,
        at: jiff::Timestamp,
    ) -> Result<Message>;
    /// Records the outcomes of several attempts in one transaction, each as `finish_message`
    /// would (its lease checked, its timeline entries written, a bounce turning its contact
    /// bounced). A message that is gone (`NotFound`) or no longer leased to `owner`
    /// (`Conflict { code: "lease_lost" }`) gets that error in its place while the others are
    /// recorded; any other error records none of them. Results are in the order of `outcomes`.
    async fn finish_messages(
        &self,
        owner: &str,
        outcomes: Vec<(Uuid, Delivery)>,
        at: jiff::Timestamp,
    ) -> Result<Vec<Result<Message>>>;
    async fn get_message(&self, id: Uuid) -> Result<Message>;
    async fn list_messages(
        &self,
        filter: &MessageFilter,
        page: PageRequest,
    ) -> Result<Page<Message>>;
    /// The earliest time a queued or retrying message is due, if any.
    async fn next_due(&self) -> Result<Option<jiff::Timestamp>>;
    /// Records an open or a click of a sent message on its contact's timeline; an open only the
    /// first time, a click every time.
    async fn record_engagement(
        &self,
        id: Uuid,
        engagement: Engagement,
        at: jiff::Timestamp,
    ) -> Result<()>;

    /// Brings the query planner's statistics up to date after a bulk change such as an import,
    /// so that the next filtered query picks a good plan.
    async fn refresh_statistics(&self) -> Result<()>;

    // Email templates. The store keeps them as given (a trimmed, non-empty name of at most 200
    // characters is its only rule); checking the Jinja against the custom fields is the
    // caller's, since it needs the template engine.
    async fn create_template(&self, template: NewTemplate) -> Result<TemplateRecord>;
    /// Newest first, in cursor pages like `list_messages`.
    async fn list_templates(&self, page: PageRequest) -> Result<Page<TemplateRecord>>;
    async fn get_template(&self, id: Uuid) -> Result<TemplateRecord>;
    /// Applies `patch` to the stored template, read in the same transaction as the write.
    async fn update_template(&self, id: Uuid, patch: TemplatePatch) -> Result<TemplateRecord>;
    /// Removes the template; messages queued with it keep their own copy of its content.
    async fn delete_template(&self, id: Uuid) -> Result<()>;

    // Sending settings: DKIM keys and SMTP accounts.
    /// Stores the signing key of a domain, replacing the one it had.
    async fn save_dkim_key(&self, key: NewDkimKey) -> Result<DkimKeyRecord>;
    /// Every stored signing key, by domain.
    async fn dkim_keys(&self) -> Result<Vec<DkimKeyRecord>>;
    async fn create_smtp_account(
        &self,
        settings: nudge_core::SmtpAccountSettings,
    ) -> Result<SmtpAccount>;
    /// Every account, oldest first.
    async fn list_smtp_accounts(&self) -> Result<Vec<SmtpAccount>>;
    async fn get_smtp_account(&self, id: Uuid) -> Result<SmtpAccount>;
    /// Applies `change` to the stored settings (checked by the core's rules, in the same
    /// transaction as the read); `Invalid` names the field at fault.
    async fn update_smtp_account(
        &self,
        id: Uuid,
        change: nudge_core::SmtpAccountInput,
    ) -> Result<SmtpAccount>;
    /// Removes the account; messages it sent keep its id.
    async fn delete_smtp_account(&self, id: Uuid) -> Result<()>;
    /// How many messages each account has sent since `since` (accounts with none are left
    /// out): the dispatcher's daily limits count from here.
    async fn sent_per_smtp_account(&self, since: jiff::Timestamp) -> Result<Vec<(Uuid, u64)>>;

    /// Imports one batch of rows in one transaction; each row gets its own outcome, and a
    /// rejected row leaves no trace. With `dry_run` nothing is written, and the outcomes are
    /// what a real run would report.
    async fn import_batch(
        &self,
        rows: Vec<ImportRow>,
        options: &ImportOptions,
        at: jiff::Timestamp,
    ) -> Result<Vec<RowOutcome>>;

    // Sequences. The store checks what it can see (`SequenceDef::check`, that start groups
    // exist: `Invalid` with `start_groups[i]`); template syntax is the caller's.
    async fn create_sequence(
        &self,
        def: SequenceDef,
        at: jiff::Timestamp,
    ) -> Result<SequenceRecord>;
    /// Oldest first.
    async fn list_sequences(&self) -> Result<Vec<SequenceRecord>>;
    async fn get_sequence(&self, id: Uuid) -> Result<SequenceRecord>;
    /// Replaces the definition and bumps the version. Enrolments keep their place (step index).
    async fn update_sequence(
        &self,
        id: Uuid,
        def: SequenceDef,
        at: jiff::Timestamp,
    ) -> Result<SequenceRecord>;
    /// Removes the sequence and its enrolments; messages it queued stay in the ledger.
    async fn delete_sequence(&self, id: Uuid) -> Result<()>;
    /// Enrols one contact, or every contact of a group and its subgroups, at `at` (each gets a
    /// `sequence_entered` timeline entry, `how` = `manual`). Contacts already in the sequence
    /// are counted in `already` and left alone. Unknown sequence, contact or group: `NotFound`.
    async fn start_sequence(
        &self,
        sequence_id: Uuid,
        target: StartTarget,
        at: jiff::Timestamp,
    ) -> Result<StartOutcome>;

    // Enrolments: the overview and the per-recipient actions.
    /// Pages use the enrolment id as cursor, in the given order.
    async fn list_enrolments(
        &self,
        filter: &EnrolmentFilter,
        order: EnrolmentOrder,
        page: PageRequest,
    ) -> Result<Page<Enrolment>>;
    async fn get_enrolment(&self, id: Uuid) -> Result<Enrolment>;
    /// Applies a user's action (decided by `nudge_core::sequence::apply_action` on the row
    /// read in the same transaction), with a timeline entry. A refused action is
    /// `Conflict { code: "invalid_action", field: Some("action") }`.
    async fn change_enrolment(
        &self,
        id: Uuid,
        action: EnrolmentAction,
        at: jiff::Timestamp,
    ) -> Result<Enrolment>;

    // The engine: due enrolments and trigger jobs, claimed under a lease like the ledger.
    /// Claims up to `limit` active enrolments due at `now` that no live lease holds, in due
    /// order; returns their ids.
    async fn claim_due_enrolments(
        &self,
        now: jiff::Timestamp,
        limit: u32,
        owner: &str,
        lease: jiff::SignedDuration,
    ) -> Result<Vec<Uuid>>;
    /// Runs the claimed enrolments' steps in one transaction: for each one `owner` still
    /// holds (any other change to an enrolment, by a user, a trigger or a confirmation,
    /// releases its lease, so a stale claim cannot run a step that was postponed meanwhile), reads it, its sequence and its contact, asks `nudge_core::sequence::decide_step`,
    /// queues the step's message (class automation, idempotency key
    /// [`sequences::step_key`], the send gate recording it skipped where it must), writes the
    /// new state with its timeline entry and releases the lease. Enrolments whose lease was
    /// lost are left out of the answer.
    async fn run_steps(
        &self,
        ids: &[Uuid],
        owner: &str,
        at: jiff::Timestamp,
    ) -> Result<Vec<StepOutcome>>;
    /// Claims up to `limit` trigger jobs (written by the database when a contact joins a start
    /// group or a contact's fields or status change while a sequence has a condition).
    async fn claim_jobs(
        &self,
        now: jiff::Timestamp,
        limit: u32,
        owner: &str,
        lease: jiff::SignedDuration,
    ) -> Result<Vec<i64>>;
    /// Runs the claimed jobs in one transaction: for each, reads the contact, its enrolments
    /// and the sequences with triggers, applies `nudge_core::sequence::plan_triggers`
    /// (new enrolments with `how` = `start_group` or `condition`, suspensions, resumptions,
    /// each with its timeline entry) and deletes the job. Returns how many ran.
    async fn run_jobs(&self, ids: &[i64], owner: &str, at: jiff::Timestamp) -> Result<u64>;
    /// The earliest time the engine has work: the Unix epoch (before any clock's now) while a
    /// trigger job waits, the end of its lease for a claimed one, else the earliest active
    /// enrolment's due time (or the end of the lease on it).
    async fn next_engine_due(&self) -> Result<Option<jiff::Timestamp>>;

    // Forms.
    /// Checks `FormDef::check` against the stored fields and groups, and that a `sequence_id`
    /// exists (`Invalid` with `sequence_id`); a taken slug is `Conflict { code: "duplicate_slug" }`.
    async fn create_form(&self, def: FormDef, at: jiff::Timestamp) -> Result<FormRecord>;
    /// Oldest first.
    async fn list_forms(&self) -> Result<Vec<FormRecord>>;
    async fn get_form(&self, id: Uuid) -> Result<FormRecord>;
    async fn form_by_slug(&self, slug: &str) -> Result<FormRecord>;
    async fn update_form(&self, id: Uuid, def: FormDef, at: jiff::Timestamp) -> Result<FormRecord>;
    async fn delete_form(&self, id: Uuid) -> Result<()>;
    /// Applies a checked submission in one transaction (product.md §4): matches the contact by
    /// email or creates it (`nudge_core::form::submission_input` / `submission_patch`, then the
    /// groups, added only), sets the consent record, moves the status as
    /// `nudge_core::form::submission_status` says (source `form`), writes `form_submitted`,
    /// queues the confirmation (transactional) when one is due and one notification per
    /// `notify` address (transactional, to that address, about this contact), and enrols the
    /// contact in the form's sequence unless it is already in it (`how` = `form`).
    async fn submit_form(
        &self,
        submission: FormSubmission,
        at: jiff::Timestamp,
    ) -> Result<SubmissionOutcome>;
    /// A double opt-in confirmation: pending becomes subscribed (source `confirmation`), and the
    /// contact's active enrolments that wait for it become due at `at`. A contact that is not
    /// pending is returned unchanged.
    async fn confirm_contact(&self, id: Uuid, at: jiff::Timestamp) -> Result<ContactRecord>;
}
