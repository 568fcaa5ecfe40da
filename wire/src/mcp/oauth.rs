//! The OAuth side of a protected connector server (MCP authorization, 2025-06-18 and later): the
//! server is its own authorization server.
//!
//! - Every MCP request needs `Authorization: Bearer <token>`; without a valid one it is a 401 whose
//!   `WWW-Authenticate` names the protected-resource metadata.
//! - `/.well-known/oauth-protected-resource[/mcp]` (RFC 9728) names the authorization server;
//!   `/.well-known/oauth-authorization-server` (RFC 8414) its endpoints.
//! - `/register` is dynamic client registration (RFC 7591), public clients only.
//! - `/authorize` redirects to the client's registered callback at once: with a code if the user
//!   has granted access on the web ([`super::ServerHandle::authorize`]), with `access_denied`
//!   otherwise. Nothing tells the host when the grant changes: that is the point.
//! - `/token` exchanges a code (PKCE S256 checked) or a refresh token for an access token.

use super::{Inner, Seen, Shared};
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::Digest;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A code issued by `/authorize`, until `/token` takes it.
pub(super) struct Code {
    code: String,
    client: String,
    redirect_uri: String,
    challenge: String,
}

/// What the authorization server knows.
#[derive(Default)]
pub(super) struct Grants {
    /// The user has granted the host access on the web.
    pub(super) granted: bool,
    /// Registered clients and their callbacks.
    clients: BTreeMap<String, Vec<String>>,
    codes: Vec<Code>,
    /// Access tokens in force.
    pub(super) access: Vec<String>,
    /// Refresh tokens in force.
    pub(super) refresh: Vec<String>,
    issued: u64,
}

impl Grants {
    fn issue(&mut self, prefix: &str, connector: &str) -> String {
        self.issued += 1;
        format!("{prefix}-{connector}-{}", self.issued)
    }
}

/// The routes of the authorization server and its metadata.
pub(super) fn routes(router: Router<Arc<Shared>>) -> Router<Arc<Shared>> {
    router
        .route("/.well-known/oauth-protected-resource", get(resource_metadata))
        .route("/.well-known/oauth-protected-resource/mcp", get(resource_metadata))
        .route("/.well-known/oauth-authorization-server", get(server_metadata))
        .route("/register", post(register))
        .route("/authorize", get(authorize))
        .route("/token", post(token))
}

/// `Ok` if `headers` carry an access token in force; otherwise the 401 to answer.
#[allow(clippy::result_large_err)] // the refusal is the handler's answer, made once
pub(super) fn check_bearer(
    shared: &Shared,
    inner: &mut Inner,
    headers: &HeaderMap,
    asked: &str,
) -> Result<(), Response> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")));
    if presented.is_some_and(|token| inner.grants.access.iter().any(|t| t == token)) {
        return Ok(());
    }
    let why = if presented.is_some() { "the access token is not in force" } else { "no access token" };
    inner.seen.push(Seen::Refused { status: 401, why: why.to_owned(), asked: asked.to_owned() });
    let mut challenge =
        format!(r#"Bearer resource_metadata="{}/.well-known/oauth-protected-resource/mcp""#, shared.base);
    if presented.is_some() {
        challenge.push_str(r#", error="invalid_token""#);
    }
    let mut response =
        (StatusCode::UNAUTHORIZED, axum::Json(json!({ "error": "unauthorized", "error_description": why })))
            .into_response();
    let value = HeaderValue::from_str(&challenge).expect("the challenge is visible ASCII");
    response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
    Err(response)
}

fn step(shared: &Shared, what: String) {
    shared.inner().seen.push(Seen::OAuth { step: what });
}

async fn resource_metadata(State(shared): State<Arc<Shared>>) -> Response {
    step(&shared, "resource metadata".to_owned());
    axum::Json(json!({
        "resource": format!("{}/mcp", shared.base),
        "authorization_servers": [shared.base],
        "scopes_supported": ["tools"],
        "bearer_methods_supported": ["header"],
    }))
    .into_response()
}

async fn server_metadata(State(shared): State<Arc<Shared>>) -> Response {
    step(&shared, "server metadata".to_owned());
    let base = &shared.base;
    axum::Json(json!({
        "issuer": base,
        "authorization_endpoint": format!("{base}/authorize"),
        "token_endpoint": format!("{base}/token"),
        "registration_endpoint": format!("{base}/register"),
        "scopes_supported": ["tools"],
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none"],
    }))
    .into_response()
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (status, axum::Json(json!({ "error": error, "error_description": description }))).into_response()
}

async fn register(State(shared): State<Arc<Shared>>, body: axum::body::Bytes) -> Response {
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let uris: Vec<String> = request
        .get("redirect_uris")
        .and_then(Value::as_array)
        .map(|uris| uris.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default();
    if uris.is_empty() {
        step(&shared, "register: refused, no redirect_uris".to_owned());
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_redirect_uri", "redirect_uris is required");
    }
    let mut inner = shared.inner();
    let client = inner.grants.issue("client", &shared.connector);
    inner.grants.clients.insert(client.clone(), uris.clone());
    inner.seen.push(Seen::OAuth { step: format!("register: {client}") });
    let mut answer = request.as_object().cloned().unwrap_or_default();
    answer.insert("client_id".into(), json!(client));
    answer.insert("client_id_issued_at".into(), json!(0));
    answer.insert("redirect_uris".into(), json!(uris));
    answer.insert("token_endpoint_auth_method".into(), json!("none"));
    answer.insert("grant_types".into(), json!(["authorization_code", "refresh_token"]));
    answer.insert("response_types".into(), json!(["code"]));
    (StatusCode::CREATED, axum::Json(Value::Object(answer))).into_response()
}

#[derive(Deserialize)]
struct AuthorizeParams {
    client_id: Option<String>,
    redirect_uri: Option<String>,
    state: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

async fn authorize(State(shared): State<Arc<Shared>>, Query(params): Query<AuthorizeParams>) -> Response {
    let mut inner = shared.inner();
    let client = params.client_id.unwrap_or_default();
    let redirect = params.redirect_uri.unwrap_or_default();
    // An unknown client or callback is never redirected to (RFC 6749 §4.1.2.1).
    if !inner.grants.clients.get(&client).is_some_and(|uris| uris.contains(&redirect)) {
        inner.seen.push(Seen::OAuth { step: format!("authorize: refused, unknown client {client} or callback") });
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "unknown client_id or redirect_uri");
    }
    let mut query = form_urlencoded::Serializer::new(String::new());
    let challenge = params.code_challenge.filter(|_| params.code_challenge_method.as_deref() == Some("S256"));
    match challenge {
        Some(challenge) if inner.grants.granted => {
            let code = inner.grants.issue("code", &shared.connector);
            inner.grants.codes.push(Code { code: code.clone(), client, redirect_uri: redirect.clone(), challenge });
            query.append_pair("code", &code);
            inner.seen.push(Seen::OAuth { step: "authorize: code".to_owned() });
        }
        Some(_) => {
            query.append_pair("error", "access_denied");
            inner.seen.push(Seen::OAuth { step: "authorize: denied, access not granted on the web".to_owned() });
        }
        None => {
            query.append_pair("error", "invalid_request");
            query.append_pair("error_description", "PKCE with S256 is required");
            inner.seen.push(Seen::OAuth { step: "authorize: refused, no S256 challenge".to_owned() });
        }
    }
    if let Some(state) = &params.state {
        query.append_pair("state", state);
    }
    let location = format!("{redirect}{}{}", if redirect.contains('?') { "&" } else { "?" }, query.finish());
    match HeaderValue::from_str(&location) {
        Ok(location) => (StatusCode::FOUND, [(header::LOCATION, location)]).into_response(),
        Err(_) => oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "the redirect_uri is not a URL"),
    }
}

async fn token(State(shared): State<Arc<Shared>>, body: axum::body::Bytes) -> Response {
    let form: BTreeMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or("");
    let mut inner = shared.inner();
    let granted = match field("grant_type") {
        "authorization_code" => {
            let at = inner.grants.codes.iter().position(|c| c.code == field("code"));
            match at.map(|at| inner.grants.codes.remove(at)) {
                Some(code)
                    if code.client == field("client_id")
                        && code.redirect_uri == field("redirect_uri")
                        && s256(field("code_verifier")) == code.challenge =>
                {
                    Ok("token: code")
                }
                Some(_) => Err("the code's client, callback or verifier does not match"),
                None => Err("no such code"),
            }
        }
        "refresh_token" if inner.grants.granted && inner.grants.refresh.iter().any(|r| r == field("refresh_token")) => {
            Ok("token: refreshed")
        }
        "refresh_token" => Err("the refresh token is not in force"),
        _ => Err("unsupported grant_type"),
    };
    match granted {
        Ok(what) => {
            let access = inner.grants.issue("access", &shared.connector);
            let refresh = match field("grant_type") {
                "refresh_token" => field("refresh_token").to_owned(),
                _ => {
                    let refresh = inner.grants.issue("refresh", &shared.connector);
                    inner.grants.refresh.push(refresh.clone());
                    refresh
                }
            };
            inner.grants.access.push(access.clone());
            inner.seen.push(Seen::OAuth { step: what.to_owned() });
            let body = json!({
                "access_token": access,
                "token_type": "Bearer",
                "expires_in": 3600,
                "refresh_token": refresh,
                "scope": "tools",
            });
            axum::Json(body).into_response()
        }
        Err(why) => {
            inner.seen.push(Seen::OAuth { step: format!("token: refused, {why}") });
            oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", why)
        }
    }
}

/// PKCE's S256: the base64url (unpadded) SHA-256 of the verifier.
fn s256(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()))
}

#[cfg(test)]
mod tests {
    /// RFC 7636, appendix B.
    #[test]
    fn s256_is_rfc_7636s() {
        assert_eq!(
            super::s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }
}
