//! Owned child processes: each in its own process group, output captured line by line, stopped
//! (SIGTERM to the group, grace period, SIGKILL) and reaped when dropped.
//!
//! This is the only module that starts processes.

use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex, OnceLock, PoisonError, RwLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

use crate::ctx::Log;

/// How long a stopped group gets between SIGTERM and SIGKILL when a child is dropped.
pub const DROP_GRACE: Duration = Duration::from_millis(500);
/// How long to wait for a stopped child's pipes to close before leaving their readers behind.
const READER_GRACE: Duration = Duration::from_secs(1);
const POLL: Duration = Duration::from_millis(10);

/// Errors from starting or waiting for a child process.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The program could not be started.
    #[error("failed to start `{command}`: {source}")]
    Spawn {
        /// The command line.
        command: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The process did not finish in time; it was killed.
    #[error(
        "`{command}` did not finish within {timeout:?}; killed it. stderr tail:\n{stderr_tail}"
    )]
    TimedOut {
        /// The command line.
        command: String,
        /// The limit.
        timeout: Duration,
        /// Last lines of its standard error.
        stderr_tail: String,
    },
    /// Waiting for the process failed.
    #[error("failed to wait for `{command}`: {source}")]
    Wait {
        /// The command line.
        command: String,
        /// Why.
        #[source]
        source: io::Error,
    },
}

/// A shell-like rendering of a command, for messages.
pub fn describe(command: &Command) -> String {
    let mut words = vec![command.get_program().to_string_lossy().into_owned()];
    words.extend(command.get_args().map(|arg| {
        let arg = arg.to_string_lossy();
        if arg.is_empty() || arg.contains(char::is_whitespace) {
            format!("'{arg}'")
        } else {
            arg.into_owned()
        }
    }));
    words.join(" ")
}

/// Held shared while a child is forked and exclusively while V4L2 nodes are open for probing:
/// the `v4l` crate opens nodes without close-on-exec, so a child forked meanwhile would inherit
/// the descriptor and hold the device for its whole life (a v4l2loopback node then keeps a stale
/// format and cannot be unloaded).
static FORK_GATE: RwLock<()> = RwLock::new(());

/// Runs `f` while no child is being forked by the harness.
pub fn without_forks<T>(f: impl FnOnce() -> T) -> T {
    let _gate = FORK_GATE.write().unwrap_or_else(PoisonError::into_inner);
    f()
}

/// Starts `command` in a new process group, stdin from `/dev/null`, stdout and stderr piped;
/// returns the child and the command line for messages. The fork happens on the spawner thread
/// (see [`spawner`]).
fn spawn_in_own_group(command: &mut Command) -> Result<(Child, String), ProcessError> {
    let description = describe(command);
    command
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    match spawn_on_spawner_thread(command) {
        Ok(child) => Ok((child, description)),
        Err(source) => Err(ProcessError::Spawn {
            command: description,
            source,
        }),
    }
}

/// A command for the spawner thread, and where its result goes (with the command, which is
/// handed back to its owner).
type SpawnRequest = (Command, mpsc::Sender<(Command, io::Result<Child>)>);

/// The thread that forks every child of the harness. `PR_SET_PDEATHSIG` fires when the thread
/// that forked the child exits, not the process: forking from test threads (a tokio runtime
/// of an async test, a libtest thread) would kill children whenever that thread ends. This
/// thread lives as long as the process, so its children die exactly when the harness does
/// (also by SIGKILL or a crash).
fn spawner() -> io::Result<&'static mpsc::Sender<SpawnRequest>> {
    static SPAWNER: OnceLock<mpsc::Sender<SpawnRequest>> = OnceLock::new();
    if let Some(sender) = SPAWNER.get() {
        return Ok(sender);
    }
    let (sender, requests) = mpsc::channel::<SpawnRequest>();
    let mut started = None;
    let sender = SPAWNER.get_or_init(|| {
        started = Some(
            thread::Builder::new()
                .name("realtest-spawner".to_string())
                .spawn(move || {
                    for (mut command, reply) in requests {
                        let result = if REFUSING.load(Ordering::SeqCst) {
                            Err(io::Error::other("the run is being interrupted"))
                        } else {
                            fork_dying_with_parent(&mut command)
                        };
                        let _ = reply.send((command, result));
                    }
                }),
        );
        sender
    });
    match started {
        Some(Err(err)) => Err(err),
        _ => Ok(sender),
    }
}

/// Set once the run is being interrupted: nothing starts any more.
static REFUSING: AtomicBool = AtomicBool::new(false);

/// From now on every start of a process fails: the run is being interrupted, and a test body
/// that goes on must not start what nobody would stop.
pub(crate) fn refuse_spawns() {
    REFUSING.store(true, Ordering::SeqCst);
}

/// Runs `command.spawn()` on the spawner thread; `command` is the same afterwards.
fn spawn_on_spawner_thread(command: &mut Command) -> io::Result<Child> {
    let spawner = spawner()?;
    let (reply, result) = mpsc::channel();
    let owned = std::mem::replace(command, Command::new(""));
    spawner
        .send((owned, reply))
        .map_err(|_| io::Error::other("the realtest spawner thread is gone"))?;
    let (owned, spawned) = result
        .recv()
        .map_err(|_| io::Error::other("the realtest spawner thread is gone"))?;
    *command = owned;
    spawned
}

/// Forks `command` (on the calling thread) so that the kernel SIGKILLs the child when this
/// thread exits; a child whose parent died before the setting took effect exits at once.
#[expect(
    unsafe_code,
    reason = "pre_exec is the only way to run prctl in the child"
)]
fn fork_dying_with_parent(command: &mut Command) -> io::Result<Child> {
    let parent = nix::unistd::getpid();
    // SAFETY: between fork and exec only the async-signal-safe prctl(2) and getppid(2) system
    // calls run; they allocate nothing and take no locks.
    unsafe {
        command.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(io::Error::from)?;
            if nix::unistd::getppid() != parent {
                return Err(io::Error::other(
                    "the harness exited while this child started",
                ));
            }
            Ok(())
        });
    }
    let _gate = FORK_GATE.read().unwrap_or_else(PoisonError::into_inner);
    command.spawn()
}

/// Sends `signal` to process group `pgid`; a group that no longer exists is not an error.
fn signal_group(pgid: i32, signal: Signal) {
    let _ = killpg(Pid::from_raw(pgid), signal);
}

/// Stops a whole process group: SIGTERM, up to `grace` for `leader` to exit, then SIGKILL.
fn terminate_group(child: &mut Child, grace: Duration) -> io::Result<ExitStatus> {
    let pgid = child.id() as i32;
    if let Some(status) = child.try_wait()? {
        // The leader is gone; members of its group may not be.
        signal_group(pgid, Signal::SIGKILL);
        return Ok(status);
    }
    signal_group(pgid, Signal::SIGTERM);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait()? {
            signal_group(pgid, Signal::SIGKILL);
            return Ok(status);
        }
        thread::sleep(POLL);
    }
    signal_group(pgid, Signal::SIGKILL);
    child.wait()
}

/// Stops process groups that may still be running: SIGTERM to each, `grace`, then SIGKILL.
pub fn stop_groups(groups: &[u32], grace: Duration) {
    for pgid in groups {
        signal_group(*pgid as i32, Signal::SIGTERM);
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && groups.iter().any(|pgid| group_has_live_member(*pgid)) {
        thread::sleep(POLL);
    }
    for pgid in groups {
        signal_group(*pgid as i32, Signal::SIGKILL);
    }
}

/// The process groups of one test that may still have members, for the timeout and interrupt
/// paths to stop. A group leaves the list once its leader is reaped and the group killed: the
/// kernel may give a free id to an unrelated group, which must never be signalled.
#[derive(Debug, Default)]
pub(crate) struct ProcessGroups(Mutex<Vec<u32>>);

impl ProcessGroups {
    fn add(&self, pgid: u32) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(pgid);
    }

    fn remove(&self, pgid: u32) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|group| *group != pgid);
    }

    /// The groups that may have live members now.
    pub fn live(&self) -> Vec<u32> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Whether any process of group `pgid` is alive (zombies, which only wait to be reaped, do not
/// count).
fn group_has_live_member(pgid: u32) -> bool {
    let Ok(processes) = procfs::process::all_processes() else {
        return false;
    };
    processes.filter_map(Result::ok).any(|process| {
        process
            .stat()
            .is_ok_and(|stat| stat.pgrp == pgid as i32 && stat.state != 'Z')
    })
}

/// Lines a child has printed, shared with the threads that read its pipes.
#[derive(Default)]
struct OutputLines {
    state: Mutex<OutputState>,
    changed: Condvar,
}

#[derive(Default)]
struct OutputState {
    lines: Vec<String>,
    open_pipes: usize,
}

impl OutputLines {
    fn push(&self, line: String) {
        self.state.lock().unwrap().lines.push(line);
        self.changed.notify_all();
    }

    fn pipe_closed(&self) {
        self.state.lock().unwrap().open_pipes -= 1;
        self.changed.notify_all();
    }

    fn wait_closed(&self, timeout: Duration) -> bool {
        let state = self.state.lock().unwrap();
        let (state, _) = self
            .changed
            .wait_timeout_while(state, timeout, |state| state.open_pipes > 0)
            .unwrap();
        state.open_pipes == 0
    }

    fn tail(&self, count: usize) -> String {
        let state = self.state.lock().unwrap();
        let start = state.lines.len().saturating_sub(count);
        state.lines[start..].join("\n")
    }
}

/// A process started by a test through [`Ctx::spawn`](crate::Ctx::spawn).
///
/// It runs in its own process group with stdin from `/dev/null`; stdout and stderr are read line
/// by line into the test's captured log (prefixed with the program name and pid) and kept for
/// [`wait_for_output_line`](OwnedChild::wait_for_output_line). Dropping it stops the whole group
/// (SIGTERM, [`DROP_GRACE`], SIGKILL) and reaps it; [`stop`](OwnedChild::stop) does the same
/// with a grace period of your choice and returns the exit status.
pub struct OwnedChild {
    child: Child,
    command: String,
    output: Arc<OutputLines>,
    readers: Vec<JoinHandle<()>>,
    status: Option<ExitStatus>,
    groups: Arc<ProcessGroups>,
}

impl std::fmt::Debug for OwnedChild {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnedChild")
            .field("pid", &self.child.id())
            .field("command", &self.command)
            .finish()
    }
}

impl OwnedChild {
    /// Starts `command` as an owned child that logs into `log`, listed in `groups` until it is
    /// reaped; `env` is added to its environment.
    pub(crate) fn spawn(
        command: &mut Command,
        log: Arc<Log>,
        groups: Arc<ProcessGroups>,
        env: &[(&str, &str)],
    ) -> Result<OwnedChild, ProcessError> {
        for (key, value) in env {
            command.env(key, value);
        }
        let (mut child, description) = spawn_in_own_group(command)?;
        groups.add(child.id());
        let program = command
            .get_program()
            .to_string_lossy()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string();
        let label = format!("{program} {}", child.id());
        log.line(&format!("[{label}] started: {description}"));
        let output = Arc::new(OutputLines::default());
        output.state.lock().unwrap().open_pipes = 2;
        let mut readers = Vec::with_capacity(2);
        let pipes: [Option<Box<dyn Read + Send>>; 2] = [
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        ];
        for (pipe, is_stderr) in pipes.into_iter().zip([false, true]) {
            let Some(pipe) = pipe else { continue };
            let output = Arc::clone(&output);
            let log = Arc::clone(&log);
            let label = label.clone();
            readers.push(thread::spawn(move || {
                for line in BufReader::new(pipe).split(b'\n') {
                    let Ok(line) = line else { break };
                    let line = String::from_utf8_lossy(&line).trim_end().to_string();
                    let logged = format!("[{label}] {line}");
                    if is_stderr {
                        log.stderr_line(&logged);
                    } else {
                        log.line(&logged);
                    }
                    output.push(line);
                }
                output.pipe_closed();
            }));
        }
        Ok(OwnedChild {
            child,
            command: description,
            output,
            readers,
            status: None,
            groups,
        })
    }

    /// Process id, which is also the id of its process group.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The command line it was started with.
    pub fn command(&self) -> &str {
        &self.command
    }

    /// Everything it has printed so far (stdout and stderr interleaved by arrival), one line each.
    pub fn output(&self) -> Vec<String> {
        self.output.state.lock().unwrap().lines.clone()
    }

    /// Its exit status if it has exited (reaping it), without waiting.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        if self.status.is_none() {
            self.status = self.child.try_wait()?;
        }
        Ok(self.status)
    }

    /// Waits up to `timeout` for it to exit; `None` if it is still running.
    pub fn wait_timeout(&mut self, timeout: Duration) -> io::Result<Option<ExitStatus>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_wait()? {
                return Ok(Some(status));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            thread::sleep(POLL);
        }
    }

    /// Waits until a line of its output satisfies `matches` and returns that line. Fails when the
    /// process closes its output first or `timeout` passes; the error carries its last lines.
    pub fn wait_for_output_line(
        &self,
        mut matches: impl FnMut(&str) -> bool,
        timeout: Duration,
    ) -> anyhow::Result<String> {
        let deadline = Instant::now() + timeout;
        let mut seen = 0;
        let mut state = self.output.state.lock().unwrap();
        loop {
            if let Some(line) = state.lines[seen..].iter().find(|line| matches(line)) {
                return Ok(line.clone());
            }
            seen = state.lines.len();
            if state.open_pipes == 0 {
                drop(state);
                anyhow::bail!(
                    "`{}` closed its output without printing the expected line; last lines:\n{}",
                    self.command,
                    self.output.tail(20)
                );
            }
            let now = Instant::now();
            if now >= deadline {
                drop(state);
                anyhow::bail!(
                    "`{}` did not print the expected line within {timeout:?}; last lines:\n{}",
                    self.command,
                    self.output.tail(20)
                );
            }
            state = self
                .output
                .changed
                .wait_timeout(state, deadline - now)
                .unwrap()
                .0;
        }
    }

    /// Stops the whole process group (SIGTERM, `grace`, SIGKILL), reaps it and returns its status.
    pub fn stop(mut self, grace: Duration) -> io::Result<ExitStatus> {
        self.finish(grace)
    }

    /// Waits for it to exit by itself, reaping it, and returns its status.
    pub fn wait(mut self) -> io::Result<ExitStatus> {
        let status = match self.status {
            Some(status) => status,
            None => self.child.wait()?,
        };
        self.status = Some(status);
        self.finish(DROP_GRACE)
    }

    fn finish(&mut self, grace: Duration) -> io::Result<ExitStatus> {
        let status = match self.status {
            Some(status) => {
                signal_group(self.child.id() as i32, Signal::SIGKILL);
                status
            }
            None => terminate_group(&mut self.child, grace)?,
        };
        self.status = Some(status);
        self.groups.remove(self.child.id());
        // A descendant outside the group may still hold the pipes: wait a little, then let the
        // reader threads go rather than hang (the leak check reports such a descendant).
        let readers: Vec<_> = self.readers.drain(..).collect();
        if self.output.wait_closed(READER_GRACE) {
            for reader in readers {
                let _ = reader.join();
            }
        }
        Ok(status)
    }
}

impl Drop for OwnedChild {
    fn drop(&mut self) {
        if self.readers.is_empty() && self.status.is_some() {
            return;
        }
        let _ = self.finish(DROP_GRACE);
    }
}

/// Runs `command` to completion with a wall-clock limit, in its own process group (listed in
/// `groups` while it runs), and returns its output. On expiry the group is killed and
/// [`ProcessError::TimedOut`] returned.
pub fn run_with_timeout(
    command: &mut Command,
    timeout: Duration,
    groups: Option<&ProcessGroups>,
) -> Result<Output, ProcessError> {
    let (child, description) = spawn_in_own_group(command)?;
    let pgid = child.id();
    if let Some(groups) = groups {
        groups.add(pgid);
    }
    let result = wait_with_timeout(child, description, timeout);
    if let Some(groups) = groups {
        groups.remove(pgid);
    }
    result
}

fn wait_with_timeout(
    mut child: Child,
    description: String,
    timeout: Duration,
) -> Result<Output, ProcessError> {
    let stdout = read_in_background(child.stdout.take());
    let stderr = read_in_background(child.stderr.take());
    let wait_error = |source| ProcessError::Wait {
        command: description.clone(),
        source,
    };
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().map_err(wait_error)? {
            break Some(status);
        }
        if Instant::now() >= deadline {
            break None;
        }
        thread::sleep(POLL);
    };
    let Some(status) = status else {
        terminate_group(&mut child, Duration::ZERO).map_err(wait_error)?;
        let stderr = String::from_utf8_lossy(&stderr.join().unwrap_or_default()).into_owned();
        let start = stderr.lines().count().saturating_sub(10);
        return Err(ProcessError::TimedOut {
            command: description,
            timeout,
            stderr_tail: stderr.lines().skip(start).collect::<Vec<_>>().join("\n"),
        });
    };
    // The leader is reaped; anything it left in its group goes too.
    signal_group(child.id() as i32, Signal::SIGKILL);
    Ok(Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

fn read_in_background(pipe: Option<impl Read + Send + 'static>) -> JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        bytes
    })
}
