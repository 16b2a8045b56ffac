//! A recording whose FFmpeg dies unasked (defect 9: SIGKILL of the recording's FFmpeg left the
//! camera CONNECTED with no `camera_status_update`, while the documented rule is that a failed
//! recording sets ERROR).

use std::time::Duration;

use anyhow::Context;
use camera_service::auth::Role;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use realtest::Ctx;
use serde_json::json;

use crate::scenarios::{direct, NOTIFY};
use crate::support::hygiene::PostTestCheck;
use crate::support::procfs;
use crate::support::service::ServiceUnderTest;

/// The recording FFmpeg of a test-pattern camera is killed with SIGKILL: the recording ends
/// `FAILED` with an error naming the signal, the camera gets one `camera_status_update` to
/// `ERROR` and `get_camera_status` says so, the partial (fragmented) file stays; a snapshot
/// that succeeds afterwards makes it `CONNECTED` again.
#[realtest::test(tags = ["needs-ffmpeg"], timeout = "90s")]
async fn real_hardening_killed_recording_ffmpeg_sets_error(ctx: &mut Ctx) -> anyhow::Result<()> {
    let mut check = PostTestCheck::new();
    {
        let service = ServiceUnderTest::start_with(ctx, direct("testsrc"))?;
        check.track_processes_of(service.pid())?;
        check.expect_removed(service.root());
        let mut client = service.client(Role::Operator).await?;
        let started = client
            .call_ok("start_recording", json!({ "device": "camera0" }))
            .await?;
        let file = started["filename"].as_str().context("filename")?.to_owned();
        let ffmpeg = procfs::children_of(service.pid())
            .into_iter()
            .find(|pid| procfs::cmdline(*pid).contains("ffmpeg"))
            .context("no recording FFmpeg among the service's children")?;
        // Let it write a little, then kill it as the OOM killer would.
        tokio::time::sleep(Duration::from_secs(1)).await;
        kill(Pid::from_raw(ffmpeg), Signal::SIGKILL)?;
        let failed = client
            .wait_notification(
                "recording_status_update",
                |p| p["filename"] == file.as_str() && p["status"] != "STARTED",
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
        let update = client
            .wait_notification("camera_status_update", |p| p["device"] == "camera0", NOTIFY)
            .await?;
        assert_eq!(update["status"], "ERROR", "{update}");
        let status = client
            .call_ok("get_camera_status", json!({ "device": "camera0" }))
            .await?;
        assert_eq!(status["status"], "ERROR", "{status}");
        assert_eq!(status["recording"], false, "{status}");
        assert!(service.recordings_dir().join(&file).is_file());

        client
            .call_ok("take_snapshot", json!({ "device": "camera0" }))
            .await?;
        let update = client
            .wait_notification("camera_status_update", |p| p["device"] == "camera0", NOTIFY)
            .await?;
        assert_eq!(update["status"], "CONNECTED", "{update}");
        assert!(
            !client
                .queued_notifications()
                .iter()
                .any(|n| n["method"] == "camera_status_update"),
            "one update per change: {:?}",
            client.queued_notifications()
        );
    }
    check.verify(ctx)
}
