//! The language model's two wire formats, both ways: a host's request to the Anthropic Messages
//! API or the OpenAI Chat Completions API read into one [`ModelRequest`], and a [`Reply`] written
//! as either API answers, whole or as server-sent events framed as the real APIs frame them.
//!
//! Nothing here decides what the model says: a [`Reply`] comes from whoever plays the model (the
//! runner, from a fixture's agent step).

use serde::Serialize;
use serde_json::{Value, json};

/// Which API a request came in on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Api {
    /// `POST /v1/messages`.
    Anthropic,
    /// `POST /v1/chat/completions` (or `/chat/completions`).
    #[serde(rename = "openai")]
    OpenAi,
}

/// Who wrote a message of the conversation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// The user, or the host speaking as the user (tool results, injected reminders).
    User,
    /// The model (as the host replays it).
    Assistant,
    /// A system message after the first non-system one (OpenAI).
    System,
    /// A tool result message (OpenAI's `tool` role).
    Tool,
}

/// A piece of a message.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "part")]
pub enum Part {
    /// Text.
    Text {
        /// The text.
        text: String,
    },
    /// The model called a tool.
    ToolCall {
        /// The call's id.
        id: String,
        /// The tool's name as the host offered it.
        name: String,
        /// The arguments.
        input: Value,
    },
    /// What the host answered a tool call.
    ToolResult {
        /// The call it answers.
        id: String,
        /// Its text.
        text: String,
        /// Whether the host marked it an error.
        is_error: bool,
    },
    /// Anything else (images, documents, thinking): its type only.
    Other {
        /// The block's `type`.
        kind: String,
    },
}

/// One message of the conversation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Message {
    /// Who wrote it.
    pub role: Role,
    /// What it holds.
    pub parts: Vec<Part>,
}

/// A tool the host offers the model.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OfferedTool {
    /// Its name, as the host spells it.
    pub name: String,
    /// Its description.
    pub description: String,
}

/// A request to the model, whichever API it came in on.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModelRequest {
    /// The API.
    pub api: Api,
    /// The model asked for.
    pub model: String,
    /// Whether the host asked for a stream of events.
    pub stream: bool,
    /// The system prompt (OpenAI: the system and developer messages before the first other one).
    pub system: String,
    /// The conversation.
    pub messages: Vec<Message>,
    /// The tools offered: the moment a catalogue reaches the model.
    pub tools: Vec<OfferedTool>,
    /// The request carries a `tools` array (`functions`, for OpenAI), even an empty one: a
    /// request of the agent's loop offering nothing, not a side request (a title, a summary).
    pub offers: bool,
}

/// What the model answers.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Reply {
    /// A text answer: the turn ends.
    Text {
        /// The text.
        text: String,
    },
    /// A call of one offered tool.
    ToolCall {
        /// The tool's name, as the host offered it.
        name: String,
        /// The arguments.
        input: Value,
    },
}

fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => {
            blocks.iter().filter_map(|b| b.get("text").and_then(Value::as_str)).collect::<Vec<_>>().join("\n")
        }
        _ => String::new(),
    }
}

fn field<'v>(object: &'v Value, name: &str, what: &str) -> Result<&'v Value, String> {
    object.get(name).ok_or_else(|| format!("{what} has no `{name}`"))
}

fn string(object: &Value, name: &str) -> String {
    object.get(name).and_then(Value::as_str).unwrap_or_default().to_owned()
}

/// Reads a Messages API request body.
pub fn parse_anthropic(body: &Value) -> Result<ModelRequest, String> {
    let messages = field(body, "messages", "the request")?.as_array().ok_or("`messages` is not an array")?;
    let part = |block: &Value| -> Part {
        match block.get("type").and_then(Value::as_str).unwrap_or_default() {
            "text" => Part::Text { text: string(block, "text") },
            "tool_use" => Part::ToolCall {
                id: string(block, "id"),
                name: string(block, "name"),
                input: block.get("input").cloned().unwrap_or(Value::Null),
            },
            "tool_result" => Part::ToolResult {
                id: string(block, "tool_use_id"),
                text: block.get("content").map(text_of).unwrap_or_default(),
                is_error: block.get("is_error").and_then(Value::as_bool).unwrap_or(false),
            },
            other => Part::Other { kind: other.to_owned() },
        }
    };
    let messages = messages
        .iter()
        .map(|m| {
            let role = match m.get("role").and_then(Value::as_str) {
                Some("user") => Role::User,
                Some("assistant") => Role::Assistant,
                other => return Err(format!("a message has role {other:?}; the Messages API has user and assistant")),
            };
            let parts = match field(m, "content", "a message")? {
                Value::String(text) => vec![Part::Text { text: text.clone() }],
                Value::Array(blocks) => blocks.iter().map(part).collect(),
                _ => return Err("a message's `content` is neither a string nor an array".to_owned()),
            };
            Ok(Message { role, parts })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let tools = body
        .get("tools")
        .and_then(Value::as_array)
        .map(|tools| {
            tools
                .iter()
                .map(|t| OfferedTool { name: string(t, "name"), description: string(t, "description") })
                .collect()
        })
        .unwrap_or_default();
    Ok(ModelRequest {
        api: Api::Anthropic,
        model: string(body, "model"),
        stream: body.get("stream").and_then(Value::as_bool).unwrap_or(false),
        system: body.get("system").map(text_of).unwrap_or_default(),
        messages,
        offers: body.get("tools").is_some_and(Value::is_array),
        tools,
    })
}

/// Reads a Chat Completions request body.
pub fn parse_openai(body: &Value) -> Result<ModelRequest, String> {
    let raw = field(body, "messages", "the request")?.as_array().ok_or("`messages` is not an array")?;
    let mut system = Vec::new();
    let mut messages = Vec::new();
    for m in raw {
        let role = m.get("role").and_then(Value::as_str).unwrap_or_default();
        let content = m.get("content").map(|c| {
            let mut parts = Vec::new();
            match c {
                Value::String(text) => parts.push(Part::Text { text: text.clone() }),
                Value::Array(blocks) => {
                    for b in blocks {
                        match b.get("type").and_then(Value::as_str).unwrap_or_default() {
                            "text" => parts.push(Part::Text { text: string(b, "text") }),
                            other => parts.push(Part::Other { kind: other.to_owned() }),
                        }
                    }
                }
                _ => {}
            }
            parts
        });
        let mut parts = content.unwrap_or_default();
        let role = match role {
            "system" | "developer" if messages.is_empty() => {
                system.push(text_of(m.get("content").unwrap_or(&Value::Null)));
                continue;
            }
            "system" | "developer" => Role::System,
            "user" => Role::User,
            "assistant" => {
                for call in m.get("tool_calls").and_then(Value::as_array).into_iter().flatten() {
                    let function = call.get("function").cloned().unwrap_or(Value::Null);
                    let arguments = string(&function, "arguments");
                    parts.push(Part::ToolCall {
                        id: string(call, "id"),
                        name: string(&function, "name"),
                        input: serde_json::from_str(&arguments).unwrap_or(Value::String(arguments)),
                    });
                }
                Role::Assistant
            }
            "tool" | "function" => {
                let text = text_of(m.get("content").unwrap_or(&Value::Null));
                parts = vec![Part::ToolResult { id: string(m, "tool_call_id"), text, is_error: false }];
                Role::Tool
            }
            other => return Err(format!("a message has role `{other}`")),
        };
        messages.push(Message { role, parts });
    }
    let mut tools: Vec<OfferedTool> = Vec::new();
    for t in body.get("tools").and_then(Value::as_array).into_iter().flatten() {
        let function = t.get("function").unwrap_or(t);
        tools.push(OfferedTool { name: string(function, "name"), description: string(function, "description") });
    }
    for f in body.get("functions").and_then(Value::as_array).into_iter().flatten() {
        tools.push(OfferedTool { name: string(f, "name"), description: string(f, "description") });
    }
    Ok(ModelRequest {
        api: Api::OpenAi,
        model: string(body, "model"),
        stream: body.get("stream").and_then(Value::as_bool).unwrap_or(false),
        system: system.join("\n\n"),
        messages,
        offers: ["tools", "functions"].iter().any(|k| body.get(*k).is_some_and(Value::is_array)),
        tools,
    })
}

/// The texts a request holds that the previous one did not, in order: the system prompt when it
/// changed, and every text of the messages past the longest common prefix of the two
/// conversations but the model's own (a host that rewrites its history shows it all again).
/// These are where a host's notices and error messages reach the model.
pub fn added_text(previous: Option<&ModelRequest>, request: &ModelRequest) -> Vec<String> {
    let mut added = Vec::new();
    let (system, old) = previous.map_or(("", &[][..]), |p| (p.system.as_str(), &p.messages[..]));
    if request.system != system && !request.system.is_empty() {
        added.push(request.system.clone());
    }
    let common = request.messages.iter().zip(old).take_while(|(a, b)| a == b).count();
    for message in &request.messages[common..] {
        if message.role == Role::Assistant {
            continue;
        }
        for part in &message.parts {
            match part {
                Part::Text { text } | Part::ToolResult { text, .. } if !text.is_empty() => added.push(text.clone()),
                _ => {}
            }
        }
    }
    added
}

/// Ids in answers are numbered by the exchange, so that logs are the same run after run.
fn number(index: usize) -> String {
    format!("{index:04}")
}

fn stop_reason(reply: &Reply) -> (&'static str, &'static str) {
    match reply {
        Reply::Text { .. } => ("end_turn", "stop"),
        Reply::ToolCall { .. } => ("tool_use", "tool_calls"),
    }
}

/// A whole Messages API answer.
pub fn anthropic_message(reply: &Reply, index: usize, model: &str, input_tokens: usize) -> Value {
    let n = number(index);
    let content = match reply {
        Reply::Text { text } => json!([{ "type": "text", "text": text }]),
        Reply::ToolCall { name, input } => {
            json!([{ "type": "tool_use", "id": format!("toolu_coherence_{n}"), "name": name, "input": input }])
        }
    };
    json!({
        "id": format!("msg_coherence_{n}"),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason(reply).0,
        "stop_sequence": null,
        "usage": { "input_tokens": input_tokens, "output_tokens": 1 },
    })
}

/// A Messages API answer as its stream of events, each `(event name, data)`: `message_start`, a
/// `ping`, one content block (`content_block_start`, a `content_block_delta` of text or of the
/// tool input's JSON, `content_block_stop`), `message_delta` with the stop reason, `message_stop`.
pub fn anthropic_events(reply: &Reply, index: usize, model: &str, input_tokens: usize) -> Vec<(&'static str, Value)> {
    let whole = anthropic_message(reply, index, model, input_tokens);
    let mut start = whole.clone();
    start["content"] = json!([]);
    start["stop_reason"] = Value::Null;
    start["usage"]["output_tokens"] = json!(0);
    let (block, delta) = match reply {
        Reply::Text { text } => (json!({ "type": "text", "text": "" }), json!({ "type": "text_delta", "text": text })),
        Reply::ToolCall { name, input } => (
            json!({ "type": "tool_use", "id": whole["content"][0]["id"], "name": name, "input": {} }),
            json!({ "type": "input_json_delta", "partial_json": input.to_string() }),
        ),
    };
    vec![
        ("message_start", json!({ "type": "message_start", "message": start })),
        ("content_block_start", json!({ "type": "content_block_start", "index": 0, "content_block": block })),
        ("ping", json!({ "type": "ping" })),
        ("content_block_delta", json!({ "type": "content_block_delta", "index": 0, "delta": delta })),
        ("content_block_stop", json!({ "type": "content_block_stop", "index": 0 })),
        (
            "message_delta",
            json!({
                "type": "message_delta",
                "delta": { "stop_reason": stop_reason(reply).0, "stop_sequence": null },
                "usage": { "output_tokens": 1 },
            }),
        ),
        ("message_stop", json!({ "type": "message_stop" })),
    ]
}

/// A whole Chat Completions answer.
pub fn openai_completion(reply: &Reply, index: usize, model: &str, input_tokens: usize) -> Value {
    let n = number(index);
    let message = match reply {
        Reply::Text { text } => json!({ "role": "assistant", "content": text }),
        Reply::ToolCall { name, input } => json!({
            "role": "assistant",
            "content": null,
            "tool_calls": [{
                "id": format!("call_coherence_{n}"),
                "type": "function",
                "function": { "name": name, "arguments": input.to_string() },
            }],
        }),
    };
    json!({
        "id": format!("chatcmpl-coherence-{n}"),
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{ "index": 0, "message": message, "logprobs": null, "finish_reason": stop_reason(reply).1 }],
        "usage": { "prompt_tokens": input_tokens, "completion_tokens": 1, "total_tokens": input_tokens + 1 },
    })
}

/// A Chat Completions answer as its stream of chunks (each sent as `data: <chunk>`, and the
/// stream ended by `data: [DONE]`): the role, the text or the tool call (its name, then its
/// arguments), the finish reason, and the usage when the host asked for it
/// (`stream_options.include_usage`).
pub fn openai_chunks(reply: &Reply, index: usize, model: &str, input_tokens: usize, usage: bool) -> Vec<Value> {
    let n = number(index);
    let chunk = |delta: Value, finish: Value| {
        json!({
            "id": format!("chatcmpl-coherence-{n}"),
            "object": "chat.completion.chunk",
            "created": 0,
            "model": model,
            "choices": [{ "index": 0, "delta": delta, "logprobs": null, "finish_reason": finish }],
        })
    };
    let mut chunks = vec![chunk(json!({ "role": "assistant", "content": "" }), Value::Null)];
    match reply {
        Reply::Text { text } => chunks.push(chunk(json!({ "content": text }), Value::Null)),
        Reply::ToolCall { name, input } => {
            let call = |function: Value, id: Option<String>| {
                let mut call = json!({ "index": 0, "function": function });
                if let Some(id) = id {
                    call["id"] = json!(id);
                    call["type"] = json!("function");
                }
                json!({ "tool_calls": [call] })
            };
            let id = format!("call_coherence_{n}");
            chunks.push(chunk(call(json!({ "name": name, "arguments": "" }), Some(id)), Value::Null));
            chunks.push(chunk(call(json!({ "arguments": input.to_string() }), None), Value::Null));
        }
    }
    chunks.push(chunk(json!({}), json!(stop_reason(reply).1)));
    if usage {
        let mut last = chunk(json!({}), Value::Null);
        last["choices"] = json!([]);
        last["usage"] =
            json!({ "prompt_tokens": input_tokens, "completion_tokens": 1, "total_tokens": input_tokens + 1 });
        chunks.push(last);
    }
    chunks
}
