//! Sending accounts: the SMTP relays mail goes out through, and the rules their settings obey.
//!
//! [`SmtpAccountSettings::create`] and [`SmtpAccountSettings::apply`] check raw input (what an
//! API client sent) and return the reasons keyed by field, so the API names the field at fault
//! and the store writes only settings that passed.

use crate::contact::Patch;
use crate::email::Email;
use crate::error::FieldErrors;
use std::fmt;
use std::str::FromStr;

/// How the connection to the relay is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SmtpTls {
    /// Plain text throughout: only for a relay on the same machine or a trusted network.
    None,
    /// Plain text upgraded with STARTTLS (usually port 587).
    StartTls,
    /// TLS from the first byte (usually port 465).
    Tls,
}

impl SmtpTls {
    pub const ALL: [SmtpTls; 3] = [SmtpTls::None, SmtpTls::StartTls, SmtpTls::Tls];

    pub fn as_str(self) -> &'static str {
        match self {
            SmtpTls::None => "none",
            SmtpTls::StartTls => "starttls",
            SmtpTls::Tls => "tls",
        }
    }

    /// The port a relay usually listens on in this mode.
    pub fn default_port(self) -> u16 {
        match self {
            SmtpTls::None => 25,
            SmtpTls::StartTls => 587,
            SmtpTls::Tls => 465,
        }
    }
}

impl FromStr for SmtpTls {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| "must be one of none, starttls, tls".to_owned())
    }
}

/// A sending account's settings, checked. `rate_per_second` and `daily_limit` of 0 mean no
/// limit.
#[derive(Clone, PartialEq)]
pub struct SmtpAccountSettings {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub username: Option<String>,
    /// Sent to the relay only; never shown.
    pub password: Option<String>,
    /// The sender of mail that names none; its domain signs (DKIM) and receives bounces.
    pub from_email: Email,
    pub from_name: Option<String>,
    /// Messages per second this node hands to the account; fractions allowed; 0 = no limit.
    pub rate_per_second: f64,
    /// Messages per UTC day; 0 = no limit.
    pub daily_limit: u64,
    /// The account's share of the mail, relative to the other accounts' weights.
    pub weight: u32,
    /// Whether opens and clicks are tracked in mail sent through this account.
    pub tracking: bool,
}

impl fmt::Debug for SmtpAccountSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the password: settings end up in logs.
        f.debug_struct("SmtpAccountSettings")
            .field("name", &self.name)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("from_email", &self.from_email)
            .field("rate_per_second", &self.rate_per_second)
            .field("daily_limit", &self.daily_limit)
            .field("weight", &self.weight)
            .field("tracking", &self.tracking)
            .finish_non_exhaustive()
    }
}

/// Raw input for a new account (every required field `Some`) or a change (only what changes).
/// Numbers are wide so that an out-of-range value is refused with a reason, not a type error.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SmtpAccountInput {
    pub name: Option<String>,
    pub host: Option<String>,
    pub port: Option<i64>,
    pub tls: Option<String>,
    pub username: Patch<String>,
    pub password: Patch<String>,
    pub from_email: Option<String>,
    pub from_name: Patch<String>,
    pub rate_per_second: Option<f64>,
    pub daily_limit: Option<i64>,
    pub weight: Option<i64>,
    pub tracking: Option<bool>,
}

const MAX_NAME: usize = 200;
const MAX_WEIGHT: i64 = 1_000_000;
const MAX_RATE: f64 = 100_000.0;

impl SmtpAccountSettings {
    /// A new account. `name`, `host` and `from_email` are required; `tls` defaults to starttls,
    /// `port` to the usual port of the TLS mode, `weight` to 1, the limits to none and
    /// `tracking` to on.
    pub fn create(input: SmtpAccountInput) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::new();
        for (field, given) in [
            ("name", input.name.is_some()),
            ("host", input.host.is_some()),
            ("from_email", input.from_email.is_some()),
        ] {
            if !given {
                errors.add(field, "is required");
            }
        }
        let tls = match input.tls.as_deref() {
            Some(raw) => raw.parse().unwrap_or(SmtpTls::StartTls),
            None => SmtpTls::StartTls,
        };
        let placeholder = Self {
            name: String::new(),
            host: String::new(),
            port: tls.default_port(),
            tls: SmtpTls::StartTls,
            username: None,
            password: None,
            // Replaced by the input's address, which is required; this never reaches a store.
            from_email: Email::parse("placeholder@example.com").map_err(|e| {
                FieldErrors::one("from_email", format!("internal default unusable: {e}"))
            })?,
            from_name: None,
            rate_per_second: 0.0,
            daily_limit: 0,
            weight: 1,
            tracking: true,
        };
        let checked = placeholder.apply(input);
        match checked {
            Err(mut more) => {
                for (field, reason) in errors.iter() {
                    more.add(field, reason);
                }
                Err(more)
            }
            Ok(settings) => errors.into_result(settings),
        }
    }

    /// These settings changed by `input`; fields it leaves out keep their values.
    pub fn apply(&self, input: SmtpAccountInput) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::new();
        let mut next = self.clone();
        if let Some(name) = input.name {
            match one_line(&name, MAX_NAME) {
                Ok(n) if n.is_empty() => errors.add("name", "is empty"),
                Ok(n) => next.name = n,
                Err(reason) => errors.add("name", reason),
            }
        }
        if let Some(host) = input.host {
            match check_host(&host) {
                Ok(h) => next.host = h,
                Err(reason) => errors.add("host", reason),
            }
        }
        if let Some(raw) = input.tls {
            match raw.parse() {
                Ok(tls) => next.tls = tls,
                Err(reason) => errors.add("tls", reason),
            }
        }
        if let Some(port) = input.port {
            match u16::try_from(port) {
                Ok(p) if p > 0 => next.port = p,
                _ => errors.add("port", "must be a port number from 1 to 65535"),
            }
        }
        match input.username {
            Patch::Keep => {}
            Patch::Clear => next.username = None,
            Patch::Set(u) => match one_line(&u, 320) {
                Ok(u) if u.is_empty() => next.username = None,
                Ok(u) => next.username = Some(u),
                Err(reason) => errors.add("username", reason),
            },
        }
        match input.password {
            Patch::Keep => {}
            Patch::Clear => next.password = None,
            Patch::Set(p) if p.is_empty() => next.password = None,
            Patch::Set(p) if p.len() > 1000 || p.contains(['\r', '\n', '\0']) => {
                errors.add("password", "must be one line of at most 1000 bytes")
            }
            Patch::Set(p) => next.password = Some(p),
        }
        if next.password.is_some() && next.username.is_none() {
            errors.add("username", "is required when a password is given");
        }
        if let Some(raw) = input.from_email {
            match Email::parse(&raw) {
                Ok(e) => next.from_email = e,
                Err(e) => errors.add("from_email", e.to_string()),
            }
        }
        match input.from_name {
            Patch::Keep => {}
            Patch::Clear => next.from_name = None,
            Patch::Set(n) => match one_line(&n, MAX_NAME) {
                Ok(n) if n.is_empty() => next.from_name = None,
                Ok(n) => next.from_name = Some(n),
                Err(reason) => errors.add("from_name", reason),
            },
        }
        if let Some(rate) = input.rate_per_second {
            if rate.is_finite() && (0.0..=MAX_RATE).contains(&rate) {
                next.rate_per_second = rate;
            } else {
                errors.add(
                    "rate_per_second",
                    "must be a number from 0 (no limit) to 100000",
                );
            }
        }
        if let Some(limit) = input.daily_limit {
            match u64::try_from(limit) {
                Ok(l) => next.daily_limit = l,
                Err(_) => errors.add("daily_limit", "must be 0 (no limit) or more"),
            }
        }
        if let Some(weight) = input.weight {
            match u32::try_from(weight) {
                Ok(w) if (1..=MAX_WEIGHT).contains(&weight) => next.weight = w,
                _ => errors.add("weight", "must be a whole number from 1 to 1000000"),
            }
        }
        if let Some(tracking) = input.tracking {
            next.tracking = tracking;
        }
        errors.into_result(next)
    }
}

/// Trimmed text without line breaks or control characters: these values go into SMTP commands
/// and mail headers, where a line break would inject a command or a header.
fn one_line(value: &str, max: usize) -> Result<String, String> {
    let value = value.trim();
    if value.chars().any(char::is_control) {
        return Err("must not contain line breaks or control characters".into());
    }
    if value.chars().count() > max {
        return Err(format!("is longer than {max} characters"));
    }
    Ok(value.to_owned())
}

/// A host name or an IP address literal.
fn check_host(host: &str) -> Result<String, String> {
    let host = host.trim().trim_end_matches('.').to_ascii_lowercase();
    if host.is_empty() {
        return Err("is empty".into());
    }
    if host.parse::<std::net::IpAddr>().is_ok() {
        return Ok(host);
    }
    let valid = host.len() <= 253
        && host.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if valid {
        Ok(host)
    } else {
        Err("must be a host name or an IP address".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> SmtpAccountInput {
        SmtpAccountInput {
            name: Some("Main".into()),
            host: Some("smtp.example.com".into()),
            from_email: Some("news@example.com".into()),
            ..SmtpAccountInput::default()
        }
    }

    #[test]
    fn a_new_account_gets_defaults_for_what_it_leaves_out() {
        let s = SmtpAccountSettings::create(full()).expect("valid");
        assert_eq!(
            (s.tls, s.port, s.weight, s.tracking, s.daily_limit),
            (SmtpTls::StartTls, 587, 1, true, 0)
        );
        assert_eq!(s.rate_per_second, 0.0);
        let s = SmtpAccountSettings::create(SmtpAccountInput {
            tls: Some("tls".into()),
            ..full()
        })
        .expect("valid");
        assert_eq!((s.tls, s.port), (SmtpTls::Tls, 465));
        let err = SmtpAccountSettings::create(SmtpAccountInput::default()).expect_err("empty");
        for field in ["name", "host", "from_email"] {
            assert_eq!(err.get(field), Some("is required"), "{field}");
        }
    }

    #[test]
    fn every_bad_value_is_refused_naming_its_field() {
        let cases: Vec<(SmtpAccountInput, &str)> = vec![
            (
                SmtpAccountInput {
                    port: Some(0),
                    ..full()
                },
                "port",
            ),
            (
                SmtpAccountInput {
                    port: Some(65536),
                    ..full()
                },
                "port",
            ),
            (
                SmtpAccountInput {
                    tls: Some("ssl".into()),
                    ..full()
                },
                "tls",
            ),
            (
                SmtpAccountInput {
                    from_email: Some("nobody".into()),
                    ..full()
                },
                "from_email",
            ),
            (
                SmtpAccountInput {
                    weight: Some(0),
                    ..full()
                },
                "weight",
            ),
            (
                SmtpAccountInput {
                    rate_per_second: Some(-1.0),
                    ..full()
                },
                "rate_per_second",
            ),
            (
                SmtpAccountInput {
                    rate_per_second: Some(f64::NAN),
                    ..full()
                },
                "rate_per_second",
            ),
            (
                SmtpAccountInput {
                    daily_limit: Some(-5),
                    ..full()
                },
                "daily_limit",
            ),
            (
                SmtpAccountInput {
                    host: Some("smtp example.com".into()),
                    ..full()
                },
                "host",
            ),
            (
                SmtpAccountInput {
                    name: Some("  ".into()),
                    ..full()
                },
                "name",
            ),
            (
                SmtpAccountInput {
                    from_name: Patch::Set("News\r\nBcc: x@example.com".into()),
                    ..full()
                },
                "from_name",
            ),
            (
                SmtpAccountInput {
                    password: Patch::Set("secret".into()),
                    ..full()
                },
                "username",
            ),
        ];
        for (input, field) in cases {
            let err = SmtpAccountSettings::create(input.clone()).expect_err(field);
            assert!(err.get(field).is_some(), "{field}: {err} for {input:?}");
            assert_eq!(err.iter().count(), 1, "{field}: only that field: {err}");
        }
    }

    #[test]
    fn a_change_keeps_what_it_leaves_out_and_clears_what_is_null() {
        let s = SmtpAccountSettings::create(SmtpAccountInput {
            username: Patch::Set("user".into()),
            password: Patch::Set("secret".into()),
            from_name: Patch::Set("News".into()),
            ..full()
        })
        .expect("valid");
        let changed = s
            .apply(SmtpAccountInput {
                port: Some(2525),
                from_name: Patch::Clear,
                ..SmtpAccountInput::default()
            })
            .expect("valid");
        assert_eq!(changed.port, 2525);
        assert_eq!(changed.from_name, None);
        assert_eq!(changed.password.as_deref(), Some("secret"));
        assert!(!format!("{changed:?}").contains("secret"), "Debug hides it");
        let err = s
            .apply(SmtpAccountInput {
                username: Patch::Clear,
                ..SmtpAccountInput::default()
            })
            .expect_err("a password needs a user");
        assert!(err.get("username").is_some());
    }
}
