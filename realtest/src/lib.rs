//! realtest: a harness for tests against the real system.
//!
//! Tests register themselves with [`test`] (an attribute) and carry tags. Requirement tags
//! (`needs-ffmpeg`, `needs-v4l2`, …) are checked against a probe of the machine made once per
//! process; a test whose needs are not met is *skipped with the reason*, never passed. Selection
//! tags (`hardware`, `destructive`, `slow`) only choose what runs. Each test gets a [`Ctx`] that
//! owns the processes it starts (own process group, output captured, killed on drop), temporary
//! directories and device leases. Results go to the console (libtest format, through
//! `libtest-mimic`) and to JUnit XML.
//!
//! # Usage
//!
//! ```toml
//! [[test]]
//! name = "real_system"
//! harness = false
//! ```
//!
//! ```ignore
//! realtest::main!();
//!
//! #[realtest::test(tags = ["needs-ffmpeg"], timeout = "30s")]
//! fn renders_a_pattern(ctx: &mut realtest::Ctx) -> anyhow::Result<()> {
//!     let dir = ctx.temp_dir()?;
//!     // … run ffmpeg through ctx.output(…), assert on what ffprobe says …
//!     Ok(())
//! }
//! ```
//!
//! Command line (after `--`): `--include-tag T`, `--exclude-tag T`, `--tags EXPR`, `--junit PATH`,
//! `--check-deps [--format json]`, `--require CAP`, `--bench FILE`; everything else is libtest's.
//! See the repository README for the full table and the environment variables.

#![deny(unsafe_code)]
#![warn(missing_docs)]

mod bench;
mod cli;
mod ctx;
mod interrupt;
mod junit;
mod leak;
mod lease;
mod needs;
mod outcome;
mod owner;
mod probe;
mod process;
mod registry;
mod report;
mod run_state;
mod runner;
mod tags;
mod workers;
mod workspace;

pub use ctx::{Ctx, TempDir};
pub use junit::{
    merge_files as merge_junit_reports, Format as JunitFormat, Written as JunitWritten,
    MAX_ATTACHMENT_BYTES,
};
pub use lease::{CameraLease, CameraRequirements, ResourceLease};
pub use needs::{NeedDef, NeedStatus};
pub use outcome::{IntoTestResult, Skip, TestError, TestResult};
pub use probe::{FormatInfo, Probe, SizeInfo, ToolInfo, ToolStatus, V4l2Node, V4l2Probe};
pub use process::OwnedChild;
pub use realtest_macros::test;
pub use registry::TestDef;
pub use runner::run;

#[doc(hidden)]
pub use inventory;

/// Defines `fn main` for a test binary: runs every registered test and returns the exit code.
#[macro_export]
macro_rules! main {
    () => {
        fn main() -> ::std::process::ExitCode {
            $crate::run()
        }
    };
}

/// Runs an `async` test body on its own tokio runtime (used by `#[realtest::test]` on `async fn`).
#[doc(hidden)]
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("failed to build the test's tokio runtime");
    let output = runtime.block_on(future);
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    output
}
