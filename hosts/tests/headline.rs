//! The motivating report, black-box, over both transports: `rmcp-host` talks to the kit's MCP
//! server and model endpoint; the connector is authenticated on the web between two turns. The
//! verdict is read from the wire alone: the tools the model is offered, and the text the host
//! adds.

use coherence_wire::endpoint::{Limits, ModelEndpoint};
use coherence_wire::mcp::{Behaviour, McpServer, Protection, Seen, Tool};
use coherence_wire::model_api::{ModelRequest, Reply, added_text};
use coherence_wire::reading::{Connector, Phrases, read_lines};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The kit's `coherence` binary (the stdio relay), built beside this package's by
/// `cargo test --workspace`.
fn coherence() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().and_then(|deps| deps.parent()).unwrap().join("coherence");
    assert!(bin.exists(), "{} is missing: run the tests with `cargo test --workspace`", bin.display());
    bin
}

#[derive(Clone, Copy, Debug)]
enum Transport {
    Http,
    Stdio,
}

/// A host process and its stdout, read line by line with a limit.
struct Host {
    child: Child,
    stdin: ChildStdin,
    said: mpsc::Receiver<String>,
}

impl Host {
    fn start(policy: &str, config: &std::path::Path, model: &ModelEndpoint) -> Host {
        let mut child = Command::new(env!("CARGO_BIN_EXE_rmcp-host"))
            .args(["--policy", policy])
            .env("MCP_CONFIG", config)
            .env("ANTHROPIC_BASE_URL", model.base_url())
            .env("ANTHROPIC_API_KEY", "not-a-key")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (line, said) = mpsc::channel();
        std::thread::spawn(move || {
            for text in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.send(text).is_err() {
                    break;
                }
            }
        });
        let host = Host { child, stdin, said };
        assert_eq!(host.next(), r#"{"type":"ready"}"#);
        host
    }

    fn next(&self) -> String {
        self.said.recv_timeout(Duration::from_secs(20)).expect("the host said nothing for 20 s")
    }

    fn ask(&mut self, text: &str) -> serde_json::Value {
        writeln!(self.stdin, "{}", serde_json::json!({ "type": "user", "text": text })).unwrap();
        serde_json::from_str(&self.next()).unwrap()
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The model: calls gmail's `send` if it is offered (under any name), and otherwise says gmail
/// is not available.
fn model() -> ModelEndpoint {
    let responder = |request: &ModelRequest, _: usize| {
        let results = request
            .messages
            .iter()
            .any(|m| m.parts.iter().any(|p| matches!(p, coherence_wire::model_api::Part::ToolResult { .. })));
        match request.tools.iter().find(|t| t.name.ends_with("gmail_send")) {
            Some(tool) if !results => Reply::ToolCall { name: tool.name.clone(), input: serde_json::json!({}) },
            Some(_) => Reply::Text { text: "Sent.".into() },
            None => Reply::Text { text: "gmail is not available with the tools I have.".into() },
        }
    };
    ModelEndpoint::start(responder, Limits::DEFAULT).unwrap()
}

fn config(transport: Transport, server: &McpServer, name: &str) -> std::path::PathBuf {
    let entry = match transport {
        Transport::Http => serde_json::json!({ "type": "http", "url": server.url() }),
        Transport::Stdio => serde_json::json!({
            "command": coherence(),
            "args": ["mcp-server", "--relay", server.relay_addr().to_string(), "--connector", "gmail"],
        }),
    };
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{transport:?}.json"));
    std::fs::write(&path, serde_json::json!({ "mcpServers": { "gmail": entry } }).to_string()).unwrap();
    path
}

/// What one run showed on the wire: the gmail tools offered at each model request of the second
/// turn, the text the host added there, and the answer.
struct Seen2 {
    offered: Vec<Vec<String>>,
    added: Vec<String>,
    answer: String,
    server: Vec<Seen>,
}

fn run(policy: &str, transport: Transport) -> Seen2 {
    let server = McpServer::start("gmail", Tool::stubs("gmail"), Behaviour::ADVERTISED, Protection::Open).unwrap();
    let model = model();
    let config = config(transport, &server, policy);
    let mut host = Host::start(policy, &config, &model);
    let first = host.ask("Send the draft to Ana.");
    assert!(first["text"].as_str().unwrap().contains("not available"), "{first}");
    let before = model.log().exchanges.len();
    // The user authenticates gmail on the web: the server now lists its action tools, and says so.
    server.set_tools(Tool::actions("gmail"));
    server.notify_list_changed();
    std::thread::sleep(Duration::from_millis(200));
    let second = host.ask("I've connected gmail. Send the draft to Ana.");
    let exchanges = model.log().exchanges;
    let mut previous = exchanges.get(before - 1).map(|e| e.request.clone());
    let mut added = Vec::new();
    for exchange in &exchanges[before..] {
        added.extend(added_text(previous.as_ref(), &exchange.request));
        previous = Some(exchange.request.clone());
    }
    Seen2 {
        offered: exchanges[before..]
            .iter()
            .map(|e| e.request.tools.iter().map(|t| t.name.clone()).filter(|n| n.starts_with("gmail")).collect())
            .collect(),
        added,
        answer: second["text"].as_str().unwrap().to_owned(),
        server: server.seen(),
    }
}

#[test]
fn session_start_only_silently_misses_the_tools_over_both_transports() {
    for transport in [Transport::Http, Transport::Stdio] {
        let seen = run("session-start-only", transport);
        // The report's story: only the stubs on the later turn, no re-list, nothing said.
        assert_eq!(seen.offered, [vec!["gmail_authenticate", "gmail_complete_authentication"]], "{transport:?}");
        assert!(seen.answer.contains("not available"), "{transport:?}: {}", seen.answer);
        let lists = seen.server.iter().filter(|s| matches!(s, Seen::List { .. })).count();
        assert_eq!(lists, 1, "{transport:?}: listed once, at start");
        let gmail =
            Connector { name: "gmail".into(), tools: Tool::actions("gmail").into_iter().map(|t| t.name).collect() };
        let lines = read_lines(&seen.added, &[gmail], &Phrases::standard());
        assert!(
            lines.iter().all(|l| l.names.is_empty() || l.recovery.is_none()),
            "{transport:?}: no notice: {lines:?}"
        );
    }
}

#[test]
fn recommended_offers_the_tools_after_the_change_over_both_transports() {
    for transport in [Transport::Http, Transport::Stdio] {
        let seen = run("recommended", transport);
        assert_eq!(seen.offered[0], ["gmail_search", "gmail_read", "gmail_send"], "{transport:?}");
        assert_eq!(seen.answer, "Sent.", "{transport:?}");
        assert!(
            seen.server.iter().any(|s| matches!(s, Seen::Call { tool, listed: true, .. } if tool == "gmail_send")),
            "{transport:?}: {:#?}",
            seen.server
        );
    }
}

#[test]
fn bad_usage_is_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_rmcp-host")).args(["--policy", "psychic"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage: rmcp-host"));
    let out = Command::new(env!("CARGO_BIN_EXE_rmcp-host")).env_remove("MCP_CONFIG").output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("MCP_CONFIG"));
}
