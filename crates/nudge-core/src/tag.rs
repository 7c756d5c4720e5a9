//! Tags: flat labels on contacts.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A tag as shown to users: trimmed, 1 to 64 characters, no control characters and no slash
/// (it appears in URL paths such as `/api/v1/contacts/{id}/tags/{tag}`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TagName(String);

impl TagName {
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("is empty".into());
        }
        if s.chars().count() > 64 {
            return Err("is longer than 64 characters".into());
        }
        if s.chars().any(|c| c.is_control() || c == '/') {
            return Err("may not contain control characters or /".into());
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TagName {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<TagName> for String {
    fn from(value: TagName) -> Self {
        value.0
    }
}

impl fmt::Display for TagName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::TagName;

    #[test]
    fn tag_names() {
        let cases: &[(&str, Result<&str, ()>)] = &[
            (" vip ", Ok("vip")),
            ("Kunde 2026", Ok("Kunde 2026")),
            ("לקוח", Ok("לקוח")),
            ("", Err(())),
            ("a/b", Err(())),
            ("tab\there", Err(())),
        ];
        for (input, expected) in cases {
            let got = TagName::parse(input);
            assert_eq!(
                got.as_ref().map(TagName::as_str).map_err(|_| ()),
                *expected,
                "{input:?}"
            );
        }
        assert!(TagName::parse(&"x".repeat(65)).is_err());
    }
}
