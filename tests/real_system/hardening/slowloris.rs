//! Slowloris (defect 3: connections sending only part of the upgrade request stayed open
//! forever, uncounted; about 1050 of them used up the service's descriptors and stopped
//! `/health` and `/ws` for everyone).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{ensure, Context};
use camera_service::auth::Role;
use realtest::Ctx;
use serde_json::json;

use crate::support::http;
use crate::support::hygiene::PostTestCheck;
use crate::support::procfs;
use crate::support::service::{ServiceOptions, ServiceUnderTest};

/// Connections that send part of a request and then nothing.
const PARTIAL: usize = 100;
/// `server.max_http_connections` of the test.
const HTTP_SLOTS: usize = 20;
/// Descriptors the service may open besides the HTTP slots while the attack runs (runtime
/// internals, the one real client).
const FD_SLACK: usize = 8;
/// Longest wait for the service to drop one partial connection.
const DROPPED: Duration = Duration::from_secs(90);

/// 100 connections each send `GET /ws HTTP/1.1` and one header, never the end
/// (`server.header_read_timeout` 1 s, `server.max_http_connections` 20): the service never has
/// more than 20 of them open (its descriptor count, sampled), `/health` asked meanwhile is
/// answered, every partial connection is closed by the service (EOF or reset), and a WebSocket
/// client is served afterwards.
#[realtest::test(timeout = "180s")]
async fn real_hardening_partial_headers_are_dropped_and_bounded(
    ctx: &mut Ctx,
) -> anyhow::Result<()> {
    let mut check = PostTestCheck::new();
    {
        let service = ServiceUnderTest::start_with(
            ctx,
            ServiceOptions::default()
                .env("CAMERA_SERVICE_SERVER_HEADER_READ_TIMEOUT", "1s")
                .env(
                    "CAMERA_SERVICE_SERVER_MAX_HTTP_CONNECTIONS",
                    &HTTP_SLOTS.to_string(),
                ),
        )?;
        check.track_processes_of(service.pid())?;
        check.expect_removed(service.root());
        let pid = service.pid();
        let base_fds = procfs::open_fds(pid).len();
        let addr = service.addr;
        let (peak_fds, health, closed) = tokio::task::spawn_blocking(move || {
            let mut partial = Vec::new();
            let mut peak = 0;
            for _ in 0..PARTIAL {
                let mut stream = TcpStream::connect(addr)?;
                stream.write_all(format!("GET /ws HTTP/1.1\r\nHost: {addr}\r\n").as_bytes())?;
                stream.set_read_timeout(Some(DROPPED))?;
                partial.push(stream);
                peak = peak.max(procfs::open_fds(pid).len());
            }
            let health = http::get(addr, "/health", &[])?;
            let mut closed = 0;
            for mut stream in partial {
                let mut buf = [0u8; 1024];
                // The service answers nothing (or a 408) and closes: EOF or a reset.
                loop {
                    match stream.read(&mut buf) {
                        Ok(0) => break,
                        Ok(_) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
                        Err(e) => {
                            return Err(
                                anyhow::Error::new(e).context("a partial connection stayed open")
                            )
                        }
                    }
                }
                closed += 1;
                peak = peak.max(procfs::open_fds(pid).len());
            }
            anyhow::Ok((peak, health, closed))
        })
        .await??;
        ctx.log(format_args!(
            "descriptors: base {base_fds}, peak {peak_fds}"
        ));
        assert_eq!(health.status, 200, "{}", health.text());
        assert_eq!(closed, PARTIAL);
        ensure!(
            peak_fds <= base_fds + HTTP_SLOTS + FD_SLACK,
            "the service held {peak_fds} descriptors (base {base_fds}, {HTTP_SLOTS} HTTP slots)"
        );
        let mut client = service
            .client(Role::Viewer)
            .await
            .context("after the attack")?;
        assert_eq!(client.call_ok("ping", json!({})).await?, "pong");
    }
    check.verify(ctx)
}
