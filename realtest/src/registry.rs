//! Registered tests: what `#[realtest::test]` submits, and the checks made on them at start-up.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::needs;
use crate::outcome::Location;
use crate::Ctx;
use crate::TestResult;

/// A registered test. Built by `#[realtest::test]`; not meant to be written by hand.
#[derive(Debug)]
pub struct TestDef {
    /// `module_path!()` where the test was defined.
    pub module: &'static str,
    /// The function's name.
    pub name: &'static str,
    /// Tags as written in the attribute.
    pub tags: &'static [&'static str],
    /// Timeout in milliseconds, when the attribute gave one.
    pub timeout_ms: Option<u64>,
    /// `file!()` of the definition: relative to the workspace root for workspace members.
    pub file: &'static str,
    /// The line of the function's `fn` keyword.
    pub line: u32,
    /// Runs the body.
    pub run: fn(&mut Ctx) -> TestResult,
}

inventory::collect!(TestDef);

/// Timeout of a test without `timeout = "…"`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Selection tags with a meaning of their own.
pub const HARDWARE: &str = "hardware";
/// Tests that change the machine; they run only when asked for by tag or exact name.
pub const DESTRUCTIVE: &str = "destructive";

/// A registered test with its derived properties.
#[derive(Debug, Clone)]
pub struct Test {
    /// Full name: the module path without the crate name, then the function name.
    pub name: String,
    /// Written tags plus implied ones (`hardware` for device needs), sorted, no duplicates.
    pub tags: Vec<String>,
    /// Effective timeout.
    pub timeout: Duration,
    /// Where the test is defined.
    pub location: Location,
    /// The body.
    pub run: fn(&mut Ctx) -> TestResult,
}

impl Test {
    fn from_def(def: &TestDef) -> Test {
        let mut tags: BTreeSet<String> = def.tags.iter().map(|tag| tag.to_string()).collect();
        if tags.iter().any(|tag| needs::implies_hardware(tag)) {
            tags.insert(HARDWARE.to_string());
        }
        let module = def.module.split_once("::").map(|(_, rest)| rest);
        let name = match module {
            Some(module) => format!("{module}::{}", def.name),
            None => def.name.to_string(),
        };
        Test {
            name,
            tags: tags.into_iter().collect(),
            timeout: def
                .timeout_ms
                .map(Duration::from_millis)
                .unwrap_or(DEFAULT_TIMEOUT),
            location: Location {
                file: def.file.to_string(),
                line: def.line,
            },
            run: def.run,
        }
    }

    /// Whether the test carries `tag`.
    pub fn has_tag(&self, tag: &str) -> bool {
        self.tags.iter().any(|t| t == tag)
    }

    /// The requirement tags (`needs-*`) of the test.
    pub fn needs(&self) -> impl Iterator<Item = &str> {
        self.tags
            .iter()
            .map(String::as_str)
            .filter(|tag| needs::is_requirement(tag))
    }
}

/// Every registered test, sorted by name, after checking that names are unique and that every
/// `needs-*` tag is known.
pub fn collect(known_needs: &BTreeSet<&str>) -> Result<Vec<Test>, String> {
    check(inventory::iter::<TestDef>.into_iter(), known_needs)
}

fn check<'a>(
    defs: impl Iterator<Item = &'a TestDef>,
    known_needs: &BTreeSet<&str>,
) -> Result<Vec<Test>, String> {
    let mut tests: Vec<Test> = defs.map(Test::from_def).collect();
    tests.sort_by(|a, b| a.name.cmp(&b.name));
    let mut problems = Vec::new();
    for pair in tests.windows(2) {
        if pair[0].name == pair[1].name {
            problems.push(format!("test {} is registered twice", pair[0].name));
        }
    }
    for test in &tests {
        for need in test.needs() {
            if !known_needs.contains(need) {
                problems.push(format!(
                    "test {} has unknown requirement tag {need:?} (known: {})",
                    test.name,
                    known_needs.iter().copied().collect::<Vec<_>>().join(", ")
                ));
            }
        }
    }
    if problems.is_empty() {
        Ok(tests)
    } else {
        Err(problems.join("\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(_: &mut Ctx) -> TestResult {
        Ok(())
    }

    fn def(module: &'static str, name: &'static str, tags: &'static [&'static str]) -> TestDef {
        TestDef {
            module,
            name,
            tags,
            timeout_ms: None,
            file: "suite/tests.rs",
            line: 7,
            run: body,
        }
    }

    #[test]
    fn names_drop_the_crate_and_device_needs_imply_hardware() {
        let known = BTreeSet::from(["needs-v4l2", "needs-ffmpeg"]);
        let defs = [
            def("real_system::v4l2", "capture", &["needs-v4l2"]),
            def("real_system", "top", &["needs-ffmpeg", "slow"]),
        ];
        let tests = check(defs.iter(), &known).unwrap();
        assert_eq!(tests[0].name, "top");
        assert_eq!(tests[0].tags, ["needs-ffmpeg", "slow"]);
        assert_eq!(tests[0].timeout, DEFAULT_TIMEOUT);
        assert_eq!(tests[1].name, "v4l2::capture");
        assert_eq!(tests[1].tags, ["hardware", "needs-v4l2"]);
        assert_eq!(
            tests[1].location,
            Location {
                file: "suite/tests.rs".to_string(),
                line: 7
            }
        );
    }

    #[test]
    fn unknown_needs_and_duplicate_names_are_errors_naming_the_test() {
        let known = BTreeSet::from(["needs-ffmpeg"]);
        let defs = [
            def("suite::a", "x", &["needs-ffmepg"]),
            def("suite::b", "y", &[]),
            def("suite::b", "y", &[]),
        ];
        let err = check(defs.iter(), &known).unwrap_err();
        assert!(
            err.contains(
                "test a::x has unknown requirement tag \"needs-ffmepg\" (known: needs-ffmpeg)"
            ),
            "{err}"
        );
        assert!(err.contains("test b::y is registered twice"), "{err}");
    }
}
