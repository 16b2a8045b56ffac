//! Presence of cameras whose source comes and goes without a device node, and of every camera
//! while MediaMTX is down:
//!
//! - an RTSP camera is checked every `cameras.rtsp_check_interval`: through its MediaMTX path
//!   (`GET /v3/paths/get/{id}` has a stream) or, without MediaMTX, with `ffprobe` on the URL;
//! - when a managed MediaMTX exits, every camera it serves becomes ERROR at once; once MediaMTX
//!   is back with the paths registered, each becomes CONNECTED when its path has a stream again
//!   (an RTSP camera whose source is gone becomes DISCONNECTED instead).
//!
//! The transitions are pure functions ([`after_check`], [`after_media_failure`]); the loop only
//! gathers observations. Each status change is one `camera_status_update` (the registry sends
//! it only when the status really changes).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{CameraInfo, CameraRegistry, CameraStatus, Source};
use crate::backend::Backend;
use crate::ffmpeg::FfmpegSettings;
use crate::process;
use crate::service::Service;

/// How long `ffprobe` may analyse an RTSP stream (`-analyzeduration`).
pub const PROBE_ANALYZE: Duration = Duration::from_secs(2);
/// Wall-clock slack of one `ffprobe` run on top of its socket timeout and analysis time.
const PROBE_SLACK: Duration = Duration::from_secs(3);
/// Interval of path polls during the start-up check.
const STARTUP_POLL: Duration = Duration::from_millis(200);

/// What one check of a camera found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observation {
    /// The source delivers a stream (MediaMTX path ready with tracks; ffprobe saw video).
    Present,
    /// It does not (path without stream, connection refused, timeout, no video).
    Absent,
    /// The media backend is down: MediaMTX exited or its API does not answer.
    BackendDown,
}

/// What the monitor remembers of one camera between checks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Memory {
    /// Made ERROR because MediaMTX was down; cleared once its path has a stream again.
    pub outage: bool,
}

/// Why a snapshot or recording failed, as far as the camera's status goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaFailure {
    /// The source delivers nothing: an RTSP camera's MediaMTX path got no stream in time.
    SourceAbsent,
    /// Anything else: FFmpeg failed, MediaMTX down, a publisher that does not start, storage.
    Failed,
}

/// The status (and memory) after a check that saw `seen`.
///
/// `source_presence`: the camera's presence is its source's (an RTSP camera); other cameras are
/// checked only while MediaMTX is down or recovering. `settling`: MediaMTX (re)registered the
/// paths a moment ago, so a path without a stream may simply not have pulled its source yet.
///
/// - MediaMTX down: ERROR (marked as outage), except a DISCONNECTED camera, whose source is
///   gone anyway.
/// - Present: an outage ends (CONNECTED); a DISCONNECTED camera is back (CONNECTED); an ERROR
///   left by a failed snapshot or recording stays until a media operation succeeds.
/// - Absent: ignored while settling; an RTSP camera is DISCONNECTED; another camera in an
///   outage stays ERROR until its publisher is up again.
pub fn after_check(
    status: CameraStatus,
    memory: Memory,
    seen: Observation,
    source_presence: bool,
    settling: bool,
) -> (CameraStatus, Memory) {
    match seen {
        Observation::BackendDown => match status {
            CameraStatus::Disconnected => (status, memory),
            CameraStatus::Connected | CameraStatus::Error => {
                (CameraStatus::Error, Memory { outage: true })
            }
        },
        Observation::Present if memory.outage => (CameraStatus::Connected, Memory::default()),
        Observation::Present => match status {
            CameraStatus::Disconnected => (CameraStatus::Connected, memory),
            CameraStatus::Connected | CameraStatus::Error => (status, memory),
        },
        Observation::Absent if settling => (status, memory),
        Observation::Absent if source_presence => (CameraStatus::Disconnected, Memory::default()),
        Observation::Absent => (status, memory),
    }
}

/// The status after a snapshot or recording of the camera failed: DISCONNECTED when its source
/// is known to be gone (or already was), else ERROR.
pub fn after_media_failure(status: CameraStatus, failure: MediaFailure) -> CameraStatus {
    match (failure, status) {
        (MediaFailure::SourceAbsent, _) | (MediaFailure::Failed, CameraStatus::Disconnected) => {
            CameraStatus::Disconnected
        }
        (MediaFailure::Failed, CameraStatus::Connected | CameraStatus::Error) => {
            CameraStatus::Error
        }
    }
}

/// Whether a camera's presence is its source's.
fn is_rtsp(camera: &CameraInfo) -> bool {
    matches!(camera.source, Source::Rtsp(_))
}

/// One check of `camera`: its MediaMTX path, or `ffprobe` on its RTSP URL.
pub async fn check(backend: &Backend, ffmpeg: &FfmpegSettings, camera: &CameraInfo) -> Observation {
    if let Some(seen) = backend.observe_path(camera).await {
        return seen;
    }
    let Source::Rtsp(url) = &camera.source else {
        return Observation::Present;
    };
    let spec = ffmpeg.probe_rtsp(url, PROBE_ANALYZE);
    let limit = ffmpeg.rtsp_timeout + PROBE_ANALYZE + PROBE_SLACK;
    match process::run_capturing(&spec, limit).await {
        Ok(streams) if streams.lines().any(|l| l.trim() == "video") => Observation::Present,
        Ok(streams) => {
            tracing::debug!(camera = %camera.id, streams = %streams.trim(), "no video stream");
            Observation::Absent
        }
        Err(e) => {
            tracing::debug!(camera = %camera.id, "source not reachable: {}", e.summary());
            Observation::Absent
        }
    }
}

/// The start-up check of every RTSP camera (at most `settle`, all at once), so the first
/// listing says whether each one delivers: a MediaMTX path gets until `settle` to pull its
/// source; without MediaMTX one `ffprobe` decides.
pub async fn check_at_start(
    registry: &CameraRegistry,
    backend: &Backend,
    ffmpeg: &FfmpegSettings,
    settle: Duration,
) {
    let deadline = Instant::now() + settle;
    let patient = backend.has_mediamtx();
    let checks = registry
        .list()
        .into_iter()
        .filter(is_rtsp)
        .map(|camera| async move {
            loop {
                let seen = check(backend, ffmpeg, &camera).await;
                if !patient || seen == Observation::Present || Instant::now() >= deadline {
                    return (camera, seen);
                }
                tokio::time::sleep(STARTUP_POLL).await;
            }
        });
    for (camera, seen) in futures_util::future::join_all(checks).await {
        tracing::info!(camera = %camera.id, ?seen, "RTSP source checked at start");
        // MediaMTX not answering says nothing about the source: the camera stays as configured
        // (DISCONNECTED) until a check sees its stream.
        if seen != Observation::BackendDown {
            registry.update_status(&camera.id, |status| {
                after_check(status, Memory::default(), seen, true, false).0
            });
        }
    }
}

/// Resolves when the MediaMTX running state changes; never without a managed MediaMTX.
async fn running_changed(running: &mut Option<watch::Receiver<bool>>) {
    if let Some(rx) = running {
        if rx.changed().await.is_ok() {
            return;
        }
    }
    std::future::pending().await
}

/// Checks RTSP cameras every `interval`, and every camera at once when MediaMTX goes down and
/// comes back, until `shutdown`. `settle`: how long after MediaMTX registered the paths a path
/// without a stream does not yet count as absent.
pub async fn run(
    service: Arc<Service>,
    interval: Duration,
    settle: Duration,
    shutdown: CancellationToken,
) {
    let mut running = service.backend.mediamtx_running();
    let mut was_running = true;
    // After a restart of MediaMTX its paths need a moment to pull their sources.
    let mut settle_until: Option<Instant> = None;
    let mut memory: BTreeMap<String, Memory> = BTreeMap::new();
    loop {
        tokio::select! {
            biased;
            () = shutdown.cancelled() => return,
            () = running_changed(&mut running) => {}
            () = tokio::time::sleep(interval) => {}
        }
        let up = running.as_ref().is_none_or(|rx| *rx.borrow());
        if up && !was_running {
            settle_until = Some(Instant::now() + settle);
        }
        was_running = up;
        let settling = settle_until.is_some_and(|until| Instant::now() < until);
        let due: Vec<CameraInfo> = service
            .cameras
            .list()
            .into_iter()
            .filter(|c| !up || is_rtsp(c) || memory.get(&c.id).is_some_and(|m| m.outage))
            .collect();
        let checks = due.iter().map(|camera| async {
            if up {
                check(&service.backend, &service.ffmpeg, camera).await
            } else {
                Observation::BackendDown
            }
        });
        let seen = tokio::select! {
            biased;
            () = shutdown.cancelled() => return,
            seen = futures_util::future::join_all(checks) => seen,
        };
        for (camera, seen) in due.iter().zip(seen) {
            let remembered = memory.entry(camera.id.clone()).or_default();
            let before = *remembered;
            service.cameras.update_status(&camera.id, |status| {
                let (next, after) = after_check(status, before, seen, is_rtsp(camera), settling);
                *remembered = after;
                next
            });
            tracing::debug!(camera = %camera.id, observed = ?seen, settling, "presence checked");
        }
    }
}
