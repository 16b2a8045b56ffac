//! An interrupted run leaves nothing behind: the `interrupt_fixture` example runs as a
//! subprocess in a process group of its own (as under a terminal or a CI job) with a private
//! `TMPDIR`, and once its tests have started their children (one of them a grandchild in a group
//! of its own) and temporary directories, it gets SIGINT to its group (Ctrl-C), SIGTERM (a CI
//! timeout) or SIGKILL. Afterwards no process carrying the run's `REALTEST_OWNER` marker is
//! alive and no temporary directory is left (after SIGKILL: once the next run has swept), and
//! the JUnit report names the interrupted tests.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;

/// The tests of the fixture that start processes and wait.
const WAITING: [&str; 3] = [
    "child_and_temp_dirs",
    "grandchild_in_own_group",
    "stuck_body",
];
/// Bound of every wait here: generous, because the machine may be busy; a wait that reaches it
/// fails.
const DEADLINE: Duration = Duration::from_secs(90);

/// Every run sweeps what dead runs left as it starts, on the whole machine: held shared while a
/// run starts, and exclusively by the SIGKILL test, which leaves a grandchild for the sweep of
/// its own next run.
static STARTS: RwLock<()> = RwLock::new(());

fn fixture() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let target = exe.parent().unwrap().parent().unwrap();
    let path = target.join("examples").join("interrupt_fixture");
    assert!(
        path.exists(),
        "{} missing: build with `cargo test -p realtest`",
        path.display()
    );
    path
}

/// Waits until `done` gives `Some`, polling; panics naming `what` at the deadline.
fn wait_for<T>(what: &str, mut done: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(value) = done() {
            return value;
        }
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        thread::sleep(Duration::from_millis(20));
    }
}

/// One run of the fixture.
struct FixtureRun {
    child: Child,
    /// `REALTEST_OWNER` prefix of its tests' processes: `<pid>-<start time>-`.
    owner_prefix: String,
    stderr: Arc<Mutex<Vec<String>>>,
    junit: PathBuf,
}

impl FixtureRun {
    /// Starts the fixture with `args` in its own process group, `tmp` as `TMPDIR` and `state`
    /// as its state directory; the JUnit report goes into `state`.
    fn start(tmp: &Path, state: &Path, args: &[&str]) -> FixtureRun {
        let junit = state.join("report.xml");
        let mut child = Command::new(fixture())
            .args(args)
            .arg("--junit")
            .arg(&junit)
            .env("TMPDIR", tmp)
            .env("INTERRUPT_FIXTURE_STATE", state)
            .env_remove("REALTEST_JUNIT")
            .env_remove("REALTEST_INCLUDE_TAGS")
            .env_remove("REALTEST_TAGS")
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let start = procfs::process::Process::new(child.id() as i32)
            .and_then(|process| process.stat())
            .map(|stat| stat.starttime)
            .unwrap();
        let mut stdout = child.stdout.take().unwrap();
        thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = stdout.read_to_end(&mut sink);
        });
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let lines = Arc::clone(&stderr);
        let pipe = child.stderr.take().unwrap();
        thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                lines.lock().unwrap().push(line);
            }
        });
        FixtureRun {
            owner_prefix: format!("{}-{start}-", child.id()),
            child,
            stderr,
            junit,
        }
    }

    fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    /// Waits until each of `tests` has written its ready file.
    fn wait_ready(&self, state: &Path, tests: &[&str]) {
        wait_for("the fixture's tests to start their processes", || {
            tests
                .iter()
                .all(|name| state.join(format!("{name}.ready")).exists())
                .then_some(())
        });
    }

    fn wait_stderr_line(&self, what: &str) -> String {
        wait_for(&format!("the fixture to print `{what}`"), || {
            self.stderr
                .lock()
                .unwrap()
                .iter()
                .find(|line| line.contains(what))
                .cloned()
        })
    }

    fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                panic!("the fixture did not exit; stderr:\n{}", self.stderr_text());
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn stderr_text(&self) -> String {
        // The reader thread may still be taking the last lines after the exit.
        thread::sleep(Duration::from_millis(100));
        self.stderr.lock().unwrap().join("\n")
    }
}

/// Live (not zombie) processes whose `REALTEST_OWNER` starts with `prefix`: (pid, command).
fn processes_of_run(prefix: &str) -> Vec<(i32, String)> {
    procfs::process::all_processes()
        .unwrap()
        .filter_map(Result::ok)
        .filter(|process| {
            process.environ().is_ok_and(|environ| {
                environ
                    .get(std::ffi::OsStr::new("REALTEST_OWNER"))
                    .is_some_and(|value| value.to_string_lossy().starts_with(prefix))
            })
        })
        .filter(|process| process.stat().is_ok_and(|stat| stat.state != 'Z'))
        .map(|process| {
            let command = process.cmdline().unwrap_or_default().join(" ");
            (process.pid, command)
        })
        .collect()
}

fn wait_no_process_of(run: &FixtureRun) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let found = processes_of_run(&run.owner_prefix);
        if found.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "processes of the run still alive: {found:?}"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// Directories in `tmp` (files, such as the probe's tool cache, do not count).
fn dirs_in(tmp: &Path) -> Vec<String> {
    std::fs::read_dir(tmp)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_dir()))
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect()
}

/// Each `<testcase>` of the report: its name and `passed`, or `element:type:message`.
fn junit_outcomes(path: &Path) -> Vec<(String, String)> {
    let xml = std::fs::read_to_string(path)
        .unwrap_or_else(|err| panic!("no JUnit report at {}: {err}", path.display()));
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let mut cases: Vec<(String, String)> = doc
        .descendants()
        .filter(|node| node.has_tag_name("testcase"))
        .map(|case| {
            let name = case.attribute("name").unwrap_or_default().to_string();
            let outcome = case
                .children()
                .find(|n| {
                    ["failure", "error", "skipped"]
                        .iter()
                        .any(|tag| n.has_tag_name(*tag))
                })
                .map_or("passed".to_string(), |n| {
                    format!(
                        "{}:{}:{}",
                        n.tag_name().name(),
                        n.attribute("type").unwrap_or_default(),
                        n.attribute("message").unwrap_or_default()
                    )
                });
            (name, outcome)
        })
        .collect();
    cases.sort();
    cases
}

fn started_run() -> (tempfile::TempDir, tempfile::TempDir, FixtureRun) {
    let tmp = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let starting = STARTS.read().unwrap_or_else(PoisonError::into_inner);
    let run = FixtureRun::start(tmp.path(), state.path(), &["--test-threads", "3"]);
    run.wait_ready(state.path(), &WAITING);
    drop(starting);
    // The shell prints the grandchild's pid before `setsid` has become `sleep 601`.
    wait_for("the grandchild, with the run's marker", || {
        processes_of_run(&run.owner_prefix)
            .iter()
            .any(|(_, command)| command == "sleep 601")
            .then_some(())
    });
    assert_eq!(
        dirs_in(tmp.path()).len(),
        3,
        "a Ctx directory and two fixture directories: {:?}",
        dirs_in(tmp.path())
    );
    (tmp, state, run)
}

/// SIGINT or SIGTERM, to the process group or the binary: exit 128 + signal, the child that
/// handles SIGTERM got it, nothing alive, no directory left, every test in the report.
fn interrupt_and_check(signal: Signal, to_group: bool, name: &str) {
    let (tmp, state, mut run) = started_run();
    if to_group {
        killpg(run.pid(), signal).unwrap();
    } else {
        kill(run.pid(), signal).unwrap();
    }
    let status = run.wait_exit();
    let stderr = run.stderr_text();
    assert_eq!(status.code(), Some(128 + signal as i32), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "realtest: run interrupted by {name}: 1 passed, 0 failed, 3 interrupted, 2 skipped \
             (2 not started); exit code {}",
            128 + signal as i32
        )),
        "{stderr}"
    );
    assert!(
        state.path().join("term-handled").exists(),
        "the child's group got SIGTERM before SIGKILL: {stderr}"
    );
    wait_no_process_of(&run);
    assert_eq!(dirs_in(tmp.path()), Vec::<String>::new(), "{stderr}");
    let interrupted =
        format!("error:interrupted:run interrupted by {name} while the test ran; its processes were stopped");
    let not_started = "skipped:interrupted:run interrupted".to_string();
    assert_eq!(
        junit_outcomes(&run.junit),
        [
            ("a_quick_pass".to_string(), "passed".to_string()),
            ("child_and_temp_dirs".to_string(), interrupted.clone()),
            ("grandchild_in_own_group".to_string(), interrupted.clone()),
            ("stuck_body".to_string(), interrupted),
            ("waits_its_turn_1".to_string(), not_started.clone()),
            ("waits_its_turn_2".to_string(), not_started),
        ]
    );
}

#[test]
fn sigint_to_the_process_group_stops_everything_and_reports() {
    interrupt_and_check(Signal::SIGINT, true, "SIGINT");
}

#[test]
fn sigterm_to_the_binary_stops_everything_and_reports() {
    interrupt_and_check(Signal::SIGTERM, false, "SIGTERM");
}

#[test]
fn bodies_that_return_at_once_leave_the_report_to_the_interruption() {
    // The body returns as soon as its child has gone, and it is the only test: libtest's run
    // ends while the interruption is still under way, and the exit code and the report are
    // still the interruption's. (Which thread gets there first varies; the real-system case
    // `real_ctrl_c_leaves_no_process_and_no_temp_dir` is where the ordinary end won the race
    // before it was closed.)
    let tmp = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let starting = STARTS.read().unwrap_or_else(PoisonError::into_inner);
    let mut run = FixtureRun::start(tmp.path(), state.path(), &["--exact", WAITING[0]]);
    run.wait_ready(state.path(), &WAITING[..1]);
    drop(starting);
    killpg(run.pid(), Signal::SIGINT).unwrap();
    let status = run.wait_exit();
    let stderr = run.stderr_text();
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert_eq!(
        junit_outcomes(&run.junit),
        [(
            WAITING[0].to_string(),
            "error:interrupted:run interrupted by SIGINT while the test ran; its processes \
             were stopped"
                .to_string()
        )]
    );
    wait_no_process_of(&run);
    assert_eq!(dirs_in(tmp.path()), Vec::<String>::new(), "{stderr}");
}

#[test]
fn a_second_sigint_kills_at_once_without_a_report() {
    let (tmp, _state, mut run) = started_run();
    killpg(run.pid(), Signal::SIGINT).unwrap();
    // The stuck body keeps the clean-up waiting for seconds: the second signal comes during it.
    run.wait_stderr_line("again to kill at once");
    killpg(run.pid(), Signal::SIGINT).unwrap();
    let status = run.wait_exit();
    let stderr = run.stderr_text();
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("realtest: SIGINT again: killed"),
        "{stderr}"
    );
    assert!(!run.junit.exists(), "no report after the second signal");
    wait_no_process_of(&run);
    assert_eq!(dirs_in(tmp.path()), Vec::<String>::new(), "{stderr}");
}

#[test]
fn after_sigkill_only_the_grandchild_survives_and_the_next_run_sweeps_it() {
    let (tmp, state, mut run) = started_run();
    let _no_other_start = STARTS.write().unwrap_or_else(PoisonError::into_inner);
    kill(run.pid(), Signal::SIGKILL).unwrap();
    assert_eq!(run.wait_exit().code(), None);
    // PR_SET_PDEATHSIG takes the children; the grandchild in its own session stays.
    let left = wait_for("the children to die with the harness", || {
        let found = processes_of_run(&run.owner_prefix);
        found
            .iter()
            .all(|(_, command)| command == "sleep 601")
            .then_some(found)
    });
    assert_eq!(left.len(), 1, "{left:?}");
    let left_dirs = dirs_in(tmp.path());
    assert_eq!(left_dirs.len(), 3, "{left_dirs:?}");

    let mut next = FixtureRun::start(tmp.path(), state.path(), &["--exact", "a_quick_pass"]);
    let status = next.wait_exit();
    let stderr = next.stderr_text();
    assert!(status.success(), "{stderr}");
    let grandchild = format!(
        "realtest: killed pid {} sleep 601, left by an earlier run that is gone",
        left[0].0
    );
    assert!(stderr.lines().any(|line| line == grandchild), "{stderr}");
    for dir in &left_dirs {
        let removed = format!(
            "realtest: removed {}, left by an earlier run that is gone",
            tmp.path().join(dir).display()
        );
        assert!(stderr.lines().any(|line| line == removed), "{stderr}");
    }
    assert_eq!(processes_of_run(&run.owner_prefix), Vec::new());
    assert_eq!(dirs_in(tmp.path()), Vec::<String>::new());
}
