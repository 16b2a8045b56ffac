//! One WebSocket connection: the connection slot, the upgrade-time bearer token, the read loop
//! with message size and rate limits, notification forwarding, and the bounds that keep one
//! client from holding more than its share:
//!
//! - **Requests in flight**: at most [`MAX_IN_FLIGHT`] requests of one connection are being
//!   handled or waiting to queue their reply. The read loop takes a slot *before* it reads the
//!   next message, so past the bound it stops reading and TCP pushes back on the client.
//! - **Outgoing bytes and write stalls**: replies and notifications go through the connection's
//!   [`Outbox`] (at most [`QUEUE_BYTES`](super::outbox::QUEUE_BYTES) queued; a client that takes nothing for
//!   `server.write_timeout` is dropped).
//!
//! So one connection holds at most `MAX_IN_FLIGHT` requests (each at most
//! `server.max_message_bytes`) plus `QUEUE_BYTES` of output, whatever its client does.
//!
//! And no connection holds its slot for nothing:
//!
//! - **Authentication deadline**: a connection not authenticated `server.auth_timeout` after
//!   it opened is closed with 1008; while it waits, a newcomer finding no free slot evicts it
//!   (1013, see [`super::slots`]).
//! - **Keepalive**: every `server.ping_interval` the service sends a ping; a connection from
//!   which nothing at all (not even a pong) arrived for `server.idle_timeout` is closed with
//!   1001, unless its own requests are still being handled.

use std::sync::Arc;
use std::time::Instant;

use tokio::time::MissedTickBehavior;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use tokio::sync::{broadcast, OwnedSemaphorePermit, Semaphore};

use super::outbox::Outbox;
use super::rate_limit::RateLimiter;
use super::server::ApiState;
use crate::auth::Caller;
use crate::rpc::{self, ErrorKind, RpcError, Session};

/// Requests of one connection handled at once; past it the connection is not read.
pub const MAX_IN_FLIGHT: usize = 32;
/// Close code for a message over the size limit (RFC 6455 "message too big").
const CLOSE_TOO_BIG: u16 = 1009;
/// Close code at shutdown ("going away").
const CLOSE_GOING_AWAY: u16 = 1001;
/// Close code for a text message that is not UTF-8 ("invalid frame payload data").
const CLOSE_INVALID_PAYLOAD: u16 = 1007;
/// Close code for a protocol violation.
const CLOSE_PROTOCOL_ERROR: u16 = 1002;
/// Close code for a connection that did not authenticate in time ("policy violation").
const CLOSE_POLICY: u16 = 1008;
/// Close code for a connection evicted for a newcomer ("try again later").
const CLOSE_TRY_AGAIN_LATER: u16 = 1013;

/// The token of an `Authorization: Bearer` header.
pub fn bearer_token(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

/// `GET /ws`: takes a connection slot (HTTP 503 when none is left), checks a bearer token if
/// one is sent (HTTP 401 when it is refused), then upgrades.
pub async fn upgrade(
    State(state): State<ApiState>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let Some(permit) = state.slots.acquire().await else {
        tracing::warn!("connection refused: max_connections reached, all authenticated");
        return (StatusCode::SERVICE_UNAVAILABLE, "too many connections").into_response();
    };
    let caller = match bearer_token(&headers) {
        None => None,
        Some(token) => match state.service.auth.verify(&token) {
            Ok(caller) => Some(caller),
            Err(e) => return (StatusCode::UNAUTHORIZED, e.to_string()).into_response(),
        },
    };
    let limit = state.service.config.server.max_message_bytes;
    ws.max_message_size(limit)
        .max_frame_size(limit)
        .on_upgrade(move |socket| connection(state, socket, caller, permit))
}

async fn connection(
    state: ApiState,
    socket: WebSocket,
    caller: Option<Caller>,
    _permit: OwnedSemaphorePermit,
) {
    let service = Arc::clone(&state.service);
    service.metrics.connection_opened();
    let session = Arc::new(Session::new(caller));
    let (sink, mut stream) = socket.split();
    let config = &service.config.server;
    let (outbox, writer) = Outbox::start(sink, config.write_timeout.0, &state.shutdown);
    let mut limiter = RateLimiter::new(config.rate_limit_per_second, config.rate_limit_burst);
    let mut notifications = service.notifier.subscribe();
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut next_slot: Option<OwnedSemaphorePermit> = None;
    let mut waiting_auth = session
        .caller()
        .is_none()
        .then(|| state.slots.unauthenticated());
    let eviction = waiting_auth
        .as_ref()
        .map(super::slots::Unauthenticated::eviction)
        .unwrap_or_default();
    let auth_deadline = tokio::time::sleep(config.auth_timeout.0);
    tokio::pin!(auth_deadline);
    let ping_interval = config.ping_interval.0;
    let mut keepalive =
        tokio::time::interval_at(tokio::time::Instant::now() + ping_interval, ping_interval);
    keepalive.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_heard = Instant::now();
    loop {
        tokio::select! {
            biased;
            () = state.shutdown.cancelled() => {
                // Deliver what was broadcast before shutdown (e.g. final recording updates), as
                // far as the queue takes it without waiting.
                while let Ok(note) = notifications.try_recv() {
                    if session.may_receive_notifications() {
                        outbox.try_send_text(rpc::notification(note.method, note.params).to_string());
                    }
                }
                outbox.send_control(close(CLOSE_GOING_AWAY, "service shutting down"));
                break;
            }
            () = outbox.closing() => break,
            () = &mut auth_deadline, if waiting_auth.is_some() => {
                tracing::info!("closing connection: not authenticated within server.auth_timeout");
                let reason = format!(
                    "authentication timeout: authenticate within {} (server.auth_timeout)",
                    humantime::format_duration(config.auth_timeout.0)
                );
                outbox.send_control(close(CLOSE_POLICY, reason));
                break;
            }
            () = eviction.cancelled(), if waiting_auth.is_some() => {
                tracing::info!("closing connection: not authenticated, its slot went to a newcomer");
                outbox.send_control(close(
                    CLOSE_TRY_AGAIN_LATER,
                    "all connection slots taken: a newcomer took the slot of this unauthenticated connection",
                ));
                break;
            }
            _ = keepalive.tick() => {
                if next_slot.is_none() {
                    // Not read because its own requests fill the in-flight bound: busy, not idle.
                    last_heard = Instant::now();
                }
                if last_heard.elapsed() >= config.idle_timeout.0 {
                    tracing::info!("closing connection: nothing received within server.idle_timeout");
                    let reason = format!(
                        "idle timeout: nothing received for {} (server.idle_timeout)",
                        humantime::format_duration(config.idle_timeout.0)
                    );
                    outbox.send_control(close(CLOSE_GOING_AWAY, reason));
                    break;
                }
                outbox.send_control(Message::Ping(Default::default()));
            }
            slot = Arc::clone(&in_flight).acquire_owned(), if next_slot.is_none() => {
                next_slot = slot.ok();
            }
            incoming = stream.next(), if next_slot.is_some() => {
                let slot = next_slot.take().expect("guarded by the branch condition");
                last_heard = Instant::now();
                match incoming {
                    Some(Ok(Message::Text(text))) => {
                        handle_text(&state, &session, &mut limiter, &outbox, text.as_str(), slot).await;
                        if waiting_auth.is_some() && session.caller().is_some() {
                            waiting_auth = None;
                        }
                    }
                    Some(Ok(Message::Binary(_))) => {
                        let error = RpcError::new(ErrorKind::InvalidRequest, "Invalid Request: binary frames are not supported");
                        outbox.send_text(rpc::failure(&rpc::RequestId::null(), &error)).await;
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                    Some(Ok(Message::Close(_))) | None => break,
                    Some(Err(e)) => {
                        let e_text = e.to_string();
                        let (code, reason) = close_for(e);
                        tracing::debug!(code, reason, "closing connection: {e_text}");
                        outbox.send_control(close(code, reason));
                        break;
                    }
                }
            }
            note = notifications.recv() => match note {
                Ok(note) => {
                    if session.may_receive_notifications() {
                        outbox.send_text(rpc::notification(note.method, note.params).to_string()).await;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "a slow client missed notifications");
                }
                Err(broadcast::error::RecvError::Closed) => {}
            },
        }
    }
    writer.finish(&outbox).await;
    service.metrics.connection_closed();
}

/// Handles one text message. `slot` (one of [`MAX_IN_FLIGHT`]) is held until the reply is
/// queued.
async fn handle_text(
    state: &ApiState,
    session: &Arc<Session>,
    limiter: &mut RateLimiter,
    outbox: &Outbox,
    text: &str,
    slot: OwnedSemaphorePermit,
) {
    let service = &state.service;
    let started = Instant::now();
    let request = match rpc::parse_request(text) {
        Ok(request) => request,
        Err(rpc::EnvelopeError { id, error }) => {
            service.metrics.request_done(started.elapsed(), true);
            outbox.send_text(rpc::failure(&id, &error)).await;
            return;
        }
    };
    if !limiter.try_take() {
        service.metrics.request_done(started.elapsed(), true);
        if let Some(id) = &request.id {
            let error = RpcError::new(ErrorKind::RateLimited, "Rate limit exceeded");
            outbox.send_text(rpc::failure(id, &error)).await;
        }
        return;
    }
    // `authenticate` runs inline so requests sent after it see the new identity; everything
    // else runs concurrently so a slow snapshot does not block pings on the same connection.
    let inline = request.method == rpc::Method::Authenticate.name();
    let service = Arc::clone(service);
    let session = Arc::clone(session);
    let outbox = outbox.clone();
    let task = async move {
        let result =
            rpc::catch_panic(&request.method, rpc::dispatch(&service, &session, &request)).await;
        service
            .metrics
            .request_done(started.elapsed(), result.is_err());
        if let Err(e) = &result {
            tracing::debug!(method = %request.method, code = e.kind.code(), "request failed: {e}");
        }
        // Only the reply waits for the queue, not the request (its params may be large).
        let rpc::Request { id, .. } = request;
        if let Some(id) = id {
            let reply = match result {
                Ok(value) => rpc::success(&id, value),
                Err(error) => rpc::failure(&id, &error),
            };
            drop(id);
            outbox.send_text(reply).await;
        }
        drop(slot);
    };
    if inline {
        task.await;
    } else {
        tokio::spawn(task);
    }
}

/// A close frame; `reason` must stay within the 123 bytes a close frame carries.
fn close(code: u16, reason: impl Into<String>) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from(reason.into()),
    }))
}

/// The close code and reason for a failed read (RFC 6455 §7.4.1).
fn close_for(error: axum::Error) -> (u16, &'static str) {
    match error.into_inner().downcast_ref::<tungstenite::Error>() {
        Some(tungstenite::Error::Capacity(_)) => (CLOSE_TOO_BIG, "message too big"),
        Some(tungstenite::Error::Utf8(_)) => (CLOSE_INVALID_PAYLOAD, "text message is not UTF-8"),
        _ => (CLOSE_PROTOCOL_ERROR, "protocol error"),
    }
}
