//! The admin UI's two static files, embedded in the binary: the stylesheet and htmx (vendored
//! from the npm package `htmx.org` 4.0.1, `dist/htmx.min.js`, unchanged; 0BSD).

use axum::extract::Path;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::sync::LazyLock;

use super::Failure;

const FILES: [(&str, &str, &str); 2] = [
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("../../assets/app.css"),
    ),
    (
        "htmx.min.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/htmx.min.js"),
    ),
];

/// A short hash of both files. Pages link them with `?v=` this, so a browser may keep them a
/// year and still fetches the new ones the moment a release changes them.
pub fn version() -> &'static str {
    static VERSION: LazyLock<String> = LazyLock::new(|| {
        let mut hash = Sha256::new();
        for (_, _, body) in FILES {
            hash.update(body.as_bytes());
        }
        hash.finalize()
            .iter()
            .take(6)
            .map(|b| format!("{b:02x}"))
            .collect()
    });
    &VERSION
}

/// `GET /admin/static/{file}`: no session needed, since the sign-in page uses them too.
pub async fn serve(Path(file): Path<String>) -> Result<Response, Failure> {
    let (_, content_type, body) = FILES
        .into_iter()
        .find(|(name, _, _)| *name == file)
        .ok_or(Failure::NotFound)?;
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        body,
    )
        .into_response())
}
