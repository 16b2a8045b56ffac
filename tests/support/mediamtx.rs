//! `RealMediaMTXServer`: a real MediaMTX on free loopback ports, started from a config written
//! before start (facts doc §1.4: editing it later would hot-reload and drop API paths), ready
//! only when its API answers 2xx *and* its RTSP port accepts a connection. Its output goes into
//! the test's captured log. Dropping it stops and reaps it, then removes its directory.
//!
//! Environment: `MEDIAMTX_LOG_LEVEL` (`error|warn|info|debug`, default `info`) sets its
//! `logLevel`.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use realtest::{Ctx, OwnedChild};
use serde_json::Value;

use super::service::ServiceUnderTest;
use super::{http, procfs};

/// How long start-up (API and RTSP listener) may take.
const STARTUP: Duration = Duration::from_secs(30);
/// Interval of API polls.
const POLL: Duration = Duration::from_millis(100);

/// A free TCP port on loopback (bound then released).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The MediaMTX binary the probe found; `Err` if a test without the `needs-mediamtx` tag asks
/// for it, or if it is outside the range camera-service supports (README, "MediaMTX").
pub fn binary(ctx: &Ctx) -> anyhow::Result<(PathBuf, String)> {
    let info = ctx
        .probe()
        .mediamtx
        .found()
        .context("no MediaMTX binary: the test must carry the needs-mediamtx tag")?;
    camera_service::mediamtx::check_version_output(&info.version)
        .with_context(|| format!("MediaMTX binary {}", info.path.display()))?;
    Ok((info.path.clone(), info.version.clone()))
}

/// Parses `vX.Y.Z[-…]` into (X, Y, Z).
pub fn parse_version(text: &str) -> Option<(u32, u32, u32)> {
    let core = text.trim().strip_prefix('v')?.split('-').next()?;
    let mut parts = core.split('.').map(|p| p.parse::<u32>().ok());
    Some((parts.next()??, parts.next()??, parts.next()??))
}

/// The pid of the MediaMTX `service` manages: its child running the probe's binary with the
/// config in its data directory (not the `--version` question asked before every start).
pub fn managed_mediamtx_pid(ctx: &Ctx, service: &ServiceUnderTest) -> anyhow::Result<i32> {
    let (path, _) = binary(ctx)?;
    let server = format!(
        "{} {}",
        path.display(),
        service.data_dir.join("mediamtx.yml").display()
    );
    procfs::children_of(service.pid())
        .into_iter()
        .find(|pid| procfs::is_alive(*pid) && procfs::cmdline(*pid) == server)
        .with_context(|| format!("no child of the service runs `{server}`"))
}

/// What to start.
#[derive(Debug, Clone)]
pub struct MediamtxOptions {
    /// The `paths:` section body (indented two spaces). Default: `all_others:` (any path may
    /// be published to).
    pub paths_yaml: String,
}

impl Default for MediamtxOptions {
    fn default() -> Self {
        Self {
            paths_yaml: "  all_others:\n".to_owned(),
        }
    }
}

/// A running MediaMTX.
#[derive(Debug)]
pub struct RealMediaMTXServer {
    child: Option<OwnedChild>,
    /// Config and working directory; removed on drop (and by the harness when the run is
    /// interrupted or killed first).
    dir: Option<realtest::TempDir>,
    /// API port (127.0.0.1).
    pub api_port: u16,
    /// RTSP port (127.0.0.1, TCP only).
    pub rtsp_port: u16,
    /// The config file as written before start.
    pub config_path: PathBuf,
    /// The config text.
    pub config: String,
    /// Version as `--version` printed it.
    pub version: String,
}

/// The YAML for `version`: API and RTSP (TCP) on loopback, every other protocol off. Keys that
/// the version does not know are left out, because unknown keys are fatal (facts doc §1.4).
pub fn render_config(version: &str, api_port: u16, rtsp_port: u16, paths_yaml: &str) -> String {
    let version = parse_version(version).unwrap_or((1, 11, 0));
    let transports_key = if version >= (1, 11, 0) {
        "rtspTransports"
    } else {
        "protocols"
    };
    let log_level = std::env::var("MEDIAMTX_LOG_LEVEL").unwrap_or_else(|_| "info".to_owned());
    let mut yaml = format!(
        "# Written by the RealMediaMTXServer test fixture before start.\n\
         logLevel: {log_level}\n\
         logDestinations: [stdout]\n\
         api: yes\n\
         apiAddress: 127.0.0.1:{api_port}\n\
         metrics: no\n\
         pprof: no\n\
         playback: no\n\
         rtsp: yes\n\
         {transports_key}: [tcp]\n\
         rtspAddress: 127.0.0.1:{rtsp_port}\n\
         rtmp: no\n\
         hls: no\n\
         webrtc: no\n\
         srt: no\n"
    );
    if version >= (1, 19, 0) {
        yaml.push_str("moq: no\n");
    }
    yaml.push_str("paths:\n");
    yaml.push_str(paths_yaml);
    yaml
}

impl RealMediaMTXServer {
    /// Starts MediaMTX with the defaults (any path publishable).
    pub fn start(ctx: &mut Ctx) -> anyhow::Result<Self> {
        Self::start_with(ctx, MediamtxOptions::default())
    }

    /// Writes the config, starts MediaMTX and waits until it is ready.
    pub fn start_with(ctx: &mut Ctx, options: MediamtxOptions) -> anyhow::Result<Self> {
        let (binary, version) = binary(ctx)?;
        let dir = ctx
            .fixture_temp_dir("mediamtx")
            .context("temporary directory for MediaMTX")?;
        let (api_port, rtsp_port) = (free_port()?, free_port()?);
        let config = render_config(&version, api_port, rtsp_port, &options.paths_yaml);
        let config_path = dir.path().join("mediamtx.yml");
        std::fs::write(&config_path, &config)?;
        ctx.log(format_args!(
            "MediaMTX {version}: config {}:\n{config}",
            config_path.display()
        ));
        // The working directory is the temporary one, so nothing it writes lands elsewhere.
        let child = ctx.spawn(
            Command::new(&binary)
                .arg(&config_path)
                .current_dir(dir.path()),
        )?;
        let mut server = Self {
            child: Some(child),
            dir: Some(dir),
            api_port,
            rtsp_port,
            config_path,
            config,
            version,
        };
        server.wait_ready()?;
        ctx.log(format_args!(
            "MediaMTX ready: API {}, RTSP {}",
            server.api_url(),
            server.rtsp_url("")
        ));
        Ok(server)
    }

    fn child(&self) -> anyhow::Result<&OwnedChild> {
        self.child.as_ref().context("MediaMTX was stopped")
    }

    /// Ready = `GET /v3/config/global/get` answers 2xx and the RTSP port accepts a TCP
    /// connection. Not log lines: v1.19.0 changed them ("listener opened on" became "started
    /// with listener(s) on", internal/api/api.go, internal/servers/rtsp/server.go), and with
    /// `MEDIAMTX_LOG_LEVEL` above `info` there are none.
    fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + STARTUP;
        let rtsp = SocketAddr::from(([127, 0, 0, 1], self.rtsp_port));
        loop {
            let last = match self.api_get("/v3/config/global/get") {
                Ok((status, _)) if (200..300).contains(&status) => {
                    match TcpStream::connect_timeout(&rtsp, POLL) {
                        Ok(_) => return Ok(()),
                        Err(e) => format!("API up, RTSP {rtsp}: {e}"),
                    }
                }
                Ok((status, body)) => format!("HTTP {status}: {body}"),
                Err(e) => format!("{e:#}"),
            };
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                bail!("MediaMTX exited ({status}) before it was ready: {last}");
            }
            if Instant::now() >= deadline {
                bail!("MediaMTX not ready within {STARTUP:?}: {last}");
            }
            std::thread::sleep(POLL);
        }
    }

    /// `http://127.0.0.1:API`.
    pub fn api_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.api_port)
    }

    /// `rtsp://127.0.0.1:RTSP/path`.
    pub fn rtsp_url(&self, path: &str) -> String {
        format!("rtsp://127.0.0.1:{}/{path}", self.rtsp_port)
    }

    /// The API address.
    pub fn api_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.api_port))
    }

    /// `GET path` on the API: status and JSON body (`Value::Null` for an empty body, a string
    /// for a non-JSON one, e.g. `404 page not found`).
    pub fn api_get(&self, path: &str) -> anyhow::Result<(u16, Value)> {
        let response = http::get(self.api_addr(), path, &[])?;
        let body = if response.body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&response.body).unwrap_or(Value::String(response.text()))
        };
        Ok((response.status, body))
    }

    /// Polls `GET /v3/paths/get/{name}` until the path has a stream (`ready`, or `available` on
    /// v1.16+) with at least one track, and returns the path object.
    pub fn wait_path_ready(&self, name: &str, timeout: Duration) -> anyhow::Result<Value> {
        wait_path_ready(self.api_addr(), name, timeout)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(OwnedChild::pid).unwrap_or(0)
    }

    /// Sends `signal` to the MediaMTX process.
    pub fn signal(&self, signal: Signal) -> anyhow::Result<()> {
        kill(Pid::from_raw(self.child()?.pid() as i32), signal)?;
        Ok(())
    }

    /// Its directory (config, working directory); removed on drop.
    pub fn dir(&self) -> &Path {
        self.dir.as_ref().map_or(Path::new(""), |d| d.path())
    }

    /// Stops it (SIGTERM, then SIGKILL after `grace`) and returns how it ended.
    pub fn stop(&mut self, grace: Duration) -> anyhow::Result<std::process::ExitStatus> {
        let child = self.child.take().context("MediaMTX already stopped")?;
        Ok(child.stop(grace)?)
    }
}

impl Drop for RealMediaMTXServer {
    fn drop(&mut self) {
        drop(self.child.take());
        if let Some(dir) = self.dir.take() {
            let _ = dir.close();
        }
    }
}

/// Polls a MediaMTX API at `api` until path `name` has a stream with at least one track.
pub fn wait_path_ready(api: SocketAddr, name: &str, timeout: Duration) -> anyhow::Result<Value> {
    let deadline = Instant::now() + timeout;
    let path = format!("/v3/paths/get/{name}");
    loop {
        let last = match http::get(api, &path, &[]) {
            Ok(response) if response.status == 200 => {
                let body: Value = serde_json::from_slice(&response.body)
                    .with_context(|| format!("{path} answered non-JSON: {}", response.text()))?;
                let has_stream = body["ready"] == true || body["available"] == true;
                let tracks = body["tracks"].as_array().map_or(0, Vec::len);
                if has_stream && tracks > 0 {
                    return Ok(body);
                }
                format!("not ready yet: {body}")
            }
            Ok(response) => format!("HTTP {}: {}", response.status, response.text()),
            Err(e) => format!("{e:#}"),
        };
        ensure!(
            Instant::now() < deadline,
            "MediaMTX path `{name}` not ready within {timeout:?}: {last}"
        );
        std::thread::sleep(POLL);
    }
}
