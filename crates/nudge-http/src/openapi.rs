//! The OpenAPI document: the paths come from the handlers' annotations; this module adds what
//! every operation shares (the bearer key and the error answers), so none is left out by hand.

use crate::error::{ErrorBody, ErrorDetail};
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Nudge API",
        description = "Contacts, groups, tags and custom fields of a Nudge server. \
            Every request needs `Authorization: Bearer <api key>`."
    ),
    servers((url = "/api/v1")),
    components(schemas(ErrorBody, ErrorDetail))
)]
struct ApiDoc;

pub fn base() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// Adds the security scheme and the error responses every operation can give.
pub fn finish(mut doc: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    if let Some(components) = doc.components.as_mut() {
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
    let error = |description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build()
    };
    for (path, item) in doc.paths.paths.iter_mut() {
        let has_id = path.contains('{');
        let ops = [
            (&mut item.get, false),
            (&mut item.delete, false),
            (&mut item.post, true),
            (&mut item.put, false),
            (&mut item.patch, true),
        ];
        for (op, takes_body) in ops {
            let Some(op) = op.as_mut() else { continue };
            op.security = Some(vec![SecurityRequirement::new::<_, [&str; 0], &str>(
                "api_key",
                [],
            )]);
            let responses = &mut op.responses.responses;
            let mut add = |status: &str, description: &str| {
                responses
                    .entry(status.to_owned())
                    .or_insert_with(|| error(description).into());
            };
            add("401", "No API key, or an unknown one (`unauthorized`)");
            add(
                "403",
                "The key lacks the scope this operation needs (`forbidden`)",
            );
            add(
                "422",
                "A field is at fault (`validation_failed`); `fields` names it",
            );
            add("500", "An internal error (`internal`)");
            if has_id {
                add("404", "No such resource, or it was erased (`not_found`)");
            }
            if takes_body {
                add("400", "The body is not JSON (`invalid_json`)");
                add("413", "The body is larger than 2 MiB (`payload_too_large`)");
                add(
                    "409",
                    "A duplicate or a resource still in use (for example `duplicate_email`)",
                );
            }
        }
    }
    doc
}
