//! Scenario 3 — recording and snapshot: `start_recording {duration: 3}` gives STARTED then
//! STOPPED, the file's duration is 3 ± 1 s at the camera's size; a snapshot is a JPEG of the
//! camera's size; list/info/download/delete round trip with exact codes.
//! A recording or snapshot that fails its check is attached to the JUnit report (`Ctx::attach`).

use std::time::Duration;

use anyhow::{ensure, Context};
use camera_service::auth::Role;
use realtest::Ctx;
use serde_json::json;

use super::{direct, ensure_within, expect_started_then, managed, wait_streams_ready, NOTIFY};
use super::{STREAM_READY, TESTSRC};
use crate::support::hygiene::PostTestCheck;
use crate::support::mediamtx::RealMediaMTXServer;
use crate::support::service::ServiceUnderTest;
use crate::support::simulator::{Pattern, TestVideoStreamSimulator};
use crate::support::ws_client::WsClient;
use crate::support::{http, media, procfs};

/// Recording length asked for.
const SECONDS: u64 = 3;

/// The scenario on `camera` of size `size`; `exact_frames` when the source's frame count is
/// deterministic (FFmpeg's `-t` on a synthetic source).
async fn record_and_snapshot(
    ctx: &Ctx,
    service: &ServiceUnderTest,
    client: &mut WsClient,
    camera: &str,
    size: (u64, u64),
    exact_frames: Option<u64>,
) -> anyhow::Result<()> {
    let token = service.token(Role::Operator);
    let started = client
        .call_ok(
            "start_recording",
            json!({ "device": camera, "duration": SECONDS }),
        )
        .await?;
    assert_eq!(started["status"], "STARTED");
    assert_eq!(started["duration"], SECONDS);
    assert_eq!(started["format"], "mp4");
    let filename = started["filename"].as_str().context("filename")?.to_owned();
    ensure!(
        filename.starts_with(&format!("{camera}_")) && filename.ends_with(".mp4"),
        "{filename}"
    );
    expect_started_then(client, camera, &filename, "STOPPED").await?;

    let path = service.recordings_dir().join(&filename);
    let info = media::expect_video(ctx, &path, "h264", size)?;
    let duration = info
        .duration
        .context("ffprobe reports no duration")
        .and_then(|d| ensure_within("recording duration (s)", d, SECONDS as f64, 1.0));
    media::attach_if_failed(ctx, &path, duration)?;
    if let Some(frames) = exact_frames {
        assert_eq!(info.frames, Some(frames), "{info:?}");
    }
    let details = client
        .call_ok("get_recording_info", json!({ "filename": filename }))
        .await?;
    assert_eq!(details["filename"], filename.as_str());
    assert_eq!(
        details["file_size"].as_u64(),
        Some(std::fs::metadata(&path)?.len())
    );
    assert_eq!(details["recording"], false);
    assert_eq!(
        details["download_url"],
        format!("/files/recordings/{filename}")
    );
    ensure_within(
        "get_recording_info duration (s)",
        details["duration"].as_f64().context("duration")?,
        SECONDS as f64,
        1.0,
    )?;
    let listed = client.call_ok("list_recordings", json!({})).await?;
    assert_eq!(listed["total"], 1);
    assert_eq!(listed["files"][0]["filename"], filename.as_str());
    let download = http::get(
        service.addr,
        &format!("/files/recordings/{filename}"),
        &[("Authorization", &format!("Bearer {token}"))],
    )?;
    assert_eq!(download.status, 200);
    assert!(
        download.body == std::fs::read(&path)?,
        "download differs from the file"
    );

    let snap = client
        .call_ok(
            "take_snapshot",
            json!({ "device": camera, "filename": "scenario3" }),
        )
        .await?;
    assert_eq!(snap["status"], "completed");
    assert_eq!(snap["filename"], "scenario3.jpg");
    let snap_path = service.snapshots_dir().join("scenario3.jpg");
    assert_eq!(
        snap["file_size"].as_u64(),
        Some(std::fs::metadata(&snap_path)?.len())
    );
    media::expect_video(ctx, &snap_path, "mjpeg", size)?;
    let details = client
        .call_ok("get_snapshot_info", json!({ "filename": "scenario3.jpg" }))
        .await?;
    assert_eq!(details["resolution"], format!("{}x{}", size.0, size.1));
    let listed = client.call_ok("list_snapshots", json!({})).await?;
    assert_eq!(listed["total"], 1);

    let deleted = client
        .call_ok("delete_recording", json!({ "filename": filename }))
        .await?;
    assert_eq!(deleted["deleted"], true);
    assert!(!path.exists());
    let gone = client
        .call_err("get_recording_info", json!({ "filename": filename }))
        .await?;
    assert_eq!(gone.code, -32007);
    client
        .call_ok("delete_snapshot", json!({ "filename": "scenario3.jpg" }))
        .await?;
    let again = client
        .call_err("delete_snapshot", json!({ "filename": "scenario3.jpg" }))
        .await?;
    assert_eq!(again.code, -32007);
    assert_eq!(
        client.call_ok("list_recordings", json!({})).await?["total"],
        0
    );
    assert_eq!(
        client.call_ok("list_snapshots", json!({})).await?["total"],
        0
    );
    Ok(())
}

/// Direct backend, `testsrc` camera: the whole round trip; FFmpeg's `-t 3` at 10 fps gives
/// exactly 30 frames.
#[realtest::test(tags = ["needs-ffmpeg"], timeout = "90s")]
async fn real_media_recording_and_snapshot_direct(ctx: &mut Ctx) -> anyhow::Result<()> {
    let (w, h, fps) = TESTSRC;
    let mut check = PostTestCheck::new();
    {
        let service = ServiceUnderTest::start_with(ctx, direct("testsrc"))?;
        check.track_processes_of(service.pid())?;
        check.expect_removed(service.root());
        let mut client = service.client(Role::Operator).await?;
        record_and_snapshot(
            ctx,
            &service,
            &mut client,
            "camera0",
            (u64::from(w), u64::from(h)),
            Some(SECONDS * u64::from(fps)),
        )
        .await?;
        crate::support::hygiene::check_empty(&service.tmp_dir)?;
    }
    check.verify(ctx)
}

/// MediaMTX: an RTSP camera simulated into a real MediaMTX, recorded and snapshotted through
/// the service's managed MediaMTX.
#[realtest::test(tags = ["needs-mediamtx", "needs-ffmpeg"], timeout = "120s")]
async fn real_media_recording_and_snapshot_mediamtx(ctx: &mut Ctx) -> anyhow::Result<()> {
    let pattern = Pattern::new(640, 480, 15);
    let mut check = PostTestCheck::new();
    {
        let upstream = RealMediaMTXServer::start(ctx)?;
        check.track_processes_of(upstream.pid())?;
        check.expect_removed(upstream.dir().to_path_buf());
        let mut sim =
            TestVideoStreamSimulator::publish_rtsp(ctx, &upstream.rtsp_url("sim0"), pattern)?;
        sim.wait_published(upstream.api_addr(), "sim0", STREAM_READY)?;
        let (options, _ports) = managed(ctx, &upstream.rtsp_url("sim0"))?;
        let service = ServiceUnderTest::start_with(ctx, options)?;
        check.expect_removed(service.root());
        let mut client = service.client(Role::Operator).await?;
        wait_streams_ready(&mut client, &["camera0"]).await?;
        record_and_snapshot(ctx, &service, &mut client, "camera0", (640, 480), None).await?;
        sim.stop()?;
    }
    check.verify(ctx)
}

/// v4l2loopback: a configured `v4l2:` camera fed by the simulator. The round trip, then a
/// snapshot *during* a recording (the device has one reader: it comes from the recording
/// pipeline) of the right size; afterwards neither the service nor the test process holds the
/// device open.
#[realtest::test(tags = ["needs-v4l2loopback", "needs-ffmpeg"], timeout = "120s")]
async fn real_media_recording_and_snapshot_v4l2loopback(ctx: &mut Ctx) -> anyhow::Result<()> {
    let pattern = Pattern::new(640, 480, 15);
    let mut check = PostTestCheck::new();
    {
        let lease = ctx.lease_loopback()?;
        check.watch_device(lease.path());
        let mut sim = TestVideoStreamSimulator::write_loopback(ctx, lease.path(), pattern)?;
        sim.wait_loopback_consumable(ctx, Duration::from_secs(30))?;
        let source = format!("v4l2:{}", lease.path().display());
        let service = ServiceUnderTest::start_with(ctx, direct(&source))?;
        check.track_processes_of(service.pid())?;
        check.expect_removed(service.root());
        let mut client = service.client(Role::Operator).await?;
        record_and_snapshot(ctx, &service, &mut client, "camera0", (640, 480), None).await?;

        let started = client
            .call_ok("start_recording", json!({ "device": "camera0" }))
            .await?;
        let filename = started["filename"].as_str().context("filename")?.to_owned();
        let note = client
            .next_notification("recording_status_update", NOTIFY)
            .await?;
        assert_eq!(note["status"], "STARTED");
        // One reader of the device (the recording's FFmpeg) before, during and after the
        // snapshot; the simulator's writer is not the service's.
        let readers = procfs::DeviceHolderSampler::start(lease.path(), service.pid());
        let snap = client
            .call_ok("take_snapshot", json!({ "device": "camera0" }))
            .await?;
        let still = media::probe(
            ctx,
            &service
                .snapshots_dir()
                .join(snap["filename"].as_str().unwrap_or_default()),
        )?;
        assert_eq!((still.width, still.height), (640, 480));
        readers.finish().ensure_one_ffmpeg_reader()?;
        let stopped = client
            .call_ok("stop_recording", json!({ "device": "camera0" }))
            .await?;
        assert_eq!(stopped["status"], "STOPPED");
        let note = client
            .next_notification("recording_status_update", NOTIFY)
            .await?;
        assert_eq!(
            (note["status"].as_str(), note["filename"].as_str()),
            (Some("STOPPED"), Some(filename.as_str()))
        );
        let held: Vec<_> = procfs::descendants_of(service.pid())
            .into_iter()
            .chain([service.pid() as i32])
            .flat_map(|pid| procfs::video_fds(pid as u32))
            .collect();
        assert!(held.is_empty(), "the service still holds {held:?}");
        sim.stop()?;
    }
    check.verify(ctx)
}
