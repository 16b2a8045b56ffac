//! The service's FFmpeg children live as long as their work, not as long as the runtime thread
//! that asked for them: `PR_SET_PDEATHSIG` fires when the forking thread exits, and tokio's
//! threads are blocking-pool threads that end after 10 s without work.

use std::time::Duration;

use camera_service::auth::Role;
use serde_json::json;

use crate::support::service::ServiceUnderTest;
use crate::support::ws_client::WsClient;
use crate::support::{media, procfs};

/// Longer than tokio's blocking-pool idle keep-alive (10 s), which the daemon keeps.
const SECONDS: u64 = 13;

#[realtest::test(tags = ["needs-ffmpeg"], timeout = "120s")]
async fn a_recording_outlives_the_idle_keep_alive_of_runtime_threads(
    ctx: &mut realtest::Ctx,
) -> anyhow::Result<()> {
    let service = ServiceUnderTest::start(ctx)?;
    let mut client =
        WsClient::connect_authenticated(&service.ws_url(), &service.token(Role::Operator)).await?;
    let started = client
        .call_ok(
            "start_recording",
            json!({ "device": "camera0", "duration": SECONDS }),
        )
        .await?;
    let filename = started["filename"].as_str().expect("filename").to_owned();
    let ffmpeg = procfs::children_of(service.pid());
    assert_eq!(ffmpeg.len(), 1, "one recording FFmpeg: {ffmpeg:?}");
    let stopped = client
        .wait_notification(
            "recording_status_update",
            |p| p["status"] != "STARTED",
            Duration::from_secs(SECONDS + 60),
        )
        .await?;
    assert_eq!(stopped["status"], "STOPPED", "{stopped}");
    assert_eq!(stopped["filename"], filename.as_str());
    let info = media::probe(ctx, &service.recordings_dir().join(&filename))?;
    // `-t 13` at 30 fps: FFmpeg ran to its own end, it was not killed on the way.
    assert_eq!(info.frames, Some(SECONDS * 30), "{info:?}");
    Ok(())
}
