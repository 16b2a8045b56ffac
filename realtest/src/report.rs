//! End-of-run console summary: skips grouped by reason, what the JUnit report now holds.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::junit::Written;
use crate::outcome::{Outcome, TestRecord};

/// "skipped, by reason:" followed by one line per distinct reason with its count.
pub fn skip_summary(records: &[TestRecord]) -> Option<String> {
    let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
    for record in records {
        if let Outcome::Skipped { reason, .. } = &record.outcome {
            *reasons.entry(reason.as_str()).or_default() += 1;
        }
    }
    if reasons.is_empty() {
        return None;
    }
    let mut text = String::from("skipped, by reason:\n");
    for (reason, count) in reasons {
        let _ = writeln!(text, "  {count:>4}  {reason}");
    }
    Some(text)
}

/// The line after a JUnit write: this binary's suite and what the whole file holds, so a report
/// that lost cases shows it.
pub fn junit_written(written: &Written) -> String {
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    format!(
        "JUnit report: {} ({}: {}; the file: {}, {}: {} passed, {} failed, {} skipped)",
        written.path.display(),
        written.suite,
        plural(written.suite_cases, "case"),
        plural(written.suites, "suite"),
        plural(written.tests, "case"),
        written.tests - written.failed - written.skipped,
        written.failed,
        written.skipped
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_junit_line_tells_this_suite_from_the_whole_file() {
        let written = Written {
            path: "target/r.xml".into(),
            suite: "service_unit".to_string(),
            suite_cases: 1,
            suites: 3,
            tests: 59,
            failed: 2,
            skipped: 17,
        };
        assert_eq!(
            junit_written(&written),
            "JUnit report: target/r.xml (service_unit: 1 case; the file: 3 suites, 59 cases: \
             40 passed, 2 failed, 17 skipped)"
        );
    }
}
