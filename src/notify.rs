//! Server-to-client notifications, fanned out to every authenticated connection.

use serde_json::Value;
use tokio::sync::broadcast;

/// Notifications a slow client may lag behind before it misses some.
const BACKLOG: usize = 256;

/// One notification: a method name and its params.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// `camera_status_update` or `recording_status_update`.
    pub method: &'static str,
    /// The params object.
    pub params: Value,
}

/// The broadcast hub. Cloning shares the hub.
#[derive(Debug, Clone)]
pub struct Notifier {
    tx: broadcast::Sender<Notification>,
}

impl Default for Notifier {
    fn default() -> Self {
        Self {
            tx: broadcast::channel(BACKLOG).0,
        }
    }
}

impl Notifier {
    /// Sends to every current subscriber (none is fine).
    pub fn send(&self, method: &'static str, params: Value) {
        tracing::debug!(method, %params, "notification");
        let _ = self.tx.send(Notification { method, params });
    }

    /// A new subscription, seeing notifications sent from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Notification> {
        self.tx.subscribe()
    }
}
