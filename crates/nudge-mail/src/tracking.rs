//! Open and click tracking in a rendered HTML body: every web link becomes a signed redirect
//! through the server, and an invisible pixel reports the open.
//!
//! The rewriting works on the attribute text of `<a href>` only and leaves the rest of the
//! markup byte for byte as the template rendered it.

/// Routes the message's web links through signed click redirects and adds the open pixel.
pub fn track(html: &str, public_url: &str, secret: &[u8], message: uuid::Uuid) -> String {
    let base = public_url.trim_end_matches('/');
    let linked = rewrite_links(html, |url| {
        is_trackable(url, base).then(|| {
            format!(
                "{base}/c/{}",
                nudge_core::token::sign_link(secret, message, url)
            )
        })
    });
    let open = nudge_core::token::sign(secret, nudge_core::token::Purpose::Open, message);
    add_pixel(&linked, &format!("{base}/o/{open}"))
}

/// Replaces the target of every `<a href="...">` for which `rewrite` returns a new URL.
/// `rewrite` receives the target with HTML character references decoded.
pub fn rewrite_links(html: &str, mut rewrite: impl FnMut(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(html.len() + 256);
    let mut rest = html;
    while let Some(start) = find_anchor(rest) {
        let Some(tag_len) = rest[start..].find('>') else {
            break;
        };
        let tag = &rest[start..start + tag_len];
        out.push_str(&rest[..start]);
        match href_value(tag) {
            Some((from, to)) => {
                let target = decode_entities(&tag[from..to]);
                match rewrite(&target) {
                    Some(new) => {
                        out.push_str(&tag[..from]);
                        out.push_str(&escape_attribute(&new));
                        out.push_str(&tag[to..]);
                    }
                    None => out.push_str(tag),
                }
            }
            None => out.push_str(tag),
        }
        rest = &rest[start + tag_len..];
    }
    out.push_str(rest);
    out
}

/// Adds a 1×1 image that loads `pixel_url`, just before `</body>` (or at the end).
pub fn add_pixel(html: &str, pixel_url: &str) -> String {
    let img = format!(
        "<img src=\"{}\" width=\"1\" height=\"1\" alt=\"\" style=\"display:block;border:0\">",
        escape_attribute(pixel_url)
    );
    match html.to_ascii_lowercase().rfind("</body>") {
        Some(i) if html.is_char_boundary(i) => format!("{}{img}{}", &html[..i], &html[i..]),
        _ => format!("{html}{img}"),
    }
}

/// Whether a link is one to track: web links only, and not links back to this server
/// (unsubscribe and preference pages must work without a detour).
pub fn is_trackable(url: &str, public_url: &str) -> bool {
    let lower = url.trim().to_ascii_lowercase();
    (lower.starts_with("http://") || lower.starts_with("https://"))
        && !lower.starts_with(&public_url.to_ascii_lowercase())
}

/// The byte offset of the next `<a` tag (followed by white space), case-insensitively.
fn find_anchor(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut i = 0;
    while let Some(pos) = s[i..].find('<') {
        let at = i + pos;
        let next = bytes.get(at + 1).copied();
        let after = bytes.get(at + 2).copied();
        if matches!(next, Some(b'a' | b'A')) && after.is_some_and(|b| b.is_ascii_whitespace()) {
            return Some(at);
        }
        i = at + 1;
    }
    None
}

/// The byte range of the `href` attribute's value inside a tag, without its quotes.
fn href_value(tag: &str) -> Option<(usize, usize)> {
    let lower = tag.to_ascii_lowercase();
    let bytes = tag.as_bytes();
    let mut search = 0;
    while let Some(pos) = lower[search..].find("href") {
        let at = search + pos;
        search = at + 4;
        // It must be a whole attribute name: preceded by white space.
        if !bytes
            .get(at.wrapping_sub(1))
            .is_some_and(|b| b.is_ascii_whitespace())
        {
            continue;
        }
        let mut i = at + 4;
        while bytes.get(i).is_some_and(|b| b.is_ascii_whitespace()) {
            i += 1;
        }
        if bytes.get(i) != Some(&b'=') {
            continue;
        }
        i += 1;
        while bytes.get(i).is_some_and(|b| b.is_ascii_whitespace()) {
            i += 1;
        }
        return match bytes.get(i) {
            Some(&q @ (b'"' | b'\'')) => {
                let end = tag[i + 1..].find(char::from(q))? + i + 1;
                Some((i + 1, end))
            }
            Some(_) => {
                let end = tag[i..]
                    .find(|c: char| c.is_ascii_whitespace() || c == '>')
                    .map_or(tag.len(), |e| e + i);
                Some((i, end))
            }
            None => None,
        };
    }
    None
}

fn decode_entities(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn escape_attribute(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redirect(url: &str) -> Option<String> {
        is_trackable(url, "https://nudge.example")
            .then(|| format!("https://nudge.example/c/{}", url.len()))
    }

    #[test]
    fn links_are_rewritten_and_everything_else_kept() {
        let cases = [
            (
                r#"<p>Hi <a href="https://a.example/x?y=1&amp;z=2">here</a></p>"#,
                r#"<p>Hi <a href="https://nudge.example/c/27">here</a></p>"#,
            ),
            (
                r#"<A class='b' HREF='http://b.example'>b</A>"#,
                r#"<A class='b' HREF='https://nudge.example/c/16'>b</A>"#,
            ),
            (
                r#"<a href=https://c.example/>c</a>"#,
                r#"<a href=https://nudge.example/c/18>c</a>"#,
            ),
            (
                r#"<a href="mailto:x@example.com">m</a>"#,
                r#"<a href="mailto:x@example.com">m</a>"#,
            ),
            (
                r#"<a href="https://nudge.example/unsubscribe/t">u</a>"#,
                r#"<a href="https://nudge.example/unsubscribe/t">u</a>"#,
            ),
            (
                r#"<abbr title="a">x</abbr><a name="top">t</a>"#,
                r#"<abbr title="a">x</abbr><a name="top">t</a>"#,
            ),
            (
                r#"<a data-href="x" href="https://d.example">d</a>"#,
                r#"<a data-href="x" href="https://nudge.example/c/17">d</a>"#,
            ),
            (
                "<p>unclosed <a href=\"https://e.example\"",
                "<p>unclosed <a href=\"https://e.example\"",
            ),
            (
                "Grüße <a href=\"https://ü.example\">ü</a>",
                "Grüße <a href=\"https://nudge.example/c/18\">ü</a>",
            ),
        ];
        for (html, expected) in cases {
            assert_eq!(rewrite_links(html, redirect), expected, "{html}");
        }
    }

    #[test]
    fn the_pixel_goes_before_the_end_of_the_body() {
        let html = add_pixel(
            "<html><body><p>x</p></BODY></html>",
            "https://n.example/o/t?a=1&b=2",
        );
        assert!(
            html.starts_with("<html><body><p>x</p><img src=\"https://n.example/o/t?a=1&amp;b=2\""),
            "{html}"
        );
        assert!(html.ends_with("</BODY></html>"));
        assert!(add_pixel("<p>x</p>", "u").ends_with("alt=\"\" style=\"display:block;border:0\">"));
    }
}
