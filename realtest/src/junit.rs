//! JUnit XML through `quick-junit`: one `<testsuite>` per test binary.

use std::path::{Path, PathBuf};
use std::time::Duration;

use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};

use crate::outcome::{Outcome, TestRecord};

/// Where the report goes: a directory (existing, or given with a trailing `/`) gets
/// `<binary>.xml`; anything else is the file itself.
pub fn target_path(junit: &Path, binary: &str) -> PathBuf {
    let as_dir = junit.is_dir() || junit.as_os_str().to_string_lossy().ends_with('/');
    if as_dir {
        junit.join(format!("{binary}.xml"))
    } else {
        junit.to_path_buf()
    }
}

/// Builds the report for `binary` from its records and suite properties.
pub fn report(
    binary: &str,
    records: &[TestRecord],
    properties: &[(String, String)],
    total: Duration,
) -> Report {
    let mut suite = TestSuite::new(binary);
    suite.set_time(total);
    for (name, value) in properties {
        suite.add_property(Property::new(name.as_str(), value.as_str()));
    }
    for record in records {
        suite.add_test_case(test_case(binary, record));
    }
    let mut report = Report::new("realtest");
    report.set_time(total);
    report.add_test_suite(suite);
    report
}

fn test_case(binary: &str, record: &TestRecord) -> TestCase {
    let status = match &record.outcome {
        Outcome::Passed => TestCaseStatus::success(),
        Outcome::Skipped { kind, reason } => {
            let mut status = TestCaseStatus::skipped();
            status.set_type(kind.as_str()).set_message(reason.as_str());
            status
        }
        Outcome::Failed { kind, message } => {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
            let first_line = message.lines().next().unwrap_or_default();
            status
                .set_type(kind.as_str())
                .set_message(first_line)
                .set_description(message.as_str());
            status
        }
    };
    let mut case = TestCase::new(record.name.as_str(), status);
    case.set_classname(binary).set_time(record.duration);
    case.add_property(Property::new("tags", record.tags.join(",")));
    for device in &record.devices {
        case.add_property(Property::new("device", device.as_str()));
    }
    if !record.log.is_empty() {
        case.set_system_out(record.log.as_str());
    }
    case
}

/// Writes the report, creating parent directories.
pub fn write(path: &Path, report: &Report) -> Result<(), String> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|err| format!("cannot create {}: {err}", parent.display()))?;
    }
    let xml = report
        .to_string()
        .map_err(|err| format!("cannot serialise JUnit: {err}"))?;
    std::fs::write(path, xml).map_err(|err| format!("cannot write {}: {err}", path.display()))
}
