//! Scenario 1 — startup and health: the process is up, its API answers 2xx, the config is the
//! one written, the storage directories exist.

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use anyhow::ensure;
use camera_service::auth::Role;
use nix::sys::signal::Signal;
use realtest::Ctx;
use serde_json::{json, Value};

use super::{direct, managed, wait_streams_ready, TESTSRC};
use crate::support::hygiene::{check_empty, PostTestCheck};
use crate::support::mediamtx::{managed_mediamtx_pid, RealMediaMTXServer};
use crate::support::service::ServiceUnderTest;
use crate::support::{http, media, procfs};

fn json_of(response: &http::HttpResponse) -> anyhow::Result<Value> {
    Ok(serde_json::from_slice(&response.body)?)
}

/// Direct backend: `/health` and `/ready` answer with the exact bodies, the storage directories
/// and the private JWT secret exist, `get_status`/`get_server_info` name the backend, and the
/// backend really works (a snapshot of the camera's size).
#[realtest::test(tags = ["needs-ffmpeg"], timeout = "60s")]
async fn real_startup_direct_service_health(ctx: &mut Ctx) -> anyhow::Result<()> {
    let mut check = PostTestCheck::new();
    {
        let service = ServiceUnderTest::start_with(ctx, direct("testsrc"))?;
        check.track_processes_of(service.pid())?;
        check.expect_removed(service.root());
        let health = http::get(service.addr, "/health", &[])?;
        assert_eq!(health.status, 200);
        assert_eq!(json_of(&health)?, json!({ "status": "ok" }));
        let ready = http::get(service.addr, "/ready", &[])?;
        assert_eq!(ready.status, 200);
        assert_eq!(
            json_of(&ready)?,
            json!({ "ready": true, "cameras": 1, "backend": "ffmpeg" })
        );
        assert!(service.recordings_dir().is_dir() && service.snapshots_dir().is_dir());
        let secret = std::fs::metadata(service.data_dir.join("jwt-secret"))?;
        assert_eq!(secret.permissions().mode() & 0o777, 0o600);

        let mut admin = service.client(Role::Admin).await?;
        let status = admin.call_ok("get_status", json!({})).await?;
        assert_eq!(status["status"], "healthy");
        assert_eq!(status["components"]["media_backend"], "ffmpeg");
        assert_eq!(status["components"]["websocket_server"], "running");
        assert_eq!(status["active_recordings"], 0);
        let info = admin.call_ok("get_server_info", json!({})).await?;
        assert_eq!(info["backend"], "ffmpeg");
        assert_eq!(info["max_cameras"], 1);

        let snap = admin
            .call_ok("take_snapshot", json!({ "device": "camera0" }))
            .await?;
        let name = snap["filename"].as_str().unwrap_or_default();
        let probed = media::probe(ctx, &service.snapshots_dir().join(name))?;
        assert_eq!(
            (probed.codec.as_str(), probed.width, probed.height),
            ("mjpeg", u64::from(TESTSRC.0), u64::from(TESTSRC.1))
        );
        check_empty(&service.tmp_dir)?;
    }
    check.verify(ctx)
}

/// A real MediaMTX from a config written before start: up, API 2xx, the global config it
/// reports is the one written (API and RTSP on loopback, other protocols off), `all_others` is
/// the only path configuration and no path exists yet, unknown routes are 404, SIGINT (what the
/// service stops its MediaMTX with) ends it gracefully with exit code 0.
#[realtest::test(tags = ["needs-mediamtx"], timeout = "60s")]
fn real_startup_mediamtx_server_health(ctx: &mut Ctx) -> anyhow::Result<()> {
    let mut check = PostTestCheck::new();
    {
        let mut server = RealMediaMTXServer::start(ctx)?;
        check.track_processes_of(server.pid())?;
        check.expect_removed(server.dir().to_path_buf());
        assert_eq!(
            std::fs::read_to_string(&server.config_path)?,
            server.config,
            "the config file is left as written"
        );
        let (status, global) = server.api_get("/v3/config/global/get")?;
        assert_eq!(status, 200, "{global}");
        assert_eq!(global["api"], true);
        assert_eq!(
            global["apiAddress"],
            format!("127.0.0.1:{}", server.api_port)
        );
        assert_eq!(
            global["rtspAddress"],
            format!("127.0.0.1:{}", server.rtsp_port)
        );
        for off in [
            "rtmp", "hls", "webrtc", "srt", "metrics", "pprof", "playback",
        ] {
            assert_eq!(global[off], false, "{off} must be off: {global}");
        }
        let (status, paths) = server.api_get("/v3/config/paths/list")?;
        assert_eq!(status, 200, "{paths}");
        let names: Vec<&str> = paths["items"]
            .as_array()
            .map(|items| items.iter().filter_map(|i| i["name"].as_str()).collect())
            .unwrap_or_default();
        assert_eq!(names, ["all_others"], "{paths}");
        let (status, live) = server.api_get("/v3/paths/list")?;
        assert_eq!(status, 200);
        assert_eq!(live["itemCount"], 0, "{live}");
        let (status, _) = server.api_get("/v3/no/such/route")?;
        assert_eq!(status, 404);
        let (status, body) = server.api_get("/v3/paths/get/nobody")?;
        assert_eq!(status, 404, "{body}");
        // Every release shuts down gracefully on SIGINT (`os.Interrupt`, internal/core/core.go);
        // on SIGTERM only since v1.14.0.
        let pid = server.pid() as i32;
        server.signal(Signal::SIGINT)?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while procfs::is_alive(pid) {
            ensure!(
                Instant::now() < deadline,
                "MediaMTX ignored SIGINT for 10 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let exit = server.stop(Duration::from_secs(10))?;
        assert_eq!(exit.code(), Some(0), "SIGINT is a graceful exit: {exit:?}");
    }
    check.verify(ctx)
}

/// Managed MediaMTX: the service writes `mediamtx.yml` into its data directory, starts MediaMTX
/// as its child, the MediaMTX API reports the written ports, camera0's path is registered
/// (`runOnInit` publisher of the test pattern) and gets a stream, `/ready` names the backend.
#[realtest::test(tags = ["needs-mediamtx", "needs-ffmpeg"], timeout = "120s")]
async fn real_startup_managed_mediamtx_health(ctx: &mut Ctx) -> anyhow::Result<()> {
    let mut check = PostTestCheck::new();
    {
        let (options, ports) = managed(ctx, "testsrc")?;
        let service = ServiceUnderTest::start_with(ctx, options)?;
        check.track_processes_of(service.pid())?;
        check.expect_removed(service.root());
        let config = std::fs::read_to_string(service.data_dir.join("mediamtx.yml"))?;
        for line in [
            format!("apiAddress: 127.0.0.1:{}", ports.api),
            format!("rtspAddress: 127.0.0.1:{}", ports.rtsp),
            "api: yes".to_owned(),
        ] {
            ensure!(
                config.lines().any(|l| l == line),
                "`{line}` missing:\n{config}"
            );
        }
        let mtx = managed_mediamtx_pid(ctx, &service)?;
        ctx.log(format_args!("managed MediaMTX pid {mtx}"));
        let api = ports.api_addr();
        let global = http::get(api, "/v3/config/global/get", &[])?;
        assert_eq!(global.status, 200);
        let global = json_of(&global)?;
        assert_eq!(global["apiAddress"], format!("127.0.0.1:{}", ports.api));
        assert_eq!(global["rtspAddress"], format!("127.0.0.1:{}", ports.rtsp));
        let path = http::get(api, "/v3/config/paths/get/camera0", &[])?;
        assert_eq!(path.status, 200, "{}", path.text());
        let path = json_of(&path)?;
        assert_eq!(path["source"], "publisher");
        assert!(
            path["runOnInit"]
                .as_str()
                .is_some_and(|c| c.contains("testsrc2") && c.contains(&ports.rtsp_url("camera0"))),
            "{path}"
        );
        let ready = json_of(&http::get(service.addr, "/ready", &[])?)?;
        assert_eq!(
            ready,
            json!({ "ready": true, "cameras": 1, "backend": "mediamtx" })
        );
        assert!(service.recordings_dir().is_dir() && service.snapshots_dir().is_dir());
        let mut client = service.client(Role::Viewer).await?;
        wait_streams_ready(&mut client, &["camera0"]).await?;
    }
    check.verify(ctx)
}
