//! `camera-service serve`: build the service, listen, run until SIGTERM/SIGINT, shut down
//! gracefully (recordings finalised and notified, connections closed, children stopped).

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;

use crate::api::{self, ApiState};
use crate::camera::{discovery, presence};
use crate::config::Config;
use crate::service::{Service, StartError};

/// Why `serve` failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Building the service failed.
    #[error(transparent)]
    Start(#[from] StartError),
    /// The listener could not be bound.
    #[error("failed to listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Signal handlers could not be installed.
    #[error("failed to install signal handlers: {0}")]
    Signals(#[source] std::io::Error),
    /// The HTTP server failed.
    #[error("API server failed: {0}")]
    Serve(#[source] std::io::Error),
}

/// Exit status of `serve` for a configuration or command line that is refused.
pub const EXIT_CONFIG: u8 = 2;
/// Exit status when the listen address cannot be bound (in use, not permitted).
pub const EXIT_LISTEN: u8 = 3;
/// Exit status when the storage directories cannot be prepared (the data dir is a file, …).
pub const EXIT_STORAGE: u8 = 4;
/// Exit status when the JWT secret or API key file cannot be used.
pub const EXIT_CREDENTIALS: u8 = 5;
/// Exit status when the media backend (MediaMTX) cannot be set up.
pub const EXIT_BACKEND: u8 = 6;
/// Exit status of any other failure.
pub const EXIT_FAILURE: u8 = 1;

impl RunError {
    /// The process exit status for this failure (documented in the README).
    pub fn exit_code(&self) -> u8 {
        match self {
            RunError::Bind { .. } => EXIT_LISTEN,
            RunError::Start(StartError::Storage(_)) => EXIT_STORAGE,
            RunError::Start(StartError::Auth(_)) => EXIT_CREDENTIALS,
            RunError::Start(StartError::Backend(_)) => EXIT_BACKEND,
            RunError::Signals(_) | RunError::Serve(_) => EXIT_FAILURE,
        }
    }
}

/// Runs the service until SIGTERM or SIGINT. The address is bound first, so a port in use
/// fails before anything (MediaMTX) is started.
pub async fn run(config: Config) -> Result<(), RunError> {
    let addr = SocketAddr::new(config.server.host, config.server.port);
    let shutdown_timeout = config.server.shutdown_timeout.0;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| RunError::Bind { addr, source })?;
    let service = Arc::new(Service::build(config).await?);
    let local = listener
        .local_addr()
        .map_err(|source| RunError::Bind { addr, source })?;
    let mut sigterm = signal(SignalKind::terminate()).map_err(RunError::Signals)?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(RunError::Signals)?;
    let shutdown = CancellationToken::new();
    let state = ApiState::new(Arc::clone(&service), shutdown.clone());
    let cameras: Vec<String> = service.cameras.list().into_iter().map(|c| c.id).collect();
    tracing::info!(
        backend = service.backend.name(),
        data_dir = %service.storage.data_dir().display(),
        ?cameras,
        "camera-service {} started",
        env!("CARGO_PKG_VERSION")
    );
    tracing::info!("listening on {local}");
    let server = tokio::spawn(api::serve(listener, state.clone()));
    if service.config.cameras.discover_v4l2 {
        tokio::spawn(discovery::run(
            Arc::clone(&service),
            service.config.cameras.discovery_interval.0,
            shutdown.clone(),
        ));
    }
    tokio::spawn(presence::run(
        Arc::clone(&service),
        service.config.cameras.rtsp_check_interval.0,
        service.config.ffmpeg.rtsp_timeout.0,
        shutdown.clone(),
    ));
    tokio::select! {
        _ = sigterm.recv() => tracing::info!("SIGTERM received, shutting down"),
        _ = sigint.recv() => tracing::info!("SIGINT received, shutting down"),
    }
    let graceful = async {
        service.recorder.stop_all().await;
        shutdown.cancel();
        let served = server.await;
        state.connections_closed().await;
        service.backend.shutdown().await;
        served
    };
    match tokio::time::timeout(shutdown_timeout, graceful).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => return Err(RunError::Serve(e)),
        Ok(Err(join)) => tracing::error!("API server task failed: {join}"),
        Err(_) => tracing::warn!(
            "graceful shutdown took longer than {}; exiting anyway",
            humantime::format_duration(shutdown_timeout)
        ),
    }
    tracing::info!("stopped");
    Ok(())
}
