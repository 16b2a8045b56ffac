//! The assembled service: configuration, auth, storage, cameras, media backend and API state.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::auth::{self, AuthError, Authenticator};
use crate::backend::{Backend, BackendError};
use crate::camera::{CameraInfo, CameraRegistry, CameraStatus, Capabilities, Source};
use crate::config::{parse_size, Config};
use crate::ffmpeg::FfmpegSettings;
use crate::media_slots::{MediaSlots, SlotLimits};
use crate::metrics::Metrics;
use crate::notify::Notifier;
use crate::readiness::Readiness;
use crate::recording::{Recorder, RecordingLimits};
use crate::retention::RetentionPolicy;
use crate::snapshot::Snapshotter;
use crate::storage::{Storage, StorageError};

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Storage directories could not be created.
    #[error("failed to prepare storage: {0}")]
    Storage(#[from] StorageError),
    /// Secret or API key file problem.
    #[error("failed to load credentials: {0}")]
    Auth(#[from] AuthError),
    /// The media backend could not be set up.
    #[error("failed to set up the media backend: {0}")]
    Backend(#[from] BackendError),
}

/// Everything request handlers need.
#[derive(Debug)]
pub struct Service {
    /// The effective configuration.
    pub config: Config,
    /// Token and API key verification.
    pub auth: Authenticator,
    /// Recordings and snapshots on disk.
    pub storage: Storage,
    /// Known cameras.
    pub cameras: Arc<CameraRegistry>,
    /// Notification hub.
    pub notifier: Notifier,
    /// Recordings in progress.
    pub recorder: Recorder,
    /// Snapshots.
    pub snapshotter: Snapshotter,
    /// The bound on FFmpeg/FFprobe processes started by requests.
    pub media_slots: Arc<MediaSlots>,
    /// Writable storage and runnable FFmpeg/FFprobe, for `/ready` and `get_status`.
    pub readiness: Readiness,
    /// FFmpeg command construction.
    pub ffmpeg: FfmpegSettings,
    /// Current retention policy.
    pub retention: Mutex<RetentionPolicy>,
    /// Request counters.
    pub metrics: Metrics,
    /// The active media backend.
    pub backend: Backend,
    /// Start time, for uptime.
    pub started: Instant,
}

/// Loads (creating on first use) the JWT secret the configuration points at, and the API keys.
/// Returns the authenticator, the secret path and whether the secret was just created.
pub fn load_authenticator(config: &Config) -> Result<(Authenticator, PathBuf, bool), AuthError> {
    let secret_path = config.jwt_secret_path();
    let (secret, created) = auth::load_or_create_secret(&secret_path)?;
    let mut authenticator = Authenticator::new(&secret);
    if !config.auth.api_keys_file.as_os_str().is_empty() {
        authenticator = authenticator.with_api_key_file(&config.auth.api_keys_file)?;
    }
    Ok((authenticator, secret_path, created))
}

impl Service {
    /// Builds the service from a validated configuration, starting the media backend.
    pub async fn build(config: Config) -> Result<Self, StartError> {
        let storage = Storage::new(config.storage.data_dir.clone());
        storage.create_dirs()?;
        let (auth, secret_path, created) = load_authenticator(&config)?;
        if created {
            tracing::info!(
                path = %secret_path.display(),
                "created a new JWT secret; mint a token with `camera-service token --role admin` (add the same --config, if any)"
            );
        }
        let notifier = Notifier::default();
        let cameras = Arc::new(CameraRegistry::new(
            configured_cameras(&config),
            notifier.clone(),
        ));
        if config.cameras.discover_v4l2 {
            crate::camera::discovery::scan_into(&cameras);
        }
        let (testsrc_w, testsrc_h) =
            parse_size(&config.cameras.testsrc_size).expect("validated by Config::load");
        let ffmpeg = FfmpegSettings {
            binary: config.ffmpeg.binary.clone(),
            ffprobe_binary: config.ffmpeg.ffprobe_binary.clone(),
            rtsp_timeout: config.ffmpeg.rtsp_timeout.0,
            testsrc_size: (testsrc_w, testsrc_h),
            testsrc_fps: config.cameras.testsrc_fps,
        };
        let backend = Backend::start(&config, &cameras, &ffmpeg).await?;
        crate::camera::presence::check_at_start(&cameras, &backend, &ffmpeg, ffmpeg.rtsp_timeout)
            .await;
        let recorder = Recorder::new(
            storage.clone(),
            ffmpeg.clone(),
            RecordingLimits {
                max_duration: config.ffmpeg.max_recording.0,
                start_timeout: config.ffmpeg.start_timeout.0,
                stop_grace: config.ffmpeg.stop_grace.0,
                storage_check: config.storage.check_interval.0,
                block_percent: config.storage.block_percent,
            },
            notifier.clone(),
            Arc::clone(&cameras),
        );
        let readiness = Readiness::new(storage.clone(), ffmpeg.clone());
        let report = readiness.check().await;
        for problem in report.problems() {
            tracing::warn!("not ready: {problem}; /ready answers 503 until it is fixed");
        }
        let media_slots = Arc::new(MediaSlots::new(SlotLimits {
            overall: config.ffmpeg.max_processes,
            per_camera: config.ffmpeg.max_processes_per_camera,
            wait: config.ffmpeg.queue_timeout.0,
        }));
        let snapshotter = Snapshotter::new(
            storage.clone(),
            ffmpeg.clone(),
            config.ffmpeg.snapshot_timeout.0,
            recorder.clone(),
            Arc::clone(&cameras),
            Arc::clone(&media_slots),
        );
        Ok(Self {
            config,
            auth,
            storage,
            cameras,
            notifier,
            recorder,
            snapshotter,
            media_slots,
            readiness,
            ffmpeg,
            retention: Mutex::new(RetentionPolicy::default()),
            metrics: Metrics::default(),
            backend,
            started: Instant::now(),
        })
    }
}

/// The cameras named in `cameras.sources`, as `camera0`, `camera1`, … in order.
fn configured_cameras(config: &Config) -> Vec<CameraInfo> {
    config
        .cameras
        .sources
        .iter()
        .enumerate()
        .map(|(n, text)| {
            let source = Source::from_str(text).expect("validated by Config::load");
            let id = format!("camera{n}");
            let (name, resolution, fps, capabilities) = match &source {
                Source::TestPattern => (
                    format!("Test pattern {n}"),
                    config.cameras.testsrc_size.clone(),
                    config.cameras.testsrc_fps,
                    Capabilities {
                        formats: vec!["YUV420".into()],
                        resolutions: vec![config.cameras.testsrc_size.clone()],
                        fps: vec![config.cameras.testsrc_fps],
                    },
                ),
                Source::Rtsp(_) => (
                    format!("RTSP camera {n}"),
                    String::new(),
                    0,
                    Capabilities::default(),
                ),
                Source::V4l2(path) => match crate::camera::discovery::probe(path) {
                    Ok(Some(device)) => (
                        device.card,
                        device.resolution,
                        device.fps,
                        device.capabilities,
                    ),
                    Ok(None) | Err(_) => (
                        format!("V4L2 camera {n}"),
                        String::new(),
                        0,
                        Capabilities::default(),
                    ),
                },
            };
            // An RTSP camera is CONNECTED once the start-up presence check has seen its stream.
            let status = match &source {
                Source::V4l2(path) if !path.exists() => CameraStatus::Disconnected,
                Source::Rtsp(_) => CameraStatus::Disconnected,
                Source::V4l2(_) | Source::TestPattern => CameraStatus::Connected,
            };
            CameraInfo {
                id,
                name,
                source,
                status,
                resolution,
                fps,
                capabilities,
                hardware_key: None,
            }
        })
        .collect()
}
