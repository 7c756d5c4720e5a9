//! Public pages for contacts, reached from links in mail: no API key, a signed token instead.
//!
//! `GET /unsubscribe/{token}` only shows what will happen and a button, so that mail scanners
//! that follow links unsubscribe nobody; `POST` to the same URL unsubscribes at once, which is
//! also the RFC 8058 one-click request mail clients send. Pages work without JavaScript and
//! speak the contact's language (English, Dutch, German, Hebrew right to left).

use crate::AppState;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use nudge_core::token::{Purpose, verify};
use nudge_core::{ChangeSource, Contact, Status};
use nudge_store::{ChangeContext, Engagement, StoreError};

/// The texts of the public pages, by language.
#[derive(Clone, Copy)]
struct Texts {
    lang: &'static str,
    dir: &'static str,
    title: &'static str,
    question: &'static str,
    button: &'static str,
    done: &'static str,
    already: &'static str,
    gone: &'static str,
    preferences: &'static str,
    choose: &'static str,
    save: &'static str,
    saved: &'static str,
    everything: &'static str,
}

const TEXTS: [Texts; 4] = [
    Texts {
        lang: "en",
        dir: "ltr",
        title: "Unsubscribe",
        question: "Do you want to stop receiving these emails at {email}?",
        button: "Unsubscribe",
        done: "You have been unsubscribed. {email} will get no more of these emails.",
        already: "{email} is already unsubscribed.",
        gone: "This link is not valid (any more).",
        preferences: "Your email preferences",
        choose: "The lists {email} receives:",
        save: "Save",
        saved: "Your preferences for {email} have been saved.",
        everything: "Unsubscribe from everything",
    },
    Texts {
        lang: "nl",
        dir: "ltr",
        title: "Afmelden",
        question: "Wilt u deze e-mails op {email} niet meer ontvangen?",
        button: "Afmelden",
        done: "U bent afgemeld. {email} ontvangt deze e-mails niet meer.",
        already: "{email} is al afgemeld.",
        gone: "Deze link is niet (meer) geldig.",
        preferences: "Uw e-mailvoorkeuren",
        choose: "De lijsten die {email} ontvangt:",
        save: "Opslaan",
        saved: "Uw voorkeuren voor {email} zijn opgeslagen.",
        everything: "Afmelden voor alles",
    },
    Texts {
        lang: "de",
        dir: "ltr",
        title: "Abmelden",
        question: "Möchten Sie diese E-Mails an {email} nicht mehr erhalten?",
        button: "Abmelden",
        done: "Sie wurden abgemeldet. {email} erhält diese E-Mails nicht mehr.",
        already: "{email} ist bereits abgemeldet.",
        gone: "Dieser Link ist nicht (mehr) gültig.",
        preferences: "Ihre E-Mail-Einstellungen",
        choose: "Die Listen, die {email} erhält:",
        save: "Speichern",
        saved: "Ihre Einstellungen für {email} wurden gespeichert.",
        everything: "Von allem abmelden",
    },
    Texts {
        lang: "he",
        dir: "rtl",
        title: "ביטול הרשמה",
        question: "האם להפסיק לשלוח הודעות אלה אל {email}?",
        button: "ביטול הרשמה",
        done: "ההרשמה בוטלה. לא יישלחו עוד הודעות אלה אל {email}.",
        already: "ההרשמה של {email} כבר בוטלה.",
        gone: "הקישור אינו תקף (עוד).",
        preferences: "העדפות הדוא\"ל שלך",
        choose: "הרשימות ש-{email} מקבל/ת:",
        save: "שמירה",
        saved: "ההעדפות של {email} נשמרו.",
        everything: "ביטול הרשמה מהכול",
    },
];

fn texts_for(language: Option<&str>) -> &'static Texts {
    let primary = language
        .and_then(|l| l.split(['-', '_']).next())
        .map(str::to_ascii_lowercase);
    let primary = match primary.as_deref() {
        Some("iw") => "he",
        Some(p) => p,
        None => "en",
    };
    TEXTS
        .iter()
        .find(|t| t.lang == primary)
        .unwrap_or(&TEXTS[0])
}

pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A whole page; `body` is already escaped HTML.
fn page(status: StatusCode, t: &Texts, body: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"{lang}\" dir=\"{dir}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;\
         padding:0 1rem;line-height:1.5;color:#1f2328}}button{{font:inherit;padding:.5rem 1.25rem;\
         border:0;border-radius:.375rem;background:#1f6feb;color:#fff;cursor:pointer}}</style>\
         </head><body><main><h1>{title}</h1>{body}</main></body></html>\n",
        lang = t.lang,
        dir = t.dir,
        title = escape(t.title),
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

/// The answer to a link whose token is invalid or whose message or contact is gone.
fn gone(t: &Texts) -> Response {
    page(
        StatusCode::NOT_FOUND,
        t,
        &format!("<p>{}</p>", escape(t.gone)),
    )
}

fn say(template: &str, contact: &Contact) -> String {
    escape(template).replace(
        "{email}",
        &format!("<strong>{}</strong>", escape(contact.email.as_str())),
    )
}

/// The contact a token points to, through the message it was made for.
async fn contact_for(state: &AppState, token: &str) -> Result<Option<Contact>, StoreError> {
    let Some(message_id) = verify(&state.secret, Purpose::Unsubscribe, token) else {
        return Ok(None);
    };
    let message = match state.store.get_message(message_id).await {
        Ok(m) => m,
        Err(StoreError::NotFound) => return Ok(None),
        Err(e) => return Err(e),
    };
    match state.store.get_contact(message.contact_id).await {
        Ok(record) => Ok(Some(record.contact)),
        Err(StoreError::NotFound) => Ok(None),
        Err(e) => Err(e),
    }
}

fn failure(e: StoreError) -> Response {
    tracing::error!(error = %e, "unsubscribe page failed");
    page(
        StatusCode::INTERNAL_SERVER_ERROR,
        &TEXTS[0],
        "<p>Something went wrong; please try again.</p>",
    )
}

pub async fn unsubscribe_page(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Response {
    let contact = match contact_for(&state, &token).await {
        Ok(Some(c)) => c,
        Ok(None) => {
            return gone(&TEXTS[0]);
        }
        Err(e) => return failure(e),
    };
    let t = texts_for(contact.language.as_deref());
    if contact.status == Status::Unsubscribed {
        return page(
            StatusCode::OK,
            t,
            &format!("<p>{}</p>", say(t.already, &contact)),
        );
    }
    let body = format!(
        "<p>{}</p><form method=\"post\"><button type=\"submit\">{}</button></form>",
        say(t.question, &contact),
        escape(t.button)
    );
    page(StatusCode::OK, t, &body)
}

/// The button's POST and the RFC 8058 one-click POST: unsubscribes at once.
pub async fn unsubscribe(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let contact = match contact_for(&state, &token).await {
        Ok(Some(c)) => c,
        Ok(None) => {
            return gone(&TEXTS[0]);
        }
        Err(e) => return failure(e),
    };
    let t = texts_for(contact.language.as_deref());
    let ctx = ChangeContext::new(ChangeSource::UnsubscribeLink, state.clock.now());
    match state
        .store
        .change_status(contact.id, Status::Unsubscribed, None, ctx)
        .await
    {
        Ok(_) => page(
            StatusCode::OK,
            t,
            &format!("<p>{}</p>", say(t.done, &contact)),
        ),
        // Bounced and complained contacts get nothing anyway; unsubscribing them is refused by
        // the rules, and the page says what matters: no more mail.
        Err(StoreError::Invalid(_)) => page(
            StatusCode::OK,
            t,
            &format!("<p>{}</p>", say(t.done, &contact)),
        ),
        Err(StoreError::NotFound) => gone(t),
        Err(e) => failure(e),
    }
}

/// The preference page: the public groups, each with a checkbox, and a way out of everything.
pub async fn preferences_page(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Response {
    let contact = match contact_for(&state, &token).await {
        Ok(Some(c)) => c,
        Ok(None) => {
            return gone(&TEXTS[0]);
        }
        Err(e) => return failure(e),
    };
    match preferences_form(&state, &contact, None).await {
        Ok(response) => response,
        Err(e) => failure(e),
    }
}

async fn preferences_form(
    state: &AppState,
    contact: &Contact,
    notice: Option<&str>,
) -> Result<Response, StoreError> {
    let t = texts_for(contact.language.as_deref());
    let record = state.store.get_contact(contact.id).await?;
    let groups: Vec<_> = state
        .store
        .list_groups()
        .await?
        .into_iter()
        .filter(|g| g.public)
        .collect();
    let mut body = String::new();
    if let Some(notice) = notice {
        body.push_str(&format!("<p role=\"status\">{}</p>", say(notice, contact)));
    }
    body.push_str(&format!(
        "<form method=\"post\"><p>{}</p>",
        say(t.choose, contact)
    ));
    for g in &groups {
        let checked = if record.groups.contains(&g.id) {
            " checked"
        } else {
            ""
        };
        body.push_str(&format!(
            "<p><label><input type=\"checkbox\" name=\"group\" value=\"{}\"{checked}> {}</label></p>",
            g.id,
            escape(&g.name)
        ));
    }
    body.push_str(&format!(
        "<p><button type=\"submit\" name=\"action\" value=\"save\">{}</button></p>\
         <p><button type=\"submit\" name=\"action\" value=\"unsubscribe\">{}</button></p></form>",
        escape(t.save),
        escape(t.everything)
    ));
    let t = Texts {
        title: t.preferences,
        ..*t
    };
    Ok(page(StatusCode::OK, &t, &body))
}

/// Saves the preference form: joins the checked public groups, leaves the others, or
/// unsubscribes from everything.
pub async fn save_preferences(
    State(state): State<AppState>,
    Path(token): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let contact = match contact_for(&state, &token).await {
        Ok(Some(c)) => c,
        Ok(None) => {
            return gone(&TEXTS[0]);
        }
        Err(e) => return failure(e),
    };
    let t = texts_for(contact.language.as_deref());
    let mut checked = Vec::new();
    let mut everything = false;
    for (key, value) in form_urlencoded::parse(&body) {
        match (key.as_ref(), value.as_ref()) {
            ("group", id) => checked.extend(uuid::Uuid::parse_str(id).ok()),
            ("action", "unsubscribe") => everything = true,
            _ => {}
        }
    }
    let now = state.clock.now();
    if everything {
        let ctx = ChangeContext::new(ChangeSource::PreferencePage, now);
        return match state
            .store
            .change_status(contact.id, Status::Unsubscribed, None, ctx)
            .await
        {
            Ok(_) | Err(StoreError::Invalid(_)) => page(
                StatusCode::OK,
                t,
                &format!("<p>{}</p>", say(t.done, &contact)),
            ),
            Err(e) => failure(e),
        };
    }
    let result = async {
        let record = state.store.get_contact(contact.id).await?;
        let ctx = ChangeContext::new(ChangeSource::PreferencePage, now);
        for g in state
            .store
            .list_groups()
            .await?
            .into_iter()
            .filter(|g| g.public)
        {
            let wanted = checked.contains(&g.id);
            if wanted != record.groups.contains(&g.id) {
                state
                    .store
                    .set_group_membership(contact.id, g.id, wanted, ctx)
                    .await?;
            }
        }
        preferences_form(&state, &contact, Some(t.saved)).await
    }
    .await;
    result.unwrap_or_else(failure)
}

/// The open pixel: a transparent 1×1 GIF. An unknown or tampered token still gets the image
/// (a broken image would only look odd in the reader's mail) but records nothing.
pub async fn open_pixel(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    const GIF: &[u8] = b"GIF89a\x01\0\x01\0\x80\0\0\0\0\0\xff\xff\xff!\xf9\x04\x01\0\0\0\0,\0\0\0\0\x01\0\x01\0\0\x02\x02D\x01\0;";
    if let Some(id) = nudge_core::token::verify(&state.secret, Purpose::Open, &token) {
        match state
            .store
            .record_engagement(id, Engagement::Opened, state.clock.now())
            .await
        {
            Ok(()) | Err(StoreError::NotFound) => {}
            Err(e) => tracing::error!(error = %e, "recording an open failed"),
        }
    }
    (
        [
            (header::CONTENT_TYPE, "image/gif"),
            (header::CACHE_CONTROL, "no-store, private"),
        ],
        GIF,
    )
        .into_response()
}

/// A click: records it and redirects to the link, which the token names and signs; a tampered
/// or unknown token gets 404, so the server is no open redirect.
pub async fn click(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let Some((id, url)) = nudge_core::token::verify_link(&state.secret, &token) else {
        return gone(&TEXTS[0]);
    };
    let clicked = Engagement::Clicked { url: url.clone() };
    match state
        .store
        .record_engagement(id, clicked, state.clock.now())
        .await
    {
        Ok(()) => {}
        Err(StoreError::NotFound) => {
            return gone(&TEXTS[0]);
        }
        Err(e) => tracing::error!(error = %e, "recording a click failed"),
    }
    // A Location header is ASCII: bytes beyond it (an IDN host, an umlaut in a path) go
    // percent-encoded, which browsers read back as the same link.
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
    match axum::http::HeaderValue::from_str(&ascii) {
        Ok(location) => (StatusCode::FOUND, [(header::LOCATION, location)]).into_response(),
        Err(_) => gone(&TEXTS[0]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_fall_back_to_english_and_hebrew_reads_right_to_left() {
        assert_eq!(texts_for(Some("nl-BE")).lang, "nl");
        assert_eq!(texts_for(Some("de")).lang, "de");
        assert_eq!(texts_for(Some("iw")).dir, "rtl");
        assert_eq!(texts_for(Some("fr")).lang, "en");
        assert_eq!(texts_for(None).lang, "en");
        for t in &TEXTS {
            assert!(
                t.question.contains("{email}") && t.done.contains("{email}"),
                "{}",
                t.lang
            );
        }
    }

    #[test]
    fn escaping_covers_markup() {
        assert_eq!(
            escape("<img src=x onerror='a'>&\""),
            "&lt;img src=x onerror=&#39;a&#39;&gt;&amp;&quot;"
        );
    }
}
