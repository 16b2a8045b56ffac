//! Authentication and roles over the real API.

use camera_service::auth::{unix_now, Authenticator, Claims, Role};
use serde_json::json;

use crate::support::http;
use crate::support::service::ServiceUnderTest;
use crate::support::ws_client::WsClient;

#[realtest::test(timeout = "60s")]
async fn ping_needs_no_auth(ctx: &mut realtest::Ctx) -> anyhow::Result<()> {
    let service = ServiceUnderTest::start(ctx)?;
    let mut client = WsClient::connect(&service.ws_url(), None).await?;
    let response = client.call("ping", json!({})).await?;
    assert_eq!(response["jsonrpc"], "2.0");
    assert_eq!(response["result"], "pong");
    Ok(())
}

#[realtest::test(timeout = "60s")]
async fn protected_methods_need_auth(ctx: &mut realtest::Ctx) -> anyhow::Result<()> {
    let service = ServiceUnderTest::start(ctx)?;
    let mut client = WsClient::connect(&service.ws_url(), None).await?;
    for method in ["get_camera_list", "take_snapshot", "get_storage_info"] {
        let error = client.call_err(method, json!({})).await?;
        assert_eq!(error.code, -32001, "{method}: {error:?}");
        assert!(error.message.contains(method), "{error:?}");
    }
    Ok(())
}

#[realtest::test(timeout = "60s")]
async fn expired_forged_and_foreign_tokens_are_refused(
    ctx: &mut realtest::Ctx,
) -> anyhow::Result<()> {
    let service = ServiceUnderTest::start(ctx)?;
    let now = unix_now();
    let expired = service.token_with_claims(&Claims {
        sub: "old".into(),
        role: Role::Admin,
        iat: now - 7200,
        exp: now - 3600,
    });
    let valid = service.token(Role::Admin);
    let (head, signature) = valid.rsplit_once('.').expect("a JWT has three parts");
    let forged_signature: String = signature.chars().rev().collect();
    let forged = format!("{head}.{forged_signature}");
    let foreign = Authenticator::new("another-secret-of-sufficient-length-0123456789").mint(
        "x",
        Role::Admin,
        std::time::Duration::from_secs(600),
    );
    let mut client = WsClient::connect(&service.ws_url(), None).await?;
    for (what, token) in [
        ("expired", expired.as_str()),
        ("forged", &forged),
        ("wrong secret", &foreign),
        ("garbage", "not-a-token"),
    ] {
        let error = client
            .call_err("authenticate", json!({ "auth_token": token }))
            .await?;
        assert_eq!(error.code, -32001, "{what}: {error:?}");
        let after = client.call_err("get_camera_list", json!({})).await?;
        assert_eq!(
            after.code, -32001,
            "{what} must not authenticate the connection"
        );
    }
    let expired_message = client
        .call_err("authenticate", json!({ "auth_token": expired }))
        .await?
        .message;
    assert!(expired_message.contains("expired"), "{expired_message}");
    // The same tokens as bearer headers are refused before the upgrade.
    let refused = http::get(
        service.addr,
        "/ws",
        &[
            ("Authorization", &format!("Bearer {foreign}")),
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Version", "13"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ],
    )?;
    assert_eq!(refused.status, 401);
    Ok(())
}

#[realtest::test(timeout = "60s")]
async fn authenticate_reports_role_and_permissions(ctx: &mut realtest::Ctx) -> anyhow::Result<()> {
    let service = ServiceUnderTest::start(ctx)?;
    let mut client = WsClient::connect(&service.ws_url(), None).await?;
    let result = client
        .call_ok(
            "authenticate",
            json!({ "auth_token": service.token(Role::Operator) }),
        )
        .await?;
    assert_eq!(result["authenticated"], true);
    assert_eq!(result["role"], "operator");
    assert_eq!(result["permissions"], json!(["view", "control"]));
    assert!(
        result["expires_at"]
            .as_str()
            .is_some_and(|s| s.ends_with('Z')),
        "{result}"
    );
    assert_eq!(result["session_id"].as_str().map(str::len), Some(36));
    Ok(())
}

#[realtest::test(timeout = "60s")]
async fn bearer_header_authenticates_the_connection(ctx: &mut realtest::Ctx) -> anyhow::Result<()> {
    let service = ServiceUnderTest::start(ctx)?;
    let token = service.token(Role::Viewer);
    let mut client = WsClient::connect(&service.ws_url(), Some(&token)).await?;
    let result = client.call_ok("get_camera_list", json!({})).await?;
    assert_eq!(result["total"], 1);
    Ok(())
}

#[realtest::test(timeout = "60s")]
async fn roles_are_enforced_per_method(ctx: &mut realtest::Ctx) -> anyhow::Result<()> {
    let service = ServiceUnderTest::start(ctx)?;
    let mut viewer =
        WsClient::connect_authenticated(&service.ws_url(), &service.token(Role::Viewer)).await?;
    viewer.call_ok("get_camera_list", json!({})).await?;
    for method in [
        "take_snapshot",
        "start_recording",
        "stop_recording",
        "delete_snapshot",
    ] {
        let error = viewer
            .call_err(method, json!({ "device": "camera0" }))
            .await?;
        assert_eq!(error.code, -32003, "viewer {method}: {error:?}");
        assert!(error.message.contains("operator"), "{error:?}");
    }
    let mut operator =
        WsClient::connect_authenticated(&service.ws_url(), &service.token(Role::Operator)).await?;
    for method in [
        "get_storage_info",
        "get_metrics",
        "get_status",
        "get_server_info",
        "cleanup_old_files",
    ] {
        let error = operator.call_err(method, json!({})).await?;
        assert_eq!(error.code, -32003, "operator {method}: {error:?}");
    }
    let mut admin =
        WsClient::connect_authenticated(&service.ws_url(), &service.token(Role::Admin)).await?;
    admin.call_ok("get_storage_info", json!({})).await?;
    Ok(())
}

#[realtest::test(timeout = "60s")]
fn token_command_mints_a_token_the_service_accepts(ctx: &mut realtest::Ctx) -> anyhow::Result<()> {
    let service = ServiceUnderTest::start(ctx)?;
    let output = ctx.output(
        std::process::Command::new(crate::support::service::BINARY)
            .args(["token", "--role", "operator", "--ttl", "10m", "--config"])
            .arg(&service.config_path),
        std::time::Duration::from_secs(20),
    )?;
    assert!(output.status.success());
    let token = String::from_utf8(output.stdout)?.trim().to_owned();
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let mut client = WsClient::connect(&service.ws_url(), None).await?;
        let result = client
            .call_ok("authenticate", json!({ "auth_token": token }))
            .await?;
        assert_eq!(result["role"], "operator");
        anyhow::Ok(())
    })
}
