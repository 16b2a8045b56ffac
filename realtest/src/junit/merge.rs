//! Combining this binary's suite with the report already in the file.
//!
//! Every suite carries the id of the run that wrote it (property [`RUN_ID_PROPERTY`]). A write of
//! run R keeps R's other suites, replaces the cases of its own suite that it ran again (nextest:
//! one process per test, each adding its case), and drops the suites of every other run: a new
//! `cargo test` or `cargo nextest run` replaces the earlier report instead of appending to it.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, FixedOffset};
use quick_junit::{Report, TestCase, TestSuite};

/// The suite property naming the run that wrote the suite.
pub const RUN_ID_PROPERTY: &str = "run-id";

/// The report name on `<testsuites>`.
const REPORT_NAME: &str = "realtest";

fn run_of(suite: &TestSuite) -> Option<&str> {
    suite
        .properties
        .iter()
        .find(|p| p.name.as_str() == RUN_ID_PROPERTY)
        .map(|p| p.value.as_str())
}

/// The report after run `run_id` adds `incoming` to `existing`.
pub fn merge(existing: Option<Report>, incoming: TestSuite, run_id: &str) -> Report {
    let mut suites: BTreeMap<String, TestSuite> = BTreeMap::new();
    for suite in existing.into_iter().flat_map(|report| report.test_suites) {
        if run_of(&suite) == Some(run_id) {
            suites.insert(suite.name.as_str().to_string(), suite);
        }
    }
    let name = incoming.name.as_str().to_string();
    let merged = match suites.remove(&name) {
        Some(earlier) => merge_suites(earlier, incoming),
        None => rebuild(incoming, Vec::new()),
    };
    suites.insert(name, merged);
    combine(suites.into_values())
}

/// One report of `suites` (in their order), its totals and time span computed from them.
pub fn combine(suites: impl IntoIterator<Item = TestSuite>) -> Report {
    let suites: Vec<TestSuite> = suites.into_iter().collect();
    let mut report = Report::new(REPORT_NAME);
    if let Some((start, took)) = span(suites.iter().map(|s| (s.timestamp, s.time))) {
        report.set_timestamp(start).set_time(took);
    }
    report.add_test_suites(suites);
    report
}

/// `later`'s attributes and properties, the cases of both (later ones replace earlier ones of
/// the same classname and name), the time span of both.
fn merge_suites(earlier: TestSuite, later: TestSuite) -> TestSuite {
    let span = span([
        (earlier.timestamp, earlier.time),
        (later.timestamp, later.time),
    ]);
    let earlier_cases = earlier.test_cases;
    let mut suite = rebuild(later, earlier_cases);
    if let Some((start, took)) = span {
        suite.set_timestamp(start).set_time(took);
    }
    suite
}

/// `suite` with `earlier` cases it does not replace, sorted, and its counts recomputed.
fn rebuild(suite: TestSuite, earlier: Vec<TestCase>) -> TestSuite {
    let key = |case: &TestCase| {
        (
            case.classname
                .as_ref()
                .map(|c| c.to_string())
                .unwrap_or_default(),
            case.name.to_string(),
        )
    };
    let mut cases: BTreeMap<(String, String), TestCase> = BTreeMap::new();
    for case in earlier.into_iter().chain(suite.test_cases) {
        cases.insert(key(&case), case);
    }
    let mut fresh = TestSuite::new(suite.name);
    fresh.timestamp = suite.timestamp;
    fresh.time = suite.time;
    fresh.properties = suite.properties;
    fresh.extra = suite.extra;
    fresh.system_out = suite.system_out;
    fresh.system_err = suite.system_err;
    fresh.add_test_cases(cases.into_values());
    fresh
}

/// Earliest start and the time to the latest end of `spans` that have a start.
fn span(
    spans: impl IntoIterator<Item = (Option<DateTime<FixedOffset>>, Option<Duration>)>,
) -> Option<(DateTime<FixedOffset>, Duration)> {
    let ends: Vec<(DateTime<FixedOffset>, DateTime<FixedOffset>)> = spans
        .into_iter()
        .filter_map(|(start, took)| {
            let start = start?;
            let took = chrono::Duration::from_std(took.unwrap_or_default()).ok()?;
            Some((start, start + took))
        })
        .collect();
    let start = ends.iter().map(|(start, _)| *start).min()?;
    let end = ends.iter().map(|(_, end)| *end).max()?;
    Some((start, (end - start).to_std().unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use quick_junit::{Property, TestCaseStatus};

    use super::*;

    fn suite(
        name: &str,
        run: &str,
        cases: &[(&str, bool)],
        start_s: i64,
        took_s: u64,
    ) -> TestSuite {
        let mut suite = TestSuite::new(name);
        suite.add_property(Property::new(RUN_ID_PROPERTY, run));
        suite
            .set_timestamp(
                DateTime::from_timestamp(1_700_000_000 + start_s, 0)
                    .unwrap()
                    .fixed_offset(),
            )
            .set_time(Duration::from_secs(took_s));
        for (case, passed) in cases {
            let status = if *passed {
                TestCaseStatus::success()
            } else {
                TestCaseStatus::skipped()
            };
            let mut case = TestCase::new(*case, status);
            case.set_classname(name);
            suite.add_test_case(case);
        }
        suite
    }

    fn names(report: &Report) -> Vec<(String, Vec<String>)> {
        report
            .test_suites
            .iter()
            .map(|s| {
                (
                    s.name.to_string(),
                    s.test_cases.iter().map(|c| c.name.to_string()).collect(),
                )
            })
            .collect()
    }

    #[test]
    fn binaries_of_one_run_add_suites_and_a_new_run_replaces_them() {
        let first = merge(None, suite("a", "run1", &[("x", true)], 0, 1), "run1");
        let both = merge(
            Some(first),
            suite("b", "run1", &[("y", false)], 2, 1),
            "run1",
        );
        assert_eq!(
            names(&both),
            [
                ("a".into(), vec!["x".into()]),
                ("b".into(), vec!["y".into()])
            ]
        );
        assert_eq!((both.tests, both.skipped), (2, 1));
        assert_eq!(both.time, Some(Duration::from_secs(3)));

        let again = merge(
            Some(both),
            suite("a", "run2", &[("x", true)], 10, 1),
            "run2",
        );
        assert_eq!(names(&again), [("a".into(), vec!["x".into()])]);
        assert_eq!(again.tests, 1);
    }

    #[test]
    fn processes_of_one_binary_add_their_cases_and_a_rerun_case_replaces_its_old_one() {
        let one = merge(
            None,
            suite("a", "r", &[("x", false), ("y", true)], 0, 1),
            "r",
        );
        let two = merge(Some(one), suite("a", "r", &[("x", true)], 5, 2), "r");
        let three = merge(Some(two), suite("a", "r", &[("w", true)], 1, 1), "r");
        assert_eq!(
            names(&three),
            [("a".into(), vec!["w".into(), "x".into(), "y".into()])]
        );
        let a = &three.test_suites[0];
        assert_eq!((a.tests, a.skipped), (3, 0));
        assert_eq!(a.time, Some(Duration::from_secs(7)));
        assert_eq!(three.tests, 3);
    }
}
