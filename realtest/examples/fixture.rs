//! A realtest binary whose tests have known outcomes, one of each kind. `tests/selftest.rs` runs
//! it as a subprocess and checks the console, the exit code and the JUnit file.

use std::process::Command;
use std::time::Duration;

use realtest::{CameraRequirements, Ctx, NeedDef, NeedStatus};

realtest::main!();

realtest::inventory::submit! {
    NeedDef { tag: "needs-fixture-present", hardware: false, check: |_| NeedStatus::Met("always".into()) }
}
realtest::inventory::submit! {
    NeedDef {
        tag: "needs-fixture-absent",
        hardware: false,
        check: |_| NeedStatus::Unmet("fixture capability is never present".into()),
    }
}

realtest::inventory::submit! {
    NeedDef {
        tag: "needs-fixture-camera",
        hardware: true,
        check: |_| NeedStatus::Unmet("the fixture's camera is never plugged in".into()),
    }
}

#[realtest::test]
fn passes() {}

#[realtest::test(tags = ["needs-fixture-camera"])]
fn hardware_camera() {}

#[realtest::test(tags = ["needs-fixture-present", "slow"])]
async fn async_passes() -> anyhow::Result<()> {
    tokio::time::sleep(Duration::from_millis(10)).await;
    Ok(())
}

#[realtest::test]
fn fails(ctx: &mut Ctx) -> anyhow::Result<()> {
    let child =
        ctx.spawn(Command::new("sh").args(["-c", "echo hello-from-child; echo to-stderr >&2"]))?;
    child.wait()?;
    anyhow::ensure!(1 + 1 == 3, "expected 3, got {}", 1 + 1);
    Ok(())
}

#[realtest::test]
fn panics() {
    panic!("boom at the fixture");
}

#[realtest::test(tags = ["needs-fixture-absent"])]
fn needs_missing() {}

#[realtest::test(tags = ["needs-fixture-present"])]
fn needs_present() {}

#[realtest::test]
fn runtime_skip(ctx: &mut Ctx) -> anyhow::Result<()> {
    let _lease = ctx.lease_camera(&CameraRequirements::any().fourcc("ZZZZ"))?;
    anyhow::bail!("no device offers the made-up format ZZZZ, so this line is never reached")
}

#[realtest::test(timeout = "500ms")]
fn times_out(ctx: &mut Ctx) -> anyhow::Result<()> {
    let _sleeper = ctx.spawn(Command::new("sleep").arg("31"))?;
    std::thread::sleep(Duration::from_secs(5));
    Ok(())
}

#[realtest::test]
fn leaks(ctx: &mut Ctx) -> anyhow::Result<()> {
    let child = ctx.spawn(Command::new("sleep").arg("32"))?;
    ctx.log(format_args!("leaking pid {}", child.pid()));
    std::mem::forget(child);
    Ok(())
}

#[realtest::test(tags = ["destructive"])]
fn destructive_wipes() {}
