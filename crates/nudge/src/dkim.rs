//! `nudge dkim generate`: a signing key for a sending domain, stored in the database (where a
//! running `serve` picks it up), and the DNS record that publishes its public half.

use crate::cli::DkimAlgorithmArg;
use crate::settings::Settings;
use anyhow::Context;
use nudge_mail::{Algorithm, DkimError, DkimKey};
use nudge_store::{DkimAlgorithm, NewDkimKey};
use std::process::ExitCode;

pub async fn generate(
    settings: &Settings,
    domain: &str,
    selector: &str,
    algorithm: DkimAlgorithmArg,
) -> anyhow::Result<ExitCode> {
    let (kind, stored) = match algorithm {
        DkimAlgorithmArg::Rsa => (Algorithm::Rsa2048, DkimAlgorithm::Rsa),
        DkimAlgorithmArg::Ed25519 => (Algorithm::Ed25519, DkimAlgorithm::Ed25519),
    };
    let generated = DkimKey::generate(domain, selector, kind).map_err(|e| match e {
        DkimError::Domain(reason) => anyhow::anyhow!("DOMAIN {domain:?}: {reason}"),
        DkimError::Selector(reason) => anyhow::anyhow!("--selector {selector:?}: {reason}"),
        other => anyhow::anyhow!(other),
    })?;
    let key = generated.key;
    let store = settings.open_store().await?;
    let previous = store
        .dkim_keys()
        .await
        .context("could not read the stored DKIM keys")?
        .into_iter()
        .find(|k| k.domain == key.domain());
    store
        .save_dkim_key(NewDkimKey {
            domain: key.domain().to_owned(),
            selector: key.selector().to_owned(),
            algorithm: stored,
            private_key_pem: generated.pem,
        })
        .await
        .context("could not store the key")?;
    if let Some(previous) = previous {
        eprintln!(
            "Replaced the key {} had (selector {}): mail is signed with the new key from now on.",
            previous.domain, previous.selector
        );
    }
    let record = key.dns_record();
    eprintln!(
        "Publish this DNS TXT record (name, then value) for mail from {} to verify. DNS panels \
         split a value longer than 255 characters into several strings by themselves.",
        key.domain()
    );
    // Standard output holds only the record, so scripts can read it line by line.
    println!("{}", record.name);
    println!("{}", record.value);
    Ok(ExitCode::SUCCESS)
}
