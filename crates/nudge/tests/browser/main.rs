//! The admin UI in a real browser: headless Debian Chromium driven through chromedriver
//! (WebDriver) by fantoccini, against the whole application on a real socket with a fresh
//! database. Each test saves a PNG of the page it ends on under `target/screenshots/`.
//!
//! Without `/usr/bin/chromium` and `chromedriver` the tests fail under `CI=true`, so CI cannot
//! pass without running them, and elsewhere pass with a note on stderr.

#![allow(clippy::unwrap_used)] // Test code: a failed step should stop the test loudly.

// Shared with tests/e2e; this target uses only part of it.
#[allow(dead_code)]
#[path = "../e2e/helpers.rs"]
mod helpers;

use fantoccini::{Client, ClientBuilder, Locator};
use helpers::{PASSWORD, TestApp, add_user, spawn_app};
use nudge_core::Role;
use nudge_store::ContactFilter;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::sync::{Mutex, MutexGuard};

const CHROMIUM: &str = "/usr/bin/chromium";

/// One browser at a time: two cores do not run several Chromiums and a build well.
static ONE_BROWSER: Mutex<()> = Mutex::const_new(());

/// A browser session against a fresh app, signed in as an owner once [`Browser::sign_in`] ran.
struct Browser {
    client: Client,
    app: TestApp,
    _driver: Driver,
    _profile: tempfile::TempDir,
    _turn: MutexGuard<'static, ()>,
}

/// The chromedriver process, ended with the test.
struct Driver(std::process::Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `chromedriver` on the `PATH`.
fn chromedriver() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("chromedriver"))
        .find(|candidate| candidate.is_file())
}

/// Fails under CI, where the browser must be there; elsewhere says why nothing ran.
fn missing(what: &str) -> Option<Browser> {
    let message = format!(
        "{what} is not installed; install it with `apt-get install -y chromium chromium-driver`"
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("the browser tests need a browser under CI=true: {message}");
    }
    eprintln!("skipped a browser test: {message}");
    None
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn browser() -> Option<Browser> {
    let Some(driver_path) = chromedriver() else {
        return missing("chromedriver");
    };
    if !Path::new(CHROMIUM).is_file() {
        return missing(CHROMIUM);
    }
    let turn = ONE_BROWSER.lock().await;
    let port = free_port();
    let driver = Driver(
        std::process::Command::new(driver_path)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let profile = tempfile::tempdir().unwrap();
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".to_owned(),
        json!({
            "binary": CHROMIUM,
            // No sandbox: CI runs as root, where Chromium's sandbox refuses to start.
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1280,1000",
                     "--lang=en-GB", format!("--user-data-dir={}", profile.path().display())],
        }),
    );
    // The test build has two rustls providers (mailin-embedded brings aws-lc); say which.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = ClientBuilder::rustls()
        .unwrap()
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .unwrap();
    Some(Browser {
        client,
        app: spawn_app().await,
        _driver: driver,
        _profile: profile,
        _turn: turn,
    })
}

impl Browser {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.app.address)
    }

    async fn goto(&self, path: &str) {
        self.client.goto(&self.url(path)).await.unwrap();
    }

    async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css}: {e}"))
    }

    async fn fill(&self, css: &str, text: &str) {
        let input = self.find(css).await;
        input.clear().await.unwrap();
        input.send_keys(text).await.unwrap();
    }

    async fn text(&self, css: &str) -> String {
        let text = self.find(css).await.text().await.unwrap();
        text.replace(['\u{2068}', '\u{2069}'], "")
    }

    /// Waits until the element's text is `expected`. Meanwhile the page or fragment may still
    /// be replaced, so an element that went stale between finding and reading is looked for
    /// again.
    async fn wait_for_text(&self, css: &str, expected: &str) {
        let mut seen = None;
        for _ in 0..100 {
            if let Ok(element) = self.client.find(Locator::Css(css)).await
                && let Ok(text) = element.text().await
            {
                let text = text.replace(['\u{2068}', '\u{2069}'], "");
                if text == expected {
                    return;
                }
                seen = Some(text);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{css} never read {expected:?}; last {seen:?}");
    }

    async fn path(&self) -> String {
        self.client.current_url().await.unwrap().path().to_owned()
    }

    /// Waits until the page's path is `path`.
    async fn wait_for_path(&self, path: &str) {
        for _ in 0..100 {
            if self.path().await == path {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("never reached {path}; at {}", self.path().await);
    }

    async fn sign_in(&self) {
        add_user(&self.app, "owner@example.com", Role::Owner).await;
        self.goto("/admin/contacts").await;
        // Without a session every page leads to the sign-in form.
        self.wait_for_path("/admin/login").await;
        self.fill("#email", "owner@example.com").await;
        self.fill("#password", PASSWORD).await;
        self.find("#sign-in").await.click().await.unwrap();
        self.wait_for_path("/admin").await;
    }

    async fn create_contact(&self, email: &str, first_name: &str) {
        self.goto("/admin/contacts").await;
        self.fill("#new-email", email).await;
        self.fill("#new-first-name", first_name).await;
        self.find("#create-contact").await.click().await.unwrap();
        self.find("#contact-email").await;
    }

    /// Saves the page as `target/screenshots/{name}.png` and ends the session.
    async fn finish(self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        // The test binary is target/<profile>/deps/browser-<hash>.
        let exe = std::env::current_exe().unwrap();
        let target = exe.ancestors().nth(3).unwrap();
        let dir = target.join("screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
        self.client.close().await.unwrap();
    }
}

#[tokio::test]
async fn signing_in_leads_to_the_dashboard_with_the_contacts_by_status() {
    let Some(browser) = browser().await else {
        return;
    };
    browser.sign_in().await;
    assert_eq!(browser.text("h1").await, "Dashboard");
    assert_eq!(browser.text(".total").await, "0 contacts");
    let chart = browser.find("svg.status-bar").await;
    assert_eq!(chart.attr("role").await.unwrap().as_deref(), Some("img"));
    // htmx loaded under the CSP: the script is our own file, and nothing inline was needed.
    let htmx = browser
        .client
        .execute("return typeof htmx", vec![])
        .await
        .unwrap();
    assert_eq!(htmx, json!("object"));
    browser.finish("dashboard").await;
}

#[tokio::test]
async fn a_new_contact_is_found_in_a_filtered_list_and_opened() {
    let Some(browser) = browser().await else {
        return;
    };
    browser.sign_in().await;
    browser.create_contact("anna@example.nl", "Anna").await;
    browser.create_contact("bert@example.nl", "Bert").await;
    assert_eq!(browser.text("#contact-name").await, "Bert");

    browser.goto("/admin/contacts").await;
    assert_eq!(browser.text("#contacts-count").await, "2 contacts match.");
    // Filtering is an htmx request: the results change, the page stays (the marker lives).
    browser
        .client
        .execute("window.stillHere = true", vec![])
        .await
        .unwrap();
    browser.fill("#q", "ann").await;
    browser.find("#apply-filters").await.click().await.unwrap();
    browser
        .wait_for_text("#contacts-count", "One contact matches.")
        .await;
    let kept = browser
        .client
        .execute("return window.stillHere === true", vec![])
        .await
        .unwrap();
    assert_eq!(kept, json!(true), "the filter reloaded the whole page");
    let url = browser.client.current_url().await.unwrap();
    assert!(
        url.query().unwrap_or("").contains("q=ann"),
        "a link to share: {url}"
    );

    browser
        .find("#results a[href^='/admin/contacts/']")
        .await
        .click()
        .await
        .unwrap();
    assert_eq!(browser.text("#contact-email").await, "anna@example.nl");
    assert_eq!(browser.text("#current-status").await, "Subscribed");
    assert!(browser.text("#contact-timeline").await.contains("Created"));
    browser.finish("contact").await;
}

#[tokio::test]
async fn a_contact_named_like_markup_is_shown_as_text() {
    let Some(browser) = browser().await else {
        return;
    };
    browser.sign_in().await;
    let evil = "<img src=x onerror=alert(1)>";
    browser.create_contact("x@example.com", evil).await;
    assert_eq!(browser.text("#contact-name").await, evil);
    let images = browser
        .client
        .execute(
            "return document.querySelectorAll('main img').length",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(images, json!(0));
    // An alert would have left a prompt open, and reading the title would fail.
    assert!(browser.client.title().await.unwrap().contains(evil));
    browser.goto("/admin/contacts").await;
    assert!(browser.text("#results").await.contains(evil));
    browser.finish("markup-as-text").await;
}

#[tokio::test]
async fn a_form_sent_without_its_token_is_refused_with_403() {
    let Some(browser) = browser().await else {
        return;
    };
    browser.sign_in().await;
    browser.goto("/admin/contacts").await;
    browser.fill("#new-email", "forged@example.com").await;
    // What a forged form lacks: the token. WebDriver's scripts are not bound by the page's CSP.
    browser
        .client
        .execute(
            "document.querySelector('#new-contact input[name=csrf_token]').remove()",
            vec![],
        )
        .await
        .unwrap();
    browser.find("#create-contact").await.click().await.unwrap();
    browser.wait_for_text("h1", "Form expired").await;
    let count = browser
        .app
        .store
        .count_contacts(&ContactFilter::default())
        .await
        .unwrap();
    assert_eq!(count, 0, "nothing was created");
    browser.finish("forged-form-403").await;
}

#[tokio::test]
async fn the_pages_fit_a_phone_without_sideways_scrolling() {
    let Some(browser) = browser().await else {
        return;
    };
    browser.client.set_window_size(390, 844).await.unwrap();
    browser.sign_in().await;
    browser
        .create_contact(
            "a.very.long.address.for.a.narrow.screen@example.com",
            "Lena",
        )
        .await;
    for path in ["/admin", "/admin/contacts"] {
        browser.goto(path).await;
        let fits = browser
            .client
            .execute(
                "return document.documentElement.scrollWidth <= window.innerWidth",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(fits, json!(true), "{path} scrolls sideways on a phone");
    }
    browser.finish("contacts-on-a-phone").await;
}

#[tokio::test]
async fn a_group_tree_is_built_on_the_groups_page() {
    let Some(browser) = browser().await else {
        return;
    };
    browser.sign_in().await;
    for (name, parent) in [
        ("Customers", None),
        ("Gold", Some("Customers")),
        ("Silver", Some("Customers")),
        ("Partners", None),
        ("Resellers", Some("Partners")),
    ] {
        browser.goto("/admin/groups").await;
        browser.fill("#new-group-name", name).await;
        if let Some(parent) = parent {
            browser
                .find("#new-group-parent")
                .await
                .select_by_label(parent)
                .await
                .unwrap();
        }
        browser.find("#create-group").await.click().await.unwrap();
        browser.wait_for_path("/admin/groups").await;
    }
    browser.goto("/admin/groups").await;
    let rows = browser
        .client
        .find_all(Locator::Css("#group-tree tbody td:first-child"))
        .await
        .unwrap();
    let mut shown = Vec::new();
    for row in rows {
        let depth = row.attr("class").await.unwrap().unwrap_or_default();
        // The "└" before a subgroup is CSS (::before), which a driver may or may not read.
        let text = row.text().await.unwrap();
        shown.push(format!("{depth} {}", text.trim_start_matches(['└', ' '])));
    }
    assert_eq!(
        shown,
        [
            "depth-0 Customers",
            "depth-1 Gold",
            "depth-1 Silver",
            "depth-0 Partners",
            "depth-1 Resellers",
        ]
    );
    browser.finish("groups").await;
}
