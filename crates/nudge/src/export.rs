//! `nudge export contacts`: every contact as CSV or JSON, page by page.

use crate::cli::ExportFormat;
use anyhow::Context;
use nudge_store::{ContactFilter, ContactRecord, PageRequest, Store};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use uuid::Uuid;

const PAGE: u32 = 1000;

pub async fn run(
    store: Arc<dyn Store>,
    format: ExportFormat,
    output: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let out: Box<dyn Write> = match output {
        Some(path) => Box::new(
            std::fs::File::create(path)
                .with_context(|| format!("could not create {}", path.display()))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    let count = export(store.as_ref(), format, BufWriter::new(out)).await?;
    if let Some(path) = output {
        eprintln!("exported {count} contacts to {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn export(
    store: &dyn Store,
    format: ExportFormat,
    mut out: impl Write,
) -> anyhow::Result<u64> {
    let keys: Vec<String> = store
        .list_fields()
        .await?
        .into_iter()
        .map(|d| d.key.to_string())
        .collect();
    let groups: HashMap<Uuid, String> = store
        .list_groups()
        .await?
        .into_iter()
        .map(|g| (g.id, g.name))
        .collect();
    let count = match format {
        ExportFormat::Csv => {
            let mut w = csv::Writer::from_writer(&mut out);
            let mut header: Vec<String> = COLUMNS.iter().map(|c| c.to_string()).collect();
            header.extend(keys.iter().map(|k| format!("fields.{k}")));
            w.write_record(&header)?;
            let count = for_each_contact(store, |record| {
                w.write_record(csv_row(record, &keys, &groups))?;
                Ok(())
            })
            .await?;
            w.flush()?;
            count
        }
        ExportFormat::Json => {
            out.write_all(b"[")?;
            let mut first = true;
            let count = for_each_contact(store, |record| {
                out.write_all(if first { b"\n" } else { b",\n" })?;
                first = false;
                serde_json::to_writer(&mut out, &json_value(record, &groups))?;
                Ok(())
            })
            .await?;
            out.write_all(b"\n]\n")?;
            count
        }
    };
    out.flush()?;
    Ok(count)
}

/// Walks all contacts, newest first, one page in memory at a time.
async fn for_each_contact(
    store: &dyn Store,
    mut f: impl FnMut(&ContactRecord) -> anyhow::Result<()>,
) -> anyhow::Result<u64> {
    let mut page = PageRequest::first(PAGE);
    let mut count = 0u64;
    loop {
        let got = store.list_contacts(&ContactFilter::default(), page).await?;
        for record in &got.items {
            f(record)?;
            count += 1;
        }
        match got.next_cursor {
            Some(cursor) => page = PageRequest::after(PAGE, cursor),
            None => return Ok(count),
        }
    }
}

const COLUMNS: [&str; 13] = [
    "id",
    "email",
    "first_name",
    "last_name",
    "phone",
    "language",
    "time_zone",
    "status",
    "source",
    "groups",
    "tags",
    "created_at",
    "updated_at",
];

fn csv_row(r: &ContactRecord, keys: &[String], groups: &HashMap<Uuid, String>) -> Vec<String> {
    let c = &r.contact;
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    let group_names: Vec<&str> = r
        .groups
        .iter()
        .filter_map(|id| groups.get(id).map(String::as_str))
        .collect();
    let mut row = vec![
        c.id.to_string(),
        c.email.to_string(),
        opt(&c.first_name),
        opt(&c.last_name),
        opt(&c.phone),
        opt(&c.language),
        opt(&c.time_zone),
        c.status.as_str().to_owned(),
        opt(&c.source),
        group_names.join("|"),
        r.tags.join("|"),
        c.created_at.to_string(),
        c.updated_at.to_string(),
    ];
    row.extend(keys.iter().map(|k| {
        match c.fields.get(k) {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                .collect::<Vec<_>>()
                .join("|"),
            Some(other) => other.to_string(),
        }
    }));
    row
}

fn json_value(r: &ContactRecord, groups: &HashMap<Uuid, String>) -> Value {
    let c = &r.contact;
    json!({
        "id": c.id,
        "email": c.email.as_str(),
        "first_name": c.first_name,
        "last_name": c.last_name,
        "phone": c.phone,
        "language": c.language,
        "time_zone": c.time_zone,
        "status": c.status.as_str(),
        "source": c.source,
        "fields": c.fields,
        "groups": r.groups,
        "group_names": r.groups.iter().filter_map(|id| groups.get(id)).collect::<Vec<_>>(),
        "tags": r.tags,
        "created_at": c.created_at.to_string(),
        "updated_at": c.updated_at.to_string(),
    })
}
