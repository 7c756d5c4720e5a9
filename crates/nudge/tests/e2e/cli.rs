#![allow(clippy::unwrap_used)] // Test code.

use nudge_core::Status;
use nudge_store::{ContactFilter, Store};
use nudge_store_sqlite::SqliteStore;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

async fn store(dir: &Path) -> SqliteStore {
    SqliteStore::open(&dir.join("nudge.db")).await.unwrap()
}

fn testdata(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/testdata")
        .join(rel)
}

#[tokio::test]
async fn api_key_create_prints_the_key_last_and_stores_only_its_hash() {
    let dir = tempfile::tempdir().unwrap();
    let out = nudge(
        dir.path(),
        &[
            "api-key",
            "create",
            "--name",
            "ci",
            "--scope",
            "contacts:read",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let key = stdout(&out).lines().last().unwrap().to_owned();
    assert!(key.starts_with("nudge_"), "{key}");
    let found = store(dir.path())
        .await
        .api_key_by_hash(&nudge_http::auth::key_hash(&key))
        .await
        .unwrap();
    assert_eq!(
        found.map(|k| k.scopes),
        Some(vec!["contacts:read".to_owned()])
    );
    let db = std::fs::read(dir.path().join("nudge.db")).unwrap();
    assert!(
        !db.windows(key.len()).any(|w| w == key.as_bytes()),
        "the key itself is not stored"
    );

    let out = nudge(
        dir.path(),
        &["api-key", "create", "--name", "x", "--scope", "everything"],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("--scope everything: must be one of"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn user_create_takes_the_password_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let pw = write(dir.path(), "pw", b"correct horse battery\n");
    let pw = pw.to_str().unwrap();
    let out = nudge(
        dir.path(),
        &[
            "user",
            "create",
            "--email",
            "Owner@Example.com",
            "--role",
            "owner",
            "--password-file",
            pw,
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("user Owner@example.com created with role owner"));
    let again = nudge(
        dir.path(),
        &[
            "user",
            "create",
            "--email",
            "owner@example.com",
            "--role",
            "admin",
            "--password-file",
            pw,
        ],
    );
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("already exists"),
        "{}",
        stderr(&again)
    );
    let bad = nudge(
        dir.path(),
        &[
            "user",
            "create",
            "--email",
            "x@example.com",
            "--role",
            "king",
            "--password-file",
            pw,
        ],
    );
    assert!(stderr(&bad).contains("--role king: must be one of owner, admin, editor, viewer"));
}

#[tokio::test]
async fn importing_the_10k_sample_keeps_every_row_and_status() {
    let dir = tempfile::tempdir().unwrap();
    let file = testdata("contacts/contacts-10k.csv");
    let file = file.to_str().unwrap();
    let dry = nudge(dir.path(), &["import", "contacts", file, "--dry-run"]);
    assert!(dry.status.success(), "{}", stderr(&dry));
    assert!(stdout(&dry).contains("created:  10000"), "{}", stdout(&dry));
    let s = store(dir.path()).await;
    assert_eq!(
        s.count_contacts(&ContactFilter::default()).await.unwrap(),
        0,
        "a dry run writes nothing"
    );

    let out = nudge(dir.path(), &["import", "contacts", file]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report = stdout(&out);
    assert!(
        report.contains("created:  10000") && report.contains("rejected: 0"),
        "{report}"
    );
    assert!(
        report.contains("Ignored columns: country, city, created_at"),
        "{report}"
    );
    // The manifest's counts: bounced=399 complained=56 pending=707 subscribed=7856 ...
    for (status, n) in [
        (Status::Bounced, 399),
        (Status::Complained, 56),
        (Status::Pending, 707),
        (Status::Subscribed, 7856),
        (Status::Transactional, 239),
        (Status::Unsubscribed, 743),
    ] {
        let filter = ContactFilter {
            status: Some(status),
            ..ContactFilter::default()
        };
        assert_eq!(s.count_contacts(&filter).await.unwrap(), n, "{status}");
    }
    let again = nudge(dir.path(), &["import", "contacts", file]);
    assert!(
        stdout(&again).contains("skipped:  10000"),
        "{}",
        stdout(&again)
    );
}

#[tokio::test]
async fn a_bad_file_gets_a_report_naming_each_rejected_row() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path()).await;
    s.create_field(nudge_core::FieldDef::new("punten", None, "number", vec![]).unwrap())
        .await
        .unwrap();
    s.create_group("Beurs 2026", None, false).await.unwrap();
    let mut csv = b"\xEF\xBB\xBFE-mail;Voornaam;punten;tags\n".to_vec();
    csv.extend_from_slice(b"jan@example.nl;Jan;3,5;vip|beurs\n");
    csv.extend_from_slice(b"kapot;Piet;1;\n");
    csv.extend_from_slice(b"kees@example.nl;Kees;veel;\n");
    csv.extend_from_slice(b"anna@example.nl;Anna\n");
    csv.extend_from_slice(b"bad@example.nl;\xff\xfe;1;\n");
    csv.extend_from_slice(b"JAN@example.nl;Jantje;4;\n");
    let file = write(dir.path(), "beurs.csv", &csv);
    let out = nudge(
        dir.path(),
        &[
            "import",
            "contacts",
            file.to_str().unwrap(),
            "--update",
            "--group",
            "beurs 2026",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let report = stdout(&out);
    for expected in [
        "created:  1",
        "updated:  1",
        "rejected: 4",
        "line 3: email: has no @ sign",
        "line 4: fields.punten: must be a number",
        "line 5: has 2 columns, the header has 4",
        "line 6: first_name: is not valid UTF-8 text",
    ] {
        assert!(
            report.contains(expected),
            "missing {expected:?} in:\n{report}"
        );
    }
    let jan = s
        .find_contact_by_email("jan@example.nl")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(jan.contact.first_name.as_deref(), Some("Jantje"));
    assert_eq!(jan.contact.fields.get("punten"), Some(&Value::from(4.0)));
    assert_eq!(jan.tags, ["beurs", "vip"]);
    assert_eq!(jan.groups.len(), 1);
    assert_eq!(
        s.count_contacts(&ContactFilter::default()).await.unwrap(),
        1
    );
}

#[tokio::test]
async fn unusable_files_are_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let semicolons = write(
        dir.path(),
        "semi.csv",
        b"email;first_name\na@example.com;A\n",
    );
    let wide: String = (0..10_000)
        .map(|i| format!("c{i}"))
        .collect::<Vec<_>>()
        .join(",");
    let wide = write(dir.path(), "wide.csv", format!("email,{wide}\n").as_bytes());
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![semicolons.to_str().unwrap(), "--delimiter", ","],
            "is the delimiter ';'?",
        ),
        (
            vec![wide.to_str().unwrap()],
            "the header has 10001 columns; at most 1000 are supported",
        ),
        (
            vec!["/nonexistent/file.csv"],
            "could not open /nonexistent/file.csv",
        ),
        (
            vec![semicolons.to_str().unwrap(), "--group", "nope"],
            "--group nope: no group has this name",
        ),
        (
            vec![semicolons.to_str().unwrap(), "--map", "first_name=shoe"],
            "shoe is not a field",
        ),
    ];
    for (args, expected) in cases {
        let mut all = vec!["import", "contacts"];
        all.extend(args.iter());
        let out = nudge(dir.path(), &all);
        assert!(!out.status.success(), "{args:?}");
        assert!(
            stderr(&out).contains(expected),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    let s = store(dir.path()).await;
    assert_eq!(
        s.count_contacts(&ContactFilter::default()).await.unwrap(),
        0
    );
}

#[tokio::test]
async fn export_writes_csv_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "in.csv",
        "email,first_name,tags\nyael@example.co.il,יעל,vip\njürgen@example.de,Jürgen,\n".as_bytes(),
    );
    assert!(
        nudge(dir.path(), &["import", "contacts", file.to_str().unwrap()])
            .status
            .success()
    );
    let csv_out = dir.path().join("out.csv");
    let out = nudge(
        dir.path(),
        &["export", "contacts", "--output", csv_out.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(&csv_out).unwrap();
    assert!(text.starts_with("id,email,first_name,last_name,phone,language,time_zone,status,source,groups,tags,created_at,updated_at\n"));
    assert!(
        text.contains(",yael@example.co.il,יעל,") && text.contains(",vip,"),
        "{text}"
    );
    let out = nudge(dir.path(), &["export", "contacts", "--format", "json"]);
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let emails: Vec<&str> = json
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["email"].as_str())
        .collect();
    assert_eq!(emails.len(), 2);
    assert!(emails.contains(&"jürgen@example.de"));
}

#[test]
fn a_bad_database_url_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_nudge"))
        .args(["--database", "mysql://x", "migrate"])
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("--database must start with sqlite:// or postgres://, not mysql://x")
    );
}

#[tokio::test]
async fn sequence_start_enrols_a_contact_or_a_group_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let db = store(dir.path()).await;
    let at = jiff::Timestamp::now();
    let group = db.create_group("Leads", None, false).await.unwrap();
    let ctx = nudge_store::ChangeContext::new(nudge_core::ChangeSource::Admin, at);
    for email in ["a@example.com", "b@example.com"] {
        db.create_contact(
            nudge_core::ContactInput {
                email: Some(email.into()),
                groups: vec![group.id],
                ..Default::default()
            },
            ctx,
        )
        .await
        .unwrap();
    }
    let alone = nudge_core::ContactInput {
        email: Some("c@example.com".into()),
        ..Default::default()
    };
    db.create_contact(alone, ctx).await.unwrap();
    let step = nudge_core::Step {
        id: uuid::Uuid::now_v7(),
        subject: "Hello".into(),
        html: "<p>Hello</p>".into(),
        text: None,
        delay: nudge_core::Delay::ZERO,
    };
    let def = nudge_core::SequenceDef {
        name: "Onboarding".into(),
        messages: vec![step],
        start_groups: vec![],
        condition: None,
        window: None,
    };
    db.create_sequence(def, at).await.unwrap();
    drop(db);

    let out = nudge(
        dir.path(),
        &["sequence", "start", "onboarding", "--group", "Leads"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "enrolled 2, already in the sequence 0");
    let out = nudge(
        dir.path(),
        &[
            "sequence",
            "start",
            "Onboarding",
            "--contact",
            "C@example.com",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "enrolled 1, already in the sequence 0");
    let out = nudge(
        dir.path(),
        &["sequence", "start", "Nope", "--group", "Leads"],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no sequence has this name"),
        "{}",
        stderr(&out)
    );
    let out = nudge(dir.path(), &["sequence", "start", "Onboarding"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("--contact or --group"),
        "{}",
        stderr(&out)
    );
}
