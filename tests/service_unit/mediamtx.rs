//! The MediaMTX API client against the stand-in of the oldest and the newest supported release
//! (it answers as that release's openapi.yaml and source say: tests/data/mediamtx), the
//! supported range at start (managed: `--version`; external: `/v3/info` or what its global config
//! shows), camera path configs, and the managed config file.

use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use camera_service::backend::Backend;
use camera_service::camera::{CameraInfo, CameraRegistry, CameraStatus, Capabilities, Source};
use camera_service::config::{Config, MediamtxMode};
use camera_service::ffmpeg::FfmpegSettings;
use camera_service::mediamtx::{
    check_supported, check_version_output, path_config, render_config, supported_range,
    ManagedPorts, MediamtxClient, MediamtxError, Supervisor, SupervisorError, SupervisorSettings,
    Version, STOP_SIGNAL,
};
use camera_service::notify::Notifier;
use serde_json::json;

use super::mediamtx_release::Release;
use super::mediamtx_standin::StandIn;

const PULLED: &str = "rtsp://10.0.0.5/stream";

#[realtest::test(timeout = "60s")]
async fn register_read_list_delete_on_the_range_ends(
    ctx: &mut realtest::Ctx,
) -> anyhow::Result<()> {
    for release in Release::range_ends() {
        let api = StandIn::start(release).await?;
        let client = api.client();
        let config = json!({ "source": PULLED });
        client.register_path("camera0", &config).await?;
        client.register_path("camera0", &config).await?;
        assert_eq!(
            api.config("camera0"),
            Some(config.clone()),
            "{}",
            release.tag
        );
        let registers = api.lines();
        ctx.log(format_args!("{}: {registers:?}", release.tag));
        // Replace is an upsert since v1.8.2; before, a new path is 404 and is added.
        let expected: &[&str] = if release.source.replace_creates_missing_path == Some(true) {
            &[
                "POST /v3/config/paths/replace/camera0",
                "POST /v3/config/paths/replace/camera0",
            ]
        } else {
            &[
                "POST /v3/config/paths/replace/camera0",
                "POST /v3/config/paths/add/camera0",
                "POST /v3/config/paths/replace/camera0",
            ]
        };
        assert_eq!(registers, expected, "{}", release.tag);
        for request in api.seen() {
            assert_eq!(request.body, Some(config.clone()), "{}", release.tag);
        }

        let idle = client
            .path_state("camera0")
            .await?
            .expect("camera0 is configured");
        assert!(!idle.has_stream(), "{}: {idle:?}", release.tag);
        api.set_stream("camera0", true);
        let live = client
            .path_state("camera0")
            .await?
            .expect("camera0 is configured");
        assert!(live.has_stream(), "{}: {live:?}", release.tag);
        assert_eq!(
            (live.bytes_sent, live.tracks.clone(), live.readers.len()),
            (456, vec!["H264".to_owned()], 0),
            "{}",
            release.tag
        );
        assert_eq!(client.path_state("nope").await?, None, "{}", release.tag);

        // More than one page of 100.
        for i in 1..=100 {
            client.register_path(&format!("camera{i}"), &config).await?;
        }
        let all = client.list_paths().await?;
        assert_eq!(all.len(), 101, "{}", release.tag);
        assert!(all.iter().any(|p| p.name == "camera0" && p.has_stream()));
        client.check().await?;

        assert!(client.delete_path("camera1").await?, "{}", release.tag);
        assert!(!client.delete_path("camera1").await?, "{}", release.tag);
        assert_eq!(client.path_state("camera1").await?, None, "{}", release.tag);
        let lines = api.lines();
        for line in [
            "GET /v3/paths/list",
            "DELETE /v3/config/paths/delete/camera1",
            "GET /v3/paths/get/nope",
        ] {
            assert!(
                lines.iter().any(|l| l == line),
                "{}: no {line}",
                release.tag
            );
        }
    }
    Ok(())
}

#[realtest::test(timeout = "30s")]
async fn a_path_added_meanwhile_is_replaced() -> anyhow::Result<()> {
    // Before v1.8.2: replace says 404, someone else adds the path, add says "path already
    // exists": the path is replaced after all.
    let release = Release::range_ends()[0];
    assert_eq!(release.source.replace_creates_missing_path, Some(false));
    let api = StandIn::start(release).await?;
    api.add_behind_next_missing_replace("camera0", json!({ "source": "publisher" }));
    let config = json!({ "source": PULLED });
    api.client().register_path("camera0", &config).await?;
    assert_eq!(api.config("camera0"), Some(config));
    assert_eq!(
        api.lines(),
        [
            "POST /v3/config/paths/replace/camera0",
            "POST /v3/config/paths/add/camera0",
            "POST /v3/config/paths/replace/camera0",
        ]
    );
    Ok(())
}

#[realtest::test(timeout = "30s")]
async fn errors_carry_status_and_the_error_field() -> anyhow::Result<()> {
    for release in Release::range_ends() {
        let api = StandIn::start(release).await?;
        let client = api.client();
        match client
            .register_path("camera0", &json!({ "sourceOnDemandd": true }))
            .await
        {
            Err(MediamtxError::Status {
                status,
                message,
                method,
                url,
            }) => {
                assert_eq!((status, method), (400, "POST"), "{}", release.tag);
                assert_eq!(message, "json: unknown field \"sourceOnDemandd\"");
                assert!(url.contains("/v3/config/paths/"), "{url}");
            }
            other => panic!("{}: expected a status error, got {other:?}", release.tag),
        }
    }
    // A MediaMTX without the v3 API (v1.0): gin's text 404, for replace and for add.
    let api = StandIn::start(Release::get("v1.0.3")).await?;
    let error = api
        .client()
        .register_path("camera0", &json!({ "source": PULLED }))
        .await
        .expect_err("no v3 API");
    assert_eq!(error.status(), Some(404), "{error}");
    assert!(
        error
            .to_string()
            .ends_with("answered 404: 404 page not found"),
        "{error}"
    );
    Ok(())
}

#[realtest::test(timeout = "30s")]
async fn unreachable_api_is_a_request_error() -> anyhow::Result<()> {
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let client = MediamtxClient::new(&format!("http://127.0.0.1:{port}"), Duration::from_secs(5));
    let error = client.check().await.expect_err("nothing listens");
    assert!(matches!(error, MediamtxError::Request { .. }), "{error}");
    assert!(error.to_string().contains("/v3/paths/list"), "{error}");
    Ok(())
}

#[realtest::test]
fn camera_paths_publish_or_pull() -> anyhow::Result<()> {
    let ffmpeg = ffmpeg();
    let pulled = path_config(
        &Source::Rtsp("rtsp://10.0.0.5/s".into()),
        "camera1",
        8554,
        &ffmpeg,
    );
    assert_eq!(pulled, json!({ "source": "rtsp://10.0.0.5/s" }));
    let published = path_config(&Source::TestPattern, "camera0", 8554, &ffmpeg);
    assert_eq!(published["source"], "publisher");
    assert_eq!(published["runOnInitRestart"], true);
    let command = published["runOnInit"]
        .as_str()
        .expect("runOnInit is a string");
    assert!(command.starts_with("ffmpeg "), "{command}");
    assert!(
        command.contains("-f lavfi -i testsrc2=size=640x480:rate=30"),
        "{command}"
    );
    assert!(command.contains("-g 30"), "one-second GOP: {command}");
    assert!(
        command.ends_with("-f rtsp -rtsp_transport tcp rtsp://127.0.0.1:8554/camera0"),
        "{command}"
    );
    assert!(
        published.get("sourceOnDemand").is_none(),
        "sourceOnDemand is invalid with a publisher"
    );
    Ok(())
}

#[realtest::test]
fn versions_and_the_supported_range() -> anyhow::Result<()> {
    assert_eq!(Version::parse("v1.13.1\n"), Some(Version::new(1, 13, 1)));
    assert_eq!(
        Version::parse("v1.20.1-3-gabcdef12-dirty"),
        Some(Version::new(1, 20, 1))
    );
    assert_eq!(Version::parse("1.20.1"), None);
    assert_eq!(Version::parse("v1.20"), None);
    assert_eq!(Version::parse("v1.2.3.4"), None);
    assert_eq!(supported_range(), "v1.5.0 … v1.20.x");
    for ok in ["v1.5.0", "v1.8.1", "v1.15.2", "v1.20.0", "v1.20.9"] {
        check_version_output(ok).map_err(anyhow::Error::msg)?;
    }
    for (refused, why) in [
        ("v1.4.2", "older than v1.5.0"),
        ("v1.0.0", "older than v1.5.0"),
        ("v1.21.0", "newer than v1.20.x"),
        ("v2.0.0", "newer than v1.20.x"),
        ("v0.0.0", "without version information"),
    ] {
        let error = check_supported(Version::parse(refused).unwrap()).expect_err(refused);
        let text = error.to_string();
        assert!(
            text.starts_with(&format!("MediaMTX {refused} is not supported")),
            "{text}"
        );
        assert!(
            text.contains("v1.5.0 … v1.20.x") && text.contains(why),
            "{text}"
        );
    }
    let garbage = check_version_output("mediamtx 1.2\n").expect_err("no vX.Y.Z");
    assert!(garbage.to_string().contains("`mediamtx 1.2`"), "{garbage}");
    Ok(())
}

fn camera0() -> CameraInfo {
    CameraInfo {
        id: "camera0".into(),
        name: "camera0".into(),
        source: Source::Rtsp(PULLED.into()),
        status: CameraStatus::Disconnected,
        resolution: String::new(),
        fps: 0,
        capabilities: Capabilities::default(),
        hardware_key: None,
    }
}

async fn start_external(api: &StandIn) -> anyhow::Result<Backend> {
    let mut config = Config::default();
    config.mediamtx.mode = MediamtxMode::External;
    config.mediamtx.api_url = api.url();
    config.mediamtx.api_timeout.0 = Duration::from_secs(5);
    let registry = CameraRegistry::new(vec![camera0()], Notifier::default());
    Ok(Backend::start(&config, &registry, &ffmpeg()).await?)
}

#[realtest::test(timeout = "60s")]
async fn external_mediamtx_outside_the_range_is_refused_at_start() -> anyhow::Result<()> {
    // (release, version in /v3/info, why it is refused)
    let refused = [
        (
            "v1.0.3",
            "v1.0.3",
            "MediaMTX older than v1.2.0 is not supported",
        ),
        (
            "v1.4.2",
            "v1.4.2",
            "MediaMTX older than v1.5.0 is not supported",
        ),
        ("v1.20.1", "v1.21.0", "MediaMTX v1.21.0 is not supported"),
    ];
    for (tag, version, why) in refused {
        let api = StandIn::start_as(Release::get(tag), version).await?;
        let error = start_external(&api).await.expect_err(tag).to_string();
        assert!(
            error.starts_with(&format!("external MediaMTX at {}: {why}", api.url())),
            "{error}"
        );
        assert!(error.contains("v1.5.0 … v1.20.x"), "{error}");
        assert!(
            !api.lines().iter().any(|l| l.contains("/config/paths/")),
            "{tag}: nothing registered on a refused MediaMTX: {:?}",
            api.lines()
        );
    }
    // With /v3/info (v1.15.2+) its version; without (v1.13), `playback` in its global config.
    for (tag, probes) in [
        ("v1.20.1", &["GET /v3/info"][..]),
        (
            "v1.13.1",
            &["GET /v3/info", "GET /v3/config/global/get"][..],
        ),
        ("v1.5.1", &["GET /v3/info", "GET /v3/config/global/get"][..]),
    ] {
        let api = StandIn::start(Release::get(tag)).await?;
        let backend = start_external(&api).await?;
        let lines = api.lines();
        assert_eq!(&lines[..probes.len()], probes, "{tag}");
        assert!(api.config("camera0").is_some(), "{tag}: camera0 registered");
        backend.shutdown().await;
    }
    Ok(())
}

/// A stand-in `mediamtx` binary for the supervisor: `--version` prints the file `version`
/// beside it (and counts the question in `asked`); run with a config path it records its pid in
/// `started` and sleeps. It serves nothing: the API it is checked against is a [`StandIn`].
fn version_script(dir: &Path, version: &str) -> anyhow::Result<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let script = dir.join("mediamtx");
    std::fs::write(
        &script,
        "#!/bin/sh\n\
         here=$(dirname \"$0\")\n\
         if [ \"$1\" = --version ]; then echo x >> \"$here/asked\"; cat \"$here/version\"; exit 0; fi\n\
         echo $$ >> \"$here/started\"\n\
         exec sleep 600\n",
    )?;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))?;
    std::fs::write(dir.join("version"), format!("{version}\n"))?;
    Ok(script)
}

fn lines_of(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn supervisor_settings(
    dir: &Path,
    binary: std::path::PathBuf,
    client: MediamtxClient,
) -> SupervisorSettings {
    SupervisorSettings {
        binary,
        config_path: dir.join("mediamtx.yml"),
        client,
        startup_timeout: Duration::from_secs(10),
        stop_grace: Duration::from_secs(2),
        max_backoff: Duration::from_secs(2),
    }
}

fn render() -> camera_service::mediamtx::RenderConfig {
    Box::new(|version| render_config(version, Ipv4Addr::LOCALHOST.into(), PORTS))
}

#[realtest::test(timeout = "30s")]
async fn managed_mediamtx_outside_the_range_is_not_started(
    ctx: &mut realtest::Ctx,
) -> anyhow::Result<()> {
    let dir = ctx.temp_dir()?;
    let binary = version_script(&dir, "v1.4.2")?;
    let client = MediamtxClient::new("http://127.0.0.1:9", Duration::from_secs(2));
    let paths = Arc::new(Mutex::new(Default::default()));
    let error = Supervisor::start(
        supervisor_settings(&dir, binary.clone(), client),
        render(),
        paths,
    )
    .await
    .expect_err("v1.4.2 is refused");
    assert!(
        matches!(error, SupervisorError::Unsupported { .. }),
        "{error}"
    );
    let text = error.to_string();
    assert!(
        text.starts_with(&format!(
            "{}: MediaMTX v1.4.2 is not supported",
            binary.display()
        )),
        "{text}"
    );
    assert!(text.contains("v1.5.0 … v1.20.x"), "{text}");
    assert!(!dir.join("mediamtx.yml").exists(), "no config is written");
    assert!(
        lines_of(&dir.join("started")).is_empty(),
        "it is never started"
    );
    Ok(())
}

/// Waits until `rx` shows `wanted`.
async fn wait_running(
    rx: &mut tokio::sync::watch::Receiver<bool>,
    wanted: bool,
) -> anyhow::Result<()> {
    tokio::time::timeout(Duration::from_secs(20), rx.wait_for(|v| *v == wanted)).await??;
    Ok(())
}

#[realtest::test(timeout = "60s")]
async fn a_replaced_binary_gets_its_own_config_or_is_not_restarted(
    ctx: &mut realtest::Ctx,
) -> anyhow::Result<()> {
    let dir = ctx.temp_dir()?;
    let binary = version_script(&dir, "v1.18.2")?;
    let api = StandIn::start(Release::get("v1.18.2")).await?;
    let paths = Arc::new(Mutex::new(
        [("camera0".to_owned(), json!({ "source": PULLED }))]
            .into_iter()
            .collect(),
    ));
    let supervisor = Supervisor::start(
        supervisor_settings(&dir, binary, api.client()),
        render(),
        Arc::clone(&paths),
    )
    .await?;
    let config = dir.join("mediamtx.yml");
    assert!(
        !std::fs::read_to_string(&config)?.contains("moq"),
        "v1.18 has no moq key"
    );
    assert!(api.config("camera0").is_some());
    let mut running = supervisor.running();

    // Upgraded to v1.20.1, then the process exits: restarted with a config for v1.20.1.
    std::fs::write(dir.join("version"), "v1.20.1\n")?;
    api.forget_paths();
    kill_started(&dir, 1).await?;
    wait_running(&mut running, false).await?;
    wait_running(&mut running, true).await?;
    assert!(std::fs::read_to_string(&config)?
        .lines()
        .any(|l| l == "moq: no"));
    assert!(api.config("camera0").is_some(), "registered again");

    // Downgraded to v1.4.2, then it exits: not started (no crash loop of a MediaMTX that would
    // refuse its config), asked again after each delay; `running` stays false.
    std::fs::write(dir.join("version"), "v1.4.2\n")?;
    let asked = lines_of(&dir.join("asked")).len();
    kill_started(&dir, 2).await?;
    wait_running(&mut running, false).await?;
    wait_lines(&dir.join("asked"), asked + 2).await?;
    // A start after the first refusal would have set `running` before the second question.
    assert!(!*running.borrow(), "v1.4.2 was started");
    assert_eq!(
        lines_of(&dir.join("started")).len(),
        2,
        "v1.4.2 is never started"
    );

    // Back to a supported release: it recovers by itself.
    std::fs::write(dir.join("version"), "v1.20.1\n")?;
    wait_running(&mut running, true).await?;
    wait_lines(&dir.join("started"), 3).await?;
    supervisor.shutdown().await;
    Ok(())
}

/// A managed MediaMTX stopped with [`STOP_SIGNAL`] (to its process group) leaves none of its
/// `runOnInit` publishers running, in any supported release (its source, tests/data/mediamtx):
/// the signal is one MediaMTX shuts down on gracefully, stopping them, or they are in its group
/// and get the signal too. SIGTERM fails this for v1.6–v1.13.
#[realtest::test]
fn the_stop_signal_leaves_no_publisher_in_any_supported_release() -> anyhow::Result<()> {
    let signal = STOP_SIGNAL.as_str();
    let left: Vec<&str> = Release::supported()
        .into_iter()
        .filter(|r| {
            r.source.commands_in_own_process_group
                && !r.source.graceful_signals.iter().any(|s| s == signal)
        })
        .map(|r| r.tag.as_str())
        .collect();
    anyhow::ensure!(
        left.is_empty(),
        "{signal} kills MediaMTX {left:?} at once, and its publishers, in process groups of \
         their own, keep running"
    );
    Ok(())
}

/// A managed MediaMTX is stopped with SIGINT, which every supported release shuts down on
/// gracefully (stopping its `runOnInit` publishers); SIGTERM is graceful only since v1.14.0. The
/// stand-in behaves like v1.13: SIGINT is recorded and ends it with 0, SIGTERM kills it.
#[realtest::test(timeout = "30s")]
async fn shutdown_interrupts_mediamtx(ctx: &mut realtest::Ctx) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = ctx.temp_dir()?;
    let binary = dir.join("mediamtx");
    std::fs::write(
        &binary,
        "#!/bin/sh\n\
         here=$(dirname \"$0\")\n\
         if [ \"$1\" = --version ]; then echo v1.13.1; exit 0; fi\n\
         trap 'echo INT >> \"$here/signals\"; exit 0' INT\n\
         echo $$ >> \"$here/started\"\n\
         while :; do sleep 0.05; done\n",
    )?;
    std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o755))?;
    let api = StandIn::start(Release::get("v1.13.1")).await?;
    let supervisor = Supervisor::start(
        supervisor_settings(&dir, binary, api.client()),
        render(),
        Arc::new(Mutex::new(Default::default())),
    )
    .await?;
    // The trap is set once the pid is written.
    wait_lines(&dir.join("started"), 1).await?;
    supervisor.shutdown().await;
    assert_eq!(lines_of(&dir.join("signals")), ["INT"]);
    Ok(())
}

/// Waits until the file has `count` lines (a spawned script may not have run yet).
async fn wait_lines(path: &Path, count: usize) -> anyhow::Result<Vec<String>> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let lines = lines_of(path);
        if lines.len() >= count {
            return Ok(lines);
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "{} never had {count} lines: {lines:?}",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// SIGTERM to the `count`-th started script, once it runs.
async fn kill_started(dir: &Path, count: usize) -> anyhow::Result<()> {
    let started = wait_lines(&dir.join("started"), count).await?;
    let pid: i32 = started[count - 1].parse().context("a pid")?;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGTERM,
    )?;
    Ok(())
}

/// Listener ports of the managed configs rendered here.
pub const PORTS: ManagedPorts = ManagedPorts {
    api: 9997,
    rtsp: 8554,
    hls: 8888,
    webrtc: 8889,
    webrtc_udp: 8189,
};

/// FFmpeg settings of the camera path configs made here.
pub fn ffmpeg() -> FfmpegSettings {
    FfmpegSettings {
        binary: "ffmpeg".into(),
        ffprobe_binary: "ffprobe".into(),
        rtsp_timeout: Duration::from_secs(5),
        testsrc_size: (640, 480),
        testsrc_fps: 30,
    }
}

#[realtest::test]
fn managed_config_matches_the_version() -> anyhow::Result<()> {
    let host = "127.0.0.1".parse()?;
    let v1_13 = render_config(Version::new(1, 13, 1), host, PORTS);
    for line in [
        "api: yes",
        "apiAddress: 127.0.0.1:9997",
        "playback: no",
        "rtspTransports: [tcp]",
        "rtspAddress: 127.0.0.1:8554",
        "hlsAddress: 127.0.0.1:8888",
        "rtmp: no",
        "webrtcLocalUDPAddress: 127.0.0.1:8189",
        "paths: {}",
    ] {
        assert!(
            v1_13.lines().any(|l| l == line),
            "missing `{line}` in\n{v1_13}"
        );
    }
    assert!(
        !v1_13.contains("moq"),
        "unknown keys are fatal before v1.19"
    );
    assert!(render_config(Version::new(1, 20, 1), host, PORTS)
        .lines()
        .any(|l| l == "moq: no"));
    let v1_9 = render_config(Version::new(1, 9, 3), host, PORTS);
    assert!(v1_9.lines().any(|l| l == "protocols: [tcp]"), "{v1_9}");
    let v6 = render_config(Version::new(1, 13, 1), "::1".parse()?, PORTS);
    assert!(v6.lines().any(|l| l == "rtspAddress: [::1]:8554"), "{v6}");
    Ok(())
}
