//! Tokens the service cannot represent or must not accept yet: a validly signed token with an
//! `exp` past year 9999 (it used to panic the handler and drop the connection without a reply),
//! and one whose `nbf` is still ahead.

use std::process::Command;
use std::time::Duration;

use camera_service::auth::{unix_now, Claims, Role, MAX_EXP};
use realtest::Ctx;
use serde_json::json;

use crate::support::http;
use crate::support::hygiene::PostTestCheck;
use crate::support::service::{ServiceUnderTest, BINARY};
use crate::support::ws_client::WsClient;

/// `exp` values past what the service can represent each get a −32001 reply naming the limit,
/// on the WebSocket and as a bearer header (HTTP 401); the connection lives on (ping, then a
/// valid token authenticates it). A future `nbf` is refused the same way. `camera-service token
/// --ttl 1000000y` refuses to mint such a token (exit 2).
#[realtest::test(timeout = "60s")]
async fn real_hardening_unrepresentable_exp_and_future_nbf_get_error_replies(
    ctx: &mut Ctx,
) -> anyhow::Result<()> {
    let mut check = PostTestCheck::new();
    {
        let service = ServiceUnderTest::start(ctx)?;
        check.track_processes_of(service.pid())?;
        check.expect_removed(service.root());
        let now = unix_now();
        let mut client = WsClient::connect(&service.ws_url(), None).await?;
        // 1000000 years (what `token --ttl 1000000y` minted), just past the limit, the largest.
        for exp in [now + 31_557_600_000_000, MAX_EXP + 1, u64::MAX] {
            let token = service.token_with_claims(&Claims {
                sub: "far-future".into(),
                role: Role::Admin,
                iat: now,
                exp,
            });
            let error = client
                .call_err("authenticate", json!({ "auth_token": token }))
                .await?;
            assert_eq!(error.code, -32001, "exp {exp}: {error:?}");
            assert!(error.message.contains("9999-12-31"), "exp {exp}: {error:?}");
            assert_eq!(client.call_ok("ping", json!({})).await?, "pong");
            let refused = http::get(
                service.addr,
                "/ws",
                &[
                    ("Authorization", &format!("Bearer {token}")),
                    ("Upgrade", "websocket"),
                    ("Connection", "Upgrade"),
                    ("Sec-WebSocket-Version", "13"),
                    ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
                ],
            )?;
            assert_eq!(refused.status, 401, "exp {exp} as a bearer header");
            assert!(refused.text().contains("9999-12-31"), "{}", refused.text());
        }
        let early = service.token_with_json(
            &json!({ "sub": "early", "role": "admin", "iat": now, "exp": now + 600, "nbf": now + 300 }),
        );
        let error = client
            .call_err("authenticate", json!({ "auth_token": early }))
            .await?;
        assert_eq!(error.code, -32001, "{error:?}");
        assert!(error.message.contains("not valid yet"), "{error:?}");
        let after = client.call_err("get_camera_list", json!({})).await?;
        assert_eq!(after.code, -32001, "a refused token must not authenticate");
        client.authenticate(&service.token(Role::Viewer)).await?;
        client.call_ok("get_camera_list", json!({})).await?;

        let minted = ctx.output(
            Command::new(BINARY)
                .args(["token", "--role", "admin", "--ttl", "1000000y", "--config"])
                .arg(&service.config_path),
            Duration::from_secs(30),
        )?;
        assert_eq!(minted.status.code(), Some(2), "{minted:?}");
        assert!(
            String::from_utf8_lossy(&minted.stderr).contains("9999-12-31"),
            "{minted:?}"
        );
        assert!(minted.stdout.is_empty(), "no token printed: {minted:?}");
    }
    check.verify(ctx)
}
