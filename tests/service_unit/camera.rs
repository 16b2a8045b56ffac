//! Cameras: which V4L2 nodes count as cameras, stable ids across re-plugging, sources.

use std::path::PathBuf;

use camera_service::camera::discovery::is_capture_node;
use camera_service::camera::{CameraInfo, CameraRegistry, CameraStatus, Capabilities, Source};
use camera_service::notify::Notifier;
use v4l::capability::Flags;

fn discovered(path: &str, key: &str) -> CameraInfo {
    CameraInfo {
        id: String::new(),
        name: "USB camera".into(),
        source: Source::V4l2(PathBuf::from(path)),
        status: CameraStatus::Connected,
        resolution: "1280x720".into(),
        fps: 30,
        capabilities: Capabilities::default(),
        hardware_key: Some(key.into()),
    }
}

#[realtest::test]
fn only_capture_nodes_are_cameras() -> anyhow::Result<()> {
    assert!(is_capture_node(Flags::VIDEO_CAPTURE | Flags::STREAMING));
    assert!(is_capture_node(
        Flags::VIDEO_CAPTURE_MPLANE | Flags::STREAMING
    ));
    // v4l2loopback with exclusive_caps=0 advertises both directions: it can be read.
    assert!(is_capture_node(
        Flags::VIDEO_CAPTURE | Flags::VIDEO_OUTPUT | Flags::STREAMING
    ));
    assert!(
        !is_capture_node(Flags::VIDEO_OUTPUT | Flags::STREAMING),
        "output-only (idle exclusive loopback)"
    );
    assert!(
        !is_capture_node(Flags::META_CAPTURE | Flags::STREAMING),
        "UVC metadata node"
    );
    assert!(
        !is_capture_node(Flags::VIDEO_M2M | Flags::STREAMING),
        "codec"
    );
    assert!(
        !is_capture_node(Flags::VIDEO_M2M_MPLANE | Flags::VIDEO_CAPTURE_MPLANE),
        "codec"
    );
    Ok(())
}

#[realtest::test]
fn replugged_camera_keeps_its_id() -> anyhow::Result<()> {
    let notifier = Notifier::default();
    let mut updates = notifier.subscribe();
    let testsrc = CameraInfo {
        id: "camera0".into(),
        name: "Test pattern 0".into(),
        source: Source::TestPattern,
        status: CameraStatus::Connected,
        resolution: "640x480".into(),
        fps: 30,
        capabilities: Capabilities::default(),
        hardware_key: None,
    };
    let registry = CameraRegistry::new(vec![testsrc], notifier);
    assert_eq!(
        registry.upsert_discovered(discovered("/dev/video0", "by-id:usb-Cam_A")),
        "camera1"
    );
    assert_eq!(
        registry.upsert_discovered(discovered("/dev/video2", "by-id:usb-Cam_B")),
        "camera2"
    );
    registry.set_status("camera1", CameraStatus::Disconnected);
    registry.set_status("camera1", CameraStatus::Disconnected);
    // Plugged back in on another node: same camera, same id.
    assert_eq!(
        registry.upsert_discovered(discovered("/dev/video4", "by-id:usb-Cam_A")),
        "camera1"
    );
    let camera = registry.get("camera1").expect("camera1");
    assert_eq!(camera.status, CameraStatus::Connected);
    assert_eq!(camera.source, Source::V4l2(PathBuf::from("/dev/video4")));
    let mut seen = Vec::new();
    while let Ok(note) = updates.try_recv() {
        assert_eq!(note.method, "camera_status_update");
        assert!(
            !note.params.to_string().contains("/dev/"),
            "no device paths to clients: {}",
            note.params
        );
        seen.push(format!(
            "{} {}",
            note.params["device"].as_str().unwrap_or(""),
            note.params["status"].as_str().unwrap_or("")
        ));
    }
    // One update per change; the repeated DISCONNECTED is not a change.
    assert_eq!(
        seen,
        [
            "camera1 CONNECTED",
            "camera2 CONNECTED",
            "camera1 DISCONNECTED",
            "camera1 CONNECTED"
        ]
    );
    Ok(())
}

#[realtest::test]
fn sources_parse_and_print() -> anyhow::Result<()> {
    for text in [
        "testsrc",
        "rtsp://10.0.0.5:554/stream1",
        "rtsps://cam/x",
        "rtsp://x",
        "v4l2:/dev/video3",
    ] {
        let source: Source = text.parse()?;
        assert_eq!(source.to_string(), text);
    }
    assert!("v4l2:/dev/video3".parse::<Source>()?.is_exclusive());
    assert!(!"rtsp://cam/x".parse::<Source>()?.is_exclusive());
    for bad in [
        "",
        "http://cam/x",
        "rtsp://",
        "rtsps://",
        "v4l2:video0",
        "v4l2:/dev/../etc/passwd",
        "/dev/video0",
    ] {
        let error = bad.parse::<Source>().expect_err(bad);
        assert_eq!(
            error.to_string(),
            format!(
                "`{bad}` is not a camera source (expected `testsrc`, `rtsp://…` or \
                 `v4l2:/dev/videoN`)"
            )
        );
    }
    Ok(())
}
