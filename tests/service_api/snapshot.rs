//! Snapshots from the testsrc camera, checked with ffprobe, listed, downloaded and deleted.

use std::time::Duration;

use camera_service::auth::Role;
use serde_json::json;

use crate::support::service::{ServiceOptions, ServiceUnderTest};
use crate::support::ws_client::WsClient;
use crate::support::{http, media};

#[realtest::test(tags = ["needs-ffmpeg"], timeout = "90s")]
async fn snapshot_from_testsrc(ctx: &mut realtest::Ctx) -> anyhow::Result<()> {
    let service = ServiceUnderTest::start(ctx)?;
    let token = service.token(Role::Operator);
    let mut client = WsClient::connect_authenticated(&service.ws_url(), &token).await?;
    let result = client
        .call_ok(
            "take_snapshot",
            json!({ "device": "camera0", "filename": "first" }),
        )
        .await?;
    assert_eq!(result["status"], "completed");
    assert_eq!(result["filename"], "first.jpg");
    assert_eq!(result["download_url"], "/files/snapshots/first.jpg");
    let path = service.snapshots_dir().join("first.jpg");
    let info = media::probe(ctx, &path)?;
    assert_eq!(
        (info.codec.as_str(), info.width, info.height),
        ("mjpeg", 640, 480)
    );
    assert_eq!(
        result["file_size"].as_u64(),
        Some(std::fs::metadata(&path)?.len())
    );

    let png = client
        .call_ok(
            "take_snapshot",
            json!({ "device": "camera0", "format": "png" }),
        )
        .await?;
    let png_name = png["filename"].as_str().expect("filename is a string");
    assert!(
        png_name.starts_with("camera0_snapshot_") && png_name.ends_with(".png"),
        "{png_name}"
    );
    let info = media::probe(ctx, &service.snapshots_dir().join(png_name))?;
    assert_eq!(info.codec, "png");

    let listed = client
        .call_ok("list_snapshots", json!({ "limit": 1 }))
        .await?;
    assert_eq!(listed["total"], 2);
    assert_eq!(listed["files"].as_array().map(Vec::len), Some(1));
    let details = client
        .call_ok("get_snapshot_info", json!({ "filename": "first.jpg" }))
        .await?;
    assert_eq!(details["file_size"], result["file_size"]);
    assert_eq!(details["resolution"], "640x480");

    let download = http::get(
        service.addr,
        "/files/snapshots/first.jpg",
        &[("Authorization", &format!("Bearer {token}"))],
    )?;
    assert_eq!(download.status, 200);
    assert_eq!(download.header("content-type"), Some("image/jpeg"));
    assert_eq!(download.body, std::fs::read(&path)?);
    assert_eq!(
        http::get(service.addr, "/files/snapshots/first.jpg", &[])?.status,
        401
    );
    assert_eq!(
        http::get(
            service.addr,
            "/files/snapshots/first.jpg",
            &[("Authorization", "Bearer forged")]
        )?
        .status,
        401
    );

    let deleted = client
        .call_ok("delete_snapshot", json!({ "filename": "first.jpg" }))
        .await?;
    assert_eq!(deleted["deleted"], true);
    assert!(!path.exists());
    let again = client
        .call_err("delete_snapshot", json!({ "filename": "first.jpg" }))
        .await?;
    assert_eq!(again.code, -32007);
    Ok(())
}

/// An RTSP camera whose URL refuses connections (a closed loopback port) is checked at start and
/// listed DISCONNECTED from the first call; the periodic `ffprobe` check keeps it so without
/// repeating the notification; a snapshot or recording of it is −32006 naming the camera and
/// the cause, and it stays DISCONNECTED (its source is gone, not failing); camera0 is unaffected.
#[realtest::test(tags = ["needs-ffmpeg"], timeout = "90s")]
async fn unreachable_rtsp_camera_is_disconnected_and_media_fails_with_32006(
    ctx: &mut realtest::Ctx,
) -> anyhow::Result<()> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let url = format!("rtsp://127.0.0.1:{port}/none");
    let service = ServiceUnderTest::start_with(
        ctx,
        ServiceOptions::default()
            .env("CAMERA_SERVICE_CAMERAS_SOURCES", &format!("testsrc,{url}"))
            .env("CAMERA_SERVICE_CAMERAS_RTSP_CHECK_INTERVAL", "200ms"),
    )?;
    let mut client =
        WsClient::connect_authenticated(&service.ws_url(), &service.token(Role::Operator)).await?;
    let list = client.call_ok("get_camera_list", json!({})).await?;
    assert_eq!(list["cameras"][0]["status"], "CONNECTED", "{list}");
    assert_eq!(list["cameras"][1]["device"], "camera1", "{list}");
    assert_eq!(list["cameras"][1]["status"], "DISCONNECTED", "{list}");
    assert_eq!(list["connected"], 1, "{list}");
    let error = client
        .call_err("take_snapshot", json!({ "device": "camera1" }))
        .await?;
    assert_eq!(error.code, -32006, "{error:?}");
    assert!(
        error.message.contains("camera1") && error.message.contains("Connection refused"),
        "the message names the camera and the cause: {error:?}"
    );
    let data_dir = service.data_dir.display().to_string();
    assert!(
        !error.message.contains(&data_dir),
        "no server paths: {error:?}"
    );
    let recording = client
        .call_err("start_recording", json!({ "device": "camera1" }))
        .await?;
    assert_eq!(recording.code, -32006, "{recording:?}");
    // The log has the full command lines, input options before `-i`: the presence probe
    // (at start and then periodically) and the snapshot.
    let probe = format!(
        "ffprobe -v error -rtsp_transport tcp -timeout 5000000 -analyzeduration 2000000 -i {url}"
    );
    let is_probe = |line: &str| line.contains(&probe);
    assert!(
        service.output().iter().any(|line| is_probe(line)),
        "the start-up check is logged"
    );
    // Two periodic checks after the failures: the status does not move and nothing is sent.
    let mut seen = service.output().len();
    for _ in 0..2 {
        seen = service
            .wait_output(
                seen,
                "a periodic check of camera1",
                Duration::from_secs(30),
                is_probe,
            )
            .await?;
    }
    client.call_ok("ping", json!({})).await?;
    assert!(
        client.queued_notifications().is_empty(),
        "no camera_status_update without a change: {:?}",
        client.queued_notifications()
    );
    let status = client
        .call_ok("get_camera_status", json!({ "device": "camera1" }))
        .await?;
    assert_eq!(status["status"], "DISCONNECTED");
    assert!(
        service
            .output()
            .iter()
            .any(|line| line.contains(&format!("-rtsp_transport tcp -timeout 5000000 -i {url}"))),
        "the log carries the snapshot argv"
    );
    // camera0 is unaffected.
    client
        .call_ok("take_snapshot", json!({ "device": "camera0" }))
        .await?;
    assert!(client.queued_notifications().is_empty());
    Ok(())
}
