//! Service configuration: `camera-service.toml`, defaults that run on a fresh machine, and
//! `CAMERA_SERVICE_<SECTION>_<KEY>` environment overrides.
//!
//! Loading works on a TOML table: the defaults are serialised to a table, the file is merged
//! over it key by key, then every override is converted to the type of the default it replaces.
//! Unknown sections and keys are refused, so a typo never silently falls back to a default.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Prefix of every environment override.
pub const ENV_PREFIX: &str = "CAMERA_SERVICE_";

/// The whole configuration. Every field has a documented default (see `camera-service.toml`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// HTTP/WebSocket listener and connection limits.
    pub server: ServerConfig,
    /// Where recordings, snapshots and the JWT secret live.
    pub storage: StorageConfig,
    /// Tokens and API keys.
    pub auth: AuthConfig,
    /// Configured cameras and V4L2 discovery.
    pub cameras: CamerasConfig,
    /// FFmpeg binaries and time limits.
    pub ffmpeg: FfmpegConfig,
    /// MediaMTX backend selection.
    pub mediamtx: MediamtxConfig,
    /// Log filter.
    pub logging: LoggingConfig,
}

/// `[server]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to bind. Default: `127.0.0.1`.
    pub host: IpAddr,
    /// TCP port; `0` picks a free port (the actual address is logged). Default: `8002`.
    pub port: u16,
    /// Simultaneous WebSocket connections; more get HTTP 503. Default: `100`.
    pub max_connections: usize,
    /// Largest accepted WebSocket message in bytes; bigger closes the connection with 1009.
    /// Default: `262144` (256 KiB).
    pub max_message_bytes: usize,
    /// Sustained requests per second per connection; excess gets −32002. Default: `50`.
    pub rate_limit_per_second: u32,
    /// Requests a connection may send in a burst above the sustained rate. Default: `100`.
    pub rate_limit_burst: u32,
    /// Time allowed for a graceful shutdown before children are killed. Default: `5s`.
    pub shutdown_timeout: ConfigDuration,
    /// Longest time one outgoing message may wait for the client to take it (its socket full
    /// because it does not read); past it the connection is dropped. Default: `30s`.
    pub write_timeout: ConfigDuration,
    /// A connection that has not authenticated this long after it opened is closed (1008).
    /// Default: `10s`.
    pub auth_timeout: ConfigDuration,
    /// Interval of the WebSocket pings the service sends every connection. Default: `30s`.
    pub ping_interval: ConfigDuration,
    /// A connection from which nothing (not even a pong) arrived this long is closed (1001).
    /// Default: `5m`.
    pub idle_timeout: ConfigDuration,
    /// A connection that does not deliver a request's headers this long (also while idle
    /// between keep-alive requests) is closed. Default: `10s`.
    pub header_read_timeout: ConfigDuration,
    /// Connections in the HTTP phase at once (before a WebSocket upgrade, or `/health`,
    /// `/ready`, `/files`); past it no more are accepted until one ends (1..=100000).
    /// Default: `128`.
    pub max_http_connections: usize,
}

/// `[storage]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Data directory; `recordings/` and `snapshots/` are created inside. Default: `./camera-data`.
    pub data_dir: PathBuf,
    /// Disk usage (percent of the filesystem) at which `get_storage_info` warns. Default: `80`.
    pub warn_percent: u8,
    /// Disk usage at which new recordings are refused (−32008) and running ones stop. Default: `90`.
    pub block_percent: u8,
    /// How often a running recording checks disk usage. Default: `2s`.
    pub check_interval: ConfigDuration,
}

/// `[auth]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// File holding the HS256 secret; empty means `<data_dir>/jwt-secret`, created (mode 0600)
    /// with a random secret on first use. Default: empty.
    pub jwt_secret_file: PathBuf,
    /// TOML file of API keys stored as SHA-256 hashes; empty means no API keys. Default: empty.
    pub api_keys_file: PathBuf,
    /// Lifetime of tokens minted by `camera-service token` without `--ttl`. Default: `24h`.
    pub token_ttl: ConfigDuration,
}

/// `[cameras]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CamerasConfig {
    /// Configured sources, in id order (`camera0`, `camera1`, …): `testsrc`, `rtsp://…` or
    /// `v4l2:/dev/videoN`. As an environment override: comma-separated. Default: `["testsrc"]`.
    pub sources: Vec<String>,
    /// Frame size of `testsrc` cameras. Default: `640x480`.
    pub testsrc_size: String,
    /// Frame rate of `testsrc` cameras. Default: `30`.
    pub testsrc_fps: u32,
    /// Discover V4L2 capture devices (they get the ids after the configured ones). Default: `true`.
    pub discover_v4l2: bool,
    /// Interval of the V4L2 hot-plug scan. Default: `500ms`.
    pub discovery_interval: ConfigDuration,
    /// Interval of the presence check of RTSP cameras (their MediaMTX path, or `ffprobe` on
    /// the URL without MediaMTX). Default: `5s`.
    pub rtsp_check_interval: ConfigDuration,
}

/// `[ffmpeg]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FfmpegConfig {
    /// FFmpeg binary (name on PATH or absolute path). Default: `ffmpeg`.
    pub binary: String,
    /// FFprobe binary, used for recording durations. Default: `ffprobe`.
    pub ffprobe_binary: String,
    /// Wall-clock limit of one snapshot process. Default: `15s`.
    pub snapshot_timeout: ConfigDuration,
    /// RTSP socket timeout passed to FFmpeg as `-timeout` (microseconds on the wire). Default: `5s`.
    pub rtsp_timeout: ConfigDuration,
    /// Longest recording; also the wall-clock limit of a recording without `duration`.
    /// Default: `24h`.
    pub max_recording: ConfigDuration,
    /// How long a recording's FFmpeg may take to start writing its file. Default: `10s`.
    pub start_timeout: ConfigDuration,
    /// Grace period after writing `q` (and again after SIGTERM) before escalating. Default: `3s`.
    pub stop_grace: ConfigDuration,
    /// FFmpeg/FFprobe processes started by requests (snapshots, file probes) at once, over all
    /// cameras; recordings are not counted (one per camera at most). Default: `8`.
    pub max_processes: usize,
    /// Of those, at once for one camera. Default: `2`.
    pub max_processes_per_camera: usize,
    /// How long a request waits for a free process slot before it fails with −32009 (busy).
    /// Default: `10s`.
    pub queue_timeout: ConfigDuration,
}

/// `[mediamtx]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MediamtxConfig {
    /// `auto` (managed if a binary is found, else the direct FFmpeg backend), `managed`,
    /// `external` (use `api_url`) or `off`. Default: `auto`.
    pub mode: MediamtxMode,
    /// MediaMTX binary; empty means `$MEDIAMTX_BIN`, then `mediamtx` on PATH. Default: empty.
    pub binary: PathBuf,
    /// API base URL of an external MediaMTX (mode `external`). Default: empty.
    pub api_url: String,
    /// Host put into stream URLs given to clients. Default: `127.0.0.1`.
    pub public_host: String,
    /// API port of a managed MediaMTX (loopback only). Default: `9997`.
    pub api_port: u16,
    /// RTSP port. Default: `8554`.
    pub rtsp_port: u16,
    /// HLS port. Default: `8888`.
    pub hls_port: u16,
    /// WebRTC port. Default: `8889`.
    pub webrtc_port: u16,
    /// UDP port of WebRTC's ICE listener (`webrtcLocalUDPAddress`); two managed instances on one
    /// machine need different ones. Default: `8189`.
    pub webrtc_udp_port: u16,
    /// Deadline for the MediaMTX API to answer after each (re)start. Default: `15s`.
    pub startup_timeout: ConfigDuration,
    /// Longest delay between restarts of a managed MediaMTX. Default: `30s`.
    pub max_restart_backoff: ConfigDuration,
    /// Timeout of one API request (above MediaMTX's delayed 401 of up to 4 s). Default: `10s`.
    pub api_timeout: ConfigDuration,
}

/// How the MediaMTX backend is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediamtxMode {
    /// Managed if a binary is found, otherwise off.
    Auto,
    /// The service writes the config, spawns and supervises MediaMTX.
    Managed,
    /// An already running MediaMTX at `api_url`.
    External,
    /// Direct FFmpeg backend only.
    Off,
}

/// `[logging]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoggingConfig {
    /// `tracing` filter directive (`RUST_LOG` wins when set). Default: `info`.
    pub level: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            host: IpAddr::from([127, 0, 0, 1]),
            port: 8002,
            max_connections: 100,
            max_message_bytes: 256 * 1024,
            rate_limit_per_second: 50,
            rate_limit_burst: 100,
            shutdown_timeout: ConfigDuration::secs(5),
            write_timeout: ConfigDuration::secs(30),
            auth_timeout: ConfigDuration::secs(10),
            ping_interval: ConfigDuration::secs(30),
            idle_timeout: ConfigDuration::secs(300),
            header_read_timeout: ConfigDuration::secs(10),
            max_http_connections: 128,
        }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./camera-data"),
            warn_percent: 80,
            block_percent: 90,
            check_interval: ConfigDuration::secs(2),
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            jwt_secret_file: PathBuf::new(),
            api_keys_file: PathBuf::new(),
            token_ttl: ConfigDuration::secs(24 * 3600),
        }
    }
}

impl Default for CamerasConfig {
    fn default() -> Self {
        Self {
            sources: vec!["testsrc".to_owned()],
            testsrc_size: "640x480".to_owned(),
            testsrc_fps: 30,
            discover_v4l2: true,
            discovery_interval: ConfigDuration(Duration::from_millis(500)),
            rtsp_check_interval: ConfigDuration(Duration::from_secs(5)),
        }
    }
}

impl Default for FfmpegConfig {
    fn default() -> Self {
        Self {
            binary: "ffmpeg".to_owned(),
            ffprobe_binary: "ffprobe".to_owned(),
            snapshot_timeout: ConfigDuration::secs(15),
            rtsp_timeout: ConfigDuration::secs(5),
            max_recording: ConfigDuration::secs(24 * 3600),
            start_timeout: ConfigDuration::secs(10),
            stop_grace: ConfigDuration::secs(3),
            max_processes: 8,
            max_processes_per_camera: 2,
            queue_timeout: ConfigDuration::secs(10),
        }
    }
}

impl Default for MediamtxConfig {
    fn default() -> Self {
        Self {
            mode: MediamtxMode::Auto,
            binary: PathBuf::new(),
            api_url: String::new(),
            public_host: "127.0.0.1".to_owned(),
            api_port: 9997,
            rtsp_port: 8554,
            hls_port: 8888,
            webrtc_port: 8889,
            webrtc_udp_port: 8189,
            startup_timeout: ConfigDuration::secs(15),
            max_restart_backoff: ConfigDuration::secs(30),
            api_timeout: ConfigDuration::secs(10),
        }
    }
}

impl Default for LoggingConfig {
    fn default() -> Self {
        Self {
            level: "info".to_owned(),
        }
    }
}

/// A configuration problem, naming the key (or file) and the reason.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The config file is not valid TOML.
    #[error("config file {} is not valid TOML: {message}", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message (with line and column).
        message: String,
    },
    /// A key has a value that is not accepted.
    #[error("invalid config key `{key}` (from {origin}): {reason}")]
    InvalidKey {
        /// `section.key`.
        key: String,
        /// Where the value came from: a file path or an environment variable name.
        origin: String,
        /// Why it was refused.
        reason: String,
    },
}

/// Where a configuration value came from, for error messages.
#[derive(Debug, Clone)]
enum Origin {
    File(PathBuf),
    Env(String),
    Defaults,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File(path) => write!(f, "{}", path.display()),
            Origin::Env(var) => write!(f, "environment variable {var}"),
            Origin::Defaults => f.write_str("defaults"),
        }
    }
}

impl Config {
    /// Loads the defaults, merges `file` over them (if given) and applies the overrides found in
    /// `env` (pairs of variable name and value; pass `std::env::vars()`), then validates.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut table = toml::Table::try_from(Config::default())
            .expect("the default config always serialises to a table");
        let mut origins: Vec<(String, Origin)> = Vec::new();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_owned(),
                source,
            })?;
            let from_file: toml::Table =
                text.parse()
                    .map_err(|e: toml::de::Error| ConfigError::Syntax {
                        path: path.to_owned(),
                        message: e.to_string(),
                    })?;
            merge_file(&mut table, from_file, path, &mut origins)?;
        }
        let mut overrides: Vec<(String, String)> = env
            .into_iter()
            .filter(|(name, _)| name.starts_with(ENV_PREFIX))
            .collect();
        overrides.sort();
        for (var, value) in overrides {
            apply_env(&mut table, &var, &value, &mut origins)?;
        }
        let config: Config = deserialize_per_key(&table, &origins)?;
        config.validate(&origins)?;
        Ok(config)
    }

    /// Directory of recordings.
    pub fn recordings_dir(&self) -> PathBuf {
        self.storage.data_dir.join("recordings")
    }

    /// Directory of snapshots.
    pub fn snapshots_dir(&self) -> PathBuf {
        self.storage.data_dir.join("snapshots")
    }

    /// The JWT secret file: `auth.jwt_secret_file`, or `<data_dir>/jwt-secret`.
    pub fn jwt_secret_path(&self) -> PathBuf {
        if self.auth.jwt_secret_file.as_os_str().is_empty() {
            self.storage.data_dir.join("jwt-secret")
        } else {
            self.auth.jwt_secret_file.clone()
        }
    }

    fn validate(&self, origins: &[(String, Origin)]) -> Result<(), ConfigError> {
        let fail = |key: &str, reason: String| ConfigError::InvalidKey {
            key: key.to_owned(),
            origin: origin_of(origins, key).to_string(),
            reason,
        };
        if !(1..=100_000).contains(&self.server.max_connections) {
            return Err(fail(
                "server.max_connections",
                "must be in 1..=100000".into(),
            ));
        }
        if !(1..=100_000).contains(&self.server.max_http_connections) {
            return Err(fail(
                "server.max_http_connections",
                "must be in 1..=100000".into(),
            ));
        }
        if self.server.max_message_bytes < 1024 {
            return Err(fail(
                "server.max_message_bytes",
                "must be at least 1024".into(),
            ));
        }
        if self.server.rate_limit_per_second == 0 {
            return Err(fail(
                "server.rate_limit_per_second",
                "must be at least 1".into(),
            ));
        }
        for (key, value) in [
            ("server.write_timeout", self.server.write_timeout.0),
            ("server.auth_timeout", self.server.auth_timeout.0),
            ("server.ping_interval", self.server.ping_interval.0),
            ("server.idle_timeout", self.server.idle_timeout.0),
            (
                "server.header_read_timeout",
                self.server.header_read_timeout.0,
            ),
        ] {
            if value < Duration::from_millis(100) {
                return Err(fail(key, "must be at least 100ms".into()));
            }
        }
        if self.server.ping_interval.0 >= self.server.idle_timeout.0 {
            return Err(fail(
                "server.ping_interval",
                "must be shorter than server.idle_timeout (a live client answers each ping)".into(),
            ));
        }
        if self.storage.data_dir.as_os_str().is_empty() {
            return Err(fail("storage.data_dir", "must not be empty".into()));
        }
        for (key, value) in [
            ("storage.warn_percent", self.storage.warn_percent),
            ("storage.block_percent", self.storage.block_percent),
        ] {
            if value > 100 {
                return Err(fail(key, format!("{value} is not a percentage (0..=100)")));
            }
        }
        if self.storage.block_percent == 0 {
            return Err(fail(
                "storage.block_percent",
                "must be at least 1 (0 would refuse every recording)".into(),
            ));
        }
        if self.storage.warn_percent > self.storage.block_percent {
            return Err(fail(
                "storage.warn_percent",
                format!(
                    "{} is above storage.block_percent ({}): the warning must come first",
                    self.storage.warn_percent, self.storage.block_percent
                ),
            ));
        }
        if let Err(reason) = parse_size(&self.cameras.testsrc_size) {
            return Err(fail("cameras.testsrc_size", reason));
        }
        if self.cameras.testsrc_fps == 0 || self.cameras.testsrc_fps > 240 {
            return Err(fail("cameras.testsrc_fps", "must be in 1..=240".into()));
        }
        for source in &self.cameras.sources {
            if let Err(reason) = crate::camera::Source::from_str(source) {
                return Err(fail("cameras.sources", reason.to_string()));
            }
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.logging.level) {
            return Err(fail("logging.level", format!("not a log filter: {e}")));
        }
        for (key, value) in [
            (
                "cameras.discovery_interval",
                self.cameras.discovery_interval.0,
            ),
            (
                "cameras.rtsp_check_interval",
                self.cameras.rtsp_check_interval.0,
            ),
        ] {
            if value < Duration::from_millis(10) {
                return Err(fail(key, "must be at least 10ms".into()));
            }
        }
        if !(1..=1000).contains(&self.ffmpeg.max_processes) {
            return Err(fail("ffmpeg.max_processes", "must be in 1..=1000".into()));
        }
        if self.ffmpeg.max_processes_per_camera == 0
            || self.ffmpeg.max_processes_per_camera > self.ffmpeg.max_processes
        {
            return Err(fail(
                "ffmpeg.max_processes_per_camera",
                format!(
                    "must be in 1..=ffmpeg.max_processes ({})",
                    self.ffmpeg.max_processes
                ),
            ));
        }
        if self.ffmpeg.binary.is_empty() {
            return Err(fail("ffmpeg.binary", "must not be empty".into()));
        }
        if self.mediamtx.mode == MediamtxMode::External && self.mediamtx.api_url.is_empty() {
            return Err(fail(
                "mediamtx.api_url",
                "must be set when mediamtx.mode is `external`".into(),
            ));
        }
        Ok(())
    }
}

/// Parses `WIDTHxHEIGHT`.
pub fn parse_size(size: &str) -> Result<(u32, u32), String> {
    let parsed = size
        .split_once('x')
        .and_then(|(w, h)| Some((w.parse::<u32>().ok()?, h.parse::<u32>().ok()?)));
    match parsed {
        Some((w, h)) if w > 0 && h > 0 && w % 2 == 0 && h % 2 == 0 => Ok((w, h)),
        _ => Err(format!(
            "`{size}` is not WIDTHxHEIGHT with even, non-zero numbers"
        )),
    }
}

fn origin_of(origins: &[(String, Origin)], key: &str) -> Origin {
    origins
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, o)| o.clone())
        .unwrap_or(Origin::Defaults)
}

fn merge_file(
    table: &mut toml::Table,
    from_file: toml::Table,
    path: &Path,
    origins: &mut Vec<(String, Origin)>,
) -> Result<(), ConfigError> {
    let origin = Origin::File(path.to_owned());
    for (section, value) in from_file {
        let Some(toml::Value::Table(defaults)) = table.get_mut(&section) else {
            return Err(ConfigError::InvalidKey {
                key: section,
                origin: origin.to_string(),
                reason: format!("unknown section (known: {})", SECTIONS.join(", ")),
            });
        };
        let toml::Value::Table(entries) = value else {
            return Err(ConfigError::InvalidKey {
                key: section,
                origin: origin.to_string(),
                reason: "must be a table (`[section]`)".into(),
            });
        };
        for (key, value) in entries {
            let full = format!("{section}.{key}");
            if !defaults.contains_key(&key) {
                return Err(ConfigError::InvalidKey {
                    key: full,
                    origin: origin.to_string(),
                    reason: "unknown key".into(),
                });
            }
            defaults.insert(key, value);
            origins.push((full, origin.clone()));
        }
    }
    Ok(())
}

const SECTIONS: [&str; 7] = [
    "server", "storage", "auth", "cameras", "ffmpeg", "mediamtx", "logging",
];

fn apply_env(
    table: &mut toml::Table,
    var: &str,
    value: &str,
    origins: &mut Vec<(String, Origin)>,
) -> Result<(), ConfigError> {
    let origin = Origin::Env(var.to_owned());
    let rest = var[ENV_PREFIX.len()..].to_ascii_lowercase();
    let unknown = |reason: String| ConfigError::InvalidKey {
        key: rest.clone(),
        origin: origin.to_string(),
        reason,
    };
    let Some((section, key)) = rest.split_once('_') else {
        return Err(unknown("expected CAMERA_SERVICE_<SECTION>_<KEY>".into()));
    };
    let Some(toml::Value::Table(entries)) = table.get_mut(section) else {
        return Err(unknown(format!(
            "unknown section `{section}` (known: {})",
            SECTIONS.join(", ")
        )));
    };
    let full = format!("{section}.{key}");
    let Some(default) = entries.get(key) else {
        return Err(ConfigError::InvalidKey {
            key: full,
            origin: origin.to_string(),
            reason: "unknown key".into(),
        });
    };
    let converted =
        convert_env_value(default, value).map_err(|reason| ConfigError::InvalidKey {
            key: full.clone(),
            origin: origin.to_string(),
            reason,
        })?;
    entries.insert(key.to_owned(), converted);
    origins.push((full, origin));
    Ok(())
}

/// Converts an environment string to the TOML type of the value it overrides.
fn convert_env_value(default: &toml::Value, value: &str) -> Result<toml::Value, String> {
    match default {
        toml::Value::String(_) => Ok(toml::Value::String(value.to_owned())),
        toml::Value::Integer(_) => value
            .trim()
            .parse::<i64>()
            .map(toml::Value::Integer)
            .map_err(|_| format!("`{value}` is not an integer")),
        toml::Value::Float(_) => value
            .trim()
            .parse::<f64>()
            .map(toml::Value::Float)
            .map_err(|_| format!("`{value}` is not a number")),
        toml::Value::Boolean(_) => match value.trim() {
            "true" | "1" | "yes" => Ok(toml::Value::Boolean(true)),
            "false" | "0" | "no" => Ok(toml::Value::Boolean(false)),
            _ => Err(format!("`{value}` is not a boolean (true/false)")),
        },
        toml::Value::Array(_) => Ok(toml::Value::Array(
            value
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| toml::Value::String(s.to_owned()))
                .collect(),
        )),
        toml::Value::Datetime(_) | toml::Value::Table(_) => {
            Err("this key cannot be set from the environment".into())
        }
    }
}

/// Deserialises each key on its own first, so a type error names the key, then the whole table.
fn deserialize_per_key(
    table: &toml::Table,
    origins: &[(String, Origin)],
) -> Result<Config, ConfigError> {
    for (section, value) in table {
        let toml::Value::Table(entries) = value else {
            continue;
        };
        for (key, value) in entries {
            let full = format!("{section}.{key}");
            let mut probe_section = toml::Table::new();
            probe_section.insert(key.clone(), value.clone());
            let mut probe = toml::Table::new();
            probe.insert(section.clone(), toml::Value::Table(probe_section));
            if let Err(e) = Config::deserialize(probe) {
                return Err(ConfigError::InvalidKey {
                    origin: origin_of(origins, &full).to_string(),
                    key: full,
                    reason: e.message().to_owned(),
                });
            }
        }
    }
    Config::deserialize(table.clone()).map_err(|e| ConfigError::InvalidKey {
        key: "(config)".into(),
        origin: "merged configuration".into(),
        reason: e.message().to_owned(),
    })
}

/// A duration written like `5s`, `250ms`, `1h 30m` (humantime syntax).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigDuration(pub Duration);

impl ConfigDuration {
    /// A whole number of seconds.
    pub const fn secs(secs: u64) -> Self {
        Self(Duration::from_secs(secs))
    }
}

impl Serialize for ConfigDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&humantime::format_duration(self.0).to_string())
    }
}

impl<'de> Deserialize<'de> for ConfigDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        humantime::parse_duration(&text)
            .map(ConfigDuration)
            .map_err(|e| serde::de::Error::custom(format!("`{text}` is not a duration: {e}")))
    }
}
