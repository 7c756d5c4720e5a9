//! `nudge import contacts`: a streaming CSV import.
//!
//! A reader thread parses the file into batches while the store writes the previous one, so the
//! file is never held in memory and parsing overlaps writing. Every row gets an outcome; rejected
//! rows are reported with their line number and reason, and write nothing.

use crate::cli::ImportArgs;
use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use nudge_core::{ContactInput, FieldDef};
use nudge_store::{ExistingPolicy, ImportOptions, ImportRow, RowOutcome, Store};
use std::collections::HashSet;
use std::fs::File;
use std::io::{BufReader, IsTerminal, Read};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use uuid::Uuid;

/// Rows per store transaction: large enough to amortise a commit, small enough to keep memory flat.
const BATCH: usize = 5_000;
/// A wider header is almost certainly not a contact list (or not split on the right delimiter).
const MAX_COLUMNS: usize = 1_000;

/// Where a column's value goes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Email,
    FirstName,
    LastName,
    Phone,
    Language,
    TimeZone,
    Status,
    Source,
    Tags,
    Field(String),
}

impl Target {
    fn name(&self) -> String {
        match self {
            Target::Email => "email".into(),
            Target::FirstName => "first_name".into(),
            Target::LastName => "last_name".into(),
            Target::Phone => "phone".into(),
            Target::Language => "language".into(),
            Target::TimeZone => "time_zone".into(),
            Target::Status => "status".into(),
            Target::Source => "source".into(),
            Target::Tags => "tags".into(),
            Target::Field(key) => format!("fields.{key}"),
        }
    }

    /// Reads a target from a `--map` value or a header; `None` when it names nothing known.
    fn parse(name: &str, defs: &[FieldDef]) -> Option<Self> {
        let n = name.trim().to_lowercase().replace([' ', '-'], "_");
        let known = match n.as_str() {
            "email" | "e_mail" | "email_address" | "mail" => Target::Email,
            "first_name" | "firstname" | "given_name" | "voornaam" | "vorname" => Target::FirstName,
            "last_name" | "lastname" | "surname" | "family_name" | "achternaam" | "nachname" => {
                Target::LastName
            }
            "phone" | "phone_number" | "telephone" | "telefoon" | "telefon" => Target::Phone,
            "language" | "lang" | "locale" => Target::Language,
            "time_zone" | "timezone" | "tz" => Target::TimeZone,
            "status" => Target::Status,
            "source" => Target::Source,
            "tags" => Target::Tags,
            other => {
                let key = other.strip_prefix("fields.").unwrap_or(other);
                return defs
                    .iter()
                    .any(|d| d.key.as_str() == key)
                    .then(|| Target::Field(key.to_owned()));
            }
        };
        Some(known)
    }
}

/// The plan for reading a file: which column goes where.
#[derive(Debug)]
struct Mapping {
    columns: Vec<(usize, Target)>,
    width: usize,
    ignored: Vec<String>,
}

fn plan_mapping(
    header: &[String],
    maps: &[String],
    defs: &[FieldDef],
    delimiter: u8,
) -> anyhow::Result<Mapping> {
    if header.len() > MAX_COLUMNS {
        bail!(
            "the header has {} columns; at most {MAX_COLUMNS} are supported",
            header.len()
        );
    }
    let mut explicit: Vec<(String, Target)> = Vec::new();
    for m in maps {
        let Some((column, field)) = m.split_once('=') else {
            bail!("--map {m}: expected COLUMN=FIELD");
        };
        let target = Target::parse(field, defs).with_context(|| {
            format!(
                "--map {m}: {field} is not a field; use email, first_name, last_name, phone, \
                 language, time_zone, status, source, tags or fields.<key> of a defined field"
            )
        })?;
        if !header
            .iter()
            .any(|h| h.trim().eq_ignore_ascii_case(column.trim()))
        {
            bail!("--map {m}: the file has no column named {column}");
        }
        explicit.push((column.trim().to_lowercase(), target));
    }
    let mut columns: Vec<(usize, Target)> = Vec::new();
    let mut ignored = Vec::new();
    for (i, name) in header.iter().enumerate() {
        let lowered = name.trim().to_lowercase();
        let target = explicit
            .iter()
            .find(|(c, _)| *c == lowered)
            .map(|(_, t)| t.clone())
            .or_else(|| Target::parse(name, defs));
        match target {
            Some(t) => {
                if let Some((j, _)) = columns.iter().find(|(_, other)| *other == t) {
                    bail!(
                        "columns {} and {} both map to {}; map one of them elsewhere with --map",
                        header[*j],
                        name,
                        t.name()
                    );
                }
                columns.push((i, t));
            }
            None => ignored.push(name.clone()),
        }
    }
    if !columns.iter().any(|(_, t)| *t == Target::Email) {
        let mut message = format!(
            "no column holds the email address (the header is: {}); name it email or use --map COLUMN=email",
            header.join(&char::from(delimiter).to_string())
        );
        let lone = if header.len() == 1 {
            [';', '\t', '|', ',']
                .into_iter()
                .find(|d| header[0].contains(*d))
        } else {
            None
        };
        if let Some(d) = lone {
            message.push_str(&format!(
                ". The whole header is one column: is the delimiter {d:?}? Try --delimiter '{d}'"
            ));
        }
        bail!(message);
    }
    Ok(Mapping {
        columns,
        width: header.len(),
        ignored,
    })
}

/// Guesses the separator from the first line: the most frequent of `,` `;` tab `|`.
fn sniff_delimiter(first_line: &[u8]) -> u8 {
    [b',', b';', b'\t', b'|']
        .into_iter()
        .map(|d| (first_line.iter().filter(|b| **b == d).count(), d))
        .max_by_key(|(n, d)| (*n, *d == b','))
        .filter(|(n, _)| *n > 0)
        .map_or(b',', |(_, d)| d)
}

/// Turns one CSV record into a contact input, or the reason it can't be one.
fn row_input(
    record: &csv::ByteRecord,
    mapping: &Mapping,
    defs: &[FieldDef],
) -> Result<ContactInput, String> {
    if record.len() != mapping.width {
        return Err(format!(
            "has {} columns, the header has {}",
            record.len(),
            mapping.width
        ));
    }
    let mut input = ContactInput::default();
    for (i, target) in &mapping.columns {
        let raw = record.get(*i).unwrap_or_default();
        let text = std::str::from_utf8(raw)
            .map_err(|_| format!("{}: is not valid UTF-8 text", target.name()))?
            .trim();
        if text.is_empty() {
            continue;
        }
        let value = Some(text.to_owned());
        match target {
            Target::Email => input.email = value,
            Target::FirstName => input.first_name = value,
            Target::LastName => input.last_name = value,
            Target::Phone => input.phone = value,
            Target::Language => input.language = value,
            Target::TimeZone => input.time_zone = value,
            Target::Status => input.status = value,
            Target::Source => input.source = value,
            Target::Tags => {
                input.tags = text
                    .split(['|', ','])
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(str::to_owned)
                    .collect();
            }
            Target::Field(key) => {
                let Some(def) = defs.iter().find(|d| d.key.as_str() == key) else {
                    continue;
                };
                let checked = def
                    .check_text(text)
                    .map_err(|reason| format!("fields.{key}: {reason}"))?;
                input.fields.insert(key.clone(), checked);
            }
        }
    }
    Ok(input)
}

#[derive(Debug, Default)]
pub struct Report {
    pub created: u64,
    pub updated: u64,
    pub skipped: u64,
    pub flagged: Vec<(u64, String)>,
    pub rejected: Vec<(u64, String)>,
    pub ignored_columns: Vec<String>,
}

impl Report {
    pub fn rows(&self) -> u64 {
        self.created
            + self.updated
            + self.skipped
            + self.flagged.len() as u64
            + self.rejected.len() as u64
    }

    fn print(&self, file: &Path, dry_run: bool) {
        let title = if dry_run {
            "Dry run: nothing was written. The import would give"
        } else {
            "Imported"
        };
        println!("{title} {}:", file.display());
        println!("  created:  {}", self.created);
        println!("  updated:  {}", self.updated);
        println!(
            "  skipped:  {} (already there; --update updates them)",
            self.skipped
        );
        println!("  flagged:  {}", self.flagged.len());
        println!("  rejected: {}", self.rejected.len());
        if !self.ignored_columns.is_empty() {
            println!("Ignored columns: {}", self.ignored_columns.join(", "));
        }
        for (title, rows) in [
            ("Flagged rows", &self.flagged),
            ("Rejected rows", &self.rejected),
        ] {
            if !rows.is_empty() {
                println!("{title} (the header is line 1):");
                for (line, reason) in rows {
                    println!("  line {line}: {reason}");
                }
            }
        }
    }
}

/// What `import_file` needs besides the file.
pub struct ImportSettings {
    pub maps: Vec<String>,
    pub update: bool,
    pub group: Option<String>,
    pub dry_run: bool,
    pub delimiter: Option<char>,
}

pub async fn run(store: Arc<dyn Store>, args: ImportArgs) -> anyhow::Result<ExitCode> {
    let settings = ImportSettings {
        maps: args.map,
        update: args.update,
        group: args.group,
        dry_run: args.dry_run,
        delimiter: args.delimiter,
    };
    let size = std::fs::metadata(&args.file).map(|m| m.len()).unwrap_or(0);
    let progress = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::with_draw_target(Some(size), ProgressDrawTarget::stderr());
        if let Ok(style) =
            ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {msg} ({eta} left)")
        {
            bar.set_style(style);
        }
        bar
    } else {
        ProgressBar::hidden()
    };
    let report = import_file(store, &args.file, &settings, progress.clone()).await?;
    progress.finish_and_clear();
    report.print(&args.file, settings.dry_run);
    Ok(ExitCode::SUCCESS)
}

pub async fn resolve_group(store: &dyn Store, group: &str) -> anyhow::Result<Uuid> {
    let groups = store.list_groups().await?;
    if let Ok(id) = Uuid::parse_str(group.trim()) {
        if groups.iter().any(|g| g.id == id) {
            return Ok(id);
        }
        bail!("--group {group}: no group has this id");
    }
    let named: Vec<_> = groups
        .iter()
        .filter(|g| g.name.eq_ignore_ascii_case(group.trim()))
        .collect();
    match named.as_slice() {
        [g] => Ok(g.id),
        [] => bail!("--group {group}: no group has this name"),
        _ => bail!("--group {group}: several groups have this name; give the group's id"),
    }
}

type Batch = Vec<ImportRow>;
type Early = Vec<(u64, String)>;

pub async fn import_file(
    store: Arc<dyn Store>,
    path: &Path,
    settings: &ImportSettings,
    progress: ProgressBar,
) -> anyhow::Result<Report> {
    let defs = store.list_fields().await?;
    let group = match &settings.group {
        Some(g) => Some(resolve_group(store.as_ref(), g).await?),
        None => None,
    };
    let mut file =
        File::open(path).with_context(|| format!("could not open {}", path.display()))?;
    let mut head = vec![0u8; 64 * 1024];
    let n = file
        .read(&mut head)
        .with_context(|| format!("could not read {}", path.display()))?;
    head.truncate(n);
    let first_line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let delimiter = match settings.delimiter {
        Some(d) if d.is_ascii() => d as u8,
        Some(d) => bail!("--delimiter {d:?}: must be one ASCII character"),
        None => sniff_delimiter(first_line),
    };
    let file = File::open(path).with_context(|| format!("could not open {}", path.display()))?;
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .has_headers(true)
        .from_reader(BufReader::with_capacity(1 << 20, file));
    let header = reader
        .byte_headers()
        .with_context(|| format!("could not read the header line of {}", path.display()))?
        .iter()
        .map(|h| {
            std::str::from_utf8(h)
                .map(str::to_owned)
                .map_err(|_| anyhow::anyhow!("the header line is not valid UTF-8 text"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    if header.iter().all(|h| h.trim().is_empty()) {
        bail!("{} is empty or has no header line", path.display());
    }
    let mapping = plan_mapping(&header, &settings.maps, &defs, delimiter)?;
    let mut report = Report {
        ignored_columns: mapping.ignored.clone(),
        ..Report::default()
    };

    let (tx, mut rx) = tokio::sync::mpsc::channel::<anyhow::Result<(Batch, Early)>>(2);
    let reader_progress = progress.clone();
    let reader_task = tokio::task::spawn_blocking(move || {
        let mut record = csv::ByteRecord::new();
        let mut batch = Vec::with_capacity(BATCH);
        let mut early = Vec::new();
        loop {
            match reader.read_byte_record(&mut record) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    let _ =
                        tx.blocking_send(Err(anyhow::anyhow!("the file could not be read: {e}")));
                    return;
                }
            }
            let line = record.position().map_or(0, |p| p.line());
            match row_input(&record, &mapping, &defs) {
                Ok(input) => batch.push(ImportRow { line, input }),
                Err(reason) => early.push((line, reason)),
            }
            if batch.len() >= BATCH {
                reader_progress.set_position(record.position().map_or(0, |p| p.byte()));
                let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                if tx
                    .blocking_send(Ok((full, std::mem::take(&mut early))))
                    .is_err()
                {
                    return;
                }
            }
        }
        let _ = tx.blocking_send(Ok((batch, early)));
    });

    let options = ImportOptions {
        existing: if settings.update {
            ExistingPolicy::Update
        } else {
            ExistingPolicy::Skip
        },
        group,
        dry_run: settings.dry_run,
    };
    // A dry run writes nothing, so a later batch cannot see the addresses an earlier one would
    // have created; remember them here instead.
    let mut seen: HashSet<u64> = HashSet::new();
    while let Some(message) = rx.recv().await {
        let (batch, early) = message?;
        report.rejected.extend(early);
        if batch.is_empty() {
            continue;
        }
        let keys: Vec<Option<u64>> = if settings.dry_run {
            batch.iter().map(|r| email_fingerprint(&r.input)).collect()
        } else {
            Vec::new()
        };
        let lines: Vec<u64> = batch.iter().map(|r| r.line).collect();
        let outcomes = store
            .import_batch(batch, &options, jiff::Timestamp::now())
            .await?;
        for (i, (outcome, line)) in outcomes.into_iter().zip(lines).enumerate() {
            let repeated = keys
                .get(i)
                .copied()
                .flatten()
                .is_some_and(|k| !seen.insert(k));
            match outcome {
                RowOutcome::Created | RowOutcome::Flagged(_) if repeated => {
                    if settings.update {
                        report.updated += 1;
                    } else {
                        report.skipped += 1;
                    }
                }
                RowOutcome::Created => report.created += 1,
                RowOutcome::Updated => report.updated += 1,
                RowOutcome::Skipped => report.skipped += 1,
                RowOutcome::Flagged(reason) => report.flagged.push((line, reason)),
                RowOutcome::Rejected(reason) => report.rejected.push((line, reason)),
            }
        }
        progress.set_message(format!("{} rows", report.rows()));
    }
    reader_task.await.context("the CSV reader failed")?;
    if !settings.dry_run && report.created + report.updated > 0 {
        store.refresh_statistics().await?;
    }
    report.rejected.sort_by_key(|(line, _)| *line);
    Ok(report)
}

fn email_fingerprint(input: &ContactInput) -> Option<u64> {
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    let email = nudge_core::Email::parse(input.email.as_deref()?).ok()?;
    Some(BuildHasherDefault::<DefaultHasher>::default().hash_one(email.key()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(cols: &[&str]) -> Vec<String> {
        cols.iter().map(|c| c.to_string()).collect()
    }

    fn defs() -> Vec<FieldDef> {
        vec![FieldDef::new("score", None, "number", vec![]).expect("valid")]
    }

    #[test]
    fn headers_map_by_name_alias_and_flag() {
        let m = plan_mapping(
            &header(&["E-mail", "Voornaam", "score", "city"]),
            &[],
            &defs(),
            b',',
        )
        .expect("maps");
        let targets: Vec<_> = m.columns.iter().map(|(_, t)| t.name()).collect();
        assert_eq!(targets, ["email", "first_name", "fields.score"]);
        assert_eq!(m.ignored, ["city"]);
        let m = plan_mapping(
            &header(&["adres", "punten"]),
            &["adres=email".into(), "punten=fields.score".into()],
            &defs(),
            b',',
        )
        .expect("maps");
        assert_eq!(m.columns.len(), 2);
    }

    #[test]
    fn mapping_errors_are_clear() {
        let cases: &[(&[&str], &[&str], &str)] = &[
            (&["name"], &[], "no column holds the email address"),
            (&["email;first_name"], &[], "is the delimiter ';'?"),
            (&["email", "mail"], &[], "both map to email"),
            (&["email"], &["x=email"], "the file has no column named x"),
            (
                &["email", "x"],
                &["x=shoe_size"],
                "shoe_size is not a field",
            ),
            (&["email"], &["broken"], "expected COLUMN=FIELD"),
        ];
        for (cols, maps, expected) in cases {
            let maps: Vec<String> = maps.iter().map(|m| m.to_string()).collect();
            let err = plan_mapping(&header(cols), &maps, &defs(), b',').expect_err("refused");
            assert!(err.to_string().contains(expected), "{cols:?}: {err}");
        }
        let wide: Vec<String> = (0..10_000).map(|i| format!("c{i}")).collect();
        let err = plan_mapping(&wide, &[], &defs(), b',').expect_err("refused");
        assert!(err.to_string().contains("10000 columns"), "{err}");
    }

    #[test]
    fn delimiter_is_guessed_from_the_header() {
        assert_eq!(sniff_delimiter(b"email;first_name;last_name"), b';');
        assert_eq!(sniff_delimiter(b"email\tname"), b'\t');
        assert_eq!(sniff_delimiter(b"email,name"), b',');
        assert_eq!(sniff_delimiter(b"email"), b',');
    }
}
