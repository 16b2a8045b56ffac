//! Recordings with the direct FFmpeg backend: one supervised FFmpeg per camera, stopped by its
//! own `-t`, by a service-side timer, by `stop_recording`, by disk pressure or by shutdown.
//! Each start and end is pushed as `recording_status_update`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};

use crate::camera::presence::{self, MediaFailure};
use crate::camera::{CameraInfo, CameraRegistry, CameraStatus};
use crate::ffmpeg::FfmpegSettings;
use crate::notify::Notifier;
use crate::process::{self, ManagedChild, ProcessError};
use crate::storage::{rfc3339, FileKind, NewFile, Storage, StorageError};

/// How often start-up checks whether FFmpeg has begun writing.
const STARTUP_POLL: Duration = Duration::from_millis(50);
/// Slack after `-t` before the service-side timer stops a timed recording itself.
const TIMER_SLACK: Duration = Duration::from_secs(2);

/// Limits and intervals of recordings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordingLimits {
    /// Longest recording (and wall-clock limit of an untimed one).
    pub max_duration: Duration,
    /// How long FFmpeg may take to start writing.
    pub start_timeout: Duration,
    /// Grace period of each stop step (`q`, SIGTERM, SIGKILL).
    pub stop_grace: Duration,
    /// Interval of the disk usage check.
    pub storage_check: Duration,
    /// Disk usage percent at which recordings are refused or stopped.
    pub block_percent: u8,
}

/// A recording failure.
#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    /// The camera already records.
    #[error("camera {0} is already recording")]
    AlreadyRecording(String),
    /// The camera does not record.
    #[error("camera {0} is not recording")]
    NotRecording(String),
    /// The disk is above the block threshold.
    #[error("storage full: disk usage {usage:.1}% is at or above the block threshold {block}%")]
    StorageFull {
        /// Current usage percent.
        usage: f64,
        /// The threshold.
        block: u8,
    },
    /// FFmpeg failed to start or to record.
    #[error("recording on camera {camera} failed: {source}")]
    Ffmpeg {
        /// Camera id.
        camera: String,
        /// The process error (argv, status, stderr tail).
        #[source]
        source: ProcessError,
    },
    /// FFmpeg ran but wrote nothing within the start timeout.
    #[error("recording on camera {camera} produced no output within {}: `{argv}`\n--- stderr (tail):\n{stderr_tail}",
        humantime::format_duration(*timeout))]
    NoOutput {
        /// Camera id.
        camera: String,
        /// The limit.
        timeout: Duration,
        /// The FFmpeg command.
        argv: String,
        /// Last lines of stderr.
        stderr_tail: String,
    },
    /// The recording file could not be created (read-only or full storage, permissions).
    #[error("recording on camera {camera} failed: {source}")]
    Create {
        /// Camera id.
        camera: String,
        /// The storage error (names the file, not the server path).
        #[source]
        source: StorageError,
    },
    /// A storage problem.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// A started recording, as returned by `start_recording`.
#[derive(Debug, Clone, PartialEq)]
pub struct Started {
    /// Session id.
    pub session_id: String,
    /// File name in `recordings/`.
    pub filename: String,
    /// Start time RFC 3339.
    pub start_time: String,
    /// Requested duration in seconds.
    pub duration: Option<u64>,
}

/// How a recording ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Finished {
    /// Session id.
    pub session_id: String,
    /// File name.
    pub filename: String,
    /// `STOPPED` or `FAILED`.
    pub status: &'static str,
    /// Start time RFC 3339.
    pub start_time: String,
    /// End time RFC 3339.
    pub end_time: String,
    /// Seconds of media in the file (ffprobe), or the time FFmpeg was writing when the file
    /// cannot be read. Not `end_time − start_time`: opening a network stream comes first.
    pub duration: f64,
    /// Bytes written.
    pub file_size: u64,
    /// Why it failed (FAILED only).
    pub error: Option<String>,
}

struct Active {
    filename: String,
    live_frame: Option<PathBuf>,
    stop_tx: mpsc::Sender<oneshot::Sender<Finished>>,
    stopping: bool,
}

/// Runs and tracks recordings, at most one per camera.
#[derive(Clone)]
pub struct Recorder {
    inner: Arc<Inner>,
}

struct Inner {
    active: Mutex<HashMap<String, Active>>,
    storage: Storage,
    ffmpeg: FfmpegSettings,
    limits: RecordingLimits,
    notifier: Notifier,
    cameras: Arc<CameraRegistry>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("active", &self.active_files())
            .finish_non_exhaustive()
    }
}

enum Ending {
    Requested(oneshot::Sender<Finished>),
    Exited(Result<std::process::ExitStatus, ProcessError>),
    Timer,
    StorageFull(String),
}

impl Recorder {
    /// A recorder writing into `storage`'s recordings directory.
    pub fn new(
        storage: Storage,
        ffmpeg: FfmpegSettings,
        limits: RecordingLimits,
        notifier: Notifier,
        cameras: Arc<CameraRegistry>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                active: Mutex::new(HashMap::new()),
                storage,
                ffmpeg,
                limits,
                notifier,
                cameras,
            }),
        }
    }

    /// Whether `camera` records now.
    pub fn is_recording(&self, camera: &str) -> bool {
        self.inner
            .active
            .lock()
            .expect("recorder lock")
            .contains_key(camera)
    }

    /// File names of recordings in progress.
    pub fn active_files(&self) -> Vec<String> {
        let active = self.inner.active.lock().expect("recorder lock");
        active.values().map(|a| a.filename.clone()).collect()
    }

    /// The latest-frame JPEG of `camera`'s recording, when it records a single-reader device.
    pub fn live_frame(&self, camera: &str) -> Option<PathBuf> {
        let active = self.inner.active.lock().expect("recorder lock");
        active.get(camera).and_then(|a| a.live_frame.clone())
    }

    /// `<data_dir>/live/<camera>.jpg`, the directory created on demand.
    fn live_frame_path(&self, camera: &str) -> Result<PathBuf, RecordingError> {
        let dir = self.inner.storage.data_dir().join("live");
        std::fs::create_dir_all(&dir).map_err(|source| StorageError::Io {
            operation: "create directory",
            path: dir.clone(),
            source,
        })?;
        Ok(dir.join(format!("{camera}.jpg")))
    }

    /// Number of recordings in progress.
    pub fn active_count(&self) -> usize {
        self.inner.active.lock().expect("recorder lock").len()
    }

    /// Starts recording `camera` for `duration` (or until stopped). Returns once FFmpeg writes.
    pub async fn start(
        &self,
        camera: &CameraInfo,
        duration: Option<Duration>,
    ) -> Result<Started, RecordingError> {
        let inner = &self.inner;
        let usage = inner.storage.disk_usage()?.usage_percent();
        if usage >= f64::from(inner.limits.block_percent) {
            return Err(RecordingError::StorageFull {
                usage,
                block: inner.limits.block_percent,
            });
        }
        let (stop_tx, stop_rx) = mpsc::channel(1);
        let live_frame = camera
            .source
            .is_exclusive()
            .then(|| self.live_frame_path(&camera.id))
            .transpose()?;
        let session_id = uuid::Uuid::new_v4().to_string();
        let file = {
            let mut active = inner.active.lock().expect("recorder lock");
            if active.contains_key(&camera.id) {
                return Err(RecordingError::AlreadyRecording(camera.id.clone()));
            }
            let file = match self.new_file(&camera.id) {
                Ok(file) => file,
                Err(e) => {
                    drop(active);
                    return Err(self.failed_start(&camera.id, e));
                }
            };
            active.insert(
                camera.id.clone(),
                Active {
                    filename: file.name().to_owned(),
                    live_frame: live_frame.clone(),
                    stop_tx,
                    stopping: false,
                },
            );
            file
        };
        let filename = file.name().to_owned();
        let spec = inner.ffmpeg.recording(
            &camera.source,
            duration,
            &file.writer_path(),
            live_frame.as_deref(),
        );
        let started_at = SystemTime::now();
        let child = match self
            .spawn_and_wait_for_output(&camera.id, &spec, &file)
            .await
        {
            Ok(child) => child,
            Err(e) => {
                inner
                    .active
                    .lock()
                    .expect("recorder lock")
                    .remove(&camera.id);
                // Whatever FFmpeg wrote before failing is not a recording.
                file.discard();
                return Err(self.failed_start(&camera.id, e));
            }
        };
        inner
            .cameras
            .set_status(&camera.id, CameraStatus::Connected);
        let started = Started {
            session_id: session_id.clone(),
            filename: filename.clone(),
            start_time: rfc3339(started_at),
            duration: duration.map(|d| d.as_secs()),
        };
        tracing::info!(camera = %camera.id, %filename, pid = child.pid(), "recording started");
        inner.notifier.send(
            "recording_status_update",
            json!({
                "device": camera.id,
                "status": "STARTED",
                "filename": filename,
                "duration": started.duration,
            }),
        );
        let supervisor = Supervisor {
            recorder: self.clone(),
            camera: camera.id.clone(),
            session_id,
            filename,
            file,
            started_at,
            started: Instant::now(),
            duration,
        };
        tokio::spawn(supervisor.run(child, stop_rx));
        Ok(started)
    }

    /// Stops `camera`'s recording and waits until the file is finalised.
    pub async fn stop(&self, camera: &str) -> Result<Finished, RecordingError> {
        let stop_tx = {
            let mut active = self.inner.active.lock().expect("recorder lock");
            match active.get_mut(camera) {
                Some(entry) if !entry.stopping => {
                    entry.stopping = true;
                    entry.stop_tx.clone()
                }
                Some(_) | None => return Err(RecordingError::NotRecording(camera.to_owned())),
            }
        };
        let (ack_tx, ack_rx) = oneshot::channel();
        // The supervisor may finish on its own (timer, `-t`, failure) while the stop is on its
        // way; then the recording has already ended and been notified.
        stop_tx
            .send(ack_tx)
            .await
            .map_err(|_| RecordingError::NotRecording(camera.to_owned()))?;
        ack_rx
            .await
            .map_err(|_| RecordingError::NotRecording(camera.to_owned()))
    }

    /// Stops every recording (shutdown), each finalised and notified as STOPPED.
    pub async fn stop_all(&self) {
        let cameras: Vec<String> = {
            let active = self.inner.active.lock().expect("recorder lock");
            active.keys().cloned().collect()
        };
        let stops = cameras.iter().map(|camera| self.stop(camera));
        for result in futures_util::future::join_all(stops).await {
            if let Err(e) = result {
                tracing::warn!(error = %e, "stopping a recording at shutdown");
            }
        }
    }

    /// Creates `<camera>_<local time>.mp4` (`_1`, `_2`, … when taken), new, never through a link.
    fn new_file(&self, camera: &str) -> Result<NewFile, RecordingError> {
        let stem = format!(
            "{camera}_{}",
            chrono::Local::now().format("%Y-%m-%d_%H-%M-%S")
        );
        self.inner
            .storage
            .create_unique(FileKind::Recording, &stem, "mp4")
            .map_err(|e| match e {
                e @ StorageError::Create { .. } => RecordingError::Create {
                    camera: camera.to_owned(),
                    source: e,
                },
                e => RecordingError::Storage(e),
            })
    }

    /// Records a failed start in the camera's status and returns the error.
    fn failed_start(&self, camera: &str, error: RecordingError) -> RecordingError {
        self.inner.cameras.update_status(camera, |status| {
            presence::after_media_failure(status, MediaFailure::Failed)
        });
        error
    }

    async fn spawn_and_wait_for_output(
        &self,
        camera: &str,
        spec: &process::CommandSpec,
        file: &NewFile,
    ) -> Result<ManagedChild, RecordingError> {
        let ffmpeg_error = |source| RecordingError::Ffmpeg {
            camera: camera.to_owned(),
            source,
        };
        let mut child = process::spawn(spec).map_err(ffmpeg_error)?;
        let deadline = tokio::time::Instant::now() + self.inner.limits.start_timeout;
        loop {
            if !file.is_empty() {
                return Ok(child);
            }
            tokio::select! {
                status = child.wait() => {
                    let status = status.map_err(ffmpeg_error)?;
                    child.check_success(status).map_err(ffmpeg_error)?;
                    return Ok(child);
                }
                _ = tokio::time::sleep(STARTUP_POLL) => {}
            }
            if tokio::time::Instant::now() >= deadline {
                let stderr_tail = child.stderr_tail();
                let argv = child.argv().to_string();
                let _ = child.stop(self.inner.limits.stop_grace).await;
                return Err(RecordingError::NoOutput {
                    camera: camera.to_owned(),
                    timeout: self.inner.limits.start_timeout,
                    argv,
                    stderr_tail,
                });
            }
        }
    }
}

struct Supervisor {
    recorder: Recorder,
    camera: String,
    session_id: String,
    filename: String,
    file: NewFile,
    started_at: SystemTime,
    started: Instant,
    duration: Option<Duration>,
}

impl Supervisor {
    async fn run(
        self,
        mut child: ManagedChild,
        mut stop_rx: mpsc::Receiver<oneshot::Sender<Finished>>,
    ) {
        let limits = self.recorder.inner.limits;
        let limit = match self.duration {
            Some(d) => (d + TIMER_SLACK).min(limits.max_duration + TIMER_SLACK),
            None => limits.max_duration,
        };
        let timer = tokio::time::sleep(limit);
        tokio::pin!(timer);
        let mut storage_check = tokio::time::interval(limits.storage_check);
        storage_check.tick().await;
        let ending = loop {
            tokio::select! {
                biased;
                ack = stop_rx.recv() => match ack {
                    Some(ack) => break Ending::Requested(ack),
                    None => break Ending::Timer,
                },
                status = child.wait() => break Ending::Exited(status),
                () = &mut timer => break Ending::Timer,
                _ = storage_check.tick() => {
                    if let Some(reason) = self.storage_full() {
                        break Ending::StorageFull(reason);
                    }
                }
            }
        };
        let grace = limits.stop_grace;
        let (ack, error) = match ending {
            Ending::Requested(ack) => (Some(ack), stop_error(child.stop(grace).await)),
            Ending::Timer => (None, stop_error(child.stop(grace).await)),
            Ending::StorageFull(reason) => {
                let _ = child.stop(grace).await;
                (None, Some(reason))
            }
            Ending::Exited(status) => {
                let error = match status {
                    Ok(status) => child.check_success(status).err().map(|e| client_error(&e)),
                    Err(e) => Some(client_error(&e)),
                };
                (None, error)
            }
        };
        self.finish(ack, error).await;
    }

    fn storage_full(&self) -> Option<String> {
        let inner = &self.recorder.inner;
        let usage = inner.storage.disk_usage().ok()?.usage_percent();
        (usage >= f64::from(inner.limits.block_percent)).then(|| {
            RecordingError::StorageFull {
                usage,
                block: inner.limits.block_percent,
            }
            .to_string()
        })
    }

    async fn finish(self, ack: Option<oneshot::Sender<Finished>>, error: Option<String>) {
        let inner = &self.recorder.inner;
        let file_size = self.file.len();
        let writing = self.started.elapsed().as_secs_f64();
        // Bounded by one stop step: this also runs while the service shuts down.
        let duration = media_duration(
            &inner.ffmpeg,
            &self.file.writer_path(),
            inner.limits.stop_grace,
        )
        .await
        .unwrap_or(writing);
        let finished = Finished {
            session_id: self.session_id,
            filename: self.filename,
            status: if error.is_some() { "FAILED" } else { "STOPPED" },
            start_time: rfc3339(self.started_at),
            end_time: rfc3339(SystemTime::now()),
            duration: (duration * 1000.0).round() / 1000.0,
            file_size,
            error,
        };
        inner
            .active
            .lock()
            .expect("recorder lock")
            .remove(&self.camera);
        match &finished.error {
            Some(error) => {
                tracing::warn!(camera = %self.camera, file = %finished.filename, "recording failed: {error}")
            }
            None => {
                tracing::info!(camera = %self.camera, file = %finished.filename, file_size, "recording stopped")
            }
        }
        let mut params = json!({
            "device": self.camera,
            "status": finished.status,
            "filename": finished.filename,
            "duration": finished.duration,
        });
        if let Some(error) = &finished.error {
            params["error"] = Value::String(error.clone());
        }
        inner.notifier.send("recording_status_update", params);
        if finished.error.is_some() {
            // A failed recording counts against the camera like a failed snapshot (ERROR, a
            // DISCONNECTED camera stays so), with its camera_status_update.
            inner.cameras.update_status(&self.camera, |status| {
                presence::after_media_failure(status, MediaFailure::Failed)
            });
        }
        if let Some(ack) = ack {
            let _ = ack.send(finished);
        }
    }
}

/// A stop that ends with a non-zero status after `q` is still a finalised file; only a failure to
/// reap counts as an error.
fn stop_error(result: Result<std::process::ExitStatus, ProcessError>) -> Option<String> {
    result.err().map(|e| client_error(&e))
}

/// Logs the full error (argv, stderr tail) and returns the summary sent to clients.
fn client_error(error: &ProcessError) -> String {
    tracing::warn!("recording FFmpeg: {error}");
    error.summary()
}

/// Seconds of media in `file` as ffprobe reads them; `None` when it cannot tell within `limit`.
pub async fn media_duration(ffmpeg: &FfmpegSettings, file: &Path, limit: Duration) -> Option<f64> {
    let output = process::run_capturing(&ffmpeg.probe_duration(file), limit)
        .await
        .ok()?;
    output.trim().parse().ok()
}
