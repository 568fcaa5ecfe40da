//! The adapter protocol: what the runner tells a host, and what the host reports back.
//!
//! One JSON object per line in each direction (see ADAPTER.md). The runner plays every part of
//! the world (the account, the connectors' servers, the network, the user and the agent); the
//! host under test sees only what a real host would: notifications, replies to its own requests
//! (`tools/list`, and the account reads of a connector platform), user turns and commands, the
//! agent's calls, and the passing of time for a request that never returns. After every input the
//! host answers with one [`Output`].

use coherence_model::state::{
    Answer, Auth, CacheScope, ConnectorId, ListFailure, Listing, Notice, Notify, Revision, SessionId, Ttl,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The protocol version this runner speaks.
pub const PROTOCOL_VERSION: u32 = 8;

/// The versions this runner accepts from a host: a version-7 host is never given a fixture in
/// which a server deploys; a version-6 host, moreover, is never given a fixture with two
/// authorization contexts; a version-5 host, moreover, is never given a fixture whose
/// servers speak MCP 2026-07-28; a version-4 host's agent, moreover, never completes a handshake
/// inside a turn; a version-3 host, moreover, is never sent a paged reply; a version-2 host,
/// moreover, keeps every list, never aborts a turn, and has every command.
pub const PROTOCOL_VERSIONS: [u32; 7] = [2, 3, 4, 5, 6, 7, 8];

/// The first version in which a server's list may change without an auth change (a deploy): a
/// listing may be `withdrawn`, a call may be answered `unknown_tool`, and an account read says
/// what each server lists (`lists`).
pub const DEPLOYS_SINCE: u32 = 8;

/// The first version in which sessions may act for two authorization contexts (a second user
/// behind the same host or gateway, with a token of their own).
pub const CONTEXTS_SINCE: u32 = 7;

/// The first version in which a connector's server may speak MCP 2026-07-28 (listen streams,
/// cache hints, TTLs that run out).
pub const STATELESS_SINCE: u32 = 6;

/// The first version in which the runner may page a `tools/list` reply.
pub const PAGES_SINCE: u32 = 4;

/// The first version in which the agent may complete a handshake inside a turn
/// (`complete_authentication`).
pub const HANDSHAKE_SINCE: u32 = 5;

/// On the wire every line also carries `"seq"`: the runner numbers its inputs from 0 for each
/// adapter process, and each output echoes the number of the input it answers, so that a line
/// printed twice, or one skipped, is caught at once instead of shifting every later answer.
pub const SEQ: &str = "seq";

/// An input as one wire line: its JSON with `seq` added.
pub fn input_line(input: &Input, seq: u64) -> String {
    let mut value = serde_json::to_value(input).expect("inputs serialise");
    value.as_object_mut().expect("inputs are objects").insert(SEQ.to_owned(), seq.into());
    value.to_string()
}

/// Splits a wire line into its `seq` and the message without it.
pub fn split_seq(line: &str) -> Result<(u64, serde_json::Value), String> {
    let mut value = crate::strict_json::parse(line.trim_end())?;
    let object = value.as_object_mut().ok_or("a protocol line is a JSON object")?;
    let seq = object.remove(SEQ).and_then(|v| v.as_u64()).ok_or("the line has no `seq` number")?;
    Ok((seq, value))
}

/// An output as one wire line, echoing `seq`.
pub fn output_line(output: &Output, seq: u64) -> String {
    let mut value = serde_json::to_value(output).expect("outputs serialise");
    value.as_object_mut().expect("outputs are objects").insert(SEQ.to_owned(), seq.into());
    value.to_string()
}

/// The result of a `tools/list` request, as delivered to the host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ListResult {
    /// The listing (`stubs`, `actions`, or from protocol 8 `withdrawn`: the action tools without
    /// the one a deploy withdrew). The reply to a request that carried a `cursor` is the rest of
    /// the list: with the pages before it, `actions`.
    Tools(Listing),
    /// The first page of the action tools, and a cursor to the rest (protocol 4): a host that
    /// wants every tool sends `tools/list` again with this cursor.
    FirstPage {
        /// The `nextCursor` of the reply: opaque.
        next_cursor: String,
    },
    /// The request failed.
    Error(ListFailure),
}

/// What the connector's server answered to an action-tool call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CallResult {
    /// The tool ran.
    Ok,
    /// 401: the token expired or access was revoked.
    Unauthorized,
    /// 404: the transport session is gone; the host must re-initialise.
    SessionNotFound,
    /// JSON-RPC -32602, "unknown tool": a deploy withdrew the tool (protocol 8). The connector is
    /// still authenticated.
    UnknownTool,
}

/// The reply to an account read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum AccountResult {
    /// The account's connectors, as they were when the read was served.
    Connectors(BTreeMap<ConnectorId, Auth>),
    /// What each connector's server listed the account when the read was served (protocol 8, in
    /// a fixture where a server deploys): `stubs`, `actions`, or `withdrawn`.
    Lists(BTreeMap<ConnectorId, Listing>),
    /// The read failed.
    Failed,
}

/// The cache hints of a 2026-07-28 `tools/list` result (SEP-2549), abstracted as the model
/// abstracts them (SPEC.md §3.8).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CacheHint {
    /// `ttlMs`: `zero` (0 or absent: stale at once) or `long` (fresh until the runner says the TTL
    /// ran out, with a `ttl_expired` input).
    pub ttl: Ttl,
    /// `cacheScope`: `private` (this authorization context only) or `public`.
    pub scope: CacheScope,
}

/// One connector as the host is told of it at reset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectorSetup {
    /// Its name.
    pub name: ConnectorId,
    /// Whether its server declared `tools.listChanged` at initialisation (`advertised`), or not
    /// (`unadvertised` and `silent` look the same to a host). For a 2026-07-28 server:
    /// `advertised` when it honours a listen filter that asks for `toolsListChanged`.
    pub notify: Notify,
    /// The listing each session got when it started (each session of the second user, with two
    /// authorization contexts: `second_user`).
    pub tools: Listing,
    /// The protocol revision its server speaks (protocol 6): `handshake` (the 2025 revisions;
    /// absent means this) or `stateless` (MCP 2026-07-28).
    #[serde(default, skip_serializing_if = "coherence_model::state::is_default")]
    pub revision: Revision,
    /// The cache hints of the listing each session got when it started (2026-07-28 only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<CacheHint>,
    /// With two authorization contexts (protocol 7), the listing each session of the second user
    /// got when it started: every session but the first acts for a second user, with a token of
    /// their own, whose authorization of this connector is fixed for the run. Absent: one context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub second_user: Option<Listing>,
}

/// A session's link to a connector's server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkRef {
    /// The session.
    pub session: SessionId,
    /// The connector.
    pub connector: ConnectorId,
}

/// An input to the host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Input {
    /// The first message: the runner's protocol version.
    Hello {
        /// The version.
        protocol: u32,
    },
    /// Forget everything; start these sessions, whose catalogues were just built from `tools`.
    Reset {
        /// The connectors.
        connectors: Vec<ConnectorSetup>,
        /// The sessions.
        sessions: Vec<SessionId>,
    },
    /// A `notifications/tools/list_changed` arrives.
    Notification {
        /// Where.
        session: SessionId,
        /// From which server.
        connector: ConnectorId,
    },
    /// The reply to one of the host's `tools/list` requests arrives.
    Listing {
        /// Where.
        session: SessionId,
        /// For which connector.
        connector: ConnectorId,
        /// Which request: the host's requests for this session and connector are numbered from 0
        /// in the order it sent them since the reset.
        request: u64,
        /// What it returned.
        result: ListResult,
        /// The result's cache hints, for a 2026-07-28 server's listing (protocol 6).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache: Option<CacheHint>,
    },
    /// The TTL of the list the session holds for a 2026-07-28 connector ran out (protocol 6):
    /// time passed, between turns. The list is stale from now on; nothing else happened.
    TtlExpired {
        /// Where.
        session: SessionId,
        /// For which connector.
        connector: ConnectorId,
    },
    /// The session's `subscriptions/listen` stream to a 2026-07-28 server ended (protocol 6): the
    /// server closed it, or the connection failed. Notifications sent meanwhile are lost.
    ListenEnded {
        /// Where.
        session: SessionId,
        /// Which connector's stream.
        connector: ConnectorId,
    },
    /// One of the host's `tools/list` requests has had no answer for longer than any timeout: the
    /// server will never answer it. A host with a timeout gives it up now (as a transport
    /// failure); a host without one goes on waiting.
    Timeout {
        /// Where.
        session: SessionId,
        /// For which connector.
        connector: ConnectorId,
        /// Which request.
        request: u64,
    },
    /// The reply to the session's account read arrives (it was served when the host sent it).
    Account {
        /// Where.
        session: SessionId,
        /// What it returned.
        result: AccountResult,
    },
    /// The user asks the agent something; the host cannot tell which connector it needs.
    Ask {
        /// Where.
        session: SessionId,
    },
    /// The user runs `/mcp`.
    Mcp {
        /// Where.
        session: SessionId,
    },
    /// The user quits and relaunches the session. Requests in flight are lost; the session lists
    /// every connector afresh.
    Restart {
        /// Which.
        session: SessionId,
    },
    /// The user completed a connector's authentication handshake in this session.
    Authenticated {
        /// Where.
        session: SessionId,
        /// Which connector.
        connector: ConnectorId,
    },
    /// The agent calls one of the connector's action tools; `server` is what the server answers.
    CallTool {
        /// Where.
        session: SessionId,
        /// Whose tool.
        connector: ConnectorId,
        /// The server's answer.
        server: CallResult,
    },
    /// The agent calls the connector's `authenticate` stub.
    CallStub {
        /// Where.
        session: SessionId,
        /// Whose stub.
        connector: ConnectorId,
        /// The stub's answer says the connector is already authenticated (the platform, or the
        /// server with an unknown-tool error, says the stub is stale); otherwise it starts the
        /// handshake.
        authenticated: bool,
    },
    /// The agent calls an action tool of the connector that the catalogue does not list.
    CallUnlisted {
        /// Where.
        session: SessionId,
        /// Whose tool it meant.
        connector: ConnectorId,
    },
    /// The agent answers that the connector's capability is not available.
    AnswerNotAvailable {
        /// Where.
        session: SessionId,
        /// About which connector.
        connector: ConnectorId,
    },
    /// The agent relays the notice the host shows for the connector.
    RelayNotice {
        /// Where.
        session: SessionId,
        /// Which connector's notice.
        connector: ConnectorId,
    },
    /// The agent completed the connector's authentication handshake through its stubs, inside the
    /// turn (protocol 5): it called `authenticate`, the user approved, and it called
    /// `complete_authentication`, which succeeded. The connector is authenticated now; the turn
    /// goes on.
    CompleteAuthentication {
        /// Where.
        session: SessionId,
        /// Whose stubs.
        connector: ConnectorId,
        /// The server sent `notifications/tools/list_changed` to this session before the
        /// result of `complete_authentication` (SPEC.md §7.2, S-2); otherwise any notification
        /// of the change arrives later, as a `notification` input, or never.
        list_changed_first: bool,
    },
}

/// A request the host sent while handling an input.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SentRequest {
    /// From which session.
    pub session: SessionId,
    /// To which connector's server.
    pub connector: ConnectorId,
    /// The host re-initialised the transport session before sending it.
    #[serde(default)]
    pub initialize: bool,
    /// The `cursor` the request carries: the `next_cursor` of a first page this session got
    /// from this connector (protocol 4). Absent for a listing from the start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

/// Whether the session has a turn in progress, and whether the agent may act in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TurnState {
    /// No turn.
    None,
    /// A turn in which the agent may act.
    Open,
    /// A turn the host holds until its refresh settles.
    Held,
}

/// A command a host may give its user (SPEC.md §5.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    /// A refresh command: `/mcp`, or an application's `invalidate` (the `mcp` input).
    Refresh,
    /// Quit and relaunch the session (the `restart` input).
    Restart,
    /// Complete a connector's authentication handshake in the session (the `authenticated` input).
    Authenticate,
}

impl Command {
    /// The command an action of the user needs, if any.
    pub fn of(action: coherence_model::Action) -> Option<Command> {
        match action {
            coherence_model::Action::UserMcp { .. } => Some(Command::Refresh),
            coherence_model::Action::UserRestart { .. } => Some(Command::Restart),
            coherence_model::Action::UserAuthenticate { .. } => Some(Command::Authenticate),
            _ => None,
        }
    }

    /// The commands a policy's host has.
    pub fn of_policy(commands: coherence_model::policy::Commands) -> BTreeSet<Command> {
        [
            (commands.refresh, Command::Refresh),
            (commands.restart, Command::Restart),
            (commands.authenticate, Command::Authenticate),
        ]
        .into_iter()
        .filter_map(|(has, c)| has.then_some(c))
        .collect()
    }
}

/// What one session shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionView {
    /// Which session.
    pub session: SessionId,
    /// What the agent is offered, per connector; a connector absent from the map is offered
    /// nothing.
    pub catalogue: BTreeMap<ConnectorId, Listing>,
    /// The notices shown, per connector.
    #[serde(default)]
    pub notices: BTreeMap<ConnectorId, Notice>,
    /// Connectors for which the host keeps no list: it lists them afresh at the next offer to the
    /// language model (protocol 3). They are absent from `catalogue`.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub fetch_at_offer: BTreeSet<ConnectorId>,
    /// The turn.
    pub turn: TurnState,
}

/// What the host reports after an input.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Output {
    /// The answer to `hello`.
    Hello {
        /// The protocol version the host speaks.
        protocol: u32,
        /// The host's name, for reports.
        host: String,
        /// Optional behaviours the host claims (informative; the runner judges behaviour only).
        #[serde(default)]
        claims: Vec<String>,
        /// The commands the host gives its user (protocol 3); absent, every command. The runner
        /// never asks a host to run a command it lacks.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        commands: Option<BTreeSet<Command>>,
    },
    /// The host's state after an input.
    Observation {
        /// `tools/list` requests sent while handling the input, in order.
        #[serde(default)]
        requests: Vec<SentRequest>,
        /// Sessions that sent an account read while handling the input (connector platforms).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        reads: Vec<SessionId>,
        /// `subscriptions/listen` streams asking for `toolsListChanged` that the host opened
        /// while handling the input (protocol 6; 2026-07-28 servers only; at most one open per
        /// session and connector). The server acknowledges the filter at once.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        listens: Vec<LinkRef>,
        /// Every session's view.
        sessions: Vec<SessionView>,
        /// What the turn's answer was, when the input ended a turn: after an agent step, or, for
        /// `aborted` (protocol 3), after a `listing` or `timeout` that made the host abort it, and
        /// for `not_available`, after an `ask`, `listing` or `timeout` at which the host ended the
        /// turn with words that name no connector.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        answer: Option<Answer>,
    },
    /// The host cannot go on.
    Error {
        /// Why.
        message: String,
    },
}

impl Output {
    /// A short name of the variant, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Output::Hello { .. } => "hello",
            Output::Observation { .. } => "observation",
            Output::Error { .. } => "error",
        }
    }
}
