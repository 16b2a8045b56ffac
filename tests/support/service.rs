//! `ServiceUnderTest`: the real `camera-service` binary, started with a temporary data
//! directory on a free port, ready once `GET /ready` answers 200.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use camera_service::auth::{Authenticator, Claims, Role};
use realtest::{Ctx, OwnedChild};

use super::http;

/// Path of the binary under test.
pub const BINARY: &str = env!("CARGO_BIN_EXE_camera-service");
/// How long start-up (listening line plus `/ready`) may take.
const STARTUP: Duration = Duration::from_secs(20);
/// Grace period when stopping the service.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Options for starting the service.
#[derive(Debug, Clone, Default)]
pub struct ServiceOptions {
    /// Extra `CAMERA_SERVICE_*` overrides.
    pub env: Vec<(String, String)>,
    /// Extra TOML appended to the generated config file.
    pub config_toml: String,
    /// Data directory to use instead of a fresh one (e.g. a small tmpfs).
    pub data_dir: Option<PathBuf>,
    /// A command that runs the service binary (its arguments appended), e.g. `unshare …`; it
    /// must `exec` it, so the pid is the service's.
    pub wrapper: Vec<String>,
    /// Start is complete once `/ready` answers at all (a 503 too): for tests of readiness.
    pub allow_unready: bool,
}

impl ServiceOptions {
    /// Adds an environment override.
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }
}

/// A running service. Dropping it stops the process (and with it its FFmpeg and MediaMTX
/// children) and then removes its temporary directory.
#[derive(Debug)]
pub struct ServiceUnderTest {
    child: Option<OwnedChild>,
    /// Its temporary root (config, data dir unless given, `TMPDIR`); removed on drop (and by
    /// the harness when the run is interrupted or killed first).
    root: Option<realtest::TempDir>,
    /// The `TMPDIR` it runs with (inside its root), so stray temporary files can be found.
    pub tmp_dir: PathBuf,
    /// The address it listens on.
    pub addr: SocketAddr,
    /// Its data directory.
    pub data_dir: PathBuf,
    /// Its config file.
    pub config_path: PathBuf,
    secret: String,
}

impl ServiceUnderTest {
    /// Starts the service with the defaults (testsrc camera0, direct FFmpeg backend).
    pub fn start(ctx: &mut Ctx) -> anyhow::Result<Self> {
        Self::start_with(ctx, ServiceOptions::default())
    }

    /// Starts the service with extra overrides.
    pub fn start_with(ctx: &mut Ctx, options: ServiceOptions) -> anyhow::Result<Self> {
        let root = ctx
            .fixture_temp_dir("service")
            .context("temporary directory for the service")?;
        let dir = root.path().to_path_buf();
        let tmp_dir = dir.join("tmp");
        std::fs::create_dir(&tmp_dir)?;
        let data_dir = options.data_dir.clone().unwrap_or_else(|| dir.join("data"));
        let config_path = dir.join("camera-service.toml");
        let toml = format!(
            "[storage]\ndata_dir = {:?}\n\n[mediamtx]\nmode = \"off\"\n\n[cameras]\ndiscover_v4l2 = false\n{}",
            data_dir.display().to_string(),
            options.config_toml
        );
        std::fs::write(&config_path, toml)?;
        let mut command = match options.wrapper.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(BINARY);
                command
            }
            None => Command::new(BINARY),
        };
        command
            .arg("serve")
            .arg("--config")
            .arg(&config_path)
            .current_dir(&dir)
            .env("CAMERA_SERVICE_SERVER_PORT", "0")
            .env("TMPDIR", &tmp_dir)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info,camera_service=debug".into()),
            );
        for (name, value) in &options.env {
            command.env(name, value);
        }
        let child = ctx.spawn(&mut command)?;
        let line = child.wait_for_output_line(|l| l.contains("listening on "), STARTUP)?;
        let addr: SocketAddr = line
            .rsplit("listening on ")
            .next()
            .map(str::trim)
            .context("listening line without address")?
            .parse()
            .with_context(|| format!("cannot parse the address in `{line}`"))?;
        let deadline = Instant::now() + STARTUP;
        loop {
            match http::get(addr, "/ready", &[]) {
                Ok(response)
                    if response.status == 200
                        || options.allow_unready
                        || unready_only_for_missing_ffmpeg(ctx, &response) =>
                {
                    break
                }
                Ok(_) | Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                Ok(response) => bail!("/ready answered {} at the deadline", response.status),
                Err(e) => return Err(e.context("/ready never answered")),
            }
        }
        let secret = std::fs::read_to_string(data_dir.join("jwt-secret"))
            .context("the service did not create its JWT secret")?
            .trim()
            .to_owned();
        ctx.log(format_args!("service ready on {addr}"));
        Ok(Self {
            child: Some(child),
            root: Some(root),
            tmp_dir,
            addr,
            data_dir,
            config_path,
            secret,
        })
    }

    /// The temporary root (config, `TMPDIR`, data dir unless one was given); gone after drop.
    pub fn root(&self) -> PathBuf {
        self.tmp_dir
            .parent()
            .map(std::path::Path::to_path_buf)
            .unwrap_or_default()
    }

    /// A client connected and authenticated with a fresh token of `role`.
    pub async fn client(&self, role: Role) -> anyhow::Result<super::ws_client::WsClient> {
        super::ws_client::WsClient::connect_authenticated(&self.ws_url(), &self.token(role)).await
    }

    /// `ws://ADDR/ws`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// A token signed with the service's secret, valid for an hour.
    pub fn token(&self, role: Role) -> String {
        Authenticator::new(&self.secret).mint("test-user", role, Duration::from_secs(3600))
    }

    /// A token with explicit claims (expired ones, for example).
    pub fn token_with_claims(&self, claims: &Claims) -> String {
        Authenticator::new(&self.secret).encode(claims)
    }

    /// A token signed with the service's secret over any JSON claims (`nbf`, odd values).
    pub fn token_with_json(&self, claims: &serde_json::Value) -> String {
        Authenticator::new(&self.secret).encode_claims(claims)
    }

    /// The recordings directory.
    pub fn recordings_dir(&self) -> PathBuf {
        self.data_dir.join("recordings")
    }

    /// The snapshots directory.
    pub fn snapshots_dir(&self) -> PathBuf {
        self.data_dir.join("snapshots")
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> anyhow::Result<bool> {
        match self.child.as_mut() {
            Some(child) => Ok(child.try_wait()?.is_none()),
            None => Ok(false),
        }
    }

    /// The service's pid.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(OwnedChild::pid).unwrap_or(0)
    }

    /// Everything the service printed so far.
    pub fn output(&self) -> Vec<String> {
        self.child
            .as_ref()
            .map(OwnedChild::output)
            .unwrap_or_default()
    }

    /// Waits until one of the service's output lines after the first `skip` satisfies `wanted`,
    /// and returns how many lines there were then (to wait for a later one). Fails after
    /// `timeout`, saying it never saw `what`.
    pub async fn wait_output(
        &self,
        skip: usize,
        what: &str,
        timeout: Duration,
        wanted: impl Fn(&str) -> bool,
    ) -> anyhow::Result<usize> {
        let deadline = Instant::now() + timeout;
        loop {
            let output = self.output();
            if let Some(found) = output.iter().skip(skip).position(|line| wanted(line)) {
                return Ok(skip + found + 1);
            }
            if Instant::now() >= deadline {
                bail!("the service did not log {what} within {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> anyhow::Result<std::process::ExitStatus> {
        let child = self.child.take().context("service already stopped")?;
        Ok(child.stop(STOP_GRACE)?)
    }
}

/// On a machine the probe found without FFmpeg, a 503 from `/ready` that names only FFmpeg and
/// FFprobe still means started: tests that need no FFmpeg (untagged) run against it.
fn unready_only_for_missing_ffmpeg(ctx: &Ctx, response: &http::HttpResponse) -> bool {
    let probe = ctx.probe();
    let found = |tool: &realtest::ToolStatus| matches!(tool, realtest::ToolStatus::Found(_));
    if found(&probe.ffmpeg) && found(&probe.ffprobe) {
        return false;
    }
    let body: serde_json::Value = serde_json::from_slice(&response.body).unwrap_or_default();
    body["problems"].as_array().is_some_and(|problems| {
        problems.iter().all(|p| {
            p.as_str()
                .is_some_and(|p| p.starts_with("ffmpeg:") || p.starts_with("ffprobe:"))
        })
    })
}

impl Drop for ServiceUnderTest {
    fn drop(&mut self) {
        // Stop the process before its directory goes away, with the grace of `terminate`: the
        // service's own shutdown stops a managed MediaMTX gracefully; cut short (SIGKILL), its
        // children die of PR_SET_PDEATHSIG and MediaMTX's publishers are orphaned.
        if let Some(child) = self.child.take() {
            let _ = child.stop(STOP_GRACE);
        }
        if let Some(root) = self.root.take() {
            let _ = root.close();
        }
    }
}
