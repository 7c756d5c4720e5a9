//! Rendering: one minijinja environment with the embedded templates, the `t()` function and
//! the `number`, `date` and `datetime` filters, all in the page's language (`lang` in the
//! context).
//!
//! Every template name ends in `.html`, so minijinja escapes every value it prints; nothing
//! is marked safe. Undefined values fail when printed (`SemiStrict`), so a misspelt variable
//! is an error in tests rather than a blank on a page.

use super::Failure;
use super::assets;
use super::i18n::{I18n, I18nError, LANGUAGES, format_number};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use fluent_bundle::{FluentArgs, FluentValue};
use minijinja::value::{Kwargs, ValueKind};
use minijinja::{Environment, Error, ErrorKind, State, UndefinedBehavior, Value, context};
use std::sync::{Arc, LazyLock};

pub const TEMPLATES: [(&str, &str); 20] = [
    ("layout.html", include_str!("templates/layout.html")),
    ("error.html", include_str!("templates/error.html")),
    ("login.html", include_str!("templates/login.html")),
    ("dashboard.html", include_str!("templates/dashboard.html")),
    ("contacts.html", include_str!("templates/contacts.html")),
    (
        "contacts_results.html",
        include_str!("templates/contacts_results.html"),
    ),
    ("contact.html", include_str!("templates/contact.html")),
    ("groups.html", include_str!("templates/groups.html")),
    ("fields.html", include_str!("templates/fields.html")),
    ("tags.html", include_str!("templates/tags.html")),
    ("smtp.html", include_str!("templates/smtp.html")),
    ("users.html", include_str!("templates/users.html")),
    ("dkim.html", include_str!("templates/dkim.html")),
    ("api_keys.html", include_str!("templates/api_keys.html")),
    ("messages.html", include_str!("templates/messages.html")),
    (
        "messages_results.html",
        include_str!("templates/messages_results.html"),
    ),
    ("enrolments.html", include_str!("templates/enrolments.html")),
    ("sequences.html", include_str!("templates/sequences.html")),
    ("sequence.html", include_str!("templates/sequence.html")),
    ("forms.html", include_str!("templates/forms.html")),
];

#[derive(Debug, thiserror::Error)]
pub enum UiError {
    #[error(transparent)]
    Catalogue(#[from] I18nError),
    #[error("a template does not compile: {0}")]
    Template(#[from] Error),
}

pub struct Ui {
    env: Environment<'static>,
}

/// Built on first use: the templates and catalogues are compiled into the binary, and the
/// tests load both, so a failure here means a broken build, reported as a 500 page.
static UI: LazyLock<Result<Ui, UiError>> = LazyLock::new(Ui::load);

fn ui() -> Result<&'static Ui, Failure> {
    UI.as_ref()
        .map_err(|e| Failure::Internal(format!("the admin UI did not load: {e}")))
}

/// The page's language, as the handler put it in the context.
fn lang(state: &State) -> String {
    state
        .lookup("lang")
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| LANGUAGES[0].to_owned())
}

/// A template value as a Fluent argument: numbers stay numbers, so plurals can select.
fn fluent_value(value: &Value) -> Option<FluentValue<'static>> {
    match value.kind() {
        ValueKind::Undefined | ValueKind::None => None,
        ValueKind::Number => match value.as_i64() {
            Some(i) => Some(FluentValue::from(i)),
            None => f64::try_from(value.clone()).ok().map(FluentValue::from),
        },
        _ => Some(FluentValue::from(value.to_string())),
    }
}

fn timestamp(value: &str) -> Result<jiff::Timestamp, Error> {
    value.parse().map_err(|e| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!("not a timestamp: {value}: {e}"),
        )
    })
}

impl Ui {
    fn load() -> Result<Self, UiError> {
        let i18n = Arc::new(I18n::load()?);
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
        for (name, source) in TEMPLATES {
            env.add_template(name, source)?;
        }
        let messages = Arc::clone(&i18n);
        env.add_function(
            "t",
            move |state: &State, key: &str, kwargs: Kwargs| -> Result<String, Error> {
                let mut args = FluentArgs::new();
                for name in kwargs.args() {
                    let value: Value = kwargs.get(name)?;
                    if let Some(value) = fluent_value(&value) {
                        args.set(name.to_owned(), value);
                    }
                }
                messages
                    .format(&lang(state), key, Some(&args))
                    .ok_or_else(|| {
                        Error::new(ErrorKind::UndefinedError, format!("no message `{key}`"))
                    })
            },
        );
        env.add_filter(
            "number",
            |state: &State, value: Value| -> Result<String, Error> {
                let digits = if value.as_i64().is_some() { 0 } else { 2 };
                let n = f64::try_from(value)?;
                Ok(format_number(&lang(state), n, digits))
            },
        );
        let dates = Arc::clone(&i18n);
        env.add_filter(
            "date",
            move |state: &State, value: &str| -> Result<String, Error> {
                Ok(dates.date(&lang(state), timestamp(value)?))
            },
        );
        env.add_filter(
            "datetime",
            move |state: &State, value: &str| -> Result<String, Error> {
                Ok(i18n.datetime(&lang(state), timestamp(value)?))
            },
        );
        Ok(Self { env })
    }
}

/// A record for the context: minijinja takes serde types only wrapped.
pub fn serialized<T: serde::Serialize>(value: T) -> Value {
    Value::from(minijinja::value::Serde(value))
}

/// What every page's context has: its language, the languages to switch to, and the version
/// that the static files' URLs carry.
pub fn base_context(lang: &'static str) -> Value {
    context! { lang, languages => LANGUAGES, asset_version => assets::version() }
}

pub fn render(template: &str, ctx: Value) -> Result<String, Failure> {
    Ok(ui()?.env.get_template(template)?.render(ctx)?)
}

/// A whole page (or an htmx fragment) with its status.
pub fn page(status: StatusCode, template: &str, ctx: Value) -> Result<Response, Failure> {
    Ok((status, Html(render(template, ctx)?)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::i18n::CATALOGUES;

    /// The keys of `t("...")` calls in a template, and whether each is only a prefix
    /// (`t("status-" ~ s)`).
    fn keys(source: &str) -> Vec<(String, bool)> {
        source
            .split("t(\"")
            .skip(1)
            .filter_map(|rest| {
                let (key, after) = rest.split_once('"')?;
                Some((key.to_owned(), after.trim_start().starts_with('~')))
            })
            .collect()
    }

    #[test]
    fn every_message_a_template_names_is_in_the_english_catalogue() {
        let english = CATALOGUES[0].1;
        let defined = |key: &str, prefix: bool| {
            english.lines().any(|line| {
                line.split_once(" =").is_some_and(|(id, _)| {
                    if prefix {
                        id.starts_with(key)
                    } else {
                        id == key
                    }
                })
            })
        };
        for (name, source) in TEMPLATES {
            for (key, prefix) in keys(source) {
                assert!(
                    defined(&key, prefix),
                    "{name} names `{key}`, which en.ftl lacks"
                );
            }
        }
    }

    #[test]
    fn templates_escape_what_they_print_and_number_by_language() {
        let html = render(
            "error.html",
            context! { kind => "not-found", ..base_context("de") },
        )
        .expect("the error page renders");
        assert!(html.contains("<html lang=\"de\">"));
        let ui = ui().expect("the UI loads");
        let tmpl = ui
            .env
            .template_from_named_str("probe.html", "{{ name }} {{ n | number }}")
            .expect("compiles");
        let out = tmpl
            .render(context! { lang => "nl", name => "<img src=x onerror=alert(1)>", n => 1234567 })
            .expect("renders");
        assert_eq!(out, "&lt;img src=x onerror=alert(1)&gt; 1.234.567");
    }
}
