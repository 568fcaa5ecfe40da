//! The state of one account, its connectors' servers, and the host sessions that use them.
//!
//! Every name here is a word of SPEC.md §2 ("State variables"). Collections are fixed-size
//! arrays so that a state is one flat, cheaply cloned and hashed value; the configuration
//! ([`crate::Bounds`]) says how many slots are in use, and unused slots keep their defaults.

use serde::{Deserialize, Serialize};

/// The largest number of connectors a configuration may use.
pub const CONNECTORS_MAX: usize = 4;
/// The largest number of host sessions a configuration may use.
pub const SESSIONS_MAX: usize = 3;
/// How many `tools/list` requests one session may have in flight for one connector.
pub const FETCHES_IN_FLIGHT_MAX: usize = 2;
/// How many undelivered `list_changed` notifications one link holds before further ones
/// coalesce (a contentless notification adds nothing to one already queued).
pub const NOTIFICATIONS_PENDING_MAX: u8 = 2;

/// A connector (an MCP server reached through the account), by index; named in JSON.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectorId(pub u8);

/// A host session (one running CLI, IDE or agent process), by index; named in JSON.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub u8);

const CONNECTOR_NAMES: [&str; CONNECTORS_MAX] = ["gmail", "calendar", "drive", "notion"];
const SESSION_NAMES: [&str; SESSIONS_MAX] = ["cli", "ide", "agent"];

impl ConnectorId {
    /// The slot index of this connector.
    pub fn index(self) -> usize {
        usize::from(self.0)
    }
    /// The name used in stories and fixtures.
    pub fn name(self) -> &'static str {
        CONNECTOR_NAMES[self.index()]
    }
}

impl SessionId {
    /// The slot index of this session.
    pub fn index(self) -> usize {
        usize::from(self.0)
    }
    /// The name used in stories and fixtures.
    pub fn name(self) -> &'static str {
        SESSION_NAMES[self.index()]
    }
}

impl ConnectorId {
    /// The connector of this name.
    pub fn named(name: &str) -> Option<ConnectorId> {
        CONNECTOR_NAMES.iter().position(|n| *n == name).map(|i| ConnectorId(i as u8))
    }
}

impl SessionId {
    /// The session of this name.
    pub fn named(name: &str) -> Option<SessionId> {
        SESSION_NAMES.iter().position(|n| *n == name).map(|i| SessionId(i as u8))
    }
}

macro_rules! serde_by_name {
    ($ty:ident, $what:literal, $names:ident) => {
        impl Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.name())
            }
        }
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let name = String::deserialize(deserializer)?;
                $ty::named(&name).ok_or_else(|| {
                    serde::de::Error::custom(format!(
                        "unknown {} `{name}`; expected one of {}",
                        $what,
                        $names.join(", ")
                    ))
                })
            }
        }
    };
}
serde_by_name!(ConnectorId, "connector", CONNECTOR_NAMES);

macro_rules! schema_by_name {
    ($ty:ident, $names:ident) => {
        impl schemars::JsonSchema for $ty {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($ty).into()
            }
            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({ "type": "string", "enum": $names })
            }
        }
    };
}
schema_by_name!(ConnectorId, CONNECTOR_NAMES);
schema_by_name!(SessionId, SESSION_NAMES);
serde_by_name!(SessionId, "session", SESSION_NAMES);

/// An id past the name table (an in-process host can make one) is shown by number, so that an
/// error about it can be told.
impl std::fmt::Display for ConnectorId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match CONNECTOR_NAMES.get(self.index()) {
            Some(name) => f.write_str(name),
            None => write!(f, "connector #{}", self.0),
        }
    }
}

impl std::fmt::Display for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match SESSION_NAMES.get(self.index()) {
            Some(name) => f.write_str(name),
            None => write!(f, "session #{}", self.0),
        }
    }
}

/// The account's authorization state for one connector (SPEC.md §2.1).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Auth {
    /// Never authenticated: the server lists only the auth stubs.
    #[default]
    Unauthenticated,
    /// Authenticated (on any surface): the server lists the action tools.
    Authenticated,
    /// The token expired: the server lists the auth stubs again.
    Expired,
    /// Access was revoked server-side: the server lists the auth stubs again.
    Revoked,
}

impl Auth {
    /// What `tools/list` returns for a connector in this state.
    pub fn listing(self) -> Listing {
        match self {
            Auth::Authenticated => Listing::Actions,
            Auth::Unauthenticated | Auth::Expired | Auth::Revoked => Listing::Stubs,
        }
    }
}

/// Whether and how a connector's server sends `notifications/tools/list_changed`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Notify {
    /// Declares `tools.listChanged` and sends the notification on every change.
    #[default]
    Advertised,
    /// Sends the notification without declaring the capability.
    Unadvertised,
    /// Never sends it.
    Silent,
}

/// The MCP protocol revision a connector's server speaks with the host (SPEC.md §2.2).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Revision {
    /// The 2025 revisions: an `initialize` handshake, a transport session that can end in 404,
    /// and `list_changed` pushed to every session.
    #[default]
    Handshake,
    /// 2026-07-28: stateless (no handshake, no transport session); `list_changed` only on a
    /// `subscriptions/listen` stream the host opened; `tools/list` results carry a TTL.
    Stateless,
}

/// How long a stateless server's `tools/list` result may be considered fresh (`ttlMs`),
/// abstracted: zero (or absent) is stale at once; long is fresh until the TTL expires, which the
/// model lets happen at any point between turns.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Ttl {
    /// `ttlMs` 0 or absent: every use re-fetches.
    #[default]
    Zero,
    /// A TTL longer than a turn.
    Long,
}

/// The `cacheScope` a 2026-07-28 server puts on its `tools/list` results (SEP-2549). A 2025-era
/// result carries none, which a cache reads as private.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum CacheScope {
    /// For the caller's authorization context only: never served to another.
    #[default]
    Private,
    /// The same for every caller: may be shared across authorization contexts.
    Public,
}

/// How many authorization contexts (users, or tokens) the sessions belong to (SPEC.md §2.6).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Contexts {
    /// Every session is the one account's.
    #[default]
    One,
    /// Session `cli` is the account's; every other session is a second user's, behind the same
    /// host or gateway, whose authorization of each connector is fixed for the run.
    Two,
}

/// The shape of a connector's tool list: the part of it that matters to the invariants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Listing {
    /// Only the auth-handshake stubs (`authenticate`, `complete_authentication`).
    Stubs,
    /// The action tools (`create_draft`, ...).
    Actions,
    /// Some of the action tools, but not the one the user needs: the first page of a paged reply
    /// (`nextCursor`), whose later pages hold it. A host that applies a first page alone offers it.
    SomeActions,
    /// The action tools without the one the user needs, as the whole list: a deploy or a feature
    /// flag withdrew it (the fault `DeployTools`, SPEC.md §4). The other tools stay: a partial
    /// change of the list, with no change of authorization.
    Withdrawn,
}

impl Listing {
    /// The list holds the tool the user needs.
    pub fn has_needed_tool(self) -> bool {
        self == Listing::Actions
    }

    /// The list is the connector's action tools, or some of them: its server knows the caller is
    /// authenticated.
    pub fn authenticated(self) -> bool {
        self != Listing::Stubs
    }
}

/// One connector's account and server state (SPEC.md §2.1, §2.2).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct Connector {
    /// The account's authorization for this connector.
    pub auth: Auth,
    /// The server's tool-list version; it grows by one at every change of the list.
    pub version: u8,
    /// The server's notification behaviour.
    pub notify: Notify,
    /// The server has sent `list_changed` for a change it has not made yet (the fault
    /// `NotifyBeforeUpdate`): the next change of its list sends none.
    #[serde(default)]
    pub announced: bool,
    /// The protocol revision it speaks.
    #[serde(default, skip_serializing_if = "is_default")]
    pub revision: Revision,
    /// The TTL of its `tools/list` results (2026-07-28 only).
    #[serde(default, skip_serializing_if = "is_default")]
    pub ttl: Ttl,
    /// The `cacheScope` of its `tools/list` results (2026-07-28 only).
    #[serde(default, skip_serializing_if = "is_default")]
    pub scope: CacheScope,
    /// The second authorization context's authorization for this connector, fixed for the run
    /// (two contexts only): `Unauthenticated` or `Authenticated`.
    #[serde(default, skip_serializing_if = "is_default")]
    pub other: Auth,
    /// A deploy or a feature flag withdrew the tool the user needs (`DeployTools`): an
    /// authenticated caller is listed [`Listing::Withdrawn`] instead of [`Listing::Actions`].
    #[serde(default, skip_serializing_if = "is_default")]
    pub withdrawn: bool,
}

/// Whether `value` is its type's default: serde's test for fields left out when default.
pub fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

impl Connector {
    /// It speaks 2026-07-28.
    pub fn stateless(&self) -> bool {
        self.revision == Revision::Stateless
    }
}

impl Connector {
    /// What the server's `tools/list` returns now to a caller authorized as `auth`.
    pub fn listing_for(&self, auth: Auth) -> Listing {
        match auth.listing() {
            Listing::Actions if self.withdrawn => Listing::Withdrawn,
            listing => listing,
        }
    }

    /// What the server's `tools/list` returns now to the account.
    pub fn listing(&self) -> Listing {
        self.listing_for(self.auth)
    }
}

/// A `tools/list` failure, injected as a fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ListFailure {
    /// HTTP 401 from the server although `initialize` succeeded.
    Unauthorized,
    /// The transport failed (connection reset, timeout).
    Transport,
    /// The server no longer knows the transport session (HTTP 404): the host must re-initialise.
    SessionNotFound,
}

/// The reply a `tools/list` request will deliver.
///
/// The server answers from its state when it receives the request (requests are served in
/// the order sent); the reply may be delivered after later changes, so it can lag them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    /// The list as the server had it when it served the request (`SomeActions`: its first page,
    /// with a cursor to the rest, served with it: SPEC.md §4).
    Listed {
        /// Stubs, actions, or some actions (a first page).
        listing: Listing,
        /// The server's version at serve time.
        version: u8,
    },
    /// The request failed.
    Failed(ListFailure),
    /// The request will never be answered (a hung streamable-HTTP request): only the host's own
    /// timeout ends it.
    Hung,
    /// A hung request past every timeout, in a host that has none: nothing will ever arrive, and
    /// the host still waits for it.
    Lost,
}

/// A `tools/list` request in flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Fetch {
    /// What will be delivered.
    pub reply: Reply,
    /// A reply to a later request of the same link has already been applied: this reply is
    /// older than what the catalogue shows. A host tells this from its own request order
    /// (a generation counter); it never sees server versions.
    pub superseded: bool,
}

/// What a host's catalogue holds for one connector: what the language model is offered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Entry {
    /// The tools offered.
    pub listing: Listing,
    /// The server version those tools came from (the oracle's bookkeeping: hosts never see it).
    pub version: u8,
}

/// Why a notice is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NoticeReason {
    /// The connector needs (re-)authentication.
    NeedsAuthentication,
    /// The connector changed on another surface since the catalogue was built.
    ChangedElsewhere,
    /// A refresh of the connector's tools failed.
    RefreshFailed,
}

/// A recovery step a notice or a tool result names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Recovery {
    /// Quit and relaunch the session.
    Restart,
    /// Run `/mcp` (or the host's equivalent refresh command).
    Refresh,
    /// Complete the connector's authentication handshake in this session.
    Authenticate,
}

/// A notice shown to the user and the language model about one connector.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Notice {
    /// Why.
    pub reason: NoticeReason,
    /// What to do.
    pub recovery: Recovery,
}

/// One session's view of one connector.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct Link {
    /// The catalogue entry, `None` until the first successful `tools/list` of this session.
    pub entry: Option<Entry>,
    /// The notice shown for this connector, if any.
    pub notice: Option<Notice>,
    /// `tools/list` requests in flight, oldest first.
    pub fetches: [Option<Fetch>; FETCHES_IN_FLIGHT_MAX],
    /// A refresh was asked for while the request slots were busy; the host re-lists as soon
    /// as a reply arrives.
    pub refetch_queued: bool,
    /// Undelivered `list_changed` notifications.
    pub notifications: u8,
    /// The transport session ended server-side (HTTP 404) and the host has not re-initialised.
    pub transport_lost: bool,
    /// Oracle bookkeeping for INV-7: the host was given a reason to refresh (a notification,
    /// `/mcp`, a restart, a failed call) since the server's list last changed.
    pub triggered: bool,
    /// Oracle bookkeeping for INV-6: the user performed the recovery step a notice named, and
    /// nothing has changed or failed since.
    pub following: bool,
    /// Oracle bookkeeping for INV-10: the session has had a reason to refresh this connector that
    /// it can act on (SPEC.md §2.5) since the server's list last changed, and no fault has touched
    /// the link since.
    pub due: bool,
    /// Oracle bookkeeping for INV-9: the host has evidence of a difference on this link (a
    /// `list_changed`, an account read showing one, a stale stub called) that nothing has answered
    /// since (a successful `tools/list` reply, an account read showing no difference, a restart).
    pub evidence: bool,
    /// Oracle bookkeeping for INV-9: a request or call on this link failed, and no `tools/list`
    /// has succeeded since (an account read does not answer a failure).
    pub failed: bool,
    /// Oracle bookkeeping for INV-12: the newest `tools/list` reply this link has received since
    /// the session (re)started, applied or not.
    pub newest: Option<Entry>,
    /// The host holds no catalogue for this connector: it fetches the list afresh at the next
    /// offer (SPEC.md §2.3; the designs of §5.2). `entry` is then `None`.
    pub lazy: bool,
    /// A `subscriptions/listen` stream asking for `toolsListChanged` is open (2026-07-28 only).
    #[serde(default, skip_serializing_if = "is_default")]
    pub listening: bool,
    /// The entry came from a result whose TTL has not expired (2026-07-28 only).
    #[serde(default, skip_serializing_if = "is_default")]
    pub fresh: bool,
    /// Oracle bookkeeping for INV-15: the entry was served from a reply to another session (a
    /// cache shared between sessions, SPEC.md §5.1).
    #[serde(default, skip_serializing_if = "is_default")]
    pub shared: bool,
    /// Oracle bookkeeping for INV-15: that reply was private to another authorization context.
    #[serde(default, skip_serializing_if = "is_default")]
    pub foreign: bool,
}

impl Link {
    /// How many requests are in flight.
    pub fn fetch_count(&self) -> usize {
        self.fetches.iter().filter(|f| f.is_some()).count()
    }

    /// Whether some request in flight will never be answered.
    pub fn hung(&self) -> bool {
        self.fetches.iter().flatten().any(|f| matches!(f.reply, Reply::Hung | Reply::Lost))
    }

    /// Nothing more will arrive: no notification undelivered, and no request in flight or queued
    /// but those past every timeout that the host still waits for (a queued refetch waits for
    /// them too, so it will never be sent).
    pub fn settled(&self) -> bool {
        let lost = self.fetches.iter().flatten().filter(|f| f.reply == Reply::Lost).count();
        self.notifications == 0 && self.fetch_count() == lost && (lost > 0 || !self.refetch_queued)
    }

    /// What the language model is offered for this connector.
    pub fn offered(&self) -> Option<Listing> {
        self.entry.map(|e| e.listing)
    }
}

/// Whether the tool the user needs existed on the asked-for connector's server for the whole turn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Availability {
    /// Listed (the connector authenticated, the tool not withdrawn) from the question to the answer.
    Available,
    /// Not listed from the question to the answer.
    Absent,
    /// The connector changed during the turn.
    Changed,
}

/// A user turn in progress: the user asked the agent for one connector's capability.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Turn {
    /// The connector whose capability the user wants. The host cannot see it.
    pub connector: ConnectorId,
    /// The host holds the turn: the agent cannot act until the host releases it.
    pub held: bool,
    /// The host has already refreshed once on the agent's behalf; the agent's next step answers.
    pub retried: bool,
    /// The oracle's record of the connector over the turn.
    pub availability: Availability,
    /// The connector changed during the turn and the session has not been told of it since (no
    /// `list_changed`, no reply served after the change, no failed call). Oracle bookkeeping.
    pub unsignalled: bool,
}

/// The account read a host may make at a turn's start (SPEC.md §2.4): served when sent, delivered
/// later, so it may lag; it may fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AccountRead {
    /// The account as it was when the read was served: bit `c` is set when connector `c` was
    /// authenticated, and bit `4 + c` when a deploy had withdrawn a tool of it (a platform that
    /// proxies its connectors knows what they list).
    Served(u8),
    /// The read failed (a fault).
    Failed,
}

impl AccountRead {
    /// A snapshot of session `s`'s account's connectors in `state`.
    pub fn of(state: &State, s: SessionId) -> AccountRead {
        let mut mask = 0u8;
        for c in 0..state.shape.connectors {
            match state.listing(s, ConnectorId(c)) {
                Listing::Actions => mask |= 1 << c,
                Listing::Withdrawn => mask |= 1 << c | 1 << (CONNECTORS_MAX as u8 + c),
                Listing::Stubs | Listing::SomeActions => {}
            }
        }
        AccountRead::Served(mask)
    }

    /// What the read says the server lists for `c`, if it succeeded.
    pub fn listing(self, c: ConnectorId) -> Option<Listing> {
        let withdrawn = 1 << (CONNECTORS_MAX as u8 + c.0);
        match self {
            AccountRead::Served(mask) if mask & withdrawn != 0 => Some(Listing::Withdrawn),
            AccountRead::Served(mask) if mask & (1 << c.0) != 0 => Some(Listing::Actions),
            AccountRead::Served(_) => Some(Listing::Stubs),
            AccountRead::Failed => None,
        }
    }

    /// The same read with connector `c` renamed `to_connector[c]` (slots beyond the slice keep
    /// their index).
    pub fn renamed(self, to_connector: &[u8]) -> AccountRead {
        let AccountRead::Served(old) = self else { return self };
        let mut mask = 0u8;
        for c in 0..CONNECTORS_MAX {
            let nc = to_connector.get(c).map_or(c, |&nc| usize::from(nc));
            for half in [0, CONNECTORS_MAX] {
                if old & (1 << (half + c)) != 0 {
                    mask |= 1 << (half + nc);
                }
            }
        }
        AccountRead::Served(mask)
    }
}

/// One host session.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct Session {
    /// The user turn in progress, if any.
    pub turn: Option<Turn>,
    /// The account read in flight, if any.
    pub read: Option<AccountRead>,
}

/// What a stub (`authenticate`) call returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StubReply {
    /// The handshake started: "open this URL to authenticate".
    AuthPrompt,
    /// An opaque failure ("already authenticated", "error").
    Opaque,
    /// "Authenticated elsewhere; <recovery> to load the tools."
    Guidance(Recovery),
}

/// How the agent's turn ended: what the user reads (SPEC.md §3, the user-visible moment).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    /// The agent called an action tool and it worked.
    UsedTool,
    /// The agent called an action tool and it failed; the host may have named a recovery.
    ToolFailed(Option<Recovery>),
    /// The agent called a stub and relayed its reply.
    StubReplied(StubReply),
    /// The agent called a tool the catalogue does not list; the host said "no such tool".
    NoSuchTool,
    /// The agent called a tool the catalogue does not list; the host ran another connector's
    /// tool of the same name.
    Misrouted,
    /// The agent said the capability is not available.
    NotAvailable,
    /// The agent relayed the connector's notice.
    RelayedNotice,
    /// The host aborted the turn with an error naming a connector whose `tools/list` failed; the
    /// language model was not offered anything more.
    Aborted(ConnectorId),
}

impl Answer {
    /// The recovery step the answer itself carries, if any.
    pub fn recovery(self) -> Option<Recovery> {
        match self {
            Answer::ToolFailed(r) => r,
            Answer::StubReplied(StubReply::Guidance(r)) => Some(r),
            _ => None,
        }
    }
}

/// What the agent did in the step that ended its turn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Call {
    /// It called one of the connector's action tools the catalogue offers.
    Tool,
    /// It called the connector's `authenticate` stub.
    Stub,
    /// It called an action tool of the connector that the catalogue does not list.
    Unlisted,
    /// It called nothing: it said "not available", or relayed a notice.
    Nothing,
}

/// A user-visible moment: the agent answered a turn. Recorded in the state that follows the
/// answer (and only there), so that invariants can judge it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Moment {
    /// Where.
    pub session: SessionId,
    /// About what.
    pub connector: ConnectorId,
    /// What the agent did last.
    pub call: Call,
    /// The connector over the turn.
    pub availability: Availability,
    /// Every change of the connector during the turn was signalled to the session before the
    /// answer (true when nothing changed).
    pub signalled: bool,
    /// The connector's server lists the tool the user needs at the answer (it is authenticated,
    /// and no deploy has withdrawn the tool).
    pub listed: bool,
    /// Before the agent's last step, the session had an unfaulted reason to refresh the connector
    /// since its list last changed (the link was due, INV-10).
    pub due: bool,
    /// What the catalogue offered for the connector at the answer, after the host reacted.
    pub offered: Option<Listing>,
    /// The notice shown for the connector at the answer.
    pub notice: Option<Notice>,
    /// The answer.
    pub answer: Answer,
}

impl Moment {
    /// The user and the model were told of the gap and a recovery step.
    pub fn told(&self) -> bool {
        self.notice.is_some() || self.answer.recovery().is_some()
    }
}

/// A `tools/list` reply delivered to a host, and what the host did with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Applied {
    /// Where.
    pub session: SessionId,
    /// Which connector.
    pub connector: ConnectorId,
    /// What the catalogue offered before.
    pub before: Option<Listing>,
    /// The reply applied, with the server version it was served at.
    pub reply: Entry,
    /// The newest reply the link had received before this one (oracle bookkeeping).
    pub newest: Option<Entry>,
    /// The server's version when the reply was applied.
    pub server: u8,
}

impl Applied {
    /// The reply changed what the catalogue offers.
    pub fn changed(&self) -> bool {
        self.before != Some(self.reply.listing)
    }

    /// The reply is older than one the link had already received.
    pub fn outdated(&self) -> bool {
        self.newest.is_some_and(|n| n.version > self.reply.version)
    }

    /// The reply lists differently from the newest one the link had already received.
    pub fn contradicts_newest(&self) -> bool {
        self.newest.is_some_and(|n| n.listing != self.reply.listing)
    }
}

/// Something the last step did that an invariant judges and that the state alone would not
/// show. Cleared by every step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// The agent answered a turn.
    Answered(Moment),
    /// A `tools/list` reply was applied to a catalogue entry.
    Applied(Applied),
    /// The agent called a stub, and the host re-listed instead of replying.
    StubRefreshed {
        /// Where.
        session: SessionId,
        /// Which connector.
        connector: ConnectorId,
        /// The connector since the question.
        availability: Availability,
    },
}

/// What a host mutant with memory keeps between steps (SPEC.md §11.4): how often its capped
/// decision was taken, and the re-lists it decided but has not sent yet. Never touched by a policy
/// or by a mutant without memory, so it stays at its default, and packs to zero bits set, in every
/// state they reach.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct Memo {
    /// Times the capped decision was taken, up to [`Memo::CAP`].
    pub taken: u8,
    /// Re-lists decided and not yet sent, one bit a link: bit `s * CONNECTORS_MAX + c`. They go
    /// out once the host has handled the next action it sees.
    pub late: u16,
}

impl Memo {
    /// How many times a capped decision is taken before it never is again.
    pub const CAP: u8 = 1;

    /// The bit of link `s`/`c` in [`Memo::late`].
    pub fn bit(s: SessionId, c: ConnectorId) -> u16 {
        1 << (s.index() * CONNECTORS_MAX + c.index())
    }

    /// The links whose bits are set in `late`, session-major.
    pub fn links(late: u16) -> impl Iterator<Item = (SessionId, ConnectorId)> {
        (0..SESSIONS_MAX * CONNECTORS_MAX)
            .filter(move |k| late & (1 << k) != 0)
            .map(|k| (SessionId((k / CONNECTORS_MAX) as u8), ConnectorId((k % CONNECTORS_MAX) as u8)))
    }
}

/// How much of each budget the run has used (SPEC.md §4, the bounds).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct Spent {
    /// User turns asked.
    pub turns: u8,
    /// Auth changes: web authenticate/revoke, token expiry, in-session authentication.
    pub auth_changes: u8,
    /// Faults injected.
    pub faults: u8,
    /// User commands: `/mcp` and restarts.
    pub commands: u8,
}

/// How many connector and session slots a state uses; fixed for a run.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct Shape {
    /// Connector slots in use.
    pub connectors: u8,
    /// Session slots in use.
    pub sessions: u8,
    /// The authorization contexts the sessions belong to.
    #[serde(default, skip_serializing_if = "is_default")]
    pub contexts: Contexts,
}

impl Shape {
    /// The authorization context of session `s`: 0, the account's, or 1, the second user's.
    pub fn context(self, s: SessionId) -> u8 {
        match self.contexts {
            Contexts::One => 0,
            Contexts::Two => u8::from(s.0 > 0),
        }
    }
}

/// The whole system state.
///
/// Equality and order compare every slot; hashing covers only the slots in use, which is
/// consistent with equality because unused slots always hold their defaults (a structural fact
/// the property tests check), and several times faster for small bounds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
pub struct State {
    /// Slots in use.
    pub shape: Shape,
    /// The account's connectors, with their servers.
    pub connectors: [Connector; CONNECTORS_MAX],
    /// The host sessions.
    pub sessions: [Session; SESSIONS_MAX],
    /// `links[s][c]`: session `s`'s view of connector `c`.
    pub links: [[Link; CONNECTORS_MAX]; SESSIONS_MAX],
    /// Budgets used.
    pub spent: Spent,
    /// What the last step did, when an invariant needs to see it.
    pub event: Option<Event>,
    /// A host mutant's memory; the default for every policy.
    #[serde(default, skip_serializing_if = "is_default")]
    pub memo: Memo,
}

impl std::hash::Hash for State {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        let (n, m) = (usize::from(self.shape.connectors), usize::from(self.shape.sessions));
        self.shape.hash(h);
        self.connectors[..n].hash(h);
        self.sessions[..m].hash(h);
        for links in &self.links[..m] {
            links[..n].hash(h);
        }
        self.spent.hash(h);
        self.event.hash(h);
        // Only a mutant with memory sets it: every other state hashes as it did without it.
        if self.memo != Memo::default() {
            self.memo.hash(h);
        }
    }
}

impl State {
    /// One connector.
    pub fn connector(&self, c: ConnectorId) -> &Connector {
        &self.connectors[c.index()]
    }
    /// One link.
    pub fn link(&self, s: SessionId, c: ConnectorId) -> &Link {
        &self.links[s.index()][c.index()]
    }
    /// One link, mutably.
    pub fn link_mut(&mut self, s: SessionId, c: ConnectorId) -> &mut Link {
        &mut self.links[s.index()][c.index()]
    }
    /// One session.
    pub fn session(&self, s: SessionId) -> &Session {
        &self.sessions[s.index()]
    }
    /// The authorization context of session `s`: 0, the account's, or 1, the second user's.
    pub fn context(&self, s: SessionId) -> u8 {
        self.shape.context(s)
    }
    /// Connector `c`'s authorization in session `s`'s context.
    pub fn auth(&self, s: SessionId, c: ConnectorId) -> Auth {
        match self.context(s) {
            0 => self.connector(c).auth,
            _ => self.connector(c).other,
        }
    }
    /// What connector `c`'s server lists to session `s` now.
    pub fn listing(&self, s: SessionId, c: ConnectorId) -> Listing {
        self.connector(c).listing_for(self.auth(s, c))
    }
}
