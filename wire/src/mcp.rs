//! A connector's MCP server on streamable HTTP (MCP 2025-03-26 to 2025-11-25, and 2026-07-28 when
//! its behaviour says so: [`modern`]): what a real host is configured to talk to, driven by the
//! runner (SPEC.md §11.5).
//!
//! The server is written here on the HTTP stack rather than with an MCP SDK's server: the kit
//! must make it misbehave as SPEC.md §3's servers do (forget a session, stay silent about a
//! change, page its list), and an SDK's server exists to prevent exactly that. What it speaks is
//! checked against a real client, `rmcp`'s (`wire/tests/mcp.rs`).
//!
//! - `POST /mcp` takes one JSON-RPC message. `initialize` opens a transport session and answers
//!   with its `Mcp-Session-Id`; every other request must carry it: none is a 400, one the server
//!   does not know (or has lost, [`ServerHandle::lose_sessions`]) a 404, after which a host must
//!   initialize again. Requests are answered with `application/json`; notifications and
//!   responses from the host with 202.
//! - `GET /mcp` opens the session's stream of server messages (SSE), where
//!   [`ServerHandle::notify_list_changed`] sends `notifications/tools/list_changed`.
//! - `DELETE /mcp` ends the session.
//! - A request that names no session but the 2026-07-28 revision (a `server/discover`, a version
//!   in `_meta`) is stateless ([`modern`]), if the server speaks that revision; otherwise it is
//!   refused as one with no session (400), which tells a client to fall back to `initialize`.
//!
//! A server is open (it lists its own `authenticate` and `complete_authentication` stubs until the
//! connector is authenticated, as the runner sets its list, and while it lists only those answers
//! a call of any other tool with 401: the token expired or access was revoked) or
//! [`Protection::OAuth`]: every request needs a bearer token that the host gets through the OAuth
//! flow of [`oauth`].
//!
//! Tools are named `<connector>_<tool>` (SPEC.md §11.5's mapping rule).

use crate::serve::Served;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

mod modern;
mod oauth;
mod stdio;

pub use modern::{CacheHint, CacheScope, LISTENS_MAX, VERSIONS as MODERN_VERSIONS};
pub use stdio::RELAY;

/// How a server guards its tools.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protection {
    /// Anyone may list and call; an unauthenticated connector lists its own stubs.
    Open,
    /// An OAuth-protected resource: no bearer token in force, no answer but 401.
    OAuth,
}

/// The protocol revisions with an `initialize` handshake this server speaks, newest first.
pub const PROTOCOL_VERSIONS: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26"];

/// The action tools' names (after `<connector>_`) and what they do.
const ACTIONS: [(&str, &str); 3] = [("search", "Search"), ("read", "Read an item"), ("send", "Send or create an item")];

/// The header naming a transport session.
const SESSION_HEADER: &str = "mcp-session-id";

/// A tool as the server lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tool {
    /// Its name, `<connector>_<tool>`.
    pub name: String,
    /// What it does, as the model reads it.
    pub description: String,
}

impl Tool {
    /// The tool `<connector>_<tool>`.
    pub fn new(connector: &str, tool: &str, description: &str) -> Tool {
        Tool { name: format!("{connector}_{tool}"), description: description.to_owned() }
    }

    /// The connector's action tools: `<connector>_search`, `_read` and `_send`. The one the user
    /// needs is the last, so that a first page of two leaves it out.
    pub fn actions(connector: &str) -> Vec<Tool> {
        ACTIONS.iter().map(|(tool, what)| Tool::new(connector, tool, &format!("{what} in {connector}"))).collect()
    }

    /// The connector's authentication stubs, as servers list them until the user is
    /// authenticated: `<connector>_authenticate` and `<connector>_complete_authentication`.
    pub fn stubs(connector: &str) -> Vec<Tool> {
        vec![
            Tool::new(
                connector,
                "authenticate",
                &format!("Start authenticating {connector}: returns a URL for the user to open"),
            ),
            Tool::new(
                connector,
                "complete_authentication",
                &format!("Finish authenticating {connector} once the user approved"),
            ),
        ]
    }

    fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "description": self.description,
            "inputSchema": { "type": "object", "properties": {} },
        })
    }
}

/// How the server behaves where SPEC.md §3 lets servers differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Behaviour {
    /// Declares `tools.listChanged` in its capabilities.
    pub declares_list_changed: bool,
    /// Sends `notifications/tools/list_changed` when [`ServerHandle::notify_list_changed`] is
    /// called (a silent server does not, whatever it declares).
    pub sends_list_changed: bool,
    /// Pages `tools/list`: at most this many tools a page, with a `nextCursor` to the rest.
    pub page_size: Option<usize>,
    /// When a call of `<connector>_complete_authentication` authenticates the connector, sends
    /// `list_changed` before the call's result (SPEC.md §7.2, S-2); otherwise the change is
    /// announced later ([`ServerHandle::notify_list_changed`]), or never.
    pub notifies_on_authentication: bool,
    /// Speaks the stateless revision 2026-07-28 too, with these cache hints on `server/discover`
    /// and `tools/list` results; `None`: only the handshake revisions.
    pub modern: Option<CacheHint>,
}

impl Behaviour {
    /// Declares and sends `list_changed`, lists in one page.
    pub const ADVERTISED: Behaviour = Behaviour {
        declares_list_changed: true,
        sends_list_changed: true,
        page_size: None,
        notifies_on_authentication: false,
        modern: None,
    };
}

/// A `tools/list` the server holds, unanswered, until the runner says what it returns
/// ([`ServerHandle::hold_lists`]).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Held {
    /// Its number at this server, from 0, in the order the requests arrived.
    pub id: u64,
    /// The transport session it came in.
    pub session: String,
    /// The `cursor` it carries: the `nextCursor` of a page the runner released.
    pub cursor: Option<String>,
    /// It is the session's first `tools/list`: the host initialized before sending it.
    pub fresh: bool,
}

/// What a held `tools/list` is answered with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Release {
    /// These tools, and a `nextCursor` to more if given.
    Tools {
        /// The page.
        tools: Vec<Tool>,
        /// The cursor to the rest.
        next_cursor: Option<String>,
    },
    /// HTTP 401: the token expired or access was revoked (an open server names no metadata).
    Unauthorized,
    /// HTTP 404: the server has lost the transport session, which it forgets.
    SessionLost,
    /// HTTP 503: the request failed in transport.
    Failed,
}

/// What the server saw or did, in order.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "seen", rename_all = "snake_case")]
#[allow(missing_docs)] // each variant's text names its fields
pub enum Seen {
    /// An `initialize` opened `session`, at the negotiated `protocol`, for the client `client`.
    Initialize { session: String, protocol: String, client: String },
    /// A `server/discover` of the stateless revision `protocol` in `session`, from `client`.
    Discover { session: String, protocol: String, client: String },
    /// A `subscriptions/listen` stream opened in `session`, tagged `subscription`; `tools` says
    /// whether it asked for `toolsListChanged` and the server honours it.
    Listen { session: String, subscription: String, tools: bool },
    /// The server ended the listen stream `subscription` of `session` gracefully.
    ListenEnded { session: String, subscription: String },
    /// `notifications/initialized` in `session`.
    Initialized { session: String },
    /// A `tools/list` in `session` answered with list `version`; `cursor` is the page asked for.
    List { session: String, version: u64, cursor: Option<String> },
    /// A `tools/call` of `tool` in `session`; `listed` says whether the tool was on the list.
    Call { session: String, tool: String, listed: bool },
    /// `session` opened its stream of server messages.
    Stream { session: String },
    /// `notifications/tools/list_changed` sent on `streams` open streams of `session` (listen
    /// streams that asked for it, in the stateless revision).
    Notified { session: String, streams: usize },
    /// The host ended `session`.
    Deleted { session: String },
    /// A request refused with an HTTP `status` before JSON-RPC: why, and what was asked.
    Refused { status: u16, why: String, asked: String },
    /// Any other JSON-RPC message (`method`, or `response`), in `session`.
    Other { session: String, method: String },
    /// A step of the OAuth flow (metadata read, client registered, code or token issued or
    /// refused).
    OAuth { step: String },
    /// A `tools/list` held (its number at this server, its session and cursor).
    Held { id: u64, session: String, cursor: Option<String> },
    /// Held `tools/list` number `id` answered: `answer` says how (`tools: a, b`, `401`, `404`,
    /// `503`).
    Released { id: u64, answer: String },
    /// Held `tools/list` number `id` given up by the host before it was answered.
    Abandoned { id: u64 },
    /// A stdio relay connected: `session` is its connection.
    Connected { session: String },
    /// The stdio connection of `session` ended.
    Disconnected { session: String },
}

struct Session {
    id: String,
    /// Lost by the server: its requests now get 404.
    lost: bool,
    /// It has sent a `tools/list`.
    listed: bool,
    /// Where unsolicited server messages go (the handshake revisions): its `GET /mcp` streams, or
    /// its stdio connection.
    streams: Vec<mpsc::UnboundedSender<Value>>,
    /// It speaks the stateless revision: notifications go only on its listen streams.
    modern: bool,
    /// It is the log session of stateless HTTP requests.
    stateless: bool,
    /// Its `subscriptions/listen` streams (the stateless revision).
    listens: Vec<modern::Listen>,
    /// Its stdio connection, shut down the moment the session is lost (so that the host's
    /// server process ends at once, not when the connection's thread next looks).
    closer: Option<std::net::TcpStream>,
}

impl Session {
    /// The server loses it: its requests get 404, its streams end, a stdio connection closes.
    fn lose(&mut self) {
        self.lost = true;
        self.streams.clear();
        self.listens.clear();
        if let Some(connection) = self.closer.take() {
            let _ = connection.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// The lists held, and the next number.
#[derive(Default)]
struct Holding {
    on: bool,
    next: u64,
    held: Vec<(Held, tokio::sync::oneshot::Sender<Release>)>,
}

struct Inner {
    tools: Vec<Tool>,
    version: u64,
    behaviour: Behaviour,
    sessions: Vec<Session>,
    opened: u64,
    seen: Vec<Seen>,
    grants: oauth::Grants,
    holding: Holding,
}

struct Shared {
    connector: String,
    /// `http://127.0.0.1:PORT`.
    base: String,
    protection: Protection,
    inner: Mutex<Inner>,
}

impl Shared {
    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("no handler panics holding the server's state")
    }
}

/// Controls a running server; cheap to clone, usable from any thread.
#[derive(Clone)]
pub struct ServerHandle {
    shared: Arc<Shared>,
}

impl ServerHandle {
    /// The connector served.
    pub fn connector(&self) -> &str {
        &self.shared.connector
    }

    /// Replaces the tool list (a new version); tells nobody.
    pub fn set_tools(&self, tools: Vec<Tool>) {
        let mut inner = self.shared.inner();
        inner.tools = tools;
        inner.version += 1;
    }

    /// The tool list now and its version (0 for the first).
    pub fn tools(&self) -> (Vec<Tool>, u64) {
        let inner = self.shared.inner();
        (inner.tools.clone(), inner.version)
    }

    /// How the server behaves.
    pub fn behaviour(&self) -> Behaviour {
        self.shared.inner().behaviour
    }

    /// Changes how the server behaves from now on.
    pub fn set_behaviour(&self, behaviour: Behaviour) {
        self.shared.inner().behaviour = behaviour;
    }

    /// Sends `notifications/tools/list_changed` on every open stream of every live session, if
    /// the server sends them; returns how many streams it was sent on.
    pub fn notify_list_changed(&self) -> usize {
        notify(&mut self.shared.inner())
    }

    /// The user grants the host access on the web ([`Protection::OAuth`]): `/authorize` now
    /// issues codes. The host is not told.
    pub fn grant(&self) {
        self.shared.inner().grants.granted = true;
    }

    /// Access is revoked on the web: no code, no refresh, and no token is in force any more.
    pub fn revoke(&self) {
        let mut inner = self.shared.inner();
        inner.grants.granted = false;
        inner.grants.access.clear();
        inner.grants.refresh.clear();
    }

    /// Every access token expires; a refresh token still gets a new one while access is granted.
    pub fn expire_tokens(&self) {
        self.shared.inner().grants.access.clear();
    }

    /// Forgets every live session, as a restarted server does: their requests now get 404 and
    /// their streams end. In the stateless revision, listen streams end abruptly (with no result)
    /// and later requests go on as before.
    pub fn lose_sessions(&self) {
        for session in &mut self.shared.inner().sessions {
            session.lose();
        }
    }

    /// How many stdio relays are connected now (a host's server processes of this connector).
    pub fn relays_connected(&self) -> usize {
        let inner = self.shared.inner();
        let count = |connected: bool| {
            inner
                .seen
                .iter()
                .filter(|s| match s {
                    Seen::Connected { .. } => connected,
                    Seen::Disconnected { .. } => !connected,
                    _ => false,
                })
                .count()
        };
        count(true) - count(false)
    }

    /// How many transport sessions of the handshake revisions are live (opened and not lost or
    /// ended): where an unsolicited `list_changed` can go.
    pub fn live_sessions(&self) -> usize {
        self.shared.inner().sessions.iter().filter(|s| !s.lost && !s.stateless).count()
    }

    /// Whether a client has spoken the stateless revision to this server (a stateless HTTP
    /// request, or a stdio connection whose era it settled).
    pub fn stateless_clients(&self) -> bool {
        self.shared.inner().sessions.iter().any(|s| s.modern)
    }

    /// How many open `subscriptions/listen` streams asked for `toolsListChanged` and are honoured
    /// (the stateless revision): where a change notification would go now.
    pub fn listening(&self) -> usize {
        self.open_listens(modern::listening)
    }

    /// How many open `subscriptions/listen` streams asked for `toolsListChanged`, whether the
    /// server honours it or not (the stateless revision): the streams a client listens on.
    pub fn listens_asked(&self) -> usize {
        self.open_listens(modern::asked)
    }

    /// `count` summed over the listen streams of every stateless client not lost.
    fn open_listens(&self, count: fn(&[modern::Listen]) -> usize) -> usize {
        let inner = self.shared.inner();
        inner.sessions.iter().filter(|s| s.modern && !s.lost).map(|s| count(&s.listens)).sum()
    }

    /// Ends every `subscriptions/listen` stream gracefully (the stateless revision): each gets its
    /// listen request's result, and no notification after it. How many ended.
    pub fn end_listens(&self) -> usize {
        let mut inner = self.shared.inner();
        let mut ended = Vec::new();
        for session in &mut inner.sessions {
            ended.extend(
                modern::end(&mut session.listens).into_iter().map(|subscription| (session.id.clone(), subscription)),
            );
        }
        let count = ended.len();
        inner.seen.extend(ended.into_iter().map(|(session, subscription)| Seen::ListenEnded { session, subscription }));
        count
    }

    /// From now on, hold every `tools/list` until [`ServerHandle::release`] (`true`), or answer
    /// each at once from the list (`false`; those held stay held).
    pub fn hold_lists(&self, on: bool) {
        self.shared.inner().holding.on = on;
    }

    /// The `tools/list` requests held now, oldest first. One the host gave up on (its
    /// connection closed) is no longer held, and is logged as [`Seen::Abandoned`].
    pub fn held(&self) -> Vec<Held> {
        let mut inner = self.shared.inner();
        let (kept, gone): (Vec<_>, Vec<_>) =
            std::mem::take(&mut inner.holding.held).into_iter().partition(|(_, answer)| !answer.is_closed());
        inner.seen.extend(gone.into_iter().map(|(held, _)| Seen::Abandoned { id: held.id }));
        inner.holding.held = kept;
        inner.holding.held.iter().map(|(held, _)| held.clone()).collect()
    }

    /// Answers held `tools/list` number `id`; `false` if no such request is held (answered, or
    /// given up by the host, whose connection closed).
    pub fn release(&self, id: u64, release: Release) -> bool {
        let mut inner = self.shared.inner();
        let Some(at) = inner.holding.held.iter().position(|(held, _)| held.id == id) else { return false };
        let (held, answer) = inner.holding.held.remove(at);
        let told = match &release {
            Release::Tools { tools, next_cursor } => {
                let names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
                let more = next_cursor.as_ref().map(|c| format!(", next cursor {c}")).unwrap_or_default();
                format!("tools: {}{more}", names.join(", "))
            }
            Release::Unauthorized => "401".to_owned(),
            Release::SessionLost => {
                if let Some(session) = inner.sessions.iter_mut().find(|s| s.id == held.session) {
                    session.lose();
                }
                "404".to_owned()
            }
            Release::Failed => "503".to_owned(),
        };
        inner.seen.push(Seen::Released { id, answer: told });
        answer.send(release).is_ok()
    }

    /// How many things the server has seen so far (the length of [`ServerHandle::seen`], without
    /// copying it).
    pub fn seen_count(&self) -> usize {
        self.shared.inner().seen.len()
    }

    /// Everything the server saw so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.shared.inner().seen.clone()
    }
}

/// A running server; dropping it stops it.
pub struct McpServer {
    served: Served,
    relay: stdio::Relay,
    handle: ServerHandle,
}

impl McpServer {
    /// Starts the server of `connector` on an ephemeral port of 127.0.0.1, listing `tools`.
    pub fn start(
        connector: &str,
        tools: Vec<Tool>,
        behaviour: Behaviour,
        protection: Protection,
    ) -> std::io::Result<McpServer> {
        McpServer::start_on(0, connector, tools, behaviour, protection)
    }

    /// [`McpServer::start`] on `port` of 127.0.0.1 (0: an ephemeral one).
    pub fn start_on(
        port: u16,
        connector: &str,
        tools: Vec<Tool>,
        behaviour: Behaviour,
        protection: Protection,
    ) -> std::io::Result<McpServer> {
        let inner = Inner {
            tools,
            version: 0,
            behaviour,
            sessions: Vec::new(),
            opened: 0,
            seen: Vec::new(),
            grants: oauth::Grants::default(),
            holding: Holding::default(),
        };
        let mut handle = None;
        let served = Served::start_with(
            port,
            |addr| {
                let base = format!("http://{addr}");
                let shared =
                    Arc::new(Shared { connector: connector.to_owned(), base, protection, inner: Mutex::new(inner) });
                handle = Some(ServerHandle { shared: Arc::clone(&shared) });
                let router = Router::new().route("/mcp", post(message).get(stream).delete(end));
                let router = if protection == Protection::OAuth { oauth::routes(router) } else { router };
                router.fallback(other).layer(DefaultBodyLimit::max(4 << 20)).with_state(shared)
            },
            &format!("mcp-{connector}"),
        )?;
        let handle = handle.expect("the router was made");
        let relay = stdio::Relay::start(Arc::clone(&handle.shared))?;
        Ok(McpServer { served, relay, handle })
    }

    /// The URL a host is configured with, `http://127.0.0.1:PORT/mcp`.
    pub fn url(&self) -> String {
        format!("http://{}/mcp", self.served.addr())
    }

    /// Where `coherence mcp-server --relay ADDR` connects: the stdio transport's other end
    /// (`127.0.0.1:PORT`).
    pub fn relay_addr(&self) -> std::net::SocketAddr {
        self.relay.addr()
    }

    /// The server's controls.
    pub fn handle(&self) -> &ServerHandle {
        &self.handle
    }
}

impl std::ops::Deref for McpServer {
    type Target = ServerHandle;

    fn deref(&self) -> &ServerHandle {
        &self.handle
    }
}

fn refuse(shared: &Shared, status: StatusCode, why: &str, asked: String) -> Response {
    shared.inner().seen.push(Seen::Refused { status: status.as_u16(), why: why.to_owned(), asked });
    let body = json!({ "jsonrpc": "2.0", "id": null, "error": { "code": -32000, "message": why } });
    (status, axum::Json(body)).into_response()
}

/// The live session `headers` name, or the refusal: 401 first (the bearer token of a protected
/// server), then 400 or 404.
#[allow(clippy::result_large_err)] // the refusal is the handler's answer, made once
fn session_of(shared: &Shared, headers: &HeaderMap, asked: &str) -> Result<String, Response> {
    if shared.protection == Protection::OAuth {
        oauth::check_bearer(shared, &mut shared.inner(), headers, asked)?;
    }
    let Some(id) = headers.get(SESSION_HEADER).and_then(|v| v.to_str().ok()) else {
        return Err(refuse(shared, StatusCode::BAD_REQUEST, "no Mcp-Session-Id header", asked.to_owned()));
    };
    let known = shared.inner().sessions.iter().any(|s| s.id == id && !s.lost);
    if known {
        Ok(id.to_owned())
    } else {
        let why = format!("no session {id}: initialize again");
        Err(refuse(shared, StatusCode::NOT_FOUND, &why, asked.to_owned()))
    }
}

fn result(id: &Value, result: Value) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "result": result })
}

fn rpc_error(id: &Value, code: i64, message: &str) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "error": { "code": code, "message": message } })
}

async fn message(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let message: Value = match serde_json::from_slice(&body) {
        Ok(Value::Object(message)) => Value::Object(message),
        Ok(Value::Array(_)) => {
            return refuse(&shared, StatusCode::BAD_REQUEST, "batches are not accepted", "a batch".into());
        }
        Ok(_) | Err(_) => {
            return refuse(&shared, StatusCode::BAD_REQUEST, "the body is not a JSON-RPC message", "POST /mcp".into());
        }
    };
    if !headers.contains_key(SESSION_HEADER)
        && modern::is_stateless(Some(&headers), &message)
        && shared.inner().behaviour.modern.is_some()
    {
        return stateless(&shared, &headers, &message).await;
    }
    let method = message.get("method").and_then(Value::as_str).map(str::to_owned);
    let id = message.get("id").cloned();
    let (Some(method), Some(id)) = (method.clone(), id) else {
        // A notification or a response: accepted, nothing to answer.
        let session = match session_of(&shared, &headers, method.as_deref().unwrap_or("a response")) {
            Ok(session) => session,
            Err(refused) => return refused,
        };
        let seen = match method.as_deref() {
            Some("notifications/initialized") => Seen::Initialized { session },
            other => Seen::Other { session, method: other.unwrap_or("response").to_owned() },
        };
        shared.inner().seen.push(seen);
        return StatusCode::ACCEPTED.into_response();
    };
    if method == "initialize" {
        if shared.protection == Protection::OAuth
            && let Err(refused) = oauth::check_bearer(&shared, &mut shared.inner(), &headers, "initialize")
        {
            return refused;
        }
        return initialize(&shared, &id, &message);
    }
    let session = match session_of(&shared, &headers, &method) {
        Ok(session) => session,
        Err(refused) => return refused,
    };
    let params = message.get("params");
    if method == "tools/list" {
        let cursor = params.and_then(|p| p.get("cursor")).and_then(Value::as_str).map(str::to_owned);
        if let Some(waiting) = hold(&shared, &session, cursor) {
            return released(&id, waiting.await.unwrap_or(Release::Failed));
        }
    }
    if refuses_call(&shared, &method, params) {
        return released(&id, Release::Unauthorized);
    }
    axum::Json(answer(&shared, &session, &method, &id, params)).into_response()
}

/// Whether the server answers a `tools/call` with 401 rather than running it or calling the tool
/// unknown: an open server that lists only its stubs (its connector is not authenticated: the
/// token expired or access was revoked) refuses a call of a tool it does not list, as SPEC.md
/// §3's servers do; an authenticated one answers "unknown tool" (-32602). Logged as a refusal.
fn refuses_call(shared: &Shared, method: &str, params: Option<&Value>) -> bool {
    if method != "tools/call" || shared.protection != Protection::Open {
        return false;
    }
    let tool = params.and_then(|p| p.get("name")).and_then(Value::as_str).unwrap_or("");
    let mut inner = shared.inner();
    let actions = Tool::actions(&shared.connector);
    let authenticated = inner.tools.iter().any(|t| actions.contains(t));
    if authenticated || inner.tools.iter().any(|t| t.name == tool) {
        return false;
    }
    let why = format!("{} is not authenticated: the token expired or access was revoked", shared.connector);
    inner.seen.push(Seen::Refused { status: 401, why, asked: format!("tools/call {tool}") });
    true
}

/// Holds a `tools/list` of `session`, if the server holds lists: the answer, when released.
fn hold(shared: &Shared, session: &str, cursor: Option<String>) -> Option<tokio::sync::oneshot::Receiver<Release>> {
    let mut inner = shared.inner();
    let fresh = match inner.sessions.iter_mut().find(|s| s.id == session) {
        Some(live) => !std::mem::replace(&mut live.listed, true),
        None => false,
    };
    if !inner.holding.on {
        return None;
    }
    let id = inner.holding.next;
    inner.holding.next += 1;
    let (answer, waiting) = tokio::sync::oneshot::channel();
    inner.seen.push(Seen::Held { id, session: session.to_owned(), cursor: cursor.clone() });
    inner.holding.held.push((Held { id, session: session.to_owned(), cursor, fresh }, answer));
    Some(waiting)
}

/// A request of the stateless revision over HTTP ([`modern`]), in the server's stateless log
/// session.
async fn stateless(shared: &Shared, headers: &HeaderMap, message: &Value) -> Response {
    let method = message.get("method").and_then(Value::as_str).unwrap_or("response").to_owned();
    if shared.protection == Protection::OAuth
        && let Err(refused) = oauth::check_bearer(shared, &mut shared.inner(), headers, &method)
    {
        return refused;
    }
    if let Some(refused) = modern::refusal(Some(headers), message) {
        let why = refused.pointer("/error/message").and_then(Value::as_str).unwrap_or("").to_owned();
        shared.inner().seen.push(Seen::Refused { status: 400, why, asked: method });
        return (StatusCode::BAD_REQUEST, axum::Json(refused)).into_response();
    }
    let session = stateless_session(shared);
    let Some(id) = message.get("id").cloned() else {
        // A notification (or a response): nothing on this wire acts on one.
        shared.inner().seen.push(Seen::Other { session, method });
        return StatusCode::ACCEPTED.into_response();
    };
    let params = message.get("params");
    match method.as_str() {
        "server/discover" => {
            axum::Json(modern::discover(shared, &mut shared.inner(), &session, &id, message)).into_response()
        }
        "subscriptions/listen" => {
            let (sender, receiver) = mpsc::unbounded_channel::<Value>();
            modern::listen(&mut shared.inner(), &session, &id, message, sender);
            sse(receiver, true)
        }
        _ => {
            if method == "tools/list" {
                let cursor = params.and_then(|p| p.get("cursor")).and_then(Value::as_str).map(str::to_owned);
                if let Some(waiting) = hold(shared, &session, cursor) {
                    return match waiting.await.unwrap_or(Release::Failed) {
                        Release::Tools { tools, next_cursor } => {
                            axum::Json(listed(shared, true, &id, &tools, next_cursor)).into_response()
                        }
                        // No transport session to lose: the server restarted under the request.
                        Release::SessionLost => released(&id, Release::Failed),
                        other => released(&id, other),
                    };
                }
            }
            if refuses_call(shared, &method, params) {
                return released(&id, Release::Unauthorized);
            }
            let body = answer(shared, &session, &method, &id, params);
            let behaviour = shared.inner().behaviour;
            axum::Json(modern::decorate(shared, &behaviour, &method, body)).into_response()
        }
    }
}

/// The log session of stateless HTTP requests, opened at the first (and again after the server
/// lost its sessions).
fn stateless_session(shared: &Shared) -> String {
    if let Some(live) = shared.inner().sessions.iter().find(|s| s.stateless && !s.lost) {
        return live.id.clone();
    }
    let id = open_session(shared, None, None);
    if let Some(opened) = shared.inner().sessions.iter_mut().find(|s| s.id == id) {
        (opened.modern, opened.stateless) = (true, true);
    }
    id
}

/// The reply to `tools/list` request `id` with a page of `tools`, in the stateless revision
/// (`modern`) or a handshake one.
fn listed(shared: &Shared, modern: bool, id: &Value, tools: &[Tool], next_cursor: Option<String>) -> Value {
    let reply = result(id, page(tools, next_cursor));
    if modern {
        let behaviour = shared.inner().behaviour;
        modern::decorate(shared, &behaviour, "tools/list", reply)
    } else {
        reply
    }
}

/// A `tools/list` result: `tools`, and a `nextCursor` to more if given.
fn page(tools: &[Tool], next_cursor: Option<String>) -> Value {
    let mut page = json!({ "tools": tools.iter().map(Tool::to_json).collect::<Vec<_>>() });
    if let Some(cursor) = next_cursor {
        page["nextCursor"] = json!(cursor);
    }
    page
}

fn released(id: &Value, release: Release) -> Response {
    match release {
        Release::Tools { tools, next_cursor } => axum::Json(result(id, page(&tools, next_cursor))).into_response(),
        Release::Unauthorized => {
            let body =
                json!({ "error": "unauthorized", "error_description": "the token expired or access was revoked" });
            let mut response = (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response();
            response.headers_mut().insert(axum::http::header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            response
        }
        Release::SessionLost => {
            let body = json!({ "jsonrpc": "2.0", "id": null, "error": { "code": -32000, "message": "session not found: initialize again" } });
            (StatusCode::NOT_FOUND, axum::Json(body)).into_response()
        }
        Release::Failed => (StatusCode::SERVICE_UNAVAILABLE, "the request failed").into_response(),
    }
}

fn initialize(shared: &Shared, id: &Value, message: &Value) -> Response {
    let session = open_session(shared, None, None);
    let body = initialized(shared, &session, id, message);
    let mut response = axum::Json(body).into_response();
    let value = HeaderValue::from_str(&session).expect("a session id is visible ASCII");
    response.headers_mut().insert(SESSION_HEADER, value);
    response
}

/// Opens a session, `<connector>-<n>`; `stream` receives the server's messages to it (a stdio
/// connection's; an HTTP session's streams come with `GET /mcp`).
fn open_session(
    shared: &Shared,
    stream: Option<mpsc::UnboundedSender<Value>>,
    closer: Option<std::net::TcpStream>,
) -> String {
    let mut inner = shared.inner();
    inner.opened += 1;
    let session = format!("{}-{}", shared.connector, inner.opened);
    let streams = stream.into_iter().collect();
    inner.sessions.push(Session {
        id: session.clone(),
        lost: false,
        listed: false,
        streams,
        modern: false,
        stateless: false,
        listens: Vec::new(),
        closer,
    });
    session
}

/// Logs `initialize` in `session` and returns its result.
fn initialized(shared: &Shared, session: &str, id: &Value, message: &Value) -> Value {
    let asked = message.pointer("/params/protocolVersion").and_then(Value::as_str).unwrap_or("");
    let protocol = PROTOCOL_VERSIONS.iter().find(|v| **v == asked).unwrap_or(&PROTOCOL_VERSIONS[0]).to_string();
    let client = message.pointer("/params/clientInfo/name").and_then(Value::as_str).unwrap_or("").to_owned();
    let mut inner = shared.inner();
    inner.seen.push(Seen::Initialize { session: session.to_owned(), protocol: protocol.clone(), client });
    let capabilities = json!({ "tools": { "listChanged": inner.behaviour.declares_list_changed } });
    drop(inner);
    result(
        id,
        json!({
            "protocolVersion": protocol,
            "capabilities": capabilities,
            "serverInfo": { "name": shared.connector, "version": env!("CARGO_PKG_VERSION") },
        }),
    )
}

/// Sends `list_changed` on every open stream of every session the server has not lost, if it
/// sends notifications at all: how many streams it went out on.
fn notify(inner: &mut Inner) -> usize {
    if !inner.behaviour.sends_list_changed {
        return 0;
    }
    let note = json!({ "jsonrpc": "2.0", "method": "notifications/tools/list_changed" });
    let mut sent = Vec::new();
    for session in inner.sessions.iter_mut().filter(|s| !s.lost) {
        let streams = if session.modern {
            modern::notify(&mut session.listens)
        } else {
            session.streams.retain(|stream| stream.send(note.clone()).is_ok());
            session.streams.len()
        };
        sent.push((session.id.clone(), streams));
    }
    let total = sent.iter().map(|(_, streams)| streams).sum();
    inner.seen.extend(sent.into_iter().map(|(session, streams)| Seen::Notified { session, streams }));
    total
}

/// The result of a call of a tool the server lists. The stubs do what their names say:
/// `authenticate` answers with the URL to open, `complete_authentication` authenticates the
/// connector (the server lists its action tools from now on). An action tool just works.
fn call(shared: &Shared, inner: &mut Inner, tool: &str) -> String {
    let connector = &shared.connector;
    match tool.strip_prefix(connector.as_str()).and_then(|t| t.strip_prefix('_')) {
        Some("authenticate") => format!(
            "To authenticate {connector}, open {}/authorize?connector={connector} and approve, then call {connector}_complete_authentication.",
            shared.base
        ),
        Some("complete_authentication") => {
            inner.tools = Tool::actions(connector);
            inner.version += 1;
            if inner.behaviour.notifies_on_authentication {
                notify(inner);
            }
            format!("{connector} is authenticated: its tools are listed now.")
        }
        _ => format!("{tool}: done"),
    }
}

fn answer(shared: &Shared, session: &str, method: &str, id: &Value, params: Option<&Value>) -> Value {
    let mut inner = shared.inner();
    match method {
        "ping" => result(id, json!({})),
        "tools/list" => {
            let cursor = params.and_then(|p| p.get("cursor")).and_then(Value::as_str).map(str::to_owned);
            let start = match cursor.as_deref().map(str::parse::<usize>) {
                None => 0,
                Some(Ok(start)) if start <= inner.tools.len() => start,
                Some(_) => return rpc_error(id, -32602, "invalid cursor"),
            };
            let end = inner
                .behaviour
                .page_size
                .map_or(inner.tools.len(), |size| (start + size.max(1)).min(inner.tools.len()));
            let tools: Vec<Value> = inner.tools[start..end].iter().map(Tool::to_json).collect();
            let version = inner.version;
            inner.seen.push(Seen::List { session: session.to_owned(), version, cursor });
            let mut page = json!({ "tools": tools });
            if end < inner.tools.len() {
                page["nextCursor"] = json!(end.to_string());
            }
            result(id, page)
        }
        "tools/call" => {
            let tool = params.and_then(|p| p.get("name")).and_then(Value::as_str).unwrap_or("").to_owned();
            let listed = inner.tools.iter().any(|t| t.name == tool);
            inner.seen.push(Seen::Call { session: session.to_owned(), tool: tool.clone(), listed });
            if listed {
                let text = call(shared, &mut inner, &tool);
                result(id, json!({ "content": [{ "type": "text", "text": text }], "isError": false }))
            } else {
                rpc_error(id, -32602, &format!("Unknown tool: {tool}"))
            }
        }
        other => {
            inner.seen.push(Seen::Other { session: session.to_owned(), method: other.to_owned() });
            rpc_error(id, -32601, &format!("Method not found: {other}"))
        }
    }
}

async fn stream(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let session = match session_of(&shared, &headers, "GET /mcp") {
        Ok(session) => session,
        Err(refused) => return refused,
    };
    let (sender, receiver) = mpsc::unbounded_channel::<Value>();
    {
        let mut inner = shared.inner();
        if let Some(live) = inner.sessions.iter_mut().find(|s| s.id == session) {
            live.streams.push(sender);
        }
        inner.seen.push(Seen::Stream { session });
    }
    sse(receiver, false)
}

/// An SSE response of the messages `receiver` gets, until its sender is dropped (or, if
/// `ends_at_result`, after the first response: a listen stream's graceful end).
fn sse(receiver: mpsc::UnboundedReceiver<Value>, ends_at_result: bool) -> Response {
    let events = futures_util::stream::unfold((receiver, false), move |(mut receiver, ended)| async move {
        if ended {
            return None;
        }
        let message = receiver.recv().await?;
        let last = ends_at_result && message.get("id").is_some();
        Some((Ok::<_, Infallible>(Event::default().event("message").data(message.to_string())), (receiver, last)))
    });
    Sse::new(events).keep_alive(KeepAlive::default()).into_response()
}

async fn end(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let session = match session_of(&shared, &headers, "DELETE /mcp") {
        Ok(session) => session,
        Err(refused) => return refused,
    };
    let mut inner = shared.inner();
    inner.sessions.retain(|s| s.id != session);
    inner.seen.push(Seen::Deleted { session });
    StatusCode::OK.into_response()
}

async fn other(State(shared): State<Arc<Shared>>, method: Method, uri: Uri) -> Response {
    let asked = format!("{method} {}", uri.path());
    refuse(&shared, StatusCode::NOT_FOUND, "not an MCP endpoint of this server", asked)
}
