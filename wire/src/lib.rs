//! The wire side of black-box conformance (SPEC.md §11.5): what a real, unmodified host talks to
//! when the kit plays its language model and its MCP servers.
//!
//! [`endpoint::ModelEndpoint`] serves the Anthropic Messages API and the OpenAI Chat Completions
//! API on 127.0.0.1, whole or streamed, logs every request (the tools offered, the conversation),
//! and asks a [`endpoint::Responder`] what the model answers. [`model_api`] reads both request
//! formats into one [`model_api::ModelRequest`] and writes a [`model_api::Reply`] in either.
//! [`mcp::McpServer`] is one connector's MCP server on streamable HTTP, driven by the runner:
//! its tool list, its notifications, the sessions it loses, and a log of what it saw.
//! [`stage::Stage`] puts a host process on a stage of servers and a model, configured as hosts
//! are, and says when it has done what an input made it do; [`idle::Probe`] asks the operating
//! system whether the host can still act on its own.
//!
//! The async runtime and HTTP stack live in this crate alone: `model/` stays pure and the
//! adapter-mode runner synchronous.

pub mod conform;
pub mod endpoint;
pub mod idle;
pub mod mcp;
pub mod model_api;
pub mod reading;
pub mod serve;
pub mod stage;
