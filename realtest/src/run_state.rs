//! What the run has done so far: the tests running now (with what they started: process groups,
//! temporary directories, their log) and the records of those that ended. The end of the run
//! reports the records; an interrupted run also needs the running tests, to stop their
//! processes and to report them as interrupted, and the tests that never started.

use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use crate::ctx::Shared;
use crate::outcome::{CapturedLog, FailureKind, Location, Outcome, TestRecord};

/// The skip kind and reason of a test the interrupted run never started.
pub const NOT_STARTED_KIND: &str = "interrupted";
/// See [`NOT_STARTED_KIND`].
pub const NOT_STARTED_REASON: &str = "run interrupted";

/// The run's tests: running and ended.
#[derive(Default)]
pub(crate) struct RunState {
    inner: Mutex<Inner>,
    changed: Condvar,
}

#[derive(Default)]
struct Inner {
    running: BTreeMap<String, Running>,
    records: Vec<TestRecord>,
    /// The signal that interrupted the run, once one did.
    interrupted_by: Option<&'static str>,
    /// Whether every test has ended and the run writes its report.
    ended: bool,
}

/// A test the run means to run: what its record carries besides how it ended.
#[derive(Debug, Clone)]
pub(crate) struct Planned {
    /// Full test name as listed.
    pub name: String,
    /// Tags, including implied ones.
    pub tags: Vec<String>,
    /// Where it is defined, when known.
    pub location: Option<Location>,
}

impl Planned {
    fn record(&self, outcome: Outcome, started: SystemTime, duration: Duration) -> TestRecord {
        TestRecord {
            name: self.name.clone(),
            tags: self.tags.clone(),
            location: self.location.clone(),
            outcome,
            started,
            duration,
            log: CapturedLog::default(),
            devices: Vec::new(),
        }
    }
}

struct Running {
    planned: Planned,
    shared: Arc<Shared>,
    started: Instant,
    started_at: SystemTime,
    /// Whether the run was interrupted while this test ran.
    interrupted: bool,
}

/// A test that was running when the run was interrupted.
pub(crate) struct Interrupted {
    /// Its name.
    pub name: String,
    /// What it started.
    pub shared: Arc<Shared>,
}

impl RunState {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Notes that test `planned` starts its body with `shared`. False when the run is being
    /// interrupted: the test must not start then (record it with [`not_started`]).
    pub fn begin(&self, planned: Planned, shared: &Arc<Shared>) -> bool {
        let mut inner = self.lock();
        if inner.interrupted_by.is_some() {
            return false;
        }
        inner.running.insert(
            planned.name.clone(),
            Running {
                planned,
                shared: Arc::clone(shared),
                started: Instant::now(),
                started_at: SystemTime::now(),
                interrupted: false,
            },
        );
        true
    }

    /// Keeps the record of a test that ended. A test the run was interrupted in is recorded as
    /// `interrupted`, with what it ended with as detail.
    pub fn record(&self, mut record: TestRecord) {
        let mut inner = self.lock();
        let interrupted = inner
            .running
            .remove(&record.name)
            .is_some_and(|running| running.interrupted);
        if let (true, Some(signal)) = (interrupted, inner.interrupted_by) {
            let detail = match &record.outcome {
                Outcome::Passed => "passed".to_string(),
                Outcome::Skipped { reason, .. } => format!("skipped: {reason}"),
                Outcome::Failed { kind, message } => format!("[{}] {message}", kind.as_str()),
            };
            record.outcome = Outcome::Failed {
                kind: FailureKind::Interrupted,
                message: format!(
                    "{}\nthe body then ended: {detail}",
                    interrupted_message(signal)
                ),
            };
        }
        inner.records.push(record);
        self.changed.notify_all();
    }

    /// Every record so far, taken out.
    pub fn take_records(&self) -> Vec<TestRecord> {
        std::mem::take(&mut self.lock().records)
    }

    /// Marks the run as interrupted by `signal` (no test starts any more) and returns the tests
    /// running now; `None` when the run has already [`end`](Self::end)ed.
    pub fn interrupt(&self, signal: &'static str) -> Option<Vec<Interrupted>> {
        let mut inner = self.lock();
        if inner.ended {
            return None;
        }
        inner.interrupted_by = Some(signal);
        let running = inner
            .running
            .iter_mut()
            .map(|(name, running)| {
                running.interrupted = true;
                Interrupted {
                    name: name.clone(),
                    shared: Arc::clone(&running.shared),
                }
            })
            .collect();
        Some(running)
    }

    /// Claims the end of the run for the ordinary report once every test has ended; false
    /// when an interruption has it (its report is the one written then).
    pub fn end(&self) -> bool {
        let mut inner = self.lock();
        inner.ended = inner.interrupted_by.is_none();
        inner.ended
    }

    /// The tests running now.
    pub fn running(&self) -> Vec<Interrupted> {
        self.lock()
            .running
            .iter()
            .map(|(name, running)| Interrupted {
                name: name.clone(),
                shared: Arc::clone(&running.shared),
            })
            .collect()
    }

    /// Waits up to `timeout` until no test runs; the names of those still running.
    pub fn wait_until_none_runs(&self, timeout: Duration) -> Vec<String> {
        let inner = self.lock();
        let (inner, _) = self
            .changed
            .wait_timeout_while(inner, timeout, |inner| !inner.running.is_empty())
            .unwrap_or_else(PoisonError::into_inner);
        inner.running.keys().cloned().collect()
    }

    /// The records of an interrupted run: those of ended tests, an `interrupted` failure for
    /// each test still running, and a skip ("run interrupted") for each of `expected` (the
    /// tests the run would have run) that has neither.
    pub fn interrupted_records(&self, expected: &[Planned]) -> Vec<TestRecord> {
        let mut inner = self.lock();
        let signal = inner.interrupted_by.unwrap_or("a signal");
        let mut records = std::mem::take(&mut inner.records);
        for running in inner.running.values() {
            let outcome = Outcome::Failed {
                kind: FailureKind::Interrupted,
                message: format!(
                    "{}\nthe body had not returned when the report was written",
                    interrupted_message(signal)
                ),
            };
            let mut record =
                running
                    .planned
                    .record(outcome, running.started_at, running.started.elapsed());
            record.log = running.shared.log.contents();
            record.devices = running.shared.devices.lock().unwrap().clone();
            records.push(record);
        }
        let now = SystemTime::now();
        for planned in expected {
            if !records.iter().any(|record| record.name == planned.name) {
                records.push(planned.record(not_started(), now, Duration::ZERO));
            }
        }
        records
    }
}

/// The outcome of a test that did not start because the run was interrupted.
pub fn not_started() -> Outcome {
    Outcome::Skipped {
        kind: NOT_STARTED_KIND.to_string(),
        reason: NOT_STARTED_REASON.to_string(),
    }
}

fn interrupted_message(signal: &str) -> String {
    format!("run interrupted by {signal} while the test ran; its processes were stopped")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn planned(name: &str) -> Planned {
        Planned {
            name: name.to_string(),
            tags: vec!["slow".to_string()],
            location: None,
        }
    }

    fn record(name: &str, outcome: Outcome) -> TestRecord {
        planned(name).record(outcome, SystemTime::now(), Duration::ZERO)
    }

    #[test]
    fn an_interrupted_run_reports_ended_running_and_not_started_tests() {
        let state = RunState::default();
        let shared = |name: &str| Shared::new(format!("owner-{name}"), false);
        assert!(state.begin(planned("done"), &shared("done")));
        state.record(record("done", Outcome::Passed));
        assert!(state.begin(planned("returns"), &shared("returns")));
        let stuck = shared("stuck");
        stuck.log.line("half-way");
        assert!(state.begin(planned("stuck"), &stuck));

        let running = state.interrupt("SIGTERM").expect("the run has not ended");
        let names: Vec<&str> = running.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["returns", "stuck"]);
        assert!(
            !state.begin(planned("late"), &shared("late")),
            "nothing starts"
        );
        state.record(record(
            "returns",
            Outcome::Failed {
                kind: FailureKind::Assertion,
                message: "server closed".into(),
            },
        ));
        assert_eq!(
            state.wait_until_none_runs(Duration::from_millis(10)),
            ["stuck"]
        );

        let expected = ["done", "returns", "stuck", "late", "never"].map(planned);
        assert!(!state.end(), "the interruption writes the report");
        let mut records = state.interrupted_records(&expected);
        records.sort_by(|a, b| a.name.cmp(&b.name));
        let outcomes: Vec<(&str, String)> = records
            .iter()
            .map(|r| {
                let text = match &r.outcome {
                    Outcome::Passed => "passed".to_string(),
                    Outcome::Skipped { kind, reason } => format!("skipped {kind}: {reason}"),
                    Outcome::Failed { kind, message } => format!("{}: {message}", kind.as_str()),
                };
                (r.name.as_str(), text)
            })
            .collect();
        let interrupted = "interrupted: run interrupted by SIGTERM while the test ran; its \
                           processes were stopped";
        assert_eq!(
            outcomes,
            [
                ("done", "passed".to_string()),
                ("late", "skipped interrupted: run interrupted".to_string()),
                ("never", "skipped interrupted: run interrupted".to_string()),
                (
                    "returns",
                    format!("{interrupted}\nthe body then ended: [assertion] server closed")
                ),
                (
                    "stuck",
                    format!("{interrupted}\nthe body had not returned when the report was written")
                ),
            ]
        );
        let stuck = records.iter().find(|r| r.name == "stuck").unwrap();
        assert_eq!(
            (stuck.log.text().as_str(), stuck.tags.as_slice()),
            ("half-way\n", ["slow".to_string()].as_slice())
        );
        let never = records.iter().find(|r| r.name == "never").unwrap();
        assert_eq!(never.tags, ["slow"], "a test never started keeps its tags");
    }

    #[test]
    fn a_run_that_ended_is_not_interrupted_any_more() {
        let state = RunState::default();
        assert!(state.end());
        assert!(state.interrupt("SIGINT").is_none());
    }
}
