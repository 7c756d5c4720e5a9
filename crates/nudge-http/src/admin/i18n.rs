//! The admin UI's languages: Fluent message catalogues (`locales/*.ftl`, embedded), the choice
//! of language, and numbers and dates in the reader's locale.
//!
//! fluent-rs formats neither numbers nor dates (projectfluent/fluent-rs#269), so numbers go
//! through a per-language separator table (plugged into Fluent with `set_formatter` and into
//! templates as the `number` filter), and dates are assembled from jiff's parts by the
//! catalogue's own `date-long` pattern and month names.

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};
use jiff::tz::TimeZone;
use unic_langid::LanguageIdentifier;

/// The languages of the admin UI; the first is the fallback for a missing message.
pub const LANGUAGES: [&str; 3] = ["en", "nl", "de"];

/// Each language's catalogue, embedded in the binary.
pub const CATALOGUES: [(&str, &str); 3] = [
    ("en", include_str!("locales/en.ftl")),
    ("nl", include_str!("locales/nl.ftl")),
    ("de", include_str!("locales/de.ftl")),
];

#[derive(Debug, thiserror::Error)]
pub enum I18nError {
    #[error("{lang}: not a language identifier")]
    Language { lang: &'static str },
    #[error("{lang}.ftl does not parse: {detail}")]
    Syntax { lang: &'static str, detail: String },
    #[error("{lang}.ftl defines a message twice: {detail}")]
    Duplicate { lang: &'static str, detail: String },
}

/// Thousands and decimal separators of a language.
fn separators(lang: &str) -> (char, char) {
    match lang {
        "nl" | "de" => ('.', ','),
        _ => (',', '.'),
    }
}

/// `1234567.5` as `1,234,567.5` (en) or `1.234.567,5` (nl, de); at most `max_fraction` digits.
pub fn format_number(lang: &str, value: f64, max_fraction: usize) -> String {
    let (thousands, decimal) = separators(lang);
    let text = format!("{:.*}", max_fraction, value.abs());
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    let frac = frac.trim_end_matches('0');
    let mut out = String::with_capacity(text.len() + text.len() / 3 + 1);
    if value < 0.0 && text.bytes().any(|b| b.is_ascii_digit() && b != b'0') {
        out.push('-');
    }
    for (i, digit) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(thousands);
        }
        out.push(digit);
    }
    if !frac.is_empty() {
        out.push(decimal);
        out.push_str(frac);
    }
    out
}

/// Fluent's number formatter for one language: `set_formatter` takes a plain `fn`, hence one
/// instance per language by its separators.
fn fluent_number<const LANG: usize, M>(value: &FluentValue, _: &M) -> Option<String> {
    match value {
        FluentValue::Number(n) => {
            let digits = n.options.maximum_fraction_digits.unwrap_or(2);
            Some(format_number(LANGUAGES[LANG], n.value, digits))
        }
        _ => None,
    }
}

pub struct I18n {
    bundles: Vec<(&'static str, FluentBundle<FluentResource>)>,
    /// Dates are shown in the server's zone: users have no zone of their own yet.
    zone: TimeZone,
}

impl I18n {
    /// Parses every catalogue; any error in any of them is fatal, since a partial catalogue
    /// would show message ids to users.
    pub fn load() -> Result<Self, I18nError> {
        let mut bundles = Vec::with_capacity(CATALOGUES.len());
        for (index, (lang, source)) in CATALOGUES.into_iter().enumerate() {
            let id: LanguageIdentifier = lang.parse().map_err(|_| I18nError::Language { lang })?;
            let resource = FluentResource::try_new(source.to_owned()).map_err(|(_, errors)| {
                I18nError::Syntax {
                    lang,
                    detail: format!("{errors:?}"),
                }
            })?;
            let mut bundle = FluentBundle::new_concurrent(vec![id]);
            bundle
                .add_resource(resource)
                .map_err(|errors| I18nError::Duplicate {
                    lang,
                    detail: format!("{errors:?}"),
                })?;
            bundle.set_formatter(Some(match index {
                1 => fluent_number::<1, _>,
                2 => fluent_number::<2, _>,
                _ => fluent_number::<0, _>,
            }));
            bundles.push((lang, bundle));
        }
        Ok(Self {
            bundles,
            zone: TimeZone::system(),
        })
    }

    fn bundle(&self, lang: &str) -> Option<&FluentBundle<FluentResource>> {
        self.bundles
            .iter()
            .find(|(l, _)| *l == lang)
            .map(|(_, b)| b)
    }

    /// The message `key` in `lang`, else in English; `None` when no catalogue has it.
    pub fn format(&self, lang: &str, key: &str, args: Option<&FluentArgs>) -> Option<String> {
        [lang, LANGUAGES[0]].into_iter().find_map(|lang| {
            let bundle = self.bundle(lang)?;
            let pattern = bundle.get_message(key)?.value()?;
            let mut errors = Vec::new();
            let text = bundle.format_pattern(pattern, args, &mut errors);
            if !errors.is_empty() {
                tracing::warn!(key, lang, ?errors, "a message was formatted with errors");
            }
            Some(text.into_owned())
        })
    }

    /// A date in `lang`: "25 November 2026" (en), "25 november 2026" (nl), "25. November 2026" (de).
    pub fn date(&self, lang: &str, at: jiff::Timestamp) -> String {
        let zoned = at.to_zoned(self.zone.clone());
        let month = self
            .format(lang, &format!("month-{}", zoned.month()), None)
            .unwrap_or_else(|| zoned.month().to_string());
        let mut args = FluentArgs::new();
        args.set("day", zoned.day().to_string());
        args.set("month", month);
        args.set("year", zoned.year().to_string());
        self.plain(lang, "date-long", &args)
            .unwrap_or_else(|| zoned.date().to_string())
    }

    /// A date and time in `lang`: the date as [`Self::date`], the time as 24-hour `14:05`.
    pub fn datetime(&self, lang: &str, at: jiff::Timestamp) -> String {
        let zoned = at.to_zoned(self.zone.clone());
        let mut args = FluentArgs::new();
        args.set("date", self.date(lang, at));
        args.set("time", format!("{:02}:{:02}", zoned.hour(), zoned.minute()));
        self.plain(lang, "date-time", &args)
            .unwrap_or_else(|| zoned.strftime("%F %R").to_string())
    }

    /// A message without the bidi isolation marks Fluent puts around placeables: dates are
    /// digits and month names of the page's own language, which cannot reorder anything.
    fn plain(&self, lang: &str, key: &str, args: &FluentArgs) -> Option<String> {
        self.format(lang, key, Some(args))
            .map(|s| s.replace(['\u{2068}', '\u{2069}'], ""))
    }
}

/// A stored or requested language reduced to one of [`LANGUAGES`] by its primary subtag
/// (`nl-BE` is `nl`); `None` for anything else.
pub fn supported(lang: &str) -> Option<&'static str> {
    let primary = lang.split(['-', '_']).next()?.trim().to_ascii_lowercase();
    LANGUAGES.into_iter().find(|l| *l == primary)
}

/// The best language for an `Accept-Language` header, English when none fits.
pub fn negotiate(accept_language: Option<&str>) -> &'static str {
    let requested = fluent_langneg::accepted_languages::parse(accept_language.unwrap_or(""));
    // Compare by primary subtag, as `supported` does: `de-AT` is German.
    let requested: Vec<LanguageIdentifier> = requested
        .iter()
        .filter_map(|id| supported(id.language.as_str()))
        .filter_map(|l| l.parse().ok())
        .collect();
    let available: Vec<LanguageIdentifier> =
        LANGUAGES.iter().filter_map(|l| l.parse().ok()).collect();
    let chosen = fluent_langneg::negotiate_languages(
        &requested,
        &available,
        None,
        fluent_langneg::NegotiationStrategy::Lookup,
    );
    chosen
        .first()
        .and_then(|id| supported(id.language.as_str()))
        .unwrap_or(LANGUAGES[0])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The message ids a catalogue defines: lines that start with an identifier and ` =`.
    fn ids(source: &str) -> Vec<&str> {
        source
            .lines()
            .filter_map(|line| line.split_once(" ="))
            .map(|(id, _)| id)
            .filter(|id| {
                id.starts_with(|c: char| c.is_ascii_lowercase())
                    && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            })
            .collect()
    }

    #[test]
    fn every_language_has_every_message_of_english_and_no_other() {
        let i18n = I18n::load().expect("catalogues load");
        let english = ids(CATALOGUES[0].1);
        assert!(english.len() > 50, "the parser found the messages");
        for (lang, source) in CATALOGUES {
            let mut missing: Vec<_> = english
                .iter()
                .filter(|id| i18n.bundle(lang).and_then(|b| b.get_message(id)).is_none())
                .collect();
            missing.sort();
            assert!(missing.is_empty(), "{lang}.ftl lacks {missing:?}");
            let extra: Vec<_> = ids(source)
                .into_iter()
                .filter(|id| !english.contains(id))
                .collect();
            assert!(
                extra.is_empty(),
                "{lang}.ftl has messages en.ftl lacks: {extra:?}"
            );
        }
    }

    #[test]
    fn languages_are_negotiated_by_primary_subtag_with_english_last() {
        assert_eq!(negotiate(Some("de-AT,de;q=0.9,en;q=0.5")), "de");
        assert_eq!(negotiate(Some("nl-BE")), "nl");
        assert_eq!(negotiate(Some("fr-FR, nl;q=0.4")), "nl");
        assert_eq!(negotiate(Some("fr")), "en");
        assert_eq!(negotiate(Some("")), "en");
        assert_eq!(negotiate(None), "en");
        assert_eq!(supported("NL_nl"), Some("nl"));
        assert_eq!(supported("he"), None);
    }

    #[test]
    fn numbers_use_each_languages_separators() {
        assert_eq!(format_number("en", 1_234_567.0, 0), "1,234,567");
        assert_eq!(format_number("nl", 1_234_567.0, 0), "1.234.567");
        assert_eq!(format_number("de", 1234.5, 2), "1.234,5");
        assert_eq!(format_number("en", 0.25, 2), "0.25");
        assert_eq!(format_number("en", 999.0, 0), "999");
        assert_eq!(format_number("en", -1000.0, 0), "-1,000");
        assert_eq!(format_number("en", -0.001, 2), "0");
    }

    #[test]
    fn plurals_and_numbers_go_through_fluent_in_each_language() {
        let i18n = I18n::load().expect("catalogues load");
        let count = |lang: &str, n: i64| {
            let mut args = FluentArgs::new();
            args.set("count", n);
            i18n.format(lang, "contacts-count", Some(&args))
                .map(|s| s.replace(['\u{2068}', '\u{2069}'], ""))
        };
        assert_eq!(count("en", 1).as_deref(), Some("1 contact"));
        assert_eq!(count("en", 1234).as_deref(), Some("1,234 contacts"));
        assert_eq!(count("nl", 1234).as_deref(), Some("1.234 contacten"));
        assert_eq!(count("de", 1).as_deref(), Some("1 Kontakt"));
    }

    #[test]
    fn dates_follow_each_languages_pattern() {
        let mut i18n = I18n::load().expect("catalogues load");
        i18n.zone = TimeZone::UTC;
        let at: jiff::Timestamp = "2026-11-05T14:07:00Z".parse().expect("a timestamp");
        assert_eq!(i18n.date("en", at), "5 November 2026");
        assert_eq!(i18n.date("nl", at), "5 november 2026");
        assert_eq!(i18n.date("de", at), "5. November 2026");
        assert_eq!(i18n.datetime("de", at), "5. November 2026, 14:07");
        assert_eq!(i18n.datetime("en", at), "5 November 2026, 14:07");
    }
}
