//! The managed MediaMTX backend with a real MediaMTX binary: stream URLs, a path that becomes
//! ready, a snapshot read from MediaMTX, recovery after MediaMTX is killed (and what clients are
//! told), and an RTSP camera whose source is not there.

use std::time::{Duration, Instant};

use anyhow::bail;
use camera_service::auth::Role;
use serde_json::{json, Value};

use crate::support::media;
use crate::support::mediamtx::{binary, free_port, managed_mediamtx_pid};
use crate::support::service::{ServiceOptions, ServiceUnderTest};
use crate::support::ws_client::WsClient;

const READY: Duration = Duration::from_secs(45);

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

/// The managed MediaMTX backend on free ports, checking presence every 250 ms.
fn managed(
    ctx: &realtest::Ctx,
    api: u16,
    rtsp: u16,
    hls: u16,
    webrtc: u16,
) -> anyhow::Result<ServiceOptions> {
    let (binary, _version) = binary(ctx)?;
    Ok(ServiceOptions::default()
        .env("CAMERA_SERVICE_CAMERAS_RTSP_CHECK_INTERVAL", "250ms")
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
        ))
}

#[realtest::test(tags = ["needs-mediamtx", "needs-ffmpeg"], timeout = "180s")]
async fn managed_mediamtx_publishes_cameras_and_recovers(
    ctx: &mut realtest::Ctx,
) -> anyhow::Result<()> {
    let (api, rtsp, hls, webrtc) = (free_port()?, free_port()?, free_port()?, free_port()?);
    let service = ServiceUnderTest::start_with(ctx, managed(ctx, api, rtsp, hls, webrtc)?)?;
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

    // Kill MediaMTX behind the service's back: it is restarted and the path registered again;
    // clients are told camera0 is ERROR while MediaMTX is down and CONNECTED once its path has
    // a stream again — those two notifications, in that order, and no others.
    assert!(client.queued_notifications().is_empty());
    let pid = managed_mediamtx_pid(ctx, &service)?;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )?;
    for expected in ["ERROR", "CONNECTED"] {
        let update = client
            .next_notification("camera_status_update", READY)
            .await?;
        assert_eq!(
            (update["device"].as_str(), update["status"].as_str()),
            (Some("camera0"), Some(expected)),
            "{update}"
        );
    }
    wait_ready(&mut client).await?;
    assert!(client.queued_notifications().is_empty());
    let again = client
        .call_ok("take_snapshot", json!({ "device": "camera0" }))
        .await?;
    assert_eq!(again["status"], "completed");
    Ok(())
}

/// An RTSP camera behind MediaMTX whose URL refuses connections: MediaMTX's path never gets a
/// stream, so the camera is listed DISCONNECTED from the start; a snapshot waits for the path
/// (`ffmpeg.start_timeout`), fails with −32006, and the camera stays DISCONNECTED; MediaMTX
/// killed and restarted does not make it ERROR (its source was gone anyway): no notification.
#[realtest::test(tags = ["needs-mediamtx", "needs-ffmpeg"], timeout = "120s")]
async fn rtsp_camera_without_source_is_disconnected_behind_mediamtx(
    ctx: &mut realtest::Ctx,
) -> anyhow::Result<()> {
    let closed = free_port()?;
    let (api, rtsp, hls, webrtc) = (free_port()?, free_port()?, free_port()?, free_port()?);
    let service = ServiceUnderTest::start_with(
        ctx,
        managed(ctx, api, rtsp, hls, webrtc)?
            .env(
                "CAMERA_SERVICE_CAMERAS_SOURCES",
                &format!("rtsp://127.0.0.1:{closed}/none"),
            )
            .env("CAMERA_SERVICE_FFMPEG_START_TIMEOUT", "2s"),
    )?;
    let mut client =
        WsClient::connect_authenticated(&service.ws_url(), &service.token(Role::Operator)).await?;
    let list = client.call_ok("get_camera_list", json!({})).await?;
    assert_eq!(list["cameras"][0]["status"], "DISCONNECTED", "{list}");
    let error = client
        .call_err("take_snapshot", json!({ "device": "camera0" }))
        .await?;
    assert_eq!(error.code, -32006, "{error:?}");
    assert!(error.message.contains("camera0"), "{error:?}");
    let pid = managed_mediamtx_pid(ctx, &service)?;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )?;
    // Restart (1 s backoff), then a check of camera0 that counts (past the settling time after
    // the restart, `ffmpeg.rtsp_timeout`): it finds the path without a stream.
    let deadline = Instant::now() + READY;
    while managed_mediamtx_pid(ctx, &service).map_or(true, |p| p == pid) {
        if Instant::now() > deadline {
            bail!("MediaMTX not restarted");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let restarted = service.output().len();
    service
        .wait_output(
            restarted,
            "a settled presence check of camera0 after the restart",
            READY,
            |line| {
                line.contains("presence checked")
                    && line.contains("camera=camera0")
                    && line.contains("observed=Absent")
                    && line.contains("settling=false")
            },
        )
        .await?;
    client.call_ok("ping", json!({})).await?;
    assert!(
        client.queued_notifications().is_empty(),
        "{:?}",
        client.queued_notifications()
    );
    let status = client
        .call_ok("get_camera_status", json!({ "device": "camera0" }))
        .await?;
    assert_eq!(status["status"], "DISCONNECTED", "{status}");
    Ok(())
}
