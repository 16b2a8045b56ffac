//! SIGINT (Ctrl-C) and SIGTERM (a CI job's timeout) during a run.
//!
//! The first one stops every process of the running tests (SIGTERM to each group, a grace
//! period, SIGKILL; then anything else carrying the run's owner marker, such as a grandchild in
//! a group of its own), starts no new process, gives the test bodies a bounded time to return
//! (so fixtures' drops run), removes the temporary directories still there, writes the report
//! (running tests as `interrupted` failures, tests not started as skipped, "run interrupted")
//! and exits with 128 + the signal: 130 for SIGINT, 143 for SIGTERM. A second one while that
//! goes on kills what is left at once and exits.
//!
//! Test bodies run on threads that cannot be unwound, so all of this runs on threads of its
//! own and ends the process with `exit`. The signals arrive through `signal-hook`'s iterator
//! (a self-pipe written by the handler, read by an ordinary thread), not `sigwait` with the
//! signals blocked in every other thread: a mask would have to be set before any thread starts
//! and would be inherited by every thread a test or a library creates, and `signal-hook`
//! chains with other handlers, so a test that uses `tokio::signal` keeps working.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::outcome::{FailureKind, Outcome, TestRecord};
use crate::run_state::{Interrupted, Planned, RunState, NOT_STARTED_KIND};
use crate::{leak, process};

/// Between SIGTERM and SIGKILL for the processes of the running tests.
const STOP_GRACE: Duration = Duration::from_secs(2);
/// How long the bodies of the running tests get to return once their processes are stopped.
const RETURN_GRACE: Duration = Duration::from_secs(5);

/// What the interrupt path needs from the run.
pub(crate) struct Run {
    /// The tests running and ended.
    pub state: Arc<RunState>,
    /// The tests the run would run (to report those never started).
    pub expected: Vec<Planned>,
    /// The owner marker prefix of this run's processes.
    pub owner_prefix: String,
    /// Writes the report (console summary, JUnit) from the records; false when it failed.
    pub report: Box<dyn FnOnce(Vec<TestRecord>) -> bool + Send>,
}

/// For the main thread once every test has ended, when an interruption has the end of the run:
/// waits for it to exit the process.
pub(crate) fn wait_for_interruption() -> ! {
    loop {
        std::thread::park();
    }
}

/// From now on SIGINT and SIGTERM interrupt the run as described in the module docs.
pub(crate) fn watch(run: Run) -> std::io::Result<()> {
    let mut signals = Signals::new([SIGINT, SIGTERM])?;
    std::thread::Builder::new()
        .name("realtest-signals".to_string())
        .spawn(move || {
            let state = Arc::clone(&run.state);
            let prefix = run.owner_prefix.clone();
            let mut run = Some(run);
            for signal in signals.forever() {
                let name = signal_name(signal);
                match run.take() {
                    Some(run) => {
                        let spawned = std::thread::Builder::new()
                            .name("realtest-interrupt".to_string())
                            .spawn(move || stop_run(name, signal, run));
                        if let Err(err) = spawned {
                            eprintln!("realtest: {name}: cannot start the clean-up ({err})");
                            kill_now(&state, &prefix, name, signal);
                        }
                    }
                    None => kill_now(&state, &prefix, name, signal),
                }
            }
        })?;
    Ok(())
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        SIGINT => "SIGINT",
        SIGTERM => "SIGTERM",
        _ => "a signal",
    }
}

/// The first signal: stop, wait, clean up, report, exit.
fn stop_run(name: &'static str, signal: i32, run: Run) {
    let Some(running) = run.state.interrupt(name) else {
        eprintln!("\nrealtest: {name}: every test has ended, the report is being written; again to stop at once");
        return;
    };
    process::refuse_spawns();
    eprintln!(
        "\nrealtest: {name}: stopping the processes of {} running test(s){}; again to kill at once",
        running.len(),
        list_names(&running)
    );
    let groups: Vec<u32> = running
        .iter()
        .flat_map(|test| test.shared.groups.live())
        .collect();
    process::stop_groups(&groups, STOP_GRACE);
    leak::kill_all(&leak::survivors_of_run(&run.owner_prefix));
    let stuck = run.state.wait_until_none_runs(RETURN_GRACE);
    if !stuck.is_empty() {
        eprintln!(
            "realtest: {name}: test bodies still running after {}: {}",
            humantime::format_duration(RETURN_GRACE),
            stuck.join(", ")
        );
    }
    for dir in temp_dirs(&running) {
        if let Err(err) = std::fs::remove_dir_all(&dir) {
            eprintln!("realtest: could not remove {}: {err}", dir.display());
        }
    }
    let records = run.state.interrupted_records(&run.expected);
    let summary = summary(&records);
    let report_written = (run.report)(records);
    let code = 128 + signal;
    eprintln!(
        "realtest: run interrupted by {name}: {summary}{}; exit code {code}",
        if report_written {
            ""
        } else {
            "; the report is incomplete"
        }
    );
    std::process::exit(code)
}

/// A second signal (or a first one that cannot be handled in order): SIGKILL to everything
/// the running tests started, their temporary directories removed, exit.
fn kill_now(state: &RunState, owner_prefix: &str, name: &str, signal: i32) -> ! {
    process::refuse_spawns();
    let running = state.running();
    for test in &running {
        for pgid in test.shared.groups.live() {
            let _ = killpg(Pid::from_raw(pgid as i32), Signal::SIGKILL);
        }
    }
    leak::kill_run_now(owner_prefix);
    for dir in temp_dirs(&running) {
        let _ = std::fs::remove_dir_all(dir);
    }
    let code = 128 + signal;
    eprintln!("realtest: {name} again: killed the running tests' processes; exit code {code}");
    std::process::exit(code)
}

fn list_names(running: &[Interrupted]) -> String {
    if running.is_empty() {
        return String::new();
    }
    let names: Vec<&str> = running.iter().map(|test| test.name.as_str()).collect();
    format!(" ({})", names.join(", "))
}

/// The temporary directories of the `running` tests that still exist.
fn temp_dirs(running: &[Interrupted]) -> Vec<PathBuf> {
    running
        .iter()
        .flat_map(|test| test.shared.temp_dirs.lock().unwrap().clone())
        .filter(|dir| dir.exists())
        .collect()
}

/// "2 passed, 1 failed, 2 interrupted, 3 skipped (3 not started)".
fn summary(records: &[TestRecord]) -> String {
    let (mut passed, mut failed, mut interrupted, mut skipped, mut not_started) = (0, 0, 0, 0, 0);
    for record in records {
        match &record.outcome {
            Outcome::Passed => passed += 1,
            Outcome::Failed {
                kind: FailureKind::Interrupted,
                ..
            } => interrupted += 1,
            Outcome::Failed { .. } => failed += 1,
            Outcome::Skipped { kind, .. } => {
                skipped += 1;
                if kind == NOT_STARTED_KIND {
                    not_started += 1;
                }
            }
        }
    }
    format!(
        "{passed} passed, {failed} failed, {interrupted} interrupted, {skipped} skipped \
         ({not_started} not started)"
    )
}
