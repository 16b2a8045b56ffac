//! `WsClient`: a WebSocket JSON-RPC client over a real socket, with id correlation, a
//! per-call timeout and a queue of notifications that arrived while waiting.

use std::collections::VecDeque;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Default time a call waits for its response.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// A connected client.
pub struct WsClient {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    /// Notifications received and not yet taken.
    notifications: VecDeque<Value>,
    /// Responses received while waiting for another id.
    responses: Vec<Value>,
}

/// A JSON-RPC error.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcFailure {
    /// The code.
    pub code: i64,
    /// The message.
    pub message: String,
}

impl WsClient {
    /// Connects to `url`, optionally with `Authorization: Bearer token`.
    pub async fn connect(url: &str, bearer: Option<&str>) -> anyhow::Result<Self> {
        let mut request = url.into_client_request()?;
        if let Some(token) = bearer {
            request
                .headers_mut()
                .insert("authorization", format!("Bearer {token}").parse()?);
        }
        let (socket, _response) =
            tokio::time::timeout(CALL_TIMEOUT, tokio_tungstenite::connect_async(request))
                .await
                .context("connect timed out")?
                .with_context(|| format!("connect to {url}"))?;
        Ok(Self {
            socket,
            next_id: 1,
            notifications: VecDeque::new(),
            responses: Vec::new(),
        })
    }

    /// Connects and authenticates with `token`.
    pub async fn connect_authenticated(url: &str, token: &str) -> anyhow::Result<Self> {
        let mut client = Self::connect(url, None).await?;
        let result = client
            .call_ok("authenticate", json!({ "auth_token": token }))
            .await?;
        anyhow::ensure!(
            result["authenticated"] == json!(true),
            "not authenticated: {result}"
        );
        Ok(client)
    }

    /// Sends a text frame as is.
    pub async fn send_text(&mut self, text: impl Into<String>) -> anyhow::Result<()> {
        self.socket.send(Message::text(text.into())).await?;
        Ok(())
    }

    /// Sends a request and returns its id.
    pub async fn send_request(&mut self, method: &str, params: Value) -> anyhow::Result<u64> {
        let id = self.next_id;
        self.next_id += 1;
        let request = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
        self.send_text(request.to_string()).await?;
        Ok(id)
    }

    /// Calls `method` and returns the whole response object.
    pub async fn call(&mut self, method: &str, params: Value) -> anyhow::Result<Value> {
        let id = self.send_request(method, params).await?;
        self.response_for(json!(id), CALL_TIMEOUT)
            .await
            .with_context(|| format!("calling {method}"))
    }

    /// Calls `method` and returns its result; a JSON-RPC error is an `Err`.
    pub async fn call_ok(&mut self, method: &str, params: Value) -> anyhow::Result<Value> {
        let response = self.call(method, params).await?;
        match response.get("result") {
            Some(result) => Ok(result.clone()),
            None => bail!("{method} failed: {response}"),
        }
    }

    /// Calls `method` expecting an error, and returns it.
    pub async fn call_err(&mut self, method: &str, params: Value) -> anyhow::Result<RpcFailure> {
        let response = self.call(method, params).await?;
        error_of(&response).with_context(|| format!("{method} unexpectedly succeeded: {response}"))
    }

    /// Waits for the response with `id`, keeping notifications and other responses.
    pub async fn response_for(&mut self, id: Value, timeout: Duration) -> anyhow::Result<Value> {
        if let Some(pos) = self.responses.iter().position(|r| r["id"] == id) {
            return Ok(self.responses.remove(pos));
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let message = self.next_json(deadline).await?;
            if message.get("id").is_none() {
                self.notifications.push_back(message);
            } else if message["id"] == id {
                return Ok(message);
            } else {
                self.responses.push(message);
            }
        }
    }

    /// The next message that is a response (has an `id`), whatever its id.
    pub async fn next_response(&mut self, timeout: Duration) -> anyhow::Result<Value> {
        if !self.responses.is_empty() {
            return Ok(self.responses.remove(0));
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let message = self.next_json(deadline).await?;
            if message.get("id").is_none() {
                self.notifications.push_back(message);
            } else {
                return Ok(message);
            }
        }
    }

    /// Waits for a notification `method` whose params satisfy `matches`; earlier queued ones are
    /// checked first. Returns its params.
    pub async fn wait_notification(
        &mut self,
        method: &str,
        mut matches: impl FnMut(&Value) -> bool,
        timeout: Duration,
    ) -> anyhow::Result<Value> {
        if let Some(pos) = self
            .notifications
            .iter()
            .position(|n| n["method"] == method && matches(&n["params"]))
        {
            return Ok(
                self.notifications.remove(pos).expect("position is valid")["params"].clone(),
            );
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let message = self
                .next_json(deadline)
                .await
                .with_context(|| format!("waiting for notification {method}"))?;
            if message.get("id").is_some() {
                self.responses.push(message);
            } else if message["method"] == method && matches(&message["params"]) {
                return Ok(message["params"].clone());
            } else {
                self.notifications.push_back(message);
            }
        }
    }

    /// The next notification `method` in arrival order (queued ones first), whatever its params.
    /// Use it to check the order of notifications (STARTED before STOPPED).
    pub async fn next_notification(
        &mut self,
        method: &str,
        timeout: Duration,
    ) -> anyhow::Result<Value> {
        self.wait_notification(method, |_| true, timeout).await
    }

    /// Authenticates this connection with `token`; returns the `authenticate` result.
    pub async fn authenticate(&mut self, token: &str) -> anyhow::Result<Value> {
        let result = self
            .call_ok("authenticate", json!({ "auth_token": token }))
            .await?;
        anyhow::ensure!(
            result["authenticated"] == json!(true),
            "not authenticated: {result}"
        );
        Ok(result)
    }

    /// Notifications received so far and not taken.
    pub fn queued_notifications(&self) -> &VecDeque<Value> {
        &self.notifications
    }

    /// Waits for the server to close the connection and returns the close code.
    pub async fn wait_close(&mut self, timeout: Duration) -> anyhow::Result<Option<u16>> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let next = tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .context("no close within the timeout")?;
            match next {
                Some(Ok(Message::Close(frame))) => {
                    return Ok(frame.map(|f| u16::from(f.code)));
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => bail!("connection failed instead of closing: {e}"),
                None => return Ok(None),
            }
        }
    }

    /// Closes the connection normally.
    pub async fn close(mut self) -> anyhow::Result<()> {
        self.socket
            .close(Some(tokio_tungstenite::tungstenite::protocol::CloseFrame {
                code: CloseCode::Normal,
                reason: "bye".into(),
            }))
            .await?;
        Ok(())
    }

    async fn next_json(&mut self, deadline: tokio::time::Instant) -> anyhow::Result<Value> {
        loop {
            let next = tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .map_err(|_| anyhow!("no message before the deadline"))?;
            match next {
                Some(Ok(Message::Text(text))) => {
                    return serde_json::from_str(text.as_str())
                        .with_context(|| format!("server sent invalid JSON: {text}"))
                }
                Some(Ok(Message::Close(frame))) => bail!("server closed the connection: {frame:?}"),
                Some(Ok(_)) => {}
                Some(Err(e)) => bail!("connection failed: {e}"),
                None => bail!("connection ended"),
            }
        }
    }
}

/// The `error` of a response, if it is one.
pub fn error_of(response: &Value) -> Option<RpcFailure> {
    let error = response.get("error")?;
    Some(RpcFailure {
        code: error["code"].as_i64()?,
        message: error["message"].as_str()?.to_owned(),
    })
}
