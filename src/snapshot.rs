//! Snapshots with the direct FFmpeg backend: one still image per call, written into
//! `snapshots/` under a validated name.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::camera::{CameraInfo, CameraRegistry, CameraStatus};
use crate::ffmpeg::{FfmpegSettings, ImageFormat};
use crate::process::{self, ProcessError};
use crate::recording::Recorder;
use crate::storage::{rfc3339, FileKind, Storage, StorageError};

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
    /// A V4L2 camera has one reader, and it is recording.
    #[error("camera {0} is recording and its device allows one reader; stop the recording first")]
    DeviceBusy(String),
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
        if camera.source.is_exclusive() && self.recorder.is_recording(&camera.id) {
            return Err(SnapshotError::DeviceBusy(camera.id.clone()));
        }
        let spec = self
            .ffmpeg
            .snapshot(&camera.source, request.format, request.quality, &path);
        let taken_at = SystemTime::now();
        if let Err(source) = process::run(&spec, self.timeout).await {
            self.cameras.set_status(&camera.id, CameraStatus::Error);
            return Err(SnapshotError::Ffmpeg {
                camera: camera.id.clone(),
                source,
            });
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
}
