//! The transition system: actions, their guards, and the host's reactions (SPEC.md §3).

use crate::invariants;
use crate::mutant::{Mutant, Operator, Site};
use crate::policy::{
    Catalogue, FetchMode, HostPolicy, Listen, OnListChanged, OnReadFailure, OnTurn, OnUnknownTool, Share, TtlUse,
};
use crate::state::*;
use serde::{Deserialize, Serialize};
use stateright::{Model, Property};

/// The bounds within which the model is checked (SPEC.md §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Bounds {
    /// Connectors on the account.
    pub connectors: u8,
    /// Concurrent host sessions on the account.
    pub sessions: u8,
    /// User turns, over all sessions.
    pub turns: u8,
    /// Auth changes: web authenticate and revoke, token expiry, in-session authentication, silent
    /// token refresh.
    pub auth_changes: u8,
    /// Injected faults: lost, duplicated or early notifications, dropped notification streams,
    /// silent token refreshes, failed, hung or late `tools/list`, lost transport sessions, failed
    /// account reads.
    pub faults: u8,
    /// User commands: `/mcp` and restarts.
    pub commands: u8,
    /// Reduce the state space by symmetry over connectors and sessions.
    pub symmetry: bool,
    /// The servers and network the model admits.
    #[serde(default)]
    pub servers: Servers,
    /// The protocol revisions the connectors' servers speak.
    #[serde(default, skip_serializing_if = "Revisions::is_handshake")]
    pub revisions: Revisions,
    /// The authorization contexts the sessions belong to (two: `cli` is the account's, every
    /// other session a second user's).
    #[serde(default, skip_serializing_if = "is_one")]
    pub contexts: Contexts,
}

fn is_one(contexts: &Contexts) -> bool {
    *contexts == Contexts::One
}

/// The protocol revisions the model's servers speak (SPEC.md §4): every connector chooses among
/// them in the initial states.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Revisions {
    /// The 2025 revisions only (`initialize`, transport sessions, pushed `list_changed`).
    #[default]
    Handshake,
    /// 2026-07-28 only: stateless servers, listen streams, TTLs.
    Stateless,
    /// Either, connector by connector: a host that talks to servers of both eras at once.
    Mixed,
}

impl Revisions {
    fn is_handshake(&self) -> bool {
        *self == Revisions::Handshake
    }

    /// The revisions a connector may speak.
    pub fn each(self) -> &'static [Revision] {
        match self {
            Revisions::Handshake => &[Revision::Handshake],
            Revisions::Stateless => &[Revision::Stateless],
            Revisions::Mixed => &[Revision::Handshake, Revision::Stateless],
        }
    }
}

/// The servers and network the model admits (SPEC.md §4, §7.2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Servers {
    /// Any server: silent, unadvertised or advertised, and notifications may be lost or still in
    /// flight when the user asks.
    #[default]
    Any,
    /// Servers that meet SPEC.md's requirements S-1 and S-2: every server declares
    /// `tools.listChanged` and notifies every change, no notification is lost, and a notification
    /// reaches a session before its user's next question.
    Reliable,
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds::DEFAULT
    }
}

/// Why a set of bounds cannot be checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoundsError(pub String);

impl std::fmt::Display for BoundsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BoundsError {}

/// The largest per-run budget of turns, auth changes, faults or commands. Each budget is a
/// depth bound: beyond it, the state space outgrows any machine this runs on.
pub const BUDGET_MAX: u8 = 6;

impl Bounds {
    /// The default bounds: what `coherence check` uses without flags.
    pub const DEFAULT: Bounds = Bounds {
        connectors: 2,
        sessions: 1,
        turns: 2,
        auth_changes: 2,
        faults: 1,
        commands: 1,
        symmetry: true,
        servers: Servers::Any,
        revisions: Revisions::Handshake,
        contexts: Contexts::One,
    };

    /// `connectors` and `sessions` with every budget at its largest ([`BUDGET_MAX`]), any
    /// server, no symmetry: the bounds of a run whose length nothing but the budgets limits.
    pub const fn widest(connectors: u8, sessions: u8) -> Bounds {
        Bounds {
            connectors,
            sessions,
            turns: BUDGET_MAX,
            auth_changes: BUDGET_MAX,
            faults: BUDGET_MAX,
            commands: BUDGET_MAX,
            symmetry: false,
            servers: Servers::Any,
            revisions: Revisions::Handshake,
            contexts: Contexts::One,
        }
    }

    /// These bounds with two authorization contexts (SPEC.md §4.1): two sessions, one for each,
    /// and one connector, which is all that sharing a cache between users needs; the budgets stay.
    pub const fn with_two_contexts(self) -> Bounds {
        Bounds { connectors: 1, sessions: 2, contexts: Contexts::Two, ..self }
    }

    /// Checks that the bounds are within what the model can represent.
    pub fn validate(&self) -> Result<(), BoundsError> {
        let within = |what: &str, value: u8, min: u8, max: u8| {
            if (min..=max).contains(&value) {
                Ok(())
            } else {
                Err(BoundsError(format!("{what} must be between {min} and {max}, got {value}")))
            }
        };
        within("connectors", self.connectors, 1, CONNECTORS_MAX as u8)?;
        within("sessions", self.sessions, 1, SESSIONS_MAX as u8)?;
        within("turns", self.turns, 1, BUDGET_MAX)?;
        within("auth changes", self.auth_changes, 0, BUDGET_MAX)?;
        within("faults", self.faults, 0, BUDGET_MAX)?;
        within("commands", self.commands, 0, BUDGET_MAX)?;
        if self.contexts == Contexts::Two && self.sessions < 2 {
            return Err(BoundsError(format!(
                "two authorization contexts need at least 2 sessions (one for each), got {}",
                self.sessions
            )));
        }
        Ok(())
    }

    /// The connectors in use.
    pub fn connector_ids(&self) -> impl Iterator<Item = ConnectorId> + Clone {
        (0..self.connectors).map(ConnectorId)
    }

    /// The sessions in use.
    pub fn session_ids(&self) -> impl Iterator<Item = SessionId> + Clone {
        (0..self.sessions).map(SessionId)
    }
}

/// A step of the system. Each variant is an action of SPEC.md §3, under the same name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    // The web surface and the environment.
    /// The user authenticates a connector on the web surface.
    WebAuthenticate {
        /// Which.
        connector: ConnectorId,
    },
    /// Access to a connector is revoked on the web surface or server-side.
    WebRevoke {
        /// Which.
        connector: ConnectorId,
    },
    /// A connector's token expires.
    TokenExpire {
        /// Which.
        connector: ConnectorId,
    },
    // The network.
    /// A `list_changed` notification reaches a session.
    DeliverNotification {
        /// Where.
        session: SessionId,
        /// From which connector.
        connector: ConnectorId,
    },
    /// A `tools/list` reply reaches a session.
    DeliverListing {
        /// Where.
        session: SessionId,
        /// For which connector.
        connector: ConnectorId,
        /// Which of the requests in flight (0 is the oldest).
        slot: u8,
    },
    /// The reply to a session's account read arrives (hosts that read the account at a turn's
    /// start).
    DeliverAccount {
        /// Where.
        session: SessionId,
    },
    /// The TTL of the list a session holds for a 2026-07-28 connector runs out: the list is
    /// stale from now on.
    ExpireTtl {
        /// Where.
        session: SessionId,
        /// For which connector.
        connector: ConnectorId,
    },
    /// The host's timeout for a `tools/list` request that never returns expires; the host gives
    /// the request up as a transport failure.
    TimeOutListing {
        /// Where.
        session: SessionId,
        /// For which connector.
        connector: ConnectorId,
        /// Which request.
        slot: u8,
    },
    // Faults.
    /// Fault: a `list_changed` notification is lost.
    LoseNotification {
        /// Where.
        session: SessionId,
        /// From which connector.
        connector: ConnectorId,
    },
    /// Fault: a `list_changed` notification is duplicated.
    DuplicateNotification {
        /// Where.
        session: SessionId,
        /// From which connector.
        connector: ConnectorId,
    },
    /// Fault: a session's notification stream drops (an SSE stream ends): every undelivered
    /// `list_changed` of the link is lost at once.
    LoseNotificationStream {
        /// Where.
        session: SessionId,
        /// Which connector's stream.
        connector: ConnectorId,
    },
    /// Fault: a server sends `list_changed` before its list has changed (a deploy that notifies
    /// first, an instance behind a load balancer that is not yet updated): a re-list that follows
    /// reads the old list, and the change, when it comes, is not notified again.
    NotifyBeforeUpdate {
        /// Which connector's server.
        connector: ConnectorId,
    },
    /// Fault: an expired token is refreshed without the user (a background OAuth refresh): the
    /// server lists the action tools again, and no server notifies it.
    RefreshTokenSilently {
        /// Which connector.
        connector: ConnectorId,
    },
    /// Fault: a `tools/list` request in flight fails.
    FailListing {
        /// Where.
        session: SessionId,
        /// For which connector.
        connector: ConnectorId,
        /// Which request.
        slot: u8,
        /// How.
        failure: ListFailure,
    },
    /// Fault: the server ends the session's transport session (later requests get 404).
    LoseTransportSession {
        /// Where.
        session: SessionId,
        /// Which connector's server.
        connector: ConnectorId,
    },
    /// Fault: the server serves a `tools/list` request late, after a later request of the same
    /// link: its reply says what the server lists now.
    ServeLate {
        /// Where.
        session: SessionId,
        /// For which connector.
        connector: ConnectorId,
        /// Which request (an earlier one than some other in flight).
        slot: u8,
    },
    /// A server answers a `tools/list` request in flight with the first page of its action tools
    /// and a `nextCursor` to the rest (legitimate: spends the fault budget as a bound, excuses
    /// nothing).
    PageListing {
        /// Where.
        session: SessionId,
        /// For which connector.
        connector: ConnectorId,
        /// Which request.
        slot: u8,
    },
    /// Fault: a `tools/list` request in flight will never be answered.
    HangListing {
        /// Where.
        session: SessionId,
        /// For which connector.
        connector: ConnectorId,
        /// Which request.
        slot: u8,
    },
    /// Fault: a session's account read fails.
    FailAccountRead {
        /// Where.
        session: SessionId,
    },
    /// A deploy or a feature flag withdraws the tool the user needs from an authenticated
    /// connector's list, or restores it: the list changes, partly, with no change of
    /// authorization, and the server notifies it as any change. Not a defect, but bounded by
    /// the fault budget, and admitted only when asked for (SPEC.md §4).
    DeployTools {
        /// Which.
        connector: ConnectorId,
    },
    // The user.
    /// The user asks the agent for a connector's capability.
    UserAsk {
        /// Where.
        session: SessionId,
        /// The connector the user needs.
        connector: ConnectorId,
    },
    /// The user runs `/mcp`.
    UserMcp {
        /// Where.
        session: SessionId,
    },
    /// The user quits and relaunches the session.
    UserRestart {
        /// Which.
        session: SessionId,
    },
    /// The user completes a connector's authentication handshake inside the session.
    UserAuthenticate {
        /// Where.
        session: SessionId,
        /// Which connector.
        connector: ConnectorId,
    },
    // The agent (the language model), acting on the turn in progress.
    /// The agent calls one of the connector's action tools.
    AgentCallTool {
        /// Where.
        session: SessionId,
    },
    /// The agent calls the connector's `authenticate` stub.
    AgentCallStub {
        /// Where.
        session: SessionId,
    },
    /// The agent calls an action tool the catalogue does not list (it guesses its name).
    AgentCallUnlisted {
        /// Where.
        session: SessionId,
    },
    /// The agent answers that the capability is not available.
    AgentAnswerNotAvailable {
        /// Where.
        session: SessionId,
    },
    /// The agent relays the connector's notice.
    AgentRelayNotice {
        /// Where.
        session: SessionId,
    },
    /// The agent completes the connector's authentication handshake inside the turn: it called
    /// `authenticate`, the user approved, and it called `complete_authentication` (admitted unless
    /// the model's `agent_handshake` is off). The turn goes on.
    AgentCompleteAuthentication {
        /// Where.
        session: SessionId,
    },
}

impl Action {
    /// The action's name, as SPEC.md spells it.
    pub fn name(&self) -> &'static str {
        match self {
            Action::WebAuthenticate { .. } => "WebAuthenticate",
            Action::WebRevoke { .. } => "WebRevoke",
            Action::TokenExpire { .. } => "TokenExpire",
            Action::DeliverNotification { .. } => "DeliverNotification",
            Action::DeliverListing { .. } => "DeliverListing",
            Action::DeliverAccount { .. } => "DeliverAccount",
            Action::ExpireTtl { .. } => "ExpireTtl",
            Action::TimeOutListing { .. } => "TimeOutListing",
            Action::LoseNotification { .. } => "LoseNotification",
            Action::DuplicateNotification { .. } => "DuplicateNotification",
            Action::LoseNotificationStream { .. } => "LoseNotificationStream",
            Action::NotifyBeforeUpdate { .. } => "NotifyBeforeUpdate",
            Action::RefreshTokenSilently { .. } => "RefreshTokenSilently",
            Action::FailListing { .. } => "FailListing",
            Action::LoseTransportSession { .. } => "LoseTransportSession",
            Action::HangListing { .. } => "HangListing",
            Action::ServeLate { .. } => "ServeLate",
            Action::PageListing { .. } => "PageListing",
            Action::FailAccountRead { .. } => "FailAccountRead",
            Action::DeployTools { .. } => "DeployTools",
            Action::UserAsk { .. } => "UserAsk",
            Action::UserMcp { .. } => "UserMcp",
            Action::UserRestart { .. } => "UserRestart",
            Action::UserAuthenticate { .. } => "UserAuthenticate",
            Action::AgentCallTool { .. } => "AgentCallTool",
            Action::AgentCallStub { .. } => "AgentCallStub",
            Action::AgentCallUnlisted { .. } => "AgentCallUnlisted",
            Action::AgentAnswerNotAvailable { .. } => "AgentAnswerNotAvailable",
            Action::AgentRelayNotice { .. } => "AgentRelayNotice",
            Action::AgentCompleteAuthentication { .. } => "AgentCompleteAuthentication",
        }
    }

    /// Every action name, in SPEC.md order.
    pub const NAMES: [&'static str; 30] = [
        "WebAuthenticate",
        "WebRevoke",
        "TokenExpire",
        "DeliverNotification",
        "DeliverListing",
        "DeliverAccount",
        "ExpireTtl",
        "TimeOutListing",
        "LoseNotification",
        "DuplicateNotification",
        "LoseNotificationStream",
        "NotifyBeforeUpdate",
        "RefreshTokenSilently",
        "FailListing",
        "LoseTransportSession",
        "HangListing",
        "ServeLate",
        "PageListing",
        "FailAccountRead",
        "DeployTools",
        "UserAsk",
        "UserMcp",
        "UserRestart",
        "UserAuthenticate",
        "AgentCallTool",
        "AgentCallStub",
        "AgentCallUnlisted",
        "AgentAnswerNotAvailable",
        "AgentRelayNotice",
        "AgentCompleteAuthentication",
    ];

    /// Whether the host sees the action happen in `state` (something reaches it: a message, a
    /// reply, the user, the agent): not a change on the web surface or a server, nor a fault it
    /// learns of only through what follows (a lost notification, a reply that will fail or hang).
    /// A 2026-07-28 host sees its listen stream end; a 2025 one does not. The conformance runner
    /// gives a host an input for exactly these.
    pub fn reaches_host(&self, state: &State) -> bool {
        match *self {
            Action::WebAuthenticate { .. }
            | Action::WebRevoke { .. }
            | Action::TokenExpire { .. }
            | Action::LoseNotification { .. }
            | Action::DuplicateNotification { .. }
            | Action::NotifyBeforeUpdate { .. }
            | Action::RefreshTokenSilently { .. }
            | Action::FailListing { .. }
            | Action::LoseTransportSession { .. }
            | Action::HangListing { .. }
            | Action::ServeLate { .. }
            | Action::PageListing { .. }
            | Action::FailAccountRead { .. }
            | Action::DeployTools { .. } => false,
            Action::LoseNotificationStream { connector, .. } => state.connector(connector).stateless(),
            Action::ExpireTtl { .. }
            | Action::DeliverNotification { .. }
            | Action::DeliverListing { .. }
            | Action::TimeOutListing { .. }
            | Action::DeliverAccount { .. }
            | Action::UserAsk { .. }
            | Action::UserMcp { .. }
            | Action::UserRestart { .. }
            | Action::UserAuthenticate { .. }
            | Action::AgentCallTool { .. }
            | Action::AgentCallStub { .. }
            | Action::AgentCallUnlisted { .. }
            | Action::AgentAnswerNotAvailable { .. }
            | Action::AgentRelayNotice { .. }
            | Action::AgentCompleteAuthentication { .. } => true,
        }
    }

    /// The session the action happens in; `None` for the web surface and the environment.
    pub fn session(&self) -> Option<SessionId> {
        match *self {
            Action::WebAuthenticate { .. }
            | Action::WebRevoke { .. }
            | Action::TokenExpire { .. }
            | Action::NotifyBeforeUpdate { .. }
            | Action::RefreshTokenSilently { .. }
            | Action::DeployTools { .. } => None,
            Action::DeliverNotification { session, .. }
            | Action::DeliverListing { session, .. }
            | Action::DeliverAccount { session }
            | Action::ExpireTtl { session, .. }
            | Action::TimeOutListing { session, .. }
            | Action::LoseNotification { session, .. }
            | Action::DuplicateNotification { session, .. }
            | Action::LoseNotificationStream { session, .. }
            | Action::FailListing { session, .. }
            | Action::LoseTransportSession { session, .. }
            | Action::HangListing { session, .. }
            | Action::ServeLate { session, .. }
            | Action::PageListing { session, .. }
            | Action::FailAccountRead { session }
            | Action::UserAsk { session, .. }
            | Action::UserMcp { session }
            | Action::UserRestart { session }
            | Action::UserAuthenticate { session, .. }
            | Action::AgentCallTool { session }
            | Action::AgentCallStub { session }
            | Action::AgentCallUnlisted { session }
            | Action::AgentAnswerNotAvailable { session }
            | Action::AgentRelayNotice { session }
            | Action::AgentCompleteAuthentication { session } => Some(session),
        }
    }

    /// Whether the agent takes this action, in a turn.
    pub fn is_agent(&self) -> bool {
        matches!(
            self,
            Action::AgentCallTool { .. }
                | Action::AgentCallStub { .. }
                | Action::AgentCallUnlisted { .. }
                | Action::AgentAnswerNotAvailable { .. }
                | Action::AgentRelayNotice { .. }
                | Action::AgentCompleteAuthentication { .. }
        )
    }

    /// Whether this action spends the fault budget.
    pub fn is_fault(&self) -> bool {
        self.fault().is_some()
    }

    /// The kind of fault this action injects, if it is one.
    pub fn fault(&self) -> Option<Fault> {
        Some(match self {
            Action::LoseNotification { .. } => Fault::LoseNotification,
            Action::DuplicateNotification { .. } => Fault::DuplicateNotification,
            Action::LoseNotificationStream { .. } => Fault::LoseNotificationStream,
            Action::NotifyBeforeUpdate { .. } => Fault::NotifyBeforeUpdate,
            Action::RefreshTokenSilently { .. } => Fault::RefreshTokenSilently,
            Action::FailListing { .. } => Fault::FailListing,
            Action::LoseTransportSession { .. } => Fault::LoseTransportSession,
            Action::HangListing { .. } => Fault::HangListing,
            Action::ServeLate { .. } => Fault::ServeLate,
            Action::PageListing { .. } => Fault::PageListing,
            Action::FailAccountRead { .. } => Fault::FailAccountRead,
            Action::DeployTools { .. } => Fault::DeployTools,
            _ => return None,
        })
    }

    /// The connector the action is about, where it names one.
    pub fn connector(&self) -> Option<ConnectorId> {
        match *self {
            Action::WebAuthenticate { connector }
            | Action::WebRevoke { connector }
            | Action::TokenExpire { connector }
            | Action::DeliverNotification { connector, .. }
            | Action::DeliverListing { connector, .. }
            | Action::ExpireTtl { connector, .. }
            | Action::TimeOutListing { connector, .. }
            | Action::LoseNotification { connector, .. }
            | Action::DuplicateNotification { connector, .. }
            | Action::LoseNotificationStream { connector, .. }
            | Action::NotifyBeforeUpdate { connector }
            | Action::RefreshTokenSilently { connector }
            | Action::DeployTools { connector }
            | Action::FailListing { connector, .. }
            | Action::LoseTransportSession { connector, .. }
            | Action::HangListing { connector, .. }
            | Action::ServeLate { connector, .. }
            | Action::PageListing { connector, .. }
            | Action::UserAsk { connector, .. }
            | Action::UserAuthenticate { connector, .. } => Some(connector),
            _ => None,
        }
    }
}

/// A kind of fault (SPEC.md §4): one per fault action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fault {
    /// `LoseNotification`.
    LoseNotification,
    /// `DuplicateNotification`.
    DuplicateNotification,
    /// `LoseNotificationStream`.
    LoseNotificationStream,
    /// `NotifyBeforeUpdate`.
    NotifyBeforeUpdate,
    /// `RefreshTokenSilently`.
    RefreshTokenSilently,
    /// `FailListing`.
    FailListing,
    /// `LoseTransportSession`.
    LoseTransportSession,
    /// `HangListing`.
    HangListing,
    /// `ServeLate`.
    ServeLate,
    /// `PageListing`: not a defect, but bounded by the fault budget.
    PageListing,
    /// `NotifyAfterResult`: an ordering a server may break, not an injected event. A change that a
    /// session's own call caused (the agent's `complete_authentication`) is notified to that
    /// session after the call's result, on another stream, so the agent's next step may come
    /// first. Without it, the notification comes before the result (SPEC.md §7.2, S-2).
    NotifyAfterResult,
    /// `FailAccountRead`.
    FailAccountRead,
    /// `PublicScope`: a property a server may have, not an injected event. A 2026-07-28 server
    /// marks its `tools/list` results `cacheScope: public` although they depend on the caller's
    /// authorization (SPEC.md §7.5, S-4). Without it, every result is `private`. It matters only
    /// with two authorization contexts.
    PublicScope,
    /// `DeployTools`: not a defect, but bounded by the fault budget; admitted only when asked for
    /// (`--with-fault DeployTools`), so that the default tables and generated corpus stay those of
    /// authorization changes alone (SPEC.md §4).
    DeployTools,
}

impl Fault {
    /// Every kind of fault, in SPEC.md order.
    pub const ALL: [Fault; 14] = [
        Fault::LoseNotification,
        Fault::DuplicateNotification,
        Fault::LoseNotificationStream,
        Fault::NotifyBeforeUpdate,
        Fault::RefreshTokenSilently,
        Fault::FailListing,
        Fault::LoseTransportSession,
        Fault::HangListing,
        Fault::ServeLate,
        Fault::PageListing,
        Fault::NotifyAfterResult,
        Fault::FailAccountRead,
        Fault::PublicScope,
        Fault::DeployTools,
    ];

    /// Its name: the name of the action that injects it (SPEC.md §3), or of the ordering a
    /// server breaks (`NotifyAfterResult`).
    pub fn name(self) -> &'static str {
        match self {
            Fault::LoseNotification => "LoseNotification",
            Fault::DuplicateNotification => "DuplicateNotification",
            Fault::LoseNotificationStream => "LoseNotificationStream",
            Fault::NotifyBeforeUpdate => "NotifyBeforeUpdate",
            Fault::RefreshTokenSilently => "RefreshTokenSilently",
            Fault::FailListing => "FailListing",
            Fault::LoseTransportSession => "LoseTransportSession",
            Fault::HangListing => "HangListing",
            Fault::ServeLate => "ServeLate",
            Fault::PageListing => "PageListing",
            Fault::NotifyAfterResult => "NotifyAfterResult",
            Fault::FailAccountRead => "FailAccountRead",
            Fault::PublicScope => "PublicScope",
            Fault::DeployTools => "DeployTools",
        }
    }

    /// The fault of this name.
    pub fn named(name: &str) -> Option<Fault> {
        Fault::ALL.into_iter().find(|f| f.name() == name)
    }

    /// Whether the model admits it only when asked for (`--with-fault`): `DeployTools`.
    pub fn is_opt_in(self) -> bool {
        self == Fault::DeployTools
    }

    /// Whether a server that meets SPEC.md §7.2's and §7.5's requirements never causes it: a
    /// notification lost, duplicated, sent early or after the result of the call that caused it, a
    /// change of the list not notified, or an authorization-dependent list marked public.
    pub fn is_server_defect(self) -> bool {
        matches!(
            self,
            Fault::LoseNotification
                | Fault::DuplicateNotification
                | Fault::LoseNotificationStream
                | Fault::NotifyBeforeUpdate
                | Fault::RefreshTokenSilently
                | Fault::NotifyAfterResult
                | Fault::PublicScope
        )
    }
}

/// A set of fault kinds: the faults a model admits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Faults(u16);

impl Faults {
    /// The faults the servers of `servers` admit: every fault for any server; for reliable
    /// servers, none of the server defects. Never a fault admitted only when asked for.
    pub fn admitted_by(servers: Servers) -> Faults {
        let mut set = Faults(0);
        for fault in Fault::ALL.into_iter().filter(|&f| !f.is_opt_in()) {
            if servers == Servers::Any || !fault.is_server_defect() {
                set = set.with(fault);
            }
        }
        set
    }

    /// This set and `fault`.
    pub fn with(self, fault: Fault) -> Faults {
        Faults(self.0 | 1 << fault as u16)
    }

    /// This set without `fault`.
    pub fn without(self, fault: Fault) -> Faults {
        Faults(self.0 & !(1 << fault as u16))
    }

    /// Whether the set holds `fault`.
    pub fn contains(self, fault: Fault) -> bool {
        self.0 & 1 << fault as u16 != 0
    }

    /// The kinds in the set, in SPEC.md order.
    pub fn kinds(self) -> impl Iterator<Item = Fault> {
        Fault::ALL.into_iter().filter(move |&f| self.contains(f))
    }
}

/// The model: one account, its connectors, and `bounds.sessions` host sessions that all run the
/// same host policy.
#[derive(Clone, Debug)]
pub struct CoherenceModel {
    /// The bounds.
    pub bounds: Bounds,
    /// The host policy under check.
    pub policy: HostPolicy,
    /// The faults the model admits: by default, those of `bounds.servers`. A test leaves one out,
    /// or adds one to reliable servers, to show the fault necessary.
    pub faults: Faults,
    /// The agent may complete a connector's authentication handshake inside a turn
    /// (`AgentCompleteAuthentication`). On by default; a design review turns it off to ask
    /// whether a verdict rests on it (SPEC.md §4.1).
    pub agent_handshake: bool,
    /// A defect planted in the policy's host logic (SPEC.md §11.4); `None` for the policy itself.
    pub mutant: Option<Mutant>,
    /// Every 2026-07-28 server of this kind alone, whatever `bounds.servers` admits (its faults
    /// stay): what SPEC.md §7.4's server finding asks of each kind. `None`: every kind.
    pub server_kind: Option<ServerKind>,
}

/// One kind of MCP 2026-07-28 server: whether it honours a listen filter asking for
/// `toolsListChanged` (and notifies on the stream), and the TTL it gives its lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ServerKind {
    /// `advertised`: it honours the filter and notifies; `silent`: it acknowledges none.
    pub notify: Notify,
    /// `ttlMs` on its `tools/list` results.
    pub ttl: Ttl,
}

impl ServerKind {
    /// Every kind, the ones that tell a host most first.
    pub const ALL: [ServerKind; 4] = [
        ServerKind { notify: Notify::Advertised, ttl: Ttl::Long },
        ServerKind { notify: Notify::Advertised, ttl: Ttl::Zero },
        ServerKind { notify: Notify::Silent, ttl: Ttl::Long },
        ServerKind { notify: Notify::Silent, ttl: Ttl::Zero },
    ];
}

impl ServerKind {
    /// The kind as `--server-kind` spells it: `advertised,long`, `silent,zero`, ...
    pub fn flag(&self) -> String {
        let notify = match self.notify {
            Notify::Advertised => "advertised",
            Notify::Unadvertised => "unadvertised",
            Notify::Silent => "silent",
        };
        let ttl = match self.ttl {
            Ttl::Long => "long",
            Ttl::Zero => "zero",
        };
        format!("{notify},{ttl}")
    }

    /// The kind `--server-kind` names, if it is one of [`ServerKind::ALL`].
    pub fn parse(text: &str) -> Result<ServerKind, String> {
        ServerKind::ALL.into_iter().find(|k| k.flag() == text).ok_or_else(|| {
            let known: Vec<String> = ServerKind::ALL.iter().map(ServerKind::flag).collect();
            format!("`{text}` is not a server kind; known: {}", known.join(", "))
        })
    }
}

impl std::fmt::Display for ServerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let listens = match self.notify {
            Notify::Advertised => "notifies on listen streams",
            Notify::Unadvertised | Notify::Silent => "never notifies",
        };
        let ttl = match self.ttl {
            Ttl::Long => "long TTL",
            Ttl::Zero => "ttlMs 0",
        };
        write!(f, "{listens}, {ttl}")
    }
}

impl CoherenceModel {
    /// A model of `policy` within `bounds`.
    pub fn new(policy: HostPolicy, bounds: Bounds) -> Self {
        CoherenceModel {
            bounds,
            policy,
            faults: Faults::admitted_by(bounds.servers),
            agent_handshake: true,
            mutant: None,
            server_kind: None,
        }
    }

    /// Whether the host takes decision `site`, which it would take if `yes` (the mutant, if it
    /// is at `site`, may decide otherwise).
    #[inline]
    fn decides(&self, site: Site, yes: bool) -> bool {
        match self.mutant {
            Some(m) if m.site == site => match m.operator {
                Operator::Drop => false,
                Operator::Invert => !yes,
                _ => yes,
            },
            _ => yes,
        }
    }

    /// The link where the host carries out decision `site`, meant for `session` and `connector`:
    /// another for a mutant keyed wrongly, none for a capped one whose decisions are used up (this
    /// one counts).
    #[inline]
    fn aim(
        &self,
        site: Site,
        state: &mut State,
        session: SessionId,
        connector: ConnectorId,
    ) -> Option<(SessionId, ConnectorId)> {
        match self.mutant {
            Some(Mutant { site: at, operator }) if at == site => match operator {
                Operator::WrongConnector => Some((session, ConnectorId((connector.0 + 1) % self.bounds.connectors))),
                Operator::WrongSession => Some((SessionId((session.0 + 1) % self.bounds.sessions), connector)),
                Operator::Capped if state.memo.taken >= Memo::CAP => None,
                Operator::Capped => {
                    state.memo.taken += 1;
                    Some((session, connector))
                }
                _ => Some((session, connector)),
            },
            _ => Some((session, connector)),
        }
    }

    /// What a count at `site` is off by: 1 for the mutant there, 0 otherwise.
    #[inline]
    fn off_by(&self, site: Site) -> usize {
        usize::from(self.mutant == Some(Mutant { site, operator: Operator::OffByOne }))
    }

    /// The host re-lists `connector` in `session` by decision `site`, if it takes it.
    fn relist(&self, site: Site, state: &mut State, session: SessionId, connector: ConnectorId) {
        if self.decides(site, true) {
            self.relist_aimed(site, state, session, connector);
        }
    }

    /// The host re-lists by decision `site`, taken, meant for `connector` in `session`: where the
    /// mutant aims it, and once the host has handled the next action it sees for a late one
    /// ([`Memo::late`]).
    fn relist_aimed(&self, site: Site, state: &mut State, session: SessionId, connector: ConnectorId) {
        let Some((session, connector)) = self.aim(site, state, session, connector) else { return };
        if self.mutant == Some(Mutant { site, operator: Operator::Late }) {
            state.memo.late |= Memo::bit(session, connector);
        } else {
            self.request_listing(state, session, connector);
        }
    }

    /// The host follows a paged reply's cursor to its last page.
    pub fn follows_cursor(&self) -> bool {
        self.decides(Site::FollowCursor, self.policy.follow_cursor)
    }

    /// The host gives up on a hung `tools/list` after a timeout.
    pub fn times_out(&self) -> bool {
        self.decides(Site::TimeOutHungRequest, self.policy.request_timeout)
    }

    /// The initial states: every connector starts unauthenticated or authenticated, with any of
    /// the three notification behaviours, and every session has just built its catalogue.
    ///
    /// The order is the breadth-first search's tie-break between counterexamples of the same
    /// length: servers that declare and send `list_changed` come first, because a story in which
    /// the host was told and did nothing says more than one in which nobody could have known.
    pub fn initial_states(&self) -> Vec<State> {
        let mut choices: Vec<Connector> = Vec::new();
        for &revision in self.bounds.revisions.each() {
            for auth in [Auth::Unauthenticated, Auth::Authenticated] {
                // A stateless server has no capability to leave undeclared: it honours a listen
                // filter (and notifies on the stream) or acknowledges it without `toolsListChanged`.
                let kind = self.server_kind.filter(|_| revision == Revision::Stateless);
                let notify = match (kind, self.bounds.servers, revision) {
                    (Some(kind), ..) => vec![kind.notify],
                    (None, Servers::Reliable, _) => vec![Notify::Advertised],
                    (None, Servers::Any, Revision::Handshake) => {
                        vec![Notify::Advertised, Notify::Unadvertised, Notify::Silent]
                    }
                    (None, Servers::Any, Revision::Stateless) => vec![Notify::Advertised, Notify::Silent],
                };
                // A long TTL first: the story of a host that trusts it says more.
                let ttls = match (kind, revision) {
                    (Some(kind), _) => vec![kind.ttl],
                    (None, Revision::Handshake) => vec![Ttl::Zero],
                    (None, Revision::Stateless) => vec![Ttl::Long, Ttl::Zero],
                };
                // A second user's authorization is fixed, either way; a stateless server may mark
                // its authorization-dependent list public (`PublicScope`, which S-4 rules out).
                let others: &[Auth] = match self.bounds.contexts {
                    Contexts::One => &[Auth::Unauthenticated],
                    Contexts::Two => &[Auth::Unauthenticated, Auth::Authenticated],
                };
                let public = self.faults.contains(Fault::PublicScope);
                let scopes: &[CacheScope] = match (self.bounds.contexts, revision) {
                    (Contexts::Two, Revision::Stateless) if public => &[CacheScope::Private, CacheScope::Public],
                    _ => &[CacheScope::Private],
                };
                for &notify in &notify {
                    for &ttl in &ttls {
                        for &other in others {
                            for &scope in scopes {
                                let version = 0;
                                let announced = false;
                                choices.push(Connector {
                                    auth,
                                    version,
                                    notify,
                                    announced,
                                    revision,
                                    ttl,
                                    scope,
                                    other,
                                    withdrawn: false,
                                });
                            }
                        }
                    }
                }
            }
        }
        let n = usize::from(self.bounds.connectors);
        let mut states = Vec::new();
        let mut pick = vec![0usize; n];
        loop {
            let mut state = State {
                shape: Shape {
                    connectors: self.bounds.connectors,
                    sessions: self.bounds.sessions,
                    contexts: self.bounds.contexts,
                },
                ..State::default()
            };
            for (c, &i) in pick.iter().enumerate() {
                state.connectors[c] = choices[i];
            }
            for s in self.bounds.session_ids() {
                self.start_session(&mut state, s);
            }
            self.show_banner(&mut state);
            states.push(state);
            // Odometer over the connectors' choices.
            let mut digit = 0;
            loop {
                if digit == n {
                    return states;
                }
                pick[digit] += 1;
                if pick[digit] < choices.len() {
                    break;
                }
                pick[digit] = 0;
                digit += 1;
            }
        }
    }

    /// A session that has just started: it has listed every connector and holds what it got, or,
    /// for a host that keeps nothing between turns, holds nothing.
    pub fn start_session(&self, state: &mut State, s: SessionId) {
        for c in self.bounds.connector_ids() {
            let connector = *state.connector(c);
            let built = Entry { listing: state.listing(s, c), version: connector.version };
            let link = state.link_mut(s, c);
            if self.policy.catalogue == Catalogue::PerTurn {
                link.lazy = true;
            } else {
                link.entry = Some(built);
                link.newest = Some(built);
                link.fresh = connector.stateless() && connector.ttl == Ttl::Long;
            }
            link.listening = connector.stateless() && self.policy.listen != Listen::Never;
        }
    }

    /// The enabled actions of `state`, in a fixed order.
    pub fn enabled_actions(&self, state: &State, actions: &mut Vec<Action>) {
        let b = &self.bounds;
        if state.spent.auth_changes < b.auth_changes {
            for connector in b.connector_ids() {
                match state.connector(connector).auth {
                    Auth::Authenticated => {
                        actions.push(Action::WebRevoke { connector });
                        actions.push(Action::TokenExpire { connector });
                    }
                    _ => actions.push(Action::WebAuthenticate { connector }),
                }
            }
        }
        for session in b.session_ids() {
            if state.session(session).read.is_some() {
                actions.push(Action::DeliverAccount { session });
            }
            for connector in b.connector_ids() {
                let link = state.link(session, connector);
                if link.notifications > 0 {
                    actions.push(Action::DeliverNotification { session, connector });
                }
                // Time passes: a TTL runs out. Taken between turns (a TTL is long against a turn)
                // and with nothing in flight on the link.
                if link.fresh && state.session(session).turn.is_none() && link.fetch_count() == 0 {
                    actions.push(Action::ExpireTtl { session, connector });
                }
                for (slot, fetch) in link.fetches.iter().enumerate() {
                    let slot = slot as u8;
                    match fetch.map(|f| f.reply) {
                        // Time passes: past any timeout, a hung request is given up, or lost.
                        Some(Reply::Hung) => actions.push(Action::TimeOutListing { session, connector, slot }),
                        Some(Reply::Lost) | None => {}
                        Some(_) => actions.push(Action::DeliverListing { session, connector, slot }),
                    }
                }
            }
        }
        if state.spent.faults < b.faults {
            self.enabled_faults(state, actions);
        }
        for session in b.session_ids() {
            match state.session(session).turn {
                None => {
                    let notified = b.servers == Servers::Any
                        || b.connector_ids().all(|c| state.link(session, c).notifications == 0);
                    if state.spent.turns < b.turns && !self.starting(state, session) && notified {
                        for connector in b.connector_ids() {
                            actions.push(Action::UserAsk { session, connector });
                        }
                    }
                    let commands = self.policy.commands;
                    if state.spent.commands < b.commands {
                        if commands.refresh {
                            actions.push(Action::UserMcp { session });
                        }
                        if commands.restart {
                            actions.push(Action::UserRestart { session });
                        }
                    }
                    if state.spent.auth_changes < b.auth_changes && commands.authenticate {
                        for connector in b.connector_ids() {
                            let link = state.link(session, connector);
                            let prompted = link.offered() == Some(Listing::Stubs)
                                || link.notice.map(|n| n.recovery) == Some(Recovery::Authenticate);
                            // The second context's authorization is fixed for the run.
                            if prompted
                                && state.context(session) == 0
                                && state.connector(connector).auth != Auth::Authenticated
                            {
                                actions.push(Action::UserAuthenticate { session, connector });
                            }
                        }
                    }
                }
                Some(turn) if turn.held => {}
                Some(turn) => {
                    let link = state.link(session, turn.connector);
                    if link.offered() == Some(Listing::Actions) {
                        actions.push(Action::AgentCallTool { session });
                    } else {
                        actions.push(Action::AgentAnswerNotAvailable { session });
                        if link.offered() == Some(Listing::Stubs) {
                            actions.push(Action::AgentCallStub { session });
                        }
                        actions.push(Action::AgentCallUnlisted { session });
                    }
                    if link.notice.is_some() {
                        actions.push(Action::AgentRelayNotice { session });
                    }
                    if self.agent_handshake
                        && link.offered() == Some(Listing::Stubs)
                        && state.context(session) == 0
                        && state.connector(turn.connector).auth != Auth::Authenticated
                        && state.spent.auth_changes < b.auth_changes
                    {
                        actions.push(Action::AgentCompleteAuthentication { session });
                    }
                }
            }
        }
    }

    /// The faults `state` allows, of the kinds the model admits.
    fn enabled_faults(&self, state: &State, actions: &mut Vec<Action>) {
        let b = &self.bounds;
        let admitted = self.faults;
        let mut push = |action: Action| {
            if admitted.contains(action.fault().expect("a fault action")) {
                actions.push(action);
            }
        };
        for connector in b.connector_ids() {
            let server = state.connector(connector);
            // An early notification announces a change an auth change could still make.
            if server.notify != Notify::Silent && !server.announced && state.spent.auth_changes < b.auth_changes {
                push(Action::NotifyBeforeUpdate { connector });
            }
            // A silent refresh is an auth change too: it spends both budgets.
            if server.auth == Auth::Expired && state.spent.auth_changes < b.auth_changes {
                push(Action::RefreshTokenSilently { connector });
            }
            // A deploy changes what an authenticated account is listed.
            if server.auth == Auth::Authenticated {
                push(Action::DeployTools { connector });
            }
        }
        for session in b.session_ids() {
            if let Some(AccountRead::Served(_)) = state.session(session).read {
                push(Action::FailAccountRead { session });
            }
            for connector in b.connector_ids() {
                let link = state.link(session, connector);
                if link.notifications > 0 {
                    push(Action::LoseNotification { session, connector });
                    if link.notifications < NOTIFICATIONS_PENDING_MAX {
                        push(Action::DuplicateNotification { session, connector });
                    }
                    // One lost notification of one is `LoseNotification`; a stream loses them all.
                    if link.notifications > 1 && !state.connector(connector).stateless() {
                        push(Action::LoseNotificationStream { session, connector });
                    }
                }
                // A 2026-07-28 listen stream ends (the server closes it, or the connection
                // fails), whether or not a notification is on it.
                if link.listening {
                    push(Action::LoseNotificationStream { session, connector });
                }
                for (slot, fetch) in link.fetches.iter().enumerate() {
                    if let Some(Fetch { reply: Reply::Listed { listing, .. }, .. }) = fetch {
                        let slot = slot as u8;
                        for failure in [ListFailure::Unauthorized, ListFailure::Transport] {
                            push(Action::FailListing { session, connector, slot, failure });
                        }
                        push(Action::HangListing { session, connector, slot });
                        if *listing == Listing::Actions && self.pages() {
                            push(Action::PageListing { session, connector, slot });
                        }
                    }
                }
                // Out-of-order service (SPEC.md §4): an earlier request is served after a later
                // one, once the list has changed since it was sent (otherwise nothing differs).
                let server = state.connector(connector).version;
                let in_flight = link.fetch_count();
                for (slot, fetch) in link.fetches.iter().enumerate().take(in_flight.saturating_sub(1)) {
                    if let Some(Fetch { reply: Reply::Listed { version, .. }, .. }) = fetch
                        && *version < server
                    {
                        push(Action::ServeLate { session, connector, slot: slot as u8 });
                    }
                }
                // A stateless server has no transport session to lose.
                if !link.transport_lost && !state.connector(connector).stateless() {
                    push(Action::LoseTransportSession { session, connector });
                }
            }
        }
    }

    /// Whether the checker lets a server page a reply: only for a host that applies a first page
    /// alone. A host that follows `nextCursor` reads every page of one snapshot (SPEC.md §4) and
    /// ends with the reply it would have had unpaged, delivered later; delivery order is already
    /// free, so paging adds no behaviour of its own there. The conformance runner pages for every
    /// host (its world-only policy follows no cursor).
    fn pages(&self) -> bool {
        !self.follows_cursor()
    }

    /// A session is starting while some connector has no catalogue entry yet and a request for
    /// it is outstanding. Users do not get a turn before the catalogue is built (a host that keeps
    /// no list for a connector builds it at the offer instead).
    pub fn starting(&self, state: &State, session: SessionId) -> bool {
        self.bounds.connector_ids().any(|c| {
            let link = state.link(session, c);
            !link.lazy && link.entry.is_none() && (link.fetch_count() > 0 || link.refetch_queued)
        })
    }

    /// A session has a `tools/list` outstanding.
    pub fn busy(&self, state: &State, session: SessionId) -> bool {
        self.bounds
            .connector_ids()
            .any(|c| state.link(session, c).fetch_count() > 0 || state.link(session, c).refetch_queued)
    }

    /// A session waits for something it sent: a `tools/list` or an account read.
    pub fn waiting(&self, state: &State, session: SessionId) -> bool {
        state.session(session).read.is_some() || self.busy(state, session)
    }

    /// Something the session waits for will arrive: an account read, a reply that is not hung, or
    /// a hung request the host's timeout will end. A queued refetch follows a reply in flight.
    pub fn can_progress(&self, state: &State, session: SessionId) -> bool {
        state.session(session).read.is_some()
            || self.bounds.connector_ids().any(|c| {
                state.link(session, c).fetches.iter().flatten().any(|f| match f.reply {
                    Reply::Listed { .. } | Reply::Failed(_) => true,
                    Reply::Hung => self.times_out(),
                    Reply::Lost => false,
                })
            })
    }

    /// The state after `action`. Always `Some` (it is `Option` for stateright's `Model`): callers
    /// pass only actions [`Self::enabled_actions`] lists; a disabled action is a programming error.
    pub fn step(&self, state: &State, action: Action) -> Option<State> {
        let mut next = *state;
        next.event = None;
        // A late mutant's re-lists go out once the host has handled the next thing it sees (a
        // policy never has any: the test comes first, off the checker's hot path).
        let late =
            if state.memo.late != 0 && action.reaches_host(state) { std::mem::take(&mut next.memo.late) } else { 0 };
        let p = &self.policy;
        match action {
            Action::WebAuthenticate { connector } => {
                next.spent.auth_changes += 1;
                self.change_auth(&mut next, connector, Auth::Authenticated);
            }
            Action::WebRevoke { connector } => {
                next.spent.auth_changes += 1;
                self.change_auth(&mut next, connector, Auth::Revoked);
            }
            Action::TokenExpire { connector } => {
                next.spent.auth_changes += 1;
                self.change_auth(&mut next, connector, Auth::Expired);
            }
            Action::DeliverNotification { session, connector } => {
                self.deliver_notification(&mut next, session, connector);
            }
            Action::DeliverListing { session, connector, slot } => {
                self.deliver_listing(state, &mut next, session, connector, usize::from(slot), None);
            }
            Action::TimeOutListing { session, connector, slot } if self.times_out() => {
                self.deliver_listing(
                    state,
                    &mut next,
                    session,
                    connector,
                    usize::from(slot),
                    Some(Reply::Failed(ListFailure::Transport)),
                );
            }
            Action::TimeOutListing { session, connector, slot } => {
                // No timeout: the host waits on, for a reply that will never come.
                let fetch = next.link_mut(session, connector).fetches[usize::from(slot)].as_mut();
                fetch.expect("enabled on a fetch in flight").reply = Reply::Lost;
            }
            Action::DeliverAccount { session } => {
                let read = next.sessions[session.index()].read.take().expect("enabled on a read in flight");
                self.check_account(&mut next, session, read);
                // A host that refreshes at a turn's start holds the turn until its refreshes settle;
                // one that only shows notices waited for the read alone.
                if let Some(turn) = &mut next.sessions[session.index()].turn {
                    turn.held &= self.decides(Site::HoldAfterRead, p.on_turn == OnTurn::Refresh);
                }
            }
            Action::LoseNotification { session, connector } => {
                Self::fault(&mut next, session, connector).notifications -= 1;
            }
            Action::DuplicateNotification { session, connector } => {
                Self::fault(&mut next, session, connector).notifications += 1;
            }
            Action::LoseNotificationStream { session, connector } => {
                let stateless = state.connector(connector).stateless();
                let link = Self::fault(&mut next, session, connector);
                link.notifications = 0;
                if stateless {
                    // The host sees its listen request end: a reason to refresh, for what was sent
                    // while nobody listened is gone.
                    link.listening = false;
                    link.triggered = true;
                    link.due = true;
                    if p.listen == Listen::Reopen {
                        next.link_mut(session, connector).listening = true;
                        self.request_listing(&mut next, session, connector);
                    }
                }
            }
            Action::ExpireTtl { session, connector } => {
                // No sign of a change (INV-7's `triggered`), but the list may no longer be
                // trusted: a host that can re-list before its next use must (INV-10).
                let link = next.link_mut(session, connector);
                link.fresh = false;
                link.due = true;
            }
            Action::NotifyBeforeUpdate { connector } => {
                next.spent.faults += 1;
                next.connectors[connector.index()].announced = true;
                self.notify_links(&mut next, connector);
            }
            Action::RefreshTokenSilently { connector } => {
                next.spent.faults += 1;
                next.spent.auth_changes += 1;
                self.change_list(&mut next, connector, |c| c.auth = Auth::Authenticated, false);
            }
            Action::DeployTools { connector } => {
                next.spent.faults += 1;
                self.change_list(&mut next, connector, |c| c.withdrawn = !c.withdrawn, true);
            }
            Action::FailListing { session, connector, slot, failure } => {
                let link = Self::fault(&mut next, session, connector);
                link.fetches[usize::from(slot)].as_mut().expect("enabled on a fetch in flight").reply =
                    Reply::Failed(failure);
            }
            Action::ServeLate { session, connector, slot } => {
                let (listing, version) = (state.listing(session, connector), state.connector(connector).version);
                let link = Self::fault(&mut next, session, connector);
                let fetch = link.fetches[usize::from(slot)].as_mut().expect("enabled on a fetch in flight");
                fetch.reply = Reply::Listed { listing, version };
            }
            Action::PageListing { session, connector, slot } => {
                // Legitimate: it spends the budget that bounds it and excuses nothing.
                next.spent.faults += 1;
                let fetch = next.link_mut(session, connector).fetches[usize::from(slot)].as_mut();
                let fetch = fetch.expect("enabled on a fetch in flight");
                if let Reply::Listed { version, .. } = fetch.reply {
                    fetch.reply = Reply::Listed { listing: Listing::SomeActions, version };
                }
            }
            Action::HangListing { session, connector, slot } => {
                let link = Self::fault(&mut next, session, connector);
                link.fetches[usize::from(slot)].as_mut().expect("enabled on a fetch in flight").reply = Reply::Hung;
            }
            Action::LoseTransportSession { session, connector } => {
                let link = Self::fault(&mut next, session, connector);
                link.transport_lost = true;
                for fetch in link.fetches.iter_mut().flatten() {
                    if !matches!(fetch.reply, Reply::Hung | Reply::Lost) {
                        fetch.reply = Reply::Failed(ListFailure::SessionNotFound);
                    }
                }
            }
            Action::FailAccountRead { session } => {
                next.spent.faults += 1;
                next.sessions[session.index()].read = Some(AccountRead::Failed);
            }
            Action::UserAsk { session, connector } => {
                next.spent.turns += 1;
                let availability = if state.listing(session, connector).has_needed_tool() {
                    Availability::Available
                } else {
                    Availability::Absent
                };
                let reads = self.decides(Site::ReadAtTurn, p.reads_account());
                // A host that honours TTLs fetches every stale 2026-07-28 list before the offer.
                let stale: Vec<ConnectorId> = self
                    .bounds
                    .connector_ids()
                    .filter(|&c| {
                        let link = state.link(session, c);
                        p.ttl == TtlUse::Honour && state.connector(c).stateless() && !link.lazy && !link.fresh
                    })
                    .collect();
                let held = reads || !stale.is_empty();
                next.sessions[session.index()].turn =
                    Some(Turn { connector, held, retried: false, availability, unsignalled: false });
                if reads {
                    next.sessions[session.index()].read = Some(AccountRead::of(state, session));
                }
                for c in stale {
                    self.request_listing(&mut next, session, c);
                }
                self.fetch_for_offer(&mut next, session);
            }
            Action::UserMcp { session } => {
                next.spent.commands += 1;
                for connector in self.bounds.connector_ids() {
                    let link = next.link_mut(session, connector);
                    link.following = link.notice.map(|n| n.recovery) == Some(Recovery::Refresh);
                    link.triggered = true;
                    link.due = true;
                    if p.mcp_refreshes {
                        self.relist(Site::RelistOnRefreshCommand, &mut next, session, connector);
                    }
                    if p.catalogue == Catalogue::DroppedOnCommand {
                        Self::drop_list(&mut next, session, connector);
                    }
                }
            }
            Action::UserRestart { session } => {
                next.spent.commands += 1;
                next.sessions[session.index()] = Session::default();
                for connector in self.bounds.connector_ids() {
                    let link = next.link_mut(session, connector);
                    let following = link.notice.map(|n| n.recovery) == Some(Recovery::Restart);
                    *link = Link { following, triggered: true, due: true, ..Link::default() };
                    link.listening = state.connector(connector).stateless() && p.listen != Listen::Never;
                    if p.catalogue == Catalogue::PerTurn {
                        link.lazy = true;
                    } else {
                        self.relist(Site::RelistOnRestart, &mut next, session, connector);
                    }
                }
            }
            Action::UserAuthenticate { session, connector } => {
                next.spent.auth_changes += 1;
                let following =
                    state.link(session, connector).notice.map(|n| n.recovery) == Some(Recovery::Authenticate);
                self.change_auth(&mut next, connector, Auth::Authenticated);
                let link = next.link_mut(session, connector);
                link.following = following;
                link.triggered = true;
                link.due = true;
                // Completing the handshake in-session is the stubs' own flow: every host loads
                // the tools it unlocks.
                self.relist(Site::RelistOnAuthenticate, &mut next, session, connector);
            }
            Action::AgentCallTool { session } => self.agent_call_tool(state, &mut next, session),
            Action::AgentCallStub { session } => self.agent_call_stub(state, &mut next, session),
            Action::AgentCallUnlisted { session } => self.agent_call_unlisted(state, &mut next, session),
            Action::AgentAnswerNotAvailable { session } => {
                self.answer(state, &mut next, session, Call::Nothing, Answer::NotAvailable);
            }
            Action::AgentRelayNotice { session } => {
                self.answer(state, &mut next, session, Call::Nothing, Answer::RelayedNotice);
            }
            Action::AgentCompleteAuthentication { session } => {
                let connector = state.session(session).turn.expect("enabled in a turn").connector;
                next.spent.auth_changes += 1;
                let following =
                    state.link(session, connector).notice.map(|n| n.recovery) == Some(Recovery::Authenticate);
                let notified_first = self.notifies_caller_first(state, session, connector);
                self.change_auth(&mut next, connector, Auth::Authenticated);
                next.link_mut(session, connector).following = following;
                // The agent did it in this turn, so the turn has been told (INV-13 judges its
                // answer). It is no reason to refresh (`triggered`, `due`): to a generic host,
                // `complete_authentication` is a tool like any other, and its result says nothing
                // MCP defines about the list.
                Self::signal(&mut next, session, connector);
                // A server that keeps S-2 sends the change's `list_changed` to this session before
                // the call's result, so the host has it before the agent's next step.
                if notified_first {
                    self.deliver_notification(&mut next, session, connector);
                }
                if p.relist_on_handshake {
                    self.relist(Site::RelistOnHandshake, &mut next, session, connector);
                }
                // A host that keeps nothing lists every connector before each call of the language
                // model, so before the agent's next step too.
                if p.catalogue == Catalogue::PerTurn {
                    for c in self.bounds.connector_ids() {
                        Self::drop_list(&mut next, session, c);
                    }
                    self.fetch_for_offer(&mut next, session);
                }
            }
        }
        if late != 0 {
            for (session, connector) in Memo::links(late) {
                self.request_listing(&mut next, session, connector);
            }
        }
        self.settle_turns(&mut next);
        self.show_banner(&mut next);
        Some(next)
    }

    /// A turn stays held while the session waits for what it sent; a host that holds while
    /// refreshing also holds a turn that was open when a refresh started.
    fn settle_turns(&self, state: &mut State) {
        for session in self.bounds.session_ids() {
            let waiting = self.waiting(state, session);
            if let Some(turn) = &mut state.sessions[session.index()].turn {
                turn.held = waiting
                    && (turn.held || self.decides(Site::HoldWhileRefreshing, self.policy.hold_while_refreshing));
            }
        }
    }

    fn show_banner(&self, state: &mut State) {
        if let Some(banner) = self.policy.banner {
            for s in self.bounds.session_ids() {
                for c in self.bounds.connector_ids() {
                    state.link_mut(s, c).notice.get_or_insert(banner);
                }
            }
        }
    }

    /// A fault on a link: it spends the fault budget, and excuses the host from what it was due
    /// to do there (INV-6, INV-10).
    fn fault(state: &mut State, session: SessionId, connector: ConnectorId) -> &mut Link {
        state.spent.faults += 1;
        let link = state.link_mut(session, connector);
        link.following = false;
        link.due = false;
        link
    }

    /// The session has been told of the connector's current state (a `list_changed`, a reply
    /// served after the change, a failed call): a turn about it is judged again.
    /// Whether `connector`'s server, changing its list because the agent completed its handshake
    /// in `state`, sends that session the `list_changed` before the call's result: a server that
    /// notifies this change at all (to this session: a 2026-07-28 server, only if it listens)
    /// does, unless the model admits `NotifyAfterResult`.
    pub fn notifies_caller_first(&self, state: &State, session: SessionId, connector: ConnectorId) -> bool {
        let server = state.connector(connector);
        // A 2026-07-28 server notifies only a session that listens.
        let heard = !server.stateless() || state.link(session, connector).listening;
        heard && server.notify != Notify::Silent && !server.announced && !self.faults.contains(Fault::NotifyAfterResult)
    }

    /// A pending `list_changed` of the link arrives: a reason to refresh, evidence and a signal;
    /// the host reacts per policy.
    fn deliver_notification(&self, next: &mut State, session: SessionId, connector: ConnectorId) {
        let p = &self.policy;
        let link = next.link_mut(session, connector);
        link.notifications -= 1;
        link.triggered = true;
        link.due = true;
        link.evidence = true;
        Self::signal(next, session, connector);
        let relist = match p.on_list_changed {
            OnListChanged::Ignore => false,
            OnListChanged::RelistIfAdvertised => next.connector(connector).notify == Notify::Advertised,
            OnListChanged::Relist => true,
        };
        if self.decides(Site::RelistOnNotify, relist) {
            self.relist_aimed(Site::RelistOnNotify, next, session, connector);
        }
        if p.catalogue == Catalogue::DroppedOnNotify {
            Self::drop_list(next, session, connector);
            self.fetch_for_offer(next, session);
        }
    }

    fn signal(state: &mut State, session: SessionId, connector: ConnectorId) {
        if let Some(turn) = &mut state.sessions[session.index()].turn
            && turn.connector == connector
        {
            turn.unsignalled = false;
        }
    }

    /// The server's tool list for `connector` changes with its auth: the version grows, notifying
    /// servers queue a `list_changed` on every session (unless they sent it early), and the
    /// oracle's bookkeeping resets.
    fn change_auth(&self, state: &mut State, connector: ConnectorId, auth: Auth) {
        self.change_list(state, connector, |c| c.auth = auth, true);
    }

    /// A notifying server queues a `list_changed` on every session of the account's context (an
    /// early notification announces a change of the account's authorization).
    fn notify_links(&self, state: &mut State, connector: ConnectorId) {
        let shape = state.shape;
        self.notify_sessions(state, connector, |s| shape.context(s) == 0);
    }

    /// A notifying server queues a `list_changed` on every session `to` takes.
    fn notify_sessions(&self, state: &mut State, connector: ConnectorId, to: impl Fn(SessionId) -> bool) {
        if state.connector(connector).notify == Notify::Silent {
            return;
        }
        let stateless = state.connector(connector).stateless();
        for session in self.bounds.session_ids().filter(|&s| to(s)) {
            let link = state.link_mut(session, connector);
            // A 2026-07-28 server notifies only a listen stream that is open.
            if !stateless || link.listening {
                link.notifications = (link.notifications + 1).min(NOTIFICATIONS_PENDING_MAX);
            }
        }
    }

    /// The server's tool list for `connector` changes by `change` (an authorization, or a deploy):
    /// the version grows; for every session whose list it changes (an authorization changes the
    /// account's context only), the change is notified if `notified` and not announced before,
    /// and the oracle's bookkeeping resets.
    fn change_list(
        &self,
        state: &mut State,
        connector: ConnectorId,
        change: impl FnOnce(&mut Connector),
        notified: bool,
    ) {
        let mut before = [Listing::Stubs; SESSIONS_MAX];
        for s in self.bounds.session_ids() {
            before[s.index()] = state.listing(s, connector);
        }
        let c = &mut state.connectors[connector.index()];
        change(c);
        c.version += 1;
        let announced = std::mem::take(&mut c.announced);
        let mut differs = [false; SESSIONS_MAX];
        for s in self.bounds.session_ids() {
            differs[s.index()] = state.listing(s, connector) != before[s.index()];
        }
        let changed = |s: SessionId| differs[s.index()];
        if notified && !announced {
            self.notify_sessions(state, connector, changed);
        }
        for session in self.bounds.session_ids().filter(|&s| changed(s)) {
            let link = state.link_mut(session, connector);
            link.triggered = false;
            link.following = false;
            link.due = false;
            if let Some(turn) = &mut state.sessions[session.index()].turn
                && turn.connector == connector
            {
                turn.availability = Availability::Changed;
                turn.unsignalled = true;
            }
        }
    }

    /// A host whose sessions share one cache serves a reply applied to `session` to the other
    /// sessions it may serve it to, as their catalogue's entry; a session with its own request in
    /// flight waits for its own reply. Nothing is shared into a session that keeps nothing.
    fn share(&self, state: &mut State, session: SessionId, connector: ConnectorId, reply: Entry, fresh: bool) {
        let server = *state.connector(connector);
        let public = server.stateless() && server.scope == CacheScope::Public;
        for other in self.bounds.session_ids().filter(|&s| s != session) {
            let same = state.context(other) == state.context(session);
            let serves = match self.policy.share {
                Share::Never => false,
                Share::Always => true,
                Share::Scoped => same || public,
            };
            let link = state.link_mut(other, connector);
            if !serves || link.lazy || link.fetch_count() > 0 {
                continue;
            }
            link.entry = Some(reply);
            link.fresh = fresh;
            link.shared = true;
            link.foreign = !same && !public;
        }
    }

    /// The host sends `tools/list` for `connector`; the server serves it from its state now.
    fn request_listing(&self, state: &mut State, session: SessionId, connector: ConnectorId) {
        let (listing, version) = (state.listing(session, connector), state.connector(connector).version);
        let link = state.link_mut(session, connector);
        let limit = match self.policy.fetch_mode {
            FetchMode::Concurrent => FETCHES_IN_FLIGHT_MAX,
            FetchMode::SingleFlight => 1,
        };
        let limit = (limit + self.off_by(Site::InFlightLimit)).min(FETCHES_IN_FLIGHT_MAX);
        let in_flight = link.fetch_count();
        if in_flight >= limit {
            link.refetch_queued |= self.decides(Site::QueueRefetch, true);
            return;
        }
        let reply = if link.transport_lost {
            Reply::Failed(ListFailure::SessionNotFound)
        } else {
            Reply::Listed { listing, version }
        };
        link.fetches[in_flight] = Some(Fetch { reply, superseded: false });
    }

    /// A `tools/list` reply reaches the host (`instead`: what the host makes of a request it gave
    /// up on).
    fn deliver_listing(
        &self,
        before: &State,
        state: &mut State,
        session: SessionId,
        connector: ConnectorId,
        slot: usize,
        instead: Option<Reply>,
    ) {
        let p = &self.policy;
        let server = state.connector(connector).version;
        let link = state.link_mut(session, connector);
        if let (None, Some(Fetch { reply: Reply::Listed { listing: Listing::SomeActions, version }, superseded })) =
            (instead, link.fetches[slot])
            && self.follows_cursor()
        {
            // The host asks for the rest with the cursor, in the request's place. The pages are one
            // snapshot (SPEC.md §4): the rest completes the listing the first page came from.
            let rest = Reply::Listed { listing: Listing::Actions, version };
            link.fetches[slot] = Some(Fetch { reply: rest, superseded });
            return;
        }
        let fetch = link.fetches[slot].take().expect("enabled on a fetch in flight");
        // Keep the requests in flight packed, oldest first.
        link.fetches[slot..].rotate_left(1);
        match instead.unwrap_or(fetch.reply) {
            Reply::Listed { listing, version } => {
                let newest = link.newest;
                let reply = Entry { listing, version };
                // A reply older than one already received answers nothing.
                if newest.is_none_or(|n| version >= n.version) {
                    link.newest = Some(reply);
                    link.evidence = false;
                    link.failed = false;
                }
                // A host that keeps nothing between turns drops a reply that arrives between them.
                let between_turns = p.catalogue == Catalogue::PerTurn && state.session(session).turn.is_none();
                let ignored =
                    between_turns || self.decides(Site::IgnoreSuperseded, fetch.superseded && p.guard_superseded);
                let keyed = if !ignored && self.decides(Site::ApplyReply, true) {
                    self.aim(Site::ApplyReply, state, session, connector)
                } else {
                    None
                };
                if let Some(keyed) = keyed
                    && keyed != (session, connector)
                {
                    // Keyed wrongly: the reply lands in another link's entry.
                    let wrong = state.link_mut(keyed.0, keyed.1);
                    wrong.entry = Some(reply);
                    wrong.lazy = false;
                    wrong.shared = false;
                    wrong.foreign = false;
                } else if keyed.is_some() {
                    let long = state.connector(connector).stateless() && state.connector(connector).ttl == Ttl::Long;
                    let link = state.link_mut(session, connector);
                    let before = link.offered();
                    link.entry = Some(reply);
                    link.lazy = false;
                    link.fresh = long;
                    let older = (slot + self.off_by(Site::MarkSuperseded)).min(link.fetches.len());
                    for older in link.fetches[..older].iter_mut().flatten() {
                        older.superseded = true;
                    }
                    link.shared = false;
                    link.foreign = false;
                    let clear = p.clear_resolved_notices && link.notice.is_some_and(|n| resolved(n, listing));
                    if self.decides(Site::ClearResolvedNotice, clear) {
                        link.notice = None;
                    }
                    state.event = Some(Event::Applied(Applied { session, connector, before, reply, newest, server }));
                    self.share(state, session, connector, reply, long);
                }
                if version == server {
                    Self::signal(state, session, connector);
                }
                if p.abort_on_stubs && listing == Listing::Stubs && state.session(session).turn.is_some() {
                    self.answer(before, state, session, Call::Nothing, Answer::Aborted(connector));
                }
            }
            Reply::Failed(failure) => {
                link.failed = true;
                // A host that fetches what it does not keep at the next offer fetches it then.
                link.lazy |= p.catalogue != Catalogue::Kept && link.entry.is_none();
                if failure == ListFailure::SessionNotFound
                    && self.decides(Site::ReinitialiseOnLostSession, p.reinitialise_on_lost_session)
                {
                    link.transport_lost = false;
                    self.request_listing(state, session, connector);
                } else if p.abort_on_failure && state.session(session).turn.is_some() {
                    self.answer(before, state, session, Call::Nothing, Answer::Aborted(connector));
                } else if self.decides(Site::NoticeOnFailedListing, p.notice_on_failure)
                    && let Some((s, c)) = self.aim(Site::NoticeOnFailedListing, state, session, connector)
                {
                    let recovery =
                        if failure == ListFailure::SessionNotFound { Recovery::Restart } else { p.failure_recovery };
                    state.link_mut(s, c).notice = Some(Notice { reason: NoticeReason::RefreshFailed, recovery });
                }
            }
            Reply::Hung | Reply::Lost => unreachable!("a hung request is never delivered"),
        }
        let link = state.link_mut(session, connector);
        if link.refetch_queued && link.fetch_count() < FETCHES_IN_FLIGHT_MAX {
            link.refetch_queued = false;
            if self.decides(Site::SendQueuedRefetch, true) {
                self.request_listing(state, session, connector);
            }
        }
    }

    /// The host's turn-start check (policy [`OnTurn`]), when its account read arrives. It runs
    /// for every connector, because the host cannot see which one the user needs.
    fn check_account(&self, state: &mut State, session: SessionId, read: AccountRead) {
        let p = &self.policy;
        for connector in self.bounds.connector_ids() {
            let Some(account) = read.listing(connector) else {
                state.link_mut(session, connector).failed = true;
                if p.on_read_failure == OnReadFailure::Relist {
                    self.relist(Site::RelistOnReadFailure, state, session, connector);
                }
                continue;
            };
            let link = state.link_mut(session, connector);
            if self.decides(Site::AccountMatches, link.offered() == Some(account)) {
                link.evidence = false;
                // A read answers a difference, never a failure: only a refresh that works does.
                let failed = link.notice.is_some_and(|n| n.reason == NoticeReason::RefreshFailed);
                let clear = p.clear_resolved_notices && !failed && link.notice.is_some_and(|n| resolved(n, account));
                if self.decides(Site::ClearResolvedNotice, clear) {
                    link.notice = None;
                }
                // A reply in flight may predate the read, and a failed refresh is still a gap the
                // host cannot see: a refreshing host re-lists both.
                let unsettled = p.on_turn == OnTurn::Refresh && (failed || link.fetch_count() > 0);
                if self.decides(Site::RelistUnsettled, unsettled) {
                    self.relist_aimed(Site::RelistUnsettled, state, session, connector);
                }
                continue;
            }
            link.due = true;
            link.evidence = true;
            match p.on_turn {
                OnTurn::Nothing => {}
                OnTurn::Notice(recovery) => {
                    let reason = if account.authenticated() {
                        NoticeReason::ChangedElsewhere
                    } else {
                        NoticeReason::NeedsAuthentication
                    };
                    link.notice = Some(Notice { reason, recovery });
                }
                OnTurn::Refresh => self.relist(Site::RelistOnDifference, state, session, connector),
            }
        }
    }

    fn turn(state: &State, session: SessionId) -> Turn {
        state.session(session).turn.expect("agent actions are enabled only during a turn")
    }

    /// The agent gets a second go after the host refreshed on its behalf, once per turn.
    fn may_retry(&self, state: &State, session: SessionId) -> bool {
        self.decides(Site::RetryOnce, !Self::turn(state, session).retried)
    }

    fn hold_for_retry(state: &mut State, session: SessionId) {
        let turn = state.sessions[session.index()].turn.as_mut().expect("turn in progress");
        turn.held = true;
        turn.retried = true;
    }

    /// A call of a listed tool failed: a reason to refresh, and evidence of trouble.
    fn call_failed(next: &mut State, session: SessionId, connector: ConnectorId) -> &mut Link {
        Self::signal(next, session, connector);
        let link = next.link_mut(session, connector);
        link.triggered = true;
        link.due = true;
        link.failed = true;
        link
    }

    fn agent_call_tool(&self, state: &State, next: &mut State, session: SessionId) {
        let p = &self.policy;
        let connector = Self::turn(state, session).connector;
        let link = *state.link(session, connector);
        if link.transport_lost {
            let link = Self::call_failed(next, session, connector);
            if self.decides(Site::ReinitialiseOnCall, p.reinitialise_on_lost_session) {
                link.transport_lost = false;
                self.request_listing(next, session, connector);
                if self.may_retry(state, session) {
                    Self::hold_for_retry(next, session);
                    return;
                }
            }
            let recovery = p.notice_on_failure.then_some(Recovery::Restart);
            self.answer(state, next, session, Call::Tool, Answer::ToolFailed(recovery));
        } else if state.listing(session, connector).has_needed_tool() {
            self.answer(state, next, session, Call::Tool, Answer::UsedTool);
        } else if state.auth(session, connector) == Auth::Authenticated {
            // A deploy withdrew the tool: the server answers "unknown tool", as to a stale stub.
            self.stale_call(state, next, session, Call::Tool);
        } else {
            // 401: the token expired or access was revoked.
            Self::call_failed(next, session, connector);
            let recovery = if p.notice_on_failure {
                if self.decides(Site::NoticeOnUnauthorized, true)
                    && let Some((s, c)) = self.aim(Site::NoticeOnUnauthorized, next, session, connector)
                {
                    next.link_mut(s, c).notice =
                        Some(Notice { reason: NoticeReason::NeedsAuthentication, recovery: Recovery::Authenticate });
                }
                self.relist(Site::RelistOnUnauthorized, next, session, connector);
                Some(Recovery::Authenticate)
            } else {
                None
            };
            self.answer(state, next, session, Call::Tool, Answer::ToolFailed(recovery));
        }
    }

    fn agent_call_stub(&self, state: &State, next: &mut State, session: SessionId) {
        let connector = Self::turn(state, session).connector;
        if state.auth(session, connector) != Auth::Authenticated {
            self.answer(state, next, session, Call::Stub, Answer::StubReplied(StubReply::AuthPrompt));
            return;
        }
        // The platform (or the server, with an unknown-tool error) says the stub is stale.
        self.stale_call(state, next, session, Call::Stub);
    }

    /// The agent called a tool of the catalogue that the server no longer lists (a stub after an
    /// authentication elsewhere, an action tool a deploy withdrew): the call fails as unknown. A
    /// host that refreshes on it re-lists and lets the agent try again; otherwise it relays the
    /// failure, with the guidance its policy gives.
    fn stale_call(&self, state: &State, next: &mut State, session: SessionId, call: Call) {
        let p = &self.policy;
        let connector = Self::turn(state, session).connector;
        Self::call_failed(next, session, connector);
        if p.refresh_on_stub {
            self.relist(Site::RelistOnStaleStub, next, session, connector);
            if self.may_retry(state, session) {
                Self::hold_for_retry(next, session);
                if call == Call::Stub {
                    let availability = Self::turn(state, session).availability;
                    next.event = Some(Event::StubRefreshed { session, connector, availability });
                }
                return;
            }
        }
        let guidance = p.stub_guidance.filter(|_| self.decides(Site::StubGuidance, true));
        let answer = match call {
            Call::Stub => Answer::StubReplied(guidance.map_or(StubReply::Opaque, StubReply::Guidance)),
            _ => Answer::ToolFailed(guidance),
        };
        self.answer(state, next, session, call, answer);
    }

    fn agent_call_unlisted(&self, state: &State, next: &mut State, session: SessionId) {
        let p = &self.policy;
        let connector = Self::turn(state, session).connector;
        match p.on_unknown_tool {
            OnUnknownTool::Refresh if self.may_retry(state, session) => {
                self.request_listing(next, session, connector);
                Self::hold_for_retry(next, session);
                return;
            }
            OnUnknownTool::Misroute => {
                let elsewhere = self
                    .bounds
                    .connector_ids()
                    .any(|other| other != connector && state.link(session, other).offered() == Some(Listing::Actions));
                if elsewhere {
                    self.answer(state, next, session, Call::Unlisted, Answer::Misrouted);
                    return;
                }
            }
            _ => {}
        }
        let answer = match state.link(session, connector).notice {
            Some(notice) if self.decides(Site::ExplainUnknownTool, p.explain_unknown_tool) => {
                Answer::ToolFailed(Some(notice.recovery))
            }
            _ => Answer::NoSuchTool,
        };
        self.answer(state, next, session, Call::Unlisted, answer);
    }

    /// The agent answers: the turn ends, and the moment is recorded for the invariants.
    fn answer(&self, before: &State, next: &mut State, session: SessionId, call: Call, answer: Answer) {
        let turn = next.sessions[session.index()].turn.take().expect("turn in progress");
        next.event = Some(Event::Answered(Moment::at(before, next, session, turn, call, answer)));
        if self.policy.catalogue == Catalogue::PerTurn {
            for c in self.bounds.connector_ids() {
                Self::drop_list(next, session, c);
            }
        }
    }

    /// The host drops what it keeps for `connector`: it will fetch it at the next offer.
    fn drop_list(state: &mut State, session: SessionId, connector: ConnectorId) {
        let link = state.link_mut(session, connector);
        link.entry = None;
        link.shared = false;
        link.foreign = false;
        link.lazy = true;
    }

    /// The host fetches every list it does not keep, for an offer to the language model, and holds
    /// the turn until the replies arrive. Only when a turn is in progress: between turns, a list
    /// not kept waits for the next one.
    fn fetch_for_offer(&self, state: &mut State, session: SessionId) {
        if state.session(session).turn.is_none() {
            return;
        }
        let mut fetched = false;
        for c in self.bounds.connector_ids() {
            if state.link(session, c).lazy {
                self.request_listing(state, session, c);
                fetched = true;
            }
        }
        if fetched && let Some(turn) = &mut state.sessions[session.index()].turn {
            turn.held = true;
        }
    }
}

impl Moment {
    /// The moment of an answer: `before` is the state before the agent's last step, `after` the
    /// state after the host reacted to it; `turn` is the turn that ends, as it stands after the
    /// step's signals. The conformance runner builds moments with this too.
    pub fn at(before: &State, after: &State, session: SessionId, turn: Turn, call: Call, answer: Answer) -> Moment {
        let link = after.link(session, turn.connector);
        // An aborted turn offers the language model nothing more.
        let offered = if matches!(answer, Answer::Aborted(_)) { None } else { link.offered() };
        Moment {
            session,
            connector: turn.connector,
            call,
            availability: turn.availability,
            signalled: !turn.unsignalled,
            listed: after.listing(session, turn.connector).has_needed_tool(),
            due: before.link(session, turn.connector).due,
            offered,
            notice: link.notice,
            answer,
        }
    }
}

/// Whether what a refresh or an account read showed (`listing`) closes the gap `notice` is about.
fn resolved(notice: Notice, listing: Listing) -> bool {
    match notice.reason {
        // What an authenticated account is listed (a first page alone does not show it).
        NoticeReason::NeedsAuthentication => matches!(listing, Listing::Actions | Listing::Withdrawn),
        NoticeReason::ChangedElsewhere | NoticeReason::RefreshFailed => true,
    }
}

impl Model for CoherenceModel {
    type State = State;
    type Action = Action;

    fn init_states(&self) -> Vec<State> {
        self.initial_states()
    }

    fn actions(&self, state: &State, actions: &mut Vec<Action>) {
        self.enabled_actions(state, actions);
    }

    fn next_state(&self, state: &State, action: Action) -> Option<State> {
        self.step(state, action)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        invariants::properties()
    }

    /// `Name(session, connector, slot n)`, as SPEC.md writes actions, with the names the story uses.
    fn format_action(&self, action: &Action) -> String {
        let mut args: Vec<String> = Vec::new();
        args.extend(action.session().map(|s| s.to_string()));
        args.extend(action.connector().map(|c| c.to_string()));
        if let Action::DeliverListing { slot, .. }
        | Action::TimeOutListing { slot, .. }
        | Action::FailListing { slot, .. }
        | Action::ServeLate { slot, .. }
        | Action::PageListing { slot, .. }
        | Action::HangListing { slot, .. } = action
        {
            args.push(format!("slot {slot}"));
        }
        format!("{}({})", action.name(), args.join(", "))
    }

    /// The step as the story tells it (stateright's Explorer shows this as the step's outcome).
    fn format_step(&self, last_state: &State, action: Action) -> Option<String> {
        let next = self.step(last_state, action)?;
        Some(crate::story::step_words(self, last_state, action, &next))
    }

    /// The path walked so far as a sequence diagram, ending with every invariant its last state
    /// violates (stateright's Explorer shows this beside each state).
    fn as_svg(&self, path: stateright::Path<State, Action>) -> Option<String> {
        let mut states = path.into_vec().into_iter();
        let (init, mut action) = states.next()?;
        let mut steps = Vec::new();
        for (state, next) in states {
            steps.push((action?, state));
            action = next;
        }
        let last = steps.last().map_or(&init, |(_, s)| s);
        let broken: Vec<&invariants::Invariant> =
            invariants::INVARIANTS.iter().filter(|i| !i.holds(self, last)).collect();
        Some(crate::diagram::path(self, &init, &steps, &broken).svg())
    }
}
