//! How this server sends: the default transport (the SMTP relay from `--smtp-url`, or a folder of
//! `.eml` files when there is none), used while no sending account exists in the database; the
//! sender; and the secret that signs links in mail.

use anyhow::{Context, bail};
use nudge_core::Email;
use nudge_mail::{EmlFolder, SmtpDefaults, SmtpRelay, SmtpSettings, TlsMode, Transport};
use percent_encoding::percent_decode_str;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Reads `smtp://[user[:password]@]host[:port][?tls=starttls]` or `smtps://...` (TLS from the
/// first byte). Without a port: 465 for smtps, 587 with STARTTLS, 25 otherwise.
pub fn parse_smtp_url(url: &str) -> anyhow::Result<SmtpSettings> {
    let bad =
        |why: &str| anyhow::anyhow!("--smtp-url: {why} (expected smtp://user:password@host:port)");
    let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("no scheme"))?;
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let mut tls = match scheme {
        "smtp" => TlsMode::None,
        "smtps" => TlsMode::Implicit,
        other => {
            return Err(bad(&format!(
                "the scheme must be smtp or smtps, not {other}"
            )));
        }
    };
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("tls", "starttls")) if tls == TlsMode::None => tls = TlsMode::StartTls,
            Some(("tls", "none")) if tls == TlsMode::None => {}
            _ => return Err(bad(&format!("unknown option {pair}; use ?tls=starttls"))),
        }
    }
    let (userinfo, hostport) = match rest.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, rest),
    };
    let decode = |s: &str| percent_decode_str(s).decode_utf8().map(|c| c.into_owned());
    let credentials = match userinfo {
        Some(u) => {
            let (user, password) = u.split_once(':').unwrap_or((u, ""));
            Some((
                decode(user).map_err(|_| bad("the user name is not UTF-8"))?,
                decode(password).map_err(|_| bad("the password is not UTF-8"))?,
            ))
        }
        None => None,
    };
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (
            h,
            p.parse::<u16>()
                .map_err(|_| bad("the port is not a number"))?,
        ),
        None => (
            hostport,
            match tls {
                TlsMode::Implicit => 465,
                TlsMode::StartTls => 587,
                TlsMode::None => 25,
            },
        ),
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    Ok(SmtpSettings {
        host: host.to_owned(),
        port,
        tls,
        credentials,
        helo: host_name(),
        timeout: Duration::from_secs(30),
        pool_size: 4,
    })
}

/// How connections to sending accounts are made: this machine's name in EHLO.
pub fn smtp_defaults() -> SmtpDefaults {
    SmtpDefaults {
        helo: host_name(),
        ..SmtpDefaults::default()
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

pub fn transport(smtp_url: Option<&str>, data_dir: &Path) -> anyhow::Result<Arc<dyn Transport>> {
    Ok(match smtp_url {
        Some(url) => Arc::new(SmtpRelay::new(parse_smtp_url(url)?)),
        None => Arc::new(EmlFolder::new(data_dir.join("outbox"))),
    })
}

pub fn sender(from: Option<&str>) -> anyhow::Result<Email> {
    match from {
        Some(f) => Email::parse(f).map_err(|e| anyhow::anyhow!("--from {f}: {e}")),
        None => Email::parse("nudge@localhost.localdomain").context("the default sender"),
    }
}

/// `NUDGE_SECRET`, or the key kept in `<data-dir>/secret` (made on first start). Every node that
/// shares a database must use the same secret, or links from one node's mail fail on another.
pub fn secret(data_dir: &Path) -> anyhow::Result<Arc<[u8]>> {
    if let Ok(value) = std::env::var("NUDGE_SECRET") {
        if value.len() < 32 {
            bail!("NUDGE_SECRET must have at least 32 characters");
        }
        return Ok(Arc::from(value.into_bytes()));
    }
    let path = data_dir.join("secret");
    match std::fs::read(&path) {
        Ok(bytes) if bytes.len() >= 32 => return Ok(Arc::from(bytes)),
        Ok(_) => bail!("{} is shorter than 32 bytes", path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("could not read {}", path.display())),
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("could not create {}", data_dir.display()))?;
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness available: {e}"))?;
    write_private(&path, &bytes)?;
    Ok(Arc::from(bytes.to_vec()))
}

fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("could not create {}", path.display()))?;
    file.write_all(bytes)
        .with_context(|| format!("could not write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_urls() {
        let s = parse_smtp_url("smtps://user%40x.com:p%3Ass@mail.example.com").expect("valid");
        assert_eq!(
            (s.host.as_str(), s.port, s.tls),
            ("mail.example.com", 465, TlsMode::Implicit)
        );
        assert_eq!(s.credentials, Some(("user@x.com".into(), "p:ss".into())));
        let s = parse_smtp_url("smtp://relay.local:2525?tls=starttls").expect("valid");
        assert_eq!(
            (s.port, s.tls, s.credentials),
            (2525, TlsMode::StartTls, None)
        );
        let s = parse_smtp_url("smtp://127.0.0.1:2525").expect("valid");
        assert_eq!((s.port, s.tls), (2525, TlsMode::None));
        for bad in [
            "mail.example.com",
            "http://x",
            "smtp://x:port",
            "smtp://",
            "smtps://x?tls=starttls",
        ] {
            assert!(parse_smtp_url(bad).is_err(), "{bad}");
        }
    }
}
