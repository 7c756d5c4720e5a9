//! `nudge sequence start`: a list manager started by hand (seed 000, step 6), for one contact
//! or every contact of a group and its subgroups. A running server's engine picks the new
//! enrolments up within a second.

use crate::import::resolve_group;
use anyhow::{Context, bail};
use nudge_store::{StartTarget, Store};
use std::process::ExitCode;
use uuid::Uuid;

/// A sequence by id or by its (unique) name.
async fn resolve_sequence(store: &dyn Store, sequence: &str) -> anyhow::Result<Uuid> {
    let all = store.list_sequences().await?;
    if let Ok(id) = Uuid::parse_str(sequence.trim()) {
        if all.iter().any(|s| s.id == id) {
            return Ok(id);
        }
        bail!("sequence {sequence}: no sequence has this id");
    }
    let named: Vec<_> = all
        .iter()
        .filter(|s| s.def.name.eq_ignore_ascii_case(sequence.trim()))
        .collect();
    match named.as_slice() {
        [s] => Ok(s.id),
        [] => bail!("sequence {sequence}: no sequence has this name"),
        _ => bail!("sequence {sequence}: several sequences have this name; give its id"),
    }
}

/// A contact by id or email address.
async fn resolve_contact(store: &dyn Store, contact: &str) -> anyhow::Result<Uuid> {
    if let Ok(id) = Uuid::parse_str(contact.trim()) {
        return Ok(store
            .get_contact(id)
            .await
            .with_context(|| format!("--contact {contact}"))?
            .contact
            .id);
    }
    match store.find_contact_by_email(contact.trim()).await? {
        Some(found) => Ok(found.contact.id),
        None => bail!("--contact {contact}: no contact has this id or address"),
    }
}

pub async fn start(
    store: &dyn Store,
    sequence: &str,
    contact: Option<&str>,
    group: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let sequence_id = resolve_sequence(store, sequence).await?;
    let target = match (contact, group) {
        (Some(c), None) => StartTarget::Contact(resolve_contact(store, c).await?),
        (None, Some(g)) => StartTarget::Group(resolve_group(store, g).await?),
        _ => bail!("give either --contact or --group"),
    };
    let outcome = store
        .start_sequence(sequence_id, target, jiff::Timestamp::now())
        .await?;
    println!(
        "enrolled {}, already in the sequence {}",
        outcome.enrolled, outcome.already
    );
    Ok(ExitCode::SUCCESS)
}
