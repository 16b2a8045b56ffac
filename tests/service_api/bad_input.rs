//! Bad input: each case gets a clear JSON-RPC error and the service stays up.

use std::time::Duration;

use camera_service::auth::Role;
use serde_json::json;

use crate::support::http;
use crate::support::service::ServiceUnderTest;
use crate::support::ws_client::{error_of, WsClient};

const REPLY: Duration = Duration::from_secs(10);

#[realtest::test(timeout = "60s")]
async fn malformed_envelopes_get_standard_errors(ctx: &mut realtest::Ctx) -> anyhow::Result<()> {
    let service = ServiceUnderTest::start(ctx)?;
    let mut client =
        WsClient::connect_authenticated(&service.ws_url(), &service.token(Role::Admin)).await?;
    let cases: [(&str, i64, serde_json::Value); 7] = [
        ("{not json", -32700, json!(null)),
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
    for (text, code, id) in cases {
        client.send_text(text).await?;
        let response = client.next_response(REPLY).await?;
        let error = error_of(&response).unwrap_or_else(|| panic!("{text}: no error in {response}"));
        assert_eq!(error.code, code, "{text}: {response}");
        assert_eq!(response["id"], id, "{text}: {response}");
        assert_eq!(response["jsonrpc"], "2.0");
    }
    let error = client.call_err("no_such_method", json!({})).await?;
    assert_eq!(error.code, -32601);
    assert!(error.message.contains("no_such_method"));
    // Still serving after all of it.
    assert_eq!(client.call_ok("ping", json!({})).await?, "pong");
    Ok(())
}

#[realtest::test(timeout = "60s")]
async fn params_are_checked_and_named(ctx: &mut realtest::Ctx) -> anyhow::Result<()> {
    let service = ServiceUnderTest::start(ctx)?;
    let mut client =
        WsClient::connect_authenticated(&service.ws_url(), &service.token(Role::Admin)).await?;
    let cases = [
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
            "take_snapshot",
            json!({ "device": "camera0", "quality": 500 }),
            "quality",
        ),
        (
            "take_snapshot",
            json!({ "device": "camera0", "format": "gif" }),
            "format",
        ),
        ("list_recordings", json!({ "limit": -1 }), "limit"),
        ("get_recording_info", json!({}), "filename"),
        (
            "set_retention_policy",
            json!({ "policy_type": "forever", "enabled": true }),
            "policy_type",
        ),
        ("authenticate", json!({}), "auth_token"),
    ];
    for (method, params, name) in cases {
        let error = client.call_err(method, params.clone()).await?;
        assert_eq!(error.code, -32602, "{method} {params}: {error:?}");
        assert!(
            error.message.contains(name),
            "{method} {params}: {error:?} should name `{name}`"
        );
    }
    Ok(())
}

#[realtest::test(timeout = "60s")]
async fn unknown_camera_is_32004(ctx: &mut realtest::Ctx) -> anyhow::Result<()> {
    let service = ServiceUnderTest::start(ctx)?;
    let mut client =
        WsClient::connect_authenticated(&service.ws_url(), &service.token(Role::Admin)).await?;
    for method in [
        "get_camera_status",
        "get_camera_capabilities",
        "take_snapshot",
        "start_recording",
        "stop_recording",
    ] {
        let error = client
            .call_err(method, json!({ "device": "camera99" }))
            .await?;
        assert_eq!(error.code, -32004, "{method}: {error:?}");
        assert!(error.message.contains("camera99"));
    }
    Ok(())
}

#[realtest::test(timeout = "60s")]
async fn file_names_never_leave_the_storage_dirs(ctx: &mut realtest::Ctx) -> anyhow::Result<()> {
    let service = ServiceUnderTest::start(ctx)?;
    let secret = service.data_dir.join("jwt-secret");
    let outside = service
        .data_dir
        .parent()
        .expect("data dir has a parent")
        .join("outside.jpg");
    std::fs::write(&outside, b"not yours")?;
    let mut client =
        WsClient::connect_authenticated(&service.ws_url(), &service.token(Role::Admin)).await?;
    let bad_names = [
        "../jwt-secret",
        "../../outside.jpg",
        "/etc/passwd",
        "a/b.jpg",
        "nul\u{0}byte.jpg",
        "..",
        "",
    ];
    for name in bad_names {
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
    let token = service.token(Role::Admin);
    for path in [
        "/files/snapshots/..%2Fjwt-secret",
        "/files/recordings/%2E%2E%2Fjwt-secret",
        "/files/other/jwt-secret",
    ] {
        let response = http::get(
            service.addr,
            path,
            &[("Authorization", &format!("Bearer {token}"))],
        )?;
        assert!(
            matches!(response.status, 400 | 404),
            "{path}: {}",
            response.status
        );
        assert!(
            !response.text().contains(&std::fs::read_to_string(&secret)?),
            "{path} leaked the secret"
        );
    }
    assert!(
        secret.exists() && outside.exists(),
        "nothing outside the storage dirs may be touched"
    );
    let missing = client
        .call_err("get_snapshot_info", json!({ "filename": "missing.jpg" }))
        .await?;
    assert_eq!(missing.code, -32007);
    Ok(())
}
