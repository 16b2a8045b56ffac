//! Snapshots with the direct FFmpeg backend: one still image per call, written into a file of
//! `snapshots/` the service created new (see [`NewFile`]) under a validated name.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::camera::presence::{self, MediaFailure};
use crate::camera::{CameraInfo, CameraRegistry, CameraStatus};
use crate::ffmpeg::{FfmpegSettings, ImageFormat};
use crate::media_slots::{Busy, MediaSlots};
use crate::process::{self, ProcessError};
use crate::recording::Recorder;
use crate::storage::{rfc3339, FileKind, NewFile, Storage, StorageError};

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
    /// The snapshot file could not be created or written (read-only or full storage).
    #[error("snapshot of camera {camera} failed: {source}")]
    Create {
        /// Camera id.
        camera: String,
        /// The storage error (names the file, not the server path).
        #[source]
        source: StorageError,
    },
    /// The media process limit is reached (see [`crate::media_slots`]).
    #[error(transparent)]
    Busy(#[from] Busy),
    /// FFmpeg succeeded but wrote nothing.
    #[error("snapshot of camera {camera} failed: FFmpeg wrote no image")]
    Empty {
        /// Camera id.
        camera: String,
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
    slots: Arc<MediaSlots>,
}

impl Snapshotter {
    /// A snapshotter; `timeout` is the wall-clock limit of each FFmpeg run.
    pub fn new(
        storage: Storage,
        ffmpeg: FfmpegSettings,
        timeout: Duration,
        recorder: Recorder,
        cameras: Arc<CameraRegistry>,
        slots: Arc<MediaSlots>,
    ) -> Self {
        Self {
            storage,
            ffmpeg,
            timeout,
            recorder,
            cameras,
            slots,
        }
    }

    /// Creates the file a request writes: the client's name (with the extension added when
    /// missing; a taken name is [`StorageError::Exists`]) or a timestamped one, made unique with
    /// a counter when another snapshot of the same millisecond has it.
    fn create_file(
        &self,
        camera: &str,
        request: &SnapshotRequest,
    ) -> Result<NewFile, SnapshotError> {
        let extension = request.format.extension();
        let created = match &request.filename {
            Some(name) => {
                let lower = name.to_ascii_lowercase();
                let has_extension = match request.format {
                    ImageFormat::Jpeg => lower.ends_with(".jpg") || lower.ends_with(".jpeg"),
                    ImageFormat::Png => lower.ends_with(".png"),
                };
                let name = if has_extension {
                    name.clone()
                } else {
                    format!("{name}.{extension}")
                };
                self.storage.create(FileKind::Snapshot, &name)
            }
            None => {
                let stem = format!(
                    "{camera}_snapshot_{}",
                    chrono::Local::now().format("%Y-%m-%d_%H-%M-%S-%3f")
                );
                self.storage
                    .create_unique(FileKind::Snapshot, &stem, extension)
            }
        };
        created.map_err(|e| match e {
            e @ StorageError::Create { .. } => SnapshotError::Create {
                camera: camera.to_owned(),
                source: e,
            },
            e => SnapshotError::Storage(e),
        })
    }

    /// Takes one snapshot of `camera`.
    pub async fn take(
        &self,
        camera: &CameraInfo,
        request: &SnapshotRequest,
    ) -> Result<Snapshot, SnapshotError> {
        // Waiting for a slot comes first, so a queued request holds no file yet.
        let _slot = self.slots.acquire(Some(&camera.id)).await?;
        let taken_at = SystemTime::now();
        let file = match self.create_file(&camera.id, request) {
            Ok(file) => file,
            Err(error @ SnapshotError::Storage(_)) => return Err(error),
            Err(error) => return Err(self.failed(camera, error)),
        };
        let live_frame = camera
            .source
            .is_exclusive()
            .then(|| self.recorder.live_frame(&camera.id))
            .flatten();
        let result = match live_frame {
            Some(live) => self.copy_live_frame(camera, &live, request, &file).await,
            None => {
                let spec = self.ffmpeg.snapshot(
                    &camera.source,
                    request.format,
                    request.quality,
                    &file.writer_path(),
                );
                process::run(&spec, self.timeout)
                    .await
                    .map_err(|source| SnapshotError::Ffmpeg {
                        camera: camera.id.clone(),
                        source,
                    })
            }
        };
        let result = result.and_then(|()| {
            if file.is_empty() {
                Err(SnapshotError::Empty {
                    camera: camera.id.clone(),
                })
            } else {
                Ok(())
            }
        });
        if let Err(error) = result {
            file.discard();
            return Err(self.failed(camera, error));
        }
        self.cameras.set_status(&camera.id, CameraStatus::Connected);
        let file_size = file.len();
        let filename = file.name().to_owned();
        tracing::info!(camera = %camera.id, %filename, file_size, "snapshot taken");
        Ok(Snapshot {
            filename,
            timestamp: rfc3339(taken_at),
            file_size,
        })
    }

    /// Records a failure in the camera's status and returns it.
    fn failed(&self, camera: &CameraInfo, error: SnapshotError) -> SnapshotError {
        self.cameras.update_status(&camera.id, |status| {
            presence::after_media_failure(status, MediaFailure::Failed)
        });
        error
    }

    /// A snapshot of a single-reader device that is recording: a copy of the recording's
    /// latest frame, re-encoded. The frame file may be caught mid-write, so a copy that does not
    /// decode is retried until the timeout. The copy is a scratch file created new next to the
    /// snapshots and removed after use.
    async fn copy_live_frame(
        &self,
        camera: &CameraInfo,
        live: &Path,
        request: &SnapshotRequest,
        output: &NewFile,
    ) -> Result<(), SnapshotError> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let mut last_error = None;
        while tokio::time::Instant::now() < deadline {
            if let Ok(frame) = std::fs::read(live) {
                let copy = self
                    .storage
                    .create_scratch(FileKind::Snapshot, "live-frame")
                    .map_err(|source| SnapshotError::Create {
                        camera: camera.id.clone(),
                        source,
                    })?;
                let written = copy.write_all(&frame);
                let result = match written {
                    Ok(()) => {
                        let spec = self.ffmpeg.convert_still(
                            &copy.writer_path(),
                            request.format,
                            request.quality,
                            &output.writer_path(),
                        );
                        process::run(&spec, self.timeout).await
                    }
                    Err(e) => {
                        copy.discard();
                        return Err(SnapshotError::Create {
                            camera: camera.id.clone(),
                            source: StorageError::Io {
                                operation: "write a copy of the live frame",
                                path: output.path().to_owned(),
                                source: e,
                            },
                        });
                    }
                };
                copy.discard();
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
