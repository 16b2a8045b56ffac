//! Ctrl-C in the middle of a real run: this binary runs its own `real_rtsp_direct_*` tests (a
//! real `camera-service` pulling from a real RTSP server, FFmpeg snapshots and recordings) as
//! a subprocess with a private `TMPDIR`, and once a service and an RTSP server of that run are
//! up sends SIGINT to its process group, as a terminal does. The run exits 130 and leaves no
//! process and no temporary directory, and its JUnit report marks what was interrupted.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use realtest::Ctx;

use crate::support::procfs;

/// The tests the inner run runs.
const FILTER: &str = "real_rtsp_direct_";
/// Bound of each wait (the inner run builds nothing, but the machine may be busy).
const WAIT: Duration = Duration::from_secs(120);

/// Live processes of the inner run: its tests' `REALTEST_OWNER` starts with `prefix`.
fn processes_of(prefix: &str) -> Vec<(i32, String)> {
    procfs::processes_with_env_matching("REALTEST_OWNER", |value| value.starts_with(prefix))
        .into_iter()
        .map(|pid| (pid, procfs::cmdline(pid)))
        .collect()
}

/// Each `<testcase>`: name and `passed` or `element:type`.
fn junit_outcomes(path: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let xml = std::fs::read_to_string(path)
        .with_context(|| format!("no JUnit report at {}", path.display()))?;
    let doc = roxmltree::Document::parse(&xml)?;
    Ok(doc
        .descendants()
        .filter(|node| node.has_tag_name("testcase"))
        .map(|case| {
            let outcome = case
                .children()
                .find(|n| {
                    ["failure", "error", "skipped"]
                        .iter()
                        .any(|tag| n.has_tag_name(*tag))
                })
                .map_or("passed".to_owned(), |n| {
                    format!(
                        "{}:{}",
                        n.tag_name().name(),
                        n.attribute("type").unwrap_or_default()
                    )
                });
            (
                case.attribute("name").unwrap_or_default().to_owned(),
                outcome,
            )
        })
        .collect())
}

#[realtest::test(tags = ["needs-ffmpeg", "needs-gst-rtsp-server"], timeout = "300s")]
fn real_ctrl_c_leaves_no_process_and_no_temp_dir(ctx: &mut Ctx) -> anyhow::Result<()> {
    let tmp = ctx.temp_dir()?;
    let state = ctx.temp_dir()?;
    let junit = state.join("report.xml");
    let mut command = Command::new(std::env::current_exe()?);
    command
        .args([FILTER, "--test-threads", "2", "--junit"])
        .arg(&junit)
        .env("TMPDIR", &tmp);
    for var in [
        "REALTEST_INCLUDE_TAGS",
        "REALTEST_EXCLUDE_TAGS",
        "REALTEST_TAGS",
        "REALTEST_JUNIT",
        "REALTEST_REQUIRE",
        "REALTEST_BENCH",
    ] {
        command.env_remove(var);
    }
    let mut run = ctx.spawn(&mut command)?;
    let start = procfs::start_time(run.pid()).context("the inner run's start time")?;
    let prefix = format!("{}-{start}-", run.pid());

    let deadline = Instant::now() + WAIT;
    let up = loop {
        let found = processes_of(&prefix);
        let has = |needle: &str| found.iter().any(|(_, command)| command.contains(needle));
        if has("camera-service serve") && has("rtsp_server.py") {
            break found;
        }
        ensure!(
            run.try_wait()?.is_none(),
            "the inner run ended before its fixtures were up"
        );
        ensure!(
            Instant::now() < deadline,
            "no service and RTSP server of the inner run within {WAIT:?}: {found:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    ctx.log(format_args!("inner run up, interrupting: {up:?}"));
    killpg(Pid::from_raw(run.pid() as i32), Signal::SIGINT)?;
    let status = run
        .wait_timeout(WAIT)?
        .context("the interrupted run did not exit")?;
    ensure!(
        status.code() == Some(130),
        "the inner run ended with {status}"
    );

    let deadline = Instant::now() + WAIT;
    loop {
        let left = processes_of(&prefix);
        if left.is_empty() {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "processes of the interrupted run still alive: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let dirs: Vec<String> = std::fs::read_dir(&tmp)?
        .filter_map(Result::ok)
        .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_dir()))
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    ensure!(dirs.is_empty(), "temporary directories left: {dirs:?}");

    let outcomes = junit_outcomes(&junit)?;
    ensure!(
        outcomes.iter().all(
            |(_, outcome)| ["passed", "error:interrupted", "skipped:interrupted"]
                .contains(&outcome.as_str())
        ),
        "{outcomes:?}"
    );
    ensure!(
        outcomes
            .iter()
            .any(|(name, outcome)| name.contains(FILTER) && outcome == "error:interrupted"),
        "the report names no interrupted test: {outcomes:?}"
    );
    Ok(())
}
