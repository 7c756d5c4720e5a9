//! `/admin/settings/smtp`: the sending accounts. The password is write-only: a form takes one
//! (on an edit, an empty field keeps the stored one) and no page ever shows it, only whether
//! one is set. "Test connection" connects to the relay (EHLO, and AUTH when the account has
//! credentials) with a short timeout and shows what came back; it sends nothing.

use super::session::Current;
use super::{Failure, PageForm, PageQuery, view};
use crate::AppState;
use axum::Extension;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::context;
use nudge_core::{Patch, SmtpAccountInput, SmtpAccountSettings, SmtpTls};
use nudge_store::{SmtpAccount, StoreError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;
use uuid::Uuid;

/// How long "test connection" waits for the relay, in all.
const TEST_TIMEOUT: Duration = Duration::from_secs(8);

/// The account form, and the other forms of the page (`action` says which).
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct AccountForm {
    #[serde(default)]
    action: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    host: String,
    #[serde(default)]
    port: String,
    #[serde(default)]
    tls: String,
    #[serde(default)]
    username: String,
    /// Never serialized back into a page.
    #[serde(default, skip_serializing)]
    password: String,
    #[serde(default, skip_serializing)]
    clear_password: Option<String>,
    #[serde(default)]
    from_email: String,
    #[serde(default)]
    from_name: String,
    #[serde(default)]
    rate_per_second: String,
    #[serde(default)]
    daily_limit: String,
    #[serde(default)]
    weight: String,
    #[serde(default)]
    tracking: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct EditQuery {
    #[serde(default)]
    edit: String,
}

#[derive(Debug, Serialize)]
struct Row {
    id: String,
    name: String,
    host: String,
    port: u16,
    tls: &'static str,
    username: Option<String>,
    has_password: bool,
    from_email: String,
    from_name: Option<String>,
    rate_per_second: f64,
    daily_limit: u64,
    weight: u32,
    tracking: bool,
}

impl From<&SmtpAccount> for Row {
    fn from(a: &SmtpAccount) -> Self {
        let s = &a.settings;
        Self {
            id: a.id.to_string(),
            name: s.name.clone(),
            host: s.host.clone(),
            port: s.port,
            tls: s.tls.as_str(),
            username: s.username.clone(),
            has_password: s.password.is_some(),
            from_email: s.from_email.to_string(),
            from_name: s.from_name.clone(),
            rate_per_second: s.rate_per_second,
            daily_limit: s.daily_limit,
            weight: s.weight,
            tracking: s.tracking,
        }
    }
}

/// The form for an existing account: its values, the password left out.
fn form_of(a: &SmtpAccount) -> AccountForm {
    let s = &a.settings;
    AccountForm {
        action: "update".into(),
        id: a.id.to_string(),
        name: s.name.clone(),
        host: s.host.clone(),
        port: s.port.to_string(),
        tls: s.tls.as_str().into(),
        username: s.username.clone().unwrap_or_default(),
        from_email: s.from_email.to_string(),
        from_name: s.from_name.clone().unwrap_or_default(),
        rate_per_second: s.rate_per_second.to_string(),
        daily_limit: s.daily_limit.to_string(),
        weight: s.weight.to_string(),
        tracking: s.tracking.then(|| "on".into()),
        ..AccountForm::default()
    }
}

/// What the page shows besides the list: the form being filled in, its errors, and the
/// result of a connection test.
#[derive(Default)]
struct Shown {
    form: Option<AccountForm>,
    errors: BTreeMap<String, String>,
    test: Option<(String, bool, String)>,
}

async fn page(
    state: &AppState,
    current: &Current,
    uri: &Uri,
    shown: Shown,
) -> Result<Response, Failure> {
    let accounts = state.store.list_smtp_accounts().await?;
    let rows: Vec<Row> = accounts.iter().map(Row::from).collect();
    let form = shown.form.unwrap_or_else(|| AccountForm {
        action: "create".into(),
        tls: "starttls".into(),
        tracking: Some("on".into()),
        ..AccountForm::default()
    });
    let status = if shown.errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let test = shown
        .test
        .map(|(id, ok, answer)| context! { id, ok, answer });
    let ctx = context! {
        accounts => view::serialized(&rows),
        editing => form.action == "update",
        form => view::serialized(&form),
        errors => shown.errors,
        test,
        tls_modes => ["starttls", "tls", "none"],
        ..current.context("smtp", uri)
    };
    view::page(status, "smtp.html", ctx)
}

/// `GET /admin/settings/smtp` (`?edit=<id>` fills the form with that account).
pub async fn smtp(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
    uri: Uri,
    PageQuery(query): PageQuery<EditQuery>,
) -> Result<Response, Failure> {
    let mut shown = Shown::default();
    if !query.edit.is_empty() {
        let id = Uuid::parse_str(&query.edit).map_err(|_| Failure::NotFound)?;
        shown.form = Some(form_of(&state.store.get_smtp_account(id).await?));
    }
    page(&state, &current, &uri, shown).await
}

fn text(value: &str) -> Option<String> {
    let value = value.trim();
    (!value.is_empty()).then(|| value.to_owned())
}

/// The form as the core's input; numbers that are not numbers are reasons in `errors`.
fn input(
    form: &AccountForm,
    errors: &mut BTreeMap<String, String>,
    update: bool,
) -> SmtpAccountInput {
    fn number<T: std::str::FromStr>(
        raw: &str,
        field: &str,
        errors: &mut BTreeMap<String, String>,
    ) -> Option<T> {
        let raw = raw.trim();
        if raw.is_empty() {
            return None;
        }
        raw.parse()
            .map_err(|_| errors.insert(field.to_owned(), "must be a number".to_owned()))
            .ok()
    }
    // An empty optional field clears it on an edit; on a new account there is nothing to clear.
    let optional = |raw: &str| match text(raw) {
        Some(v) => Patch::Set(v),
        None if update => Patch::Clear,
        None => Patch::Keep,
    };
    let password = match (text(&form.password), form.clear_password.is_some()) {
        (Some(p), _) => Patch::Set(p),
        (None, true) if update => Patch::Clear,
        (None, _) => Patch::Keep,
    };
    SmtpAccountInput {
        name: text(&form.name),
        host: text(&form.host),
        port: number(&form.port, "port", errors),
        tls: text(&form.tls),
        username: optional(&form.username),
        password,
        from_email: text(&form.from_email),
        from_name: optional(&form.from_name),
        rate_per_second: number(&form.rate_per_second, "rate_per_second", errors),
        daily_limit: number(&form.daily_limit, "daily_limit", errors),
        weight: number(&form.weight, "weight", errors),
        tracking: Some(form.tracking.is_some()),
    }
}

fn account_id(raw: &str) -> Result<Uuid, Failure> {
    Uuid::parse_str(raw.trim()).map_err(|_| Failure::NotFound)
}

/// `POST /admin/settings/smtp`: `create`, `update` (id), `delete` (id) or `test` (id).
pub async fn smtp_act(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
    uri: Uri,
    PageForm(form): PageForm<AccountForm>,
) -> Result<Response, Failure> {
    let store = &state.store;
    match form.action.as_str() {
        "delete" => {
            store.delete_smtp_account(account_id(&form.id)?).await?;
            return Ok(Redirect::to("/admin/settings/smtp").into_response());
        }
        "test" => {
            let account = store.get_smtp_account(account_id(&form.id)?).await?;
            let (ok, answer) = test_connection(&account.settings).await;
            let shown = Shown {
                test: Some((account.id.to_string(), ok, answer)),
                ..Shown::default()
            };
            return page(&state, &current, &uri, shown).await;
        }
        "create" | "update" => {}
        other => return Err(Failure::BadRequest(format!("no action {other}"))),
    }
    let update = form.action == "update";
    let mut errors = BTreeMap::new();
    let change = input(&form, &mut errors, update);
    let saved: Result<(), StoreError> = if !errors.is_empty() {
        Ok(())
    } else if update {
        let id = account_id(&form.id)?;
        store.update_smtp_account(id, change).await.map(drop)
    } else {
        match SmtpAccountSettings::create(change) {
            Ok(settings) => store.create_smtp_account(settings).await.map(drop),
            Err(fields) => Err(StoreError::Invalid(fields)),
        }
    };
    match saved {
        Ok(()) if errors.is_empty() => Ok(Redirect::to("/admin/settings/smtp").into_response()),
        Ok(()) => {
            let shown = Shown {
                form: Some(form),
                errors,
                test: None,
            };
            page(&state, &current, &uri, shown).await
        }
        Err(StoreError::Invalid(fields)) => {
            let shown = Shown {
                form: Some(form),
                errors: fields.into_map(),
                test: None,
            };
            page(&state, &current, &uri, shown).await
        }
        Err(e) => Err(e.into()),
    }
}

/// Connects to the account's relay as the dispatcher would (TLS mode, EHLO, AUTH) and says
/// how it went: whether it worked, and the relay's answer or the error.
async fn test_connection(s: &SmtpAccountSettings) -> (bool, String) {
    use nudge_mail::transport::{SmtpRelay, SmtpSettings, TlsMode};
    let relay = SmtpRelay::new(SmtpSettings {
        host: s.host.clone(),
        port: s.port,
        tls: match s.tls {
            SmtpTls::None => TlsMode::None,
            SmtpTls::StartTls => TlsMode::StartTls,
            SmtpTls::Tls => TlsMode::Implicit,
        },
        credentials: s.username.clone().zip(s.password.clone()),
        helo: "nudge.connection-test".into(),
        timeout: TEST_TIMEOUT,
        pool_size: 0,
    });
    match tokio::time::timeout(TEST_TIMEOUT, relay.probe()).await {
        Ok(Ok(answer)) => (true, answer),
        Ok(Err(e)) => (false, e.to_string()),
        Err(_) => (
            false,
            format!(
                "no answer from {}:{} within {} seconds",
                s.host,
                s.port,
                TEST_TIMEOUT.as_secs()
            ),
        ),
    }
}

/// The generate-a-key form of `/admin/settings/dkim`.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct DkimForm {
    #[serde(default)]
    domain: String,
    #[serde(default)]
    selector: String,
    #[serde(default)]
    algorithm: String,
}

async fn dkim_page(
    state: &AppState,
    current: &Current,
    uri: &Uri,
    form: DkimForm,
    errors: BTreeMap<String, String>,
) -> Result<Response, Failure> {
    let keys: Vec<minijinja::Value> = state
        .store
        .dkim_keys()
        .await?
        .into_iter()
        .map(|k| {
            // The DNS record comes from the key itself; the private key never reaches a page.
            let record = nudge_mail::DkimKey::from_pem(&k.domain, &k.selector, &k.private_key_pem)
                .map(|key| key.dns_record().clone());
            context! {
                domain => k.domain,
                selector => k.selector,
                algorithm => k.algorithm.as_str(),
                created_at => k.created_at.to_string(),
                record_name => record.as_ref().ok().map(|r| r.name.clone()),
                record_value => record.as_ref().ok().map(|r| r.value.clone()),
                record_error => record.err().map(|e| e.to_string()),
            }
        })
        .collect();
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let ctx = context! {
        keys,
        form => view::serialized(&form),
        errors,
        ..current.context("dkim", uri)
    };
    view::page(status, "dkim.html", ctx)
}

/// `GET /admin/settings/dkim`: the stored keys and the DNS record each needs.
pub async fn dkim(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
    uri: Uri,
) -> Result<Response, Failure> {
    let form = DkimForm {
        selector: "nudge".into(),
        algorithm: "rsa".into(),
        ..DkimForm::default()
    };
    dkim_page(&state, &current, &uri, form, BTreeMap::new()).await
}

/// `POST /admin/settings/dkim`: makes a key for a domain (replacing the one it had) and
/// shows the page with its DNS record.
pub async fn dkim_generate(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
    uri: Uri,
    PageForm(form): PageForm<DkimForm>,
) -> Result<Response, Failure> {
    use nudge_mail::{Algorithm, DkimError, DkimKey};
    use nudge_store::{DkimAlgorithm, NewDkimKey};
    let (kind, stored) = match form.algorithm.as_str() {
        "ed25519" => (Algorithm::Ed25519, DkimAlgorithm::Ed25519),
        _ => (Algorithm::Rsa2048, DkimAlgorithm::Rsa),
    };
    let domain = form.domain.trim().to_lowercase();
    let selector = form.selector.trim().to_owned();
    let (d, s) = (domain.clone(), selector.clone());
    // An RSA key takes a moment to make: off the async threads.
    let generated = tokio::task::spawn_blocking(move || DkimKey::generate(&d, &s, kind))
        .await
        .map_err(|e| Failure::Internal(format!("key generation stopped: {e}")))?;
    let generated = match generated {
        Ok(g) => g,
        Err(e) => {
            let field = match e {
                DkimError::Domain(_) => "domain",
                DkimError::Selector(_) => "selector",
                _ => "algorithm",
            };
            let errors = BTreeMap::from([(field.to_owned(), e.to_string())]);
            return dkim_page(&state, &current, &uri, form, errors).await;
        }
    };
    state
        .store
        .save_dkim_key(NewDkimKey {
            domain: generated.key.domain().to_owned(),
            selector: generated.key.selector().to_owned(),
            algorithm: stored,
            private_key_pem: generated.pem,
        })
        .await?;
    Ok(Redirect::to("/admin/settings/dkim").into_response())
}
