//! MCP 2026-07-28, the stateless revision, which a server whose [`Behaviour::modern`] is set
//! speaks besides the handshake revisions (as the SDKs' servers do: a client picks the era).
//!
//! - No `initialize` and no transport session: every request carries the protocol version, the
//!   client's info and its capabilities in `_meta` (and, over HTTP, the version and method in the
//!   `MCP-Protocol-Version` and `Mcp-Method` headers, which must agree with the body: `-32020`
//!   otherwise). A version this server does not speak is `-32022`, naming the versions it does.
//!   `server/discover` says what the server speaks and can do.
//! - Every result says `resultType: "complete"` and carries the server's info in `_meta`;
//!   `server/discover` and `tools/list` results carry the cache hints `ttlMs` and `cacheScope`
//!   ([`CacheHint`]).
//! - Change notifications go only on a `subscriptions/listen` stream the client opened: the
//!   server acknowledges the filter it honours (`toolsListChanged` when it declares
//!   `tools.listChanged`), then sends only what the filter holds, each message tagged with the
//!   subscription (the listen request's id). Over HTTP the stream is the listen request's
//!   response (SSE); over stdio it shares the connection. The stream ends gracefully with the
//!   listen request's result ([`super::ServerHandle::end_listens`]) or abruptly
//!   ([`super::ServerHandle::lose_sessions`]: a restarted server), and nothing sent meanwhile is
//!   kept for it.
//!
//! Over HTTP, stateless requests share one log session of the server (`<connector>-<n>`, as a
//! transport session would be named), so that held lists and the log read as for the handshake
//! revisions; a server that loses its sessions starts another.

use super::{Behaviour, Inner, Seen, Shared, result, rpc_error};
use axum::http::HeaderMap;
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// The stateless revisions this server speaks, newest first.
pub const VERSIONS: &[&str] = &["2026-07-28"];

const META_PROTOCOL: &str = "io.modelcontextprotocol/protocolVersion";
const META_CLIENT: &str = "io.modelcontextprotocol/clientInfo";
const META_SERVER: &str = "io.modelcontextprotocol/serverInfo";
const META_SUBSCRIPTION: &str = "io.modelcontextprotocol/subscriptionId";

/// The HTTP headers a stateless request names its version and method in.
const VERSION_HEADER: &str = "mcp-protocol-version";
const METHOD_HEADER: &str = "mcp-method";

/// `-32020`: a routing header disagrees with the body.
const HEADER_MISMATCH: i64 = -32020;
/// The most listen streams one session may hold open at once.
pub const LISTENS_MAX: usize = 16;

/// `-32600`: an invalid request.
const INVALID_REQUEST: i64 = -32600;

/// `-32022`: a protocol version the server does not speak.
const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;

/// Who may be served a cached result (SEP-2549).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheScope {
    /// Any authorization context.
    Public,
    /// Only the authorization context that obtained it (another access token is another context).
    Private,
}

/// The cache hints a server puts on its cacheable results.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheHint {
    /// How long, in milliseconds, a client may consider the result fresh (0: immediately stale).
    pub ttl_ms: u64,
    /// Who may be served it from a cache.
    pub scope: CacheScope,
}

impl From<coherence_model::state::CacheScope> for CacheScope {
    fn from(scope: coherence_model::state::CacheScope) -> CacheScope {
        match scope {
            coherence_model::state::CacheScope::Private => CacheScope::Private,
            coherence_model::state::CacheScope::Public => CacheScope::Public,
        }
    }
}

impl CacheHint {
    /// Immediately stale, for this authorization context only: what a server that says nothing
    /// in particular sends (and the SDKs' default).
    pub const STALE: CacheHint = CacheHint { ttl_ms: 0, scope: CacheScope::Private };
}

/// A `subscriptions/listen` stream a client opened.
pub(super) struct Listen {
    /// The listen request's id, which tags every message of the stream.
    subscription: Value,
    /// The client asked for `toolsListChanged`.
    asked: bool,
    /// ... and the server honours it.
    tools: bool,
    /// Where the stream's messages go.
    out: mpsc::UnboundedSender<Value>,
}

impl Listen {
    fn tagged(&self, method: &str) -> Value {
        json!({ "jsonrpc": "2.0", "method": method, "params": { "_meta": { META_SUBSCRIPTION: self.subscription } } })
    }
}

/// Whether `message`, which came with `headers` naming no transport session, is a request of the
/// stateless revision: a `server/discover`, or one that names its version in `_meta` or in the
/// version header (a handshake-era client sends `initialize` first, and names its version in
/// neither).
pub(super) fn is_stateless(headers: Option<&HeaderMap>, message: &Value) -> bool {
    let method = message.get("method").and_then(Value::as_str);
    if method == Some("initialize") {
        return false;
    }
    method == Some("server/discover")
        || message.pointer("/params/_meta").and_then(|m| m.get(META_PROTOCOL)).is_some()
        || headers.is_some_and(|h| h.contains_key(VERSION_HEADER))
}

/// The refusal of a stateless request this server cannot take: its version is not one it speaks,
/// or (over HTTP) a routing header disagrees with the body. A JSON-RPC error, answered over HTTP
/// with status 400.
pub(super) fn refusal(headers: Option<&HeaderMap>, message: &Value) -> Option<Value> {
    let id = message.get("id").cloned().unwrap_or(Value::Null);
    let method = message.get("method").and_then(Value::as_str).unwrap_or("");
    let asked = message.pointer("/params/_meta").and_then(|m| m.get(META_PROTOCOL)).and_then(Value::as_str);
    let header = |name: &str| headers.and_then(|h| h.get(name)).map(|v| v.to_str().unwrap_or("(not text)"));
    if let Some(named) = header(VERSION_HEADER)
        && asked.is_some_and(|asked| asked != named)
    {
        let why = format!("the MCP-Protocol-Version header says {named}, the request's _meta {}", asked.unwrap_or(""));
        return Some(rpc_error(&id, HEADER_MISMATCH, &why));
    }
    if let Some(named) = header(METHOD_HEADER)
        && named != method
    {
        return Some(rpc_error(
            &id,
            HEADER_MISMATCH,
            &format!("the Mcp-Method header says {named}, the body {method}"),
        ));
    }
    let version = asked.or(header(VERSION_HEADER));
    if version.is_some_and(|v| VERSIONS.contains(&v)) {
        return None;
    }
    let mut refused = rpc_error(
        &id,
        UNSUPPORTED_PROTOCOL_VERSION,
        &format!(
            "unsupported protocol version {}: this server speaks {}",
            version.unwrap_or("(none)"),
            VERSIONS.join(", ")
        ),
    );
    refused["error"]["data"] = json!({ "supported": VERSIONS, "requested": version });
    Some(refused)
}

/// `server/discover`'s result, logged as [`Seen::Discover`] in `session`.
pub(super) fn discover(shared: &Shared, inner: &mut Inner, session: &str, id: &Value, message: &Value) -> Value {
    let meta = message.pointer("/params/_meta");
    let protocol = meta.and_then(|m| m.get(META_PROTOCOL)).and_then(Value::as_str).unwrap_or("").to_owned();
    let client = meta.and_then(|m| m.pointer(&format!("/{}/name", META_CLIENT.replace('/', "~1"))));
    let client = client.and_then(Value::as_str).unwrap_or("").to_owned();
    inner.seen.push(Seen::Discover { session: session.to_owned(), protocol, client });
    let found = json!({
        "supportedVersions": VERSIONS,
        "capabilities": { "tools": { "listChanged": inner.behaviour.declares_list_changed } },
    });
    decorate(shared, &inner.behaviour, "server/discover", result(id, found))
}

/// `message`, a reply of the stateless revision: a result says it is complete and names the
/// server, and a cacheable one (`server/discover`, `tools/list`) carries the server's cache hints.
/// An error is as it is.
pub(super) fn decorate(shared: &Shared, behaviour: &Behaviour, method: &str, mut message: Value) -> Value {
    let Some(result) = message.get_mut("result").and_then(Value::as_object_mut) else { return message };
    result.insert("resultType".into(), json!("complete"));
    let server = json!({ "name": shared.connector, "version": env!("CARGO_PKG_VERSION") });
    result.entry("_meta").or_insert_with(|| json!({}))[META_SERVER] = server;
    if matches!(method, "server/discover" | "tools/list") {
        let hint = behaviour.modern.unwrap_or(CacheHint::STALE);
        result.insert("ttlMs".into(), json!(hint.ttl_ms));
        let scope = match hint.scope {
            CacheScope::Public => "public",
            CacheScope::Private => "private",
        };
        result.insert("cacheScope".into(), json!(scope));
    }
    message
}

/// Opens a `subscriptions/listen` stream in `session`: sends the acknowledgement on `out` and
/// keeps the stream, logged as [`Seen::Listen`]. The server honours `toolsListChanged` when it
/// declares `tools.listChanged`, and nothing else. A session with [`LISTENS_MAX`] streams open is
/// refused another (`-32600`, which ends it).
pub(super) fn listen(inner: &mut Inner, session: &str, id: &Value, message: &Value, out: mpsc::UnboundedSender<Value>) {
    let open = inner.sessions.iter_mut().find(|s| s.id == session).map_or(0, |live| {
        live.listens.retain(|l| !l.out.is_closed());
        live.listens.len()
    });
    if open >= LISTENS_MAX {
        let why = format!("too many listen streams: at most {LISTENS_MAX} open at once");
        let _ = out.send(rpc_error(id, INVALID_REQUEST, &why));
        inner.seen.push(Seen::Refused { status: 400, why, asked: "subscriptions/listen".to_owned() });
        return;
    }
    let asked = message.pointer("/params/notifications/toolsListChanged").and_then(Value::as_bool) == Some(true);
    let tools = asked && inner.behaviour.declares_list_changed;
    let listen = Listen { subscription: id.clone(), asked, tools, out };
    let mut ack = listen.tagged("notifications/subscriptions/acknowledged");
    ack["params"]["notifications"] = if tools { json!({ "toolsListChanged": true }) } else { json!({}) };
    let _ = listen.out.send(ack);
    inner.seen.push(Seen::Listen { session: session.to_owned(), subscription: id.to_string(), tools });
    if let Some(live) = inner.sessions.iter_mut().find(|s| s.id == session) {
        live.listens.push(listen);
    }
}

/// Sends `notifications/tools/list_changed` on every stream of `listens` that asked for it; drops
/// the streams that are gone. How many it went out on.
pub(super) fn notify(listens: &mut Vec<Listen>) -> usize {
    listens.retain(|l| !l.tools || l.out.send(l.tagged("notifications/tools/list_changed")).is_ok());
    listens.iter().filter(|l| l.tools).count()
}

/// How many streams of `listens` a change notification would go on: those that asked for it
/// and are still open.
pub(super) fn listening(listens: &[Listen]) -> usize {
    listens.iter().filter(|l| l.tools && !l.out.is_closed()).count()
}

/// How many streams of `listens` asked for `toolsListChanged` and are still open, honoured or not
/// (a server that does not declare `tools.listChanged` acknowledges none: the client listens to
/// a server that will never say its list changed).
pub(super) fn asked(listens: &[Listen]) -> usize {
    listens.iter().filter(|l| l.asked && !l.out.is_closed()).count()
}

/// Ends every stream of `listens` gracefully: the listen request's result, after which nothing
/// more comes on it. The subscriptions ended, for the log.
pub(super) fn end(listens: &mut Vec<Listen>) -> Vec<String> {
    let mut ended = Vec::new();
    for listen in listens.drain(..) {
        let meta = json!({ "resultType": "complete", "_meta": { META_SUBSCRIPTION: listen.subscription } });
        let _ = listen.out.send(result(&listen.subscription, meta));
        ended.push(listen.subscription.to_string());
    }
    ended
}
