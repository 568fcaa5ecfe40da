//! The motivating report, black-box, over both transports: `rmcp-host` on a stage of the kit's
//! MCP server and model; the connector is authenticated on the web between two turns. The verdict
//! is read from the wire alone: the tools the model is offered, and the text the host adds.

use crate::common;

use coherence_wire::mcp::{Seen, Tool};
use coherence_wire::model_api::{ModelRequest, Part, Reply, added_text};
use coherence_wire::reading::{Connector, Phrases, read_lines};
use coherence_wire::stage::{Stage, Transport};
use std::process::Command;

/// The model: calls gmail's `send` if it is offered (under any name) and not yet called, and
/// otherwise says gmail is not available (or that it sent the mail).
fn decide(request: &ModelRequest) -> Reply {
    let results = request.messages.iter().any(|m| m.parts.iter().any(|p| matches!(p, Part::ToolResult { .. })));
    match request.tools.iter().find(|t| t.name.ends_with("gmail_send")) {
        Some(tool) if !results => Reply::ToolCall { name: tool.name.clone(), input: serde_json::json!({}) },
        Some(_) => Reply::Text { text: "Sent.".into() },
        None => Reply::Text { text: "gmail is not available with the tools I have.".into() },
    }
}

/// One user turn: the requests the model got, and the host's answer.
fn turn(stage: &mut Stage, text: &str) -> (Vec<ModelRequest>, String) {
    stage.say(&serde_json::json!({ "type": "user", "text": text })).unwrap();
    let mut requests = Vec::new();
    loop {
        let offer = stage.offer().unwrap();
        let reply = decide(&offer.request);
        requests.push(offer.request.clone());
        let done = matches!(reply, Reply::Text { .. });
        offer.answer(reply);
        if done {
            break;
        }
    }
    let end: serde_json::Value = serde_json::from_str(&stage.line().unwrap()).unwrap();
    assert_eq!(end["type"], "turn_end");
    (requests, end["text"].as_str().unwrap().to_owned())
}

/// What the second turn showed on the wire.
struct Later {
    offered: Vec<Vec<String>>,
    added: Vec<String>,
    answer: String,
    server: Vec<Seen>,
}

fn run(policy: &str, transport: Transport) -> Later {
    let command = format!("{} --policy {policy}", env!("CARGO_BIN_EXE_rmcp-host"));
    let mut stage = common::start(&command, transport).unwrap();
    let (first, answer) = turn(&mut stage, "Send the draft to Ana.");
    assert!(answer.contains("not available"), "{answer}");
    // The user authenticates gmail on the web: the server now lists its action tools, and says so.
    stage.servers()[0].set_tools(Tool::actions("gmail"));
    stage.servers()[0].notify_list_changed();
    stage.settle().unwrap();
    let (later, answer) = turn(&mut stage, "I've connected gmail. Send the draft to Ana.");
    let mut previous = first.last().cloned();
    let mut added = Vec::new();
    for request in &later {
        added.extend(added_text(previous.as_ref(), request));
        previous = Some(request.clone());
    }
    let offered = later
        .iter()
        .map(|r| r.tools.iter().map(|t| t.name.clone()).filter(|n| n.starts_with("gmail")).collect())
        .collect();
    Later { offered, added, answer, server: stage.servers()[0].seen() }
}

#[test]
fn session_start_only_silently_misses_the_tools_over_both_transports() {
    for transport in [Transport::Http, Transport::Stdio] {
        let later = run("session-start-only", transport);
        // The report's story: only the stubs on the later turn, no re-list, nothing said.
        assert_eq!(later.offered, [vec!["gmail_authenticate", "gmail_complete_authentication"]], "{transport:?}");
        assert!(later.answer.contains("not available"), "{transport:?}: {}", later.answer);
        let lists = later.server.iter().filter(|s| matches!(s, Seen::List { .. })).count();
        assert_eq!(lists, 1, "{transport:?}: listed once, at start");
        let gmail =
            Connector { name: "gmail".into(), tools: Tool::actions("gmail").into_iter().map(|t| t.name).collect() };
        let lines = read_lines(&later.added, &[gmail], &Phrases::standard());
        assert!(
            lines.iter().all(|l| l.names.is_empty() || l.recovery.is_none()),
            "{transport:?}: no notice: {lines:?}"
        );
    }
}

#[test]
fn recommended_offers_the_tools_after_the_change_over_both_transports() {
    for transport in [Transport::Http, Transport::Stdio] {
        let later = run("recommended", transport);
        assert_eq!(later.offered[0], ["gmail_search", "gmail_read", "gmail_send"], "{transport:?}");
        assert_eq!(later.answer, "Sent.", "{transport:?}");
        assert!(
            later.server.iter().any(|s| matches!(s, Seen::Call { tool, listed: true, .. } if tool == "gmail_send")),
            "{transport:?}: {:#?}",
            later.server
        );
    }
}

#[test]
fn bad_usage_is_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_rmcp-host")).args(["--policy", "psychic"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage: rmcp-host"));
    let out = Command::new(env!("CARGO_BIN_EXE_rmcp-host"))
        .env_remove("MCP_CONFIG")
        .env("ANTHROPIC_BASE_URL", "http://127.0.0.1:9")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("MCP_CONFIG"));
}
