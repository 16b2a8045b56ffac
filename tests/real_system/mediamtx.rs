//! A real MediaMTX process starts from a config written before start and answers its API.

use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use realtest::Ctx;

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn mediamtx_binary(ctx: &Ctx) -> anyhow::Result<std::path::PathBuf> {
    Ok(ctx
        .probe()
        .mediamtx
        .found()
        .context("the needs-mediamtx gate let the test run without a binary")?
        .path
        .clone())
}

/// Starts MediaMTX with RTSP and the API on free loopback ports (other protocols off), waits for
/// its API to answer 2xx, and checks that the config it reports is the one written.
#[realtest::test(tags = ["needs-mediamtx"], timeout = "60s")]
async fn mediamtx_starts_on_free_ports_and_answers_its_api(ctx: &mut Ctx) -> anyhow::Result<()> {
    let dir = ctx.temp_dir()?;
    let (api_port, rtsp_port) = (free_port()?, free_port()?);
    let config = dir.join("mediamtx.yml");
    std::fs::write(
        &config,
        format!(
            "logLevel: info\napi: yes\napiAddress: 127.0.0.1:{api_port}\nrtsp: yes\n\
             rtspTransports: [tcp]\nrtspAddress: 127.0.0.1:{rtsp_port}\nrtmp: no\nhls: no\n\
             webrtc: no\nsrt: no\nmetrics: no\npprof: no\nplayback: no\npaths:\n  all_others:\n"
        ),
    )?;
    let server = ctx.spawn(
        Command::new(mediamtx_binary(ctx)?)
            .arg(&config)
            .current_dir(&dir),
    )?;
    server.wait_for_output_line(
        |line| line.contains("[API] listener opened"),
        Duration::from_secs(20),
    )?;

    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let url = format!("http://127.0.0.1:{api_port}/v3/config/global/get");
    let deadline = Instant::now() + Duration::from_secs(20);
    let global: serde_json::Value = loop {
        match client.get(&url).send().await {
            Ok(response) if response.status().is_success() => break response.json().await?,
            Ok(response) if Instant::now() >= deadline => {
                anyhow::bail!("{url} answered {}", response.status())
            }
            Err(err) if Instant::now() >= deadline => return Err(err).context(url),
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    ensure!(global["api"] == true, "api: {}", global["api"]);
    ensure!(
        global["apiAddress"] == format!("127.0.0.1:{api_port}"),
        "apiAddress: {}",
        global["apiAddress"]
    );
    ensure!(
        global["rtspAddress"] == format!("127.0.0.1:{rtsp_port}"),
        "rtspAddress: {}",
        global["rtspAddress"]
    );
    server.stop(Duration::from_secs(5))?;
    Ok(())
}
