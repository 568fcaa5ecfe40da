//! The fake model endpoint over real HTTP: both APIs, whole and streamed, the log, the limits,
//! and real SDK clients (the `--ignored` test `scripts/model-clients` runs).

use coherence_wire::endpoint::{Limits, ModelEndpoint};
use coherence_wire::model_api::{Api, Part, Reply, Role, added_text, parse_anthropic, parse_openai};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// One HTTP/1.1 exchange on a fresh connection: the status and the body.
fn http(endpoint: &ModelEndpoint, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(endpoint.addr()).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, rest) = response.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let body =
        if head.to_ascii_lowercase().contains("transfer-encoding: chunked") { unchunk(rest) } else { rest.to_owned() };
    (status, body)
}

fn unchunk(mut rest: &str) -> String {
    let mut out = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n").unwrap();
        let size = usize::from_str_radix(size.trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.push_str(&after[..size]);
        rest = &after[size + 2..];
    }
}

/// The events of a server-sent event stream: (event name, data).
fn events(body: &str) -> Vec<(String, String)> {
    body.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let mut name = String::new();
            let mut data = String::new();
            for line in e.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = n.to_owned();
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data = d.to_owned();
                }
            }
            (name, data)
        })
        .collect()
}

fn scripted() -> impl Fn(&coherence_wire::model_api::ModelRequest, usize) -> Reply {
    |request, index| {
        if index % 2 == 0 && !request.tools.is_empty() {
            Reply::ToolCall { name: request.tools[0].name.clone(), input: json!({ "to": "ada@example.com" }) }
        } else {
            Reply::Text { text: "The draft is ready.".to_owned() }
        }
    }
}

const ANTHROPIC: &str = r#"{"model":"m","max_tokens":64,"system":[{"type":"text","text":"Be brief."}],
  "tools":[{"name":"gmail__create_draft","description":"Create a draft.","input_schema":{"type":"object"}},
           {"type":"web_search_20250305","name":"web_search"}],
  "messages":[{"role":"user","content":"Draft an email."},
              {"role":"assistant","content":[{"type":"text","text":"On it."},{"type":"tool_use","id":"t1","name":"gmail__authenticate","input":{}}]},
              {"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","is_error":true,"content":[{"type":"text","text":"gmail: restart to load its tools"}]},{"type":"image","source":{}}]}]}"#;

#[test]
fn both_request_formats_read_into_one() {
    let a = parse_anthropic(&serde_json::from_str(ANTHROPIC).unwrap()).unwrap();
    assert_eq!(a.api, Api::Anthropic);
    assert_eq!(a.system, "Be brief.");
    assert_eq!(a.tools.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["gmail__create_draft", "web_search"]);
    assert_eq!(
        a.messages[1].parts[1],
        Part::ToolCall { id: "t1".into(), name: "gmail__authenticate".into(), input: json!({}) }
    );
    assert_eq!(
        a.messages[2].parts,
        [
            Part::ToolResult { id: "t1".into(), text: "gmail: restart to load its tools".into(), is_error: true },
            Part::Other { kind: "image".into() }
        ]
    );
    let o = parse_openai(&json!({
        "model": "m", "stream": true,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "Use tools."}]},
            {"role": "user", "content": "Draft an email."},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "gmail_x", "arguments": "{\"a\":1}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "unknown tool gmail_x"},
            {"role": "system", "content": "gmail was authenticated elsewhere: /mcp to refresh"}
        ],
        "tools": [{"type": "function", "function": {"name": "gmail_x", "description": "X.", "parameters": {}}}],
        "functions": [{"name": "legacy", "description": "L."}]
    }))
    .unwrap();
    assert!(o.stream);
    assert_eq!(o.system, "Be brief.\n\nUse tools.");
    assert_eq!(
        o.messages.iter().map(|m| m.role).collect::<Vec<_>>(),
        [Role::User, Role::Assistant, Role::Tool, Role::System]
    );
    assert_eq!(
        o.messages[1].parts,
        [Part::ToolCall { id: "c1".into(), name: "gmail_x".into(), input: json!({"a": 1}) }]
    );
    assert_eq!(o.tools.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["gmail_x", "legacy"]);
    for bad in [json!({}), json!({"messages": 3}), json!({"messages": [{"role": "robot", "content": "x"}]})] {
        assert!(parse_anthropic(&bad).is_err() && parse_openai(&bad).is_err(), "{bad}");
    }
}

#[test]
fn added_text_is_what_the_host_said_since_the_last_request() {
    let first = parse_anthropic(&serde_json::from_str(ANTHROPIC).unwrap()).unwrap();
    assert_eq!(added_text(None, &first), ["Be brief.", "Draft an email.", "gmail: restart to load its tools"]);
    let mut next = first.clone();
    next.messages.push(coherence_wire::model_api::Message {
        role: Role::User,
        parts: vec![Part::Text { text: "Note: calendar's tools changed.".into() }],
    });
    assert_eq!(added_text(Some(&first), &next), ["Note: calendar's tools changed."]);
    next.system = "Be brief. gmail needs a restart.".into();
    assert_eq!(
        added_text(Some(&first), &next),
        ["Be brief. gmail needs a restart.", "Note: calendar's tools changed."]
    );
    // The model's own words are not the host's.
    let mut own = first.clone();
    own.messages.push(coherence_wire::model_api::Message {
        role: Role::Assistant,
        parts: vec![Part::Text { text: "Done.".into() }],
    });
    assert!(added_text(Some(&first), &own).is_empty());
}

#[test]
fn answers_are_framed_as_the_real_apis_frame_them() {
    let endpoint = ModelEndpoint::start(scripted(), Limits::DEFAULT).unwrap();
    // Anthropic, whole: a tool call.
    let (status, body) = http(&endpoint, "POST", "/v1/messages", ANTHROPIC);
    assert_eq!(status, 200, "{body}");
    let whole: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(whole["type"], "message");
    assert_eq!(whole["stop_reason"], "tool_use");
    assert_eq!(whole["content"][0]["name"], "gmail__create_draft");
    assert_eq!(whole["content"][0]["input"], json!({ "to": "ada@example.com" }));
    // Anthropic, streamed: a text.
    let streamed = ANTHROPIC.replacen("{\"model\"", "{\"stream\":true,\"model\"", 1);
    let (status, body) = http(&endpoint, "POST", "/v1/messages", &streamed);
    assert_eq!(status, 200);
    let names: Vec<String> = events(&body).into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    let delta: Value = serde_json::from_str(&events(&body)[3].1).unwrap();
    assert_eq!(delta["delta"], json!({ "type": "text_delta", "text": "The draft is ready." }));
    // OpenAI, streamed: a tool call in pieces, then [DONE].
    let openai = json!({
        "model": "m", "stream": true, "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": "Draft."}],
        "tools": [{"type": "function", "function": {"name": "gmail_create_draft", "parameters": {}}}]
    });
    let (status, body) = http(&endpoint, "POST", "/v1/chat/completions", &openai.to_string());
    assert_eq!(status, 200);
    let data: Vec<String> = events(&body).into_iter().map(|(_, d)| d).collect();
    assert_eq!(data.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = data[..data.len() - 1].iter().map(|d| serde_json::from_str(d).unwrap()).collect();
    assert_eq!(chunks[1]["choices"][0]["delta"]["tool_calls"][0]["function"]["name"], "gmail_create_draft");
    assert_eq!(
        chunks[2]["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"],
        "{\"to\":\"ada@example.com\"}"
    );
    assert_eq!(chunks[3]["choices"][0]["finish_reason"], "tool_calls");
    assert!(chunks[4]["usage"]["total_tokens"].is_u64());
    // OpenAI, whole, without /v1.
    let whole = json!({ "model": "m", "messages": [{"role": "user", "content": "Hi."}] });
    let (status, body) = http(&endpoint, "POST", "/chat/completions", &whole.to_string());
    assert_eq!(status, 200);
    let whole: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(whole["choices"][0]["message"]["content"], "The draft is ready.");
    assert_eq!(whole["choices"][0]["finish_reason"], "stop");

    let log = endpoint.log();
    assert_eq!(log.exchanges.len(), 4);
    assert_eq!(log.exchanges.iter().map(|e| e.index).collect::<Vec<_>>(), [0, 1, 2, 3]);
    assert_eq!(log.exchanges[2].request.api, Api::OpenAi);
    assert_eq!(log.exchanges[2].request.tools[0].name, "gmail_create_draft");
    assert!(log.others.is_empty());
}

#[test]
fn other_requests_bad_bodies_and_floods_are_logged_and_refused() {
    let endpoint = ModelEndpoint::start(scripted(), Limits { requests: 1, ..Limits::DEFAULT }).unwrap();
    let (status, body) = http(&endpoint, "GET", "/v1/models", "");
    assert_eq!(status, 200, "{body}");
    let (status, _) = http(&endpoint, "POST", "/v1/embeddings", "{}");
    assert_eq!(status, 404);
    let (status, body) = http(&endpoint, "POST", "/v1/messages", "{not json");
    assert_eq!(status, 400);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["type"], "error");
    let ok = json!({ "model": "m", "messages": [{"role": "user", "content": "Hi."}] }).to_string();
    assert_eq!(http(&endpoint, "POST", "/v1/messages", &ok).0, 200);
    let (status, body) = http(&endpoint, "POST", "/v1/messages", &ok);
    assert_eq!(status, 429);
    assert!(body.contains("floods the model"), "{body}");
    let log = endpoint.log();
    assert_eq!((log.exchanges.len(), log.refused), (1, 1));
    assert_eq!(log.others[0], "POST /v1/embeddings");
    assert!(log.others[1].starts_with("POST /v1/messages: refused: "), "{:?}", log.others);
}

#[test]
fn dropping_the_endpoint_frees_its_port_even_with_a_connection_open() {
    let endpoint = ModelEndpoint::start(scripted(), Limits::DEFAULT).unwrap();
    let addr = endpoint.addr();
    let idle = TcpStream::connect(addr).unwrap();
    drop(endpoint);
    assert!(TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_err(), "{addr} still listens");
    drop(idle);
}

/// The official `anthropic` and `openai` Python SDKs, at the versions `scripts/model-clients`
/// pins, parse every kind of answer: whole and streamed, text and tool call. Run by
/// `scripts/model-clients`, which installs them and says where (`COHERENCE_MODEL_CLIENTS_PYTHON`).
#[test]
#[ignore = "needs the Python SDKs: scripts/model-clients installs them and runs this"]
fn real_sdk_clients_parse_every_answer() {
    let python = std::env::var("COHERENCE_MODEL_CLIENTS_PYTHON")
        .expect("COHERENCE_MODEL_CLIENTS_PYTHON is not set: run scripts/model-clients, which installs the SDKs");
    // Every request's first answer is a tool call (even-numbered requests), so alternate: the
    // script's four requests get call, text, call, text.
    let endpoint = ModelEndpoint::start(scripted(), Limits::DEFAULT).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/model-clients/clients.py");
    let out = std::process::Command::new(python).arg(script).arg(endpoint.base_url()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let seen: Vec<Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let call = json!([{ "name": "gmail__create_draft", "input": { "to": "ada@example.com" } }]);
    assert_eq!(seen[0], json!({ "api": "anthropic", "stream": false, "calls": call, "text": "", "stop": "tool_use" }));
    assert_eq!(
        seen[1],
        json!({ "api": "anthropic", "stream": true, "calls": [], "text": "The draft is ready.", "stop": "end_turn" })
    );
    assert_eq!(seen[2], json!({ "api": "openai", "stream": false, "calls": call, "text": "", "stop": "tool_calls" }));
    assert_eq!(
        seen[3],
        json!({ "api": "openai", "stream": true, "calls": [], "text": "The draft is ready.", "stop": "stop", "usage": true })
    );
    let log = endpoint.log();
    assert_eq!(log.exchanges.len(), 4, "{:?}", log.others);
    for e in &log.exchanges {
        let names: Vec<&str> = e.request.tools.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["gmail__create_draft", "calendar__authenticate"]);
        assert_eq!(e.request.system, "You are a coding assistant.");
        assert_eq!(added_text(None, &e.request), ["You are a coding assistant.", "Draft an email to Ada."]);
    }
    assert_eq!(log.exchanges.iter().map(|e| e.request.stream).collect::<Vec<_>>(), [false, true, false, true]);
}
