//! Threads that run test bodies. Bodies run off the libtest-mimic thread so a timeout can be
//! enforced; threads are reused because spawning one per test would dominate trivial tests.
//! A body that overruns its timeout keeps its thread until it returns; the pool then grows.

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Mutex, OnceLock};
use std::thread;

type Job = Box<dyn FnOnce() + Send>;

fn idle() -> &'static Mutex<Vec<Sender<Job>>> {
    static IDLE: OnceLock<Mutex<Vec<Sender<Job>>>> = OnceLock::new();
    IDLE.get_or_init(Default::default)
}

fn worker(jobs: Receiver<Job>, me: Sender<Job>, setup: fn()) {
    setup();
    while let Ok(job) = jobs.recv() {
        job();
        idle().lock().unwrap().push(me.clone());
    }
}

/// Runs `job` on an idle worker thread, starting a new one (which first calls `setup`) when
/// none is idle.
pub fn execute(job: Job, setup: fn()) -> std::io::Result<()> {
    let mut job = Some(job);
    while let Some(sender) = idle().lock().unwrap().pop() {
        match sender.send(job.take().expect("job is sent once")) {
            Ok(()) => return Ok(()),
            Err(mpsc::SendError(returned)) => job = Some(returned),
        }
    }
    let (sender, receiver) = mpsc::channel::<Job>();
    let me = sender.clone();
    thread::Builder::new()
        .name("realtest-worker".to_string())
        .spawn(move || worker(receiver, me, setup))?;
    sender
        .send(job.take().expect("job is sent once"))
        .map_err(|_| std::io::Error::other("a new worker thread exited at once"))
}
