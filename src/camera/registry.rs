//! The registry of known cameras; status changes are pushed as `camera_status_update`.

use std::sync::RwLock;

use serde::Serialize;
use serde_json::{json, Value};

use super::Source;
use crate::notify::Notifier;

/// Camera status as reported to clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CameraStatus {
    /// Present and usable.
    Connected,
    /// Unplugged (V4L2) — kept so a re-plug gets the same id.
    Disconnected,
    /// The last media operation on it failed.
    Error,
}

/// What a camera can deliver.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Capabilities {
    /// Pixel formats (`YUYV`, `MJPG`, …).
    pub formats: Vec<String>,
    /// Frame sizes `WxH`.
    pub resolutions: Vec<String>,
    /// Frame rates.
    pub fps: Vec<u32>,
}

/// One camera.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CameraInfo {
    /// Stable public id (`camera0`, …).
    pub id: String,
    /// Human-readable name.
    pub name: String,
    /// Where the video comes from (never sent to clients).
    pub source: Source,
    /// Status.
    pub status: CameraStatus,
    /// Current frame size `WxH` (empty when unknown).
    pub resolution: String,
    /// Current frame rate (0 when unknown).
    pub fps: u32,
    /// Formats, sizes and rates.
    pub capabilities: Capabilities,
    /// Stable hardware key for V4L2 cameras (`/dev/v4l/by-id` name or bus info).
    pub hardware_key: Option<String>,
}

/// How to build stream URLs for a camera id; absent with the direct FFmpeg backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamUrls {
    /// Host in the URLs.
    pub host: String,
    /// RTSP port.
    pub rtsp_port: u16,
    /// HLS port.
    pub hls_port: u16,
    /// WebRTC port.
    pub webrtc_port: u16,
}

impl StreamUrls {
    /// `{rtsp, hls, webrtc}` for a camera id (the MediaMTX path name).
    pub fn for_camera(&self, id: &str) -> Value {
        json!({
            "rtsp": format!("rtsp://{}:{}/{id}", self.host, self.rtsp_port),
            "hls": format!("http://{}:{}/{id}/", self.host, self.hls_port),
            "webrtc": format!("http://{}:{}/{id}/", self.host, self.webrtc_port),
        })
    }
}

/// The camera registry.
#[derive(Debug)]
pub struct CameraRegistry {
    cameras: RwLock<Vec<CameraInfo>>,
    streams: RwLock<Option<StreamUrls>>,
    notifier: Notifier,
}

impl CameraRegistry {
    /// A registry holding `cameras`, notifying through `notifier`.
    pub fn new(cameras: Vec<CameraInfo>, notifier: Notifier) -> Self {
        Self {
            cameras: RwLock::new(cameras),
            streams: RwLock::new(None),
            notifier,
        }
    }

    /// Sets (or clears) how stream URLs are built.
    pub fn set_stream_urls(&self, urls: Option<StreamUrls>) {
        *self.streams.write().expect("streams lock") = urls;
    }

    /// All cameras, in id order.
    pub fn list(&self) -> Vec<CameraInfo> {
        self.cameras.read().expect("cameras lock").clone()
    }

    /// One camera by id.
    pub fn get(&self, id: &str) -> Option<CameraInfo> {
        self.cameras
            .read()
            .expect("cameras lock")
            .iter()
            .find(|c| c.id == id)
            .cloned()
    }

    /// The `streams` object of a camera: empty without MediaMTX.
    pub fn streams_of(&self, id: &str) -> Value {
        match &*self.streams.read().expect("streams lock") {
            Some(urls) => urls.for_camera(id),
            None => json!({}),
        }
    }

    /// The public summary `{device, status, name, resolution, fps, streams}`.
    pub fn summary(&self, camera: &CameraInfo) -> Value {
        json!({
            "device": camera.id,
            "status": camera.status,
            "name": camera.name,
            "resolution": camera.resolution,
            "fps": camera.fps,
            "streams": self.streams_of(&camera.id),
        })
    }

    /// Sets a camera's status; a change is pushed as `camera_status_update`.
    pub fn set_status(&self, id: &str, status: CameraStatus) {
        self.update_status(id, |_| status);
    }

    /// Sets a camera's status to `next(current)`, computed under the registry lock so that
    /// concurrent updates (presence checks, snapshots, recordings, hot-plug) do not interleave;
    /// a change is pushed as one `camera_status_update`.
    pub fn update_status(&self, id: &str, next: impl FnOnce(CameraStatus) -> CameraStatus) {
        // The notification is sent under the lock, so clients see changes in the order made.
        let mut cameras = self.cameras.write().expect("cameras lock");
        let Some(camera) = cameras.iter_mut().find(|c| c.id == id) else {
            return;
        };
        let status = next(camera.status);
        if camera.status != status {
            camera.status = status;
            tracing::info!(camera = %camera.id, ?status, "camera status changed");
            self.notifier
                .send("camera_status_update", self.summary(camera));
        }
    }

    /// Adds a newly found camera, or updates the one with the same hardware key (keeping its
    /// id); either way a `camera_status_update` is pushed. Returns the camera id.
    pub fn upsert_discovered(&self, mut found: CameraInfo) -> String {
        let camera = {
            let mut cameras = self.cameras.write().expect("cameras lock");
            let existing = cameras
                .iter_mut()
                .find(|c| c.hardware_key.is_some() && c.hardware_key == found.hardware_key);
            match existing {
                Some(camera) => {
                    found.id = camera.id.clone();
                    *camera = found;
                    camera.clone()
                }
                None => {
                    found.id = next_free_id(&cameras);
                    cameras.push(found);
                    cameras.last().expect("just pushed").clone()
                }
            }
        };
        tracing::info!(camera = %camera.id, source = %camera.source, "camera connected");
        self.notifier
            .send("camera_status_update", self.summary(&camera));
        camera.id
    }
}

fn next_free_id(cameras: &[CameraInfo]) -> String {
    (0..)
        .map(|n| format!("camera{n}"))
        .find(|id| cameras.iter().all(|c| &c.id != id))
        .expect("an unbounded range has a free id")
}
