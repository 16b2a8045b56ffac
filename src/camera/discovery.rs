//! V4L2 discovery: which `/dev/video*` nodes are cameras (VIDEO_CAPTURE in the device caps, not
//! memory-to-memory codecs, not metadata or output nodes), their formats, sizes and rates, a
//! stable key so a re-plugged camera keeps its id, and a polling hot-plug loop.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use v4l::capability::Flags;
use v4l::frameinterval::FrameIntervalEnum;
use v4l::framesize::FrameSizeEnum;
use v4l::video::Capture;

use super::{CameraInfo, CameraRegistry, CameraStatus, Capabilities, Source};
use crate::process;
use crate::service::Service;

/// Where stable symlinks to video nodes live.
const BY_ID_DIR: &str = "/dev/v4l/by-id";
/// Most frame sizes reported per format.
const MAX_SIZES_PER_FORMAT: usize = 16;

/// A V4L2 capture node and what it can do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbedDevice {
    /// The node, e.g. `/dev/video0`.
    pub path: PathBuf,
    /// Card name from QUERYCAP.
    pub card: String,
    /// Stable key: the `/dev/v4l/by-id` link name, else `bus_info` + card.
    pub key: String,
    /// Formats, sizes, rates.
    pub capabilities: Capabilities,
    /// Current size `WxH`.
    pub resolution: String,
    /// Current frame rate.
    pub fps: u32,
}

/// Whether device caps describe a camera: video capture, and not a mem-to-mem device.
pub fn is_capture_node(device_caps: Flags) -> bool {
    let capture = device_caps.intersects(Flags::VIDEO_CAPTURE | Flags::VIDEO_CAPTURE_MPLANE);
    let m2m = device_caps.intersects(Flags::VIDEO_M2M | Flags::VIDEO_M2M_MPLANE);
    capture && !m2m
}

/// Probes one node; `Ok(None)` when it is not a camera. No child is forked meanwhile, so none
/// inherits the node's descriptor (see [`process::without_forks`]).
pub fn probe(path: &Path) -> std::io::Result<Option<ProbedDevice>> {
    process::without_forks(|| probe_node(path))
}

fn probe_node(path: &Path) -> std::io::Result<Option<ProbedDevice>> {
    let device = v4l::Device::with_path(path)?;
    let caps = device.query_caps()?;
    if !is_capture_node(caps.capabilities) {
        return Ok(None);
    }
    let mut capabilities = Capabilities::default();
    let mut sizes = BTreeSet::new();
    let mut rates = BTreeSet::new();
    for format in device.enum_formats().unwrap_or_default() {
        let fourcc = format.fourcc.str().unwrap_or("????").trim().to_owned();
        capabilities.formats.push(fourcc);
        for size in device
            .enum_framesizes(format.fourcc)
            .unwrap_or_default()
            .into_iter()
            .take(MAX_SIZES_PER_FORMAT)
        {
            let discrete: Vec<(u32, u32)> = match size.size {
                FrameSizeEnum::Discrete(d) => vec![(d.width, d.height)],
                FrameSizeEnum::Stepwise(s) => {
                    vec![(s.min_width, s.min_height), (s.max_width, s.max_height)]
                }
            };
            for (w, h) in discrete {
                sizes.insert((w, h));
                for interval in device
                    .enum_frameintervals(format.fourcc, w, h)
                    .unwrap_or_default()
                {
                    if let FrameIntervalEnum::Discrete(f) = interval.interval {
                        rates.extend(f.denominator.checked_div(f.numerator));
                    }
                }
            }
        }
    }
    capabilities.resolutions = sizes.iter().map(|(w, h)| format!("{w}x{h}")).collect();
    capabilities.fps = rates.into_iter().collect();
    let current = device.format().ok();
    let fps = device
        .params()
        .ok()
        .and_then(|p| p.interval.denominator.checked_div(p.interval.numerator))
        .unwrap_or(0);
    Ok(Some(ProbedDevice {
        key: stable_key(path, &caps.bus, &caps.card),
        path: path.to_owned(),
        card: caps.card,
        capabilities,
        resolution: current.map_or_else(String::new, |f| format!("{}x{}", f.width, f.height)),
        fps,
    }))
}

/// The `/dev/v4l/by-id` name linking to `path`, else `bus_info` and card.
fn stable_key(path: &Path, bus: &str, card: &str) -> String {
    let target = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
    let by_id = std::fs::read_dir(BY_ID_DIR).into_iter().flatten().flatten();
    for link in by_id {
        if std::fs::canonicalize(link.path()).is_ok_and(|t| t == target) {
            return format!("by-id:{}", link.file_name().to_string_lossy());
        }
    }
    format!("bus:{bus}:{card}")
}

/// `/dev/video*` nodes, sorted.
pub fn video_nodes() -> Vec<PathBuf> {
    let mut nodes: Vec<PathBuf> = std::fs::read_dir("/dev")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("video"))
        .map(|e| e.path())
        .collect();
    nodes.sort();
    nodes
}

fn camera_of(device: ProbedDevice) -> CameraInfo {
    CameraInfo {
        id: String::new(),
        name: device.card,
        source: Source::V4l2(device.path),
        status: CameraStatus::Connected,
        resolution: device.resolution,
        fps: device.fps,
        capabilities: device.capabilities,
        hardware_key: Some(device.key),
    }
}

/// Probes every node not used by a configured camera and adds the capture nodes to `registry`
/// (the start-up scan, before the media backend registers paths).
pub fn scan_into(registry: &CameraRegistry) {
    let configured = configured_nodes(registry);
    for path in video_nodes() {
        if configured.contains(&path) {
            continue;
        }
        match probe(&path) {
            Ok(Some(device)) => {
                registry.upsert_discovered(camera_of(device));
            }
            Ok(None) => {}
            Err(e) => tracing::debug!(path = %path.display(), "not probed: {e}"),
        }
    }
}

/// Nodes named explicitly in the configuration (`v4l2:/dev/…`).
fn configured_nodes(registry: &CameraRegistry) -> BTreeSet<PathBuf> {
    configured_cameras(registry).into_values().collect()
}

/// Ids and nodes of cameras configured as `v4l2:/dev/…`.
fn configured_cameras(registry: &CameraRegistry) -> BTreeMap<String, PathBuf> {
    registry
        .list()
        .into_iter()
        .filter_map(|c| match c.source {
            Source::V4l2(path) if c.hardware_key.is_none() => Some((c.id, path)),
            Source::V4l2(_) | Source::TestPattern | Source::Rtsp(_) => None,
        })
        .collect()
}

/// Scans every `interval` until `shutdown`: new capture nodes become cameras (or reconnect the
/// camera with the same stable key) and get a MediaMTX path, vanished ones become DISCONNECTED.
/// Nodes configured explicitly (`v4l2:/dev/…`) are left to their configured camera.
pub async fn run(service: Arc<Service>, interval: Duration, shutdown: CancellationToken) {
    let registry = &service.cameras;
    let configured_ids = configured_cameras(registry);
    // Presence of configured nodes; only a change touches the status (an ERROR stays).
    let mut configured_present: BTreeMap<String, bool> = configured_ids
        .iter()
        .map(|(id, path)| (id.clone(), path.exists()))
        .collect();
    let configured = configured_nodes(registry);
    let mut known: BTreeMap<PathBuf, String> = registry
        .list()
        .into_iter()
        .filter(|c| c.hardware_key.is_some() && c.status == CameraStatus::Connected)
        .filter_map(|c| match c.source {
            Source::V4l2(path) => Some((path, c.id)),
            Source::TestPattern | Source::Rtsp(_) => None,
        })
        .collect();
    loop {
        tokio::select! {
            biased;
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
        for (id, path) in &configured_ids {
            let present = path.exists();
            if configured_present.insert(id.clone(), present) != Some(present) {
                let status = if present {
                    CameraStatus::Connected
                } else {
                    CameraStatus::Disconnected
                };
                registry.set_status(id, status);
            }
        }
        known.retain(|path, id| {
            let present = path.exists();
            if !present {
                tracing::info!(camera = %id, path = %path.display(), "camera unplugged");
                registry.set_status(id, CameraStatus::Disconnected);
            }
            present
        });
        let fresh: Vec<PathBuf> = video_nodes()
            .into_iter()
            .filter(|p| !configured.contains(p) && !known.contains_key(p))
            .collect();
        let probed = tokio::task::spawn_blocking(move || {
            fresh
                .into_iter()
                .filter_map(|path| match probe(&path) {
                    Ok(found) => found,
                    Err(e) => {
                        tracing::debug!(path = %path.display(), "not probed: {e}");
                        None
                    }
                })
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
        for device in probed {
            let path = device.path.clone();
            let id = registry.upsert_discovered(camera_of(device));
            if let Some(camera) = registry.get(&id) {
                if let Err(e) = service.backend.add_camera(&camera).await {
                    tracing::warn!(camera = %id, "registering the MediaMTX path failed: {e}");
                }
            }
            known.insert(path, id);
        }
    }
}
