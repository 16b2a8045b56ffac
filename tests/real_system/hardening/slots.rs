//! Connection slots nobody can squat (defect 2: 100 connections that never authenticate held
//! every slot, every new `/ws` got 503 for as long as they stayed), the authentication deadline,
//! and keepalive: a peer that answers nothing is closed after `server.idle_timeout`.

use std::time::Duration;

use anyhow::{bail, ensure, Context};
use camera_service::auth::Role;
use futures_util::StreamExt;
use realtest::Ctx;
use serde_json::json;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;

use crate::support::http;
use crate::support::hygiene::PostTestCheck;
use crate::support::service::{ServiceOptions, ServiceUnderTest};
use crate::support::ws_client::WsClient;

/// Connections that open and never authenticate (the default `server.max_connections`).
const SQUATTERS: usize = 100;
/// Longest wait for a close frame.
const CLOSED: Duration = Duration::from_secs(60);

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Reads `socket` until a close frame (its code and reason) or the end (`None`).
async fn close_of(mut socket: Socket) -> anyhow::Result<Option<(u16, String)>> {
    loop {
        match tokio::time::timeout(CLOSED, socket.next()).await {
            Err(_) => bail!("no close within {CLOSED:?}"),
            Ok(Some(Ok(Message::Close(frame)))) => {
                return Ok(frame.map(|f| (u16::from(f.code), f.reason.to_string())))
            }
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(_)) | None) => return Ok(None),
        }
    }
}

/// The frames (opcode, payload) a server sent on `tcp` until it closed the connection. Server
/// frames are unmasked; the ones read here are short (no extended lengths beyond 16 bits).
async fn raw_frames(tcp: &mut tokio::net::TcpStream) -> anyhow::Result<Vec<(u8, Vec<u8>)>> {
    use tokio::io::AsyncReadExt;
    let mut bytes = Vec::new();
    tokio::time::timeout(CLOSED, tcp.read_to_end(&mut bytes))
        .await
        .context("the service did not close the connection")??;
    let mut frames = Vec::new();
    let mut rest = bytes.as_slice();
    while rest.len() >= 2 {
        let opcode = rest[0] & 0x0f;
        let (length, header) = match rest[1] & 0x7f {
            126 if rest.len() >= 4 => (usize::from(u16::from_be_bytes([rest[2], rest[3]])), 4),
            126 | 127 => bail!("unexpectedly long frame in {bytes:?}"),
            short => (usize::from(short), 2),
        };
        ensure!(
            rest.len() >= header + length,
            "truncated frame in {bytes:?}"
        );
        frames.push((opcode, rest[header..header + length].to_vec()));
        rest = &rest[header + length..];
    }
    Ok(frames)
}

/// 100 connections that never authenticate hold every slot (`server.auth_timeout` 20 s): a
/// client without a bearer header still connects and authenticates (one squatter is evicted
/// with 1013), so does one with a bearer header; every other squatter is closed with 1008 and a
/// reason naming `server.auth_timeout`. Authenticated connections are never evicted: with the
/// slots full of them a newcomer gets 503.
#[realtest::test(timeout = "150s")]
async fn real_hardening_unauthenticated_connections_cannot_hold_the_slots(
    ctx: &mut Ctx,
) -> anyhow::Result<()> {
    let mut check = PostTestCheck::new();
    {
        let service = ServiceUnderTest::start_with(
            ctx,
            ServiceOptions::default().env("CAMERA_SERVICE_SERVER_AUTH_TIMEOUT", "20s"),
        )?;
        check.track_processes_of(service.pid())?;
        check.expect_removed(service.root());
        let mut squatters = JoinSet::new();
        for n in 0..SQUATTERS {
            let (socket, _) = tokio_tungstenite::connect_async(service.ws_url())
                .await
                .with_context(|| format!("squatter {n}"))?;
            squatters.spawn(close_of(socket));
        }
        let mut plain = WsClient::connect(&service.ws_url(), None).await?;
        plain.authenticate(&service.token(Role::Viewer)).await?;
        plain.call_ok("get_camera_list", json!({})).await?;
        let mut bearer =
            WsClient::connect(&service.ws_url(), Some(&service.token(Role::Viewer))).await?;
        bearer.call_ok("get_camera_list", json!({})).await?;

        let (mut evicted, mut timed_out) = (0, 0);
        while let Some(close) = squatters.join_next().await {
            match close?? {
                Some((1013, _)) => evicted += 1,
                Some((1008, reason)) if reason.contains("server.auth_timeout") => timed_out += 1,
                other => bail!("a squatter ended with {other:?}"),
            }
        }
        assert_eq!((evicted, timed_out), (2, SQUATTERS - 2));
        assert_eq!(plain.call_ok("ping", json!({})).await?, "pong");
        assert_eq!(bearer.call_ok("ping", json!({})).await?, "pong");
    }
    {
        let service = ServiceUnderTest::start_with(
            ctx,
            ServiceOptions::default().env("CAMERA_SERVICE_SERVER_MAX_CONNECTIONS", "3"),
        )?;
        check.track_processes_of(service.pid())?;
        check.expect_removed(service.root());
        let mut held = Vec::new();
        for _ in 0..3 {
            held.push(service.client(Role::Viewer).await?);
        }
        let refused = http::get(
            service.addr,
            "/ws",
            &[
                ("Upgrade", "websocket"),
                ("Connection", "Upgrade"),
                ("Sec-WebSocket-Version", "13"),
                ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ],
        )?;
        assert_eq!(refused.status, 503, "{}", refused.text());
        for client in &mut held {
            assert_eq!(client.call_ok("ping", json!({})).await?, "pong");
        }
    }
    check.verify(ctx)
}

/// Keepalive (`server.ping_interval` 500 ms, `server.idle_timeout` 2 s): a client that reads
/// nothing for 6 s (so answers no ping) finds pings and then a close with 1001 naming
/// `server.idle_timeout`; a client reading meanwhile (its library answers the pings) is still
/// served afterwards.
#[realtest::test(timeout = "90s")]
async fn real_hardening_silent_peer_is_closed_after_idle_timeout(
    ctx: &mut Ctx,
) -> anyhow::Result<()> {
    let mut check = PostTestCheck::new();
    {
        let service = ServiceUnderTest::start_with(
            ctx,
            ServiceOptions::default()
                .env("CAMERA_SERVICE_SERVER_PING_INTERVAL", "500ms")
                .env("CAMERA_SERVICE_SERVER_IDLE_TIMEOUT", "2s"),
        )?;
        check.track_processes_of(service.pid())?;
        check.expect_removed(service.root());
        let token = service.token(Role::Viewer);
        let connect = |token: String| {
            let url = service.ws_url();
            async move {
                let mut request =
                    tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
                        url,
                    )?;
                request
                    .headers_mut()
                    .insert("authorization", format!("Bearer {token}").parse()?);
                let (socket, _) = tokio_tungstenite::connect_async(request).await?;
                anyhow::Ok(socket)
            }
        };
        let mut silent = connect(token.clone()).await?;
        let mut live = connect(token.clone()).await?;
        let until = tokio::time::Instant::now() + Duration::from_secs(6);
        let mut live_pings = 0;
        while let Ok(next) = tokio::time::timeout_at(until, live.next()).await {
            match next {
                Some(Ok(Message::Ping(_))) => live_pings += 1,
                Some(Ok(Message::Close(frame))) => bail!("the live client was closed: {frame:?}"),
                Some(Ok(_)) => {}
                other => bail!("the live client's connection ended: {other:?}"),
            }
        }
        ensure!(live_pings > 0, "no keepalive ping in 6 s");
        // Read what reached the silent client as raw frames: a WebSocket library would answer
        // the pings first, into a connection the service has closed.
        let frames = match silent.get_mut() {
            tokio_tungstenite::MaybeTlsStream::Plain(tcp) => raw_frames(tcp).await?,
            _ => bail!("a plain TCP connection was expected"),
        };
        let pings = frames.iter().filter(|(opcode, _)| *opcode == 0x9).count();
        ensure!(pings > 0, "the silent client got no ping: {frames:?}");
        let (opcode, payload) = frames.last().context("no frame at all")?;
        ensure!(*opcode == 0x8, "the last frame is not a close: {frames:?}");
        ensure!(payload.len() >= 2, "a close without a code: {frames:?}");
        assert_eq!(u16::from_be_bytes([payload[0], payload[1]]), 1001);
        let reason = String::from_utf8_lossy(&payload[2..]);
        assert!(reason.contains("server.idle_timeout"), "{reason}");
        let mut client = WsClient::connect(&service.ws_url(), Some(&token)).await?;
        assert_eq!(client.call_ok("ping", json!({})).await?, "pong");
        drop(live);
    }
    check.verify(ctx)
}
