//! Answers many routes document alike, for `responses(…)` in a `#[utoipa::path]`, so each
//! description is written once. They are only described — the handlers answer through
//! [`super::ApiError`] and `tagged_json` — hence `allow(dead_code)`. A tagged read's
//! `ETag`, `Cache-Control` and 304 are added to the document by [`document_tagged_reads`].

use super::ErrorBody;
use super::conditional::CACHE_CONTROL;
use utoipa::IntoResponses;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::ParameterIn;
use utoipa::openapi::{OpenApi, RefOr};

/// A tagged read's answer to an `If-None-Match` that names the current tag.
#[derive(IntoResponses)]
#[allow(dead_code)]
enum NotModified {
    #[response(
        status = 304,
        description = "Not modified: If-None-Match names the current ETag"
    )]
    NotModified,
}

/// Every read that takes `If-None-Match` (`params(IfNoneMatch)`) answers as CONTRACT §14
/// has it — its 200 carries `ETag` and `Cache-Control`, and it may answer 304 — so the
/// document says so here, once, rather than in each route's `responses(…)`.
pub fn document_tagged_reads(openapi: &mut OpenApi) {
    let reads = openapi
        .paths
        .paths
        .values_mut()
        .filter_map(|item| item.get.as_mut());
    for read in reads.filter(|read| {
        read.parameters.iter().flatten().any(|parameter| {
            matches!(parameter, RefOr::T(p) if p.parameter_in == ParameterIn::Header && p.name == "If-None-Match")
        })
    }) {
        let answers = &mut read.responses.responses;
        if let Some(RefOr::T(ok)) = answers.get_mut("200") {
            let etag = "Tag of this answer: sent back in If-None-Match, it gets 304 while the answer is unchanged";
            let headers = [("ETag", etag.to_owned()), ("Cache-Control", CACHE_CONTROL.to_owned())];
            for (name, description) in headers {
                let header = HeaderBuilder::new().description(Some(description)).build();
                ok.headers.insert(name.to_owned(), header.into());
            }
        }
        answers.extend(NotModified::responses());
    }
}

/// A route that takes a JSON body ([`super::Json`]): what the extractor and the body limit
/// answer before the handler runs.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum JsonBodyRejected {
    #[response(status = 400, description = "Not JSON")]
    NotJson(ErrorBody),
    #[response(status = 413, description = "Body over 64 KiB")]
    TooLarge(ErrorBody),
    #[response(status = 415, description = "Not application/json")]
    NotJsonContent(ErrorBody),
}

/// A route of the API when authentication is on.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum BearerRequired {
    #[response(
        status = 401,
        description = "Authentication is on and no valid bearer token was sent"
    )]
    Unauthenticated(ErrorBody),
}

/// An admin route (`Authorization: Bearer $ADMIN_TOKEN` or an `orders:admin` JWT).
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum AdminRequired {
    #[response(status = 401, description = "No or a wrong admin token")]
    Unauthorized(ErrorBody),
    #[response(status = 403, description = "Admin routes are off (ADMIN_TOKEN unset)")]
    AdminOff(ErrorBody),
}

/// An admin action without a body ([`super::Admin`] on a POST): the admin token, and a
/// JSON content type or an `X-Requested-By` header, which a cross-site form cannot send.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum AdminAction {
    #[response(status = 401, description = "No or a wrong admin token")]
    Unauthorized(ErrorBody),
    #[response(status = 403, description = "Admin routes are off (ADMIN_TOKEN unset)")]
    AdminOff(ErrorBody),
    #[response(
        status = 415,
        description = "Neither a JSON content type nor X-Requested-By"
    )]
    NoRequestedBy(ErrorBody),
}

/// A route that needs the database.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum DatabaseDown {
    #[response(status = 503, description = "The database is unavailable")]
    Unavailable(ErrorBody),
}

/// A route that needs the broker.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum BrokerDown {
    #[response(status = 503, description = "RabbitMQ is not connected")]
    Unavailable(ErrorBody),
}
