//! Snapshots from the testsrc camera, checked with ffprobe, listed, downloaded and deleted.

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

#[realtest::test(tags = ["needs-ffmpeg"], timeout = "90s")]
async fn unreachable_rtsp_camera_fails_with_32006_and_reports_error(
    ctx: &mut realtest::Ctx,
) -> anyhow::Result<()> {
    // Port 1 on loopback refuses connections: FFmpeg fails at once.
    let service = ServiceUnderTest::start_with(
        ctx,
        ServiceOptions::default().env(
            "CAMERA_SERVICE_CAMERAS_SOURCES",
            "testsrc,rtsp://127.0.0.1:1/none",
        ),
    )?;
    let mut client =
        WsClient::connect_authenticated(&service.ws_url(), &service.token(Role::Operator)).await?;
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
    // The log has the full command line, input options before `-i`.
    assert!(
        service
            .output()
            .iter()
            .any(|line| line
                .contains("-rtsp_transport tcp -timeout 5000000 -i rtsp://127.0.0.1:1/none")),
        "the log carries the argv"
    );
    let update = client
        .wait_notification(
            "camera_status_update",
            |p| p["device"] == "camera1",
            std::time::Duration::from_secs(10),
        )
        .await?;
    assert_eq!(update["status"], "ERROR");
    let status = client
        .call_ok("get_camera_status", json!({ "device": "camera1" }))
        .await?;
    assert_eq!(status["status"], "ERROR");
    let recording = client
        .call_err("start_recording", json!({ "device": "camera1" }))
        .await?;
    assert_eq!(recording.code, -32006, "{recording:?}");
    // camera0 is unaffected.
    client
        .call_ok("take_snapshot", json!({ "device": "camera0" }))
        .await?;
    Ok(())
}
