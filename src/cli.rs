//! The command line: `serve`, `token`, `check-config`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::auth::Role;

/// Camera service: cameras, snapshots and recordings over an authenticated WebSocket JSON-RPC API.
#[derive(Debug, Parser)]
#[command(name = "camera-service", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service.
    Serve {
        /// Configuration file (TOML); without it the defaults apply.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Print a JWT signed with the configured secret (created on first use).
    Token {
        /// Role of the token.
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// Lifetime, e.g. `1h`, `30m`, `7d` (default: `auth.token_ttl`).
        #[arg(long, value_parser = humantime::parse_duration)]
        ttl: Option<Duration>,
        /// Configuration file (TOML).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Validate the configuration (file plus environment overrides) and print the effective one.
    CheckConfig {
        /// Configuration file (TOML).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

fn parse_role(text: &str) -> Result<Role, String> {
    text.parse()
}
