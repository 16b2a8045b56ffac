//! Exit statuses of `serve` for what is wrong around it (minor item: a port in use or a data
//! directory that is a file exited 1, like any other failure; config errors exit 2). Each is a
//! real start of the binary that must end by itself.

use std::process::Command;
use std::time::Duration;

use realtest::Ctx;

use crate::support::service::BINARY;

/// Runs `serve` with the test defaults plus `env`; returns (exit code, stderr).
fn serve(ctx: &mut Ctx, env: &[(&str, String)]) -> anyhow::Result<(Option<i32>, String)> {
    let dir = ctx.temp_dir()?;
    let mut command = Command::new(BINARY);
    command
        .arg("serve")
        .current_dir(&dir)
        .env("CAMERA_SERVICE_SERVER_PORT", "0")
        .env("CAMERA_SERVICE_MEDIAMTX_MODE", "off")
        .env("CAMERA_SERVICE_CAMERAS_DISCOVER_V4L2", "false")
        .env("CAMERA_SERVICE_STORAGE_DATA_DIR", dir.join("data"));
    for (name, value) in env {
        command.env(name, value);
    }
    let out = ctx.output(&mut command, Duration::from_secs(60))?;
    Ok((
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// Port in use → 3, data directory is a file → 4, JWT secret file too short → 5, an invalid
/// key → 2; each message names what is wrong.
#[realtest::test(timeout = "120s")]
async fn real_hardening_environment_failures_have_their_own_exit_codes(
    ctx: &mut Ctx,
) -> anyhow::Result<()> {
    let taken = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = taken.local_addr()?.port().to_string();
    let (code, stderr) = serve(ctx, &[("CAMERA_SERVICE_SERVER_PORT", port.clone())])?;
    assert_eq!(code, Some(3), "{stderr}");
    assert!(
        stderr.contains(&format!("failed to listen on 127.0.0.1:{port}")),
        "{stderr}"
    );
    assert!(stderr.contains("in use"), "{stderr}");
    drop(taken);

    let file = ctx.temp_dir()?.join("not-a-directory");
    std::fs::write(&file, "a file")?;
    let (code, stderr) = serve(
        ctx,
        &[(
            "CAMERA_SERVICE_STORAGE_DATA_DIR",
            file.display().to_string(),
        )],
    )?;
    assert_eq!(code, Some(4), "{stderr}");
    assert!(stderr.contains(&file.display().to_string()), "{stderr}");

    let secret = ctx.temp_dir()?.join("short-secret");
    std::fs::write(&secret, "short")?;
    let (code, stderr) = serve(
        ctx,
        &[(
            "CAMERA_SERVICE_AUTH_JWT_SECRET_FILE",
            secret.display().to_string(),
        )],
    )?;
    assert_eq!(code, Some(5), "{stderr}");
    assert!(stderr.contains("fewer than 32 characters"), "{stderr}");

    let (code, stderr) = serve(ctx, &[("CAMERA_SERVICE_SERVER_PROT", "1".into())])?;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("server.prot"), "{stderr}");
    Ok(())
}
