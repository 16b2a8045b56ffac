//! Child processes: failure reports with argv and stderr, wall-clock limits, graceful stop with
//! `q`, escalation to SIGKILL, and the whole group killed on drop.

use std::time::Duration;

use camera_service::process::{run, run_capturing, spawn, CommandSpec, ProcessError};

fn sh(script: &str) -> CommandSpec {
    CommandSpec::new("sh", vec!["-c".into(), script.into()])
}

#[realtest::test(timeout = "30s")]
async fn failure_reports_argv_status_and_stderr_tail() -> anyhow::Result<()> {
    let error = run(
        &sh("echo first >&2; echo 'the real reason' >&2; exit 3"),
        Duration::from_secs(10),
    )
    .await
    .expect_err("exit 3 is a failure");
    match &error {
        ProcessError::Failed {
            argv,
            status,
            stderr_tail,
        } => {
            assert_eq!(argv.0[0], "sh");
            assert_eq!(status.code(), Some(3));
            assert!(stderr_tail.ends_with("the real reason"), "{stderr_tail:?}");
        }
        other => panic!("expected Failed, got {other}"),
    }
    assert_eq!(
        error.summary(),
        "sh exit status: 3: the real reason",
        "clients get no argv"
    );
    let text = error.to_string();
    assert!(
        text.contains("sh -c") && text.contains("the real reason"),
        "{text}"
    );
    assert_eq!(
        run_capturing(&sh("echo 12.5"), Duration::from_secs(10))
            .await?
            .trim(),
        "12.5"
    );
    let missing = run(
        &CommandSpec::new("/nonexistent/ffmpeg", vec![]),
        Duration::from_secs(1),
    )
    .await;
    assert!(matches!(missing, Err(ProcessError::Spawn { .. })));
    Ok(())
}

#[realtest::test(timeout = "30s")]
async fn wall_clock_limit_kills_the_child() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let pids = dir.path().join("pids");
    // The shell and a grandchild in its group write their pids, then outlive the limit.
    let script = format!("sleep 30 & echo $$ $! > {}; wait", pids.display());
    let error = run(&sh(&script), Duration::from_millis(500))
        .await
        .expect_err("must time out");
    assert!(matches!(error, ProcessError::TimedOut { .. }), "{error}");
    let written = std::fs::read_to_string(&pids)?;
    let pids: Vec<i32> = written
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    assert_eq!(pids.len(), 2, "shell and sleep pids: {written:?}");
    // The shell is reaped by `run`; the killed grandchild is reaped by init shortly after.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while pids.iter().any(|&pid| is_alive(pid)) {
        assert!(
            std::time::Instant::now() < deadline,
            "still alive 10 s after the limit: {:?}",
            pids.iter()
                .filter(|&&pid| is_alive(pid))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

#[realtest::test(timeout = "30s")]
async fn stop_writes_q_first() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let received = dir.path().join("stdin");
    // The child keeps the one byte it reads: closing stdin without writing leaves the file empty,
    // skipping to SIGTERM gives no exit status 0.
    let script = format!("head -c 1 > {}", received.display());
    let child = spawn(&sh(&script).with_stdin_pipe())?;
    let status = child.stop(Duration::from_secs(5)).await?;
    assert_eq!(status.code(), Some(0), "{status:?}");
    assert_eq!(std::fs::read_to_string(&received)?, "q");
    Ok(())
}

/// Waits until the shell of group `pgid` runs its loop (its first `sleep` shows the traps set
/// before the loop are installed).
async fn wait_for_loop(pgid: i32) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while live_members(pgid).len() < 2 {
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "the shell's loop did not start within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

#[realtest::test(timeout = "30s")]
async fn stop_escalates_to_sigkill() -> anyhow::Result<()> {
    use std::os::unix::process::ExitStatusExt;
    let child = spawn(&sh("trap '' TERM; while :; do sleep 0.05; done"))?;
    wait_for_loop(child.pid()).await?;
    let status = child.stop(Duration::from_millis(300)).await?;
    assert_eq!(status.signal(), Some(9), "{status:?}");
    Ok(())
}

/// `stop_with` sends its own signal first, not SIGTERM: the child exits 0 from its SIGINT trap
/// (SIGTERM would kill it, leaving no file).
#[realtest::test(timeout = "30s")]
async fn stop_with_sends_its_signal_first() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let caught = dir.path().join("caught");
    let script = format!(
        "trap 'echo INT > {}; exit 0' INT; while :; do sleep 0.05; done",
        caught.display()
    );
    let child = spawn(&sh(&script))?;
    wait_for_loop(child.pid()).await?;
    let status = child
        .stop_with(nix::sys::signal::Signal::SIGINT, Duration::from_secs(5))
        .await?;
    assert_eq!(status.code(), Some(0), "{status:?}");
    assert_eq!(std::fs::read_to_string(&caught)?, "INT\n");
    Ok(())
}

#[realtest::test(timeout = "30s")]
async fn drop_kills_the_whole_group() -> anyhow::Result<()> {
    let child = spawn(&sh("sleep 30 & sleep 30 & wait"))?;
    let pgid = child.pid();
    // Wait until both grandchildren exist in the group.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while live_members(pgid).len() < 3 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(live_members(pgid).len(), 3, "sh and two sleeps");
    drop(child);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !live_members(pgid).is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        live_members(pgid),
        Vec::<i32>::new(),
        "no member of the group survives"
    );
    Ok(())
}

/// `PR_SET_PDEATHSIG` fires when the thread that forked a child exits. A child started from a
/// tokio blocking-pool thread (here with a 100 ms idle keep-alive instead of 10 s) lives on
/// after that thread has exited: the fork happens on the service's spawner thread.
#[realtest::test(timeout = "60s")]
fn a_child_outlives_the_runtime_thread_that_started_it() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_keep_alive(Duration::from_millis(100))
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let (child, thread) = tokio::task::spawn_blocking(|| {
            let thread =
                std::path::PathBuf::from(format!("/proc/self/task/{}", nix::unistd::gettid()));
            (spawn(&sh("sleep 30")), thread)
        })
        .await?;
        let mut child = child?;
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while thread.exists() {
            anyhow::ensure!(
                std::time::Instant::now() < deadline,
                "the idle blocking thread {} never exited",
                thread.display()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Had it been forked there, the kernel would have SIGKILLed it as the thread exited.
        let ended = tokio::time::timeout(Duration::from_secs(2), child.wait()).await;
        anyhow::ensure!(
            ended.is_err(),
            "the child died with the thread that started it: {ended:?}"
        );
        Ok(())
    })
}

/// Whether `pid` exists and is not a zombie.
fn is_alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| stat.rfind(')').map(|i| stat[i + 2..].starts_with('Z')))
        .is_some_and(|zombie| !zombie)
}

/// Pids in process group `pgid` that are not zombies.
fn live_members(pgid: i32) -> Vec<i32> {
    let mut members = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some(after) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
            continue;
        };
        let fields: Vec<&str> = after.split_whitespace().collect();
        if fields.first() != Some(&"Z") && fields.get(2).and_then(|g| g.parse().ok()) == Some(pgid)
        {
            members.push(pid);
        }
    }
    members
}
