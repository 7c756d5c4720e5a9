//! `nudge bench send`: queue N personalised, tracked campaign messages and dispatch them to an
//! SMTP server, once without and once with an RSA-2048 DKIM key, on a temporary SQLite database
//! (and on PostgreSQL when asked). Figures go to standard output.
//!
//! Each run has two parts:
//!
//! - a burst: all N messages are queued first, due at the same instant, and then sent as fast
//!   as the dispatcher can. This gives the throughput; its queued-to-accepted p99 is close to
//!   the length of the whole send, since the last message waits behind all the others.
//! - a steady load: messages queued one by one at a fixed rate below that throughput (half of
//!   it by default) for some seconds, as an API or an automation queues them, with the
//!   dispatcher running as `nudge serve` runs it. Its queued-to-accepted percentiles are the
//!   latency of a message that does not wait behind a backlog.
//!
//! CPU time and peak memory are this process's: a PostgreSQL server's work is not in them, and
//! the peak is the whole process's high-water mark, so later runs of one invocation include
//! what earlier ones left.

use anyhow::Context;
use jiff::Timestamp;
use nudge_core::{ContactInput, MessageClass, MessageStatus};
use nudge_engine::{Clock, SystemClock};
use nudge_mail::{
    Algorithm, DeliveryError, Dispatcher, DkimKey, Envelope, SenderSettings, SmtpRelay, Transport,
};
use nudge_store::{
    ContactFilter, DkimAlgorithm, ExistingPolicy, ImportOptions, ImportRow, MessageContent,
    MessageFilter, NewDkimKey, NewMessage, PageRequest, RowOutcome, Store,
};
use nudge_store_postgres::PgStore;
use nudge_store_sqlite::SqliteStore;
use sqlx::Connection;
use std::path::Path;
use std::process::ExitCode;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const FROM_DOMAIN: &str = "bench.example.com";

pub struct SendArgs<'a> {
    pub messages: u64,
    pub smtp_url: &'a str,
    pub connections: usize,
    pub postgres: Option<&'a str>,
    pub reference: Option<&'a Path>,
    /// How long the steady load runs (0: no steady load).
    pub steady_seconds: u64,
    /// The steady rate as a fraction of the burst's throughput.
    pub steady_load: f64,
}

pub async fn send(args: SendArgs<'_>) -> anyhow::Result<ExitCode> {
    let dir = tempfile::tempdir().context("could not make a temporary directory")?;
    if let Some(script) = args.reference {
        reference(script, args.connections)?;
    }
    for dkim in [false, true] {
        let label = if dkim {
            "sqlite, DKIM rsa-2048"
        } else {
            "sqlite, no DKIM"
        };
        let db = dir.path().join(format!("bench-send-{dkim}.db"));
        let store = SqliteStore::open(&db).await?;
        run(label, Arc::new(store), &args, dkim).await?;
    }
    if let Some(url) = args.postgres {
        for dkim in [false, true] {
            let label = if dkim {
                "postgres, DKIM rsa-2048"
            } else {
                "postgres, no DKIM"
            };
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
                Ok(store) => run(label, Arc::new(store), &args, dkim).await,
                Err(e) => Err(e.into()),
            };
            sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
                .execute(&mut admin)
                .await?;
            result?;
        }
    }
    println!(
        "peak memory (VmHWM, whole process): {} MiB",
        crate::bench::peak_memory_kib().unwrap_or(0) / 1024
    );
    Ok(ExitCode::SUCCESS)
}

/// Postfix's own load client against its own sink, same size and connections: the ceiling.
fn reference(script: &Path, connections: usize) -> anyhow::Result<()> {
    println!(
        "reference: bash {} --size 2048 --sessions {connections}",
        script.display()
    );
    let output = std::process::Command::new("bash")
        .arg(script)
        .args(["--size", "2048", "--sessions", &connections.to_string()])
        .output()
        .with_context(|| format!("could not run {}", script.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    match stdout.lines().rev().find(|l| !l.trim().is_empty()) {
        Some(line) => println!("reference: {line}"),
        None => println!(
            "reference: no figure ({})",
            String::from_utf8_lossy(&output.stderr).trim()
        ),
    }
    Ok(())
}

async fn run(
    backend: &str,
    store: Arc<dyn Store>,
    args: &SendArgs<'_>,
    dkim: bool,
) -> anyhow::Result<()> {
    let n = args.messages;
    let started = Instant::now();
    let contacts = create_contacts(&store, n).await?;
    println!(
        "[{backend}] {} contacts in {:.1} s",
        contacts.len(),
        started.elapsed().as_secs_f64()
    );
    if dkim {
        let generated = DkimKey::generate(FROM_DOMAIN, "bench", Algorithm::Rsa2048)
            .map_err(|e| anyhow::anyhow!("could not make a DKIM key: {e}"))?;
        store
            .save_dkim_key(NewDkimKey {
                domain: FROM_DOMAIN.to_owned(),
                selector: "bench".to_owned(),
                algorithm: DkimAlgorithm::Rsa,
                private_key_pem: generated.pem,
            })
            .await?;
    }

    // Everything is due at the same instant, when queueing starts, so the latency figure also
    // holds the queueing time (see the module comment for what it then means).
    let queue_started = Instant::now();
    queue_burst(&store, &contacts, SystemClock.now()).await?;
    println!(
        "[{backend}] queued {} messages in {:.1} s",
        contacts.len(),
        queue_started.elapsed().as_secs_f64()
    );

    let mut settings = crate::delivery::parse_smtp_url(args.smtp_url)?;
    settings.pool_size = args.connections;
    let relay = Arc::new(Counted::new(SmtpRelay::new(settings)));
    let dispatcher = || -> anyhow::Result<Dispatcher> {
        let transport: Arc<dyn Transport> = Arc::clone(&relay) as Arc<dyn Transport>;
        Ok(Dispatcher::new(
            Arc::clone(&store),
            Arc::new(SystemClock),
            transport,
            SenderSettings {
                from_email: nudge_core::Email::parse(&format!("news@{FROM_DOMAIN}"))
                    .map_err(|e| anyhow::anyhow!("the bench sender: {e}"))?,
                from_name: None,
                public_url: "https://news.bench.example.com".into(),
                tracking: true,
            },
            Arc::from(vec![7u8; 32]),
        )
        .with_concurrency(args.connections))
    };

    let cpu_before = cpu_seconds();
    let dispatch_started = Instant::now();
    // On a worker of the runtime, as `serve` runs the dispatcher, not on the thread that
    // waits for the whole bench.
    let drain = tokio::spawn(drain(dispatcher()?, Arc::clone(&store), n));
    drain.await.context("the dispatcher task failed")??;
    let elapsed = dispatch_started.elapsed().as_secs_f64();
    let cpu = cpu_seconds().zip(cpu_before).map(|(a, b)| a - b);

    let times = outcomes(&store).await?;
    let burst = times.of("bench-");
    let rate = burst.sent() as f64 / elapsed.max(1e-9);
    println!(
        "[{backend}] burst: {} sent of {n} in {elapsed:.1} s = {rate:.0} messages/s over {} connection(s), {:.0} bytes a message on average ({})",
        burst.sent(),
        args.connections,
        relay.mean_size(),
        times.statuses,
    );
    println!(
        "[{backend}] burst queued->accepted (all queued at once, so p99 is about the length of the send): p50 {:.0} ms, p99 {:.0} ms",
        burst.percentile(0.50),
        burst.percentile(0.99)
    );
    if let Some(cpu) = cpu {
        println!(
            "[{backend}] burst CPU (user+system of this process: not the sink's, nor a database server's): {:.2} s per 1,000 messages",
            cpu / (burst.sent().max(1) as f64 / 1000.0)
        );
    }
    println!(
        "[{backend}] peak memory so far (VmHWM): {} MiB",
        crate::bench::peak_memory_kib().unwrap_or(0) / 1024
    );

    if args.steady_seconds > 0 && rate > 0.0 {
        let offered = (rate * args.steady_load).max(1.0);
        let queued = steady(
            dispatcher()?,
            &store,
            &contacts,
            offered,
            Duration::from_secs(args.steady_seconds),
        )
        .await?;
        let times = outcomes(&store).await?;
        let steady = times.of("steady-");
        println!(
            "[{backend}] steady load of {offered:.0} messages/s ({:.0}% of the burst rate) for {} s: {} sent of {queued} queued ({:.0}/s), queued->accepted p50 {:.0} ms, p99 {:.0} ms",
            args.steady_load * 100.0,
            args.steady_seconds,
            steady.sent(),
            queued as f64 / args.steady_seconds as f64,
            steady.percentile(0.50),
            steady.percentile(0.99)
        );
    }
    Ok(())
}

/// One bench message for `contact`, due at `due`.
fn new_message(contact: uuid::Uuid, idempotency_key: String, due: Timestamp) -> NewMessage {
    NewMessage {
        contact_id: contact,
        class: MessageClass::Campaign,
        content: MessageContent {
            subject: "{{ first_name | default(\"there\") }}, our news of the week".into(),
            html: HTML.into(),
            text: None,
            from_email: None,
            from_name: Some("Nudge bench".into()),
        },
        idempotency_key,
        due_at: due,
    }
}

/// Several tasks queue messages side by side, as several API requests would: one alone waits
/// for each commit, which on PostgreSQL is a flush to disk.
const QUEUERS: usize = 4;

/// Queues one message for each contact, all due at `due`.
async fn queue_burst(
    store: &Arc<dyn Store>,
    contacts: &[uuid::Uuid],
    due: Timestamp,
) -> anyhow::Result<()> {
    let mut queuers = tokio::task::JoinSet::new();
    for first in 0..QUEUERS {
        let store = Arc::clone(store);
        let mine: Vec<(usize, uuid::Uuid)> = contacts
            .iter()
            .copied()
            .enumerate()
            .skip(first)
            .step_by(QUEUERS)
            .collect();
        queuers.spawn(async move {
            for (i, contact) in mine {
                let message = new_message(contact, format!("bench-{i}"), due);
                store.queue_message(message, SystemClock.now()).await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = queuers.join_next().await {
        done.context("a queueing task failed")??;
    }
    Ok(())
}

/// Runs passes until nothing is due, or until a deadline: a sink that refuses everything
/// leaves retries scheduled minutes ahead.
async fn drain(dispatcher: Dispatcher, store: Arc<dyn Store>, n: u64) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60 + n / 50);
    loop {
        let attempted = dispatcher.run_once().await?;
        if attempted > 0 {
            continue;
        }
        match store.next_due().await? {
            None => return Ok(()),
            Some(_) if Instant::now() > deadline => return Ok(()),
            Some(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// Queues messages at `rate` a second for `length`, each due when it is queued, while the
/// dispatcher runs as in `serve` (woken by each tick of the queueing); then waits for them to
/// be sent. Returns how many were queued.
async fn steady(
    dispatcher: Dispatcher,
    store: &Arc<dyn Store>,
    contacts: &[uuid::Uuid],
    rate: f64,
    length: Duration,
) -> anyhow::Result<u64> {
    const TICK: Duration = Duration::from_millis(10);
    let stride = QUEUERS as u64;
    let waker = dispatcher.waker();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(async move {
        dispatcher
            .run(async {
                let _ = stopped.await;
            })
            .await
    });
    let contacts: Arc<[uuid::Uuid]> = contacts.into();
    let started = Instant::now();
    let mut queuers = tokio::task::JoinSet::new();
    for first in 0..stride {
        let store = Arc::clone(store);
        let contacts = Arc::clone(&contacts);
        let waker = Arc::clone(&waker);
        queuers.spawn(async move {
            let clock = SystemClock;
            let mut next = first;
            let mut queued = 0u64;
            let mut ticks = tokio::time::interval(TICK);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            while started.elapsed() < length {
                ticks.tick().await;
                let due = (started.elapsed().as_secs_f64() * rate) as u64;
                while next < due {
                    let Some(contact) = contacts.get((next as usize) % contacts.len().max(1))
                    else {
                        break;
                    };
                    let message = new_message(*contact, format!("steady-{next}"), clock.now());
                    store.queue_message(message, clock.now()).await?;
                    next += stride;
                    queued += 1;
                }
                waker.notify_one();
            }
            anyhow::Ok(queued)
        });
    }
    let mut queued = 0;
    while let Some(done) = queuers.join_next().await {
        queued += done.context("a queueing task failed")??;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while store.next_due().await?.is_some() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = stop.send(());
    running.await.context("the dispatcher task failed")?;
    Ok(queued)
}

/// A transport that counts what goes through it, for the mean message size.
struct Counted<T> {
    inner: T,
    messages: AtomicU64,
    bytes: AtomicU64,
}

impl<T> Counted<T> {
    fn new(inner: T) -> Self {
        Self {
            inner,
            messages: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
        }
    }

    fn mean_size(&self) -> f64 {
        let messages = self.messages.load(Ordering::Relaxed).max(1);
        self.bytes.load(Ordering::Relaxed) as f64 / messages as f64
    }
}

#[async_trait::async_trait]
impl<T: Transport> Transport for Counted<T> {
    async fn deliver(&self, envelope: &Envelope, message: &[u8]) -> Result<(), DeliveryError> {
        self.messages.fetch_add(1, Ordering::Relaxed);
        self.bytes
            .fetch_add(message.len() as u64, Ordering::Relaxed);
        self.inner.deliver(envelope, message).await
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }
}

const HTML: &str = "<html><body><h1>Hello {{ first_name | default(\"there\") }}!</h1>\
<p>This week: <a href=\"https://example.com/news\">the news</a>, \
<a href=\"https://example.com/offer\">an offer</a> and \
<a href=\"https://example.com/blog\">the blog</a>.</p>\
<p>Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut \
labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation ullamco laboris \
nisi ut aliquip ex ea commodo consequat. Duis aute irure dolor in reprehenderit in voluptate velit \
esse cillum dolore eu fugiat nulla pariatur.</p>\
<p><a href=\"{{ unsubscribe_url }}\">Unsubscribe</a></p></body></html>";

/// Imports `n` subscribed contacts in batches of 2,000 and returns their ids.
async fn create_contacts(store: &Arc<dyn Store>, n: u64) -> anyhow::Result<Vec<uuid::Uuid>> {
    const FIRST: [&str; 6] = ["Anna", "Jan", "Lotte", "Jürgen", "Yael", "Noa"];
    let options = ImportOptions {
        existing: ExistingPolicy::Skip,
        group: None,
        dry_run: false,
    };
    let mut line = 1;
    while line <= n {
        let end = (line + 2000).min(n + 1);
        let rows = (line..end)
            .map(|i| ImportRow {
                line: i + 1,
                input: ContactInput {
                    email: Some(format!("reader{i}@example.com")),
                    first_name: Some(FIRST[(i % 6) as usize].to_owned()),
                    status: Some("subscribed".into()),
                    ..ContactInput::default()
                },
            })
            .collect();
        let outcomes = store.import_batch(rows, &options, Timestamp::now()).await?;
        if let Some(RowOutcome::Rejected(why)) = outcomes
            .iter()
            .find(|o| matches!(o, RowOutcome::Rejected(_)))
        {
            anyhow::bail!("a generated contact was rejected: {why}");
        }
        line = end;
    }
    let mut ids = Vec::with_capacity(usize::try_from(n).unwrap_or(0));
    let mut page = PageRequest::first(PageRequest::MAX_LIMIT);
    loop {
        let got = store.list_contacts(&ContactFilter::default(), page).await?;
        ids.extend(got.items.iter().map(|r| r.contact.id));
        match got.next_cursor {
            Some(cursor) => page = PageRequest::after(PageRequest::MAX_LIMIT, cursor),
            None => break,
        }
    }
    Ok(ids)
}

/// The queued-to-accepted times of sent messages by idempotency key, and a count per status.
struct Times {
    sent: Vec<(String, f64)>,
    statuses: String,
}

/// Queued-to-accepted times in milliseconds, sorted.
struct Latencies(Vec<f64>);

impl Times {
    /// The times of the messages whose idempotency key starts with `prefix`.
    fn of(&self, prefix: &str) -> Latencies {
        let mut ms: Vec<f64> = self
            .sent
            .iter()
            .filter(|(key, _)| key.starts_with(prefix))
            .map(|(_, ms)| *ms)
            .collect();
        ms.sort_unstable_by(f64::total_cmp);
        Latencies(ms)
    }
}

impl Latencies {
    fn sent(&self) -> usize {
        self.0.len()
    }

    fn percentile(&self, p: f64) -> f64 {
        percentile(&self.0, p)
    }
}

/// The `p` quantile (0 to 1) of sorted figures, or 0 for none.
pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn outcomes(store: &Arc<dyn Store>) -> anyhow::Result<Times> {
    let mut sent = Vec::new();
    let mut counts = std::collections::BTreeMap::<&str, u64>::new();
    let mut page = PageRequest::first(PageRequest::MAX_LIMIT);
    loop {
        let got = store.list_messages(&MessageFilter::default(), page).await?;
        for m in got.items {
            *counts.entry(m.status.as_str()).or_default() += 1;
            if let (MessageStatus::Sent, Some(at)) = (m.status, m.sent_at) {
                let ms = at.duration_since(m.due_at).as_secs_f64() * 1000.0;
                sent.push((m.idempotency_key, ms));
            }
        }
        match got.next_cursor {
            Some(cursor) => page = PageRequest::after(PageRequest::MAX_LIMIT, cursor),
            None => break,
        }
    }
    let statuses = counts
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ");
    Ok(Times { sent, statuses })
}

/// This process's user + system CPU time, from `/proc/self/stat` (fields 14 and 15, in clock
/// ticks of 1/100 s, which is what Linux reports to user space on every common architecture).
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may hold spaces; the fields after its closing parenthesis
    // start at field 3.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}
