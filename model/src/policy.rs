//! Host policies: the design space of SPEC.md §5.
//!
//! A policy is a named configuration of the one model: a set of choices a host makes about
//! when it re-lists tools, what it tells the user and the language model, and how it guards
//! its catalogue. Every policy is checked against every invariant; the verdict table is the
//! result.

use crate::state::Recovery;
use serde::Serialize;

/// What the host does when a `notifications/tools/list_changed` arrives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnListChanged {
    /// Nothing.
    Ignore,
    /// Re-list, but only for servers that declared `tools.listChanged`.
    RelistIfAdvertised,
    /// Re-list, whatever the server declared.
    Relist,
}

/// How the host issues `tools/list` requests for one connector.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FetchMode {
    /// A new request for every trigger, up to the in-flight bound; beyond it, one queued refetch.
    Concurrent,
    /// At most one request in flight; a trigger meanwhile queues one refetch for when it returns.
    SingleFlight,
}

/// What the host does at the start of every user turn. It cannot know which connector the user
/// is about to need, so whatever it does, it does for every connector.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnTurn {
    /// Nothing.
    Nothing,
    /// Read the account's connector state; where it differs from the catalogue, show a notice
    /// naming this recovery step.
    Notice(Recovery),
    /// Read the account's connector state; where it differs from the catalogue, re-list and hold
    /// the turn until the refresh settles.
    Refresh,
}

/// What the host answers when the agent calls a tool the catalogue does not list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnUnknownTool {
    /// A protocol error, "no such tool".
    NoSuchTool,
    /// Re-list the connector, hold the turn, and let the agent retry once.
    Refresh,
    /// Run another connector's tool of the same name (a bug seen in the wild).
    Misroute,
}

/// A host policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct HostPolicy {
    /// The policy's name, as the CLI and SPEC.md spell it.
    pub name: &'static str,
    /// One sentence for the verdict table's legend.
    pub summary: &'static str,
    /// Kept only to show that an invariant can fail; not part of the design space.
    pub broken: bool,
    /// Reaction to `list_changed`.
    pub on_list_changed: OnListChanged,
    /// Request discipline.
    pub fetch_mode: FetchMode,
    /// Ignore a `tools/list` reply when a reply to a later request was already applied.
    pub guard_superseded: bool,
    /// Reaction to a user turn.
    pub on_turn: OnTurn,
    /// Re-list when the agent calls a stub of a connector the account holds authenticated.
    pub refresh_on_stub: bool,
    /// What a stub call returns when the account holds the connector authenticated:
    /// `None` for an opaque failure.
    pub stub_guidance: Option<Recovery>,
    /// Show a notice when a refresh or a tool call fails.
    pub notice_on_failure: bool,
    /// The recovery step a failure notice names.
    pub failure_recovery: Recovery,
    /// `/mcp` re-lists every connector.
    pub mcp_refreshes: bool,
    /// Re-initialise and re-list after the server reports the transport session gone (404).
    pub reinitialise_on_lost_session: bool,
    /// Reaction to a call of an unlisted tool.
    pub on_unknown_tool: OnUnknownTool,
    /// A "no such tool" reply names the connector's notice's recovery step, if it has a notice.
    pub explain_unknown_tool: bool,
    /// Clear a connector's notice once a refresh shows the gap closed.
    pub clear_resolved_notices: bool,
}

const BASE: HostPolicy = HostPolicy {
    name: "",
    summary: "",
    broken: false,
    on_list_changed: OnListChanged::Ignore,
    fetch_mode: FetchMode::Concurrent,
    guard_superseded: false,
    on_turn: OnTurn::Nothing,
    refresh_on_stub: false,
    stub_guidance: None,
    notice_on_failure: false,
    failure_recovery: Recovery::Restart,
    mcp_refreshes: false,
    reinitialise_on_lost_session: false,
    on_unknown_tool: OnUnknownTool::NoSuchTool,
    explain_unknown_tool: false,
    clear_resolved_notices: true,
};

/// The policy SPEC.md recommends.
pub const RECOMMENDED: HostPolicy = HostPolicy {
    name: "recommended",
    summary: "re-check the account at every turn and re-list on any list_changed, one request in flight, \
              guarded replies, notices on every failure, stubs with guidance, /mcp refreshes",
    broken: false,
    on_list_changed: OnListChanged::Relist,
    fetch_mode: FetchMode::SingleFlight,
    guard_superseded: true,
    on_turn: OnTurn::Refresh,
    refresh_on_stub: true,
    stub_guidance: Some(Recovery::Refresh),
    notice_on_failure: true,
    failure_recovery: Recovery::Refresh,
    mcp_refreshes: true,
    reinitialise_on_lost_session: true,
    on_unknown_tool: OnUnknownTool::Refresh,
    explain_unknown_tool: true,
    clear_resolved_notices: true,
};

/// No host reactions at all: stepping the model with this policy moves the world (account,
/// servers, network, turns) and the oracle's bookkeeping, and nothing else. The conformance runner
/// steps the world with it and takes the host's reactions from the implementation under test.
pub const WORLD_ONLY: HostPolicy = HostPolicy {
    name: "world-only",
    summary: "no host reactions: the world alone, for the conformance runner",
    broken: true,
    ..BASE
};

/// Every policy of the design space, in verdict-table order.
pub const POLICIES: &[HostPolicy] = &[
    HostPolicy {
        name: "session-start-only",
        summary: "the catalogue is built once at session start; stubs give no guidance (the report)",
        ..BASE
    },
    HostPolicy {
        name: "stub-guidance",
        summary: "as session-start-only, but a stub of an authenticated connector says \"restart to load the tools\"",
        stub_guidance: Some(Recovery::Restart),
        ..BASE
    },
    HostPolicy {
        name: "delta-notice",
        summary: "at every turn, compare the account with the catalogue and show \"restart to use it\" where they differ",
        on_turn: OnTurn::Notice(Recovery::Restart),
        ..BASE
    },
    HostPolicy {
        name: "refresh-on-demand",
        summary: "re-list when the agent calls a stub or an unlisted tool, and on /mcp",
        refresh_on_stub: true,
        mcp_refreshes: true,
        on_unknown_tool: OnUnknownTool::Refresh,
        ..BASE
    },
    HostPolicy {
        name: "list-changed-naive",
        summary: "re-list on every advertised list_changed, concurrent requests, last reply wins",
        on_list_changed: OnListChanged::RelistIfAdvertised,
        ..BASE
    },
    HostPolicy {
        name: "list-changed-guarded",
        summary: "re-list on any list_changed with a generation guard (the fix one host shipped), nothing else",
        on_list_changed: OnListChanged::Relist,
        guard_superseded: true,
        notice_on_failure: true,
        ..BASE
    },
    RECOMMENDED,
];

/// Deliberately broken variants of `recommended`, one defect each, kept so that every invariant
/// is shown to fail (SPEC.md §6, non-vacuity).
pub const BROKEN_POLICIES: &[HostPolicy] = &[
    HostPolicy {
        name: "broken-unguarded",
        summary: "recommended with concurrent requests and no generation guard",
        broken: true,
        fetch_mode: FetchMode::Concurrent,
        guard_superseded: false,
        ..RECOMMENDED
    },
    HostPolicy {
        name: "broken-stale-notice",
        summary: "recommended that never clears a notice",
        broken: true,
        clear_resolved_notices: false,
        ..RECOMMENDED
    },
    HostPolicy {
        name: "broken-opaque-stubs",
        summary: "recommended whose stubs fail opaquely",
        broken: true,
        stub_guidance: None,
        ..RECOMMENDED
    },
    HostPolicy {
        name: "broken-mcp-hint",
        summary: "recommended whose failure notices say \"run /mcp\" although /mcp does not re-list",
        broken: true,
        mcp_refreshes: false,
        ..RECOMMENDED
    },
    HostPolicy {
        name: "broken-misroute",
        summary: "recommended that runs another connector's tool of the same name",
        broken: true,
        on_unknown_tool: OnUnknownTool::Misroute,
        ..RECOMMENDED
    },
    HostPolicy {
        name: "broken-silent-failure",
        summary: "recommended that drops the notice when a refresh fails",
        broken: true,
        notice_on_failure: false,
        explain_unknown_tool: false,
        ..RECOMMENDED
    },
    HostPolicy {
        name: "broken-no-turn-check",
        summary: "recommended without the account check at turn start",
        broken: true,
        on_turn: OnTurn::Nothing,
        ..RECOMMENDED
    },
];

/// Looks a policy up by name, among the design space and the broken variants.
pub fn policy_named(name: &str) -> Option<HostPolicy> {
    POLICIES.iter().chain(BROKEN_POLICIES).find(|p| p.name == name).copied()
}
