//! A managed MediaMTX: its version is checked against the supported range, the config for it
//! written once, the process started, its API awaited, every camera path registered; when it
//! exits it is restarted with backoff and every path is registered again (API changes live only
//! in MediaMTX's memory). The binary is asked its version again before every restart: one
//! replaced by another supported release gets a config of its own, one outside the range is not
//! started (it would refuse its config: no crash loop), and is asked again after the next delay.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::Signal;
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::client::{MediamtxClient, MediamtxError};
use super::version::{check_version_output, UnsupportedVersion, Version};
use crate::process::{self, CommandSpec, ManagedChild, ProcessError};

/// Interval between API readiness checks.
const READY_POLL: Duration = Duration::from_millis(100);
/// First restart delay; it doubles up to [`SupervisorSettings::max_backoff`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The signal MediaMTX shuts down on gracefully in every supported release (`os.Interrupt` in
/// internal/core/core.go; SIGTERM only since v1.14.0, before that it kills MediaMTX at once). A
/// graceful shutdown stops the `runOnInit` publishers, which since v1.6.0 run in process groups
/// of their own, out of reach of a signal to MediaMTX's group.
pub const STOP_SIGNAL: Signal = Signal::SIGINT;

/// Camera paths to keep registered: name → path configuration.
pub type PathSet = Arc<Mutex<BTreeMap<String, Value>>>;

/// Finds the MediaMTX binary: `configured` when not empty, else `$MEDIAMTX_BIN`, else
/// `mediamtx` on `PATH`.
pub fn find_binary(configured: &Path) -> Option<PathBuf> {
    if !configured.as_os_str().is_empty() {
        return Some(configured.to_owned());
    }
    if let Some(bin) = std::env::var_os("MEDIAMTX_BIN").filter(|b| !b.is_empty()) {
        return Some(PathBuf::from(bin));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("mediamtx"))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Why a managed MediaMTX could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    /// `mediamtx --version` failed.
    #[error("failed to read the MediaMTX version: {0}")]
    Version(#[source] ProcessError),
    /// The binary is a MediaMTX release outside the supported range.
    #[error("{binary}: {source}", binary = binary.display())]
    Unsupported {
        /// The binary.
        binary: PathBuf,
        /// Its version and the range.
        #[source]
        source: UnsupportedVersion,
    },
    /// The config file could not be written.
    #[error("failed to write MediaMTX config {}: {source}", path.display())]
    WriteConfig {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The process could not be spawned.
    #[error("failed to start MediaMTX: {0}")]
    Spawn(#[source] ProcessError),
    /// MediaMTX exited during start-up.
    #[error("MediaMTX `{argv}` exited during start-up ({status})\n--- output (tail):\n{tail}")]
    Exited {
        /// The command.
        argv: String,
        /// How it ended.
        status: String,
        /// Last output lines.
        tail: String,
    },
    /// The API did not answer in time.
    #[error("MediaMTX API at {url} not ready within {}: {last_error}\n--- output (tail):\n{tail}",
        humantime::format_duration(*timeout))]
    NotReady {
        /// API base URL.
        url: String,
        /// The deadline.
        timeout: Duration,
        /// The last check's error.
        last_error: String,
        /// Last output lines.
        tail: String,
    },
    /// Registering a path failed.
    #[error("failed to register MediaMTX path: {0}")]
    Register(#[from] MediamtxError),
}

/// How to run MediaMTX.
#[derive(Debug, Clone)]
pub struct SupervisorSettings {
    /// The binary.
    pub binary: PathBuf,
    /// Where the config is written (once).
    pub config_path: PathBuf,
    /// API client of the instance.
    pub client: MediamtxClient,
    /// Deadline for the API to answer after each start.
    pub startup_timeout: Duration,
    /// Grace period when stopping it.
    pub stop_grace: Duration,
    /// Longest delay between restarts.
    pub max_backoff: Duration,
}

/// A running, supervised MediaMTX.
#[derive(Debug)]
pub struct Supervisor {
    shutdown: CancellationToken,
    task: JoinHandle<()>,
    running: watch::Receiver<bool>,
}

/// Renders the config file for a MediaMTX version.
pub type RenderConfig = Box<dyn Fn(Version) -> String + Send + Sync>;

impl Supervisor {
    /// Reads the version (refusing one outside the supported range), writes the config
    /// produced by `render` for it, starts MediaMTX, waits for the API and registers `paths`.
    /// Then supervises it in the background.
    pub async fn start(
        settings: SupervisorSettings,
        render: RenderConfig,
        paths: PathSet,
    ) -> Result<Self, SupervisorError> {
        let version = read_version(&settings).await?;
        write_config(&settings, &render, version)?;
        tracing::info!(%version, config = %settings.config_path.display(), "starting MediaMTX");
        let child = start_once(&settings, &paths).await?;
        let shutdown = CancellationToken::new();
        let (running_tx, running) = watch::channel(true);
        let task = tokio::spawn(supervise(
            Managed {
                settings,
                render,
                version,
                paths,
            },
            child,
            running_tx,
            shutdown.clone(),
        ));
        Ok(Self {
            shutdown,
            task,
            running,
        })
    }

    /// `true` while MediaMTX runs with every path registered; `false` from the moment it exited
    /// until a restart has registered the paths again.
    pub fn running(&self) -> watch::Receiver<bool> {
        self.running.clone()
    }

    /// Stops MediaMTX and the supervision.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        let _ = self.task.await;
    }
}

/// `mediamtx --version`, parsed and checked against the supported range.
async fn read_version(settings: &SupervisorSettings) -> Result<Version, SupervisorError> {
    let spec = CommandSpec::new(
        settings.binary.display().to_string(),
        vec!["--version".into()],
    );
    let output = process::run_capturing(&spec, settings.startup_timeout)
        .await
        .map_err(SupervisorError::Version)?;
    check_version_output(&output).map_err(|source| SupervisorError::Unsupported {
        binary: settings.binary.clone(),
        source,
    })
}

fn write_config(
    settings: &SupervisorSettings,
    render: &RenderConfig,
    version: Version,
) -> Result<(), SupervisorError> {
    std::fs::write(&settings.config_path, render(version)).map_err(|source| {
        SupervisorError::WriteConfig {
            path: settings.config_path.clone(),
            source,
        }
    })
}

/// Spawns MediaMTX, waits for its API and registers every path.
async fn start_once(
    settings: &SupervisorSettings,
    paths: &PathSet,
) -> Result<ManagedChild, SupervisorError> {
    let spec = CommandSpec::new(
        settings.binary.display().to_string(),
        vec![settings.config_path.display().to_string()],
    );
    let mut child = process::spawn(&spec).map_err(SupervisorError::Spawn)?;
    let deadline = tokio::time::Instant::now() + settings.startup_timeout;
    loop {
        let last_error = match settings.client.check().await {
            Ok(()) => break,
            Err(e) => e.to_string(),
        };
        tokio::select! {
            status = child.wait() => {
                return Err(SupervisorError::Exited {
                    argv: child.argv().to_string(),
                    status: status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string()),
                    tail: child.stderr_tail(),
                });
            }
            () = tokio::time::sleep(READY_POLL) => {}
        }
        if tokio::time::Instant::now() >= deadline {
            let tail = child.stderr_tail();
            let _ = child.stop_with(STOP_SIGNAL, settings.stop_grace).await;
            return Err(SupervisorError::NotReady {
                url: settings.client.base_url().to_owned(),
                timeout: settings.startup_timeout,
                last_error,
                tail,
            });
        }
    }
    let snapshot: Vec<(String, Value)> = paths
        .lock()
        .expect("path set lock")
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (name, config) in snapshot {
        settings.client.register_path(&name, &config).await?;
    }
    tracing::info!(pid = child.pid(), "MediaMTX ready");
    Ok(child)
}

/// What the supervision task owns.
struct Managed {
    settings: SupervisorSettings,
    render: RenderConfig,
    /// The version the config file was written for.
    version: Version,
    paths: PathSet,
}

impl Managed {
    /// Starts MediaMTX again; first rewrites the config if the binary now has another (supported)
    /// version.
    async fn restart(&mut self) -> Result<ManagedChild, SupervisorError> {
        let version = read_version(&self.settings).await?;
        if version != self.version {
            tracing::warn!(old = %self.version, new = %version, "the MediaMTX binary changed; writing its config anew");
            write_config(&self.settings, &self.render, version)?;
            self.version = version;
        }
        start_once(&self.settings, &self.paths).await
    }
}

async fn supervise(
    mut managed: Managed,
    mut child: ManagedChild,
    running: watch::Sender<bool>,
    shutdown: CancellationToken,
) {
    let mut backoff = FIRST_BACKOFF;
    loop {
        tokio::select! {
            biased;
            () = shutdown.cancelled() => {
                let _ = child.stop_with(STOP_SIGNAL, managed.settings.stop_grace).await;
                return;
            }
            status = child.wait() => {
                let status = status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
                tracing::error!(%status, tail = %child.stderr_tail(), "MediaMTX exited; restarting in {}", humantime::format_duration(backoff));
                running.send_replace(false);
            }
        }
        loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(managed.settings.max_backoff);
            match managed.restart().await {
                Ok(restarted) => {
                    child = restarted;
                    backoff = FIRST_BACKOFF;
                    running.send_replace(true);
                    break;
                }
                Err(e) => tracing::error!("MediaMTX restart failed: {e}"),
            }
        }
    }
}
