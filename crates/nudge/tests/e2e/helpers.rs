#![allow(clippy::unwrap_used)] // Test helpers: a failed setup should stop the test loudly.

use argon2::password_hash::PasswordHasher;
use argon2::{Algorithm, Argon2, Params, Version};
use jiff::Timestamp;
use nudge_core::{Email, Role};
use nudge_engine::TestClock;
use nudge_http::AppState;
use nudge_store::{NewApiKey, NewUser, Store};
use nudge_store_sqlite::SqliteStore;
use reqwest::{Method, Response};
use serde_json::Value;
use std::sync::Arc;

pub struct TestApp {
    pub address: String,
    pub key: String,
    pub client: reqwest::Client,
    pub store: Arc<dyn Store>,
    pub clock: Arc<TestClock>,
    pub secret: Arc<[u8]>,
    _dir: tempfile::TempDir,
}

/// Boots the whole application on a random port with an empty SQLite database and a test clock.
pub async fn spawn_app() -> TestApp {
    boot(None).await
}

/// Like [`spawn_app`], as `nudge serve --test-clock` runs: the engine and a dispatcher that
/// hands mail to `transport` are wired in, and `POST /api/v1/test-clock/advance` drives them.
/// No worker runs in the background: the advance does the work, so every test is
/// deterministic.
pub async fn spawn_app_mailing(transport: Arc<dyn nudge_mail::Transport>) -> TestApp {
    boot(Some(transport)).await
}

async fn boot(transport: Option<Arc<dyn nudge_mail::Transport>>) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(&dir.path().join("nudge.db"))
            .await
            .unwrap(),
    );
    let key = new_key(store.as_ref(), &["*"]).await;
    let clock = Arc::new(TestClock::starting_at(Timestamp::now()));
    let secret: Arc<[u8]> = Arc::from(b"a test secret of at least thirty-two bytes".to_vec());
    let mut state = AppState::new(Arc::clone(&store), clock.clone(), Arc::clone(&secret));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    if let Some(transport) = transport {
        let dispatcher = Arc::new(dispatcher(&store, &clock, &secret, &address, transport));
        let engine = Arc::new(
            nudge_engine::Engine::new(Arc::clone(&store), clock.clone())
                .with_dispatcher(dispatcher.waker()),
        );
        state = state.with_test_clock(Arc::new(nudge_http::test_clock::TestClockDriver::new(
            clock.clone(),
            Arc::clone(&store),
            engine,
            dispatcher,
        )));
    }
    tokio::spawn(async move {
        axum::serve(listener, nudge_http::app(state)).await.unwrap();
    });
    TestApp {
        address,
        key,
        client: reqwest::Client::new(),
        store,
        clock,
        secret,
        _dir: dir,
    }
}

pub async fn new_key(store: &dyn Store, scopes: &[&str]) -> String {
    let key = format!("nudge_test_{}", uuid::Uuid::now_v7().simple());
    store
        .create_api_key(NewApiKey {
            name: "test".into(),
            key_hash: nudge_http::auth::key_hash(&key),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
        })
        .await
        .unwrap();
    key
}

/// The password of every user [`add_user`] makes.
pub const PASSWORD: &str = "correct horse battery staple";

/// An admin UI user with [`PASSWORD`]. Its argon2id hash has small costs: the default costs
/// take seconds to verify in an unoptimised test build, and the server reads the costs from
/// the hash, as it does for any.
pub async fn add_user(app: &TestApp, email: &str, role: Role) {
    let params = Params::new(64, 1, 1, None).unwrap();
    let hash = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password(PASSWORD.as_bytes())
        .unwrap()
        .to_string();
    app.store
        .create_user(NewUser {
            email: Email::parse(email).unwrap(),
            password_hash: hash,
            role,
        })
        .await
        .unwrap();
}

impl TestApp {
    /// The data directory: its `nudge.db` is this app's database, for the CLI to work on.
    pub fn data_dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    /// A dispatcher over this app's store and clock, handing mail to `transport`; tests call its
    /// `run_once` after moving the clock instead of waiting.
    pub fn dispatcher(&self, transport: Arc<dyn nudge_mail::Transport>) -> nudge_mail::Dispatcher {
        dispatcher(
            &self.store,
            &self.clock,
            &self.secret,
            &self.address,
            transport,
        )
    }

    /// `POST /api/v1/test-clock/advance` by an ISO 8601 duration (`PT0S` runs what is due now).
    pub async fn advance(&self, by: &str) -> Value {
        let (status, body) = self
            .post("/test-clock/advance", serde_json::json!({ "by": by }))
            .await;
        assert_eq!(status, 200, "advance by {by}: {body}");
        body
    }

    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        self.call_with(&self.key, method, path, body).await
    }

    pub async fn call_with(
        &self,
        key: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .client
            .request(method, format!("{}/api/v1{path}", self.address))
            .bearer_auth(key);
        if let Some(body) = body {
            req = req.json(&body);
        }
        parse(req.send().await.unwrap()).await
    }

    pub async fn raw(&self, method: Method, path: &str, body: Vec<u8>) -> (u16, Value) {
        let req = self
            .client
            .request(method, format!("{}/api/v1{path}", self.address))
            .bearer_auth(&self.key)
            .header("content-type", "application/json")
            .body(body);
        parse(req.send().await.unwrap()).await
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(Method::PATCH, path, Some(body)).await
    }

    /// Creates and returns something the test needs, failing loudly if the API refuses.
    pub async fn create(&self, path: &str, body: Value) -> Value {
        let (status, body) = self.post(path, body).await;
        assert_eq!(status, 201, "{path}: {body}");
        body
    }
}

fn dispatcher(
    store: &Arc<dyn Store>,
    clock: &Arc<TestClock>,
    secret: &Arc<[u8]>,
    address: &str,
    transport: Arc<dyn nudge_mail::Transport>,
) -> nudge_mail::Dispatcher {
    nudge_mail::Dispatcher::new(
        Arc::clone(store),
        clock.clone(),
        transport,
        nudge_mail::SenderSettings {
            from_email: nudge_core::Email::parse("news@example.com").unwrap(),
            from_name: Some("Nieuwsbrief".into()),
            public_url: address.to_owned(),
            tracking: true,
        },
        Arc::clone(secret),
    )
}

async fn parse(response: Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let bytes = response.bytes().await.unwrap();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    (status, body)
}

/// The `error.code` of an error answer.
pub fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

/// The reason given for `field` in an error answer.
pub fn reason<'a>(body: &'a Value, field: &str) -> &'a str {
    body["error"]["fields"][field].as_str().unwrap_or("")
}
