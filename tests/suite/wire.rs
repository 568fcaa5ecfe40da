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
