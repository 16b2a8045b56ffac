//! Every child process of the service is spawned here: in its own process group, with stdin
//! piped or null, stderr captured (the tail is kept for error reports), a wall-clock limit, and
//! the whole group killed on drop. The only `Command::new` of the service is in this file.

use std::collections::VecDeque;
use std::fmt;
use std::process::{ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex, OnceLock, PoisonError, RwLock};
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::task::JoinHandle;

/// Lines of output kept for error reports.
const STDERR_TAIL_LINES: usize = 20;
/// How long `wait` lets the output readers finish after the child exited.
const PIPE_DRAIN: Duration = Duration::from_millis(500);

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandSpec {
    /// The program (name on PATH or path).
    pub program: String,
    /// Arguments, not including the program.
    pub args: Vec<String>,
    /// Whether the child gets a stdin pipe (FFmpeg stops cleanly on `q`) or `/dev/null`.
    pub stdin: StdinMode,
    /// Whether stdout is returned raw ([`run_capturing`]) or, like stderr, logged and kept in
    /// the tail used for error reports.
    pub capture_stdout: bool,
}

/// The child's stdin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StdinMode {
    /// `/dev/null`.
    Null,
    /// A pipe kept by [`ManagedChild`]; [`ManagedChild::stop`] writes `q` to it.
    Piped,
}

impl CommandSpec {
    /// A command with stdin from `/dev/null`.
    pub fn new(program: impl Into<String>, args: Vec<String>) -> Self {
        Self {
            program: program.into(),
            args,
            stdin: StdinMode::Null,
            capture_stdout: false,
        }
    }

    /// The same command with a stdin pipe.
    pub fn with_stdin_pipe(mut self) -> Self {
        self.stdin = StdinMode::Piped;
        self
    }

    /// Program and arguments, for messages.
    pub fn argv(&self) -> Argv {
        Argv(
            std::iter::once(self.program.clone())
                .chain(self.args.iter().cloned())
                .collect(),
        )
    }
}

/// A command line, displayed shell-quoted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Argv(pub Vec<String>);

impl fmt::Display for Argv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, arg) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            let plain = !arg.is_empty()
                && arg
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./:=+,@%".contains(c));
            if plain {
                f.write_str(arg)?;
            } else {
                write!(f, "'{}'", arg.replace('\'', r"'\''"))?;
            }
        }
        Ok(())
    }
}

/// A child process failure, with what reproduces it.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The program could not be started.
    #[error("failed to start `{argv}`: {source}")]
    Spawn {
        /// The command.
        argv: Argv,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Waiting for the child failed.
    #[error("failed to wait for `{argv}`: {source}")]
    Wait {
        /// The command.
        argv: Argv,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The child exited unsuccessfully.
    #[error("`{argv}` {status}\n--- stderr (tail):\n{stderr_tail}")]
    Failed {
        /// The command.
        argv: Argv,
        /// How it ended.
        status: ExitStatus,
        /// Last lines of stderr.
        stderr_tail: String,
    },
    /// The child ran past its wall-clock limit and was killed.
    #[error("`{argv}` ran longer than {} and was killed\n--- stderr (tail):\n{stderr_tail}",
        humantime::format_duration(*limit))]
    TimedOut {
        /// The command.
        argv: Argv,
        /// The limit.
        limit: Duration,
        /// Last lines of stderr.
        stderr_tail: String,
    },
}

impl ProcessError {
    /// A one-line summary for clients: what happened and the last output line, without the
    /// command line (which holds server paths). The full error goes to the log.
    pub fn summary(&self) -> String {
        let last_line = |tail: &str| {
            tail.lines()
                .last()
                .map(|line| format!(": {line}"))
                .unwrap_or_default()
        };
        match self {
            ProcessError::Spawn { argv, source } => {
                format!("cannot start {}: {source}", program_name(argv))
            }
            ProcessError::Wait { argv, source } => {
                format!("lost track of {}: {source}", program_name(argv))
            }
            ProcessError::Failed {
                argv,
                status,
                stderr_tail,
            } => format!("{} {status}{}", program_name(argv), last_line(stderr_tail)),
            ProcessError::TimedOut {
                argv,
                limit,
                stderr_tail,
            } => format!(
                "{} ran longer than {} and was killed{}",
                program_name(argv),
                humantime::format_duration(*limit),
                last_line(stderr_tail)
            ),
        }
    }
}

fn program_name(argv: &Argv) -> String {
    argv.0
        .first()
        .map(|p| {
            std::path::Path::new(p)
                .file_name()
                .map_or_else(|| p.clone(), |n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_default()
}

type Tail = Arc<Mutex<VecDeque<String>>>;

/// Runs `spec` to completion within `limit` and returns its stdout (lossy UTF-8).
pub async fn run_capturing(spec: &CommandSpec, limit: Duration) -> Result<String, ProcessError> {
    let mut spec = spec.clone();
    spec.capture_stdout = true;
    let mut child = spawn(&spec)?;
    let mut stdout = child.child.stdout.take();
    let read = async {
        let mut bytes = Vec::new();
        if let Some(stdout) = stdout.as_mut() {
            let _ = stdout.read_to_end(&mut bytes).await;
        }
        bytes
    };
    let (status, bytes) = tokio::join!(child.wait_with_limit(limit), read);
    child.check_success(status?)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// A running child in its own process group. Dropping it kills the whole group with SIGKILL
/// (tokio reaps the zombie); [`ManagedChild::stop`] and [`ManagedChild::wait`] reap explicitly.
#[derive(Debug)]
pub struct ManagedChild {
    child: Child,
    pgid: Pid,
    argv: Argv,
    stdin: Option<ChildStdin>,
    tail: Tail,
    readers: Vec<JoinHandle<()>>,
    reaped: bool,
}

/// Held shared while a child is forked and exclusively while V4L2 nodes are open for probing:
/// the `v4l` crate opens nodes without close-on-exec, so a child forked meanwhile (an FFmpeg
/// starting a snapshot) would inherit the descriptor and hold the device for its whole life.
static FORK_GATE: RwLock<()> = RwLock::new(());

/// Runs `f` while no child is being forked.
pub fn without_forks<T>(f: impl FnOnce() -> T) -> T {
    let _gate = FORK_GATE.write().unwrap_or_else(PoisonError::into_inner);
    f()
}

/// Spawns `spec` in a new process group. Call it inside the tokio runtime; the fork itself
/// happens on the spawner thread (see [`spawner`]).
pub fn spawn(spec: &CommandSpec) -> Result<ManagedChild, ProcessError> {
    let argv = spec.argv();
    let mut command = Command::new(&spec.program);
    command
        .args(&spec.args)
        .process_group(0)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(match spec.stdin {
            StdinMode::Null => Stdio::null(),
            StdinMode::Piped => Stdio::piped(),
        });
    die_with_parent(&mut command);
    let mut child = spawn_on_spawner_thread(command).map_err(|source| ProcessError::Spawn {
        argv: argv.clone(),
        source,
    })?;
    let pid = child.id().expect("a just-spawned child has a pid");
    let pgid = Pid::from_raw(i32::try_from(pid).expect("pids fit in i32"));
    tracing::debug!(pid, %argv, "spawned");
    let tail: Tail = Arc::default();
    let mut readers = Vec::new();
    if let Some(stderr) = child.stderr.take() {
        readers.push(tokio::spawn(log_lines(stderr, pid, Arc::clone(&tail))));
    }
    if !spec.capture_stdout {
        if let Some(stdout) = child.stdout.take() {
            readers.push(tokio::spawn(log_lines(stdout, pid, Arc::clone(&tail))));
        }
    }
    Ok(ManagedChild {
        stdin: child.stdin.take(),
        child,
        pgid,
        argv,
        tail,
        readers,
        reaped: false,
    })
}

/// A command for the spawner thread, the runtime its child's pipes and reaping belong to, and
/// where the child goes.
struct SpawnRequest {
    command: Command,
    runtime: tokio::runtime::Handle,
    reply: mpsc::Sender<std::io::Result<Child>>,
}

/// The thread that forks every child of the service. `PR_SET_PDEATHSIG` fires when the
/// *thread* that forked the child exits, not the process. The thread that calls [`spawn`] is a
/// tokio thread, and those are blocking-pool threads: a runtime worker ends when its core is
/// handed on (`block_in_place`), a `spawn_blocking` thread after 10 s without work — and the
/// kernel would then kill a recording's FFmpeg in the middle. This thread lives as long as the
/// process, so children die exactly when the service does.
fn spawner() -> std::io::Result<&'static mpsc::Sender<SpawnRequest>> {
    static SPAWNER: OnceLock<mpsc::Sender<SpawnRequest>> = OnceLock::new();
    if let Some(sender) = SPAWNER.get() {
        return Ok(sender);
    }
    let (sender, requests) = mpsc::channel::<SpawnRequest>();
    let mut started = None;
    let sender = SPAWNER.get_or_init(|| {
        started = Some(
            std::thread::Builder::new()
                .name("process-spawner".to_owned())
                .spawn(move || {
                    for mut request in requests {
                        let _runtime = request.runtime.enter();
                        let _gate = FORK_GATE.read().unwrap_or_else(PoisonError::into_inner);
                        let _ = request.reply.send(request.command.spawn());
                    }
                }),
        );
        sender
    });
    match started {
        Some(Err(e)) => Err(e),
        _ => Ok(sender),
    }
}

/// Runs `command.spawn()` on the spawner thread, in the caller's runtime.
fn spawn_on_spawner_thread(command: Command) -> std::io::Result<Child> {
    let runtime = tokio::runtime::Handle::try_current()
        .map_err(|e| std::io::Error::other(format!("not inside the tokio runtime: {e}")))?;
    let gone = || std::io::Error::other("the process spawner thread is gone");
    let (reply, result) = mpsc::channel();
    spawner()?
        .send(SpawnRequest {
            command,
            runtime,
            reply,
        })
        .map_err(|_| gone())?;
    result.recv().map_err(|_| gone())?
}

/// Makes the kernel SIGKILL the child if the service dies without stopping it (crash, SIGKILL),
/// so no FFmpeg or MediaMTX outlives the service. The signal fires when the forking thread
/// exits: the spawner thread, which lives as long as the process. A child whose parent died
/// before the setting took effect exits at once.
#[expect(
    unsafe_code,
    reason = "pre_exec is the only way to run prctl in the child"
)]
fn die_with_parent(command: &mut Command) {
    let parent = nix::unistd::getpid();
    // SAFETY: between fork and exec only the async-signal-safe prctl(2) and getppid(2) system
    // calls run; they allocate nothing and take no locks.
    unsafe {
        command.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)?;
            if nix::unistd::getppid() != parent {
                return Err(std::io::Error::other(
                    "the service exited while this child started",
                ));
            }
            Ok(())
        });
    }
}

/// Logs each line of a child's output and keeps the last ones in `tail`.
async fn log_lines(pipe: impl tokio::io::AsyncRead + Unpin, pid: u32, tail: Tail) {
    let mut lines = BufReader::new(pipe).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        tracing::debug!(pid, "output: {line}");
        let mut tail = tail.lock().expect("output tail lock");
        if tail.len() == STDERR_TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(line);
    }
}

/// Runs `spec` to completion within `limit`; a non-zero exit is [`ProcessError::Failed`].
pub async fn run(spec: &CommandSpec, limit: Duration) -> Result<(), ProcessError> {
    let mut child = spawn(spec)?;
    let status = child.wait_with_limit(limit).await?;
    child.check_success(status)
}

impl ManagedChild {
    /// The process (and process group) id.
    pub fn pid(&self) -> i32 {
        self.pgid.as_raw()
    }

    /// The command line.
    pub fn argv(&self) -> &Argv {
        &self.argv
    }

    /// The last lines of stderr seen so far.
    pub fn stderr_tail(&self) -> String {
        let tail = self.tail.lock().expect("stderr tail lock");
        tail.iter().cloned().collect::<Vec<_>>().join("\n")
    }

    /// Waits for the child to exit and reaps it (cancel-safe).
    pub async fn wait(&mut self) -> Result<ExitStatus, ProcessError> {
        let status = self
            .child
            .wait()
            .await
            .map_err(|source| ProcessError::Wait {
                argv: self.argv.clone(),
                source,
            })?;
        self.reaped = true;
        // The pipes close when the group is gone; do not hang on a grandchild holding one.
        for reader in std::mem::take(&mut self.readers) {
            let _ = tokio::time::timeout(PIPE_DRAIN, reader).await;
        }
        Ok(status)
    }

    /// Waits at most `limit`; past it the group is killed and [`ProcessError::TimedOut`] returned.
    pub async fn wait_with_limit(&mut self, limit: Duration) -> Result<ExitStatus, ProcessError> {
        match tokio::time::timeout(limit, self.wait()).await {
            Ok(result) => result,
            Err(_elapsed) => {
                self.signal_group(Signal::SIGKILL);
                self.wait().await?;
                Err(ProcessError::TimedOut {
                    argv: self.argv.clone(),
                    limit,
                    stderr_tail: self.stderr_tail(),
                })
            }
        }
    }

    /// `Ok` for a zero exit status, else [`ProcessError::Failed`] with the stderr tail.
    pub fn check_success(&self, status: ExitStatus) -> Result<(), ProcessError> {
        if status.success() {
            Ok(())
        } else {
            Err(ProcessError::Failed {
                argv: self.argv.clone(),
                status,
                stderr_tail: self.stderr_tail(),
            })
        }
    }

    /// Stops the child: `q` on stdin (when piped), then SIGTERM to the group, then SIGKILL, each
    /// step waiting up to `grace`. Returns the exit status.
    pub async fn stop(mut self, grace: Duration) -> Result<ExitStatus, ProcessError> {
        if let Some(mut stdin) = self.stdin.take() {
            if stdin.write_all(b"q").await.is_ok() {
                let _ = stdin.flush().await;
                if let Ok(result) = tokio::time::timeout(grace, self.wait()).await {
                    return result;
                }
            }
        }
        self.stop_with(Signal::SIGTERM, grace).await
    }

    /// Stops the child with `signal` to the group, then SIGKILL, each step waiting up to
    /// `grace` — for a program that shuts down gracefully on another signal than SIGTERM.
    /// Returns the exit status.
    pub async fn stop_with(
        mut self,
        signal: Signal,
        grace: Duration,
    ) -> Result<ExitStatus, ProcessError> {
        for signal in [signal, Signal::SIGKILL] {
            self.signal_group(signal);
            if let Ok(result) = tokio::time::timeout(grace, self.wait()).await {
                return result;
            }
        }
        self.wait().await
    }

    fn signal_group(&self, signal: Signal) {
        if self.reaped {
            return;
        }
        if let Err(errno) = killpg(self.pgid, signal) {
            tracing::debug!(pgid = self.pgid.as_raw(), %errno, ?signal, "killpg failed");
        }
    }
}

impl Drop for ManagedChild {
    fn drop(&mut self) {
        if !self.reaped {
            tracing::debug!(pid = self.pgid.as_raw(), argv = %self.argv, "killing process group on drop");
            self.signal_group(Signal::SIGKILL);
            // tokio reaps a dropped, exited child in the background.
        }
    }
}
