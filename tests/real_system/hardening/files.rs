//! Snapshot and recording files: no snapshot lost to a name collision (defect 4: 30 snapshots
//! sent back to back gave 25 files, all 30 replies said `completed`), nothing written through a
//! planted symbolic link or over an existing file (defect 6).

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{ensure, Context};
use camera_service::auth::Role;
use realtest::Ctx;
use serde_json::json;

use crate::scenarios::{direct, NOTIFY};
use crate::support::hygiene::{check_empty, PostTestCheck};
use crate::support::media;
use crate::support::service::ServiceUnderTest;
use crate::support::ws_client::{error_of, WsClient};

/// Snapshots sent back to back.
const BURST: usize = 30;
/// Connections they are sent on, `BURST / CONNECTIONS` each.
const CONNECTIONS: usize = 3;

/// File names in `dir`.
fn names(dir: &Path) -> anyhow::Result<BTreeSet<String>> {
    Ok(std::fs::read_dir(dir)?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect())
}

/// Sends `count` requests at once and collects every reply.
async fn burst(
    client: &mut WsClient,
    count: usize,
    method: &str,
    params: serde_json::Value,
) -> anyhow::Result<Vec<serde_json::Value>> {
    for _ in 0..count {
        client.send_request(method, params.clone()).await?;
    }
    let mut replies = Vec::new();
    for _ in 0..count {
        replies.push(client.next_response(Duration::from_secs(120)).await?);
    }
    Ok(replies)
}

/// 30 `take_snapshot` with default names sent back to back on three connections (many within
/// the same millisecond): 30 `completed` replies with 30 distinct names, exactly those 30 files in
/// `snapshots/`, each a JPEG of the camera's size (ffprobe).
#[realtest::test(tags = ["needs-ffmpeg"], timeout = "180s")]
async fn real_hardening_concurrent_snapshots_give_distinct_files(
    ctx: &mut Ctx,
) -> anyhow::Result<()> {
    let mut check = PostTestCheck::new();
    {
        let service = ServiceUnderTest::start_with(ctx, direct("testsrc"))?;
        check.track_processes_of(service.pid())?;
        check.expect_removed(service.root());
        // Several connections at once, so their requests are read in parallel.
        let mut clients = Vec::new();
        for _ in 0..CONNECTIONS {
            clients.push(service.client(Role::Operator).await?);
        }
        let bursts = clients.iter_mut().map(|client| {
            burst(
                client,
                BURST / CONNECTIONS,
                "take_snapshot",
                json!({ "device": "camera0" }),
            )
        });
        let mut replies = Vec::new();
        for result in futures_util::future::join_all(bursts).await {
            replies.extend(result?);
        }
        let mut reported = BTreeSet::new();
        for reply in &replies {
            let result = reply.get("result").with_context(|| format!("{reply}"))?;
            assert_eq!(result["status"], "completed", "{reply}");
            reported.insert(result["filename"].as_str().context("filename")?.to_owned());
        }
        assert_eq!(reported.len(), BURST, "distinct names: {reported:?}");
        assert_eq!(names(&service.snapshots_dir())?, reported);
        let (w, h, _) = crate::scenarios::TESTSRC;
        for name in &reported {
            let info = media::probe(ctx, &service.snapshots_dir().join(name))?;
            assert_eq!(
                (info.codec.as_str(), info.width, info.height),
                ("mjpeg", u64::from(w), u64::from(h)),
                "{name}"
            );
        }
        check_empty(&service.tmp_dir)?;
    }
    check.verify(ctx)
}

/// In `snapshots/`: a symbolic link to a file outside the data directory, a dangling link to a
/// path outside, and an existing snapshot. `take_snapshot` with each name is −32602 naming the
/// file; the link target keeps its content, the dangling target is not created, the existing
/// file keeps its bytes, the links stay links. In `recordings/`: links planted at the default
/// names of the next seconds; `start_recording` picks another name and writes a real file, and
/// no target is touched.
#[realtest::test(tags = ["needs-ffmpeg"], timeout = "120s")]
async fn real_hardening_planted_links_and_taken_names_are_refused(
    ctx: &mut Ctx,
) -> anyhow::Result<()> {
    let mut check = PostTestCheck::new();
    let outside = ctx.temp_dir()?;
    {
        let service = ServiceUnderTest::start_with(ctx, direct("testsrc"))?;
        check.track_processes_of(service.pid())?;
        check.expect_removed(service.root());
        let target = outside.join("precious.txt");
        std::fs::write(&target, "precious")?;
        let dangling = outside.join("created-through-a-link.jpg");
        let snapshots = service.snapshots_dir();
        std::os::unix::fs::symlink(&target, snapshots.join("evil.jpg"))?;
        std::os::unix::fs::symlink(&dangling, snapshots.join("dangling.jpg"))?;
        std::fs::write(snapshots.join("taken.jpg"), "an earlier snapshot")?;
        let mut client = service.client(Role::Operator).await?;
        for name in ["evil", "evil.jpg", "dangling.jpg", "taken.jpg"] {
            let error = client
                .call_err(
                    "take_snapshot",
                    json!({ "device": "camera0", "filename": name }),
                )
                .await?;
            assert_eq!(error.code, -32602, "{name}: {error:?}");
            assert!(
                error.message.contains("already exists"),
                "{name}: {error:?}"
            );
            let file = if name.ends_with(".jpg") {
                name.to_owned()
            } else {
                format!("{name}.jpg")
            };
            assert!(error.message.contains(&file), "{name}: {error:?}");
        }
        assert_eq!(std::fs::read_to_string(&target)?, "precious");
        assert!(
            !dangling.exists(),
            "a file was created through the dangling link"
        );
        assert_eq!(
            std::fs::read_to_string(snapshots.join("taken.jpg"))?,
            "an earlier snapshot"
        );
        for link in ["evil.jpg", "dangling.jpg"] {
            ensure!(
                std::fs::symlink_metadata(snapshots.join(link))?
                    .file_type()
                    .is_symlink(),
                "{link} is no longer a link"
            );
        }

        // The service's own recording names: `camera0_<local time>.mp4`.
        let recordings = service.recordings_dir();
        let mut planted = BTreeSet::new();
        for offset in 0..6 {
            let stamp = ctx.output(
                Command::new("date")
                    .arg("-d")
                    .arg(format!("+{offset} seconds"))
                    .arg("+%Y-%m-%d_%H-%M-%S"),
                Duration::from_secs(10),
            )?;
            let name = format!("camera0_{}.mp4", String::from_utf8(stamp.stdout)?.trim());
            std::os::unix::fs::symlink(&target, recordings.join(&name))?;
            planted.insert(name);
        }
        let started = client
            .call_ok(
                "start_recording",
                json!({ "device": "camera0", "duration": 1 }),
            )
            .await?;
        let file = started["filename"].as_str().context("filename")?.to_owned();
        ensure!(
            !planted.contains(&file),
            "recorded into a planted link: {file}"
        );
        client
            .wait_notification(
                "recording_status_update",
                |p| p["filename"] == file.as_str() && p["status"] == "STOPPED",
                NOTIFY,
            )
            .await?;
        let meta = std::fs::symlink_metadata(recordings.join(&file))?;
        ensure!(meta.is_file() && meta.len() > 0, "{file}: {meta:?}");
        assert!(media::probe(ctx, &recordings.join(&file))?
            .frames
            .is_some_and(|f| f > 0));
        assert_eq!(std::fs::read_to_string(&target)?, "precious");
        let error = client
            .call(
                "take_snapshot",
                json!({ "device": "camera0", "filename": "fresh" }),
            )
            .await?;
        ensure!(
            error_of(&error).is_none(),
            "a free name still works: {error}"
        );
    }
    check.verify(ctx)
}
