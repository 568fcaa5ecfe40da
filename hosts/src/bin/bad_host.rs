//! `bad-host MODE`: a host that misbehaves as real ones do, for the runner's tests. Each of the
//! first five modes must end a run with a clear error naming what did not happen, and leave
//! nothing behind; the last two end every turn at the user's question, as a client that lost its
//! server and never reconnects does.
//!
//! - `ignores-config`: never connects to a server (it reads stdin and does nothing).
//! - `never-calls-model`: lists every server, then ignores every user turn.
//! - `crashes-mid-turn`: lists every server, then exits with status 3 at the first user turn.
//! - `floods`: lists every server, then sends model requests without end at the first user turn.
//! - `garbage`: lists every server, then prints bytes that are not UTF-8 at the first user turn.
//! - `ends-turns`: lists every server, then ends every turn at once with words naming no server
//!   (judged as "not available").
//! - `ends-turns-naming`: the same, with an error naming the first server (not judged yet).

use anyhow::{Result, bail};
use coherence_hosts::{Model, say, servers};
use serde_json::json;
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
    ];
    if !known.contains(&mode.as_str()) {
        bail!("usage: bad-host {}", known.join("|"));
    }
    let servers = if mode == "ignores-config" { Vec::new() } else { servers().await? };
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
            "ends-turns-naming" => {
                let name = servers.first().map_or("?", |s| s.name.as_str());
                say(json!({ "type": "turn_end", "text": format!("Error: {name}: connection closed") }));
            }
            _ => {}
        }
    }
    Ok(())
}
