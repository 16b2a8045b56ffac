//! Readiness that means it (defect 8: a read-only data directory, or `ffmpeg.binary =
//! /nonexistent`, started with `/ready` → `{"ready":true}` and `get_status` healthy, and every
//! snapshot then failed with an FFmpeg I/O message that did not mention permissions).

use std::process::Command;

use anyhow::Context;
use camera_service::auth::Role;
use realtest::{Ctx, NeedStatus, Probe};
use serde_json::{json, Value};

use crate::support::http;
use crate::support::hygiene::PostTestCheck;
use crate::support::service::{ServiceOptions, ServiceUnderTest};

/// Tag of tests that run the service in a user and mount namespace of its own.
const USERNS: &str = "needs-user-namespace";

/// Whether `unshare --user --map-root-user --mount` works here (user namespaces allowed).
fn user_namespace(_probe: &Probe) -> NeedStatus {
    match Command::new("unshare")
        .args(["--user", "--map-root-user", "--mount", "true"])
        .output()
    {
        Ok(out) if out.status.success() => NeedStatus::Met("unshare --user --mount".into()),
        Ok(out) => NeedStatus::Unmet(format!(
            "unshare --user --map-root-user --mount fails: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => NeedStatus::Unmet(format!("no unshare (util-linux): {e}")),
    }
}

realtest::inventory::submit! {
    realtest::NeedDef { tag: USERNS, hardware: false, check: user_namespace }
}

fn json_of(response: &http::HttpResponse) -> anyhow::Result<Value> {
    serde_json::from_slice(&response.body).with_context(|| response.text())
}

/// `ffmpeg.binary = /nonexistent`: the service starts, `/ready` is 503 with `ready: false` and
/// a problem naming ffmpeg and why; `get_status` is `unhealthy` with `components.ffmpeg` an
/// error; `take_snapshot` fails with −32006 saying FFmpeg cannot start.
#[realtest::test(timeout = "60s")]
async fn real_hardening_missing_ffmpeg_is_not_ready(ctx: &mut Ctx) -> anyhow::Result<()> {
    let mut check = PostTestCheck::new();
    {
        let service = ServiceUnderTest::start_with(
            ctx,
            ServiceOptions {
                allow_unready: true,
                ..ServiceOptions::default()
            }
            .env("CAMERA_SERVICE_FFMPEG_BINARY", "/nonexistent/ffmpeg"),
        )?;
        check.track_processes_of(service.pid())?;
        check.expect_removed(service.root());
        let ready = http::get(service.addr, "/ready", &[])?;
        assert_eq!(ready.status, 503);
        let body = json_of(&ready)?;
        assert_eq!(body["ready"], false, "{body}");
        let problems = body["problems"].to_string();
        assert!(
            problems.contains("ffmpeg: cannot start ffmpeg") && problems.contains("No such file"),
            "{body}"
        );
        let mut admin = service.client(Role::Admin).await?;
        let status = admin.call_ok("get_status", json!({})).await?;
        assert_eq!(status["status"], "unhealthy", "{status}");
        let ffmpeg = status["components"]["ffmpeg"].as_str().unwrap_or_default();
        assert!(ffmpeg.starts_with("error: cannot start ffmpeg"), "{status}");
        assert_eq!(status["components"]["storage"], "ok", "{status}");
        let error = admin
            .call_err("take_snapshot", json!({ "device": "camera0" }))
            .await?;
        assert_eq!(error.code, -32006, "{error:?}");
        assert!(error.message.contains("cannot start ffmpeg"), "{error:?}");
    }
    check.verify(ctx)
}

/// The data directory is a read-only bind mount (in a user and mount namespace made for the
/// service, so nothing outside changes): the service starts, `/ready` is 503 naming the
/// storage directories and "Read-only file system", `get_status` names storage, and
/// `take_snapshot` / `start_recording` fail with −32006 saying the same, not an FFmpeg I/O
/// message.
#[realtest::test(tags = ["needs-user-namespace"], timeout = "60s")]
async fn real_hardening_read_only_storage_is_not_ready(ctx: &mut Ctx) -> anyhow::Result<()> {
    let mut check = PostTestCheck::new();
    let data_dir = ctx.temp_dir()?.join("data");
    for dir in ["recordings", "snapshots"] {
        std::fs::create_dir_all(data_dir.join(dir))?;
    }
    let secret = data_dir.join("jwt-secret");
    std::fs::write(&secret, "0123456789abcdef0123456789abcdef0123456789abcdef")?;
    std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    {
        let wrapper = [
            "unshare",
            "--user",
            "--map-root-user",
            "--mount",
            "sh",
            "-c",
            r#"mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && shift && exec "$@""#,
            "sh",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .chain([data_dir.display().to_string()])
        .collect();
        let service = ServiceUnderTest::start_with(
            ctx,
            ServiceOptions {
                data_dir: Some(data_dir.clone()),
                wrapper,
                allow_unready: true,
                ..crate::scenarios::direct("testsrc")
            },
        )?;
        check.track_processes_of(service.pid())?;
        check.expect_removed(service.root());
        let ready = http::get(service.addr, "/ready", &[])?;
        assert_eq!(ready.status, 503);
        let body = json_of(&ready)?;
        assert_eq!(body["ready"], false, "{body}");
        let problems = body["problems"].to_string();
        assert!(
            problems.contains("storage: recordings directory is not writable")
                && problems.contains("Read-only file system"),
            "{body}"
        );
        let mut admin = service.client(Role::Admin).await?;
        let status = admin.call_ok("get_status", json!({})).await?;
        assert_eq!(status["status"], "unhealthy", "{status}");
        let storage = status["components"]["storage"].as_str().unwrap_or_default();
        assert!(
            storage.starts_with("error: recordings directory"),
            "{status}"
        );
        for (method, params) in [
            ("take_snapshot", json!({ "device": "camera0" })),
            ("start_recording", json!({ "device": "camera0" })),
        ] {
            let error = admin.call_err(method, params).await?;
            assert_eq!(error.code, -32006, "{method}: {error:?}");
            assert!(
                error.message.contains("Read-only file system"),
                "{method}: {error:?}"
            );
        }
        assert_eq!(std::fs::read_dir(data_dir.join("snapshots"))?.count(), 0);
    }
    check.verify(ctx)
}
