//! The public side of forms (product.md §4): the hosted page `GET /f/{slug}`, the submission
//! endpoint `POST /f/{slug}`, the embed script `/f/{slug}/embed.js`, and the double opt-in
//! confirmation `/confirm/{token}`. No API key: anyone may submit a form.
//!
//! A submission is checked in full (`nudge_core::form::check_submission`) before anything is
//! written; a bad one is answered with a message per input and changes nothing. A filled-in
//! honeypot is answered like a success and writes nothing, so robots learn nothing. Each client
//! address may submit [`LIMIT`] times per [`WINDOW`] of the application clock.
//!
//! The hosted page and the confirmation page work without JavaScript. The embed script inserts
//! the same form into the customer's page and posts it in the background with
//! `Accept: application/json`; the POST and the script allow any origin (CORS), since the form
//! is meant to be embedded anywhere and carries no credentials.
//!
//! Mail content built here is stored and rendered later as a template (minijinja), so any text
//! a visitor typed is put into it neutralised ([`literal_html`], [`literal_text`]): a `{{` in a
//! submitted value stays text.

use crate::AppState;
use crate::api::forms::form_url;
use crate::error::AppError;
use crate::public::escape;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use jiff::{SignedDuration, Timestamp};
use nudge_core::form::{
    CheckedSubmission, FillMode, FormDef, FormFieldType, FormResponse, HONEYPOT, Target,
    check_submission,
};
use nudge_core::token::{Purpose, verify};
use nudge_core::{FieldErrors, Status};
use nudge_store::{FormRecord, FormSubmission, Group, MessageContent, StoreError};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};

/// Submissions one client address may make per [`WINDOW`].
pub const LIMIT: u32 = 10;
pub const WINDOW: SignedDuration = SignedDuration::from_secs(60);
/// Client addresses the limiter remembers at most; beyond it the stalest are forgotten.
const MAX_CLIENTS: usize = 10_000;

/// The public form and confirmation routes, with their own submission limiter.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/f/{slug}", get(form_page).post(submit).options(preflight))
        .route("/f/{slug}/embed.js", get(embed_js))
        .route("/confirm/{token}", get(confirm_page).post(confirm))
        .layer(Extension(Arc::new(RateLimiter::new(
            LIMIT,
            WINDOW,
            MAX_CLIENTS,
        ))))
}

// ---------------------------------------------------------------------------------------------
// Texts

/// The texts of the form and confirmation pages and of the confirmation mail, by language.
struct Texts {
    lang: &'static str,
    dir: &'static str,
    submit: &'static str,
    required_note: &'static str,
    groups: &'static str,
    choose: &'static str,
    errors: &'static str,
    required: &'static str,
    tick: &'static str,
    email: &'static str,
    number: &'static str,
    date: &'static str,
    choice: &'static str,
    group_choice: &'static str,
    thanks: &'static str,
    rate_limited: &'static str,
    no_form: &'static str,
    failed: &'static str,
    unsupported: &'static str,
    close: &'static str,
    honeypot: &'static str,
    confirm_title: &'static str,
    confirm_question: &'static str,
    confirm_button: &'static str,
    confirmed: &'static str,
    gone: &'static str,
    mail_subject: &'static str,
    mail_body: &'static str,
    mail_ignore: &'static str,
}

const TEXTS: [Texts; 4] = [
    Texts {
        lang: "en",
        dir: "ltr",
        submit: "Submit",
        required_note: "Fields marked * are required.",
        groups: "I would like to receive:",
        choose: "Choose…",
        errors: "Please correct the fields marked below.",
        required: "This field is required.",
        tick: "Please tick this box.",
        email: "Please enter a valid email address.",
        number: "Please enter a number.",
        date: "Please enter a date such as 2026-12-31.",
        choice: "Please choose one of the options.",
        group_choice: "Please choose from the lists shown.",
        thanks: "Thank you!",
        rate_limited: "Too many submissions from your address. Please wait a minute and try again.",
        no_form: "This form does not exist (any more).",
        failed: "Something went wrong; please try again.",
        unsupported: "The form could not be read; please try again.",
        close: "Close",
        honeypot: "Leave this field empty",
        confirm_title: "Confirm your subscription",
        confirm_question: "Please confirm that you want to receive our emails at {email}.",
        confirm_button: "Confirm",
        confirmed: "Thank you: {email} is confirmed.",
        gone: "This link is not valid (any more).",
        mail_subject: "Please confirm your subscription",
        mail_body: "Please confirm that you want to receive our emails at {email} by clicking \
                    the button below.",
        mail_ignore: "If you did not ask for this, ignore this email: you will get nothing more \
                      from us.",
    },
    Texts {
        lang: "nl",
        dir: "ltr",
        submit: "Verzenden",
        required_note: "Velden met * zijn verplicht.",
        groups: "Ik wil graag ontvangen:",
        choose: "Maak een keuze…",
        errors: "Verbeter de hieronder gemarkeerde velden.",
        required: "Dit veld is verplicht.",
        tick: "Vink dit vakje aan.",
        email: "Vul een geldig e-mailadres in.",
        number: "Vul een getal in.",
        date: "Vul een datum in, zoals 2026-12-31.",
        choice: "Kies een van de mogelijkheden.",
        group_choice: "Kies uit de getoonde lijsten.",
        thanks: "Dank u wel!",
        rate_limited: "Te veel inzendingen vanaf uw adres. Wacht een minuut en probeer het \
                       opnieuw.",
        no_form: "Dit formulier bestaat niet (meer).",
        failed: "Er ging iets mis; probeer het opnieuw.",
        unsupported: "Het formulier kon niet worden gelezen; probeer het opnieuw.",
        close: "Sluiten",
        honeypot: "Laat dit veld leeg",
        confirm_title: "Inschrijving bevestigen",
        confirm_question: "Bevestig dat u onze e-mails wilt ontvangen op {email}.",
        confirm_button: "Bevestigen",
        confirmed: "Dank u wel: {email} is bevestigd.",
        gone: "Deze link is niet (meer) geldig.",
        mail_subject: "Bevestig uw inschrijving",
        mail_body: "Bevestig met de knop hieronder dat u onze e-mails wilt ontvangen op {email}.",
        mail_ignore: "Heeft u hier niet om gevraagd? Negeer dan deze e-mail: u ontvangt verder \
                      niets van ons.",
    },
    Texts {
        lang: "de",
        dir: "ltr",
        submit: "Absenden",
        required_note: "Mit * markierte Felder sind Pflichtfelder.",
        groups: "Ich möchte erhalten:",
        choose: "Bitte wählen…",
        errors: "Bitte korrigieren Sie die markierten Felder.",
        required: "Dieses Feld ist erforderlich.",
        tick: "Bitte kreuzen Sie dieses Kästchen an.",
        email: "Bitte geben Sie eine gültige E-Mail-Adresse ein.",
        number: "Bitte geben Sie eine Zahl ein.",
        date: "Bitte geben Sie ein Datum wie 2026-12-31 ein.",
        choice: "Bitte wählen Sie eine der Möglichkeiten.",
        group_choice: "Bitte wählen Sie aus den angezeigten Listen.",
        thanks: "Vielen Dank!",
        rate_limited: "Zu viele Anmeldungen von Ihrer Adresse. Bitte warten Sie eine Minute und \
                       versuchen Sie es erneut.",
        no_form: "Dieses Formular gibt es nicht (mehr).",
        failed: "Etwas ist schiefgegangen; bitte versuchen Sie es erneut.",
        unsupported: "Das Formular konnte nicht gelesen werden; bitte versuchen Sie es erneut.",
        close: "Schließen",
        honeypot: "Dieses Feld leer lassen",
        confirm_title: "Anmeldung bestätigen",
        confirm_question: "Bitte bestätigen Sie, dass Sie unsere E-Mails an {email} erhalten \
                           möchten.",
        confirm_button: "Bestätigen",
        confirmed: "Vielen Dank: {email} ist bestätigt.",
        gone: "Dieser Link ist nicht (mehr) gültig.",
        mail_subject: "Bitte bestätigen Sie Ihre Anmeldung",
        mail_body: "Bitte bestätigen Sie mit dem Knopf unten, dass Sie unsere E-Mails an {email} \
                    erhalten möchten.",
        mail_ignore: "Wenn Sie das nicht angefordert haben, ignorieren Sie diese E-Mail: Sie \
                      erhalten dann nichts mehr von uns.",
    },
    Texts {
        lang: "he",
        dir: "rtl",
        submit: "שליחה",
        required_note: "שדות המסומנים ב-* הם שדות חובה.",
        groups: "אני מעוניין/ת לקבל:",
        choose: "בחירה…",
        errors: "נא לתקן את השדות המסומנים.",
        required: "זהו שדה חובה.",
        tick: "נא לסמן תיבה זו.",
        email: "נא להזין כתובת דוא\"ל תקינה.",
        number: "נא להזין מספר.",
        date: "נא להזין תאריך כגון 2026-12-31.",
        choice: "נא לבחור אחת מהאפשרויות.",
        group_choice: "נא לבחור מהרשימות המוצגות.",
        thanks: "תודה!",
        rate_limited: "יותר מדי שליחות מהכתובת שלך. נא להמתין דקה ולנסות שוב.",
        no_form: "טופס זה אינו קיים (עוד).",
        failed: "משהו השתבש; נא לנסות שוב.",
        unsupported: "לא ניתן היה לקרוא את הטופס; נא לנסות שוב.",
        close: "סגירה",
        honeypot: "יש להשאיר שדה זה ריק",
        confirm_title: "אישור הרשמה",
        confirm_question: "נא לאשר שברצונך לקבל את הודעות הדוא\"ל שלנו בכתובת {email}.",
        confirm_button: "אישור",
        confirmed: "תודה: הכתובת {email} אושרה.",
        gone: "הקישור אינו תקף (עוד).",
        mail_subject: "נא לאשר את ההרשמה",
        mail_body: "נא ללחוץ על הכפתור שלמטה כדי לאשר שברצונך לקבל את הודעות הדוא\"ל שלנו \
                    בכתובת {email}.",
        mail_ignore: "אם לא ביקשת זאת, אפשר להתעלם מהודעה זו: לא יישלח אליך דבר נוסף.",
    },
];

/// The texts for a language tag (`nl-BE`, `iw`), if it is one of ours.
fn texts_for(tag: &str) -> Option<&'static Texts> {
    let primary = tag.trim().split(['-', '_']).next()?.to_ascii_lowercase();
    let primary = if primary == "iw" { "he" } else { &primary };
    TEXTS.iter().find(|t| t.lang == primary)
}

fn english() -> &'static Texts {
    &TEXTS[0]
}

/// The browser's most preferred language we have texts for (`Accept-Language`, by `q`).
fn browser_texts(headers: &HeaderMap) -> Option<&'static Texts> {
    let header = headers.get(header::ACCEPT_LANGUAGE)?.to_str().ok()?;
    let mut tags: Vec<(f32, &str)> = header
        .split(',')
        .filter_map(|part| {
            let mut pieces = part.split(';');
            let tag = pieces.next()?.trim();
            let q = match pieces.find_map(|p| p.trim().strip_prefix("q=")) {
                Some(q) => q.trim().parse::<f32>().ok()?,
                None => 1.0,
            };
            (q > 0.0).then_some((q, tag))
        })
        .collect();
    // Stable: equally preferred tags keep the order the browser gave.
    tags.sort_by(|a, b| b.0.total_cmp(&a.0));
    tags.iter().find_map(|(_, tag)| texts_for(tag))
}

/// The language of a form's page: a hidden field that fills `language` says it (the form is
/// written in it); otherwise the browser's, else English.
fn page_texts(form: &FormDef, headers: &HeaderMap) -> &'static Texts {
    form.fields
        .iter()
        .find(|f| f.kind == FormFieldType::Hidden && f.maps_to == Some(Target::Language))
        .and_then(|f| f.value.as_deref())
        .and_then(texts_for)
        .or_else(|| browser_texts(headers))
        .unwrap_or_else(english)
}

/// The language a submission chose, if it has a field that fills `language`.
fn submitted_language(checked: &CheckedSubmission) -> Option<(&str, FillMode)> {
    checked.sets.iter().find_map(|(target, value, mode)| {
        (*target == Target::Language)
            .then(|| value.as_str().map(|v| (v, *mode)))
            .flatten()
    })
}

// ---------------------------------------------------------------------------------------------
// Pages

const PAGE_CSS: &str = "body{font-family:system-ui,-apple-system,\"Segoe UI\",Roboto,sans-serif;\
    max-width:34rem;margin:3rem auto;padding:0 1rem;line-height:1.5;color:#1f2328;\
    background:#fff}h1{font-size:1.6rem;line-height:1.25}\
    main>form>button,main>p>button{font:inherit;padding:.5rem 1.25rem;border:0;\
    border-radius:.375rem;background:#1f6feb;color:#fff;cursor:pointer}";

/// The form's own styles, scoped by class so that they also hold inside a customer's page.
const FORM_CSS: &str = ".nudge-form{font-family:system-ui,-apple-system,\"Segoe UI\",Roboto,\
    sans-serif;max-width:34rem;line-height:1.5;color:#1f2328}\
    .nudge-form .nudge-field{margin:0 0 1rem;padding:0;border:0}\
    .nudge-form label,.nudge-form legend{display:block;font-weight:600;margin:0 0 .25rem;padding:0}\
    .nudge-form .nudge-check,.nudge-form .nudge-option{display:flex;gap:.5rem;\
    align-items:baseline}.nudge-form .nudge-check label,.nudge-form .nudge-option{\
    font-weight:400}.nudge-form input[type=text],.nudge-form input[type=email],\
    .nudge-form input[type=tel],.nudge-form input[type=date],.nudge-form select{\
    box-sizing:border-box;width:100%;font:inherit;padding:.5rem;border:1px solid #8c959f;\
    border-radius:.375rem;background:#fff;color:inherit}\
    .nudge-form input:focus-visible,.nudge-form select:focus-visible,\
    .nudge-form button:focus-visible{outline:2px solid #1f6feb;outline-offset:2px}\
    .nudge-form [aria-invalid=true]{border-color:#cf222e}\
    .nudge-form .nudge-req,.nudge-form .nudge-error,.nudge-form .nudge-summary{color:#cf222e}\
    .nudge-form .nudge-error{margin:.25rem 0 0;font-weight:400}\
    .nudge-form .nudge-note{color:#59636e;font-size:.9em}\
    .nudge-form button{font:inherit;padding:.5rem 1.25rem;border:0;border-radius:.375rem;\
    background:#1f6feb;color:#fff;cursor:pointer}.nudge-form button:disabled{opacity:.6}\
    .nudge-hp{position:absolute!important;left:-10000px!important;width:1px;height:1px;\
    overflow:hidden}.nudge-dialog{max-width:28rem;border:0;border-radius:.5rem;padding:1.5rem;\
    font-family:system-ui,-apple-system,\"Segoe UI\",Roboto,sans-serif;line-height:1.5;\
    box-shadow:0 8px 32px rgba(0,0,0,.25)}.nudge-dialog p{white-space:pre-line;margin-top:0}\
    .nudge-dialog button{font:inherit;padding:.5rem 1.25rem;border:0;border-radius:.375rem;\
    background:#1f6feb;color:#fff;cursor:pointer}";

/// A whole page; `body` is already escaped HTML.
fn page(status: StatusCode, t: &Texts, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"{lang}\" dir=\"{dir}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><style>{PAGE_CSS}{FORM_CSS}</style></head>\
         <body><main><h1>{title}</h1>{body}</main></body></html>\n",
        lang = t.lang,
        dir = t.dir,
        title = escape(title),
    );
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        html,
    )
        .into_response()
}

/// Escaped text as paragraphs, a line break kept.
fn paragraphs(text: &str) -> String {
    text.split("\n\n")
        .map(|p| format!("<p>{}</p>", escape(p.trim()).replace('\n', "<br>")))
        .collect()
}

/// What a visitor entered, to show the form again with it and the reasons it was refused.
struct Entered<'a> {
    values: &'a BTreeMap<String, Vec<String>>,
    groups: &'a [String],
    errors: &'a BTreeMap<String, String>,
}

fn truthy(s: &str) -> bool {
    matches!(
        s.trim().to_ascii_lowercase().as_str(),
        "on" | "true" | "1" | "yes"
    )
}

/// The `<form>` element of a form: labelled inputs, the group checkboxes, the honeypot and the
/// button. The hosted page posts it to itself; the embed script sets its `action`.
fn form_html(form: &FormDef, groups: &[Group], t: &Texts, entered: Option<&Entered<'_>>) -> String {
    let no_errors = BTreeMap::new();
    let errors = entered.map_or(&no_errors, |e| e.errors);
    let first = |name: &str| -> Option<&str> {
        entered
            .and_then(|e| e.values.get(name))
            .and_then(|v| v.first())
            .map(String::as_str)
    };
    let all = |name: &str| -> Vec<&str> {
        entered
            .and_then(|e| e.values.get(name))
            .map(|v| v.iter().map(|s| s.trim()).collect())
            .unwrap_or_default()
    };
    let prefix = format!("nudge-{}", form.slug);
    let mut out = format!(
        "<form class=\"nudge-form\" method=\"post\" lang=\"{}\" dir=\"{}\">",
        t.lang, t.dir
    );
    // A group deleted since the form was saved is no longer offered.
    let choices: Vec<&Group> = form
        .group_choices
        .iter()
        .filter_map(|id| groups.iter().find(|g| g.id == *id))
        .collect();
    // Reasons for inputs the visitor cannot see (a hidden field) go into the summary.
    let shown: Vec<&str> = form
        .fields
        .iter()
        .filter(|f| f.kind != FormFieldType::Hidden)
        .map(|f| f.name.as_str())
        .chain((!choices.is_empty()).then_some("groups"))
        .collect();
    out.push_str("<div class=\"nudge-summary\" role=\"alert\">");
    if !errors.is_empty() {
        out.push_str(&format!("<p>{}</p>", escape(t.errors)));
        for (name, reason) in errors {
            if !shown.contains(&name.as_str()) {
                out.push_str(&format!("<p>{}</p>", escape(reason)));
            }
        }
    }
    out.push_str("</div>");
    if form
        .fields
        .iter()
        .any(|f| f.required && !matches!(f.kind, FormFieldType::Hidden | FormFieldType::Boolean))
    {
        out.push_str(&format!(
            "<p class=\"nudge-note\">{}</p>",
            escape(t.required_note)
        ));
    }
    for field in &form.fields {
        let id = format!("{prefix}-{}", field.name);
        let error_id = format!("{id}-error");
        let name = escape(&field.name);
        let required = field.required && field.kind != FormFieldType::Boolean;
        let mark = if required {
            " <span class=\"nudge-req\" aria-hidden=\"true\">*</span>"
        } else {
            ""
        };
        let req_attr = if required { " required" } else { "" };
        let error = errors.get(&field.name);
        let invalid = if error.is_some() {
            format!(" aria-invalid=\"true\" aria-describedby=\"{error_id}\"")
        } else {
            String::new()
        };
        let error_html = error.map_or(String::new(), |reason| {
            format!(
                "<p class=\"nudge-error\" id=\"{error_id}\">{}</p>",
                escape(reason)
            )
        });
        let label = escape(&field.label);
        let open = |class: &str, tag: &str, extra: &str| {
            format!(
                "<{tag} class=\"{class}\" data-nudge-field=\"{name}\" \
                 data-nudge-error=\"{error_id}\"{extra}>"
            )
        };
        let value_attr = |value: Option<&str>| {
            value.map_or(String::new(), |v| format!(" value=\"{}\"", escape(v)))
        };
        match field.kind {
            FormFieldType::Hidden => {
                let value = first(&field.name).or(field.value.as_deref());
                out.push_str(&format!(
                    "<input type=\"hidden\" name=\"{name}\"{}>",
                    value_attr(value)
                ));
            }
            FormFieldType::Boolean | FormFieldType::Consent => {
                let checked = if first(&field.name).is_some_and(truthy) {
                    " checked"
                } else {
                    ""
                };
                out.push_str(&open("nudge-field nudge-check", "div", ""));
                out.push_str(&format!(
                    "<input type=\"checkbox\" id=\"{id}\" name=\"{name}\" value=\"on\"\
                     {checked}{req_attr}{invalid}><label for=\"{id}\">{label}{mark}</label>\
                     {error_html}</div>"
                ));
            }
            FormFieldType::Choice => {
                let current = first(&field.name).map(str::trim);
                out.push_str(&open("nudge-field", "div", ""));
                out.push_str(&format!(
                    "<label for=\"{id}\">{label}{mark}</label><select id=\"{id}\" \
                     name=\"{name}\"{req_attr}{invalid}><option value=\"\">{}</option>",
                    escape(t.choose)
                ));
                for option in &field.options {
                    let selected = if current == Some(option.as_str()) {
                        " selected"
                    } else {
                        ""
                    };
                    let option = escape(option);
                    out.push_str(&format!(
                        "<option value=\"{option}\"{selected}>{option}</option>"
                    ));
                }
                out.push_str(&format!("</select>{error_html}</div>"));
            }
            FormFieldType::MultiChoice => {
                let current = all(&field.name);
                let described = if error.is_some() {
                    format!(" aria-describedby=\"{error_id}\"")
                } else {
                    String::new()
                };
                out.push_str(&open("nudge-field", "fieldset", &described));
                out.push_str(&format!("<legend>{label}{mark}</legend>"));
                for option in &field.options {
                    let checked = if current.contains(&option.as_str()) {
                        " checked"
                    } else {
                        ""
                    };
                    out.push_str(&format!(
                        "<label class=\"nudge-option\"><input type=\"checkbox\" name=\"{name}\" \
                         value=\"{}\"{checked}> {}</label>",
                        escape(option),
                        escape(option)
                    ));
                }
                out.push_str(&format!("{error_html}</fieldset>"));
            }
            FormFieldType::Email
            | FormFieldType::Text
            | FormFieldType::Number
            | FormFieldType::Date => {
                let (kind, extra) = match (field.kind, &field.maps_to) {
                    (FormFieldType::Email, _) => ("email", " autocomplete=\"email\""),
                    (FormFieldType::Number, _) => ("text", " inputmode=\"decimal\""),
                    (FormFieldType::Date, _) => ("date", ""),
                    (_, Some(Target::FirstName)) => ("text", " autocomplete=\"given-name\""),
                    (_, Some(Target::LastName)) => ("text", " autocomplete=\"family-name\""),
                    (_, Some(Target::Phone)) => ("tel", " autocomplete=\"tel\""),
                    _ => ("text", ""),
                };
                out.push_str(&open("nudge-field", "div", ""));
                out.push_str(&format!(
                    "<label for=\"{id}\">{label}{mark}</label><input type=\"{kind}\" \
                     id=\"{id}\" name=\"{name}\"{}{extra}{req_attr}{invalid}>{error_html}</div>",
                    value_attr(first(&field.name))
                ));
            }
        }
    }
    if !choices.is_empty() {
        let error_id = format!("{prefix}-groups-error");
        let error = errors.get("groups");
        let described = if error.is_some() {
            format!(" aria-describedby=\"{error_id}\"")
        } else {
            String::new()
        };
        out.push_str(&format!(
            "<fieldset class=\"nudge-field\" data-nudge-field=\"groups\" \
             data-nudge-error=\"{error_id}\"{described}><legend>{}</legend>",
            escape(t.groups)
        ));
        let checked_groups = entered.map_or(&[][..], |e| e.groups);
        for group in choices {
            let id = group.id.to_string();
            let checked = if checked_groups.iter().any(|g| g.trim() == id) {
                " checked"
            } else {
                ""
            };
            out.push_str(&format!(
                "<label class=\"nudge-option\"><input type=\"checkbox\" name=\"groups\" \
                 value=\"{id}\"{checked}> {}</label>",
                escape(&group.name)
            ));
        }
        if let Some(reason) = error {
            out.push_str(&format!(
                "<p class=\"nudge-error\" id=\"{error_id}\">{}</p>",
                escape(reason)
            ));
        }
        out.push_str("</fieldset>");
    }
    out.push_str(&format!(
        "<div class=\"nudge-hp\" aria-hidden=\"true\"><label for=\"{prefix}-{HONEYPOT}\">{}</label>\
         <input type=\"text\" id=\"{prefix}-{HONEYPOT}\" name=\"{HONEYPOT}\" value=\"\" \
         tabindex=\"-1\" autocomplete=\"off\"></div>\
         <p><button type=\"submit\">{}</button></p></form>",
        escape(t.honeypot),
        escape(t.submit)
    ));
    out
}

fn failure(e: StoreError, t: &Texts) -> Response {
    tracing::error!(error = %e, "a public form page failed");
    page(
        StatusCode::INTERNAL_SERVER_ERROR,
        t,
        t.failed,
        &format!("<p>{}</p>", escape(t.failed)),
    )
}

fn no_form_page(t: &Texts) -> Response {
    page(
        StatusCode::NOT_FOUND,
        t,
        t.no_form,
        &format!("<p>{}</p>", escape(t.no_form)),
    )
}

/// The hosted page of a form.
pub async fn form_page(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
) -> Response {
    let browser = browser_texts(&headers).unwrap_or_else(english);
    let form = match state.store.form_by_slug(&slug).await {
        Ok(form) => form,
        Err(StoreError::NotFound) => return no_form_page(browser),
        Err(e) => return failure(e, browser),
    };
    let t = page_texts(&form.def, &headers);
    let groups = match state.store.list_groups().await {
        Ok(groups) => groups,
        Err(e) => return failure(e, t),
    };
    page(
        StatusCode::OK,
        t,
        &form.def.name,
        &form_html(&form.def, &groups, t, None),
    )
}

// ---------------------------------------------------------------------------------------------
// Submissions

/// The client's address, when the server was started with connect info (`nudge serve` is);
/// without it every request counts as one client.
pub struct ClientIp(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}

/// A fixed window of submissions per client, on the application clock, remembering a bounded
/// number of clients. An IPv6 client counts by its /64, the block one host usually holds.
pub struct RateLimiter {
    limit: u32,
    window: SignedDuration,
    max_clients: usize,
    clients: Mutex<HashMap<Option<IpAddr>, (Timestamp, u32)>>,
}

impl RateLimiter {
    pub fn new(limit: u32, window: SignedDuration, max_clients: usize) -> Self {
        Self {
            limit,
            window,
            max_clients: max_clients.max(1),
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a submission; `Err` with the seconds to wait when the client is over its limit.
    pub fn check(&self, ip: Option<IpAddr>, now: Timestamp) -> Result<(), u64> {
        let key = ip.map(|ip| match ip {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
            },
            v4 => v4,
        });
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        // Saturating: a clock moved to the end of time must not panic.
        let end = |start: Timestamp| start.checked_add(self.window).unwrap_or(Timestamp::MAX);
        let live = |start: Timestamp| start <= now && now < end(start);
        if !clients.contains_key(&key) && clients.len() >= self.max_clients {
            clients.retain(|_, (start, _)| live(*start));
            if clients.len() >= self.max_clients
                && let Some(stalest) = clients
                    .iter()
                    .min_by_key(|(_, (start, _))| *start)
                    .map(|(k, _)| *k)
            {
                clients.remove(&stalest);
            }
        }
        let entry = clients.entry(key).or_insert((now, 0));
        if !live(entry.0) {
            *entry = (now, 0);
        }
        if entry.1 >= self.limit {
            let wait = end(entry.0).duration_since(now).as_secs().max(1);
            return Err(u64::try_from(wait).unwrap_or(1));
        }
        entry.1 += 1;
        Ok(())
    }
}

/// A submission as posted: values by input name, the checked groups and the honeypot.
#[derive(Debug, Default, PartialEq)]
struct Posted {
    values: BTreeMap<String, Vec<String>>,
    groups: Vec<String>,
    honeypot: bool,
}

/// Why a body could not be read as a submission.
#[derive(Debug)]
enum BodyError {
    /// Neither form-encoded nor JSON.
    Unsupported,
    Json(AppError),
}

fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

fn is_json(content_type: &str) -> bool {
    content_type == "application/json" || content_type.ends_with("+json")
}

fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| {
            let accept = accept.to_ascii_lowercase();
            accept.contains("application/json") || accept.contains("+json")
        })
}

fn parse_body(content_type: &str, body: &[u8]) -> Result<Posted, BodyError> {
    let mut posted = Posted::default();
    if is_json(content_type) {
        let object: serde_json::Map<String, Value> =
            crate::extract::parse_json(body).map_err(BodyError::Json)?;
        let mut errors = FieldErrors::new();
        for (name, value) in object {
            let Some(texts) = scalars(&value) else {
                errors.add(
                    &name,
                    "must be a text, a number, true or false, or a list of them",
                );
                continue;
            };
            if name == "groups" {
                posted.groups = texts;
            } else if name == HONEYPOT {
                posted.honeypot = texts.iter().any(|t| !t.trim().is_empty());
            } else {
                posted.values.insert(name, texts);
            }
        }
        if !errors.is_empty() {
            return Err(BodyError::Json(AppError::validation(errors)));
        }
        return Ok(posted);
    }
    if !(content_type.is_empty() || content_type == "application/x-www-form-urlencoded") {
        return Err(BodyError::Unsupported);
    }
    for (name, value) in form_urlencoded::parse(body) {
        if name == "groups" {
            posted.groups.push(value.into_owned());
        } else if name == HONEYPOT {
            posted.honeypot |= !value.trim().is_empty();
        } else {
            posted
                .values
                .entry(name.into_owned())
                .or_default()
                .push(value.into_owned());
        }
    }
    Ok(posted)
}

/// A JSON value as the texts a form would post for it; `None` for an object or a nested list.
fn scalars(value: &Value) -> Option<Vec<String>> {
    fn one(value: &Value) -> Option<String> {
        match value {
            Value::String(s) => Some(s.clone()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }
    match value {
        Value::Null => Some(vec![]),
        Value::Array(items) => items.iter().map(one).collect(),
        other => one(other).map(|s| vec![s]),
    }
}

/// The core's reasons in the visitor's language, keyed by input name. A reason without a
/// translation (a custom field's own rule) stays as the core gave it.
fn localize(form: &FormDef, errors: FieldErrors, t: &Texts) -> BTreeMap<String, String> {
    errors
        .into_map()
        .into_iter()
        .map(|(name, reason)| {
            let kind = form.fields.iter().find(|f| f.name == name).map(|f| f.kind);
            let text = match (reason.as_str(), kind) {
                ("is required", _) => t.required,
                ("must be ticked", _) => t.tick,
                (_, Some(FormFieldType::Email)) => t.email,
                ("is not a number", _) => t.number,
                (r, _) if r.starts_with("is not a date") => t.date,
                (r, Some(FormFieldType::Choice | FormFieldType::MultiChoice))
                    if r.ends_with("is not one of the choices") =>
                {
                    t.choice
                }
                _ if name == "groups" => t.group_choice,
                _ => return (name, reason),
            };
            (name, text.to_owned())
        })
        .collect()
}

/// The store names a refused contact attribute (`first_name`, `fields.score`); the visitor
/// knows the input that fills it.
fn by_input_name(form: &FormDef, errors: FieldErrors) -> FieldErrors {
    let mut out = FieldErrors::new();
    for (key, reason) in errors.iter() {
        let input = form
            .fields
            .iter()
            .find(|f| f.maps_to.as_ref().is_some_and(|t| t.to_string() == key))
            .map_or(key, |f| f.name.as_str());
        out.add(input, reason);
    }
    out
}

fn cors(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    response
}

/// The CORS preflight of a submission from another site.
pub async fn preflight() -> Response {
    (
        StatusCode::NO_CONTENT,
        [
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
            (header::ACCESS_CONTROL_ALLOW_METHODS, "GET, POST, OPTIONS"),
            (
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                "Content-Type, Accept, Accept-Language",
            ),
            (header::ACCESS_CONTROL_MAX_AGE, "86400"),
        ],
    )
        .into_response()
}

/// The answer to a submission, HTML or JSON as the client asked.
struct Answer<'a> {
    json: bool,
    t: &'static Texts,
    form: Option<&'a FormRecord>,
}

impl Answer<'_> {
    fn error(&self, status: StatusCode, code: &'static str, message: &str) -> Response {
        if self.json {
            return AppError::new(status, code, message).into_response();
        }
        let title = self.form.map_or(message, |f| f.def.name.as_str());
        page(
            status,
            self.t,
            title,
            &format!("<p>{}</p>", escape(message)),
        )
    }

    fn failure(&self, e: StoreError) -> Response {
        if self.json {
            return AppError::from(e).into_response();
        }
        failure(e, self.t)
    }

    fn rate_limited(&self, wait: u64) -> Response {
        let mut response = self.error(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            self.t.rate_limited,
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(wait));
        response
    }

    /// 422 with a reason per input; the page shows the form again as it was filled in.
    async fn invalid(
        &self,
        state: &AppState,
        form: &FormRecord,
        posted: &Posted,
        errors: FieldErrors,
    ) -> Response {
        let errors = localize(&form.def, errors, self.t);
        if self.json {
            return AppError {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                code: "validation_failed",
                message: self.t.errors.to_owned(),
                fields: Some(errors),
            }
            .into_response();
        }
        let groups = match state.store.list_groups().await {
            Ok(groups) => groups,
            Err(e) => return failure(e, self.t),
        };
        let entered = Entered {
            values: &posted.values,
            groups: &posted.groups,
            errors: &errors,
        };
        page(
            StatusCode::UNPROCESSABLE_ENTITY,
            self.t,
            &form.def.name,
            &form_html(&form.def, &groups, self.t, Some(&entered)),
        )
    }

    /// What the form says to answer a good submission with.
    fn success(&self, form: &FormRecord) -> Response {
        match (&form.def.response, self.json) {
            (FormResponse::Message(message), true) => {
                Json(json!({"ok": true, "message": message})).into_response()
            }
            (FormResponse::Redirect(url), true) => {
                Json(json!({"ok": true, "message": self.t.thanks, "redirect_url": url}))
                    .into_response()
            }
            (FormResponse::Message(message), false) => page(
                StatusCode::OK,
                self.t,
                &form.def.name,
                &format!(
                    "<div class=\"nudge-thanks\" role=\"status\">{}</div>",
                    paragraphs(message)
                ),
            ),
            (FormResponse::Redirect(url), false) => match location(url) {
                Some(location) => {
                    (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response()
                }
                None => page(
                    StatusCode::OK,
                    self.t,
                    &form.def.name,
                    &format!("<p role=\"status\">{}</p>", escape(self.t.thanks)),
                ),
            },
        }
    }
}

/// A `Location` header is ASCII: other bytes go percent-encoded, which browsers read back as
/// the same URL.
fn location(url: &str) -> Option<HeaderValue> {
    let ascii: String = url
        .bytes()
        .map(|b| {
            if b.is_ascii_graphic() {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    HeaderValue::from_str(&ascii).ok()
}

/// `POST /f/{slug}`: form-encoded (the hosted page, the embed script) or JSON.
pub async fn submit(
    State(state): State<AppState>,
    Extension(limiter): Extension<Arc<RateLimiter>>,
    ClientIp(ip): ClientIp,
    Path(slug): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let content_type = content_type(&headers);
    let mut answer = Answer {
        json: is_json(&content_type) || wants_json(&headers),
        t: browser_texts(&headers).unwrap_or_else(english),
        form: None,
    };
    let now = state.clock.now();
    // Counted before any lookup, so that a flood costs the database nothing.
    if let Err(wait) = limiter.check(ip, now) {
        return cors(answer.rate_limited(wait));
    }
    let form = match state.store.form_by_slug(&slug).await {
        Ok(form) => form,
        Err(StoreError::NotFound) => {
            return cors(answer.error(StatusCode::NOT_FOUND, "not_found", answer.t.no_form));
        }
        Err(e) => return cors(answer.failure(e)),
    };
    answer.t = page_texts(&form.def, &headers);
    answer.form = Some(&form);
    let response = match parse_body(&content_type, &body) {
        Ok(posted) => accept(&state, &answer, &form, &posted, ip, now).await,
        // A JSON body is always answered in JSON.
        Err(BodyError::Json(e)) => e.into_response(),
        Err(BodyError::Unsupported) => answer.error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            if answer.json {
                "send application/x-www-form-urlencoded or application/json"
            } else {
                answer.t.unsupported
            },
        ),
    };
    cors(response)
}

/// Checks a posted submission and applies it.
async fn accept(
    state: &AppState,
    answer: &Answer<'_>,
    form: &FormRecord,
    posted: &Posted,
    ip: Option<IpAddr>,
    now: Timestamp,
) -> Response {
    if posted.honeypot {
        tracing::info!(form = %form.def.slug, "a submission filled in the honeypot; ignored");
        return answer.success(form);
    }
    let defs = match state.store.list_fields().await {
        Ok(defs) => defs,
        Err(e) => return answer.failure(e),
    };
    let checked = match check_submission(&form.def, &defs, &posted.values, &posted.groups) {
        Ok(checked) => checked,
        Err(errors) => return answer.invalid(state, form, posted, errors).await,
    };
    let groups = match state.store.list_groups().await {
        Ok(groups) => groups,
        Err(e) => return answer.failure(e),
    };
    let mail_texts = match mail_language(state, &checked).await {
        Ok(language) => language
            .as_deref()
            .and_then(texts_for)
            .unwrap_or_else(english),
        Err(e) => return answer.failure(e),
    };
    let answer = Answer {
        t: submitted_language(&checked)
            .and_then(|(lang, _)| texts_for(lang))
            .unwrap_or(answer.t),
        ..*answer
    };
    let submission = FormSubmission {
        form_id: form.id,
        confirmation: confirmation(mail_texts),
        notification: notification(form, &groups, posted, &checked, ip, now),
        submission: checked,
        ip: ip.map(|ip| ip.to_string()),
    };
    match state.store.submit_form(submission, now).await {
        Ok(_) => {
            state.wake_workers();
            answer.success(form)
        }
        Err(StoreError::Invalid(errors)) => {
            answer
                .invalid(state, form, posted, by_input_name(&form.def, errors))
                .await
        }
        Err(StoreError::NotFound) => {
            answer.error(StatusCode::NOT_FOUND, "not_found", answer.t.no_form)
        }
        Err(e) => answer.failure(e),
    }
}

/// The language the confirmation mail speaks: the submitted one where it will be the
/// contact's, else the one the contact already has.
async fn mail_language(
    state: &AppState,
    checked: &CheckedSubmission,
) -> Result<Option<String>, StoreError> {
    let submitted = submitted_language(checked);
    if let Some((language, FillMode::Overwrite)) = submitted {
        return Ok(Some(language.to_owned()));
    }
    let existing = state
        .store
        .find_contact_by_email(checked.email.as_str())
        .await?
        .and_then(|r| r.contact.language);
    Ok(existing.or_else(|| submitted.map(|(language, _)| language.to_owned())))
}

// ---------------------------------------------------------------------------------------------
// Mail

/// Text for the HTML part of a stored template: escaped, with braces as character references
/// so that minijinja sees no tag in it.
fn literal_html(text: &str) -> String {
    escape(text)
        .replace('{', "&#123;")
        .replace('}', "&#125;")
        .replace('\n', "<br>")
}

/// Text for a stored template's subject (not HTML): each `{` is printed by an expression, so
/// none can open a tag.
fn literal_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c == '{' {
            out.push_str("{{ \"{\" }}");
        } else {
            out.push(c);
        }
    }
    out
}

/// The double opt-in mail: a button to `{{ confirm_url }}`, which the dispatcher fills in
/// with the contact's signed link when it sends the mail.
fn confirmation(t: &Texts) -> MessageContent {
    let body = escape(t.mail_body).replace("{email}", "<strong>{{ email }}</strong>");
    let html = format!(
        "<div lang=\"{lang}\" dir=\"{dir}\" style=\"font-family:system-ui,-apple-system,\
         'Segoe UI',Roboto,sans-serif;line-height:1.5;color:#1f2328\"><p>{body}</p>\
         <p><a href=\"{{{{ confirm_url }}}}\" style=\"display:inline-block;padding:10px 20px;\
         border-radius:6px;background:#1f6feb;color:#ffffff;text-decoration:none;\
         font-weight:600\">{button}</a></p><p style=\"color:#59636e\">{ignore}</p></div>",
        lang = t.lang,
        dir = t.dir,
        button = escape(t.confirm_button),
        ignore = escape(t.mail_ignore),
    );
    MessageContent {
        subject: t.mail_subject.to_owned(),
        html,
        text: None,
        from_email: None,
        from_name: None,
    }
}

/// The mail to the form's owners: every input as it was posted, the groups, the address and
/// the time. Owners read it in English, like the rest of the admin side.
fn notification(
    form: &FormRecord,
    groups: &[Group],
    posted: &Posted,
    checked: &CheckedSubmission,
    ip: Option<IpAddr>,
    at: Timestamp,
) -> MessageContent {
    let name = &form.def.name;
    let mut rows = String::new();
    let mut row = |label: &str, value: &str| {
        rows.push_str(&format!(
            "<tr><th style=\"text-align:start;vertical-align:top;padding:4px 16px 4px 0\">{}</th>\
             <td style=\"padding:4px 0\">{}</td></tr>",
            literal_html(label),
            literal_html(value)
        ));
    };
    for field in &form.def.fields {
        let given: Vec<&str> = posted
            .values
            .get(&field.name)
            .map(|v| {
                v.iter()
                    .map(|s| s.trim())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let value = match field.kind {
            FormFieldType::Boolean | FormFieldType::Consent => {
                if given.first().is_some_and(|v| truthy(v)) {
                    "yes".to_owned()
                } else {
                    "no".to_owned()
                }
            }
            FormFieldType::Hidden if given.is_empty() => field.value.clone().unwrap_or_default(),
            _ => given.join(", "),
        };
        let label = if field.label.trim().is_empty() {
            &field.name
        } else {
            &field.label
        };
        row(label, &value);
    }
    let joined: Vec<&str> = checked
        .groups
        .iter()
        .filter_map(|id| groups.iter().find(|g| g.id == *id))
        .map(|g| g.name.as_str())
        .collect();
    if !joined.is_empty() {
        row("Groups", &joined.join(", "));
    }
    if let Some(ip) = ip {
        row("IP address", &ip.to_string());
    }
    row("Time", &at.strftime("%Y-%m-%d %H:%M:%S UTC").to_string());
    MessageContent {
        subject: literal_text(&format!("New submission: {name}")),
        html: format!(
            "<div style=\"font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;\
             line-height:1.5;color:#1f2328\"><p>The form <strong>{}</strong> was submitted.</p>\
             <table>{rows}</table></div>",
            literal_html(name)
        ),
        text: None,
        from_email: None,
        from_name: None,
    }
}

// ---------------------------------------------------------------------------------------------
// The embed script

/// The script behind the snippet. Placeholders are JSON string literals filled in per form;
/// `__MARKUP__` last, so that nothing a form contains is taken for a placeholder.
const EMBED_JS: &str = r#"(function () {
  "use strict";
  var slug = __SLUG__;
  var texts = __TEXTS__;
  var script = document.currentScript;
  var action = __URL__;
  if (script && script.src) {
    action = script.src.replace(/\/embed\.js(?:[?#].*)?$/, "");
  }
  var markup = __MARKUP__;

  function place(target, before) {
    var box = document.createElement("div");
    box.className = "nudge-embed";
    box.innerHTML = markup;
    var form = box.querySelector("form");
    form.setAttribute("action", action);
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      send(form);
    });
    if (before) {
      target.parentNode.insertBefore(box, target);
    } else {
      target.appendChild(box);
    }
  }

  function clear(form) {
    var notes = form.querySelectorAll(".nudge-error");
    for (var i = 0; i < notes.length; i++) {
      notes[i].parentNode.removeChild(notes[i]);
    }
    var marked = form.querySelectorAll("[aria-invalid], [aria-describedby]");
    for (var j = 0; j < marked.length; j++) {
      marked[j].removeAttribute("aria-invalid");
      marked[j].removeAttribute("aria-describedby");
    }
    form.querySelector(".nudge-summary").textContent = "";
  }

  function show(form, message, fields) {
    var boxes = form.querySelectorAll("[data-nudge-field]");
    var loose = [];
    var first = null;
    Object.keys(fields).forEach(function (name) {
      var box = null;
      for (var i = 0; i < boxes.length; i++) {
        if (boxes[i].getAttribute("data-nudge-field") === name) {
          box = boxes[i];
        }
      }
      if (!box) {
        loose.push(fields[name]);
        return;
      }
      var note = document.createElement("p");
      note.className = "nudge-error";
      note.id = box.getAttribute("data-nudge-error");
      note.textContent = fields[name];
      box.appendChild(note);
      var input = box.querySelector("input, select");
      var described = box.tagName === "FIELDSET" ? box : input;
      if (described) {
        described.setAttribute("aria-describedby", note.id);
        if (described !== box) {
          described.setAttribute("aria-invalid", "true");
        }
      }
      if (!first && input) {
        first = input;
      }
    });
    var summary = form.querySelector(".nudge-summary");
    summary.textContent = [message].concat(loose).join(" ");
    if (first) {
      first.focus();
    }
  }

  function popup(message) {
    var dialog = document.createElement("dialog");
    if (typeof dialog.showModal !== "function") {
      window.alert(message);
      return;
    }
    dialog.className = "nudge-dialog";
    dialog.setAttribute("lang", texts.lang);
    dialog.setAttribute("dir", texts.dir);
    var text = document.createElement("p");
    text.textContent = message;
    var close = document.createElement("button");
    close.type = "button";
    close.textContent = texts.close;
    close.addEventListener("click", function () {
      dialog.close();
    });
    dialog.addEventListener("close", function () {
      dialog.parentNode.removeChild(dialog);
    });
    dialog.appendChild(text);
    dialog.appendChild(close);
    document.body.appendChild(dialog);
    dialog.showModal();
  }

  function send(form) {
    var button = form.querySelector("button[type=submit]");
    clear(form);
    button.disabled = true;
    fetch(form.getAttribute("action"), {
      method: "POST",
      body: new URLSearchParams(new FormData(form)),
      headers: { "Accept": "application/json" },
      credentials: "omit"
    }).then(function (response) {
      return response.json().catch(function () {
        return {};
      });
    }).then(function (body) {
      button.disabled = false;
      if (body && body.ok) {
        if (body.redirect_url) {
          window.location.assign(body.redirect_url);
          return;
        }
        form.reset();
        popup(body.message || texts.thanks);
        return;
      }
      var error = (body && body.error) || {};
      show(form, error.message || texts.failed, error.fields || {});
    }, function () {
      button.disabled = false;
      show(form, texts.failed, {});
    });
  }

  function mount() {
    var targets = document.querySelectorAll("[data-nudge-form]");
    var found = false;
    for (var i = 0; i < targets.length; i++) {
      if (targets[i].getAttribute("data-nudge-form") !== slug) {
        continue;
      }
      found = true;
      if (!targets[i].hasAttribute("data-nudge-mounted")) {
        targets[i].setAttribute("data-nudge-mounted", "");
        place(targets[i], false);
      }
    }
    if (!found && script && script.parentNode) {
      place(script, true);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", mount);
  } else {
    mount();
  }
})();
"#;

/// A JavaScript string literal: JSON's, with the two line separators JSON allows raw but old
/// engines do not.
fn js_string(s: &str) -> String {
    Value::String(s.to_owned())
        .to_string()
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

/// `GET /f/{slug}/embed.js`: inserts the form where the script tag is, or into the elements
/// with `data-nudge-form="{slug}"`, and submits it in the background.
pub async fn embed_js(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
) -> Response {
    let script = |status: StatusCode, body: String| {
        cors(
            (
                status,
                [
                    (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
                    (header::CACHE_CONTROL, "public, max-age=300"),
                    (header::VARY, "Accept-Language"),
                    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                ],
                body,
            )
                .into_response(),
        )
    };
    let form = match state.store.form_by_slug(&slug).await {
        Ok(form) => form,
        Err(StoreError::NotFound) => {
            return script(StatusCode::NOT_FOUND, "/* no such form */\n".into());
        }
        Err(e) => {
            tracing::error!(error = %e, "the embed script failed");
            return script(
                StatusCode::INTERNAL_SERVER_ERROR,
                "/* the form could not be read */\n".into(),
            );
        }
    };
    let groups = match state.store.list_groups().await {
        Ok(groups) => groups,
        Err(e) => {
            tracing::error!(error = %e, "the embed script failed");
            return script(
                StatusCode::INTERNAL_SERVER_ERROR,
                "/* the form could not be read */\n".into(),
            );
        }
    };
    let t = page_texts(&form.def, &headers);
    let markup = format!(
        "<style>{FORM_CSS}</style>{}",
        form_html(&form.def, &groups, t, None)
    );
    let texts = json!({
        "lang": t.lang,
        "dir": t.dir,
        "close": t.close,
        "failed": t.failed,
        "thanks": t.thanks,
    });
    let body = EMBED_JS
        .replace("__SLUG__", &js_string(&form.def.slug))
        .replace("__TEXTS__", &texts.to_string())
        .replace(
            "__URL__",
            &js_string(&form_url(&state.public_url, &form.def.slug)),
        )
        .replace("__MARKUP__", &js_string(&markup));
    script(StatusCode::OK, body)
}

// ---------------------------------------------------------------------------------------------
// Confirmation

fn say(template: &str, email: &str) -> String {
    escape(template).replace("{email}", &format!("<strong>{}</strong>", escape(email)))
}

fn gone(t: &Texts) -> Response {
    page(
        StatusCode::NOT_FOUND,
        t,
        t.confirm_title,
        &format!("<p>{}</p>", escape(t.gone)),
    )
}

/// `GET /confirm/{token}`: a page with a button, so that a mail scanner following the link
/// confirms nobody.
pub async fn confirm_page(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Response {
    let browser = browser_texts(&headers).unwrap_or_else(english);
    let Some(id) = verify(&state.secret, Purpose::Confirm, &token) else {
        return gone(browser);
    };
    let contact = match state.store.get_contact(id).await {
        Ok(record) => record.contact,
        Err(StoreError::NotFound) => return gone(browser),
        Err(e) => return failure(e, browser),
    };
    let t = contact
        .language
        .as_deref()
        .and_then(texts_for)
        .unwrap_or(browser);
    let email = contact.email.as_str();
    match contact.status {
        Status::Pending => page(
            StatusCode::OK,
            t,
            t.confirm_title,
            &format!(
                "<p>{}</p><form method=\"post\"><button type=\"submit\">{}</button></form>",
                say(t.confirm_question, email),
                escape(t.confirm_button)
            ),
        ),
        Status::Subscribed => page(
            StatusCode::OK,
            t,
            t.confirm_title,
            &format!("<p role=\"status\">{}</p>", say(t.confirmed, email)),
        ),
        // Unsubscribed, bounced or complained since: an old link brings nobody back.
        _ => gone(t),
    }
}

/// `POST /confirm/{token}`: pending becomes subscribed, and the sequences waiting for it go on.
pub async fn confirm(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Response {
    let browser = browser_texts(&headers).unwrap_or_else(english);
    let Some(id) = verify(&state.secret, Purpose::Confirm, &token) else {
        return gone(browser);
    };
    let contact = match state.store.confirm_contact(id, state.clock.now()).await {
        Ok(record) => record.contact,
        Err(StoreError::NotFound) => return gone(browser),
        Err(e) => return failure(e, browser),
    };
    state.wake_workers();
    let t = contact
        .language
        .as_deref()
        .and_then(texts_for)
        .unwrap_or(browser);
    if contact.status == Status::Subscribed {
        page(
            StatusCode::OK,
            t,
            t.confirm_title,
            &format!(
                "<p role=\"status\">{}</p>",
                say(t.confirmed, contact.email.as_str())
            ),
        )
    } else {
        gone(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nudge_core::form::FormField;
    use std::net::Ipv6Addr;
    use uuid::Uuid;

    fn field(name: &str, kind: FormFieldType, maps_to: Option<&str>) -> FormField {
        FormField {
            name: name.into(),
            label: format!("Your {name}"),
            kind,
            required: false,
            maps_to: maps_to.and_then(Target::parse),
            mode: FillMode::Overwrite,
            options: vec![],
            value: None,
        }
    }

    fn form(group: Uuid) -> FormDef {
        let mut email = field("email", FormFieldType::Email, Some("email"));
        email.required = true;
        let mut colour = field("colour", FormFieldType::Choice, None);
        colour.options = vec!["red".into(), "<blue>".into()];
        let mut consent = field("consent", FormFieldType::Consent, None);
        consent.required = true;
        let mut source = field("source", FormFieldType::Hidden, None);
        source.value = Some("footer".into());
        FormDef {
            slug: "news".into(),
            name: "News & more".into(),
            fields: vec![email, colour, consent, source],
            group_choices: vec![group],
            groups: vec![],
            double_opt_in: true,
            sequence_id: None,
            notify: vec![],
            response: FormResponse::Message("Thanks".into()),
        }
    }

    fn group(id: Uuid, name: &str) -> Group {
        Group {
            id,
            name: name.into(),
            parent_id: None,
            public: true,
            created_at: Timestamp::UNIX_EPOCH,
        }
    }

    #[test]
    fn the_form_has_labels_choices_groups_and_a_hidden_honeypot() {
        let g = Uuid::now_v7();
        let html = form_html(&form(g), &[group(g, "Weekly <news>")], english(), None);
        assert!(
            html.contains("<label for=\"nudge-news-email\">Your email"),
            "{html}"
        );
        assert!(html.contains("type=\"email\""), "{html}");
        assert!(html.contains("<option value=\"&lt;blue&gt;\">&lt;blue&gt;</option>"));
        assert!(html.contains(&format!(
            "name=\"groups\" value=\"{g}\"> Weekly &lt;news&gt;"
        )));
        assert!(html.contains("<input type=\"hidden\" name=\"source\" value=\"footer\">"));
        assert!(html.contains(&format!(
            "name=\"{HONEYPOT}\" value=\"\" tabindex=\"-1\" autocomplete=\"off\""
        )));
        assert!(html.contains("class=\"nudge-hp\""));
        assert!(!html.contains(" on"), "no inline event handlers: {html}");
    }

    #[test]
    fn a_refused_form_shows_what_was_entered_and_why() {
        let g = Uuid::now_v7();
        let values = BTreeMap::from([
            ("email".to_owned(), vec!["ann@\"x".to_owned()]),
            ("colour".to_owned(), vec!["red".to_owned()]),
        ]);
        let errors = BTreeMap::from([
            (
                "email".to_owned(),
                "Please enter a valid email address.".to_owned(),
            ),
            ("source".to_owned(), "is too long".to_owned()),
        ]);
        let groups = [g.to_string()];
        let entered = Entered {
            values: &values,
            groups: &groups,
            errors: &errors,
        };
        let html = form_html(&form(g), &[group(g, "Weekly")], english(), Some(&entered));
        assert!(html.contains("value=\"ann@&quot;x\""), "{html}");
        assert!(html.contains("aria-invalid=\"true\" aria-describedby=\"nudge-news-email-error\""));
        assert!(html.contains("<option value=\"red\" selected>"));
        assert!(html.contains(&format!("value=\"{g}\" checked>")));
        assert!(
            html.contains("<p>is too long</p>"),
            "a hidden field's reason: {html}"
        );
    }

    #[test]
    fn bodies_are_read_as_forms_or_json() {
        let posted = parse_body(
            "application/x-www-form-urlencoded",
            b"email=a%40b.co&tags=x&tags=y&groups=g1&groups=g2&nudge_hp=",
        )
        .expect("read");
        assert_eq!(posted.values["tags"], ["x", "y"]);
        assert_eq!(posted.groups, ["g1", "g2"]);
        assert!(!posted.honeypot);
        let posted = parse_body(
            "application/json",
            br#"{"email": "a@b.co", "n": 3, "ok": true, "groups": ["g"], "nudge_hp": "x"}"#,
        )
        .expect("read");
        assert_eq!(posted.values["n"], ["3"]);
        assert_eq!(posted.values["ok"], ["true"]);
        assert_eq!(posted.groups, ["g"]);
        assert!(posted.honeypot);
        assert!(matches!(
            parse_body("application/json", br#"{"email": {"a": 1}}"#),
            Err(BodyError::Json(e)) if e.fields.as_ref().is_some_and(|f| f.contains_key("email"))
        ));
        assert!(matches!(
            parse_body("application/json", b"{"),
            Err(BodyError::Json(_))
        ));
        assert!(matches!(
            parse_body("multipart/form-data", b""),
            Err(BodyError::Unsupported)
        ));
    }

    #[test]
    fn reasons_speak_the_visitors_language() {
        let f = form(Uuid::now_v7());
        let errors = check_submission(
            &f,
            &[],
            &BTreeMap::from([
                ("email".to_owned(), vec!["nope".to_owned()]),
                ("colour".to_owned(), vec!["green".to_owned()]),
            ]),
            &["x".to_owned()],
        )
        .expect_err("refused");
        let nl = texts_for("nl-BE").expect("Dutch");
        let errors = localize(&f, errors, nl);
        assert_eq!(errors["email"], nl.email);
        assert_eq!(errors["colour"], nl.choice);
        assert_eq!(errors["consent"], nl.tick);
        assert_eq!(errors["groups"], nl.group_choice);
    }

    #[test]
    fn the_browser_language_is_chosen_by_preference() {
        let headers = |value: &str| {
            let mut h = HeaderMap::new();
            h.insert(
                header::ACCEPT_LANGUAGE,
                HeaderValue::from_str(value).expect("a header"),
            );
            h
        };
        let lang = |value: &str| browser_texts(&headers(value)).map(|t| t.lang);
        assert_eq!(lang("fr-FR, de;q=0.8, nl;q=0.9"), Some("nl"));
        assert_eq!(lang("iw, en;q=0.5"), Some("he"));
        assert_eq!(lang("fr, en;q=0"), None);
        assert_eq!(texts_for("he").map(|t| t.dir), Some("rtl"));
        let mut f = form(Uuid::now_v7());
        let mut language = field("language", FormFieldType::Hidden, Some("language"));
        language.value = Some("de".into());
        f.fields.push(language);
        assert_eq!(
            page_texts(&f, &headers("nl")).lang,
            "de",
            "the form's own language"
        );
    }

    #[test]
    fn the_limiter_counts_per_client_and_window_and_stays_bounded() {
        let limiter = RateLimiter::new(2, WINDOW, 3);
        let t0 = Timestamp::UNIX_EPOCH;
        let a = Some(IpAddr::from([192, 0, 2, 1]));
        assert_eq!(limiter.check(a, t0), Ok(()));
        assert_eq!(limiter.check(a, t0), Ok(()));
        assert_eq!(
            limiter.check(a, t0 + SignedDuration::from_secs(20)),
            Err(40)
        );
        assert_eq!(limiter.check(None, t0), Ok(()), "another client");
        assert_eq!(limiter.check(a, t0 + WINDOW), Ok(()), "a new window");
        // One IPv6 host holds a /64: its addresses share one count.
        let v6 = |last: u16| {
            Some(IpAddr::V6(Ipv6Addr::new(
                0x2001, 0xdb8, 0, 0, 0, 0, 0, last,
            )))
        };
        assert_eq!(limiter.check(v6(1), t0 + WINDOW), Ok(()));
        assert_eq!(limiter.check(v6(2), t0 + WINDOW), Ok(()));
        assert!(limiter.check(v6(3), t0 + WINDOW).is_err());
        for i in 0..100u8 {
            let ip = Some(IpAddr::from([198, 51, 100, i]));
            assert_eq!(limiter.check(ip, t0 + WINDOW), Ok(()));
        }
        let clients = limiter.clients.lock().expect("not poisoned").len();
        assert!(clients <= 3, "{clients} clients remembered");
    }

    #[test]
    fn submitted_text_cannot_become_template_code() {
        let subject = literal_text("New submission: {{ sender.email }} {% if x %}");
        let html = format!("<p>{}</p>", literal_html("{{ unsubscribe_url }}\n<b>"));
        let template = nudge_mail::Template::check(&subject, &html, None, &[]).expect("a template");
        let contact = nudge_core::contact::plan_create(
            &nudge_core::ContactInput {
                email: Some("ann@example.com".into()),
                ..Default::default()
            },
            &[],
        )
        .expect("a contact")
        .into_contact(Uuid::nil(), Timestamp::UNIX_EPOCH)
        .0;
        let rendered = template
            .render(&nudge_mail::RenderContext {
                contact: &contact,
                sender_name: "S",
                sender_email: "s@example.com",
                unsubscribe_url: "https://x/u",
                preferences_url: "https://x/p",
                confirm_url: "https://x/c",
            })
            .expect("rendered");
        assert_eq!(
            rendered.subject,
            "New submission: {{ sender.email }} {% if x %}"
        );
        // The braces stay text: character references (or, where the CSS inliner rewrote the
        // document, plain braces), never the rendered variable.
        assert!(!rendered.html.contains("https://x/u"), "{}", rendered.html);
        assert!(
            rendered
                .html
                .contains("&#123;&#123; unsubscribe_url &#125;&#125;<br>&lt;b&gt;")
                || rendered.html.contains("{{ unsubscribe_url }}<br>&lt;b&gt;"),
            "{}",
            rendered.html
        );
        assert!(
            rendered.text.contains("{{ unsubscribe_url }}"),
            "{}",
            rendered.text
        );
    }

    #[test]
    fn the_confirmation_mail_links_to_the_confirm_url_in_each_language() {
        for t in &TEXTS {
            let content = confirmation(t);
            let template = nudge_mail::Template::check(&content.subject, &content.html, None, &[])
                .expect("a valid template");
            drop(template);
            assert!(
                content.html.contains("href=\"{{ confirm_url }}\""),
                "{}",
                t.lang
            );
            assert!(content.html.contains("{{ email }}"), "{}", t.lang);
            assert!(content.html.contains(&format!("dir=\"{}\"", t.dir)));
        }
    }
}
