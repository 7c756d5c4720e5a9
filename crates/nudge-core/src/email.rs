//! The normalised email address.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;

/// An address as the contact typed it, trimmed, with the domain lower-cased.
///
/// The local part keeps its case, because a few receiving systems still distinguish it, but two
/// addresses that differ only in case are the same contact: [`Email::key`] is what uniqueness and
/// matching use.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("is empty")]
    Empty,
    #[error("is longer than 254 characters")]
    TooLong,
    #[error("has no @ sign")]
    MissingAt,
    #[error("has nothing before the @ sign")]
    LocalEmpty,
    #[error("has nothing after the @ sign")]
    DomainEmpty,
    #[error("has a domain without a dot")]
    DomainWithoutDot,
    #[error("has an IP address instead of a domain")]
    IpLiteral,
    #[error("has a quoted local part, which Nudge does not send to")]
    QuotedLocal,
    #[error("contains white space or control characters")]
    Whitespace,
    #[error("is not a valid address: {0}")]
    Syntax(String),
}

impl Email {
    pub fn parse(input: &str) -> Result<Self, EmailError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(EmailError::Empty);
        }
        if trimmed.chars().count() > 254 {
            return Err(EmailError::TooLong);
        }
        if trimmed.starts_with('"') {
            return Err(EmailError::QuotedLocal);
        }
        if trimmed.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(EmailError::Whitespace);
        }
        let Some((local, domain)) = trimmed.rsplit_once('@') else {
            return Err(EmailError::MissingAt);
        };
        if local.is_empty() {
            return Err(EmailError::LocalEmpty);
        }
        if domain.is_empty() {
            return Err(EmailError::DomainEmpty);
        }
        if domain.starts_with('[') {
            return Err(EmailError::IpLiteral);
        }
        if !domain.contains('.') {
            return Err(EmailError::DomainWithoutDot);
        }
        let normalised = format!("{local}@{}", domain.to_lowercase());
        email_address::EmailAddress::from_str(&normalised)
            .map_err(|e| EmailError::Syntax(e.to_string()))?;
        Ok(Self(normalised))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map_or("", |(_, d)| d)
    }

    /// The matching key: the whole address lower-cased.
    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }

    /// The hash kept after an erase, so that the address can be recognised but not read back.
    pub fn suppression_hash(&self) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let digest = Sha256::digest(self.key().as_bytes());
        let mut out = String::with_capacity(64);
        for b in digest.iter() {
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
        out
    }
}

impl TryFrom<String> for Email {
    type Error = EmailError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Email> for String {
    fn from(value: Email) -> Self {
        value.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_table() {
        let cases: &[(&str, Result<&str, EmailError>)] = &[
            ("  Jan@Example.NL ", Ok("Jan@example.nl")),
            ("a.b+tag@sub.example.com", Ok("a.b+tag@sub.example.com")),
            ("", Err(EmailError::Empty)),
            ("   ", Err(EmailError::Empty)),
            ("no-at-sign", Err(EmailError::MissingAt)),
            ("@example.com", Err(EmailError::LocalEmpty)),
            ("bad@", Err(EmailError::DomainEmpty)),
            ("a@localhost", Err(EmailError::DomainWithoutDot)),
            ("a@[127.0.0.1]", Err(EmailError::IpLiteral)),
            ("\"john doe\"@example.com", Err(EmailError::QuotedLocal)),
            ("a b@example.com", Err(EmailError::Whitespace)),
        ];
        for (input, expected) in cases {
            let got = Email::parse(input);
            match expected {
                Ok(norm) => assert_eq!(got.as_ref().map(Email::as_str), Ok(*norm), "{input}"),
                Err(e) => assert_eq!(got.as_ref().err(), Some(e), "{input}"),
            }
        }
    }

    #[test]
    fn syntax_errors_carry_a_reason() {
        for input in ["a@b..c", "a..b@example.com", "a@-example.com"] {
            match Email::parse(input) {
                Err(EmailError::Syntax(reason)) => assert!(!reason.is_empty(), "{input}"),
                other => panic!("{input}: {other:?}"),
            }
        }
    }

    #[test]
    fn key_ignores_case_and_hash_follows_key() {
        let a = Email::parse("Jan@Example.nl").expect("valid");
        let b = Email::parse("jan@example.NL").expect("valid");
        assert_ne!(a, b);
        assert_eq!(a.key(), b.key());
        assert_eq!(a.suppression_hash(), b.suppression_hash());
        // SHA-256 of "jan@example.nl", computed with sha256sum.
        assert_eq!(
            a.suppression_hash(),
            "a5a44ec75c51b7cc477320c7c519e21b911ae44b3b93c9014dfc36164e195a13"
        );
    }

    #[test]
    fn too_long_is_refused() {
        let long = format!("{}@example.com", "a".repeat(250));
        assert_eq!(Email::parse(&long), Err(EmailError::TooLong));
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC*") {
            let _ = Email::parse(&s);
        }
    }
}
