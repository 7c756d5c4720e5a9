//! Signed tokens for links in mail (unsubscribe, preferences, tracking): unguessable, tied to
//! one message and one purpose, and checked without a database lookup.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{KeyInit, Mac};
use sha2::Sha256;
use uuid::Uuid;

/// What a token may be used for; a token made for one purpose is refused for another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Unsubscribe,
    /// The open pixel.
    Open,
    /// A double opt-in confirmation; the id is the contact's.
    Confirm,
}

impl Purpose {
    fn label(self) -> &'static [u8] {
        match self {
            Purpose::Unsubscribe => b"unsubscribe",
            Purpose::Open => b"open",
            Purpose::Confirm => b"confirm",
        }
    }
}

/// Bytes of HMAC kept in a token: 128 bits are far beyond guessing and keep links short.
const TAG: usize = 16;

fn tag(secret: &[u8], purpose: Purpose, id: Uuid) -> Option<[u8; TAG]> {
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(secret).ok()?;
    mac.update(purpose.label());
    mac.update(b"\0");
    mac.update(id.as_bytes());
    let full = mac.finalize().into_bytes();
    let mut out = [0u8; TAG];
    out.copy_from_slice(full.get(..TAG)?);
    Some(out)
}

/// A URL-safe token naming `id` for `purpose`, signed with `secret`.
pub fn sign(secret: &[u8], purpose: Purpose, id: Uuid) -> String {
    let mut bytes = Vec::with_capacity(16 + TAG);
    bytes.extend_from_slice(id.as_bytes());
    bytes.extend_from_slice(&tag(secret, purpose, id).unwrap_or([0; TAG]));
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The id a token names, if it was signed with `secret` for `purpose`.
pub fn verify(secret: &[u8], purpose: Purpose, token: &str) -> Option<Uuid> {
    let bytes = URL_SAFE_NO_PAD.decode(token.trim()).ok()?;
    if bytes.len() != 16 + TAG {
        return None;
    }
    let id = Uuid::from_slice(bytes.get(..16)?).ok()?;
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(secret).ok()?;
    mac.update(purpose.label());
    mac.update(b"\0");
    mac.update(id.as_bytes());
    // Constant-time comparison of the truncated tag.
    mac.verify_truncated_left(bytes.get(16..)?).ok()?;
    Some(id)
}

/// A click token: the message and the link's target, signed together, so that the redirect can
/// only ever lead to a link the message contained (no open redirect) and needs no lookup.
pub fn sign_link(secret: &[u8], message: Uuid, url: &str) -> String {
    let mut bytes = Vec::with_capacity(16 + TAG + url.len());
    bytes.extend_from_slice(message.as_bytes());
    bytes.extend_from_slice(&link_tag(secret, message, url).unwrap_or([0; TAG]));
    bytes.extend_from_slice(url.as_bytes());
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The message and target URL of a click token signed with `secret`.
pub fn verify_link(secret: &[u8], token: &str) -> Option<(Uuid, String)> {
    let bytes = URL_SAFE_NO_PAD.decode(token.trim()).ok()?;
    let id = Uuid::from_slice(bytes.get(..16)?).ok()?;
    let url = std::str::from_utf8(bytes.get(16 + TAG..)?).ok()?;
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(secret).ok()?;
    mac.update(b"click\0");
    mac.update(id.as_bytes());
    mac.update(url.as_bytes());
    mac.verify_truncated_left(bytes.get(16..16 + TAG)?).ok()?;
    Some((id, url.to_owned()))
}

fn link_tag(secret: &[u8], message: Uuid, url: &str) -> Option<[u8; TAG]> {
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(secret).ok()?;
    mac.update(b"click\0");
    mac.update(message.as_bytes());
    mac.update(url.as_bytes());
    let full = mac.finalize().into_bytes();
    let mut out = [0u8; TAG];
    out.copy_from_slice(full.get(..TAG)?);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_only_unchanged_with_their_secret() {
        let id = Uuid::from_u128(42);
        let token = sign(b"secret", Purpose::Unsubscribe, id);
        assert_eq!(verify(b"secret", Purpose::Unsubscribe, &token), Some(id));
        assert_eq!(verify(b"other", Purpose::Unsubscribe, &token), None);
        let mut tampered = token.clone().into_bytes();
        let last = tampered.len() - 1;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).expect("ascii");
        assert_eq!(verify(b"secret", Purpose::Unsubscribe, &tampered), None);
        for junk in ["", "x", "%%%", &"A".repeat(500)] {
            assert_eq!(
                verify(b"secret", Purpose::Unsubscribe, junk),
                None,
                "{junk}"
            );
        }
        assert_eq!(
            verify(b"secret", Purpose::Open, &token),
            None,
            "purposes do not mix"
        );
    }

    #[test]
    fn link_tokens_carry_only_the_signed_target() {
        let id = Uuid::from_u128(7);
        let token = sign_link(b"secret", id, "https://example.com/a?b=c");
        assert_eq!(
            verify_link(b"secret", &token),
            Some((id, "https://example.com/a?b=c".to_owned()))
        );
        assert_eq!(verify_link(b"other", &token), None);
        // Swapping in another target breaks the signature.
        let mut bytes = URL_SAFE_NO_PAD.decode(&token).expect("base64");
        bytes.truncate(16 + TAG);
        bytes.extend_from_slice(b"https://evil.example");
        assert_eq!(verify_link(b"secret", &URL_SAFE_NO_PAD.encode(bytes)), None);
        assert_eq!(verify_link(b"secret", "short"), None);
    }
}
