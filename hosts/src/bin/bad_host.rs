//! `bad-host MODE`: hosts that behave as real ones do, mostly badly, for the runner's tests. Each
//! of the first five modes must end a run with a clear error naming what did not happen, and
//! leave nothing behind; the next two end every turn at the user's question, as a client that
//! lost its server and never reconnects does.
//!
//! - `ignores-config`: never connects to a server (it reads stdin and does nothing).
//! - `never-calls-model`: lists every server, then ignores every user turn.
//! - `crashes-mid-turn`: lists every server, then exits with status 3 at the first user turn.
//! - `floods`: lists every server, then sends model requests without end at the first user turn.
//! - `garbage`: lists every server, then prints bytes that are not UTF-8 at the first user turn.
//! - `ends-turns`: lists every server, then ends every turn at once with words naming no server
//!   (judged as "not available").
//! - `ends-turns-naming`: the same, with an error naming the first server (not judged yet).
//! - `acts-late`: lists every server, then ends each turn 40 ms after the user's question, on a
//!   timer (what a wait for quiet must not cut short).
//! - `fakes-calls`: lists every server at each turn and offers what it listed, but answers every
//!   tool call of the model with "Done." without running it on the server (judged as a failed
//!   call, never as the tool used).
//! - `hides-failures`: as `fakes-calls`, but runs each call on its server first: a call the server
//!   refuses (401, 404) is still "Done." to the model, a success no server gave (an error).
//! - `lists-on-change`: as an agent framework that keeps each server's tools until it says they
//!   changed: before every model request (the first of a turn, and each after a tool's result)
//!   it lists again each server that sent `list_changed`, then offers every server's tools; it
//!   runs the model's calls on their servers, and a call that fails is an error naming the server.
//! - `never-listens`: a client of the stateless revision 2026-07-28 alone, over HTTP: it discovers
//!   every server, lists each at every turn, offers what it listed and runs the model's calls, but
//!   never opens a `subscriptions/listen` stream, so it hears of no change. A server that speaks
//!   only the handshake revisions refuses its discover, and it exits.

use anyhow::{Context, Result, bail};
use coherence_hosts::stateless::Stateless;
use coherence_hosts::{Model, offered, say, servers};
use serde_json::{Value, json};
use std::io::{BufRead, Write};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let mode = std::env::args().nth(1).unwrap_or_default();
    let known = [
        "ignores-config",
        "never-calls-model",
        "crashes-mid-turn",
        "floods",
        "garbage",
        "ends-turns",
        "ends-turns-naming",
        "acts-late",
        "fakes-calls",
        "hides-failures",
        "lists-on-change",
        "never-listens",
    ];
    if !known.contains(&mode.as_str()) {
        bail!("usage: bad-host {}", known.join("|"));
    }
    if mode == "never-listens" {
        return never_listens().await;
    }
    let mut servers = if mode == "ignores-config" { Vec::new() } else { servers().await? };
    if mode == "fakes-calls" || mode == "hides-failures" {
        return fakes_calls(&mut servers, mode == "hides-failures").await;
    }
    if mode == "lists-on-change" {
        return lists_on_change(&mut servers).await;
    }
    say(json!({ "type": "ready" }));
    for line in std::io::stdin().lock().lines() {
        let _ = line?;
        match mode.as_str() {
            "crashes-mid-turn" => {
                eprintln!("bad-host: crashing mid-turn");
                std::process::exit(3);
            }
            "floods" => {
                let model = Model::from_env()?;
                let tools = [json!({ "name": "x_y", "input_schema": { "type": "object" } })];
                loop {
                    model.ask("", &tools, &[json!({ "role": "user", "content": "again" })]).await?;
                }
            }
            "garbage" => {
                std::io::stdout().write_all(b"\xff\xfe not text\n")?;
                std::io::stdout().flush()?;
            }
            "ends-turns" => say(json!({ "type": "turn_end", "text": "Error: Connection closed" })),
            "acts-late" => {
                tokio::time::sleep(std::time::Duration::from_millis(40)).await;
                say(json!({ "type": "turn_end", "text": "Done." }));
            }
            "ends-turns-naming" => {
                let name = servers.first().map_or("?", |s| s.name.as_str());
                say(json!({ "type": "turn_end", "text": format!("Error: {name}: connection closed") }));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Lists every server at each turn and offers the tools, but every call's result is "Done.":
/// the call run on its server first if `runs`, never otherwise.
async fn fakes_calls(servers: &mut [coherence_hosts::Server], runs: bool) -> Result<()> {
    let model = Model::from_env()?;
    say(json!({ "type": "ready" }));
    for line in std::io::stdin().lock().lines() {
        let line: Value = serde_json::from_str(&line?)?;
        let Some(text) = line.get("text").and_then(Value::as_str) else { continue };
        for server in servers.iter_mut() {
            server.relist().await;
        }
        let tools: Vec<Value> = servers.iter().flat_map(|s| &s.tools).map(offered).collect();
        let peers: Vec<(String, rmcp::service::Peer<rmcp::service::RoleClient>)> =
            servers.iter().filter(|_| runs).map(|s| (s.name.clone(), s.client.peer().clone())).collect();
        let words = agent_turn(&model, &tools, text, |name| {
            let peer = peers.iter().find(|(server, _)| name.starts_with(&format!("{server}_"))).map(|(_, p)| p.clone());
            async move {
                if let Some(peer) = peer {
                    let _ = peer.call_tool(rmcp::model::CallToolRequestParams::new(name)).await;
                }
                String::from("Done.")
            }
        })
        .await?;
        say(json!({ "type": "turn_end", "text": words }));
    }
    Ok(())
}

/// Lists again, before every model request, each server that said its list changed; runs calls.
async fn lists_on_change(servers: &mut [coherence_hosts::Server]) -> Result<()> {
    let model = Model::from_env()?;
    say(json!({ "type": "ready" }));
    for line in std::io::stdin().lock().lines() {
        let line: Value = serde_json::from_str(&line?)?;
        let Some(text) = line.get("text").and_then(Value::as_str) else { continue };
        let mut messages = vec![json!({ "role": "user", "content": text })];
        let mut words = String::new();
        for _ in 0..8 {
            for server in servers.iter_mut().filter(|s| s.changed.load(std::sync::atomic::Ordering::SeqCst)) {
                server.relist().await;
            }
            let tools: Vec<Value> = servers.iter().flat_map(|s| &s.tools).map(offered).collect();
            let answer = model.ask("You are an agent.", &tools, &messages).await?;
            let content = answer["content"].as_array().cloned().unwrap_or_default();
            let Some(call) = content.iter().find(|c| c["type"] == "tool_use") else {
                words = content.iter().filter_map(|c| c["text"].as_str()).collect();
                break;
            };
            let name = call["name"].as_str().unwrap_or_default().to_owned();
            let server = servers.iter().find(|s| s.tools.iter().any(|t| t.name == name.as_str()));
            let (result, is_error) = match server {
                Some(server) => {
                    match server.client.peer().call_tool(rmcp::model::CallToolRequestParams::new(name.clone())).await {
                        Ok(result) => (coherence_hosts::result_text(&result), result.is_error == Some(true)),
                        Err(e) => (format!("Error: {}: {e}", server.name), true),
                    }
                }
                None => (format!("Error: no such tool {name}"), true),
            };
            messages.push(json!({ "role": "assistant", "content": content }));
            messages.push(json!({
                "role": "user",
                "content": [{ "type": "tool_result", "tool_use_id": call["id"], "content": result, "is_error": is_error }],
            }));
        }
        say(json!({ "type": "turn_end", "text": words }));
    }
    Ok(())
}

/// One turn of the agent on the user's `text`: the model is asked with `tools` until it answers in
/// words (at most 8 requests), each call it makes given the result `run` makes of the tool's name.
/// The agent's words.
async fn agent_turn<F, R>(model: &Model, tools: &[Value], text: &str, mut run: F) -> Result<String>
where
    F: FnMut(String) -> R,
    R: std::future::Future<Output = String>,
{
    let mut messages = vec![json!({ "role": "user", "content": text })];
    for _ in 0..8 {
        let answer = model.ask("You are an agent.", tools, &messages).await?;
        let content = answer["content"].as_array().cloned().unwrap_or_default();
        let Some(call) = content.iter().find(|c| c["type"] == "tool_use") else {
            return Ok(content.iter().filter_map(|c| c["text"].as_str()).collect());
        };
        let result = run(call["name"].as_str().unwrap_or_default().to_owned()).await;
        messages.push(json!({ "role": "assistant", "content": content }));
        messages.push(json!({
            "role": "user",
            "content": [{ "type": "tool_result", "tool_use_id": call["id"], "content": result }],
        }));
    }
    Ok(String::new())
}

/// A server of the configuration, reached in the stateless revision: its name, its client and
/// the tools it listed last.
struct Server {
    name: String,
    client: Stateless,
    tools: Vec<Value>,
}

async fn never_listens() -> Result<()> {
    let config = std::env::var("MCP_CONFIG").context("MCP_CONFIG names the mcpServers file")?;
    let config: Value = serde_json::from_str(&std::fs::read_to_string(&config).with_context(|| config.clone())?)?;
    let mut servers = Vec::new();
    for (name, server) in config.get("mcpServers").and_then(Value::as_object).context("no mcpServers")? {
        let url = server.get("url").and_then(Value::as_str).context("never-listens speaks HTTP only")?;
        let client = Stateless::new(url, "bad-host");
        client.request("server/discover", json!({})).await.map_err(|e| anyhow::anyhow!("discover {url}: {e}"))?;
        servers.push(Server { name: name.clone(), client, tools: Vec::new() });
    }
    let model = Model::from_env()?;
    say(json!({ "type": "ready" }));
    for line in std::io::stdin().lock().lines() {
        let line: Value = serde_json::from_str(&line?)?;
        let Some(text) = line.get("text").and_then(Value::as_str) else { continue };
        for server in &mut servers {
            // A list that fails offers nothing until the next.
            server.tools = server.client.list(None).await.map(|page| page.tools).unwrap_or_default();
        }
        let tools: Vec<Value> = servers
            .iter()
            .flat_map(|s| &s.tools)
            .map(|t| json!({ "name": t["name"], "description": t["description"], "input_schema": t["inputSchema"] }))
            .collect();
        let servers = &servers;
        let words = agent_turn(&model, &tools, text, |name| async move {
            match servers.iter().find(|s| s.tools.iter().any(|t| t["name"] == name.as_str())) {
                Some(server) => match server.client.call(&name).await {
                    Ok(result) => result["content"][0]["text"].as_str().unwrap_or_default().to_owned(),
                    Err(e) => format!("Error: {}: {e}", server.name),
                },
                None => format!("Error: no such tool {name}"),
            }
        })
        .await?;
        say(json!({ "type": "turn_end", "text": words }));
    }
    Ok(())
}
