//! The router and the accept loop.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

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

/// Serves the API on `listener` until `state.shutdown` is cancelled.
pub async fn serve(listener: TcpListener, state: ApiState) -> std::io::Result<()> {
    let shutdown = state.shutdown.clone();
    let app = Router::new()
        .route("/ws", get(super::ws::upgrade))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/files/{kind}/{name}", get(super::files::download))
        .with_state(state);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

async fn health() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

async fn ready(
    axum::extract::State(state): axum::extract::State<ApiState>,
) -> (StatusCode, Json<serde_json::Value>) {
    let storage = &state.service.storage;
    let dirs_ok = [
        crate::storage::FileKind::Recording,
        crate::storage::FileKind::Snapshot,
    ]
    .into_iter()
    .all(|kind| storage.dir(kind).is_dir());
    let cameras = state.service.cameras.list().len();
    let body = json!({
        "ready": dirs_ok,
        "cameras": cameras,
        "backend": state.service.backend.name(),
    });
    if dirs_ok {
        (StatusCode::OK, Json(body))
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, Json(body))
    }
}
