//! The HTTP side: WebSocket JSON-RPC at `/ws`, `GET /health`, `GET /ready`, and authenticated
//! downloads under `/files/`.

mod files;
mod outbox;
mod rate_limit;
mod server;
mod slots;
mod ws;

pub use rate_limit::RateLimiter;
pub use server::{serve, ApiState};
