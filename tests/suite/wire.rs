//! The connector servers' stdio transport: `coherence mcp-server --relay`, spawned by a real MCP
//! client (the official Rust SDK's child-process transport) as a host's configuration would.

use coherence_wire::mcp::{Behaviour, Held, McpServer, Protection, Release, Seen, Tool};
use rmcp::service::{NotificationContext, RoleClient, RunningService};
use rmcp::transport::TokioChildProcess;
use rmcp::{ClientHandler, ServiceExt};
use std::time::Duration;
use tokio::sync::mpsc;

struct Listening(mpsc::UnboundedSender<()>);

impl ClientHandler for Listening {
    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        let _ = self.0.send(());
    }
}

async fn spawn_relay(
    server: &McpServer,
    connector: &str,
) -> (RunningService<RoleClient, Listening>, mpsc::UnboundedReceiver<()>) {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_coherence"));
    command.args(["mcp-server", "--relay", &server.relay_addr().to_string(), "--connector", connector]);
    let (heard, hearing) = mpsc::unbounded_channel();
    let client =
        Listening(heard).serve(TokioChildProcess::new(command).unwrap()).await.expect("initialized over stdio");
    (client, hearing)
}

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

/// Over stdio as over HTTP: initialize, a list, a notification heard, a held list released, and a
/// lost session that ends the server process.
#[tokio::test(flavor = "current_thread")]
async fn rmcp_talks_to_the_server_over_the_stdio_relay() {
    let server = McpServer::start("gmail", Tool::stubs("gmail"), Behaviour::ADVERTISED, Protection::Open).unwrap();
    let (client, mut hearing) = spawn_relay(&server, "gmail").await;
    let names = |tools: Vec<rmcp::model::Tool>| tools.into_iter().map(|t| t.name.to_string()).collect::<Vec<_>>();
    assert_eq!(names(client.list_all_tools().await.unwrap()), ["gmail_authenticate", "gmail_complete_authentication"]);
    server.set_tools(Tool::actions("gmail"));
    assert_eq!(server.notify_list_changed(), 1, "the connection is the stream");
    tokio::time::timeout(Duration::from_secs(10), hearing.recv()).await.expect("list_changed over stdio").unwrap();
    server.hold_lists(true);
    let client = std::sync::Arc::new(client);
    let listing = tokio::spawn({
        let client = std::sync::Arc::clone(&client);
        async move { client.list_all_tools().await.map(names) }
    });
    let held = loop {
        let held = server.held();
        if !held.is_empty() {
            break held;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(held, [Held { id: 0, session: "gmail-1".into(), cursor: None, fresh: false }]);
    server.release(0, Release::Tools { tools: Tool::actions("gmail"), next_cursor: None });
    assert_eq!(listing.await.unwrap().unwrap(), ["gmail_search", "gmail_read", "gmail_send"]);
    server.lose_sessions();
    until(&server, |seen| seen.contains(&Seen::Disconnected { session: "gmail-1".into() })).await;
    assert!(client.list_all_tools().await.is_err(), "the server process is gone");
    let seen = server.seen();
    assert_eq!(seen[0], Seen::Connected { session: "gmail-1".into() });
    assert!(
        matches!(&seen[1], Seen::Initialize { session, client, .. } if session == "gmail-1" && client.contains("rmcp"))
    );
}

/// A relay that greets the wrong server is refused; one with no server to reach fails clearly.
#[test]
fn a_relay_to_the_wrong_server_or_none_fails_clearly() {
    use std::io::Write;
    let server = McpServer::start("gmail", Tool::stubs("gmail"), Behaviour::ADVERTISED, Protection::Open).unwrap();
    let mut relay = std::process::Command::new(env!("CARGO_BIN_EXE_coherence"))
        .args(["mcp-server", "--relay", &server.relay_addr().to_string(), "--connector", "drive"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = relay.stdin.take().unwrap();
    let _ = writeln!(stdin, r#"{{"jsonrpc":"2.0","id":0,"method":"ping"}}"#);
    let status = relay.wait().unwrap();
    assert!(status.success(), "the refused relay ends as a dead server process does");
    for _ in 0..200 {
        if server.seen().iter().any(|s| matches!(s, Seen::Refused { .. })) {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let seen = server.seen();
    assert!(
        matches!(&seen[..], [Seen::Refused { status: 400, why, .. }] if why.contains(r#""connector":"gmail""#)),
        "{seen:#?}"
    );
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_coherence"))
        .args(["mcp-server", "--relay", &closed.to_string()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "an error, as every command's");
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach the server's relay socket"), "{out:?}");
}

/// The official Python MCP SDK's client (`mcp` 2.x, which implements 2026-07-28) against a
/// server that speaks both eras, over HTTP and over the stdio relay: with `mode="auto"` it probes
/// `server/discover` and goes stateless (the list's cache hints read, a listen stream
/// acknowledged, a change heard on it and listed again, a graceful end); with `mode="legacy"` it
/// initializes as before. Run by `scripts/mcp-clients`, which installs the SDK and says where
/// (`COHERENCE_MCP_CLIENTS_PYTHON`).
#[test]
#[ignore = "needs the Python MCP SDK: scripts/mcp-clients installs it and runs this"]
fn real_mcp_client_speaks_both_eras() {
    use coherence_wire::mcp::CacheHint;
    use coherence_wire::mcp::CacheScope;
    use serde_json::{Value, json};
    use std::io::{BufRead, BufReader, Write};
    let python = std::env::var("COHERENCE_MCP_CLIENTS_PYTHON")
        .expect("COHERENCE_MCP_CLIENTS_PYTHON is not set: run scripts/mcp-clients, which installs the SDK");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/mcp-clients/client_2026.py");
    let hint = CacheHint { ttl_ms: 30_000, scope: CacheScope::Private };
    let behaviour = Behaviour { modern: Some(hint), ..Behaviour::ADVERTISED };
    for transport in ["http", "stdio"] {
        for mode in ["auto", "legacy"] {
            let server = McpServer::start("gmail", Tool::stubs("gmail"), behaviour, Protection::Open).unwrap();
            let target = match transport {
                "http" => server.url(),
                _ => format!(
                    "stdio:{} mcp-server --relay {} --connector gmail",
                    env!("CARGO_BIN_EXE_coherence"),
                    server.relay_addr()
                ),
            };
            let mut child = std::process::Command::new(&python)
                .args([script, &target, mode])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            let mut stdin = child.stdin.take().unwrap();
            let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
            let mut next = || -> Value {
                let line = lines.next().and_then(Result::ok).unwrap_or_default();
                serde_json::from_str(&line)
                    .unwrap_or_else(|_| panic!("{transport} {mode}: the client printed {line:?}"))
            };
            let listed = next();
            let stubs = json!(["gmail_authenticate", "gmail_complete_authentication"]);
            assert_eq!((&listed["step"], &listed["tools"]), (&json!("listed"), &stubs), "{transport} {mode}");
            if mode == "legacy" {
                assert_eq!(listed["protocol"], json!(coherence_wire::mcp::PROTOCOL_VERSIONS[0]), "{listed}");
            } else {
                assert_eq!(listed["protocol"], json!("2026-07-28"), "{transport}: {listed}");
                assert_eq!((&listed["ttl_ms"], &listed["cache_scope"]), (&json!(30_000), &json!("private")));
                assert_eq!(next(), json!({ "step": "listening", "honored": true }), "{transport}");
                server.set_tools(Tool::actions("gmail"));
                assert_eq!(server.notify_list_changed(), 1, "{transport}: one listen stream asked");
                writeln!(stdin, "changed").unwrap();
                let heard = next();
                assert_eq!(heard["tools"], json!(["gmail_search", "gmail_read", "gmail_send"]), "{transport}: {heard}");
                assert_eq!(server.end_listens(), 1);
                writeln!(stdin, "end").unwrap();
                assert_eq!(next(), json!({ "step": "ended" }), "{transport}: a graceful end");
            }
            let status = child.wait().unwrap();
            let mut stderr = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
            assert!(status.success(), "{transport} {mode}: {stderr}");
            let seen = server.seen();
            let discovered =
                seen.iter().any(|s| matches!(s, Seen::Discover { protocol, .. } if protocol == "2026-07-28"));
            let initialized = seen.iter().any(|s| matches!(s, Seen::Initialize { .. }));
            assert_eq!((discovered, initialized), (mode == "auto", mode == "legacy"), "{transport} {mode}: {seen:#?}");
        }
    }
}

/// Over the stdio relay, a connection whose first request is of the stateless revision speaks it:
/// `server/discover` answered, a listen stream acknowledged on the connection, a change notified
/// on it tagged with the subscription, and no unsolicited notification.
#[test]
fn the_stateless_revision_over_the_stdio_relay() {
    use coherence_wire::mcp::CacheHint;
    use serde_json::{Value, json};
    use std::io::{BufRead, BufReader, Write};
    let behaviour = Behaviour { modern: Some(CacheHint::STALE), ..Behaviour::ADVERTISED };
    let server = McpServer::start("gmail", Tool::stubs("gmail"), behaviour, Protection::Open).unwrap();
    let mut relay = std::process::Command::new(env!("CARGO_BIN_EXE_coherence"))
        .args(["mcp-server", "--relay", &server.relay_addr().to_string(), "--connector", "gmail"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut to_server = relay.stdin.take().unwrap();
    let mut from_server = BufReader::new(relay.stdout.take().unwrap()).lines();
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": { "name": "raw", "version": "0" },
        "io.modelcontextprotocol/clientCapabilities": {},
    });
    let mut ask = |id: u64, method: &str, mut params: Value| {
        params["_meta"] = meta.clone();
        writeln!(to_server, "{}", json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params })).unwrap();
    };
    let mut next = || -> Value { serde_json::from_str(&from_server.next().unwrap().unwrap()).unwrap() };
    ask(1, "server/discover", json!({}));
    let found = next();
    assert_eq!(found["result"]["supportedVersions"], json!(["2026-07-28"]), "{found}");
    assert_eq!(found["result"]["ttlMs"], json!(0));
    ask(2, "tools/list", json!({}));
    let listed = next();
    assert_eq!((&listed["id"], &listed["result"]["cacheScope"]), (&json!(2), &json!("private")), "{listed}");
    // A change before any listen stream reaches nobody: no unsolicited notification.
    server.set_tools(Tool::actions("gmail"));
    assert_eq!(server.notify_list_changed(), 0);
    ask(3, "subscriptions/listen", json!({ "notifications": { "toolsListChanged": true } }));
    let ack = next();
    assert_eq!(ack["method"], json!("notifications/subscriptions/acknowledged"), "{ack}");
    assert_eq!(ack["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"], json!(3));
    assert_eq!(server.notify_list_changed(), 1);
    let heard = next();
    assert_eq!(heard["method"], json!("notifications/tools/list_changed"), "{heard}");
    assert_eq!(heard["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"], json!(3));
    assert_eq!(server.end_listens(), 1);
    let ended = next();
    assert_eq!((&ended["id"], &ended["result"]["resultType"]), (&json!(3), &json!("complete")), "{ended}");
    drop(to_server);
    assert!(relay.wait().unwrap().success());
}

/// Over stdio a call refused as 401 is the JSON-RPC error -32001, and a lost session closes the
/// connection under a call that comes after it.
#[tokio::test(flavor = "current_thread")]
async fn a_call_is_refused_401_as_a_json_rpc_error_over_stdio() {
    use rmcp::model::CallToolRequestParams;
    let server = McpServer::start("gmail", Tool::stubs("gmail"), Behaviour::ADVERTISED, Protection::Open).unwrap();
    let (client, _) = spawn_relay(&server, "gmail").await;
    let refused = client.call_tool(CallToolRequestParams::new("gmail_send")).await.unwrap_err();
    assert!(matches!(&refused, rmcp::service::ServiceError::McpError(e) if e.code.0 == -32001), "-32001: {refused:?}");
    assert_eq!(server.relays_connected(), 1);
    server.set_tools(Tool::actions("gmail"));
    assert!(!client.call_tool(CallToolRequestParams::new("gmail_send")).await.unwrap().is_error.unwrap_or(false));
    server.lose_sessions();
    until(&server, |seen| seen.contains(&Seen::Disconnected { session: "gmail-1".into() })).await;
    assert_eq!(server.relays_connected(), 0);
    assert!(client.call_tool(CallToolRequestParams::new("gmail_send")).await.is_err(), "the server process is gone");
    assert!(server.seen().iter().any(|s| matches!(s, Seen::Refused { status: 401, .. })));
}
