//! Who owns what a run leaves on the machine: the run's id `<pid>-<start time>` (the start time
//! tells a reused pid from the run's own), the `REALTEST_OWNER` markers of its tests'
//! processes (`<run id>-<test index>`) and the names of its temporary directories
//! (`realtest-<purpose>-<run id>-XXXXXX`); and whether the run that made one is still alive.

use std::ffi::OsStr;
use std::sync::OnceLock;

use procfs::process::Process;

/// The run that made a marker or a directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunId {
    /// The harness process's pid.
    pub pid: i32,
    /// Its start time (clock ticks after boot, `/proc/PID/stat` field 22).
    pub start: u64,
}

impl std::fmt::Display for RunId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.pid, self.start)
    }
}

impl RunId {
    /// This process's run id.
    pub fn this_run() -> RunId {
        static THIS: OnceLock<RunId> = OnceLock::new();
        *THIS.get_or_init(|| RunId {
            pid: std::process::id() as i32,
            start: Process::myself()
                .and_then(|me| me.stat())
                .map_or(0, |stat| stat.starttime),
        })
    }

    /// Whether the process of that run still runs (a zombie, which only waits to be reaped, or
    /// a new process with the same pid does not).
    pub fn is_alive(&self) -> bool {
        Process::new(self.pid)
            .and_then(|process| process.stat())
            .is_ok_and(|stat| stat.starttime == self.start && stat.state != 'Z')
    }

    /// The run of a `REALTEST_OWNER` value `<pid>-<start>-<test index>`.
    pub fn of_marker(value: &OsStr) -> Option<RunId> {
        let value = value.to_str()?;
        let mut parts = value.split('-');
        let run = RunId {
            pid: parts.next()?.parse().ok()?,
            start: parts.next()?.parse().ok()?,
        };
        parts.next()?.parse::<usize>().ok()?;
        parts.next().is_none().then_some(run)
    }

    /// The `REALTEST_OWNER` prefix shared by every test of the run.
    pub fn marker_prefix(&self) -> String {
        format!("{self}-")
    }

    /// The prefix of a temporary directory made for `purpose` by this run.
    pub fn temp_dir_prefix(&self, purpose: &str) -> String {
        format!("realtest-{purpose}-{self}-")
    }

    /// The run of a temporary directory named `realtest-<purpose>-<pid>-<start>-XXXXXX`.
    pub fn of_temp_dir(name: &OsStr) -> Option<RunId> {
        let rest = name.to_str()?.strip_prefix("realtest-")?;
        let mut parts = rest.rsplitn(4, '-');
        let random = parts.next()?;
        let start = parts.next()?.parse().ok()?;
        let pid = parts.next()?.parse().ok()?;
        let purpose = parts.next()?;
        (!random.is_empty() && !purpose.is_empty()).then_some(RunId { pid, start })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_and_directory_names_name_their_run() {
        let run = RunId {
            pid: 4321,
            start: 987_654,
        };
        let marker = format!("{}7", run.marker_prefix());
        assert_eq!(marker, "4321-987654-7");
        assert_eq!(RunId::of_marker(OsStr::new(&marker)), Some(run));
        for bad in [
            "4321-7",
            "4321-987654-7-1",
            "x-987654-7",
            "4321-987654-",
            "",
        ] {
            assert_eq!(RunId::of_marker(OsStr::new(bad)), None, "{bad}");
        }
        let dir = format!("{}AbC123", run.temp_dir_prefix("rtsp-server"));
        assert_eq!(dir, "realtest-rtsp-server-4321-987654-AbC123");
        assert_eq!(RunId::of_temp_dir(OsStr::new(&dir)), Some(run));
        for bad in [
            "realtest-tools-0.json",
            "realtest-leases",
            "realtest-4321-987654-AbC123",
            "realtest-service-4321-987654-",
            "other-service-4321-987654-AbC123",
        ] {
            assert_eq!(RunId::of_temp_dir(OsStr::new(bad)), None, "{bad}");
        }
    }

    #[test]
    fn this_run_is_alive_and_a_made_up_one_is_not() {
        let me = RunId::this_run();
        assert_eq!(me.pid, std::process::id() as i32);
        assert!(me.is_alive());
        let restarted = RunId {
            start: me.start + 1,
            ..me
        };
        assert!(!restarted.is_alive(), "same pid, other start time");
    }
}
