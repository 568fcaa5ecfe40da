//! Host mutants: the reference host with one of its decisions mutated (SPEC.md §11.4).
//!
//! A policy varies a host's design; a mutant plants one defect in a design, the kind of slip a
//! host team makes while writing one. Each mutant is a [`Site`] (a decision the host logic of
//! [`crate::system`] makes, named for what it decides) and an [`Operator`] (how the decision goes
//! wrong). The set is generated: every site lists the shape of its decision, and every operator
//! that applies to that shape makes one mutant. Nothing is chosen by hand but the sites.
//!
//! The mutations touch only what the host decides (requests, catalogue, notices, holds, replies),
//! never the world or the oracle's bookkeeping, so a mutant's states are judged exactly as a
//! policy's are.

use serde::Serialize;

/// What a decision looks like, which decides the operators that apply to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Shape {
    /// A condition that depends on the state (not only on the policy): it can be inverted.
    guard: bool,
    /// An effect on one session and connector: it can be applied to the wrong one.
    targeted: bool,
    /// A bound on a count: it can be off by one.
    counted: bool,
    /// An effect that sends a `tools/list`: it can be sent late.
    lists: bool,
}

macro_rules! sites {
    ($($(#[doc = $doc:literal])+ $site:ident = $name:literal, $what:literal, guard: $g:literal, targeted: $t:literal, counted: $c:literal$(, lists: $l:literal)?;)+) => {
        /// A decision of the host logic.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        pub enum Site {
            $($(#[doc = $doc])+ $site,)+
        }

        impl Site {
            /// Every site, in the order of the host logic.
            pub const ALL: &[Site] = &[$(Site::$site,)+];

            /// The site's name, as a mutant's name spells it.
            pub fn name(self) -> &'static str {
                match self { $(Site::$site => $name,)+ }
            }

            /// What the decision is, in words.
            pub fn what(self) -> &'static str {
                match self { $(Site::$site => $what,)+ }
            }

            fn shape(self) -> Shape {
                match self { $(Site::$site => Shape { guard: $g, targeted: $t, counted: $c, lists: false $(|| $l)? },)+ }
            }
        }
    };
}

sites! {
    /// A `list_changed` arrives: re-list the connector.
    RelistOnNotify = "relist-on-notify", "re-list a connector when its list_changed arrives",
        guard: true, targeted: true, counted: false, lists: true;
    /// A turn starts: read the account (and hold the turn until the read settles).
    ReadAtTurn = "read-at-turn", "read the account at a turn's start, holding the turn for it",
        guard: false, targeted: false, counted: false;
    /// The account read arrived: does the connector's offered list match the account?
    AccountMatches = "account-matches", "compare the offered list with the account read",
        guard: true, targeted: false, counted: false;
    /// The account read shows a difference: re-list the connector.
    RelistOnDifference = "relist-on-difference", "re-list a connector whose list differs from the account read",
        guard: false, targeted: true, counted: false, lists: true;
    /// The account read matches, but a refresh failed or a reply is in flight: re-list.
    RelistUnsettled = "relist-unsettled", "re-list a matching connector whose refresh failed or is in flight",
        guard: true, targeted: true, counted: false, lists: true;
    /// The account read failed: re-list every connector.
    RelistOnReadFailure = "relist-on-read-failure", "re-list every connector when the account read fails",
        guard: false, targeted: true, counted: false, lists: true;
    /// The account read arrived: release a turn held only for it.
    HoldAfterRead = "hold-after-read", "keep the turn held after the read only if refreshing",
        guard: false, targeted: false, counted: false;
    /// A refresh is outstanding: hold the turn.
    HoldWhileRefreshing = "hold-while-refreshing", "hold a turn while the session's refreshes are outstanding",
        guard: false, targeted: false, counted: false;
    /// A request would exceed the in-flight limit: at most this many in flight.
    InFlightLimit = "in-flight-limit", "keep at most the policy's number of tools/list in flight",
        guard: false, targeted: false, counted: true;
    /// Over the limit: queue one refetch for when a reply returns.
    QueueRefetch = "queue-refetch", "queue a refetch when a request cannot be sent yet",
        guard: false, targeted: false, counted: false;
    /// A paged reply: follow its cursor to the last page.
    FollowCursor = "follow-cursor", "follow a paged reply's cursor before applying it",
        guard: false, targeted: false, counted: false;
    /// A reply arrives: is it superseded by a later one already applied?
    IgnoreSuperseded = "ignore-superseded", "ignore a reply superseded by a later one already applied",
        guard: true, targeted: false, counted: false;
    /// A reply arrives: apply it to the session's catalogue entry for its connector.
    ApplyReply = "apply-reply", "apply a tools/list reply to the catalogue entry of its session and connector",
        guard: false, targeted: true, counted: false;
    /// A reply was applied: mark the older requests in flight as superseded.
    MarkSuperseded = "mark-superseded", "mark the older requests in flight superseded",
        guard: false, targeted: false, counted: true;
    /// A refresh or an account read shows a notice's gap closed: clear the notice.
    ClearResolvedNotice = "clear-resolved-notice", "clear a notice once a refresh or read shows its gap closed",
        guard: true, targeted: false, counted: false;
    /// The server said the transport session is gone (404): re-initialise and re-list.
    ReinitialiseOnLostSession = "reinitialise-on-lost-session", "re-initialise and re-list after a 404",
        guard: false, targeted: false, counted: false;
    /// A `tools/list` failed: show a notice on the connector.
    NoticeOnFailedListing = "notice-on-failed-listing", "show a notice when a tools/list fails",
        guard: false, targeted: true, counted: false;
    /// A reply left a refetch queued: send it.
    SendQueuedRefetch = "send-queued-refetch", "send the queued refetch when a reply returns",
        guard: false, targeted: false, counted: false;
    /// A request never returns: give up on it after a timeout.
    TimeOutHungRequest = "time-out-hung-request", "give up on a hung tools/list after a timeout",
        guard: false, targeted: false, counted: false;
    /// The user runs the refresh command: re-list every connector.
    RelistOnRefreshCommand = "relist-on-refresh-command", "re-list every connector on the refresh command (/mcp)",
        guard: false, targeted: true, counted: false, lists: true;
    /// The user restarts the session: list every connector.
    RelistOnRestart = "relist-on-restart", "list every connector when the session restarts",
        guard: false, targeted: true, counted: false, lists: true;
    /// The user completes a connector's handshake in the session: list it.
    RelistOnAuthenticate = "relist-on-authenticate", "list a connector after the user authenticates it in-session",
        guard: false, targeted: true, counted: false, lists: true;
    /// The agent completes a connector's handshake through its stubs: list it.
    RelistOnHandshake = "relist-on-handshake", "list a connector after the agent completes its handshake",
        guard: false, targeted: true, counted: false, lists: true;
    /// A tool call hit a lost transport session: re-initialise, re-list and let the agent retry.
    ReinitialiseOnCall = "reinitialise-on-call", "re-initialise and re-list when a call finds the session gone",
        guard: false, targeted: false, counted: false;
    /// A tool call got a 401: show a notice naming the handshake.
    NoticeOnUnauthorized = "notice-on-unauthorized", "show an authenticate notice when a call gets a 401",
        guard: false, targeted: true, counted: false;
    /// A tool call got a 401: re-list the connector.
    RelistOnUnauthorized = "relist-on-unauthorized", "re-list a connector when a call gets a 401",
        guard: false, targeted: true, counted: false, lists: true;
    /// The agent called a stale stub: re-list the connector.
    RelistOnStaleStub = "relist-on-stale-stub", "re-list a connector whose stale stub the agent called",
        guard: false, targeted: true, counted: false, lists: true;
    /// A refresh on the agent's behalf: hold the turn and let the agent retry, once per turn.
    RetryOnce = "retry-once", "let the agent retry once after a refresh on its behalf",
        guard: true, targeted: false, counted: false;
    /// A stale stub's reply names a recovery step.
    StubGuidance = "stub-guidance", "name a recovery step in a stale stub's reply",
        guard: false, targeted: false, counted: false;
    /// A call of an unlisted tool: name the connector's notice's recovery step in the error.
    ExplainUnknownTool = "explain-unknown-tool", "name the notice's recovery step in a no-such-tool error",
        guard: false, targeted: false, counted: false;
}

/// How a decision goes wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Operator {
    /// The decision is never taken (a guard is always false; an effect never happens).
    Drop,
    /// The decision's condition is negated.
    Invert,
    /// The effect lands on the next connector (keyed by the wrong connector).
    WrongConnector,
    /// The effect lands on the next session (keyed by the wrong session).
    WrongSession,
    /// The count is one more than it should be.
    OffByOne,
    /// The effect happens the first [`Memo::CAP`] times, then never again (a handler registered
    /// once, a flag never reset).
    ///
    /// [`Memo::CAP`]: crate::state::Memo::CAP
    Capped,
    /// The `tools/list` goes out late: once the host has handled the next thing it sees
    /// ([`crate::Action::reaches_host`]), not within this step (a refresh started and not
    /// awaited, run by the event loop only when the next event wakes it).
    Late,
}

impl Operator {
    /// Every operator.
    pub const ALL: [Operator; 7] = [
        Operator::Drop,
        Operator::Invert,
        Operator::WrongConnector,
        Operator::WrongSession,
        Operator::OffByOne,
        Operator::Capped,
        Operator::Late,
    ];

    /// The operator's name, as a mutant's name spells it.
    pub fn name(self) -> &'static str {
        match self {
            Operator::Drop => "drop",
            Operator::Invert => "invert",
            Operator::WrongConnector => "wrong-connector",
            Operator::WrongSession => "wrong-session",
            Operator::OffByOne => "off-by-one",
            Operator::Capped => "capped",
            Operator::Late => "late",
        }
    }

    /// Whether the operator applies to a decision of this shape.
    fn applies(self, shape: Shape) -> bool {
        match self {
            Operator::Drop => !shape.counted,
            Operator::Invert => shape.guard,
            Operator::WrongConnector | Operator::WrongSession => shape.targeted,
            Operator::OffByOne => shape.counted,
            Operator::Capped => shape.targeted,
            Operator::Late => shape.lists,
        }
    }

    /// Whether the mutant keeps memory between steps ([`crate::state::Memo`]): its reachable
    /// states are not the policy's, so telling it from the policy takes a search of its own.
    pub fn remembers(self) -> bool {
        matches!(self, Operator::Capped | Operator::Late)
    }
}

/// One mutant: a site and how its decision goes wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Mutant {
    /// The decision.
    pub site: Site,
    /// How it goes wrong.
    pub operator: Operator,
}

impl Mutant {
    /// Every mutant, site by site in the order of the host logic: those without memory, then
    /// those with (so that a mutant's number, which seeds its walks, stays as operators are added).
    pub fn all() -> Vec<Mutant> {
        [false, true]
            .into_iter()
            .flat_map(|memory| {
                Site::ALL.iter().flat_map(move |&site| {
                    Operator::ALL
                        .into_iter()
                        .filter(move |o| o.remembers() == memory && o.applies(site.shape()))
                        .map(move |operator| Mutant { site, operator })
                })
            })
            .collect()
    }

    /// The mutant's name: `site/operator`.
    pub fn name(self) -> String {
        format!("{}/{}", self.site.name(), self.operator.name())
    }

    /// The mutant called `name`, if there is one.
    pub fn named(name: &str) -> Option<Mutant> {
        Mutant::all().into_iter().find(|m| m.name() == name)
    }

    /// The [`CLASSIFYING_BOUNDS`] the mutant is classified at, in order: the first two, and the
    /// third too for a mutant with memory.
    pub fn classifying_bounds(self) -> &'static [crate::Bounds] {
        if self.operator.remembers() { &CLASSIFYING_BOUNDS } else { &CLASSIFYING_BOUNDS[..2] }
    }

    /// The mutant in words: the decision, and how it goes wrong.
    pub fn describe(self) -> String {
        let how = match self.operator {
            Operator::Drop => "never done",
            Operator::Invert => "done exactly when it should not be",
            Operator::WrongConnector => "done for the next connector instead",
            Operator::WrongSession => "done in the next session instead",
            Operator::OffByOne => "with a count one too high",
            Operator::Capped => "done the first time only",
            Operator::Late => "sent only when the next event reaches the host",
        };
        format!("{}: {how}", self.site.what())
    }
}

impl std::fmt::Display for Mutant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

/// The bounds a mutant is classified at: each set is searched without symmetry reduction (a
/// mutant that acts on the wrong connector or session is not symmetric). Two connectors expose a
/// decision keyed by the wrong connector, two sessions one keyed by the wrong session; a mutant
/// with memory is also classified at the third ([`Mutant::classifying_bounds`]), with budgets
/// large enough for a decision to come again after it was capped (at budgets of 1, most come
/// once; authenticating in the session twice takes three auth changes, the second after an expiry).
pub const CLASSIFYING_BOUNDS: [crate::Bounds; 3] = [
    CLASSIFYING,
    crate::Bounds { connectors: 1, sessions: 2, ..CLASSIFYING },
    crate::Bounds { connectors: 1, sessions: 1, auth_changes: 3, faults: 2, commands: 2, ..CLASSIFYING },
];

const CLASSIFYING: crate::Bounds = crate::Bounds {
    connectors: 2,
    sessions: 1,
    turns: 2,
    auth_changes: 1,
    faults: 1,
    commands: 1,
    symmetry: false,
    servers: crate::system::Servers::Any,
    revisions: crate::system::Revisions::Handshake,
    contexts: crate::state::Contexts::One,
};

/// Where a mutant's host first decides otherwise than the unmutated one.
#[derive(Clone, Debug)]
pub struct Divergence {
    /// A shortest path to a state where the two differ: of the unmutated model, or of the
    /// mutant's own for a mutant with memory (whose states the unmutated model never reaches).
    pub trace: crate::Trace,
    /// The action they take differently there; `None` when they enable different actions.
    pub action: Option<crate::Action>,
}

/// Per thread: the first state (by number) at which each of `others` decides otherwise than the
/// model searched, and how.
struct Divergences<'m> {
    others: &'m [crate::CoherenceModel],
    searched: &'m crate::CoherenceModel,
    first: Vec<Option<(u32, Option<crate::Action>)>>,
    enabled: Vec<crate::Action>,
    theirs: Vec<crate::Action>,
}

/// `state` with a mutant's memory set aside: what the host shows and does, not what it keeps.
fn forgotten(state: crate::State) -> crate::State {
    crate::State { memo: crate::state::Memo::default(), ..state }
}

impl crate::Visitor for Divergences<'_> {
    fn state(&mut self, id: u32, state: &crate::State) {
        self.enabled.clear();
        self.searched.enabled_actions(state, &mut self.enabled);
        for (k, model) in self.others.iter().enumerate() {
            if self.first[k].is_none() {
                self.theirs.clear();
                model.enabled_actions(state, &mut self.theirs);
                if self.theirs != self.enabled {
                    self.first[k] = Some((id, None));
                }
            }
        }
    }

    fn transition(&mut self, from: u32, state: &crate::State, action: crate::Action, next: &crate::State) {
        for (k, model) in self.others.iter().enumerate() {
            // A state's transitions come after the state itself, and in action order: the first
            // difference found is the first in search order.
            if self.first[k].is_none_or(|(id, _)| id > from)
                && model.step(state, action).map(forgotten) != Some(forgotten(*next))
            {
                self.first[k] = Some((from, Some(action)));
            }
        }
    }
}

/// Where each of `others` first decides otherwise than `searched`, in one breadth-first search of
/// `searched`'s reachable states (whole states: their numbers are a trace's).
fn first_divergences(
    searched: &crate::CoherenceModel,
    others: &[crate::CoherenceModel],
    threads: usize,
) -> Vec<Option<Divergence>> {
    let mut shares: Vec<Divergences> = (0..threads.max(1))
        .map(|_| Divergences {
            others,
            searched,
            first: vec![None; others.len()],
            enabled: Vec::new(),
            theirs: Vec::new(),
        })
        .collect();
    let found = crate::search_with(searched, crate::Key::Whole, &mut shares);
    (0..others.len())
        .map(|k| {
            // Within a share, a state's enabled-action difference is recorded before its
            // transitions; across shares, the least state number wins.
            let first = shares.iter().filter_map(|s| s.first[k]).min_by_key(|(id, action)| (*id, action.is_some()));
            first.map(|(id, action)| Divergence { trace: found.trace(id), action })
        })
        .collect()
}

/// Where each of `mutants` first decides otherwise than `model`'s host, on `threads` threads: a
/// shortest path to the first state where a mutant enables other actions or steps an action to
/// another state (its memory aside), or `None` when no reachable state tells it from `model` (it
/// is equivalent within `model`'s bounds: it reaches `model`'s states and takes its transitions).
///
/// Mutants without memory reach only `model`'s states until they diverge, so one search of
/// `model` steps all of them beside it. A mutant with memory ([`Operator::remembers`]) reaches
/// states `model` does not (the same host state, another memory), so its own states are searched,
/// each stepped by `model` beside it.
pub fn divergences(model: &crate::CoherenceModel, mutants: &[Mutant], threads: usize) -> Vec<Option<Divergence>> {
    let mutated = |m: Mutant| crate::CoherenceModel { mutant: Some(m), ..model.clone() };
    let plain: Vec<usize> = (0..mutants.len()).filter(|&k| !mutants[k].operator.remembers()).collect();
    let mut out: Vec<Option<Divergence>> = vec![None; mutants.len()];
    let plain_models: Vec<crate::CoherenceModel> = plain.iter().map(|&k| mutated(mutants[k])).collect();
    if !plain_models.is_empty() {
        for (&k, found) in plain.iter().zip(first_divergences(model, &plain_models, threads)) {
            out[k] = found;
        }
    }
    for (k, &m) in mutants.iter().enumerate().filter(|(_, m)| m.operator.remembers()) {
        out[k] = first_divergences(&mutated(m), std::slice::from_ref(model), threads).pop().flatten();
    }
    out
}
