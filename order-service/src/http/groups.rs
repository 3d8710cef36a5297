//! Dead letters grouped by cause (CONTRACT §16): hundreds of failures of one outage are one
//! group — one service, one event type, one error once ids, numbers and quoted values are
//! masked ([`crate::cause`]) — replayed once the cause is fixed, or discarded, as a whole.
//! A group action takes exactly the group's messages in the queue at that moment; one that
//! arrives meanwhile waits for the next action.

use super::AppState;
use super::console::{Act, WALKING};
use super::letters::{broken, link, queue_of, record};
use crate::cause;
use axum::Json;
use axum::extract::State;
use axum::response::Response;
use common::amqp::dead_letters::{self, DeadLetter, Held};
use common::http::ops::{Discarded, Replayed};
use common::http::responses::{AdminAction, AdminRequired, BrokerDown};
use common::http::{Actor, Admin, ApiError, ErrorBody, IfNoneMatch, Path, tagged_json};
use contract::Service;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::HashMap;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// How many message ids a group lists.
const LISTED_IDS: usize = 10;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_groups))
        .routes(routes!(replay_group))
        .routes(routes!(discard_group))
}

/// The dead letters of one cause.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Group {
    /// The group's id for the `…/groups/{group}/…` actions: a hash of service, event type
    /// and masked error, the same for as long as the cause lasts.
    pub group: String,
    /// `order`, `inventory`, `payment` or `notification`.
    pub service: String,
    /// The event type, `null` for messages that carry none.
    pub event_type: Option<String>,
    /// The error with ids, numbers and quoted values masked.
    pub error: String,
    pub count: u64,
    /// The earliest first failure among the group's messages (RFC 3339).
    pub first_failed_at: Option<String>,
    /// The latest last failure among them (RFC 3339).
    pub last_failed_at: Option<String>,
    /// The first ten messages' ids, in queue order.
    pub message_ids: Vec<String>,
}

/// One group of dead letters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct GroupPath {
    /// A `group` as `GET /admin/dead-letters/groups` shows it.
    group: String,
}

/// The group `letter` of `service` belongs to.
fn group_of(service: Service, letter: &DeadLetter) -> String {
    cause::group_id(
        service.short_name(),
        letter.event_type.as_deref().unwrap_or(""),
        &cause::mask(letter.error.as_deref().unwrap_or("")),
    )
}

/// Sums `letters` of `service` up by group, into `groups` (kept in first-seen order).
fn add_up(service: Service, letters: &[DeadLetter], groups: &mut Vec<Group>) {
    let mut index: HashMap<String, usize> = HashMap::new();
    for letter in letters {
        let id = group_of(service, letter);
        let at = *index.entry(id.clone()).or_insert_with(|| {
            groups.push(Group {
                group: id,
                service: service.short_name().to_owned(),
                event_type: letter.event_type.clone(),
                error: cause::mask(letter.error.as_deref().unwrap_or("")),
                count: 0,
                first_failed_at: None,
                last_failed_at: None,
                message_ids: Vec::new(),
            });
            groups.len() - 1
        });
        let group = &mut groups[at];
        group.count += 1;
        let first = letter
            .first_failed_at
            .as_ref()
            .or(letter.failed_at.as_ref());
        if let Some(first) = first
            && group
                .first_failed_at
                .as_ref()
                .is_none_or(|known| first < known)
        {
            group.first_failed_at = Some(first.clone());
        }
        if let Some(last) = &letter.failed_at
            && group
                .last_failed_at
                .as_ref()
                .is_none_or(|known| last > known)
        {
            group.last_failed_at = Some(last.clone());
        }
        if let Some(id) = &letter.message_id
            && group.message_ids.len() < LISTED_IDS
        {
            group.message_ids.push(id.clone());
        }
    }
}

/// Every service's dead letters read whole, in groups (biggest first). The letters are
/// given back after the answer, while this walk still holds the queues: the next walk
/// waits for them, the operator does not.
async fn read_groups(state: &AppState) -> Result<Vec<Group>, ApiError> {
    let link = link(state)?;
    let walking = WALKING.lock().await;
    let started = std::time::Instant::now();
    let mut groups = Vec::new();
    let mut held = Vec::new();
    for service in Service::ALL {
        let queue = queue_of(state, service).dead_letters;
        match dead_letters::read_and_hold(&link, &queue).await {
            Ok((letters, letters_held)) => {
                held.extend(letters_held);
                add_up(service, &letters, &mut groups);
            }
            Err(error) => {
                give_back_later(walking, held);
                return Err(broken(error));
            }
        }
    }
    let read = held.iter().map(Held::count).sum::<u32>();
    tracing::debug!(read, elapsed = ?started.elapsed(), "dead letters read for the groups");
    give_back_later(walking, held);
    groups.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.group.cmp(&b.group)));
    Ok(groups)
}

/// Gives `held` back in the background, holding the queues (`walking`) until done.
fn give_back_later(walking: tokio::sync::MutexGuard<'static, ()>, held: Vec<Held>) {
    tokio::spawn(async move {
        let _walking = walking;
        let started = std::time::Instant::now();
        for letters in held {
            if let Err(error) = letters.give_back().await {
                tracing::warn!(%error, "dead letters read for the groups were not given back");
            }
        }
        tracing::debug!(elapsed = ?started.elapsed(), "dead letters given back");
    });
}

/// Every service's dead letters grouped by service, event type and masked error, biggest
/// group first. Tagged (CONTRACT §14): a poll whose `If-None-Match` names the current tag
/// gets 304. Admin route: `Authorization: Bearer $ADMIN_TOKEN` (or an `orders:admin` JWT).
#[utoipa::path(get, path = "/admin/dead-letters/groups", tag = "dead letters",
    params(IfNoneMatch),
    responses(
    (status = 200, description = "The groups", body = Vec<Group>),
    AdminRequired,
    BrokerDown),
    security(("admin_token" = [])))]
async fn list_groups(
    _admin: Admin,
    condition: IfNoneMatch,
    State(state): State<AppState>,
) -> Result<Response, ApiError> {
    Ok(tagged_json(&condition, &read_groups(&state).await?))
}

/// The group `group` as it is now, with the service whose dead letters hold it.
async fn find(state: &AppState, group: &str) -> Result<(Service, Group), ApiError> {
    read_groups(state)
        .await?
        .into_iter()
        .find(|known| known.group == group)
        .and_then(|known| {
            Service::ALL
                .into_iter()
                .find(|service| service.short_name() == known.service)
                .map(|service| (service, known))
        })
        .ok_or_else(|| ApiError::NotFound(format!("no dead-letter group {group:?}")))
}

/// What the log keeps of a group acted on: its cause, and how big it was when read.
fn cause_of(group: &Group) -> serde_json::Value {
    json!({
        "service": group.service,
        "event_type": group.event_type,
        "error": group.error,
        "count": group.count,
    })
}

/// Sends every dead letter of `{group}` now in its queue back for another try (retries
/// afresh), leaving the others in order. Admin route; `Content-Type: application/json` or
/// an `X-Requested-By` header.
#[utoipa::path(post, path = "/admin/dead-letters/groups/{group}/replay", tag = "dead letters",
    params(GroupPath), responses(
    (status = 200, description = "How many were moved", body = Replayed),
    (status = 404, description = "No dead letters in that group", body = ErrorBody),
    AdminAction,
    BrokerDown),
    security(("admin_token" = [])))]
async fn replay_group(
    Admin(actor): Admin,
    State(state): State<AppState>,
    Path(path): Path<GroupPath>,
) -> Result<Json<Replayed>, ApiError> {
    let replayed = act_on_group(&state, &actor, &path.group, Act::Replay).await?;
    Ok(Json(Replayed { replayed }))
}

/// Removes every dead letter of `{group}` now in its queue for good, leaving the others in
/// order. Admin route, as the group's replay.
#[utoipa::path(post, path = "/admin/dead-letters/groups/{group}/discard", tag = "dead letters",
    params(GroupPath), responses(
    (status = 200, description = "How many were removed", body = Discarded),
    (status = 404, description = "No dead letters in that group", body = ErrorBody),
    AdminAction,
    BrokerDown),
    security(("admin_token" = [])))]
async fn discard_group(
    Admin(actor): Admin,
    State(state): State<AppState>,
    Path(path): Path<GroupPath>,
) -> Result<Json<Discarded>, ApiError> {
    let discarded = act_on_group(&state, &actor, &path.group, Act::Discard).await?;
    Ok(Json(Discarded { discarded }))
}

/// Replays or discards every dead letter of `group_id` now in its queue (a letter that
/// arrives meanwhile waits for the next action), leaving the others in order, and logs it;
/// returns how many it moved.
async fn act_on_group(
    state: &AppState,
    actor: &Actor,
    group_id: &str,
    action: Act,
) -> Result<u32, ApiError> {
    let (service, group) = find(state, group_id).await?;
    let link = link(state)?;
    let queue = queue_of(state, service);
    let in_group = |letter: &DeadLetter| group_of(service, letter) == group_id;
    let count = {
        let _walking = WALKING.lock().await;
        match action {
            Act::Replay => dead_letters::replay_where(&link, &queue, in_group).await,
            Act::Discard => dead_letters::discard_where(&link, &queue, in_group).await,
        }
        .map_err(broken)?
    };
    let name = format!("{}-group", action.action());
    let counted = action.counted();
    let target = format!("group/{group_id}");
    let result = json!({ counted: count });
    record(state, actor, &name, &target, cause_of(&group), result).await?;
    Ok(count)
}
