//! The bound on FFmpeg and FFprobe processes that requests start (snapshots, the probes of
//! `get_recording_info` / `get_snapshot_info`): at most `ffmpeg.max_processes` at once over all
//! cameras, and at most `ffmpeg.max_processes_per_camera` for one camera. A request past the
//! bound waits up to `ffmpeg.queue_timeout` for a slot, then fails with [`Busy`] (−32009);
//! nothing is dropped silently.
//!
//! Recordings do not take slots: each camera records at most once, and a recording must never
//! be refused because snapshots are running. So the service runs at most
//! `max_processes` + one recording FFmpeg per camera (+ its end-of-recording probe).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Process slots of the whole service.
#[derive(Debug)]
pub struct MediaSlots {
    overall: Arc<Semaphore>,
    per_camera: Mutex<HashMap<String, Arc<Semaphore>>>,
    limits: SlotLimits,
}

/// The configured bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotLimits {
    /// `ffmpeg.max_processes`.
    pub overall: usize,
    /// `ffmpeg.max_processes_per_camera`.
    pub per_camera: usize,
    /// `ffmpeg.queue_timeout`.
    pub wait: Duration,
}

/// Permission to run one process; the slot is free again when it is dropped.
#[derive(Debug)]
pub struct MediaSlot {
    _camera: Option<OwnedSemaphorePermit>,
    _overall: OwnedSemaphorePermit,
}

/// No slot became free within `ffmpeg.queue_timeout`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("busy: {scope} already runs {limit} FFmpeg processes ({key} = {limit}) and none ended within {} (ffmpeg.queue_timeout); retry later",
    humantime::format_duration(*waited))]
pub struct Busy {
    /// `camera camera0` or `the service`.
    pub scope: String,
    /// The config key of the limit reached.
    pub key: &'static str,
    /// Its value.
    pub limit: usize,
    /// How long the request waited.
    pub waited: Duration,
}

impl MediaSlots {
    /// Slots for `limits`, all free.
    pub fn new(limits: SlotLimits) -> Self {
        Self {
            overall: Arc::new(Semaphore::new(limits.overall)),
            per_camera: Mutex::default(),
            limits,
        }
    }

    /// A slot for a process of `camera` (or of no camera: a file probe), waiting up to
    /// `ffmpeg.queue_timeout`.
    pub async fn acquire(&self, camera: Option<&str>) -> Result<MediaSlot, Busy> {
        let deadline = tokio::time::Instant::now() + self.limits.wait;
        let camera_permit = match camera {
            Some(camera) => {
                let semaphore = self.camera_semaphore(camera);
                Some(acquire_by(semaphore, deadline).await.ok_or_else(|| Busy {
                    scope: format!("camera {camera}"),
                    key: "ffmpeg.max_processes_per_camera",
                    limit: self.limits.per_camera,
                    waited: self.limits.wait,
                })?)
            }
            None => None,
        };
        let overall = acquire_by(Arc::clone(&self.overall), deadline)
            .await
            .ok_or_else(|| Busy {
                scope: "the service".to_owned(),
                key: "ffmpeg.max_processes",
                limit: self.limits.overall,
                waited: self.limits.wait,
            })?;
        Ok(MediaSlot {
            _camera: camera_permit,
            _overall: overall,
        })
    }

    fn camera_semaphore(&self, camera: &str) -> Arc<Semaphore> {
        let mut cameras = self
            .per_camera
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        Arc::clone(
            cameras
                .entry(camera.to_owned())
                .or_insert_with(|| Arc::new(Semaphore::new(self.limits.per_camera))),
        )
    }
}

/// A permit of `semaphore` now or before `deadline`.
async fn acquire_by(
    semaphore: Arc<Semaphore>,
    deadline: tokio::time::Instant,
) -> Option<OwnedSemaphorePermit> {
    if let Ok(permit) = Arc::clone(&semaphore).try_acquire_owned() {
        return Some(permit);
    }
    tokio::time::timeout_at(deadline, semaphore.acquire_owned())
        .await
        .ok()?
        .ok()
}
