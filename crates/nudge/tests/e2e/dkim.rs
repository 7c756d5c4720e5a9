#![allow(clippy::unwrap_used)] // Test code.

//! `nudge dkim generate` and signing: the key the command stores signs the dispatcher's mail,
//! and mail-auth's verifier, given the TXT record the command printed, passes the signature.

use crate::delivery::{Sink, parsed, relay, send};
use crate::helpers::spawn_app;
use mail_auth::common::parse::TxtRecordParser as _;
use mail_auth::common::verify::DomainKey;
use mail_auth::{
    AuthenticatedMessage, DkimResult, MessageAuthenticator, Parameters, ResolverCache, Txt,
};
use nudge_store::{DkimAlgorithm, Store};
use nudge_store_sqlite::SqliteStore;
use serde_json::json;
use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Mutex;
use std::time::{Duration, Instant};

fn nudge(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nudge"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("NUDGE_DATABASE_URL")
        .env("NUDGE_LOG", "warn")
        .output()
        .unwrap()
}

/// The (name, value) lines `dkim generate` printed.
fn record(out: &Output) -> (String, String) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "name and value, nothing else: {stdout}");
    (lines[0].to_owned(), lines[1].to_owned())
}

/// An in-memory TXT cache: the verifier finds the record there and never asks DNS.
#[derive(Default)]
struct TxtCache(Mutex<HashMap<Box<str>, Txt>>);

impl ResolverCache<Box<str>, Txt> for TxtCache {
    fn get<Q>(&self, name: &Q) -> Option<Txt>
    where
        Box<str>: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.0.lock().unwrap().get(name).cloned()
    }

    fn remove<Q>(&self, name: &Q) -> Option<Txt>
    where
        Box<str>: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.0.lock().unwrap().remove(name)
    }

    fn insert(&self, key: Box<str>, value: Txt, _: Instant) {
        self.0.lock().unwrap().insert(key, value);
    }
}

/// mail-auth's verdict on every signature of `message`, with `records` as the only DNS.
async fn verify(message: &[u8], records: &[(String, String)]) -> Vec<DkimResult> {
    let cache = TxtCache::default();
    for (name, value) in records {
        cache.insert(
            format!("{name}.").into(),
            Txt::from(DomainKey::parse(value.as_bytes())),
            Instant::now() + Duration::from_secs(3600),
        );
    }
    let authenticator = MessageAuthenticator::new_cloudflare().unwrap();
    let parsed = AuthenticatedMessage::parse(message).unwrap();
    authenticator
        .verify_dkim(Parameters::new(&parsed).with_txt_cache(&cache))
        .await
        .into_iter()
        .map(|output| output.result().clone())
        .collect()
}

#[tokio::test]
async fn dkim_generate_prints_the_txt_record_and_stores_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let (name, value) = record(&nudge(dir.path(), &["dkim", "generate", "Example.COM"]));
    assert_eq!(name, "nudge._domainkey.example.com");
    assert!(value.starts_with("v=DKIM1; k=rsa; p=MII"), "{value}");
    let (name2, value2) = record(&nudge(
        dir.path(),
        &[
            "dkim",
            "generate",
            "mail.example.org",
            "--selector",
            "s2026",
            "--algorithm",
            "ed25519",
        ],
    ));
    assert_eq!(name2, "s2026._domainkey.mail.example.org");
    assert!(value2.starts_with("v=DKIM1; k=ed25519; p="), "{value2}");

    let store = SqliteStore::open(&dir.path().join("nudge.db"))
        .await
        .unwrap();
    let keys = store.dkim_keys().await.unwrap();
    let stored: Vec<_> = keys
        .iter()
        .map(|k| (k.domain.as_str(), k.selector.as_str(), k.algorithm))
        .collect();
    assert_eq!(
        stored,
        [
            ("example.com", "nudge", DkimAlgorithm::Rsa),
            ("mail.example.org", "s2026", DkimAlgorithm::Ed25519)
        ]
    );
    // The stored private key is the one whose public half was printed.
    for (key, (name, value)) in keys.iter().zip([(&name, &value), (&name2, &value2)]) {
        let loaded =
            nudge_mail::DkimKey::from_pem(&key.domain, &key.selector, &key.private_key_pem)
                .unwrap();
        assert_eq!(
            (&loaded.dns_record().name, &loaded.dns_record().value),
            (name, value)
        );
    }

    // A second key for a domain replaces the first.
    let (_, replaced) = record(&nudge(
        dir.path(),
        &["dkim", "generate", "example.com", "--algorithm", "ed25519"],
    ));
    let keys = store.dkim_keys().await.unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0].algorithm, DkimAlgorithm::Ed25519);
    assert_ne!(replaced, value);

    for (args, flag) in [
        (
            &["dkim", "generate", "localhost"][..],
            "DOMAIN \"localhost\"",
        ),
        (
            &["dkim", "generate", "example.com", "--selector", "a;b"],
            "--selector \"a;b\"",
        ),
        (
            &["dkim", "generate", "example.com", "--algorithm", "dsa"],
            "--algorithm",
        ),
    ] {
        let out = nudge(dir.path(), args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(stderr.contains(flag), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    assert_eq!(store.dkim_keys().await.unwrap().len(), 2, "nothing stored");
}

#[tokio::test]
async fn a_key_made_by_dkim_generate_while_the_dispatcher_runs_signs_mail_that_verifies() {
    let app = spawn_app().await;
    let (sink, port) = Sink::start();
    let dispatcher = app.dispatcher(relay(port));
    send(
        &app,
        json!({"to": "before@example.net", "subject": "Before", "html": "<p>x</p>"}),
    )
    .await;
    assert_eq!(dispatcher.run_once().await.unwrap(), 1);
    let unsigned = &sink.messages()[0].2;
    assert!(
        parsed(unsigned).header("DKIM-Signature").is_none(),
        "no key yet"
    );

    // The dispatcher is running when the keys are made; the store is the app's database.
    let rsa = record(&nudge(app.data_dir(), &["dkim", "generate", "example.com"]));
    let ed = record(&nudge(
        app.data_dir(),
        &[
            "dkim",
            "generate",
            "other.example.org",
            "--algorithm",
            "ed25519",
        ],
    ));
    // The default sender is news@example.com; the second message names its own.
    send(
        &app,
        json!({"to": "signed@example.net", "class": "transactional", "subject": "Signed, RSA",
               "html": "<p>Grüße uit Nederland</p>"}),
    )
    .await;
    let c = app
        .create("/contacts", json!({"email": "reader@example.net"}))
        .await;
    send(
        &app,
        json!({"contact_id": c["id"], "class": "campaign", "subject": "Signed, Ed25519",
               "from_email": "hello@Other.Example.org", "html": "<p>שלום</p>"}),
    )
    .await;
    assert_eq!(dispatcher.run_once().await.unwrap(), 2);
    let received = sink.messages();
    assert_eq!(received.len(), 3);
    let records = [rsa.clone(), ed.clone()];
    for (subject, domain) in [
        ("Signed, RSA", "example.com"),
        ("Signed, Ed25519", "other.example.org"),
    ] {
        let raw = &received
            .iter()
            .find(|m| parsed(&m.2).subject() == Some(subject))
            .unwrap()
            .2;
        let signature = parsed(raw).header_raw("DKIM-Signature").unwrap().to_owned();
        assert!(signature.contains(&format!("d={domain}")), "{signature}");
        assert_eq!(verify(raw, &records).await, [DkimResult::Pass], "{subject}");
        // Without the published record the verifier cannot pass it: the check is real.
        assert_ne!(verify(raw, &[]).await, [DkimResult::Pass], "{subject}");
    }
    assert_eq!(verify(unsigned, &records).await, []);
}
