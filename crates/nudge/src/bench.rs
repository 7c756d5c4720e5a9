//! `nudge bench import`: generate contacts, import them from CSV, then time the queries the
//! contact list runs. Figures go to standard output.

use crate::import::{ImportSettings, import_file};
use anyhow::Context;
use indicatif::ProgressBar;
use nudge_core::Status;
use nudge_store::{ContactFilter, PageRequest, Store};
use nudge_store_postgres::PgStore;
use nudge_store_sqlite::SqliteStore;
use sqlx::Connection;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The generated rows are spread over four files, one per group: a top group with two
/// subgroups, and an unrelated group. Filtering on the top group must find three quarters.
const GROUPS: [&str; 4] = ["Other", "Customers", "Customers/Gold", "Customers/Silver"];

pub async fn import(
    rows: u64,
    postgres: Option<&str>,
    keep: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let dir = tempfile::tempdir().context("could not make a temporary directory")?;
    println!(
        "Generating {rows} contacts as CSV in {} ...",
        dir.path().display()
    );
    let files = generate(dir.path(), rows)?;

    let db = match keep {
        Some(path) => {
            if path.exists() {
                anyhow::bail!("--keep {}: the file exists already", path.display());
            }
            path.to_path_buf()
        }
        None => dir.path().join("bench.db"),
    };
    let sqlite = SqliteStore::open(&db).await?;
    run("sqlite", Arc::new(sqlite), &files, rows).await?;

    if let Some(url) = postgres {
        let schema = format!("bench_{}", uuid::Uuid::now_v7().simple());
        let mut admin = sqlx::PgConnection::connect(url)
            .await
            .with_context(|| format!("could not connect to {url}"))?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&mut admin)
            .await?;
        let options = sqlx::postgres::PgConnectOptions::from_str(url)?
            .options([("search_path", schema.as_str())]);
        let result = match PgStore::connect_with(options).await {
            Ok(store) => run("postgres", Arc::new(store), &files, rows).await,
            Err(e) => Err(e.into()),
        };
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
            .execute(&mut admin)
            .await?;
        result?;
    }
    println!(
        "peak memory (VmHWM): {} MiB",
        peak_memory_kib().unwrap_or(0) / 1024
    );
    Ok(ExitCode::SUCCESS)
}

fn generate(dir: &Path, rows: u64) -> anyhow::Result<Vec<PathBuf>> {
    const FIRST: [&str; 8] = [
        "Anna", "Jan", "Lotte", "Mehmet", "Sanne", "Yael", "Jürgen", "Noa",
    ];
    const LAST: [&str; 8] = [
        "de Vries", "Jansen", "Müller", "Cohen", "Bakker", "Schmidt", "Levi", "Visser",
    ];
    const LANG: [&str; 4] = ["nl", "de", "he", "en"];
    let mut writers = Vec::new();
    let mut paths = Vec::new();
    for i in 0..GROUPS.len() {
        let path = dir.join(format!("contacts-{i}.csv"));
        let mut w = BufWriter::new(std::fs::File::create(&path)?);
        writeln!(w, "email,first_name,last_name,language,status,tags")?;
        writers.push(w);
        paths.push(path);
    }
    for n in 0..rows {
        // A cheap deterministic scramble so that tags and statuses are not aligned with groups.
        let h = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
        let status = match h % 20 {
            0 => "unsubscribed",
            1 => "bounced",
            2 => "pending",
            _ => "subscribed",
        };
        let tags = match h % 5 {
            0 => "vip|newsletter",
            1 | 2 => "newsletter",
            _ => "",
        };
        let w = &mut writers[(n % GROUPS.len() as u64) as usize];
        writeln!(
            w,
            "user{n}@example.com,{},{},{},{status},{tags}",
            FIRST[(h % 8) as usize],
            LAST[((h / 8) % 8) as usize],
            LANG[((h / 64) % 4) as usize],
        )?;
    }
    for mut w in writers {
        w.flush()?;
    }
    Ok(paths)
}

async fn run(
    backend: &str,
    store: Arc<dyn Store>,
    files: &[PathBuf],
    rows: u64,
) -> anyhow::Result<()> {
    let top = store.create_group("Customers", None, false).await?;
    let gold = store.create_group("Gold", Some(top.id), false).await?;
    let silver = store.create_group("Silver", Some(top.id), false).await?;
    let other = store.create_group("Other", None, false).await?;
    let targets = [other.id, top.id, gold.id, silver.id];

    let started = Instant::now();
    let mut imported = 0;
    for (file, group) in files.iter().zip(targets) {
        let settings = ImportSettings {
            maps: Vec::new(),
            update: false,
            group: Some(group.to_string()),
            dry_run: false,
            delimiter: None,
        };
        let report =
            import_file(Arc::clone(&store), file, &settings, ProgressBar::hidden()).await?;
        imported += report.created;
        if !report.rejected.is_empty() {
            anyhow::bail!(
                "{} generated rows were rejected: {:?}",
                report.rejected.len(),
                report.rejected.first()
            );
        }
    }
    let elapsed = started.elapsed();
    println!(
        "[{backend}] import: {imported} of {rows} rows in {:.1} s = {:.0} rows/s",
        elapsed.as_secs_f64(),
        imported as f64 / elapsed.as_secs_f64().max(1e-9)
    );

    let filter = ContactFilter {
        q: None,
        status: Some(Status::Subscribed),
        group: Some(top.id),
        tag: Some("vip".into()),
    };
    let (count, matched) = timed(5, || store.count_contacts(&filter)).await?;
    println!(
        "[{backend}] filtered count (group with subgroups + tag + status): {matched} contacts, median {:.1} ms",
        ms(count)
    );
    let (page, _) = timed(5, || store.list_contacts(&filter, PageRequest::first(50))).await?;
    println!(
        "[{backend}] first page of 50 with that filter: median {:.1} ms",
        ms(page)
    );
    let everyone = ContactFilter::default();
    let (plain, _) = timed(5, || store.list_contacts(&everyone, PageRequest::first(50))).await?;
    println!(
        "[{backend}] first page of 50 without a filter: median {:.1} ms",
        ms(plain)
    );
    let search = ContactFilter {
        q: Some("user99999@".into()),
        ..ContactFilter::default()
    };
    let (q, _) = timed(5, || store.list_contacts(&search, PageRequest::first(50))).await?;
    println!(
        "[{backend}] search q=user99999@, first page: median {:.1} ms",
        ms(q)
    );
    Ok(())
}

/// Runs `f` `runs` times; the median time and the last result.
async fn timed<T, F, Fut>(runs: usize, f: F) -> anyhow::Result<(Duration, T)>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = nudge_store::Result<T>>,
{
    let mut times = Vec::with_capacity(runs);
    let mut last = None;
    for _ in 0..runs.max(1) {
        let start = Instant::now();
        last = Some(f().await?);
        times.push(start.elapsed());
    }
    times.sort();
    let value = last.context("no run")?;
    Ok((times[times.len() / 2], value))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The process's peak resident memory, from Linux's `/proc/self/status`.
pub(crate) fn peak_memory_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
