//! A realtest binary to interrupt: its tests start child processes (one that handles SIGTERM,
//! a grandchild in a process group of its own, one whose body never returns) and temporary
//! directories, then wait. `tests/interrupt.rs` runs it, waits until every such test is under
//! way, and sends SIGINT to its process group, SIGTERM or SIGKILL to it.
//!
//! `INTERRUPT_FIXTURE_STATE` names a directory: each waiting test writes `<test>.ready` there
//! once all it started is in place, and the child that handles SIGTERM writes `term-handled`.
//! Run it with `--test-threads 3`: `a_quick_pass` and the three waiting tests start, the
//! `waits_its_turn_*` tests never do.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use realtest::Ctx;

realtest::main!();

fn state_dir() -> anyhow::Result<PathBuf> {
    Ok(PathBuf::from(std::env::var("INTERRUPT_FIXTURE_STATE")?))
}

fn ready(ctx: &Ctx) -> anyhow::Result<()> {
    std::fs::write(state_dir()?.join(format!("{}.ready", ctx.name())), "")?;
    Ok(())
}

#[realtest::test]
fn a_quick_pass() {}

/// A child that ends cleanly on SIGTERM (as a service would), a `Ctx` temporary directory and a
/// fixture's; the body returns once the child has gone.
#[realtest::test(timeout = "10m")]
fn child_and_temp_dirs(ctx: &mut Ctx) -> anyhow::Result<()> {
    let scratch = ctx.temp_dir()?;
    let fixture_dir = ctx.fixture_temp_dir("fixture")?;
    std::fs::write(scratch.join("data"), "x")?;
    std::fs::write(fixture_dir.path().join("data"), "x")?;
    let term = state_dir()?.join("term-handled");
    let child = ctx.spawn(Command::new("sh").arg("-c").arg(format!(
        "trap 'touch {}; exit 0' TERM; echo started; while :; do sleep 1; done",
        term.display()
    )))?;
    child.wait_for_output_line(|line| line == "started", Duration::from_secs(30))?;
    ready(ctx)?;
    child.wait()?;
    Ok(())
}

/// A child whose child (`sleep 601`) runs in a session and process group of its own, out of
/// reach of the signals to the child's group and of `PR_SET_PDEATHSIG`.
#[realtest::test(timeout = "10m")]
fn grandchild_in_own_group(ctx: &mut Ctx) -> anyhow::Result<()> {
    let child = ctx.spawn(
        Command::new("sh")
            .arg("-c")
            .arg("setsid sleep 601 & echo \"grandchild $!\"; wait"),
    )?;
    child.wait_for_output_line(
        |line| line.starts_with("grandchild "),
        Duration::from_secs(30),
    )?;
    ready(ctx)?;
    child.wait()?;
    Ok(())
}

/// A child and a fixture directory, and a body that never returns, not even once its child is
/// gone: the directory is left to the harness.
#[realtest::test(timeout = "10m")]
fn stuck_body(ctx: &mut Ctx) -> anyhow::Result<()> {
    let _dir = ctx.fixture_temp_dir("stuck")?;
    let _child = ctx.spawn(Command::new("sleep").arg("600"))?;
    ready(ctx)?;
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

#[realtest::test]
fn waits_its_turn_1() {}

#[realtest::test]
fn waits_its_turn_2() {}
