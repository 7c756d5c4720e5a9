//! The REST API under `/api/v1`: resources, their wire shapes and the shared list conventions.

pub mod contacts;
pub mod enrolments;
pub mod forms;
pub mod lists;
pub mod messages;
pub mod sequences;
pub mod smtp_accounts;
pub mod templates;

use crate::error::AppError;
use nudge_store::{Page, PageRequest};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// `{"items": [...], "next_cursor": "..." | null}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ListResponse<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

impl<T> ListResponse<T> {
    pub fn from_page<U>(page: Page<U>, map: impl Fn(U) -> T) -> Self {
        Self {
            items: page.items.into_iter().map(map).collect(),
            next_cursor: page.next_cursor.map(|c| c.to_string()),
        }
    }

    pub fn all(items: Vec<T>) -> Self {
        Self {
            items,
            next_cursor: None,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Items per page, 1 to 1000 (default 50).
    pub limit: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

pub fn page_request(params: &ListParams) -> Result<PageRequest, AppError> {
    let limit = match params.limit.as_deref() {
        None | Some("") => 50,
        Some(raw) => match raw.parse::<u32>() {
            Ok(n) if (1..=PageRequest::MAX_LIMIT).contains(&n) => n,
            _ => {
                return Err(AppError::field(
                    "limit",
                    "must be a whole number from 1 to 1000",
                ));
            }
        },
    };
    match params.cursor.as_deref() {
        None | Some("") => Ok(PageRequest::first(limit)),
        Some(raw) => Uuid::parse_str(raw)
            .map(|c| PageRequest::after(limit, c))
            .map_err(|_| AppError::field("cursor", "is not a cursor this API gave out")),
    }
}

/// Times on the wire: RFC 3339 in UTC.
pub fn rfc3339(t: jiff::Timestamp) -> String {
    t.to_string()
}
