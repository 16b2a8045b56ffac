//! The post-test check of the real-system suite, on top of realtest's own leak check: after the
//! fixtures are dropped, their temporary directories are gone, no process the test started is
//! alive, the service left no temporary files, and the test process holds no descriptor on the
//! V4L2 devices the test used.
//!
//! Use: create it first, register what to check while the fixtures run, drop the fixtures, then
//! call [`PostTestCheck::verify`].

use std::path::{Path, PathBuf};

use anyhow::ensure;
use realtest::Ctx;

use super::procfs;

/// Environment marker realtest sets on every process a test starts.
const OWNER_ENV: &str = "REALTEST_OWNER";
/// How long a just-spawned process may take to show its environment in `/proc/PID/environ`.
const ENVIRON_SETTLE: std::time::Duration = std::time::Duration::from_secs(5);

/// What to verify once the fixtures are gone.
#[derive(Debug, Default)]
pub struct PostTestCheck {
    owner: Option<String>,
    removed: Vec<PathBuf>,
    empty: Vec<PathBuf>,
    devices: Vec<PathBuf>,
}

impl PostTestCheck {
    /// An empty check.
    pub fn new() -> Self {
        Self::default()
    }

    /// Learns this test's process marker from `pid`, a process the test started through its
    /// `Ctx` and that is still running; afterwards no process with that marker may be alive.
    ///
    /// A process that was spawned a moment ago may not show its environment yet: the kernel
    /// lets the spawning parent (vfork) go on as soon as the new program's memory is in place,
    /// and only then records where its environment lies, so `/proc/PID/environ` reads empty for
    /// that moment — long enough to be seen on a slow (emulated) machine, where a read without
    /// the marker was also seen right after the spawn. So the environment is read again until
    /// the marker shows or [`ENVIRON_SETTLE`] has passed.
    pub fn track_processes_of(&mut self, pid: u32) -> anyhow::Result<()> {
        let deadline = std::time::Instant::now() + ENVIRON_SETTLE;
        let owner = loop {
            if let Some(owner) = procfs::environ_value(pid as i32, OWNER_ENV) {
                break owner;
            }
            if std::time::Instant::now() >= deadline {
                anyhow::bail!("pid {pid} carries no {OWNER_ENV}: not started through the Ctx");
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        self.owner = Some(owner);
        Ok(())
    }

    /// `path` (a fixture's temporary directory) must not exist afterwards.
    pub fn expect_removed(&mut self, path: impl Into<PathBuf>) {
        self.removed.push(path.into());
    }

    /// `dir` must exist and be empty afterwards (e.g. the service's `TMPDIR` while it runs —
    /// check it before the service is dropped with [`check_empty`]).
    pub fn expect_empty(&mut self, dir: impl Into<PathBuf>) {
        self.empty.push(dir.into());
    }

    /// The test process must hold no descriptor on `device` afterwards.
    pub fn watch_device(&mut self, device: impl Into<PathBuf>) {
        self.devices.push(device.into());
    }

    /// Runs every check; the error lists every violation.
    pub fn verify(&self, ctx: &Ctx) -> anyhow::Result<()> {
        let mut problems = Vec::new();
        for path in &self.removed {
            if path.exists() {
                problems.push(format!(
                    "temporary directory {} was not removed",
                    path.display()
                ));
            }
        }
        for dir in &self.empty {
            if let Err(e) = check_empty(dir) {
                problems.push(e.to_string());
            }
        }
        if let Some(owner) = &self.owner {
            for pid in procfs::processes_with_env(OWNER_ENV, owner) {
                problems.push(format!(
                    "process {pid} started by this test is still alive: {}",
                    procfs::cmdline(pid)
                ));
            }
        }
        let ours: Vec<PathBuf> = procfs::video_fds(std::process::id())
            .into_iter()
            .filter(|fd| self.devices.iter().any(|d| same_node(d, fd)))
            .collect();
        for fd in ours {
            problems.push(format!(
                "the test process still holds a descriptor on {}",
                fd.display()
            ));
        }
        ctx.log(format_args!(
            "post-test check: {} removed dirs, {} empty dirs, processes {}, {} devices: {}",
            self.removed.len(),
            self.empty.len(),
            if self.owner.is_some() {
                "checked"
            } else {
                "not tracked"
            },
            self.devices.len(),
            if problems.is_empty() {
                "clean"
            } else {
                "FAILED"
            }
        ));
        ensure!(
            problems.is_empty(),
            "post-test check failed:\n  {}",
            problems.join("\n  ")
        );
        Ok(())
    }
}

/// `dir` exists and has no entries.
pub fn check_empty(dir: &Path) -> anyhow::Result<()> {
    let entries: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    ensure!(
        entries.is_empty(),
        "{} is not empty: {entries:?}",
        dir.display()
    );
    Ok(())
}

fn same_node(a: &Path, b: &Path) -> bool {
    let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    canonical(a) == canonical(b)
}
