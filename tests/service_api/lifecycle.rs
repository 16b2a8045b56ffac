//! Start-up, configuration refusal, and graceful shutdown.

use std::process::Command;
use std::time::Duration;

use camera_service::auth::Role;
use serde_json::json;

use crate::support::media;
use crate::support::service::{ServiceUnderTest, BINARY};
use crate::support::ws_client::WsClient;

#[realtest::test(timeout = "60s")]
fn invalid_override_is_refused_naming_the_key(ctx: &mut realtest::Ctx) -> anyhow::Result<()> {
    let dir = ctx.temp_dir()?;
    let output = ctx.output(
        Command::new(BINARY)
            .arg("serve")
            .current_dir(&dir)
            .env("CAMERA_SERVICE_SERVER_PORT", "eighty"),
        Duration::from_secs(20),
    )?;
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("server.port")
            && stderr.contains("CAMERA_SERVICE_SERVER_PORT")
            && stderr.contains("eighty"),
        "{stderr}"
    );
    assert!(
        !dir.join("camera-data").exists(),
        "nothing is created for a refused config"
    );
    Ok(())
}

#[realtest::test(timeout = "60s")]
fn check_config_prints_the_effective_config(ctx: &mut realtest::Ctx) -> anyhow::Result<()> {
    let dir = ctx.temp_dir()?;
    let output = ctx.output(
        Command::new(BINARY)
            .arg("check-config")
            .current_dir(&dir)
            .env("CAMERA_SERVICE_STORAGE_DATA_DIR", "/srv/cams"),
        Duration::from_secs(20),
    )?;
    assert!(output.status.success());
    let effective: toml::Table = String::from_utf8(output.stdout)?.parse()?;
    assert_eq!(effective["storage"]["data_dir"].as_str(), Some("/srv/cams"));
    assert_eq!(effective["server"]["port"].as_integer(), Some(8002));
    assert_eq!(effective["server"]["host"].as_str(), Some("127.0.0.1"));
    Ok(())
}

#[realtest::test(timeout = "60s")]
fn first_start_creates_a_private_secret(ctx: &mut realtest::Ctx) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let service = ServiceUnderTest::start(ctx)?;
    let meta = std::fs::metadata(service.data_dir.join("jwt-secret"))?;
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert!(service.recordings_dir().is_dir() && service.snapshots_dir().is_dir());
    assert!(
        service
            .output()
            .iter()
            .any(|l| l.contains("camera-service token --role admin")),
        "the log tells how to mint a token"
    );
    Ok(())
}

#[realtest::test(tags = ["needs-ffmpeg"], timeout = "90s")]
async fn sigterm_finalises_recordings_and_exits_zero(
    ctx: &mut realtest::Ctx,
) -> anyhow::Result<()> {
    let mut service = ServiceUnderTest::start(ctx)?;
    let mut client =
        WsClient::connect_authenticated(&service.ws_url(), &service.token(Role::Operator)).await?;
    let started = client
        .call_ok("start_recording", json!({ "device": "camera0" }))
        .await?;
    let filename = started["filename"].as_str().expect("filename").to_owned();
    client
        .wait_notification(
            "recording_status_update",
            |p| p["status"] == "STARTED",
            Duration::from_secs(10),
        )
        .await?;
    let status = tokio::task::block_in_place(|| service.terminate())?;
    assert_eq!(status.code(), Some(0), "exit status {status:?}");
    let stopped = client
        .wait_notification(
            "recording_status_update",
            |p| p["status"] != "STARTED",
            Duration::from_secs(10),
        )
        .await?;
    assert_eq!(stopped["status"], "STOPPED");
    assert_eq!(stopped["filename"], filename.as_str());
    assert_eq!(
        client.wait_close(Duration::from_secs(10)).await?,
        Some(1001)
    );
    let info = media::probe(ctx, &service.recordings_dir().join(&filename))?;
    assert_eq!(info.codec, "h264");
    assert!(info.frames.is_some_and(|f| f > 0), "{info:?}");
    Ok(())
}

#[realtest::test(tags = ["needs-ffmpeg"], timeout = "90s")]
async fn killed_service_takes_its_ffmpeg_along(ctx: &mut realtest::Ctx) -> anyhow::Result<()> {
    let service = ServiceUnderTest::start(ctx)?;
    let mut client =
        WsClient::connect_authenticated(&service.ws_url(), &service.token(Role::Operator)).await?;
    let started = client
        .call_ok("start_recording", json!({ "device": "camera0" }))
        .await?;
    let ffmpeg = crate::support::procfs::children_of(service.pid());
    assert_eq!(ffmpeg.len(), 1, "one recording FFmpeg: {ffmpeg:?}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(service.pid() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )?;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while crate::support::procfs::is_alive(ffmpeg[0]) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        !crate::support::procfs::is_alive(ffmpeg[0]),
        "FFmpeg {} outlived the killed service",
        ffmpeg[0]
    );
    // Fragmented MP4: what was written is readable.
    let path = service
        .recordings_dir()
        .join(started["filename"].as_str().expect("filename"));
    let info = media::probe(ctx, &path)?;
    assert_eq!(info.codec, "h264");
    Ok(())
}
