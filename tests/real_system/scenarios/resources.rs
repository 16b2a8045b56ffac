//! Scenario 6 — resource management and cleanup: after many recordings, snapshots and
//! connections the service has no extra child process, no descriptor growth, no stray or
//! temporary file, and its resident memory grew by less than a bound (procfs). Counts are
//! asserted, never speed.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use camera_service::auth::Role;
use realtest::Ctx;
use serde_json::json;

use super::{direct, managed, wait_streams_ready, NOTIFY};
use crate::support::hygiene::{check_empty, PostTestCheck};
use crate::support::mediamtx::managed_mediamtx_pid;
use crate::support::service::ServiceUnderTest;
use crate::support::ws_client::WsClient;
use crate::support::{media, procfs};

/// Largest accepted growth of the service's resident set over the cycles.
/// Measured on the 2-core development machine: +2.4 MiB (direct backend).
const RSS_GROWTH_LIMIT_KIB: u64 = 8 * 1024;
/// Largest accepted growth of its open descriptors (none expected; a little slack for the
/// runtime's lazily opened internals).
const FD_GROWTH_LIMIT: usize = 2;

/// What to do.
struct Cycles {
    cameras: usize,
    recordings: usize,
    snapshots: usize,
    connections: usize,
}

/// What the service holds, from procfs.
#[derive(Debug)]
struct Footprint {
    fds: usize,
    rss_kib: u64,
    threads: u64,
    top_level: BTreeSet<String>,
}

fn footprint(service: &ServiceUnderTest) -> anyhow::Result<Footprint> {
    Ok(Footprint {
        fds: procfs::open_fds(service.pid()).len(),
        rss_kib: procfs::rss_kib(service.pid()).context("VmRSS")?,
        threads: procfs::threads(service.pid()).context("Threads")?,
        top_level: std::fs::read_dir(&service.data_dir)?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
    })
}

/// File names in `dir`.
fn names(dir: &std::path::Path) -> anyhow::Result<BTreeSet<String>> {
    Ok(std::fs::read_dir(dir)?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect())
}

/// Starts one timed recording (1 s) on each camera at once and waits until each went
/// STARTED then STOPPED; returns the file names.
async fn record_round(client: &mut WsClient, cameras: &[String]) -> anyhow::Result<Vec<String>> {
    let mut files = Vec::new();
    for camera in cameras {
        let started = client
            .call_ok(
                "start_recording",
                json!({ "device": camera, "duration": 1 }),
            )
            .await?;
        files.push(started["filename"].as_str().context("filename")?.to_owned());
    }
    let mut started = BTreeSet::new();
    let mut stopped = BTreeSet::new();
    while stopped.len() < files.len() {
        let note = client
            .next_notification("recording_status_update", NOTIFY)
            .await?;
        let file = note["filename"].as_str().unwrap_or_default().to_owned();
        ensure!(files.contains(&file), "update for an unknown file: {note}");
        match note["status"].as_str() {
            Some("STARTED") => ensure!(started.insert(file), "STARTED twice: {note}"),
            Some("STOPPED") => {
                ensure!(started.contains(&file), "STOPPED before STARTED: {note}");
                ensure!(stopped.insert(file), "STOPPED twice: {note}");
            }
            _ => anyhow::bail!("recording did not stop cleanly: {note}"),
        }
    }
    Ok(files)
}

/// One connection: connect, authenticate, ping, close.
async fn one_connection(url: String, token: String) -> anyhow::Result<()> {
    let mut client = WsClient::connect_authenticated(&url, &token).await?;
    anyhow::ensure!(client.call_ok("ping", json!({})).await? == "pong");
    client.close().await
}

/// Polls until `check` holds, at most `timeout`.
async fn eventually(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> anyhow::Result<bool>,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if check()? {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "{what} not reached within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The cycles against a running service; `expected_children` is how many children it
/// legitimately keeps (a managed MediaMTX).
async fn run_cycles(
    ctx: &Ctx,
    service: &ServiceUnderTest,
    cycles: &Cycles,
    expected_children: usize,
) -> anyhow::Result<()> {
    let cameras: Vec<String> = (0..cycles.cameras).map(|n| format!("camera{n}")).collect();
    let mut admin = service.client(Role::Admin).await?;
    let mut operator = service.client(Role::Operator).await?;
    // Warm-up: one of each, so lazily created state is in the baseline.
    let warm = record_round(&mut operator, &cameras[..1]).await?;
    operator
        .call_ok("take_snapshot", json!({ "device": "camera0" }))
        .await?;
    one_connection(service.ws_url(), service.token(Role::Viewer)).await?;
    let base_children = procfs::children_of(service.pid()).len();
    ensure!(
        base_children == expected_children,
        "children before the cycles: {base_children}, expected {expected_children}"
    );
    let before = footprint(service)?;
    ctx.log(format_args!("before: {before:?}"));

    let mut recordings: Vec<String> = warm;
    let rounds = cycles.recordings / cameras.len();
    for _ in 0..rounds {
        recordings.extend(record_round(&mut operator, &cameras).await?);
    }
    for n in 0..cycles.snapshots {
        let snap = operator
            .call_ok(
                "take_snapshot",
                json!({ "device": cameras[n % cameras.len()] }),
            )
            .await?;
        ensure!(snap["status"] == "completed", "{snap}");
    }
    let url = service.ws_url();
    let token = service.token(Role::Viewer);
    for batch in 0..cycles.connections.div_ceil(25) {
        let count = 25.min(cycles.connections - batch * 25);
        let all = (0..count).map(|_| one_connection(url.clone(), token.clone()));
        for result in futures_util::future::join_all(all).await {
            result?;
        }
    }

    // Cleanup is asynchronous: wait for it, then compare.
    drop(operator);
    let pid = service.pid();
    eventually("no extra child", NOTIFY, || {
        Ok(procfs::children_of(pid).len() == expected_children)
    })
    .await?;
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
    let after = footprint(service)?;
    ctx.log(format_args!("after: {after:?}"));
    ctx.log(format_args!(
        "growth: fds {:+}, rss {:+} KiB, threads {:+}",
        after.fds as i64 - before.fds as i64,
        after.rss_kib as i64 - before.rss_kib as i64,
        after.threads as i64 - before.threads as i64
    ));
    ensure!(
        after.fds <= before.fds + FD_GROWTH_LIMIT,
        "descriptors grew from {} to {}: {:?}",
        before.fds,
        after.fds,
        procfs::open_fds(pid)
    );
    ensure!(
        after.rss_kib <= before.rss_kib + RSS_GROWTH_LIMIT_KIB,
        "RSS grew from {} KiB to {} KiB (limit +{RSS_GROWTH_LIMIT_KIB} KiB)",
        before.rss_kib,
        after.rss_kib
    );
    ensure!(
        after.top_level == before.top_level,
        "data dir entries changed: {:?} -> {:?}",
        before.top_level,
        after.top_level
    );

    // Exactly the files made, nothing else (no partial or temporary copies).
    let expected: BTreeSet<String> = recordings.iter().cloned().collect();
    assert_eq!(
        expected.len(),
        1 + rounds * cameras.len(),
        "distinct file names"
    );
    assert_eq!(names(&service.recordings_dir())?, expected);
    let snaps = names(&service.snapshots_dir())?;
    assert_eq!(snaps.len(), 1 + cycles.snapshots, "{snaps:?}");
    ensure!(
        snaps
            .iter()
            .all(|n| n.ends_with(".jpg") && !n.starts_with('.')),
        "stray files among snapshots: {snaps:?}"
    );
    let listed = admin
        .call_ok("list_recordings", json!({ "limit": 1000 }))
        .await?;
    assert_eq!(listed["total"], expected.len());
    let listed = admin
        .call_ok("list_snapshots", json!({ "limit": 1000 }))
        .await?;
    assert_eq!(listed["total"], 1 + cycles.snapshots);
    for file in [&recordings[1], &recordings[recordings.len() - 1]] {
        let info = media::probe(ctx, &service.recordings_dir().join(file))?;
        ensure!(info.frames.is_some_and(|f| f > 0), "{file}: {info:?}");
    }
    check_empty(&service.tmp_dir)?;
    Ok(())
}

/// Direct backend, four `testsrc` cameras: 20 recordings, 50 snapshots, 100 connections.
#[realtest::test(tags = ["needs-ffmpeg"], timeout = "150s")]
async fn real_resources_cycles_leave_nothing_behind_direct(ctx: &mut Ctx) -> anyhow::Result<()> {
    let mut check = PostTestCheck::new();
    {
        let service = ServiceUnderTest::start_with(ctx, direct("testsrc,testsrc,testsrc,testsrc"))?;
        check.track_processes_of(service.pid())?;
        check.expect_removed(service.root());
        let cycles = Cycles {
            cameras: 4,
            recordings: 20,
            snapshots: 50,
            connections: 100,
        };
        run_cycles(ctx, &service, &cycles, 0).await?;
    }
    check.verify(ctx)
}

/// Managed MediaMTX, two `testsrc` cameras published through it: 10 recordings, 20 snapshots,
/// 100 connections; the only child left is the one MediaMTX.
#[realtest::test(tags = ["needs-mediamtx", "needs-ffmpeg"], timeout = "120s")]
async fn real_resources_cycles_leave_nothing_behind_mediamtx(ctx: &mut Ctx) -> anyhow::Result<()> {
    let mut check = PostTestCheck::new();
    {
        let (options, _ports) = managed(ctx, "testsrc,testsrc")?;
        let service = ServiceUnderTest::start_with(ctx, options)?;
        check.track_processes_of(service.pid())?;
        check.expect_removed(service.root());
        {
            // Closed before the cycles, which end by waiting for the admin's connection to be
            // the only one counted.
            let mut client = service.client(Role::Viewer).await?;
            wait_streams_ready(&mut client, &["camera0", "camera1"]).await?;
        }
        let mtx = managed_mediamtx_pid(ctx, &service)?;
        let cycles = Cycles {
            cameras: 2,
            recordings: 10,
            snapshots: 20,
            connections: 100,
        };
        run_cycles(ctx, &service, &cycles, 1).await?;
        assert_eq!(
            managed_mediamtx_pid(ctx, &service)?,
            mtx,
            "the same MediaMTX throughout"
        );
    }
    check.verify(ctx)
}
