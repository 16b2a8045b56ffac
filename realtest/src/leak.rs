//! Finding processes a test left behind (procfs), and killing them.
//!
//! Every process a test starts through its `Ctx` carries `REALTEST_OWNER=<owner>` in its
//! environment, and so do its descendants (unless they clear their environment), even after they
//! were re-parented to init. After the test, any live process with that marker is a leak.
//!
//! At the start of a run, what earlier runs that are no longer alive left behind (killed or
//! crashed before they could clean up) goes: their marked processes and their temporary
//! directories.

use std::ffi::OsStr;
use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use procfs::process::Process;

use crate::ctx::OWNER_ENV;
use crate::owner::RunId;

/// A process that outlived the test that started it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Survivor {
    /// Its pid.
    pub pid: i32,
    /// Its command line.
    pub command: String,
}

impl fmt::Display for Survivor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pid {} {}", self.pid, self.command)
    }
}

fn command_line(process: &Process) -> String {
    match process.cmdline() {
        Ok(words) if !words.is_empty() => words.join(" "),
        _ => process
            .stat()
            .map(|stat| format!("[{}]", stat.comm))
            .unwrap_or_default(),
    }
}

fn alive(process: &Process) -> bool {
    // A zombie has exited; it only waits for its parent to reap it.
    process
        .stat()
        .is_ok_and(|stat| stat.state != 'Z' && stat.state != 'X')
}

/// Live processes (other than this one) whose owner marker satisfies `matches`.
fn marked(matches: impl Fn(&OsStr) -> bool) -> Vec<Survivor> {
    let Ok(processes) = procfs::process::all_processes() else {
        return Vec::new();
    };
    let me = std::process::id() as i32;
    processes
        .filter_map(Result::ok)
        .filter(|process| process.pid != me)
        .filter(|process| {
            process.environ().is_ok_and(|environ| {
                environ
                    .get(OsStr::new(OWNER_ENV))
                    .is_some_and(|value| matches(value))
            })
        })
        .filter(alive)
        .map(|process| Survivor {
            pid: process.pid,
            command: command_line(&process),
        })
        .collect()
}

/// How long a found process gets to finish dying before it counts: one whose parent was just
/// killed may still be on its way out (e.g. a `PR_SET_PDEATHSIG` child).
const SETTLE: Duration = Duration::from_millis(500);

/// Scans with `scan` until it finds nothing or [`SETTLE`] has passed; returns the last scan.
fn settled(scan: impl Fn() -> Vec<Survivor>) -> Vec<Survivor> {
    let deadline = Instant::now() + SETTLE;
    loop {
        let found = scan();
        if found.is_empty() || Instant::now() >= deadline {
            return found;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Live processes whose environment has `REALTEST_OWNER=<owner>`.
pub fn survivors(owner: &str) -> Vec<Survivor> {
    settled(|| marked(|value| value == owner))
}

/// Live processes whose owner marker starts with `prefix` (any test of this run).
pub fn survivors_of_run(prefix: &str) -> Vec<Survivor> {
    settled(|| marked(|value| value.to_string_lossy().starts_with(prefix)))
}

/// Kills (SIGKILL) every live process of this run's tests (owner marker starting with
/// `prefix`) without waiting for them to die.
pub fn kill_run_now(prefix: &str) {
    for survivor in marked(|value| value.to_string_lossy().starts_with(prefix)) {
        let _ = kill(Pid::from_raw(survivor.pid), Signal::SIGKILL);
    }
}

/// Live direct children of this process that were not reaped (started outside `Ctx`), read
/// from `/proc/self/task/*/children` rather than a scan of every process.
pub fn unowned_children() -> Vec<Survivor> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    tasks
        .filter_map(Result::ok)
        .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
        .flat_map(|children| {
            children
                .split_whitespace()
                .filter_map(|pid| pid.parse().ok())
                .collect::<Vec<i32>>()
        })
        .filter_map(|pid| Process::new(pid).ok())
        .filter(alive)
        .map(|process| Survivor {
            pid: process.pid,
            command: command_line(&process),
        })
        .collect()
}

/// How long [`kill_all`] waits for killed processes to be gone.
const KILL_WAIT: Duration = Duration::from_secs(2);

/// Kills each survivor (SIGKILL) and waits, up to [`KILL_WAIT`], until none is alive any more
/// (their parents reap them; the harness reaps its own children through their `Child` handles).
pub fn kill_all(survivors: &[Survivor]) {
    for survivor in survivors {
        let _ = kill(Pid::from_raw(survivor.pid), Signal::SIGKILL);
    }
    let deadline = Instant::now() + KILL_WAIT;
    let still_alive = |s: &Survivor| Process::new(s.pid).is_ok_and(|p| alive(&p));
    while Instant::now() < deadline && survivors.iter().any(still_alive) {
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Kills the processes and removes the temporary directories (in `temp_dir`) of earlier runs
/// that are no longer alive, and returns one line per process and directory for the console.
pub fn sweep_dead_runs(temp_dir: &Path) -> Vec<String> {
    let dead = |value: &OsStr| RunId::of_marker(value).is_some_and(|run| !run.is_alive());
    let processes = marked(dead);
    kill_all(&processes);
    let mut lines: Vec<String> = processes
        .iter()
        .map(|process| format!("killed {process}, left by an earlier run that is gone"))
        .collect();
    let me = nix::unistd::geteuid().as_raw();
    let Ok(entries) = std::fs::read_dir(temp_dir) else {
        return lines;
    };
    for entry in entries.filter_map(Result::ok) {
        let is_own_dir = entry
            .metadata()
            .is_ok_and(|meta| meta.is_dir() && meta.uid() == me);
        let of_dead_run = RunId::of_temp_dir(&entry.file_name()).is_some_and(|run| !run.is_alive());
        if !(is_own_dir && of_dead_run) {
            continue;
        }
        let path = entry.path();
        lines.push(match std::fs::remove_dir_all(&path) {
            Ok(()) => format!(
                "removed {}, left by an earlier run that is gone",
                path.display()
            ),
            Err(err) => format!(
                "could not remove {}, left by an earlier run that is gone: {err}",
                path.display()
            ),
        });
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_start_sweep_takes_what_dead_runs_left_and_nothing_of_live_ones() {
        let me = RunId::this_run();
        let dead = RunId {
            start: me.start + 1,
            ..me
        };
        let temp = tempfile::tempdir().unwrap();
        let dead_dir = temp
            .path()
            .join(format!("{}AbC123", dead.temp_dir_prefix("service")));
        let live_dir = temp
            .path()
            .join(format!("{}XyZ789", me.temp_dir_prefix("service")));
        for dir in [&dead_dir, &live_dir] {
            std::fs::create_dir_all(dir.join("data")).unwrap();
        }
        let spawn_marked = |run: RunId| {
            std::process::Command::new("sleep")
                .arg("60")
                .env(OWNER_ENV, format!("{}0", run.marker_prefix()))
                .spawn()
                .unwrap()
        };
        let mut orphan = spawn_marked(dead);
        let mut ours = spawn_marked(me);
        // A just-spawned process shows its environment only once exec is done.
        let deadline = Instant::now() + Duration::from_secs(10);
        while marked(|value| RunId::of_marker(value) == Some(dead)).is_empty() {
            assert!(Instant::now() < deadline, "the marked process never showed");
            std::thread::sleep(Duration::from_millis(10));
        }

        let lines = sweep_dead_runs(temp.path());

        let orphan_line = format!(
            "killed pid {} sleep 60, left by an earlier run",
            orphan.id()
        );
        assert!(
            lines.iter().any(|l| l.starts_with(&orphan_line)),
            "{lines:?}"
        );
        assert!(
            lines.contains(&format!(
                "removed {}, left by an earlier run that is gone",
                dead_dir.display()
            )),
            "{lines:?}"
        );
        let ours_line = format!("killed pid {} ", ours.id());
        assert!(
            !lines
                .iter()
                .any(|l| l.starts_with(&ours_line) || l.contains(&live_dir.display().to_string())),
            "{lines:?}"
        );
        assert!(
            orphan.wait().unwrap().code().is_none(),
            "killed by a signal"
        );
        assert!(!dead_dir.exists());
        assert!(
            live_dir.join("data").is_dir(),
            "a live run's directory stays"
        );
        assert!(
            ours.try_wait().unwrap().is_none(),
            "a live run's process stays"
        );
        ours.kill().unwrap();
        ours.wait().unwrap();
    }
}
