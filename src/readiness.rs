//! Readiness that means it: both storage directories take a real write (a scratch file created,
//! written and removed), and FFmpeg and FFprobe run (`-version`). Checked at start and for
//! `GET /ready` and `get_status`, at most once per [`CACHE_FOR`] however often those are asked
//! (`/ready` needs no authentication and must not start processes at a client's will).

use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::ffmpeg::FfmpegSettings;
use crate::process::{self, CommandSpec};
use crate::storage::{FileKind, Storage, StorageError};

/// How long one result is reused.
pub const CACHE_FOR: Duration = Duration::from_secs(5);
/// Wall-clock limit of `ffmpeg -version` / `ffprobe -version`.
const VERSION_LIMIT: Duration = Duration::from_secs(10);

/// What the last check found: `Ok` with what works, or `Err` with why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Both storage directories writable.
    pub storage: Result<(), String>,
    /// FFmpeg's version line.
    pub ffmpeg: Result<String, String>,
    /// FFprobe's version line.
    pub ffprobe: Result<String, String>,
}

impl Report {
    /// Whether every component works.
    pub fn is_ready(&self) -> bool {
        self.problems().is_empty()
    }

    /// One line per failing component, naming it.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Err(e) = &self.storage {
            problems.push(format!("storage: {e}"));
        }
        if let Err(e) = &self.ffmpeg {
            problems.push(format!("ffmpeg: {e}"));
        }
        if let Err(e) = &self.ffprobe {
            problems.push(format!("ffprobe: {e}"));
        }
        problems
    }
}

/// The checks and their last result.
#[derive(Debug)]
pub struct Readiness {
    storage: Storage,
    ffmpeg: FfmpegSettings,
    last: Mutex<Option<(Instant, Report)>>,
}

impl Readiness {
    /// Checks of `storage` and the binaries in `ffmpeg`.
    pub fn new(storage: Storage, ffmpeg: FfmpegSettings) -> Self {
        Self {
            storage,
            ffmpeg,
            last: Mutex::new(None),
        }
    }

    /// The current report: the last one if it is younger than [`CACHE_FOR`], else a new check
    /// (one at a time).
    pub async fn check(&self) -> Report {
        let mut last = self.last.lock().await;
        if let Some((at, report)) = last.as_ref() {
            if at.elapsed() < CACHE_FOR {
                return report.clone();
            }
        }
        let report = Report {
            storage: probe_storage(&self.storage),
            ffmpeg: version(&self.ffmpeg.binary).await,
            ffprobe: version(&self.ffmpeg.ffprobe_binary).await,
        };
        *last = Some((Instant::now(), report.clone()));
        report
    }
}

/// A scratch file created, written and removed in each storage directory.
fn probe_storage(storage: &Storage) -> Result<(), String> {
    for kind in [FileKind::Recording, FileKind::Snapshot] {
        let fail = |e: &dyn std::fmt::Display| {
            tracing::warn!(dir = %storage.dir(kind).display(), "storage probe failed: {e}");
            format!("{} directory is not writable: {e}", kind.dir_name())
        };
        let file = storage
            .create_scratch(kind, "ready-probe")
            .map_err(|e| match e {
                StorageError::Create { source, .. } => fail(&source),
                other => fail(&other),
            })?;
        let written = file.write_all(b"ready\n");
        file.discard();
        written.map_err(|e| fail(&e))?;
    }
    Ok(())
}

/// The first line `binary -version` prints.
async fn version(binary: &str) -> Result<String, String> {
    let spec = CommandSpec::new(binary, vec!["-version".to_owned()]);
    match process::run_capturing(&spec, VERSION_LIMIT).await {
        Ok(out) => Ok(out.lines().next().unwrap_or_default().trim().to_owned()),
        Err(e) => {
            tracing::warn!("{binary} is unusable: {e}");
            Err(e.summary())
        }
    }
}
