//! The per-test context: captured log, owned processes, temporary directories, device leases.

use std::fmt::Display;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
pub use tempfile::TempDir;

use crate::junit;
use crate::lease::{self, CameraLease, CameraRequirements, ResourceLease};
use crate::outcome::{CapturedLog, Stream};
use crate::owner::RunId;
use crate::probe::Probe;
use crate::process::{self, OwnedChild, ProcessGroups};

/// Environment variable set on every process a test starts through its [`Ctx`]; children inherit
/// it, so the leak check finds descendants even after they were re-parented.
pub const OWNER_ENV: &str = "REALTEST_OWNER";

/// Upper bound of a test's captured log; later lines are counted, not kept.
const LOG_LIMIT: usize = 4 << 20;

/// A test's captured output, kept apart by stream (the JUnit report puts child processes'
/// stderr in `<system-err>`), bounded by [`LOG_LIMIT`] bytes.
#[derive(Debug, Default)]
pub struct Log {
    state: Mutex<LogState>,
    echo: bool,
}

#[derive(Debug, Default)]
struct LogState {
    captured: CapturedLog,
    bytes: usize,
    truncated: bool,
}

impl Log {
    /// A log that also echoes each line to stderr when `echo` is set (`--nocapture`).
    pub fn new(echo: bool) -> Self {
        Log {
            state: Mutex::new(LogState::default()),
            echo,
        }
    }

    /// Appends one line of the test's own output (or a child's stdout).
    pub fn line(&self, line: &str) {
        self.push(Stream::Out, line);
    }

    /// Appends one line a child process wrote to its stderr.
    pub fn stderr_line(&self, line: &str) {
        self.push(Stream::Err, line);
    }

    fn push(&self, stream: Stream, line: &str) {
        if self.echo {
            let _ = writeln!(std::io::stderr(), "{line}");
        }
        let mut state = self.state.lock().unwrap();
        if state.bytes + line.len() < LOG_LIMIT {
            state.bytes += line.len() + 1;
            state.captured.push(stream, line.to_string());
        } else if !state.truncated {
            state.truncated = true;
            state
                .captured
                .push(Stream::Out, "[log truncated]".to_string());
        }
    }

    /// Everything captured so far.
    pub fn contents(&self) -> CapturedLog {
        self.state.lock().unwrap().captured.clone()
    }
}

/// State a test shares with the runner, which outlives the test body (for timeouts and leaks).
#[derive(Debug)]
pub(crate) struct Shared {
    pub log: Arc<Log>,
    /// Value of [`OWNER_ENV`] for this test's processes.
    pub owner: String,
    /// Process groups of the test that may still have members.
    pub groups: Arc<ProcessGroups>,
    pub spawned: AtomicUsize,
    pub devices: Mutex<Vec<String>>,
    /// Temporary directories the test and its fixtures made (removed by an interrupted run).
    pub temp_dirs: Mutex<Vec<PathBuf>>,
}

impl Shared {
    pub fn new(owner: String, echo: bool) -> Arc<Shared> {
        Arc::new(Shared {
            log: Arc::new(Log::new(echo)),
            owner,
            groups: Arc::default(),
            spawned: AtomicUsize::new(0),
            devices: Mutex::new(Vec::new()),
            temp_dirs: Mutex::new(Vec::new()),
        })
    }
}

/// What a test gets from the harness.
///
/// Everything it hands out is cleaned up when the test ends: processes are stopped and reaped,
/// temporary directories removed, leases released.
#[derive(Debug)]
pub struct Ctx {
    name: String,
    deadline: Instant,
    shared: Arc<Shared>,
    temp_dirs: Vec<TempDir>,
}

impl Ctx {
    pub(crate) fn new(name: String, timeout: Duration, shared: Arc<Shared>) -> Ctx {
        Ctx {
            name,
            deadline: Instant::now() + timeout,
            shared,
            temp_dirs: Vec::new(),
        }
    }

    /// The test's full name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Time left before the test's timeout.
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// Adds a line to the test's captured log (shown when it fails, and in JUnit `<system-out>`).
    pub fn log(&self, message: impl Display) {
        self.shared.log.line(&message.to_string());
    }

    /// The machine probe, made once per process.
    pub fn probe(&self) -> &'static Probe {
        Probe::get()
    }

    /// Starts `command` as an [`OwnedChild`]: own process group, stdin from `/dev/null`, stdout
    /// and stderr captured into this test's log. It is stopped and reaped when dropped.
    pub fn spawn(&self, command: &mut Command) -> anyhow::Result<OwnedChild> {
        let child = OwnedChild::spawn(
            command,
            Arc::clone(&self.shared.log),
            Arc::clone(&self.shared.groups),
            &[(OWNER_ENV, &self.shared.owner)],
        )?;
        self.shared.spawned.fetch_add(1, Ordering::Relaxed);
        Ok(child)
    }

    /// Runs `command` to completion (own process group, killed after `timeout`) and returns its
    /// output. Its stderr is added to the log; a non-zero exit is *not* an error here.
    pub fn output(&self, command: &mut Command, timeout: Duration) -> anyhow::Result<Output> {
        command.env(OWNER_ENV, &self.shared.owner);
        self.shared.spawned.fetch_add(1, Ordering::Relaxed);
        let description = process::describe(command);
        self.log(format_args!("$ {description}"));
        let output = process::run_with_timeout(command, timeout, Some(&self.shared.groups))?;
        for line in String::from_utf8_lossy(&output.stderr).lines() {
            self.shared.log.stderr_line(&format!("  {line}"));
        }
        self.log(format_args!("  -> {}", output.status));
        Ok(output)
    }

    /// A new temporary directory, removed when the test ends.
    pub fn temp_dir(&mut self) -> anyhow::Result<PathBuf> {
        let dir = self.fixture_temp_dir("test")?;
        let path = dir.path().to_path_buf();
        self.temp_dirs.push(dir);
        Ok(path)
    }

    /// Keeps a file the test produced (the snapshot that failed a check, an FFmpeg log) with the
    /// JUnit report: copies it now (at most [`MAX_ATTACHMENT_BYTES`](crate::MAX_ATTACHMENT_BYTES))
    /// next to the report and names the copy in the test's log as `[[ATTACHMENT|path]]` (path
    /// relative to the workspace root), which GitLab shows on a failed test. Without a report
    /// (`--junit`) it only logs that nothing was kept. An error says why the file could not be
    /// kept; the test decides whether that matters.
    pub fn attach(&self, path: impl AsRef<Path>) -> anyhow::Result<()> {
        let path = path.as_ref();
        let Some(report) = junit::session() else {
            self.log(format_args!(
                "attachment {} not kept: no JUnit report (--junit)",
                path.display()
            ));
            return Ok(());
        };
        let kept = report
            .keep_attachment(&self.name, path)
            .map_err(anyhow::Error::msg)?;
        self.log(junit::attachment_marker(&kept));
        Ok(())
    }

    /// A new temporary directory for a fixture that removes it itself (dropping the
    /// [`TempDir`], after stopping what uses it): `$TMPDIR/realtest-<purpose>-<run>-XXXXXX`.
    /// The harness knows it too: an interrupted run removes it, and the next run removes it if
    /// this one was killed first.
    pub fn fixture_temp_dir(&self, purpose: &str) -> anyhow::Result<TempDir> {
        anyhow::ensure!(
            !purpose.is_empty()
                && purpose
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-'),
            "temporary directory purpose `{purpose}`: use letters, digits and `-`"
        );
        let dir = tempfile::Builder::new()
            .prefix(&RunId::this_run().temp_dir_prefix(purpose))
            .tempdir()
            .context("failed to create a temporary directory")?;
        self.shared
            .temp_dirs
            .lock()
            .unwrap()
            .push(dir.path().to_path_buf());
        Ok(dir)
    }

    /// Leases a V4L2 capture device that meets `requirements`, exclusively across threads and
    /// processes. Waits while all matching devices are leased (up to the test's timeout); when no
    /// device matches at all, returns a [`Skip`](crate::Skip) error so the test is skipped with
    /// the reason.
    pub fn lease_camera(&self, requirements: &CameraRequirements) -> anyhow::Result<CameraLease> {
        let lease = lease::acquire(Probe::get(), requirements, self.deadline)?;
        self.record_lease(&lease);
        Ok(lease)
    }

    /// Leases a v4l2loopback node to write into, whatever it advertises now (with
    /// `exclusive_caps=1` it advertises capture only while a writer streams). Exclusive with
    /// [`lease_camera`](Ctx::lease_camera) leases of the same node; skips the test
    /// (`needs-v4l2loopback`) when there is none.
    pub fn lease_loopback(&self) -> anyhow::Result<CameraLease> {
        let lease = lease::acquire_loopback(Probe::get(), self.deadline)?;
        self.record_lease(&lease);
        Ok(lease)
    }

    /// Leases a named resource (a fixed port, a singleton service) exclusively across threads and
    /// processes, waiting up to the test's timeout while another test holds it.
    pub fn lease_resource(&self, name: &str) -> anyhow::Result<ResourceLease> {
        let lease = lease::acquire_resource(name, self.deadline)?;
        self.log(format_args!("leased resource {name}"));
        Ok(lease)
    }

    fn record_lease(&self, lease: &CameraLease) {
        self.log(format_args!("leased {}", lease.describe()));
        self.shared
            .devices
            .lock()
            .unwrap()
            .push(lease.node().path.clone());
    }
}
