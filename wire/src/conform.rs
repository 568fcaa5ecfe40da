//! A real host, judged black-box (SPEC.md §11.5): [`WireHost`] plays a fixture's world on a
//! [`Stage`] (the connectors' MCP servers and the language model) and reports, after every input,
//! what the wire showed, as the observation the adapter protocol carries. The conformance engine
//! then judges it exactly as it judges an adapter's report: the same replay, the same invariants.
//!
//! **What the host did** is read from the wire alone:
//! - its `tools/list` requests are the ones the servers hold (every list after the host's start
//!   is held until the fixture's world says what it returns, [`Listing`](Input::Listing));
//! - what it offers the model is the `tools` of the model request waiting for an answer, each
//!   offered name mapped to its connector ([`reading::connector_of`]);
//! - its notices are the lines of the request's system prompt and of the text it added since the
//!   previous request that name a connector and a recovery step ([`reading::read_lines`]);
//! - its turn is in progress from the user's line to its `turn_end` line: open while a model
//!   request waits, held while the host waits for its lists;
//! - the answer a turn ends with is what the host gave the model for the agent's step: the tool
//!   result's text and error flag, or the agent's own words.
//!
//! Between turns no catalogue is visible on the wire, so every connector is reported as listed at
//! the next offer (`fetch_at_offer`): a host is judged by what it offers, when it offers it.
//!
//! **Reach.** One session (one host process) per fixture; the host is told of no commands. A
//! call answered 401 is played by the server listing its stubs (it refuses a call of any other
//! tool with 401, a JSON-RPC error over stdio); one answered 404 by the server losing the host's
//! transport session first (over stdio its connection closes). A list that never returns is held
//! for ever, and its `timeout` played by waiting [`WireOptions::hang_ms`] after the host sent it.
//! A fixture that needs an account read, or a timeout with no `hang_ms`, stops with
//! [`HostError::Unsupported`]: reported apart, never a pass. So does a
//! fixture whose server speaks MCP 2026-07-28 to a host that speaks a 2025 revision to it;
//! otherwise such a server gives the fixture's cache hints, its listen streams are the host's
//! `listens`, and `listen_ended` ends them. A `long` TTL is [`WireOptions::ttl_ms`]: an hour by
//! default, and a TTL that runs out (`ttl_expired`) is then not run; shorter, the runner waits it
//! out.

use crate::mcp::{Behaviour, CacheHint, Protection, Release, Seen, Tool};
use crate::model_api::{ModelRequest, Part, Reply, added_text};
use crate::reading::{self, Phrases};
use crate::stage::{Connector, Offer, Pacing, Stage, StageError, Transport};
use coherence_model::state::{Answer, ConnectorId, ListFailure, Listing, Notice, Notify, SessionId, StubReply, Ttl};
use coherence_sim::fixture::Fixture;
use coherence_sim::host::{Host, HostError};
use coherence_sim::protocol::{
    CallResult, ConnectorSetup, DEPLOYS_SINCE, Input, LinkRef, ListResult, Output, SentRequest, SessionView, TurnState,
};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::PathBuf;

/// The most model requests the runner answers with the agent's closing words after a turn's last
/// step, before the host's `turn_end`: past it, the host does not end its turns.
const CLOSING_REQUESTS_MAX: usize = 8;

/// The `ttlMs` a fixture's `long` TTL is played as by default: longer than any run, so a
/// `ttl_expired` is not played ([`WireOptions::ttl_ms`]).
pub const LONG_TTL_MS: u64 = 3_600_000;

/// How long past a list's TTL the runner waits before it takes the host's clock to have run it
/// out: the list reached the host before the runner noted the time, so this is slack, not a race.
const TTL_SLACK: std::time::Duration = std::time::Duration::from_millis(50);

/// What the user says to start a turn: the host cannot tell which connector it needs.
const USER_ASKS: &str = "Please do what I asked, with the tools of my connected accounts.";

/// How to run a host black-box.
#[derive(Clone, Debug)]
pub struct WireOptions {
    /// The host command, run with `sh -c`.
    pub command: String,
    /// How the host reaches every connector's server.
    pub transport: Transport,
    /// The `coherence` binary a stdio connector's configuration spawns.
    pub relay: PathBuf,
    /// How long the stage waits.
    pub pacing: Pacing,
    /// The phrases that make a line a notice or an error.
    pub phrases: Phrases,
    /// The protocol revisions the servers speak.
    pub revision: Revision,
    /// The `ttlMs` a fixture's `long` TTL is played as ([`LONG_TTL_MS`] by default). Shorter,
    /// a `ttl_expired` is played by waiting until that long after the list reached the host; a
    /// host slower than that between a list and the step that expires it sees the TTL run out
    /// early, and is judged as a host that lists again early.
    pub ttl_ms: u64,
    /// How long after the host sent a `tools/list` that never returns the runner waits for the
    /// host to give it up (a fixture's `timeout`); `None`: such a fixture is not run. A host whose
    /// own timeout is longer is judged as a host that has none.
    pub hang_ms: Option<u64>,
}

/// The protocol revisions the kit's servers speak in a black-box run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Revision {
    /// The handshake revisions (2025-03-26 to 2025-11-25): a host that probes `server/discover`
    /// falls back to `initialize`.
    #[default]
    Handshake,
    /// The stateless revision 2026-07-28 as well, for the fixtures of the handshake revisions: a
    /// host that speaks it goes stateless. Its lists say they are immediately stale (`ttlMs` 0),
    /// and a change notification reaches it only on a listen stream it opened, so a fixture that
    /// delivers one to a host with none is not run; nor is one with a lost transport session
    /// (the revision has none). A fixture's own 2026-07-28 servers speak it whatever this says.
    Stateless,
}

/// Whether a fixture is within what a black-box run plays: `Err` says why not.
pub fn within_reach(fixture: &Fixture) -> Result<(), String> {
    if fixture.bounds.sessions != 1 {
        return Err(format!(
            "{} sessions: a black-box run plays one session (one host process) per fixture",
            fixture.bounds.sessions
        ));
    }
    Ok(())
}

/// Where the host's turn is, as the wire shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Turn {
    /// No turn.
    Idle,
    /// The user asked; no `turn_end` yet.
    Asked,
}

/// What kind of agent step a tool call is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CallKind {
    Tool,
    /// A call of a listed action tool that its server refuses: 401, or 404 (a lost session).
    Refused,
    Stub,
    Unlisted,
    CompleteAuthentication,
}

/// The agent's step as the model's answer: words that end the turn with this answer, or a call of
/// a connector's tool, whose answer the host's next move tells.
#[derive(Clone, Copy, Debug)]
enum Step {
    Says(Answer),
    Calls(CallKind, usize),
}

/// A `tools/list` in flight: the engine's number for it, the server's, and whether it asked for
/// a later page.
#[derive(Clone, Copy, Debug)]
struct InFlight {
    request: u64,
    held: u64,
    cursor: bool,
    /// When the runner saw it held (the host sent it a little before).
    seen: std::time::Instant,
}

/// A host process on a stage, answering the adapter protocol from what the wire shows.
pub struct WireHost {
    options: WireOptions,
    stage: Option<Stage>,
    /// The connectors, as texts and tool names may name them.
    connectors: Vec<reading::Connector>,
    in_flight: Vec<VecDeque<InFlight>>,
    next_request: Vec<u64>,
    /// Held lists already reported, per connector, by the server's number.
    reported: Vec<BTreeSet<u64>>,
    /// Per connector whose server speaks MCP 2026-07-28 in the fixture, whether the host has a
    /// listen stream open to it, as last reported.
    listening: Vec<Option<bool>>,
    /// Per connector, when the host was last given a list of it (by then it had it).
    listed_at: Vec<std::time::Instant>,
    /// The model request waiting for the agent's step.
    offer: Option<Offer>,
    /// The last model request with tools, for the text added since.
    previous: Option<ModelRequest>,
    notices: BTreeMap<ConnectorId, Notice>,
    turn: Turn,
    /// The agent's last call ended its turn (the server ran it), but the host, before giving the
    /// model the result, waits for a list: its next model request is answered with the agent's
    /// closing words, and its next `turn_end` is that turn's.
    closing: bool,
    /// Host lines already read.
    lines_read: usize,
}

impl WireHost {
    /// A black-box host; its process starts at the first `reset`.
    pub fn new(options: WireOptions) -> WireHost {
        WireHost {
            options,
            stage: None,
            connectors: Vec::new(),
            in_flight: Vec::new(),
            next_request: Vec::new(),
            reported: Vec::new(),
            listening: Vec::new(),
            listed_at: Vec::new(),
            offer: None,
            previous: None,
            notices: BTreeMap::new(),
            turn: Turn::Idle,
            closing: false,
            lines_read: 0,
        }
    }

    /// Everything the servers saw and every line the host printed, for a failure report.
    fn log(&self) -> Vec<String> {
        let Some(stage) = &self.stage else { return Vec::new() };
        let mut log = Vec::new();
        for server in stage.servers() {
            for seen in server.seen() {
                log.push(format!("{}: {}", server.connector(), serde_json::to_string(&seen).expect("serialises")));
            }
        }
        for (i, exchange) in stage.model().log().exchanges.iter().enumerate() {
            log.push(format!("model request {i}: tools [{}]", names(&exchange.request)));
        }
        log.extend(stage.lines().iter().map(|l| format!("host: {l}")));
        log
    }

    fn stage(&mut self) -> Result<&mut Stage, HostError> {
        self.stage.as_mut().ok_or_else(|| HostError::Protocol("an input before reset".to_owned()))
    }

    fn reset(&mut self, connectors: &[ConnectorSetup], sessions: &[SessionId]) -> Result<Output, HostError> {
        // The previous fixture's host, servers and model go first (and its wire log with them).
        self.offer = None;
        self.stage = None;
        if sessions.len() != 1 {
            return Err(HostError::Unsupported(format!(
                "{} sessions: a black-box run plays one session per fixture",
                sessions.len()
            )));
        }
        let speaks_2026 = |c: &ConnectorSetup| c.revision == coherence_model::state::Revision::Stateless;
        let on_stage: Vec<Connector> = connectors
            .iter()
            .map(|c| {
                let name = c.name.to_string();
                Connector {
                    tools: tools_of(&name, c.tools, false),
                    behaviour: Behaviour {
                        declares_list_changed: c.notify == Notify::Advertised,
                        modern: match c.cache {
                            // The fixture's server speaks 2026-07-28, with the fixture's hints.
                            Some(hint) if speaks_2026(c) => Some(CacheHint {
                                ttl_ms: match hint.ttl {
                                    Ttl::Zero => 0,
                                    Ttl::Long => self.options.ttl_ms,
                                },
                                scope: hint.scope.into(),
                            }),
                            _ => (self.options.revision == Revision::Stateless).then_some(CacheHint::STALE),
                        },
                        ..Behaviour::ADVERTISED
                    },
                    protection: Protection::Open,
                    transport: self.options.transport,
                    name,
                }
            })
            .collect();
        let stage = Stage::start(&self.options.command, &on_stage, &self.options.relay, self.options.pacing)
            .map_err(stage_error)?;
        for server in stage.servers() {
            server.hold_lists(true);
        }
        self.connectors = on_stage
            .iter()
            .map(|c| reading::Connector {
                name: c.name.clone(),
                tools: Tool::actions(&c.name).into_iter().chain(Tool::stubs(&c.name)).map(|t| t.name).collect(),
            })
            .collect();
        let n = connectors.len();
        self.in_flight = vec![VecDeque::new(); n];
        self.next_request = vec![0; n];
        self.reported = vec![BTreeSet::new(); n];
        self.listening = connectors.iter().map(|c| speaks_2026(c).then_some(false)).collect();
        // The host listed every connector before it said it was ready.
        self.listed_at = vec![std::time::Instant::now(); n];
        self.offer = None;
        self.previous = None;
        self.notices.clear();
        self.turn = Turn::Idle;
        self.closing = false;
        self.lines_read = stage.lines().len();
        self.stage = Some(stage);
        // The lists the host made at its start were answered by the servers, not held.
        let output = self.observe(None)?;
        for (k, c) in connectors.iter().enumerate() {
            if speaks_2026(c) && !self.stateless(k)? {
                return Err(HostError::Unsupported(format!(
                    "the host speaks a 2025 revision to {}, whose server speaks MCP 2026-07-28 in this fixture: the fixture's world is not the one the host meets",
                    c.name
                )));
            }
        }
        Ok(output)
    }

    /// The held lists not reported yet, as requests.
    fn new_requests(&mut self) -> Vec<SentRequest> {
        let Some(stage) = &self.stage else { return Vec::new() };
        let mut requests = Vec::new();
        for (k, server) in stage.servers().iter().enumerate() {
            for held in server.held() {
                if !self.reported[k].insert(held.id) {
                    continue;
                }
                let request = self.next_request[k];
                self.next_request[k] += 1;
                let seen = std::time::Instant::now();
                self.in_flight[k].push_back(InFlight { request, held: held.id, cursor: held.cursor.is_some(), seen });
                requests.push(SentRequest {
                    session: SessionId(0),
                    connector: ConnectorId(k as u8),
                    initialize: held.fresh,
                    cursor: held.cursor,
                });
            }
        }
        requests
    }

    /// Waits until the host has done what the last input made it do: quiet on every wire, or,
    /// once it waits on the runner (a model request or a list waiting, or its turn ended), a
    /// short grace. A host in a turn that waits on nothing the runner holds must still act (or
    /// hold the turn for ever, INV-11), so the quiet it gets then is ten times as long: a host
    /// that starts a new stdio server to list again takes longer than the quiet.
    fn settle(&mut self) -> Result<(), HostError> {
        let lines_read = self.lines_read;
        let offered = self.offer.is_some();
        let quiet = self.options.pacing.quiet;
        let quiet = if self.turn == Turn::Asked && !offered {
            (quiet * 10).min(self.options.pacing.deadline / 2)
        } else {
            quiet
        };
        self.stage()?
            .settle_until(
                |stage| {
                    offered
                        || stage.has_offer()
                        || stage.servers().iter().any(|s| !s.held().is_empty())
                        || ended_since(stage, lines_read)
                },
                quiet,
            )
            .map_err(stage_error)
    }

    /// Whether a server holds a list the runner has not reported.
    fn unreported(stage: &Stage, reported: &[BTreeSet<u64>]) -> bool {
        stage.servers().iter().zip(reported).any(|(server, seen)| server.held().iter().any(|h| !seen.contains(&h.id)))
    }

    /// Takes a waiting model request, if any, as the one the agent answers next; reads its notices.
    fn take_offer(&mut self) -> Result<(), HostError> {
        if self.offer.is_some() {
            return Ok(());
        }
        let Some(offer) = self.stage()?.take_offer().map_err(stage_error)? else { return Ok(()) };
        if self.closing {
            self.previous = Some(offer.request.clone());
            offer.answer(Reply::Text { text: "Done.".to_owned() });
            return Ok(());
        }
        if self.turn == Turn::Idle {
            return Err(HostError::Protocol(format!(
                "the host offered the model tools ({}) with no user turn in progress",
                names(&offer.request)
            )));
        }
        self.read_notices(&offer.request);
        self.previous = Some(offer.request.clone());
        self.offer = Some(offer);
        Ok(())
    }

    /// The notices of a request: lines of its system prompt and of the text added since the
    /// previous request that name a connector and a recovery step.
    fn read_notices(&mut self, request: &ModelRequest) {
        let mut texts = vec![request.system.clone()];
        texts.extend(added_text(self.previous.as_ref(), request).into_iter().filter(|t| *t != request.system));
        let lines = reading::read_lines(&texts, &self.connectors, &self.options.phrases);
        self.notices.clear();
        for (k, _) in self.connectors.iter().enumerate() {
            if let Some(notice) = lines.iter().find(|l| l.is_notice_about(k)).and_then(reading::Line::notice) {
                self.notices.insert(ConnectorId(k as u8), notice);
            }
        }
    }

    /// The host's turn-end lines since the last read: the text of each.
    fn turn_ends(&mut self) -> Vec<String> {
        let Some(stage) = &self.stage else { return Vec::new() };
        let ends = stage.lines()[self.lines_read..].iter().filter_map(|l| turn_end(l)).collect();
        self.lines_read = stage.lines().len();
        ends
    }

    /// Settles, then reports the host's state; `answer` is the answer the input ended a turn with.
    fn observe(&mut self, answer: Option<Answer>) -> Result<Output, HostError> {
        self.settle()?;
        self.take_offer()?;
        if self.closing && !self.turn_ends().is_empty() {
            self.closing = false;
        }
        let requests = self.new_requests();
        let n = self.connectors.len();
        let (catalogue, fetch_at_offer) = match &self.offer {
            Some(offer) => (self.catalogue(&offer.request), BTreeSet::new()),
            None => (BTreeMap::new(), (0..n).map(|k| ConnectorId(k as u8)).collect()),
        };
        let turn = match (self.turn, &self.offer) {
            (Turn::Idle, _) => TurnState::None,
            (Turn::Asked, Some(_)) => TurnState::Open,
            (Turn::Asked, None) => TurnState::Held,
        };
        let view =
            SessionView { session: SessionId(0), catalogue, notices: self.notices.clone(), fetch_at_offer, turn };
        let listens = self.new_listens()?;
        Ok(Output::Observation { requests, reads: Vec::new(), listens, sessions: vec![view], answer })
    }

    /// The listen streams the host opened since the last report, to the fixture's 2026-07-28
    /// servers: a link listens from the first stream asking for `toolsListChanged` (which a server
    /// that does not declare it acknowledges with an empty filter: the stream is open, and ends as
    /// any does, though no change will come on it). A host that lets its last stream end on its own is not within reach: the fixture
    /// would go on delivering changes to it.
    fn new_listens(&mut self) -> Result<Vec<LinkRef>, HostError> {
        let mut listens = Vec::new();
        for k in 0..self.listening.len() {
            let Some(was) = self.listening[k] else { continue };
            let now = self.stage()?.servers()[k].listens_asked() > 0;
            match (was, now) {
                (false, true) => listens.push(LinkRef { session: SessionId(0), connector: ConnectorId(k as u8) }),
                (true, false) => {
                    return Err(HostError::Unsupported(format!(
                        "the host closed its listen stream to {} on its own, which the model does not know",
                        self.connectors[k].name
                    )));
                }
                _ => {}
            }
            self.listening[k] = Some(now);
        }
        Ok(listens)
    }

    /// What a request offers, per connector.
    fn catalogue(&self, request: &ModelRequest) -> BTreeMap<ConnectorId, Listing> {
        let mut catalogue = BTreeMap::new();
        for (k, connector) in self.connectors.iter().enumerate() {
            let offered: Vec<&str> = request
                .tools
                .iter()
                .filter(|t| reading::connector_of(&t.name, &self.connectors) == Some(k))
                .map(|t| t.name.as_str())
                .collect();
            let has =
                |tool: &str| offered.iter().any(|o| reading::ends_with_tool(o, &format!("{}_{tool}", connector.name)));
            let actions = ["search", "read", "send"].iter().filter(|t| has(t)).count();
            let listing = match actions {
                3 => Some(Listing::Actions),
                1.. => Some(Listing::SomeActions),
                0 if has("authenticate") || has("complete_authentication") => Some(Listing::Stubs),
                0 => None,
            };
            if let Some(listing) = listing {
                catalogue.insert(ConnectorId(k as u8), listing);
            }
        }
        catalogue
    }

    /// The name the host offers `tool` of connector `k` under, or, if it offers it under none, the
    /// name it would give it (the prefix of another offered tool of `k`, else the bare name).
    fn offered_name(&self, k: usize, tool: &str) -> String {
        let full = format!("{}_{tool}", self.connectors[k].name);
        let Some(offer) = &self.offer else { return full };
        let tools = &offer.request.tools;
        if let Some(t) = tools.iter().find(|t| reading::ends_with_tool(&t.name, &full)) {
            return t.name.clone();
        }
        for t in tools {
            if let Some(ours) = self.connectors[k].tools.iter().find(|ours| reading::ends_with_tool(&t.name, ours)) {
                return format!("{}{full}", &t.name[..t.name.len() - ours.len()]);
            }
        }
        full
    }

    /// The agent's step: answers the waiting model request with `reply`, follows the host until
    /// it ends the turn (or holds it, or, after a handshake, asks the model again), and reports.
    fn agent(&mut self, reply: Reply, step: Step) -> Result<Output, HostError> {
        let offer = self.offer.take().ok_or_else(|| {
            HostError::Protocol("the agent acts, but no model request with tools is waiting for it".to_owned())
        })?;
        let calls_before: Vec<usize> = self.stage()?.servers().iter().map(|s| calls(&s.seen())).collect();
        let refused_before: Vec<usize> = self.stage()?.servers().iter().map(|s| refused_calls(&s.seen())).collect();
        offer.answer(reply);
        let (kind, k) = match step {
            Step::Says(answer) => {
                self.close_turn()?;
                return self.observe(Some(answer));
            }
            Step::Calls(kind, k) => (kind, k),
        };
        // The host runs the call and asks the model again with the result, ends the turn, or
        // holds it to list first.
        let reported = self.reported.clone();
        let lines_read = self.lines_read;
        self.stage()?
            .wait_until("model request, turn end or tools/list after the agent's call", |stage| {
                stage.has_offer() || ended_since(stage, lines_read) || Self::unreported(stage, &reported)
            })
            .map_err(stage_error)?;
        self.settle()?;
        let next = self.stage()?.take_offer().map_err(stage_error)?;
        match next {
            Some(next) => {
                let result = tool_result(&next.request);
                self.read_notices(&next.request);
                self.previous = Some(next.request.clone());
                if kind == CallKind::CompleteAuthentication {
                    // The handshake does not end the turn: the agent acts again on this request.
                    self.offer = Some(next);
                    return self.observe(None);
                }
                let answer = self.classify(kind, k, result, &calls_before)?;
                next.answer(Reply::Text { text: "Done.".to_owned() });
                self.close_turn()?;
                self.observe(Some(answer))
            }
            None if !self.turn_ends_waiting() => {
                let stage = self.stage.as_ref().expect("a stage is set while a turn runs");
                let ran = stage.servers().iter().zip(&calls_before).any(|(s, before)| calls(&s.seen()) > *before);
                // A call its server refused, with no list of that server under way: the host
                // does not refresh it to let the agent try again (SPEC.md §4, a retry), but waits
                // for another server's list before it gives the model the result (an agent
                // framework lists every server before each model request).
                let refused = kind == CallKind::Refused
                    && refused_calls(&stage.servers()[k].seen()) > refused_before[k]
                    && stage.servers()[k].held().is_empty();
                if !(ran || refused) || kind == CallKind::CompleteAuthentication {
                    // The host holds the turn to list: before it runs the call (a refresh on an
                    // unknown tool, say, or of the server that refused it), and the agent may try
                    // again once the list is in; or after a handshake, which does not end the turn.
                    return self.observe(None);
                }
                // The call ran or was refused, so the turn's answer is known; the host lists
                // something before it gives the model the result, and finishes the turn once the
                // list is in.
                let answer = self.classify(kind, k, None, &calls_before)?;
                self.turn = Turn::Idle;
                self.closing = true;
                self.observe(Some(answer))
            }
            None => {
                let answer = self.classify(kind, k, None, &calls_before)?;
                self.close_turn()?;
                self.observe(Some(answer))
            }
        }
    }

    fn turn_ends_waiting(&self) -> bool {
        self.stage.as_ref().is_some_and(|s| ended_since(s, self.lines_read))
    }

    /// Waits for the host's `turn_end`, answering any further model request with the agent's
    /// closing words.
    fn close_turn(&mut self) -> Result<(), HostError> {
        for _ in 0..=CLOSING_REQUESTS_MAX {
            let lines_read = self.lines_read;
            self.stage()?
                .wait_until("turn_end line after the agent's answer", |stage| {
                    stage.has_offer() || ended_since(stage, lines_read)
                })
                .map_err(stage_error)?;
            if !self.turn_ends().is_empty() {
                // The notices the host showed stay as they were at the answer.
                self.turn = Turn::Idle;
                return Ok(());
            }
            if let Some(more) = self.stage()?.take_offer().map_err(stage_error)? {
                self.previous = Some(more.request.clone());
                more.answer(Reply::Text { text: "Done.".to_owned() });
            }
        }
        Err(HostError::Protocol(format!(
            "the host asked the model {CLOSING_REQUESTS_MAX} more times after the agent's answer and never ended the turn"
        )))
    }

    /// The answer a call step ended the turn with: from the tool result the host gave the model,
    /// or, if it gave none, from what the servers saw.
    fn classify(
        &self,
        kind: CallKind,
        k: usize,
        result: Option<(String, bool)>,
        calls_before: &[usize],
    ) -> Result<Answer, HostError> {
        let stage = self.stage.as_ref().expect("a stage is set while a turn runs");
        let ran: Vec<bool> =
            stage.servers().iter().zip(calls_before).map(|(s, before)| calls(&s.seen()) > *before).collect();
        let (text, is_error) = result.unwrap_or_else(|| {
            let ok = ran[k];
            (String::new(), !ok)
        });
        let line = reading::read_lines(std::slice::from_ref(&text), &self.connectors, &self.options.phrases);
        let recovery = line.iter().find_map(|l| l.recovery.as_deref().map(reading::recovery_of));
        // A refused call failed. A host may say so with the error flag or in words (an error
        // text without the flag); one whose result says neither gives the agent a success the
        // server never gave (an error, as below). A host that ran the call again on its own (an
        // SDK that re-initialises after a 404 and retries) does what no host of the model does.
        if kind == CallKind::Refused {
            let name = &self.connectors[k].name;
            if ran[k] {
                return Err(HostError::Unsupported(format!(
                    "the host ran the agent's call of {name}'s tool again on its own after its server refused it (its client re-initialised the transport session and retried), which the model does not know"
                )));
            }
            if !is_error && line.iter().all(|l| l.error.is_none()) {
                return Err(HostError::Protocol(format!(
                    "the host gave the agent's call of {name}'s tool a result ({text:?}) that says neither with its error flag nor in words that the call failed, though {name}'s server refused it"
                )));
            }
        }
        // A call the host never ran on the server was not used, whatever the result it gave the
        // model says: a host that says "no such tool" without an error flag is not taken to have
        // used it, and one that gives a listed tool's call a result of its own making, as if it
        // worked, misleads the agent (an error: the model has no host that does that).
        if kind == CallKind::Tool && !is_error && !ran[k] {
            return Err(HostError::Protocol(format!(
                "the host gave the agent's call of {}'s tool a result ({text:?}) without calling {}'s server",
                self.connectors[k].name, self.connectors[k].name
            )));
        }
        Ok(match kind {
            CallKind::Tool if !is_error => Answer::UsedTool,
            CallKind::Tool | CallKind::Refused => Answer::ToolFailed(recovery),
            CallKind::Stub if !is_error && text.contains("/authorize") => Answer::StubReplied(StubReply::AuthPrompt),
            CallKind::Stub => Answer::StubReplied(recovery.map_or(StubReply::Opaque, StubReply::Guidance)),
            CallKind::Unlisted if ran.iter().enumerate().any(|(other, ran)| other != k && *ran) => Answer::Misrouted,
            CallKind::Unlisted if !is_error && ran[k] => Answer::UsedTool,
            CallKind::Unlisted => match recovery {
                Some(r) => Answer::ToolFailed(Some(r)),
                None => Answer::NoSuchTool,
            },
            CallKind::CompleteAuthentication => unreachable!("a handshake does not end the turn"),
        })
    }

    fn release(&mut self, c: ConnectorId, request: u64, result: &ListResult) -> Result<Output, HostError> {
        let k = c.index();
        let slot =
            self.in_flight.get(k).and_then(|f| f.iter().position(|f| f.request == request)).ok_or_else(|| {
                HostError::Protocol(format!("a reply to {c}'s request {request}, which the wire never saw"))
            })?;
        let flight = self.in_flight[k].remove(slot).expect("found above");
        let name = self.connectors[k].name.clone();
        let release = match result {
            ListResult::Tools(listing) => {
                Release::Tools { tools: tools_of(&name, *listing, flight.cursor), next_cursor: None }
            }
            ListResult::FirstPage { next_cursor } => {
                Release::Tools { tools: Tool::actions(&name)[..2].to_vec(), next_cursor: Some(next_cursor.clone()) }
            }
            ListResult::Error(ListFailure::Unauthorized) => Release::Unauthorized,
            ListResult::Error(ListFailure::Transport) => Release::Failed,
            ListResult::Error(ListFailure::SessionNotFound) if self.stateless(k)? => {
                return Err(HostError::Unsupported(format!(
                    "a lost transport session (404) for {name}, which the host reaches in the stateless revision 2026-07-28: it has no transport session to lose"
                )));
            }
            ListResult::Error(ListFailure::SessionNotFound) => Release::SessionLost,
        };
        if let ListResult::Tools(listing) = result {
            // The server's own list (what a call finds) follows what it lists.
            self.stage()?.servers()[k].set_tools(tools_of(&name, *listing, false));
        }
        // Over stdio a lost session closes the connection: the host learns of it only once the
        // relay it spawned has exited, later than the short grace a host waiting on another list
        // gets, so it gets the whole quiet to act on it (an abort read a step late is misjudged).
        let closes = matches!(release, Release::SessionLost) && self.options.transport == Transport::Stdio;
        // A list the host gave up is not an error: the reply goes nowhere.
        let listed = matches!(release, Release::Tools { .. });
        self.stage()?.servers()[k].release(flight.held, release);
        if listed {
            self.listed_at[k] = std::time::Instant::now();
        }
        if closes {
            let quiet = self.options.pacing.quiet;
            self.stage()?.settle_until(|_| false, quiet).map_err(stage_error)?;
        }
        let was_asked = self.turn == Turn::Asked && self.offer.is_none();
        let output = self.observe(None)?;
        self.ended_before_the_agent(was_asked, false, output)
    }

    /// A host may end a turn before the model is asked (at a list's reply, or at the user's
    /// question): with an error naming a connector, it aborted it; with words that name none, the
    /// user learned only that the capability is not available. An abort at the question, before
    /// any list, is not judged yet (SPEC.md §11.5).
    fn ended_before_the_agent(
        &mut self,
        was_asked: bool,
        at_the_question: bool,
        output: Output,
    ) -> Result<Output, HostError> {
        if !was_asked || self.offer.is_some() {
            return Ok(output);
        }
        let Some(text) = self.turn_ends().pop() else { return Ok(output) };
        self.turn = Turn::Idle;
        let lines = reading::read_lines(std::slice::from_ref(&text), &self.connectors, &self.options.phrases);
        let named = (0..self.connectors.len()).find(|&k| lines.iter().any(|l| l.is_error_about(k)));
        if let (true, Some(k)) = (at_the_question, named) {
            return Err(HostError::Unsupported(format!(
                "the host ended the turn at the user's question with an error naming {} ({text:?}), before any list: an abort not earned by a list of this turn is not judged yet",
                self.connectors[k].name
            )));
        }
        let answer = named.map_or(Answer::NotAvailable, |k| Answer::Aborted(ConnectorId(k as u8)));
        let Output::Observation { requests, reads, listens, mut sessions, .. } = output else { unreachable!() };
        sessions[0].turn = TurnState::None;
        Ok(Output::Observation { requests, reads, listens, sessions, answer: Some(answer) })
    }

    fn ask(&mut self) -> Result<Output, HostError> {
        if self.turn != Turn::Idle {
            return Err(HostError::Protocol("the user asks while a turn is in progress".to_owned()));
        }
        if self.closing {
            return Err(HostError::Unsupported(
                "the user asks again while the host, on the wire, still finishes the previous turn (it waits for a list the fixture has not delivered yet)".to_owned(),
            ));
        }
        self.turn = Turn::Asked;
        self.notices.clear();
        let reported = self.reported.clone();
        let lines_read = self.lines_read;
        let stage = self.stage()?;
        stage.say(&json!({ "type": "user", "text": USER_ASKS })).map_err(stage_error)?;
        // A host that already waits for a list may hold the turn for it: nothing new need happen.
        // One that cannot reach a server may end the turn at once.
        stage
            .wait_until("model request with tools, tools/list or turn end after the user's turn", |stage| {
                stage.has_offer()
                    || Self::unreported(stage, &reported)
                    || stage.servers().iter().any(|s| !s.held().is_empty())
                    || ended_since(stage, lines_read)
            })
            .map_err(stage_error)?;
        let output = self.observe(None)?;
        self.ended_before_the_agent(true, true, output)
    }

    /// Makes the server of `c` answer calls as the world says it stands.
    fn world(&mut self, c: ConnectorId, authenticated: bool) -> Result<(), HostError> {
        let name = self.connectors[c.index()].name.clone();
        let tools = if authenticated { Tool::actions(&name) } else { Tool::stubs(&name) };
        self.stage()?.servers()[c.index()].set_tools(tools);
        Ok(())
    }

    /// Refuses to play `what` reaching the host while its model request waits for the agent: the
    /// request is on the wire already, so nothing the host does with it can show before the model
    /// answers, and the fixture has the agent act on what the host would offer by then.
    fn not_while_offered(&self, what: &str) -> Result<(), HostError> {
        if self.offer.is_some() {
            return Err(HostError::Unsupported(format!(
                "{what} reaches the host while its model request waits for the agent: what the host makes of it shows only at its next model request, and the fixture has the agent act first on what the host would offer by then"
            )));
        }
        Ok(())
    }

    /// Refuses to play a `list_changed` from `c` that could not reach the host: in the stateless
    /// revision, one sent with no listen stream asking for it goes nowhere, which the model (of
    /// the handshake revisions) does not know; in a handshake revision, one on a transport session
    /// the server has ended (404) goes nowhere either.
    fn reachable_notification(&mut self, c: ConnectorId) -> Result<(), HostError> {
        if self.stateless(c.index())? && self.stage()?.servers()[c.index()].listening() == 0 {
            return Err(HostError::Unsupported(format!(
                "a list_changed from {c}, which the host reaches in the stateless revision 2026-07-28 with no listen stream asking for it: it reaches no one there, and the model does not know that revision yet"
            )));
        }
        self.session_kept("a list_changed", c)
    }

    /// Refuses to play `what` over the host's transport session to `c` (a handshake revision's)
    /// where the server has ended it: the model queues a change notification on a link, and has a
    /// call of a stub or of `complete_authentication` reach the server, whatever the link's
    /// transport session; on a wire the session's stream ended with it, and a call fails (404, or
    /// a closed stdio connection) unless the host initialized again first.
    fn session_kept(&mut self, what: &str, c: ConnectorId) -> Result<(), HostError> {
        let k = c.index();
        if !self.stateless(k)? && self.stage()?.servers()[k].live_sessions() == 0 {
            return Err(HostError::Unsupported(format!(
                "{what} over the host's transport session to {c}, which its server has ended: no wire carries it, though the model has it arrive"
            )));
        }
        Ok(())
    }

    /// The server of `c` loses the host's transport session before the agent's call reaches it:
    /// over HTTP the call is answered 404; over stdio the connection closes (the server process
    /// the host spawned exits), and the runner waits until it has, so that the call finds it
    /// closed whatever the host's speed.
    fn lose_session(&mut self, c: ConnectorId) -> Result<(), HostError> {
        let k = c.index();
        if self.stateless(k)? {
            return Err(HostError::Unsupported(format!(
                "a call answered 404 (a lost transport session) by {}, which the host reaches in the stateless revision 2026-07-28: it has no transport session to lose",
                self.connectors[k].name
            )));
        }
        self.stage()?.servers()[k].lose_sessions();
        if self.options.transport == Transport::Stdio {
            self.stage()?
                .wait_until("the stdio connection to close after its server lost the session", |stage| {
                    stage.servers()[k].relays_connected() == 0
                })
                .map_err(stage_error)?;
        }
        Ok(())
    }

    /// Time passes for a `tools/list` that never returns: the runner waits until `hang_ms` after
    /// the host sent it, for the host to give it up (as a real host's timeout does: it may list
    /// again, show a notice, end or go on with its turn), and reports what it did by then.
    fn time_out(&mut self, c: ConnectorId, request: u64) -> Result<Output, HostError> {
        let k = c.index();
        let Some(hang) = self.options.hang_ms else {
            return Err(HostError::Unsupported(
                "a tools/list that never returns, which the host's timeout ends: `--hang-ms N` plays it, giving the host N ms to give it up".to_owned(),
            ));
        };
        let slot = self.in_flight[k].iter().position(|f| f.request == request).ok_or_else(|| {
            HostError::Protocol(format!("a timeout of {c}'s request {request}, which the wire never saw"))
        })?;
        self.not_while_offered("a tools/list timing out")?;
        let flight = self.in_flight[k].remove(slot).expect("found above");
        let due = flight.seen + std::time::Duration::from_millis(hang);
        std::thread::sleep(due.saturating_duration_since(std::time::Instant::now()));
        let was_asked = self.turn == Turn::Asked && self.offer.is_none();
        let output = self.observe(None)?;
        self.ended_before_the_agent(was_asked, false, output)
    }

    /// Whether the host reaches connector `k` in the stateless revision.
    fn stateless(&mut self, k: usize) -> Result<bool, HostError> {
        Ok(self.stage()?.servers()[k].stateless_clients())
    }

    fn check(&self, s: SessionId, c: ConnectorId) -> Result<(), HostError> {
        if s != SessionId(0) || c.index() >= self.connectors.len() {
            return Err(HostError::Protocol(format!("unknown session or connector {s}/{c}")));
        }
        Ok(())
    }
}

impl Drop for WireHost {
    fn drop(&mut self) {
        // The model request the agent was to answer goes first: the stage's model endpoint stops
        // only once the request's handler, which waits for its answer, is done.
        self.offer = None;
        self.stage = None;
    }
}

impl Host for WireHost {
    fn wire_log(&self) -> Vec<String> {
        self.log()
    }

    fn handle(&mut self, input: &Input) -> Result<Output, HostError> {
        match input {
            // The wire does not play a deploy yet: it speaks the protocol before deploys, so that a
            // fixture in which a server deploys is not run (SPEC.md §10), never judged half-played.
            Input::Hello { .. } => {
                // A fixture begins: the previous one's host, servers and model go, so that a
                // fixture that stops before its reset shows no wire log but its own (none).
                self.offer = None;
                self.stage = None;
                Ok(Output::Hello {
                    protocol: DEPLOYS_SINCE - 1,
                    host: self.options.command.clone(),
                    claims: Vec::new(),
                    // The runner cannot know a host's commands: it gives none.
                    commands: Some(BTreeSet::new()),
                })
            }
            Input::Reset { connectors, sessions } => self.reset(connectors, sessions),
            Input::Notification { session, connector } => {
                self.check(*session, *connector)?;
                let offered = self.offer.is_some();
                self.reachable_notification(*connector)?;
                self.stage()?.servers()[connector.index()].notify_list_changed();
                let output = self.observe(None)?;
                // A host that lists again on it would show the list only after the model answers.
                if offered && matches!(&output, Output::Observation { requests, .. } if !requests.is_empty()) {
                    self.not_while_offered("a list_changed the host lists again on")?;
                }
                Ok(output)
            }
            Input::Listing { session, connector, request, result, .. } => {
                self.check(*session, *connector)?;
                self.not_while_offered("a tools/list reply")?;
                self.release(*connector, *request, result)
            }
            Input::Ask { session } => {
                self.check(*session, ConnectorId(0))?;
                self.ask()
            }
            Input::CallTool { session, connector, server } => {
                self.check(*session, *connector)?;
                match server {
                    CallResult::Ok => self.world(*connector, true)?,
                    // The server lists only its stubs, and answers a call of any other tool 401.
                    CallResult::Unauthorized => self.world(*connector, false)?,
                    CallResult::SessionNotFound => self.lose_session(*connector)?,
                    CallResult::UnknownTool => {
                        return Err(HostError::Unsupported(
                            "a call answered \"unknown tool\" after a deploy, which the wire does not play".to_owned(),
                        ));
                    }
                }
                let name = self.offered_name(connector.index(), "send");
                let reply = Reply::ToolCall { name, input: json!({}) };
                let kind = if *server == CallResult::Ok { CallKind::Tool } else { CallKind::Refused };
                self.agent(reply, Step::Calls(kind, connector.index()))
            }
            Input::CallStub { session, connector, authenticated } => {
                self.check(*session, *connector)?;
                self.session_kept("a call of its authenticate stub", *connector)?;
                self.world(*connector, *authenticated)?;
                let name = self.offered_name(connector.index(), "authenticate");
                let reply = Reply::ToolCall { name, input: json!({}) };
                self.agent(reply, Step::Calls(CallKind::Stub, connector.index()))
            }
            Input::CallUnlisted { session, connector } => {
                self.check(*session, *connector)?;
                let name = self.offered_name(connector.index(), "send");
                let reply = Reply::ToolCall { name, input: json!({}) };
                self.agent(reply, Step::Calls(CallKind::Unlisted, connector.index()))
            }
            Input::CompleteAuthentication { session, connector, list_changed_first } => {
                self.check(*session, *connector)?;
                self.session_kept("the agent's handshake", *connector)?;
                if *list_changed_first {
                    self.reachable_notification(*connector)?;
                }
                self.world(*connector, false)?;
                let server = &self.stage()?.servers()[connector.index()];
                server
                    .set_behaviour(Behaviour { notifies_on_authentication: *list_changed_first, ..server.behaviour() });
                let name = self.offered_name(connector.index(), "complete_authentication");
                let reply = Reply::ToolCall { name, input: json!({}) };
                self.agent(reply, Step::Calls(CallKind::CompleteAuthentication, connector.index()))
            }
            Input::ListenEnded { session, connector } => {
                self.check(*session, *connector)?;
                let k = connector.index();
                if self.listening.get(k) != Some(&Some(true)) {
                    return Err(HostError::Protocol(format!(
                        "the end of a listen stream to {connector}, which has none"
                    )));
                }
                self.not_while_offered("the end of a listen stream")?;
                self.stage()?.servers()[k].end_listens();
                self.listening[k] = Some(false);
                self.observe(None)
            }
            Input::TtlExpired { session, connector } => {
                self.check(*session, *connector)?;
                let ttl = self.options.ttl_ms;
                if ttl >= LONG_TTL_MS {
                    return Err(HostError::Unsupported(format!(
                        "the TTL of {connector}'s list runs out: the kit's servers give a long TTL of {ttl} ms (`--ttl-ms` shorter plays it, by waiting)"
                    )));
                }
                // Time passes: the host's clock runs the TTL out; a host may list again now or at
                // its next use.
                let due = self.listed_at[connector.index()] + std::time::Duration::from_millis(ttl) + TTL_SLACK;
                std::thread::sleep(due.saturating_duration_since(std::time::Instant::now()));
                self.observe(None)
            }
            Input::AnswerNotAvailable { session, connector } => {
                self.check(*session, *connector)?;
                let name = &self.connectors[connector.index()].name;
                let text = format!("I can't do that: {name} is not available with the tools I have.");
                self.agent(Reply::Text { text }, Step::Says(Answer::NotAvailable))
            }
            Input::RelayNotice { session, connector } => {
                self.check(*session, *connector)?;
                let name = &self.connectors[connector.index()].name;
                let text = format!("About {name}: the host says it needs a step from you first (see its notice).");
                self.agent(Reply::Text { text }, Step::Says(Answer::RelayedNotice))
            }
            Input::Timeout { session, connector, request } => {
                self.check(*session, *connector)?;
                self.time_out(*connector, *request)
            }
            Input::Account { .. } => {
                Err(HostError::Protocol("an account read reply, but the host sent no account read".to_owned()))
            }
            Input::Mcp { .. } | Input::Restart { .. } | Input::Authenticated { .. } => {
                Err(HostError::Protocol("a command, but the host was told of none".to_owned()))
            }
        }
    }
}

/// A connector's tools for a listing; `rest` is the reply to a request for a later page.
fn tools_of(connector: &str, listing: Listing, rest: bool) -> Vec<Tool> {
    match listing {
        Listing::Stubs => Tool::stubs(connector),
        Listing::Actions if rest => Tool::actions(connector)[2..].to_vec(),
        Listing::Actions => Tool::actions(connector),
        Listing::SomeActions | Listing::Withdrawn => Tool::actions(connector)[..2].to_vec(),
    }
}

/// Whether the host printed a `turn_end` line after its first `from` lines.
fn ended_since(stage: &Stage, from: usize) -> bool {
    stage.lines()[from..].iter().any(|l| turn_end(l).is_some())
}

/// The text of a `turn_end` line.
fn turn_end(line: &str) -> Option<String> {
    let value: Value = serde_json::from_str(line).ok()?;
    (value.get("type")? == "turn_end").then(|| value.get("text").and_then(Value::as_str).unwrap_or("").to_owned())
}

/// The last tool result of a request: its text and whether the host marked it an error.
fn tool_result(request: &ModelRequest) -> Option<(String, bool)> {
    request.messages.iter().rev().flat_map(|m| m.parts.iter().rev()).find_map(|p| match p {
        Part::ToolResult { text, is_error, .. } => Some((text.clone(), *is_error)),
        _ => None,
    })
}

/// How many tool calls a server saw.
fn calls(seen: &[Seen]) -> usize {
    seen.iter().filter(|s| matches!(s, Seen::Call { listed: true, .. })).count()
}

/// How many tool calls a server refused (401 for a connector no longer authenticated, 404 for a
/// transport session it lost).
fn refused_calls(seen: &[Seen]) -> usize {
    seen.iter().filter(|s| matches!(s, Seen::Refused { asked, .. } if asked.starts_with("tools/call"))).count()
}

fn names(request: &ModelRequest) -> String {
    request.tools.iter().map(|t| t.name.as_str()).collect::<Vec<_>>().join(", ")
}

fn stage_error(e: StageError) -> HostError {
    match e {
        StageError::Setup(why) => HostError::Crashed(format!("the stage: {why}")),
        StageError::Exited { .. } => HostError::Crashed(e.to_string()),
        StageError::Timeout(why) => HostError::Reported(format!("the host is stuck: {why}")),
        StageError::Flooded | StageError::Garbage(_) => HostError::Protocol(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model_api::{Api, OfferedTool};
    use coherence_model::state::{NoticeReason, Recovery};

    fn host(connectors: &[&str]) -> WireHost {
        let mut host = WireHost::new(WireOptions {
            command: "host".to_owned(),
            transport: Transport::Stdio,
            relay: PathBuf::from("coherence"),
            pacing: Pacing::DEFAULT,
            phrases: Phrases::standard(),
            revision: Revision::Handshake,
            ttl_ms: LONG_TTL_MS,
            hang_ms: None,
        });
        host.connectors = connectors
            .iter()
            .map(|c| reading::Connector {
                name: (*c).to_owned(),
                tools: Tool::actions(c).into_iter().chain(Tool::stubs(c)).map(|t| t.name).collect(),
            })
            .collect();
        host
    }

    fn offering(names: &[&str]) -> ModelRequest {
        ModelRequest {
            api: Api::Anthropic,
            model: String::new(),
            stream: false,
            system: String::new(),
            messages: Vec::new(),
            tools: names.iter().map(|n| OfferedTool { name: (*n).to_owned(), description: String::new() }).collect(),
            offers: true,
        }
    }

    #[track_caller]
    fn check_catalogue(offered: &[&str], expected: &[(u8, Listing)]) {
        let host = host(&["gmail", "calendar"]);
        let catalogue = host.catalogue(&offering(offered));
        let expected: BTreeMap<ConnectorId, Listing> = expected.iter().map(|(c, l)| (ConnectorId(*c), *l)).collect();
        assert_eq!(catalogue, expected, "{offered:?}");
    }

    #[test]
    fn the_catalogue_is_read_from_the_offered_names_whatever_the_host_s_prefix() {
        check_catalogue(&[], &[]);
        check_catalogue(
            &["mcp__gmail__gmail_search", "mcp__gmail__gmail_read", "mcp__gmail__gmail_send"],
            &[(0, Listing::Actions)],
        );
        check_catalogue(&["gmail_search", "gmail_read"], &[(0, Listing::SomeActions)]);
        check_catalogue(
            &["calendar-server.calendar_authenticate", "gmail_send", "gmail_read", "gmail_search"],
            &[(0, Listing::Actions), (1, Listing::Stubs)],
        );
        // A name that only contains a tool's name, not at a boundary, is nobody's.
        check_catalogue(&["xgmail_send", "my_tool"], &[]);
    }

    #[test]
    fn an_unlisted_tool_is_called_under_the_prefix_the_host_gives_the_connector() {
        let mut host = host(&["gmail", "calendar"]);
        assert_eq!(host.offered_name(0, "send"), "gmail_send", "no request: the bare name");
        let (answer, _) = std::sync::mpsc::sync_channel(1);
        let request = offering(&["mcp__gmail__gmail_authenticate", "mcp__calendar__calendar_send"]);
        host.offer = Some(Offer::new(0, request, answer));
        assert_eq!(host.offered_name(0, "send"), "mcp__gmail__gmail_send");
        assert_eq!(host.offered_name(0, "authenticate"), "mcp__gmail__gmail_authenticate");
        assert_eq!(host.offered_name(1, "send"), "mcp__calendar__calendar_send");
    }

    #[test]
    fn a_recovery_phrase_names_its_step() {
        for (phrase, recovery) in [
            ("restart", Recovery::Restart),
            ("new session", Recovery::Restart),
            ("re-authenticate", Recovery::Authenticate),
            ("reauthorize", Recovery::Authenticate),
            ("sign in again", Recovery::Authenticate),
            ("log in again", Recovery::Authenticate),
            ("refresh", Recovery::Refresh),
            ("/mcp", Recovery::Refresh),
            ("reconnect", Recovery::Refresh),
            ("re-list", Recovery::Refresh),
        ] {
            assert_eq!(reading::recovery_of(phrase), recovery, "{phrase}");
        }
        // Every standard phrase names one.
        for phrase in Phrases::standard().recovery {
            let _ = reading::recovery_of(&phrase);
        }
    }

    #[test]
    fn notices_come_from_the_system_prompt_and_the_text_added_since_the_previous_request() {
        let mut host = host(&["gmail", "calendar"]);
        let mut request = offering(&["gmail_send"]);
        request.system = "You are an agent.\ngmail: its tools could not be listed; ask the user to run /mcp to refresh, or to restart.".to_owned();
        host.read_notices(&request);
        // The first standard phrase the line holds is `restart`.
        let notice = Notice { reason: NoticeReason::RefreshFailed, recovery: Recovery::Restart };
        assert_eq!(host.notices, BTreeMap::from([(ConnectorId(0), notice)]));
        // A reminder that names no recovery step is no notice; nor is a line naming no connector.
        request.system = "gmail was updated.\nPlease restart.".to_owned();
        host.read_notices(&request);
        assert!(host.notices.is_empty(), "{:?}", host.notices);
        request.system = "calendar needs you to sign in again.".to_owned();
        host.read_notices(&request);
        let notice = Notice { reason: NoticeReason::NeedsAuthentication, recovery: Recovery::Authenticate };
        assert_eq!(host.notices, BTreeMap::from([(ConnectorId(1), notice)]));
    }

    #[test]
    fn a_turn_ends_only_at_a_turn_end_line() {
        assert_eq!(turn_end(r#"{"type":"turn_end","text":"Done."}"#), Some("Done.".to_owned()));
        assert_eq!(turn_end(r#"{"type":"turn_end"}"#), Some(String::new()));
        assert_eq!(turn_end(r#"{"type":"ready"}"#), None);
        assert_eq!(turn_end("turn_end"), None);
    }

    #[test]
    fn a_later_page_holds_the_rest_of_the_actions() {
        let names = |tools: Vec<Tool>| tools.into_iter().map(|t| t.name).collect::<Vec<_>>();
        assert_eq!(names(tools_of("gmail", Listing::Actions, true)), ["gmail_send"]);
        assert_eq!(names(tools_of("gmail", Listing::SomeActions, false)), ["gmail_search", "gmail_read"]);
        assert_eq!(
            names(tools_of("gmail", Listing::Stubs, false)),
            ["gmail_authenticate", "gmail_complete_authentication"]
        );
    }
}
