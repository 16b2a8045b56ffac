//! The machine probe: tools and their versions, V4L2 nodes and their capabilities, kernel, root.
//! Made once per process (lazily) and shared by every test.

mod display;
mod tools;
mod v4l2;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde::Serialize;

pub use tools::{ToolInfo, ToolStatus};
pub use v4l2::{FormatInfo, SizeInfo, V4l2Node, V4l2Probe};

/// Environment variable naming the MediaMTX binary when it is not on PATH.
pub const MEDIAMTX_BIN_ENV: &str = "MEDIAMTX_BIN";

/// What the harness found on this machine.
#[derive(Debug, Clone, Serialize)]
pub struct Probe {
    /// Kernel release (`uname -r`).
    pub kernel: String,
    /// Whether the process runs as root (effective uid 0).
    pub root: bool,
    /// `ffmpeg`, with version and whether it has libx264.
    pub ffmpeg: ToolStatus,
    /// `ffprobe`.
    pub ffprobe: ToolStatus,
    /// `mediamtx` from `MEDIAMTX_BIN` or PATH.
    pub mediamtx: ToolStatus,
    /// V4L2 device nodes.
    pub v4l2: V4l2Probe,
    /// How long the probe took.
    #[serde(serialize_with = "serialize_millis")]
    pub took: Duration,
}

fn serialize_millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1000.0)
}

impl Probe {
    /// The probe of this process, made on first use.
    pub fn get() -> &'static Probe {
        static PROBE: OnceLock<Probe> = OnceLock::new();
        PROBE.get_or_init(Probe::collect)
    }

    /// Probes the machine now. Tools are queried in parallel (and their answers cached across
    /// processes, keyed by the binary's identity); V4L2 nodes are always read afresh.
    pub fn collect() -> Probe {
        let start = Instant::now();
        let (ffmpeg, ffprobe, mediamtx, v4l2) = std::thread::scope(|scope| {
            let ffmpeg = scope.spawn(tools::ffmpeg);
            let ffprobe = scope.spawn(tools::ffprobe);
            let mediamtx = scope.spawn(tools::mediamtx);
            let v4l2 = v4l2::scan();
            (
                ffmpeg.join().unwrap_or_else(tools::panicked),
                ffprobe.join().unwrap_or_else(tools::panicked),
                mediamtx.join().unwrap_or_else(tools::panicked),
                v4l2,
            )
        });
        Probe {
            kernel: nix::sys::utsname::uname()
                .map(|u| u.release().to_string_lossy().into_owned())
                .unwrap_or_else(|err| format!("unknown ({err})")),
            root: nix::unistd::geteuid().is_root(),
            ffmpeg,
            ffprobe,
            mediamtx,
            v4l2,
            took: start.elapsed(),
        }
    }

    /// The probe as a human-readable table (`--check-deps`).
    pub fn to_table(&self) -> String {
        display::table(self)
    }

    /// Short `key → value` facts for JUnit suite properties.
    pub fn properties(&self) -> Vec<(String, String)> {
        display::properties(self)
    }
}
