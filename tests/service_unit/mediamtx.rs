//! The MediaMTX API client against a local HTTP listener that records each request (verb, path,
//! body) and answers like MediaMTX does; path configs and the managed config file.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use camera_service::camera::Source;
use camera_service::ffmpeg::FfmpegSettings;
use camera_service::mediamtx::{
    parse_version, path_config, render_config, ManagedPorts, MediamtxClient, MediamtxError,
};
use serde_json::{json, Value};

/// One recorded request.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    method: String,
    target: String,
    body: String,
}

/// An HTTP listener answering `replies` (status, body) in order, one per connection.
struct FakeApi {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeApi {
    fn start(replies: Vec<(u16, &'static str)>) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&seen);
        let thread = std::thread::spawn(move || {
            for (status, body) in replies {
                let Ok((stream, _)) = listener.accept() else {
                    return;
                };
                let mut reader = BufReader::new(stream);
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).is_err() {
                    return;
                }
                let mut length = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).is_err() || line == "\r\n" || line.is_empty() {
                        break;
                    }
                    if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = value.trim().parse().unwrap_or(0);
                    }
                }
                let mut body_bytes = vec![0u8; length];
                let _ = reader.read_exact(&mut body_bytes);
                let mut parts = request_line.split_whitespace();
                record.lock().unwrap().push(Seen {
                    method: parts.next().unwrap_or_default().to_owned(),
                    target: parts.next().unwrap_or_default().to_owned(),
                    body: String::from_utf8_lossy(&body_bytes).into_owned(),
                });
                let content_type = if body.starts_with('{') {
                    "application/json"
                } else {
                    "text/plain"
                };
                let response = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let mut stream = reader.into_inner();
                let _ = stream.write_all(response.as_bytes());
            }
        });
        Ok(Self {
            addr,
            seen,
            thread: Some(thread),
        })
    }

    fn client(&self) -> MediamtxClient {
        MediamtxClient::new(&format!("http://{}", self.addr), Duration::from_secs(10))
    }

    fn seen(mut self) -> Vec<Seen> {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.seen.lock().unwrap().clone()
    }
}

#[realtest::test(timeout = "30s")]
async fn register_is_an_idempotent_replace_and_any_2xx_succeeds() -> anyhow::Result<()> {
    // v1.16 answers 200 with an empty body, v1.17+ {"status":"ok"}; both are success.
    let api = FakeApi::start(vec![(200, ""), (200, r#"{"status":"ok"}"#)])?;
    let client = api.client();
    let config = json!({ "source": "rtsp://10.0.0.5/stream" });
    client.register_path("camera0", &config).await?;
    client.register_path("camera0", &config).await?;
    let seen = api.seen();
    assert_eq!(seen.len(), 2);
    for request in &seen {
        assert_eq!(request.method, "POST");
        assert_eq!(request.target, "/v3/config/paths/replace/camera0");
        assert_eq!(serde_json::from_str::<Value>(&request.body)?, config);
    }
    Ok(())
}

#[realtest::test(timeout = "30s")]
async fn errors_carry_status_and_the_error_field() -> anyhow::Result<()> {
    let api = FakeApi::start(vec![
        (
            400,
            r#"{"status":"error","error":"'recordPath' must contain %path"}"#,
        ),
        (400, r#"{"error":"path already exists"}"#),
        (404, "404 page not found"),
    ])?;
    let client = api.client();
    for expected in [
        "'recordPath' must contain %path",
        "path already exists",
        "404 page not found",
    ] {
        match client.register_path("camera0", &json!({})).await {
            Err(MediamtxError::Status {
                status,
                message,
                method,
                url,
            }) => {
                assert!(matches!(status, 400 | 404));
                assert_eq!(message, expected);
                assert_eq!(method, "POST");
                assert!(url.ends_with("/v3/config/paths/replace/camera0"), "{url}");
            }
            other => panic!("expected a status error, got {other:?}"),
        }
    }
    api.seen();
    Ok(())
}

#[realtest::test(timeout = "30s")]
async fn delete_uses_delete_and_404_means_absent() -> anyhow::Result<()> {
    let api = FakeApi::start(vec![
        (200, ""),
        (404, r#"{"status":"error","error":"path not found"}"#),
    ])?;
    let client = api.client();
    assert!(client.delete_path("camera1").await?);
    assert!(!client.delete_path("camera1").await?);
    let seen = api.seen();
    assert!(
        seen.iter()
            .all(|r| r.method == "DELETE" && r.target == "/v3/config/paths/delete/camera1"),
        "{seen:?}"
    );
    Ok(())
}

#[realtest::test(timeout = "30s")]
async fn path_state_and_paginated_list() -> anyhow::Result<()> {
    let api = FakeApi::start(vec![
        (
            200,
            r#"{"name":"camera0","confName":"camera0","source":{"type":"rtspSession","id":"x"},"ready":true,"readyTime":"2025-01-01T00:00:00Z","tracks":["H264"],"bytesReceived":10,"bytesSent":456,"readers":[{"type":"rtspSession","id":"y"}]}"#,
        ),
        (404, r#"{"error":"path not found"}"#),
        (
            200,
            r#"{"itemCount":2,"pageCount":2,"items":[{"name":"camera0","ready":true,"tracks":["H264"],"readers":[]}]}"#,
        ),
        (
            200,
            r#"{"itemCount":2,"pageCount":2,"items":[{"name":"camera1","ready":false,"tracks":[],"readers":[]}]}"#,
        ),
    ])?;
    let client = api.client();
    let state = client.path_state("camera0").await?.expect("camera0 exists");
    assert!(state.ready);
    assert_eq!(
        (state.bytes_sent, state.readers.len(), state.tracks.clone()),
        (456, 1, vec!["H264".to_owned()])
    );
    assert_eq!(client.path_state("nope").await?, None);
    let all = client.list_paths().await?;
    assert_eq!(
        all.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
        ["camera0", "camera1"]
    );
    let targets: Vec<String> = api
        .seen()
        .into_iter()
        .map(|r| format!("{} {}", r.method, r.target))
        .collect();
    assert_eq!(
        targets,
        [
            "GET /v3/paths/get/camera0",
            "GET /v3/paths/get/nope",
            "GET /v3/paths/list?page=0&itemsPerPage=100",
            "GET /v3/paths/list?page=1&itemsPerPage=100",
        ]
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
    let ffmpeg = FfmpegSettings {
        binary: "ffmpeg".into(),
        ffprobe_binary: "ffprobe".into(),
        rtsp_timeout: Duration::from_secs(5),
        testsrc_size: (640, 480),
        testsrc_fps: 30,
    };
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
fn managed_config_matches_the_version() -> anyhow::Result<()> {
    let ports = ManagedPorts {
        api: 9997,
        rtsp: 8554,
        hls: 8888,
        webrtc: 8889,
        webrtc_udp: 8189,
    };
    let host = "127.0.0.1".parse()?;
    assert_eq!(parse_version("v1.13.1"), Some((1, 13, 1)));
    assert_eq!(parse_version("v1.20.1-3-gabcdef12-dirty"), Some((1, 20, 1)));
    let v1_13 = render_config("v1.13.1\n", host, ports);
    for line in [
        "api: yes",
        "apiAddress: 127.0.0.1:9997",
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
    assert!(render_config("v1.20.1", host, ports)
        .lines()
        .any(|l| l == "moq: no"));
    let v1_9 = render_config("v1.9.3", host, ports);
    assert!(v1_9.lines().any(|l| l == "protocols: [tcp]"), "{v1_9}");
    assert!(
        !v1_9.contains("webrtcLocalUDPAddress"),
        "the key is newer than v1.9: {v1_9}"
    );
    let v6 = render_config("v1.13.1", "::1".parse()?, ports);
    assert!(v6.lines().any(|l| l == "rtspAddress: [::1]:8554"), "{v6}");
    Ok(())
}
