//! A local HTTP stand-in for the MediaMTX control API of one release, answering as that
//! release's `openapi.yaml` and source say (tests/data/mediamtx): only its routes exist (others
//! are gin's 404 `404 page not found`, text), bodies have exactly its schemas' properties,
//! success is an empty 200 or its `OK` schema (`{"status":"ok"}` since v1.15.5), errors its
//! `Error` schema, a request body with a field its `PathConf` lacks is 400 `json: unknown field`,
//! and a missing path gets the status its handlers give (404 since v1.5.0; replace creates it
//! since v1.8.2). Path configs live in memory as in MediaMTX; the test decides which paths have
//! a stream and when MediaMTX "restarts" (forgets every path). No media is served: this is a
//! unit-level contract of the API client, not a MediaMTX.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use camera_service::mediamtx::MediamtxClient;
use serde_json::{json, Map, Value};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::mediamtx_release::Release;

/// One request as the stand-in saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    /// HTTP method.
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// Query parameter names, in order.
    pub query: Vec<String>,
    /// The JSON body, if any.
    pub body: Option<Value>,
}

impl Seen {
    /// `METHOD /path?query`.
    pub fn line(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

struct Inner {
    release: &'static Release,
    version: String,
    configs: Mutex<BTreeMap<String, Value>>,
    /// Added by "someone else" right after a replace found the path missing.
    added_meanwhile: Mutex<Option<(String, Value)>>,
    streams: Mutex<BTreeSet<String>>,
    seen: Mutex<Vec<Seen>>,
}

impl Inner {
    fn set_stream(&self, name: &str, present: bool) {
        let mut streams = self.streams.lock().unwrap();
        if present {
            streams.insert(name.to_owned());
        } else {
            streams.remove(name);
        }
    }
}

/// A running stand-in on a loopback port; stopped on drop.
pub struct StandIn {
    addr: SocketAddr,
    inner: Arc<Inner>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl StandIn {
    /// Serves `release`'s API.
    pub async fn start(release: &'static Release) -> anyhow::Result<Self> {
        Self::start_as(release, &release.tag).await
    }

    /// Serves `release`'s API, reporting `version` in `/v3/info` (where the release has it).
    pub async fn start_as(release: &'static Release, version: &str) -> anyhow::Result<Self> {
        let inner = Arc::new(Inner {
            release,
            version: version.to_owned(),
            configs: Mutex::default(),
            added_meanwhile: Mutex::default(),
            streams: Mutex::default(),
            seen: Mutex::default(),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&inner));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(Self {
            addr,
            inner,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A client of it.
    pub fn client(&self) -> MediamtxClient {
        MediamtxClient::new(&self.url(), Duration::from_secs(10))
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.inner.seen.lock().unwrap().clone()
    }

    /// `METHOD /path` of every request so far.
    pub fn lines(&self) -> Vec<String> {
        self.seen().iter().map(Seen::line).collect()
    }

    /// The registered config of path `name`.
    pub fn config(&self, name: &str) -> Option<Value> {
        self.inner.configs.lock().unwrap().get(name).cloned()
    }

    /// Whether path `name` has a stream (a publisher with an H264 track) from now on.
    pub fn set_stream(&self, name: &str, present: bool) {
        self.inner.set_stream(name, present);
    }

    /// Path `name` gets a stream after `delay` (a source that takes a while to be pulled).
    pub fn stream_after(&self, name: &str, delay: Duration) {
        let (inner, name) = (Arc::clone(&self.inner), name.to_owned());
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            inner.set_stream(&name, true);
        });
    }

    /// The next replace of `name` that finds it missing answers so, and then `config` is added
    /// under that name (another client's add coming in between).
    pub fn add_behind_next_missing_replace(&self, name: &str, config: Value) {
        *self.inner.added_meanwhile.lock().unwrap() = Some((name.to_owned(), config));
    }

    /// As a MediaMTX restart does: every path registered through the API is gone.
    pub fn forget_paths(&self) {
        self.inner.configs.lock().unwrap().clear();
        self.inner.streams.lock().unwrap().clear();
    }

    /// Stops listening and closes its connections.
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

async fn handle(
    State(inner): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> Response {
    let query: Vec<(String, String)> = uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k.to_owned(), v.to_owned())
        })
        .collect();
    let parsed_body = serde_json::from_slice::<Value>(&body).ok();
    inner.seen.lock().unwrap().push(Seen {
        method: method.to_string(),
        path: uri.path().to_owned(),
        query: query.iter().map(|(k, _)| k.clone()).collect(),
        body: parsed_body.clone(),
    });
    let release = inner.release;
    let Some((key, _)) = release.operation(method.as_str(), uri.path()) else {
        // gin without HandleMethodNotAllowed: unknown route or wrong verb.
        return (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain")],
            "404 page not found",
        )
            .into_response();
    };
    let name = uri.path().rsplit('/').next().unwrap_or_default().to_owned();
    let param = |wanted: &str| {
        query
            .iter()
            .find(|(k, _)| k == wanted)
            .and_then(|(_, v)| v.parse::<usize>().ok())
    };
    match key {
        "GET /v3/info" => {
            let mut info = sample(release, "Info");
            set(&mut info, "version", json!(inner.version));
            set(&mut info, "started", json!("2026-01-01T00:00:00Z"));
            reply(StatusCode::OK, info)
        }
        "GET /v3/config/global/get" => reply(StatusCode::OK, sample(release, "GlobalConf")),
        "POST /v3/config/paths/add/{name}" | "POST /v3/config/paths/replace/{name}" => {
            let config = match path_conf(release, parsed_body) {
                Ok(config) => config,
                Err(message) => return error(release, StatusCode::BAD_REQUEST, &message),
            };
            let mut configs = inner.configs.lock().unwrap();
            let exists = configs.contains_key(&name);
            if key.contains("/add/") && exists {
                let message = release
                    .source
                    .path_already_exists_message
                    .as_deref()
                    .unwrap_or("path already exists");
                return error(release, StatusCode::BAD_REQUEST, message);
            }
            if key.contains("/replace/")
                && !exists
                && release.source.replace_creates_missing_path != Some(true)
            {
                let mut meanwhile = inner.added_meanwhile.lock().unwrap();
                if meanwhile.as_ref().is_some_and(|(n, _)| *n == name) {
                    let (name, config) = meanwhile.take().expect("checked");
                    configs.insert(name, config);
                }
                return missing_path(release, key);
            }
            configs.insert(name, config);
            ok(release, key)
        }
        "DELETE /v3/config/paths/delete/{name}" => {
            if inner.configs.lock().unwrap().remove(&name).is_none() {
                return missing_path(release, key);
            }
            inner.streams.lock().unwrap().remove(&name);
            ok(release, key)
        }
        "GET /v3/paths/get/{name}" => {
            if !inner.configs.lock().unwrap().contains_key(&name) {
                return missing_path(release, key);
            }
            reply(StatusCode::OK, path_object(&inner, &name))
        }
        "GET /v3/paths/list" => {
            let names: Vec<String> = inner.configs.lock().unwrap().keys().cloned().collect();
            let per_page = param("itemsPerPage").unwrap_or(100).max(1);
            let page = param("page").unwrap_or(0);
            let items: Vec<Value> = names
                .iter()
                .skip(page * per_page)
                .take(per_page)
                .map(|name| path_object(&inner, name))
                .collect();
            let mut list = sample(release, "PathList");
            set(&mut list, "itemCount", json!(names.len()));
            set(
                &mut list,
                "pageCount",
                json!(names.len().div_ceil(per_page)),
            );
            set(&mut list, "items", json!(items));
            reply(StatusCode::OK, list)
        }
        other => error(
            release,
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("the stand-in does not implement {other}"),
        ),
    }
}

/// The request body as MediaMTX decodes a `PathConf`: JSON, no unknown field.
fn path_conf(release: &Release, body: Option<Value>) -> Result<Value, String> {
    let Some(Value::Object(fields)) = body else {
        return Err("invalid character in request body".to_owned());
    };
    let known = release.schema("PathConf").map(|s| &s.properties);
    if let Some(unknown) = fields
        .keys()
        .find(|k| known.is_none_or(|known| !known.contains_key(*k)))
    {
        return Err(format!("json: unknown field \"{unknown}\""));
    }
    Ok(Value::Object(fields))
}

/// The runtime path object, with exactly the release's `Path` properties.
fn path_object(inner: &Inner, name: &str) -> Value {
    let has_stream = inner.streams.lock().unwrap().contains(name);
    let mut path = sample(inner.release, "Path");
    let source = if has_stream {
        json!({ "type": "rtspSource", "id": "" })
    } else {
        Value::Null
    };
    let since = if has_stream {
        json!("2026-01-01T00:00:00Z")
    } else {
        Value::Null
    };
    let bytes = if has_stream { 456 } else { 0 };
    for (key, value) in [
        ("name", json!(name)),
        ("confName", json!(name)),
        ("source", source),
        ("ready", json!(has_stream)),
        ("readyTime", since.clone()),
        ("available", json!(has_stream)),
        ("availableTime", since.clone()),
        ("online", json!(has_stream)),
        ("onlineTime", since),
        (
            "tracks",
            json!(if has_stream { vec!["H264"] } else { vec![] }),
        ),
        ("bytesReceived", json!(bytes)),
        ("bytesSent", json!(bytes)),
        ("inboundBytes", json!(bytes)),
        ("outboundBytes", json!(bytes)),
        ("readers", json!([])),
    ] {
        set(&mut path, key, value);
    }
    if has_stream {
        set(
            &mut path,
            "tracks2",
            json!([{ "codec": "H264", "codecProps": { "width": 640, "height": 480 } }]),
        );
    }
    path
}

/// Sets `key` only where the schema has it.
fn set(object: &mut Value, key: &str, value: Value) {
    if let Some(slot) = object.get_mut(key) {
        *slot = value;
    }
}

/// An object with every property of `schema`, each a neutral value of its type.
fn sample(release: &Release, schema: &str) -> Value {
    let Some(schema) = release.schemas.get(schema) else {
        return json!({});
    };
    let fields: Map<String, Value> = schema
        .properties
        .iter()
        .map(|(key, ty)| (key.clone(), neutral(release, ty)))
        .collect();
    Value::Object(fields)
}

fn neutral(release: &Release, ty: &str) -> Value {
    if ty.ends_with("|null") {
        return Value::Null;
    }
    match ty {
        "string" => json!(""),
        "boolean" => json!(false),
        "integer" | "number" => json!(0),
        "object" | "any" => json!({}),
        _ if ty.starts_with("array<") => json!([]),
        _ => match release.schema(ty) {
            Some(schema) if !schema.values.is_empty() => json!(schema.values[0]),
            Some(schema) if !schema.properties.is_empty() => json!({}),
            _ => json!(""),
        },
    }
}

fn reply(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

/// Success: the operation's 200 schema (`OK`), or an empty body where it has none.
fn ok(release: &Release, key: &str) -> Response {
    let schema = release.operations[key]
        .responses
        .get("200")
        .cloned()
        .flatten();
    match schema {
        Some(schema) => {
            // `writeOK`: `defs.APIOK{Status: "ok"}`.
            let mut body = sample(release, &schema);
            set(&mut body, "status", json!("ok"));
            reply(StatusCode::OK, body)
        }
        None => StatusCode::OK.into_response(),
    }
}

/// An error with the release's `Error` schema (`writeError`: `status` is `error` where the
/// schema has it).
fn error(release: &Release, status: StatusCode, message: &str) -> Response {
    let mut body = sample(release, "Error");
    set(&mut body, "status", json!("error"));
    body["error"] = json!(message);
    reply(status, body)
}

/// A missing path, with the status that release's handler gives.
fn missing_path(release: &Release, key: &str) -> Response {
    let status = release
        .source
        .missing_path_status
        .get(key)
        .and_then(|m| m.status)
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::NOT_FOUND);
    error(release, status, &release.source.path_not_found_message)
}
