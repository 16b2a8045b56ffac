//! MediaMTX's contract per release, as extracted from its own `mediamtx.yml`, `openapi.yaml` and
//! source at each release tag into tests/data/mediamtx (see the README there).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use camera_service::mediamtx::{check_supported, Version};
use serde::Deserialize;

const DATA_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/mediamtx");

/// One release's extracted contract.
#[derive(Debug, Deserialize)]
pub struct Release {
    /// The tag, e.g. `v1.20.1`.
    pub tag: String,
    /// The commit the tag points at.
    pub commit: String,
    /// Keys of its default `mediamtx.yml`.
    pub config: ConfigKeys,
    /// `"METHOD /path/{param}"` → the operation.
    pub operations: BTreeMap<String, Operation>,
    /// Schema name → schema.
    pub schemas: BTreeMap<String, Schema>,
    /// What its Go source says about missing paths.
    pub source: SourceFacts,
}

/// The keys a config file of that release may use.
#[derive(Debug, Deserialize)]
pub struct ConfigKeys {
    /// Top-level keys.
    pub top_level: Vec<String>,
    /// Keys of `pathDefaults`; `None` where the release has no such section.
    pub path_defaults: Option<Vec<String>>,
}

/// One API operation of `openapi.yaml`.
#[derive(Debug, Deserialize)]
pub struct Operation {
    /// Parameter name → where (`path`, `query`).
    pub parameters: BTreeMap<String, String>,
    /// The request body's schema type.
    pub request: Option<String>,
    /// Status code → the reply body's schema type (`None`: no body).
    pub responses: BTreeMap<String, Option<String>>,
}

/// One schema of `openapi.yaml`.
#[derive(Debug, Default, Deserialize)]
pub struct Schema {
    /// Property → type (`boolean`, `PathSource|null`, `array<string>`, …).
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    /// Values of an enum schema.
    #[serde(default, rename = "enum")]
    pub values: Vec<String>,
}

/// Facts from the Go source.
#[derive(Debug, Deserialize)]
pub struct SourceFacts {
    /// Whether replace creates a path that does not exist (`None`: no replace operation).
    pub replace_creates_missing_path: Option<bool>,
    /// The error text of a missing path.
    pub path_not_found_message: String,
    /// The error text of adding a path that exists.
    pub path_already_exists_message: Option<String>,
    /// Operation → the status its handler answers for a missing path.
    pub missing_path_status: BTreeMap<String, MissingPath>,
    /// The signals it shuts down gracefully on (`SIGINT`, `SIGTERM`); others kill it at once.
    pub graceful_signals: Vec<String>,
    /// Whether its external commands (`runOnInit`, …) run in process groups of their own.
    pub commands_in_own_process_group: bool,
}

/// How one handler answers for a missing path.
#[derive(Debug, Deserialize)]
pub struct MissingPath {
    /// The HTTP status.
    pub status: Option<u16>,
}

#[derive(Debug, Deserialize)]
struct IndexEntry {
    tag: String,
}

impl Release {
    /// Every extracted release, oldest first.
    pub fn all() -> &'static [Release] {
        static ALL: OnceLock<Vec<Release>> = OnceLock::new();
        ALL.get_or_init(|| {
            let index = std::fs::read_to_string(format!("{DATA_DIR}/releases.json"))
                .expect("tests/data/mediamtx/releases.json");
            let index: Vec<IndexEntry> = serde_json::from_str(&index).expect("releases.json");
            index
                .iter()
                .map(|entry| {
                    let path = format!("{DATA_DIR}/releases/{}.json", entry.tag);
                    let text = std::fs::read_to_string(&path).expect(&path);
                    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
                })
                .collect()
        })
    }

    /// The extracted release `tag`.
    pub fn get(tag: &str) -> &'static Release {
        Self::all()
            .iter()
            .find(|r| r.tag == tag)
            .unwrap_or_else(|| panic!("no extracted MediaMTX release {tag}"))
    }

    /// The extracted releases inside the supported range, oldest first.
    pub fn supported() -> Vec<&'static Release> {
        Self::all()
            .iter()
            .filter(|r| check_supported(r.version()).is_ok())
            .collect()
    }

    /// The oldest and the newest extracted release of the supported range.
    pub fn range_ends() -> [&'static Release; 2] {
        let supported = Self::supported();
        [supported[0], supported[supported.len() - 1]]
    }

    /// The release's version.
    pub fn version(&self) -> Version {
        Version::parse(&self.tag).expect("a release tag is vX.Y.Z")
    }

    /// The operation serving `method` on `path` (a concrete path: `{param}` matches one
    /// segment), with its `openapi.yaml` key.
    pub fn operation(&self, method: &str, path: &str) -> Option<(&str, &Operation)> {
        self.operations.iter().find_map(|(key, operation)| {
            let (op_method, template) = key.split_once(' ')?;
            (op_method == method && path_matches(template, path))
                .then_some((key.as_str(), operation))
        })
    }

    /// The schema named by a property or body type (`Path`, `Path|null`, `array<Path>`).
    pub fn schema(&self, type_name: &str) -> Option<&Schema> {
        let name = type_name.trim_end_matches("|null");
        let name = name
            .strip_prefix("array<")
            .and_then(|n| n.strip_suffix('>'))
            .unwrap_or(name);
        self.schemas.get(name)
    }
}

fn path_matches(template: &str, path: &str) -> bool {
    let (mut template, mut path) = (template.split('/'), path.split('/'));
    loop {
        match (template.next(), path.next()) {
            (None, None) => return true,
            (Some(t), Some(p)) if t.starts_with('{') && t.ends_with('}') && !p.is_empty() => {}
            (Some(t), Some(p)) if t == p => {}
            _ => return false,
        }
    }
}
