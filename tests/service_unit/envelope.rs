//! JSON-RPC envelope parsing, responses, the method table and the error code table.

use camera_service::auth::Role;
use camera_service::rpc::{
    failure, notification, parse_request, success, ErrorKind, Method, RequestId, RpcError,
};
use serde_json::json;

#[realtest::test]
fn requests_and_notifications_parse() -> anyhow::Result<()> {
    let request = parse_request(
        r#"{"jsonrpc":"2.0","id":"x1","method":"take_snapshot","params":{"device":"camera0"}}"#,
    )
    .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    assert_eq!(request.id.map(|id| id.to_value()), Some(json!("x1")));
    assert_eq!(request.method, "take_snapshot");
    assert_eq!(request.params["device"], "camera0");
    let note = parse_request(r#"{"jsonrpc":"2.0","method":"ping"}"#)
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    assert!(note.id.is_none(), "no id: a notification, no reply");
    assert!(note.params.is_empty());
    let null_id = parse_request(r#"{"jsonrpc":"2.0","id":null,"method":"ping","params":null}"#)
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    assert_eq!(null_id.id.map(|id| id.to_value()), Some(json!(null)));
    Ok(())
}

#[realtest::test]
fn bad_envelopes_get_the_right_code_and_id() -> anyhow::Result<()> {
    let cases = [
        ("{", -32700, json!(null)),
        ("", -32700, json!(null)),
        ("[]", -32600, json!(null)),
        ("\"ping\"", -32600, json!(null)),
        (
            r#"{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}"#,
            -32600,
            json!(null),
        ),
        (r#"{"id":3,"method":"ping"}"#, -32600, json!(3)),
        (r#"{"jsonrpc":"2.0","id":4}"#, -32600, json!(4)),
        (
            r#"{"jsonrpc":"2.0","id":5,"method":"ping","params":"x"}"#,
            -32602,
            json!(5),
        ),
    ];
    for (text, code, id) in cases {
        let error = parse_request(text).expect_err(text);
        assert_eq!(error.error.kind.code(), code, "{text}");
        assert_eq!(error.id.to_value(), id, "{text}");
    }
    Ok(())
}

#[realtest::test]
fn ids_are_echoed_exactly_as_sent() -> anyhow::Result<()> {
    for id in [
        "10000000000000000000000000000000000000000",
        "-12345678901234567890123",
        "1.50",
        "1e2",
        r#""caf\u00e9""#,
        "null",
    ] {
        let request = parse_request(&format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"ping"}}"#))
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let reply_id = request.id.expect("an id");
        assert_eq!(reply_id.as_json(), id);
        assert!(
            success(&reply_id, json!("pong")).contains(&format!(r#""id":{id},"#)),
            "{id}"
        );
    }
    // An envelope error after the id was read still echoes it exactly.
    let error =
        parse_request(r#"{"id":10000000000000000000000000000000000000001,"method":"ping"}"#)
            .expect_err("no jsonrpc member");
    assert_eq!(
        error.id.as_json(),
        "10000000000000000000000000000000000000001"
    );
    for not_an_id in ["true", "[1]", r#"{"a":1}"#] {
        assert!(RequestId::parse(not_an_id).is_none(), "{not_an_id}");
    }
    Ok(())
}

#[realtest::test]
fn responses_have_the_json_rpc_shape() -> anyhow::Result<()> {
    let id = |text: &str| RequestId::parse(text).expect("an id");
    let parsed = |text: String| serde_json::from_str::<serde_json::Value>(&text).expect("JSON");
    assert_eq!(
        parsed(success(&id("1"), json!("pong"))),
        json!({"jsonrpc":"2.0","id":1,"result":"pong"})
    );
    let error = RpcError::new(ErrorKind::CameraNotFound, "Camera not found: `x`");
    assert_eq!(
        parsed(failure(&id(r#""a""#), &error)),
        json!({"jsonrpc":"2.0","id":"a","error":{"code":-32004,"message":"Camera not found: `x`"}})
    );
    assert_eq!(
        notification("camera_status_update", json!({"device":"camera0"})),
        json!({"jsonrpc":"2.0","method":"camera_status_update","params":{"device":"camera0"}})
    );
    Ok(())
}

#[realtest::test]
fn error_codes_match_the_design() -> anyhow::Result<()> {
    let table = [
        (ErrorKind::ParseError, -32700),
        (ErrorKind::InvalidRequest, -32600),
        (ErrorKind::MethodNotFound, -32601),
        (ErrorKind::InvalidParams, -32602),
        (ErrorKind::Internal, -32603),
        (ErrorKind::AuthFailed, -32001),
        (ErrorKind::RateLimited, -32002),
        (ErrorKind::InsufficientRole, -32003),
        (ErrorKind::CameraNotFound, -32004),
        (ErrorKind::InvalidState, -32005),
        (ErrorKind::MediaBackend, -32006),
        (ErrorKind::FileNotFound, -32007),
        (ErrorKind::StorageFull, -32008),
        (ErrorKind::Busy, -32009),
    ];
    for (kind, code) in table {
        assert_eq!(kind.code(), code, "{kind:?}");
    }
    Ok(())
}

#[realtest::test]
fn method_table_has_the_original_roles() -> anyhow::Result<()> {
    for method in Method::ALL {
        assert_eq!(Method::from_name(method.name()), Some(method));
    }
    assert_eq!(
        Method::from_name("ping").and_then(Method::required_role),
        None
    );
    assert_eq!(
        Method::from_name("authenticate").and_then(Method::required_role),
        None
    );
    let expect = [
        ("get_camera_list", Role::Viewer),
        ("list_snapshots", Role::Viewer),
        ("take_snapshot", Role::Operator),
        ("delete_recording", Role::Operator),
        ("get_metrics", Role::Admin),
        ("cleanup_old_files", Role::Admin),
    ];
    for (name, role) in expect {
        assert_eq!(
            Method::from_name(name).and_then(Method::required_role),
            Some(role),
            "{name}"
        );
    }
    assert_eq!(Method::from_name("start_streaming"), None);
    Ok(())
}
