//! Authentication through the binary's `token` command. Tokens, roles and sessions over the API
//! are scenario 4 of the real-system suite (`tests/real_system/scenarios/control.rs`).

use serde_json::json;

use crate::support::service::ServiceUnderTest;
use crate::support::ws_client::WsClient;

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
