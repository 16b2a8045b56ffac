//! The JUnit XML report: one `<testsuite>` per test binary (and bench), collected into one file
//! per run however the binaries are run.
//!
//! - `case`: a test's record as a `<testcase>` (classname, file/line, timestamp, logs).
//! - `merge`: this binary's suite into the report already in the file: suites of the same run
//!   are kept, a new run replaces the old one's.
//! - `invocation`: which run a process belongs to (nextest's run id, else its parent process).
//! - `store`: locked read-modify-write with a temporary file and a rename.
//! - `strict`: the form the Jenkins xUnit plugin's `junit-10.xsd` accepts.
//! - `attach`: files kept next to the report for a test (`Ctx::attach`).

mod attach;
mod case;
mod invocation;
mod merge;
mod store;
mod strict;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use quick_junit::{Property, TestSuite};

use crate::outcome::TestRecord;
use crate::probe::Probe;

pub use attach::{marker as attachment_marker, MAX_ATTACHMENT_BYTES};
pub use invocation::Invocation;

/// Which captured logs go into the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogPolicy {
    /// Logs of tests that did not pass (failed, or skipped at run time); a passing test keeps
    /// only its attachment markers.
    Failures,
    /// Every test's log.
    All,
}

impl LogPolicy {
    /// `failures` or `all`.
    pub fn parse(text: &str) -> Option<LogPolicy> {
        match text {
            "failures" => Some(LogPolicy::Failures),
            "all" => Some(LogPolicy::All),
            _ => None,
        }
    }
}

/// Which form of JUnit is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Everything realtest knows: `file`/`line`/`timestamp` on cases, case properties.
    Rich,
    /// Only what the Jenkins xUnit plugin's `junit-10.xsd` accepts.
    Strict,
}

impl Format {
    /// `rich` or `strict`.
    pub fn parse(text: &str) -> Option<Format> {
        match text {
            "rich" => Some(Format::Rich),
            "strict" => Some(Format::Strict),
            _ => None,
        }
    }
}

/// What `--junit`, `--junit-logs` and `--junit-format` asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// A file, or a directory (existing, or given with a trailing `/`) that gets `<binary>.xml`.
    pub path: PathBuf,
    /// Which logs are kept.
    pub logs: LogPolicy,
    /// Which form is written.
    pub format: Format,
}

/// Where the report of `binary` goes: a directory (existing, or given with a trailing `/`) gets
/// `<binary>.xml`; anything else is the file itself.
pub fn target_path(junit: &Path, binary: &str) -> PathBuf {
    let as_dir = junit.is_dir() || junit.as_os_str().to_string_lossy().ends_with('/');
    if as_dir {
        junit.join(format!("{binary}.xml"))
    } else {
        junit.to_path_buf()
    }
}

/// The report of this process: where it goes, which run and suite it belongs to.
#[derive(Debug)]
pub struct Session {
    settings: Settings,
    file: PathBuf,
    binary: String,
    suite: String,
    bench: Option<(String, String)>,
    run: Invocation,
    started: SystemTime,
}

static SESSION: OnceLock<Session> = OnceLock::new();

/// Sets up this process's report (once; later calls return the first one).
pub fn install(settings: &Settings, binary: &str, bench: Option<(&str, &str)>) -> &'static Session {
    SESSION.get_or_init(|| Session::new(settings.clone(), binary, bench, Invocation::current()))
}

/// This process's report, when `--junit` or `REALTEST_JUNIT` asked for one.
pub fn session() -> Option<&'static Session> {
    SESSION.get()
}

/// What a write left in the file, for the console line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// The report file.
    pub path: PathBuf,
    /// This binary's suite name.
    pub suite: String,
    /// Cases of this suite now in the file.
    pub suite_cases: usize,
    /// Suites in the file.
    pub suites: usize,
    /// Cases in the file.
    pub tests: usize,
    /// Failed cases (failures and errors) in the file.
    pub failed: usize,
    /// Skipped cases in the file.
    pub skipped: usize,
}

impl Session {
    fn new(
        settings: Settings,
        binary: &str,
        bench: Option<(&str, &str)>,
        run: Invocation,
    ) -> Session {
        let suite = match bench {
            Some((name, _)) => format!("{binary}@{name}"),
            None => binary.to_string(),
        };
        Session {
            file: target_path(&settings.path, binary),
            settings,
            binary: binary.to_string(),
            suite,
            bench: bench.map(|(name, description)| (name.to_string(), description.to_string())),
            run,
            started: SystemTime::now(),
        }
    }

    /// Adds this binary's records to the report (the end of a run).
    pub fn write(&self, records: &[TestRecord], took: Duration) -> Result<Written, String> {
        self.write_cases(records, took)
    }

    /// Under nextest's listing (`--list`), adds the tests that nextest will show as SKIP and not
    /// run (unmet needs, destructive), with their reasons: nextest's own report leaves them out.
    /// Nothing is written outside nextest, or when nextest only lists (`cargo nextest list`).
    pub fn write_listing(&self, skips: &[TestRecord]) -> Result<Option<Written>, String> {
        if !self.run.is_nextest() || invocation::nextest_only_lists() {
            return Ok(None);
        }
        self.write_cases(skips, Duration::ZERO).map(Some)
    }

    /// Copies `path` next to the report for test `test`; returns the copy's path relative to
    /// the workspace root.
    pub fn keep_attachment(&self, test: &str, path: &Path) -> Result<String, String> {
        attach::keep(&self.attachments_root(), &self.run, &self.suite, test, path)
    }

    fn attachments_root(&self) -> PathBuf {
        attach::root_for(&self.file)
    }

    fn write_cases(&self, records: &[TestRecord], took: Duration) -> Result<Written, String> {
        let mut suite = TestSuite::new(self.suite.as_str());
        suite.set_timestamp(case::timestamp(self.started));
        suite.set_time(took);
        if let Some(host) = hostname() {
            suite.extra.insert("hostname".into(), host.into());
        }
        suite.add_property(Property::new(merge::RUN_ID_PROPERTY, self.run.id()));
        for (name, value) in Probe::get().properties() {
            suite.add_property(Property::new(name, value));
        }
        if let Some((name, description)) = &self.bench {
            suite.add_property(Property::new("bench", name.as_str()));
            if !description.is_empty() {
                suite.add_property(Property::new("bench-description", description.as_str()));
            }
        }
        let logs = self.settings.logs;
        for record in records {
            suite.add_test_case(case::from_record(&self.binary, record, logs));
        }
        let run_id = self.run.id();
        let attachments = self.attachments_root();
        let report = store::update(&self.file, self.settings.format, |existing| {
            let merged = merge::merge(existing, suite, run_id);
            attach::remove_other_runs(&attachments, &self.run);
            merged
        })?;
        let mine = report
            .test_suites
            .iter()
            .find(|s| s.name.as_str() == self.suite)
            .map_or(0, |s| s.tests);
        Ok(Written {
            path: self.file.clone(),
            suite: self.suite.clone(),
            suite_cases: mine,
            suites: report.test_suites.len(),
            tests: report.tests,
            failed: report.failures + report.errors,
            skipped: report.skipped,
        })
    }
}

/// Writes the suites of every report in `inputs` into `output` (replacing what it held): the
/// reports of several benches (each bench's suites are named `<binary>@<bench>`) become one.
/// Two inputs with a suite of the same name are an error: they would be two reports of the same
/// binary on the same bench. Returns what the merged report holds.
pub fn merge_files(inputs: &[PathBuf], output: &Path, format: Format) -> Result<Written, String> {
    let mut suites: Vec<(TestSuite, &Path)> = Vec::new();
    for input in inputs {
        let text = std::fs::read_to_string(input)
            .map_err(|err| format!("cannot read {}: {err}", input.display()))?;
        let report = quick_junit::Report::deserialize_from_str(&text).map_err(|err| {
            format!(
                "{} is not a JUnit report realtest can read: {err}",
                input.display()
            )
        })?;
        for suite in report.test_suites {
            if let Some((_, other)) = suites.iter().find(|(s, _)| s.name == suite.name) {
                return Err(format!(
                    "suite {} is in both {} and {}: two reports of one binary on one bench",
                    suite.name.as_str(),
                    other.display(),
                    input.display()
                ));
            }
            suites.push((suite, input));
        }
    }
    let report = store::update(output, format, |_| {
        merge::combine(suites.into_iter().map(|(suite, _)| suite))
    })?;
    Ok(Written {
        path: output.to_path_buf(),
        suite: String::new(),
        suite_cases: 0,
        suites: report.test_suites.len(),
        tests: report.tests,
        failed: report.failures + report.errors,
        skipped: report.skipped,
    })
}

/// The machine's host name, for the suite's `hostname` attribute.
fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{CapturedLog, FailureKind, Location, Outcome};

    fn record(name: &str) -> TestRecord {
        TestRecord {
            name: name.to_string(),
            tags: vec!["slow".to_string()],
            location: Some(Location {
                file: "tests/x.rs".to_string(),
                line: 3,
            }),
            outcome: Outcome::Passed,
            started: SystemTime::now(),
            duration: Duration::from_millis(5),
            log: CapturedLog::default(),
            devices: Vec::new(),
        }
    }

    #[test]
    fn a_directory_gets_one_file_per_binary() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(target_path(dir.path(), "bin"), dir.path().join("bin.xml"));
        assert_eq!(
            target_path(Path::new("no/such/dir/"), "bin"),
            Path::new("no/such/dir/bin.xml")
        );
        assert_eq!(target_path(Path::new("r.xml"), "bin"), Path::new("r.xml"));
    }

    #[test]
    fn an_interrupted_run_reports_what_it_did_not_finish() {
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings {
            path: dir.path().join("r.xml"),
            logs: LogPolicy::Failures,
            format: Format::Rich,
        };
        let run = Invocation::with_id("r1");
        let session = Session::new(settings, "bin", Some(("lab", "a bench")), run);
        let mut running = record("m::slow");
        running.outcome = Outcome::Failed {
            kind: FailureKind::Interrupted,
            message: "run interrupted by SIGINT while the test ran".to_string(),
        };
        let mut waiting = record("m::later");
        waiting.outcome = crate::run_state::not_started();
        let written = session
            .write(
                &[record("m::done"), running, waiting],
                Duration::from_secs(2),
            )
            .unwrap();
        assert_eq!(
            (written.suite.as_str(), written.suite_cases),
            ("bin@lab", 3)
        );
        assert_eq!((written.failed, written.skipped), (1, 1));
        let xml = std::fs::read_to_string(dir.path().join("r.xml")).unwrap();
        assert!(
            xml.contains("<error message=\"run interrupted by SIGINT while the test ran\" type=\"interrupted\">"),
            "{xml}"
        );
        assert!(
            xml.contains("type=\"interrupted\">run interrupted</skipped>"),
            "{xml}"
        );
        assert!(
            xml.contains("<property name=\"bench\" value=\"lab\"/>"),
            "{xml}"
        );
    }
}
