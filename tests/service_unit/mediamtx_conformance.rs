//! camera-service against MediaMTX's own files, release by release (the latest patch of every
//! minor from v1.0, extracted into tests/data/mediamtx; no MediaMTX needed). For a release in
//! the supported range: the managed config's keys (top level and `pathDefaults`) are keys of its
//! `mediamtx.yml`; every API call the client makes is an operation of its `openapi.yaml`, with
//! only that operation's query parameters; every field sent is a property of the request schema
//! and every field read a property of the reply schema; and the calls do their job against the
//! stand-in answering as the release's openapi and source say (a new path, a missing path). A
//! release outside the range is refused by both start-up checks (managed: `--version`;
//! external: what its API tells) and breaks at least one of these rules — else the range would
//! be narrower than it has to be.

use std::collections::BTreeSet;

use camera_service::camera::Source;
use camera_service::mediamtx::{
    check_reported, check_supported, path_config, render_config, ErrorReply, GlobalFeatures,
    InstanceInfo, MediamtxError, PathList, PathState, Version, NEWEST_SUPPORTED_MINOR,
    OLDEST_SUPPORTED,
};
use serde_aux::prelude::serde_introspect;
use yaml_rust2::{Yaml, YamlLoader};

use super::mediamtx::{ffmpeg, PORTS};
use super::mediamtx_release::Release;
use super::mediamtx_standin::StandIn;

/// The fields the client reads from each reply (the structs it deserializes).
fn reply_fields(operation: &str) -> Option<&'static [&'static str]> {
    Some(match operation {
        "GET /v3/paths/get/{name}" => serde_introspect::<PathState>(),
        "GET /v3/paths/list" => serde_introspect::<PathList>(),
        "GET /v3/info" => serde_introspect::<InstanceInfo>(),
        "GET /v3/config/global/get" => serde_introspect::<GlobalFeatures>(),
        _ => return None,
    })
}

/// Calls the client makes to learn whether the route exists (the answer where it does not is
/// gin's 404): `/v3/info` exists since v1.15.2.
const PROBES: [&str; 1] = ["GET /v3/info"];

/// Fields the client reads only where a release has them: (schema, field, first release).
const READ_WHERE_PRESENT: [(&str, &str, Version); 2] = [
    // `available` joined `ready` in v1.16.0.
    ("Path", "available", Version::new(1, 16, 0)),
    // Its presence tells v1.5.0+ from older releases that have no /v3/info.
    ("GlobalConf", "playback", Version::new(1, 5, 0)),
];

/// What one release makes of camera-service.
struct Findings {
    tag: String,
    /// Why a managed MediaMTX of this version is refused (`None`: accepted).
    managed_refusal: Option<String>,
    /// Why an external one is refused.
    external_refusal: Option<String>,
    /// Every rule broken.
    violations: Vec<String>,
}

fn config_violations(release: &Release) -> Vec<String> {
    let text = render_config(release.version(), "127.0.0.1".parse().unwrap(), PORTS);
    let document = match YamlLoader::load_from_str(&text) {
        Ok(mut docs) if docs.len() == 1 => docs.remove(0),
        other => {
            return vec![format!(
                "the managed config is not one YAML document: {other:?}"
            )]
        }
    };
    let keys = |yaml: &Yaml| -> Vec<String> {
        yaml.as_hash()
            .map(|h| {
                h.keys()
                    .filter_map(|k| k.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut violations: Vec<String> = keys(&document)
        .into_iter()
        .filter(|key| !release.config.top_level.contains(key))
        .map(|key| format!("config key `{key}` is not in its mediamtx.yml"))
        .collect();
    let written = keys(&document["pathDefaults"]);
    match &release.config.path_defaults {
        Some(known) => violations.extend(
            written
                .into_iter()
                .filter(|key| !known.contains(key))
                .map(|key| format!("config key `pathDefaults.{key}` is not in its mediamtx.yml")),
        ),
        None if !written.is_empty() => {
            violations.push("its mediamtx.yml has no `pathDefaults` section".to_owned());
        }
        None => {}
    }
    violations
}

/// Runs every client call against the stand-in of `release`; returns the external start-up
/// check's refusal and what went wrong.
async fn api_findings(release: &'static Release) -> anyhow::Result<(Option<String>, Vec<String>)> {
    let api = StandIn::start(release).await?;
    let client = api.client();
    let base = api.url();
    let mut violations: Vec<String> = Vec::new();
    // One line per kind of failure, without the stand-in's address.
    let mut expect = |what: &str, ok: bool, detail: String| {
        let line = generic(&format!("{what}: {}", detail.replace(&base, "")));
        if !ok && !violations.contains(&line) {
            violations.push(line);
        }
    };
    let external_refusal = match client.reported_version().await {
        Ok(reported) => check_reported(&reported)
            .err()
            .map(|e| format!("{}: {}", e.found, e.why)),
        Err(e) => Some(format!("its API did not tell its version: {e}")),
    };
    let ffmpeg = ffmpeg();
    let cameras = [
        ("camera0", Source::Rtsp("rtsp://10.0.0.5/stream".into())),
        ("camera1", Source::TestPattern),
        ("camera2", Source::V4l2("/dev/video0".into())),
    ];
    for round in ["a new", "an existing"] {
        for (name, source) in &cameras {
            let config = path_config(source, name, PORTS.rtsp, &ffmpeg);
            let result = client.register_path(name, &config).await;
            expect(
                &format!("registering {round} path"),
                result.is_ok(),
                shown(&result),
            );
        }
    }
    let idle = client.path_state("camera0").await;
    expect(
        "a path without stream",
        matches!(&idle, Ok(Some(state)) if !state.has_stream()),
        shown(&idle),
    );
    api.set_stream("camera0", true);
    let live = client.path_state("camera0").await;
    expect(
        "a path with a stream",
        matches!(&live, Ok(Some(state)) if state.has_stream() && state.bytes_sent > 0),
        shown(&live),
    );
    let missing = client.path_state("gone").await;
    expect(
        "the state of a missing path",
        matches!(missing, Ok(None)),
        shown(&missing),
    );
    let listed = client.list_paths().await;
    expect(
        "the path list",
        matches!(&listed, Ok(paths) if paths.len() == 3),
        shown(&listed),
    );
    let deleted = client.delete_path("camera2").await;
    expect(
        "deleting a path",
        matches!(deleted, Ok(true)),
        shown(&deleted),
    );
    let deleted = client.delete_path("camera2").await;
    expect(
        "deleting a missing path",
        matches!(deleted, Ok(false)),
        shown(&deleted),
    );
    let checked = client.check().await;
    expect("the readiness check", checked.is_ok(), shown(&checked));
    violations.extend(contract_violations(release, &api));
    Ok((external_refusal, violations))
}

/// The path names of the scenario shown as `{name}`, so that one failure is one line.
fn generic(line: &str) -> String {
    ["camera0", "camera1", "camera2", "gone"]
        .iter()
        .fold(line.to_owned(), |line, name| {
            line.replace(&format!("/{name}"), "/{name}")
        })
}

/// An outcome as a table cell: the error's message, or what came back.
fn shown<T: std::fmt::Debug>(result: &Result<T, MediamtxError>) -> String {
    match result {
        Ok(value) => format!("got {value:?}"),
        Err(e) => e.to_string(),
    }
}

/// Every request the stand-in saw, against the release's openapi.yaml.
fn contract_violations(release: &Release, api: &StandIn) -> Vec<String> {
    let mut violations = BTreeSet::new();
    let mut used = BTreeSet::new();
    for request in api.seen() {
        let Some((key, operation)) = release.operation(&request.method, &request.path) else {
            if !PROBES.contains(&request.line().as_str()) {
                violations.insert(generic(&format!(
                    "{} is not in its openapi.yaml",
                    request.line()
                )));
            }
            continue;
        };
        used.insert(key.to_owned());
        for name in &request.query {
            if operation.parameters.get(name).map(String::as_str) != Some("query") {
                violations.insert(format!(
                    "{key}: query parameter `{name}` is not in its openapi.yaml"
                ));
            }
        }
        if let Some(body) = request.body.as_ref().and_then(|b| b.as_object()) {
            let schema = operation.request.as_deref().and_then(|t| release.schema(t));
            for field in body.keys() {
                if !schema.is_some_and(|s| s.properties.contains_key(field)) {
                    violations.insert(format!(
                        "{key}: request field `{field}` is not in schema {:?}",
                        operation.request
                    ));
                }
            }
        }
    }
    for key in &used {
        let operation = &release.operations[key];
        for (status, body) in &operation.responses {
            let Some(schema_name) = body else { continue };
            let schema = release.schema(schema_name);
            let fields: &[&str] = if status.starts_with('2') {
                match reply_fields(key) {
                    Some(fields) => fields,
                    None => continue,
                }
            } else {
                serde_introspect::<ErrorReply>()
            };
            for field in fields {
                violations.extend(read_violation(release, key, schema_name, schema, field));
            }
        }
        // The items of a list are runtime paths.
        if key == "GET /v3/paths/list" {
            for field in serde_introspect::<PathState>() {
                violations.extend(read_violation(
                    release,
                    key,
                    "Path",
                    release.schemas.get("Path"),
                    field,
                ));
            }
        }
    }
    violations.into_iter().collect()
}

fn read_violation(
    release: &Release,
    key: &str,
    schema_name: &str,
    schema: Option<&super::mediamtx_release::Schema>,
    field: &str,
) -> Option<String> {
    if schema.is_some_and(|s| s.properties.contains_key(field)) {
        return None;
    }
    let schema_name = schema_name.trim_end_matches("|null");
    let optional = READ_WHERE_PRESENT
        .iter()
        .find(|(s, f, _)| *s == schema_name && *f == field);
    match optional {
        Some((_, _, since)) if release.version() < *since => None,
        _ => Some(format!(
            "{key}: reply field `{field}` is not in schema {schema_name}"
        )),
    }
}

async fn findings(release: &'static Release) -> anyhow::Result<Findings> {
    let managed_refusal = check_supported(release.version())
        .err()
        .map(|e| format!("{}: {}", e.found, e.why));
    let mut violations = config_violations(release);
    let (external_refusal, api) = api_findings(release).await?;
    violations.extend(api);
    Ok(Findings {
        tag: release.tag.clone(),
        managed_refusal,
        external_refusal,
        violations,
    })
}

#[realtest::test(timeout = "120s")]
async fn mediamtx_releases_conform_or_are_refused(ctx: &mut realtest::Ctx) -> anyhow::Result<()> {
    let releases = Release::all();
    let mut table = vec![
        "| release | commit | managed (`--version`) | external (API) | rules broken |".to_owned(),
        "|---|---|---|---|---|".to_owned(),
    ];
    let mut failures = Vec::new();
    for release in releases {
        let found = findings(release).await?;
        let verdict = |refusal: &Option<String>| match refusal {
            None => "accepted".to_owned(),
            Some(why) => format!("refused: {why}"),
        };
        table.push(format!(
            "| {} | {} | {} | {} | {} |",
            found.tag,
            &release.commit[..10],
            verdict(&found.managed_refusal),
            verdict(&found.external_refusal),
            if found.violations.is_empty() {
                "none".to_owned()
            } else {
                found.violations.join("; ")
            }
        ));
        let accepted = found.managed_refusal.is_none();
        if accepted != found.external_refusal.is_none() {
            failures.push(format!(
                "{}: the managed and the external check disagree",
                found.tag
            ));
        }
        if accepted && !found.violations.is_empty() {
            failures.push(format!(
                "{} is accepted but breaks: {:?}",
                found.tag, found.violations
            ));
        }
        if !accepted && release.version() < OLDEST_SUPPORTED && found.violations.is_empty() {
            failures.push(format!(
                "{} conforms but is refused: the range could start lower",
                found.tag
            ));
        }
    }
    ctx.log(table.join("\n"));
    // The range ends at the newest release checked here, no later.
    let newest = releases.last().expect("extracted releases").version();
    if (newest.major, newest.minor) != NEWEST_SUPPORTED_MINOR {
        failures.push(format!(
            "the newest extracted release is {newest}, the range ends at v{}.{}.x",
            NEWEST_SUPPORTED_MINOR.0, NEWEST_SUPPORTED_MINOR.1
        ));
    }
    anyhow::ensure!(
        failures.is_empty(),
        "{}\n{}",
        failures.join("\n"),
        table.join("\n")
    );
    Ok(())
}
