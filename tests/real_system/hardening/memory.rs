//! One unauthenticated client that sends and never reads (defect 1: every request became a task
//! holding its reply, RSS 20 → 330 MB in 15 s, and SIGTERM waited the full shutdown timeout).
//! Asserted: the service stops reading it (TCP pushes back), its memory stays under a generous
//! bound, it is dropped after `server.write_timeout` with the reason logged, and SIGTERM is not
//! held up by it. The figures under attack are measured by `cargo bench --bench service --
//! attack`, not here.

use std::time::Duration;

use anyhow::{ensure, Context};
use camera_service::auth::Role;
use futures_util::SinkExt;
use realtest::Ctx;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::support::hygiene::PostTestCheck;
use crate::support::procfs;
use crate::support::service::{ServiceOptions, ServiceUnderTest};

/// Requests the attacker tries to send: 300 × 200 KB ids, 60 MB, which the service used to take
/// in whole and hold several copies of.
const ATTACK_MESSAGES: usize = 300;
/// Size of each request's id (echoed in its reply).
const ID_BYTES: usize = 200_000;
/// Largest accepted growth of the service's RSS under the attack (generous: the bound in the
/// code is 32 requests in flight plus 1 MiB of queued output).
const RSS_GROWTH_LIMIT_KIB: u64 = 64 * 1024;
/// How long one send may block before the attacker counts it as pushed back.
const PUSHED_BACK: Duration = Duration::from_secs(2);
/// Longest wait for the service to drop the attacker.
const DROPPED: Duration = Duration::from_secs(60);

/// A WebSocket client with a tiny receive buffer, which will never read.
async fn non_reading_client(
    service: &ServiceUnderTest,
) -> anyhow::Result<WebSocketStream<tokio::net::TcpStream>> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_recv_buffer_size(4096)?;
    let stream = socket.connect(service.addr).await?;
    let (ws, _) = tokio_tungstenite::client_async(service.ws_url(), stream).await?;
    Ok(ws)
}

/// Sends up to [`ATTACK_MESSAGES`] pings with huge ids, sampling the service's RSS; stops at
/// the first send that blocks (pushed back) or fails. Returns (sent, peak RSS KiB).
async fn flood(
    ws: &mut WebSocketStream<tokio::net::TcpStream>,
    pid: u32,
) -> anyhow::Result<(usize, u64)> {
    let request =
        json!({ "jsonrpc": "2.0", "id": "x".repeat(ID_BYTES), "method": "ping" }).to_string();
    let mut peak = procfs::rss_kib(pid).context("VmRSS")?;
    let mut sent = 0;
    while sent < ATTACK_MESSAGES {
        match tokio::time::timeout(PUSHED_BACK, ws.send(Message::text(request.clone()))).await {
            Ok(Ok(())) => sent += 1,
            Ok(Err(_)) | Err(_) => break,
        }
        peak = peak.max(procfs::rss_kib(pid).unwrap_or(0));
    }
    Ok((sent, peak))
}

/// Polls the service's log for `needle`, sampling RSS meanwhile; returns the peak RSS seen.
async fn wait_for_log(
    service: &ServiceUnderTest,
    needle: &str,
    mut peak: u64,
) -> anyhow::Result<u64> {
    let deadline = tokio::time::Instant::now() + DROPPED;
    while !service.output().iter().any(|line| line.contains(needle)) {
        ensure!(
            tokio::time::Instant::now() < deadline,
            "no `{needle}` in the service log within {DROPPED:?}"
        );
        peak = peak.max(procfs::rss_kib(service.pid()).unwrap_or(0));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(peak)
}

/// The attack with `server.write_timeout = 3s`: the service pushes back before taking all 300
/// requests, its RSS grows by less than 64 MiB, it drops the client with "server.write_timeout"
/// in its log, the slot is free again (`active_connections` back to the one admin), and a
/// fresh client is served.
#[realtest::test(timeout = "120s")]
async fn real_hardening_non_reading_client_keeps_memory_bounded(
    ctx: &mut Ctx,
) -> anyhow::Result<()> {
    let mut check = PostTestCheck::new();
    {
        let service = ServiceUnderTest::start_with(
            ctx,
            ServiceOptions::default().env("CAMERA_SERVICE_SERVER_WRITE_TIMEOUT", "3s"),
        )?;
        check.track_processes_of(service.pid())?;
        check.expect_removed(service.root());
        let mut admin = service.client(Role::Admin).await?;
        let base = procfs::rss_kib(service.pid()).context("VmRSS")?;
        let mut attacker = non_reading_client(&service).await?;
        let (sent, peak) = flood(&mut attacker, service.pid()).await?;
        let peak = wait_for_log(&service, "server.write_timeout", peak).await?;
        ctx.log(format_args!(
            "sent {sent} of {ATTACK_MESSAGES}; RSS {base} KiB -> peak {peak} KiB"
        ));
        ensure!(
            sent < ATTACK_MESSAGES,
            "the service took all {sent} requests of a client that never reads"
        );
        ensure!(
            peak <= base + RSS_GROWTH_LIMIT_KIB,
            "RSS grew from {base} KiB to {peak} KiB (limit +{RSS_GROWTH_LIMIT_KIB} KiB)"
        );
        let deadline = tokio::time::Instant::now() + DROPPED;
        loop {
            let metrics = admin.call_ok("get_metrics", json!({})).await?;
            if metrics["active_connections"] == 1 {
                break;
            }
            ensure!(
                tokio::time::Instant::now() < deadline,
                "the attacker's connection is still counted: {metrics}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut fresh = service.client(Role::Viewer).await?;
        assert_eq!(fresh.call_ok("ping", json!({})).await?, "pong");
        drop(attacker);
    }
    check.verify(ctx)
}

/// SIGTERM while a client that never reads has its socket full (`server.write_timeout` and
/// `server.shutdown_timeout` 60 s, longer than the fixture's 10 s grace before SIGKILL): the
/// service still shuts down gracefully by itself, exit status 0 (it used to wait the whole
/// shutdown timeout for that client).
#[realtest::test(timeout = "120s")]
async fn real_hardening_sigterm_is_not_held_by_a_non_reading_client(
    ctx: &mut Ctx,
) -> anyhow::Result<()> {
    let mut check = PostTestCheck::new();
    {
        let mut service = ServiceUnderTest::start_with(
            ctx,
            ServiceOptions::default()
                .env("CAMERA_SERVICE_SERVER_WRITE_TIMEOUT", "60s")
                .env("CAMERA_SERVICE_SERVER_SHUTDOWN_TIMEOUT", "60s"),
        )?;
        check.track_processes_of(service.pid())?;
        check.expect_removed(service.root());
        let mut attacker = non_reading_client(&service).await?;
        let (sent, _) = flood(&mut attacker, service.pid()).await?;
        ensure!(sent < ATTACK_MESSAGES, "no push back after {sent} requests");
        let status = service.terminate()?;
        ensure!(
            status.success(),
            "SIGTERM did not end the service by itself: {status}"
        );
        drop(attacker);
    }
    check.verify(ctx)
}
