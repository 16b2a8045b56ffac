//! Dispatch: method lookup, authentication and role checks, then the handler.
//!
//! Order of checks (as the original service): unknown method (−32601), not authenticated or
//! expired (−32001), role too low (−32003), then params and the call itself.

use std::sync::Mutex;
use std::time::Duration;

use serde_json::{json, Value};

use super::envelope::Request;
use super::error::{ErrorKind, RpcError};
use super::methods::Method;
use super::params::Params;
use crate::auth::{unix_now, Caller};
use crate::camera::presence::{self, MediaFailure};
use crate::camera::{CameraInfo, CameraStatus, Source};
use crate::ffmpeg::ImageFormat;
use crate::metrics;
use crate::process;
use crate::recording;
use crate::retention::{PolicyType, RetentionPolicy};
use crate::service::Service;
use crate::snapshot::SnapshotRequest;
use crate::storage::{rfc3339, FileKind};

/// Most entries one `list_*` call returns.
const MAX_LIST_LIMIT: u64 = 1000;
/// Default `limit` of `list_*`.
const DEFAULT_LIST_LIMIT: u64 = 100;

/// Per-connection state: who is authenticated.
#[derive(Debug)]
pub struct Session {
    caller: Mutex<Option<Caller>>,
    id: String,
}

impl Session {
    /// A session, authenticated already when the upgrade request carried a valid bearer token.
    pub fn new(caller: Option<Caller>) -> Self {
        Self {
            caller: Mutex::new(caller),
            id: uuid::Uuid::new_v4().to_string(),
        }
    }

    /// The authenticated caller, if any (expired or not).
    pub fn caller(&self) -> Option<Caller> {
        self.caller
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Whether notifications may be sent: authenticated and not expired.
    pub fn may_receive_notifications(&self) -> bool {
        self.caller()
            .is_some_and(|caller| !caller.is_expired(unix_now()))
    }
}

/// Handles one request and returns its result or error.
pub async fn dispatch(
    service: &Service,
    session: &Session,
    request: &Request,
) -> Result<Value, RpcError> {
    let method = Method::from_name(&request.method).ok_or_else(|| {
        RpcError::new(
            ErrorKind::MethodNotFound,
            format!("Method not found: `{}`", request.method),
        )
    })?;
    if let Some(required) = method.required_role() {
        let caller = session.caller().ok_or_else(|| {
            RpcError::new(
                ErrorKind::AuthFailed,
                format!(
                    "Authentication required for {} - call authenticate or send a bearer token",
                    method.name()
                ),
            )
        })?;
        if caller.is_expired(unix_now()) {
            return Err(RpcError::new(
                ErrorKind::AuthFailed,
                "Authentication failed: token expired",
            ));
        }
        if caller.role < required {
            return Err(RpcError::new(
                ErrorKind::InsufficientRole,
                format!(
                    "Insufficient permissions - {required} role required for {} (caller is {})",
                    method.name(),
                    caller.role
                ),
            ));
        }
    }
    let params = Params(&request.params);
    match method {
        Method::Ping => Ok(json!("pong")),
        Method::Authenticate => authenticate(service, session, params),
        Method::GetCameraList => Ok(camera_list(service)),
        Method::GetCameraStatus => camera_status(service, params).await,
        Method::GetCameraCapabilities => {
            let camera = camera(service, params)?;
            Ok(json!({
                "device": camera.id,
                "formats": camera.capabilities.formats,
                "resolutions": camera.capabilities.resolutions,
                "fps": camera.capabilities.fps,
            }))
        }
        Method::GetStreams => service
            .backend
            .streams(&service.cameras)
            .await
            .map_err(|e| RpcError::new(ErrorKind::MediaBackend, e.to_string())),
        Method::ListRecordings => list_files(service, FileKind::Recording, params),
        Method::ListSnapshots => list_files(service, FileKind::Snapshot, params),
        Method::GetRecordingInfo => recording_info(service, params).await,
        Method::GetSnapshotInfo => snapshot_info(service, params).await,
        Method::TakeSnapshot => take_snapshot(service, params).await,
        Method::StartRecording => start_recording(service, params).await,
        Method::StopRecording => stop_recording(service, params).await,
        Method::DeleteRecording => delete_file(service, FileKind::Recording, params),
        Method::DeleteSnapshot => delete_file(service, FileKind::Snapshot, params),
        Method::GetStorageInfo => storage_info(service),
        Method::SetRetentionPolicy => set_retention_policy(service, params),
        Method::CleanupOldFiles => cleanup_old_files(service),
        Method::GetStatus => Ok(status(service).await),
        Method::GetMetrics => Ok(metrics_result(service)),
        Method::GetServerInfo => Ok(server_info(service)),
    }
}

fn authenticate(
    service: &Service,
    session: &Session,
    params: Params<'_>,
) -> Result<Value, RpcError> {
    let token = match params.optional_string("auth_token")? {
        Some(token) => token,
        None => params.string("token").map_err(|_| {
            RpcError::invalid_param("auth_token", "is required (a JWT or an API key)")
        })?,
    };
    let caller = service.auth.verify(token)?;
    let result = json!({
        "authenticated": true,
        "role": caller.role,
        "permissions": caller.role.permissions(),
        "expires_at": caller.expires_at.map(|exp| {
            rfc3339(std::time::UNIX_EPOCH + Duration::from_secs(exp))
        }),
        "session_id": session.id,
    });
    *session
        .caller
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(caller);
    Ok(result)
}

fn camera(service: &Service, params: Params<'_>) -> Result<CameraInfo, RpcError> {
    let id = params.string("device")?;
    service.cameras.get(id).ok_or_else(|| {
        RpcError::new(
            ErrorKind::CameraNotFound,
            format!("Camera not found: `{id}`"),
        )
    })
}

fn camera_list(service: &Service) -> Value {
    let cameras = service.cameras.list();
    let connected = cameras
        .iter()
        .filter(|c| c.status == CameraStatus::Connected)
        .count();
    let summaries: Vec<Value> = cameras.iter().map(|c| service.cameras.summary(c)).collect();
    json!({ "cameras": summaries, "total": cameras.len(), "connected": connected })
}

async fn camera_status(service: &Service, params: Params<'_>) -> Result<Value, RpcError> {
    let camera = camera(service, params)?;
    let (bytes_sent, readers) = service.backend.path_metrics(&camera.id).await;
    let mut result = service.cameras.summary(&camera);
    result["capabilities"] = json!(camera.capabilities);
    result["recording"] = json!(service.recorder.is_recording(&camera.id));
    result["metrics"] = json!({
        "bytes_sent": bytes_sent,
        "readers": readers,
        "uptime": service.started.elapsed().as_secs(),
    });
    Ok(result)
}

fn list_files(service: &Service, kind: FileKind, params: Params<'_>) -> Result<Value, RpcError> {
    let limit = params
        .optional_integer("limit", 1, MAX_LIST_LIMIT)?
        .unwrap_or(DEFAULT_LIST_LIMIT);
    let offset = params
        .optional_integer("offset", 0, u64::from(u32::MAX))?
        .unwrap_or(0);
    let files = service.storage.list(kind)?;
    let total = files.len();
    let page: Vec<_> = files
        .into_iter()
        .skip(usize::try_from(offset).unwrap_or(usize::MAX))
        .take(usize::try_from(limit).unwrap_or(usize::MAX))
        .collect();
    Ok(json!({ "files": page, "total": total, "limit": limit, "offset": offset }))
}

async fn recording_info(service: &Service, params: Params<'_>) -> Result<Value, RpcError> {
    let name = params.string("filename")?;
    let entry = service.storage.info(FileKind::Recording, name)?;
    let path = service.storage.path_of(FileKind::Recording, name)?;
    let mut result = serde_json::to_value(&entry).expect("file entries serialise");
    let limit = service.config.ffmpeg.snapshot_timeout.0;
    let _slot = service.media_slots.acquire(None).await?;
    result["duration"] = json!(recording::media_duration(&service.ffmpeg, &path, limit).await);
    result["recording"] = json!(service.recorder.active_files().contains(&entry.filename));
    Ok(result)
}

async fn snapshot_info(service: &Service, params: Params<'_>) -> Result<Value, RpcError> {
    let name = params.string("filename")?;
    let entry = service.storage.info(FileKind::Snapshot, name)?;
    let path = service.storage.path_of(FileKind::Snapshot, name)?;
    let mut result = serde_json::to_value(&entry).expect("file entries serialise");
    let spec = service.ffmpeg.probe_resolution(&path);
    let _slot = service.media_slots.acquire(None).await?;
    let resolution = process::run_capturing(&spec, service.config.ffmpeg.snapshot_timeout.0)
        .await
        .ok()
        .map(|out| out.trim().to_owned())
        .filter(|r| crate::config::parse_size(r).is_ok());
    result["resolution"] = json!(resolution);
    Ok(result)
}

/// `camera` with the source its media is read from: its MediaMTX path once that has a stream,
/// or the source itself. A path that gets no stream in time counts against the camera's
/// status: an RTSP camera's source is gone (DISCONNECTED), anything else failed (ERROR).
/// An unplugged V4L2 camera is refused before anything is started (an RTSP camera is tried:
/// its source may be back before the next presence check).
async fn media_camera(service: &Service, mut camera: CameraInfo) -> Result<CameraInfo, RpcError> {
    if camera.status == CameraStatus::Disconnected && matches!(camera.source, Source::V4l2(_)) {
        return Err(RpcError::new(
            ErrorKind::InvalidState,
            format!(
                "Camera `{}` is DISCONNECTED: its device is unplugged",
                camera.id
            ),
        ));
    }
    let ready = service
        .backend
        .wait_stream_ready(&camera, service.config.ffmpeg.start_timeout.0)
        .await;
    if let Err(e) = ready {
        let failure = match camera.source {
            Source::Rtsp(_) if e.source_absent => MediaFailure::SourceAbsent,
            Source::Rtsp(_) | Source::TestPattern | Source::V4l2(_) => MediaFailure::Failed,
        };
        service.cameras.update_status(&camera.id, |status| {
            presence::after_media_failure(status, failure)
        });
        return Err(RpcError::new(ErrorKind::MediaBackend, e.to_string()));
    }
    camera.source = service.backend.media_source(&camera);
    Ok(camera)
}

async fn take_snapshot(service: &Service, params: Params<'_>) -> Result<Value, RpcError> {
    let camera = camera(service, params)?;
    let format = match params.optional_string("format")? {
        None | Some("jpg" | "jpeg") => ImageFormat::Jpeg,
        Some("png") => ImageFormat::Png,
        Some(_) => return Err(RpcError::invalid_param("format", "must be `jpg` or `png`")),
    };
    let quality = params.optional_integer("quality", 1, 100)?.unwrap_or(85);
    let filename = params.optional_string("filename")?;
    if let Some(name) = filename {
        crate::storage::validate_file_name(name)
            .map_err(|e| RpcError::invalid_param("filename", e))?;
    }
    let request = SnapshotRequest {
        filename: filename.map(str::to_owned),
        format,
        quality: u8::try_from(quality).expect("quality is within 1..=100"),
    };
    let camera = media_camera(service, camera).await?;
    let snapshot = service.snapshotter.take(&camera, &request).await?;
    Ok(json!({
        "device": camera.id,
        "filename": snapshot.filename,
        "status": "completed",
        "timestamp": snapshot.timestamp,
        "file_size": snapshot.file_size,
        "download_url": format!("/files/snapshots/{}", snapshot.filename),
    }))
}

async fn start_recording(service: &Service, params: Params<'_>) -> Result<Value, RpcError> {
    let camera = camera(service, params)?;
    let max = service.config.ffmpeg.max_recording.0.as_secs().max(1);
    let duration = [
        ("duration", 1),
        ("duration_seconds", 1),
        ("duration_minutes", 60),
        ("duration_hours", 3600),
    ]
    .into_iter()
    .try_fold(None, |found, (name, unit)| {
        let value = params.optional_integer(name, 1, max / unit)?;
        Ok::<_, RpcError>(found.or(value.map(|v| v * unit)))
    })?;
    match params.optional_string("format")? {
        None | Some("mp4" | "fmp4") => {}
        Some(_) => return Err(RpcError::invalid_param("format", "must be `mp4`")),
    }
    let camera = media_camera(service, camera).await?;
    let started = service
        .recorder
        .start(&camera, duration.map(Duration::from_secs))
        .await?;
    Ok(json!({
        "device": camera.id,
        "session_id": started.session_id,
        "filename": started.filename,
        "status": "STARTED",
        "start_time": started.start_time,
        "duration": started.duration,
        "format": "mp4",
    }))
}

async fn stop_recording(service: &Service, params: Params<'_>) -> Result<Value, RpcError> {
    let camera = camera(service, params)?;
    let finished = service.recorder.stop(&camera.id).await?;
    Ok(json!({
        "device": camera.id,
        "session_id": finished.session_id,
        "filename": finished.filename,
        "status": finished.status,
        "start_time": finished.start_time,
        "end_time": finished.end_time,
        "duration": finished.duration,
        "file_size": finished.file_size,
        "error": finished.error,
    }))
}

fn delete_file(service: &Service, kind: FileKind, params: Params<'_>) -> Result<Value, RpcError> {
    let name = params.string("filename")?;
    if kind == FileKind::Recording && service.recorder.active_files().iter().any(|f| f == name) {
        return Err(RpcError::new(
            ErrorKind::InvalidState,
            format!("recording `{name}` is in progress; stop it first"),
        ));
    }
    service.storage.delete(kind, name)?;
    Ok(json!({
        "filename": name,
        "deleted": true,
        "message": format!("{} `{name}` deleted", kind.dir_name()),
    }))
}

fn storage_info(service: &Service) -> Result<Value, RpcError> {
    let usage = service.storage.disk_usage()?;
    let percent = usage.usage_percent();
    let storage = &service.config.storage;
    Ok(json!({
        "total_space": usage.total_space,
        "used_space": usage.used_space,
        "available_space": usage.available_space,
        "usage_percentage": (percent * 10.0).round() / 10.0,
        "recordings_size": service.storage.total_size(FileKind::Recording)?,
        "snapshots_size": service.storage.total_size(FileKind::Snapshot)?,
        "low_space_warning": percent >= f64::from(storage.warn_percent),
        "warn_threshold_percent": storage.warn_percent,
        "block_threshold_percent": storage.block_percent,
    }))
}

fn set_retention_policy(service: &Service, params: Params<'_>) -> Result<Value, RpcError> {
    let type_name = params.string("policy_type")?;
    let policy_type = PolicyType::from_name(type_name).ok_or_else(|| {
        RpcError::invalid_param("policy_type", "must be `age`, `size` or `manual`")
    })?;
    let max_age_days = params.optional_number("max_age_days", 36_500.0)?;
    let max_size_gb = params.optional_number("max_size_gb", 1e6)?;
    let enabled = params
        .optional_bool("enabled")?
        .ok_or_else(|| RpcError::invalid_param("enabled", "is required"))?;
    match policy_type {
        PolicyType::Age if max_age_days.is_none() => {
            return Err(RpcError::invalid_param(
                "max_age_days",
                "is required for policy `age`",
            ))
        }
        PolicyType::Size if max_size_gb.is_none() => {
            return Err(RpcError::invalid_param(
                "max_size_gb",
                "is required for policy `size`",
            ))
        }
        PolicyType::Age | PolicyType::Size | PolicyType::Manual => {}
    }
    let policy = RetentionPolicy {
        policy_type,
        max_age_days,
        max_size_gb,
        enabled,
    };
    *service.retention.lock().expect("retention lock") = policy;
    Ok(json!({
        "policy_type": policy_type.name(),
        "max_age_days": max_age_days,
        "max_size_gb": max_size_gb,
        "enabled": enabled,
        "message": "retention policy updated",
    }))
}

fn cleanup_old_files(service: &Service) -> Result<Value, RpcError> {
    let policy = *service.retention.lock().expect("retention lock");
    let (max_age, max_bytes) = policy.limits();
    if max_age.is_none() && max_bytes.is_none() {
        return Ok(json!({
            "cleanup_executed": false,
            "files_deleted": 0,
            "space_freed": 0,
            "message": "retention policy is manual or disabled; nothing deleted",
        }));
    }
    let in_progress = service.recorder.active_files();
    let (deleted, freed) = service
        .storage
        .apply_retention(max_age, max_bytes, &in_progress)?;
    Ok(json!({
        "cleanup_executed": true,
        "files_deleted": deleted,
        "space_freed": freed,
        "message": format!("deleted {deleted} files under the `{}` policy", policy.policy_type.name()),
    }))
}

/// `get_status`: `healthy`, or `unhealthy` with each failing component named (storage not
/// writable, FFmpeg or FFprobe not running) in `components` and `problems`.
async fn status(service: &Service) -> Value {
    let report = service.readiness.check().await;
    let component = |result: Result<(), &String>| match result {
        Ok(()) => "ok".to_owned(),
        Err(e) => format!("error: {e}"),
    };
    json!({
        "status": if report.is_ready() { "healthy" } else { "unhealthy" },
        "uptime": service.started.elapsed().as_secs(),
        "version": env!("CARGO_PKG_VERSION"),
        "components": {
            "websocket_server": "running",
            "camera_monitor": if service.config.cameras.discover_v4l2 { "running" } else { "disabled" },
            "media_backend": service.backend.name(),
            "storage": component(report.storage.as_ref().map(drop)),
            "ffmpeg": component(report.ffmpeg.as_ref().map(drop)),
            "ffprobe": component(report.ffprobe.as_ref().map(drop)),
        },
        "problems": report.problems(),
        "active_recordings": service.recorder.active_count(),
    })
}

fn metrics_result(service: &Service) -> Value {
    let snapshot = service.metrics.snapshot();
    let uptime = service.started.elapsed().as_secs_f64();
    let cpu_usage = metrics::cpu_seconds()
        .filter(|_| uptime > 0.0)
        .map(|cpu| (cpu / uptime * 1000.0).round() / 10.0);
    json!({
        "active_connections": snapshot.active_connections,
        "total_requests": snapshot.total_requests,
        "average_response_time": snapshot.average_response_time_ms,
        "error_rate": snapshot.error_rate,
        "memory_usage": metrics::resident_bytes(),
        "cpu_usage": cpu_usage,
    })
}

fn server_info(service: &Service) -> Value {
    json!({
        "name": "camera-service",
        "version": env!("CARGO_PKG_VERSION"),
        "backend": service.backend.name(),
        "capabilities": ["snapshots", "recordings", "notifications"],
        "supported_formats": ["mp4", "jpg", "png"],
        "max_cameras": service.cameras.list().len(),
    })
}
