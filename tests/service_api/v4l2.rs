//! A real V4L2 camera (bench USB camera, vivid or a streaming v4l2loopback node).

use anyhow::{ensure, Context};
use camera_service::auth::Role;
use realtest::CameraRequirements;
use serde_json::json;

use crate::support::media;
use crate::support::procfs::DeviceHolderSampler;
use crate::support::service::{ServiceOptions, ServiceUnderTest};
use crate::support::ws_client::WsClient;

#[realtest::test(tags = ["needs-v4l2", "needs-ffmpeg", "hardware"], timeout = "120s")]
async fn v4l2_camera_snapshot_and_recording_with_one_reader(
    ctx: &mut realtest::Ctx,
) -> anyhow::Result<()> {
    let lease = ctx.lease_camera(&CameraRequirements::any())?;
    let source = format!("testsrc,v4l2:{}", lease.path().display());
    let service = ServiceUnderTest::start_with(
        ctx,
        ServiceOptions::default().env("CAMERA_SERVICE_CAMERAS_SOURCES", &source),
    )?;
    let mut client =
        WsClient::connect_authenticated(&service.ws_url(), &service.token(Role::Operator)).await?;
    let list = client.call_ok("get_camera_list", json!({})).await?;
    let camera = &list["cameras"][1];
    assert_eq!(camera["device"], "camera1");
    let (width, height) = camera["resolution"]
        .as_str()
        .and_then(|r| r.split_once('x'))
        .and_then(|(w, h)| Some((w.parse::<u64>().ok()?, h.parse::<u64>().ok()?)))
        .with_context(|| format!("no WIDTHxHEIGHT resolution: {camera}"))?;
    ensure!(
        lease.node().formats.iter().any(|f| f
            .sizes
            .iter()
            .any(|s| (u64::from(s.width), u64::from(s.height)) == (width, height))),
        "listed resolution {width}x{height} is not a size of {}",
        lease.describe()
    );
    assert!(
        !list.to_string().contains("/dev/video"),
        "device paths never reach clients: {list}"
    );
    let snap = client
        .call_ok(
            "take_snapshot",
            json!({ "device": "camera1", "filename": "idle" }),
        )
        .await?;
    let idle = media::probe(
        ctx,
        &service
            .snapshots_dir()
            .join(snap["filename"].as_str().unwrap_or_default()),
    )?;
    assert_eq!(
        (idle.codec.as_str(), idle.width, idle.height),
        ("mjpeg", width, height)
    );
    client
        .call_ok("start_recording", json!({ "device": "camera1" }))
        .await?;
    // While recording, the snapshot comes from the recording pipeline: the device has one
    // reader, the recording's FFmpeg, before, during and after the snapshot.
    let readers = DeviceHolderSampler::start(lease.path(), service.pid());
    let during = client
        .call_ok(
            "take_snapshot",
            json!({ "device": "camera1", "filename": "during" }),
        )
        .await?;
    let info = media::probe(
        ctx,
        &service
            .snapshots_dir()
            .join(during["filename"].as_str().unwrap_or_default()),
    )?;
    assert_eq!(
        (info.codec.as_str(), info.width, info.height),
        ("mjpeg", width, height)
    );
    readers.finish().ensure_one_ffmpeg_reader()?;
    let stopped = client
        .call_ok("stop_recording", json!({ "device": "camera1" }))
        .await?;
    let video = media::probe(
        ctx,
        &service
            .recordings_dir()
            .join(stopped["filename"].as_str().unwrap_or_default()),
    )?;
    assert_eq!(video.codec, "h264");
    assert!(video.frames.is_some_and(|f| f > 0), "{video:?}");
    Ok(())
}
