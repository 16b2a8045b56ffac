//! A real V4L2 camera (bench USB camera, vivid or a streaming v4l2loopback node).

use camera_service::auth::Role;
use realtest::CameraRequirements;
use serde_json::json;

use crate::support::media;
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
    assert_eq!(list["cameras"][1]["device"], "camera1");
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
    assert_eq!(idle.codec, "mjpeg");
    client
        .call_ok("start_recording", json!({ "device": "camera1" }))
        .await?;
    // While recording, the snapshot comes from the recording pipeline (the device has one reader).
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
        ("mjpeg", idle.width, idle.height)
    );
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

#[realtest::test(tags = ["needs-v4l2", "hardware"], timeout = "60s")]
async fn v4l2_capture_nodes_are_discovered_with_capabilities(
    ctx: &mut realtest::Ctx,
) -> anyhow::Result<()> {
    let _lease = ctx.lease_camera(&CameraRequirements::any())?;
    let service = ServiceUnderTest::start_with(
        ctx,
        ServiceOptions::default().env("CAMERA_SERVICE_CAMERAS_DISCOVER_V4L2", "true"),
    )?;
    let mut client =
        WsClient::connect_authenticated(&service.ws_url(), &service.token(Role::Viewer)).await?;
    let list = client.call_ok("get_camera_list", json!({})).await?;
    let cameras = list["cameras"].as_array().cloned().unwrap_or_default();
    assert!(
        cameras.len() >= 2,
        "testsrc plus at least the leased device: {list}"
    );
    let discovered = &cameras[1];
    assert_eq!(discovered["status"], "CONNECTED");
    let caps = client
        .call_ok(
            "get_camera_capabilities",
            json!({ "device": discovered["device"] }),
        )
        .await?;
    assert!(
        caps["formats"].as_array().is_some_and(|f| !f.is_empty()),
        "{caps}"
    );
    assert!(
        caps["resolutions"]
            .as_array()
            .is_some_and(|r| !r.is_empty()),
        "{caps}"
    );
    Ok(())
}
