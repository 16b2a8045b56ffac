//! A second realtest binary for the end-to-end JUnit tests (`tests/junit.rs`): tests inside
//! modules (their `classname`), a failing check with the file it failed on attached, a passing
//! test with a log, a skip for an unmet need.

realtest::main!();

realtest::inventory::submit! {
    realtest::NeedDef {
        tag: "needs-fixture-never",
        hardware: false,
        check: |_| realtest::NeedStatus::Unmet("this need is never met".into()),
    }
}

mod media {
    use realtest::Ctx;

    #[realtest::test]
    fn snapshot_check_fails_with_the_file_attached(ctx: &mut Ctx) -> anyhow::Result<()> {
        let dir = ctx.temp_dir()?;
        let snapshot = dir.join("snapshot.ppm");
        std::fs::write(&snapshot, b"P3 1 1 255 255 0 0\n")?;
        ctx.attach(&snapshot)?;
        anyhow::bail!("the snapshot is plain red, not the test pattern")
    }

    #[realtest::test]
    fn passes_with_a_log(ctx: &mut Ctx) {
        ctx.log("a line that only --junit-logs all keeps");
    }
}

mod needs {
    #[realtest::test(tags = ["needs-fixture-never"])]
    fn skipped_for_a_need() {}
}
