//! Scenario 4 — WebSocket authentication and control: every method at every role boundary,
//! expired/forged/foreign tokens and a session that expires while connected, and every kind of
//! bad input, each with its exact JSON-RPC error code. None of it starts FFmpeg (calls that pass
//! the role check are given an unknown camera or a missing file), so these tests need nothing
//! but the service.

use std::time::Duration;

use anyhow::Context;
use camera_service::auth::{unix_now, Authenticator, Claims, Role};
use realtest::Ctx;
use serde_json::{json, Value};

use super::direct;
use crate::support::http;
use crate::support::hygiene::PostTestCheck;
use crate::support::service::{ServiceOptions, ServiceUnderTest};
use crate::support::ws_client::{error_of, WsClient};

/// What an authorised call must give.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Outcome {
    /// A result.
    Ok,
    /// This error code.
    Code(i64),
}

/// Every method, params for it that never start FFmpeg, the lowest role allowed (`None`: no
/// authentication), and the outcome once allowed. `take_snapshot` has a second row without
/// params: authentication and role are checked before params.
fn method_table() -> Vec<(&'static str, Value, Option<Role>, Outcome)> {
    use Outcome::{Code, Ok};
    let camera = json!({ "device": "camera99" });
    let recording = json!({ "filename": "missing.mp4" });
    let snapshot = json!({ "filename": "missing.jpg" });
    vec![
        ("ping", json!({}), None, Ok),
        ("get_camera_list", json!({}), Some(Role::Viewer), Ok),
        (
            "get_camera_status",
            camera.clone(),
            Some(Role::Viewer),
            Code(-32004),
        ),
        (
            "get_camera_capabilities",
            camera.clone(),
            Some(Role::Viewer),
            Code(-32004),
        ),
        ("get_streams", json!({}), Some(Role::Viewer), Ok),
        ("list_recordings", json!({}), Some(Role::Viewer), Ok),
        ("list_snapshots", json!({}), Some(Role::Viewer), Ok),
        (
            "get_recording_info",
            recording.clone(),
            Some(Role::Viewer),
            Code(-32007),
        ),
        (
            "get_snapshot_info",
            snapshot.clone(),
            Some(Role::Viewer),
            Code(-32007),
        ),
        (
            "take_snapshot",
            camera.clone(),
            Some(Role::Operator),
            Code(-32004),
        ),
        (
            "take_snapshot",
            json!({}),
            Some(Role::Operator),
            Code(-32602),
        ),
        (
            "start_recording",
            camera.clone(),
            Some(Role::Operator),
            Code(-32004),
        ),
        ("stop_recording", camera, Some(Role::Operator), Code(-32004)),
        (
            "delete_recording",
            recording,
            Some(Role::Operator),
            Code(-32007),
        ),
        (
            "delete_snapshot",
            snapshot,
            Some(Role::Operator),
            Code(-32007),
        ),
        ("get_storage_info", json!({}), Some(Role::Admin), Ok),
        (
            "set_retention_policy",
            json!({ "policy_type": "manual", "enabled": false }),
            Some(Role::Admin),
            Ok,
        ),
        ("cleanup_old_files", json!({}), Some(Role::Admin), Ok),
        ("get_status", json!({}), Some(Role::Admin), Ok),
        ("get_metrics", json!({}), Some(Role::Admin), Ok),
        ("get_server_info", json!({}), Some(Role::Admin), Ok),
    ]
}

/// Every method × {unauthenticated, viewer, operator, admin}: −32001 without authentication
/// (naming the method), −32003 below the method's role (naming the role required), otherwise the
/// method's own outcome; `ping` answers `pong` to everyone.
#[realtest::test(timeout = "60s")]
async fn real_control_role_matrix(ctx: &mut Ctx) -> anyhow::Result<()> {
    let mut check = PostTestCheck::new();
    {
        let service = ServiceUnderTest::start_with(ctx, direct("testsrc"))?;
        check.track_processes_of(service.pid())?;
        check.expect_removed(service.root());
        let mut calls = 0;
        for caller in [
            None,
            Some(Role::Viewer),
            Some(Role::Operator),
            Some(Role::Admin),
        ] {
            let mut client = match caller {
                None => WsClient::connect(&service.ws_url(), None).await?,
                Some(role) => service.client(role).await?,
            };
            for (method, params, required, allowed) in method_table() {
                let expected = match (required, caller) {
                    (None, _) => allowed,
                    (Some(_), None) => Outcome::Code(-32001),
                    (Some(required), Some(role)) if role < required => Outcome::Code(-32003),
                    (Some(_), Some(_)) => allowed,
                };
                let response = client.call(method, params).await?;
                let error = error_of(&response);
                let actual = match &error {
                    Some(error) => Outcome::Code(error.code),
                    None => Outcome::Ok,
                };
                assert_eq!(actual, expected, "{method} as {caller:?}: {response}");
                assert_eq!(response["jsonrpc"], "2.0");
                let named = match (expected, required) {
                    (Outcome::Code(-32001), _) => Some(method.to_owned()),
                    (Outcome::Code(-32003), Some(required)) => Some(required.to_string()),
                    _ => None,
                };
                if let (Some(error), Some(named)) = (&error, named) {
                    assert!(
                        error.message.contains(&named),
                        "{method} as {caller:?}: {error:?} names `{named}`"
                    );
                }
                if method == "ping" {
                    assert_eq!(response["result"], "pong", "ping as {caller:?}");
                }
                calls += 1;
            }
        }
        ctx.log(format_args!("{calls} calls checked"));
    }
    check.verify(ctx)
}

/// A token signed with `secret` from raw claims (for claims the service's types cannot hold).
fn sign_raw(secret: &str, claims: &Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("encoding a JWT")
}

/// Expired, forged, foreign-secret, `alg: none`, unknown-role, claim-less and garbage tokens
/// are −32001 and leave the connection unauthenticated; the same as a bearer header is HTTP 401
/// before the upgrade, while a valid one authenticates the connection; `authenticate` reports
/// role, permissions, expiry and session; a later `authenticate` replaces the role; a session
/// whose token expires while connected gets −32001 ("expired").
#[realtest::test(timeout = "60s")]
async fn real_control_tokens_and_session_expiry(ctx: &mut Ctx) -> anyhow::Result<()> {
    let mut check = PostTestCheck::new();
    {
        let service = ServiceUnderTest::start_with(ctx, direct("testsrc"))?;
        check.track_processes_of(service.pid())?;
        check.expect_removed(service.root());
        let secret = std::fs::read_to_string(service.data_dir.join("jwt-secret"))?
            .trim()
            .to_owned();
        let now = unix_now();
        let expired = service.token_with_claims(&Claims {
            sub: "old".into(),
            role: Role::Admin,
            iat: now - 7200,
            exp: now - 3600,
        });
        let valid = service.token(Role::Admin);
        let (head, signature) = valid.rsplit_once('.').context("a JWT has three parts")?;
        let forged = format!("{head}.{}", signature.chars().rev().collect::<String>());
        let foreign = Authenticator::new("another-secret-of-sufficient-length-0123456789").mint(
            "x",
            Role::Admin,
            Duration::from_secs(600),
        );
        let payload = valid.split('.').nth(1).context("payload")?;
        let alg_none = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.");
        let unknown_role = sign_raw(
            &secret,
            &json!({ "sub": "x", "role": "root", "iat": now, "exp": now + 600 }),
        );
        let no_exp = sign_raw(&secret, &json!({ "sub": "x", "role": "admin", "iat": now }));
        let mut client = WsClient::connect(&service.ws_url(), None).await?;
        for (what, token) in [
            ("expired", expired.as_str()),
            ("forged signature", &forged),
            ("foreign secret", &foreign),
            ("alg none", &alg_none),
            ("unknown role", &unknown_role),
            ("no exp claim", &no_exp),
            ("garbage", "not-a-token"),
            ("empty", ""),
        ] {
            let error = client
                .call_err("authenticate", json!({ "auth_token": token }))
                .await?;
            assert_eq!(error.code, -32001, "{what}: {error:?}");
            let after = client.call_err("get_camera_list", json!({})).await?;
            assert_eq!(
                after.code, -32001,
                "{what} must not authenticate: {after:?}"
            );
            if what == "expired" {
                assert!(error.message.contains("expired"), "{error:?}");
            }
            if token.is_empty() {
                continue;
            }
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
            assert_eq!(refused.status, 401, "{what} as a bearer header");
        }

        // A valid token as a bearer header authenticates the connection.
        let mut bearer =
            WsClient::connect(&service.ws_url(), Some(&service.token(Role::Viewer))).await?;
        let list = bearer.call_ok("get_camera_list", json!({})).await?;
        assert_eq!(list["total"], 1, "{list}");

        // What authenticate reports; a second authenticate replaces the first: operator, admin,
        // then viewer.
        let result = client.authenticate(&service.token(Role::Operator)).await?;
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
        client.authenticate(&service.token(Role::Admin)).await?;
        client.call_ok("get_storage_info", json!({})).await?;
        let result = client.authenticate(&service.token(Role::Viewer)).await?;
        assert_eq!(result["role"], "viewer");
        assert_eq!(result["permissions"], json!(["view"]));
        let error = client.call_err("get_storage_info", json!({})).await?;
        assert_eq!(error.code, -32003);

        // A token that expires while the connection is open.
        let minter = Authenticator::new(&secret);
        let short = minter.mint("brief", Role::Operator, Duration::from_secs(2));
        let exp = minter
            .verify(&short)?
            .expires_at
            .context("a minted token has an expiry")?;
        let mut brief = WsClient::connect(&service.ws_url(), None).await?;
        brief.authenticate(&short).await?;
        brief.call_ok("get_camera_list", json!({})).await?;
        // Wait (not a timing assertion) until the token's own `exp` is reached.
        while unix_now() < exp {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let error = brief.call_err("get_camera_list", json!({})).await?;
        assert_eq!(error.code, -32001, "{error:?}");
        assert!(error.message.contains("expired"), "{error:?}");
        assert_eq!(brief.call_ok("ping", json!({})).await?, "pong");
    }
    check.verify(ctx)
}

/// Every kind of bad input gets its exact code (unknown cameras and file names outside the
/// storage dirs among them, the latter refused over HTTP too), requests without id get no reply,
/// an oversized message closes only that connection (1009), and the service keeps serving.
#[realtest::test(timeout = "60s")]
async fn real_control_bad_input_exact_codes(ctx: &mut Ctx) -> anyhow::Result<()> {
    let mut check = PostTestCheck::new();
    {
        let mut service = ServiceUnderTest::start_with(
            ctx,
            ServiceOptions {
                ..direct("testsrc")
            }
            .env("CAMERA_SERVICE_SERVER_MAX_MESSAGE_BYTES", "8192"),
        )?;
        check.track_processes_of(service.pid())?;
        check.expect_removed(service.root());
        let mut client = service.client(Role::Admin).await?;
        let reply = Duration::from_secs(10);

        let envelopes: [(&str, i64, Value); 9] = [
            ("{not json", -32700, json!(null)),
            ("", -32700, json!(null)),
            ("[]", -32600, json!(null)),
            (
                r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#,
                -32600,
                json!(null),
            ),
            ("42", -32600, json!(null)),
            (
                r#"{"jsonrpc":"1.0","id":7,"method":"ping"}"#,
                -32600,
                json!(7),
            ),
            (r#"{"id":8,"method":"ping"}"#, -32600, json!(8)),
            (
                r#"{"jsonrpc":"2.0","id":"a","method":5}"#,
                -32600,
                json!("a"),
            ),
            (
                r#"{"jsonrpc":"2.0","id":9,"method":"ping","params":[1]}"#,
                -32602,
                json!(9),
            ),
        ];
        for (text, code, id) in envelopes {
            client.send_text(text).await?;
            let response = client.next_response(reply).await?;
            let error = error_of(&response).with_context(|| format!("{text:?}: {response}"))?;
            assert_eq!(error.code, code, "{text:?}: {response}");
            assert_eq!(response["id"], id, "{text:?}: {response}");
            assert_eq!(response["jsonrpc"], "2.0");
        }

        // A request without id is a notification: no reply. The next reply is for the next id.
        client
            .send_text(r#"{"jsonrpc":"2.0","method":"get_camera_list"}"#)
            .await?;
        let id = client.send_request("ping", json!({})).await?;
        let next = client.next_response(reply).await?;
        assert_eq!(next["id"], id, "a notification got a reply: {next}");

        let unknown = client.call_err("no_such_method", json!({})).await?;
        assert_eq!(unknown.code, -32601);
        assert!(unknown.message.contains("no_such_method"), "{unknown:?}");

        let invalid_params = [
            ("get_camera_status", json!({}), "device"),
            ("get_camera_status", json!({ "device": 0 }), "device"),
            (
                "start_recording",
                json!({ "device": "camera0", "duration": "ten" }),
                "duration",
            ),
            (
                "start_recording",
                json!({ "device": "camera0", "duration": 0 }),
                "duration",
            ),
            (
                "start_recording",
                json!({ "device": "camera0", "duration": -5 }),
                "duration",
            ),
            (
                "start_recording",
                json!({ "device": "camera0", "format": "avi" }),
                "format",
            ),
            (
                "take_snapshot",
                json!({ "device": "camera0", "quality": 500 }),
                "quality",
            ),
            (
                "take_snapshot",
                json!({ "device": "camera0", "quality": 0 }),
                "quality",
            ),
            (
                "take_snapshot",
                json!({ "device": "camera0", "format": "gif" }),
                "format",
            ),
            ("list_recordings", json!({ "limit": -1 }), "limit"),
            ("list_snapshots", json!({ "offset": "x" }), "offset"),
            ("get_recording_info", json!({}), "filename"),
            ("delete_snapshot", json!({ "filename": 3 }), "filename"),
            (
                "set_retention_policy",
                json!({ "policy_type": "forever", "enabled": true }),
                "policy_type",
            ),
            ("authenticate", json!({}), "auth_token"),
        ];
        for (method, params, name) in invalid_params {
            let error = client.call_err(method, params.clone()).await?;
            assert_eq!(error.code, -32602, "{method} {params}: {error:?}");
            assert!(
                error.message.contains(name),
                "{method} {params}: {error:?} names `{name}`"
            );
        }
        for device in ["camera99", "/dev/video0"] {
            for method in [
                "get_camera_status",
                "get_camera_capabilities",
                "take_snapshot",
                "start_recording",
                "stop_recording",
            ] {
                let error = client.call_err(method, json!({ "device": device })).await?;
                assert_eq!(error.code, -32004, "{method} {device}: {error:?}");
                assert!(error.message.contains(device), "{method}: {error:?}");
            }
        }

        // File names never leave the storage dirs: not over the API, not over HTTP.
        let secret = service.data_dir.join("jwt-secret");
        let outside = service
            .data_dir
            .parent()
            .context("data dir has a parent")?
            .join("outside.jpg");
        std::fs::write(&outside, b"not yours")?;
        for name in [
            "../jwt-secret",
            "../../outside.jpg",
            "/etc/passwd",
            "a/b.jpg",
            "..",
            "nul\u{0}.jpg",
            "",
        ] {
            for method in [
                "delete_snapshot",
                "delete_recording",
                "get_snapshot_info",
                "get_recording_info",
            ] {
                let error = client.call_err(method, json!({ "filename": name })).await?;
                assert_eq!(error.code, -32602, "{method} {name:?}: {error:?}");
            }
            let error = client
                .call_err(
                    "take_snapshot",
                    json!({ "device": "camera0", "filename": name }),
                )
                .await?;
            assert_eq!(error.code, -32602, "take_snapshot {name:?}: {error:?}");
        }
        let bearer = format!("Bearer {}", service.token(Role::Admin));
        // A name that leaves its directory is a bad request; a kind that is not served is not found.
        for (path, code) in [
            ("/files/snapshots/..%2Fjwt-secret", 400),
            ("/files/recordings/%2E%2E%2Fjwt-secret", 400),
            ("/files/other/jwt-secret", 404),
        ] {
            let response = http::get(service.addr, path, &[("Authorization", &bearer)])?;
            assert_eq!(response.status, code, "{path}: {}", response.text());
            assert!(
                !response.text().contains(&std::fs::read_to_string(&secret)?),
                "{path} leaked the secret"
            );
        }
        assert!(
            secret.exists() && outside.exists(),
            "nothing outside the storage dirs may be touched"
        );
        let idle = client
            .call_err("stop_recording", json!({ "device": "camera0" }))
            .await?;
        assert_eq!(idle.code, -32005, "not recording: {idle:?}");

        // Oversized: that connection is closed with 1009, the others keep working.
        let mut big = WsClient::connect(&service.ws_url(), None).await?;
        big.send_text(
            json!({ "jsonrpc": "2.0", "id": 1, "method": "ping", "params": { "pad": "x".repeat(20_000) } })
                .to_string(),
        )
        .await?;
        assert_eq!(big.wait_close(reply).await?, Some(1009));
        assert_eq!(client.call_ok("ping", json!({})).await?, "pong");
        assert!(
            service.is_running()?,
            "the service survived every bad input"
        );
    }
    check.verify(ctx)
}
