//! The sending side of one WebSocket connection: a queue bounded in bytes, and the writer task
//! that drains it into the socket and gives up on a client that stops reading.
//!
//! - Every queued text message holds permits of a byte budget ([`QUEUE_BYTES`]) until the
//!   writer has handed it to the socket; a sender waits while the budget is spent. What one
//!   connection holds in replies and notifications is bounded whatever its client does.
//! - Handing one message to the socket may take at most `server.write_timeout` (the socket takes
//!   nothing while the client does not read): past it the writer stops, logs why, and
//!   [`Outbox::closing`] fires, so the connection ends and its slot is freed.
//! - Control frames (ping, close) are small and bypass the budget.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message, Utf8Bytes, WebSocket};
use futures_util::stream::SplitSink;
use futures_util::SinkExt;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

/// Bytes of outgoing text one connection may have queued.
pub const QUEUE_BYTES: usize = 1 << 20;
/// How long the writer may take to deliver what is queued once the connection ends.
const CLOSE_FLUSH: Duration = Duration::from_secs(2);

enum Queued {
    Message(Message, Option<OwnedSemaphorePermit>),
    /// Deliver what came before, then stop.
    End,
}

/// The queue of one connection; clones share it.
#[derive(Debug, Clone)]
pub struct Outbox {
    tx: mpsc::UnboundedSender<Queued>,
    budget: Arc<Semaphore>,
    closing: CancellationToken,
}

/// The writer task of one connection.
#[derive(Debug)]
pub struct Writer {
    task: JoinHandle<()>,
    closing: CancellationToken,
}

impl Outbox {
    /// Starts the writer on `sink`. `shutdown` stops waiting senders (see [`Outbox::send_text`]).
    pub fn start(
        sink: SplitSink<WebSocket, Message>,
        write_timeout: Duration,
        shutdown: &CancellationToken,
    ) -> (Outbox, Writer) {
        let (tx, rx) = mpsc::unbounded_channel();
        let closing = shutdown.child_token();
        let task = tokio::spawn(write(sink, rx, write_timeout, closing.clone()));
        let outbox = Outbox {
            tx,
            budget: Arc::new(Semaphore::new(QUEUE_BYTES)),
            closing: closing.clone(),
        };
        (outbox, Writer { task, closing })
    }

    /// Queues a text message, waiting while the byte budget is spent. Returns `false` without
    /// queueing once the connection is closing (writer gone, or the service shutting down and
    /// no budget free at once).
    pub async fn send_text(&self, text: String) -> bool {
        let permit = tokio::select! {
            biased;
            permit = Arc::clone(&self.budget).acquire_many_owned(cost(&text)) => permit.ok(),
            () = self.closing.cancelled() => None,
        };
        match permit {
            Some(permit) => self.queue(Message::Text(Utf8Bytes::from(text)), Some(permit)),
            None => false,
        }
    }

    /// Queues a text message only if the budget allows it now; `false` when it is dropped.
    pub fn try_send_text(&self, text: String) -> bool {
        match Arc::clone(&self.budget).try_acquire_many_owned(cost(&text)) {
            Ok(permit) => self.queue(Message::Text(Utf8Bytes::from(text)), Some(permit)),
            Err(_) => false,
        }
    }

    /// Queues a ping or close frame (outside the budget). After a close frame the writer stops.
    pub fn send_control(&self, message: Message) -> bool {
        self.queue(message, None)
    }

    /// Resolves once the connection is closing: the writer stopped (client gone or not reading),
    /// or the service shuts down.
    pub fn closing(&self) -> WaitForCancellationFuture<'_> {
        self.closing.cancelled()
    }

    fn queue(&self, message: Message, permit: Option<OwnedSemaphorePermit>) -> bool {
        self.tx.send(Queued::Message(message, permit)).is_ok()
    }
}

impl Writer {
    /// Ends the connection's sending side: what is queued (and a close frame queued before)
    /// gets [`CLOSE_FLUSH`] to reach the client, then the socket half is dropped. Waiting senders
    /// give up.
    pub async fn finish(self, outbox: &Outbox) {
        let _ = outbox.tx.send(Queued::End);
        let mut task = self.task;
        if tokio::time::timeout(CLOSE_FLUSH, &mut task).await.is_err() {
            tracing::debug!("closing connection: queued messages not delivered in time");
            task.abort();
        }
        self.closing.cancel();
    }
}

/// Budget permits a text message takes: its length, at least 1, at most the whole budget.
fn cost(text: &str) -> u32 {
    u32::try_from(text.len().clamp(1, QUEUE_BYTES)).expect("QUEUE_BYTES fits in u32")
}

async fn write(
    mut sink: SplitSink<WebSocket, Message>,
    mut rx: mpsc::UnboundedReceiver<Queued>,
    write_timeout: Duration,
    closing: CancellationToken,
) {
    while let Some(Queued::Message(message, _permit)) = rx.recv().await {
        let is_close = matches!(message, Message::Close(_));
        match tokio::time::timeout(write_timeout, sink.send(message)).await {
            Ok(Ok(())) if is_close => break,
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::debug!("closing connection: sending failed: {e}");
                break;
            }
            Err(_) => {
                tracing::info!(
                    "closing connection: the client read nothing for {} (server.write_timeout)",
                    humantime::format_duration(write_timeout)
                );
                closing.cancel();
                return;
            }
        }
    }
    closing.cancel();
    let _ = tokio::time::timeout(CLOSE_FLUSH, sink.close()).await;
}
