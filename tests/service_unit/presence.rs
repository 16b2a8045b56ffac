//! Camera presence: the transitions of RTSP cameras and of cameras behind a MediaMTX that goes
//! down and comes back, the notifications they give (one per change), the start-up check, and
//! the presence check of the MediaMTX path through the real API client against a local HTTP
//! listener (no MediaMTX here: verbs, paths and bodies as in the facts doc §1.3/§1.6).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
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

/// A local HTTP listener answering each connection with the next of `replies` and recording
/// `METHOD target`; once the replies are used up it closes (connections are then refused).
fn api(replies: Vec<(u16, &'static str)>) -> anyhow::Result<(u16, Arc<Mutex<Vec<String>>>)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    std::thread::spawn(move || {
        for (status, body) in replies {
            let Ok((stream, _)) = listener.accept() else {
                return;
            };
            let mut reader = BufReader::new(stream);
            let mut request_line = String::new();
            let _ = reader.read_line(&mut request_line);
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() || line == "\r\n" || line.is_empty() {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut request_body = vec![0u8; length];
            let _ = reader.read_exact(&mut request_body);
            let mut parts = request_line.split_whitespace();
            record.lock().unwrap().push(format!(
                "{} {}",
                parts.next().unwrap_or_default(),
                parts.next().unwrap_or_default()
            ));
            let response = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = reader.into_inner().write_all(response.as_bytes());
        }
    });
    Ok((port, seen))
}

const READY: &str = r#"{"name":"camera0","source":{"type":"rtspSource","id":""},"ready":true,"tracks":["H264"],"readers":[]}"#;
const NOT_READY: &str =
    r#"{"name":"camera0","source":null,"ready":false,"tracks":[],"readers":[]}"#;

#[realtest::test(timeout = "30s")]
async fn external_mediamtx_path_is_observed_and_registered_again() -> anyhow::Result<()> {
    let (port, seen) = api(vec![
        (200, ""),                              // register at start (v1.16 style)
        (200, NOT_READY),                       // start-up check: not pulled yet
        (200, READY),                           // start-up check: stream
        (200, READY),                           // Present
        (200, NOT_READY),                       // Absent
        (404, r#"{"error":"path not found"}"#), // MediaMTX restarted: Absent …
        (200, r#"{"status":"ok"}"#),            // … and registered again (v1.17 style)
    ])?;
    let mut config = Config::default();
    config.mediamtx.mode = MediamtxMode::External;
    config.mediamtx.api_url = format!("http://127.0.0.1:{port}");
    config.mediamtx.api_timeout.0 = Duration::from_secs(5);
    let notifier = Notifier::default();
    let mut rx = notifier.subscribe();
    let source = Source::Rtsp("rtsp://10.0.0.5/stream".into());
    let registry = CameraRegistry::new(vec![camera("camera0", source, Disconnected)], notifier);
    let backend = Backend::start(&config, &registry, &ffmpeg()).await?;
    check_at_start(&registry, &backend, &ffmpeg(), Duration::from_secs(10)).await;
    assert_eq!(registry.get("camera0").map(|c| c.status), Some(Connected));
    let camera0 = registry.get("camera0").expect("camera0");
    assert_eq!(check(&backend, &ffmpeg(), &camera0).await, Present);
    assert_eq!(check(&backend, &ffmpeg(), &camera0).await, Absent);
    assert_eq!(check(&backend, &ffmpeg(), &camera0).await, Absent);
    // The listener is gone now: MediaMTX does not answer.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(check(&backend, &ffmpeg(), &camera0).await, BackendDown);
    assert_eq!(
        *seen.lock().unwrap(),
        [
            "POST /v3/config/paths/replace/camera0",
            "GET /v3/paths/get/camera0",
            "GET /v3/paths/get/camera0",
            "GET /v3/paths/get/camera0",
            "GET /v3/paths/get/camera0",
            "GET /v3/paths/get/camera0",
            "POST /v3/config/paths/replace/camera0",
        ]
    );
    assert_eq!(updates(&mut rx), ["camera0 CONNECTED"]);
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
