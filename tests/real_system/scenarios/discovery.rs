//! Scenario 2 — camera discovery and stream creation: simulated cameras appear in
//! `get_camera_list` with the right status, size and stream URLs; a stream URL really plays.

use std::time::Duration;

use anyhow::Context;
use camera_service::auth::Role;
use realtest::Ctx;
use serde_json::{json, Value};

use super::{direct, managed, wait_streams_ready, STREAM_READY, TESTSRC};
use crate::support::hygiene::PostTestCheck;
use crate::support::media;
use crate::support::mediamtx::RealMediaMTXServer;
use crate::support::service::ServiceUnderTest;
use crate::support::simulator::{Pattern, TestVideoStreamSimulator};

/// Direct backend, two `testsrc` cameras: both listed CONNECTED with the configured size and
/// rate and no stream URLs (no MediaMTX); capabilities as configured; `get_streams` is empty; no
/// spurious `camera_status_update` while the cameras are used; each delivers an image of its
/// size.
#[realtest::test(tags = ["needs-ffmpeg"], timeout = "60s")]
async fn real_discovery_direct_testsrc_cameras(ctx: &mut Ctx) -> anyhow::Result<()> {
    let (w, h, fps) = TESTSRC;
    let mut check = PostTestCheck::new();
    {
        let service = ServiceUnderTest::start_with(ctx, direct("testsrc,testsrc"))?;
        check.track_processes_of(service.pid())?;
        check.expect_removed(service.root());
        let mut client = service.client(Role::Operator).await?;
        let list = client.call_ok("get_camera_list", json!({})).await?;
        assert_eq!(list["total"], 2);
        assert_eq!(list["connected"], 2);
        let cameras = list["cameras"].as_array().context("cameras")?;
        assert_eq!(cameras.len(), 2, "{list}");
        for (n, camera) in cameras.iter().enumerate() {
            let id = format!("camera{n}");
            assert_eq!(camera["device"], id.as_str(), "{camera}");
            assert_eq!(camera["status"], "CONNECTED", "{camera}");
            assert_eq!(camera["resolution"], format!("{w}x{h}"), "{camera}");
            assert_eq!(camera["fps"], fps, "{camera}");
            assert_eq!(
                camera["streams"],
                json!({}),
                "direct backend: no stream URLs"
            );
            let caps = client
                .call_ok("get_camera_capabilities", json!({ "device": id }))
                .await?;
            assert_eq!(caps["resolutions"], json!([format!("{w}x{h}")]), "{caps}");
            assert_eq!(caps["fps"], json!([fps]), "{caps}");
            let snap = client
                .call_ok("take_snapshot", json!({ "device": id }))
                .await?;
            let file = service
                .snapshots_dir()
                .join(snap["filename"].as_str().unwrap_or_default());
            let info = media::probe(ctx, &file)?;
            assert_eq!((info.width, info.height), (u64::from(w), u64::from(h)));
        }
        assert_eq!(client.call_ok("get_streams", json!({})).await?, json!([]));
        // Two round trips after the last snapshot: every earlier broadcast has been delivered.
        client.call_ok("ping", json!({})).await?;
        client.call_ok("ping", json!({})).await?;
        assert!(
            client.queued_notifications().is_empty(),
            "no status changed, so no camera_status_update: {:?}",
            client.queued_notifications()
        );
    }
    check.verify(ctx)
}

/// MediaMTX: two RTSP cameras simulated by FFmpeg publishing into a real MediaMTX (a live
/// pattern, and a rendered file in a loop), plus a `testsrc` camera, all through the service's
/// managed MediaMTX: listed CONNECTED with exact stream URLs, every path gets a stream, and each
/// stream URL plays a frame of the camera's size.
#[realtest::test(tags = ["needs-mediamtx", "needs-ffmpeg"], timeout = "120s")]
async fn real_discovery_mediamtx_rtsp_and_testsrc_cameras(ctx: &mut Ctx) -> anyhow::Result<()> {
    let mut check = PostTestCheck::new();
    {
        let upstream = RealMediaMTXServer::start(ctx)?;
        check.track_processes_of(upstream.pid())?;
        check.expect_removed(upstream.dir().to_path_buf());
        let patterns = [Pattern::new(640, 480, 15), Pattern::new(352, 288, 10)];
        // sim0: a live lavfi pattern; sim1: a rendered file published in a loop (as the
        // original suite did).
        let clip = ctx.temp_dir()?.join("sim1.mp4");
        let rendered = TestVideoStreamSimulator::render_file(ctx, &clip, patterns[1], 4)?;
        assert_eq!((rendered.width, rendered.height), (352, 288));
        let mut simulators = vec![
            TestVideoStreamSimulator::publish_rtsp(ctx, &upstream.rtsp_url("sim0"), patterns[0])?,
            TestVideoStreamSimulator::publish_file_rtsp(
                ctx,
                &clip,
                &upstream.rtsp_url("sim1"),
                patterns[1],
            )?,
        ];
        for (n, sim) in simulators.iter_mut().enumerate() {
            sim.wait_published(upstream.api_addr(), &format!("sim{n}"), STREAM_READY)?;
        }
        let sources = format!(
            "{},{},testsrc",
            upstream.rtsp_url("sim0"),
            upstream.rtsp_url("sim1")
        );
        let (options, ports) = managed(ctx, &sources)?;
        let service = ServiceUnderTest::start_with(ctx, options)?;
        check.expect_removed(service.root());
        let mut client = service.client(Role::Viewer).await?;
        let list = client.call_ok("get_camera_list", json!({})).await?;
        assert_eq!(list["total"], 3);
        assert_eq!(list["connected"], 3);
        let ids = ["camera0", "camera1", "camera2"];
        for (camera, id) in list["cameras"]
            .as_array()
            .context("cameras")?
            .iter()
            .zip(ids)
        {
            assert_eq!(camera["device"], id);
            assert_eq!(camera["status"], "CONNECTED", "{camera}");
            assert_eq!(camera["streams"], ports.streams(id), "{camera}");
        }
        wait_streams_ready(&mut client, &ids).await?;
        let expected = [
            (640, 480),
            (352, 288),
            (u64::from(TESTSRC.0), u64::from(TESTSRC.1)),
        ];
        for (id, size) in ids.iter().zip(expected) {
            let url = ports.rtsp_url(id);
            // GOP = fps ≤ 15 frames: 40 packets reach a keyframe.
            assert_eq!(media::probe_stream_frame(ctx, &url, 40)?, size, "{url}");
        }
        for sim in simulators {
            sim.stop()?;
        }
    }
    check.verify(ctx)
}

/// v4l2loopback: a node fed by the simulator is discovered by the start-up scan as a V4L2
/// camera, listed CONNECTED with the card name and the written size, and a snapshot of it has
/// that size. No descriptor on the node stays open in the test process. (The hot-plug
/// notification is scenario 7's.)
#[realtest::test(tags = ["needs-v4l2loopback", "needs-ffmpeg"], timeout = "120s")]
async fn real_discovery_v4l2loopback_camera(ctx: &mut Ctx) -> anyhow::Result<()> {
    let pattern = Pattern::new(640, 480, 15);
    let mut check = PostTestCheck::new();
    {
        let lease = ctx.lease_loopback()?;
        check.watch_device(lease.path());
        let card = lease.node().card.clone();
        // The writer first: the start-up scan then sees a capture node of the written size.
        let mut sim = TestVideoStreamSimulator::write_loopback(ctx, lease.path(), pattern)?;
        sim.wait_loopback_consumable(ctx, Duration::from_secs(30))?;
        let service = ServiceUnderTest::start_with(
            ctx,
            direct("testsrc").env("CAMERA_SERVICE_CAMERAS_DISCOVER_V4L2", "true"),
        )?;
        check.track_processes_of(service.pid())?;
        check.expect_removed(service.root());
        let mut client = service.client(Role::Operator).await?;
        let find = |list: &Value| -> Option<Value> {
            list["cameras"]
                .as_array()?
                .iter()
                .find(|c| c["name"] == card.as_str())
                .cloned()
        };
        let listed = client.call_ok("get_camera_list", json!({})).await?;
        let camera =
            find(&listed).with_context(|| format!("no camera named {card:?}: {listed}"))?;
        assert_eq!(camera["status"], "CONNECTED", "{camera}");
        let id = camera["device"].as_str().context("device id")?.to_owned();
        assert_eq!(camera["resolution"], pattern.size(), "{camera}");
        assert_eq!(camera["streams"], json!({}));
        let snap = client
            .call_ok("take_snapshot", json!({ "device": id }))
            .await?;
        let info = media::probe(
            ctx,
            &service
                .snapshots_dir()
                .join(snap["filename"].as_str().unwrap_or_default()),
        )?;
        assert_eq!(
            (info.codec.as_str(), info.width, info.height),
            ("mjpeg", 640, 480)
        );
        sim.stop()?;
    }
    check.verify(ctx)
}
