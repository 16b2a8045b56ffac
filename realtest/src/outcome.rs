//! What a test body returns, and what the harness records for each test.

use std::fmt;
use std::time::{Duration, SystemTime};

/// The result of a test body, as the harness sees it.
pub type TestResult = Result<(), TestError>;

/// Why a test body did not pass.
#[derive(Debug)]
pub enum TestError {
    /// The test found at run time that something it needs is missing.
    Skip(Skip),
    /// The test failed; the message is what the test returned, with its cause chain.
    Fail(String),
}

/// A skip decided at run time, with the capability that was missing and why.
///
/// Return it as an error from a test (`return Err(Skip::new("needs-v4l2", "…").into())`): the
/// harness reports the test as ignored with the reason, or as failed when the capability is
/// required (`--require`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skip {
    /// The requirement tag that was not met, such as `needs-v4l2`.
    pub need: String,
    /// A sentence saying what was missing.
    pub reason: String,
}

impl Skip {
    /// A skip for requirement `need` (e.g. `needs-v4l2`) with a reason.
    pub fn new(need: impl Into<String>, reason: impl Into<String>) -> Self {
        Skip {
            need: need.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.need, self.reason)
    }
}

impl std::error::Error for Skip {}

/// Converts what a test function returns into a [`TestResult`].
///
/// Implemented for `()` and for `Result<(), E>` where `E` converts into `anyhow::Error` (so
/// `anyhow::Result<()>` and `Result<(), std::io::Error>` both work). An error that is a [`Skip`]
/// becomes a skip; any other error is a failure whose message includes its cause chain.
pub trait IntoTestResult {
    /// Performs the conversion.
    fn into_test_result(self) -> TestResult;
}

impl IntoTestResult for () {
    fn into_test_result(self) -> TestResult {
        Ok(())
    }
}

impl<E: Into<anyhow::Error>> IntoTestResult for Result<(), E> {
    fn into_test_result(self) -> TestResult {
        self.map_err(|err| {
            let err: anyhow::Error = err.into();
            match err.downcast::<Skip>() {
                Ok(skip) => TestError::Skip(skip),
                Err(err) => TestError::Fail(
                    err.chain()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("\n  caused by: "),
                ),
            }
        })
    }
}

/// How one test ended, as reported to the console summary and to JUnit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The test ran and passed.
    Passed,
    /// The test did not run, or stopped early, for a stated reason.
    Skipped {
        /// What kind of skip: the unmet requirement tag, `destructive`, or `probe-error`.
        kind: String,
        /// Human-readable reason, shown in the console and in `<skipped message>`.
        reason: String,
    },
    /// The test failed.
    Failed {
        /// The failure class.
        kind: FailureKind,
        /// What went wrong.
        message: String,
    },
}

/// Classes of failure; each becomes the JUnit `<failure type>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The test returned an error.
    Assertion,
    /// The test panicked.
    Panic,
    /// The test ran past its timeout.
    Timeout,
    /// A process the test started was still alive after it ended.
    Leak,
    /// The test would have been skipped for a capability that `--require`/`--bench` demanded.
    RequiredCapability,
    /// A bench camera listed in the `--bench` file is not present.
    BenchCamera,
    /// The run was interrupted (SIGINT, SIGTERM) while the test ran.
    Interrupted,
}

impl FailureKind {
    /// The name used as the JUnit `type` attribute.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Assertion => "assertion",
            FailureKind::Panic => "panic",
            FailureKind::Timeout => "timeout",
            FailureKind::Leak => "leak",
            FailureKind::RequiredCapability => "required-capability",
            FailureKind::BenchCamera => "bench-camera",
            FailureKind::Interrupted => "interrupted",
        }
    }
}

/// Where a test is defined (or, for a bench camera check, the bench file's entry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// Source path, relative to the workspace root where it lies inside it.
    pub file: String,
    /// 1-based line.
    pub line: u32,
}

/// Which output stream a captured line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// The test's own lines, the harness's notes and child processes' stdout.
    Out,
    /// Child processes' stderr.
    Err,
}

/// A test's captured output, line by line in the order it arrived.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CapturedLog {
    lines: Vec<(Stream, String)>,
}

impl CapturedLog {
    /// Adds one line.
    pub fn push(&mut self, stream: Stream, line: String) {
        self.lines.push((stream, line));
    }

    /// Whether nothing was captured.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// Every line, both streams interleaved as they arrived (for the console).
    pub fn text(&self) -> String {
        self.lines
            .iter()
            .map(|(_, line)| format!("{line}\n"))
            .collect()
    }

    /// The lines of one stream.
    pub fn stream(&self, stream: Stream) -> String {
        self.lines
            .iter()
            .filter(|(s, _)| *s == stream)
            .map(|(_, line)| format!("{line}\n"))
            .collect()
    }
}

/// Everything the harness knows about one finished test.
#[derive(Debug, Clone)]
pub struct TestRecord {
    /// Full test name as listed.
    pub name: String,
    /// Tags, including implied ones.
    pub tags: Vec<String>,
    /// Where it is defined; `None` for the harness's own checks (the leak sweep).
    pub location: Option<Location>,
    /// How it ended.
    pub outcome: Outcome,
    /// When it started (or was decided on, for a skip).
    pub started: SystemTime,
    /// Wall-clock time of the body.
    pub duration: Duration,
    /// Captured log: the test's own lines and its child processes' output.
    pub log: CapturedLog,
    /// Devices the test leased, if any.
    pub devices: Vec<String>,
}
