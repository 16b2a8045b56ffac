//! Recordings from the testsrc camera: timed, stopped, refused, cut short by a full disk (a
//! killed FFmpeg: `real_system` scenario 5, `real_recovery_ffmpeg_killed_mid_recording_direct`).

use std::time::Duration;

use camera_service::auth::Role;
use serde_json::json;

use crate::support::media;
use crate::support::service::{ServiceOptions, ServiceUnderTest};
use crate::support::tmpfs::Tmpfs;
use crate::support::ws_client::WsClient;

const NOTIFY: Duration = Duration::from_secs(30);

#[realtest::test(tags = ["needs-ffmpeg"], timeout = "90s")]
async fn timed_recording_stops_by_itself(ctx: &mut realtest::Ctx) -> anyhow::Result<()> {
    let service = ServiceUnderTest::start(ctx)?;
    let mut client =
        WsClient::connect_authenticated(&service.ws_url(), &service.token(Role::Operator)).await?;
    let started = client
        .call_ok(
            "start_recording",
            json!({ "device": "camera0", "duration": 2 }),
        )
        .await?;
    assert_eq!(started["status"], "STARTED");
    assert_eq!(started["duration"], 2);
    assert_eq!(started["format"], "mp4");
    let filename = started["filename"].as_str().expect("filename").to_owned();
    assert!(
        filename.starts_with("camera0_") && filename.ends_with(".mp4"),
        "{filename}"
    );
    let note = client
        .wait_notification(
            "recording_status_update",
            |p| p["status"] == "STARTED",
            NOTIFY,
        )
        .await?;
    assert_eq!(note["filename"], filename.as_str());
    assert_eq!(note["device"], "camera0");
    let stopped = client
        .wait_notification(
            "recording_status_update",
            |p| p["status"] != "STARTED",
            NOTIFY,
        )
        .await?;
    assert_eq!(stopped["status"], "STOPPED", "{stopped}");
    assert_eq!(stopped["filename"], filename.as_str());
    let info = media::probe(ctx, &service.recordings_dir().join(&filename))?;
    assert_eq!(
        (info.codec.as_str(), info.width, info.height),
        ("h264", 640, 480)
    );
    // `-t 2` at 30 fps: FFmpeg itself cut the recording at 60 frames.
    assert_eq!(info.frames, Some(60), "{info:?}");
    let details = client
        .call_ok("get_recording_info", json!({ "filename": filename }))
        .await?;
    // The media in the file (60 frames at 30 fps), not the time the recording took.
    let duration = details["duration"].as_f64().unwrap_or(f64::NAN);
    assert!((duration - 2.0).abs() <= 0.1, "2 s expected: {details}");
    assert_eq!(details["recording"], false);
    let listed = client.call_ok("list_recordings", json!({})).await?;
    assert_eq!(listed["total"], 1);
    Ok(())
}

#[realtest::test(tags = ["needs-ffmpeg"], timeout = "90s")]
async fn start_twice_and_stop_when_idle_are_invalid_state(
    ctx: &mut realtest::Ctx,
) -> anyhow::Result<()> {
    let service = ServiceUnderTest::start(ctx)?;
    let mut client =
        WsClient::connect_authenticated(&service.ws_url(), &service.token(Role::Operator)).await?;
    // An unauthenticated connection sees no notifications.
    let mut anonymous = WsClient::connect(&service.ws_url(), None).await?;
    let idle = client
        .call_err("stop_recording", json!({ "device": "camera0" }))
        .await?;
    assert_eq!(idle.code, -32005);
    let started = client
        .call_ok("start_recording", json!({ "device": "camera0" }))
        .await?;
    let twice = client
        .call_err("start_recording", json!({ "device": "camera0" }))
        .await?;
    assert_eq!(twice.code, -32005);
    assert!(twice.message.contains("already recording"), "{twice:?}");
    let in_progress = client
        .call_err(
            "delete_recording",
            json!({ "filename": started["filename"] }),
        )
        .await?;
    assert_eq!(in_progress.code, -32005);
    let stopped = client
        .call_ok("stop_recording", json!({ "device": "camera0" }))
        .await?;
    assert_eq!(stopped["status"], "STOPPED");
    assert_eq!(stopped["filename"], started["filename"]);
    assert_eq!(stopped["session_id"], started["session_id"]);
    let path = service
        .recordings_dir()
        .join(stopped["filename"].as_str().expect("filename"));
    assert_eq!(
        stopped["file_size"].as_u64(),
        Some(std::fs::metadata(&path)?.len())
    );
    let info = media::probe(ctx, &path)?;
    assert_eq!(info.codec, "h264");
    assert!(info.frames.is_some_and(|f| f > 0), "{info:?}");
    client
        .wait_notification(
            "recording_status_update",
            |p| p["status"] == "STOPPED",
            NOTIFY,
        )
        .await?;
    // Two round trips: the connection has handled every earlier broadcast before the second.
    assert_eq!(anonymous.call_ok("ping", json!({})).await?, "pong");
    assert_eq!(anonymous.call_ok("ping", json!({})).await?, "pong");
    assert!(
        anonymous.queued_notifications().is_empty(),
        "notifications leaked to an unauthenticated client: {:?}",
        anonymous.queued_notifications()
    );
    let again = client
        .call_err("stop_recording", json!({ "device": "camera0" }))
        .await?;
    assert_eq!(again.code, -32005);
    let deleted = client
        .call_ok(
            "delete_recording",
            json!({ "filename": stopped["filename"] }),
        )
        .await?;
    assert_eq!(deleted["deleted"], true);
    Ok(())
}

#[realtest::test(tags = ["needs-ffmpeg"], timeout = "60s")]
async fn recording_is_refused_above_the_block_threshold(
    ctx: &mut realtest::Ctx,
) -> anyhow::Result<()> {
    // A threshold of 1 % (the lowest accepted) is reached by any filesystem holding a system.
    let service = ServiceUnderTest::start_with(
        ctx,
        ServiceOptions::default()
            .env("CAMERA_SERVICE_STORAGE_WARN_PERCENT", "1")
            .env("CAMERA_SERVICE_STORAGE_BLOCK_PERCENT", "1"),
    )?;
    let mut client =
        WsClient::connect_authenticated(&service.ws_url(), &service.token(Role::Operator)).await?;
    let error = client
        .call_err("start_recording", json!({ "device": "camera0" }))
        .await?;
    assert_eq!(error.code, -32008, "{error:?}");
    assert_eq!(std::fs::read_dir(service.recordings_dir())?.count(), 0);
    Ok(())
}

#[realtest::test(tags = ["needs-root", "needs-ffmpeg"], timeout = "120s")]
async fn disk_filling_up_stops_the_recording_with_a_readable_file(
    ctx: &mut realtest::Ctx,
) -> anyhow::Result<()> {
    let data_dir = ctx.temp_dir()?;
    let _tmpfs = Tmpfs::mount(ctx, &data_dir, "3m")?;
    let options = ServiceOptions {
        data_dir: Some(data_dir),
        ..ServiceOptions::default()
    }
    .env("CAMERA_SERVICE_STORAGE_WARN_PERCENT", "30")
    .env("CAMERA_SERVICE_STORAGE_BLOCK_PERCENT", "40")
    .env("CAMERA_SERVICE_STORAGE_CHECK_INTERVAL", "100ms");
    let service = ServiceUnderTest::start_with(ctx, options)?;
    let mut client =
        WsClient::connect_authenticated(&service.ws_url(), &service.token(Role::Operator)).await?;
    let started = client
        .call_ok("start_recording", json!({ "device": "camera0" }))
        .await?;
    let failed = client
        .wait_notification(
            "recording_status_update",
            |p| p["status"] != "STARTED",
            Duration::from_secs(90),
        )
        .await?;
    assert_eq!(failed["status"], "FAILED", "{failed}");
    assert!(
        failed["error"]
            .as_str()
            .is_some_and(|e| e.contains("storage full")),
        "{failed}"
    );
    let path = service
        .recordings_dir()
        .join(started["filename"].as_str().expect("filename"));
    let info = media::probe(ctx, &path)?;
    assert_eq!(info.codec, "h264");
    assert!(info.frames.is_some_and(|f| f > 0), "{info:?}");
    let refused = client
        .call_err("start_recording", json!({ "device": "camera0" }))
        .await?;
    assert_eq!(refused.code, -32008);
    Ok(())
}
