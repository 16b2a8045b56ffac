//! `cargo bench -p realtest`: prints a table of
//! - 1000 registered tests run through realtest vs the same through bare libtest-mimic (whole
//!   process, wall clock, median of several runs): trivial tests (empty bodies), where realtest's
//!   constant per-test cost shows (goal: ratio <= 1.2), and tests of 1 ms each;
//! - the machine probe's time in a fresh process, cold (no cached tool versions) and warm
//!   (goal: < 50 ms).
//!
//! The binary is its own subject: the parent re-runs itself with `OVERHEAD_MODE=…`.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use realtest::{Ctx, Probe, TestDef, TestResult};

const TESTS: usize = 1000;
const RUNS: usize = 7;
const MODE_ENV: &str = "OVERHEAD_MODE";
const SLEEP: Duration = Duration::from_millis(1);

fn trivial(_: &mut Ctx) -> TestResult {
    Ok(())
}

fn one_millisecond(_: &mut Ctx) -> TestResult {
    std::thread::sleep(SLEEP);
    Ok(())
}

/// Registers 1000 tests `<prefix>000` to `<prefix>999` with body `$run` and tag `$tag`.
macro_rules! registered_tests {
    ($prefix:literal $tag:literal $run:ident; $($a:literal)*) => {
        $( registered_tests!(@tens $prefix $tag $run $a; 0 1 2 3 4 5 6 7 8 9); )*
    };
    (@tens $prefix:literal $tag:literal $run:ident $a:literal; $($b:literal)*) => {
        $( registered_tests!(@ones $prefix $tag $run $a $b; 0 1 2 3 4 5 6 7 8 9); )*
    };
    (@ones $prefix:literal $tag:literal $run:ident $a:literal $b:literal; $($c:literal)*) => {
        $(
            realtest::inventory::submit! {
                TestDef {
                    module: "overhead",
                    name: concat!($prefix, $a, $b, $c),
                    tags: &[$tag],
                    timeout_ms: None,
                    file: file!(),
                    line: line!(),
                    run: $run,
                }
            }
        )*
    };
}
registered_tests!("t" "trivial" trivial; 0 1 2 3 4 5 6 7 8 9);
registered_tests!("s" "sleepy" one_millisecond; 0 1 2 3 4 5 6 7 8 9);

fn bare_libtest_mimic(body: fn() -> Result<(), libtest_mimic::Failed>) -> std::process::ExitCode {
    let args = libtest_mimic::Arguments::from_iter(["overhead"]);
    let trials = (0..TESTS)
        .map(|i| libtest_mimic::Trial::test(format!("t{i:03}"), body))
        .collect();
    libtest_mimic::run(&args, trials).exit_code()
}

fn run_as_subject(mode: &str) -> std::process::ExitCode {
    match mode {
        "realtest-trivial" | "realtest-sleepy" => realtest::run(),
        "mimic-trivial" => bare_libtest_mimic(|| Ok(())),
        "mimic-sleepy" => bare_libtest_mimic(|| {
            std::thread::sleep(SLEEP);
            Ok(())
        }),
        "probe" => {
            println!("{}", Probe::collect().took.as_nanos());
            std::process::ExitCode::SUCCESS
        }
        other => panic!("unknown {MODE_ENV} {other:?}"),
    }
}

fn subject(mode: &str) -> Command {
    let mut command = Command::new(std::env::current_exe().expect("own path"));
    command.env(MODE_ENV, mode);
    if let Some(tag) = mode.strip_prefix("realtest-") {
        command.env("REALTEST_INCLUDE_TAGS", tag);
    }
    command
}

/// Median wall time of whole runs of `mode`.
fn time_runs(mode: &str) -> Duration {
    let mut times: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let started = Instant::now();
            let status = subject(mode)
                .stdout(Stdio::null())
                .status()
                .expect("run the subject");
            assert!(status.success(), "{mode} run failed: {status}");
            started.elapsed()
        })
        .collect();
    times.sort();
    times[RUNS / 2]
}

/// The probe's own measurement in a fresh process whose temp dir is `tmp`.
fn probe_time(tmp: &std::path::Path) -> Duration {
    let output = subject("probe")
        .env("TMPDIR", tmp)
        .output()
        .expect("run the probe");
    let nanos: u64 = String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .expect("probe time");
    Duration::from_nanos(nanos)
}

fn millis(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn main() -> std::process::ExitCode {
    if let Ok(mode) = std::env::var(MODE_ENV) {
        return run_as_subject(&mode);
    }
    println!("realtest overhead: {TESTS} tests per run, median of {RUNS} whole-process runs");
    println!("| tests | bare libtest-mimic | realtest | ratio | goal |");
    println!("|---|---|---|---|---|");
    for (label, kind, goal) in [
        ("trivial (empty)", "trivial", "<= 1.2"),
        ("1 ms each", "sleepy", ""),
    ] {
        let mimic = time_runs(&format!("mimic-{kind}"));
        let realtest = time_runs(&format!("realtest-{kind}"));
        println!(
            "| {label} | {} | {} | {:.2} | {goal} |",
            millis(mimic),
            millis(realtest),
            realtest.as_secs_f64() / mimic.as_secs_f64()
        );
    }
    let tmp = tempfile::tempdir().expect("temp dir");
    let cold = probe_time(tmp.path());
    let warm = (0..RUNS)
        .map(|_| probe_time(tmp.path()))
        .min()
        .unwrap_or_default();
    println!();
    println!("| probe (no V4L2 devices) | time | goal |");
    println!("|---|---|---|");
    println!(
        "| cold: tool versions asked (ffmpeg, ffprobe, mediamtx in parallel) | {} | |",
        millis(cold)
    );
    println!(
        "| warm: tool versions cached by binary identity | {} | < 50 ms |",
        millis(warm)
    );
    std::process::ExitCode::SUCCESS
}
