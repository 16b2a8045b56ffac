//! Scenario 7 — end-to-end camera lifecycle: discover → stream → record → snapshot → files →
//! camera removed → DISCONNECTED → list updated → camera back → CONNECTED.
//!
//! What can be removed depends on the source. A `testsrc` camera cannot go away, so the direct
//! variant covers the lifecycle up to the files and then a service restart (files and secret
//! persist). An RTSP camera goes away when its publisher stops; that needs an RTSP server, i.e.
//! MediaMTX. A V4L2 camera goes away when its node disappears: a v4l2loopback node deleted and
//! re-added (`v4l2loopback-ctl`, root).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::{ensure, Context};
use camera_service::auth::Role;
use realtest::{Ctx, Skip};
use serde_json::{json, Value};

use super::{
    direct, expect_started_then, managed, wait_streams_ready, NOTIFY, STREAM_READY, TESTSRC,
};
use crate::support::hygiene::PostTestCheck;
use crate::support::mediamtx::RealMediaMTXServer;
use crate::support::service::{ServiceOptions, ServiceUnderTest};
use crate::support::simulator::{Pattern, TestVideoStreamSimulator};
use crate::support::ws_client::WsClient;
use crate::support::{http, media};

/// Record 2 s and take a snapshot of `camera` (size `size`); the files exist, decode at that
/// size, and download. Returns (recording, snapshot) names.
async fn record_and_snapshot(
    ctx: &Ctx,
    service: &ServiceUnderTest,
    client: &mut WsClient,
    camera: &str,
    size: (u64, u64),
) -> anyhow::Result<(String, String)> {
    let started = client
        .call_ok(
            "start_recording",
            json!({ "device": camera, "duration": 2 }),
        )
        .await?;
    let recording = started["filename"].as_str().context("filename")?.to_owned();
    expect_started_then(client, camera, &recording, "STOPPED").await?;
    let snap = client
        .call_ok("take_snapshot", json!({ "device": camera }))
        .await?;
    let snapshot = snap["filename"].as_str().context("filename")?.to_owned();
    let video = media::probe(ctx, &service.recordings_dir().join(&recording))?;
    assert_eq!((video.width, video.height), size, "{recording}");
    let still = media::probe(ctx, &service.snapshots_dir().join(&snapshot))?;
    assert_eq!((still.width, still.height), size, "{snapshot}");
    let token = service.token(Role::Viewer);
    for (kind, name) in [("recordings", &recording), ("snapshots", &snapshot)] {
        let response = http::get(
            service.addr,
            &format!("/files/{kind}/{name}"),
            &[("Authorization", &format!("Bearer {token}"))],
        )?;
        assert_eq!(response.status, 200, "/files/{kind}/{name}");
    }
    Ok((recording, snapshot))
}

/// The camera `id` in `get_camera_list`.
async fn listed(client: &mut WsClient, id: &str) -> anyhow::Result<Value> {
    let list = client.call_ok("get_camera_list", json!({})).await?;
    list["cameras"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["device"] == id))
        .cloned()
        .with_context(|| format!("{id} not listed: {list}"))
}

/// Direct backend, `testsrc`: listed CONNECTED → record → snapshot → files; the service is
/// stopped (SIGTERM, exit 0) and started again on the same data directory: the camera is back
/// CONNECTED under the same id, the files are still listed, and a token minted before the
/// restart is still accepted (the secret persisted). The removal step does not apply: a test
/// pattern cannot be unplugged (see the MediaMTX and v4l2loopback variants).
#[realtest::test(tags = ["needs-ffmpeg"], timeout = "90s")]
async fn real_lifecycle_testsrc_direct(ctx: &mut Ctx) -> anyhow::Result<()> {
    let size = (u64::from(TESTSRC.0), u64::from(TESTSRC.1));
    let data_dir = ctx.temp_dir()?.join("data");
    let options = ServiceOptions {
        data_dir: Some(data_dir.clone()),
        ..direct("testsrc")
    };
    let mut check = PostTestCheck::new();
    {
        let mut service = ServiceUnderTest::start_with(ctx, options.clone())?;
        check.track_processes_of(service.pid())?;
        check.expect_removed(service.root());
        let token = service.token(Role::Operator);
        let mut client = WsClient::connect_authenticated(&service.ws_url(), &token).await?;
        let camera = listed(&mut client, "camera0").await?;
        assert_eq!(camera["status"], "CONNECTED");
        let (recording, snapshot) =
            record_and_snapshot(ctx, &service, &mut client, "camera0", size).await?;
        let status = tokio::task::block_in_place(|| service.terminate())?;
        assert_eq!(status.code(), Some(0), "{status:?}");
        assert_eq!(client.wait_close(NOTIFY).await?, Some(1001));

        let service = ServiceUnderTest::start_with(ctx, options)?;
        check.expect_removed(service.root());
        let mut client = WsClient::connect_authenticated(&service.ws_url(), &token).await?;
        let camera = listed(&mut client, "camera0").await?;
        assert_eq!(camera["status"], "CONNECTED");
        let recordings = client.call_ok("list_recordings", json!({})).await?;
        assert_eq!(recordings["total"], 1);
        assert_eq!(recordings["files"][0]["filename"], recording.as_str());
        let snapshots = client.call_ok("list_snapshots", json!({})).await?;
        assert_eq!(snapshots["total"], 1);
        assert_eq!(snapshots["files"][0]["filename"], snapshot.as_str());
        record_and_snapshot(ctx, &service, &mut client, "camera0", size).await?;
    }
    check.verify(ctx)
}

/// MediaMTX, an RTSP camera simulated into a real MediaMTX: discovered CONNECTED with its
/// stream URL (checked at start), the stream plays, record → snapshot → files; the publisher
/// stops (camera removed) → exactly one `camera_status_update` DISCONNECTED (the service polls
/// the camera's MediaMTX path) and the list says so; the publisher comes back → exactly one
/// CONNECTED with the same id, the stream plays and snapshots work again.
#[realtest::test(tags = ["needs-mediamtx", "needs-ffmpeg"], timeout = "120s")]
async fn real_lifecycle_rtsp_camera_removed_and_back_mediamtx(ctx: &mut Ctx) -> anyhow::Result<()> {
    let pattern = Pattern::new(640, 480, 15);
    let mut check = PostTestCheck::new();
    {
        let upstream = RealMediaMTXServer::start(ctx)?;
        check.track_processes_of(upstream.pid())?;
        check.expect_removed(upstream.dir().to_path_buf());
        let url = upstream.rtsp_url("sim0");
        let mut sim = TestVideoStreamSimulator::publish_rtsp(ctx, &url, pattern)?;
        sim.wait_published(upstream.api_addr(), "sim0", STREAM_READY)?;
        let (options, ports) = managed(ctx, &url)?;
        let options = options.env("CAMERA_SERVICE_CAMERAS_RTSP_CHECK_INTERVAL", "250ms");
        let service = ServiceUnderTest::start_with(ctx, options)?;
        check.expect_removed(service.root());
        let mut client = service.client(Role::Operator).await?;
        let camera = listed(&mut client, "camera0").await?;
        assert_eq!(camera["status"], "CONNECTED");
        assert_eq!(camera["streams"], ports.streams("camera0"));
        wait_streams_ready(&mut client, &["camera0"]).await?;
        assert_eq!(
            media::probe_stream_frame(ctx, &ports.rtsp_url("camera0"), 40)?,
            (640, 480)
        );
        record_and_snapshot(ctx, &service, &mut client, "camera0", (640, 480)).await?;
        ensure!(
            client.queued_notifications().is_empty(),
            "nothing but the recording's notifications so far: {:?}",
            client.queued_notifications()
        );

        sim.stop()?;
        let update = client
            .next_notification("camera_status_update", NOTIFY)
            .await
            .context("no camera_status_update after the RTSP publisher stopped")?;
        assert_eq!(
            (update["device"].as_str(), update["status"].as_str()),
            (Some("camera0"), Some("DISCONNECTED")),
            "{update}"
        );
        assert_eq!(update["streams"], ports.streams("camera0"), "{update}");
        assert_eq!(
            listed(&mut client, "camera0").await?["status"],
            "DISCONNECTED"
        );

        let mut sim = TestVideoStreamSimulator::publish_rtsp(ctx, &url, pattern)?;
        sim.wait_published(upstream.api_addr(), "sim0", STREAM_READY)?;
        // MediaMTX retries a lost pull source every few seconds; the next update is CONNECTED.
        let update = client
            .next_notification("camera_status_update", NOTIFY)
            .await?;
        assert_eq!(
            (update["device"].as_str(), update["status"].as_str()),
            (Some("camera0"), Some("CONNECTED")),
            "{update}"
        );
        assert_eq!(listed(&mut client, "camera0").await?["status"], "CONNECTED");
        wait_streams_ready(&mut client, &["camera0"]).await?;
        assert_eq!(
            media::probe_stream_frame(ctx, &ports.rtsp_url("camera0"), 40)?,
            (640, 480)
        );
        client
            .call_ok("take_snapshot", json!({ "device": "camera0" }))
            .await?;
        ensure!(
            client.queued_notifications().is_empty(),
            "one update per change: {:?}",
            client.queued_notifications()
        );
        sim.stop()?;
    }
    check.verify(ctx)
}

/// A v4l2loopback node created for the test (`v4l2loopback-ctl add`), deleted on drop.
struct DynamicLoopback {
    device: PathBuf,
}

impl DynamicLoopback {
    fn ctl(ctx: &Ctx, args: &[&str]) -> anyhow::Result<std::process::Output> {
        ctx.output(
            Command::new("v4l2loopback-ctl").args(args),
            Duration::from_secs(20),
        )
        .map_err(|e| {
            anyhow::Error::new(Skip::new(
                "needs-v4l2loopback",
                format!("v4l2loopback-ctl is not usable: {e}"),
            ))
        })
    }

    /// Adds `/dev/videoN` named `name` with `exclusive_caps=1`.
    fn add(ctx: &Ctx, number: u32, name: &str) -> anyhow::Result<Self> {
        let device = PathBuf::from(format!("/dev/video{number}"));
        let out = Self::ctl(
            ctx,
            &["add", "-n", name, "-x", "1", &device.display().to_string()],
        )?;
        if !out.status.success() {
            return Err(Skip::new(
                "needs-v4l2loopback",
                format!(
                    "v4l2loopback-ctl add failed (no /dev/v4l2loopback control device?): {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            )
            .into());
        }
        ensure!(device.exists(), "{} not created", device.display());
        Ok(Self { device })
    }

    /// Deletes the node (the camera is unplugged). The service's hot-plug scan may hold it
    /// open for a moment (EBUSY), so this retries for a few seconds.
    fn delete(self, ctx: &Ctx) -> anyhow::Result<()> {
        let device = self.device.display().to_string();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let out = Self::ctl(ctx, &["delete", &device])?;
            if out.status.success() {
                break;
            }
            ensure!(
                std::time::Instant::now() < deadline,
                "v4l2loopback-ctl delete {device} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        std::mem::forget(self);
        Ok(())
    }
}

impl Drop for DynamicLoopback {
    fn drop(&mut self) {
        let _ = Command::new("v4l2loopback-ctl")
            .arg("delete")
            .arg(&self.device)
            .status();
    }
}

/// v4l2loopback: a node is added while the service runs and a writer streams into it → the
/// hot-plug scan reports the camera CONNECTED; record → snapshot → files; the writer stops and
/// the node is deleted (unplugged) → DISCONNECTED, listed so; the node is re-added with the
/// same number and name and streamed into → CONNECTED again under the same id.
#[realtest::test(
    tags = ["needs-v4l2loopback", "needs-root", "destructive", "needs-ffmpeg"],
    timeout = "180s"
)]
async fn real_lifecycle_v4l2loopback_unplug_and_replug(ctx: &mut Ctx) -> anyhow::Result<()> {
    const NAME: &str = "realtest-lifecycle";
    let pattern = Pattern::new(640, 480, 15);
    let number = (40..64)
        .find(|n| !PathBuf::from(format!("/dev/video{n}")).exists())
        .context("no free /dev/video40..63")?;
    let mut check = PostTestCheck::new();
    {
        let service = ServiceUnderTest::start_with(
            ctx,
            direct("testsrc")
                .env("CAMERA_SERVICE_CAMERAS_DISCOVER_V4L2", "true")
                .env("CAMERA_SERVICE_CAMERAS_DISCOVERY_INTERVAL", "200ms"),
        )?;
        check.track_processes_of(service.pid())?;
        check.expect_removed(service.root());
        let mut client = service.client(Role::Operator).await?;

        let node = DynamicLoopback::add(ctx, number, NAME)?;
        check.watch_device(&node.device);
        let mut sim = TestVideoStreamSimulator::write_loopback(ctx, &node.device, pattern)?;
        sim.wait_loopback_consumable(ctx, Duration::from_secs(30))?;
        let update = client
            .wait_notification(
                "camera_status_update",
                |p| p["name"] == NAME && p["status"] == "CONNECTED",
                NOTIFY,
            )
            .await?;
        let id = update["device"].as_str().context("device")?.to_owned();
        assert_eq!(update["resolution"], pattern.size(), "{update}");
        assert_eq!(listed(&mut client, &id).await?["status"], "CONNECTED");
        record_and_snapshot(ctx, &service, &mut client, &id, (640, 480)).await?;

        sim.stop()?;
        node.delete(ctx)?;
        let update = client
            .wait_notification(
                "camera_status_update",
                |p| p["device"] == id.as_str(),
                NOTIFY,
            )
            .await?;
        assert_eq!(update["status"], "DISCONNECTED", "{update}");
        assert_eq!(listed(&mut client, &id).await?["status"], "DISCONNECTED");
        let error = client
            .call_err("take_snapshot", json!({ "device": id }))
            .await?;
        assert_eq!(error.code, -32006, "{error:?}");

        let node = DynamicLoopback::add(ctx, number, NAME)?;
        let mut sim = TestVideoStreamSimulator::write_loopback(ctx, &node.device, pattern)?;
        sim.wait_loopback_consumable(ctx, Duration::from_secs(30))?;
        let update = client
            .wait_notification(
                "camera_status_update",
                |p| p["device"] == id.as_str() && p["status"] == "CONNECTED",
                NOTIFY,
            )
            .await?;
        assert_eq!(update["name"], NAME);
        assert_eq!(listed(&mut client, &id).await?["status"], "CONNECTED");
        client
            .call_ok("take_snapshot", json!({ "device": id }))
            .await?;
        sim.stop()?;
        drop(client);
        drop(service);
        node.delete(ctx)?;
    }
    check.verify(ctx)
}
