//! End-to-end behaviour of the harness: run the `fixture` example (one test per outcome) as a
//! subprocess and check its console output, exit code and JUnit report.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The fixture binary, which `cargo test` builds next to this test's directory.
fn fixture() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let target = exe.parent().unwrap().parent().unwrap();
    let path = target.join("examples").join("fixture");
    assert!(
        path.exists(),
        "{} missing: build with `cargo test -p realtest`",
        path.display()
    );
    path
}

const HARNESS_ENV: [&str; 6] = [
    "REALTEST_INCLUDE_TAGS",
    "REALTEST_EXCLUDE_TAGS",
    "REALTEST_TAGS",
    "REALTEST_JUNIT",
    "REALTEST_REQUIRE",
    "REALTEST_BENCH",
];

fn run(args: &[&str], env: &[(&str, &str)]) -> (Output, String) {
    let mut command = Command::new(fixture());
    command.args(args).env("RUST_BACKTRACE", "0");
    for var in HARNESS_ENV {
        command.env_remove(var);
    }
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    (output, stdout)
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// One `<testcase>`: name, `(element, type, message)` of its failure or skip, system-out,
/// system-err, tags.
struct Case {
    name: String,
    outcome: Option<(String, String, String)>,
    system_out: String,
    system_err: String,
    tags: String,
}

impl Case {
    fn kind(&self) -> Option<String> {
        self.outcome
            .as_ref()
            .map(|(element, ty, _)| format!("{element}:{ty}"))
    }
}

fn property(node: roxmltree::Node) -> (String, String) {
    (
        node.attribute("name").unwrap_or_default().to_string(),
        node.attribute("value").unwrap_or_default().to_string(),
    )
}

/// The test's full name from its case: `classname` is `<binary>.<module path>` (just `<binary>`
/// at the crate root), `name` the function.
fn full_name(case: roxmltree::Node) -> String {
    let name = case.attribute("name").unwrap();
    match case.attribute("classname").unwrap().split_once('.') {
        Some((_binary, module)) => format!("{module}::{name}"),
        None => name.to_string(),
    }
}

fn element_text(case: roxmltree::Node, element: &str) -> String {
    case.children()
        .find(|n| n.has_tag_name(element))
        .and_then(|n| n.text())
        .unwrap_or_default()
        .to_string()
}

fn junit_cases(path: &Path) -> (Vec<(String, String)>, Vec<Case>) {
    let xml = std::fs::read_to_string(path).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let suite = doc
        .descendants()
        .find(|n| n.has_tag_name("testsuite"))
        .unwrap();
    let properties = suite
        .children()
        .find(|n| n.has_tag_name("properties"))
        .map(|props| {
            props
                .children()
                .filter(|n| n.has_tag_name("property"))
                .map(property)
                .collect()
        })
        .unwrap_or_default();
    let cases = suite
        .children()
        .filter(|n| n.has_tag_name("testcase"))
        .map(|case| Case {
            name: full_name(case),
            outcome: case
                .children()
                .find(|n| n.has_tag_name("failure") || n.has_tag_name("skipped"))
                .map(|n| {
                    (
                        n.tag_name().name().to_string(),
                        n.attribute("type").unwrap_or_default().to_string(),
                        n.attribute("message").unwrap_or_default().to_string(),
                    )
                }),
            system_out: element_text(case, "system-out"),
            system_err: element_text(case, "system-err"),
            tags: case
                .descendants()
                .filter(|n| n.has_tag_name("property"))
                .map(property)
                .find(|(name, _)| name == "tags")
                .map(|(_, value)| value)
                .unwrap_or_default(),
        })
        .collect();
    (properties, cases)
}

fn case<'a>(cases: &'a [Case], name: &str) -> &'a Case {
    cases
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no testcase {name}"))
}

fn line_of<'a>(stdout: &'a str, test: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| l.starts_with(&format!("test {test} ")))
        .unwrap_or_else(|| panic!("no line for {test} in:\n{stdout}"))
}

#[test]
fn every_outcome_shows_on_the_console_and_in_junit() {
    let dir = tempfile::tempdir().unwrap();
    let junit_dir = format!("{}/", dir.path().display());
    let (output, stdout) = run(&["--junit", &junit_dir, "--test-threads", "4"], &[]);
    assert_eq!(output.status.code(), Some(101), "{stdout}");

    assert!(line_of(&stdout, "passes").ends_with("... ok"));
    assert!(line_of(&stdout, "async_passes").ends_with("... ok"));
    assert!(line_of(&stdout, "fails").ends_with("... FAILED"));
    assert!(line_of(&stdout, "needs_missing")
        .ends_with("ignored (needs-fixture-absent: fixture capability is never present)"));
    assert!(line_of(&stdout, "destructive_wipes")
        .contains("ignored (destructive: runs only when asked for"));
    assert!(line_of(&stdout, "runtime_skip")
        .contains("ignored (needs-v4l2: no capture device offers ZZZZ"));
    assert!(stdout.contains("[assertion] expected 3, got 2"), "{stdout}");
    assert!(
        stdout.contains("[panic] panicked: boom at the fixture (at "),
        "{stdout}"
    );
    assert!(stdout.contains("[timeout] timeout after 500ms"), "{stdout}");
    assert!(stdout.contains("skipped, by reason:"), "{stdout}");
    assert!(
        stdout.contains("test result: FAILED. 3 passed; 4 failed; 4 ignored"),
        "{stdout}"
    );

    let (properties, cases) = junit_cases(&dir.path().join("fixture.xml"));
    let keys: Vec<&str> = properties.iter().map(|(k, _)| k.as_str()).collect();
    for key in ["kernel", "ffmpeg", "mediamtx", "v4l2-devices"] {
        assert!(
            keys.contains(&key),
            "suite property {key} missing: {keys:?}"
        );
    }
    let kind = |name: &str| case(&cases, name).kind();
    assert_eq!(kind("passes"), None);
    assert_eq!(kind("fails").as_deref(), Some("failure:assertion"));
    assert_eq!(kind("panics").as_deref(), Some("failure:panic"));
    assert_eq!(kind("times_out").as_deref(), Some("failure:timeout"));
    assert_eq!(kind("leaks").as_deref(), Some("failure:leak"));
    assert_eq!(
        kind("needs_missing").as_deref(),
        Some("skipped:needs-fixture-absent")
    );
    assert_eq!(
        kind("destructive_wipes").as_deref(),
        Some("skipped:destructive")
    );
    assert_eq!(kind("runtime_skip").as_deref(), Some("skipped:needs-v4l2"));
    assert_eq!(
        case(&cases, "hardware_camera").tags,
        "hardware,needs-fixture-camera"
    );
    for case in &cases {
        if let Some((element, _, message)) = &case.outcome {
            assert!(
                !message.is_empty(),
                "{} has an empty <{element}> message",
                case.name
            );
        }
    }
    // The child's stdout in <system-out>, its stderr in <system-err>.
    let fails = case(&cases, "fails");
    assert!(
        fails.system_out.contains("] hello-from-child\n")
            && !fails.system_out.contains("] to-stderr"),
        "{}",
        fails.system_out
    );
    assert!(
        fails.system_err.contains("] to-stderr\n"),
        "{}",
        fails.system_err
    );
    assert_eq!(
        case(&cases, "async_passes").tags,
        "needs-fixture-present,slow"
    );
}

/// The pid in a captured-log line `[sleep 1234] started: …`.
fn started_pid(stdout: &str, program: &str) -> u32 {
    stdout
        .lines()
        .find_map(|l| {
            let rest = l.strip_prefix(&format!("[{program} "))?;
            rest.split(']').next()?.parse().ok()
        })
        .unwrap_or_else(|| panic!("no [{program} PID] line in:\n{stdout}"))
}

/// Whether `pid` is a live process (a zombie waiting for its parent does not count).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| {
            let state = stat.rsplit(')').next().unwrap_or_default().trim_start();
            !state.starts_with('Z') && !state.starts_with('X')
        })
        .unwrap_or(false)
}

#[test]
fn leaked_and_timed_out_processes_are_killed() {
    let (output, stdout) = run(&["--exact", "leaks"], &[]);
    assert_eq!(
        output.status.code(),
        Some(101),
        "a leak fails the run: {stdout}"
    );
    let pid = started_pid(&stdout, "sleep");
    assert!(
        stdout.contains(&format!("[leak] leaked pid {pid} sleep 32 (killed)")),
        "{stdout}"
    );
    assert!(!alive(pid), "pid {pid} survived");

    let (output, stdout) = run(&["--exact", "times_out"], &[]);
    assert_eq!(
        output.status.code(),
        Some(101),
        "a timeout fails the run: {stdout}"
    );
    assert!(
        line_of(&stdout, "times_out").ends_with("... FAILED"),
        "{stdout}"
    );
    assert!(
        stdout.contains("[timeout] timeout after 500ms; its processes were stopped"),
        "{stdout}"
    );
    let pid = started_pid(&stdout, "sleep");
    assert!(!alive(pid), "pid {pid} of the timed-out test survived");
}

#[test]
fn tags_select_and_destructive_tests_need_asking() {
    let (output, stdout) = run(&["--include-tag", "destructive"], &[]);
    assert!(output.status.success(), "{stdout}");
    assert!(line_of(&stdout, "destructive_wipes").ends_with("... ok"));
    assert!(stdout.contains("1 passed; 0 failed; 0 ignored"), "{stdout}");

    let (output, stdout) = run(&["--exact", "destructive_wipes"], &[]);
    assert!(output.status.success(), "{stdout}");
    assert!(line_of(&stdout, "destructive_wipes").ends_with("... ok"));

    let (output, stdout) = run(
        &[],
        &[("REALTEST_TAGS", "needs-fixture-present and not slow")],
    );
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("running 1 test\n"), "{stdout}");
    assert!(line_of(&stdout, "needs_present").ends_with("... ok"));

    let (output, stdout) = run(
        &[
            "--include-tag",
            "slow",
            "--exclude-tag",
            "needs-fixture-present",
        ],
        &[],
    );
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("running 0 tests"), "{stdout}");
}

#[test]
fn a_required_capability_turns_a_skip_into_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("out.xml");
    let (output, stdout) = run(
        &[
            "--require",
            "fixture-absent",
            "--junit",
            junit.to_str().unwrap(),
            "needs_",
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(101), "{stdout}");
    assert!(line_of(&stdout, "needs_missing").ends_with("... FAILED"));
    assert!(line_of(&stdout, "needs_present").ends_with("... ok"));
    assert!(
        stdout.contains("[required-capability] required capability missing: needs-fixture-absent"),
        "{stdout}"
    );
    let (_, cases) = junit_cases(&junit);
    assert_eq!(
        case(&cases, "needs_missing").kind().as_deref(),
        Some("failure:required-capability")
    );

    let (output, stdout) = run(
        &["--exact", "runtime_skip"],
        &[("REALTEST_REQUIRE", "needs-v4l2")],
    );
    assert_eq!(output.status.code(), Some(101), "{stdout}");
    assert!(
        stdout.contains("[required-capability] required capability missing: needs-v4l2"),
        "{stdout}"
    );
}

#[test]
fn bench_cameras_must_be_present() {
    let dir = tempfile::tempdir().unwrap();
    let bench = dir.path().join("bench.toml");
    std::fs::write(
        &bench,
        "name = \"selftest-bench\"\nrequire = [\"fixture-present\"]\n\
         [[camera]]\nid = \"absent-cam\"\ndriver = \"no-such-driver\"\n",
    )
    .unwrap();
    let junit = dir.path().join("bench.xml");
    let (output, stdout) = run(
        &[
            "--bench",
            bench.to_str().unwrap(),
            "--junit",
            junit.to_str().unwrap(),
            "bench::",
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(101), "{stdout}");
    assert!(line_of(&stdout, "bench::camera::absent-cam").ends_with("... FAILED"));
    assert!(
        stdout.contains("bench camera \"absent-cam\" is not present"),
        "{stdout}"
    );
    let (properties, cases) = junit_cases(&junit);
    assert!(
        properties.contains(&("bench".to_string(), "selftest-bench".to_string())),
        "{properties:?}"
    );
    assert_eq!(
        case(&cases, "bench::camera::absent-cam").kind().as_deref(),
        Some("failure:bench-camera")
    );

    // With no hardware test selected, the bench's cameras are not this run's business.
    let (output, stdout) = run(
        &[
            "--bench",
            bench.to_str().unwrap(),
            "--exclude-tag",
            "hardware",
            "bench::",
        ],
        &[],
    );
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("running 0 tests"), "{stdout}");
}

#[test]
fn listing_reports_unmet_needs_as_ignored_for_nextest() {
    let (output, stdout) = run(&["--list", "--format", "terse"], &[]);
    assert!(output.status.success());
    assert_eq!(
        stdout.lines().filter(|l| l.ends_with(": test")).count(),
        11,
        "{stdout}"
    );
    let (_, stdout) = run(&["--list", "--format", "terse", "--ignored"], &[]);
    let mut ignored: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_suffix(": test"))
        .collect();
    ignored.sort_unstable();
    assert_eq!(
        ignored,
        ["destructive_wipes", "hardware_camera", "needs_missing"]
    );
    // nextest runs an ignored test as `--ignored --exact NAME`: it still says why it does not run.
    let (output, stdout) = run(&["--ignored", "--exact", "needs_missing"], &[]);
    assert!(output.status.success());
    assert!(line_of(&stdout, "needs_missing").contains("ignored (needs-fixture-absent:"));
}

#[test]
fn libtest_json_output_stays_machine_readable() {
    let (output, stdout) = run(
        &["--format", "json", "-Z", "unstable-options", "needs_"],
        &[],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    for line in stdout.lines() {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|err| panic!("not JSON ({err}): {line}"));
    }
    assert!(stderr(&output).contains("skipped, by reason:"));
}

#[test]
fn check_deps_prints_the_probe_as_json() {
    let (output, stdout) = run(&["--check-deps", "--format", "json"], &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert!(json["probe"]["kernel"]
        .as_str()
        .is_some_and(|k| !k.is_empty()));
    assert!(json["probe"]["v4l2"]["nodes"].is_array());
    assert_eq!(json["needs"]["needs-fixture-absent"]["status"], "unmet");
    assert_eq!(json["needs"]["needs-fixture-present"]["status"], "met");
    assert_eq!(json["needs"]["needs-fixture-absent"]["tests"], 1);
}

#[test]
fn usage_errors_are_clear_and_exit_2() {
    let (output, _) = run(&["--tags", "needs-v4l2 and (slow"], &[]);
    assert_eq!(output.status.code(), Some(2));
    let text = stderr(&output);
    assert!(
        text.contains("invalid tag expression") && text.contains("position 20"),
        "{text}"
    );

    let (output, _) = run(&["--require", "teleporter"], &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("unknown capability \"teleporter\""));

    let (output, _) = run(&["--bench", "/nonexistent/bench.toml"], &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("cannot read bench file /nonexistent/bench.toml"));

    let (output, _) = run(&["--no-such-flag"], &[]);
    assert_eq!(output.status.code(), Some(2));
    let text = stderr(&output);
    assert!(
        text.starts_with("error: unexpected argument '--no-such-flag'"),
        "{text}"
    );
}
