//! `rmcp-host`: a small agent host on the official Rust MCP SDK's client, the reference a black-box
//! conformance run judges by the wire alone (SPEC.md §11.5).
//!
//! Configured as hosts are: `MCP_CONFIG` names a file in the `mcpServers` JSON shape (a server is
//! `{"type": "http", "url": …}` or `{"command": …, "args": […]}`), `ANTHROPIC_BASE_URL` and
//! `ANTHROPIC_API_KEY` the model. On stdin, one JSON object a line: `{"type": "user", "text": …}`
//! asks the agent something, `{"type": "command", "command": "mcp"}` re-lists every server,
//! `{"type": "command", "command": "quit"}` (or the end of stdin) quits. On stdout it says
//! `{"type": "ready"}` once every server is listed, and `{"type": "turn_end", "text": …}` after each
//! turn.
//!
//! `--policy` picks the design:
//! - `session-start-only`: lists each server once, at start, and never again (the motivating
//!   report's host);
//! - `recommended`: also re-lists a server at each turn's start, after its `list_changed`, and on
//!   `/mcp`, and after the agent completes a server's authentication handshake (a list that
//!   fails is tried once more on a new connection), and tells the model, naming the server and
//!   a recovery step, when a list or a call fails (signing in again after a 401, refreshing
//!   otherwise; a server whose call failed is listed again before the next step).

use anyhow::{Result, bail};
use coherence_hosts::{Model, Server, offered, result_text, say, servers};
use rmcp::model::CallToolRequestParams;
use serde_json::{Value, json};
use std::sync::atomic::Ordering;
use tokio::io::AsyncBufReadExt;

/// The most model requests in one turn.
const MAX_STEPS: usize = 8;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Policy {
    SessionStartOnly,
    Recommended,
}

/// One user turn: offer the tools, run the agent's calls, until it answers.
async fn turn(policy: Policy, servers: &mut [Server], model: &Model, text: &str) -> Result<String> {
    if policy == Policy::Recommended {
        for server in servers.iter_mut() {
            server.relist().await;
        }
    }
    let mut messages = vec![json!({ "role": "user", "content": text })];
    for _ in 0..MAX_STEPS {
        if policy == Policy::Recommended {
            for server in servers.iter_mut().filter(|s| s.changed.load(Ordering::SeqCst)) {
                server.relist().await;
            }
        }
        let mut system = String::from("You are an agent with the tools of these MCP servers.");
        for server in servers.iter().filter(|_| policy == Policy::Recommended) {
            if let Some(why) = &server.failed {
                system.push_str(&format!(
                    "\n{}: its tools could not be listed ({why}); ask the user to run /mcp to refresh, or to restart.",
                    server.name
                ));
            }
        }
        let tools: Vec<Value> = servers.iter().flat_map(|s| &s.tools).map(offered).collect();
        let answer = model.ask(&system, &tools, &messages).await?;
        let content = answer.get("content").and_then(Value::as_array).cloned().unwrap_or_default();
        messages.push(json!({ "role": "assistant", "content": content }));
        let calls: Vec<&Value> = content.iter().filter(|b| b["type"] == "tool_use").collect();
        if calls.is_empty() {
            let said: Vec<&str> = content.iter().filter_map(|b| b["text"].as_str()).collect();
            return Ok(said.join("\n"));
        }
        let mut results = Vec::new();
        let mut authenticated = Vec::new();
        let mut failed = Vec::new();
        for call in calls {
            let name = call["name"].as_str().unwrap_or_default().to_owned();
            let (text, is_error) = match servers.iter().find(|s| s.tools.iter().any(|t| t.name == name)) {
                None => (format!("no such tool: {name}"), true),
                Some(server) => match server.client.call_tool(CallToolRequestParams::new(name.clone())).await {
                    Ok(result) => {
                        let text = result_text(&result);
                        let failed = result.is_error.unwrap_or(false);
                        if !failed && name.ends_with("complete_authentication") {
                            authenticated.push(server.name.clone());
                        }
                        (text, failed)
                    }
                    Err(e) if policy == Policy::Recommended => {
                        failed.push(server.name.clone());
                        let unauthorized = e.auth_challenge().is_some()
                            || matches!(&e, rmcp::service::ServiceError::McpError(e) if e.code.0 == -32001);
                        let step = if unauthorized { "sign in again" } else { "run /mcp to refresh, or restart" };
                        (format!("{}: {name} failed: {e}; {step}.", server.name), true)
                    }
                    Err(e) => (format!("{}: {name} failed: {e}", server.name), true),
                },
            };
            results.push(
                json!({ "type": "tool_result", "tool_use_id": call["id"], "content": text, "is_error": is_error }),
            );
        }
        messages.push(json!({ "role": "user", "content": results }));
        // A handshake that completed changes what the server lists, and a failed call may tell of
        // a change: list it before the next step.
        if policy == Policy::Recommended {
            for server in servers.iter_mut().filter(|s| authenticated.contains(&s.name) || failed.contains(&s.name)) {
                server.relist().await;
            }
        }
    }
    Ok(String::from("(stopped: too many steps)"))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let policy = match (args.next().as_deref(), args.next().as_deref()) {
        (Some("--policy"), Some("session-start-only")) => Policy::SessionStartOnly,
        (Some("--policy"), Some("recommended")) | (None, None) => Policy::Recommended,
        _ => bail!("usage: rmcp-host [--policy recommended|session-start-only]"),
    };
    let model = Model::from_env()?;
    let mut servers = servers().await?;
    say(json!({ "type": "ready" }));
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        let Ok(input) = serde_json::from_str::<Value>(&line) else { continue };
        match (input["type"].as_str(), input["command"].as_str()) {
            (Some("user"), _) => {
                let text = input["text"].as_str().unwrap_or_default();
                let answer = turn(policy, &mut servers, &model, text).await?;
                say(json!({ "type": "turn_end", "text": answer }));
            }
            (Some("command"), Some("mcp")) => {
                if policy == Policy::Recommended {
                    for server in &mut servers {
                        server.relist().await;
                    }
                }
                say(json!({ "type": "command_done", "command": "mcp" }));
            }
            (Some("command"), Some("quit")) => break,
            _ => {}
        }
    }
    for server in servers {
        let _ = server.client.cancel().await;
    }
    Ok(())
}
