//! Recordings from the testsrc camera: timed, stopped, refused, crashed.

use std::time::Duration;

use camera_service::auth::Role;
use serde_json::json;

use crate::support::service::{ServiceOptions, ServiceUnderTest};
use crate::support::ws_client::WsClient;
use crate::support::{media, procfs};

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
    assert!(
        details["duration"].as_f64().is_some_and(|d| d > 1.0),
        "{details}"
    );
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
    // A threshold of 0 % is always reached: the disk counts as full.
    let service = ServiceUnderTest::start_with(
        ctx,
        ServiceOptions::default().env("CAMERA_SERVICE_STORAGE_BLOCK_PERCENT", "0"),
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

#[realtest::test(tags = ["needs-ffmpeg"], timeout = "90s")]
async fn killed_ffmpeg_is_reported_and_leaves_a_readable_file(
    ctx: &mut realtest::Ctx,
) -> anyhow::Result<()> {
    let service = ServiceUnderTest::start(ctx)?;
    let mut client =
        WsClient::connect_authenticated(&service.ws_url(), &service.token(Role::Operator)).await?;
    let started = client
        .call_ok("start_recording", json!({ "device": "camera0" }))
        .await?;
    let filename = started["filename"].as_str().expect("filename").to_owned();
    let path = service.recordings_dir().join(&filename);
    // Let it write a few fragments (1 s GOP), then kill FFmpeg behind the service's back.
    let deadline = std::time::Instant::now() + NOTIFY;
    while std::fs::metadata(&path)?.len() < 20_000 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ffmpeg = procfs::children_of(service.pid())
        .into_iter()
        .next()
        .expect("the recording FFmpeg is a child of the service");
    ctx.log(format_args!("killing ffmpeg pid {ffmpeg}"));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(ffmpeg),
        nix::sys::signal::Signal::SIGKILL,
    )?;
    let failed = client
        .wait_notification(
            "recording_status_update",
            |p| p["status"] != "STARTED",
            NOTIFY,
        )
        .await?;
    assert_eq!(failed["status"], "FAILED", "{failed}");
    assert!(
        failed["error"]
            .as_str()
            .is_some_and(|e| e.contains("signal")),
        "{failed}"
    );
    let info = media::probe(ctx, &path)?;
    assert_eq!(info.codec, "h264");
    assert!(info.frames.is_some_and(|f| f > 0), "{info:?}");
    // The camera can record again.
    client
        .call_ok(
            "start_recording",
            json!({ "device": "camera0", "duration": 1 }),
        )
        .await?;
    Ok(())
}

/// A tmpfs mounted for the test, unmounted on drop.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(ctx: &realtest::Ctx, dir: &std::path::Path, size: &str) -> anyhow::Result<Self> {
        let output = ctx.output(
            std::process::Command::new("mount")
                .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
                .arg(dir),
            Duration::from_secs(10),
        )?;
        if !output.status.success() {
            // Root without CAP_SYS_ADMIN (an unprivileged container): the need is not met.
            return Err(realtest::Skip::new(
                "needs-root",
                format!(
                    "cannot mount a tmpfs: {}",
                    String::from_utf8_lossy(&output.stderr).trim()
                ),
            )
            .into());
        }
        Ok(Self(dir.to_owned()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
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
