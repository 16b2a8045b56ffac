//! Camera presence: the transitions of RTSP cameras and of cameras behind a MediaMTX that goes
//! down and comes back, the notifications they give (one per change), the start-up check, and
//! the presence check of the MediaMTX path through the real API client against the API stand-in
//! of the oldest and the newest supported release (no MediaMTX here).

use std::net::TcpListener;
use std::time::Duration;

use camera_service::backend::Backend;
use camera_service::camera::presence::{
    after_check, after_media_failure, check, check_at_start, MediaFailure, Memory, Observation,
};
use camera_service::camera::{CameraInfo, CameraRegistry, CameraStatus, Capabilities, Source};
use camera_service::config::{Config, MediamtxMode};
use camera_service::ffmpeg::FfmpegSettings;
use camera_service::mediamtx::PathState;
use camera_service::notify::Notifier;

use super::mediamtx_release::Release;
use super::mediamtx_standin::StandIn;

use CameraStatus::{Connected, Disconnected, Error};
use Observation::{Absent, BackendDown, Present};

const NO_OUTAGE: Memory = Memory { outage: false };
const OUTAGE: Memory = Memory { outage: true };

fn camera(id: &str, source: Source, status: CameraStatus) -> CameraInfo {
    CameraInfo {
        id: id.into(),
        name: id.into(),
        source,
        status,
        resolution: String::new(),
        fps: 0,
        capabilities: Capabilities::default(),
        hardware_key: None,
    }
}

fn ffmpeg() -> FfmpegSettings {
    FfmpegSettings {
        binary: "ffmpeg".into(),
        ffprobe_binary: "ffprobe".into(),
        rtsp_timeout: Duration::from_secs(2),
        testsrc_size: (320, 240),
        testsrc_fps: 10,
    }
}

/// `device STATUS` of every `camera_status_update` sent so far.
fn updates(
    rx: &mut tokio::sync::broadcast::Receiver<camera_service::notify::Notification>,
) -> Vec<String> {
    let mut seen = Vec::new();
    while let Ok(note) = rx.try_recv() {
        assert_eq!(note.method, "camera_status_update");
        seen.push(format!(
            "{} {}",
            note.params["device"].as_str().unwrap_or(""),
            note.params["status"].as_str().unwrap_or("")
        ));
    }
    seen
}

#[realtest::test]
fn rtsp_camera_follows_its_source() -> anyhow::Result<()> {
    // (status, seen) → status, for an RTSP camera outside any MediaMTX outage.
    let cases = [
        (Connected, Present, Connected),
        (Connected, Absent, Disconnected),
        (Disconnected, Present, Connected),
        (Disconnected, Absent, Disconnected),
        // An ERROR left by a failed snapshot stays while the source is there (a media
        // operation that succeeds clears it), but a source that is gone is DISCONNECTED.
        (Error, Present, Error),
        (Error, Absent, Disconnected),
    ];
    for (status, seen, expected) in cases {
        assert_eq!(
            after_check(status, NO_OUTAGE, seen, true, false),
            (expected, NO_OUTAGE),
            "{status:?} + {seen:?}"
        );
    }
    // While MediaMTX has just registered the path, a path without stream does not count.
    assert_eq!(
        after_check(Connected, NO_OUTAGE, Absent, true, true),
        (Connected, NO_OUTAGE)
    );
    // Other cameras are not judged by a path without stream outside an outage.
    assert_eq!(
        after_check(Connected, NO_OUTAGE, Absent, false, false),
        (Connected, NO_OUTAGE)
    );
    Ok(())
}

#[realtest::test]
fn mediamtx_outage_is_error_until_the_path_has_a_stream_again() -> anyhow::Result<()> {
    for source_presence in [true, false] {
        assert_eq!(
            after_check(Connected, NO_OUTAGE, BackendDown, source_presence, false),
            (Error, OUTAGE)
        );
        assert_eq!(
            after_check(Error, NO_OUTAGE, BackendDown, source_presence, false),
            (Error, OUTAGE)
        );
        assert_eq!(
            after_check(Error, OUTAGE, BackendDown, source_presence, false),
            (Error, OUTAGE)
        );
        // A camera whose source was already gone stays DISCONNECTED.
        assert_eq!(
            after_check(Disconnected, NO_OUTAGE, BackendDown, source_presence, false),
            (Disconnected, NO_OUTAGE)
        );
        // Back with a stream: CONNECTED, the outage is over.
        assert_eq!(
            after_check(Error, OUTAGE, Present, source_presence, false),
            (Connected, NO_OUTAGE)
        );
        // Back but no stream yet (paths just registered): no change.
        assert_eq!(
            after_check(Error, OUTAGE, Absent, source_presence, true),
            (Error, OUTAGE)
        );
    }
    // Settled and still no stream: an RTSP source is gone; a publisher (testsrc, V4L2) that does
    // not come up leaves the camera in ERROR.
    assert_eq!(
        after_check(Error, OUTAGE, Absent, true, false),
        (Disconnected, NO_OUTAGE)
    );
    assert_eq!(
        after_check(Error, OUTAGE, Absent, false, false),
        (Error, OUTAGE)
    );
    Ok(())
}

#[realtest::test]
fn failed_media_is_error_unless_the_source_is_gone() -> anyhow::Result<()> {
    let cases = [
        (Connected, MediaFailure::Failed, Error),
        (Error, MediaFailure::Failed, Error),
        (Disconnected, MediaFailure::Failed, Disconnected),
        (Connected, MediaFailure::SourceAbsent, Disconnected),
        (Error, MediaFailure::SourceAbsent, Disconnected),
        (Disconnected, MediaFailure::SourceAbsent, Disconnected),
    ];
    for (status, failure, expected) in cases {
        assert_eq!(
            after_media_failure(status, failure),
            expected,
            "{status:?} + {failure:?}"
        );
    }
    Ok(())
}

/// Feeds observations of camera0 (RTSP when `rtsp`) through the registry as the monitor does.
fn feed(registry: &CameraRegistry, memory: &mut Memory, rtsp: bool, steps: &[(Observation, bool)]) {
    for &(seen, settling) in steps {
        let before = *memory;
        registry.update_status("camera0", |status| {
            let (next, after) = after_check(status, before, seen, rtsp, settling);
            *memory = after;
            next
        });
    }
}

#[realtest::test]
fn one_notification_per_change_in_order() -> anyhow::Result<()> {
    // RTSP camera: steady, lost for three checks, back for two, then a MediaMTX outage during
    // which the source stays away.
    let notifier = Notifier::default();
    let mut rx = notifier.subscribe();
    let rtsp = Source::Rtsp("rtsp://127.0.0.1:1/x".into());
    let registry = CameraRegistry::new(vec![camera("camera0", rtsp, Connected)], notifier);
    let mut memory = Memory::default();
    feed(
        &registry,
        &mut memory,
        true,
        &[
            (Present, false),
            (Present, false),
            (Absent, false),
            (Absent, false),
            (Absent, false),
            (Present, false),
            (Present, false),
            (BackendDown, false),
            (BackendDown, false),
            (Absent, true),
            (Absent, true),
            (Absent, false),
            (Absent, false),
        ],
    );
    assert_eq!(
        updates(&mut rx),
        [
            "camera0 DISCONNECTED",
            "camera0 CONNECTED",
            "camera0 ERROR",
            "camera0 DISCONNECTED"
        ]
    );

    // testsrc camera behind MediaMTX: killed, restarted, publisher up a few checks later.
    let notifier = Notifier::default();
    let mut rx = notifier.subscribe();
    let registry = CameraRegistry::new(
        vec![camera("camera0", Source::TestPattern, Connected)],
        notifier,
    );
    let mut memory = Memory::default();
    feed(
        &registry,
        &mut memory,
        false,
        &[
            (BackendDown, false),
            (BackendDown, false),
            (Absent, true),
            (Absent, false),
            (Present, false),
            (Present, false),
        ],
    );
    assert_eq!(updates(&mut rx), ["camera0 ERROR", "camera0 CONNECTED"]);
    assert_eq!(memory, Memory::default());
    Ok(())
}

#[realtest::test]
fn mediamtx_path_bodies_of_every_version() -> anyhow::Result<()> {
    let cases = [
        // ≤ v1.15: a publisher is there.
        (
            r#"{"name":"camera0","confName":"camera0","source":{"type":"rtspSession","id":"u"},"ready":true,"readyTime":"2025-01-01T00:00:00Z","tracks":["H264"],"bytesReceived":1,"bytesSent":2,"readers":[]}"#,
            true,
        ),
        // ≤ v1.15: nothing publishes.
        (
            r#"{"name":"camera0","confName":"camera0","source":null,"ready":false,"readyTime":null,"tracks":[],"bytesReceived":0,"bytesSent":0,"readers":[]}"#,
            false,
        ),
        // v1.20: available (and the deprecated ready), tracks2, an RTSP pull source.
        (
            r#"{"name":"camera0","confName":"camera0","source":{"type":"rtspSource","id":""},"ready":true,"readyTime":"2026-01-01T00:00:00Z","available":true,"availableTime":"2026-01-01T00:00:00Z","online":true,"onlineTime":"2026-01-01T00:00:00Z","tracks":["H264"],"tracks2":[{"codec":"H264","codecProps":{"width":640,"height":480}}],"inboundBytes":1,"outboundBytes":2,"inboundFramesInError":0,"bytesReceived":1,"bytesSent":2,"readers":[]}"#,
            true,
        ),
        // v1.20: the pull source is not connected.
        (
            r#"{"name":"camera0","confName":"camera0","source":null,"ready":false,"readyTime":null,"available":false,"availableTime":null,"online":false,"onlineTime":null,"tracks":[],"tracks2":[],"readers":[]}"#,
            false,
        ),
        // Ready without tracks is not a stream a reader can use.
        (
            r#"{"name":"camera0","source":{"type":"rtspSource","id":""},"ready":true,"tracks":[],"readers":[]}"#,
            false,
        ),
    ];
    for (body, has_stream) in cases {
        let state: PathState = serde_json::from_str(body)?;
        assert_eq!(state.has_stream(), has_stream, "{body}");
    }
    Ok(())
}

#[realtest::test(timeout = "60s")]
async fn external_mediamtx_path_is_observed_and_registered_again() -> anyhow::Result<()> {
    for release in Release::range_ends() {
        let tag = &release.tag;
        let mut api = StandIn::start(release).await?;
        let mut config = Config::default();
        config.mediamtx.mode = MediamtxMode::External;
        config.mediamtx.api_url = api.url();
        config.mediamtx.api_timeout.0 = Duration::from_secs(5);
        let notifier = Notifier::default();
        let mut rx = notifier.subscribe();
        let source = Source::Rtsp("rtsp://10.0.0.5/stream".into());
        let registry = CameraRegistry::new(vec![camera("camera0", source, Disconnected)], notifier);
        let backend = Backend::start(&config, &registry, &ffmpeg()).await?;
        assert!(
            api.config("camera0").is_some(),
            "{tag}: registered at start"
        );
        // The source is pulled a moment after the path is registered.
        api.stream_after("camera0", Duration::from_millis(300));
        check_at_start(&registry, &backend, &ffmpeg(), Duration::from_secs(10)).await;
        assert_eq!(
            registry.get("camera0").map(|c| c.status),
            Some(Connected),
            "{tag}"
        );
        let camera0 = registry.get("camera0").expect("camera0");
        assert_eq!(check(&backend, &ffmpeg(), &camera0).await, Present, "{tag}");
        api.set_stream("camera0", false);
        assert_eq!(check(&backend, &ffmpeg(), &camera0).await, Absent, "{tag}");
        // MediaMTX restarted: the path is unknown (404), counts as absent, and is registered
        // again (added, before v1.8.2).
        api.forget_paths();
        let before = api.lines().len();
        assert_eq!(check(&backend, &ffmpeg(), &camera0).await, Absent, "{tag}");
        assert!(api.config("camera0").is_some(), "{tag}: registered again");
        let again: Vec<String> = api.lines().split_off(before);
        let expected: &[&str] = if release.source.replace_creates_missing_path == Some(true) {
            &[
                "GET /v3/paths/get/camera0",
                "POST /v3/config/paths/replace/camera0",
            ]
        } else {
            &[
                "GET /v3/paths/get/camera0",
                "POST /v3/config/paths/replace/camera0",
                "POST /v3/config/paths/add/camera0",
            ]
        };
        assert_eq!(again, expected, "{tag}");
        // MediaMTX does not answer any more.
        api.stop().await;
        assert_eq!(
            check(&backend, &ffmpeg(), &camera0).await,
            BackendDown,
            "{tag}"
        );
        assert_eq!(updates(&mut rx), ["camera0 CONNECTED"], "{tag}");
        backend.shutdown().await;
    }
    Ok(())
}

#[realtest::test(tags = ["needs-ffmpeg"], timeout = "30s")]
async fn ffprobe_finds_a_closed_rtsp_port_absent() -> anyhow::Result<()> {
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let rtsp = Source::Rtsp(format!("rtsp://127.0.0.1:{port}/none"));
    let notifier = Notifier::default();
    let mut rx = notifier.subscribe();
    let registry = CameraRegistry::new(
        vec![
            camera("camera0", rtsp.clone(), Disconnected),
            camera("camera1", Source::TestPattern, Connected),
        ],
        notifier,
    );
    let camera0 = registry.get("camera0").expect("camera0");
    assert_eq!(
        check(&Backend::DirectFfmpeg, &ffmpeg(), &camera0).await,
        Absent
    );
    check_at_start(
        &registry,
        &Backend::DirectFfmpeg,
        &ffmpeg(),
        Duration::from_secs(2),
    )
    .await;
    assert_eq!(
        registry.get("camera0").map(|c| c.status),
        Some(Disconnected)
    );
    assert!(updates(&mut rx).is_empty(), "no change, no notification");
    Ok(())
}
