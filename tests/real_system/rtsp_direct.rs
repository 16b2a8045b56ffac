//! RTSP cameras on the direct FFmpeg backend (no MediaMTX) against a real RTSP server
//! (GStreamer's gst-rtsp-server, `RealRtspServer`): the service lists the camera CONNECTED
//! (ffprobe at start), takes snapshots and recordings from the RTSP URL, and its presence check
//! (ffprobe every `cameras.rtsp_check_interval`) follows the server going away and coming back.

use std::time::Duration;

use anyhow::{ensure, Context};
use camera_service::auth::Role;
use realtest::Ctx;
use serde_json::{json, Value};

use crate::support::hygiene::{check_empty, PostTestCheck};
use crate::support::media;
use crate::support::rtsp_server::RealRtspServer;
use crate::support::service::{ServiceOptions, ServiceUnderTest};
use crate::support::ws_client::WsClient;

/// Longest wait for a notification.
const NOTIFY: Duration = Duration::from_secs(30);
/// Recording length asked for.
const SECONDS: u64 = 3;

/// The direct backend (the fixture's default, `mediamtx.mode = "off"`) with one RTSP camera.
fn direct_rtsp(url: &str) -> ServiceOptions {
    ServiceOptions::default()
        .env("CAMERA_SERVICE_CAMERAS_SOURCES", url)
        .env("CAMERA_SERVICE_CAMERAS_RTSP_CHECK_INTERVAL", "1s")
}

/// The only camera listed; it must be `camera0`.
async fn only_camera(client: &mut WsClient) -> anyhow::Result<Value> {
    let list = client.call_ok("get_camera_list", json!({})).await?;
    let cameras = list["cameras"].as_array().context("no cameras array")?;
    ensure!(cameras.len() == 1, "one camera expected: {list}");
    assert_eq!(cameras[0]["device"], "camera0", "{list}");
    Ok(cameras[0].clone())
}

/// The next `camera_status_update` must be `status` for `camera0`.
async fn expect_update(client: &mut WsClient, status: &str) -> anyhow::Result<()> {
    let update = client
        .next_notification("camera_status_update", NOTIFY)
        .await
        .with_context(|| format!("no camera_status_update {status}"))?;
    assert_eq!(
        (update["device"].as_str(), update["status"].as_str()),
        (Some("camera0"), Some(status)),
        "{update}"
    );
    Ok(())
}

/// Listed CONNECTED; a snapshot is a JPEG of the server's size; a 3 s recording gives STARTED
/// then STOPPED and an H.264 file of that size lasting 3 ± 1 s.
#[realtest::test(tags = ["needs-ffmpeg", "needs-gst-rtsp-server"], timeout = "90s")]
async fn real_rtsp_direct_snapshot_and_recording(ctx: &mut Ctx) -> anyhow::Result<()> {
    let (w, h, fps) = (352, 288, 10);
    let size = (u64::from(w), u64::from(h));
    let mut check = PostTestCheck::new();
    {
        let server = RealRtspServer::start(ctx, w, h, fps)?;
        check.track_processes_of(server.pid())?;
        let service = ServiceUnderTest::start_with(ctx, direct_rtsp(&server.url()))?;
        check.expect_removed(service.root());
        let mut client = service.client(Role::Operator).await?;
        assert_eq!(only_camera(&mut client).await?["status"], "CONNECTED");

        let snap = client
            .call_ok(
                "take_snapshot",
                json!({ "device": "camera0", "filename": "rtsp" }),
            )
            .await?;
        assert_eq!(snap["status"], "completed", "{snap}");
        assert_eq!(snap["filename"], "rtsp.jpg", "{snap}");
        let still = media::probe(ctx, &service.snapshots_dir().join("rtsp.jpg"))?;
        assert_eq!(
            (still.codec.as_str(), still.width, still.height),
            ("mjpeg", w.into(), h.into())
        );

        let started = client
            .call_ok(
                "start_recording",
                json!({ "device": "camera0", "duration": SECONDS }),
            )
            .await?;
        assert_eq!(started["status"], "STARTED", "{started}");
        let filename = started["filename"].as_str().context("filename")?.to_owned();
        let mut stopped = Value::Null;
        for expected in ["STARTED", "STOPPED"] {
            let update = client
                .next_notification("recording_status_update", NOTIFY)
                .await?;
            assert_eq!(
                (
                    update["status"].as_str(),
                    update["device"].as_str(),
                    update["filename"].as_str()
                ),
                (Some(expected), Some("camera0"), Some(filename.as_str())),
                "{update}"
            );
            stopped = update;
        }
        let info = media::probe(ctx, &service.recordings_dir().join(&filename))?;
        assert_eq!(
            (info.codec.as_str(), info.width, info.height),
            ("h264", size.0, size.1)
        );
        let duration = info.duration.context("ffprobe reports no duration")?;
        ensure!(
            (duration - SECONDS as f64).abs() <= 1.0,
            "recording lasts {duration} s, not {SECONDS} ± 1 s"
        );
        // The STOPPED notification reports the media in the file, not the wall-clock time since
        // the stream was opened (an RTSP input is analysed for seconds before the first write).
        let reported = stopped["duration"]
            .as_f64()
            .context("STOPPED has no duration")?;
        ensure!(
            (reported - duration).abs() < 0.01,
            "STOPPED says {reported} s, the file holds {duration} s"
        );
        assert_eq!(only_camera(&mut client).await?["status"], "CONNECTED");
        ensure!(
            client.queued_notifications().is_empty(),
            "no camera_status_update while the camera stayed CONNECTED: {:?}",
            client.queued_notifications()
        );
        check_empty(&service.tmp_dir)?;
    }
    check.verify(ctx)
}

/// The server stops → exactly one `camera_status_update` DISCONNECTED for camera0 and the list
/// says so; it starts again on the same port → exactly one CONNECTED for the same id, and a
/// snapshot from it works again.
#[realtest::test(tags = ["needs-ffmpeg", "needs-gst-rtsp-server"], timeout = "90s")]
async fn real_rtsp_direct_server_gone_and_back(ctx: &mut Ctx) -> anyhow::Result<()> {
    let (w, h, fps) = (320, 180, 10);
    let mut check = PostTestCheck::new();
    {
        let mut server = RealRtspServer::start(ctx, w, h, fps)?;
        check.track_processes_of(server.pid())?;
        let service = ServiceUnderTest::start_with(ctx, direct_rtsp(&server.url()))?;
        check.expect_removed(service.root());
        let mut client = service.client(Role::Operator).await?;
        assert_eq!(only_camera(&mut client).await?["status"], "CONNECTED");

        tokio::task::block_in_place(|| server.stop())?;
        expect_update(&mut client, "DISCONNECTED").await?;
        assert_eq!(only_camera(&mut client).await?["status"], "DISCONNECTED");

        tokio::task::block_in_place(|| server.restart(ctx))?;
        expect_update(&mut client, "CONNECTED").await?;
        assert_eq!(only_camera(&mut client).await?["status"], "CONNECTED");
        let snap = client
            .call_ok(
                "take_snapshot",
                json!({ "device": "camera0", "filename": "back" }),
            )
            .await?;
        assert_eq!(snap["status"], "completed", "{snap}");
        let still = media::probe(ctx, &service.snapshots_dir().join("back.jpg"))?;
        assert_eq!(
            (still.codec.as_str(), still.width, still.height),
            ("mjpeg", w.into(), h.into())
        );
        ensure!(
            client.queued_notifications().is_empty(),
            "one update per change: {:?}",
            client.queued_notifications()
        );
        check_empty(&service.tmp_dir)?;
    }
    check.verify(ctx)
}
