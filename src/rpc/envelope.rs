//! JSON-RPC 2.0 framing: parsing requests and building responses and notifications.
//!
//! Request ids are kept as the client wrote them and echoed verbatim: a number such as
//! `10000000000000000000000000000000000000000` does not fit any machine number and would come
//! back as `1e+40` after a round trip through `serde_json::Value`.

use std::collections::HashMap;

use serde_json::value::RawValue;
use serde_json::{json, Map, Value};

use super::error::{ErrorKind, RpcError};

/// A request id exactly as sent: a JSON string, number or null. Absent ids make a notification.
#[derive(Debug, Clone)]
pub struct RequestId(Box<RawValue>);

impl RequestId {
    /// The `null` id of replies to requests whose id is unknown.
    pub fn null() -> Self {
        Self(RawValue::from_string("null".to_owned()).expect("null is JSON"))
    }

    /// `text` as an id when it is one JSON string, number or null.
    pub fn parse(text: &str) -> Option<Self> {
        let raw: Box<RawValue> = serde_json::from_str(text).ok()?;
        let is_id = match raw.get().as_bytes().first() {
            Some(b'"' | b'-' | b'0'..=b'9') => true,
            Some(b'n') => raw.get() == "null",
            _ => false,
        };
        is_id.then_some(Self(raw))
    }

    /// The id's JSON text, as received.
    pub fn as_json(&self) -> &str {
        self.0.get()
    }

    /// The id as a JSON value (numbers beyond 64 bits lose precision; for comparisons and logs).
    pub fn to_value(&self) -> Value {
        serde_json::from_str(self.as_json()).unwrap_or(Value::Null)
    }
}

impl PartialEq for RequestId {
    fn eq(&self, other: &Self) -> bool {
        self.as_json() == other.as_json()
    }
}

/// A parsed request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// `None` for a notification (no reply is sent).
    pub id: Option<RequestId>,
    /// The method name.
    pub method: String,
    /// Named params (absent params are an empty object).
    pub params: Map<String, Value>,
}

/// Why a text message is not a usable request, with the id to reply to (null when unknown).
#[derive(Debug, Clone, PartialEq)]
pub struct EnvelopeError {
    /// The id to put in the error response.
    pub id: RequestId,
    /// The error.
    pub error: RpcError,
}

/// Parses one text message. Batches are refused with −32600 (the service does not batch).
pub fn parse_request(text: &str) -> Result<Request, EnvelopeError> {
    let parse_error = |e: serde_json::Error| EnvelopeError {
        id: RequestId::null(),
        error: RpcError::new(ErrorKind::ParseError, format!("Parse error: {e}")),
    };
    let invalid = |id: RequestId, why: &str| EnvelopeError {
        id,
        error: RpcError::new(ErrorKind::InvalidRequest, format!("Invalid Request: {why}")),
    };
    let message: &RawValue = serde_json::from_str(text).map_err(parse_error)?;
    let mut object: HashMap<String, &RawValue> = match message.get().as_bytes().first() {
        Some(b'{') => serde_json::from_str(message.get()).map_err(parse_error)?,
        Some(b'[') => {
            return Err(invalid(
                RequestId::null(),
                "batch requests are not supported",
            ))
        }
        _ => {
            return Err(invalid(
                RequestId::null(),
                "a request must be a JSON object",
            ))
        }
    };
    let id =
        match object.remove("id") {
            None => None,
            Some(raw) => Some(RequestId::parse(raw.get()).ok_or_else(|| {
                invalid(RequestId::null(), "`id` must be a string, number or null")
            })?),
        };
    let reply_id = id.clone().unwrap_or_else(RequestId::null);
    let member = |object: &mut HashMap<String, &RawValue>, name: &str| {
        object
            .remove(name)
            .map(|raw| serde_json::from_str::<Value>(raw.get()).expect("a parsed member is JSON"))
    };
    if member(&mut object, "jsonrpc") != Some(Value::String("2.0".into())) {
        return Err(invalid(reply_id, "`jsonrpc` must be \"2.0\""));
    }
    let method = match member(&mut object, "method") {
        Some(Value::String(method)) => method,
        _ => return Err(invalid(reply_id, "`method` must be a string")),
    };
    let params = match member(&mut object, "params") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(params)) => params,
        Some(_) => {
            return Err(EnvelopeError {
                id: reply_id,
                error: RpcError::new(
                    ErrorKind::InvalidParams,
                    "invalid params: `params` must be an object of named params",
                ),
            })
        }
    };
    Ok(Request { id, method, params })
}

/// A success response, as JSON text.
pub fn success(id: &RequestId, result: Value) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{},"result":{result}}}"#,
        id.as_json()
    )
}

/// An error response, as JSON text.
pub fn failure(id: &RequestId, error: &RpcError) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{},"error":{}}}"#,
        id.as_json(),
        error.to_json()
    )
}

/// A server-to-client notification.
pub fn notification(method: &str, params: Value) -> Value {
    json!({ "jsonrpc": "2.0", "method": method, "params": params })
}
