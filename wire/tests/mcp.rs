//! The connector servers against a real MCP client: the official Rust SDK's (`rmcp`), on
//! streamable HTTP. What the server logs is what the client did.

use coherence_wire::mcp::{
    Behaviour, CacheHint, CacheScope, LISTENS_MAX, MODERN_VERSIONS, McpServer, PROTOCOL_VERSIONS, Protection, Seen,
    Tool,
};
use rmcp::model::CallToolRequestParams;
use rmcp::service::{NotificationContext, RoleClient, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::auth::{AuthClient, AuthorizationRequest, OAuthState};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientHandler, ServiceExt};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::time::Duration;
use tokio::sync::mpsc;

fn actions(connector: &str) -> Vec<Tool> {
    Tool::actions(connector)
}

fn stubs(connector: &str) -> Vec<Tool> {
    Tool::stubs(connector)
}

/// A client that tells the test of every `list_changed` it hears.
struct Listening(mpsc::UnboundedSender<()>);

impl ClientHandler for Listening {
    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        let _ = self.0.send(());
    }
}

async fn connect(server: &McpServer) -> (RunningService<RoleClient, Listening>, mpsc::UnboundedReceiver<()>) {
    let (heard, hearing) = mpsc::unbounded_channel();
    let transport = StreamableHttpClientTransport::from_uri(server.url());
    let client = Listening(heard).serve(transport).await.expect("rmcp initializes with the server");
    (client, hearing)
}

async fn names(client: &RunningService<RoleClient, Listening>) -> Vec<String> {
    let tools = client.list_all_tools().await.expect("tools/list");
    tools.into_iter().map(|t| t.name.to_string()).collect()
}

/// Waits (at most 10 s) until `done` holds of what the server saw.
async fn until(server: &McpServer, done: impl Fn(&[Seen]) -> bool) -> Vec<Seen> {
    for _ in 0..1000 {
        let seen = server.seen();
        if done(&seen) {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the server never saw it: {:#?}", server.seen());
}

#[tokio::test(flavor = "current_thread")]
async fn rmcp_initializes_lists_and_calls() {
    let server = McpServer::start("gmail", actions("gmail"), Behaviour::ADVERTISED, Protection::Open).unwrap();
    let (client, _) = connect(&server).await;
    assert_eq!(names(&client).await, ["gmail_search", "gmail_read", "gmail_send"]);
    let info = client.peer_info().expect("the server's answer to initialize");
    assert!(info.capabilities.tools.as_ref().and_then(|t| t.list_changed).unwrap_or(false));
    let called = client.call_tool(CallToolRequestParams::new("gmail_send")).await.unwrap();
    assert_eq!(called.is_error, Some(false));
    // A tool not on the list is a JSON-RPC error, and logged as such.
    assert!(client.call_tool(CallToolRequestParams::new("gmail_forward")).await.is_err());
    client.cancel().await.unwrap();
    let seen = until(&server, |seen| seen.iter().any(|s| matches!(s, Seen::Deleted { .. }))).await;
    let Seen::Initialize { session, protocol, client } = &seen[0] else { panic!("{seen:#?}") };
    assert!(PROTOCOL_VERSIONS.contains(&protocol.as_str()), "{protocol}");
    assert!(client.contains("rmcp"), "{client}");
    assert!(seen.contains(&Seen::Initialized { session: session.clone() }));
    assert!(seen.contains(&Seen::List { session: session.clone(), version: 0, cursor: None }));
    assert!(seen.contains(&Seen::Call { session: session.clone(), tool: "gmail_send".into(), listed: true }));
    assert!(seen.contains(&Seen::Call { session: session.clone(), tool: "gmail_forward".into(), listed: false }));
}

/// An open server whose connector is no longer authenticated lists only its stubs and answers a
/// call of any other tool with 401 (the client sees an auth challenge); authenticated, it calls a
/// tool it does not list unknown (-32602).
#[tokio::test(flavor = "current_thread")]
async fn an_unauthenticated_server_answers_a_call_401_and_an_authenticated_one_unknown_tool() {
    let server = McpServer::start("gmail", stubs("gmail"), Behaviour::ADVERTISED, Protection::Open).unwrap();
    let (client, _) = connect(&server).await;
    let refused = client.call_tool(CallToolRequestParams::new("gmail_send")).await.unwrap_err();
    assert!(refused.auth_challenge().is_some(), "a 401 with WWW-Authenticate: {refused:?}");
    let prompt = client.call_tool(CallToolRequestParams::new("gmail_authenticate")).await.unwrap();
    assert_eq!(prompt.is_error, Some(false), "a listed stub runs");
    server.set_tools(actions("gmail"));
    let unknown = client.call_tool(CallToolRequestParams::new("gmail_authenticate")).await.unwrap_err();
    assert!(unknown.auth_challenge().is_none(), "unknown, not 401: {unknown:?}");
    assert!(unknown.to_string().contains("Unknown tool"), "{unknown}");
    client.cancel().await.unwrap();
    let seen = server.seen();
    let refusals: Vec<(u16, &str)> = seen
        .iter()
        .filter_map(|s| match s {
            Seen::Refused { status, asked, .. } => Some((*status, asked.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(refusals, [(401, "tools/call gmail_send")]);
    let calls: Vec<(&str, bool)> = seen
        .iter()
        .filter_map(|s| match s {
            Seen::Call { tool, listed, .. } => Some((tool.as_str(), *listed)),
            _ => None,
        })
        .collect();
    assert_eq!(calls, [("gmail_authenticate", true), ("gmail_authenticate", false)], "a refused call never ran");
}

/// The motivating report's server side: the connector is authenticated on the web, its list
/// changes from the stubs to the action tools, and the server says so on the session's stream.
#[tokio::test(flavor = "current_thread")]
async fn a_change_is_notified_on_the_stream_and_listed_again() {
    let server = McpServer::start("gmail", stubs("gmail"), Behaviour::ADVERTISED, Protection::Open).unwrap();
    let (client, mut hearing) = connect(&server).await;
    assert_eq!(names(&client).await, ["gmail_authenticate", "gmail_complete_authentication"]);
    until(&server, |seen| seen.iter().any(|s| matches!(s, Seen::Stream { .. }))).await;
    server.set_tools(actions("gmail"));
    assert_eq!(server.notify_list_changed(), 1, "one session, one stream");
    tokio::time::timeout(Duration::from_secs(10), hearing.recv()).await.expect("rmcp hears list_changed").unwrap();
    assert_eq!(names(&client).await, ["gmail_search", "gmail_read", "gmail_send"]);
    let seen = server.seen();
    let lists: Vec<u64> =
        seen.iter().filter_map(|s| if let Seen::List { version, .. } = s { Some(*version) } else { None }).collect();
    assert_eq!(lists, [0, 1]);
    client.cancel().await.unwrap();
}

/// A silent server changes its list and tells nobody: the client's list is stale until it asks.
#[tokio::test(flavor = "current_thread")]
async fn a_silent_server_notifies_nobody() {
    let silent = Behaviour { declares_list_changed: false, sends_list_changed: false, ..Behaviour::ADVERTISED };
    let server = McpServer::start("drive", stubs("drive"), silent, Protection::Open).unwrap();
    let (client, mut hearing) = connect(&server).await;
    let info = client.peer_info().unwrap();
    assert!(!info.capabilities.tools.as_ref().and_then(|t| t.list_changed).unwrap_or(false));
    server.set_tools(actions("drive"));
    assert_eq!(server.notify_list_changed(), 0);
    assert!(tokio::time::timeout(Duration::from_millis(300), hearing.recv()).await.is_err());
    assert_eq!(names(&client).await, ["drive_search", "drive_read", "drive_send"]);
    client.cancel().await.unwrap();
}

/// A lost session is a 404, and the client initializes again (rmcp does so by itself).
#[tokio::test(flavor = "current_thread")]
async fn a_lost_session_is_a_404_and_the_client_initializes_again() {
    let server = McpServer::start("calendar", actions("calendar"), Behaviour::ADVERTISED, Protection::Open).unwrap();
    let (client, _) = connect(&server).await;
    names(&client).await;
    server.lose_sessions();
    assert_eq!(names(&client).await, ["calendar_search", "calendar_read", "calendar_send"]);
    let seen = server.seen();
    let refused = seen.iter().position(|s| matches!(s, Seen::Refused { status: 404, .. })).expect("a 404");
    let again = seen.iter().rposition(|s| matches!(s, Seen::Initialize { .. })).unwrap();
    assert!(again > refused, "initialized again after the 404: {seen:#?}");
    let Seen::Initialize { session, .. } = &seen[again] else { unreachable!() };
    assert_eq!(session, "calendar-2");
    assert!(seen[again..].contains(&Seen::List { session: session.clone(), version: 0, cursor: None }));
    client.cancel().await.unwrap();
}

/// A paged list is followed to its end by the client; the server logs each page asked for.
#[tokio::test(flavor = "current_thread")]
async fn a_paged_list_is_followed_page_by_page() {
    let paged = Behaviour { page_size: Some(2), ..Behaviour::ADVERTISED };
    let server = McpServer::start("gmail", actions("gmail"), paged, Protection::Open).unwrap();
    let (client, _) = connect(&server).await;
    assert_eq!(names(&client).await, ["gmail_search", "gmail_read", "gmail_send"]);
    let cursors: Vec<Option<String>> = server
        .seen()
        .into_iter()
        .filter_map(|s| if let Seen::List { cursor, .. } = s { Some(cursor) } else { None })
        .collect();
    assert_eq!(cursors, [None, Some("2".to_owned())]);
    client.cancel().await.unwrap();
}

/// One HTTP/1.1 exchange with `/mcp`, raw: the status and the body.
fn http(url: &str, method: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
    let (status, _, body) = exchange(url, method, headers, body);
    (status, body)
}

/// One HTTP/1.1 exchange with `url`, raw: the status, the headers and the body.
fn exchange(url: &str, method: &str, headers: &[(&str, &str)], body: &str) -> (u16, String, String) {
    let rest = url.trim_start_matches("http://");
    let (address, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nhost: {address}\r\ncontent-type: application/json\r\naccept: application/json, text/event-stream\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer[9..12].parse().unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    (status, head.to_owned(), body.to_owned())
}

/// What a host gets wrong is answered as the transport says, and logged.
#[test]
fn bad_requests_get_http_errors() {
    let server = McpServer::start("gmail", actions("gmail"), Behaviour::ADVERTISED, Protection::Open).unwrap();
    let url = server.url();
    let list = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
    assert_eq!(http(&url, "POST", &[], list).0, 400, "no session header");
    assert_eq!(http(&url, "POST", &[("mcp-session-id", "gmail-9")], list).0, 404, "an unknown session");
    assert_eq!(http(&url, "POST", &[], "[]").0, 400, "a batch");
    assert_eq!(http(&url, "POST", &[], "{").0, 400, "not JSON");
    let init = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"1999-01-01","capabilities":{},"clientInfo":{"name":"raw","version":"0"}}}"#;
    let (status, body) = http(&url, "POST", &[], init);
    assert_eq!(status, 200);
    assert!(body.contains(&format!(r#""protocolVersion":"{}""#, PROTOCOL_VERSIONS[0])), "{body}");
    let session = [("mcp-session-id", "gmail-1")];
    let (status, body) = http(&url, "POST", &session, r#"{"jsonrpc":"2.0","id":2,"method":"resources/list"}"#);
    assert_eq!(status, 200);
    assert!(body.contains("-32601"), "{body}");
    let (status, body) =
        http(&url, "POST", &session, r#"{"jsonrpc":"2.0","id":3,"method":"tools/list","params":{"cursor":"x"}}"#);
    assert_eq!(status, 200);
    assert!(body.contains("-32602"), "{body}");
    assert_eq!(http(&url, "DELETE", &session, "").0, 200);
    assert_eq!(http(&url, "POST", &session, list).0, 404, "a deleted session");
    let refused: Vec<u16> = server
        .seen()
        .into_iter()
        .filter_map(|s| if let Seen::Refused { status, .. } = s { Some(status) } else { None })
        .collect();
    assert_eq!(refused, [400, 404, 400, 400, 404]);
}

/// Visits an authorization URL as the user's browser would, and returns where it redirects.
fn visit(url: &str) -> String {
    let (status, head, _) = exchange(url, "GET", &[], "");
    assert_eq!(status, 302, "{head}");
    let location = head.lines().find_map(|l| l.strip_prefix("location: ")).expect("a Location header");
    location.to_owned()
}

fn query_value(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

/// An OAuth-protected server against rmcp's OAuth client: 401 with the metadata named; discovery,
/// dynamic registration and PKCE; the code only once access is granted on the web; then the tools.
#[tokio::test(flavor = "current_thread")]
async fn rmcp_authorizes_through_oauth_once_access_is_granted_on_the_web() {
    let server = McpServer::start("gmail", actions("gmail"), Behaviour::ADVERTISED, Protection::OAuth).unwrap();
    let unauthorized = StreamableHttpClientTransport::from_uri(server.url());
    assert!(().serve(unauthorized).await.is_err(), "no token, no session");
    let callback = "http://127.0.0.1:9/callback";
    let mut oauth = OAuthState::new(server.url(), None).await.unwrap();
    oauth
        .start_authorization(AuthorizationRequest::new(callback).with_client_name("mcp-coherence test"))
        .await
        .unwrap();
    let url = oauth.get_authorization_url().await.unwrap();
    let denied = visit(&url);
    assert!(denied.starts_with(callback), "{denied}");
    assert_eq!(query_value(&denied, "error").as_deref(), Some("access_denied"));
    server.grant();
    let approved = visit(&url);
    let (code, state) = (query_value(&approved, "code").unwrap(), query_value(&approved, "state").unwrap());
    oauth.handle_callback(&code, &state).await.unwrap();
    let manager = oauth.into_authorization_manager().expect("authorized");
    let transport = StreamableHttpClientTransport::with_client(
        AuthClient::new(reqwest::Client::default(), manager),
        StreamableHttpClientTransportConfig::with_uri(server.url()),
    );
    let client = ().serve(transport).await.expect("with the token, a session");
    let tools = client.list_all_tools().await.unwrap();
    assert_eq!(tools.len(), 3);
    server.revoke();
    assert!(client.list_all_tools().await.is_err(), "revoked on the web: 401");
    let steps: Vec<String> = server
        .seen()
        .into_iter()
        .filter_map(|s| if let Seen::OAuth { step } = s { Some(step) } else { None })
        .collect();
    for expected in [
        "resource metadata",
        "server metadata",
        "register: client-gmail-1",
        "authorize: denied, access not granted on the web",
        "authorize: code",
        "token: code",
    ] {
        assert!(steps.iter().any(|s| s == expected), "{expected} not in {steps:#?}");
    }
    let refused: Vec<u16> = server
        .seen()
        .into_iter()
        .filter_map(|s| if let Seen::Refused { status, .. } = s { Some(status) } else { None })
        .collect();
    assert_eq!(refused.first(), Some(&401));
    assert_eq!(refused.last(), Some(&401));
}

/// The token endpoint by hand: PKCE checked, codes used once, refresh while granted, and nothing
/// after a revocation.
#[test]
fn tokens_are_issued_refreshed_and_revoked() {
    let server = McpServer::start("drive", actions("drive"), Behaviour::ADVERTISED, Protection::OAuth).unwrap();
    let base = server.url().trim_end_matches("/mcp").to_owned();
    let (status, head, _) = exchange(&server.url(), "POST", &[], r#"{"jsonrpc":"2.0","id":0,"method":"initialize"}"#);
    assert_eq!(status, 401);
    assert!(
        head.contains(&format!(
            r#"www-authenticate: Bearer resource_metadata="{base}/.well-known/oauth-protected-resource/mcp""#
        )),
        "{head}"
    );
    let (status, _, body) =
        exchange(&format!("{base}/register"), "POST", &[], r#"{"redirect_uris":["http://127.0.0.1:9/cb"]}"#);
    assert_eq!(status, 201, "{body}");
    server.grant();
    // RFC 7636 appendix B's verifier and challenge.
    let (verifier, challenge) =
        ("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    let authorize = format!(
        "{base}/authorize?response_type=code&client_id=client-drive-1&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb&state=s&code_challenge={challenge}&code_challenge_method=S256"
    );
    let form = |code: &str, verifier: &str| {
        format!(
            "grant_type=authorization_code&code={code}&client_id=client-drive-1&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb&code_verifier={verifier}"
        )
    };
    let token = |form: &str| {
        exchange(&format!("{base}/token"), "POST", &[("content-type", "application/x-www-form-urlencoded")], form)
    };
    let code = query_value(&visit(&authorize), "code").unwrap();
    assert_eq!(token(&form(&code, "wrong-verifier")).0, 400, "PKCE is checked");
    let code = query_value(&visit(&authorize), "code").unwrap();
    let (status, _, body) = token(&form(&code, verifier));
    assert_eq!(status, 200, "{body}");
    assert_eq!(token(&form(&code, verifier)).0, 400, "a code is used once");
    let granted: serde_json::Value = serde_json::from_str(&body).unwrap();
    let access = granted["access_token"].as_str().unwrap().to_owned();
    let refresh = granted["refresh_token"].as_str().unwrap().to_owned();
    let bearer = format!("Bearer {access}");
    let init = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"0"}}}"#;
    assert_eq!(exchange(&server.url(), "POST", &[("authorization", &bearer)], init).0, 200);
    server.expire_tokens();
    let (status, head, _) = exchange(&server.url(), "POST", &[("authorization", &bearer)], init);
    assert_eq!(status, 401);
    assert!(head.contains(r#"error="invalid_token""#), "{head}");
    let (status, _, body) = token(&format!("grant_type=refresh_token&refresh_token={refresh}"));
    assert_eq!(status, 200, "a silent refresh: {body}");
    server.revoke();
    assert_eq!(token(&format!("grant_type=refresh_token&refresh_token={refresh}")).0, 400, "revoked: no refresh");
    assert!(query_value(&visit(&authorize), "error").as_deref() == Some("access_denied"));
    let (status, _, _) = exchange(
        &format!(
            "{base}/authorize?response_type=code&client_id=client-drive-9&redirect_uri=http%3A%2F%2Fevil%2F&code_challenge={challenge}&code_challenge_method=S256"
        ),
        "GET",
        &[],
        "",
    );
    assert_eq!(status, 400, "an unknown client is never redirected");
}

/// Waits (at most 10 s) until the server holds `n` lists, and returns them.
async fn until_held(server: &McpServer, n: usize) -> Vec<coherence_wire::mcp::Held> {
    for _ in 0..1000 {
        let held = server.held();
        if held.len() >= n {
            return held;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{n} lists never held: {:#?}", server.seen());
}

/// Held lists wait for the runner: released as pages with the runner's cursors, as a 404 (the
/// client initializes again and asks afresh) and as a 401 (the client's call fails).
#[tokio::test(flavor = "current_thread")]
async fn held_lists_are_answered_as_the_runner_says() {
    use coherence_wire::mcp::{Held, Release};
    let server = McpServer::start("gmail", stubs("gmail"), Behaviour::ADVERTISED, Protection::Open).unwrap();
    let (client, _) = connect(&server).await;
    server.hold_lists(true);
    let client = std::sync::Arc::new(client);
    let listing = tokio::spawn({
        let client = std::sync::Arc::clone(&client);
        async move {
            client.list_all_tools().await.map(|tools| tools.into_iter().map(|t| t.name.to_string()).collect::<Vec<_>>())
        }
    });
    let held = until_held(&server, 1).await;
    assert_eq!(held, [Held { id: 0, session: "gmail-1".into(), cursor: None, fresh: true }]);
    let all = Tool::actions("gmail");
    assert!(server.release(0, Release::Tools { tools: all[..2].to_vec(), next_cursor: Some("after-read".into()) }));
    assert!(!server.release(0, Release::Failed), "released once");
    let held = until_held(&server, 1).await;
    assert_eq!(held, [Held { id: 1, session: "gmail-1".into(), cursor: Some("after-read".into()), fresh: false }]);
    server.release(1, Release::Tools { tools: all[2..].to_vec(), next_cursor: None });
    assert_eq!(listing.await.unwrap().unwrap(), ["gmail_search", "gmail_read", "gmail_send"]);
    // A 404: rmcp initializes again and asks afresh in the new session.
    let listing = tokio::spawn({
        let client = std::sync::Arc::clone(&client);
        async move { client.list_all_tools().await.map(|tools| tools.len()) }
    });
    until_held(&server, 1).await;
    server.release(2, Release::SessionLost);
    let held = until_held(&server, 1).await;
    assert_eq!(held, [Held { id: 3, session: "gmail-2".into(), cursor: None, fresh: true }]);
    server.release(3, Release::Tools { tools: all.clone(), next_cursor: None });
    assert_eq!(listing.await.unwrap().unwrap(), 3);
    // A 401 fails the client's request.
    let listing = tokio::spawn({
        let client = std::sync::Arc::clone(&client);
        async move { client.list_all_tools().await.map(|tools| tools.len()) }
    });
    until_held(&server, 1).await;
    server.release(4, Release::Unauthorized);
    assert!(listing.await.unwrap().is_err());
    let answers: Vec<String> = server
        .seen()
        .into_iter()
        .filter_map(|s| if let Seen::Released { answer, .. } = s { Some(answer) } else { None })
        .collect();
    assert_eq!(
        answers,
        [
            "tools: gmail_search, gmail_read, next cursor after-read",
            "tools: gmail_send",
            "404",
            "tools: gmail_search, gmail_read, gmail_send",
            "401"
        ]
    );
}

/// A held list the host gives up on (its connection closed) is no longer held.
#[test]
fn an_abandoned_list_is_no_longer_held() {
    let server = McpServer::start("gmail", actions("gmail"), Behaviour::ADVERTISED, Protection::Open).unwrap();
    let init = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"0"}}}"#;
    assert_eq!(http(&server.url(), "POST", &[], init).0, 200);
    server.hold_lists(true);
    let address = server.url().trim_start_matches("http://").trim_end_matches("/mcp").to_owned();
    let mut stream = std::net::TcpStream::connect(&address).unwrap();
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
    write!(stream, "POST /mcp HTTP/1.1\r\nhost: x\r\nmcp-session-id: gmail-1\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}", body.len()).unwrap();
    for _ in 0..1000 {
        if !server.held().is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(server.held().len(), 1);
    drop(stream);
    for _ in 0..1000 {
        if server.held().is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(server.held().is_empty());
    assert!(server.seen().contains(&Seen::Abandoned { id: 0 }));
}

/// A server that speaks the stateless revision 2026-07-28 too, with these cache hints.
fn modern(hint: CacheHint) -> Behaviour {
    Behaviour { modern: Some(hint), ..Behaviour::ADVERTISED }
}

/// A stateless request's body: `method` with `params`, and the `_meta` every 2026-07-28 request
/// carries, at `version`.
fn stateless(id: u64, method: &str, mut params: Value, version: &str) -> String {
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": version,
        "io.modelcontextprotocol/clientInfo": { "name": "raw", "version": "0" },
        "io.modelcontextprotocol/clientCapabilities": {},
    });
    json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }).to_string()
}

/// One stateless request over HTTP, with its routing headers: the status and the JSON body.
fn post_stateless(url: &str, id: u64, method: &str, params: Value) -> (u16, Value) {
    let headers = [("mcp-protocol-version", "2026-07-28"), ("mcp-method", method)];
    let (status, body) = http(url, "POST", &headers, &stateless(id, method, params, "2026-07-28"));
    (status, serde_json::from_str(&body).unwrap_or_else(|_| panic!("not JSON: {body}")))
}

/// A server that speaks 2026-07-28 answers `server/discover` and stateless requests: every result
/// complete and naming the server, the cacheable ones with its cache hints; no `initialize`, no
/// session header.
#[test]
fn a_stateless_client_discovers_lists_and_calls() {
    let hint = CacheHint { ttl_ms: 60_000, scope: CacheScope::Public };
    let server = McpServer::start("gmail", actions("gmail"), modern(hint), Protection::Open).unwrap();
    let url = server.url();
    let (status, found) = post_stateless(&url, 1, "server/discover", json!({}));
    assert_eq!(status, 200, "{found}");
    let result = &found["result"];
    assert_eq!(result["supportedVersions"], json!(MODERN_VERSIONS));
    assert_eq!(result["capabilities"]["tools"]["listChanged"], json!(true));
    assert_eq!((&result["ttlMs"], &result["cacheScope"]), (&json!(60_000), &json!("public")));
    assert_eq!(result["resultType"], json!("complete"));
    assert_eq!(result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"], json!("gmail"));
    let (status, listed) = post_stateless(&url, 2, "tools/list", json!({}));
    assert_eq!(status, 200);
    let names: Vec<&str> =
        listed["result"]["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["gmail_search", "gmail_read", "gmail_send"]);
    assert_eq!((&listed["result"]["ttlMs"], &listed["result"]["resultType"]), (&json!(60_000), &json!("complete")));
    let (_, called) = post_stateless(&url, 3, "tools/call", json!({ "name": "gmail_send" }));
    assert_eq!(called["result"]["resultType"], json!("complete"));
    assert!(called["result"].get("ttlMs").is_none(), "a call's result is not cacheable: {called}");
    let seen = server.seen();
    assert_eq!(
        seen[0],
        Seen::Discover { session: "gmail-1".into(), protocol: "2026-07-28".into(), client: "raw".into() }
    );
    assert!(seen.contains(&Seen::List { session: "gmail-1".into(), version: 0, cursor: None }));
    assert!(!seen.iter().any(|s| matches!(s, Seen::Initialize { .. } | Seen::Refused { .. })), "{seen:#?}");
}

/// What a stateless client gets wrong is refused with the revision's errors: a version the server
/// does not speak (`-32022`, naming the ones it does), a routing header that disagrees with the
/// body (`-32020`); and a server of the handshake revisions alone refuses `server/discover` as a
/// request with no session, which tells a client to fall back to `initialize`.
#[test]
fn stateless_requests_are_refused_as_the_revision_says() {
    let server = McpServer::start("gmail", actions("gmail"), modern(CacheHint::STALE), Protection::Open).unwrap();
    let url = server.url();
    let old = stateless(1, "tools/list", json!({}), "2025-11-25");
    let (status, body) = http(&url, "POST", &[], &old);
    assert_eq!(status, 400);
    let refused: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(refused["error"]["code"], json!(-32022), "{refused}");
    assert_eq!(refused["error"]["data"]["supported"], json!(MODERN_VERSIONS));
    let list = stateless(2, "tools/list", json!({}), "2026-07-28");
    let (status, body) = http(&url, "POST", &[("mcp-method", "tools/call")], &list);
    assert_eq!((status, serde_json::from_str::<Value>(&body).unwrap()["error"]["code"].clone()), (400, json!(-32020)));
    let (status, body) = http(&url, "POST", &[("mcp-protocol-version", "2026-08-01")], &list);
    assert_eq!((status, serde_json::from_str::<Value>(&body).unwrap()["error"]["code"].clone()), (400, json!(-32020)));
    // The handshake revisions still work on the same server.
    let init = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"0"}}}"#;
    assert_eq!(http(&url, "POST", &[], init).0, 200);
    let handshake_only = McpServer::start("gmail", actions("gmail"), Behaviour::ADVERTISED, Protection::Open).unwrap();
    let discover = stateless(1, "server/discover", json!({}), "2026-07-28");
    assert_eq!(http(&handshake_only.url(), "POST", &[], &discover).0, 400, "no session header");
}

/// An open HTTP stream: what arrives on it, read as it comes.
struct Streaming {
    stream: std::net::TcpStream,
    read: String,
}

impl Streaming {
    fn post(url: &str, body: &str) -> Streaming {
        let rest = url.trim_start_matches("http://");
        let (address, path) = rest.split_at(rest.find('/').unwrap());
        let mut stream = std::net::TcpStream::connect(address).unwrap();
        stream.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        let request = format!(
            "POST {path} HTTP/1.1\r\nhost: {address}\r\ncontent-type: application/json\r\naccept: application/json, text/event-stream\r\nmcp-protocol-version: 2026-07-28\r\nmcp-method: subscriptions/listen\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).unwrap();
        Streaming { stream, read: String::new() }
    }

    /// Reads (at most 10 s) until what arrived holds `text`; `false` if the stream ended first.
    fn until(&mut self, text: &str) -> bool {
        let mut buffer = [0u8; 4096];
        for _ in 0..50 {
            if self.read.contains(text) {
                return true;
            }
            match self.stream.read(&mut buffer) {
                Ok(0) => return self.read.contains(text),
                Ok(n) => self.read.push_str(&String::from_utf8_lossy(&buffer[..n])),
                Err(_) => {}
            }
        }
        self.read.contains(text)
    }

    /// Everything until the stream ends (at most 10 s).
    fn rest(mut self) -> String {
        let mut buffer = [0u8; 4096];
        for _ in 0..50 {
            match self.stream.read(&mut buffer) {
                Ok(0) => return self.read,
                Ok(n) => self.read.push_str(&String::from_utf8_lossy(&buffer[..n])),
                Err(_) => {}
            }
        }
        panic!("the stream did not end: {}", self.read)
    }
}

/// Change notifications of the stateless revision go only on a `subscriptions/listen` stream
/// that asked for them, acknowledged first, each tagged with the subscription; a graceful end is
/// the listen request's result, and the stream closes.
#[test]
fn notifications_go_only_on_a_listen_stream_that_asked() {
    let server = McpServer::start("gmail", stubs("gmail"), modern(CacheHint::STALE), Protection::Open).unwrap();
    let url = server.url();
    let asked =
        stateless(7, "subscriptions/listen", json!({ "notifications": { "toolsListChanged": true } }), "2026-07-28");
    let mut listening = Streaming::post(&url, &asked);
    assert!(listening.until(r#""notifications":{"toolsListChanged":true}"#), "{}", listening.read);
    assert!(listening.read.contains("notifications/subscriptions/acknowledged"), "{}", listening.read);
    let other =
        stateless(8, "subscriptions/listen", json!({ "notifications": { "promptsListChanged": true } }), "2026-07-28");
    let mut not_asking = Streaming::post(&url, &other);
    assert!(not_asking.until(r#""notifications":{}"#), "{}", not_asking.read);
    server.set_tools(actions("gmail"));
    assert_eq!(server.notify_list_changed(), 1, "one stream asked for it");
    assert!(listening.until("notifications/tools/list_changed"), "{}", listening.read);
    assert!(listening.read.contains(r#""io.modelcontextprotocol/subscriptionId":7"#), "{}", listening.read);
    assert_eq!(server.end_listens(), 2);
    let ended = listening.rest();
    assert!(ended.contains(r#""id":7"#) && ended.contains(r#""resultType":"complete""#), "{ended}");
    assert!(!not_asking.rest().contains("list_changed"), "a stream that did not ask hears nothing");
    assert_eq!(server.notify_list_changed(), 0, "no stream left");
    let seen = server.seen();
    assert!(seen.contains(&Seen::Listen { session: "gmail-1".into(), subscription: "7".into(), tools: true }));
    assert!(seen.contains(&Seen::Listen { session: "gmail-1".into(), subscription: "8".into(), tools: false }));
    assert!(seen.contains(&Seen::ListenEnded { session: "gmail-1".into(), subscription: "7".into() }));
    // A server that does not declare `tools.listChanged` honours no such filter, and sends none.
    let silent = Behaviour { declares_list_changed: false, sends_list_changed: false, ..modern(CacheHint::STALE) };
    let server = McpServer::start("gmail", stubs("gmail"), silent, Protection::Open).unwrap();
    let mut listening = Streaming::post(&server.url(), &asked);
    assert!(listening.until(r#""notifications":{}"#), "{}", listening.read);
    assert_eq!(server.notify_list_changed(), 0);
    // A server that loses its sessions (restarts) drops the stream: no result.
    server.lose_sessions();
    assert!(!listening.rest().contains(r#""id":7"#));
    // A session holds at most LISTENS_MAX streams open at once: one more is refused, and ends.
    let server = McpServer::start("gmail", stubs("gmail"), modern(CacheHint::STALE), Protection::Open).unwrap();
    let mut open: Vec<Streaming> = (0..LISTENS_MAX).map(|_| Streaming::post(&server.url(), &asked)).collect();
    for stream in &mut open {
        assert!(stream.until("acknowledged"), "{}", stream.read);
    }
    let refused = Streaming::post(&server.url(), &asked).rest();
    assert!(refused.contains("-32600") && refused.contains("too many listen streams"), "{refused}");
}

/// An OAuth-protected server guards the stateless revision as it guards the handshake: with no
/// bearer token in force, nothing but 401 naming its protected-resource metadata.
#[test]
fn a_protected_server_answers_stateless_requests_only_with_a_token() {
    let server = McpServer::start("drive", actions("drive"), modern(CacheHint::STALE), Protection::OAuth).unwrap();
    let discover = stateless(1, "server/discover", json!({}), "2026-07-28");
    let (status, head, _) = exchange(&server.url(), "POST", &[("mcp-protocol-version", "2026-07-28")], &discover);
    assert_eq!(status, 401);
    assert!(head.contains("resource_metadata="), "{head}");
    let seen = server.seen();
    assert!(seen.iter().any(|s| matches!(s, Seen::Refused { status: 401, .. })), "{seen:#?}");
    assert!(!seen.iter().any(|s| matches!(s, Seen::Discover { .. })), "{seen:#?}");
}
