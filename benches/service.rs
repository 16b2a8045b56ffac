//! Benchmark of the real service over loopback (not a timed test): `cargo bench --bench service`.
//!
//! Starts the release binary on a free port with the testsrc camera and prints a table: ping round
//! trip p50/p99 over one connection, 100 concurrent clients calling `get_camera_list`
//! (throughput, p99), snapshot latency from the testsrc camera, and the service's RSS when idle.

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

fn start() -> Service {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_camera-service"))
        .arg("serve")
        .current_dir(dir.path())
        .env("CAMERA_SERVICE_SERVER_PORT", "0")
        .env("CAMERA_SERVICE_SERVER_RATE_LIMIT_PER_SECOND", "1000000")
        .env("CAMERA_SERVICE_SERVER_RATE_LIMIT_BURST", "1000000")
        .env("CAMERA_SERVICE_SERVER_MAX_CONNECTIONS", "200")
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
                    assert!(
                        response.get("error").is_none(),
                        "{method} failed: {response}"
                    );
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

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` would pass nothing: run only for bench.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let service = start();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
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
    println!("\n| measurement | value |\n|---|---|");
    for (name, value) in rows {
        println!("| {name} | {value} |");
    }
}
