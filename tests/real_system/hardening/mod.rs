//! The service against hostile and careless clients (issue 10): each test makes one attack for
//! real against the service binary on loopback — bounded in count and time — and asserts the
//! documented outcome, never how fast it came. Names: `real_hardening_<what>`.

mod auth;
mod files;
mod memory;
mod processes;
mod protocol;
mod readiness;
mod recording;
mod slots;
mod slowloris;
mod startup;
