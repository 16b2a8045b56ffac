//! The harness main: parse the command line, decide per test whether it runs, run it under its
//! timeout with leak checks, then report (console summary, JUnit).

use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::panic::{self, AssertUnwindSafe};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant, SystemTime};

use libtest_mimic::{Completion, Failed, Trial};

use crate::bench::{Bench, BenchCamera};
use crate::cli::{self, CheckDepsFormat, CliExit, Options};
use crate::ctx::{Ctx, Shared};
use crate::outcome::{CapturedLog, FailureKind, Outcome, TestError, TestRecord};
use crate::owner::RunId;
use crate::probe::Probe;
use crate::registry::{self, Test, DESTRUCTIVE, HARDWARE};
use crate::run_state::{self, Planned, RunState};
use crate::{interrupt, junit, leak, needs, process, report, workers};

/// Between SIGTERM and SIGKILL for the processes of a test that timed out.
const TIMEOUT_GRACE: Duration = Duration::from_secs(2);

/// What the harness decided before running a test.
#[derive(Debug, Clone)]
enum Gate {
    Run,
    Skip { kind: String, reason: String },
    Fail { reason: String },
}

/// Everything a trial needs besides its test.
struct RunContext {
    required: BTreeSet<String>,
    echo: bool,
    /// Tests running and ended (records).
    state: Arc<RunState>,
    owner_prefix: String,
    /// Whether any test started a process through its `Ctx` (else the sweep skips the scan).
    spawned_any: AtomicBool,
}

/// Runs every registered test of this binary as the command line and environment ask, and
/// returns the process exit code. Used by [`main!`](crate::main).
pub fn run() -> ExitCode {
    let known = needs::known();
    let known_list: Vec<&str> = known.iter().copied().collect();
    let args: Vec<String> = std::env::args().collect();
    let binary = binary_name(args.first().map(String::as_str).unwrap_or("tests"));
    let options = match cli::parse(args, |key| std::env::var(key).ok(), &known_list) {
        Ok(options) => Arc::new(options),
        Err(CliExit::Help(text)) => {
            println!("{text}");
            return ExitCode::SUCCESS;
        }
        Err(CliExit::Usage(message)) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    let tests = match registry::collect(&known) {
        Ok(tests) => tests,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    if let Some(format) = options.check_deps {
        print_check_deps(format, &tests);
        return ExitCode::SUCCESS;
    }
    let (bench, required) = match bench_and_requirements(&options, &known_list) {
        Ok(found) => found,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };

    if !options.libtest.list {
        for line in leak::sweep_dead_runs(&std::env::temp_dir()) {
            eprintln!("realtest: {line}");
        }
    }
    install_panic_hook();
    if let Some(settings) = &options.junit {
        let bench = bench
            .as_ref()
            .map(|b| (b.name.as_str(), b.description.as_str()));
        junit::install(settings, &binary, bench);
    }
    let context = Arc::new(RunContext {
        required,
        echo: options.libtest.nocapture,
        state: Arc::default(),
        owner_prefix: RunId::this_run().marker_prefix(),
        spawned_any: AtomicBool::new(false),
    });
    let started = Instant::now();
    // The bench's cameras are checked by the binaries that have hardware tests to run, not by
    // every test binary of the workspace.
    let runs_hardware = tests
        .iter()
        .any(|test| test.has_tag(HARDWARE) && is_selected(test, &options));
    let listing = options.libtest.list;
    let listed_skips = listing.then(|| list_time_skips(&options, &tests, &context));
    let mut planned: Vec<Planned> = tests
        .iter()
        .filter(|test| is_selected(test, &options))
        .map(|test| Planned {
            name: test.name.clone(),
            tags: test.tags.clone(),
            location: Some(test.location.clone()),
        })
        .collect();
    let mut trials = build_trials(&options, tests, &context);
    if let Some(bench) = bench.as_ref().filter(|_| runs_hardware) {
        planned.extend(bench.cameras.iter().map(|camera| Planned {
            name: bench_trial_name(camera),
            tags: vec!["bench".to_string()],
            location: camera.location.clone(),
        }));
        trials.extend(bench_trials(bench, &context));
    }
    if !listing {
        watch_signals(&options, &context, &trials, planned, started);
    }
    let conclusion = libtest_mimic::run(&options.libtest, trials);
    if listing {
        if let (Some(report), Some(skips)) = (junit::session(), listed_skips) {
            // stdout belongs to the listing (nextest parses it).
            if let Err(message) = report.write_listing(&skips) {
                eprintln!("error: {message}");
                return ExitCode::FAILURE;
            }
        }
        return conclusion.exit_code();
    }
    if !context.state.end() {
        interrupt::wait_for_interruption();
    }

    let records = context.state.take_records();
    let spawned_any = context.spawned_any.load(Ordering::Relaxed);
    let report_ok = report_run(
        &options,
        records,
        spawned_any.then_some(context.owner_prefix.as_str()),
        started.elapsed(),
    );
    if !report_ok {
        return ExitCode::FAILURE;
    }
    conclusion.exit_code()
}

/// From now on SIGINT and SIGTERM stop the run's processes and write the report of what ran
/// ([`interrupt`]).
fn watch_signals(
    options: &Arc<Options>,
    context: &RunContext,
    trials: &[Trial],
    planned: Vec<Planned>,
    started: Instant,
) {
    let to_run: BTreeSet<&str> = trials
        .iter()
        .filter(|t| !options.libtest.is_filtered_out(t) && !options.libtest.is_ignored(t))
        .map(|t| t.name())
        .collect();
    let expected = planned
        .into_iter()
        .filter(|test| to_run.contains(test.name.as_str()))
        .collect();
    let options = Arc::clone(options);
    let owner_prefix = context.owner_prefix.clone();
    let prefix = owner_prefix.clone();
    let report = Box::new(move |records| {
        let took = started.elapsed();
        report_run(&options, records, Some(&prefix), took)
    });
    let run = interrupt::Run {
        state: Arc::clone(&context.state),
        expected,
        owner_prefix,
        report,
    };
    if let Err(err) = interrupt::watch(run) {
        eprintln!("realtest: cannot watch for SIGINT/SIGTERM ({err}); an interrupted run leaves its processes to the next run's sweep");
    }
}

/// The bench file (if any) and every required capability (`--require` plus the bench's).
fn bench_and_requirements(
    options: &Options,
    known_needs: &[&str],
) -> Result<(Option<Bench>, BTreeSet<String>), String> {
    let bench = options.bench.as_deref().map(Bench::load).transpose()?;
    let mut required: BTreeSet<String> = options.require.iter().cloned().collect();
    if let Some(bench) = &bench {
        for cap in &bench.require {
            let tag = cli::normalise_capability(cap, known_needs)
                .map_err(|message| format!("bench {}: {message}", bench.name))?;
            required.insert(tag);
        }
    }
    Ok((bench, required))
}

/// After the tests: sweeps for processes left behind (scanning for this run's owner markers
/// when `owner_prefix` is given), prints the skip summary, writes JUnit. False when the sweep
/// found survivors or the report could not be written.
fn report_run(
    options: &Options,
    mut records: Vec<TestRecord>,
    owner_prefix: Option<&str>,
    took: Duration,
) -> bool {
    records.sort_by(|a, b| a.name.cmp(&b.name));
    let stray = sweep(owner_prefix);
    // libtest's JSON format owns stdout: the harness's own lines go to stderr then.
    let machine_output = options.libtest.format == Some(libtest_mimic::FormatSetting::Json);
    let say = |text: &str| {
        if machine_output {
            eprintln!("{text}");
        } else {
            println!("{text}");
        }
    };
    if let Some(summary) = report::skip_summary(&records) {
        say(&summary);
    }
    if let Some(record) = &stray {
        say(&format!("error: {}", outcome_text(&record.outcome)));
        records.push(record.clone());
    }
    if let Some(report) = junit::session() {
        match report.write(&records, took) {
            Ok(written) => say(&report::junit_written(&written)),
            Err(message) => {
                eprintln!("error: {message}");
                return false;
            }
        }
    }
    stray.is_none()
}

/// `real_system-0123456789abcdef` → `real_system`.
fn binary_name(argv0: &str) -> String {
    let file = std::path::Path::new(argv0)
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| "tests".to_string());
    match file.rsplit_once('-') {
        Some((stem, hash)) if hash.len() == 16 && hash.chars().all(|c| c.is_ascii_hexdigit()) => {
            stem.to_string()
        }
        _ => file,
    }
}

fn print_check_deps(format: CheckDepsFormat, tests: &[Test]) {
    let probe = Probe::get();
    let statuses: Vec<(&str, needs::NeedStatus)> = needs::known()
        .into_iter()
        .map(|tag| (tag, needs::status(tag)))
        .collect();
    match format {
        CheckDepsFormat::Table => {
            print!("{}", probe.to_table());
            println!();
            for (tag, status) in &statuses {
                let (word, text) = match status {
                    needs::NeedStatus::Met(text) => ("met", text),
                    needs::NeedStatus::Unmet(text) => ("UNMET", text),
                    needs::NeedStatus::ProbeError(text) => ("PROBE ERROR", text),
                };
                let count = tests.iter().filter(|t| t.has_tag(tag)).count();
                println!("{tag:<20} {word:<11} {text} ({count} tests)");
            }
        }
        CheckDepsFormat::Json => {
            let needs: serde_json::Map<String, serde_json::Value> = statuses
                .iter()
                .map(|(tag, status)| {
                    let (state, detail) = match status {
                        needs::NeedStatus::Met(text) => ("met", text),
                        needs::NeedStatus::Unmet(text) => ("unmet", text),
                        needs::NeedStatus::ProbeError(text) => ("probe-error", text),
                    };
                    let tests = tests.iter().filter(|t| t.has_tag(tag)).count();
                    (
                        tag.to_string(),
                        serde_json::json!({ "status": state, "detail": detail, "tests": tests }),
                    )
                })
                .collect();
            let document = serde_json::json!({ "probe": probe, "needs": needs });
            println!(
                "{}",
                serde_json::to_string_pretty(&document).expect("probe serialises")
            );
        }
    }
}

fn is_selected(test: &Test, options: &Options) -> bool {
    (options.include_tags.is_empty() || options.include_tags.iter().any(|t| test.has_tag(t)))
        && !options.exclude_tags.iter().any(|t| test.has_tag(t))
        && options
            .tag_expr
            .as_ref()
            .is_none_or(|expr| expr.matches(&test.tags))
}

fn destructive_requested(test: &Test, options: &Options) -> bool {
    options.include_tags.iter().any(|t| t == DESTRUCTIVE)
        || options
            .tag_expr
            .as_ref()
            .is_some_and(|expr| expr.mentions(DESTRUCTIVE))
        || (options.libtest.exact && options.libtest.filter.as_deref() == Some(test.name.as_str()))
}

fn gate(test: &Test, options: &Options, required: &BTreeSet<String>) -> Gate {
    let skip = if test.has_tag(DESTRUCTIVE) && !destructive_requested(test, options) {
        Some((
            DESTRUCTIVE.to_string(),
            "destructive: runs only when asked for (--include-tag destructive, or --exact NAME)"
                .to_string(),
        ))
    } else {
        test.needs().find_map(|need| match needs::status(need) {
            needs::NeedStatus::Met(_) => None,
            needs::NeedStatus::Unmet(reason) => {
                Some((need.to_string(), format!("{need}: {reason}")))
            }
            needs::NeedStatus::ProbeError(reason) => {
                Some((need.to_string(), format!("{need}: probe error: {reason}")))
            }
        })
    };
    match skip {
        None => Gate::Run,
        Some((kind, reason)) if required.contains(&kind) => Gate::Fail {
            reason: format!("required capability missing: {reason}"),
        },
        Some((kind, reason)) => Gate::Skip { kind, reason },
    }
}

/// The records of the tests a listing shows as ignored for their gate (unmet needs, destructive):
/// nextest reports them as SKIP without running them, so they reach the JUnit report from here.
fn list_time_skips(options: &Options, tests: &[Test], context: &RunContext) -> Vec<TestRecord> {
    tests
        .iter()
        .filter(|test| is_selected(test, options))
        .filter_map(|test| match gate(test, options, &context.required) {
            skip @ Gate::Skip { .. } => Some(execute(test, skip, 0, context)),
            Gate::Run | Gate::Fail { .. } => None,
        })
        .collect()
}

fn build_trials(options: &Options, tests: Vec<Test>, context: &Arc<RunContext>) -> Vec<Trial> {
    let list_mode = options.libtest.list || options.libtest.ignored;
    tests
        .into_iter()
        .filter(|test| is_selected(test, options))
        .enumerate()
        .map(|(index, test)| {
            let gate = gate(&test, options, &context.required);
            let static_ignore = list_mode && matches!(gate, Gate::Skip { .. });
            let context = Arc::clone(context);
            let name = test.name.clone();
            Trial::ignorable_test(name, move || {
                let record = execute(&test, gate, index, &context);
                let result = to_libtest(&record);
                context.state.record(record);
                result
            })
            .with_ignored_flag(static_ignore)
        })
        .collect()
}

fn bench_trials(bench: &Bench, context: &Arc<RunContext>) -> Vec<Trial> {
    bench
        .cameras
        .iter()
        .map(|camera| {
            let camera = camera.clone();
            let context = Arc::clone(context);
            let name = bench_trial_name(&camera);
            Trial::ignorable_test(name.clone(), move || {
                let (started, clock) = (Instant::now(), SystemTime::now());
                let (outcome, devices) = match camera.find(Probe::get()) {
                    Ok(node) => (Outcome::Passed, vec![node.path.clone()]),
                    Err(message) => (
                        Outcome::Failed {
                            kind: FailureKind::BenchCamera,
                            message,
                        },
                        Vec::new(),
                    ),
                };
                let record = TestRecord {
                    name,
                    tags: vec!["bench".to_string()],
                    location: camera.location.clone(),
                    outcome,
                    started: clock,
                    duration: started.elapsed(),
                    log: CapturedLog::default(),
                    devices,
                };
                let result = to_libtest(&record);
                context.state.record(record);
                result
            })
        })
        .collect()
}

fn bench_trial_name(camera: &BenchCamera) -> String {
    format!("bench::camera::{}", camera.id)
}

fn to_libtest(record: &TestRecord) -> Result<Completion, Failed> {
    match &record.outcome {
        Outcome::Passed => Ok(Completion::Completed),
        Outcome::Skipped { reason, .. } => Ok(Completion::ignored_with(reason)),
        Outcome::Failed { .. } if record.log.is_empty() => {
            Err(outcome_text(&record.outcome).into())
        }
        Outcome::Failed { .. } => Err(format!(
            "{}\n---- captured log ----\n{}",
            outcome_text(&record.outcome),
            record.log.text().trim_end()
        )
        .into()),
    }
}

fn outcome_text(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Passed => "passed".to_string(),
        Outcome::Skipped { reason, .. } => format!("skipped ({reason})"),
        Outcome::Failed { kind, message } => format!("[{}] {message}", kind.as_str()),
    }
}

thread_local! {
    static IN_TEST: Cell<bool> = const { Cell::new(false) };
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Panics on a test's own thread are recorded (with their location) for the failure message
/// instead of being printed; panics elsewhere go to the previous hook.
fn install_panic_hook() {
    let previous = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        if IN_TEST.with(Cell::get) {
            let mut text = panic_payload_text(info.payload());
            if let Some(location) = info.location() {
                text.push_str(&format!(" (at {location})"));
            }
            LAST_PANIC.with(|last| *last.borrow_mut() = Some(text));
        } else {
            previous(info);
        }
    }));
}

fn execute(test: &Test, gate: Gate, index: usize, context: &RunContext) -> TestRecord {
    let mut record = TestRecord {
        name: test.name.clone(),
        tags: test.tags.clone(),
        location: Some(test.location.clone()),
        outcome: Outcome::Passed,
        started: SystemTime::now(),
        duration: Duration::ZERO,
        log: CapturedLog::default(),
        devices: Vec::new(),
    };
    match gate {
        Gate::Skip { kind, reason } => {
            record.outcome = Outcome::Skipped { kind, reason };
            return record;
        }
        Gate::Fail { reason } => {
            record.outcome = Outcome::Failed {
                kind: FailureKind::RequiredCapability,
                message: reason,
            };
            return record;
        }
        Gate::Run => {}
    }

    let shared = Shared::new(format!("{}{index}", context.owner_prefix), context.echo);
    let planned = Planned {
        name: test.name.clone(),
        tags: test.tags.clone(),
        location: record.location.clone(),
    };
    if !context.state.begin(planned, &shared) {
        record.outcome = run_state::not_started();
        return record;
    }
    let started = Instant::now();
    let outcome = run_body(test, &shared, &context.required);
    record.duration = started.elapsed();
    if shared.spawned.load(Ordering::Relaxed) > 0 {
        context.spawned_any.store(true, Ordering::Relaxed);
    }
    record.outcome = check_leaks(outcome, &shared);
    record.log = shared.log.contents();
    record.devices = shared.devices.lock().unwrap().clone();
    record
}

/// Runs the body on a worker thread so the timeout can be enforced.
fn run_body(test: &Test, shared: &Arc<Shared>, required: &BTreeSet<String>) -> Outcome {
    let (sender, receiver) = mpsc::channel();
    let body = test.run;
    let name = test.name.clone();
    let timeout = test.timeout;
    let thread_shared = Arc::clone(shared);
    let job = Box::new(move || {
        LAST_PANIC.with(|last| last.borrow_mut().take());
        let mut ctx = Ctx::new(name, timeout, thread_shared);
        let result = panic::catch_unwind(AssertUnwindSafe(|| body(&mut ctx)));
        drop(ctx);
        let result = result.map_err(|payload| {
            LAST_PANIC
                .with(|last| last.borrow_mut().take())
                .unwrap_or_else(|| panic_payload_text(payload.as_ref()))
        });
        let _ = sender.send(result);
    });
    if let Err(err) = workers::execute(job, || IN_TEST.with(|flag| flag.set(true))) {
        return Outcome::Failed {
            kind: FailureKind::Assertion,
            message: format!("failed to start a test thread: {err}"),
        };
    }
    match receiver.recv_timeout(timeout) {
        Ok(Ok(Ok(()))) => Outcome::Passed,
        Ok(Ok(Err(TestError::Skip(skip)))) if required.contains(&skip.need) => Outcome::Failed {
            kind: FailureKind::RequiredCapability,
            message: format!("required capability missing: {skip}"),
        },
        Ok(Ok(Err(TestError::Skip(skip)))) => Outcome::Skipped {
            kind: skip.need.clone(),
            reason: skip.to_string(),
        },
        Ok(Ok(Err(TestError::Fail(message)))) => Outcome::Failed {
            kind: FailureKind::Assertion,
            message,
        },
        Ok(Err(message)) => Outcome::Failed {
            kind: FailureKind::Panic,
            message,
        },
        Err(_) => {
            process::stop_groups(&shared.groups.live(), TIMEOUT_GRACE);
            Outcome::Failed {
                kind: FailureKind::Timeout,
                message: format!(
                    "timeout after {}; its processes were stopped",
                    humantime::format_duration(timeout)
                ),
            }
        }
    }
}

fn panic_payload_text(payload: &(dyn std::any::Any + Send)) -> String {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string payload".to_string());
    format!("panicked: {message}")
}

/// A process the test started that is still alive turns the outcome into a `leak` failure (or
/// is added to an existing failure); the survivors are killed.
fn check_leaks(outcome: Outcome, shared: &Shared) -> Outcome {
    if shared.spawned.load(Ordering::Relaxed) == 0 {
        return outcome;
    }
    let survivors = leak::survivors(&shared.owner);
    if survivors.is_empty() {
        return outcome;
    }
    leak::kill_all(&survivors);
    let list: Vec<String> = survivors.iter().map(|s| format!("leaked {s}")).collect();
    let text = format!("{} (killed)", list.join("; "));
    match outcome {
        Outcome::Failed { kind, message } => Outcome::Failed {
            kind,
            message: format!("{message}\nalso {text}"),
        },
        Outcome::Passed | Outcome::Skipped { .. } => Outcome::Failed {
            kind: FailureKind::Leak,
            message: text,
        },
    }
}

/// After the run: processes of any test of this run (found by `owner_prefix`, when tests started
/// any), or direct children nobody reaped, that are still alive. They are killed and reported as
/// one `leak` record.
fn sweep(owner_prefix: Option<&str>) -> Option<TestRecord> {
    let mut survivors = owner_prefix.map(leak::survivors_of_run).unwrap_or_default();
    for child in leak::unowned_children() {
        if !survivors.contains(&child) {
            survivors.push(child);
        }
    }
    if survivors.is_empty() {
        return None;
    }
    leak::kill_all(&survivors);
    let list: Vec<String> = survivors.iter().map(|s| s.to_string()).collect();
    Some(TestRecord {
        name: "realtest::leak-sweep".to_string(),
        tags: Vec::new(),
        location: None,
        started: SystemTime::now(),
        outcome: Outcome::Failed {
            kind: FailureKind::Leak,
            message: format!(
                "processes still alive after the run (killed): {}",
                list.join("; ")
            ),
        },
        duration: Duration::ZERO,
        log: CapturedLog::default(),
        devices: Vec::new(),
    })
}
