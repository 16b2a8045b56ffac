//! The suite's own fixtures, checked where they can run: the simulator's rendered file, and the
//! post-test check catching what it must catch.

use std::process::Command;
use std::time::Duration;

use anyhow::ensure;
use realtest::Ctx;

use super::ensure_within;
use crate::support::hygiene::PostTestCheck;
use crate::support::simulator::{Pattern, TestVideoStreamSimulator};

/// The simulator renders exactly the asked pattern (size, frame count, duration); the post-test
/// check reports a process still running, a directory not removed and a directory not empty —
/// and passes once they are dealt with.
#[realtest::test(tags = ["needs-ffmpeg"], timeout = "60s")]
fn real_fixtures_simulator_file_and_post_test_check(ctx: &mut Ctx) -> anyhow::Result<()> {
    let dir = ctx.temp_dir()?;
    let clip = dir.join("clip.mp4");
    let info = TestVideoStreamSimulator::render_file(ctx, &clip, Pattern::new(160, 120, 10), 2)?;
    assert_eq!(
        (info.codec.as_str(), info.width, info.height),
        ("h264", 160, 120)
    );
    assert_eq!(info.frames, Some(20), "{info:?}");
    ensure_within(
        "rendered duration (s)",
        info.duration.unwrap_or(0.0),
        2.0,
        0.2,
    )?;

    let sleeper = ctx.spawn(Command::new("sleep").arg("30"))?;
    let leftover = ctx.fixture_temp_dir("check")?;
    let mut check = PostTestCheck::new();
    check.track_processes_of(sleeper.pid())?;
    check.expect_removed(leftover.path());
    check.expect_empty(&dir);
    let error = format!("{:#}", check.verify(ctx).expect_err("three violations"));
    for needle in ["still alive", "was not removed", "is not empty"] {
        ensure!(error.contains(needle), "`{needle}` missing from: {error}");
    }

    sleeper.stop(Duration::from_secs(1))?;
    leftover.close()?;
    std::fs::remove_file(&clip)?;
    check.verify(ctx)
}
