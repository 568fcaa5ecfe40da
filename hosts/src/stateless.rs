//! A client of MCP 2026-07-28, the stateless revision, over streamable HTTP: what a host of that
//! revision sends, written out, since the official Rust SDK's client speaks the handshake
//! revisions only.
//!
//! - No `initialize` and no transport session: every request is a POST carrying the protocol
//!   version, the client's info and its capabilities in `_meta`, with the version and method in
//!   the `MCP-Protocol-Version` and `Mcp-Method` headers.
//! - [`Stateless::discover`] asks a server what it speaks (`server/discover`); a server that
//!   speaks only the handshake revisions refuses it, and the host falls back to `initialize`.
//! - [`Stateless::list`] returns a page with its cache hints (`ttlMs`, `cacheScope`).
//! - [`Stateless::listen`] opens a `subscriptions/listen` stream asking for `toolsListChanged`
//!   and returns once the server acknowledged it; [`ListenStream::next`] reads what comes on it
//!   until it ends (the listen request's result, or the connection closing).
//!
//! Every request has a time limit ([`REQUEST_TIMEOUT`]); a listen stream has none, for it lasts
//! as long as the server keeps it.

use serde_json::{Value, json};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The revision this client speaks.
pub const REVISION: &str = "2026-07-28";

/// The longest a request (not a listen stream) may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// The longest a server may take to acknowledge a listen stream.
const ACK_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest message a listen stream may carry: past it the stream is garbage.
const EVENT_BYTES_MAX: usize = 1 << 20;

/// `-32602`: what a server answers a call of a tool it does not have.
pub const INVALID_PARAMS: i64 = -32602;

/// Why a request failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// HTTP 401: the server wants (new) authorization.
    Unauthorized,
    /// A JSON-RPC error.
    Error {
        /// Its code.
        code: i64,
        /// Its message.
        message: String,
    },
    /// Anything else: the connection, an HTTP status, a body that is not a reply.
    Transport(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Unauthorized => f.write_str("401 Unauthorized"),
            Failure::Error { code, message } => write!(f, "error {code}: {message}"),
            Failure::Transport(why) => f.write_str(why),
        }
    }
}

/// What `server/discover` said.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Discovered {
    /// The server declares `tools.listChanged`.
    pub list_changed: bool,
}

/// `cacheScope`: who may be served a cached result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Any authorization context.
    Public,
    /// Only the one that obtained it (also what an absent or unknown scope means).
    Private,
}

/// One page of `tools/list`, with its cache hints.
#[derive(Clone, Debug)]
pub struct Page {
    /// The tools, as the server describes them.
    pub tools: Vec<Value>,
    /// The cursor of the next page, if there is one.
    pub next_cursor: Option<String>,
    /// `ttlMs` (0 if absent: stale at once).
    pub ttl_ms: u64,
    /// `cacheScope`.
    pub scope: Scope,
}

/// A client of one server.
pub struct Stateless {
    http: reqwest::Client,
    url: String,
    client: String,
    next_id: AtomicU64,
}

impl Stateless {
    /// A client of the server at `url`, naming itself `client`.
    pub fn new(url: &str, client: &str) -> Stateless {
        Stateless {
            http: reqwest::Client::new(),
            url: url.to_owned(),
            client: client.to_owned(),
            next_id: AtomicU64::new(1),
        }
    }

    /// The server's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Asks the server what it speaks: `None` if it does not speak this revision (it refused the
    /// request, or named other versions).
    pub async fn discover(&self) -> Result<Option<Discovered>, Failure> {
        let found = match self.request("server/discover", json!({})).await {
            Ok(found) => found,
            Err(Failure::Unauthorized) => return Err(Failure::Unauthorized),
            Err(_) => return Ok(None),
        };
        let versions = found.get("supportedVersions").and_then(Value::as_array);
        if !versions.is_some_and(|v| v.iter().any(|v| v == REVISION)) {
            return Ok(None);
        }
        let list_changed = found.pointer("/capabilities/tools/listChanged").and_then(Value::as_bool) == Some(true);
        Ok(Some(Discovered { list_changed }))
    }

    /// One page of the server's tools.
    pub async fn list(&self, cursor: Option<&str>) -> Result<Page, Failure> {
        let params = match cursor {
            Some(cursor) => json!({ "cursor": cursor }),
            None => json!({}),
        };
        let listed = self.request("tools/list", params).await?;
        let tools = listed.get("tools").and_then(Value::as_array).cloned().ok_or_else(|| {
            Failure::Transport(format!("tools/list to {}: a result with no `tools`: {listed}", self.url))
        })?;
        Ok(Page {
            tools,
            next_cursor: listed.get("nextCursor").and_then(Value::as_str).map(str::to_owned),
            ttl_ms: listed.get("ttlMs").and_then(Value::as_u64).unwrap_or(0),
            scope: match listed.get("cacheScope").and_then(Value::as_str) {
                Some("public") => Scope::Public,
                _ => Scope::Private,
            },
        })
    }

    /// Calls tool `name` with no arguments: its result.
    pub async fn call(&self, name: &str) -> Result<Value, Failure> {
        self.request("tools/call", json!({ "name": name, "arguments": {} })).await
    }

    /// One request: its result, or why it failed.
    pub async fn request(&self, method: &str, params: Value) -> Result<Value, Failure> {
        let request = self.post(method, params, "application/json, text/event-stream").timeout(REQUEST_TIMEOUT);
        let response = self.send(method, request).await?;
        let status = response.status();
        let reply: Value = response
            .json()
            .await
            .map_err(|e| Failure::Transport(format!("{method} to {}: answered {status}: {e}", self.url)))?;
        reply_of(method, &self.url, reply)
    }

    /// Opens a `subscriptions/listen` stream asking for `toolsListChanged`; returns once the
    /// server acknowledged it.
    pub async fn listen(&self) -> Result<ListenStream, Failure> {
        let params = json!({ "notifications": { "toolsListChanged": true } });
        let request = self.post("subscriptions/listen", params, "text/event-stream");
        let response = self.send("subscriptions/listen", request).await?;
        let status = response.status();
        if !status.is_success() {
            return Err(Failure::Transport(format!("subscriptions/listen to {}: answered {status}", self.url)));
        }
        let mut stream = ListenStream { response, buffer: Vec::new(), tools: false };
        let ack = tokio::time::timeout(ACK_TIMEOUT, stream.message()).await.map_err(|_| {
            Failure::Transport(format!("subscriptions/listen to {}: no acknowledgement in {ACK_TIMEOUT:?}", self.url))
        })?;
        match ack {
            Some(ack)
                if ack.get("method").and_then(Value::as_str) == Some("notifications/subscriptions/acknowledged") =>
            {
                stream.tools =
                    ack.pointer("/params/notifications/toolsListChanged").and_then(Value::as_bool) == Some(true);
                Ok(stream)
            }
            Some(other) => reply_of("subscriptions/listen", &self.url, other).and_then(|_| {
                Err(Failure::Transport(format!(
                    "subscriptions/listen to {}: ended before its acknowledgement",
                    self.url
                )))
            }),
            None => Err(Failure::Transport(format!(
                "subscriptions/listen to {}: ended before its acknowledgement",
                self.url
            ))),
        }
    }

    /// Sends `request` (of `method`): its response, but a 401 or a failure to send is a failure.
    async fn send(&self, method: &str, request: reqwest::RequestBuilder) -> Result<reqwest::Response, Failure> {
        let response =
            request.send().await.map_err(|e| Failure::Transport(format!("{method} to {}: {e}", self.url)))?;
        if response.status() == reqwest::StatusCode::UNAUTHORIZED {
            return Err(Failure::Unauthorized);
        }
        Ok(response)
    }

    fn post(&self, method: &str, mut params: Value, accept: &str) -> reqwest::RequestBuilder {
        params["_meta"] = json!({
            "io.modelcontextprotocol/protocolVersion": REVISION,
            "io.modelcontextprotocol/clientInfo": { "name": self.client, "version": env!("CARGO_PKG_VERSION") },
            "io.modelcontextprotocol/clientCapabilities": {},
        });
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let body = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
        self.http
            .post(&self.url)
            .header("mcp-protocol-version", REVISION)
            .header("mcp-method", method)
            .header("accept", accept)
            .json(&body)
    }
}

/// A reply's result, or its error.
fn reply_of(method: &str, url: &str, reply: Value) -> Result<Value, Failure> {
    if let Some(result) = reply.get("result") {
        return Ok(result.clone());
    }
    match reply.get("error") {
        Some(error) => Err(Failure::Error {
            code: error.get("code").and_then(Value::as_i64).unwrap_or(0),
            message: error.get("message").and_then(Value::as_str).unwrap_or("").to_owned(),
        }),
        None => Err(Failure::Transport(format!("{method} to {url}: not a reply: {reply}"))),
    }
}

/// What comes on a listen stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Heard {
    /// `notifications/tools/list_changed`.
    ToolsChanged,
    /// The stream ended: the server's result for the listen request, or the connection closed.
    Ended,
}

/// An open `subscriptions/listen` stream (the listen request's SSE response).
pub struct ListenStream {
    response: reqwest::Response,
    buffer: Vec<u8>,
    /// The server acknowledged `toolsListChanged`.
    pub tools: bool,
}

impl ListenStream {
    /// The next thing heard; after [`Heard::Ended`], nothing more comes.
    pub async fn next(&mut self) -> Heard {
        loop {
            let Some(message) = self.message().await else { return Heard::Ended };
            if message.get("id").is_some() {
                // The listen request's result (or error): the server ended the stream.
                return Heard::Ended;
            }
            if message.get("method").and_then(Value::as_str) == Some("notifications/tools/list_changed") {
                return Heard::ToolsChanged;
            }
        }
    }

    /// The next JSON-RPC message of the stream, or `None` once it ended (or carried garbage).
    async fn message(&mut self) -> Option<Value> {
        loop {
            if let Some(end) = event_end(&self.buffer) {
                let event: Vec<u8> = self.buffer.drain(..end).collect();
                let text = String::from_utf8_lossy(&event);
                let data: Vec<&str> = text
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(|d| d.strip_prefix(' ').unwrap_or(d))
                    .collect();
                if data.is_empty() {
                    // A comment (keep-alive) or an event with no data.
                    continue;
                }
                return serde_json::from_str(&data.join("\n")).ok();
            }
            if self.buffer.len() > EVENT_BYTES_MAX {
                return None;
            }
            match self.response.chunk().await {
                Ok(Some(chunk)) => self.buffer.extend_from_slice(&chunk),
                Ok(None) | Err(_) => return None,
            }
        }
    }
}

/// Where the first complete SSE event of `buffer` ends (past its blank line), if one is complete.
fn event_end(buffer: &[u8]) -> Option<usize> {
    let text = buffer;
    (0..text.len()).find_map(|i| {
        if text[i..].starts_with(b"\n\n") {
            Some(i + 2)
        } else if text[i..].starts_with(b"\r\n\r\n") {
            Some(i + 4)
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_ends_at_its_blank_line() {
        assert_eq!(event_end(b"data: {}\n\ndata: x"), Some(10));
        assert_eq!(event_end(b"data: {}\r\n\r\n"), Some(12));
        assert_eq!(event_end(b"data: {}\n"), None);
    }

    #[test]
    fn a_reply_is_its_result_or_its_error() {
        assert_eq!(reply_of("m", "u", json!({ "result": { "a": 1 } })), Ok(json!({ "a": 1 })));
        assert_eq!(
            reply_of("m", "u", json!({ "error": { "code": INVALID_PARAMS, "message": "Unknown tool: x" } })),
            Err(Failure::Error { code: INVALID_PARAMS, message: "Unknown tool: x".into() })
        );
        assert!(matches!(reply_of("m", "u", json!({ "x": 1 })), Err(Failure::Transport(_))));
    }
}
