//! JWT and API key verification, the secret file, role order.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use camera_service::auth::{
    hash_api_key, load_or_create_secret, unix_now, AuthError, Authenticator, Claims, Role,
};

const SECRET: &str = "0123456789abcdef0123456789abcdef-test";

#[realtest::test]
fn roles_are_ordered_and_parsed() -> anyhow::Result<()> {
    assert!(Role::Viewer < Role::Operator && Role::Operator < Role::Admin);
    assert_eq!("operator".parse::<Role>(), Ok(Role::Operator));
    assert!("root".parse::<Role>().unwrap_err().contains("root"));
    assert_eq!(Role::Admin.permissions(), ["view", "control", "admin"]);
    Ok(())
}

#[realtest::test]
fn minted_tokens_verify_with_claims() -> anyhow::Result<()> {
    let auth = Authenticator::new(SECRET);
    let token = auth.mint("alice", Role::Operator, Duration::from_secs(3600));
    let caller = auth.verify(&token)?;
    assert_eq!(caller.subject, "alice");
    assert_eq!(caller.role, Role::Operator);
    let exp = caller.expires_at.expect("tokens expire");
    assert!((3599..=3601).contains(&(exp - unix_now())), "exp {exp}");
    Ok(())
}

#[realtest::test]
fn expired_foreign_and_tampered_tokens_are_refused() -> anyhow::Result<()> {
    let auth = Authenticator::new(SECRET);
    let now = unix_now();
    let expired = auth.encode(&Claims {
        sub: "a".into(),
        role: Role::Admin,
        iat: now - 20,
        exp: now - 10,
    });
    assert!(matches!(auth.verify(&expired), Err(AuthError::Expired)));
    let foreign = Authenticator::new("a-completely-different-secret-0123456789").mint(
        "a",
        Role::Admin,
        Duration::from_secs(60),
    );
    assert!(matches!(auth.verify(&foreign), Err(AuthError::Invalid(_))));
    // Raise the role inside a validly signed token: the signature no longer matches.
    let token = auth.mint("a", Role::Viewer, Duration::from_secs(60));
    let parts: Vec<&str> = token.split('.').collect();
    let admin_payload = {
        use std::io::Write;
        let claims = format!(
            r#"{{"sub":"a","role":"admin","iat":{now},"exp":{}}}"#,
            now + 60
        );
        let mut out = Vec::new();
        write!(out, "{}", base64url(claims.as_bytes()))?;
        String::from_utf8(out)?
    };
    let tampered = format!("{}.{}.{}", parts[0], admin_payload, parts[2]);
    assert!(matches!(auth.verify(&tampered), Err(AuthError::Invalid(_))));
    assert!(matches!(auth.verify("garbage"), Err(AuthError::Invalid(_))));
    Ok(())
}

#[realtest::test]
fn nbf_in_the_future_and_exp_past_year_9999_are_refused() -> anyhow::Result<()> {
    let auth = Authenticator::new(SECRET);
    let now = unix_now();
    let early = auth.encode_claims(&serde_json::json!({
        "sub": "a", "role": "admin", "iat": now, "exp": now + 60, "nbf": now + 30,
    }));
    assert!(matches!(auth.verify(&early), Err(AuthError::NotYetValid)));
    let started = auth.encode_claims(&serde_json::json!({
        "sub": "a", "role": "admin", "iat": now, "exp": now + 60, "nbf": now - 1,
    }));
    assert_eq!(auth.verify(&started)?.role, Role::Admin);
    // `token --ttl 1000000y` minted such tokens; their expiry cannot be represented as a date.
    for exp in [
        camera_service::auth::MAX_EXP + 1,
        now + 31_557_600_000_000,
        u64::MAX,
    ] {
        let huge = auth.encode(&Claims {
            sub: "a".into(),
            role: Role::Admin,
            iat: now,
            exp,
        });
        match auth.verify(&huge) {
            Err(AuthError::Invalid(reason)) => {
                assert!(reason.contains("9999-12-31"), "{exp}: {reason}")
            }
            other => panic!("exp {exp}: {other:?}"),
        }
    }
    let last = auth.encode(&Claims {
        sub: "a".into(),
        role: Role::Admin,
        iat: now,
        exp: camera_service::auth::MAX_EXP,
    });
    assert!(
        auth.verify(&last).is_ok(),
        "the last representable second is fine"
    );
    Ok(())
}

#[realtest::test]
fn refusals_say_what_was_wrong_without_parser_internals() -> anyhow::Result<()> {
    let auth = Authenticator::new(SECRET);
    let now = unix_now();
    let payload = base64url(
        format!(
            r#"{{"sub":"a","role":"admin","iat":{now},"exp":{}}}"#,
            now + 60
        )
        .as_bytes(),
    );
    let alg_none = format!("{}.{payload}.", base64url(br#"{"alg":"none","typ":"JWT"}"#));
    let role_root = auth.encode_claims(&serde_json::json!({
        "sub": "a", "role": "root", "iat": now, "exp": now + 60,
    }));
    let float_exp = auth.encode_claims(&serde_json::json!({
        "sub": "a", "role": "admin", "iat": now, "exp": 1e30,
    }));
    let no_sub = auth.encode_claims(&serde_json::json!({
        "role": "admin", "iat": now, "exp": now + 60,
    }));
    let cases = [
        (alg_none.as_str(), "`alg` HS256"),
        ("garbage", "not a JWT"),
        ("a.b.c", "base64url"),
        (role_root.as_str(), "viewer, operator or admin"),
        (float_exp.as_str(), "whole numbers"),
        (no_sub.as_str(), "`sub`"),
    ];
    for (token, expected) in cases {
        let message = auth.verify(token).unwrap_err().to_string();
        assert!(message.contains(expected), "{token}: {message}");
        for internal in [
            "unknown variant",
            "expected one of",
            "invalid type",
            "Json",
            "Error(",
        ] {
            assert!(!message.contains(internal), "{token}: {message}");
        }
    }
    Ok(())
}

#[realtest::test]
async fn a_panicking_handler_becomes_an_internal_error() -> anyhow::Result<()> {
    use camera_service::rpc::{catch_panic, ErrorKind};
    let fine = catch_panic("ping", async { Ok(serde_json::json!("pong")) }).await;
    assert_eq!(fine, Ok(serde_json::json!("pong")));
    let panicked = catch_panic("take_snapshot", async {
        if unix_now() > 0 {
            panic!("index out of bounds");
        }
        Ok(serde_json::json!(null))
    })
    .await
    .unwrap_err();
    assert_eq!(panicked.kind, ErrorKind::Internal);
    assert_eq!(panicked.kind.code(), -32603);
    assert!(panicked.message.contains("take_snapshot"), "{panicked:?}");
    Ok(())
}

#[realtest::test]
fn api_keys_are_stored_hashed(ctx: &mut realtest::Ctx) -> anyhow::Result<()> {
    let dir = ctx.temp_dir()?;
    let file = dir.join("keys.toml");
    let key = "ck_live_7d1f2e";
    assert_eq!(
        hash_api_key("abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    std::fs::write(
        &file,
        format!(
            "[[key]]\nname = \"ci\"\nrole = \"operator\"\nsha256 = \"{}\"\n",
            hash_api_key(key)
        ),
    )?;
    let auth = Authenticator::new(SECRET).with_api_key_file(&file)?;
    let caller = auth.verify(key)?;
    assert_eq!(
        (caller.subject.as_str(), caller.role, caller.expires_at),
        ("ci", Role::Operator, None)
    );
    assert!(
        matches!(auth.verify("ck_live_wrong"), Err(AuthError::Invalid(_))),
        "an unknown key is an invalid credential, not an expired one"
    );
    assert!(
        !std::fs::read_to_string(&file)?.contains(key),
        "the file holds only the hash"
    );
    std::fs::write(
        &file,
        "[[key]]\nname = \"x\"\nrole = \"admin\"\nsha256 = \"abc\"\n",
    )?;
    let error = Authenticator::new(SECRET)
        .with_api_key_file(&file)
        .unwrap_err();
    assert!(error.to_string().contains("64 hex digits"), "{error}");
    Ok(())
}

#[realtest::test]
fn secret_is_created_once_with_mode_0600(ctx: &mut realtest::Ctx) -> anyhow::Result<()> {
    let dir = ctx.temp_dir()?;
    let path = dir.join("nested/jwt-secret");
    let (first, created) = load_or_create_secret(&path)?;
    assert!(created);
    assert_eq!(first.len(), 64);
    assert_eq!(
        std::fs::metadata(&path)?.permissions().mode() & 0o777,
        0o600
    );
    let (second, created_again) = load_or_create_secret(&path)?;
    assert!(!created_again);
    assert_eq!(first, second);
    std::fs::write(&path, "short")?;
    assert!(matches!(
        load_or_create_secret(&path),
        Err(AuthError::SecretTooShort { .. })
    ));
    Ok(())
}

fn base64url(data: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}
