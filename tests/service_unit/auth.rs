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
