//! Which run a process belongs to, so that the binaries (and nextest's processes) of one run add
//! to the report while a new run replaces it.
//!
//! - Under nextest every test process, and since 0.9.138 every listing, has `NEXTEST_RUN_ID`.
//! - Under `cargo test` every test binary is a child of the same cargo process: the parent's pid
//!   and start time (which together never repeat while the machine is up) name the run. A
//!   script that runs several binaries in turn is one run the same way.

use procfs::process::Process;

/// The run this process belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    id: String,
    nextest: bool,
}

impl Invocation {
    /// The run of this process, from its environment and parent.
    pub fn current() -> Invocation {
        match std::env::var("NEXTEST_RUN_ID") {
            Ok(id) if !id.trim().is_empty() => Invocation::nextest(&id),
            _ => Invocation::parent(),
        }
    }

    fn nextest(run_id: &str) -> Invocation {
        Invocation {
            id: format!("nextest-{}", sanitize(run_id)),
            nextest: true,
        }
    }

    fn parent() -> Invocation {
        let parent = Process::myself()
            .and_then(|me| me.stat())
            .and_then(|stat| Process::new(stat.ppid))
            .and_then(|parent| parent.stat());
        let id = match parent {
            Ok(stat) => format!("{}-{}-{}", sanitize(&stat.comm), stat.pid, stat.starttime),
            // No /proc: every process is its own run (the file then holds the last binary).
            Err(_) => format!("pid-{}", std::process::id()),
        };
        Invocation { id, nextest: false }
    }

    /// A run with a given id (tests).
    #[cfg(test)]
    pub fn with_id(id: &str) -> Invocation {
        Invocation {
            id: sanitize(id),
            nextest: false,
        }
    }

    /// The run's id: also a directory name (`[A-Za-z0-9._-]`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Whether the run is nextest's.
    pub fn is_nextest(&self) -> bool {
        self.nextest
    }
}

fn sanitize(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Whether this process is listed by `cargo nextest list` (no run follows), told from the
/// parent's command line (`cargo-nextest nextest list …`). A listing run through a wrapper
/// counts as part of a run.
pub fn nextest_only_lists() -> bool {
    let cmdline = Process::myself()
        .and_then(|me| me.stat())
        .and_then(|stat| Process::new(stat.ppid))
        .and_then(|parent| parent.cmdline());
    cmdline.is_ok_and(|args| subcommand(&args) == Some("list"))
}

/// The nextest subcommand in a `cargo-nextest` command line.
fn subcommand(args: &[String]) -> Option<&str> {
    let program = args.first()?;
    if !program.rsplit('/').next()?.starts_with("cargo-nextest") {
        return None;
    }
    args[1..]
        .iter()
        .map(String::as_str)
        .filter(|arg| *arg != "nextest")
        .find(|arg| !arg.starts_with('-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nextest_subcommand_is_read_from_its_command_line() {
        let args = |line: &str| line.split(' ').map(String::from).collect::<Vec<_>>();
        assert_eq!(
            subcommand(&args(
                "/usr/local/bin/cargo-nextest nextest list --workspace"
            )),
            Some("list")
        );
        assert_eq!(
            subcommand(&args("cargo-nextest nextest run --archive-file a.tar.zst")),
            Some("run")
        );
        assert_eq!(subcommand(&args("/usr/bin/bash -c list")), None);
    }

    #[test]
    fn runs_are_named_by_nextest_or_by_the_parent_process() {
        let run = Invocation::nextest("1f79aa0d-4ec8-4a5c-aa83-5e8dc2f36573");
        assert_eq!(run.id(), "nextest-1f79aa0d-4ec8-4a5c-aa83-5e8dc2f36573");
        assert!(run.is_nextest());
        // Two looks at the same parent name the same run.
        assert_eq!(Invocation::parent(), Invocation::parent());
        assert!(!Invocation::parent().is_nextest());
    }
}
