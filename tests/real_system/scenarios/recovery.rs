//! Scenario 5 — error scenarios and recovery: the recording FFmpeg killed mid-recording, a
//! WebSocket client dropping and reconnecting, storage made read-only or full, MediaMTX killed
//! with SIGKILL. Each ends with the service alive and usable again.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use camera_service::auth::Role;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use realtest::Ctx;
use serde_json::json;

use super::{direct, expect_started_then, managed, wait_streams_ready, NOTIFY, TESTSRC};
use crate::support::hygiene::PostTestCheck;
use crate::support::mediamtx::managed_mediamtx_pid;
use crate::support::service::{ServiceOptions, ServiceUnderTest};
use crate::support::tmpfs::Tmpfs;
use crate::support::ws_client::WsClient;
use crate::support::{http, media, procfs};

/// Waits until `path` holds at least `bytes` (the recording has written fragments).
async fn wait_for_bytes(path: &Path, bytes: u64) -> anyhow::Result<()> {
    let deadline = Instant::now() + NOTIFY;
    loop {
        let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        if len >= bytes {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "{} stayed at {len} bytes",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A timed recording of `seconds` on camera0 goes STARTED → STOPPED: the camera works again.
async fn records_again(client: &mut WsClient, seconds: u64) -> anyhow::Result<String> {
    let started = client
        .call_ok(
            "start_recording",
            json!({ "device": "camera0", "duration": seconds }),
        )
        .await?;
    let filename = started["filename"].as_str().context("filename")?.to_owned();
    expect_started_then(client, "camera0", &filename, "STOPPED").await?;
    Ok(filename)
}

/// The recording FFmpeg is SIGKILLed mid-recording: every authenticated client gets STARTED
/// then FAILED (naming the signal), the fragmented MP4 written so far is readable at the
/// camera's size, the camera is not left "recording", and it records again.
#[realtest::test(tags = ["needs-ffmpeg"], timeout = "90s")]
async fn real_recovery_ffmpeg_killed_mid_recording_direct(ctx: &mut Ctx) -> anyhow::Result<()> {
    let (w, h, _) = TESTSRC;
    let mut check = PostTestCheck::new();
    {
        let mut service = ServiceUnderTest::start_with(ctx, direct("testsrc"))?;
        check.track_processes_of(service.pid())?;
        check.expect_removed(service.root());
        let mut client = service.client(Role::Operator).await?;
        let mut observer = service.client(Role::Viewer).await?;
        let started = client
            .call_ok("start_recording", json!({ "device": "camera0" }))
            .await?;
        let filename = started["filename"].as_str().context("filename")?.to_owned();
        let path = service.recordings_dir().join(&filename);
        wait_for_bytes(&path, 10_000).await?;
        let children = procfs::children_of(service.pid());
        ensure!(
            children.len() == 1,
            "one recording FFmpeg expected: {children:?}"
        );
        ctx.log(format_args!(
            "SIGKILL {}: {}",
            children[0],
            procfs::cmdline(children[0])
        ));
        kill(Pid::from_raw(children[0]), Signal::SIGKILL)?;
        for who in [&mut client, &mut observer] {
            let failed = expect_started_then(who, "camera0", &filename, "FAILED").await?;
            ensure!(
                failed["error"]
                    .as_str()
                    .is_some_and(|e| e.contains("signal")),
                "the error names the signal: {failed}"
            );
        }
        let info = media::probe(ctx, &path)?;
        assert_eq!(
            (info.codec.as_str(), info.width, info.height),
            ("h264", u64::from(w), u64::from(h))
        );
        ensure!(info.frames.is_some_and(|f| f > 0), "{info:?}");
        let status = client
            .call_ok("get_camera_status", json!({ "device": "camera0" }))
            .await?;
        assert_eq!(status["recording"], false, "{status}");
        let details = client
            .call_ok("get_recording_info", json!({ "filename": filename }))
            .await?;
        assert_eq!(details["recording"], false);
        records_again(&mut client, 1).await?;
        assert!(service.is_running()?);
    }
    check.verify(ctx)
}

/// A client starts a recording and its connection drops without a close frame; a new client
/// sees the recording still running (status, info, −32005 on a second start), stops it and gets
/// STOPPED with the same file and session; 20 orderly and 10 abrupt reconnects later the
/// service counts exactly the one open connection.
#[realtest::test(tags = ["needs-ffmpeg"], timeout = "90s")]
async fn real_recovery_websocket_drop_and_reconnect_direct(ctx: &mut Ctx) -> anyhow::Result<()> {
    let mut check = PostTestCheck::new();
    {
        let service = ServiceUnderTest::start_with(ctx, direct("testsrc"))?;
        check.track_processes_of(service.pid())?;
        check.expect_removed(service.root());
        let mut first = service.client(Role::Operator).await?;
        let started = first
            .call_ok("start_recording", json!({ "device": "camera0" }))
            .await?;
        let filename = started["filename"].as_str().context("filename")?.to_owned();
        drop(first); // TCP closed, no close frame

        let mut second = service.client(Role::Operator).await?;
        let status = second
            .call_ok("get_camera_status", json!({ "device": "camera0" }))
            .await?;
        assert_eq!(status["recording"], true, "{status}");
        let details = second
            .call_ok("get_recording_info", json!({ "filename": filename }))
            .await?;
        assert_eq!(details["recording"], true, "{details}");
        let twice = second
            .call_err("start_recording", json!({ "device": "camera0" }))
            .await?;
        assert_eq!(twice.code, -32005, "{twice:?}");
        let stopped = second
            .call_ok("stop_recording", json!({ "device": "camera0" }))
            .await?;
        assert_eq!(stopped["status"], "STOPPED");
        assert_eq!(stopped["filename"], filename.as_str());
        assert_eq!(stopped["session_id"], started["session_id"]);
        let note = second
            .next_notification("recording_status_update", NOTIFY)
            .await?;
        assert_eq!(
            (note["status"].as_str(), note["filename"].as_str()),
            (Some("STOPPED"), Some(filename.as_str())),
            "{note}"
        );
        let info = media::probe(ctx, &service.recordings_dir().join(&filename))?;
        ensure!(info.frames.is_some_and(|f| f > 0), "{info:?}");

        for _ in 0..20 {
            let mut client = service.client(Role::Viewer).await?;
            assert_eq!(client.call_ok("ping", json!({})).await?, "pong");
            client.close().await?;
        }
        for _ in 0..10 {
            let mut client = WsClient::connect(&service.ws_url(), None).await?;
            assert_eq!(client.call_ok("ping", json!({})).await?, "pong");
            drop(client);
        }
        drop(second);
        let mut admin = service.client(Role::Admin).await?;
        // The server notices closed sockets asynchronously: wait until it counts only this one.
        let deadline = Instant::now() + NOTIFY;
        loop {
            let metrics = admin.call_ok("get_metrics", json!({})).await?;
            if metrics["active_connections"] == 1 {
                break;
            }
            ensure!(
                Instant::now() < deadline,
                "connections still counted: {metrics}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let list = admin.call_ok("list_recordings", json!({})).await?;
        assert_eq!(list["total"], 1);
    }
    check.verify(ctx)
}

/// Storage over the block threshold (here 1 %, the lowest accepted, which any filesystem holding
/// a system exceeds): `start_recording` is −32008 and creates no file; snapshots (not blocked)
/// still work; the service stays up.
#[realtest::test(tags = ["needs-ffmpeg"], timeout = "60s")]
async fn real_recovery_storage_over_block_threshold_direct(ctx: &mut Ctx) -> anyhow::Result<()> {
    let mut check = PostTestCheck::new();
    {
        let mut service = ServiceUnderTest::start_with(
            ctx,
            direct("testsrc")
                .env("CAMERA_SERVICE_STORAGE_WARN_PERCENT", "1")
                .env("CAMERA_SERVICE_STORAGE_BLOCK_PERCENT", "1"),
        )?;
        check.track_processes_of(service.pid())?;
        check.expect_removed(service.root());
        let mut client = service.client(Role::Admin).await?;
        let refused = client
            .call_err("start_recording", json!({ "device": "camera0" }))
            .await?;
        assert_eq!(refused.code, -32008, "{refused:?}");
        assert_eq!(std::fs::read_dir(service.recordings_dir())?.count(), 0);
        assert!(client.queued_notifications().is_empty());
        let snap = client
            .call_ok("take_snapshot", json!({ "device": "camera0" }))
            .await?;
        assert_eq!(snap["status"], "completed");
        let storage = client.call_ok("get_storage_info", json!({})).await?;
        ensure!(
            storage["total_space"].as_u64().is_some_and(|t| t > 0),
            "{storage}"
        );
        assert!(service.is_running()?);
    }
    check.verify(ctx)
}

/// The storage becomes read-only (tmpfs remounted `ro`) under a running service: a snapshot and
/// a recording fail with −32006 (media backend) naming the camera, the camera is reported ERROR,
/// the service stays up; remounted read-write, both work again and the camera is CONNECTED.
#[realtest::test(tags = ["destructive", "needs-root", "needs-ffmpeg"], timeout = "90s")]
async fn real_recovery_storage_read_only_direct(ctx: &mut Ctx) -> anyhow::Result<()> {
    let mut check = PostTestCheck::new();
    let mount_point = ctx.temp_dir()?;
    {
        let tmpfs = Tmpfs::mount(ctx, &mount_point, "32m")?;
        let mut service = ServiceUnderTest::start_with(
            ctx,
            ServiceOptions {
                data_dir: Some(mount_point.join("data")),
                ..direct("testsrc")
            },
        )?;
        check.track_processes_of(service.pid())?;
        check.expect_removed(service.root());
        let mut client = service.client(Role::Operator).await?;
        client
            .call_ok("take_snapshot", json!({ "device": "camera0" }))
            .await?;
        tmpfs.remount(ctx, "ro")?;
        let snap = client
            .call_err("take_snapshot", json!({ "device": "camera0" }))
            .await?;
        assert_eq!(snap.code, -32006, "{snap:?}");
        assert!(snap.message.contains("camera0"), "{snap:?}");
        let update = client
            .wait_notification("camera_status_update", |p| p["device"] == "camera0", NOTIFY)
            .await?;
        assert_eq!(update["status"], "ERROR");
        let rec = client
            .call_err("start_recording", json!({ "device": "camera0" }))
            .await?;
        assert_eq!(rec.code, -32006, "{rec:?}");
        assert!(service.is_running()?);
        assert_eq!(client.call_ok("ping", json!({})).await?, "pong");

        tmpfs.remount(ctx, "rw")?;
        client
            .call_ok("take_snapshot", json!({ "device": "camera0" }))
            .await?;
        let update = client
            .wait_notification("camera_status_update", |p| p["device"] == "camera0", NOTIFY)
            .await?;
        assert_eq!(update["status"], "CONNECTED");
        records_again(&mut client, 1).await?;
        drop(client);
        drop(service);
        drop(tmpfs);
    }
    check.verify(ctx)
}

/// The disk fills up for real (a 4 MiB tmpfs): a running recording is stopped FAILED ("storage
/// full") by the service's check with a readable file; with the disk full, `start_recording` is
/// −32008 and a snapshot −32006; once space is freed both work again.
#[realtest::test(tags = ["destructive", "needs-root", "needs-ffmpeg"], timeout = "120s")]
async fn real_recovery_storage_full_direct(ctx: &mut Ctx) -> anyhow::Result<()> {
    let mut check = PostTestCheck::new();
    let mount_point = ctx.temp_dir()?;
    {
        let tmpfs = Tmpfs::mount(ctx, &mount_point, "4m")?;
        let service = ServiceUnderTest::start_with(
            ctx,
            ServiceOptions {
                data_dir: Some(mount_point.join("data")),
                ..direct("testsrc")
            }
            .env("CAMERA_SERVICE_STORAGE_WARN_PERCENT", "50")
            .env("CAMERA_SERVICE_STORAGE_BLOCK_PERCENT", "60")
            .env("CAMERA_SERVICE_STORAGE_CHECK_INTERVAL", "100ms"),
        )?;
        check.track_processes_of(service.pid())?;
        check.expect_removed(service.root());
        let mut client = service.client(Role::Operator).await?;
        let started = client
            .call_ok("start_recording", json!({ "device": "camera0" }))
            .await?;
        let filename = started["filename"].as_str().context("filename")?.to_owned();
        wait_for_bytes(&service.recordings_dir().join(&filename), 10_000).await?;
        // Push usage over 60 %: 3 MiB of the 4.
        let filler = mount_point.join("filler");
        std::fs::write(&filler, vec![0u8; 3 << 20])?;
        let failed = expect_started_then(&mut client, "camera0", &filename, "FAILED").await?;
        ensure!(
            failed["error"]
                .as_str()
                .is_some_and(|e| e.contains("storage full")),
            "{failed}"
        );
        let info = media::probe(ctx, &service.recordings_dir().join(&filename))?;
        ensure!(info.frames.is_some_and(|f| f > 0), "{info:?}");

        // Fill the rest: no byte left.
        let mut rest = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(mount_point.join("rest"))?;
        let chunk = vec![0u8; 64 << 10];
        loop {
            use std::io::Write;
            if rest.write_all(&chunk).is_err() {
                break;
            }
        }
        drop(rest);
        let refused = client
            .call_err("start_recording", json!({ "device": "camera0" }))
            .await?;
        assert_eq!(refused.code, -32008, "{refused:?}");
        let snap = client
            .call_err("take_snapshot", json!({ "device": "camera0" }))
            .await?;
        assert_eq!(snap.code, -32006, "{snap:?}");

        std::fs::remove_file(&filler)?;
        std::fs::remove_file(mount_point.join("rest"))?;
        client
            .call_ok("take_snapshot", json!({ "device": "camera0" }))
            .await?;
        records_again(&mut client, 1).await?;
        drop(client);
        drop(service);
        drop(tmpfs);
    }
    check.verify(ctx)
}

/// Managed MediaMTX SIGKILLed: clients get exactly `camera_status_update` camera0 ERROR (while
/// MediaMTX is down) then camera0 CONNECTED (once the restarted MediaMTX has the path
/// registered again and its stream is ready), in that order and nothing else; the service
/// started a new MediaMTX (a new pid, its child), registered camera0's path again (API answers
/// for it), the stream plays again, snapshots and recordings work, and no publisher of the
/// killed instance is left behind.
#[realtest::test(tags = ["needs-mediamtx", "needs-ffmpeg"], timeout = "120s")]
async fn real_recovery_mediamtx_sigkill_mediamtx(ctx: &mut Ctx) -> anyhow::Result<()> {
    let (w, h, _) = TESTSRC;
    let mut check = PostTestCheck::new();
    {
        let (options, ports) = managed(ctx, "testsrc")?;
        let options = options.env("CAMERA_SERVICE_CAMERAS_RTSP_CHECK_INTERVAL", "250ms");
        let service = ServiceUnderTest::start_with(ctx, options)?;
        check.track_processes_of(service.pid())?;
        check.expect_removed(service.root());
        let mut client = service.client(Role::Operator).await?;
        wait_streams_ready(&mut client, &["camera0"]).await?;
        let url = ports.rtsp_url("camera0");
        assert_eq!(
            media::probe_stream_frame(ctx, &url, 40)?,
            (u64::from(w), u64::from(h))
        );

        ensure!(
            client.queued_notifications().is_empty(),
            "no notification before the kill: {:?}",
            client.queued_notifications()
        );
        let old = managed_mediamtx_pid(ctx, &service)?;
        ctx.log(format_args!("SIGKILL MediaMTX {old}"));
        kill(Pid::from_raw(old), Signal::SIGKILL)?;
        let deadline = Instant::now() + Duration::from_secs(60);
        let new = loop {
            match managed_mediamtx_pid(ctx, &service) {
                Ok(pid) if pid != old => break pid,
                _ if Instant::now() >= deadline => bail!("no new MediaMTX within 60 s"),
                _ => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        };
        ctx.log(format_args!("restarted MediaMTX {new}"));
        let update = client
            .next_notification("camera_status_update", NOTIFY)
            .await
            .context("no camera_status_update after MediaMTX was killed")?;
        assert_eq!(
            (update["device"].as_str(), update["status"].as_str()),
            (Some("camera0"), Some("ERROR")),
            "{update}"
        );
        // The path lives only in MediaMTX's memory: its presence proves re-registration.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let path = http::get(ports.api_addr(), "/v3/config/paths/get/camera0", &[]);
            match path {
                Ok(response) if response.status == 200 => break,
                _ if Instant::now() >= deadline => {
                    bail!("camera0 not registered again: {path:?}")
                }
                _ => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
        let update = client
            .next_notification("camera_status_update", NOTIFY)
            .await
            .context("no camera_status_update once MediaMTX was back")?;
        assert_eq!(
            (update["device"].as_str(), update["status"].as_str()),
            (Some("camera0"), Some("CONNECTED")),
            "{update}"
        );
        assert_eq!(update["streams"], ports.streams("camera0"), "{update}");
        wait_streams_ready(&mut client, &["camera0"]).await?;
        assert_eq!(
            media::probe_stream_frame(ctx, &url, 40)?,
            (u64::from(w), u64::from(h))
        );
        let snap = client
            .call_ok("take_snapshot", json!({ "device": "camera0" }))
            .await?;
        let still = media::probe(
            ctx,
            &service
                .snapshots_dir()
                .join(snap["filename"].as_str().context("filename")?),
        )?;
        assert_eq!((still.width, still.height), (u64::from(w), u64::from(h)));
        records_again(&mut client, 2).await?;
        ensure!(
            client.queued_notifications().is_empty(),
            "one update per change: {:?}",
            client.queued_notifications()
        );
        // Publishers of camera0 are all under the service (none orphaned by the kill): every
        // process of this test (found by the harness's marker) that publishes camera0's URL.
        let owner = procfs::environ_value(service.pid() as i32, "REALTEST_OWNER")
            .context("the service carries no REALTEST_OWNER marker")?;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ours = procfs::descendants_of(service.pid());
            let orphans: Vec<i32> = procfs::processes_with_env("REALTEST_OWNER", &owner)
                .into_iter()
                .filter(|pid| *pid != service.pid() as i32 && !ours.contains(pid))
                .filter(|pid| procfs::cmdline(*pid).contains(&url))
                .collect();
            if orphans.is_empty() {
                break;
            }
            ensure!(
                Instant::now() < deadline,
                "publishers outside the service: {:?}",
                orphans
                    .iter()
                    .map(|p| procfs::cmdline(*p))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    check.verify(ctx)
}
