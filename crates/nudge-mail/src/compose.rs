//! The MIME message of one email: multipart/alternative (text, then HTML), a Message-ID derived
//! from the message's id, the Date it is given, and the RFC 8058 one-click unsubscribe headers on
//! every message that is not transactional.

use jiff::Timestamp;
use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address;
use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::raw::Raw;
use mail_builder::headers::url::URL;
use mail_builder::mime::{BodyPart, MimePart};
use nudge_core::{Email, MessageClass};
use uuid::Uuid;

/// A display name (optional) and an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    pub name: Option<String>,
    pub email: Email,
}

/// Where a `List-Unsubscribe` header points: an address that unsubscribes whoever writes to it,
/// and the URL that takes the RFC 8058 one-click POST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListUnsubscribe {
    pub mailto: Email,
    pub url: String,
}

/// Everything one message is made of.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    /// The message's id in the send ledger; the Message-ID is made from it and the From domain,
    /// so a retry of the same message carries the same Message-ID.
    pub id: Uuid,
    pub from: Mailbox,
    pub to: Mailbox,
    /// The per-message VERP address (`bounces+{token}@{domain}`) the SMTP client gives as
    /// `MAIL FROM`. It is not written into the message: the receiving server records it as
    /// `Return-Path`, and a sender must not add that header itself (RFC 5321 §4.4).
    pub return_path: Email,
    pub subject: String,
    pub html: String,
    pub text: String,
    pub class: MessageClass,
    pub date: Timestamp,
    /// Required unless the class is transactional; ignored for transactional mail.
    pub list_unsubscribe: Option<ListUnsubscribe>,
}

impl Outgoing {
    /// `<{id}@{from domain}>`, as written in the Message-ID header.
    pub fn message_id(&self) -> String {
        format!("<{}@{}>", self.id, self.from.email.domain())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ComposeError {
    #[error("{0}: contains a line break or another control character")]
    ControlCharacter(&'static str),
    #[error("from: the domain must be ASCII (punycode) to make a Message-ID")]
    NonAsciiDomain,
    #[error("list_unsubscribe: a {0} message needs unsubscribe links")]
    MissingUnsubscribe(&'static str),
    #[error("list_unsubscribe.url: must be an http or https URL without spaces, commas or <>")]
    UnsubscribeUrl,
}

/// The message as RFC 5322 bytes with CRLF line ends, ready to sign.
pub fn compose(message: &Outgoing) -> Result<Vec<u8>, ComposeError> {
    let domain = message.from.email.domain();
    if !domain.is_ascii() {
        return Err(ComposeError::NonAsciiDomain);
    }
    for (field, value) in [
        ("subject", Some(message.subject.as_str())),
        ("from.name", message.from.name.as_deref()),
        ("to.name", message.to.name.as_deref()),
    ] {
        if value.is_some_and(|v| v.chars().any(char::is_control)) {
            return Err(ComposeError::ControlCharacter(field));
        }
    }

    let mut builder = MessageBuilder::new()
        .from(address(&message.from))
        .to(address(&message.to))
        .subject(message.subject.as_str())
        .date(message.date.as_second())
        .message_id(format!("{}@{domain}", message.id));
    if message.class != MessageClass::Transactional {
        let links = message
            .list_unsubscribe
            .as_ref()
            .ok_or(ComposeError::MissingUnsubscribe(message.class.as_str()))?;
        if !is_header_safe_url(&links.url) {
            return Err(ComposeError::UnsubscribeUrl);
        }
        builder = builder
            .header(
                "List-Unsubscribe",
                URL::new_list([format!("mailto:{}", links.mailto), links.url.clone()].into_iter()),
            )
            .header(
                "List-Unsubscribe-Post",
                Raw::new("List-Unsubscribe=One-Click"),
            );
    }
    // A boundary made from the id keeps the bytes of a retried message identical. `=_` never
    // occurs in quoted-printable or base64, and a 7bit part would have to quote this message's
    // own id, which its template cannot know.
    let boundary = format!("=_nudge_{}", message.id.simple());
    let body = MimePart::new(
        ContentType::new("multipart/alternative").attribute("boundary", boundary),
        BodyPart::Multipart(vec![
            MimePart::new("text/plain", lf_lines(&message.text)),
            MimePart::new("text/html", lf_lines(&message.html)),
        ]),
    );
    let mut bytes = Vec::new();
    builder.body(body).serialize(&mut bytes);
    Ok(bytes)
}

/// mail-builder turns every LF into CRLF but writes a lone CR as it is, which RFC 5322 forbids
/// and DKIM verifiers canonicalise differently; so every line end becomes LF first.
fn lf_lines(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\r', "\n")
}

fn address(mailbox: &Mailbox) -> Address<'_> {
    match mailbox.name.as_deref().map(str::trim) {
        Some(name) if !name.is_empty() => (name, mailbox.email.as_str()).into(),
        _ => mailbox.email.as_str().into(),
    }
}

/// The URL goes between `<` and `>` in a comma-separated header, so those characters and
/// whitespace would let it end early or smuggle in a second link.
fn is_header_safe_url(url: &str) -> bool {
    let scheme_ok = url.starts_with("https://") || url.starts_with("http://");
    scheme_ok
        && url.is_ascii()
        && !url
            .chars()
            .any(|c| c.is_ascii_whitespace() || c.is_ascii_control() || "<>,\"".contains(c))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Test code: a failed step should stop the test loudly.
pub(crate) mod tests {
    use super::*;
    use mail_parser::{HeaderValue, MessageParser, MimeHeaders};

    fn email(s: &str) -> Email {
        Email::parse(s).unwrap()
    }

    /// A valid message; tests change the part they are about.
    pub(crate) fn outgoing(class: MessageClass) -> Outgoing {
        Outgoing {
            id: Uuid::from_u128(0x0190_2b5c_0000_7000_8000_0000_0000_0001),
            from: Mailbox {
                name: Some("Nudge".into()),
                email: email("news@nudge.example"),
            },
            to: Mailbox {
                name: Some("Anna".into()),
                email: email("anna@example.nl"),
            },
            return_path: email("bounces+abc123@nudge.example"),
            subject: "Hello".into(),
            html: "<p>Hello</p>".into(),
            text: "Hello".into(),
            class,
            date: "2026-01-02T03:04:05Z".parse().unwrap(),
            list_unsubscribe: Some(ListUnsubscribe {
                mailto: email("unsubscribe+abc123@nudge.example"),
                url: "https://nudge.example/unsubscribe/abc123".into(),
            }),
        }
    }

    /// The header's value, unfolded.
    fn header(message: &mail_parser::Message<'_>, name: &str) -> Option<String> {
        message
            .header_raw(name)
            .map(|raw| raw.replace("\r\n", "").trim().to_owned())
    }

    #[test]
    fn non_ascii_subjects_names_and_bodies_survive_a_round_trip() {
        let cases = [
            (
                "Één keer per week",
                "Één Lid",
                "Ëlla de Ruiter",
                "Één twee drie: ‘zó’ gaat dat.",
            ),
            (
                "Grüße, Jürgen",
                "Grüße GmbH",
                "Jürgen Groß",
                "Grüße aus Köln, lieber Jürgen!",
            ),
            ("שלום עולם", "שלום עולם", "דוד כהן", "שלום עולם, מה שלומך?"),
            (
                "Plain ASCII",
                "Nudge, \"the\" sender",
                "O'Brien, Pat",
                "Hi.\r\n\r\n-- \r\nPat",
            ),
        ];
        for (subject, from_name, to_name, body) in cases {
            let mut message = outgoing(MessageClass::Campaign);
            message.subject = subject.into();
            message.from.name = Some(from_name.into());
            message.to.name = Some(to_name.into());
            message.text = body.into();
            message.html = format!("<p>{body}</p>");
            let bytes = compose(&message).unwrap();
            assert!(
                bytes.is_ascii(),
                "{subject}: the message must be 7-bit clean"
            );
            let parsed = MessageParser::default().parse(&bytes).unwrap();
            assert_eq!(parsed.subject(), Some(subject));
            let from = parsed.from().and_then(|a| a.first()).unwrap();
            assert_eq!(from.name(), Some(from_name), "{subject}");
            assert_eq!(from.address(), Some("news@nudge.example"));
            let to = parsed.to().and_then(|a| a.first()).unwrap();
            assert_eq!(to.name(), Some(to_name), "{subject}");
            assert_eq!(parsed.body_text(0).as_deref(), Some(body), "{subject}");
            assert_eq!(
                parsed.body_html(0).as_deref(),
                Some(message.html.as_str()),
                "{subject}"
            );
        }
    }

    #[test]
    fn the_body_is_multipart_alternative_with_text_first() {
        let bytes = compose(&outgoing(MessageClass::Automation)).unwrap();
        let parsed = MessageParser::default().parse(&bytes).unwrap();
        let root = parsed.content_type().unwrap();
        assert_eq!(
            (root.ctype(), root.subtype()),
            ("multipart", Some("alternative"))
        );
        let parts: Vec<_> = parsed.parts[1..]
            .iter()
            .map(|part| part.content_type().unwrap().subtype().unwrap_or_default())
            .collect();
        assert_eq!(parts, ["plain", "html"]);
        assert_eq!(header(&parsed, "MIME-Version").as_deref(), Some("1.0"));
    }

    #[test]
    fn message_id_and_date_come_from_the_input() {
        let message = outgoing(MessageClass::Transactional);
        let bytes = compose(&message).unwrap();
        let parsed = MessageParser::default().parse(&bytes).unwrap();
        assert_eq!(
            message.message_id(),
            "<01902b5c-0000-7000-8000-000000000001@nudge.example>"
        );
        assert_eq!(header(&parsed, "Message-ID"), Some(message.message_id()));
        assert_eq!(
            parsed.date().map(|d| d.to_timestamp()),
            Some(message.date.as_second())
        );
        assert_eq!(
            compose(&message).unwrap(),
            bytes,
            "composing is deterministic"
        );
    }

    #[test]
    fn only_non_transactional_mail_gets_one_click_unsubscribe_headers() {
        let cases = [
            (MessageClass::Campaign, true),
            (MessageClass::Automation, true),
            (MessageClass::Transactional, false),
        ];
        for (class, expected) in cases {
            let bytes = compose(&outgoing(class)).unwrap();
            let parsed = MessageParser::default().parse(&bytes).unwrap();
            let unsubscribe = header(&parsed, "List-Unsubscribe");
            let post = header(&parsed, "List-Unsubscribe-Post");
            let (unsubscribe, post) = (unsubscribe.as_deref(), post.as_deref());
            if expected {
                assert_eq!(
                    unsubscribe,
                    Some(
                        "<mailto:unsubscribe+abc123@nudge.example>, \
                         <https://nudge.example/unsubscribe/abc123>"
                    ),
                    "{class:?}"
                );
                assert_eq!(post, Some("List-Unsubscribe=One-Click"), "{class:?}");
            } else {
                assert_eq!((unsubscribe, post), (None, None), "{class:?}");
            }
        }
    }

    #[test]
    fn the_return_path_is_left_to_the_envelope() {
        let message = outgoing(MessageClass::Campaign);
        let bytes = compose(&message).unwrap();
        let parsed = MessageParser::default().parse(&bytes).unwrap();
        assert_eq!(header(&parsed, "Return-Path"), None);
        assert_eq!(message.return_path.as_str(), "bounces+abc123@nudge.example");
    }

    #[test]
    fn bad_input_is_refused_with_the_field_at_fault() {
        type Change = fn(&mut Outgoing);
        let cases: &[(&str, Change, ComposeError)] = &[
            (
                "a line break in the subject",
                |m| m.subject = "Hi\r\nBcc: x@example.com".into(),
                ComposeError::ControlCharacter("subject"),
            ),
            (
                "a line break in a name",
                |m| m.to.name = Some("Anna\nBcc: x".into()),
                ComposeError::ControlCharacter("to.name"),
            ),
            (
                "a campaign without unsubscribe links",
                |m| m.list_unsubscribe = None,
                ComposeError::MissingUnsubscribe("campaign"),
            ),
            (
                "a URL that closes its angle bracket",
                |m| {
                    if let Some(l) = m.list_unsubscribe.as_mut() {
                        l.url = "https://x.example/u>, <https://evil.example".into();
                    }
                },
                ComposeError::UnsubscribeUrl,
            ),
            (
                "a javascript URL",
                |m| {
                    if let Some(l) = m.list_unsubscribe.as_mut() {
                        l.url = "javascript:alert(1)".into();
                    }
                },
                ComposeError::UnsubscribeUrl,
            ),
        ];
        for (what, change, expected) in cases {
            let mut message = outgoing(MessageClass::Campaign);
            change(&mut message);
            assert_eq!(compose(&message).as_ref(), Err(expected), "{what}");
        }
    }

    #[test]
    fn transactional_mail_needs_no_unsubscribe_links() {
        let mut message = outgoing(MessageClass::Transactional);
        message.list_unsubscribe = None;
        let parsed_ok = compose(&message).unwrap();
        let parsed = MessageParser::default().parse(&parsed_ok).unwrap();
        assert!(matches!(
            parsed.header("List-Unsubscribe"),
            None | Some(HeaderValue::Empty)
        ));
    }

    #[test]
    fn every_line_ends_in_crlf_whatever_the_bodies_use() {
        let cases = ["one\rtwo", "one\r\ntwo", "one\ntwo", "one\r\r\ntwo\n\r"];
        for body in cases {
            let mut message = outgoing(MessageClass::Campaign);
            message.text = body.into();
            message.html = format!("<pre>{body}</pre>");
            let bytes = compose(&message).unwrap();
            for (i, b) in bytes.iter().enumerate() {
                match b {
                    b'\r' => assert_eq!(bytes.get(i + 1), Some(&b'\n'), "{body:?}"),
                    b'\n' => assert_eq!(bytes[i - 1], b'\r', "{body:?}"),
                    _ => {}
                }
            }
        }
    }

    #[test]
    fn a_blank_display_name_writes_the_bare_address() {
        let mut message = outgoing(MessageClass::Transactional);
        message.to.name = Some("  ".into());
        let bytes = compose(&message).unwrap();
        let parsed = MessageParser::default().parse(&bytes).unwrap();
        assert_eq!(header(&parsed, "To").as_deref(), Some("<anna@example.nl>"));
    }
}
