//! End to end: the JUnit report of whole runs, checked against what realtest did not write —
//! real `cargo test` and `cargo nextest run` invocations of the two fixture binaries, and the
//! Jenkins xUnit plugin's schema (`tests/data/junit-10.xsd`) through `xmllint`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The workspace root (this package lives in `realtest/`).
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The target directory this test runs from (`<target>/debug/deps/junit-…`).
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.ancestors().nth(3).unwrap().to_path_buf()
}

/// An example built by `cargo test -p realtest` (as a plain binary).
fn example(name: &str) -> PathBuf {
    let path = target_dir().join("debug").join("examples").join(name);
    assert!(
        path.exists(),
        "{} missing: build with `cargo test -p realtest`",
        path.display()
    );
    path
}

/// `command` without the harness's and nextest's environment (this test may itself run under
/// nextest, whose run id would make every nested run one run).
fn clean(command: &mut Command) -> &mut Command {
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("REALTEST_") || key.starts_with("NEXTEST") {
            command.env_remove(key.as_ref());
        }
    }
    command.env("RUST_BACKTRACE", "0")
}

fn output(command: &mut Command) -> Output {
    let output = command.output().unwrap();
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    assert!(
        output.status.code().is_some(),
        "killed by a signal: {}",
        text(&output.stderr)
    );
    output
}

fn cargo() -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    clean(&mut command)
        .current_dir(workspace_root())
        .env("CARGO_TARGET_DIR", target_dir());
    command
}

/// Whether `program --version` runs; otherwise says why the calling test checks nothing.
fn available(program: &[&str], why: &str) -> bool {
    let found = Command::new(program[0])
        .args(&program[1..])
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!(
            "SKIPPED: `{}` is not installed ({why}; ci/setup installs it)",
            program.join(" ")
        );
    }
    found
}

/// One `<testcase>` as the tests look at it.
#[derive(Debug)]
struct Case {
    suite: String,
    classname: String,
    name: String,
    file: Option<String>,
    line: Option<usize>,
    /// `(element, type, message, text)` of `<failure>`, `<error>` or `<skipped>`.
    outcome: Option<(String, String, String, String)>,
    system_out: String,
}

/// The suites (name, run id, `tests` attribute) and cases of a report.
fn read_report(path: &Path) -> (Vec<(String, String, usize)>, Vec<Case>) {
    let xml = std::fs::read_to_string(path)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()));
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let mut suites = Vec::new();
    let mut cases = Vec::new();
    for suite in doc.descendants().filter(|n| n.has_tag_name("testsuite")) {
        let name = suite.attribute("name").unwrap().to_string();
        let run = suite
            .descendants()
            .filter(|n| n.has_tag_name("property"))
            .find(|n| n.attribute("name") == Some("run-id"))
            .and_then(|n| n.attribute("value"))
            .unwrap_or_default()
            .to_string();
        let tests: usize = suite.attribute("tests").unwrap().parse().unwrap();
        let mut count = 0;
        for case in suite.children().filter(|n| n.has_tag_name("testcase")) {
            count += 1;
            let text = |element: &str| {
                case.children()
                    .find(|n| n.has_tag_name(element))
                    .and_then(|n| n.text())
                    .unwrap_or_default()
                    .to_string()
            };
            cases.push(Case {
                suite: name.clone(),
                classname: case.attribute("classname").unwrap().to_string(),
                name: case.attribute("name").unwrap().to_string(),
                file: case.attribute("file").map(String::from),
                line: case.attribute("line").map(|l| l.parse().unwrap()),
                outcome: case
                    .children()
                    .find(|n| {
                        n.has_tag_name("failure")
                            || n.has_tag_name("error")
                            || n.has_tag_name("skipped")
                    })
                    .map(|n| {
                        (
                            n.tag_name().name().to_string(),
                            n.attribute("type").unwrap_or_default().to_string(),
                            n.attribute("message").unwrap_or_default().to_string(),
                            n.text().unwrap_or_default().to_string(),
                        )
                    }),
                system_out: text("system-out"),
            });
        }
        assert_eq!(count, tests, "suite {name}: tests attribute vs cases");
        suites.push((name, run, tests));
    }
    (suites, cases)
}

fn find<'a>(cases: &'a [Case], classname: &str, name: &str) -> &'a Case {
    cases
        .iter()
        .find(|c| c.classname == classname && c.name == name)
        .unwrap_or_else(|| panic!("no case {classname} {name} in {cases:#?}"))
}

/// Every case names the file and the line of its `fn` (the test's function is `name`), every
/// skip has its reason as text, no case appears twice.
fn assert_cases_are_readable(cases: &[Case]) {
    let mut seen = BTreeSet::new();
    for case in cases {
        assert!(
            seen.insert((&case.suite, &case.classname, &case.name)),
            "duplicate case {case:?}"
        );
        let file = case
            .file
            .as_deref()
            .unwrap_or_else(|| panic!("no file: {case:?}"));
        let line = case.line.unwrap_or_else(|| panic!("no line: {case:?}"));
        assert!(
            !file.starts_with('/'),
            "file is not workspace-relative: {case:?}"
        );
        let source = std::fs::read_to_string(workspace_root().join(file))
            .unwrap_or_else(|err| panic!("{file} of {case:?}: {err}"));
        let text = source.lines().nth(line - 1).unwrap_or_default();
        assert!(
            text.contains(&format!("fn {}(", case.name)),
            "line {line} of {file} is not the fn of {case:?}: {text:?}"
        );
        if let Some((element, _, message, body)) = &case.outcome {
            assert!(!message.is_empty(), "empty message: {case:?}");
            if element == "skipped" {
                assert_eq!(body, message, "skip reason as text: {case:?}");
            }
        }
    }
}

/// Runs `cargo test` on both fixtures with `--junit report` (their failures are intended).
fn cargo_test_both(report: &Path) {
    let out = output(cargo().args([
        "test",
        "-p",
        "realtest",
        "--example",
        "fixture",
        "--example",
        "fixture_media",
        "--no-fail-fast",
        "--",
        "--junit",
        report.to_str().unwrap(),
    ]));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("JUnit report: ") && out.status.code() == Some(101),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn one_cargo_test_leaves_one_suite_per_binary_and_a_second_replaces_them() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.xml");
    cargo_test_both(&report);
    let (suites, cases) = read_report(&report);
    let names: Vec<(&str, usize)> = suites.iter().map(|(n, _, t)| (n.as_str(), *t)).collect();
    assert_eq!(names, [("fixture", 11), ("fixture_media", 3)]);
    assert_eq!(suites[0].1, suites[1].1, "one run id for one cargo test");
    assert_cases_are_readable(&cases);
    let skip = find(&cases, "fixture_media.needs", "skipped_for_a_need");
    assert_eq!(
        skip.outcome.as_ref().map(|o| o.3.as_str()),
        Some("needs-fixture-never: this need is never met")
    );

    cargo_test_both(&report);
    let (again, cases) = read_report(&report);
    let names: Vec<(&str, usize)> = again.iter().map(|(n, _, t)| (n.as_str(), *t)).collect();
    assert_eq!(names, [("fixture", 11), ("fixture_media", 3)]);
    assert_ne!(again[0].1, suites[0].1, "the second run has its own id");
    assert_cases_are_readable(&cases);
}

#[test]
fn under_nextest_the_report_holds_every_test_of_the_run() {
    if !available(
        &["cargo-nextest", "nextest"],
        "the nextest half of the report",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("n.xml");
    let out = output(
        cargo()
            .args(["nextest", "run", "-p", "realtest", "--example", "fixture"])
            .args([
                "--example",
                "fixture_media",
                "--no-fail-fast",
                "--color",
                "never",
            ])
            .env("REALTEST_JUNIT", &report),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    // nextest's own count: "Summary [   0.704s] 10 tests run: 5 passed, 5 failed, 4 skipped".
    let summary = stderr
        .lines()
        .find(|l| l.trim_start().starts_with("Summary ["))
        .unwrap_or_else(|| panic!("no nextest summary in:\n{stderr}"));
    let number_before = |word: &str| -> usize {
        let words: Vec<&str> = summary
            .split([' ', ','])
            .filter(|w| !w.is_empty())
            .collect();
        let at = words
            .iter()
            .position(|w| *w == word)
            .unwrap_or_else(|| panic!("{summary}"));
        words[at - 1].parse().unwrap()
    };
    let (run, skipped) = (number_before("tests"), number_before("skipped"));
    assert_eq!(out.status.code(), Some(100), "{stderr}");

    let (suites, cases) = read_report(&report);
    assert_eq!(cases.len(), run + skipped, "nextest: {summary}");
    assert_eq!(suites.len(), 2, "{suites:?}");
    assert_cases_are_readable(&cases);
    // Skipped at list time (nextest's SKIP), with the reason as text.
    for (name, reason) in [
        (
            "needs_missing",
            "needs-fixture-absent: fixture capability is never present",
        ),
        (
            "hardware_camera",
            "needs-fixture-camera: the fixture's camera is never plugged in",
        ),
        ("destructive_wipes", "destructive: runs only when asked for"),
    ] {
        let case = find(&cases, "fixture", name);
        let (element, _, _, text) = case.outcome.as_ref().unwrap();
        assert_eq!(element, "skipped", "{case:?}");
        assert!(text.starts_with(reason), "{case:?}");
    }
    // Skipped at run time: nextest counts it as passed, the report says what happened.
    let runtime = find(&cases, "fixture", "runtime_skip");
    assert_eq!(
        runtime.outcome.as_ref().map(|o| o.0.as_str()),
        Some("skipped")
    );
    assert_eq!(
        find(&cases, "fixture", "times_out")
            .outcome
            .as_ref()
            .map(|o| o.1.as_str()),
        Some("timeout")
    );
}

#[test]
fn the_strict_form_validates_against_the_jenkins_xunit_schema() {
    if !available(&["xmllint"], "validating the strict form") {
        return;
    }
    let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/junit-10.xsd");
    let validate = |report: &Path| {
        output(
            Command::new("xmllint")
                .args(["--noout", "--schema"])
                .arg(&schema)
                .arg(report),
        )
    };
    let dir = tempfile::tempdir().unwrap();
    for (form, file) in [("strict", "strict.xml"), ("rich", "rich.xml")] {
        let report = dir.path().join(file);
        for fixture in ["fixture", "fixture_media"] {
            output(clean(&mut Command::new(example(fixture))).args([
                "--junit",
                report.to_str().unwrap(),
                "--junit-format",
                form,
                "--junit-logs",
                "all",
            ]));
        }
    }
    let strict = validate(&dir.path().join("strict.xml"));
    assert!(
        strict.status.success(),
        "{}",
        String::from_utf8_lossy(&strict.stderr)
    );
    let (suites, cases) = read_report(&dir.path().join("strict.xml"));
    assert_eq!(suites.len(), 2);
    assert_eq!(cases.len(), 14);
    // The schema check is a real one: the rich form (file, line, timestamps, case
    // properties, testsuites@skipped) is refused.
    let rich = validate(&dir.path().join("rich.xml"));
    let complaints = String::from_utf8_lossy(&rich.stderr);
    assert!(!rich.status.success(), "{complaints}");
    assert!(
        complaints.contains("attribute 'skipped': The attribute 'skipped' is not allowed"),
        "{complaints}"
    );
}

#[test]
fn an_attachment_is_kept_next_to_the_report_and_named_in_system_out() {
    let dir = tempfile::tempdir_in(target_dir()).unwrap();
    let report = dir.path().join("r.xml");
    // Each `sh` is a parent of its own, so each is a run of its own.
    let run = |logs: &str| {
        output(
            clean(&mut Command::new("sh"))
                .args(["-c", "\"$0\" \"$@\"; true"])
                .arg(example("fixture_media"))
                .args(["--junit", report.to_str().unwrap(), "--junit-logs", logs])
                .current_dir(Path::new(env!("CARGO_MANIFEST_DIR"))),
        )
    };
    run("failures");
    let (_, cases) = read_report(&report);
    let failed = find(
        &cases,
        "fixture_media.media",
        "snapshot_check_fails_with_the_file_attached",
    );
    let marker = failed
        .system_out
        .lines()
        .find_map(|l| l.strip_prefix("[[ATTACHMENT|")?.strip_suffix("]]"))
        .unwrap_or_else(|| panic!("no marker in {:?}", failed.system_out));
    assert!(!marker.starts_with('/'), "{marker}");
    let kept = workspace_root().join(marker);
    assert!(
        kept.starts_with(dir.path().join("r.attachments")),
        "{}",
        kept.display()
    );
    assert_eq!(std::fs::read(&kept).unwrap(), b"P3 1 1 255 255 0 0\n");
    // A passing test's log only when asked.
    let passed = find(&cases, "fixture_media.media", "passes_with_a_log");
    assert_eq!(passed.system_out, "");

    run("all");
    assert!(
        !kept.exists(),
        "the earlier run's attachment is gone with its suite"
    );
    // Without a report nothing is kept, and the log says so.
    let alone = output(clean(&mut Command::new(example("fixture_media"))).arg("media::"));
    let stdout = String::from_utf8_lossy(&alone.stdout);
    assert!(
        stdout.contains("snapshot.ppm not kept: no JUnit report (--junit)"),
        "{stdout}"
    );
    let (_, cases) = read_report(&report);
    let passed = find(&cases, "fixture_media.media", "passes_with_a_log");
    assert!(
        passed
            .system_out
            .contains("a line that only --junit-logs all keeps"),
        "{:?}",
        passed.system_out
    );
}

#[test]
fn the_reports_of_two_benches_merge_into_one_that_says_where_each_case_ran() {
    let dir = tempfile::tempdir().unwrap();
    let mut reports = Vec::new();
    for bench in ["bench-a", "bench-b"] {
        let file = dir.path().join(format!("{bench}.toml"));
        std::fs::write(&file, format!("name = \"{bench}\"\n")).unwrap();
        let report = dir.path().join(format!("{bench}.xml"));
        output(clean(&mut Command::new(example("fixture_media"))).args([
            "--bench",
            file.to_str().unwrap(),
            "--junit",
            report.to_str().unwrap(),
        ]));
        reports.push(report);
    }
    let merged = dir.path().join("all.xml");
    let merge = |inputs: &[&Path]| {
        output(
            Command::new(env!("CARGO_BIN_EXE_realtest-junit"))
                .args(["merge", "--format", "strict", "--output"])
                .arg(&merged)
                .args(inputs),
        )
    };
    let out = merge(&[&reports[0], &reports[1]]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("2 suites, 6 cases (2 failed, 2 skipped)"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let (suites, cases) = read_report(&merged);
    let names: Vec<&str> = suites.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(names, ["fixture_media@bench-a", "fixture_media@bench-b"]);
    assert_eq!(cases.len(), 6);
    if available(&["xmllint"], "validating the merged strict report") {
        let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/junit-10.xsd");
        let check = output(
            Command::new("xmllint")
                .args(["--noout", "--schema"])
                .arg(&schema)
                .arg(&merged),
        );
        assert!(
            check.status.success(),
            "{}",
            String::from_utf8_lossy(&check.stderr)
        );
    }

    // The same bench twice is a mistake, not a merge.
    let out = merge(&[&reports[0], &reports[0]]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("suite fixture_media@bench-a is in both"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
