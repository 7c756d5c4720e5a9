//! `/admin/groups`, `/admin/fields` and `/admin/tags`: the things contacts are sorted by.
//!
//! Each page's forms post to the page's own path; the hidden `action` says which form. A
//! success is a 303 back to the page; a refusal shows the page again (422) with the store's
//! reason: per field where it names one, else as a notice at the top (a group that still has
//! contacts or subgroups, or that a sequence or form uses, says so in the reader's language).

use super::session::Current;
use super::{Failure, PageForm, view};
use crate::AppState;
use axum::Extension;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::{Value, context};
use nudge_core::{Area, FieldDef};
use nudge_store::{Group, GroupPatch, StoreError};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

/// Any form on these pages; `action` says which, the rest are its fields.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct ListForm {
    #[serde(default)]
    action: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    parent: String,
    #[serde(default)]
    key: String,
    #[serde(default)]
    label: String,
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    options: String,
}

/// What a refused form shows: the form's values, a reason per field and a notice key (a
/// catalogue message) with the store's own words beside it.
#[derive(Default)]
struct Refusal {
    form: ListForm,
    errors: BTreeMap<String, String>,
    notice: Option<&'static str>,
    detail: Option<String>,
}

impl Refusal {
    /// What every list page shows besides its list: the form as sent, its refusal, and whether
    /// the user may write at all.
    fn context(&self, current: &Current) -> minijinja::Value {
        context! {
            can_write => can_write(current),
            form => view::serialized(&self.form),
            errors => self.errors.clone(),
            notice => self.notice,
            detail => self.detail.clone(),
        }
    }

    fn status(&self) -> StatusCode {
        if self.errors.is_empty() && self.notice.is_none() {
            StatusCode::OK
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        }
    }
}

/// The refusal a store error makes on a form, or the failure it is.
fn refusal(form: ListForm, e: StoreError) -> Result<Refusal, Failure> {
    let mut shown = Refusal {
        form,
        ..Refusal::default()
    };
    match e {
        StoreError::Invalid(fields) => shown.errors = fields.into_map(),
        StoreError::Conflict {
            code,
            field,
            message,
        } => {
            shown.notice = Some(match code {
                "group_not_empty" => "groups-not-empty",
                "group_in_use" => "groups-in-use",
                _ => "form-refused",
            });
            if let Some(field) = field {
                shown.errors.insert(field.to_owned(), message.clone());
            }
            shown.detail = Some(message);
        }
        other => return Err(other.into()),
    }
    Ok(shown)
}

fn uuid(raw: &str, field: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(raw.trim()).map_err(|_| StoreError::invalid(field, "not a known group"))
}

/// `None` for the top of the tree (an empty parent), else the group.
fn parent(raw: &str) -> Result<Option<Uuid>, StoreError> {
    match raw.trim() {
        "" => Ok(None),
        raw => uuid(raw, "parent_id").map(Some),
    }
}

#[derive(Debug, Serialize)]
struct TreeRow {
    id: String,
    name: String,
    parent: String,
    depth: usize,
    /// The path from the top, for the parent selects.
    label: String,
    public: bool,
}

/// The groups depth first, each under its parent, siblings by name.
fn tree(groups: &[Group]) -> Vec<TreeRow> {
    let ids: HashMap<Uuid, &Group> = groups.iter().map(|g| (g.id, g)).collect();
    let mut children: HashMap<Option<Uuid>, Vec<&Group>> = HashMap::new();
    for g in groups {
        // A parent that is not there (it cannot be) puts the group at the top.
        let parent = g.parent_id.filter(|p| ids.contains_key(p));
        children.entry(parent).or_default().push(g);
    }
    for list in children.values_mut() {
        list.sort_by_key(|g| g.name.to_lowercase());
    }
    let mut rows = Vec::with_capacity(groups.len());
    // (group, depth, path of names above it)
    let mut stack: Vec<(&Group, usize, String)> = children
        .get(&None)
        .map(|top| top.iter().rev().map(|g| (*g, 0, String::new())).collect())
        .unwrap_or_default();
    while let Some((g, depth, above)) = stack.pop() {
        // The store refuses cycles; the bound keeps a corrupt tree from looping.
        if rows.len() > groups.len() {
            break;
        }
        let label = if above.is_empty() {
            g.name.clone()
        } else {
            format!("{above} › {}", g.name)
        };
        if let Some(kids) = children.get(&Some(g.id)) {
            for kid in kids.iter().rev() {
                stack.push((kid, depth + 1, label.clone()));
            }
        }
        rows.push(TreeRow {
            id: g.id.to_string(),
            name: g.name.clone(),
            parent: g.parent_id.map(|p| p.to_string()).unwrap_or_default(),
            depth,
            label,
            public: g.public,
        });
    }
    rows
}

fn can_write(current: &Current) -> bool {
    current.user.role.may(Area::Lists, true)
}

async fn groups_page(
    state: &AppState,
    current: &Current,
    uri: &Uri,
    shown: Refusal,
) -> Result<Response, Failure> {
    let groups = state.store.list_groups().await?;
    let ctx = context! {
        ..context! {
            groups => view::serialized(tree(&groups)),
        },
        ..shown.context(current),
        ..current.context("groups", uri)
    };
    view::page(shown.status(), "groups.html", ctx)
}

/// `GET /admin/groups`.
pub async fn groups(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
    uri: Uri,
) -> Result<Response, Failure> {
    groups_page(&state, &current, &uri, Refusal::default()).await
}

/// `POST /admin/groups`: `create` (name, parent), `rename` (id, name), `move` (id, parent)
/// or `delete` (id).
pub async fn groups_act(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
    uri: Uri,
    PageForm(form): PageForm<ListForm>,
) -> Result<Response, Failure> {
    let store = &state.store;
    let done: Result<(), StoreError> = async {
        match form.action.as_str() {
            "create" => {
                let parent = parent(&form.parent)?;
                store.create_group(form.name.trim(), parent, false).await?;
            }
            "rename" => {
                let patch = GroupPatch {
                    name: Some(form.name.trim().to_owned()),
                    ..GroupPatch::default()
                };
                store.update_group(uuid(&form.id, "id")?, patch).await?;
            }
            "move" => {
                let patch = GroupPatch {
                    parent_id: Some(parent(&form.parent)?),
                    ..GroupPatch::default()
                };
                store.update_group(uuid(&form.id, "id")?, patch).await?;
            }
            "delete" => store.delete_group(uuid(&form.id, "id")?).await?,
            other => return Err(StoreError::invalid("action", format!("no action {other}"))),
        }
        Ok(())
    }
    .await;
    match done {
        Ok(()) => Ok(Redirect::to("/admin/groups").into_response()),
        Err(e) => {
            let shown = refusal(form, e)?;
            groups_page(&state, &current, &uri, shown).await
        }
    }
}

#[derive(Debug, Serialize)]
struct FieldRow {
    key: String,
    label: String,
    kind: &'static str,
    options: Vec<String>,
}

async fn fields_page(
    state: &AppState,
    current: &Current,
    uri: &Uri,
    shown: Refusal,
) -> Result<Response, Failure> {
    let fields: Vec<FieldRow> = state
        .store
        .list_fields()
        .await?
        .into_iter()
        .map(|f| FieldRow {
            key: f.key.as_str().to_owned(),
            label: f.label,
            kind: f.kind.as_str(),
            options: f.options,
        })
        .collect();
    let ctx = context! {
        ..context! {
            fields => view::serialized(&fields),
            types => ["text", "number", "date", "boolean", "choice", "multi_choice"],
        },
        ..shown.context(current),
        ..current.context("fields", uri)
    };
    view::page(shown.status(), "fields.html", ctx)
}

/// `GET /admin/fields`.
pub async fn fields(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
    uri: Uri,
) -> Result<Response, Failure> {
    let form = ListForm {
        kind: "text".into(),
        ..ListForm::default()
    };
    let shown = Refusal {
        form,
        ..Refusal::default()
    };
    fields_page(&state, &current, &uri, shown).await
}

/// `POST /admin/fields`: `create` (key, label, type, options one a line) or `delete` (key).
pub async fn fields_act(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
    uri: Uri,
    PageForm(form): PageForm<ListForm>,
) -> Result<Response, Failure> {
    let store = &state.store;
    let done: Result<(), StoreError> = async {
        match form.action.as_str() {
            "create" => {
                let options: Vec<String> = form
                    .options
                    .lines()
                    .map(str::trim)
                    .filter(|o| !o.is_empty())
                    .map(str::to_owned)
                    .collect();
                let label = Some(form.label.trim()).filter(|l| !l.is_empty());
                let def = FieldDef::new(form.key.trim(), label, &form.kind, options)
                    .map_err(StoreError::Invalid)?;
                store.create_field(def).await?;
            }
            "delete" => store.delete_field(form.key.trim()).await?,
            other => return Err(StoreError::invalid("action", format!("no action {other}"))),
        }
        Ok(())
    }
    .await;
    match done {
        Ok(()) => Ok(Redirect::to("/admin/fields").into_response()),
        Err(e) => {
            let shown = refusal(form, e)?;
            fields_page(&state, &current, &uri, shown).await
        }
    }
}

async fn tags_page(
    state: &AppState,
    current: &Current,
    uri: &Uri,
    shown: Refusal,
) -> Result<Response, Failure> {
    let tags: Vec<Value> = state
        .store
        .list_tags()
        .await?
        .into_iter()
        .map(|t| context! { name => t.name, contacts => t.contacts })
        .collect();
    let ctx = context! {
        ..context! {
            tags,
        },
        ..shown.context(current),
        ..current.context("tags", uri)
    };
    view::page(shown.status(), "tags.html", ctx)
}

/// `GET /admin/tags`.
pub async fn tags(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
    uri: Uri,
) -> Result<Response, Failure> {
    tags_page(&state, &current, &uri, Refusal::default()).await
}

/// `POST /admin/tags`: `create` (name) or `delete` (name; taken off every contact).
pub async fn tags_act(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
    uri: Uri,
    PageForm(form): PageForm<ListForm>,
) -> Result<Response, Failure> {
    let store = &state.store;
    let done: Result<(), StoreError> = async {
        match form.action.as_str() {
            "create" => {
                store.create_tag(form.name.trim()).await?;
            }
            "delete" => {
                store
                    .delete_tag(form.name.trim(), state.clock.now())
                    .await?
            }
            other => return Err(StoreError::invalid("action", format!("no action {other}"))),
        }
        Ok(())
    }
    .await;
    match done {
        Ok(()) => Ok(Redirect::to("/admin/tags").into_response()),
        Err(e) => {
            let shown = refusal(form, e)?;
            tags_page(&state, &current, &uri, shown).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(name: &str, parent: Option<Uuid>) -> Group {
        Group {
            id: Uuid::new_v4(),
            name: name.into(),
            parent_id: parent,
            public: false,
            created_at: jiff::Timestamp::UNIX_EPOCH,
        }
    }

    #[test]
    fn the_tree_lists_each_group_under_its_parent() {
        let customers = group("Customers", None);
        let gold = group("Gold", Some(customers.id));
        let alpha = group("alpha", None);
        let rows = tree(&[gold.clone(), customers.clone(), alpha.clone()]);
        let shown: Vec<(&str, usize, &str)> = rows
            .iter()
            .map(|r| (r.name.as_str(), r.depth, r.label.as_str()))
            .collect();
        assert_eq!(
            shown,
            [
                ("alpha", 0, "alpha"),
                ("Customers", 0, "Customers"),
                ("Gold", 1, "Customers › Gold"),
            ]
        );
    }
}
