//! The `camera-service` binary: `serve`, `token`, `check-config`.

use std::path::Path;
use std::process::ExitCode;

use camera_service::cli::{Cli, Command};
use camera_service::config::Config;
use camera_service::{auth, daemon, service};
use clap::Parser;
use tracing_subscriber::EnvFilter;

use camera_service::daemon::{EXIT_CONFIG, EXIT_CREDENTIALS, EXIT_FAILURE};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config } => serve(config.as_deref()),
        Command::Token { role, ttl, config } => {
            let config = match load(config.as_deref()) {
                Ok(config) => config,
                Err(code) => return code,
            };
            match service::load_authenticator(&config) {
                Ok((auth, _, _)) => {
                    let ttl = ttl.unwrap_or(config.auth.token_ttl.0);
                    if auth::unix_now().saturating_add(ttl.as_secs()) > auth::MAX_EXP {
                        eprintln!(
                            "error: a lifetime of {} ends after 9999-12-31T23:59:59Z, the latest \
                             expiry the service accepts",
                            humantime::format_duration(ttl)
                        );
                        return ExitCode::from(EXIT_CONFIG);
                    }
                    println!("{}", auth.mint(&format!("cli-{role}"), role, ttl));
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(EXIT_CREDENTIALS)
                }
            }
        }
        Command::CheckConfig { config } => match load(config.as_deref()) {
            Ok(config) => {
                println!("# configuration OK");
                print!(
                    "{}",
                    toml::to_string(&config).expect("a valid config serialises")
                );
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
    }
}

fn load(file: Option<&Path>) -> Result<Config, ExitCode> {
    Config::load(file, std::env::vars()).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(EXIT_CONFIG)
    })
}

fn serve(file: Option<&Path>) -> ExitCode {
    let config = match load(file) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.logging.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: failed to start the async runtime: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    match runtime.block_on(daemon::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::from(e.exit_code())
        }
    }
}
