//! Edit and replay (CONTRACT §16): a dead letter whose content is the problem (a client bug
//! let a bad body through) is corrected by hand and sent again. The new body must match
//! the event's JSON Schema from the contract, or nothing moves; it keeps the letter's event
//! id, so the consumer's inbox still handles it once; the original body goes to the
//! operator log.

use super::AppState;
use super::console::{MessagePath, WALKING};
use super::letters::{broken, link, no_dead_letter, queue_of, record, service};
use crate::schema_check::{self, SchemaCheckError};
use axum::Json;
use axum::extract::State;
use common::amqp::dead_letters::{self, DeadLetter};
use common::http::ops::Replayed;
use common::http::responses::{AdminRequired, BrokerDown, JsonBodyRejected};
use common::http::{Admin, ApiError, ErrorBody, FieldError, LocPart, Path, ValidationErrorBody};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(edit))
}

/// The corrected body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct Edit {
    /// The whole event body to send instead of the dead letter's; its `event_id`, if
    /// given, must be the letter's.
    #[schema(value_type = Object)]
    body: Value,
}

/// Replaces the dead letter `{message_id}` of `{service}` with the edited `body` on the
/// service's queue — same event id and properties, headers `x-edited-by` and
/// `x-edited-at` — once the body matches the event's schema from the contract; the
/// original body is kept in the operator log. Admin route; JSON body.
#[utoipa::path(post, path = "/admin/dead-letters/{service}/{message_id}/edit",
    tag = "dead letters", params(MessagePath), request_body = Edit, responses(
    (status = 200, description = "The edited message is back on the queue", body = Replayed),
    AdminRequired,
    JsonBodyRejected,
    (status = 404, description = "No such service, or no dead letter with that id", body = ErrorBody),
    (status = 422, description = "The body does not match the event's schema (each error located), or the event type has no schema; nothing moved", body = ValidationErrorBody),
    BrokerDown),
    security(("admin_token" = [])))]
async fn edit(
    Admin(actor): Admin,
    State(state): State<AppState>,
    Path(path): Path<MessagePath>,
    common::http::Json(request): common::http::Json<Edit>,
) -> Result<Json<Replayed>, ApiError> {
    let service = service(&path.service)?;
    let queue = queue_of(&state, service);
    let link = link(&state)?;
    let _walking = WALKING.lock().await;
    let letters = dead_letters::read_all(&link, &queue.dead_letters)
        .await
        .map_err(broken)?;
    let not_found = || no_dead_letter(service, &path.message_id);
    let letter = letters
        .into_iter()
        .find(|letter| letter.message_id.as_deref() == Some(path.message_id.as_str()))
        .ok_or_else(not_found)?;
    let event_type = event_type(&letter);
    if !schema_check::is_known(&event_type) {
        return Err(refused(SchemaCheckError::UnknownEventType(event_type)));
    }
    let mut body = request.body;
    keep_event_id(&mut body, &path.message_id)?;
    schema_check::check(&event_type, &body).map_err(refused)?;
    let bytes = serde_json::to_vec(&body).map_err(ApiError::internal)?;
    let replaced = dead_letters::replace(&link, &queue, &path.message_id, &bytes, actor.name())
        .await
        .map_err(broken)?
        .ok_or_else(not_found)?;
    let original = serde_json::from_str(&replaced.body).unwrap_or(Value::String(replaced.body));
    let target = format!("{}/{}", service.short_name(), path.message_id);
    let detail = json!({
        "event_type": event_type,
        "error": replaced.error,
        "original_body": original,
    });
    let result = json!({ "replayed": 1, "body": body });
    record(&state, &actor, "edit", &target, detail, result).await?;
    Ok(Json(Replayed { replayed: 1 }))
}

/// The letter's event type: its AMQP `type`, else its body's `event_type`, else what its
/// routing key carries.
fn event_type(letter: &DeadLetter) -> String {
    if let Some(kind) = &letter.event_type {
        return kind.clone();
    }
    let from_body = serde_json::from_str::<Value>(&letter.body)
        .ok()
        .and_then(|body| body.get("event_type")?.as_str().map(str::to_owned));
    from_body
        .or_else(|| {
            let key = letter.routing_key.as_deref()?;
            schema_check::event_type_of_routing_key(key).map(str::to_owned)
        })
        .unwrap_or_default()
}

/// The edit keeps the event's identity: a body without `event_id` gets the letter's, one
/// with another is refused.
fn keep_event_id(body: &mut Value, message_id: &str) -> Result<(), ApiError> {
    let Some(object) = body.as_object_mut() else {
        return Err(ApiError::invalid(
            vec!["body".into(), "body".into()],
            "must be a JSON object: the whole event body",
        ));
    };
    match object.get("event_id") {
        None => {
            object.insert("event_id".into(), message_id.into());
            Ok(())
        }
        Some(id) if id.as_str() == Some(message_id) => Ok(()),
        Some(_) => Err(ApiError::invalid(
            vec!["body".into(), "body".into(), "event_id".into()],
            format!("must stay {message_id:?}: an edit keeps the event's id"),
        )),
    }
}

/// A failed check as a 422: the schema's errors, each located in the body.
fn refused(error: SchemaCheckError) -> ApiError {
    match error {
        SchemaCheckError::UnknownEventType(_) => {
            ApiError::invalid(vec!["path".into(), "message_id".into()], error.to_string())
        }
        SchemaCheckError::Mismatch { errors, .. } => ApiError::Validation(
            errors
                .into_iter()
                .map(|(pointer, message)| {
                    let mut loc: Vec<LocPart> = vec!["body".into(), "body".into()];
                    loc.extend(pointer.split('/').skip(1).map(
                        |part| match part.parse::<usize>() {
                            Ok(index) => LocPart::Index(index),
                            Err(_) => part.replace("~1", "/").replace("~0", "~").into(),
                        },
                    ));
                    FieldError::new(loc, message)
                })
                .collect(),
        ),
    }
}
