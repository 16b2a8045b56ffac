//! The router and the accept loop (bounded HTTP phase, header-read timeout).

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::slots::Slots;
use crate::service::Service;

/// Shared state of all HTTP handlers.
#[derive(Debug, Clone)]
pub struct ApiState {
    /// The service.
    pub service: Arc<Service>,
    /// One slot per allowed WebSocket connection.
    pub slots: Arc<Slots>,
    /// Cancelled when the service shuts down; connections close with 1001.
    pub shutdown: CancellationToken,
}

impl ApiState {
    /// State for `service`, with `server.max_connections` slots.
    pub fn new(service: Arc<Service>, shutdown: CancellationToken) -> Self {
        let slots = service.config.server.max_connections;
        Self {
            service,
            slots: Arc::new(Slots::new(slots)),
            shutdown,
        }
    }
}

impl ApiState {
    /// Waits until every WebSocket connection has ended (all slots are free again). Upgraded
    /// connections are not tracked by the HTTP server's own graceful shutdown.
    pub async fn connections_closed(&self) {
        self.slots.all_free().await;
    }
}

/// Serves the API on `listener` until `state.shutdown` is cancelled, then waits for the HTTP
/// connections to finish (upgraded WebSockets are waited for by [`ApiState::connections_closed`]).
///
/// The accept loop bounds the HTTP phase (`axum::serve` bounds nothing): at most
/// `server.max_http_connections` connections are between accept and WebSocket upgrade (or
/// their end) — past that the loop stops accepting and new ones wait in the listen backlog — and
/// a connection that does not deliver a request's headers within `server.header_read_timeout`
/// (also while idle between keep-alive requests) is closed.
pub async fn serve(listener: TcpListener, state: ApiState) -> std::io::Result<()> {
    let shutdown = state.shutdown.clone();
    let config = &state.service.config.server;
    let header_read_timeout = config.header_read_timeout.0;
    let http_slots = Arc::new(Semaphore::new(config.max_http_connections));
    let app = Router::new()
        .route("/ws", get(super::ws::upgrade))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/files/{kind}/{name}", get(super::files::download))
        .with_state(state);
    let connections = TaskTracker::new();
    loop {
        let slot = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            slot = Arc::clone(&http_slots).acquire_owned() => slot.expect("the semaphore is never closed"),
        };
        let stream = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(e) => {
                    // Out of descriptors, or a connection aborted before it was taken.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        connections.spawn(serve_connection(
            stream,
            app.clone(),
            header_read_timeout,
            slot,
            shutdown.clone(),
        ));
    }
    connections.close();
    connections.wait().await;
    Ok(())
}

/// Pause after a failed accept, so running out of descriptors does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// One HTTP/1.1 connection, holding its HTTP-phase `slot` until it ends or is upgraded.
async fn serve_connection(
    stream: TcpStream,
    app: Router,
    header_read_timeout: Duration,
    slot: OwnedSemaphorePermit,
    shutdown: CancellationToken,
) {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    let connection = builder
        .serve_connection(TokioIo::new(stream), TowerToHyperService::new(app))
        .with_upgrades();
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(e) = result {
        tracing::debug!("HTTP connection ended: {e}");
    }
    drop(slot);
}

async fn health() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

async fn ready(
    axum::extract::State(state): axum::extract::State<ApiState>,
) -> (StatusCode, Json<serde_json::Value>) {
    let report = state.service.readiness.check().await;
    let cameras = state.service.cameras.list().len();
    let mut body = json!({
        "ready": report.is_ready(),
        "cameras": cameras,
        "backend": state.service.backend.name(),
    });
    if report.is_ready() {
        (StatusCode::OK, Json(body))
    } else {
        body["problems"] = json!(report.problems());
        (StatusCode::SERVICE_UNAVAILABLE, Json(body))
    }
}
