//! The MediaMTX v3 control API, with verbs and paths as MediaMTX defines them (its
//! `openapi.yaml`, checked per release by the conformance test): `replace` is the idempotent
//! register (an upsert since v1.8.2; before, a new path answers 404 and is added), `delete` is
//! `DELETE`, any 2xx is success whatever the body (empty up to v1.15.4, `{"status":"ok"}` since
//! v1.15.5), and an error body's `error` field is carried into the error. Every reply type is a
//! public struct so that the fields it reads can be checked against each release's schemas.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use super::version::ReportedVersion;

/// MediaMTX's error text for adding a path that exists (`conf.AddPath`, every v1.x).
const PATH_ALREADY_EXISTS: &str = "path already exists";

/// A failed API call, with method, URL, status and MediaMTX's message.
#[derive(Debug, thiserror::Error)]
pub enum MediamtxError {
    /// No HTTP response (connection refused, timeout, …).
    #[error("MediaMTX API {method} {url}: {source}")]
    Request {
        /// HTTP method.
        method: &'static str,
        /// Full URL.
        url: String,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// A non-2xx response.
    #[error("MediaMTX API {method} {url} answered {status}: {message}")]
    Status {
        /// HTTP method.
        method: &'static str,
        /// Full URL.
        url: String,
        /// The status code.
        status: u16,
        /// The `error` field of a JSON body, else the body text.
        message: String,
    },
    /// A 2xx response whose body is not what the API documents.
    #[error("MediaMTX API {method} {url}: unexpected body: {reason}")]
    Body {
        /// HTTP method.
        method: &'static str,
        /// Full URL.
        url: String,
        /// What was wrong.
        reason: String,
    },
}

impl MediamtxError {
    /// The HTTP status, when there was a response.
    pub fn status(&self) -> Option<u16> {
        match self {
            MediamtxError::Status { status, .. } => Some(*status),
            MediamtxError::Request { .. } | MediamtxError::Body { .. } => None,
        }
    }
}

/// Runtime state of a path (`GET /v3/paths/get/{name}`), fields common to v1.x versions.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PathState {
    /// Path name.
    pub name: String,
    /// Whether a stream is available (`ready`, kept in all versions).
    #[serde(default)]
    pub ready: bool,
    /// Whether a stream is available (`available`, v1.16 and later; absent before).
    #[serde(default)]
    pub available: Option<bool>,
    /// What feeds the path (`{"type":"rtspSource","id":…}`); `null` while nothing does.
    #[serde(default)]
    pub source: Option<Value>,
    /// Codec names of the tracks.
    #[serde(default)]
    pub tracks: Vec<String>,
    /// Bytes sent to readers (`bytesSent`, deprecated but filled in v1.17+).
    #[serde(default, rename = "bytesSent")]
    pub bytes_sent: u64,
    /// Readers.
    #[serde(default)]
    pub readers: Vec<Value>,
}

impl PathState {
    /// Whether the path delivers a stream to a new reader: `ready` (all versions) or
    /// `available` (v1.16+), a source, and at least one track (facts doc §1.6).
    pub fn has_stream(&self) -> bool {
        (self.ready || self.available == Some(true))
            && self.source.as_ref().is_some_and(|s| !s.is_null())
            && !self.tracks.is_empty()
    }
}

/// One page of `GET /v3/paths/list` (schema `PathList`).
#[derive(Debug, Deserialize)]
pub struct PathList {
    /// Number of pages.
    #[serde(rename = "pageCount")]
    pub page_count: u64,
    /// The paths of this page.
    pub items: Vec<PathState>,
}

/// An error reply (schema `Error`): `{"error":"…"}`, with `"status":"error"` since v1.15.5.
#[derive(Debug, Deserialize)]
pub struct ErrorReply {
    /// What went wrong.
    pub error: Option<String>,
}

/// `GET /v3/info` (schema `Info`, v1.15.2 and later).
#[derive(Debug, Deserialize)]
pub struct InstanceInfo {
    /// The version, as `--version` prints it.
    pub version: String,
}

/// The one global setting read from `GET /v3/config/global/get` (schema `GlobalConf`) where
/// `/v3/info` does not exist: `playback` is a key there since v1.5.0.
#[derive(Debug, Deserialize)]
pub struct GlobalFeatures {
    /// The playback server switch; `None` when the key is absent.
    #[serde(default)]
    pub playback: Option<Value>,
}

/// A client of one MediaMTX API base URL (`http://127.0.0.1:9997`).
#[derive(Debug, Clone)]
pub struct MediamtxClient {
    base: String,
    http: reqwest::Client,
}

impl MediamtxClient {
    /// A client with a per-request `timeout` (keep it above MediaMTX's delayed 401, up to 4 s).
    pub fn new(base_url: &str, timeout: Duration) -> Self {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .no_proxy()
            .build()
            .expect("a plain HTTP client always builds");
        Self {
            base: base_url.trim_end_matches('/').to_owned(),
            http,
        }
    }

    /// The base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Registers (creates or replaces) the configuration of path `name`:
    /// `POST /v3/config/paths/replace/{name}`. Before v1.8.2 replace answers 404 for a path that
    /// does not exist yet; it is then added (`POST /v3/config/paths/add/{name}`), and replaced
    /// after all if someone else added it in between (400 `path already exists`).
    pub async fn register_path(&self, name: &str, config: &Value) -> Result<(), MediamtxError> {
        match self.replace_path(name, config).await {
            Err(e) if e.status() == Some(404) => {}
            other => return other,
        }
        let url = format!("{}/v3/config/paths/add/{name}", self.base);
        let response = self.http.post(&url).json(config).send().await;
        match self.expect_success("POST", url, response).await {
            Ok(_) => Ok(()),
            Err(MediamtxError::Status {
                status: 400,
                message,
                ..
            }) if message == PATH_ALREADY_EXISTS => self.replace_path(name, config).await,
            Err(e) => Err(e),
        }
    }

    async fn replace_path(&self, name: &str, config: &Value) -> Result<(), MediamtxError> {
        let url = format!("{}/v3/config/paths/replace/{name}", self.base);
        let response = self.http.post(&url).json(config).send().await;
        self.expect_success("POST", url, response).await.map(drop)
    }

    /// Deletes the configuration of path `name`: `DELETE /v3/config/paths/delete/{name}`.
    /// A missing path is `Ok(false)`.
    pub async fn delete_path(&self, name: &str) -> Result<bool, MediamtxError> {
        let url = format!("{}/v3/config/paths/delete/{name}", self.base);
        let response = self.http.delete(&url).send().await;
        match self.expect_success("DELETE", url, response).await {
            Ok(_) => Ok(true),
            Err(e) if e.status() == Some(404) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Runtime state of path `name`: `GET /v3/paths/get/{name}`; `None` for 404.
    pub async fn path_state(&self, name: &str) -> Result<Option<PathState>, MediamtxError> {
        let url = format!("{}/v3/paths/get/{name}", self.base);
        let response = self.http.get(&url).send().await;
        match self.expect_success("GET", url.clone(), response).await {
            Ok(body) => parse("GET", &url, &body).map(Some),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every runtime path: `GET /v3/paths/list`, following the pages.
    pub async fn list_paths(&self) -> Result<Vec<PathState>, MediamtxError> {
        let mut items = Vec::new();
        let mut page = 0u64;
        loop {
            let url = format!("{}/v3/paths/list?page={page}&itemsPerPage=100", self.base);
            let response = self.http.get(&url).send().await;
            let body = self.expect_success("GET", url.clone(), response).await?;
            let parsed: PathList = parse("GET", &url, &body)?;
            items.extend(parsed.items);
            page += 1;
            if page >= parsed.page_count {
                return Ok(items);
            }
        }
    }

    /// Whether the API answers: `GET /v3/paths/list?itemsPerPage=1` returns 2xx.
    pub async fn check(&self) -> Result<(), MediamtxError> {
        let url = format!("{}/v3/paths/list?itemsPerPage=1", self.base);
        let response = self.http.get(&url).send().await;
        self.expect_success("GET", url, response).await.map(drop)
    }

    /// What the instance tells about its version: `GET /v3/info` (v1.15.2+); where that is 404,
    /// whether `GET /v3/config/global/get` has the `playback` key (v1.5.0+); where that is 404
    /// too, there is no v3 API.
    pub async fn reported_version(&self) -> Result<ReportedVersion, MediamtxError> {
        let url = format!("{}/v3/info", self.base);
        let response = self.http.get(&url).send().await;
        match self.expect_success("GET", url.clone(), response).await {
            Ok(body) => {
                let info: InstanceInfo = parse("GET", &url, &body)?;
                return Ok(ReportedVersion::Info(info.version));
            }
            Err(e) if e.status() == Some(404) => {}
            Err(e) => return Err(e),
        }
        let url = format!("{}/v3/config/global/get", self.base);
        let response = self.http.get(&url).send().await;
        match self.expect_success("GET", url.clone(), response).await {
            Ok(body) => {
                let global: GlobalFeatures = parse("GET", &url, &body)?;
                Ok(ReportedVersion::NoInfo {
                    has_playback: global.playback.is_some(),
                })
            }
            Err(e) if e.status() == Some(404) => Ok(ReportedVersion::NoV3Api),
            Err(e) => Err(e),
        }
    }

    async fn expect_success(
        &self,
        method: &'static str,
        url: String,
        response: Result<reqwest::Response, reqwest::Error>,
    ) -> Result<String, MediamtxError> {
        let response = match response {
            Ok(response) => response,
            Err(source) => {
                return Err(MediamtxError::Request {
                    method,
                    url,
                    source,
                })
            }
        };
        let status = response.status();
        let body = match response.text().await {
            Ok(body) => body,
            Err(source) => {
                return Err(MediamtxError::Request {
                    method,
                    url,
                    source,
                })
            }
        };
        if status.is_success() {
            return Ok(body);
        }
        let message = serde_json::from_str::<ErrorReply>(&body)
            .ok()
            .and_then(|reply| reply.error)
            .unwrap_or_else(|| body.trim().to_owned());
        Err(MediamtxError::Status {
            method,
            url,
            status: status.as_u16(),
            message,
        })
    }
}

fn parse<T: serde::de::DeserializeOwned>(
    method: &'static str,
    url: &str,
    body: &str,
) -> Result<T, MediamtxError> {
    serde_json::from_str(body).map_err(|e| MediamtxError::Body {
        method,
        url: url.to_owned(),
        reason: e.to_string(),
    })
}
