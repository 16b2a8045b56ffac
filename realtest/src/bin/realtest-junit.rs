//! `realtest-junit merge --output all.xml bench-a.xml bench-b.xml`: one JUnit report from the
//! reports of several benches (a nextest archive run on each bench with its `--bench` file, each
//! writing its own report). Each bench's suites are named `<binary>@<bench>`, so the merged
//! report says where every case ran.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(about = "Work with realtest's JUnit reports")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Writes the suites of every REPORT into one file (a suite name may appear only once).
    Merge {
        /// The merged report (replaced; never a file that is not a JUnit report).
        #[arg(short, long)]
        output: PathBuf,
        /// `strict`: only what the Jenkins xUnit plugin's junit-10.xsd accepts.
        #[arg(long, value_enum, default_value_t = FormatArg::Rich)]
        format: FormatArg,
        /// The reports to merge.
        #[arg(required = true)]
        reports: Vec<PathBuf>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum FormatArg {
    Rich,
    Strict,
}

fn main() -> ExitCode {
    let Command::Merge {
        output,
        format,
        reports,
    } = Cli::parse().command;
    let format = match format {
        FormatArg::Rich => realtest::JunitFormat::Rich,
        FormatArg::Strict => realtest::JunitFormat::Strict,
    };
    match realtest::merge_junit_reports(&reports, &output, format) {
        Ok(written) => {
            println!(
                "{}: {} suites, {} cases ({} failed, {} skipped) from {} reports",
                written.path.display(),
                written.suites,
                written.tests,
                written.failed,
                written.skipped,
                reports.len()
            );
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}
