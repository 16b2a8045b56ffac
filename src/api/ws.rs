//! One WebSocket connection: the connection slot, the upgrade-time bearer token, the read loop
//! with message size and rate limits, a writer task, and notification forwarding.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::sync::{broadcast, mpsc, OwnedSemaphorePermit};

use super::rate_limit::RateLimiter;
use super::server::ApiState;
use crate::auth::Caller;
use crate::rpc::{self, ErrorKind, RpcError, Session};

/// Outgoing messages queued per connection before the reader waits for the writer.
const OUTGOING_QUEUE: usize = 64;
/// Close code for a message over the size limit (RFC 6455 "message too big").
const CLOSE_TOO_BIG: u16 = 1009;
/// Close code at shutdown ("going away").
const CLOSE_GOING_AWAY: u16 = 1001;
/// Close code for a text message that is not UTF-8 ("invalid frame payload data").
const CLOSE_INVALID_PAYLOAD: u16 = 1007;
/// Close code for a protocol violation.
const CLOSE_PROTOCOL_ERROR: u16 = 1002;

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
    let Ok(permit) = Arc::clone(&state.connection_slots).try_acquire_owned() else {
        tracing::warn!("connection refused: max_connections reached");
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
    let (mut sink, mut stream) = socket.split();
    let (out_tx, mut out_rx) = mpsc::channel::<Message>(OUTGOING_QUEUE);
    let writer = tokio::spawn(async move {
        while let Some(message) = out_rx.recv().await {
            let closing = matches!(message, Message::Close(_));
            if sink.send(message).await.is_err() || closing {
                break;
            }
        }
        let _ = sink.close().await;
    });
    let config = &service.config.server;
    let mut limiter = RateLimiter::new(config.rate_limit_per_second, config.rate_limit_burst);
    let mut notifications = service.notifier.subscribe();
    loop {
        tokio::select! {
            biased;
            () = state.shutdown.cancelled() => {
                // Deliver what was broadcast before shutdown (e.g. final recording updates).
                while let Ok(note) = notifications.try_recv() {
                    if session.may_receive_notifications() {
                        send_json(&out_tx, rpc::notification(note.method, note.params)).await;
                    }
                }
                let _ = out_tx.send(close(CLOSE_GOING_AWAY, "service shutting down")).await;
                break;
            }
            incoming = stream.next() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    handle_text(&state, &session, &mut limiter, &out_tx, text.as_str()).await;
                }
                Some(Ok(Message::Binary(_))) => {
                    let error = RpcError::new(ErrorKind::InvalidRequest, "Invalid Request: binary frames are not supported");
                    send_text(&out_tx, rpc::failure(&rpc::RequestId::null(), &error)).await;
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(Message::Close(_))) | None => break,
                Some(Err(e)) => {
                    let e_text = e.to_string();
                    let (code, reason) = close_for(e);
                    tracing::debug!(code, reason, "closing connection: {e_text}");
                    let _ = out_tx.send(close(code, reason)).await;
                    break;
                }
            },
            note = notifications.recv() => match note {
                Ok(note) => {
                    if session.may_receive_notifications() {
                        send_json(&out_tx, rpc::notification(note.method, note.params)).await;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "a slow client missed notifications");
                }
                Err(broadcast::error::RecvError::Closed) => {}
            },
        }
    }
    drop(out_tx);
    let _ = writer.await;
    service.metrics.connection_closed();
}

async fn handle_text(
    state: &ApiState,
    session: &Arc<Session>,
    limiter: &mut RateLimiter,
    out_tx: &mpsc::Sender<Message>,
    text: &str,
) {
    let service = &state.service;
    let started = Instant::now();
    let request = match rpc::parse_request(text) {
        Ok(request) => request,
        Err(rpc::EnvelopeError { id, error }) => {
            service.metrics.request_done(started.elapsed(), true);
            send_text(out_tx, rpc::failure(&id, &error)).await;
            return;
        }
    };
    if !limiter.try_take() {
        service.metrics.request_done(started.elapsed(), true);
        if let Some(id) = &request.id {
            let error = RpcError::new(ErrorKind::RateLimited, "Rate limit exceeded");
            send_text(out_tx, rpc::failure(id, &error)).await;
        }
        return;
    }
    // `authenticate` runs inline so requests sent after it see the new identity; everything
    // else runs concurrently so a slow snapshot does not block pings on the same connection.
    let inline = request.method == rpc::Method::Authenticate.name();
    let service = Arc::clone(service);
    let session = Arc::clone(session);
    let out_tx = out_tx.clone();
    let task = async move {
        let result =
            rpc::catch_panic(&request.method, rpc::dispatch(&service, &session, &request)).await;
        service
            .metrics
            .request_done(started.elapsed(), result.is_err());
        if let Err(e) = &result {
            tracing::debug!(method = %request.method, code = e.kind.code(), "request failed: {e}");
        }
        if let Some(id) = &request.id {
            let reply = match result {
                Ok(value) => rpc::success(id, value),
                Err(error) => rpc::failure(id, &error),
            };
            send_text(&out_tx, reply).await;
        }
    };
    if inline {
        task.await;
    } else {
        tokio::spawn(task);
    }
}

async fn send_json(out_tx: &mpsc::Sender<Message>, value: Value) {
    send_text(out_tx, value.to_string()).await;
}

async fn send_text(out_tx: &mpsc::Sender<Message>, text: String) {
    let _ = out_tx.send(Message::Text(Utf8Bytes::from(text))).await;
}

fn close(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
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
