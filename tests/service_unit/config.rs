//! Configuration: defaults, the example file, file and environment overrides, refusals.

use std::path::{Path, PathBuf};

use camera_service::config::{Config, ConfigError, MediamtxMode};

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn refused(file: Option<&Path>, pairs: &[(&str, &str)]) -> (String, String, String) {
    match Config::load(file, env(pairs)) {
        Err(ConfigError::InvalidKey {
            key,
            origin,
            reason,
        }) => (key, origin, reason),
        Err(other) => panic!("expected InvalidKey, got {other}"),
        Ok(config) => panic!("expected a refusal, got {config:?}"),
    }
}

fn example_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("camera-service.toml")
}

#[realtest::test]
fn defaults_run_on_a_fresh_machine() -> anyhow::Result<()> {
    let config = Config::load(None, Vec::new())?;
    assert_eq!(config, Config::default());
    assert_eq!(config.server.host.to_string(), "127.0.0.1");
    assert_eq!(config.server.port, 8002);
    assert_eq!(config.server.max_message_bytes, 256 * 1024);
    assert_eq!(config.storage.data_dir, PathBuf::from("./camera-data"));
    assert_eq!(
        config.recordings_dir(),
        PathBuf::from("./camera-data/recordings")
    );
    assert_eq!(
        config.jwt_secret_path(),
        PathBuf::from("./camera-data/jwt-secret")
    );
    assert_eq!(config.cameras.sources, vec!["testsrc".to_owned()]);
    assert_eq!(config.mediamtx.mode, MediamtxMode::Auto);
    Ok(())
}

#[realtest::test]
fn example_file_documents_every_key_with_its_default() -> anyhow::Result<()> {
    let path = example_file();
    let config = Config::load(Some(&path), Vec::new())?;
    assert_eq!(config, Config::default(), "the example shows the defaults");
    let example: toml::Table = std::fs::read_to_string(&path)?.parse()?;
    let defaults = toml::Table::try_from(Config::default())?;
    for (section, keys) in &defaults {
        let keys = keys.as_table().expect("sections are tables");
        let documented = example
            .get(section)
            .and_then(toml::Value::as_table)
            .unwrap_or_else(|| panic!("section [{section}] missing from the example"));
        for key in keys.keys() {
            assert!(
                documented.contains_key(key),
                "{section}.{key} missing from the example"
            );
        }
    }
    Ok(())
}

#[realtest::test]
fn environment_overrides_every_type() -> anyhow::Result<()> {
    let config = Config::load(
        None,
        env(&[
            ("CAMERA_SERVICE_SERVER_PORT", "0"),
            ("CAMERA_SERVICE_SERVER_HOST", "0.0.0.0"),
            ("CAMERA_SERVICE_STORAGE_DATA_DIR", "/srv/cams"),
            ("CAMERA_SERVICE_CAMERAS_DISCOVER_V4L2", "false"),
            (
                "CAMERA_SERVICE_CAMERAS_SOURCES",
                "testsrc, rtsp://10.0.0.5/cam ,v4l2:/dev/video3",
            ),
            ("CAMERA_SERVICE_FFMPEG_STOP_GRACE", "250ms"),
            ("CAMERA_SERVICE_MEDIAMTX_MODE", "off"),
            ("UNRELATED_VARIABLE", "ignored"),
        ]),
    )?;
    assert_eq!(config.server.port, 0);
    assert_eq!(config.server.host.to_string(), "0.0.0.0");
    assert_eq!(config.storage.data_dir, PathBuf::from("/srv/cams"));
    assert!(!config.cameras.discover_v4l2);
    assert_eq!(
        config.cameras.sources,
        ["testsrc", "rtsp://10.0.0.5/cam", "v4l2:/dev/video3"]
    );
    assert_eq!(
        config.ffmpeg.stop_grace.0,
        std::time::Duration::from_millis(250)
    );
    assert_eq!(config.mediamtx.mode, MediamtxMode::Off);
    Ok(())
}

#[realtest::test]
fn environment_wins_over_the_file(ctx: &mut realtest::Ctx) -> anyhow::Result<()> {
    let dir = ctx.temp_dir()?;
    let file = dir.join("c.toml");
    std::fs::write(&file, "[server]\nport = 9000\nmax_connections = 7\n")?;
    let config = Config::load(Some(&file), env(&[("CAMERA_SERVICE_SERVER_PORT", "9001")]))?;
    assert_eq!(config.server.port, 9001);
    assert_eq!(config.server.max_connections, 7);
    Ok(())
}

#[realtest::test]
fn rtsp_check_interval_has_a_default_and_an_override() -> anyhow::Result<()> {
    let config = Config::load(None, Vec::new())?;
    assert_eq!(
        config.cameras.rtsp_check_interval.0,
        std::time::Duration::from_secs(5)
    );
    let config = Config::load(
        None,
        env(&[("CAMERA_SERVICE_CAMERAS_RTSP_CHECK_INTERVAL", "250ms")]),
    )?;
    assert_eq!(
        config.cameras.rtsp_check_interval.0,
        std::time::Duration::from_millis(250)
    );
    for value in ["0s", "1ms"] {
        let (key, origin, reason) = refused(
            None,
            &[("CAMERA_SERVICE_CAMERAS_RTSP_CHECK_INTERVAL", value)],
        );
        assert_eq!(key, "cameras.rtsp_check_interval");
        assert!(
            origin.contains("CAMERA_SERVICE_CAMERAS_RTSP_CHECK_INTERVAL"),
            "{origin}"
        );
        assert!(reason.contains("at least 10ms"), "{reason}");
    }
    Ok(())
}

#[realtest::test]
fn invalid_overrides_name_key_origin_and_reason() -> anyhow::Result<()> {
    let cases: [(&str, &str, &str, &str); 9] = [
        (
            "CAMERA_SERVICE_SERVER_PORT",
            "eighty",
            "server.port",
            "not an integer",
        ),
        ("CAMERA_SERVICE_SERVER_PORT", "70000", "server.port", "u16"),
        (
            "CAMERA_SERVICE_SERVER_HOST",
            "localhost:1",
            "server.host",
            "IP address",
        ),
        (
            "CAMERA_SERVICE_SERVER_PROT",
            "1",
            "server.prot",
            "unknown key",
        ),
        (
            "CAMERA_SERVICE_NETWORK_PORT",
            "1",
            "network_port",
            "unknown section",
        ),
        (
            "CAMERA_SERVICE_CAMERAS_DISCOVER_V4L2",
            "maybe",
            "cameras.discover_v4l2",
            "boolean",
        ),
        (
            "CAMERA_SERVICE_FFMPEG_STOP_GRACE",
            "soon",
            "ffmpeg.stop_grace",
            "not a duration",
        ),
        (
            "CAMERA_SERVICE_STORAGE_BLOCK_PERCENT",
            "101",
            "storage.block_percent",
            "percentage",
        ),
        (
            "CAMERA_SERVICE_CAMERAS_SOURCES",
            "testsrc,http://x",
            "cameras.sources",
            "not a camera source",
        ),
    ];
    for (var, value, key, reason) in cases {
        let (got_key, origin, got_reason) = refused(None, &[(var, value)]);
        assert_eq!(got_key, key, "{var}={value}");
        assert!(origin.contains(var), "{var}={value}: origin {origin}");
        assert!(
            got_reason.contains(reason),
            "{var}={value}: reason {got_reason:?} lacks {reason:?}"
        );
    }
    Ok(())
}

#[realtest::test]
fn storage_thresholds_must_be_ordered_and_non_zero() -> anyhow::Result<()> {
    let (key, _, reason) = refused(None, &[("CAMERA_SERVICE_STORAGE_BLOCK_PERCENT", "0")]);
    assert_eq!(key, "storage.block_percent");
    assert!(reason.contains("at least 1"), "{reason}");
    let (key, origin, reason) = refused(
        None,
        &[
            ("CAMERA_SERVICE_STORAGE_WARN_PERCENT", "95"),
            ("CAMERA_SERVICE_STORAGE_BLOCK_PERCENT", "90"),
        ],
    );
    assert_eq!(key, "storage.warn_percent");
    assert!(
        origin.contains("CAMERA_SERVICE_STORAGE_WARN_PERCENT"),
        "{origin}"
    );
    assert!(
        reason.contains("above storage.block_percent (90)"),
        "{reason}"
    );
    // Equal thresholds are fine: the warning and the block come together.
    let config = Config::load(
        None,
        env(&[
            ("CAMERA_SERVICE_STORAGE_WARN_PERCENT", "90"),
            ("CAMERA_SERVICE_STORAGE_BLOCK_PERCENT", "90"),
        ]),
    )?;
    assert_eq!(config.storage.warn_percent, 90);
    Ok(())
}

#[realtest::test]
fn invalid_files_name_the_key(ctx: &mut realtest::Ctx) -> anyhow::Result<()> {
    let dir = ctx.temp_dir()?;
    let cases = [
        ("[server]\nport = \"x\"\n", "server.port"),
        ("[server]\nmax_connections = 0\n", "server.max_connections"),
        ("[servr]\nport = 1\n", "servr"),
        ("[storage]\ndata_dri = \"/x\"\n", "storage.data_dri"),
        (
            "[cameras]\ntestsrc_size = \"640\"\n",
            "cameras.testsrc_size",
        ),
        ("[mediamtx]\nmode = \"external\"\n", "mediamtx.api_url"),
        ("[logging]\nlevel = \"[[[\"\n", "logging.level"),
    ];
    for (n, (text, key)) in cases.into_iter().enumerate() {
        let file = dir.join(format!("bad{n}.toml"));
        std::fs::write(&file, text)?;
        let (got_key, origin, reason) = refused(Some(&file), &[]);
        assert_eq!(got_key, key, "{text}: {reason}");
        assert!(
            origin.contains(&format!("bad{n}.toml")) || key == "mediamtx.api_url",
            "{text}: origin {origin}"
        );
    }
    let syntax = dir.join("syntax.toml");
    std::fs::write(&syntax, "[server\nport = 1")?;
    assert!(matches!(
        Config::load(Some(&syntax), Vec::new()),
        Err(ConfigError::Syntax { .. })
    ));
    let missing = dir.join("missing.toml");
    assert!(matches!(
        Config::load(Some(&missing), Vec::new()),
        Err(ConfigError::Read { .. })
    ));
    Ok(())
}
