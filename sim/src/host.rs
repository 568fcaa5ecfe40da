//! The host under test, behind one trait; and the reference host, which is the model's own host
//! logic for a policy.

use crate::protocol::{
    AccountResult, CallResult, Input, LinkRef, ListResult, Output, PROTOCOL_VERSION, SentRequest, SessionView,
    TurnState,
};
use coherence_model::state::{AccountRead, Auth, ConnectorId, Event, Listing, Reply, SessionId, State};
use coherence_model::{Action, Bounds, CoherenceModel, HostPolicy, Mutant};
use std::collections::{BTreeMap, VecDeque};

/// Why a host failed to answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    /// The host said it cannot go on.
    #[error("the host reported an error: {0}")]
    Reported(String),
    /// The host broke the protocol.
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// The host did not answer in time (and what its stderr last said).
    #[error("no answer within {0} ms{1}")]
    Timeout(u64, String),
    /// The host's process ended or failed.
    #[error("the adapter process failed: {0}")]
    Crashed(String),
    /// The fixture was not run: the run stopped first (its deadline passed, or the adapter failed
    /// too many fixtures in a row).
    #[error("not run: {0}")]
    NotRun(String),
    /// The fixture needs something this way of driving a host cannot do yet (a black-box run
    /// cannot yet make time pass for a request, for example): neither a pass nor the host's fault.
    #[error("outside what this runner can play: {0}")]
    Unsupported(String),
}

/// A host, in-process or behind a process boundary: one answer per input, with the semantics of
/// the adapter protocol (ADAPTER.md).
pub trait Host {
    /// Handles one input.
    fn handle(&mut self, input: &Input) -> Result<Output, HostError>;

    /// What the host's wires showed since its last `reset`, one event a line, for the report of a
    /// fixture that did not pass; empty for a host that reports itself.
    fn wire_log(&self) -> Vec<String> {
        Vec::new()
    }
}

/// The model's host logic for one policy, answering the adapter protocol. With `recommended` it is
/// the reference implementation; with any other policy, a mutant with that policy's defects.
///
/// It keeps a model [`State`] whose host part evolves by the model's own rules; the world part is
/// whatever the inputs say (a host learns of the world only through them).
pub struct ReferenceHost {
    model: CoherenceModel,
    state: State,
    /// Per session and connector, the protocol ids of the requests in flight, oldest first,
    /// aligned with the model's `fetches`.
    ids: BTreeMap<(SessionId, ConnectorId), VecDeque<u64>>,
    sent: BTreeMap<(SessionId, ConnectorId), u64>,
}

impl ReferenceHost {
    /// A reference host with `policy`'s logic.
    pub fn new(policy: HostPolicy) -> Self {
        Self::mutated(policy, None)
    }

    /// A reference host with `policy`'s logic and, if given, one defect planted in it (a host
    /// mutant, SPEC.md §11.4).
    pub fn mutated(policy: HostPolicy, mutant: Option<Mutant>) -> Self {
        let model = CoherenceModel { mutant, ..CoherenceModel::new(policy, Bounds::DEFAULT) };
        ReferenceHost { model, state: State::default(), ids: BTreeMap::new(), sent: BTreeMap::new() }
    }

    /// Whether it gives up on a `tools/list` that never returns (its policy's timeout, unless a
    /// mutant removed it): whether a [`Timeout`](Input::Timeout) changes what it does.
    pub fn times_out(&self) -> bool {
        self.model.times_out()
    }

    fn reset(
        &mut self,
        connectors: &[crate::protocol::ConnectorSetup],
        sessions: &[SessionId],
    ) -> Result<(), HostError> {
        let two = connectors.iter().any(|c| c.second_user.is_some());
        if two && connectors.iter().any(|c| c.second_user.is_none()) {
            return Err(HostError::Protocol(
                "reset: with two authorization contexts, every connector says what the second user's sessions got (`second_user`)"
                    .to_owned(),
            ));
        }
        let mut bounds = Bounds::widest(connectors.len() as u8, sessions.len() as u8);
        if two {
            bounds.contexts = coherence_model::state::Contexts::Two;
        }
        bounds.validate().map_err(|e| HostError::Protocol(format!("reset: {e}")))?;
        for (i, c) in connectors.iter().enumerate() {
            if c.name.index() != i {
                return Err(HostError::Protocol(format!("reset: connector {i} must be {}", ConnectorId(i as u8))));
            }
        }
        for (i, s) in sessions.iter().enumerate() {
            if s.index() != i {
                return Err(HostError::Protocol(format!("reset: session {i} must be {}", SessionId(i as u8))));
            }
        }
        // The host is told whether a notification came first (`list_changed_first`); its model
        // must not decide that for it.
        self.model = CoherenceModel {
            faults: coherence_model::system::Faults::admitted_by(bounds.servers)
                .without(coherence_model::system::Fault::NotifyAfterResult),
            mutant: self.model.mutant,
            ..CoherenceModel::new(self.model.policy, bounds)
        };
        let mut state = State {
            shape: coherence_model::state::Shape {
                connectors: bounds.connectors,
                sessions: bounds.sessions,
                contexts: bounds.contexts,
            },
            ..State::default()
        };
        for c in connectors {
            let k = &mut state.connectors[c.name.index()];
            k.notify = c.notify;
            k.auth = auth_of(c.tools);
            k.other = c.second_user.map_or(Auth::Unauthenticated, auth_of);
            k.revision = c.revision;
            match (c.revision, c.cache) {
                (coherence_model::state::Revision::Handshake, None) => {}
                (coherence_model::state::Revision::Stateless, Some(hint)) => (k.ttl, k.scope) = (hint.ttl, hint.scope),
                _ => {
                    return Err(HostError::Protocol(format!(
                        "reset: {} has cache hints if and only if it speaks 2026-07-28",
                        c.name
                    )));
                }
            }
        }
        for s in sessions {
            self.model.start_session(&mut state, *s);
        }
        self.state = state;
        self.ids.clear();
        self.sent.clear();
        Ok(())
    }

    fn check_session(&self, s: SessionId) -> Result<(), HostError> {
        if s.0 < self.model.bounds.sessions { Ok(()) } else { Err(HostError::Protocol(format!("unknown session {s}"))) }
    }

    fn check_connector(&self, c: ConnectorId) -> Result<(), HostError> {
        if c.0 < self.model.bounds.connectors {
            Ok(())
        } else {
            Err(HostError::Protocol(format!("unknown connector {c}")))
        }
    }

    fn set_turn_connector(&mut self, s: SessionId, c: ConnectorId) -> Result<(), HostError> {
        match &mut self.state.sessions[s.index()].turn {
            Some(turn) => {
                turn.connector = c;
                Ok(())
            }
            None => Err(HostError::Protocol(format!("the agent acts in {s}, which has no turn"))),
        }
    }

    /// Steps the model and reports what the host did and shows.
    fn step(&mut self, action: Action, delivered: Option<(SessionId, ConnectorId)>) -> Output {
        let before = self.state;
        let after = self.model.step(&before, action).expect("the model steps every action");
        let mut requests = Vec::new();
        let mut listens = Vec::new();
        for s in self.model.bounds.session_ids() {
            for c in self.model.bounds.connector_ids() {
                let mut kept = before.link(s, c).fetch_count();
                if delivered == Some((s, c)) {
                    kept -= 1;
                }
                if matches!(action, Action::UserRestart { session } if session == s) {
                    kept = 0;
                    self.ids.remove(&(s, c));
                }
                // A stream is opened where none was, and again after a restart or the stream's end.
                let renewed = matches!(action, Action::UserRestart { session } if session == s)
                    || action == (Action::LoseNotificationStream { session: s, connector: c });
                if after.link(s, c).listening && (renewed || !before.link(s, c).listening) {
                    listens.push(LinkRef { session: s, connector: c });
                }
                let initialize = before.link(s, c).transport_lost && !after.link(s, c).transport_lost;
                for _ in kept..after.link(s, c).fetch_count() {
                    let id = self.sent.entry((s, c)).or_default();
                    self.ids.entry((s, c)).or_default().push_back(*id);
                    *id += 1;
                    requests.push(SentRequest { session: s, connector: c, initialize, cursor: None });
                }
            }
        }
        let reads = self
            .model
            .bounds
            .session_ids()
            .filter(|&s| {
                after.session(s).read.is_some() && (before.session(s).read.is_none() || delivered_read(action, s))
            })
            .collect();
        self.state = after;
        let answer = match after.event {
            Some(Event::Answered(m)) => Some(m.answer),
            _ => None,
        };
        Output::Observation { requests, reads, listens, sessions: self.views(), answer }
    }

    fn views(&self) -> Vec<SessionView> {
        self.model
            .bounds
            .session_ids()
            .map(|s| {
                let mut catalogue = BTreeMap::new();
                let mut notices = BTreeMap::new();
                let mut fetch_at_offer = std::collections::BTreeSet::new();
                for c in self.model.bounds.connector_ids() {
                    let link = self.state.link(s, c);
                    if link.lazy {
                        fetch_at_offer.insert(c);
                    }
                    if let Some(listing) = link.offered() {
                        catalogue.insert(c, listing);
                    }
                    if let Some(notice) = link.notice {
                        notices.insert(c, notice);
                    }
                }
                let turn = match self.state.session(s).turn {
                    None => TurnState::None,
                    Some(t) if t.held => TurnState::Held,
                    Some(_) => TurnState::Open,
                };
                SessionView { session: s, catalogue, notices, fetch_at_offer, turn }
            })
            .collect()
    }
}

/// A read the step delivered and a new one sent in the same step (a host may read again at once).
fn delivered_read(action: Action, s: SessionId) -> bool {
    action == Action::DeliverAccount { session: s }
}

impl Host for ReferenceHost {
    fn handle(&mut self, input: &Input) -> Result<Output, HostError> {
        match input {
            Input::Hello { protocol } => {
                if *protocol != PROTOCOL_VERSION {
                    return Ok(Output::Error {
                        message: format!("protocol {protocol} is not supported; this host speaks {PROTOCOL_VERSION}"),
                    });
                }
                Ok(Output::Hello {
                    protocol: PROTOCOL_VERSION,
                    host: match self.model.mutant {
                        None => format!("reference/{}", self.model.policy.name),
                        Some(m) => format!("reference/{}+{m}", self.model.policy.name),
                    },
                    claims: Vec::new(),
                    commands: Some(crate::protocol::Command::of_policy(self.model.policy.commands)),
                })
            }
            Input::Reset { connectors, sessions } => {
                self.reset(connectors, sessions)?;
                let listens = self
                    .model
                    .bounds
                    .session_ids()
                    .flat_map(|s| self.model.bounds.connector_ids().map(move |c| LinkRef { session: s, connector: c }))
                    .filter(|l| self.state.link(l.session, l.connector).listening)
                    .collect();
                Ok(Output::Observation {
                    requests: Vec::new(),
                    reads: Vec::new(),
                    listens,
                    sessions: self.views(),
                    answer: None,
                })
            }
            Input::Notification { session, connector } => {
                self.check_session(*session)?;
                self.check_connector(*connector)?;
                let link = self.state.link_mut(*session, *connector);
                link.notifications = link.notifications.max(1);
                Ok(self.step(Action::DeliverNotification { session: *session, connector: *connector }, None))
            }
            Input::Listing { session, connector, request, result, cache } => {
                self.check_session(*session)?;
                self.check_connector(*connector)?;
                let (s, c) = (*session, *connector);
                if let Some(hint) = cache {
                    let k = &mut self.state.connectors[c.index()];
                    (k.ttl, k.scope) = (hint.ttl, hint.scope);
                }
                let ids = self.ids.entry((s, c)).or_default();
                let slot = ids.iter().position(|id| id == request).ok_or_else(|| {
                    HostError::Protocol(format!("reply to request {request} of {s}/{c}, which is not in flight"))
                })?;
                let reply = match result {
                    ListResult::Tools(listing) => Reply::Listed { listing: *listing, version: 0 },
                    ListResult::FirstPage { .. } => Reply::Listed { listing: Listing::SomeActions, version: 0 },
                    ListResult::Error(failure) => Reply::Failed(*failure),
                };
                let link = self.state.link_mut(s, c);
                link.fetches[slot].as_mut().expect("ids are aligned with fetches").reply = reply;
                // A 404 is how a host learns that its transport session is gone.
                link.transport_lost =
                    *result == ListResult::Error(coherence_model::state::ListFailure::SessionNotFound);
                let action = Action::DeliverListing { session: s, connector: c, slot: slot as u8 };
                if let ListResult::FirstPage { next_cursor } = result
                    && self.model.follows_cursor()
                {
                    // The model asks for the rest in the request's place: a new request on the
                    // wire, carrying the cursor.
                    let id = self.sent.entry((s, c)).or_default();
                    self.ids.get_mut(&(s, c)).expect("found above")[slot] = *id;
                    *id += 1;
                    let mut output = self.step(action, None);
                    if let Output::Observation { requests, .. } = &mut output {
                        let rest = SentRequest {
                            session: s,
                            connector: c,
                            initialize: false,
                            cursor: Some(next_cursor.clone()),
                        };
                        requests.insert(0, rest);
                    }
                    return Ok(output);
                }
                self.ids.get_mut(&(s, c)).expect("found above").remove(slot);
                Ok(self.step(action, Some((s, c))))
            }
            Input::Timeout { session, connector, request } => {
                self.check_session(*session)?;
                self.check_connector(*connector)?;
                let (s, c) = (*session, *connector);
                let slot =
                    self.ids.entry((s, c)).or_default().iter().position(|id| id == request).ok_or_else(|| {
                        HostError::Protocol(format!("timeout of request {request} of {s}/{c}, which is not in flight"))
                    })?;
                let link = self.state.link_mut(s, c);
                link.fetches[slot].as_mut().expect("ids are aligned with fetches").reply = Reply::Hung;
                let action = Action::TimeOutListing { session: s, connector: c, slot: slot as u8 };
                if !self.model.times_out() {
                    // No timeout: the host goes on waiting for the request, which stays in flight.
                    return Ok(self.step(action, None));
                }
                self.ids.get_mut(&(s, c)).expect("found above").remove(slot);
                Ok(self.step(action, Some((s, c))))
            }
            Input::TtlExpired { session, connector } => {
                self.check_session(*session)?;
                self.check_connector(*connector)?;
                Ok(self.step(Action::ExpireTtl { session: *session, connector: *connector }, None))
            }
            Input::ListenEnded { session, connector } => {
                self.check_session(*session)?;
                self.check_connector(*connector)?;
                if !self.state.link(*session, *connector).listening {
                    return Err(HostError::Protocol(format!(
                        "the end of a listen stream of {session}/{connector}, which has none open"
                    )));
                }
                // The model counts the end of a stream as a fault; a host has no budget for them.
                self.state.spent.faults = 0;
                Ok(self.step(Action::LoseNotificationStream { session: *session, connector: *connector }, None))
            }
            Input::Account { session, result } => {
                self.check_session(*session)?;
                let read = match result {
                    AccountResult::Failed => AccountRead::Failed,
                    AccountResult::Connectors(account) => {
                        let mut mask = 0u8;
                        for (c, auth) in account {
                            self.check_connector(*c)?;
                            if *auth == Auth::Authenticated {
                                mask |= 1 << c.0;
                            }
                        }
                        AccountRead::Served(mask)
                    }
                    AccountResult::Lists(lists) => {
                        // The read as the model keeps it: what the account's state would list.
                        let mut account = self.state;
                        for (c, listing) in lists {
                            self.check_connector(*c)?;
                            let k = &mut account.connectors[c.index()];
                            k.auth = auth_of(*listing);
                            k.withdrawn = *listing == Listing::Withdrawn;
                        }
                        AccountRead::of(&account, *session)
                    }
                };
                let pending = &mut self.state.sessions[session.index()].read;
                if pending.is_none() {
                    return Err(HostError::Protocol(format!("an account read reply for {session}, which sent none")));
                }
                *pending = Some(read);
                Ok(self.step(Action::DeliverAccount { session: *session }, None))
            }
            Input::Ask { session } => {
                self.check_session(*session)?;
                // The host cannot see the connector the user needs; the model's turn records one,
                // which the agent's first call overwrites.
                Ok(self.step(Action::UserAsk { session: *session, connector: ConnectorId(0) }, None))
            }
            Input::Mcp { session } => {
                self.check_session(*session)?;
                Ok(self.step(Action::UserMcp { session: *session }, None))
            }
            Input::Restart { session } => {
                self.check_session(*session)?;
                Ok(self.step(Action::UserRestart { session: *session }, None))
            }
            Input::Authenticated { session, connector } => {
                self.check_session(*session)?;
                self.check_connector(*connector)?;
                Ok(self.step(Action::UserAuthenticate { session: *session, connector: *connector }, None))
            }
            Input::CallTool { session, connector, server } => {
                self.check_session(*session)?;
                self.check_connector(*connector)?;
                self.set_turn_connector(*session, *connector)?;
                let link = self.state.link_mut(*session, *connector);
                link.transport_lost = *server == CallResult::SessionNotFound;
                let k = &mut self.state.connectors[connector.index()];
                k.auth = match server {
                    CallResult::Ok | CallResult::SessionNotFound | CallResult::UnknownTool => Auth::Authenticated,
                    CallResult::Unauthorized => Auth::Expired,
                };
                k.withdrawn = *server == CallResult::UnknownTool;
                Ok(self.step(Action::AgentCallTool { session: *session }, None))
            }
            Input::CallStub { session, connector, authenticated } => {
                self.check_session(*session)?;
                self.check_connector(*connector)?;
                self.set_turn_connector(*session, *connector)?;
                self.state.connectors[connector.index()].auth =
                    if *authenticated { Auth::Authenticated } else { Auth::Unauthenticated };
                Ok(self.step(Action::AgentCallStub { session: *session }, None))
            }
            Input::CallUnlisted { session, connector } => {
                self.check_session(*session)?;
                self.check_connector(*connector)?;
                self.set_turn_connector(*session, *connector)?;
                Ok(self.step(Action::AgentCallUnlisted { session: *session }, None))
            }
            Input::AnswerNotAvailable { session, connector } => {
                self.check_session(*session)?;
                self.check_connector(*connector)?;
                self.set_turn_connector(*session, *connector)?;
                Ok(self.step(Action::AgentAnswerNotAvailable { session: *session }, None))
            }
            Input::CompleteAuthentication { session, connector, list_changed_first } => {
                self.check_session(*session)?;
                self.check_connector(*connector)?;
                self.set_turn_connector(*session, *connector)?;
                let (s, c) = (*session, *connector);
                let before = self.state;
                // The world as the input tells it: the connector was not authenticated, and its
                // server sent this session the change's notification first, or none yet.
                let server = &mut self.state.connectors[c.index()];
                server.auth = Auth::Unauthenticated;
                server.announced = false;
                if !list_changed_first {
                    server.notify = coherence_model::state::Notify::Silent;
                }
                let output = self.step(Action::AgentCompleteAuthentication { session: s }, None);
                // The host knows of no notification but the one it got.
                self.state.connectors[c.index()].notify = before.connector(c).notify;
                for other in self.model.bounds.session_ids() {
                    self.state.link_mut(other, c).notifications = before.link(other, c).notifications;
                }
                Ok(output)
            }
            Input::RelayNotice { session, connector } => {
                self.check_session(*session)?;
                self.check_connector(*connector)?;
                self.set_turn_connector(*session, *connector)?;
                let c = *connector;
                if self.state.link(*session, c).notice.is_none() {
                    return Err(HostError::Protocol(format!(
                        "relay_notice in {session}, which shows no notice for the turn"
                    )));
                }
                Ok(self.step(Action::AgentRelayNotice { session: *session }, None))
            }
        }
    }
}

/// A host as a black-box run sees it (SPEC.md §11.5): what it offers, only while a model request
/// waits for the agent (an open turn); otherwise every connector listed at the next offer, and
/// the notices of the last offer of the turn (none yet at its start). Adapter mode through this
/// lens gives the verdicts the wire can give, so the two can be compared.
pub struct SeenOnTheWire<H> {
    host: H,
    connectors: usize,
    notices: BTreeMap<coherence_model::state::SessionId, BTreeMap<ConnectorId, coherence_model::state::Notice>>,
}

impl<H: Host> SeenOnTheWire<H> {
    /// `host`, seen as on the wire.
    pub fn new(host: H) -> Self {
        SeenOnTheWire { host, connectors: 0, notices: BTreeMap::new() }
    }
}

impl<H: Host> Host for SeenOnTheWire<H> {
    fn handle(&mut self, input: &Input) -> Result<Output, HostError> {
        match input {
            Input::Reset { connectors, .. } => {
                self.connectors = connectors.len();
                self.notices.clear();
            }
            Input::Ask { session } => {
                self.notices.remove(session);
            }
            _ => {}
        }
        let mut output = self.host.handle(input)?;
        if let Output::Observation { sessions, answer, .. } = &mut output {
            for view in sessions {
                if view.turn == TurnState::Open || answer.is_some() {
                    self.notices.insert(view.session, view.notices.clone());
                }
                if view.turn != TurnState::Open {
                    view.catalogue.clear();
                    view.fetch_at_offer = (0..self.connectors).map(|k| ConnectorId(k as u8)).collect();
                    view.notices = self.notices.get(&view.session).cloned().unwrap_or_default();
                }
            }
        }
        Ok(output)
    }
}

/// The authorization a listing shows: the action tools, all or but a withdrawn one, are an
/// authenticated connector's.
fn auth_of(tools: Listing) -> Auth {
    if matches!(tools, Listing::Actions | Listing::Withdrawn) { Auth::Authenticated } else { Auth::Unauthenticated }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ConnectorSetup;
    use coherence_model::state::{Listing, Notify};

    fn view(output: &Output) -> &SessionView {
        match output {
            Output::Observation { sessions, .. } => &sessions[0],
            other => panic!("{other:?}"),
        }
    }

    /// Between turns the lens hides the catalogue a host keeps; in a turn it shows what is offered.
    #[test]
    fn seen_on_the_wire_a_catalogue_shows_only_while_the_turn_is_open() {
        let policy = coherence_model::policy_named("session-start-only").unwrap();
        let mut host = SeenOnTheWire::new(ReferenceHost::new(policy));
        let setup = |name| ConnectorSetup {
            name,
            notify: Notify::Advertised,
            tools: Listing::Stubs,
            revision: Default::default(),
            cache: None,
            second_user: None,
        };
        let reset = Input::Reset {
            connectors: vec![setup(ConnectorId(0)), setup(ConnectorId(1))],
            sessions: vec![SessionId(0)],
        };
        let between = host.handle(&reset).unwrap();
        assert!(view(&between).catalogue.is_empty());
        assert_eq!(view(&between).fetch_at_offer.len(), 2);
        let asked = host.handle(&Input::Ask { session: SessionId(0) }).unwrap();
        assert_eq!(view(&asked).turn, TurnState::Open);
        assert_eq!(view(&asked).catalogue.get(&ConnectorId(0)), Some(&Listing::Stubs));
        assert!(view(&asked).fetch_at_offer.is_empty());
        // The same host without the lens shows its kept catalogue between turns.
        let mut bare = ReferenceHost::new(policy);
        assert_eq!(view(&bare.handle(&reset).unwrap()).catalogue.len(), 2);
    }
}
