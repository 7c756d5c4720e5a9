//! The HTTP edge of Nudge: the REST API, its OpenAPI document, the admin web UI, public pages
//! for contacts, health and metrics.
//!
//! This is the only crate that knows HTTP and JSON. Handlers parse input into the core's types,
//! call the store, and map every failure to [`error::AppError`], which carries a stable code.
//! No handler talks to SMTP or waits on a timer.

pub mod admin;
pub mod api;
pub mod auth;
pub mod error;
pub mod extract;
pub mod forms;
mod metrics;
mod openapi;
pub mod public;
pub mod test_clock;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use error::AppError;
use nudge_engine::Clock;
use nudge_store::Store;
use std::sync::Arc;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;
use utoipa_axum::router::OpenApiRouter;

pub use metrics::Metrics;

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<Metrics>,
    /// Signs and checks the tokens in links in mail.
    pub secret: Arc<[u8]>,
    /// Woken when a message is queued, so that it goes out without waiting for the next pass.
    pub wake: Option<Arc<tokio::sync::Notify>>,
    /// Woken when a change may have made engine work due now (a form submission, a start).
    pub engine_wake: Option<Arc<tokio::sync::Notify>>,
    /// Present only under `nudge serve --test-clock`: the `/api/v1/test-clock` paths exist then.
    pub test_clock: Option<Arc<test_clock::TestClockDriver>>,
    /// The public URL links and form snippets start with (`--public-url`); empty makes them
    /// relative to this server.
    pub public_url: String,
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, secret: Arc<[u8]>) -> Self {
        Self {
            store,
            clock,
            metrics: Arc::new(Metrics::default()),
            secret,
            wake: None,
            engine_wake: None,
            test_clock: None,
            public_url: String::new(),
        }
    }

    pub fn with_wake(mut self, wake: Arc<tokio::sync::Notify>) -> Self {
        self.wake = Some(wake);
        self
    }

    pub fn with_engine_wake(mut self, wake: Arc<tokio::sync::Notify>) -> Self {
        self.engine_wake = Some(wake);
        self
    }

    pub fn with_test_clock(mut self, driver: Arc<test_clock::TestClockDriver>) -> Self {
        self.test_clock = Some(driver);
        self
    }

    pub fn with_public_url(mut self, url: impl Into<String>) -> Self {
        self.public_url = url.into();
        self
    }

    /// Tells the engine and the dispatcher that work may be due now.
    pub fn wake_workers(&self) {
        for wake in [&self.engine_wake, &self.wake].into_iter().flatten() {
            wake.notify_one();
        }
    }
}

/// The whole application as one router.
pub fn app(state: AppState) -> Router {
    let mut api = OpenApiRouter::with_openapi(openapi::base());
    // Without `--test-clock` the test-clock paths do not exist, not even in the document.
    if state.test_clock.is_some() {
        api = api.merge(test_clock::router());
    }
    let (api, doc) = api
        .merge(api::contacts::router())
        .merge(api::lists::router())
        .merge(api::messages::router())
        .merge(api::smtp_accounts::router())
        .merge(api::templates::router())
        .merge(api::sequences::router())
        .merge(api::enrolments::router())
        .merge(api::forms::router())
        .split_for_parts();
    let doc = Arc::new(openapi::finish(doc));
    let api = api
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_api_key,
        ))
        .route(
            "/openapi.json",
            get(move || {
                let doc = Arc::clone(&doc);
                async move { axum::Json(doc.as_ref().clone()) }
            }),
        )
        .fallback(|| async { AppError::not_found() })
        .method_not_allowed_fallback(|| async {
            AppError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this path does not take that method",
            )
        });
    Router::new()
        .nest("/api/v1", api)
        .route("/healthz", get(healthz))
        .route(
            "/unsubscribe/{token}",
            get(public::unsubscribe_page).post(public::unsubscribe),
        )
        .route(
            "/preferences/{token}",
            get(public::preferences_page).post(public::save_preferences),
        )
        .route("/o/{token}", get(public::open_pixel))
        .route("/c/{token}", get(public::click))
        .route("/metrics", get(metrics))
        .merge(forms::router())
        .merge(admin::router(state.clone()))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::count_responses,
        ))
        .layer(DefaultBodyLimit::max(extract::BODY_LIMIT))
        .layer(TraceLayer::new_for_http())
        .layer(CatchPanicLayer::custom(|_| {
            AppError::internal().into_response()
        }))
        .with_state(state)
}

async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    match state.store.list_fields().await {
        Ok(_) => (StatusCode::OK, "ok\n"),
        Err(e) => {
            tracing::error!(error = %e, "health check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n")
        }
    }
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(state.store.backend()),
    )
}
