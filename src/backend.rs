//! The media backend: MediaMTX (managed or external; one path per camera, stream URLs, and
//! snapshots and recordings read from its RTSP server) or direct FFmpeg from each source.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::watch;

use crate::camera::presence::Observation;
use crate::camera::{CameraInfo, CameraRegistry, Source, StreamUrls};
use crate::config::{Config, MediamtxMode};
use crate::ffmpeg::FfmpegSettings;
use crate::mediamtx::{
    check_reported, find_binary, path_config, render_config, ManagedPorts, MediamtxClient,
    MediamtxError, PathSet, PathState, Supervisor, SupervisorError, SupervisorSettings,
    UnsupportedVersion, OLDEST_SUPPORTED,
};

/// Interval of path readiness checks.
const READY_POLL: Duration = Duration::from_millis(100);

/// A camera's MediaMTX path did not get a stream in time.
#[derive(Debug, thiserror::Error)]
#[error("MediaMTX stream of camera {camera} not ready within {}: {last}", humantime::format_duration(*timeout))]
pub struct StreamNotReady {
    /// Camera id.
    pub camera: String,
    /// How long it waited.
    pub timeout: Duration,
    /// The last answer.
    pub last: String,
    /// Whether the last answer was a path without stream (rather than no path, or MediaMTX not
    /// answering): for a pulled RTSP camera, its source is gone.
    pub source_absent: bool,
}

/// Why the configured backend could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// `mediamtx.mode = "managed"` but no binary was found.
    #[error("mediamtx.mode is `managed` but no MediaMTX binary was found (set mediamtx.binary or MEDIAMTX_BIN, or put `mediamtx` on PATH)")]
    NoBinary,
    /// The managed instance failed to start.
    #[error(transparent)]
    Supervisor(#[from] SupervisorError),
    /// The external instance refused a path.
    #[error("external MediaMTX: {0}")]
    External(#[from] MediamtxError),
    /// The external instance is a release outside the supported range.
    #[error("external MediaMTX at {url}: {source}")]
    ExternalUnsupported {
        /// Its API base URL.
        url: String,
        /// Its version and the range.
        #[source]
        source: UnsupportedVersion,
    },
}

/// The MediaMTX side of the service.
#[derive(Debug)]
pub struct Mediamtx {
    client: MediamtxClient,
    rtsp_port: u16,
    paths: PathSet,
    supervisor: Mutex<Option<Supervisor>>,
    /// Whether a managed MediaMTX runs with its paths registered; `None` for an external one.
    running: Option<watch::Receiver<bool>>,
    ffmpeg: FfmpegSettings,
}

/// Which media backend serves the cameras.
#[derive(Debug)]
pub enum Backend {
    /// Snapshots and recordings straight from the source with FFmpeg; no stream URLs.
    DirectFfmpeg,
    /// MediaMTX publishes every camera.
    Mediamtx(Mediamtx),
}

impl Backend {
    /// Sets up the backend `config` asks for, registering `cameras` as MediaMTX paths.
    pub async fn start(
        config: &Config,
        cameras: &CameraRegistry,
        ffmpeg: &FfmpegSettings,
    ) -> Result<Self, BackendError> {
        let settings = &config.mediamtx;
        let binary = match settings.mode {
            MediamtxMode::Off => return Ok(Backend::DirectFfmpeg),
            MediamtxMode::External => None,
            MediamtxMode::Managed => {
                Some(find_binary(&settings.binary).ok_or(BackendError::NoBinary)?)
            }
            MediamtxMode::Auto => match find_binary(&settings.binary) {
                Some(binary) => Some(binary),
                None => {
                    tracing::info!("no MediaMTX binary found (mediamtx.binary, MEDIAMTX_BIN, PATH); using the direct FFmpeg backend without stream URLs");
                    return Ok(Backend::DirectFfmpeg);
                }
            },
        };
        let api_url = match &binary {
            Some(_) => format!("http://127.0.0.1:{}", settings.api_port),
            None => settings.api_url.clone(),
        };
        let client = MediamtxClient::new(&api_url, settings.api_timeout.0);
        let paths: PathSet = Arc::new(Mutex::new(BTreeMap::new()));
        let mut mediamtx = Mediamtx {
            client: client.clone(),
            rtsp_port: settings.rtsp_port,
            paths: Arc::clone(&paths),
            supervisor: Mutex::new(None),
            running: None,
            ffmpeg: ffmpeg.clone(),
        };
        for camera in cameras.list() {
            mediamtx.remember(&camera);
        }
        match binary {
            Some(binary) => {
                let ports = ManagedPorts {
                    api: settings.api_port,
                    rtsp: settings.rtsp_port,
                    hls: settings.hls_port,
                    webrtc: settings.webrtc_port,
                    webrtc_udp: settings.webrtc_udp_port,
                };
                let host = config.server.host;
                let supervisor = Supervisor::start(
                    SupervisorSettings {
                        binary,
                        config_path: config.storage.data_dir.join("mediamtx.yml"),
                        client,
                        startup_timeout: settings.startup_timeout.0,
                        stop_grace: config.ffmpeg.stop_grace.0,
                        max_backoff: settings.max_restart_backoff.0,
                    },
                    Box::new(move |version| render_config(version, host, ports)),
                    paths,
                )
                .await?;
                mediamtx.running = Some(supervisor.running());
                *mediamtx.supervisor.lock().expect("supervisor lock") = Some(supervisor);
            }
            None => {
                let reported = client.reported_version().await?;
                let version = check_reported(&reported).map_err(|source| {
                    BackendError::ExternalUnsupported {
                        url: client.base_url().to_owned(),
                        source,
                    }
                })?;
                match version {
                    Some(version) => {
                        tracing::info!(%version, url = %client.base_url(), "external MediaMTX")
                    }
                    None => {
                        tracing::info!(url = %client.base_url(), "external MediaMTX without /v3/info (older than v1.15.2), {OLDEST_SUPPORTED} or later (its global config has `playback`)")
                    }
                }
                for camera in cameras.list() {
                    mediamtx.register(&camera).await?;
                }
            }
        }
        cameras.set_stream_urls(Some(StreamUrls {
            host: settings.public_host.clone(),
            rtsp_port: settings.rtsp_port,
            hls_port: settings.hls_port,
            webrtc_port: settings.webrtc_port,
        }));
        Ok(Backend::Mediamtx(mediamtx))
    }

    /// Name reported by `get_status`, `get_server_info` and `/ready`.
    pub const fn name(&self) -> &'static str {
        match self {
            Backend::DirectFfmpeg => "ffmpeg",
            Backend::Mediamtx(_) => "mediamtx",
        }
    }

    /// Whether cameras are served by MediaMTX (managed or external).
    pub const fn has_mediamtx(&self) -> bool {
        matches!(self, Backend::Mediamtx(_))
    }

    /// Where snapshots and recordings of `camera` read from: the source itself, or the
    /// camera's MediaMTX path (so a V4L2 device keeps one reader).
    pub fn media_source(&self, camera: &CameraInfo) -> Source {
        match self {
            Backend::DirectFfmpeg => camera.source.clone(),
            Backend::Mediamtx(mediamtx) => Source::Rtsp(format!(
                "rtsp://127.0.0.1:{}/{}",
                mediamtx.rtsp_port, camera.id
            )),
        }
    }

    /// Waits until `camera`'s MediaMTX path has a stream (a new reader gets 404 before that),
    /// at most `timeout`. Nothing to wait for with the direct backend.
    pub async fn wait_stream_ready(
        &self,
        camera: &CameraInfo,
        timeout: Duration,
    ) -> Result<(), StreamNotReady> {
        let Backend::Mediamtx(mediamtx) = self else {
            return Ok(());
        };
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let (last, source_absent) = match mediamtx.client.path_state(&camera.id).await {
                Ok(Some(state)) if state.has_stream() => return Ok(()),
                Ok(Some(_)) => ("the path has no stream yet".to_owned(), true),
                Ok(None) => ("the path does not exist".to_owned(), false),
                Err(e) => (e.to_string(), false),
            };
            if tokio::time::Instant::now() >= deadline {
                return Err(StreamNotReady {
                    camera: camera.id.clone(),
                    timeout,
                    last,
                    source_absent,
                });
            }
            tokio::time::sleep(READY_POLL).await;
        }
    }

    /// `(bytes_sent, readers)` of a camera's MediaMTX path; zeros without MediaMTX or when the
    /// API does not answer.
    pub async fn path_metrics(&self, camera: &str) -> (u64, usize) {
        let Backend::Mediamtx(mediamtx) = self else {
            return (0, 0);
        };
        match mediamtx.client.path_state(camera).await {
            Ok(Some(state)) => (state.bytes_sent, state.readers.len()),
            Ok(None) => (0, 0),
            Err(e) => {
                tracing::debug!(camera, "path metrics unavailable: {e}");
                (0, 0)
            }
        }
    }

    /// Whether a managed MediaMTX runs with its paths registered (changes when it exits and
    /// when a restart has registered them again); `None` without a managed MediaMTX.
    pub fn mediamtx_running(&self) -> Option<watch::Receiver<bool>> {
        match self {
            Backend::DirectFfmpeg => None,
            Backend::Mediamtx(mediamtx) => mediamtx.running.clone(),
        }
    }

    /// What `camera`'s MediaMTX path shows: a stream ([`Observation::Present`], facts doc
    /// §1.6), none yet, or MediaMTX down or not answering. A path MediaMTX no longer knows (an
    /// external instance restarted) is registered again. `None` with the direct backend.
    pub async fn observe_path(&self, camera: &CameraInfo) -> Option<Observation> {
        let Backend::Mediamtx(mediamtx) = self else {
            return None;
        };
        if mediamtx.running.as_ref().is_some_and(|rx| !*rx.borrow()) {
            return Some(Observation::BackendDown);
        }
        Some(match mediamtx.client.path_state(&camera.id).await {
            Ok(Some(state)) if state.has_stream() => Observation::Present,
            Ok(Some(_)) => Observation::Absent,
            Ok(None) => {
                tracing::info!(camera = %camera.id, "MediaMTX does not know the path; registering it again");
                if let Err(e) = mediamtx.register(camera).await {
                    tracing::warn!(camera = %camera.id, "registering the MediaMTX path failed: {e}");
                }
                Observation::Absent
            }
            Err(e) => {
                tracing::debug!(camera = %camera.id, "MediaMTX path state unavailable: {e}");
                Observation::BackendDown
            }
        })
    }

    /// Registers a camera that appeared after start.
    pub async fn add_camera(&self, camera: &CameraInfo) -> Result<(), MediamtxError> {
        match self {
            Backend::DirectFfmpeg => Ok(()),
            Backend::Mediamtx(mediamtx) => {
                mediamtx.remember(camera);
                mediamtx.register(camera).await
            }
        }
    }

    /// `get_streams`: one entry per MediaMTX path of a camera; empty without MediaMTX.
    pub async fn streams(&self, cameras: &CameraRegistry) -> Result<Value, MediamtxError> {
        let Backend::Mediamtx(mediamtx) = self else {
            return Ok(json!([]));
        };
        let states = mediamtx.client.list_paths().await?;
        let streams: Vec<Value> = cameras
            .list()
            .iter()
            .map(|camera| {
                let state = states.iter().find(|s| s.name == camera.id);
                json!({
                    "name": camera.id,
                    "ready": state.is_some_and(PathState::has_stream),
                    "readers": state.map_or(0, |s| s.readers.len()),
                    "bytes_sent": state.map_or(0, |s| s.bytes_sent),
                    "urls": cameras.streams_of(&camera.id),
                })
            })
            .collect();
        Ok(json!(streams))
    }

    /// Stops a managed MediaMTX.
    pub async fn shutdown(&self) {
        if let Backend::Mediamtx(mediamtx) = self {
            let supervisor = mediamtx.supervisor.lock().expect("supervisor lock").take();
            if let Some(supervisor) = supervisor {
                supervisor.shutdown().await;
            }
        }
    }
}

impl Mediamtx {
    fn remember(&self, camera: &CameraInfo) {
        let config = path_config(&camera.source, &camera.id, self.rtsp_port, &self.ffmpeg);
        self.paths
            .lock()
            .expect("path set lock")
            .insert(camera.id.clone(), config);
    }

    async fn register(&self, camera: &CameraInfo) -> Result<(), MediamtxError> {
        let config = self
            .paths
            .lock()
            .expect("path set lock")
            .get(&camera.id)
            .cloned();
        match config {
            Some(config) => self.client.register_path(&camera.id, &config).await,
            None => Ok(()),
        }
    }
}
