//! Snapshots with the direct FFmpeg backend: one still image per call, written into
//! `snapshots/` under a validated name.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::camera::presence::{self, MediaFailure};
use crate::camera::{CameraInfo, CameraRegistry, CameraStatus};
use crate::ffmpeg::{FfmpegSettings, ImageFormat};
use crate::process::{self, ProcessError};
use crate::recording::Recorder;
use crate::storage::{rfc3339, FileKind, Storage, StorageError};

/// Delay between attempts to read a recording's live frame.
const LIVE_FRAME_RETRY: Duration = Duration::from_millis(200);

/// A snapshot request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRequest {
    /// Client-chosen file name (validated; the extension is added when missing).
    pub filename: Option<String>,
    /// Image format.
    pub format: ImageFormat,
    /// JPEG quality 1–100.
    pub quality: u8,
}

/// A snapshot taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// File name in `snapshots/`.
    pub filename: String,
    /// When it was taken, RFC 3339.
    pub timestamp: String,
    /// Bytes.
    pub file_size: u64,
}

/// A snapshot failure.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// Bad or unusable file name.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// FFmpeg failed or timed out.
    #[error("snapshot of camera {camera} failed: {source}")]
    Ffmpeg {
        /// Camera id.
        camera: String,
        /// Argv, status and stderr tail.
        #[source]
        source: ProcessError,
    },
    /// The recording pipeline of a single-reader camera has not produced a frame in time.
    #[error("camera {camera} is recording and its recording produced no frame within {}",
        humantime::format_duration(*timeout))]
    NoLiveFrame {
        /// Camera id.
        camera: String,
        /// How long it waited.
        timeout: Duration,
    },
}

/// Takes snapshots.
#[derive(Debug, Clone)]
pub struct Snapshotter {
    storage: Storage,
    ffmpeg: FfmpegSettings,
    timeout: Duration,
    recorder: Recorder,
    cameras: Arc<CameraRegistry>,
}

impl Snapshotter {
    /// A snapshotter; `timeout` is the wall-clock limit of each FFmpeg run.
    pub fn new(
        storage: Storage,
        ffmpeg: FfmpegSettings,
        timeout: Duration,
        recorder: Recorder,
        cameras: Arc<CameraRegistry>,
    ) -> Self {
        Self {
            storage,
            ffmpeg,
            timeout,
            recorder,
            cameras,
        }
    }

    /// The file name a request will use: the client's (with extension) or a timestamped one.
    pub fn file_name(camera: &str, request: &SnapshotRequest) -> String {
        let extension = request.format.extension();
        match &request.filename {
            Some(name) => {
                let lower = name.to_ascii_lowercase();
                let has_extension = match request.format {
                    ImageFormat::Jpeg => lower.ends_with(".jpg") || lower.ends_with(".jpeg"),
                    ImageFormat::Png => lower.ends_with(".png"),
                };
                if has_extension {
                    name.clone()
                } else {
                    format!("{name}.{extension}")
                }
            }
            None => format!(
                "{camera}_snapshot_{}.{extension}",
                chrono::Local::now().format("%Y-%m-%d_%H-%M-%S-%3f")
            ),
        }
    }

    /// Takes one snapshot of `camera`.
    pub async fn take(
        &self,
        camera: &CameraInfo,
        request: &SnapshotRequest,
    ) -> Result<Snapshot, SnapshotError> {
        let filename = Self::file_name(&camera.id, request);
        let path = self.storage.path_of(FileKind::Snapshot, &filename)?;
        let taken_at = SystemTime::now();
        let live_frame = camera
            .source
            .is_exclusive()
            .then(|| self.recorder.live_frame(&camera.id))
            .flatten();
        let result = match live_frame {
            Some(live) => self.copy_live_frame(camera, &live, request, &path).await,
            None => {
                let spec =
                    self.ffmpeg
                        .snapshot(&camera.source, request.format, request.quality, &path);
                process::run(&spec, self.timeout)
                    .await
                    .map_err(|source| SnapshotError::Ffmpeg {
                        camera: camera.id.clone(),
                        source,
                    })
            }
        };
        if let Err(error) = result {
            self.cameras.update_status(&camera.id, |status| {
                presence::after_media_failure(status, MediaFailure::Failed)
            });
            return Err(error);
        }
        self.cameras.set_status(&camera.id, CameraStatus::Connected);
        let file_size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        tracing::info!(camera = %camera.id, %filename, file_size, "snapshot taken");
        Ok(Snapshot {
            filename,
            timestamp: rfc3339(taken_at),
            file_size,
        })
    }

    /// A snapshot of a single-reader device that is recording: a copy of the recording's
    /// latest frame, re-encoded. The frame file may be caught mid-write, so a copy that does not
    /// decode is retried until the timeout.
    async fn copy_live_frame(
        &self,
        camera: &CameraInfo,
        live: &Path,
        request: &SnapshotRequest,
        output: &Path,
    ) -> Result<(), SnapshotError> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let copy = output.with_file_name(format!(
            ".{}.live.jpg",
            output
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
        ));
        let mut last_error = None;
        while tokio::time::Instant::now() < deadline {
            if std::fs::copy(live, &copy).is_ok() {
                let spec =
                    self.ffmpeg
                        .convert_still(&copy, request.format, request.quality, output);
                let result = process::run(&spec, self.timeout).await;
                let _ = std::fs::remove_file(&copy);
                match result {
                    Ok(()) => return Ok(()),
                    Err(e) => last_error = Some(e),
                }
            }
            tokio::time::sleep(LIVE_FRAME_RETRY).await;
        }
        Err(match last_error {
            Some(source) => SnapshotError::Ffmpeg {
                camera: camera.id.clone(),
                source,
            },
            None => SnapshotError::NoLiveFrame {
                camera: camera.id.clone(),
                timeout: self.timeout,
            },
        })
    }
}
