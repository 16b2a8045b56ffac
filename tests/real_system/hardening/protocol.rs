//! Protocol corners a careless client hits: an integer id beyond 64 bits is echoed exactly, and a
//! text frame that is not UTF-8 closes the connection with RFC 6455's 1007.

use std::time::Duration;

use anyhow::{bail, Context};
use futures_util::{SinkExt, StreamExt};
use realtest::Ctx;
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::Message;

use crate::support::hygiene::PostTestCheck;
use crate::support::service::ServiceUnderTest;

/// Longest wait for one reply or close.
const REPLY: Duration = Duration::from_secs(30);

/// The next text message, raw.
async fn next_text<S>(socket: &mut tokio_tungstenite::WebSocketStream<S>) -> anyhow::Result<String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        match tokio::time::timeout(REPLY, socket.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => return Ok(text.to_string()),
            Ok(Some(Ok(_))) => {}
            Ok(other) => bail!("no text message: {other:?}"),
            Err(_) => bail!("no reply within {REPLY:?}"),
        }
    }
}

/// `ping` with the ids `10**40`, a negative 23-digit number and `1.50` gets each id back as the
/// exact text it was sent as (not `1e+40`), read from the raw reply.
#[realtest::test(timeout = "60s")]
async fn real_hardening_big_integer_ids_are_echoed_exactly(ctx: &mut Ctx) -> anyhow::Result<()> {
    let mut check = PostTestCheck::new();
    {
        let service = ServiceUnderTest::start(ctx)?;
        check.track_processes_of(service.pid())?;
        check.expect_removed(service.root());
        let (mut socket, _) = tokio_tungstenite::connect_async(service.ws_url()).await?;
        for id in [
            "10000000000000000000000000000000000000000",
            "-12345678901234567890123",
            "1.50",
        ] {
            socket
                .send(Message::text(format!(
                    r#"{{"jsonrpc":"2.0","id":{id},"method":"ping"}}"#
                )))
                .await?;
            let reply = next_text(&mut socket).await?;
            assert_eq!(
                reply,
                format!(r#"{{"jsonrpc":"2.0","id":{id},"result":"pong"}}"#)
            );
        }
    }
    check.verify(ctx)
}

/// A masked text frame whose payload is `FF FE` (not UTF-8), written as raw bytes after a real
/// handshake: the service closes with 1007 and says why; another client is unaffected.
#[realtest::test(timeout = "60s")]
async fn real_hardening_invalid_utf8_closes_with_1007(ctx: &mut Ctx) -> anyhow::Result<()> {
    let mut check = PostTestCheck::new();
    {
        let service = ServiceUnderTest::start(ctx)?;
        check.track_processes_of(service.pid())?;
        check.expect_removed(service.root());
        let (mut bystander, _) = tokio_tungstenite::connect_async(service.ws_url()).await?;
        let (mut socket, _) = tokio_tungstenite::connect_async(service.ws_url()).await?;
        // FIN + text opcode, masked, length 2, mask key, masked payload FF FE.
        let mask = [0x12u8, 0x34, 0x56, 0x78];
        let frame = [
            0x81,
            0x82,
            mask[0],
            mask[1],
            mask[2],
            mask[3],
            0xFF ^ mask[0],
            0xFE ^ mask[1],
        ];
        match socket.get_mut() {
            tokio_tungstenite::MaybeTlsStream::Plain(tcp) => tcp.write_all(&frame).await?,
            _ => bail!("a plain TCP connection was expected"),
        }
        let close = loop {
            match tokio::time::timeout(REPLY, socket.next())
                .await
                .context("no close within the timeout")?
            {
                Some(Ok(Message::Close(frame))) => {
                    break frame.context("a close frame with a code")?
                }
                Some(Ok(_)) => {}
                other => bail!("connection ended without a close frame: {other:?}"),
            }
        };
        assert_eq!(u16::from(close.code), 1007, "{close:?}");
        assert!(close.reason.contains("UTF-8"), "{close:?}");
        bystander
            .send(Message::text(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#))
            .await?;
        assert_eq!(
            next_text(&mut bystander).await?,
            r#"{"jsonrpc":"2.0","id":1,"result":"pong"}"#
        );
    }
    check.verify(ctx)
}
