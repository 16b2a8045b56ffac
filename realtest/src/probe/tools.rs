//! External tools: where they are, their versions, and what they can do.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::MEDIAMTX_BIN_ENV;
use crate::process;

/// Longest a `--version` query may take (a first start from a slow shared file system, as in an
/// emulated guest, can take over 10 s).
const VERSION_TIMEOUT: Duration = Duration::from_secs(30);

/// A tool that was found and answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolInfo {
    /// Absolute path of the binary.
    pub path: PathBuf,
    /// Version as the tool prints it, e.g. `5.1.9-0+deb12u1` or `v1.13.1`.
    pub version: String,
    /// For ffmpeg: whether it was built with libx264.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub libx264: Option<bool>,
}

/// The probe's answer for one tool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum ToolStatus {
    /// Found and answered its version query.
    Found(ToolInfo),
    /// Not there; the reason says where the harness looked.
    Missing {
        /// Where it looked, and how to point it elsewhere.
        reason: String,
    },
    /// There, but the query failed: distinct from absent.
    Error {
        /// What went wrong.
        reason: String,
    },
}

impl ToolStatus {
    /// The tool's details when it was found.
    pub fn found(&self) -> Option<&ToolInfo> {
        match self {
            ToolStatus::Found(info) => Some(info),
            ToolStatus::Missing { .. } | ToolStatus::Error { .. } => None,
        }
    }
}

/// The status used when a probe thread panicked.
pub fn panicked(_: Box<dyn std::any::Any + Send>) -> ToolStatus {
    ToolStatus::Error {
        reason: "the probe panicked".to_string(),
    }
}

/// `ffmpeg` from PATH, with libx264 detection.
pub fn ffmpeg() -> ToolStatus {
    probe_tool(
        find_on_path("ffmpeg"),
        &["-hide_banner", "-version"],
        |out| {
            let version = out.split_whitespace().nth(2)?.to_string();
            Some((version, Some(out.contains("--enable-libx264"))))
        },
    )
}

/// `ffprobe` from PATH.
pub fn ffprobe() -> ToolStatus {
    probe_tool(
        find_on_path("ffprobe"),
        &["-hide_banner", "-version"],
        |out| Some((out.split_whitespace().nth(2)?.to_string(), None)),
    )
}

/// `mediamtx` from `MEDIAMTX_BIN`, else PATH.
pub fn mediamtx() -> ToolStatus {
    let location = match std::env::var_os(MEDIAMTX_BIN_ENV) {
        Some(path) => {
            // Absolute, as `ToolInfo::path` promises: tests start MediaMTX (and the service
            // under test, which starts it) in directories of their own.
            let path = std::path::absolute(&path).unwrap_or_else(|_| PathBuf::from(path));
            if is_executable(&path) {
                Ok(path)
            } else {
                return ToolStatus::Error {
                    reason: format!(
                        "{MEDIAMTX_BIN_ENV}={} is not an executable file",
                        path.display()
                    ),
                };
            }
        }
        None => find_on_path("mediamtx")
            .map_err(|_| format!("no 'mediamtx' on PATH and {MEDIAMTX_BIN_ENV} unset")),
    };
    probe_tool(location, &["--version"], |out| {
        let version = out.lines().map(str::trim).find(|l| l.starts_with('v'))?;
        Some((version.to_string(), None))
    })
}

fn probe_tool(
    location: Result<PathBuf, String>,
    args: &[&str],
    parse: impl Fn(&str) -> Option<(String, Option<bool>)>,
) -> ToolStatus {
    let path = match location {
        Ok(path) => path,
        Err(reason) => return ToolStatus::Missing { reason },
    };
    let key = cache::key(&path);
    if let Some(info) = key.as_deref().and_then(cache::lookup) {
        return ToolStatus::Found(info);
    }
    let output =
        match process::run_with_timeout(Command::new(&path).args(args), VERSION_TIMEOUT, None) {
            Ok(output) => output,
            Err(err) => {
                return ToolStatus::Error {
                    reason: err.to_string(),
                }
            }
        };
    let text = String::from_utf8_lossy(&output.stdout);
    match (output.status.success(), parse(&text)) {
        (true, Some((version, libx264))) => {
            let info = ToolInfo {
                path,
                version,
                libx264,
            };
            if let Some(key) = key {
                cache::store(&key, &info);
            }
            ToolStatus::Found(info)
        }
        _ => ToolStatus::Error {
            reason: format!(
                "`{} {}` {}; output: {}",
                path.display(),
                args.join(" "),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ),
        },
    }
}

fn is_executable(path: &Path) -> bool {
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

fn find_on_path(program: &str) -> Result<PathBuf, String> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
        .ok_or_else(|| format!("no '{program}' on PATH"))
}

/// Version answers cached across processes (nextest runs one process per test), keyed by the
/// binary's path, inode, size and modification time, so a changed binary is asked again.
mod cache {
    use super::*;

    fn file() -> PathBuf {
        std::env::temp_dir().join(format!("realtest-tools-{}.json", nix::unistd::geteuid()))
    }

    pub fn key(path: &Path) -> Option<String> {
        let meta = path.metadata().ok()?;
        Some(format!(
            "{}|{}|{}|{}.{}",
            path.display(),
            meta.ino(),
            meta.size(),
            meta.mtime(),
            meta.mtime_nsec()
        ))
    }

    fn load() -> BTreeMap<String, ToolInfo> {
        std::fs::read(file())
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    pub fn lookup(key: &str) -> Option<ToolInfo> {
        load().remove(key)
    }

    pub fn store(key: &str, info: &ToolInfo) {
        let mut entries = load();
        entries.insert(key.to_string(), info.clone());
        let Ok(bytes) = serde_json::to_vec(&entries) else {
            return;
        };
        let target = file();
        let Ok(mut temp) = tempfile::NamedTempFile::new_in(std::env::temp_dir()) else {
            return;
        };
        if std::io::Write::write_all(&mut temp, &bytes).is_ok() {
            let _ = temp.persist(target);
        }
    }
}
