//! The records the storage contract takes and returns.

use jiff::Timestamp;
use nudge_core::{ChangeSource, Contact, ContactInput, Role, Status};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq)]
pub struct ContactRecord {
    pub contact: Contact,
    pub groups: Vec<Uuid>,
    pub tags: Vec<String>,
}

/// Who makes a change and when: the timeline says both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChangeContext {
    pub source: ChangeSource,
    pub at: Timestamp,
}

impl ChangeContext {
    pub fn new(source: ChangeSource, at: Timestamp) -> Self {
        Self { source, at }
    }
}

/// Memberships a PATCH replaces; `None` leaves them as they are.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Memberships {
    pub groups: Option<Vec<Uuid>>,
    pub tags: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub id: Uuid,
    pub name: String,
    pub parent_id: Option<Uuid>,
    /// Offered on the preference page, where a contact may leave it.
    pub public: bool,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupPatch {
    pub name: Option<String>,
    /// `Some(None)` moves the group to the top.
    pub parent_id: Option<Option<Uuid>>,
    pub public: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    pub name: String,
    pub contacts: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApiKey {
    pub name: String,
    pub key_hash: String,
    pub scopes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: Uuid,
    pub name: String,
    pub scopes: Vec<String>,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    pub email: nudge_core::Email,
    pub password_hash: String,
    pub role: Role,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub role: Role,
    /// The admin UI's language this user chose (`en`, `nl`, `de`); `None` follows the browser.
    pub language: Option<String>,
    pub created_at: Timestamp,
}

/// A user as sign-in needs it: with the password hash and the lock-out state.
#[derive(Clone, PartialEq, Eq)]
pub struct UserCredentials {
    pub user: User,
    /// An argon2 PHC string.
    pub password_hash: String,
    /// Failed sign-ins since the last success or lock-out.
    pub failed_sign_ins: u32,
    /// Sign-in is refused until then.
    pub locked_until: Option<Timestamp>,
}

// Never the password hash: these records may reach logs.
impl std::fmt::Debug for UserCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserCredentials")
            .field("user", &self.user)
            .field("failed_sign_ins", &self.failed_sign_ins)
            .field("locked_until", &self.locked_until)
            .finish_non_exhaustive()
    }
}

/// How many failed sign-ins lock a user out, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockOut {
    pub after_failures: u32,
    pub duration: jiff::SignedDuration,
}

/// A signed-in browser: the SHA-256 (hex) of its cookie value, and whose it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id_hash: String,
    pub user: User,
    pub created_at: Timestamp,
    pub last_seen_at: Timestamp,
}

/// What an erase keeps: a hash of the address and the status it had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suppression {
    pub email_hash: String,
    pub status: Status,
    pub erased_at: Timestamp,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContactFilter {
    /// Matches the start of the email, the first name or the last name, case-insensitively;
    /// `%` and `_` are taken literally. (A prefix, so that an index answers it at any size.)
    pub q: Option<String>,
    pub status: Option<Status>,
    /// The group and all its descendants.
    pub group: Option<Uuid>,
    pub tag: Option<String>,
}

/// A page of a list ordered newest first; the cursor is the id of the last item seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: u32,
    pub cursor: Option<Uuid>,
}

impl PageRequest {
    pub const MAX_LIMIT: u32 = 1000;

    pub fn first(limit: u32) -> Self {
        Self {
            limit: limit.clamp(1, Self::MAX_LIMIT),
            cursor: None,
        }
    }

    pub fn after(limit: u32, cursor: Uuid) -> Self {
        Self {
            limit: limit.clamp(1, Self::MAX_LIMIT),
            cursor: Some(cursor),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<Uuid>,
}

impl<T> Page<T> {
    /// Builds a page from `limit + 1` fetched rows: the extra row only tells that more follow.
    pub fn from_rows(mut rows: Vec<T>, limit: u32, id: impl Fn(&T) -> Uuid) -> Self {
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let next_cursor = if more { rows.last().map(id) } else { None };
        Self {
            items: rows,
            next_cursor,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ImportRow {
    /// The row's line in the file (the header is line 1).
    pub line: u64,
    pub input: ContactInput,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExistingPolicy {
    Update,
    Skip,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportOptions {
    pub existing: ExistingPolicy,
    pub group: Option<Uuid>,
    pub dry_run: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowOutcome {
    Created,
    Updated,
    /// The contact exists and the import does not update.
    Skipped,
    Rejected(String),
    /// Created or updated, but the address was erased before while it could not be mailed; it
    /// keeps that status.
    Flagged(String),
}

/// The content of an outbound message, fixed when it is queued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageContent {
    pub subject: String,
    pub html: String,
    /// Generated from the HTML at send time when absent.
    pub text: Option<String>,
    /// The sender; the sending account's address when absent.
    pub from_email: Option<String>,
    pub from_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    pub contact_id: Uuid,
    pub class: nudge_core::MessageClass,
    pub content: MessageContent,
    /// The same key queues nothing new: the first message is returned instead.
    pub idempotency_key: String,
    /// Not sent before this time.
    pub due_at: Timestamp,
}

/// A row of the send ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: Uuid,
    pub contact_id: Uuid,
    pub class: nudge_core::MessageClass,
    pub status: nudge_core::MessageStatus,
    pub skip_rule: Option<nudge_core::SkipRule>,
    /// The recipient's address when the message was queued.
    pub to_email: String,
    pub content: MessageContent,
    pub idempotency_key: String,
    /// The RFC 5322 Message-ID it was sent with.
    pub message_id: Option<String>,
    pub attempts: u32,
    pub due_at: Timestamp,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub sent_at: Option<Timestamp>,
    /// The sending account that sent it, when one did.
    pub smtp_account_id: Option<Uuid>,
}

/// How one attempt at a claimed message ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    Sent {
        message_id: String,
        /// The sending account that took it; `None` for the default relay or the `.eml` folder.
        smtp_account_id: Option<Uuid>,
    },
    /// A temporary failure; try again at `at`.
    Retry { at: Timestamp, error: String },
    /// A permanent failure. With `bounce`, the address itself was refused and the contact
    /// becomes bounced.
    Failed { error: String, bounce: bool },
    /// The send gate refused the message when it was about to go out.
    Skipped(nudge_core::SkipRule),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageFilter {
    pub contact: Option<Uuid>,
    pub status: Option<nudge_core::MessageStatus>,
    pub class: Option<nudge_core::MessageClass>,
}

/// What a contact did with a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Engagement {
    Opened,
    Clicked { url: String },
}

/// The signature algorithm of a stored DKIM key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DkimAlgorithm {
    /// RSA-SHA256, `k=rsa` in the DNS record.
    Rsa,
    /// Ed25519-SHA256 (RFC 8463), `k=ed25519`.
    Ed25519,
}

impl DkimAlgorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            DkimAlgorithm::Rsa => "rsa",
            DkimAlgorithm::Ed25519 => "ed25519",
        }
    }
}

impl std::str::FromStr for DkimAlgorithm {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s {
            "rsa" => Ok(DkimAlgorithm::Rsa),
            "ed25519" => Ok(DkimAlgorithm::Ed25519),
            _ => Err("must be rsa or ed25519".into()),
        }
    }
}

/// A DKIM signing key to store for a sending domain (it replaces the domain's key, if any).
#[derive(Clone, PartialEq, Eq)]
pub struct NewDkimKey {
    /// Lower-case, without a trailing dot.
    pub domain: String,
    pub selector: String,
    pub algorithm: DkimAlgorithm,
    /// PKCS#8 PEM.
    pub private_key_pem: String,
}

/// A stored DKIM signing key: mail whose From domain is `domain` is signed with it.
#[derive(Clone, PartialEq, Eq)]
pub struct DkimKeyRecord {
    pub domain: String,
    pub selector: String,
    pub algorithm: DkimAlgorithm,
    pub private_key_pem: String,
    pub created_at: Timestamp,
}

// Never the private key: these records reach logs.
impl std::fmt::Debug for NewDkimKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewDkimKey")
            .field("domain", &self.domain)
            .field("selector", &self.selector)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for DkimKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DkimKeyRecord")
            .field("domain", &self.domain)
            .field("selector", &self.selector)
            .field("algorithm", &self.algorithm)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

/// A stored sending account (an SMTP relay and how much mail it takes).
#[derive(Debug, Clone, PartialEq)]
pub struct SmtpAccount {
    pub id: Uuid,
    pub settings: nudge_core::SmtpAccountSettings,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// The longest template name, in characters: a name is a label in a list, not a description.
pub const TEMPLATE_NAME_MAX: usize = 200;

/// A stored email template's content: what a message copies when it is queued with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTemplate {
    pub name: String,
    pub subject: String,
    pub html: String,
    /// Generated from the HTML at send time when absent.
    pub text: Option<String>,
}

impl NewTemplate {
    /// The name trimmed, or the reason it cannot be one (keyed `name` by the caller).
    pub fn checked_name(name: &str) -> Result<String, &'static str> {
        let name = name.trim();
        if name.is_empty() {
            return Err("is empty");
        }
        if name.chars().count() > TEMPLATE_NAME_MAX {
            return Err("is longer than 200 characters");
        }
        Ok(name.to_owned())
    }
}

/// A change to a stored template; `None` keeps a part as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TemplatePatch {
    pub name: Option<String>,
    pub subject: Option<String>,
    pub html: Option<String>,
    /// `Some(None)` removes the text part, so it is generated from the HTML again.
    pub text: Option<Option<String>>,
}

impl TemplatePatch {
    /// The template as it is after this change. The HTTP layer checks the result before it
    /// saves, and the store applies the same change to the row it locked, so both see one rule.
    pub fn apply(&self, to: &NewTemplate) -> NewTemplate {
        NewTemplate {
            name: self.name.clone().unwrap_or_else(|| to.name.clone()),
            subject: self.subject.clone().unwrap_or_else(|| to.subject.clone()),
            html: self.html.clone().unwrap_or_else(|| to.html.clone()),
            text: self.text.clone().unwrap_or_else(|| to.text.clone()),
        }
    }
}

/// A stored email template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateRecord {
    pub id: Uuid,
    pub template: NewTemplate,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}
