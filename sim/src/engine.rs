//! The conformance engine: replays a fixture through a host and judges every step, online, by the
//! model's invariants.
//!
//! The engine keeps one model [`State`]. Its world part (account, servers, network, turns, the
//! oracle's bookkeeping) moves by the model's own rules: each stimulus is stepped with
//! [`WORLD_ONLY`], the policy with no host reactions. Its host part (catalogue, notices, requests
//! in flight, whether a turn is held, the answer) is taken from what the host reports. The model's
//! invariant predicates then judge the combined state, exactly as the checker judges the model's.
//!
//! A fixture's steps are the world's intentions; the engine adapts them to the host (SPEC.md §11.3):
//! a delivery of a request the host never sent is skipped; an agent step waits for a held turn
//! (delivering the session's replies, oldest first) and, if the host's catalogue does not allow it,
//! becomes the first agent step it does allow; at the end everything in flight is delivered.

use crate::fixture::Fixture;
use crate::host::{Host, HostError};
use crate::protocol::{
    AccountResult, CONTEXTS_SINCE, CacheHint, CallResult, Command, ConnectorSetup, DEPLOYS_SINCE, HANDSHAKE_SINCE,
    Input, LinkRef, ListResult, Output, PAGES_SINCE, PROTOCOL_VERSION, PROTOCOL_VERSIONS, STATELESS_SINCE, SessionView,
    TurnState,
};
use coherence_model::invariants::{INVARIANTS, Invariant};
use coherence_model::state::{
    AccountRead, Applied, Auth, Call, ConnectorId, Entry, Event, FETCHES_IN_FLIGHT_MAX, Fetch, ListFailure, Listing,
    Moment, Reply, SessionId, State,
};
use coherence_model::story::violation_words;
use coherence_model::{Action, CoherenceModel, WORLD_ONLY};
use std::collections::BTreeMap;

/// The most requests a host may have outstanding (in flight or waiting to be served) on one
/// session and connector.
pub const REQUESTS_OUTSTANDING_MAX: usize = 16;
/// The most deliveries the engine makes, per session and connector, to release a held turn or to
/// drain at the end; more means the host re-lists without end.
pub const DRAIN_STEPS_PER_LINK_MAX: usize = 32;

/// Why a step was executed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// The fixture's step, as written.
    Fixture,
    /// The fixture's agent step, replaced by one the host's catalogue allows.
    Substituted,
    /// A delivery the engine made so that a held turn or the end of the fixture could proceed.
    Drained,
}

/// One executed step.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Executed {
    /// The fixture step it came from (for drains, the next one).
    pub fixture_step: usize,
    /// What happened.
    pub action: Action,
    /// Why.
    pub origin: Origin,
    /// What the host was told, if anything.
    pub input: Option<Input>,
    /// The links the host sent a `tools/list` for (not one for a next page), as it reported.
    #[serde(skip)]
    pub relisted: Vec<(SessionId, ConnectorId)>,
    /// The state afterwards.
    #[serde(skip)]
    pub state: State,
}

/// An invariant the host broke, where it first broke it.
#[derive(Clone, Debug)]
pub struct Violation {
    /// Which.
    pub invariant: &'static Invariant,
    /// The index into [`Run::executed`] of the step that first broke it.
    pub step: usize,
    /// What the spec requires.
    pub required: String,
    /// What the host did.
    pub seen: String,
}

/// How a run ended.
#[derive(Clone, Debug)]
pub enum Verdict {
    /// Every step stayed within what SPEC.md allows.
    Pass,
    /// An invariant broke: the most harmful one broken (SPEC.md §11.1); [`Run::violations`] has
    /// them all.
    Fail(Violation),
    /// The host failed to answer (crash, hang, garbage, protocol error): never a pass.
    HostFailed {
        /// The index the failing step would have had in [`Run::executed`].
        step: usize,
        /// Where, in words: the handshake, fixture step n, or the final drain.
        during: String,
        /// What went wrong.
        error: HostError,
    },
}

/// The replay of one fixture.
#[derive(Clone, Debug)]
pub struct Run {
    /// The model the steps belong to (world only).
    pub model: CoherenceModel,
    /// The initial state.
    pub init: State,
    /// The steps executed, in order.
    pub executed: Vec<Executed>,
    /// Fixture steps skipped because they did not apply to this host.
    pub skipped: usize,
    /// How it ended.
    pub verdict: Verdict,
    /// What the host reported at each executed step (for reference views).
    pub views: Vec<Vec<SessionView>>,
    /// Every invariant the host broke, each where it first broke it, the most harmful first
    /// (by [`Invariant::rank`]); empty for a pass.
    pub violations: Vec<Violation>,
    /// The adapter failed after an invariant broke, so the run stopped early: where and why.
    pub stopped: Option<String>,
}

impl Run {
    /// A fixture the run never started: an error, with the reason.
    pub fn not_run(fixture: &Fixture, reason: String) -> Run {
        let model = fixture.model_of(WORLD_ONLY);
        let init = fixture.initial_state(&model).expect("a validated fixture starts in an initial state of the model");
        Run {
            model,
            init,
            executed: Vec::new(),
            skipped: fixture.steps.len(),
            verdict: Verdict::HostFailed {
                step: 0,
                during: "nothing: the fixture was not started".to_owned(),
                error: HostError::NotRun(reason),
            },
            views: Vec::new(),
            violations: Vec::new(),
            stopped: None,
        }
    }

    /// The user-visible moments the invariants judged: answers, but those about a connector that
    /// changed during the turn without the session being told (SPEC.md §3.7).
    pub fn judged_moments(&self) -> usize {
        self.executed
            .iter()
            .filter(|e| match e.state.event {
                Some(Event::Answered(m)) => {
                    m.availability != coherence_model::state::Availability::Changed || m.signalled
                }
                _ => false,
            })
            .count()
    }
}

/// An observation, taken apart.
struct Observed {
    requests: Vec<crate::protocol::SentRequest>,
    reads: Vec<SessionId>,
    listens: Vec<LinkRef>,
    views: Vec<SessionView>,
    answer: Option<coherence_model::state::Answer>,
}

/// Where a replay is.
#[derive(Clone, Copy)]
enum Phase {
    Handshake,
    Step(usize),
    Drain,
}

struct Engine<'h> {
    phase: Phase,
    model: CoherenceModel,
    state: State,
    /// Per link, the protocol ids of the host's outstanding requests: those in flight (aligned with
    /// the state's `fetches`), then those waiting to be served.
    ids: BTreeMap<(SessionId, ConnectorId), Vec<u64>>,
    next_id: BTreeMap<(SessionId, ConnectorId), u64>,
    /// Sessions whose turn in progress has had its one retry.
    retried: std::collections::BTreeSet<SessionId>,
    /// The commands the host has (from its hello).
    commands: std::collections::BTreeSet<Command>,
    /// The protocol version the host speaks (from its hello).
    protocol: u32,
    /// Cursors given with a first page and not yet used: per cursor, the link and the version of
    /// the snapshot the pages were served from.
    cursors: BTreeMap<String, (SessionId, ConnectorId, u8)>,
    /// Requests that carry a cursor, by link and id: the version their snapshot was served from.
    continuations: BTreeMap<(SessionId, ConnectorId, u64), u8>,
    /// The state after the host's reset.
    init: Option<State>,
    /// Every invariant broken so far, where it first broke.
    violations: Vec<Violation>,
    host: &'h mut dyn Host,
    executed: Vec<Executed>,
    views: Vec<Vec<SessionView>>,
}

enum Stop {
    Host(HostError),
}

impl From<HostError> for Stop {
    fn from(e: HostError) -> Stop {
        Stop::Host(e)
    }
}

/// Replays `fixture` through `host`, from the handshake to the final drain.
pub fn replay(fixture: &Fixture, host: &mut dyn Host) -> Run {
    let model = fixture.model_of(WORLD_ONLY);
    let init = fixture.initial_state(&model).expect("a validated fixture starts in an initial state of the model");
    let mut engine = Engine {
        phase: Phase::Handshake,
        model: model.clone(),
        state: init,
        ids: BTreeMap::new(),
        next_id: BTreeMap::new(),
        retried: Default::default(),
        commands: Default::default(),
        protocol: PROTOCOL_VERSION,
        cursors: BTreeMap::new(),
        continuations: BTreeMap::new(),
        init: None,
        violations: Vec::new(),
        host,
        executed: Vec::new(),
        views: Vec::new(),
    };
    let outcome = engine.run(fixture);
    let mut violations = std::mem::take(&mut engine.violations);
    violations.sort_by_key(|v| v.invariant.rank());
    let mut stopped = None;
    let verdict = match (outcome, violations.first()) {
        (Ok(()), None) => Verdict::Pass,
        (Ok(()), Some(first)) => Verdict::Fail(first.clone()),
        (Err(Stop::Host(error)), first) => {
            let during = match engine.phase {
                Phase::Handshake => "the handshake (hello and reset)".to_owned(),
                Phase::Step(i) => format!("fixture step {} (executed step {})", i + 1, engine.executed.len() + 1),
                Phase::Drain => format!("the final deliveries (executed step {})", engine.executed.len() + 1),
            };
            match first {
                // The invariants broken stand; the run says where it stopped.
                Some(first) => {
                    stopped = Some(format!("the adapter failed during {during}: {error}"));
                    Verdict::Fail(first.clone())
                }
                None => Verdict::HostFailed { step: engine.executed.len(), during, error },
            }
        }
    };
    let skipped = engine.skipped(fixture);
    // The run starts where the host's reset left it (a host may keep no lists).
    let init = engine.init.unwrap_or(init);
    Run { model, init, executed: engine.executed, skipped, verdict, views: engine.views, violations, stopped }
}

impl Engine<'_> {
    fn skipped(&self, fixture: &Fixture) -> usize {
        let done: std::collections::BTreeSet<usize> =
            self.executed.iter().filter(|e| e.origin != Origin::Drained).map(|e| e.fixture_step).collect();
        fixture.steps.len() - done.len()
    }

    fn run(&mut self, fixture: &Fixture) -> Result<(), Stop> {
        match self.host.handle(&Input::Hello { protocol: PROTOCOL_VERSION })? {
            Output::Hello { protocol, commands, .. } if PROTOCOL_VERSIONS.contains(&protocol) => {
                if protocol < 3 && commands.is_some() {
                    return Err(Stop::Host(HostError::Protocol(
                        "`commands` in hello is protocol 3; the host says it speaks protocol 2".to_owned(),
                    )));
                }
                self.protocol = protocol;
                self.commands = commands.unwrap_or_else(|| {
                    [Command::Refresh, Command::Restart, Command::Authenticate].into_iter().collect()
                });
            }
            Output::Hello { protocol, .. } => {
                return Err(Stop::Host(HostError::Protocol(format!(
                    "the host speaks protocol {protocol}; this runner speaks {} (and accepts {PROTOCOL_VERSIONS:?})",
                    PROTOCOL_VERSION
                ))));
            }
            Output::Error { message } => return Err(Stop::Host(HostError::Reported(message))),
            other => return Err(Stop::Host(HostError::Protocol(format!("expected hello, got {}", other.kind())))),
        }
        let stateless = self.model.bounds.connector_ids().any(|c| self.state.connector(c).stateless());
        if stateless && self.protocol < STATELESS_SINCE {
            return Err(Stop::Host(HostError::Unsupported(format!(
                "servers of this fixture speak MCP 2026-07-28, which adapter protocol {STATELESS_SINCE} expresses; the host speaks protocol {}",
                self.protocol
            ))));
        }
        if self.model.faults.contains(coherence_model::system::Fault::DeployTools) && self.protocol < DEPLOYS_SINCE {
            return Err(Stop::Host(HostError::Unsupported(format!(
                "a server of this fixture deploys: its list changes without an auth change, which adapter protocol {DEPLOYS_SINCE} expresses; the host speaks protocol {}",
                self.protocol
            ))));
        }
        let two = self.model.bounds.contexts == coherence_model::state::Contexts::Two;
        if two && self.protocol < CONTEXTS_SINCE {
            return Err(Stop::Host(HostError::Unsupported(format!(
                "this fixture's sessions act for two authorization contexts, which adapter protocol {CONTEXTS_SINCE} expresses; the host speaks protocol {}",
                self.protocol
            ))));
        }
        let reset = Input::Reset {
            connectors: self
                .model
                .bounds
                .connector_ids()
                .map(|c| {
                    let server = self.state.connector(c);
                    ConnectorSetup {
                        name: c,
                        // A host sees only whether the capability was declared.
                        notify: match server.notify {
                            coherence_model::state::Notify::Advertised => coherence_model::state::Notify::Advertised,
                            _ => coherence_model::state::Notify::Unadvertised,
                        },
                        tools: server.listing(),
                        revision: server.revision,
                        cache: self.cache_hint(c),
                        second_user: two.then(|| server.other.listing()),
                    }
                })
                .collect(),
            sessions: self.model.bounds.session_ids().collect(),
        };
        let Observed { requests, reads, listens, views, .. } = self.observe(&reset)?;
        if !requests.is_empty() || !reads.is_empty() {
            return Err(Stop::Host(HostError::Protocol(
                "the reset observation reports requests: a reset session has just listed every connector".to_owned(),
            )));
        }
        for (s, view) in self.model.bounds.session_ids().zip(&views) {
            for c in self.model.bounds.connector_ids() {
                let offered = view.catalogue.get(&c).copied();
                if view.fetch_at_offer.contains(&c) {
                    // A host that keeps no list lists at the next offer instead.
                    let link = self.state.link_mut(s, c);
                    link.entry = None;
                    link.newest = None;
                    link.lazy = true;
                    // `fresh` stays: the list the session got at its start came with its TTL, and
                    // time runs it out whether or not the host kept the list (one seen through the
                    // wire shows no catalogue between turns, whatever it keeps).
                } else if offered != self.state.link(s, c).offered() {
                    return Err(Stop::Host(HostError::Protocol(format!(
                        "after reset, {s} must offer {c}'s listing from the session start, or list it in `fetch_at_offer`"
                    ))));
                }
            }
        }
        self.open_listens(&listens)?;
        self.init = Some(self.state);
        for (i, step) in fixture.steps.iter().enumerate() {
            self.phase = Phase::Step(i);
            self.fixture_step(i, step.action)?;
        }
        self.phase = Phase::Drain;
        self.drain(fixture.steps.len(), None)
    }

    fn agent_session(action: Action) -> Option<SessionId> {
        action.session().filter(|_| action.is_agent())
    }

    fn enabled(&self) -> Vec<Action> {
        let mut actions = Vec::new();
        self.model.enabled_actions(&self.state, &mut actions);
        actions
    }

    fn fixture_step(&mut self, index: usize, action: Action) -> Result<(), Stop> {
        let Some(session) = Self::agent_session(action) else {
            // A host is never asked to run a command it lacks, nor sent pages before protocol 4.
            let lacks = Command::of(action).is_some_and(|c| !self.commands.contains(&c))
                || (matches!(action, Action::PageListing { .. }) && self.protocol < PAGES_SINCE);
            if !lacks && self.enabled().contains(&action) {
                self.execute(index, action, Origin::Fixture)?;
            }
            return Ok(());
        };
        if self.state.session(session).turn.is_none() {
            return Ok(());
        }
        self.drain(index, Some(session))?;
        if self.state.session(session).turn.is_none() {
            // The host aborted the turn while it waited.
            return Ok(());
        }
        let enabled = self.enabled();
        // An agent of a host before protocol 5 never completes a handshake inside a turn.
        let speaks = !matches!(action, Action::AgentCompleteAuthentication { .. }) || self.protocol >= HANDSHAKE_SINCE;
        if speaks && enabled.contains(&action) {
            return self.execute(index, action, Origin::Fixture);
        }
        let preference = [
            Action::AgentCallTool { session },
            Action::AgentRelayNotice { session },
            Action::AgentAnswerNotAvailable { session },
            Action::AgentCallStub { session },
            Action::AgentCallUnlisted { session },
        ];
        match preference.into_iter().find(|a| enabled.contains(a)) {
            Some(substitute) => self.execute(index, substitute, Origin::Substituted),
            None => Err(Stop::Host(HostError::Protocol(format!(
                "{session} holds its turn with nothing in flight: the agent can never act"
            )))),
        }
    }

    /// Delivers what is in flight, oldest first, until `session`'s turn is no longer held (or, at
    /// the end, until nothing is in flight anywhere).
    fn drain(&mut self, index: usize, session: Option<SessionId>) -> Result<(), Stop> {
        let links = usize::from(self.model.bounds.sessions) * usize::from(self.model.bounds.connectors);
        let limit = DRAIN_STEPS_PER_LINK_MAX * links;
        for _ in 0..limit {
            let held = |e: &Self, s: SessionId| e.state.session(s).turn.is_some_and(|t| t.held);
            let sessions: Vec<SessionId> = match session {
                Some(s) if !held(self, s) => return Ok(()),
                Some(s) => vec![s],
                None => self.model.bounds.session_ids().collect(),
            };
            let next = sessions.iter().find_map(|&s| self.next_delivery(s));
            let next = next.or_else(|| sessions.iter().find_map(|&s| self.next_timeout(s)));
            match next {
                Some(action) => self.execute(index, action, Origin::Drained)?,
                // Nothing left to deliver; a session held with nothing outstanding has been judged
                // by INV-11 at the step that made it so.
                None => return Ok(()),
            }
        }
        Err(Stop::Host(HostError::Protocol(format!(
            "host defect: it re-lists without end: still waiting after {limit} deliveries \
             ({DRAIN_STEPS_PER_LINK_MAX} per session and connector of the fixture, in one drain)"
        ))))
    }

    /// What the network delivers next to `s`: its account read, then per connector the oldest
    /// reply that is not hung, else a notification.
    fn next_delivery(&self, s: SessionId) -> Option<Action> {
        if self.state.session(s).read.is_some() {
            return Some(Action::DeliverAccount { session: s });
        }
        self.model.bounds.connector_ids().find_map(|c| {
            let link = self.state.link(s, c);
            let slot = link
                .fetches
                .iter()
                .position(|f| f.is_some_and(|f| matches!(f.reply, Reply::Listed { .. } | Reply::Failed(_))));
            match slot {
                Some(slot) => Some(Action::DeliverListing { session: s, connector: c, slot: slot as u8 }),
                None if link.notifications > 0 => Some(Action::DeliverNotification { session: s, connector: c }),
                None => None,
            }
        })
    }

    /// Once nothing else will arrive, time passes: the oldest hung request of `s` times out.
    fn next_timeout(&self, s: SessionId) -> Option<Action> {
        self.model.bounds.connector_ids().find_map(|c| {
            let slot = self.state.link(s, c).fetches.iter().position(|f| f.is_some_and(|f| f.reply == Reply::Hung))?;
            Some(Action::TimeOutListing { session: s, connector: c, slot: slot as u8 })
        })
    }

    /// What the host is told for `action`, or `None` for a step of the world alone.
    fn input(&self, action: Action) -> Option<Input> {
        let turn_connector = |s: SessionId| self.state.session(s).turn.expect("agent steps run in a turn").connector;
        if !action.reaches_host(&self.state) {
            return None;
        }
        Some(match action {
            Action::ExpireTtl { session, connector } => Input::TtlExpired { session, connector },
            // A 2025-era stream drops unseen (above); a host sees its listen request end.
            Action::LoseNotificationStream { session, connector } => Input::ListenEnded { session, connector },
            Action::DeliverNotification { session, connector } => Input::Notification { session, connector },
            Action::DeliverListing { session, connector, slot } => {
                let fetch = self.state.link(session, connector).fetches[usize::from(slot)].expect("enabled");
                let request = self.ids[&(session, connector)][usize::from(slot)];
                Input::Listing {
                    session,
                    connector,
                    request,
                    result: match fetch.reply {
                        Reply::Listed { listing: Listing::SomeActions, .. } => {
                            ListResult::FirstPage { next_cursor: cursor(session, connector, request) }
                        }
                        Reply::Listed { listing, .. } => ListResult::Tools(listing),
                        Reply::Failed(f) => ListResult::Error(f),
                        Reply::Hung | Reply::Lost => unreachable!("a hung request is never delivered"),
                    },
                    cache: match fetch.reply {
                        Reply::Listed { .. } => self.cache_hint(connector),
                        _ => None,
                    },
                }
            }
            Action::TimeOutListing { session, connector, slot } => {
                Input::Timeout { session, connector, request: self.ids[&(session, connector)][usize::from(slot)] }
            }
            Action::DeliverAccount { session } => {
                let read = self.state.session(session).read.expect("enabled on a read in flight");
                let deploys = self.model.faults.contains(coherence_model::system::Fault::DeployTools);
                let result = match read {
                    AccountRead::Failed => AccountResult::Failed,
                    // With deploys, what each server lists the account, withdrawn tools told.
                    AccountRead::Served(_) if deploys => AccountResult::Lists(
                        self.model.bounds.connector_ids().filter_map(|c| Some((c, read.listing(c)?))).collect(),
                    ),
                    AccountRead::Served(_) => AccountResult::Connectors(
                        self.model
                            .bounds
                            .connector_ids()
                            .map(|c| {
                                let auth = if read.listing(c) == Some(coherence_model::state::Listing::Actions) {
                                    Auth::Authenticated
                                } else {
                                    Auth::Unauthenticated
                                };
                                (c, auth)
                            })
                            .collect(),
                    ),
                };
                Input::Account { session, result }
            }
            Action::UserAsk { session, .. } => Input::Ask { session },
            Action::UserMcp { session } => Input::Mcp { session },
            Action::UserRestart { session } => Input::Restart { session },
            Action::UserAuthenticate { session, connector } => Input::Authenticated { session, connector },
            Action::AgentCallTool { session } => {
                let connector = turn_connector(session);
                let server = if self.state.link(session, connector).transport_lost {
                    CallResult::SessionNotFound
                } else if self.state.listing(session, connector).has_needed_tool() {
                    CallResult::Ok
                } else if self.state.auth(session, connector) == Auth::Authenticated {
                    CallResult::UnknownTool
                } else {
                    CallResult::Unauthorized
                };
                Input::CallTool { session, connector, server }
            }
            Action::AgentCallStub { session } => {
                let connector = turn_connector(session);
                Input::CallStub {
                    session,
                    connector,
                    authenticated: self.state.auth(session, connector) == Auth::Authenticated,
                }
            }
            Action::AgentCallUnlisted { session } => {
                Input::CallUnlisted { session, connector: turn_connector(session) }
            }
            Action::AgentAnswerNotAvailable { session } => {
                Input::AnswerNotAvailable { session, connector: turn_connector(session) }
            }
            Action::AgentRelayNotice { session } => Input::RelayNotice { session, connector: turn_connector(session) },
            Action::AgentCompleteAuthentication { session } => {
                let connector = turn_connector(session);
                Input::CompleteAuthentication {
                    session,
                    connector,
                    list_changed_first: self.model.notifies_caller_first(&self.state, session, connector),
                }
            }
            // The web surface, the servers and the faults the host learns of only by what follows.
            unseen => unreachable!("{unseen:?} does not reach the host (Action::reaches_host)"),
        })
    }

    fn observe(&mut self, input: &Input) -> Result<Observed, Stop> {
        match self.host.handle(input)? {
            Output::Observation { requests, reads, listens, sessions, answer } => {
                let expected: Vec<SessionId> = self.model.bounds.session_ids().collect();
                let got: Vec<SessionId> = sessions.iter().map(|v| v.session).collect();
                if got != expected {
                    return Err(Stop::Host(HostError::Protocol(format!(
                        "the observation must list the sessions {expected:?} in order, got {got:?}"
                    ))));
                }
                for view in &sessions {
                    for c in view.catalogue.keys().chain(view.notices.keys()).chain(&view.fetch_at_offer) {
                        if c.0 >= self.model.bounds.connectors {
                            return Err(Stop::Host(HostError::Protocol(format!(
                                "the observation names unknown connector {c}"
                            ))));
                        }
                    }
                }
                for r in &requests {
                    if r.session.0 >= self.model.bounds.sessions || r.connector.0 >= self.model.bounds.connectors {
                        return Err(Stop::Host(HostError::Protocol(format!(
                            "a request names an unknown session or connector: {}/{}",
                            r.session, r.connector
                        ))));
                    }
                }
                for s in &reads {
                    if s.0 >= self.model.bounds.sessions {
                        return Err(Stop::Host(HostError::Protocol(format!(
                            "an account read names unknown session {s}"
                        ))));
                    }
                }
                for l in &listens {
                    if l.session.0 >= self.model.bounds.sessions || l.connector.0 >= self.model.bounds.connectors {
                        return Err(Stop::Host(HostError::Protocol(format!(
                            "a listen stream names an unknown session or connector: {}/{}",
                            l.session, l.connector
                        ))));
                    }
                }
                Ok(Observed { requests, reads, listens, views: sessions, answer })
            }
            Output::Error { message } => Err(Stop::Host(HostError::Reported(message))),
            other => Err(Stop::Host(HostError::Protocol(format!("expected an observation, got {}", other.kind())))),
        }
    }

    /// Serves the host's next outstanding request of a link from the world as it is now, or,
    /// for a request with a cursor, the rest of the snapshot its first page came from.
    fn serve(&mut self, s: SessionId, c: ConnectorId) {
        let server = *self.state.connector(c);
        let n = self.state.link(s, c).fetch_count();
        let id = self.ids.get(&(s, c)).and_then(|ids| ids.get(n)).copied();
        let snapshot = id.and_then(|id| self.continuations.remove(&(s, c, id)));
        // What the server lists to this session's user.
        let listing = self.state.listing(s, c);
        let link = self.state.link_mut(s, c);
        let reply = if link.transport_lost {
            Reply::Failed(coherence_model::state::ListFailure::SessionNotFound)
        } else if let Some(version) = snapshot {
            Reply::Listed { listing: Listing::Actions, version }
        } else {
            Reply::Listed { listing, version: server.version }
        };
        link.fetches[n] = Some(Fetch { reply, superseded: false });
    }

    fn execute(&mut self, index: usize, action: Action, origin: Origin) -> Result<(), Stop> {
        let before = self.state;
        let world = self.model.step(&before, action).expect("the model steps every action");
        let input = self.input(action);
        let Some(input) = input else {
            // The world alone moved; the host saw nothing.
            // Requests keep their ids: a fault changes what a reply will say, not which it is.
            self.state = world;
            return self.record(index, action, origin, None, Vec::new());
        };
        let Observed { requests, reads, listens, views, answer } = self.observe(&input)?;

        // The world and the oracle's bookkeeping come from the model; the host's part is rebuilt.
        let world_event = world.event;
        let mut next = world;
        next.event = None;
        let mut delivered: Option<(SessionId, ConnectorId, Reply)> = None;
        for s in self.model.bounds.session_ids() {
            let restarted = action == (Action::UserRestart { session: s });
            next.sessions[s.index()].read = if restarted { None } else { before.session(s).read };
            for c in self.model.bounds.connector_ids() {
                let link = next.link_mut(s, c);
                link.fetches = before.link(s, c).fetches;
                link.refetch_queued = before.link(s, c).refetch_queued;
                link.entry = before.link(s, c).entry;
                link.lazy = before.link(s, c).lazy;
                link.notice = before.link(s, c).notice;
                link.shared = before.link(s, c).shared;
                link.foreign = before.link(s, c).foreign;
                // The entry's freshness is the host's, but for the TTL that just ran out.
                link.fresh = before.link(s, c).fresh && action != (Action::ExpireTtl { session: s, connector: c });
                if restarted {
                    // The connection is new: requests in flight and waiting are gone. Ids go on.
                    link.fetches = Default::default();
                    link.refetch_queued = false;
                    self.ids.remove(&(s, c));
                }
            }
        }
        self.state = next;
        match action {
            Action::DeliverListing { session, connector, slot }
            | Action::TimeOutListing { session, connector, slot } => {
                let link = self.state.link_mut(session, connector);
                let fetch = link.fetches[usize::from(slot)].take().expect("enabled");
                link.fetches[usize::from(slot)..].rotate_left(1);
                self.ids.get_mut(&(session, connector)).expect("aligned").remove(usize::from(slot));
                let reply = match action {
                    Action::TimeOutListing { .. } => Reply::Failed(ListFailure::Transport),
                    _ => fetch.reply,
                };
                delivered = Some((session, connector, reply));
                self.release_queued(session, connector);
            }
            Action::DeliverAccount { session } => self.state.sessions[session.index()].read = None,
            _ => {}
        }
        for &s in &reads {
            if self.state.session(s).read.is_some() {
                return Err(Stop::Host(HostError::Protocol(format!(
                    "{s} sent an account read while one is in flight; a host has at most one at a time"
                ))));
            }
            // Served now: the reply will say what the account holds at this moment.
            self.state.sessions[s.index()].read = Some(AccountRead::of(&self.state, s));
        }
        if let (
            Input::Listing { session, connector, result: ListResult::FirstPage { next_cursor }, .. },
            Some(Reply::Listed { version, .. }),
        ) = (&input, delivered.map(|d| d.2))
        {
            self.cursors.insert(next_cursor.clone(), (*session, *connector, version));
            let continued =
                requests.iter().any(|r| r.cursor.is_some() && (r.session, r.connector) == (*session, *connector));
            let view = &views[session.index()];
            let claims_all = view.catalogue.get(connector) == Some(&Listing::Actions)
                && before.link(*session, *connector).offered() != Some(Listing::Actions);
            if claims_all && !continued {
                return Err(Stop::Host(HostError::Protocol(format!(
                    "{session} offers all of {connector}'s action tools after receiving only their first page, without asking for the rest (its nextCursor)"
                ))));
            }
        }
        for r in &requests {
            // Ids follow the order the host reports its requests in (ADAPTER.md).
            let id = self.next_id.entry((r.session, r.connector)).or_default();
            if let Some(cursor) = &r.cursor {
                match self.cursors.remove(cursor) {
                    Some((s, c, version)) if (s, c) == (r.session, r.connector) => {
                        self.continuations.insert((s, c, *id), version);
                    }
                    _ => {
                        return Err(Stop::Host(HostError::Protocol(format!(
                            "{}/{} sent tools/list with cursor `{cursor}`, which {}'s server never gave {} (or which was used already)",
                            r.session, r.connector, r.connector, r.session
                        ))));
                    }
                }
            }
            let ids = self.ids.entry((r.session, r.connector)).or_default();
            ids.push(*id);
            *id += 1;
            if ids.len() > REQUESTS_OUTSTANDING_MAX {
                return Err(Stop::Host(HostError::Protocol(format!(
                    "more than {REQUESTS_OUTSTANDING_MAX} requests outstanding for {}/{}",
                    r.session, r.connector
                ))));
            }
            let link = self.state.link_mut(r.session, r.connector);
            if r.initialize {
                link.transport_lost = false;
            }
            if link.fetch_count() < FETCHES_IN_FLIGHT_MAX {
                self.serve(r.session, r.connector);
            } else {
                // Served once a reply frees a slot: a server may take its time.
                link.refetch_queued = true;
            }
        }
        self.open_listens(&listens)?;
        self.overlay_views(&before, &views, delivered)?;
        self.overlay_turn(action, &before, world_event, &views, answer)?;
        self.views.push(views);
        let relisted = requests.iter().filter(|r| r.cursor.is_none()).map(|r| (r.session, r.connector)).collect();
        self.record(index, action, origin, Some(input), relisted)
    }

    /// The cache hints of `c`'s `tools/list` results: none for a 2025-era server.
    fn cache_hint(&self, c: ConnectorId) -> Option<CacheHint> {
        let server = self.state.connector(c);
        server.stateless().then_some(CacheHint { ttl: server.ttl, scope: server.scope })
    }

    /// Whether a result of `c` is fresh when it arrives (a long TTL).
    fn fresh_result(&self, c: ConnectorId) -> bool {
        self.cache_hint(c).is_some_and(|hint| hint.ttl == coherence_model::state::Ttl::Long)
    }

    /// The `subscriptions/listen` streams the host opened: each is acknowledged at once, and the
    /// server's changes reach the session on it from now on.
    fn open_listens(&mut self, listens: &[LinkRef]) -> Result<(), Stop> {
        for &LinkRef { session: s, connector: c } in listens {
            let protocol = |m: String| Err(Stop::Host(HostError::Protocol(m)));
            if !self.state.connector(c).stateless() {
                return protocol(format!(
                    "{s} opened a listen stream to {c}, whose server speaks a 2025 revision (it has no subscriptions/listen)"
                ));
            }
            if self.state.link(s, c).listening {
                return protocol(format!(
                    "{s} opened a second listen stream to {c} while one is open; a host keeps at most one per session and connector"
                ));
            }
            self.state.link_mut(s, c).listening = true;
        }
        Ok(())
    }

    /// A request the host sent while two were in flight is served once a slot frees.
    fn release_queued(&mut self, s: SessionId, c: ConnectorId) {
        let outstanding = self.ids.get(&(s, c)).map_or(0, Vec::len);
        if outstanding > self.state.link(s, c).fetch_count() {
            self.serve(s, c);
        }
        let waiting = outstanding > self.state.link(s, c).fetch_count();
        self.state.link_mut(s, c).refetch_queued = waiting;
    }

    /// Takes the host's catalogue and notices from its views. A listing that changed to the reply
    /// just delivered is that reply applied (INV-12 judges it); one that changed otherwise came from
    /// something else the host learned (a failed call, an account read), at the server's version.
    fn overlay_views(
        &mut self,
        before: &State,
        views: &[SessionView],
        delivered: Option<(SessionId, ConnectorId, Reply)>,
    ) -> Result<(), Stop> {
        for (s, view) in self.model.bounds.session_ids().zip(views) {
            for c in self.model.bounds.connector_ids() {
                let server = *self.state.connector(c);
                let offered = view.catalogue.get(&c).copied();
                let lazy = view.fetch_at_offer.contains(&c);
                if lazy && offered.is_some() {
                    return Err(Stop::Host(HostError::Protocol(format!(
                        "{s} both offers {c}'s tools and lists {c} in `fetch_at_offer`, which is for a connector whose list the host does not keep"
                    ))));
                }
                let previous = self.state.link(s, c).entry;
                let entry = match offered {
                    None => None,
                    Some(listing) if previous.map(|e| e.listing) == Some(listing) => previous,
                    Some(listing) => match delivered {
                        Some((ds, dc, Reply::Listed { listing: l, version })) if ds == s && dc == c && l == listing => {
                            let reply = Entry { listing, version };
                            self.state.event = Some(Event::Applied(Applied {
                                session: s,
                                connector: c,
                                before: previous.map(|e| e.listing),
                                reply,
                                newest: before.link(s, c).newest,
                                server: server.version,
                            }));
                            Some(reply)
                        }
                        // Another session's reply, served to this one: a cache shared between them.
                        Some((_, dc, Reply::Listed { listing: l, version })) if dc == c && l == listing => {
                            Some(Entry { listing, version })
                        }
                        _ => Some(Entry { listing, version: server.version }),
                    },
                };
                // Served from a reply to another session (its entry changed to that reply, with
                // no reply of its own): shared, and foreign if that session's user is another and
                // the result was private (INV-15).
                let served_from = match delivered {
                    Some((ds, dc, Reply::Listed { listing: l, .. }))
                        if ds != s && dc == c && offered == Some(l) && entry != previous =>
                    {
                        Some(ds)
                    }
                    _ => None,
                };
                // A list is fresh while the TTL of the result it came from runs (a list the host
                // worked out for itself, from a failed call or an account read, has none).
                let received = match delivered {
                    Some((ds, dc, Reply::Listed { listing: l, .. })) => {
                        ds == s && dc == c && (offered == Some(l) || lazy)
                    }
                    _ => false,
                };
                // A host that keeps no list (or shows none) was still given one, whose TTL runs.
                let kept = (entry.is_some() && entry == previous) || (lazy && self.state.link(s, c).lazy);
                let fresh = if received || served_from.is_some() {
                    self.fresh_result(c)
                } else {
                    kept && self.state.link(s, c).fresh
                };
                let (shared, foreign) = match served_from {
                    Some(ds) => {
                        let public = server.stateless() && server.scope == coherence_model::state::CacheScope::Public;
                        (true, self.state.context(ds) != self.state.context(s) && !public)
                    }
                    None if entry.is_some() && entry == previous && !received => {
                        let link = self.state.link(s, c);
                        (link.shared, link.foreign)
                    }
                    None => (false, false),
                };
                let link = self.state.link_mut(s, c);
                link.entry = entry;
                link.lazy = lazy;
                link.notice = view.notices.get(&c).copied();
                link.fresh = fresh;
                link.shared = shared;
                link.foreign = foreign;
            }
        }
        Ok(())
    }

    fn overlay_turn(
        &mut self,
        action: Action,
        before: &State,
        world_event: Option<Event>,
        views: &[SessionView],
        answer: Option<coherence_model::state::Answer>,
    ) -> Result<(), Stop> {
        // The agent's handshake is a step of the agent that does not end the turn: the host's turn
        // goes on, as after a step of the world.
        let handshake = matches!(action, Action::AgentCompleteAuthentication { .. });
        let agent = Self::agent_session(action).filter(|_| !handshake);
        let mut answer = answer;
        // The host ended a turn at a reply (or a timeout) it waited for: aborted it with an error
        // naming a connector, or with words that name none (to the user, the capability is not
        // available). At the user's question, before any list, only the latter: an abort there
        // would name a failure it did not try again, and nothing yet makes a host try again.
        use coherence_model::state::Answer as A;
        let at_a_reply = matches!(action, Action::DeliverListing { .. } | Action::TimeOutListing { .. });
        let at_the_question = matches!(action, Action::UserAsk { .. });
        if let (None, Some(aborted @ (A::Aborted(_) | A::NotAvailable)), Some(s)) = (agent, answer, action.session())
            && (at_a_reply || at_the_question || matches!(aborted, A::Aborted(_)))
            && let Some(turn) = self.state.session(s).turn
        {
            let protocol = |m: String| Err(Stop::Host(HostError::Protocol(m)));
            let how = match aborted {
                A::Aborted(named) => format!("aborted the turn naming {named}"),
                _ => "ended the turn, naming no connector,".to_owned(),
            };
            if views[s.index()].turn != TurnState::None {
                return protocol(format!("{s} {how} but still reports it in progress"));
            }
            if !(at_a_reply || at_the_question && aborted == A::NotAvailable) {
                return protocol(format!(
                    "{s} {how} at {}; a turn is aborted when a tools/list reply or timeout arrives (at the user's question, a host may end it only with words that name no connector)",
                    action.name()
                ));
            }
            self.state.sessions[s.index()].turn = None;
            self.retried.remove(&s);
            self.state.event = Some(Event::Answered(Moment::at(before, &self.state, s, turn, Call::Nothing, aborted)));
            answer = None;
        }
        for (s, view) in self.model.bounds.session_ids().zip(views) {
            let protocol = |m: String| Err(Stop::Host(HostError::Protocol(m)));
            if Some(s) == agent {
                let turn = before.session(s).turn.expect("agent steps run in a turn");
                // The world, stepped with no host reactions, always answers the agent's step: its
                // moment carries the oracle's side (availability, signals, whether the link was
                // due); the host's side (what it offered, showed and answered) is the host's.
                let Some(Event::Answered(world)) = world_event else {
                    unreachable!("the world answers every agent step")
                };
                match (answer, view.turn) {
                    (Some(answer), TurnState::None) => {
                        if let Err(what) = answer_fits(action, answer, before, s, turn.connector) {
                            return protocol(what);
                        }
                        let link = *self.state.link(s, turn.connector);
                        // A host that drops its lists once the turn ends offered, at the answer,
                        // what the agent acted on.
                        let offered = if link.lazy { before.link(s, turn.connector).offered() } else { link.offered() };
                        self.state.sessions[s.index()].turn = None;
                        self.retried.remove(&s);
                        self.state.event =
                            Some(Event::Answered(Moment { offered, notice: link.notice, answer, ..world }));
                    }
                    (None, TurnState::Held | TurnState::Open)
                        if matches!(
                            action,
                            Action::AgentCallTool { .. }
                                | Action::AgentCallStub { .. }
                                | Action::AgentCallUnlisted { .. }
                        ) =>
                    {
                        // The host refreshes and lets the agent try again: once per turn, and only
                        // with a refresh of that connector under way.
                        if !self.retried.insert(s) {
                            return protocol(format!(
                                "{s}: the agent's second call in a turn got no answer; a host retries once"
                            ));
                        }
                        let link = self.state.link(s, turn.connector);
                        if link.fetch_count() == 0 && !link.refetch_queued {
                            return protocol(format!(
                                "{s}: the agent's call got no answer, yet no refresh of {} is under way",
                                turn.connector
                            ));
                        }
                        self.state.sessions[s.index()].turn = Some(coherence_model::state::Turn {
                            held: view.turn == TurnState::Held,
                            retried: true,
                            unsignalled: !world.signalled,
                            ..turn
                        });
                        if let Action::AgentCallStub { .. } = action {
                            self.state.event = Some(Event::StubRefreshed {
                                session: s,
                                connector: turn.connector,
                                availability: turn.availability,
                            });
                        }
                    }
                    (Some(_), _) => return protocol(format!("{s} answered the turn but still reports it in progress")),
                    (None, _) => {
                        return protocol(format!(
                            "{s}: the agent's step {} got neither an answer nor a held turn",
                            action.name()
                        ));
                    }
                }
                continue;
            }
            if answer.is_some() && agent.is_none() {
                let what = match answer {
                    _ if handshake => "an answer at the agent's handshake, after which the turn goes on",
                    Some(A::Aborted(_) | A::NotAvailable) => "an aborted turn where no turn is in progress",
                    _ => {
                        "an answer without an agent step (only `aborted` or `not_available` may end a turn at a reply or a timeout)"
                    }
                };
                return protocol(what.to_owned());
            }
            if self.state.session(s).turn.is_none() {
                self.retried.remove(&s);
            }
            match (self.state.sessions[s.index()].turn.as_mut(), view.turn) {
                (None, TurnState::None) => {}
                // A turn the host holds with nothing outstanding is judged by INV-11.
                (Some(turn), TurnState::Held) => turn.held = true,
                (Some(turn), TurnState::Open) => turn.held = false,
                (None, t) => return protocol(format!("{s} reports a turn ({t:?}) where none is in progress")),
                (Some(_), TurnState::None) => return protocol(format!("{s} reports no turn while one is in progress")),
            }
        }
        Ok(())
    }

    /// Records an executed step and judges it: the first time an invariant breaks, it is kept,
    /// and the run goes on, so that every invariant the host breaks is reported.
    fn record(
        &mut self,
        index: usize,
        action: Action,
        origin: Origin,
        input: Option<Input>,
        relisted: Vec<(SessionId, ConnectorId)>,
    ) -> Result<(), Stop> {
        self.executed.push(Executed { fixture_step: index, action, origin, input, relisted, state: self.state });
        let step = self.executed.len() - 1;
        for invariant in INVARIANTS {
            if self.violations.iter().any(|v| v.invariant.id == invariant.id)
                || invariant.holds(&self.model, &self.state)
            {
                continue;
            }
            self.violations.push(Violation {
                invariant,
                step,
                required: invariant.statement(),
                seen: violation_words(&self.model, invariant, &self.state),
            });
        }
        Ok(())
    }
}

/// Whether a host's answer is one the agent's step can produce; if not, what happened, in the
/// host's terms.
fn answer_fits(
    action: Action,
    answer: coherence_model::state::Answer,
    before: &State,
    s: SessionId,
    c: ConnectorId,
) -> Result<(), String> {
    use coherence_model::state::Answer as A;
    let lost = before.link(s, c).transport_lost;
    // The server answers each session as its own user's token is authorized (SPEC.md §2.7).
    let authenticated = before.auth(s, c) == Auth::Authenticated;
    let listed = before.listing(s, c).has_needed_tool();
    let reported = match answer {
        A::UsedTool => "that the tool worked".to_owned(),
        A::ToolFailed(_) => "that the call failed".to_owned(),
        A::StubReplied(_) => "a stub's reply".to_owned(),
        A::NoSuchTool => "\"no such tool\"".to_owned(),
        A::Misrouted => "that it ran another connector's tool".to_owned(),
        A::NotAvailable => "that the agent said the capability is not available".to_owned(),
        A::RelayedNotice => "that the agent relayed a notice".to_owned(),
        A::Aborted(named) => format!("that it aborted the turn because {named}'s tools could not be listed"),
    };
    let fits = match action {
        Action::AgentCallTool { .. } => match answer {
            A::UsedTool if lost => {
                return Err(format!(
                    "the server answered 404 to the agent's call of a {c} tool (the transport session is gone); {s} reported that the tool worked"
                ));
            }
            A::UsedTool if !authenticated => {
                return Err(format!(
                    "the server answered 401 to the agent's call of a {c} tool (the token expired or access was revoked); {s} reported that the tool worked"
                ));
            }
            A::UsedTool if !listed => {
                return Err(format!(
                    "the server answered \"unknown tool\" to the agent's call of a {c} tool (a deploy withdrew it); {s} reported that the tool worked"
                ));
            }
            A::ToolFailed(_) if !lost && listed => {
                return Err(format!(
                    "the server answered the agent's call of a {c} tool with success; {s} reported that the call failed"
                ));
            }
            A::UsedTool | A::ToolFailed(_) => true,
            _ => false,
        },
        Action::AgentCallStub { .. } => matches!(answer, A::StubReplied(_)),
        Action::AgentCallUnlisted { .. } => matches!(answer, A::NoSuchTool | A::Misrouted | A::ToolFailed(_)),
        Action::AgentAnswerNotAvailable { .. } => answer == A::NotAvailable,
        Action::AgentRelayNotice { .. } => answer == A::RelayedNotice,
        _ => false,
    };
    let did = match action {
        Action::AgentCallTool { .. } => format!("the agent called a {c} tool"),
        Action::AgentCallStub { .. } => format!("the agent called {c}'s authenticate stub"),
        Action::AgentCallUnlisted { .. } => format!("the agent called a {c} tool the catalogue does not list"),
        Action::AgentAnswerNotAvailable { .. } => format!("the agent said {c} is not available"),
        Action::AgentRelayNotice { .. } => format!("the agent relayed {s}'s notice for {c}"),
        _ => "no agent step".to_owned(),
    };
    if fits { Ok(()) } else { Err(format!("{did}; {s} reported {reported}, which that step cannot produce")) }
}

/// The cursor given with the first page of a link's request: opaque to the host, unique in a run.
fn cursor(s: SessionId, c: ConnectorId, request: u64) -> String {
    format!("{s}-{c}-{request}-page-2")
}
