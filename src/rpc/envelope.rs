//! JSON-RPC 2.0 framing: parsing requests and building responses and notifications.

use serde_json::{json, Map, Value};

use super::error::{ErrorKind, RpcError};

/// A request id: a string, a number or null. Absent ids make a notification.
pub type RequestId = Value;

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
    let value: Value = serde_json::from_str(text).map_err(|e| EnvelopeError {
        id: Value::Null,
        error: RpcError::new(ErrorKind::ParseError, format!("Parse error: {e}")),
    })?;
    let invalid = |id: RequestId, why: &str| EnvelopeError {
        id,
        error: RpcError::new(ErrorKind::InvalidRequest, format!("Invalid Request: {why}")),
    };
    let Value::Object(mut object) = value else {
        let why = if value.is_array() {
            "batch requests are not supported"
        } else {
            "a request must be a JSON object"
        };
        return Err(invalid(Value::Null, why));
    };
    let id = match object.remove("id") {
        None => None,
        Some(id @ (Value::String(_) | Value::Number(_) | Value::Null)) => Some(id),
        Some(_) => {
            return Err(invalid(
                Value::Null,
                "`id` must be a string, number or null",
            ))
        }
    };
    let reply_id = id.clone().unwrap_or(Value::Null);
    if object.get("jsonrpc") != Some(&Value::String("2.0".into())) {
        return Err(invalid(reply_id, "`jsonrpc` must be \"2.0\""));
    }
    let method = match object.remove("method") {
        Some(Value::String(method)) => method,
        _ => return Err(invalid(reply_id, "`method` must be a string")),
    };
    let params = match object.remove("params") {
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

/// A success response.
pub fn success(id: &RequestId, result: Value) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "result": result })
}

/// An error response.
pub fn failure(id: &RequestId, error: &RpcError) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "error": error.to_json() })
}

/// A server-to-client notification.
pub fn notification(method: &str, params: Value) -> Value {
    json!({ "jsonrpc": "2.0", "method": method, "params": params })
}
