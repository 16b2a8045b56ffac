//! The MediaMTX fixture's config against MediaMTX's own files (tests/data/mediamtx), for every
//! release of the supported range, without a MediaMTX: an unknown key is fatal at start (facts
//! doc §1.4), so a key one release lacks would fail every `needs-mediamtx` test there. The live
//! start of the fixture is `scenarios::startup::real_startup_mediamtx_server_health`.

use anyhow::{ensure, Context};
use yaml_rust2::YamlLoader;

use crate::support::mediamtx::{render_config, MediamtxOptions};

#[path = "../service_unit/mediamtx_release.rs"]
#[allow(dead_code, reason = "only the config keys are read here")]
mod mediamtx_release;

use mediamtx_release::Release;

/// `RealMediaMTXServer`'s config for each supported release is one YAML document whose
/// top-level keys are all keys of that release's `mediamtx.yml`.
#[realtest::test]
fn mediamtx_fixture_config_has_only_keys_of_each_supported_release() -> anyhow::Result<()> {
    let supported = Release::supported();
    ensure!(
        supported.len() >= 2,
        "the supported range has extracted releases"
    );
    let paths = MediamtxOptions::default().paths_yaml;
    let mut problems = Vec::new();
    for release in &supported {
        let text = render_config(&release.tag, 9997, 8554, &paths);
        let document = YamlLoader::load_from_str(&text)
            .with_context(|| format!("{}: not YAML:\n{text}", release.tag))?;
        ensure!(document.len() == 1, "{}: {document:?}", release.tag);
        let keys = document[0]
            .as_hash()
            .with_context(|| format!("{}: not a mapping:\n{text}", release.tag))?
            .keys()
            .filter_map(|k| k.as_str().map(str::to_owned))
            .collect::<Vec<_>>();
        ensure!(keys.len() > 10, "{}: too few keys: {keys:?}", release.tag);
        problems.extend(
            keys.iter()
                .filter(|key| !release.config.top_level.contains(key))
                .map(|key| format!("{}: `{key}` is not a key of its mediamtx.yml", release.tag)),
        );
    }
    ensure!(problems.is_empty(), "{}", problems.join("\n"));
    Ok(())
}
