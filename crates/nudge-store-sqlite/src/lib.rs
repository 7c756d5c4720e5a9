//! The SQLite implementation of the storage contract: Nudge's embedded default.
//!
//! One file in WAL mode. All writes go through a pool of exactly one connection and start with
//! `BEGIN IMMEDIATE`, so writers queue in the process instead of failing with `SQLITE_BUSY`;
//! reads use a separate pool and see the last committed state.

mod admin;
mod contacts;
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
    ApiKey, ChangeContext, ContactFilter, ContactRecord, Delivery, Enrolment, EnrolmentFilter,
    EnrolmentOrder, FormRecord, FormSubmission, Group, GroupPatch, ImportOptions, ImportRow,
    Memberships, Message, MessageFilter, NewApiKey, NewMessage, NewUser, Page, PageRequest, Result,
    RowOutcome, SequenceRecord, StartOutcome, StartTarget, StepOutcome, Store, StoreError,
    SubmissionOutcome, Suppression, Tag, User,
};
use nudge_store::{LockOut, Session, UserCredentials};
use rows::{backend, micros, ts};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Row, SqliteConnection};
use std::path::Path;
use std::time::Duration;
use uuid::Uuid;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
}

type Tx = sqlx::Transaction<'static, sqlx::Sqlite>;

impl SqliteStore {
    /// Opens (creating if needed) the database file and applies pending migrations.
    pub async fn open(path: &Path) -> Result<Self> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            .pragma("wal_autocheckpoint", "10000");
        // Page caches are per connection, so they add up: the writer gets a large one for
        // bulk imports (index pages of a million contacts), each reader a moderate one.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone().pragma("cache_size", "-65536"))
            .await
            .map_err(backend)?;
        MIGRATOR.run(&writer).await.map_err(backend)?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.read_only(true).pragma("cache_size", "-16384"))
            .await
            .map_err(backend)?;
        Ok(Self { writer, reader })
    }

    /// Opens the database named by a `sqlite://PATH` URL.
    pub async fn open_url(url: &str) -> Result<Self> {
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .ok_or_else(|| StoreError::Backend(format!("not a sqlite URL: {url}")))?;
        Self::open(Path::new(path)).await
    }

    async fn write(&self) -> Result<Tx> {
        self.writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(backend)
    }
}

async fn load_defs(conn: &mut SqliteConnection) -> Result<Vec<FieldDef>> {
    let rows = sqlx::query("SELECT key, label, type, options FROM fields ORDER BY created_at, key")
        .fetch_all(conn)
        .await
        .map_err(backend)?;
    rows.iter().map(rows::field_def).collect()
}

async fn load_group(conn: &mut SqliteConnection, id: Uuid) -> Result<Group> {
    sqlx::query("SELECT id, name, parent_id, public, created_at FROM groups WHERE id = ?")
        .bind(id)
        .fetch_optional(conn)
        .await
        .map_err(backend)?
        .map(|r| rows::group(&r))
        .transpose()?
        .ok_or(StoreError::NotFound)
}

async fn group_tree(conn: &mut SqliteConnection) -> Result<nudge_core::GroupTree> {
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

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn create_api_key(&self, key: NewApiKey) -> Result<ApiKey> {
        let id = Uuid::now_v7();
        let now = nudge_store::stored_now();
        let mut tx = self.write().await?;
        sqlx::query(
            "INSERT INTO api_keys (id, name, key_hash, scopes, created_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(id)
        .bind(&key.name)
        .bind(&key.key_hash)
        .bind(key.scopes.join(" "))
        .bind(micros(now))
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(ApiKey {
            id,
            name: key.name,
            scopes: key.scopes,
            created_at: now,
        })
    }

    async fn api_key_by_hash(&self, key_hash: &str) -> Result<Option<ApiKey>> {
        let row =
            sqlx::query("SELECT id, name, scopes, created_at FROM api_keys WHERE key_hash = ?")
                .bind(key_hash)
                .fetch_optional(&self.reader)
                .await
                .map_err(backend)?;
        row.map(|r| {
            let scopes: String = r.try_get("scopes").map_err(backend)?;
            Ok(ApiKey {
                id: r.try_get("id").map_err(backend)?,
                name: r.try_get("name").map_err(backend)?,
                scopes: scopes.split_whitespace().map(str::to_owned).collect(),
                created_at: ts(r.try_get("created_at").map_err(backend)?)?,
            })
        })
        .transpose()
    }

    async fn list_api_keys(&self) -> Result<Vec<ApiKey>> {
        let rows = sqlx::query("SELECT id, name, scopes, created_at FROM api_keys ORDER BY id")
            .fetch_all(&self.reader)
            .await
            .map_err(backend)?;
        rows.iter()
            .map(|r| {
                let scopes: String = r.try_get("scopes").map_err(backend)?;
                Ok(ApiKey {
                    id: r.try_get("id").map_err(backend)?,
                    name: r.try_get("name").map_err(backend)?,
                    scopes: scopes.split_whitespace().map(str::to_owned).collect(),
                    created_at: ts(r.try_get("created_at").map_err(backend)?)?,
                })
            })
            .collect()
    }

    async fn create_user(&self, user: NewUser) -> Result<User> {
        let id = Uuid::now_v7();
        let now = nudge_store::stored_now();
        let mut tx = self.write().await?;
        let taken = sqlx::query("SELECT 1 FROM users WHERE email_key = ?")
            .bind(user.email.key())
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?;
        if taken.is_some() {
            return Err(StoreError::Conflict {
                code: "duplicate_user",
                field: Some("email"),
                message: format!("a user with the email {} already exists", user.email),
            });
        }
        sqlx::query(
            "INSERT INTO users (id, email, email_key, password_hash, role, created_at) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(id)
        .bind(user.email.as_str())
        .bind(user.email.key())
        .bind(&user.password_hash)
        .bind(user.role.as_str())
        .bind(micros(now))
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
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
        let mut conn = self.reader.acquire().await.map_err(backend)?;
        admin::list_users(&mut conn).await
    }

    async fn set_user_language(&self, user_id: Uuid, language: Option<&str>) -> Result<User> {
        let mut tx = self.write().await?;
        let user = admin::set_language(&mut tx, user_id, language).await?;
        tx.commit().await.map_err(backend)?;
        Ok(user)
    }

    async fn user_credentials(&self, email: &nudge_core::Email) -> Result<Option<UserCredentials>> {
        let mut conn = self.reader.acquire().await.map_err(backend)?;
        admin::credentials(&mut conn, email).await
    }

    async fn record_failed_sign_in(
        &self,
        user_id: Uuid,
        policy: LockOut,
        at: Timestamp,
    ) -> Result<Option<Timestamp>> {
        let mut tx = self.write().await?;
        let locked = admin::record_failed_sign_in(&mut tx, user_id, policy, at).await?;
        tx.commit().await.map_err(backend)?;
        Ok(locked)
    }

    async fn clear_failed_sign_ins(&self, user_id: Uuid) -> Result<()> {
        let mut tx = self.write().await?;
        admin::clear_failed_sign_ins(&mut tx, user_id).await?;
        tx.commit().await.map_err(backend)
    }

    async fn create_session(&self, id_hash: &str, user_id: Uuid, at: Timestamp) -> Result<Session> {
        let mut tx = self.write().await?;
        let session = admin::create_session(&mut tx, id_hash, user_id, at).await?;
        tx.commit().await.map_err(backend)?;
        Ok(session)
    }

    async fn session(&self, id_hash: &str) -> Result<Option<Session>> {
        let mut conn = self.reader.acquire().await.map_err(backend)?;
        admin::session(&mut conn, id_hash).await
    }

    async fn touch_session(&self, id_hash: &str, at: Timestamp) -> Result<()> {
        let mut tx = self.write().await?;
        admin::touch_session(&mut tx, id_hash, at).await?;
        tx.commit().await.map_err(backend)
    }

    async fn delete_session(&self, id_hash: &str) -> Result<()> {
        let mut tx = self.write().await?;
        admin::delete_session(&mut tx, id_hash).await?;
        tx.commit().await.map_err(backend)
    }

    async fn delete_expired_sessions(
        &self,
        idle_before: Timestamp,
        created_before: Timestamp,
    ) -> Result<u64> {
        let mut tx = self.write().await?;
        let deleted = admin::delete_expired_sessions(&mut tx, idle_before, created_before).await?;
        tx.commit().await.map_err(backend)?;
        Ok(deleted)
    }

    async fn create_field(&self, def: FieldDef) -> Result<FieldDef> {
        let mut tx = self.write().await?;
        let taken = sqlx::query("SELECT 1 FROM fields WHERE key = ?")
            .bind(def.key.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?;
        if taken.is_some() {
            return Err(StoreError::Conflict {
                code: "duplicate_field",
                field: Some("key"),
                message: format!("a custom field with the key {} already exists", def.key),
            });
        }
        let options = serde_json::to_string(&def.options).map_err(backend)?;
        sqlx::query(
            "INSERT INTO fields (key, label, type, options, created_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(def.key.as_str())
        .bind(&def.label)
        .bind(def.kind.as_str())
        .bind(options)
        .bind(micros(nudge_store::stored_now()))
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(def)
    }

    async fn list_fields(&self) -> Result<Vec<FieldDef>> {
        let mut conn = self.reader.acquire().await.map_err(backend)?;
        load_defs(&mut conn).await
    }

    async fn delete_field(&self, key: &str) -> Result<()> {
        let mut tx = self.write().await?;
        let gone = sqlx::query("DELETE FROM fields WHERE key = ?")
            .bind(key)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        if gone.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        let path = format!("$.\"{key}\"");
        sqlx::query(
            "UPDATE contacts SET fields = json_remove(fields, ?) \
             WHERE json_extract(fields, ?) IS NOT NULL",
        )
        .bind(&path)
        .bind(&path)
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
        sqlx::query(
            "INSERT INTO groups (id, name, parent_id, public, created_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(group.id)
        .bind(&group.name)
        .bind(group.parent_id)
        .bind(group.public)
        .bind(micros(group.created_at))
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
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        rows.iter().map(rows::group).collect()
    }

    async fn get_group(&self, id: Uuid) -> Result<Group> {
        let mut conn = self.reader.acquire().await.map_err(backend)?;
        load_group(&mut conn, id).await
    }

    async fn update_group(&self, id: Uuid, patch: GroupPatch) -> Result<Group> {
        let mut tx = self.write().await?;
        let mut group = load_group(&mut tx, id).await?;
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
        sqlx::query("UPDATE groups SET name = ?, parent_id = ?, public = ? WHERE id = ?")
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
        load_group(&mut tx, id).await?;
        let children: i64 = sqlx::query_scalar("SELECT count(*) FROM groups WHERE parent_id = ?")
            .bind(id)
            .fetch_one(&mut *tx)
            .await
            .map_err(backend)?;
        let members: i64 =
            sqlx::query_scalar("SELECT count(*) FROM contact_groups WHERE group_id = ?")
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
            sqlx::query_scalar("SELECT count(*) FROM sequence_start_groups WHERE group_id = ?")
                .bind(id)
                .fetch_one(&mut *tx)
                .await
                .map_err(backend)?;
        let forms: i64 =
            sqlx::query_scalar("SELECT count(*) FROM forms WHERE instr(definition, ?) > 0")
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
        sqlx::query("DELETE FROM groups WHERE id = ?")
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
            "SELECT count(*) FROM contact_tags ct JOIN tags t ON t.id = ct.tag_id WHERE t.name = ?",
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
        .fetch_all(&self.reader)
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
        let Some(tag_id): Option<i64> = sqlx::query_scalar("SELECT id FROM tags WHERE name = ?")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?
        else {
            return Err(StoreError::NotFound);
        };
        let tagged: Vec<Uuid> =
            sqlx::query_scalar("SELECT contact_id FROM contact_tags WHERE tag_id = ?")
                .bind(tag_id)
                .fetch_all(&mut *tx)
                .await
                .map_err(backend)?;
        let event = nudge_core::timeline::TimelineEvent::tag_removed(name, "admin");
        for contact in tagged {
            contacts::insert_timeline(&mut tx, contact, at, std::slice::from_ref(&event)).await?;
        }
        sqlx::query("DELETE FROM tags WHERE id = ?")
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
        let mut conn = self.reader.acquire().await.map_err(backend)?;
        contacts::record(&mut conn, id).await
    }

    async fn get_contacts(&self, ids: &[Uuid]) -> Result<Vec<ContactRecord>> {
        let mut conn = self.reader.acquire().await.map_err(backend)?;
        contacts::records(&mut conn, ids).await
    }

    async fn find_contact_by_email(&self, email: &str) -> Result<Option<ContactRecord>> {
        let Ok(email) = nudge_core::Email::parse(email) else {
            return Ok(None);
        };
        let mut conn = self.reader.acquire().await.map_err(backend)?;
        let id: Option<Uuid> = sqlx::query_scalar("SELECT id FROM contacts WHERE email_key = ?")
            .bind(email.key())
            .fetch_optional(&mut *conn)
            .await
            .map_err(backend)?;
        match id {
            Some(id) => contacts::record(&mut conn, id).await.map(Some),
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
        let record = contacts::record(&mut tx, id).await?;
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
        let record = contacts::record(&mut tx, id).await?;
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
        contacts::record(&mut tx, id).await?;
        let group = load_group(&mut tx, group_id).await?;
        contacts::set_groups(&mut tx, id, &[group], member, ctx).await?;
        let record = contacts::record(&mut tx, id).await?;
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
        contacts::record(&mut tx, id).await?;
        contacts::set_tags(&mut tx, id, &[tag], tagged, ctx).await?;
        let record = contacts::record(&mut tx, id).await?;
        tx.commit().await.map_err(backend)?;
        Ok(record)
    }

    async fn list_contacts(
        &self,
        filter: &ContactFilter,
        page: PageRequest,
    ) -> Result<Page<ContactRecord>> {
        let mut conn = self.reader.acquire().await.map_err(backend)?;
        contacts::list(&mut conn, filter, page).await
    }

    async fn count_contacts(&self, filter: &ContactFilter) -> Result<u64> {
        let mut conn = self.reader.acquire().await.map_err(backend)?;
        contacts::count(&mut conn, filter).await
    }

    async fn timeline(&self, id: Uuid, page: PageRequest) -> Result<Page<TimelineEntry>> {
        let mut conn = self.reader.acquire().await.map_err(backend)?;
        contacts::timeline(&mut conn, id, page).await
    }

    async fn erase_contact(&self, id: Uuid, at: Timestamp) -> Result<Suppression> {
        let mut tx = self.write().await?;
        let contact = contacts::load(&mut tx, id).await?;
        let suppression = Suppression {
            email_hash: contact.email.suppression_hash(),
            status: contact.status,
            erased_at: at,
        };
        sqlx::query(
            "INSERT INTO suppressions (email_hash, status, erased_at) VALUES (?, ?, ?) \
             ON CONFLICT (email_hash) DO UPDATE SET status = excluded.status, \
             erased_at = excluded.erased_at",
        )
        .bind(&suppression.email_hash)
        .bind(suppression.status.as_str())
        .bind(micros(at))
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        // Memberships and the timeline go with the row (ON DELETE CASCADE).
        sqlx::query("DELETE FROM contacts WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(suppression)
    }

    async fn suppression(&self, email_hash: &str) -> Result<Option<Suppression>> {
        let mut conn = self.reader.acquire().await.map_err(backend)?;
        contacts::suppressions(&mut conn, &[email_hash.to_owned()])
            .await
            .map(|mut found| found.pop())
    }

    async fn queue_message(&self, message: NewMessage, at: Timestamp) -> Result<(Message, bool)> {
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
    ) -> Result<Vec<Message>> {
        let mut tx = self.write().await?;
        let claimed = messages::claim(&mut tx, now, limit, owner, lease).await?;
        tx.commit().await.map_err(backend)?;
        Ok(claimed)
    }

    async fn finish_message(
        &self,
        id: Uuid,
        owner: &str,
        delivery: Delivery,
        at: Timestamp,
    ) -> Result<Message> {
        let mut tx = self.write().await?;
        let done = messages::finish(&mut tx, id, owner, delivery, at).await?;
        tx.commit().await.map_err(backend)?;
        Ok(done)
    }

    async fn finish_messages(
        &self,
        owner: &str,
        outcomes: Vec<(Uuid, Delivery)>,
        at: Timestamp,
    ) -> Result<Vec<Result<Message>>> {
        let mut tx = self.write().await?;
        let done = messages::finish_many(&mut tx, owner, outcomes, at).await?;
        tx.commit().await.map_err(backend)?;
        Ok(done)
    }

    async fn get_message(&self, id: Uuid) -> Result<Message> {
        let mut conn = self.reader.acquire().await.map_err(backend)?;
        messages::get(&mut conn, id).await
    }

    async fn list_messages(
        &self,
        filter: &MessageFilter,
        page: PageRequest,
    ) -> Result<Page<Message>> {
        let mut conn = self.reader.acquire().await.map_err(backend)?;
        messages::list(&mut conn, filter, page).await
    }

    async fn next_due(&self) -> Result<Option<Timestamp>> {
        let mut conn = self.reader.acquire().await.map_err(backend)?;
        messages::next_due(&mut conn).await
    }

    async fn record_engagement(
        &self,
        id: Uuid,
        engagement: nudge_store::Engagement,
        at: Timestamp,
    ) -> Result<()> {
        let mut tx = self.write().await?;
        messages::record_engagement(&mut tx, id, engagement, at).await?;
        tx.commit().await.map_err(backend)
    }

    async fn refresh_statistics(&self) -> Result<()> {
        // A sampling ANALYZE: the row limit keeps it well under a second at a million contacts.
        sqlx::query("PRAGMA analysis_limit = 1000")
            .execute(&self.writer)
            .await
            .map_err(backend)?;
        sqlx::query("ANALYZE")
            .execute(&self.writer)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn create_template(
        &self,
        template: nudge_store::NewTemplate,
    ) -> Result<nudge_store::TemplateRecord> {
        let mut tx = self.write().await?;
        let created = templates::create(&mut tx, template, nudge_store::stored_now()).await?;
        tx.commit().await.map_err(backend)?;
        Ok(created)
    }

    async fn list_templates(&self, page: PageRequest) -> Result<Page<nudge_store::TemplateRecord>> {
        let mut conn = self.reader.acquire().await.map_err(backend)?;
        templates::list(&mut conn, page).await
    }

    async fn get_template(&self, id: Uuid) -> Result<nudge_store::TemplateRecord> {
        let mut conn = self.reader.acquire().await.map_err(backend)?;
        templates::get(&mut conn, id).await
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
        let mut tx = self.write().await?;
        templates::delete(&mut tx, id).await?;
        tx.commit().await.map_err(backend)
    }

    async fn save_dkim_key(
        &self,
        key: nudge_store::NewDkimKey,
    ) -> Result<nudge_store::DkimKeyRecord> {
        let mut tx = self.write().await?;
        let saved = settings::save_dkim_key(&mut tx, key, nudge_store::stored_now()).await?;
        tx.commit().await.map_err(backend)?;
        Ok(saved)
    }

    async fn dkim_keys(&self) -> Result<Vec<nudge_store::DkimKeyRecord>> {
        let mut conn = self.reader.acquire().await.map_err(backend)?;
        settings::dkim_keys(&mut conn).await
    }

    async fn create_smtp_account(
        &self,
        account: nudge_core::SmtpAccountSettings,
    ) -> Result<nudge_store::SmtpAccount> {
        let mut tx = self.write().await?;
        let created = settings::create_account(&mut tx, account, nudge_store::stored_now()).await?;
        tx.commit().await.map_err(backend)?;
        Ok(created)
    }

    async fn list_smtp_accounts(&self) -> Result<Vec<nudge_store::SmtpAccount>> {
        let mut conn = self.reader.acquire().await.map_err(backend)?;
        settings::list_accounts(&mut conn).await
    }

    async fn get_smtp_account(&self, id: Uuid) -> Result<nudge_store::SmtpAccount> {
        let mut conn = self.reader.acquire().await.map_err(backend)?;
        settings::get_account(&mut conn, id).await
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
        let mut tx = self.write().await?;
        settings::delete_account(&mut tx, id).await?;
        tx.commit().await.map_err(backend)
    }

    async fn sent_per_smtp_account(&self, since: Timestamp) -> Result<Vec<(Uuid, u64)>> {
        let mut conn = self.reader.acquire().await.map_err(backend)?;
        settings::sent_per_account(&mut conn, since).await
    }

    async fn import_batch(
        &self,
        rows: Vec<ImportRow>,
        options: &ImportOptions,
        at: Timestamp,
    ) -> Result<Vec<RowOutcome>> {
        let mut tx = self.write().await?;
        let outcomes = import::batch(&mut tx, rows, options, at).await?;
        if options.dry_run {
            tx.rollback().await.map_err(backend)?;
        } else {
            tx.commit().await.map_err(backend)?;
        }
        Ok(outcomes)
    }

    async fn create_sequence(&self, def: SequenceDef, at: Timestamp) -> Result<SequenceRecord> {
        let mut tx = self.write().await?;
        let created = sequences::create(&mut tx, def, at).await?;
        tx.commit().await.map_err(backend)?;
        Ok(created)
    }

    async fn list_sequences(&self) -> Result<Vec<SequenceRecord>> {
        let mut conn = self.reader.acquire().await.map_err(backend)?;
        sequences::list(&mut conn).await
    }

    async fn get_sequence(&self, id: Uuid) -> Result<SequenceRecord> {
        let mut conn = self.reader.acquire().await.map_err(backend)?;
        sequences::load(&mut conn, id).await
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
        let mut tx = self.write().await?;
        sequences::delete(&mut tx, id).await?;
        tx.commit().await.map_err(backend)
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
        let mut conn = self.reader.acquire().await.map_err(backend)?;
        sequences::list_enrolments(&mut conn, filter, order, page).await
    }

    async fn get_enrolment(&self, id: Uuid) -> Result<Enrolment> {
        let mut conn = self.reader.acquire().await.map_err(backend)?;
        sequences::get(&mut conn, id).await
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
        let mut tx = self.write().await?;
        let claimed = sequences::claim_due(&mut tx, now, limit, owner, lease).await?;
        tx.commit().await.map_err(backend)?;
        Ok(claimed)
    }

    async fn run_steps(
        &self,
        ids: &[Uuid],
        owner: &str,
        at: Timestamp,
    ) -> Result<Vec<StepOutcome>> {
        let mut tx = self.write().await?;
        let outcomes = sequences::run_steps(&mut tx, ids, owner, at).await?;
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
        let mut tx = self.write().await?;
        let claimed = sequences::claim_jobs(&mut tx, now, limit, owner, lease).await?;
        tx.commit().await.map_err(backend)?;
        Ok(claimed)
    }

    async fn run_jobs(&self, ids: &[i64], owner: &str, at: Timestamp) -> Result<u64> {
        let mut tx = self.write().await?;
        let ran = sequences::run_jobs(&mut tx, ids, owner, at).await?;
        tx.commit().await.map_err(backend)?;
        Ok(ran)
    }

    async fn next_engine_due(&self) -> Result<Option<Timestamp>> {
        let mut conn = self.reader.acquire().await.map_err(backend)?;
        sequences::next_due(&mut conn).await
    }

    async fn create_form(&self, def: FormDef, at: Timestamp) -> Result<FormRecord> {
        let mut tx = self.write().await?;
        let created = forms::create(&mut tx, def, at).await?;
        tx.commit().await.map_err(backend)?;
        Ok(created)
    }

    async fn list_forms(&self) -> Result<Vec<FormRecord>> {
        let mut conn = self.reader.acquire().await.map_err(backend)?;
        forms::list(&mut conn).await
    }

    async fn get_form(&self, id: Uuid) -> Result<FormRecord> {
        let mut conn = self.reader.acquire().await.map_err(backend)?;
        forms::get(&mut conn, id).await
    }

    async fn form_by_slug(&self, slug: &str) -> Result<FormRecord> {
        let mut conn = self.reader.acquire().await.map_err(backend)?;
        forms::by_slug(&mut conn, slug).await
    }

    async fn update_form(&self, id: Uuid, def: FormDef, at: Timestamp) -> Result<FormRecord> {
        let mut tx = self.write().await?;
        let updated = forms::update(&mut tx, id, def, at).await?;
        tx.commit().await.map_err(backend)?;
        Ok(updated)
    }

    async fn delete_form(&self, id: Uuid) -> Result<()> {
        let mut tx = self.write().await?;
        forms::delete(&mut tx, id).await?;
        tx.commit().await.map_err(backend)
    }

    async fn submit_form(
        &self,
        submission: FormSubmission,
        at: Timestamp,
    ) -> Result<SubmissionOutcome> {
        let mut tx = self.write().await?;
        let outcome = forms::submit(&mut tx, submission, at).await?;
        tx.commit().await.map_err(backend)?;
        Ok(outcome)
    }

    async fn confirm_contact(&self, id: Uuid, at: Timestamp) -> Result<ContactRecord> {
        let mut tx = self.write().await?;
        let record = sequences::confirm(&mut tx, id, at).await?;
        tx.commit().await.map_err(backend)?;
        Ok(record)
    }
}
