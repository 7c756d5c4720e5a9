//! The command line of interfaces.md, and the dispatch to each command.

use crate::settings::Settings;
use crate::{bench, bench_engine, bench_send, dkim, export, import, keys, sequence, serve};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "nudge",
    version,
    about = "Self-hosted email marketing automation with a small CRM"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Where Nudge keeps its files (the SQLite database among them).
    #[arg(
        long,
        global = true,
        env = "NUDGE_DATA_DIR",
        default_value = "./nudge-data"
    )]
    pub data_dir: PathBuf,
    /// `sqlite://PATH` or `postgres://...`; default: `sqlite://<data-dir>/nudge.db`.
    #[arg(long, global = true, env = "NUDGE_DATABASE_URL")]
    pub database: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the API (and, as they arrive, the web UI and workers) in one process.
    Serve(ServeArgs),
    /// Run only the workers (sequence engine and dispatcher), for extra machines that share
    /// one PostgreSQL database with a `serve`.
    Worker(WorkerArgs),
    /// Apply database migrations and exit.
    Migrate,
    /// Manage API keys.
    #[command(name = "api-key", subcommand)]
    ApiKey(ApiKeyCommand),
    /// Manage users of the admin UI.
    #[command(subcommand)]
    User(UserCommand),
    /// DKIM signing keys for sending domains.
    #[command(subcommand)]
    Dkim(DkimCommand),
    /// Import data.
    #[command(subcommand)]
    Import(ImportCommand),
    /// Export data.
    #[command(subcommand)]
    Export(ExportCommand),
    /// Sequences (automailers).
    #[command(subcommand)]
    Sequence(SequenceCommand),
    /// Benchmarks that print figures.
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Debug, Subcommand)]
pub enum SequenceCommand {
    /// Start a sequence by hand for one contact or for every contact of a group (with its
    /// subgroups); the schedule starts now. Contacts already in it are left alone.
    Start {
        /// The sequence's id or name.
        sequence: String,
        /// A contact's id or email address.
        #[arg(long)]
        contact: Option<String>,
        /// A group's id or name.
        #[arg(long)]
        group: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[arg(long, env = "NUDGE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// The address users reach Nudge at; links in mail start with it.
    #[arg(long, env = "NUDGE_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// The default SMTP relay: smtp://user:password@host:port (add ?tls=starttls) or
    /// smtps://... It is used only while no sending account exists (/api/v1/smtp-accounts);
    /// without either, mail is written to <data-dir>/outbox as .eml files.
    #[arg(long, env = "NUDGE_SMTP_URL")]
    pub smtp_url: Option<String>,
    /// The sender of mail that names none.
    #[arg(long, env = "NUDGE_FROM")]
    pub from: Option<String>,
    #[arg(long, env = "NUDGE_FROM_NAME")]
    pub from_name: Option<String>,
    /// Run on a test clock that starts now and moves only by POST /api/v1/test-clock/advance,
    /// so that scripts can play days of sequences in seconds.
    #[arg(long)]
    pub test_clock: bool,
}

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// The address users reach the web server at; links in mail start with it.
    #[arg(
        long,
        env = "NUDGE_PUBLIC_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub public_url: String,
    /// As for `serve`.
    #[arg(long, env = "NUDGE_SMTP_URL")]
    pub smtp_url: Option<String>,
    #[arg(long, env = "NUDGE_FROM")]
    pub from: Option<String>,
    #[arg(long, env = "NUDGE_FROM_NAME")]
    pub from_name: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum ApiKeyCommand {
    /// Create a key; the last line of output is the key itself.
    Create {
        #[arg(long)]
        name: String,
        /// Repeat for several; without it the key has every scope.
        #[arg(long = "scope")]
        scopes: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user who can sign in to the admin UI.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        role: String,
        /// A file whose first line is the password; without it, the password is asked for.
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum DkimCommand {
    /// Make and store a signing key for DOMAIN, and print the DNS TXT record to publish: its
    /// name on the first line, its value on the second. Mail from DOMAIN is signed with it from
    /// then on, also by a server that is running.
    Generate {
        /// The domain of the From addresses to sign, e.g. example.com.
        domain: String,
        /// The selector: the DNS record is named SELECTOR._domainkey.DOMAIN.
        #[arg(long, default_value = "nudge")]
        selector: String,
        #[arg(long, value_enum, default_value_t = DkimAlgorithmArg::Rsa)]
        algorithm: DkimAlgorithmArg,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DkimAlgorithmArg {
    /// RSA-SHA256 with a 2048-bit key: verified by every receiver.
    Rsa,
    /// Ed25519-SHA256 (RFC 8463): short, not yet verified by every receiver.
    Ed25519,
}

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Import contacts from a CSV file whose first line names the columns.
    Contacts(ImportArgs),
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    pub file: PathBuf,
    /// COLUMN=FIELD, where FIELD is email, first_name, last_name, phone, language, time_zone,
    /// status, tags or fields.<key>.
    #[arg(long = "map", value_name = "COLUMN=FIELD")]
    pub map: Vec<String>,
    /// Update contacts that exist already (default: skip them).
    #[arg(long)]
    pub update: bool,
    /// Add every imported contact to this group (its id or its name).
    #[arg(long)]
    pub group: Option<String>,
    /// Check every row and report, but write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// The column separator; guessed from the header line when not given.
    #[arg(long)]
    pub delimiter: Option<char>,
}

#[derive(Debug, Subcommand)]
pub enum ExportCommand {
    /// Export all contacts.
    Contacts {
        #[arg(long, value_enum, default_value_t = ExportFormat::Csv)]
        format: ExportFormat,
        /// Default: standard output.
        #[arg(long)]
        output: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    Csv,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Import N generated contacts from CSV, then time a filtered count and a page.
    Import {
        #[arg(long, default_value_t = 1_000_000)]
        rows: u64,
        /// Also run against this PostgreSQL server (a fresh schema is made and dropped).
        #[arg(long)]
        postgres: Option<String>,
        /// Keep the SQLite database at this path (for EXPLAIN and profiling) instead of a
        /// temporary file.
        #[arg(long)]
        keep: Option<PathBuf>,
    },
    /// Queue N personalised, tracked campaign messages and dispatch them to an SMTP server,
    /// once without and once with an RSA-2048 DKIM key; print messages per second, p50/p99
    /// queued-to-accepted, CPU seconds per 1,000 messages and peak memory.
    ///
    /// Receiver: `bash ../shared/bench/smtp-limit.sh --serve PORT` (Postfix's smtp-sink). The
    /// reference rate (Postfix's smtp-source against its sink, same size and connections) is
    /// `bash ../shared/bench/smtp-limit.sh --size 2048 --sessions C`; give the script with
    /// --reference to run it first in the same invocation.
    Send {
        #[arg(long, default_value_t = 100_000)]
        messages: u64,
        /// smtp://127.0.0.1:PORT
        #[arg(long)]
        smtp_url: String,
        /// SMTP connections in the pool, and messages attempted at once.
        #[arg(long, default_value_t = 4)]
        connections: usize,
        /// Also run against this PostgreSQL server (a fresh schema is made and dropped).
        #[arg(long)]
        postgres: Option<String>,
        /// The path of smtp-limit.sh, to print the reference rate in the same run.
        #[arg(long)]
        reference: Option<PathBuf>,
        /// Seconds of steady load after each burst, to measure latency without a backlog
        /// (0: none).
        #[arg(long, default_value_t = 10)]
        steady_seconds: u64,
        /// The steady load's rate, as a fraction of the burst's messages per second.
        #[arg(long, default_value_t = 0.5)]
        steady_load: f64,
    },
    /// Enrol N contacts in a 5-message sequence and play it on a test clock (enrolments/s,
    /// steps/s, messages queued/s); then, on the wall clock, the lateness of steps falling due
    /// at a steady rate (p50/p99) and, with --smtp-url, the time from a form submission over
    /// HTTP to its first message accepted by the SMTP server (p50/p99); and peak memory.
    ///
    /// Receiver for the form part: `bash ../shared/bench/smtp-limit.sh --serve PORT`
    /// (Postfix's smtp-sink on 127.0.0.1:PORT), then --smtp-url smtp://127.0.0.1:PORT.
    Engine {
        #[arg(long, default_value_t = 100_000)]
        contacts: u64,
        /// Also run against this PostgreSQL server (a fresh schema per part, dropped after).
        #[arg(long)]
        postgres: Option<String>,
        /// smtp://127.0.0.1:PORT; without it the form-to-first-mail part is skipped.
        #[arg(long)]
        smtp_url: Option<String>,
        /// Form submissions in the form-to-first-mail part.
        #[arg(long, default_value_t = 1_000)]
        submissions: u64,
        /// Form submissions per second.
        #[arg(long, default_value_t = 50.0)]
        rate: f64,
    },
}

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let settings = Settings::new(cli.global);
    match cli.command {
        Command::Serve(args) => serve::run(&settings, args).await,
        Command::Worker(args) => serve::worker(&settings, args).await,
        Command::Migrate => {
            settings.open_store().await?;
            println!("migrations applied to {}", settings.database_display());
            Ok(ExitCode::SUCCESS)
        }
        Command::ApiKey(ApiKeyCommand::Create { name, scopes }) => {
            keys::create_api_key(&settings, &name, &scopes).await
        }
        Command::User(UserCommand::Create {
            email,
            role,
            password_file,
        }) => keys::create_user(&settings, &email, &role, password_file.as_deref()).await,
        Command::Dkim(DkimCommand::Generate {
            domain,
            selector,
            algorithm,
        }) => dkim::generate(&settings, &domain, &selector, algorithm).await,
        Command::Import(ImportCommand::Contacts(args)) => {
            let store = settings.open_store().await?;
            import::run(store, args).await
        }
        Command::Export(ExportCommand::Contacts { format, output }) => {
            let store = settings.open_store().await?;
            export::run(store, format, output.as_deref()).await
        }
        Command::Sequence(SequenceCommand::Start {
            sequence,
            contact,
            group,
        }) => {
            let store = settings.open_store().await?;
            sequence::start(
                store.as_ref(),
                &sequence,
                contact.as_deref(),
                group.as_deref(),
            )
            .await
        }
        Command::Bench(BenchCommand::Import {
            rows,
            postgres,
            keep,
        }) => bench::import(rows, postgres.as_deref(), keep.as_deref()).await,
        Command::Bench(BenchCommand::Send {
            messages,
            smtp_url,
            connections,
            postgres,
            reference,
            steady_seconds,
            steady_load,
        }) => {
            bench_send::send(bench_send::SendArgs {
                messages,
                smtp_url: &smtp_url,
                connections: connections.max(1),
                postgres: postgres.as_deref(),
                reference: reference.as_deref(),
                steady_seconds,
                steady_load: steady_load.clamp(0.01, 1.0),
            })
            .await
        }
        Command::Bench(BenchCommand::Engine {
            contacts,
            postgres,
            smtp_url,
            submissions,
            rate,
        }) => {
            bench_engine::engine(bench_engine::EngineArgs {
                contacts,
                postgres: postgres.as_deref(),
                smtp_url: smtp_url.as_deref(),
                submissions,
                rate,
            })
            .await
        }
    }
}
