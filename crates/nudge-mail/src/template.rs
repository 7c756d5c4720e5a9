//! User-authored templates: a subject, an HTML body and an optional text body, in Jinja syntax
//! (minijinja), checked when they are saved and rendered for one contact when a message is sent.
//!
//! # Variables
//!
//! | variable | value |
//! |---|---|
//! | `contact.first_name`, `contact.last_name` | the contact's names, or none |
//! | `contact.email` | the contact's address (always set) |
//! | `contact.language` | the contact's language code (`nl`, `de`, ...), or none |
//! | `first_name`, `last_name`, `email` | shortcuts for the three above |
//! | `fields.<key>` | every custom field defined when the template was checked, or none |
//! | `sender.name`, `sender.email` | the sending account's name and address |
//! | `unsubscribe_url`, `preferences_url` | the contact's signed links |
//! | `confirm_url` | the contact's signed double opt-in link |
//!
//! Nothing else exists: an unknown top-level name is refused at save time even in a branch the
//! sample render does not take, and any use of an undefined value (`{{ contact.frist_name }}`)
//! is an error rather than a blank in a sent mail.
//!
//! A value that is none prints as nothing. `default` (and its alias `d`) gives a fallback for a
//! value that is undefined, none or empty, so `{{ first_name | default("there") }}` greets a
//! contact without a first name, and `{{ contact.nickname | default("friend") }}` is allowed
//! although `contact` has no `nickname`. `default(x, true)` also replaces other false values.
//!
//! The HTML body is auto-escaped; the subject and the text body are not. After rendering, the
//! subject's whitespace is collapsed to single spaces (a header is one line), the CSS of the
//! HTML's `<style>` elements is inlined (remote stylesheets are never fetched), and without a
//! text template the text part is made from the HTML, with links as numbered footnotes.

use minijinja::value::{Serde, Value};
use minijinja::{AutoEscape, Environment, ErrorKind, UndefinedBehavior, context};
use nudge_core::{Contact, FieldDef, FieldErrors, FieldKey, FieldType};
use std::collections::{BTreeMap, BTreeSet};

/// Instructions one render may run: far above what a real email needs, low enough that a
/// runaway loop stops within milliseconds.
const FUEL: u64 = 100_000;
/// Nesting depth of macros and blocks.
const RECURSION_LIMIT: usize = 32;
/// Columns of the generated text part; below 80 so quoting in replies does not rewrap it.
const TEXT_WIDTH: usize = 78;

const SUBJECT: &str = "subject";
const HTML: &str = "html";
const TEXT: &str = "text";

const TOP_LEVEL: [&str; 9] = [
    "contact",
    "first_name",
    "last_name",
    "email",
    "fields",
    "sender",
    "unsubscribe_url",
    "preferences_url",
    "confirm_url",
];

/// A checked template, ready to render for any contact.
#[derive(Debug, Clone)]
pub struct Template {
    env: Environment<'static>,
    field_keys: Vec<FieldKey>,
    has_text: bool,
}

/// What a template needs to know about one message.
#[derive(Debug, Clone, Copy)]
pub struct RenderContext<'a> {
    pub contact: &'a Contact,
    pub sender_name: &'a str,
    pub sender_email: &'a str,
    pub unsubscribe_url: &'a str,
    pub preferences_url: &'a str,
    pub confirm_url: &'a str,
}

/// A rendered message: one-line subject, CSS-inlined HTML and a plain-text part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub html: String,
    pub text: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// A checked template failed for this contact, e.g. it ran out of fuel on a long field.
    #[error("{part}: {reason}")]
    Template { part: &'static str, reason: String },
    #[error("html: CSS could not be inlined: {0}")]
    Css(String),
    #[error("text: the text part could not be made from the HTML: {0}")]
    Text(String),
}

impl Template {
    /// Compiles the three parts and renders each against sample contexts holding every variable
    /// that exists at send time, so a syntax error or an undefined variable is refused now,
    /// keyed by `subject`, `html` or `text`. `fields` are the custom fields defined now.
    ///
    /// A text part that is blank counts as absent: it is then made from the HTML.
    pub fn check(
        subject: &str,
        html: &str,
        text: Option<&str>,
        fields: &[FieldDef],
    ) -> Result<Template, FieldErrors> {
        let text = text.filter(|t| !t.trim().is_empty());
        let mut env = sandbox();
        let mut errors = FieldErrors::new();
        for (part, source) in [(SUBJECT, Some(subject)), (HTML, Some(html)), (TEXT, text)] {
            let Some(source) = source else { continue };
            if source.trim().is_empty() {
                errors.add(part, "is empty");
                continue;
            }
            if let Err(err) = env.add_template_owned(part, source.to_owned()) {
                errors.add(part, describe(&err, source));
            }
        }
        let template = Template {
            env,
            field_keys: fields.iter().map(|f| f.key.clone()).collect(),
            has_text: text.is_some(),
        };
        let samples = [sample(fields, true), sample(fields, false)];
        for part in [SUBJECT, HTML, TEXT] {
            if errors.get(part).is_some() {
                continue;
            }
            let Ok(compiled) = template.env.get_template(part) else {
                continue;
            };
            if let Some(reason) = unknown_name(&template.env, &compiled) {
                errors.add(part, reason);
                continue;
            }
            for vars in &samples {
                if let Err(err) = compiled.render(vars) {
                    errors.add(part, describe(&err, compiled.source()));
                    break;
                }
            }
        }
        errors.into_result(template)
    }

    /// Renders the message for one contact.
    pub fn render(&self, ctx: &RenderContext<'_>) -> Result<Rendered, RenderError> {
        let vars = variables(&Vars {
            first_name: ctx.contact.first_name.as_deref(),
            last_name: ctx.contact.last_name.as_deref(),
            email: ctx.contact.email.as_str(),
            language: ctx.contact.language.as_deref(),
            fields: self
                .field_keys
                .iter()
                .map(|key| {
                    let value = ctx.contact.fields.get(key.as_str());
                    (key.as_str(), value.cloned().unwrap_or_default())
                })
                .collect(),
            sender_name: ctx.sender_name,
            sender_email: ctx.sender_email,
            unsubscribe_url: ctx.unsubscribe_url,
            preferences_url: ctx.preferences_url,
            confirm_url: ctx.confirm_url,
        });
        let subject = self.render_part(SUBJECT, &vars)?;
        let html = inline_css(self.render_part(HTML, &vars)?)?;
        let text = if self.has_text {
            self.render_part(TEXT, &vars)?
        } else {
            html2text::config::plain()
                .link_footnotes(true)
                .string_from_read(html.as_bytes(), TEXT_WIDTH)
                .map_err(|err| RenderError::Text(err.to_string()))?
        };
        Ok(Rendered {
            subject: subject.split_whitespace().collect::<Vec<_>>().join(" "),
            html,
            text,
        })
    }

    fn render_part(&self, part: &'static str, vars: &Value) -> Result<String, RenderError> {
        let failed = |err: minijinja::Error, source: &str| RenderError::Template {
            part,
            reason: describe(&err, source),
        };
        let compiled = self.env.get_template(part).map_err(|e| failed(e, ""))?;
        compiled
            .render(vars)
            .map_err(|err| failed(err, compiled.source()))
    }
}

fn sandbox() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_fuel(Some(FUEL));
    env.set_recursion_limit(RECURSION_LIMIT);
    // Spans let an error name the expression at fault.
    env.set_debug(true);
    env.set_auto_escape_callback(|name| {
        if name == HTML {
            AutoEscape::Html
        } else {
            AutoEscape::None
        }
    });
    env.set_formatter(|out, state, value| {
        if value.is_none() {
            Ok(())
        } else if *state.auto_escape() == AutoEscape::Html && !value.is_safe() {
            // minijinja's HTML escaping also writes `/` as `&#x2f;`, which a link to the
            // contact's unsubscribe page or to a URL in a custom field would then carry in
            // the mail as `https:&#x2f;&#x2f;…`: valid, but what spam filters call an obscured
            // link. `/` needs no escaping in text or in a quoted attribute.
            let text = match value.as_str() {
                Some(s) => escape_html(s),
                None => escape_html(&value.to_string()),
            };
            out.write_str(&text).map_err(minijinja::Error::from)
        } else {
            minijinja::escape_formatter(out, state, value)
        }
    });
    env.add_filter("default", default_filter);
    env.add_filter("d", default_filter);
    env
}

/// Jinja's `default` only replaces undefined; a contact without a first name has none (or an
/// empty string), and that is the case a fallback is written for.
fn default_filter(value: &Value, fallback: Option<Value>, boolean: Option<bool>) -> Value {
    let missing = value.is_undefined()
        || value.is_none()
        || value.as_str().is_some_and(|s| s.trim().is_empty())
        || (boolean == Some(true) && !value.is_true());
    if missing {
        fallback.unwrap_or_else(|| Value::from(""))
    } else {
        value.clone()
    }
}

fn inline_css(html: String) -> Result<String, RenderError> {
    // The inliner parses and writes the whole document again, which costs about as much as
    // rendering it; without a `<style>` element to inline or a `<link>` to drop it would only
    // reformat the markup.
    if !has_tag(&html, b"<style") && !has_tag(&html, b"<link") {
        return Ok(html);
    }
    css_inline::CSSInliner::options()
        // Templates are user input: never fetch what they link to.
        .load_remote_stylesheets(false)
        // Media queries cannot be inlined; clients that understand them still get them.
        .keep_at_rules(true)
        .build()
        .inline(&html)
        .map_err(|err| RenderError::Css(err.to_string()))
}

/// `s` with the characters that could end an element or a quoted attribute escaped.
fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

/// Whether `html` holds `tag` (lower case, with its `<`) in any case.
fn has_tag(html: &str, tag: &[u8]) -> bool {
    html.as_bytes()
        .windows(tag.len())
        .any(|w| w.eq_ignore_ascii_case(tag))
}

/// The values one render sees; `variables` turns them into the documented layout.
struct Vars<'a> {
    first_name: Option<&'a str>,
    last_name: Option<&'a str>,
    email: &'a str,
    language: Option<&'a str>,
    fields: Vec<(&'a str, serde_json::Value)>,
    sender_name: &'a str,
    sender_email: &'a str,
    unsubscribe_url: &'a str,
    preferences_url: &'a str,
    confirm_url: &'a str,
}

fn variables(vars: &Vars<'_>) -> Value {
    let fields: BTreeMap<&str, Value> = vars
        .fields
        .iter()
        .map(|(key, value)| (*key, Value::from(Serde(value))))
        .collect();
    context! {
        contact => context! {
            first_name => vars.first_name,
            last_name => vars.last_name,
            email => vars.email,
            language => vars.language,
        },
        first_name => vars.first_name,
        last_name => vars.last_name,
        email => vars.email,
        fields => fields,
        sender => context! { name => vars.sender_name, email => vars.sender_email },
        unsubscribe_url => vars.unsubscribe_url,
        preferences_url => vars.preferences_url,
        confirm_url => vars.confirm_url,
    }
}

/// A contact with every optional value set (`filled`) or none of them, so that both sides of
/// `{% if first_name %}` are rendered once at save time.
fn sample(fields: &[FieldDef], filled: bool) -> Value {
    let pick = |value: &'static str| filled.then_some(value);
    variables(&Vars {
        first_name: pick("Anna"),
        last_name: pick("de Vries"),
        email: "anna@example.com",
        language: pick("nl"),
        fields: fields
            .iter()
            .map(|field| {
                let value = if filled {
                    sample_value(field)
                } else {
                    serde_json::Value::Null
                };
                (field.key.as_str(), value)
            })
            .collect(),
        sender_name: "Sender",
        sender_email: "sender@example.com",
        unsubscribe_url: "https://example.com/unsubscribe/sample",
        preferences_url: "https://example.com/preferences/sample",
        confirm_url: "https://example.com/confirm/sample",
    })
}

/// A value of the field's type, so that `fields.score + 1` or `fields.topics | join` pass.
fn sample_value(field: &FieldDef) -> serde_json::Value {
    let first_option = field.options.first().cloned().unwrap_or_default();
    match field.kind {
        FieldType::Text => "text".into(),
        FieldType::Number => 1.into(),
        FieldType::Date => "2000-01-31".into(),
        FieldType::Boolean => true.into(),
        FieldType::Choice => first_option.into(),
        FieldType::MultiChoice => serde_json::Value::Array(vec![first_option.into()]),
    }
}

/// A top-level name that exists neither in the documented layout nor among minijinja's
/// globals (`range`, `dict`, ...). The sample renders cannot see a branch they skip; this
/// static look catches a typo there too.
fn unknown_name(env: &Environment<'_>, template: &minijinja::Template<'_, '_>) -> Option<String> {
    let globals: BTreeSet<&str> = env.globals().map(|(name, _)| name).collect();
    let mut unknown: Vec<String> = template
        .undeclared_variables(false)
        .into_iter()
        .filter(|name| !TOP_LEVEL.contains(&name.as_str()) && !globals.contains(name.as_str()))
        .collect();
    unknown.sort_by_key(|name| (line_of(template.source(), name), name.clone()));
    let name = unknown.into_iter().next()?;
    Some(match line_of(template.source(), &name) {
        Some(line) => format!("line {line}: undefined variable \"{name}\""),
        None => format!("undefined variable \"{name}\""),
    })
}

/// The line of the first use of `name` as a top-level identifier inside `{{ }}` or `{% %}`.
fn line_of(source: &str, name: &str) -> Option<usize> {
    let bytes = source.as_bytes();
    let mut i = 0;
    while i + 1 < bytes.len() {
        let close: &[u8] = match &bytes[i..i + 2] {
            b"{{" => b"}}",
            b"{%" => b"%}",
            _ => {
                i += 1;
                continue;
            }
        };
        i += 2;
        let mut previous = b' ';
        while i < bytes.len() && !bytes[i..].starts_with(close) {
            let c = bytes[i];
            if c == b'"' || c == b'\'' {
                i += 1;
                while i < bytes.len() && bytes[i] != c {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
                previous = c;
            } else if c.is_ascii_alphabetic() || c == b'_' {
                let start = i;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                if previous != b'.' && &source[start..i] == name {
                    return Some(source[..start].matches('\n').count() + 1);
                }
                previous = b'a';
            } else {
                if !c.is_ascii_whitespace() {
                    previous = c;
                }
                i += 1;
            }
        }
    }
    None
}

/// A reason a marketer can act on: the line, and for an undefined value the variable.
fn describe(err: &minijinja::Error, source: &str) -> String {
    let at = err
        .line()
        .map(|l| format!("line {l}: "))
        .unwrap_or_default();
    match err.kind() {
        ErrorKind::UndefinedError => match undefined_expression(err, source) {
            Some(name) => format!("{at}undefined variable \"{name}\""),
            None => format!("{at}undefined value"),
        },
        ErrorKind::OutOfFuel => format!("{at}the template does too much work"),
        kind => match err.detail() {
            Some(detail) => format!("{at}{kind}: {detail}"),
            None => format!("{at}{kind}"),
        },
    }
}

/// minijinja names the undefined expression in its detail (`` `contact.frist_name` is
/// undefined ``); without that, the error's span in the source is the expression.
fn undefined_expression(err: &minijinja::Error, source: &str) -> Option<String> {
    let from_detail = err.detail().and_then(|detail| {
        let (_, rest) = detail.split_once('`')?;
        let (expr, _) = rest.split_once('`')?;
        Some(expr.to_owned())
    });
    from_detail.or_else(|| {
        let range = err.range()?;
        source.get(range).map(|s| s.trim().to_owned())
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Test code: a failed step should stop the test loudly.
mod tests {
    use super::*;
    use jiff::Timestamp;
    use nudge_core::{Email, Status};
    use uuid::Uuid;

    fn fields() -> Vec<FieldDef> {
        vec![
            FieldDef::new("score", None, "number", vec![]).unwrap(),
            FieldDef::new("city", None, "text", vec![]).unwrap(),
            FieldDef::new(
                "topics",
                None,
                "multi_choice",
                vec!["news".into(), "deals".into()],
            )
            .unwrap(),
        ]
    }

    fn contact(first_name: Option<&str>, fields: &[(&str, serde_json::Value)]) -> Contact {
        Contact {
            id: Uuid::nil(),
            email: Email::parse("anna@example.nl").unwrap(),
            first_name: first_name.map(str::to_owned),
            last_name: Some("de Vries".into()),
            phone: None,
            language: Some("nl".into()),
            time_zone: None,
            owner_id: None,
            status: Status::Subscribed,
            source: None,
            consent: None,
            fields: fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect::<BTreeMap<_, _>>(),
            created_at: Timestamp::UNIX_EPOCH,
            updated_at: Timestamp::UNIX_EPOCH,
        }
    }

    fn render(template: &Template, contact: &Contact) -> Rendered {
        template
            .render(&RenderContext {
                contact,
                sender_name: "Nudge & Co",
                sender_email: "news@nudge.example",
                unsubscribe_url: "https://nudge.example/unsubscribe/t0k",
                preferences_url: "https://nudge.example/preferences/t0k?a=1&b=2",
                confirm_url: "https://nudge.example/confirm/c0n",
            })
            .unwrap()
    }

    #[test]
    fn a_template_with_a_mistake_is_refused_naming_the_part_the_line_and_the_variable() {
        let cases: &[(&str, &str, Option<&str>, &str, &str)] = &[
            (
                "Hi {{ frist_name }}",
                "<p>x</p>",
                None,
                "subject",
                "line 1: undefined variable \"frist_name\"",
            ),
            (
                "Hi",
                "<p>\n\n{{ contact.frist_name }}</p>",
                None,
                "html",
                "line 3: undefined variable \"contact.frist_name\"",
            ),
            (
                "Hi",
                "<p>x</p>",
                Some("a\nb\n{{ fields.colour }}"),
                "text",
                "line 3: undefined variable \"fields.colour\"",
            ),
            (
                "Hi",
                "{% if fields.score > 5 %}\n\n{{ frist_name }}{% endif %}",
                None,
                "html",
                "line 3: undefined variable \"frist_name\"",
            ),
            (
                "Hi",
                "{% if first_name %}ok{% else %}\n{{ sender.nmae }}{% endif %}",
                None,
                "html",
                "line 2: undefined variable \"sender.nmae\"",
            ),
            (
                "Hi {{ first_name",
                "<p>x</p>",
                None,
                "subject",
                "line 1: syntax error",
            ),
            (
                "Hi",
                "<p>\n{% if %}</p>",
                None,
                "html",
                "line 2: syntax error",
            ),
            ("  ", "<p>x</p>", None, "subject", "is empty"),
            ("Hi", "", None, "html", "is empty"),
            (
                "Hi",
                "{% for i in range(90000) %}{{ i }}{% endfor %}",
                None,
                "html",
                "line 1: the template does too much work",
            ),
            (
                "Hi",
                "{{ first_name | shout }}",
                None,
                "html",
                "line 1: unknown filter",
            ),
        ];
        for (subject, html, text, part, reason) in cases {
            let errors = Template::check(subject, html, *text, &fields()).unwrap_err();
            let got = errors.get(part).unwrap_or_else(|| panic!("{errors}"));
            assert!(
                got.starts_with(reason),
                "{subject:?} {html:?} {text:?}: got {got:?}, wanted {reason:?}"
            );
        }
    }

    #[test]
    fn every_part_at_fault_is_named_at_once() {
        let errors = Template::check("{{ a }}", "{{ b }}", Some("{{ c }}"), &[]).unwrap_err();
        let parts: Vec<&str> = errors.iter().map(|(part, _)| part).collect();
        assert_eq!(parts, ["html", "subject", "text"]);
    }

    #[test]
    fn every_documented_variable_is_accepted() {
        let subject = "{{ first_name }} {{ last_name }} {{ email }}";
        let html = "{{ contact.first_name }} {{ contact.last_name }} {{ contact.email }} \
            {{ contact.language }} {{ fields.score }} {{ fields.city }} {{ fields.topics }} \
            {{ sender.name }} {{ sender.email }} {{ unsubscribe_url }} {{ preferences_url }} \
            {% for i in range(3) %}{{ loop.index }}{% endfor %}\
            {% set x = 1 %}{{ x }}{% macro hi(n) %}{{ n }}{% endmacro %}{{ hi(first_name) }}";
        Template::check(subject, html, None, &fields()).unwrap();
    }

    #[test]
    fn fallbacks_replace_missing_null_and_empty_values() {
        let template = Template::check(
            "{{ first_name | default(\"there\") }}",
            "<p>{{ contact.first_name | default(\"there\") }}, \
             {{ contact.nickname | default(\"friend\") }}, \
             {{ fields.city | d(\"nowhere\") }}, {{ fields.score | default(0) }}, \
             {{ last_name }}{{ contact.language }}</p>",
            Some("{{ fields.score | default(\"-\", true) }}"),
            &fields(),
        )
        .unwrap();
        let cases: &[(Option<&str>, &[(&str, serde_json::Value)], &str, &str)] = &[
            (
                None,
                &[],
                "there",
                "<p>there, friend, nowhere, 0, de Vriesnl</p>",
            ),
            (
                Some(""),
                &[("city", serde_json::Value::Null)],
                "there",
                "<p>there, friend, nowhere, 0, de Vriesnl</p>",
            ),
            (
                Some("Jürgen"),
                &[("city", "Köln".into()), ("score", 7.into())],
                "Jürgen",
                "<p>Jürgen, friend, Köln, 7, de Vriesnl</p>",
            ),
        ];
        for (first_name, values, subject, html) in cases {
            let rendered = render(&template, &contact(*first_name, values));
            assert_eq!(rendered.subject, *subject, "{first_name:?}");
            assert!(
                rendered.html.contains(html),
                "{first_name:?}: {}",
                rendered.html
            );
        }
        let zero = render(&template, &contact(None, &[("score", 0.into())]));
        assert_eq!(zero.text, "-");
    }

    #[test]
    fn a_null_value_prints_as_nothing() {
        let template = Template::check("[{{ first_name }}]", "<p>x</p>", None, &[]).unwrap();
        assert_eq!(render(&template, &contact(None, &[])).subject, "[]");
    }

    #[test]
    fn html_is_escaped_and_subject_and_text_are_not() {
        let template = Template::check(
            "{{ sender.name }}",
            "<p>{{ sender.name }}</p>",
            Some("{{ sender.name }}"),
            &[],
        )
        .unwrap();
        let rendered = render(&template, &contact(None, &[]));
        assert_eq!(rendered.subject, "Nudge & Co");
        assert!(
            rendered.html.contains("<p>Nudge &amp; Co</p>"),
            "{}",
            rendered.html
        );
        assert_eq!(rendered.text, "Nudge & Co");
    }

    #[test]
    fn links_in_variables_keep_their_slashes_and_markup_is_escaped() {
        let template = Template::check(
            "s",
            "<a href=\"{{ unsubscribe_url }}\">{{ first_name }}</a>",
            None,
            &[],
        )
        .unwrap();
        let rendered = render(&template, &contact(Some("<b>\"Jo's\"</b>"), &[]));
        assert!(
            rendered.html.contains(
                "<a href=\"https://nudge.example/unsubscribe/t0k\">\
                 &lt;b&gt;&quot;Jo&#x27;s&quot;&lt;/b&gt;</a>"
            ),
            "{}",
            rendered.html
        );
    }

    #[test]
    fn the_subject_is_one_line() {
        let template =
            Template::check("Hi\n  {{ first_name }}\r\n!", "<p>x</p>", None, &[]).unwrap();
        assert_eq!(
            render(&template, &contact(Some("Anna"), &[])).subject,
            "Hi Anna !"
        );
    }

    #[test]
    fn css_is_inlined_and_remote_stylesheets_are_not_fetched() {
        let html = "<html><head><link rel=\"stylesheet\" href=\"https://tracker.example/x.css\">\
            <style>p { color: red } @media (max-width: 600px) { p { color: blue } }</style>\
            </head><body><p>Hi</p></body></html>";
        let template = Template::check("s", html, None, &[]).unwrap();
        let rendered = render(&template, &contact(None, &[]));
        assert!(
            rendered.html.contains("<p style=\"color: red;\">"),
            "{}",
            rendered.html
        );
        assert!(rendered.html.contains("@media"), "{}", rendered.html);
        assert!(
            !rendered.html.contains("tracker.example"),
            "{}",
            rendered.html
        );
    }

    #[test]
    fn html_without_style_or_link_elements_is_sent_as_rendered() {
        let html = "<p>Hi {{ first_name }}</p>";
        let template = Template::check("s", html, None, &[]).unwrap();
        let rendered = render(&template, &contact(Some("Anna"), &[]));
        assert_eq!(rendered.html, "<p>Hi Anna</p>");
        let upper = "<p>Hi</p><LINK REL=stylesheet href=\"https://tracker.example/x.css\">";
        let template = Template::check("s", upper, None, &[]).unwrap();
        let rendered = render(&template, &contact(None, &[]));
        assert!(!rendered.html.contains("tracker"), "{}", rendered.html);
    }

    #[test]
    fn without_a_text_template_the_text_is_made_from_the_html_with_link_footnotes() {
        let cases: &[(Option<&str>, &str)] = &[
            (
                None,
                "Hello Anna, [read more][1]\n\n[1]: https://nudge.example/preferences/t0k?a=1&b=2\n",
            ),
            (
                Some("   "),
                "Hello Anna, [read more][1]\n\n[1]: https://nudge.example/preferences/t0k?a=1&b=2\n",
            ),
            (Some("Plain {{ first_name }}"), "Plain Anna"),
        ];
        for (text, expected) in cases {
            let template = Template::check(
                "s",
                "<p>Hello {{ first_name }}, <a href=\"{{ preferences_url }}\">read more</a></p>",
                *text,
                &[],
            )
            .unwrap();
            assert_eq!(
                render(&template, &contact(Some("Anna"), &[])).text,
                *expected,
                "{text:?}"
            );
        }
    }

    #[test]
    fn a_field_defined_after_the_check_is_not_visible_and_a_missing_one_is_none() {
        let template = Template::check(
            "{{ fields.city | default(\"?\") }}",
            "<p>x</p>",
            None,
            &fields(),
        )
        .unwrap();
        let cases: &[(&[(&str, serde_json::Value)], &str)] = &[
            (&[("city", "Haarlem".into())], "Haarlem"),
            (&[], "?"),
            (&[("later", "x".into())], "?"),
        ];
        for (values, subject) in cases {
            assert_eq!(render(&template, &contact(None, values)).subject, *subject);
        }
    }
}
