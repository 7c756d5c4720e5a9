//! `nudge api-key create` and `nudge user create`.

use crate::settings::Settings;
use anyhow::{Context, bail};
use argon2::Argon2;
use argon2::password_hash::PasswordHasher;
use base64::Engine;
use nudge_core::{Email, Role, Scope};
use nudge_store::{NewApiKey, NewUser};
use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

/// Checks the requested scopes; none means every scope, present and future.
pub fn parse_scopes(scopes: &[String]) -> anyhow::Result<Vec<String>> {
    if scopes.is_empty() {
        return Ok(vec![Scope::EVERY.to_owned()]);
    }
    scopes
        .iter()
        .map(|s| {
            s.parse::<Scope>()
                .map(|scope| scope.as_str().to_owned())
                .map_err(|reason| anyhow::anyhow!("--scope {s}: {reason}"))
        })
        .collect()
}

/// A new key: 256 random bits, URL-safe, with a prefix that tells what it is when found in a log.
pub fn generate_key() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness available: {e}"))?;
    Ok(format!(
        "nudge_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    ))
}

pub async fn create_api_key(
    settings: &Settings,
    name: &str,
    scopes: &[String],
) -> anyhow::Result<ExitCode> {
    let name = name.trim();
    if name.is_empty() {
        bail!("--name must not be empty");
    }
    let scopes = parse_scopes(scopes)?;
    let store = settings.open_store().await?;
    let key = generate_key()?;
    store
        .create_api_key(NewApiKey {
            name: name.to_owned(),
            key_hash: nudge_http::auth::key_hash(&key),
            scopes: scopes.clone(),
        })
        .await?;
    eprintln!(
        "API key \"{name}\" created with scope {}. It is shown only this once:",
        scopes.join(" ")
    );
    println!("{key}");
    Ok(ExitCode::SUCCESS)
}

pub async fn create_user(
    settings: &Settings,
    email: &str,
    role: &str,
    password_file: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let email = Email::parse(email).map_err(|e| anyhow::anyhow!("--email {email}: {e}"))?;
    let role: Role = role
        .parse()
        .map_err(|e| anyhow::anyhow!("--role {role}: {e}"))?;
    let password = read_password(password_file)?;
    if password.chars().count() < 10 {
        bail!("the password must have at least 10 characters");
    }
    let hash = Argon2::default()
        .hash_password(password.as_bytes())
        .map_err(|e| anyhow::anyhow!("could not hash the password: {e}"))?
        .to_string();
    let store = settings.open_store().await?;
    let user = store
        .create_user(NewUser {
            email,
            password_hash: hash,
            role,
        })
        .await?;
    println!(
        "user {} created with role {}",
        user.email,
        user.role.as_str()
    );
    Ok(ExitCode::SUCCESS)
}

fn read_password(file: Option<&Path>) -> anyhow::Result<String> {
    if let Some(path) = file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("could not read the password file {}", path.display()))?;
        return Ok(text.lines().next().unwrap_or_default().to_owned());
    }
    if !std::io::stdin().is_terminal() {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .context("could not read the password from standard input")?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_owned());
    }
    let first = rpassword::prompt_password("Password: ").context("could not read the password")?;
    let second = rpassword::prompt_password("Again: ").context("could not read the password")?;
    if first != second {
        bail!("the two passwords differ");
    }
    Ok(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_default_to_every_scope_and_unknown_ones_are_refused() {
        assert_eq!(parse_scopes(&[]).ok(), Some(vec!["*".to_owned()]));
        let read = parse_scopes(&["contacts:read".to_owned()]).ok();
        assert_eq!(read, Some(vec!["contacts:read".to_owned()]));
        let err = parse_scopes(&["contacts".to_owned()])
            .err()
            .map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.starts_with("--scope contacts: must be one of")));
    }

    #[test]
    fn keys_are_long_and_distinct() {
        let (a, b) = (generate_key().ok(), generate_key().ok());
        assert!(a.as_ref().is_some_and(|k| k.len() == 6 + 43));
        assert_ne!(a, b);
    }
}
