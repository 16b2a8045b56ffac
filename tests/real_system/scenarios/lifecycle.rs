//! Scenario 7 — end-to-end camera lifecycle: discover → stream → record → snapshot → files →
//! camera removed → DISCONNECTED → list updated → camera back → CONNECTED.
//!
//! What can be removed depends on the source. A `testsrc` camera cannot go away, so the direct
//! variant covers the lifecycle up to the files and then a service restart (files and secret
//! persist). An RTSP camera goes away when its publisher stops; that needs an RTSP server, i.e.
//! MediaMTX. A V4L2 camera goes away when its node disappears: the v4l2loopback nodes removed and
//! re-created (the virtual lab's module reload, root).

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

/// A snapshot or recording of an unplugged V4L2 camera is refused with −32005 naming the
/// camera (no FFmpeg is tried on a node that is gone, and the device path is not told).
async fn expect_unplugged_refusals(client: &mut WsClient, id: &str) -> anyhow::Result<()> {
    for method in ["take_snapshot", "start_recording"] {
        let error = client.call_err(method, json!({ "device": id })).await?;
        assert_eq!(error.code, -32005, "{method}: {error:?}");
        assert_eq!(
            error.message,
            format!("Camera `{id}` is DISCONNECTED: its device is unplugged"),
            "{method}"
        );
    }
    Ok(())
}

/// Direct backend, a configured `v4l2:` camera whose node does not exist: listed DISCONNECTED
/// from the start, and media requests for it are refused naming it (the v4l2loopback variant
/// unplugs a real node).
#[realtest::test(tags = ["needs-ffmpeg"], timeout = "60s")]
async fn real_lifecycle_absent_v4l2_camera_direct(ctx: &mut Ctx) -> anyhow::Result<()> {
    let mut check = PostTestCheck::new();
    {
        let service = ServiceUnderTest::start_with(ctx, direct("testsrc,v4l2:/dev/video-absent"))?;
        check.track_processes_of(service.pid())?;
        check.expect_removed(service.root());
        let mut client = service.client(Role::Operator).await?;
        assert_eq!(
            listed(&mut client, "camera1").await?["status"],
            "DISCONNECTED"
        );
        expect_unplugged_refusals(&mut client, "camera1").await?;
        let snapshots = client.call_ok("list_snapshots", json!({})).await?;
        assert_eq!(snapshots["total"], 0, "{snapshots}");
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

/// The virtual lab's v4l2loopback module: `$VIRTUAL_LAB_LOOPBACK unload|load` removes and
/// re-creates *all* loopback nodes together (Debian 12's v4l2loopback 0.12.7 has no control
/// device, so no `v4l2loopback-ctl add/delete` of one node). Loaded again on drop if a test
/// stopped half-way.
struct LabLoopback {
    script: PathBuf,
    nodes: Vec<PathBuf>,
    unloaded: bool,
}

impl LabLoopback {
    /// From `VIRTUAL_LAB_LOOPBACK`; without it (a bench, a workstation) the test is skipped.
    fn from_env(nodes: Vec<PathBuf>) -> anyhow::Result<Self> {
        match std::env::var_os("VIRTUAL_LAB_LOOPBACK") {
            Some(script) if !script.is_empty() => Ok(Self {
                script: PathBuf::from(script),
                nodes,
                unloaded: false,
            }),
            _ => Err(Skip::new(
                "needs-v4l2loopback",
                "VIRTUAL_LAB_LOOPBACK is unset: unplugging a node needs the virtual lab's module \
                 reload (v4l2loopback 0.12.7 has no v4l2loopback-ctl add/delete); run \
                 hardware/virtual-lab/run --include-tag destructive",
            )
            .into()),
        }
    }

    /// Runs `unload` or `load`, retrying for a while: a discovery scan of a service may hold a
    /// node open for a moment, and the module cannot go while a node is open.
    fn run(&self, ctx: &Ctx, action: &str) -> anyhow::Result<()> {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let out = ctx.output(
                Command::new(&self.script).arg(action),
                Duration::from_secs(30),
            )?;
            if out.status.success() {
                return Ok(());
            }
            ensure!(
                std::time::Instant::now() < deadline,
                "{} {action} kept failing: {}",
                self.script.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Removes the nodes (the cameras are unplugged).
    fn unload(&mut self, ctx: &Ctx) -> anyhow::Result<()> {
        self.run(ctx, "unload")?;
        self.unloaded = true;
        for node in &self.nodes {
            ensure!(
                !node.exists(),
                "{} still exists after unload",
                node.display()
            );
        }
        Ok(())
    }

    /// Creates the nodes again (the cameras are plugged back in).
    fn load(&mut self, ctx: &Ctx) -> anyhow::Result<()> {
        self.run(ctx, "load")?;
        self.unloaded = false;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !self.nodes.iter().all(|n| n.exists()) {
            ensure!(
                std::time::Instant::now() < deadline,
                "{:?} not all back after load",
                self.nodes
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }
}

impl Drop for LabLoopback {
    fn drop(&mut self) {
        if self.unloaded {
            let _ = Command::new(&self.script).arg("load").status();
        }
    }
}

/// v4l2loopback hot-plug (in the virtual lab, where the module can be reloaded): both loopback
/// nodes leased (the module takes all of them); a writer streams into one while the service runs
/// → the hot-plug scan reports the camera CONNECTED under its card name; record → snapshot →
/// files; the writer stops and the nodes are removed (module unloaded) → DISCONNECTED, listed
/// so, a snapshot is refused; the nodes come back (module loaded) and are streamed into →
/// CONNECTED again under the **same** camera id, and a snapshot works.
#[realtest::test(
    tags = ["needs-v4l2loopback", "needs-root", "destructive", "needs-ffmpeg"],
    timeout = "180s"
)]
async fn real_lifecycle_v4l2loopback_unplug_and_replug(ctx: &mut Ctx) -> anyhow::Result<()> {
    let pattern = Pattern::new(320, 240, 10);
    let size = (u64::from(pattern.width), u64::from(pattern.height));
    let mut check = PostTestCheck::new();
    {
        let lease = ctx.lease_loopback()?;
        let other = ctx.lease_loopback()?;
        let device = lease.path().to_owned();
        let name = lease.node().card.clone();
        let mut modules = LabLoopback::from_env(vec![device.clone(), other.path().to_owned()])?;
        check.watch_device(&device);
        check.watch_device(other.path());
        let service = ServiceUnderTest::start_with(
            ctx,
            direct("testsrc")
                .env("CAMERA_SERVICE_CAMERAS_DISCOVER_V4L2", "true")
                .env("CAMERA_SERVICE_CAMERAS_DISCOVERY_INTERVAL", "200ms"),
        )?;
        check.track_processes_of(service.pid())?;
        check.expect_removed(service.root());
        let mut client = service.client(Role::Operator).await?;

        let mut sim = TestVideoStreamSimulator::write_loopback(ctx, &device, pattern)?;
        sim.wait_loopback_consumable(ctx, Duration::from_secs(45))?;
        let update = client
            .wait_notification(
                "camera_status_update",
                |p| p["name"] == name.as_str() && p["status"] == "CONNECTED",
                NOTIFY,
            )
            .await?;
        let id = update["device"].as_str().context("device")?.to_owned();
        assert_eq!(update["resolution"], pattern.size(), "{update}");
        assert_eq!(listed(&mut client, &id).await?["status"], "CONNECTED");
        record_and_snapshot(ctx, &service, &mut client, &id, size).await?;

        sim.stop()?;
        modules.unload(ctx)?;
        let update = client
            .wait_notification(
                "camera_status_update",
                |p| p["device"] == id.as_str(),
                NOTIFY,
            )
            .await?;
        assert_eq!(update["status"], "DISCONNECTED", "{update}");
        assert_eq!(listed(&mut client, &id).await?["status"], "DISCONNECTED");
        expect_unplugged_refusals(&mut client, &id).await?;

        modules.load(ctx)?;
        let mut sim = TestVideoStreamSimulator::write_loopback(ctx, &device, pattern)?;
        sim.wait_loopback_consumable(ctx, Duration::from_secs(45))?;
        let update = client
            .wait_notification(
                "camera_status_update",
                |p| p["device"] == id.as_str(),
                NOTIFY,
            )
            .await?;
        assert_eq!(update["status"], "CONNECTED", "{update}");
        assert_eq!(update["name"], name.as_str(), "{update}");
        assert_eq!(listed(&mut client, &id).await?["status"], "CONNECTED");
        let snap = client
            .call_ok("take_snapshot", json!({ "device": id }))
            .await?;
        let still = media::probe(
            ctx,
            &service
                .snapshots_dir()
                .join(snap["filename"].as_str().context("filename")?),
        )?;
        assert_eq!((still.width, still.height), size);
        sim.stop()?;
        drop(client);
        drop(service);
    }
    check.verify(ctx)
}
