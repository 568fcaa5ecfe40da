//! Hosts in the repository that black-box conformance judges (SPEC.md §11.5), and what they
//! share: reading the configuration a stage gives them, connecting to the servers with the
//! official Rust MCP SDK's client, and the Anthropic Messages API.

pub mod reference;
pub mod stateless;

use anyhow::{Context, Result, bail};
use rmcp::service::{NotificationContext, RoleClient, RunningService};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{ClientHandler, ServiceExt};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Notes that a server said its list changed.
pub struct Listening(Arc<AtomicBool>);

impl ClientHandler for Listening {
    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// One configured server, its client and what the host last listed of it.
pub struct Server {
    /// Its name in the configuration.
    pub name: String,
    /// The MCP client connected to it.
    pub client: RunningService<RoleClient, Listening>,
    /// Set when it says its list changed.
    pub changed: Arc<AtomicBool>,
    /// The tools offered to the model: the last list, or none if it failed.
    pub tools: Vec<rmcp::model::Tool>,
    /// Why the last list failed.
    pub failed: Option<String>,
    /// Its entry in the configuration, to connect again.
    config: Value,
}

impl Server {
    /// Lists its tools again. A list that fails is tried once more on a new connection (a
    /// transport session the server lost, a stdio server that exited); if that fails too, the
    /// server offers nothing until a later list succeeds.
    pub async fn relist(&mut self) {
        self.changed.store(false, Ordering::SeqCst);
        let listed = match self.client.list_all_tools().await {
            Ok(tools) => Ok(tools),
            Err(first) => match client(&self.name, &self.config, &self.changed).await {
                Ok(client) => {
                    let old = std::mem::replace(&mut self.client, client);
                    let _ = old.cancel().await;
                    self.client.list_all_tools().await.map_err(|e| e.to_string())
                }
                Err(e) => Err(format!("{first}; connecting again: {e}")),
            },
        };
        match listed {
            Ok(tools) => {
                self.tools = tools;
                self.failed = None;
            }
            Err(e) => {
                self.tools.clear();
                self.failed = Some(e);
            }
        }
    }
}

/// Connects to one server of the configuration and lists it.
pub async fn connect(name: &str, config: &Value) -> Result<Server> {
    let changed = Arc::new(AtomicBool::new(false));
    let client = client(name, config, &changed).await?;
    let mut server =
        Server { name: name.to_owned(), client, changed, tools: Vec::new(), failed: None, config: config.clone() };
    server.relist().await;
    Ok(server)
}

/// An MCP client of one server of the configuration, initialized; `changed` is set when the
/// server says its list changed.
async fn client(
    name: &str,
    config: &Value,
    changed: &Arc<AtomicBool>,
) -> Result<RunningService<RoleClient, Listening>> {
    serve(name, config, Listening(Arc::clone(changed)), Reinitialise::BySdk).await
}

/// Who starts a new transport session when a streamable HTTP server answers 404.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reinitialise {
    /// The SDK, at once, retrying the request (its default).
    BySdk,
    /// The host: the request fails, and the host decides.
    ByHost,
}

/// An MCP client of one server of the configuration (`url` for streamable HTTP, `command` and
/// `args` for stdio), initialized, with `handler` for what the server sends.
pub async fn serve<H: ClientHandler>(
    name: &str,
    config: &Value,
    handler: H,
    reinitialise: Reinitialise,
) -> Result<RunningService<RoleClient, H>> {
    let client = if let Some(url) = config.get("url").and_then(Value::as_str) {
        let mut transport = StreamableHttpClientTransportConfig::with_uri(url.to_owned());
        transport.reinit_on_expired_session = reinitialise == Reinitialise::BySdk;
        handler.serve(StreamableHttpClientTransport::from_config(transport)).await?
    } else if let Some(command) = config.get("command").and_then(Value::as_str) {
        let mut process = tokio::process::Command::new(command);
        for arg in config.get("args").and_then(Value::as_array).into_iter().flatten() {
            process.arg(arg.as_str().context("args are strings")?);
        }
        handler.serve(TokioChildProcess::new(process)?).await?
    } else {
        bail!("server {name}: neither `url` nor `command`");
    };
    Ok(client)
}

/// The model, on the Anthropic Messages API.
#[derive(Clone)]
pub struct Model {
    http: reqwest::Client,
    url: String,
    key: String,
}

impl Model {
    /// The model `ANTHROPIC_BASE_URL` and `ANTHROPIC_API_KEY` name.
    pub fn from_env() -> Result<Model> {
        let base = std::env::var("ANTHROPIC_BASE_URL").context("ANTHROPIC_BASE_URL names the model API")?;
        Ok(Model {
            http: reqwest::Client::new(),
            url: format!("{}/v1/messages", base.trim_end_matches('/')),
            key: std::env::var("ANTHROPIC_API_KEY").unwrap_or_default(),
        })
    }

    /// One request: the model's answer, as JSON.
    pub async fn ask(&self, system: &str, tools: &[Value], messages: &[Value]) -> Result<Value> {
        let body = json!({
            "model": "coherence-model",
            "max_tokens": 1024,
            "system": system,
            "tools": tools,
            "messages": messages,
        });
        let response = self
            .http
            .post(&self.url)
            .header("x-api-key", &self.key)
            .header("anthropic-version", "2023-06-01")
            .json(&body)
            .send()
            .await
            .context("the model API")?;
        let status = response.status();
        let answer: Value = response.json().await.context("the model's answer")?;
        if !status.is_success() {
            bail!("the model API answered {status}: {answer}");
        }
        Ok(answer)
    }
}

/// A tool as the Messages API offers it to the model.
pub fn offered(tool: &rmcp::model::Tool) -> Value {
    json!({ "name": tool.name, "description": tool.description, "input_schema": tool.input_schema })
}

/// The text of a tool call's result, its parts a line each.
pub fn result_text(result: &rmcp::model::CallToolResult) -> String {
    let text: Vec<String> = result.content.iter().filter_map(|c| c.as_text().map(|t| t.text.clone())).collect();
    text.join("\n")
}

/// Prints one JSON line on stdout.
pub fn say(line: Value) {
    println!("{line}");
}

/// Connects to every server of the `mcpServers` file `MCP_CONFIG` names, and lists each.
pub async fn servers() -> Result<Vec<Server>> {
    let config = std::env::var("MCP_CONFIG").context("MCP_CONFIG names the mcpServers file")?;
    let config: Value = serde_json::from_str(&std::fs::read_to_string(&config).with_context(|| config.clone())?)?;
    let mut servers = Vec::new();
    for (name, server) in config.get("mcpServers").and_then(Value::as_object).context("no mcpServers")? {
        servers.push(connect(name, server).await?);
    }
    Ok(servers)
}
