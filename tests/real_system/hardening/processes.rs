//! A bound on media FFmpeg processes (defect 5: a burst of 100 `take_snapshot` on one
//! connection ran 99 FFmpeg processes at once, −745 MB of available memory).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use camera_service::auth::Role;
use realtest::Ctx;
use serde_json::json;

use crate::scenarios::direct;
use crate::support::hygiene::PostTestCheck;
use crate::support::procfs;
use crate::support::service::ServiceUnderTest;
use crate::support::ws_client::{error_of, WsClient};

/// The most children of `pid` seen at once while it runs, sampled by a thread.
struct ChildCounter {
    stop: Arc<AtomicBool>,
    most: Arc<AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ChildCounter {
    fn start(pid: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let most = Arc::new(AtomicUsize::new(0));
        let thread = {
            let (stop, most) = (Arc::clone(&stop), Arc::clone(&most));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    most.fetch_max(procfs::children_of(pid).len(), Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(5));
                }
            })
        };
        Self {
            stop,
            most,
            thread: Some(thread),
        }
    }

    /// Stops sampling and returns the largest count seen.
    fn finish(mut self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.most.load(Ordering::Relaxed)
    }
}

/// Sends `count` snapshots of `device` back to back on `client`; returns (completed names,
/// busy errors). Any other outcome fails.
async fn snapshot_burst(
    client: &mut WsClient,
    device: &str,
    count: usize,
) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    for _ in 0..count {
        client
            .send_request("take_snapshot", json!({ "device": device }))
            .await?;
    }
    let (mut completed, mut busy) = (Vec::new(), Vec::new());
    for _ in 0..count {
        let reply = client.next_response(Duration::from_secs(150)).await?;
        match (reply.get("result"), error_of(&reply)) {
            (Some(result), _) if result["status"] == "completed" => {
                completed.push(result["filename"].as_str().context("filename")?.to_owned());
            }
            (_, Some(error)) if error.code == -32009 => busy.push(error.message),
            _ => bail!("unexpected reply: {reply}"),
        }
    }
    Ok((completed, busy))
}

/// Two cameras, `ffmpeg.max_processes` 3, `max_processes_per_camera` 2, a long queue timeout:
/// a burst of 40 snapshots of one camera never runs more than 2 FFmpeg at once (children
/// sampled), bursts of 40 on each camera together never more than 3, and all 120 complete
/// with 120 files.
#[realtest::test(tags = ["needs-ffmpeg"], timeout = "300s")]
async fn real_hardening_snapshot_bursts_run_a_bounded_number_of_ffmpeg(
    ctx: &mut Ctx,
) -> anyhow::Result<()> {
    let mut check = PostTestCheck::new();
    {
        let service = ServiceUnderTest::start_with(
            ctx,
            direct("testsrc,testsrc")
                .env("CAMERA_SERVICE_FFMPEG_MAX_PROCESSES", "3")
                .env("CAMERA_SERVICE_FFMPEG_MAX_PROCESSES_PER_CAMERA", "2")
                .env("CAMERA_SERVICE_FFMPEG_QUEUE_TIMEOUT", "2m"),
        )?;
        check.track_processes_of(service.pid())?;
        check.expect_removed(service.root());
        let mut first = service.client(Role::Operator).await?;
        let mut second = service.client(Role::Operator).await?;

        let counter = ChildCounter::start(service.pid());
        let (one_camera, busy) = snapshot_burst(&mut first, "camera0", 40).await?;
        let most = counter.finish();
        ctx.log(format_args!("one camera: at most {most} children"));
        assert!(busy.is_empty(), "{busy:?}");
        assert!(most <= 2, "{most} FFmpeg at once for one camera (limit 2)");

        let counter = ChildCounter::start(service.pid());
        let (a, b) = tokio::join!(
            snapshot_burst(&mut first, "camera0", 40),
            snapshot_burst(&mut second, "camera1", 40)
        );
        let most = counter.finish();
        ctx.log(format_args!("two cameras: at most {most} children"));
        let ((a, busy_a), (b, busy_b)) = (a?, b?);
        assert!(
            busy_a.is_empty() && busy_b.is_empty(),
            "{busy_a:?} {busy_b:?}"
        );
        assert!(most <= 3, "{most} FFmpeg at once (limit 3)");
        let mut all: Vec<String> = one_camera.into_iter().chain(a).chain(b).collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 120);
        assert_eq!(std::fs::read_dir(service.snapshots_dir())?.count(), 120);
    }
    check.verify(ctx)
}

/// `ffmpeg.max_processes` 1 and no waiting (`queue_timeout` 0 s): of 10 snapshots sent at once
/// each gets an answer — `completed`, or −32009 naming the limit — at least one is busy, and
/// exactly the completed ones are on disk.
#[realtest::test(tags = ["needs-ffmpeg"], timeout = "120s")]
async fn real_hardening_snapshots_past_the_limit_are_busy_not_dropped(
    ctx: &mut Ctx,
) -> anyhow::Result<()> {
    let mut check = PostTestCheck::new();
    {
        let service = ServiceUnderTest::start_with(
            ctx,
            direct("testsrc")
                .env("CAMERA_SERVICE_FFMPEG_MAX_PROCESSES", "1")
                .env("CAMERA_SERVICE_FFMPEG_MAX_PROCESSES_PER_CAMERA", "1")
                .env("CAMERA_SERVICE_FFMPEG_QUEUE_TIMEOUT", "0s"),
        )?;
        check.track_processes_of(service.pid())?;
        check.expect_removed(service.root());
        let mut client = service.client(Role::Operator).await?;
        let (completed, busy) = snapshot_burst(&mut client, "camera0", 10).await?;
        ctx.log(format_args!(
            "{} completed, {} busy",
            completed.len(),
            busy.len()
        ));
        assert!(
            !busy.is_empty(),
            "none of 10 at once was refused with 1 slot"
        );
        for message in &busy {
            assert!(
                message.contains("busy") && message.contains("ffmpeg.max_processes_per_camera = 1"),
                "{message}"
            );
        }
        assert_eq!(completed.len() + busy.len(), 10);
        let mut on_disk: Vec<String> = std::fs::read_dir(service.snapshots_dir())?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        on_disk.sort();
        let mut completed = completed;
        completed.sort();
        assert_eq!(on_disk, completed);
    }
    check.verify(ctx)
}
