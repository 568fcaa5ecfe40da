//! Host policies: the design space of SPEC.md §5.
//!
//! A policy is a named configuration of the one model: a set of choices a host makes about
//! when it re-lists tools, what it tells the user and the language model, and how it guards
//! its catalogue. Every policy is checked against every invariant; the verdict table is the
//! result.

use crate::state::{Notice, NoticeReason, Recovery};
use serde::{Deserialize, Serialize};

/// What the host does when a `notifications/tools/list_changed` arrives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FetchMode {
    /// A new request for every trigger, up to the in-flight bound; beyond it, one queued refetch.
    Concurrent,
    /// At most one request in flight; a trigger meanwhile queues one refetch for when it returns.
    SingleFlight,
}

/// What the host does at the start of every user turn. It cannot know which connector the user
/// is about to need, so whatever it does, it does for every connector.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
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

/// What a host that reads the account at a turn's start does when the read fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnReadFailure {
    /// Nothing: the catalogue is taken to be current (it trusts the read).
    Trust,
    /// Treat every connector as different: re-list them all.
    Relist,
}

/// What the host answers when the agent calls a tool the catalogue does not list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnUnknownTool {
    /// A protocol error, "no such tool".
    NoSuchTool,
    /// Re-list the connector, hold the turn, and let the agent retry once.
    Refresh,
    /// Run another connector's tool of the same name (a bug seen in the wild).
    Misroute,
}

/// Where the host keeps the tool lists it offers the language model (SPEC.md §5.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Catalogue {
    /// A catalogue kept between turns, replaced by the replies the host applies.
    Kept,
    /// Kept between turns, dropped when a `list_changed` arrives and fetched again at the next
    /// offer (at once, if a turn is in progress).
    DroppedOnNotify,
    /// Kept between turns until the host's refresh command drops it (an explicit `invalidate`);
    /// fetched again at the next offer.
    DroppedOnCommand,
    /// None between turns: every offer lists every connector, and replies that arrive between
    /// turns are dropped.
    PerTurn,
}

/// Whether the host opens a `subscriptions/listen` stream to a 2026-07-28 server (the only way
/// such a server tells it of a change).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Listen {
    /// Never: it hears of no change.
    #[default]
    Never,
    /// Once, when the session starts; a stream that ends stays closed.
    Open,
    /// When the session starts, and again whenever the stream ends, re-listing then (what was
    /// sent while it was down is gone).
    Reopen,
}

/// What the host makes of a 2026-07-28 `tools/list` result's TTL (`ttlMs`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TtlUse {
    /// Nothing: a cached list is used for as long as the host's other choices keep it.
    #[default]
    Ignore,
    /// A stale list (TTL zero, or expired) is fetched again at the next turn's start, and the
    /// turn held until it arrives; a fresh one is used as it is.
    Honour,
}

/// Whether the host (or a gateway in front of the servers) shares `tools/list` results between
/// its sessions: one cache that every session's catalogue reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Share {
    /// Every session lists for itself.
    #[default]
    Never,
    /// A reply to one session is served to every session, whoever's token it was listed with
    /// (`cacheScope` ignored).
    Always,
    /// A reply is served to the sessions of the authorization context it was listed under, and
    /// to every session only when it is `public` (`cacheScope` honoured; a 2025-era result,
    /// which has none, is private).
    Scoped,
}

/// The commands a host gives its user (SPEC.md §5.3). A host without one is never asked to run it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Commands {
    /// A refresh command (`/mcp`, or an application's `invalidate`).
    pub refresh: bool,
    /// The user can quit and relaunch the session.
    pub restart: bool,
    /// The user can complete a connector's authentication handshake inside the session.
    pub authenticate: bool,
}

impl Commands {
    /// Every command.
    pub const ALL: Commands = Commands { refresh: true, restart: true, authenticate: true };
}

/// A host policy. Written as a file (a host design, `coherence check --host-design`), it holds
/// every field but `broken`, under the names below.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HostPolicy {
    /// The policy's name, as the CLI and SPEC.md spell it.
    #[serde(deserialize_with = "leaked")]
    pub name: Text,
    /// One sentence for the verdict table's legend.
    #[serde(deserialize_with = "leaked")]
    pub summary: Text,
    /// Kept only to show that an invariant can fail; not part of the design space (and not of a
    /// host design).
    #[serde(skip)]
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
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
    /// Clear a connector's notice once a refresh or an account read shows the gap closed.
    pub clear_resolved_notices: bool,
    /// Reaction to a failed account read (hosts that read the account at a turn's start).
    pub on_read_failure: OnReadFailure,
    /// Give up on a `tools/list` request that never returns, after a timeout, as on a transport
    /// failure.
    pub request_timeout: bool,
    /// Hold a turn while any `tools/list` of the session is outstanding, so that the agent's next
    /// step sees the refreshed catalogue.
    pub hold_while_refreshing: bool,
    /// A notice shown on every connector at all times (the crying-wolf host).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub banner: Option<Notice>,
    /// Where the offered lists are kept.
    pub catalogue: Catalogue,
    /// A `tools/list` that fails while a turn waits for it ends the turn with an error naming the
    /// connector, before the language model is called again.
    pub abort_on_failure: bool,
    /// A listing of only the auth stubs aborts the turn too, as if the list had failed (a defect:
    /// the error says the tools could not be listed, and hides the stubs that would start the
    /// handshake).
    pub abort_on_stubs: bool,
    /// Follow a paged reply's `nextCursor` to its last page before applying it; otherwise the
    /// first page alone is applied.
    pub follow_cursor: bool,
    /// Re-list a connector when the agent completes its authentication handshake through the
    /// stubs inside a turn (a platform knows its own stubs; a generic host sees only a tool call).
    pub relist_on_handshake: bool,
    /// The commands the host has.
    pub commands: Commands,
    /// Listen streams to 2026-07-28 servers (absent from a design file: `never`).
    #[serde(default)]
    pub listen: Listen,
    /// The TTLs of 2026-07-28 results (absent from a design file: `ignore`).
    #[serde(default)]
    pub ttl: TtlUse,
    /// A cache shared between sessions (absent from a design file: `never`).
    #[serde(default)]
    pub share: Share,
}

/// A host design file (`coherence check --host-design`): one or more policies, each with every
/// choice of SPEC.md §5 written out, in TOML (`[[policy]]` tables) or JSON (`{"policy": [...]}`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HostDesigns {
    /// The designs, checked in this order.
    pub policy: Vec<HostPolicy>,
}

/// A policy's name or summary. (A name of its own, so that deserialising it is not taken for a
/// borrow of the input: a design's strings are [`leaked`].)
pub type Text = &'static str;

/// A string read from a host design, kept for the rest of the run: a policy names itself with
/// `&'static str`, and a run reads its designs once.
fn leaked<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<&'static str, D::Error> {
    Ok(Box::leak(String::deserialize(deserializer)?.into_boxed_str()))
}

impl HostPolicy {
    /// The host reads the account's connector state at a turn's start (a connector platform).
    pub fn reads_account(&self) -> bool {
        self.on_turn != OnTurn::Nothing
    }
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
    on_read_failure: OnReadFailure::Trust,
    request_timeout: false,
    hold_while_refreshing: false,
    banner: None,
    catalogue: Catalogue::Kept,
    abort_on_failure: false,
    abort_on_stubs: false,
    follow_cursor: true,
    relist_on_handshake: false,
    commands: Commands::ALL,
    listen: Listen::Never,
    ttl: TtlUse::Ignore,
    share: Share::Never,
};

/// What the agent frameworks and SDK client groups of SPEC.md §5.2 share: no notices, no `/mcp`,
/// no in-session authentication command, a timeout on every request, and a failing list that
/// aborts the turn it was made for.
const FRAMEWORK: HostPolicy = HostPolicy {
    request_timeout: true,
    abort_on_failure: true,
    commands: Commands { refresh: false, restart: true, authenticate: false },
    ..BASE
};

/// The policy SPEC.md recommends for a connector platform: a host that may read the account's
/// connector state and recognise its own auth stubs.
pub const RECOMMENDED: HostPolicy = HostPolicy {
    name: "recommended",
    summary: "read the account at every turn and re-list where it differs (all, if the read fails), re-list on \
              any list_changed, one request in flight, hold the turn while refreshing, time out hung requests, \
              notices on every failure, stubs refresh then guide, /mcp refreshes; to 2026-07-28 servers, keep a \
              listen stream open (reopen and re-list when it ends) and re-list a stale list at a turn's start",
    broken: false,
    on_list_changed: OnListChanged::Relist,
    fetch_mode: FetchMode::SingleFlight,
    guard_superseded: false,
    on_turn: OnTurn::Refresh,
    refresh_on_stub: true,
    stub_guidance: Some(Recovery::Refresh),
    notice_on_failure: true,
    failure_recovery: Recovery::Refresh,
    mcp_refreshes: true,
    reinitialise_on_lost_session: true,
    on_unknown_tool: OnUnknownTool::NoSuchTool,
    explain_unknown_tool: true,
    clear_resolved_notices: true,
    on_read_failure: OnReadFailure::Relist,
    request_timeout: true,
    hold_while_refreshing: true,
    banner: None,
    catalogue: Catalogue::Kept,
    abort_on_failure: false,
    abort_on_stubs: false,
    follow_cursor: true,
    relist_on_handshake: true,
    commands: Commands::ALL,
    listen: Listen::Reopen,
    ttl: TtlUse::Honour,
    share: Share::Never,
};

/// The policy SPEC.md recommends for a generic MCP host of third-party servers: `recommended`
/// without the account read, using only what MCP gives it (notifications, `tools/list`, errors,
/// its own commands).
pub const RECOMMENDED_MCP: HostPolicy = HostPolicy {
    name: "recommended-mcp",
    summary: "recommended without the account read: only what MCP gives a host (notifications, tools/list, \
              errors, its own commands)",
    on_turn: OnTurn::Nothing,
    relist_on_handshake: false,
    ..RECOMMENDED
};

/// No host reactions at all: stepping the model with this policy moves the world (account,
/// servers, network, turns) and the oracle's bookkeeping, and nothing else. The conformance runner
/// steps the world with it and takes the host's reactions from the implementation under test.
pub const WORLD_ONLY: HostPolicy = HostPolicy {
    name: "world-only",
    summary: "no host reactions: the world alone, for the conformance runner",
    broken: true,
    // The runner plays the clock: it may always tell a host that a hung request's time is up.
    request_timeout: true,
    // And the servers: it may page any reply, whatever the host does with pages.
    follow_cursor: false,
    ..BASE
};

/// An agent framework that lists every connector at every turn and keeps nothing between turns.
pub const FETCH_PER_TURN: HostPolicy = HostPolicy {
    name: "fetch-per-turn",
    summary: "no catalogue between turns: every turn lists every connector and offers what returns; a failing \
              list aborts the turn with an error naming the connector",
    catalogue: Catalogue::PerTurn,
    ..FRAMEWORK
};

/// A host that trusts TTLs and nothing else.
const TTL_ONLY: HostPolicy = HostPolicy {
    name: "ttl-only",
    summary: "as session-start-only, but a 2026-07-28 list is fetched again at a turn's start once its TTL has \
              expired (hung requests time out); no listen stream",
    ttl: TtlUse::Honour,
    request_timeout: true,
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
    HostPolicy {
        name: "restart-banner",
        summary: "as session-start-only, plus a permanent \"changed elsewhere: restart\" notice on every connector \
                  and stubs that say \"restart\" (crying wolf)",
        stub_guidance: Some(Recovery::Restart),
        banner: Some(Notice { reason: NoticeReason::ChangedElsewhere, recovery: Recovery::Restart }),
        ..BASE
    },
    RECOMMENDED,
    RECOMMENDED_MCP,
    FETCH_PER_TURN,
    HostPolicy {
        name: "invalidate-on-notify",
        summary: "a cached list is dropped on any list_changed and fetched again at the next offer; a failing fetch \
                  aborts the turn",
        catalogue: Catalogue::DroppedOnNotify,
        ..FRAMEWORK
    },
    HostPolicy {
        name: "snapshot-at-connect",
        summary: "listed once per connection and never again (a client group that flattens tools at connect \
                  time); a lost transport session reconnects and lists",
        reinitialise_on_lost_session: true,
        ..FRAMEWORK
    },
    TTL_ONLY,
    HostPolicy {
        name: "ttl-and-listen",
        summary: "to 2026-07-28 servers, a listen stream kept open (reopened, with a re-list, when it ends), \
                  re-list on any list_changed, and a stale list fetched again at a turn's start (hung requests \
                  time out)",
        on_list_changed: OnListChanged::Relist,
        request_timeout: true,
        listen: Listen::Reopen,
        ttl: TtlUse::Honour,
        ..BASE
    },
    HostPolicy {
        name: "shared-cache",
        summary: "recommended-mcp behind one cache for every session (a gateway's): a tools/list reply to one \
                  session is served to the others, whoever's token it was listed with (cacheScope ignored)",
        share: Share::Always,
        ..RECOMMENDED_MCP
    },
    HostPolicy {
        name: "shared-cache-scoped",
        summary: "as shared-cache, but a reply is served to another user's session only when its cacheScope is \
                  public",
        share: Share::Scoped,
        ..RECOMMENDED_MCP
    },
    HostPolicy {
        name: "cache-until-invalidated",
        summary: "cached across turns until the application invalidates it (its refresh command), then fetched \
                  at the next offer; a failing fetch aborts the turn",
        catalogue: Catalogue::DroppedOnCommand,
        commands: Commands { refresh: true, ..FRAMEWORK.commands },
        ..FRAMEWORK
    },
];

/// Deliberately broken variants of `recommended`, one defect each, kept so that every invariant
/// is shown to fail (SPEC.md §6, non-vacuity).
pub const BROKEN_POLICIES: &[HostPolicy] = &[
    HostPolicy {
        name: "broken-advertised-only",
        summary: "recommended that re-lists only for servers that declared tools.listChanged",
        broken: true,
        on_list_changed: OnListChanged::RelistIfAdvertised,
        ..RECOMMENDED
    },
    HostPolicy {
        name: "broken-concurrent",
        summary: "recommended with concurrent requests (no single flight, no generation guard)",
        broken: true,
        fetch_mode: FetchMode::Concurrent,
        ..RECOMMENDED
    },
    HostPolicy {
        name: "broken-trusts-read",
        summary: "recommended that takes a failed account read to mean nothing changed",
        broken: true,
        on_read_failure: OnReadFailure::Trust,
        ..RECOMMENDED
    },
    HostPolicy {
        name: "broken-no-hold",
        summary: "recommended that lets the agent act while a refresh is outstanding",
        broken: true,
        hold_while_refreshing: false,
        ..RECOMMENDED
    },
    HostPolicy {
        name: "broken-no-timeout",
        summary: "recommended that waits for a hung tools/list for ever",
        broken: true,
        request_timeout: false,
        ..RECOMMENDED
    },
    HostPolicy {
        name: "broken-no-stub-refresh",
        summary: "recommended whose stubs guide but never re-list",
        broken: true,
        refresh_on_stub: false,
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
        name: "broken-silent-failure",
        summary: "recommended that shows no notice when a refresh or a call fails",
        broken: true,
        notice_on_failure: false,
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
        name: "broken-no-reinit",
        summary: "recommended that never re-initialises after a 404",
        broken: true,
        reinitialise_on_lost_session: false,
        ..RECOMMENDED
    },
    HostPolicy {
        name: "broken-unexplained",
        summary: "recommended whose \"no such tool\" does not name the notice's recovery step",
        broken: true,
        explain_unknown_tool: false,
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
        name: "broken-misroute",
        summary: "recommended that runs another connector's tool of the same name",
        broken: true,
        on_unknown_tool: OnUnknownTool::Misroute,
        ..RECOMMENDED
    },
    HostPolicy {
        name: "broken-first-page",
        summary: "recommended that applies the first page of a paged tools/list reply and never follows nextCursor",
        broken: true,
        follow_cursor: false,
        ..RECOMMENDED
    },
    HostPolicy {
        name: "broken-abort-on-stubs",
        summary: "fetch-per-turn that aborts the turn when a connector lists only its auth stubs, saying its tools \
                  could not be listed",
        broken: true,
        abort_on_stubs: true,
        ..FETCH_PER_TURN
    },
];

/// One element of a recommended policy: a choice that differs from the do-nothing host, with the
/// broken variant that drops it. SPEC.md §7.3 shows each necessary: its variant breaks something.
#[derive(Clone, Copy, Debug)]
pub struct Element {
    /// What the element is, in SPEC.md's words.
    pub what: &'static str,
    /// The broken variant of `recommended` without it (`recommended-mcp` for the account read).
    pub variant: &'static str,
    /// The policy without the element.
    pub drop: fn(HostPolicy) -> HostPolicy,
}

/// The elements of `recommended`. `recommended-mcp` has every one but the first two.
pub const ELEMENTS: &[Element] = &[
    Element {
        what: "read the account at a turn's start and re-list where it differs; know its own stubs",
        variant: "recommended-mcp",
        drop: |p| HostPolicy { on_turn: OnTurn::Nothing, relist_on_handshake: false, ..p },
    },
    Element {
        what: "re-list every connector when the account read fails",
        variant: "broken-trusts-read",
        drop: |p| HostPolicy { on_read_failure: OnReadFailure::Trust, ..p },
    },
    Element {
        what: "re-list on any list_changed, declared or not",
        variant: "broken-advertised-only",
        drop: |p| HostPolicy { on_list_changed: OnListChanged::RelistIfAdvertised, ..p },
    },
    Element {
        what: "one tools/list in flight per connector, one queued",
        variant: "broken-concurrent",
        drop: |p| HostPolicy { fetch_mode: FetchMode::Concurrent, ..p },
    },
    Element {
        what: "hold the turn while a refresh is outstanding",
        variant: "broken-no-hold",
        drop: |p| HostPolicy { hold_while_refreshing: false, ..p },
    },
    Element {
        what: "time out a hung tools/list",
        variant: "broken-no-timeout",
        drop: |p| HostPolicy { request_timeout: false, ..p },
    },
    Element {
        what: "re-list when a stale stub is called",
        variant: "broken-no-stub-refresh",
        drop: |p| HostPolicy { refresh_on_stub: false, ..p },
    },
    Element {
        what: "a stale stub's reply names a recovery step",
        variant: "broken-opaque-stubs",
        drop: |p| HostPolicy { stub_guidance: None, ..p },
    },
    Element {
        what: "a notice when a refresh or a call fails",
        variant: "broken-silent-failure",
        drop: |p| HostPolicy { notice_on_failure: false, ..p },
    },
    Element {
        what: "/mcp re-lists every connector",
        variant: "broken-mcp-hint",
        drop: |p| HostPolicy { mcp_refreshes: false, ..p },
    },
    Element {
        what: "re-initialise and re-list after a 404",
        variant: "broken-no-reinit",
        drop: |p| HostPolicy { reinitialise_on_lost_session: false, ..p },
    },
    Element {
        what: "\"no such tool\" names the notice's recovery step",
        variant: "broken-unexplained",
        drop: |p| HostPolicy { explain_unknown_tool: false, ..p },
    },
    Element {
        what: "clear a notice once a refresh or a read shows its gap closed",
        variant: "broken-stale-notice",
        drop: |p| HostPolicy { clear_resolved_notices: false, ..p },
    },
    Element {
        what: "follow a paged listing's nextCursor to its last page",
        variant: "broken-first-page",
        drop: |p| HostPolicy { follow_cursor: false, ..p },
    },
];

/// Whether two policies make the same choices (names and summaries aside).
pub fn same_choices(a: &HostPolicy, b: &HostPolicy) -> bool {
    let strip = |p: &HostPolicy| HostPolicy { name: "", summary: "", broken: false, ..*p };
    strip(a) == strip(b)
}

/// Looks a policy up by name, among the design space and the broken variants.
pub fn policy_named(name: &str) -> Option<HostPolicy> {
    POLICIES.iter().chain(BROKEN_POLICIES).find(|p| p.name == name).copied()
}
