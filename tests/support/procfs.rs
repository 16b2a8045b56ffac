//! Reading process relations and states from /proc.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Pids whose parent is `pid`, from procfs.
pub fn children_of(pid: u32) -> Vec<i32> {
    let mut children = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some(after) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
            continue;
        };
        let ppid = after
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(pid) {
            children.push(child);
        }
    }
    children
}

/// Whether `pid` is still a live process (not gone, not a zombie).
pub fn is_alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| stat.rfind(')').map(|i| stat[i + 2..].starts_with('Z')))
        .is_some_and(|zombie| !zombie)
}

/// Every descendant of `pid` (children, their children, …), from procfs.
pub fn descendants_of(pid: u32) -> Vec<i32> {
    let mut found = Vec::new();
    let mut queue = vec![pid];
    while let Some(parent) = queue.pop() {
        for child in children_of(parent) {
            if is_alive(child) {
                found.push(child);
            }
            queue.push(child as u32);
        }
    }
    found
}

/// The command line of `pid`, arguments joined by spaces (empty when gone).
pub fn cmdline(pid: i32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|raw| {
            raw.split(|b| *b == 0)
                .filter(|arg| !arg.is_empty())
                .map(|arg| String::from_utf8_lossy(arg).into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

/// The value of environment variable `key` in `pid`'s initial environment.
pub fn environ_value(pid: i32, key: &str) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    raw.split(|b| *b == 0).find_map(|entry| {
        let entry = String::from_utf8_lossy(entry);
        entry
            .strip_prefix(key)
            .and_then(|rest| rest.strip_prefix('='))
            .map(str::to_owned)
    })
}

/// Live processes (not zombies) whose environment has `key=value`.
pub fn processes_with_env(key: &str, value: &str) -> Vec<i32> {
    processes_with_env_matching(key, |found| found == value)
}

/// Live processes (not zombies) other than this one whose environment has `key` with a value
/// that satisfies `matches`.
pub fn processes_with_env_matching(key: &str, matches: impl Fn(&str) -> bool) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.file_name().to_string_lossy().parse::<i32>().ok())
        .filter(|pid| *pid != std::process::id() as i32)
        .filter(|pid| is_alive(*pid) && environ_value(*pid, key).is_some_and(|v| matches(&v)))
        .collect()
}

/// `pid`'s start time (clock ticks after boot, `/proc/PID/stat` field 22).
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    // `after` starts at field 3 (state).
    after.split_whitespace().nth(19)?.parse().ok()
}

/// Targets of `pid`'s open file descriptors (`/proc/PID/fd/*` links).
pub fn open_fds(pid: u32) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| std::fs::read_link(entry.path()).ok())
        .collect()
}

/// Open file descriptors of `pid` on `/dev/video*` nodes.
pub fn video_fds(pid: u32) -> Vec<std::path::PathBuf> {
    open_fds(pid)
        .into_iter()
        .filter(|target| target.to_string_lossy().starts_with("/dev/video"))
        .collect()
}

/// Resident set size of `pid` in KiB (`VmRSS` in `/proc/PID/status`).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
}

/// Number of threads of `pid` (`Threads` in `/proc/PID/status`).
pub fn threads(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("Threads:"))
        .and_then(|value| value.trim().parse().ok())
}

/// Which processes of a process tree hold a device open, sampled on a thread of its own for as
/// long as it runs: a second reader that opens a V4L2 node only for a moment (a snapshot's
/// FFmpeg) is seen, which a single look before and after would miss.
pub struct DeviceHolderSampler {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<DeviceHolders>>,
}

/// What a [`DeviceHolderSampler`] saw.
#[derive(Debug, Default)]
pub struct DeviceHolders {
    /// Number of samples taken.
    pub samples: usize,
    /// The most processes that held the device in one sample.
    pub most_at_once: usize,
    /// Every process that held it in any sample, with its command line.
    pub seen: BTreeMap<i32, String>,
}

impl DeviceHolderSampler {
    /// Starts sampling the holders of `device` among `root` and its descendants.
    pub fn start(device: &Path, root: u32) -> Self {
        let device = std::fs::canonicalize(device).unwrap_or_else(|_| device.to_path_buf());
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut holders = DeviceHolders::default();
            while !stopping.load(Ordering::Relaxed) {
                let now: Vec<i32> = descendants_of(root)
                    .into_iter()
                    .chain([root as i32])
                    .filter(|pid| open_fds(*pid as u32).contains(&device))
                    .collect();
                holders.samples += 1;
                holders.most_at_once = holders.most_at_once.max(now.len());
                for pid in now {
                    holders.seen.entry(pid).or_insert_with(|| cmdline(pid));
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            holders
        });
        Self {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops sampling and returns what was seen.
    pub fn finish(mut self) -> DeviceHolders {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .map(|thread| thread.join().unwrap_or_default())
            .unwrap_or_default()
    }
}

impl Drop for DeviceHolderSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl DeviceHolders {
    /// Exactly one process held the device throughout, and it was an FFmpeg.
    pub fn ensure_one_ffmpeg_reader(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.most_at_once == 1 && self.seen.len() == 1,
            "expected exactly one reader of the device; {} samples, at most {} at once, seen: \
             {:?}",
            self.samples,
            self.most_at_once,
            self.seen
        );
        let (pid, command) = self.seen.iter().next().expect("one holder");
        anyhow::ensure!(
            command.starts_with("ffmpeg") || command.contains("/ffmpeg "),
            "the one reader (pid {pid}) is not an FFmpeg: {command}"
        );
        Ok(())
    }
}
