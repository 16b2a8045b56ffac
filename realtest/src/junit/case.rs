//! A test's record as a `<testcase>`: `classname` = `<binary>.<module path>`, `name` = the
//! function (libtest's own JUnit splits a test's path the same way), `file`/`line` of the
//! definition, `timestamp`, the skip reason also as the `<skipped>` text (GitLab, dorny and
//! mikepenz read it there), stdout and stderr apart.

use std::time::SystemTime;

use chrono::{DateTime, FixedOffset, Utc};
use quick_junit::{NonSuccessKind, Property, TestCase, TestCaseStatus};

use super::attach;
use super::LogPolicy;
use crate::outcome::{FailureKind, Location, Outcome, Stream, TestRecord};

/// `SystemTime` as the UTC timestamp JUnit carries.
pub fn timestamp(time: SystemTime) -> DateTime<FixedOffset> {
    DateTime::<Utc>::from(time).fixed_offset()
}

/// `(classname, name)` of test `full_name` (`module::path::function`) in `binary`.
pub fn class_and_name(binary: &str, full_name: &str) -> (String, String) {
    match full_name.rsplit_once("::") {
        Some((module, function)) => (format!("{binary}.{module}"), function.to_string()),
        None => (binary.to_string(), full_name.to_string()),
    }
}

/// The `<testcase>` of one finished test.
pub fn from_record(binary: &str, record: &TestRecord, logs: LogPolicy) -> TestCase {
    let status = match &record.outcome {
        Outcome::Passed => TestCaseStatus::success(),
        Outcome::Skipped { kind, reason } => skipped(kind, reason),
        Outcome::Failed { kind, message } => {
            // An interrupted test's result is unknown: an error, not a failed assertion.
            let non_success = match kind {
                FailureKind::Interrupted => NonSuccessKind::Error,
                _ => NonSuccessKind::Failure,
            };
            let mut status = TestCaseStatus::non_success(non_success);
            let first_line = message.lines().next().unwrap_or_default();
            status
                .set_type(kind.as_str())
                .set_message(first_line)
                .set_description(message.as_str());
            status
        }
    };
    let mut case = new_case(binary, &record.name, status, record.location.as_ref());
    case.set_timestamp(timestamp(record.started))
        .set_time(record.duration);
    if !record.tags.is_empty() {
        case.add_property(Property::new("tags", record.tags.join(",")));
    }
    for device in &record.devices {
        case.add_property(Property::new("device", device.as_str()));
    }
    let stdout = record.log.stream(Stream::Out);
    let stderr = record.log.stream(Stream::Err);
    let keep_logs = logs == LogPolicy::All || record.outcome != Outcome::Passed;
    let stdout = if keep_logs {
        stdout
    } else {
        attach::marker_lines(&stdout)
    };
    if !stdout.is_empty() {
        case.set_system_out(stdout);
    }
    if keep_logs && !stderr.is_empty() {
        case.set_system_err(stderr);
    }
    case
}

fn skipped(kind: &str, reason: &str) -> TestCaseStatus {
    let mut status = TestCaseStatus::skipped();
    status
        .set_type(kind)
        .set_message(reason)
        .set_description(reason);
    status
}

fn new_case(
    binary: &str,
    full_name: &str,
    status: TestCaseStatus,
    location: Option<&Location>,
) -> TestCase {
    let (classname, name) = class_and_name(binary, full_name);
    let mut case = TestCase::new(name, status);
    case.set_classname(classname);
    if let Some(location) = location {
        case.extra
            .insert("file".into(), location.file.as_str().into());
        case.extra
            .insert("line".into(), location.line.to_string().into());
    }
    case
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::outcome::{CapturedLog, FailureKind};

    fn record(name: &str, outcome: Outcome) -> TestRecord {
        let mut log = CapturedLog::default();
        log.push(Stream::Out, "own line".to_string());
        log.push(Stream::Err, "[ffmpeg 12] warning".to_string());
        log.push(
            Stream::Out,
            "[[ATTACHMENT|target/r.attachments/x/snap.jpg]]".to_string(),
        );
        TestRecord {
            name: name.to_string(),
            tags: Vec::new(),
            location: Some(Location {
                file: "tests/a.rs".to_string(),
                line: 12,
            }),
            outcome,
            started: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            duration: Duration::from_millis(1500),
            log,
            devices: Vec::new(),
        }
    }

    fn xml(case: TestCase) -> String {
        let mut suite = quick_junit::TestSuite::new("s");
        suite.add_test_case(case);
        let mut report = quick_junit::Report::new("r");
        report.add_test_suite(suite);
        report.to_string().unwrap()
    }

    #[test]
    fn classname_is_binary_and_module_and_name_is_the_function() {
        assert_eq!(
            class_and_name("real_system", "scenarios::media::records"),
            (
                "real_system.scenarios::media".to_string(),
                "records".to_string()
            )
        );
        assert_eq!(
            class_and_name("fixture", "passes"),
            ("fixture".to_string(), "passes".to_string())
        );
    }

    #[test]
    fn a_skip_carries_its_reason_as_text_and_no_empty_tags() {
        let reason = "needs-v4l2: no capture device";
        let text = xml(from_record(
            "bin",
            &record(
                "m::t",
                Outcome::Skipped {
                    kind: "needs-v4l2".to_string(),
                    reason: reason.to_string(),
                },
            ),
            LogPolicy::Failures,
        ));
        assert!(
            text.contains(&format!(
                "<skipped message=\"{reason}\" type=\"needs-v4l2\">{reason}</skipped>"
            )),
            "{text}"
        );
        assert!(!text.contains("tags"), "{text}");
        assert!(
            text.contains("classname=\"bin.m\"")
                && text.contains("file=\"tests/a.rs\" line=\"12\"")
                && text.contains("timestamp=\"2023-11-14T22:13:20.000+00:00\""),
            "{text}"
        );
    }

    #[test]
    fn stderr_goes_to_system_err_and_passing_logs_only_when_asked() {
        let failed = Outcome::Failed {
            kind: FailureKind::Assertion,
            message: "expected 3\n  caused by: x".to_string(),
        };
        let text = xml(from_record(
            "bin",
            &record("t", failed),
            LogPolicy::Failures,
        ));
        assert!(
            text.contains("<system-err>[ffmpeg 12] warning\n</system-err>"),
            "{text}"
        );
        assert!(
            text.contains("<system-out>own line\n[[ATTACHMENT|"),
            "{text}"
        );
        assert!(text.contains("message=\"expected 3\""), "{text}");

        let passed = xml(from_record(
            "bin",
            &record("t", Outcome::Passed),
            LogPolicy::Failures,
        ));
        assert!(
            !passed.contains("own line") && !passed.contains("system-err"),
            "{passed}"
        );
        assert!(
            passed.contains("<system-out>[[ATTACHMENT|target/r.attachments/x/snap.jpg]]\n"),
            "{passed}"
        );
        let all = xml(from_record(
            "bin",
            &record("t", Outcome::Passed),
            LogPolicy::All,
        ));
        assert!(
            all.contains("own line") && all.contains("<system-err>"),
            "{all}"
        );
    }
}
