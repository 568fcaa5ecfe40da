//! The fake model endpoint: an HTTP server on 127.0.0.1 that answers the Anthropic Messages API
//! and the OpenAI Chat Completions API as the real ones do, logs every request, and asks a
//! [`Responder`] what the model says.
//!
//! It runs as a [`Served`] router: dropping it stops the server and frees the port.

use crate::model_api::{
    Api, ModelRequest, Reply, anthropic_events, anthropic_message, openai_chunks, openai_completion, parse_anthropic,
    parse_openai,
};
use crate::serve::Served;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{Method, StatusCode, Uri};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

/// Plays the model: decides the answer to each request the host sends with its conversation.
pub trait Responder: Send + Sync + 'static {
    /// The answer to `request`, the `index`-th the endpoint received (from 0).
    fn reply(&self, request: &ModelRequest, index: usize) -> Reply;
}

impl<F: Fn(&ModelRequest, usize) -> Reply + Send + Sync + 'static> Responder for F {
    fn reply(&self, request: &ModelRequest, index: usize) -> Reply {
        self(request, index)
    }
}

/// What the endpoint accepts before it refuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The most model requests answered; past it, every request gets a rate-limit error and the
    /// endpoint counts as flooded.
    pub requests: usize,
    /// The largest request body, in bytes.
    pub body_bytes: usize,
}

impl Limits {
    /// 10,000 requests, 32 MiB bodies.
    pub const DEFAULT: Limits = Limits { requests: 10_000, body_bytes: 32 << 20 };
}

/// One request to the model and its answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Exchange {
    /// Its number, from 0, in the order requests arrived.
    pub index: usize,
    /// The request, read.
    pub request: ModelRequest,
    /// The answer sent.
    pub reply: Reply,
}

/// Everything the endpoint saw.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Log {
    /// The model requests answered, by number.
    pub exchanges: Vec<Exchange>,
    /// Model requests accepted (some may be awaiting their answer).
    pub accepted: usize,
    /// Every other request (`METHOD path`, and what went wrong for a bad model request), in order.
    pub others: Vec<String>,
    /// Model requests refused past [`Limits::requests`].
    pub refused: usize,
}

struct Shared {
    responder: Box<dyn Responder>,
    limits: Limits,
    log: Mutex<Log>,
}

/// A running fake model endpoint.
pub struct ModelEndpoint {
    served: Served,
    shared: Arc<Shared>,
}

impl ModelEndpoint {
    /// Starts an endpoint on an ephemeral port of 127.0.0.1.
    pub fn start(responder: impl Responder, limits: Limits) -> std::io::Result<ModelEndpoint> {
        ModelEndpoint::start_on(0, responder, limits)
    }

    /// Starts an endpoint on `port` of 127.0.0.1 (0: an ephemeral one).
    pub fn start_on(port: u16, responder: impl Responder, limits: Limits) -> std::io::Result<ModelEndpoint> {
        let shared = Arc::new(Shared { responder: Box::new(responder), limits, log: Mutex::new(Log::default()) });
        let app = Router::new()
            .route("/v1/messages", post(anthropic))
            .route("/v1/messages/count_tokens", post(count_tokens))
            .route("/v1/chat/completions", post(openai))
            .route("/chat/completions", post(openai))
            .route("/v1/models", get(models))
            .route("/models", get(models))
            .fallback(other)
            .layer(DefaultBodyLimit::max(limits.body_bytes))
            .with_state(Arc::clone(&shared));
        Ok(ModelEndpoint { served: Served::start(port, app, "model-endpoint")?, shared })
    }

    /// The base URL a host is configured with, `http://127.0.0.1:PORT` (the Anthropic SDKs add
    /// `/v1/messages`; OpenAI-compatible clients are given it with `/v1`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.served.addr())
    }

    /// The address listened on.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.served.addr()
    }

    /// Requests seen so far (model requests accepted and other requests) and model requests
    /// refused, without copying the log.
    pub fn counts(&self) -> (usize, usize) {
        let log = self.shared.log.lock().expect("no handler panics holding the log");
        (log.accepted + log.others.len(), log.refused)
    }

    /// What the endpoint saw so far.
    pub fn log(&self) -> Log {
        self.shared.log.lock().expect("no handler panics holding the log").clone()
    }
}

fn error(api: Api, status: StatusCode, kind: &str, message: &str) -> Response {
    let body = match api {
        Api::Anthropic => json!({ "type": "error", "error": { "type": kind, "message": message } }),
        Api::OpenAi => json!({ "error": { "message": message, "type": kind, "param": null, "code": null } }),
    };
    (status, axum::Json(body)).into_response()
}

async fn anthropic(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    answer(shared, Api::Anthropic, body).await
}

async fn openai(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    answer(shared, Api::OpenAi, body).await
}

async fn answer(shared: Arc<Shared>, api: Api, body: Bytes) -> Response {
    let path = match api {
        Api::Anthropic => "POST /v1/messages",
        Api::OpenAi => "POST /v1/chat/completions",
    };
    let parsed = serde_json::from_slice::<Value>(&body).map_err(|e| e.to_string()).and_then(|value| {
        let request = match api {
            Api::Anthropic => parse_anthropic(&value),
            Api::OpenAi => parse_openai(&value),
        }?;
        let usage = value.pointer("/stream_options/include_usage").and_then(Value::as_bool).unwrap_or(false);
        Ok((request, usage))
    });
    let (request, usage) = match parsed {
        Ok(parsed) => parsed,
        Err(message) => {
            shared.log.lock().expect("log").others.push(format!("{path}: refused: {message}"));
            return error(api, StatusCode::BAD_REQUEST, "invalid_request_error", &message);
        }
    };
    let index = {
        let mut log = shared.log.lock().expect("log");
        if log.accepted >= shared.limits.requests {
            log.refused += 1;
            None
        } else {
            log.accepted += 1;
            Some(log.accepted - 1)
        }
    };
    let Some(index) = index else {
        let message = format!("more than {} model requests: the host floods the model", shared.limits.requests);
        return error(api, StatusCode::TOO_MANY_REQUESTS, "rate_limit_error", &message);
    };
    // The responder may wait (on the runner, on the servers' wires): not on this runtime's thread.
    let decided = {
        let (shared, request) = (Arc::clone(&shared), request.clone());
        tokio::task::spawn_blocking(move || shared.responder.reply(&request, index)).await
    };
    let Ok(reply) = decided else {
        return error(api, StatusCode::INTERNAL_SERVER_ERROR, "api_error", "the model's responder failed");
    };
    let tokens = body.len() / 4;
    let model = request.model.clone();
    let stream = request.stream;
    {
        let mut log = shared.log.lock().expect("log");
        let at = log.exchanges.partition_point(|e| e.index < index);
        log.exchanges.insert(at, Exchange { index, request, reply: reply.clone() });
    }
    match (api, stream) {
        (Api::Anthropic, false) => axum::Json(anthropic_message(&reply, index, &model, tokens)).into_response(),
        (Api::OpenAi, false) => axum::Json(openai_completion(&reply, index, &model, tokens)).into_response(),
        (Api::Anthropic, true) => {
            let events = anthropic_events(&reply, index, &model, tokens)
                .into_iter()
                .map(|(name, data)| Ok::<_, Infallible>(Event::default().event(name).data(data.to_string())));
            Sse::new(futures_util::stream::iter(events)).into_response()
        }
        (Api::OpenAi, true) => {
            let chunks = openai_chunks(&reply, index, &model, tokens, usage)
                .into_iter()
                .map(|chunk| chunk.to_string())
                .chain(std::iter::once("[DONE]".to_owned()))
                .map(|data| Ok::<_, Infallible>(Event::default().data(data)));
            Sse::new(futures_util::stream::iter(chunks)).into_response()
        }
    }
}

async fn count_tokens(body: Bytes) -> Response {
    axum::Json(json!({ "input_tokens": body.len() / 4 })).into_response()
}

async fn models() -> Response {
    let model = json!({
        "id": "coherence-model",
        "object": "model",
        "type": "model",
        "display_name": "mcp-coherence's model",
        "created": 0,
        "created_at": "1970-01-01T00:00:00Z",
        "owned_by": "mcp-coherence",
    });
    axum::Json(json!({ "object": "list", "data": [model], "has_more": false, "first_id": "coherence-model", "last_id": "coherence-model" }))
        .into_response()
}

async fn other(State(shared): State<Arc<Shared>>, method: Method, uri: Uri) -> Response {
    shared.log.lock().expect("log").others.push(format!("{method} {}", uri.path()));
    let message = format!("mcp-coherence's model endpoint does not serve {method} {}", uri.path());
    error(Api::OpenAi, StatusCode::NOT_FOUND, "not_found_error", &message)
}
