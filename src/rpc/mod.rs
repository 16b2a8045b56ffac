//! JSON-RPC 2.0: envelope, errors, the method table and dispatch.

mod dispatch;
mod envelope;
mod error;
mod methods;
mod params;

pub use dispatch::{dispatch, Session};
pub use envelope::{
    failure, notification, parse_request, success, EnvelopeError, Request, RequestId,
};
pub use error::{catch_panic, ErrorKind, RpcError};
pub use methods::Method;
