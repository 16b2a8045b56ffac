//! Viewer and admin methods: result shapes and values.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use camera_service::auth::Role;
use serde_json::json;

use crate::support::http;
use crate::support::service::ServiceUnderTest;
use crate::support::ws_client::WsClient;

#[realtest::test(timeout = "60s")]
async fn health_and_ready_answer(ctx: &mut realtest::Ctx) -> anyhow::Result<()> {
    let service = ServiceUnderTest::start(ctx)?;
    let health = http::get(service.addr, "/health", &[])?;
    assert_eq!(health.status, 200);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&health.body)?["status"],
        "ok"
    );
    let ready = http::get(service.addr, "/ready", &[])?;
    assert_eq!(ready.status, 200);
    let body: serde_json::Value = serde_json::from_slice(&ready.body)?;
    assert_eq!(body["ready"], true);
    assert_eq!(body["backend"], "ffmpeg");
    assert_eq!(http::get(service.addr, "/nope", &[])?.status, 404);
    Ok(())
}

#[realtest::test(timeout = "60s")]
async fn camera_list_status_and_capabilities(ctx: &mut realtest::Ctx) -> anyhow::Result<()> {
    let service = ServiceUnderTest::start(ctx)?;
    let mut client =
        WsClient::connect_authenticated(&service.ws_url(), &service.token(Role::Viewer)).await?;
    let list = client.call_ok("get_camera_list", json!({})).await?;
    assert_eq!(list["total"], 1);
    assert_eq!(list["connected"], 1);
    let camera = &list["cameras"][0];
    assert_eq!(camera["device"], "camera0");
    assert_eq!(camera["status"], "CONNECTED");
    assert_eq!(camera["resolution"], "640x480");
    assert_eq!(camera["fps"], 30);
    assert_eq!(
        camera["streams"],
        json!({}),
        "no stream URLs without MediaMTX"
    );
    let status = client
        .call_ok("get_camera_status", json!({ "device": "camera0" }))
        .await?;
    assert_eq!(status["device"], "camera0");
    assert_eq!(status["recording"], false);
    assert_eq!(status["capabilities"]["resolutions"], json!(["640x480"]));
    let caps = client
        .call_ok("get_camera_capabilities", json!({ "device": "camera0" }))
        .await?;
    assert_eq!(caps["fps"], json!([30]));
    assert_eq!(client.call_ok("get_streams", json!({})).await?, json!([]));
    let listed = client.call_ok("list_recordings", json!({})).await?;
    assert_eq!(listed["files"], json!([]));
    assert_eq!(listed["total"], 0);
    assert_eq!(listed["limit"], 100);
    Ok(())
}

#[realtest::test(timeout = "60s")]
async fn admin_methods_report_the_service(ctx: &mut realtest::Ctx) -> anyhow::Result<()> {
    let service = ServiceUnderTest::start(ctx)?;
    let mut client =
        WsClient::connect_authenticated(&service.ws_url(), &service.token(Role::Admin)).await?;
    // Two files 40 days old and one new, as retention sees them (by modification time).
    let forty_days_ago = SystemTime::now() - Duration::from_secs(40 * 86_400);
    let old_recording = put_file(&service.recordings_dir(), "old.mp4", 2000, forty_days_ago)?;
    let old_snapshot = put_file(&service.snapshots_dir(), "old.jpg", 1000, forty_days_ago)?;
    let new_snapshot = put_file(&service.snapshots_dir(), "new.jpg", 500, SystemTime::now())?;
    let storage = client.call_ok("get_storage_info", json!({})).await?;
    let total = storage["total_space"].as_u64().context("total_space")?;
    let used = storage["used_space"].as_u64().context("used_space")?;
    assert!(total > 0 && used <= total, "{storage}");
    assert_eq!(storage["recordings_size"], 2000);
    assert_eq!(storage["block_threshold_percent"], 90);
    let status = client.call_ok("get_status", json!({})).await?;
    assert_eq!(status["status"], "healthy");
    assert_eq!(status["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(status["components"]["media_backend"], "ffmpeg");
    let info = client.call_ok("get_server_info", json!({})).await?;
    assert_eq!(info["name"], "camera-service");
    assert_eq!(info["max_cameras"], 1);
    let metrics = client.call_ok("get_metrics", json!({})).await?;
    assert_eq!(metrics["active_connections"], 1);
    assert!(metrics["total_requests"].as_u64() >= Some(4), "{metrics}");
    assert!(metrics["memory_usage"].as_u64() > Some(0), "{metrics}");
    // The default policy (manual) deletes nothing, however old.
    let cleanup = client.call_ok("cleanup_old_files", json!({})).await?;
    assert_eq!(cleanup["cleanup_executed"], false, "{cleanup}");
    assert_eq!(cleanup["files_deleted"], 0, "{cleanup}");
    assert!(old_recording.exists() && old_snapshot.exists());
    let policy = client
        .call_ok(
            "set_retention_policy",
            json!({ "policy_type": "age", "max_age_days": 30, "enabled": true }),
        )
        .await?;
    assert_eq!(policy["policy_type"], "age");
    let cleanup = client.call_ok("cleanup_old_files", json!({})).await?;
    assert_eq!(cleanup["cleanup_executed"], true, "{cleanup}");
    assert_eq!(cleanup["files_deleted"], 2, "{cleanup}");
    assert_eq!(cleanup["space_freed"], 3000, "{cleanup}");
    assert!(!old_recording.exists() && !old_snapshot.exists() && new_snapshot.exists());
    let snapshots = client.call_ok("list_snapshots", json!({})).await?;
    assert_eq!(snapshots["total"], 1, "{snapshots}");
    assert_eq!(snapshots["files"][0]["filename"], "new.jpg");
    // A size limit below what is left deletes the oldest files until it is met.
    client
        .call_ok(
            "set_retention_policy",
            json!({ "policy_type": "size", "max_size_gb": 0.0000004, "enabled": true }),
        )
        .await?;
    let cleanup = client.call_ok("cleanup_old_files", json!({})).await?;
    assert_eq!(
        (&cleanup["files_deleted"], &cleanup["space_freed"]),
        (&json!(1), &json!(500)),
        "{cleanup}"
    );
    assert!(!new_snapshot.exists());
    Ok(())
}

/// Writes `size` bytes to `dir/name` with modification time `modified`.
fn put_file(dir: &Path, name: &str, size: usize, modified: SystemTime) -> anyhow::Result<PathBuf> {
    let path = dir.join(name);
    std::fs::write(&path, vec![0u8; size])?;
    std::fs::File::options()
        .write(true)
        .open(&path)?
        .set_modified(modified)?;
    Ok(path)
}
