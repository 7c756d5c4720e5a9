//! The PostgreSQL implementation of the storage contract, for installations that outgrow the
//! embedded SQLite store or want a database server they already run and back up.
//!
//! Unlike SQLite, writers do not queue behind one connection: transactions run side by side at
//! READ COMMITTED. Wherever a transaction writes from what it read, it first locks the rows it
//! read (see `Lock`), and a unique violation on an address maps to the same conflict that the
//! check before the write would have reported. Group-tree changes lock the `groups` table,
//! since the cycle check reads the whole tree.

mod admin;
mod contacts;
mod engine;
mod forms;
mod import;
mod messages;
mod rows;
mod sequences;
mod settings;
mod templates;

use async_trait::async_trait;
use jiff::Timestamp;
use nudge_core::form::FormDef;
use nudge_core::{
    ContactInput, ContactPatch, EnrolmentAction, FieldDef, SequenceDef, Status, TimelineEntry,
};
use nudge_store::{
    ApiKey, ChangeContext, ContactFilter, ContactRecord, Enrolment, EnrolmentFilter,
    EnrolmentOrder, FormRecord, FormSubmission, Group, GroupPatch, ImportOptions, ImportRow,
    Memberships, NewApiKey, NewUser, Page, PageRequest, Result, RowOutcome, SequenceRecord,
    StartOutcome, StartTarget, StepOutcome, Store, StoreError, SubmissionOutcome, Suppression, Tag,
    User,
};
use nudge_store::{LockOut, Session, UserCredentials};
use rows::{backend, pg_ts};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{PgConnection, Postgres, Row};
use uuid::Uuid;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// How often an import batch (or a form submission) runs again after losing a race for an
/// address.
const IMPORT_ATTEMPTS: u32 = 3;

#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
}

type Tx = sqlx::Transaction<'static, Postgres>;

/// How a read inside a write transaction holds the rows it returns until the commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lock {
    /// Reads that nothing is written from.
    None,
    /// The transaction deletes the row: whoever refers to it must finish first.
    Update,
    /// The transaction writes the row back from what it read: a second writer must wait for
    /// the first to commit and then read its result, or one of the two changes would be lost.
    /// Unlike `FOR UPDATE` it lets others insert rows that refer to this one (a timeline entry
    /// from a tag deletion), which would otherwise deadlock against writers taking tag locks.
    NoKeyUpdate,
    /// The transaction only refers to the row (a group a contact joins, a field definition it
    /// validates against): the row may change meanwhile but not disappear.
    KeyShare,
}

impl Lock {
    fn clause(self) -> &'static str {
        match self {
            Lock::None => "",
            Lock::Update => " FOR UPDATE",
            Lock::NoKeyUpdate => " FOR NO KEY UPDATE",
            Lock::KeyShare => " FOR KEY SHARE",
        }
    }
}

impl PgStore {
    /// Connects to the database named by a `postgres://` URL and applies pending migrations.
    pub async fn connect(url: &str) -> Result<Self> {
        let options = url.parse::<PgConnectOptions>().map_err(backend)?;
        Self::connect_with(options).await
    }

    /// Connects with prepared options (a `search_path`, TLS settings) and applies pending
    /// migrations; they land in the first schema of the search path.
    pub async fn connect_with(options: PgConnectOptions) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .connect_with(options)
            .await
            .map_err(backend)?;
        MIGRATOR.run(&pool).await.map_err(backend)?;
        Ok(Self { pool })
    }

    async fn write(&self) -> Result<Tx> {
        self.pool.begin().await.map_err(backend)
    }
}

async fn load_defs(conn: &mut PgConnection, lock: Lock) -> Result<Vec<FieldDef>> {
    let sql = format!(
        "SELECT key, label, type, options FROM fields ORDER BY created_at, key{}",
        lock.clause()
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(conn)
        .await
        .map_err(backend)?;
    rows.iter().map(rows::field_def).collect()
}

async fn load_group(conn: &mut PgConnection, id: Uuid, lock: Lock) -> Result<Group> {
    let sql = format!(
        "SELECT id, name, parent_id, public, created_at FROM groups WHERE id = $1{}",
        lock.clause()
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(conn)
        .await
        .map_err(backend)?
        .map(|r| rows::group(&r))
        .transpose()?
        .ok_or(StoreError::NotFound)
}

/// Makes group writers queue behind each other, as SQLite's single writer does: the cycle
/// check reads the whole tree, and two moves checked side by side could close a loop together.
/// Contact writers, which only take row locks on groups, are not held up.
async fn lock_groups(conn: &mut PgConnection) -> Result<()> {
    sqlx::query("LOCK TABLE groups IN SHARE ROW EXCLUSIVE MODE")
        .execute(conn)
        .await
        .map_err(backend)?;
    Ok(())
}

async fn group_tree(conn: &mut PgConnection) -> Result<nudge_core::GroupTree> {
    let rows = sqlx::query("SELECT id, parent_id FROM groups")
        .fetch_all(conn)
        .await
        .map_err(backend)?;
    let links = rows
        .iter()
        .map(|r| Ok((r.try_get("id")?, r.try_get("parent_id")?)))
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .map_err(backend)?;
    Ok(nudge_core::GroupTree::new(links))
}

fn check_group_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() {
        return Err(StoreError::invalid("name", "is empty"));
    }
    if name.chars().count() > 200 {
        return Err(StoreError::invalid("name", "is longer than 200 characters"));
    }
    Ok(name.to_owned())
}

fn tree_error(e: nudge_core::group::TreeError) -> StoreError {
    StoreError::invalid("parent_id", e.to_string())
}

fn duplicate_user(email: &nudge_core::Email) -> StoreError {
    StoreError::Conflict {
        code: "duplicate_user",
        field: Some("email"),
        message: format!("a user with the email {email} already exists"),
    }
}

fn duplicate_field(key: &str) -> StoreError {
    StoreError::Conflict {
        code: "duplicate_field",
        field: Some("key"),
        message: format!("a custom field with the key {key} already exists"),
    }
}

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn create_api_key(&self, key: NewApiKey) -> Result<ApiKey> {
        let id = Uuid::now_v7();
        let now = nudge_store::stored_now();
        sqlx::query(
            "INSERT INTO api_keys (id, name, key_hash, scopes, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(&key.name)
        .bind(&key.key_hash)
        .bind(key.scopes.join(" "))
        .bind(pg_ts(now))
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(ApiKey {
            id,
            name: key.name,
            scopes: key.scopes,
            created_at: now,
        })
    }

    async fn api_key_by_hash(&self, key_hash: &str) -> Result<Option<ApiKey>> {
        let row =
            sqlx::query("SELECT id, name, scopes, created_at FROM api_keys WHERE key_hash = $1")
                .bind(key_hash)
                .fetch_optional(&self.pool)
                .await
                .map_err(backend)?;
        row.map(|r| {
            let scopes: String = r.try_get("scopes").map_err(backend)?;
            Ok(ApiKey {
                id: r.try_get("id").map_err(backend)?,
                name: r.try_get("name").map_err(backend)?,
                scopes: scopes.split_whitespace().map(str::to_owned).collect(),
                created_at: rows::ts(&r, "created_at")?,
            })
        })
        .transpose()
    }

    async fn list_api_keys(&self) -> Result<Vec<ApiKey>> {
        let rows = sqlx::query("SELECT id, name, scopes, created_at FROM api_keys ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.iter()
            .map(|r| {
                let scopes: String = r.try_get("scopes").map_err(backend)?;
                Ok(ApiKey {
                    id: r.try_get("id").map_err(backend)?,
                    name: r.try_get("name").map_err(backend)?,
                    scopes: scopes.split_whitespace().map(str::to_owned).collect(),
                    created_at: rows::ts(r, "created_at")?,
                })
            })
            .collect()
    }

    async fn create_user(&self, user: NewUser) -> Result<User> {
        let id = Uuid::now_v7();
        let now = nudge_store::stored_now();
        let mut tx = self.write().await?;
        let taken = sqlx::query("SELECT 1 FROM users WHERE email_key = $1")
            .bind(user.email.key())
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?;
        if taken.is_some() {
            return Err(duplicate_user(&user.email));
        }
        sqlx::query(
            "INSERT INTO users (id, email, email_key, password_hash, role, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id)
        .bind(user.email.as_str())
        .bind(user.email.key())
        .bind(&user.password_hash)
        .bind(user.role.as_str())
        .bind(pg_ts(now))
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            if rows::is_unique_violation(&e, "users_email_key_key") {
                duplicate_user(&user.email)
            } else {
                backend(e)
            }
        })?;
        tx.commit().await.map_err(backend)?;
        Ok(User {
            id,
            email: user.email.to_string(),
            role: user.role,
            language: None,
            created_at: now,
        })
    }

    async fn list_users(&self) -> Result<Vec<User>> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        admin::list_users(&mut conn).await
    }

    async fn set_user_language(&self, user_id: Uuid, language: Option<&str>) -> Result<User> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        admin::set_language(&mut conn, user_id, language).await
    }

    async fn user_credentials(&self, email: &nudge_core::Email) -> Result<Option<UserCredentials>> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        admin::credentials(&mut conn, email).await
    }

    async fn record_failed_sign_in(
        &self,
        user_id: Uuid,
        policy: LockOut,
        at: Timestamp,
    ) -> Result<Option<Timestamp>> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        admin::record_failed_sign_in(&mut conn, user_id, policy, at).await
    }

    async fn clear_failed_sign_ins(&self, user_id: Uuid) -> Result<()> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        admin::clear_failed_sign_ins(&mut conn, user_id).await
    }

    async fn create_session(&self, id_hash: &str, user_id: Uuid, at: Timestamp) -> Result<Session> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        admin::create_session(&mut conn, id_hash, user_id, at).await
    }

    async fn session(&self, id_hash: &str) -> Result<Option<Session>> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        admin::session(&mut conn, id_hash).await
    }

    async fn touch_session(&self, id_hash: &str, at: Timestamp) -> Result<()> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        admin::touch_session(&mut conn, id_hash, at).await
    }

    async fn delete_session(&self, id_hash: &str) -> Result<()> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        admin::delete_session(&mut conn, id_hash).await
    }

    async fn delete_expired_sessions(
        &self,
        idle_before: Timestamp,
        created_before: Timestamp,
    ) -> Result<u64> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        admin::delete_expired_sessions(&mut conn, idle_before, created_before).await
    }

    async fn create_field(&self, def: FieldDef) -> Result<FieldDef> {
        let mut tx = self.write().await?;
        let taken = sqlx::query("SELECT 1 FROM fields WHERE key = $1")
            .bind(def.key.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?;
        if taken.is_some() {
            return Err(duplicate_field(def.key.as_str()));
        }
        let options = serde_json::to_value(&def.options).map_err(backend)?;
        sqlx::query(
            "INSERT INTO fields (key, label, type, options, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(def.key.as_str())
        .bind(&def.label)
        .bind(def.kind.as_str())
        .bind(options)
        .bind(pg_ts(nudge_store::stored_now()))
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            if rows::is_unique_violation(&e, "fields_pkey") {
                duplicate_field(def.key.as_str())
            } else {
                backend(e)
            }
        })?;
        tx.commit().await.map_err(backend)?;
        Ok(def)
    }

    async fn list_fields(&self) -> Result<Vec<FieldDef>> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        load_defs(&mut conn, Lock::None).await
    }

    async fn delete_field(&self, key: &str) -> Result<()> {
        let mut tx = self.write().await?;
        let gone = sqlx::query("DELETE FROM fields WHERE key = $1")
            .bind(key)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        if gone.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        // Contact writers hold the definition with FOR KEY SHARE, so the DELETE above waited for
        // them and this statement sees the values they wrote.
        sqlx::query("UPDATE contacts SET fields = fields - $1 WHERE fields ? $1")
            .bind(key)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)
    }

    async fn create_group(
        &self,
        name: &str,
        parent_id: Option<Uuid>,
        public: bool,
    ) -> Result<Group> {
        let name = check_group_name(name)?;
        let mut tx = self.write().await?;
        lock_groups(&mut tx).await?;
        group_tree(&mut tx)
            .await?
            .check_parent(None, parent_id)
            .map_err(tree_error)?;
        let group = Group {
            id: Uuid::now_v7(),
            name,
            parent_id,
            public,
            created_at: nudge_store::stored_now(),
        };
        sqlx::query("INSERT INTO groups (id, name, parent_id, public, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(group.id)
            .bind(&group.name)
            .bind(group.parent_id)
            .bind(group.public)
            .bind(pg_ts(group.created_at))
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(group)
    }

    async fn list_groups(&self) -> Result<Vec<Group>> {
        let rows = sqlx::query(
            "SELECT id, name, parent_id, public, created_at FROM groups ORDER BY name, id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter().map(rows::group).collect()
    }

    async fn get_group(&self, id: Uuid) -> Result<Group> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        load_group(&mut conn, id, Lock::None).await
    }

    async fn update_group(&self, id: Uuid, patch: GroupPatch) -> Result<Group> {
        let mut tx = self.write().await?;
        lock_groups(&mut tx).await?;
        let mut group = load_group(&mut tx, id, Lock::None).await?;
        if let Some(name) = patch.name {
            group.name = check_group_name(&name)?;
        }
        if let Some(public) = patch.public {
            group.public = public;
        }
        if let Some(parent) = patch.parent_id {
            group_tree(&mut tx)
                .await?
                .check_parent(Some(id), parent)
                .map_err(tree_error)?;
            group.parent_id = parent;
        }
        sqlx::query("UPDATE groups SET name = $1, parent_id = $2, public = $3 WHERE id = $4")
            .bind(&group.name)
            .bind(group.parent_id)
            .bind(group.public)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(group)
    }

    async fn delete_group(&self, id: Uuid) -> Result<()> {
        let mut tx = self.write().await?;
        lock_groups(&mut tx).await?;
        // Waits for contact writers that hold the group, so the count below sees who joined.
        load_group(&mut tx, id, Lock::Update).await?;
        let children: i64 = sqlx::query_scalar("SELECT count(*) FROM groups WHERE parent_id = $1")
            .bind(id)
            .fetch_one(&mut *tx)
            .await
            .map_err(backend)?;
        let members: i64 =
            sqlx::query_scalar("SELECT count(*) FROM contact_groups WHERE group_id = $1")
                .bind(id)
                .fetch_one(&mut *tx)
                .await
                .map_err(backend)?;
        if children > 0 || members > 0 {
            return Err(StoreError::Conflict {
                code: "group_not_empty",
                field: None,
                message: format!(
                    "the group still has {children} subgroup(s) and {members} contact(s); \
                     move or remove them first"
                ),
            });
        }
        // A sequence that starts from the group or a form that offers or adds it would keep a
        // dangling id; they are changed first, like a group's members.
        let sequences: i64 =
            sqlx::query_scalar("SELECT count(*) FROM sequence_start_groups WHERE group_id = $1")
                .bind(id)
                .fetch_one(&mut *tx)
                .await
                .map_err(backend)?;
        let forms: i64 =
            sqlx::query_scalar("SELECT count(*) FROM forms WHERE strpos(definition::text, $1) > 0")
                .bind(id.to_string())
                .fetch_one(&mut *tx)
                .await
                .map_err(backend)?;
        if sequences > 0 || forms > 0 {
            return Err(StoreError::Conflict {
                code: "group_in_use",
                field: None,
                message: format!(
                    "the group starts {sequences} sequence(s) and is used by {forms} form(s); \
                     take it out of them first"
                ),
            });
        }
        sqlx::query("DELETE FROM groups WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)
    }

    async fn create_tag(&self, name: &str) -> Result<Tag> {
        let tag = nudge_core::TagName::parse(name).map_err(|r| StoreError::invalid("name", r))?;
        let mut tx = self.write().await?;
        contacts::tag_id(&mut tx, &tag, true).await?;
        let contacts: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM contact_tags ct JOIN tags t ON t.id = ct.tag_id \
             WHERE t.name = $1",
        )
        .bind(tag.as_str())
        .fetch_one(&mut *tx)
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(Tag {
            name: tag.to_string(),
            contacts: contacts.unsigned_abs(),
        })
    }

    async fn list_tags(&self) -> Result<Vec<Tag>> {
        let rows = sqlx::query(
            "SELECT t.name, (SELECT count(*) FROM contact_tags ct WHERE ct.tag_id = t.id) AS n \
             FROM tags t ORDER BY t.name",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter()
            .map(|r| {
                Ok(Tag {
                    name: r.try_get("name").map_err(backend)?,
                    contacts: r.try_get::<i64, _>("n").map_err(backend)?.unsigned_abs(),
                })
            })
            .collect()
    }

    async fn delete_tag(&self, name: &str, at: Timestamp) -> Result<()> {
        let mut tx = self.write().await?;
        // Waits for transactions tagging a contact with it and keeps new ones out, so every
        // contact that loses the tag is in the list below.
        let Some(tag_id): Option<i64> =
            sqlx::query_scalar("SELECT id FROM tags WHERE name = $1 FOR UPDATE")
                .bind(name)
                .fetch_optional(&mut *tx)
                .await
                .map_err(backend)?
        else {
            return Err(StoreError::NotFound);
        };
        // A contact erased meanwhile drops out here instead of failing its timeline insert.
        let tagged: Vec<Uuid> = sqlx::query_scalar(
            "SELECT c.id FROM contact_tags ct JOIN contacts c ON c.id = ct.contact_id \
             WHERE ct.tag_id = $1 ORDER BY c.id FOR KEY SHARE OF c",
        )
        .bind(tag_id)
        .fetch_all(&mut *tx)
        .await
        .map_err(backend)?;
        let event = nudge_core::timeline::TimelineEvent::tag_removed(name, "admin");
        let entries: Vec<_> = tagged.into_iter().map(|c| (c, &event)).collect();
        contacts::insert_timelines(&mut tx, at, &entries).await?;
        sqlx::query("DELETE FROM tags WHERE id = $1")
            .bind(tag_id)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)
    }

    async fn create_contact(
        &self,
        input: ContactInput,
        ctx: ChangeContext,
    ) -> Result<ContactRecord> {
        let mut tx = self.write().await?;
        let record = contacts::create(&mut tx, input, ctx).await?;
        tx.commit().await.map_err(backend)?;
        Ok(record)
    }

    async fn get_contact(&self, id: Uuid) -> Result<ContactRecord> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        contacts::record(&mut conn, id, Lock::None).await
    }

    async fn get_contacts(&self, ids: &[Uuid]) -> Result<Vec<ContactRecord>> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        contacts::records(&mut conn, ids).await
    }

    async fn find_contact_by_email(&self, email: &str) -> Result<Option<ContactRecord>> {
        let Ok(email) = nudge_core::Email::parse(email) else {
            return Ok(None);
        };
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        let id: Option<Uuid> = sqlx::query_scalar("SELECT id FROM contacts WHERE email_key = $1")
            .bind(email.key())
            .fetch_optional(&mut *conn)
            .await
            .map_err(backend)?;
        match id {
            Some(id) => contacts::record(&mut conn, id, Lock::None).await.map(Some),
            None => Ok(None),
        }
    }

    async fn update_contact(
        &self,
        id: Uuid,
        patch: ContactPatch,
        memberships: Memberships,
        ctx: ChangeContext,
    ) -> Result<ContactRecord> {
        let mut tx = self.write().await?;
        contacts::update(&mut tx, id, &patch, memberships, ctx).await?;
        let record = contacts::record(&mut tx, id, Lock::None).await?;
        tx.commit().await.map_err(backend)?;
        Ok(record)
    }

    async fn change_status(
        &self,
        id: Uuid,
        to: Status,
        reason: Option<String>,
        ctx: ChangeContext,
    ) -> Result<ContactRecord> {
        let mut tx = self.write().await?;
        contacts::change_status(&mut tx, id, to, reason.as_deref(), ctx).await?;
        let record = contacts::record(&mut tx, id, Lock::None).await?;
        tx.commit().await.map_err(backend)?;
        Ok(record)
    }

    async fn set_group_membership(
        &self,
        id: Uuid,
        group_id: Uuid,
        member: bool,
        ctx: ChangeContext,
    ) -> Result<ContactRecord> {
        let mut tx = self.write().await?;
        contacts::load(&mut tx, id, Lock::NoKeyUpdate).await?;
        let group = load_group(&mut tx, group_id, Lock::KeyShare).await?;
        contacts::set_groups(&mut tx, id, &[group], member, ctx).await?;
        let record = contacts::record(&mut tx, id, Lock::None).await?;
        tx.commit().await.map_err(backend)?;
        Ok(record)
    }

    async fn set_tag(
        &self,
        id: Uuid,
        tag: &str,
        tagged: bool,
        ctx: ChangeContext,
    ) -> Result<ContactRecord> {
        let tag = nudge_core::TagName::parse(tag).map_err(|r| StoreError::invalid("tag", r))?;
        let mut tx = self.write().await?;
        contacts::load(&mut tx, id, Lock::NoKeyUpdate).await?;
        contacts::set_tags(&mut tx, id, &[tag], tagged, ctx).await?;
        let record = contacts::record(&mut tx, id, Lock::None).await?;
        tx.commit().await.map_err(backend)?;
        Ok(record)
    }

    async fn list_contacts(
        &self,
        filter: &ContactFilter,
        page: PageRequest,
    ) -> Result<Page<ContactRecord>> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        contacts::list(&mut conn, filter, page).await
    }

    async fn count_contacts(&self, filter: &ContactFilter) -> Result<u64> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        contacts::count(&mut conn, filter).await
    }

    async fn timeline(&self, id: Uuid, page: PageRequest) -> Result<Page<TimelineEntry>> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        contacts::timeline(&mut conn, id, page).await
    }

    async fn erase_contact(&self, id: Uuid, at: Timestamp) -> Result<Suppression> {
        let mut tx = self.write().await?;
        let contact = contacts::load(&mut tx, id, Lock::Update).await?;
        let suppression = Suppression {
            email_hash: contact.email.suppression_hash(),
            status: contact.status,
            erased_at: at,
        };
        sqlx::query(
            "INSERT INTO suppressions (email_hash, status, erased_at) VALUES ($1, $2, $3) \
             ON CONFLICT (email_hash) DO UPDATE SET status = excluded.status, \
             erased_at = excluded.erased_at",
        )
        .bind(&suppression.email_hash)
        .bind(suppression.status.as_str())
        .bind(pg_ts(at))
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        // Memberships and the timeline go with the row (ON DELETE CASCADE).
        sqlx::query("DELETE FROM contacts WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(suppression)
    }

    async fn suppression(&self, email_hash: &str) -> Result<Option<Suppression>> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        contacts::suppressions(&mut conn, &[email_hash.to_owned()])
            .await
            .map(|mut found| found.pop())
    }

    async fn queue_message(
        &self,
        message: nudge_store::NewMessage,
        at: Timestamp,
    ) -> Result<(nudge_store::Message, bool)> {
        let mut tx = self.write().await?;
        let queued = messages::queue(&mut tx, message, at).await?;
        tx.commit().await.map_err(backend)?;
        Ok(queued)
    }

    async fn claim_messages(
        &self,
        now: Timestamp,
        limit: u32,
        owner: &str,
        lease: jiff::SignedDuration,
    ) -> Result<Vec<nudge_store::Message>> {
        // One statement, atomic on its own: no transaction around it.
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        messages::claim(&mut conn, now, limit, owner, lease).await
    }

    async fn finish_message(
        &self,
        id: Uuid,
        owner: &str,
        delivery: nudge_store::Delivery,
        at: Timestamp,
    ) -> Result<nudge_store::Message> {
        let mut tx = self.write().await?;
        let done = messages::finish(&mut tx, id, owner, delivery, at).await?;
        tx.commit().await.map_err(backend)?;
        Ok(done)
    }

    async fn finish_messages(
        &self,
        owner: &str,
        outcomes: Vec<(Uuid, nudge_store::Delivery)>,
        at: Timestamp,
    ) -> Result<Vec<Result<nudge_store::Message>>> {
        let mut tx = self.write().await?;
        let done = messages::finish_many(&mut tx, owner, outcomes, at).await?;
        tx.commit().await.map_err(backend)?;
        Ok(done)
    }

    async fn get_message(&self, id: Uuid) -> Result<nudge_store::Message> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        messages::get(&mut conn, id).await
    }

    async fn list_messages(
        &self,
        filter: &nudge_store::MessageFilter,
        page: PageRequest,
    ) -> Result<Page<nudge_store::Message>> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        messages::list(&mut conn, filter, page).await
    }

    async fn next_due(&self) -> Result<Option<Timestamp>> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        messages::next_due(&mut conn).await
    }

    async fn record_engagement(
        &self,
        id: Uuid,
        engagement: nudge_store::Engagement,
        at: Timestamp,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        messages::record_engagement(&mut tx, id, engagement, at).await?;
        tx.commit().await.map_err(backend)
    }

    async fn refresh_statistics(&self) -> Result<()> {
        // VACUUM as well as ANALYZE: it marks the new pages all-visible, and only then can
        // filtered counts answer from the membership indexes and the primary key alone instead
        // of visiting a heap page per candidate. It reads only the pages changed since the last
        // run, and waits for no writer. The timeline is only ever read by contact through its
        // primary key, whatever its statistics say, so it is left to autovacuum.
        sqlx::raw_sql("VACUUM (ANALYZE) contacts, contact_groups, contact_tags")
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn create_template(
        &self,
        template: nudge_store::NewTemplate,
    ) -> Result<nudge_store::TemplateRecord> {
        // One statement, atomic on its own.
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        templates::create(&mut conn, template, nudge_store::stored_now()).await
    }

    async fn list_templates(&self, page: PageRequest) -> Result<Page<nudge_store::TemplateRecord>> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        templates::list(&mut conn, page).await
    }

    async fn get_template(&self, id: Uuid) -> Result<nudge_store::TemplateRecord> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        templates::get(&mut conn, id, Lock::None).await
    }

    async fn update_template(
        &self,
        id: Uuid,
        patch: nudge_store::TemplatePatch,
    ) -> Result<nudge_store::TemplateRecord> {
        let mut tx = self.write().await?;
        let updated = templates::update(&mut tx, id, patch, nudge_store::stored_now()).await?;
        tx.commit().await.map_err(backend)?;
        Ok(updated)
    }

    async fn delete_template(&self, id: Uuid) -> Result<()> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        templates::delete(&mut conn, id).await
    }

    async fn save_dkim_key(
        &self,
        key: nudge_store::NewDkimKey,
    ) -> Result<nudge_store::DkimKeyRecord> {
        // One statement (an upsert), atomic on its own.
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        settings::save_dkim_key(&mut conn, key, nudge_store::stored_now()).await
    }

    async fn dkim_keys(&self) -> Result<Vec<nudge_store::DkimKeyRecord>> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        settings::dkim_keys(&mut conn).await
    }

    async fn create_smtp_account(
        &self,
        account: nudge_core::SmtpAccountSettings,
    ) -> Result<nudge_store::SmtpAccount> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        settings::create_account(&mut conn, account, nudge_store::stored_now()).await
    }

    async fn list_smtp_accounts(&self) -> Result<Vec<nudge_store::SmtpAccount>> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        settings::list_accounts(&mut conn).await
    }

    async fn get_smtp_account(&self, id: Uuid) -> Result<nudge_store::SmtpAccount> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        settings::get_account(&mut conn, id, Lock::None).await
    }

    async fn update_smtp_account(
        &self,
        id: Uuid,
        change: nudge_core::SmtpAccountInput,
    ) -> Result<nudge_store::SmtpAccount> {
        let mut tx = self.write().await?;
        let updated =
            settings::update_account(&mut tx, id, change, nudge_store::stored_now()).await?;
        tx.commit().await.map_err(backend)?;
        Ok(updated)
    }

    async fn delete_smtp_account(&self, id: Uuid) -> Result<()> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        settings::delete_account(&mut conn, id).await
    }

    async fn sent_per_smtp_account(&self, since: Timestamp) -> Result<Vec<(Uuid, u64)>> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        settings::sent_per_account(&mut conn, since).await
    }

    async fn import_batch(
        &self,
        rows: Vec<ImportRow>,
        options: &ImportOptions,
        at: Timestamp,
    ) -> Result<Vec<RowOutcome>> {
        let mut attempt = 1;
        loop {
            let mut tx = self.write().await?;
            // The commit returns before its WAL reaches the disk, so the next batch starts at
            // once. A crash may lose the last batches committed, never half of one nor anything
            // else: Postgres replays the WAL up to a consistent point, and the import can be run
            // again (rows already there are skipped or updated).
            sqlx::query("SET LOCAL synchronous_commit = off")
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
            match import::batch(&mut tx, &rows, options, at).await {
                // The batch itself never inserts an address it found stored, so a duplicate
                // means another transaction created it after the lookup; a new attempt finds
                // that contact and updates or skips it.
                Err(StoreError::Conflict {
                    code: "duplicate_email",
                    ..
                }) if attempt < IMPORT_ATTEMPTS => {
                    tx.rollback().await.map_err(backend)?;
                    tracing::debug!(attempt, "import batch lost a race for an address; retrying");
                    attempt += 1;
                }
                Err(e) => return Err(e),
                Ok(outcomes) => {
                    if options.dry_run {
                        tx.rollback().await.map_err(backend)?;
                    } else {
                        tx.commit().await.map_err(backend)?;
                    }
                    return Ok(outcomes);
                }
            }
        }
    }

    async fn create_sequence(&self, def: SequenceDef, at: Timestamp) -> Result<SequenceRecord> {
        let mut tx = self.write().await?;
        let created = sequences::create(&mut tx, def, at).await?;
        tx.commit().await.map_err(backend)?;
        Ok(created)
    }

    async fn list_sequences(&self) -> Result<Vec<SequenceRecord>> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        sequences::list(&mut conn).await
    }

    async fn get_sequence(&self, id: Uuid) -> Result<SequenceRecord> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        sequences::get(&mut conn, id, Lock::None).await
    }

    async fn update_sequence(
        &self,
        id: Uuid,
        def: SequenceDef,
        at: Timestamp,
    ) -> Result<SequenceRecord> {
        let mut tx = self.write().await?;
        let updated = sequences::update(&mut tx, id, def, at).await?;
        tx.commit().await.map_err(backend)?;
        Ok(updated)
    }

    async fn delete_sequence(&self, id: Uuid) -> Result<()> {
        // One statement (the enrolments go by cascade), atomic on its own.
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        sequences::delete(&mut conn, id).await
    }

    async fn start_sequence(
        &self,
        sequence_id: Uuid,
        target: StartTarget,
        at: Timestamp,
    ) -> Result<StartOutcome> {
        let mut tx = self.write().await?;
        let outcome = sequences::start(&mut tx, sequence_id, target, at).await?;
        tx.commit().await.map_err(backend)?;
        Ok(outcome)
    }

    async fn list_enrolments(
        &self,
        filter: &EnrolmentFilter,
        order: EnrolmentOrder,
        page: PageRequest,
    ) -> Result<Page<Enrolment>> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        sequences::list_enrolments(&mut conn, filter, order, page).await
    }

    async fn get_enrolment(&self, id: Uuid) -> Result<Enrolment> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        sequences::get_enrolment(&mut conn, id).await
    }

    async fn change_enrolment(
        &self,
        id: Uuid,
        action: EnrolmentAction,
        at: Timestamp,
    ) -> Result<Enrolment> {
        let mut tx = self.write().await?;
        let changed = sequences::change(&mut tx, id, action, at).await?;
        tx.commit().await.map_err(backend)?;
        Ok(changed)
    }

    async fn claim_due_enrolments(
        &self,
        now: Timestamp,
        limit: u32,
        owner: &str,
        lease: jiff::SignedDuration,
    ) -> Result<Vec<Uuid>> {
        // One statement, atomic on its own: no transaction around it.
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        engine::claim_due(&mut conn, now, limit, owner, lease).await
    }

    async fn run_steps(
        &self,
        ids: &[Uuid],
        owner: &str,
        at: Timestamp,
    ) -> Result<Vec<StepOutcome>> {
        let mut tx = self.write().await?;
        let outcomes = engine::run_steps(&mut tx, ids, owner, at).await?;
        tx.commit().await.map_err(backend)?;
        Ok(outcomes)
    }

    async fn claim_jobs(
        &self,
        now: Timestamp,
        limit: u32,
        owner: &str,
        lease: jiff::SignedDuration,
    ) -> Result<Vec<i64>> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        engine::claim_jobs(&mut conn, now, limit, owner, lease).await
    }

    async fn run_jobs(&self, ids: &[i64], owner: &str, at: Timestamp) -> Result<u64> {
        let mut tx = self.write().await?;
        let ran = engine::run_jobs(&mut tx, ids, owner, at).await?;
        tx.commit().await.map_err(backend)?;
        Ok(ran)
    }

    async fn next_engine_due(&self) -> Result<Option<Timestamp>> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        engine::next_due(&mut conn).await
    }

    async fn create_form(&self, def: FormDef, at: Timestamp) -> Result<FormRecord> {
        let mut tx = self.write().await?;
        let created = forms::create(&mut tx, def, at).await?;
        tx.commit().await.map_err(backend)?;
        Ok(created)
    }

    async fn list_forms(&self) -> Result<Vec<FormRecord>> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        forms::list(&mut conn).await
    }

    async fn get_form(&self, id: Uuid) -> Result<FormRecord> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        forms::get(&mut conn, id).await
    }

    async fn form_by_slug(&self, slug: &str) -> Result<FormRecord> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        forms::by_slug(&mut conn, slug).await
    }

    async fn update_form(&self, id: Uuid, def: FormDef, at: Timestamp) -> Result<FormRecord> {
        let mut tx = self.write().await?;
        let updated = forms::update(&mut tx, id, def, at).await?;
        tx.commit().await.map_err(backend)?;
        Ok(updated)
    }

    async fn delete_form(&self, id: Uuid) -> Result<()> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        forms::delete(&mut conn, id).await
    }

    async fn submit_form(
        &self,
        submission: FormSubmission,
        at: Timestamp,
    ) -> Result<SubmissionOutcome> {
        let mut attempt = 1;
        loop {
            let mut tx = self.write().await?;
            match forms::submit(&mut tx, &submission, at).await {
                // Another transaction created the address after the lookup; a new attempt
                // finds that contact and updates it.
                Err(StoreError::Conflict {
                    code: "duplicate_email",
                    ..
                }) if attempt < IMPORT_ATTEMPTS => {
                    tx.rollback().await.map_err(backend)?;
                    attempt += 1;
                }
                Err(e) => return Err(e),
                Ok(outcome) => {
                    tx.commit().await.map_err(backend)?;
                    return Ok(outcome);
                }
            }
        }
    }

    async fn confirm_contact(&self, id: Uuid, at: Timestamp) -> Result<ContactRecord> {
        let mut tx = self.write().await?;
        let record = forms::confirm(&mut tx, id, at).await?;
        tx.commit().await.map_err(backend)?;
        Ok(record)
    }
}
