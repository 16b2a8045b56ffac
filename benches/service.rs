//! Benchmark of the real service over loopback (not a timed test): `cargo bench --bench service`.
//!
//! Starts the release binary on a free port with the testsrc camera and prints a table: ping round
//! trip p50/p99 over one connection, 100 concurrent clients calling `get_camera_list`
//! (throughput, p99), snapshot latency from the testsrc camera, the service's RSS when idle, and
//! its RSS under attack: one unauthenticated client that sends `ping`s with 200 KB ids at 40/s
//! for 15 s and never reads (`server.write_timeout` 5 s).
//!
//! `cargo bench --bench service -- soak [SECONDS]` instead runs the soak (default 180 s): 20
//! clients taking snapshots and listing, plus a recording started and stopped every 10 s, with
//! the service's default limits; it prints calls, errors, snapshots made versus files on disk,
//! recordings, and peak RSS.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use camera_service::auth::{Authenticator, Role};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

const PINGS: usize = 5000;
const CLIENTS: usize = 100;
const CALLS_PER_CLIENT: usize = 100;
const SNAPSHOTS: usize = 10;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

struct Service {
    child: Child,
    addr: String,
    token: String,
    _dir: tempfile::TempDir,
}

impl Drop for Service {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let _ = self.child.wait();
    }
}

/// Overrides of the throughput measurements: no rate limit, room for 100 clients.
const UNLIMITED: &[(&str, &str)] = &[
    ("CAMERA_SERVICE_SERVER_RATE_LIMIT_PER_SECOND", "1000000"),
    ("CAMERA_SERVICE_SERVER_RATE_LIMIT_BURST", "1000000"),
    ("CAMERA_SERVICE_SERVER_MAX_CONNECTIONS", "200"),
];

fn start(overrides: &[(&str, &str)]) -> Service {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_camera-service"))
        .arg("serve")
        .current_dir(dir.path())
        .env("CAMERA_SERVICE_SERVER_PORT", "0")
        .envs(overrides.iter().copied())
        .env("CAMERA_SERVICE_CAMERAS_DISCOVER_V4L2", "false")
        .env("CAMERA_SERVICE_MEDIAMTX_MODE", "off")
        .env(
            "CAMERA_SERVICE_LOGGING_LEVEL",
            "warn,camera_service::daemon=info",
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start camera-service");
    let stderr = child.stderr.take().expect("stderr is piped");
    let mut lines = BufReader::new(stderr).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("service exited before listening")
            .expect("read stderr");
        if let Some(addr) = line.split("listening on ").nth(1) {
            break addr.trim().to_owned();
        }
    };
    std::thread::spawn(move || lines.for_each(drop));
    let secret =
        std::fs::read_to_string(dir.path().join("camera-data/jwt-secret")).expect("secret");
    let token =
        Authenticator::new(secret.trim()).mint("bench", Role::Admin, Duration::from_secs(3600));
    Service {
        child,
        addr,
        token,
        _dir: dir,
    }
}

async fn connect(service: &Service) -> Socket {
    let url = format!("ws://{}/ws", service.addr);
    let (mut socket, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("connect");
    call(
        &mut socket,
        0,
        "authenticate",
        json!({ "auth_token": service.token }),
    )
    .await;
    socket
}

async fn call(socket: &mut Socket, id: u64, method: &str, params: Value) -> Value {
    let response = request(socket, id, method, params).await;
    assert!(
        response.get("error").is_none(),
        "{method} failed: {response}"
    );
    response
}

/// Sends a request and returns its response (skipping notifications), error or not.
async fn request(socket: &mut Socket, id: u64, method: &str, params: Value) -> Value {
    let request = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
    socket
        .send(Message::text(request.to_string()))
        .await
        .expect("send");
    loop {
        match socket
            .next()
            .await
            .expect("connection open")
            .expect("receive")
        {
            Message::Text(text) => {
                let response: Value = serde_json::from_str(text.as_str()).expect("JSON");
                if response["id"] == json!(id) {
                    return response;
                }
            }
            _ => continue,
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// One unauthenticated client with a tiny receive buffer that never reads sends `ping`s with
/// 200 KB ids at 40/s for 15 s (as the attack that grew RSS 20 → 330 MB). Returns the table
/// rows: RSS before and at peak, requests taken, when the service dropped the client.
async fn attack(service: &Service) -> Vec<(String, String)> {
    const RATE: u32 = 40;
    const DURATION: Duration = Duration::from_secs(15);
    let pid = service.child.id();
    let before = rss_kib(pid);
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    let stream = socket
        .connect(service.addr.parse().expect("address"))
        .await
        .expect("connect");
    let url = format!("ws://{}/ws", service.addr);
    let (mut ws, _) = tokio_tungstenite::client_async(url, stream)
        .await
        .expect("handshake");
    let ping = json!({ "jsonrpc": "2.0", "id": "x".repeat(200_000), "method": "ping" }).to_string();
    let started = Instant::now();
    let mut ticks = tokio::time::interval(Duration::from_secs(1) / RATE);
    let (mut sent, mut peak, mut dropped) = (0u32, before, None);
    while started.elapsed() < DURATION {
        ticks.tick().await;
        peak = peak.max(rss_kib(pid));
        if dropped.is_some() {
            continue;
        }
        let left = DURATION.saturating_sub(started.elapsed());
        match tokio::time::timeout(left, ws.send(Message::text(ping.clone()))).await {
            Ok(Ok(())) => sent += 1,
            Ok(Err(_)) => dropped = Some(started.elapsed()),
            Err(_) => {}
        }
    }
    let mib = |kib: u64| format!("{:.1} MiB", kib as f64 / 1024.0);
    vec![
        (
            "RSS under one non-reading client: before".into(),
            mib(before),
        ),
        (
            "RSS under one non-reading client: peak in 15 s".into(),
            mib(peak),
        ),
        (
            format!(
                "its requests the service took (of {} sent at {RATE}/s)",
                RATE * 15
            ),
            sent.to_string(),
        ),
        (
            "client dropped after (server.write_timeout 5 s)".into(),
            dropped.map_or("not within 15 s".into(), |d| {
                format!("{:.1} s", d.as_secs_f64())
            }),
        ),
    ]
}

/// The soak: `CLIENTS_SOAK` clients loop over take_snapshot, get_camera_list, list_snapshots
/// and ping; one more starts a recording and stops it every 10 s. Default limits throughout.
async fn soak(service: &Service, duration: Duration) -> Vec<(String, String)> {
    const CLIENTS_SOAK: usize = 20;
    let pid = service.child.id();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS_SOAK {
        let mut socket = connect(service).await;
        tasks.push(tokio::spawn(async move {
            let (mut calls, mut errors, mut snapshots) = (0u64, Vec::new(), Vec::new());
            let mut id = 0;
            while started.elapsed() < duration {
                for (method, params) in [
                    ("take_snapshot", json!({ "device": "camera0" })),
                    ("get_camera_list", json!({})),
                    ("list_snapshots", json!({ "limit": 5 })),
                    ("ping", json!({})),
                ] {
                    id += 1;
                    let response = request(&mut socket, id, method, params).await;
                    calls += 1;
                    if response.get("error").is_some() {
                        errors.push(response.to_string());
                    } else if method == "take_snapshot" {
                        snapshots.push(
                            response["result"]["filename"]
                                .as_str()
                                .unwrap_or_default()
                                .to_owned(),
                        );
                    }
                }
            }
            (calls, errors, snapshots)
        }));
    }
    let mut recorder = connect(service).await;
    let recordings = tokio::spawn(async move {
        let (mut cycles, mut errors, mut id) = (0u64, Vec::new(), 0);
        while started.elapsed() + Duration::from_secs(10) < duration {
            id += 1;
            let start = request(
                &mut recorder,
                id,
                "start_recording",
                json!({ "device": "camera0" }),
            )
            .await;
            tokio::time::sleep(Duration::from_secs(10)).await;
            id += 1;
            let stop = request(
                &mut recorder,
                id,
                "stop_recording",
                json!({ "device": "camera0" }),
            )
            .await;
            for response in [start, stop] {
                if response.get("error").is_some() || response["result"]["status"] == "FAILED" {
                    errors.push(response.to_string());
                }
            }
            cycles += 1;
        }
        (cycles, errors)
    });
    let mut peak = rss_kib(pid);
    while !tasks.iter().all(|t| t.is_finished()) {
        peak = peak.max(rss_kib(pid));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (mut calls, mut errors, mut snapshots) = (0, Vec::new(), Vec::new());
    for task in tasks {
        let (c, e, s) = task.await.expect("client task");
        calls += c;
        errors.extend(e);
        snapshots.extend(s);
    }
    let (cycles, recording_errors) = recordings.await.expect("recording task");
    errors.extend(recording_errors);
    let distinct: std::collections::BTreeSet<&String> = snapshots.iter().collect();
    let on_disk = std::fs::read_dir(service._dir.path().join("camera-data/snapshots"))
        .map(|d| d.count())
        .unwrap_or(0);
    let recorded = std::fs::read_dir(service._dir.path().join("camera-data/recordings"))
        .map(|d| d.count())
        .unwrap_or(0);
    for error in errors.iter().take(5) {
        eprintln!("error: {error}");
    }
    vec![
        ("soak duration".into(), format!("{} s", duration.as_secs())),
        (
            format!("calls by {CLIENTS_SOAK} clients"),
            calls.to_string(),
        ),
        (
            "errors (calls and recordings)".into(),
            errors.len().to_string(),
        ),
        (
            "snapshots completed / distinct names / files on disk".into(),
            format!("{} / {} / {on_disk}", snapshots.len(), distinct.len()),
        ),
        (
            "recordings started and stopped / files".into(),
            format!("{cycles} / {recorded}"),
        ),
        (
            "service RSS peak".into(),
            format!("{:.1} MiB", peak as f64 / 1024.0),
        ),
    ]
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` would pass nothing: run only for bench.
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        return;
    }
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    if let Some(at) = args.iter().position(|a| a == "soak") {
        let seconds = args.get(at + 1).and_then(|s| s.parse().ok()).unwrap_or(180);
        let service = start(&[]);
        let rows = runtime.block_on(soak(&service, Duration::from_secs(seconds)));
        print_table(rows);
        return;
    }
    let service = start(UNLIMITED);
    let mut rows: Vec<(String, String)> = Vec::new();
    std::thread::sleep(Duration::from_secs(1));
    rows.push((
        "service RSS, idle, one camera".into(),
        format!("{:.1} MiB", rss_kib(service.child.id()) as f64 / 1024.0),
    ));
    runtime.block_on(async {
        let mut socket = connect(&service).await;
        let mut times = Vec::with_capacity(PINGS);
        for id in 1..=PINGS as u64 {
            let started = Instant::now();
            call(&mut socket, id, "ping", json!({})).await;
            times.push(started.elapsed());
        }
        times.sort();
        rows.push((
            format!("ping round trip p50 ({PINGS} over one connection)"),
            ms(percentile(&times, 0.5)),
        ));
        rows.push(("ping round trip p99".into(), ms(percentile(&times, 0.99))));

        let mut sockets = Vec::with_capacity(CLIENTS);
        for _ in 0..CLIENTS {
            sockets.push(connect(&service).await);
        }
        let started = Instant::now();
        let tasks: Vec<_> = sockets
            .into_iter()
            .map(|mut socket| {
                tokio::spawn(async move {
                    let mut times = Vec::with_capacity(CALLS_PER_CLIENT);
                    for id in 1..=CALLS_PER_CLIENT as u64 {
                        let t = Instant::now();
                        call(&mut socket, id, "get_camera_list", json!({})).await;
                        times.push(t.elapsed());
                    }
                    times
                })
            })
            .collect();
        let mut all = Vec::with_capacity(CLIENTS * CALLS_PER_CLIENT);
        for task in tasks {
            all.extend(task.await.expect("client task"));
        }
        let elapsed = started.elapsed();
        all.sort();
        rows.push((
            format!("{CLIENTS} clients x {CALLS_PER_CLIENT} get_camera_list: throughput"),
            format!("{:.0} calls/s", all.len() as f64 / elapsed.as_secs_f64()),
        ));
        rows.push((
            "get_camera_list p99 under that load".into(),
            ms(percentile(&all, 0.99)),
        ));

        let mut snaps = Vec::with_capacity(SNAPSHOTS);
        for id in 1..=SNAPSHOTS as u64 {
            let t = Instant::now();
            call(
                &mut socket,
                id,
                "take_snapshot",
                json!({ "device": "camera0" }),
            )
            .await;
            snaps.push(t.elapsed());
        }
        snaps.sort();
        rows.push((
            format!("snapshot latency p50 (testsrc, {SNAPSHOTS} runs)"),
            ms(percentile(&snaps, 0.5)),
        ));
    });
    drop(service);
    let attacked = start(&[("CAMERA_SERVICE_SERVER_WRITE_TIMEOUT", "5s")]);
    std::thread::sleep(Duration::from_secs(1));
    rows.extend(runtime.block_on(attack(&attacked)));
    print_table(rows);
}

fn print_table(rows: Vec<(String, String)>) {
    println!("\n| measurement | value |\n|---|---|");
    for (name, value) in rows {
        println!("| {name} | {value} |");
    }
}
