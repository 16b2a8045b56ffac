//! Limits: message size, request rate, connection count. Each hits one connection only.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::http;
use crate::support::service::{ServiceOptions, ServiceUnderTest};
use crate::support::ws_client::{error_of, WsClient};

#[realtest::test(timeout = "60s")]
async fn oversized_message_closes_that_connection_with_1009(
    ctx: &mut realtest::Ctx,
) -> anyhow::Result<()> {
    let service = ServiceUnderTest::start_with(
        ctx,
        ServiceOptions::default().env("CAMERA_SERVICE_SERVER_MAX_MESSAGE_BYTES", "4096"),
    )?;
    let mut bystander = WsClient::connect(&service.ws_url(), None).await?;
    let mut client = WsClient::connect(&service.ws_url(), None).await?;
    // Just under the limit is fine.
    let padding = "x".repeat(3000);
    let response = client.call("ping", json!({ "padding": padding })).await?;
    assert_eq!(response["result"], "pong");
    let big = json!({ "jsonrpc": "2.0", "id": 1, "method": "ping", "params": { "padding": "x".repeat(10_000) } });
    client.send_text(big.to_string()).await?;
    assert_eq!(
        client.wait_close(Duration::from_secs(10)).await?,
        Some(1009)
    );
    assert_eq!(bystander.call_ok("ping", json!({})).await?, "pong");
    Ok(())
}

#[realtest::test(timeout = "60s")]
async fn flooding_client_is_rate_limited_alone(ctx: &mut realtest::Ctx) -> anyhow::Result<()> {
    let service = ServiceUnderTest::start_with(
        ctx,
        ServiceOptions::default()
            .env("CAMERA_SERVICE_SERVER_RATE_LIMIT_PER_SECOND", "1")
            .env("CAMERA_SERVICE_SERVER_RATE_LIMIT_BURST", "10"),
    )?;
    let mut flooder = WsClient::connect(&service.ws_url(), None).await?;
    let mut bystander = WsClient::connect(&service.ws_url(), None).await?;
    for _ in 0..40 {
        flooder.send_request("ping", json!({})).await?;
    }
    let mut limited = 0;
    let mut answered = 0;
    for _ in 0..40 {
        let response = flooder.next_response(Duration::from_secs(10)).await?;
        match error_of(&response) {
            Some(error) => {
                assert_eq!(error.code, -32002, "{response}");
                limited += 1;
            }
            None => answered += 1,
        }
    }
    // The burst allows at most 10 plus what refilled meanwhile; most of 40 are refused.
    assert!(limited >= 20, "limited {limited}, answered {answered}");
    assert!(answered >= 10, "the burst is served: answered {answered}");
    assert_eq!(bystander.call_ok("ping", json!({})).await?, "pong");
    Ok(())
}

/// Past the burst, requests are answered at the configured rate: a client asking 10 times as
/// fast for about 2 s gets the burst plus `rate` per second of the time its requests took to
/// arrive — bounds taken from the client's own clock around the exchange (when the first
/// request was surely handled, when the last was surely sent, when all were answered), so a
/// slow machine widens them instead of failing the test.
#[realtest::test(timeout = "60s")]
async fn sustained_requests_are_answered_at_the_configured_rate(
    ctx: &mut realtest::Ctx,
) -> anyhow::Result<()> {
    const RATE: f64 = 5.0;
    const BURST: f64 = 10.0;
    const REQUESTS: usize = 100;
    let service = ServiceUnderTest::start_with(
        ctx,
        ServiceOptions::default()
            .env("CAMERA_SERVICE_SERVER_RATE_LIMIT_PER_SECOND", "5")
            .env("CAMERA_SERVICE_SERVER_RATE_LIMIT_BURST", "10"),
    )?;
    let mut client = WsClient::connect(&service.ws_url(), None).await?;
    let first_sent = Instant::now();
    assert_eq!(client.call_ok("ping", json!({})).await?, "pong");
    let first_handled = Instant::now();
    for _ in 1..REQUESTS {
        tokio::time::sleep(Duration::from_millis(20)).await;
        client.send_request("ping", json!({})).await?;
    }
    let last_sent = Instant::now();
    let mut answered = 1.0;
    for _ in 1..REQUESTS {
        let response = client.next_response(Duration::from_secs(10)).await?;
        match error_of(&response) {
            Some(error) => assert_eq!(error.code, -32002, "{response}"),
            None => answered += 1.0,
        }
    }
    let done = Instant::now();
    // Tokens that could have been taken: the burst, plus what refilled between the first and
    // the last request the service handled (± one partial token).
    let fewest = BURST + (RATE * (last_sent - first_handled).as_secs_f64()).floor() - 1.0;
    let most = BURST + (RATE * (done - first_sent).as_secs_f64()).ceil() + 1.0;
    ctx.log(format_args!(
        "answered {answered} of {REQUESTS}; expected {fewest}..={most}"
    ));
    assert!(
        (fewest..=most).contains(&answered),
        "answered {answered} of {REQUESTS} at {RATE}/s with a burst of {BURST}: expected \
         {fewest}..={most}"
    );
    Ok(())
}

/// With every slot held by an authenticated connection a newcomer gets 503 (unauthenticated
/// ones would be evicted for it).
#[realtest::test(timeout = "60s")]
async fn connections_over_the_limit_get_503(ctx: &mut realtest::Ctx) -> anyhow::Result<()> {
    let service = ServiceUnderTest::start_with(
        ctx,
        ServiceOptions::default().env("CAMERA_SERVICE_SERVER_MAX_CONNECTIONS", "2"),
    )?;
    let token = service.token(camera_service::auth::Role::Viewer);
    let mut first = WsClient::connect(&service.ws_url(), Some(&token)).await?;
    let _second = WsClient::connect(&service.ws_url(), Some(&token)).await?;
    let addr = service.addr;
    let refused = tokio::task::spawn_blocking(move || {
        http::get(
            addr,
            "/ws",
            &[
                ("Upgrade", "websocket"),
                ("Connection", "Upgrade"),
                ("Sec-WebSocket-Version", "13"),
                ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ],
        )
    })
    .await??;
    assert_eq!(refused.status, 503);
    assert_eq!(first.call_ok("ping", json!({})).await?, "pong");
    // A slot frees when a connection closes.
    first.close().await?;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match WsClient::connect(&service.ws_url(), None).await {
            Ok(mut third) => {
                assert_eq!(third.call_ok("ping", json!({})).await?, "pong");
                break;
            }
            Err(e) if std::time::Instant::now() < deadline => {
                ctx.log(format_args!("retrying: {e:#}"));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
