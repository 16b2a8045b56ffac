//! Typed access to named params; every failure is −32602 naming the param.

use serde_json::{Map, Value};

use super::error::RpcError;

/// The params object of one request.
#[derive(Debug, Clone, Copy)]
pub struct Params<'a>(pub &'a Map<String, Value>);

impl<'a> Params<'a> {
    /// A required string.
    pub fn string(&self, name: &str) -> Result<&'a str, RpcError> {
        self.optional_string(name)?
            .ok_or_else(|| RpcError::invalid_param(name, "is required"))
    }

    /// An optional string (`null` counts as absent).
    pub fn optional_string(&self, name: &str) -> Result<Option<&'a str>, RpcError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(RpcError::invalid_param(name, "must be a string")),
        }
    }

    /// An optional non-negative integer within `min..=max`.
    pub fn optional_integer(
        &self,
        name: &str,
        min: u64,
        max: u64,
    ) -> Result<Option<u64>, RpcError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => match n.as_u64() {
                Some(v) if (min..=max).contains(&v) => Ok(Some(v)),
                _ => Err(RpcError::invalid_param(
                    name,
                    format!("must be an integer in {min}..={max}"),
                )),
            },
            Some(_) => Err(RpcError::invalid_param(
                name,
                format!("must be an integer in {min}..={max}"),
            )),
        }
    }

    /// An optional non-negative number within `0..=max`.
    pub fn optional_number(&self, name: &str, max: f64) -> Result<Option<f64>, RpcError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => match n.as_f64() {
                Some(v) if (0.0..=max).contains(&v) => Ok(Some(v)),
                _ => Err(RpcError::invalid_param(
                    name,
                    format!("must be a number in 0..={max}"),
                )),
            },
            Some(_) => Err(RpcError::invalid_param(
                name,
                format!("must be a number in 0..={max}"),
            )),
        }
    }

    /// An optional boolean.
    pub fn optional_bool(&self, name: &str) -> Result<Option<bool>, RpcError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(RpcError::invalid_param(name, "must be a boolean")),
        }
    }
}
