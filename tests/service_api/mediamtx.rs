//! The managed MediaMTX backend with a real MediaMTX binary: stream URLs, a path that becomes
//! ready, a snapshot read from MediaMTX, and recovery after MediaMTX is killed.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use camera_service::auth::Role;
use serde_json::{json, Value};

use crate::support::media;
use crate::support::service::{ServiceOptions, ServiceUnderTest};
use crate::support::ws_client::WsClient;

const READY: Duration = Duration::from_secs(45);

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Polls `get_streams` until camera0's path is ready.
async fn wait_ready(client: &mut WsClient) -> anyhow::Result<Value> {
    let deadline = Instant::now() + READY;
    loop {
        let streams = client.call_ok("get_streams", json!({})).await?;
        if streams[0]["ready"] == true {
            return Ok(streams);
        }
        if Instant::now() > deadline {
            bail!("camera0 never became ready: {streams}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[realtest::test(tags = ["needs-mediamtx", "needs-ffmpeg"], timeout = "180s")]
async fn managed_mediamtx_publishes_cameras_and_recovers(
    ctx: &mut realtest::Ctx,
) -> anyhow::Result<()> {
    let binary = ctx
        .probe()
        .mediamtx
        .found()
        .context("the probe found MediaMTX")?
        .path
        .clone();
    let (api, rtsp, hls, webrtc) = (free_port()?, free_port()?, free_port()?, free_port()?);
    let service = ServiceUnderTest::start_with(
        ctx,
        ServiceOptions::default()
            .env("CAMERA_SERVICE_MEDIAMTX_MODE", "managed")
            .env(
                "CAMERA_SERVICE_MEDIAMTX_BINARY",
                &binary.display().to_string(),
            )
            .env("CAMERA_SERVICE_MEDIAMTX_API_PORT", &api.to_string())
            .env("CAMERA_SERVICE_MEDIAMTX_RTSP_PORT", &rtsp.to_string())
            .env("CAMERA_SERVICE_MEDIAMTX_HLS_PORT", &hls.to_string())
            .env("CAMERA_SERVICE_MEDIAMTX_WEBRTC_PORT", &webrtc.to_string())
            .env(
                "CAMERA_SERVICE_MEDIAMTX_WEBRTC_UDP_PORT",
                &std::net::UdpSocket::bind("127.0.0.1:0")?
                    .local_addr()?
                    .port()
                    .to_string(),
            ),
    )?;
    let mut client =
        WsClient::connect_authenticated(&service.ws_url(), &service.token(Role::Operator)).await?;
    let list = client.call_ok("get_camera_list", json!({})).await?;
    let rtsp_url = format!("rtsp://127.0.0.1:{rtsp}/camera0");
    assert_eq!(list["cameras"][0]["streams"]["rtsp"], rtsp_url.as_str());
    assert_eq!(
        list["cameras"][0]["streams"]["hls"],
        format!("http://127.0.0.1:{hls}/camera0/")
    );
    let streams = wait_ready(&mut client).await?;
    assert_eq!(streams[0]["name"], "camera0");
    let config = std::fs::read_to_string(service.data_dir.join("mediamtx.yml"))?;
    assert!(
        config.contains(&format!("apiAddress: 127.0.0.1:{api}")),
        "{config}"
    );

    let snap = client
        .call_ok("take_snapshot", json!({ "device": "camera0" }))
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

    // Kill MediaMTX behind the service's back: it is restarted and the path registered again.
    let output = ctx.output(
        std::process::Command::new("pgrep").args([
            "-P",
            &service.pid().to_string(),
            "-f",
            "mediamtx",
        ]),
        Duration::from_secs(10),
    )?;
    let pid: i32 = String::from_utf8(output.stdout)?
        .lines()
        .next()
        .context("MediaMTX is a child of the service")?
        .trim()
        .parse()?;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )?;
    wait_ready(&mut client).await?;
    let again = client
        .call_ok("take_snapshot", json!({ "device": "camera0" }))
        .await?;
    assert_eq!(again["status"], "completed");
    Ok(())
}
