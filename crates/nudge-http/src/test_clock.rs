//! `nudge serve --test-clock`: a clock that moves only when a script says so, and
//! `POST /api/v1/test-clock/advance`, which walks it forward through every due time on the way,
//! letting the engine and the dispatcher do what is due at each, so that a script sees a
//! three-day sequence play out in one request and can check the results right after it.

use crate::AppState;
use crate::auth::Caller;
use crate::error::AppError;
use crate::extract::ApiJson;
use axum::extract::State;
use axum::{Extension, Json};
use jiff::{SignedDuration, Span, SpanRelativeTo, Timestamp};
use nudge_core::{MessageStatus, Scope};
use nudge_engine::{Engine, TestClock};
use nudge_mail::Dispatcher;
use nudge_store::{MessageFilter, PageRequest, Store, StoreError};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// How long `settle` waits, in all, for work another worker holds (a message the background
/// dispatcher is sending) before it answers anyway.
const SETTLE_PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);

/// The test clock and the workers it drives.
pub struct TestClockDriver {
    clock: Arc<TestClock>,
    store: Arc<dyn Store>,
    engine: Arc<Engine>,
    dispatcher: Arc<Dispatcher>,
    /// One advance at a time: two interleaved walks would move the clock past each other's
    /// due times.
    advancing: tokio::sync::Mutex<()>,
}

#[derive(Debug, thiserror::Error)]
pub enum AdvanceError {
    #[error("the test clock cannot go back: it is {now} and {to} lies before")]
    Backwards { now: Timestamp, to: Timestamp },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl TestClockDriver {
    pub fn new(
        clock: Arc<TestClock>,
        store: Arc<dyn Store>,
        engine: Arc<Engine>,
        dispatcher: Arc<Dispatcher>,
    ) -> Self {
        Self {
            clock,
            store,
            engine,
            dispatcher,
            advancing: tokio::sync::Mutex::new(()),
        }
    }

    pub fn now(&self) -> Timestamp {
        nudge_engine::Clock::now(self.clock.as_ref())
    }

    /// Moves the clock to `to`, stopping at every due time on the way (in due order) to run
    /// what is due then, and returns once everything due by `to` has been handed to SMTP.
    pub async fn advance_to(&self, to: Timestamp) -> Result<Timestamp, AdvanceError> {
        let _one = self.advancing.lock().await;
        let now = self.now();
        if to < now {
            return Err(AdvanceError::Backwards { now, to });
        }
        loop {
            self.settle().await?;
            let now = self.now();
            let next = [self.engine.next_due().await?, self.store.next_due().await?]
                .into_iter()
                .flatten()
                .filter(|t| *t > now)
                .min();
            match next {
                Some(t) if t <= to => self.move_to(t),
                _ => break,
            }
        }
        self.move_to(to);
        self.settle().await?;
        Ok(self.now())
    }

    fn move_to(&self, t: Timestamp) {
        // The clock only refuses to go back, and `t` is never before now here.
        if let Err(e) = self.clock.advance_to(t) {
            tracing::warn!(error = %e, "test clock did not move");
        }
    }

    /// Runs the engine and the dispatcher until nothing is due now, waiting for work that a
    /// background worker holds under its lease to be finished by it.
    async fn settle(&self) -> Result<(), StoreError> {
        let started = std::time::Instant::now();
        loop {
            let stats = self.engine.run_once().await?;
            let sent = self.dispatcher.run_once().await?;
            if stats.jobs + stats.steps > 0 || sent > 0 {
                continue;
            }
            if !self.busy().await? || started.elapsed() > SETTLE_PATIENCE {
                return Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    /// Whether work due now is still in someone's hands.
    async fn busy(&self) -> Result<bool, StoreError> {
        let now = self.now();
        let due = |t: Option<Timestamp>| t.is_some_and(|t| t <= now);
        if due(self.engine.next_due().await?) {
            return Ok(true);
        }
        let sending = MessageFilter {
            status: Some(MessageStatus::Sending),
            ..MessageFilter::default()
        };
        let in_flight = self
            .store
            .list_messages(&sending, PageRequest::first(1))
            .await?;
        Ok(!in_flight.items.is_empty())
    }
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_test_clock))
        .routes(routes!(advance_test_clock))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ClockOut {
    /// RFC 3339, UTC.
    pub now: String,
}

/// Either `by` (an ISO 8601 duration such as `P3D` or `PT2H`; days are 24 hours) or `to` (an
/// RFC 3339 time).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdvanceIn {
    pub by: Option<String>,
    pub to: Option<String>,
}

fn driver(state: &AppState) -> Result<&Arc<TestClockDriver>, AppError> {
    state.test_clock.as_ref().ok_or_else(AppError::not_found)
}

/// The test clock's time (only under `nudge serve --test-clock`).
#[utoipa::path(get, path = "/test-clock", tag = "test clock",
    responses((status = 200, body = ClockOut)))]
async fn get_test_clock(
    State(state): State<AppState>,
    Extension(_caller): Extension<Caller>,
) -> Result<Json<ClockOut>, AppError> {
    let driver = driver(&state)?;
    Ok(Json(ClockOut {
        now: driver.now().to_string(),
    }))
}

fn parse_by(by: &str) -> Result<SignedDuration, AppError> {
    let span: Span = by
        .trim()
        .parse()
        .map_err(|_| AppError::field("by", "is not an ISO 8601 duration such as P3D or PT2H"))?;
    if span.get_years() != 0 || span.get_months() != 0 {
        return Err(AppError::field(
            "by",
            "must be given in weeks, days, hours or less",
        ));
    }
    let duration = span
        .to_duration(SpanRelativeTo::days_are_24_hours())
        .map_err(|_| AppError::field("by", "is too long"))?;
    if duration.is_negative() {
        return Err(AppError::field("by", "must not be negative"));
    }
    Ok(duration)
}

/// Moves the test clock forward and runs, in due order, everything due by the new time; answers
/// once every message queued by then has been handed to SMTP.
#[utoipa::path(post, path = "/test-clock/advance", tag = "test clock", request_body = AdvanceIn,
    responses((status = 200, body = ClockOut)))]
async fn advance_test_clock(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(body): ApiJson<AdvanceIn>,
) -> Result<Json<ClockOut>, AppError> {
    caller.require(Scope::SettingsWrite)?;
    let driver = driver(&state)?;
    let to = match (body.by.as_deref(), body.to.as_deref()) {
        (Some(by), None) => driver
            .now()
            .checked_add(parse_by(by)?)
            .map_err(|_| AppError::field("by", "is too long"))?,
        (None, Some(to)) => to
            .parse::<Timestamp>()
            .map_err(|_| AppError::field("to", "is not an RFC 3339 time"))?,
        _ => return Err(AppError::field("by", "give either by or to")),
    };
    let now = driver.advance_to(to).await.map_err(|e| match e {
        AdvanceError::Backwards { .. } => AppError::field("to", e.to_string()),
        AdvanceError::Store(e) => e.into(),
    })?;
    Ok(Json(ClockOut {
        now: now.to_string(),
    }))
}
