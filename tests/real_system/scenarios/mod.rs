//! The seven real-system scenarios of the original suite (facts doc §2.7), with exact
//! assertions. Each scenario has a direct-FFmpeg variant that needs only FFmpeg where the
//! scenario can run without MediaMTX, a MediaMTX variant (`needs-mediamtx`), and v4l2loopback
//! variants (`needs-v4l2loopback`) where a V4L2 device matters. Names: `real_<feature>_<scenario>`.

use std::time::Duration;

use anyhow::ensure;
use serde_json::{json, Value};

use crate::support::mediamtx::{binary, free_port};
use crate::support::service::ServiceOptions;
use crate::support::ws_client::WsClient;

mod control;
mod discovery;
mod fixtures;
mod lifecycle;
mod media;
mod recovery;
mod resources;
mod startup;

/// Longest wait for a notification.
pub const NOTIFY: Duration = Duration::from_secs(30);
/// Longest wait for a MediaMTX path to get its stream.
pub const STREAM_READY: Duration = Duration::from_secs(45);
/// Size and rate of the service's `testsrc` cameras in the direct variants (small: 2 cores).
pub const TESTSRC: (u32, u32, u32) = (320, 240, 10);

/// Direct FFmpeg backend (`mediamtx.mode = "off"`, the fixture's default) with `sources` and
/// the small test pattern.
pub fn direct(sources: &str) -> ServiceOptions {
    let (w, h, fps) = TESTSRC;
    ServiceOptions::default()
        .env("CAMERA_SERVICE_CAMERAS_SOURCES", sources)
        .env("CAMERA_SERVICE_CAMERAS_TESTSRC_SIZE", &format!("{w}x{h}"))
        .env("CAMERA_SERVICE_CAMERAS_TESTSRC_FPS", &fps.to_string())
}

/// Ports of a managed MediaMTX.
#[derive(Debug, Clone, Copy)]
pub struct MtxPorts {
    /// API.
    pub api: u16,
    /// RTSP.
    pub rtsp: u16,
    /// HLS.
    pub hls: u16,
    /// WebRTC.
    pub webrtc: u16,
}

impl MtxPorts {
    /// `rtsp://127.0.0.1:RTSP/ID`, as the service reports it.
    pub fn rtsp_url(&self, id: &str) -> String {
        format!("rtsp://127.0.0.1:{}/{id}", self.rtsp)
    }

    /// The `streams` object the service must report for camera `id`.
    pub fn streams(&self, id: &str) -> Value {
        json!({
            "rtsp": self.rtsp_url(id),
            "hls": format!("http://127.0.0.1:{}/{id}/", self.hls),
            "webrtc": format!("http://127.0.0.1:{}/{id}/", self.webrtc),
        })
    }

    /// The API address.
    pub fn api_addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.api))
    }
}

/// The managed MediaMTX backend on free ports (TCP listeners and WebRTC's ICE UDP listener, so
/// managed instances of parallel tests never collide) with `sources`, plus the small test pattern.
pub fn managed(ctx: &realtest::Ctx, sources: &str) -> anyhow::Result<(ServiceOptions, MtxPorts)> {
    let (path, _version) = binary(ctx)?;
    let ports = MtxPorts {
        api: free_port()?,
        rtsp: free_port()?,
        hls: free_port()?,
        webrtc: free_port()?,
    };
    let webrtc_udp = std::net::UdpSocket::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let options = direct(sources)
        .env("CAMERA_SERVICE_MEDIAMTX_MODE", "managed")
        .env(
            "CAMERA_SERVICE_MEDIAMTX_BINARY",
            &path.display().to_string(),
        )
        .env("CAMERA_SERVICE_MEDIAMTX_API_PORT", &ports.api.to_string())
        .env("CAMERA_SERVICE_MEDIAMTX_RTSP_PORT", &ports.rtsp.to_string())
        .env("CAMERA_SERVICE_MEDIAMTX_HLS_PORT", &ports.hls.to_string())
        .env(
            "CAMERA_SERVICE_MEDIAMTX_WEBRTC_PORT",
            &ports.webrtc.to_string(),
        )
        .env(
            "CAMERA_SERVICE_MEDIAMTX_WEBRTC_UDP_PORT",
            &webrtc_udp.to_string(),
        );
    Ok((options, ports))
}

/// Polls `get_streams` until every camera in `ids` is ready.
pub async fn wait_streams_ready(client: &mut WsClient, ids: &[&str]) -> anyhow::Result<Value> {
    let deadline = tokio::time::Instant::now() + STREAM_READY;
    loop {
        let streams = client.call_ok("get_streams", json!({})).await?;
        let ready = ids.iter().all(|id| {
            streams
                .as_array()
                .is_some_and(|s| s.iter().any(|s| s["name"] == *id && s["ready"] == true))
        });
        if ready {
            return Ok(streams);
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "streams {ids:?} not ready within {STREAM_READY:?}: {streams}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The next two `recording_status_update`s must be STARTED then `end` for `filename` on
/// `camera`; returns the second one's params.
pub async fn expect_started_then(
    client: &mut WsClient,
    camera: &str,
    filename: &str,
    end: &str,
) -> anyhow::Result<Value> {
    let first = client
        .next_notification("recording_status_update", NOTIFY)
        .await?;
    ensure!(
        first["status"] == "STARTED" && first["filename"] == filename && first["device"] == camera,
        "first recording_status_update must be STARTED for {camera}/{filename}: {first}"
    );
    let second = client
        .next_notification("recording_status_update", NOTIFY)
        .await?;
    ensure!(
        second["status"] == end && second["filename"] == filename && second["device"] == camera,
        "second recording_status_update must be {end} for {camera}/{filename}: {second}"
    );
    Ok(second)
}

/// `|actual - expected| <= tolerance`, with a message naming what was measured.
pub fn ensure_within(what: &str, actual: f64, expected: f64, tolerance: f64) -> anyhow::Result<()> {
    ensure!(
        (actual - expected).abs() <= tolerance,
        "{what}: {actual} is not within {expected} ± {tolerance}"
    );
    Ok(())
}
