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
mod types;

pub use types::*;

use async_trait::async_trait;
use nudge_core::{ContactInput, ContactPatch, FieldDef, Status, TimelineEntry};
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
    async fn create_user(&self, user: NewUser) -> Result<User>;

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
}
