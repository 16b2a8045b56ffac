//! WebSocket connection slots (`server.max_connections`), and the connections that have not
//! authenticated yet, which can never keep a slot from a newcomer: when every slot is taken, a
//! new connection evicts the one that has been waiting to authenticate longest (it is closed
//! with 1013 "try again later"). Only when every connection is authenticated does a newcomer
//! get HTTP 503.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

/// How long a newcomer waits for an evicted connection to give its slot back.
const EVICTION_WAIT: Duration = Duration::from_secs(3);

/// The slots of all WebSocket connections.
#[derive(Debug)]
pub struct Slots {
    permits: Arc<Semaphore>,
    max: usize,
    /// Unauthenticated connections by arrival (oldest first) and how to evict each.
    unauthenticated: Mutex<BTreeMap<u64, CancellationToken>>,
    next_id: AtomicU64,
}

/// The registration of one connection that has not authenticated; dropping it (on
/// authentication or when the connection ends) removes it.
#[derive(Debug)]
pub struct Unauthenticated {
    id: u64,
    evicted: CancellationToken,
    slots: Arc<Slots>,
}

impl Slots {
    /// `max` slots, all free.
    pub fn new(max: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max)),
            max,
            unauthenticated: Mutex::default(),
            next_id: AtomicU64::new(0),
        }
    }

    /// A free slot, or, when none is, the slot of the longest-waiting unauthenticated
    /// connection, which is told to close. `None` when every connection is authenticated (or
    /// the evicted one did not end in time).
    pub async fn acquire(&self) -> Option<OwnedSemaphorePermit> {
        if let Ok(permit) = Arc::clone(&self.permits).try_acquire_owned() {
            return Some(permit);
        }
        let victim = {
            let mut waiting = self.waiting();
            waiting.pop_first()
        };
        let (_, evict) = victim?;
        evict.cancel();
        tokio::time::timeout(EVICTION_WAIT, Arc::clone(&self.permits).acquire_owned())
            .await
            .ok()?
            .ok()
    }

    /// Registers a connection that has not authenticated yet.
    pub fn unauthenticated(self: &Arc<Self>) -> Unauthenticated {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let evicted = CancellationToken::new();
        self.waiting().insert(id, evicted.clone());
        Unauthenticated {
            id,
            evicted,
            slots: Arc::clone(self),
        }
    }

    /// Resolves once every slot is free (every connection has ended).
    pub async fn all_free(&self) {
        let all = u32::try_from(self.max).unwrap_or(u32::MAX);
        let _all = self.permits.acquire_many(all).await;
    }

    fn waiting(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, CancellationToken>> {
        self.unauthenticated
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Unauthenticated {
    /// Cancelled when a newcomer takes this connection's slot.
    pub fn eviction(&self) -> CancellationToken {
        self.evicted.clone()
    }
}

impl Drop for Unauthenticated {
    fn drop(&mut self) {
        self.slots.waiting().remove(&self.id);
    }
}
