//! The model's own host logic, on the wire: [`Bridge`] puts the reference host of a policy
//! ([`ReferenceHost`], the one adapter mode replays) behind real MCP clients and a real model API.
//!
//! Every decision (when to list, which reply to apply, what to offer, what to tell the model,
//! when to hold or end a turn) is the reference host's: the bridge only carries what happens on
//! the wire to it as adapter-protocol inputs, and carries its outputs back to the wire.
//! - a `tools/list` it sends is a request on the connector's client (a new connection first, if it
//!   re-initialises); the reply, or the failure (401, 404 or a closed stdio connection, any other
//!   error), is a [`Listing`](Input::Listing) input; if none comes within the list timeout (for a
//!   policy that times out), a [`Timeout`](Input::Timeout), and a reply after it goes nowhere;
//! - a `list_changed` is a [`Notification`](Input::Notification);
//! - a server that answers `server/discover` with MCP 2026-07-28 (over HTTP) is spoken to in that
//!   revision ([`crate::stateless`]): its lists' cache hints go with each [`Listing`](Input::Listing),
//!   the listen streams the reference host opens are `subscriptions/listen` requests (opened before
//!   any list of the same input is sent), a stream's end is [`ListenEnded`](Input::ListenEnded), and
//!   a list whose `ttlMs` ran out by a user's turn is [`TtlExpired`](Input::TtlExpired) first;
//! - a user line is an [`Ask`](Input::Ask); while the reference host's turn is open the model is
//!   asked, offered the tools of its catalogue, with its notices in the system prompt;
//! - the model's answer is the agent's step: a tool call is run on its server and given to the
//!   reference host with the server's result ([`CallTool`](Input::CallTool),
//!   [`CallStub`](Input::CallStub), [`CompleteAuthentication`](Input::CompleteAuthentication)), or
//!   not run at all if the catalogue does not list it ([`CallUnlisted`](Input::CallUnlisted));
//!   words end the turn. What the reference host answers is the tool result the model gets.
//!
//! A policy that reads the account at a turn's start cannot run here: no wire gives a host the
//! account's connector state.

use crate::stateless::{self, Failure, Heard, Stateless};
use crate::{Model, Reinitialise, offered, result_text, say, serve};
use anyhow::{Context, Result, bail};
use coherence_model::state::{Answer, CONNECTORS_MAX, CacheScope, ConnectorId, ListFailure, Listing, Notice, Notify};
use coherence_model::state::{NoticeReason, Recovery, Revision, SessionId, StubReply, Ttl};
use coherence_model::{HostPolicy, Mutant};
use coherence_sim::host::{Host, ReferenceHost};
use coherence_sim::protocol::{CacheHint, LinkRef, TurnState};
use coherence_sim::protocol::{CallResult, ConnectorSetup, Input, ListResult, Output, SentRequest, SessionView};
use rmcp::ClientHandler;
use rmcp::model::{CallToolRequestParams, PaginatedRequestParams, Tool};
use rmcp::service::{NotificationContext, RoleClient, RunningService, ServiceError};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

/// The one session a host process is.
const SESSION: SessionId = SessionId(0);

/// How long, after a handshake's call returns, a `list_changed` the server sent first may take to
/// arrive (over HTTP it comes on another stream than the call's result).
const NOTIFICATION_GRACE: Duration = Duration::from_millis(30);

/// What happens on the wire, in the order the bridge sees it.
enum Event {
    /// A line on stdin, or `None` at its end.
    Line(Option<String>),
    /// A `tools/list` came back.
    Listed { connector: usize, request: u64, cursor: Option<String>, result: Result<Page, ListFailure> },
    /// A server said its list changed (on the client, or the listen stream, of this generation).
    Notified { connector: usize, generation: u64 },
    /// The listen stream of this generation ended.
    ListenEnded { connector: usize, generation: u64 },
    /// The model answered.
    Answered(Result<Value, String>),
    /// The host's timeout of a `tools/list` ran out.
    TimedOut { connector: usize, request: u64 },
}

/// One page of a list, with its cache hints if the server speaks MCP 2026-07-28.
struct Page {
    tools: Vec<Tool>,
    next_cursor: Option<String>,
    cache: Option<Cached>,
}

/// A page's cache hints: as the reference host knows them, and the `ttlMs` they came from.
#[derive(Clone, Copy, Debug)]
struct Cached {
    hint: CacheHint,
    ttl_ms: u64,
}

impl Cached {
    fn of(page: &stateless::Page) -> Cached {
        let hint = CacheHint {
            ttl: if page.ttl_ms == 0 { Ttl::Zero } else { Ttl::Long },
            scope: match page.scope {
                stateless::Scope::Public => CacheScope::Public,
                stateless::Scope::Private => CacheScope::Private,
            },
        };
        Cached { hint, ttl_ms: page.ttl_ms }
    }
}

/// How the bridge speaks to a server.
enum Client {
    /// A handshake revision, on the official Rust SDK's client.
    Handshake(RunningService<RoleClient, Forward>),
    /// MCP 2026-07-28: no connection to keep, and a listen stream while the reference host keeps
    /// one open.
    Stateless { client: Arc<Stateless>, listen: Option<tokio::task::JoinHandle<()>> },
}

/// Why a tool call failed.
struct CallFailed {
    /// As a list's failure would be told.
    failure: ListFailure,
    /// The server has no such tool.
    unknown_tool: bool,
    text: String,
}

impl From<ServiceError> for CallFailed {
    fn from(e: ServiceError) -> CallFailed {
        let unknown_tool = matches!(&e, ServiceError::McpError(e) if e.code.0 == stateless::INVALID_PARAMS as i32);
        CallFailed { failure: failure(&e), unknown_tool, text: e.to_string() }
    }
}

impl From<Failure> for CallFailed {
    fn from(e: Failure) -> CallFailed {
        let unknown_tool = matches!(&e, Failure::Error { code, .. } if *code == stateless::INVALID_PARAMS);
        CallFailed { failure: stateless_failure(&e), unknown_tool, text: e.to_string() }
    }
}

/// Forwards a server's `list_changed` to the bridge.
struct Forward {
    connector: usize,
    generation: u64,
    events: UnboundedSender<Event>,
}

impl ClientHandler for Forward {
    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        let _ = self.events.send(Event::Notified { connector: self.connector, generation: self.generation });
    }
}

/// One connector: its server's configuration and client.
struct Link {
    name: String,
    config: Value,
    client: Client,
    /// Of the handshake client, or of the listen stream: what a notification or an end belongs to.
    generation: u64,
    /// Lists sent and not answered yet (nor given up), by the reference host's number.
    in_flight: BTreeSet<u64>,
    /// When the last list delivered with a `ttlMs` stops being fresh.
    expires: Option<Instant>,
    /// The number the next request gets (the reference host numbers them the same way).
    next_request: u64,
    /// Per listing shape, the tools last listed in that shape: what an offer of it shows.
    listed: BTreeMap<Listing, Vec<Tool>>,
    /// The pages listed so far of a paged list, by the cursor of the page to come.
    pages: BTreeMap<String, Vec<Tool>>,
}

impl Link {
    /// Whether a listen stream of it is open.
    fn listening(&self) -> bool {
        matches!(&self.client, Client::Stateless { listen: Some(_), .. })
    }

    /// Connects to connector `k`'s server, in MCP 2026-07-28 if it answers `server/discover`
    /// with it (over HTTP), else in a handshake revision, and lists it: the link, and the
    /// connector as the reference host is told of it.
    async fn connect(
        k: usize,
        name: &str,
        server: &Value,
        events: &UnboundedSender<Event>,
    ) -> Result<(Link, ConnectorSetup)> {
        let c = ConnectorId(k as u8);
        let link = |client, tools: Vec<Tool>| {
            let listing = shape(&tools);
            Link {
                name: name.to_owned(),
                config: server.clone(),
                client,
                generation: 0,
                in_flight: BTreeSet::new(),
                expires: None,
                next_request: 0,
                listed: BTreeMap::from([(listing, tools)]),
                pages: BTreeMap::new(),
            }
        };
        if let Some(url) = server.get("url").and_then(Value::as_str) {
            let client = Stateless::new(url, "ref-host");
            let discovered = client.discover().await.map_err(|e| anyhow::anyhow!("server {name}: discover: {e}"))?;
            if let Some(discovered) = discovered {
                let (tools, cached) =
                    list_all(&client).await.with_context(|| format!("server {name}: the first list"))?;
                let listing = shape(&tools);
                let mut link = link(Client::Stateless { client: Arc::new(client), listen: None }, tools);
                link.expires = expiry(cached.ttl_ms);
                let setup = ConnectorSetup {
                    name: c,
                    notify: if discovered.list_changed { Notify::Advertised } else { Notify::Silent },
                    tools: listing,
                    revision: Revision::Stateless,
                    cache: Some(cached.hint),
                    second_user: None,
                };
                return Ok((link, setup));
            }
        }
        let handler = Forward { connector: k, generation: 0, events: events.clone() };
        let client = serve(name, server, handler, Reinitialise::ByHost).await?;
        let declared = client
            .peer_info()
            .and_then(|info| info.capabilities.tools.as_ref().and_then(|t| t.list_changed))
            .unwrap_or(false);
        let tools = client.list_all_tools().await.with_context(|| format!("server {name}: the first list"))?;
        let setup = ConnectorSetup {
            name: c,
            notify: if declared { Notify::Advertised } else { Notify::Silent },
            tools: shape(&tools),
            revision: Revision::Handshake,
            cache: None,
            second_user: None,
        };
        Ok((link(Client::Handshake(client), tools), setup))
    }
}

/// Every page of a 2026-07-28 server's list: its tools, and the last page's cache hints.
async fn list_all(client: &Stateless) -> Result<(Vec<Tool>, Cached)> {
    let mut tools = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..PAGES_MAX {
        let page = client.list(cursor.as_deref()).await.map_err(|e| anyhow::anyhow!("tools/list: {e}"))?;
        tools.extend(tools_of(&page.tools)?);
        match page.next_cursor.clone() {
            Some(next) => cursor = Some(next),
            None => return Ok((tools, Cached::of(&page))),
        }
    }
    bail!("tools/list: more than {PAGES_MAX} pages")
}

/// The most pages of one list the bridge follows at its start.
const PAGES_MAX: usize = 64;

/// A page's tools, as the SDK's type.
fn tools_of(tools: &[Value]) -> Result<Vec<Tool>> {
    tools.iter().map(|t| serde_json::from_value(t.clone()).with_context(|| format!("a tool: {t}"))).collect()
}

/// When a list with `ttl_ms` stops being fresh: never fresh at 0.
fn expiry(ttl_ms: u64) -> Option<Instant> {
    (ttl_ms > 0).then(|| Instant::now() + Duration::from_millis(ttl_ms))
}

/// Where the agent is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Agent {
    /// No turn.
    Idle,
    /// The model is to be asked once the reference host's turn is open.
    Due,
    /// The turn ended at the agent's call: the model gets its result once more, then the turn ends.
    Closing,
    /// The model is being asked; `closing` as above.
    Thinking { closing: bool },
    /// The reference host ended the turn while the model was being asked: its answer goes nowhere.
    Discarding,
}

/// The reference host of a policy, on the wire.
pub struct Bridge {
    core: ReferenceHost,
    links: Vec<Link>,
    events: UnboundedSender<Event>,
    receiver: UnboundedReceiver<Event>,
    /// Events read ahead, to be handled first.
    backlog: VecDeque<Event>,
    model: Model,
    view: SessionView,
    agent: Agent,
    messages: Vec<Value>,
    /// The tools of the last model request, by connector.
    offered: Vec<(usize, Tool)>,
    /// How long it waits for a `tools/list` before it gives up on it, if its policy does.
    list_timeout: Duration,
}

/// Whether the bridge goes on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flow {
    Continue,
    Quit,
}

impl Bridge {
    /// Connects to every server of the `mcpServers` file `MCP_CONFIG` names, lists each, and
    /// starts the reference host of `policy` (with `mutant` planted, if given) on what they listed;
    /// it gives up on a list after `list_timeout`, if the policy times out.
    pub async fn start(policy: HostPolicy, mutant: Option<Mutant>, list_timeout: Duration) -> Result<Bridge> {
        if policy.reads_account() {
            bail!(
                "policy {} reads the account's connector state at a turn's start, which no wire gives a host; \
                 pick a policy that does not (recommended-mcp, for example)",
                policy.name
            );
        }
        let path = std::env::var("MCP_CONFIG").context("MCP_CONFIG names the mcpServers file")?;
        let config: Value = serde_json::from_str(&std::fs::read_to_string(&path).with_context(|| path.clone())?)
            .with_context(|| format!("{path}: not JSON"))?;
        let servers = config.get("mcpServers").and_then(Value::as_object).context("no mcpServers")?;
        // The reference host knows connectors by the model's names, in the model's order.
        let mut named: Vec<(usize, &String, &Value)> = Vec::new();
        for (name, server) in servers {
            let k = (0..CONNECTORS_MAX)
                .find(|&k| ConnectorId(k as u8).to_string() == *name)
                .with_context(|| format!("server {name}: the reference host knows only the model's connector names"))?;
            named.push((k, name, server));
        }
        named.sort_by_key(|(k, ..)| *k);
        if named.iter().enumerate().any(|(i, (k, ..))| i != *k) {
            bail!("the servers must be the model's first connectors, each once");
        }
        let (events, receiver) = unbounded_channel();
        let mut links = Vec::new();
        let mut setup = Vec::new();
        for (k, name, server) in named {
            let (link, connector) = Link::connect(k, name, server, &events).await?;
            links.push(link);
            setup.push(connector);
        }
        let mut bridge = Bridge {
            core: ReferenceHost::mutated(policy, mutant),
            links,
            events,
            receiver,
            backlog: VecDeque::new(),
            model: Model::from_env()?,
            view: SessionView {
                session: SESSION,
                catalogue: BTreeMap::new(),
                notices: BTreeMap::new(),
                fetch_at_offer: Default::default(),
                turn: TurnState::None,
            },
            agent: Agent::Idle,
            messages: Vec::new(),
            offered: Vec::new(),
            list_timeout,
        };
        bridge.feed(Input::Reset { connectors: setup, sessions: vec![SESSION] }).await?;
        Ok(bridge)
    }

    /// Says it is ready, then handles stdin, the servers and the model until stdin ends or says
    /// `quit`.
    pub async fn run(mut self) -> Result<()> {
        say(json!({ "type": "ready" }));
        self.read_stdin();
        while let Some(event) = self.next().await {
            if self.on(event).await? == Flow::Quit {
                break;
            }
        }
        for link in self.links {
            match link.client {
                Client::Handshake(client) => {
                    let _ = client.cancel().await;
                }
                Client::Stateless { listen, .. } => listen.into_iter().for_each(|l| l.abort()),
            }
        }
        Ok(())
    }

    /// The next event.
    async fn next(&mut self) -> Option<Event> {
        match self.backlog.pop_front() {
            Some(event) => Some(event),
            None => self.receiver.recv().await,
        }
    }

    /// Reads stdin into events.
    fn read_stdin(&self) {
        let events = self.events.clone();
        tokio::spawn(async move {
            use tokio::io::AsyncBufReadExt;
            let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
            loop {
                let line = lines.next_line().await.ok().flatten();
                let end = line.is_none();
                if events.send(Event::Line(line)).is_err() || end {
                    return;
                }
            }
        });
    }

    /// Handles one event.
    async fn on(&mut self, event: Event) -> Result<Flow> {
        match event {
            Event::Line(None) => return Ok(Flow::Quit),
            Event::Line(Some(line)) => {
                let Ok(input) = serde_json::from_str::<Value>(&line) else { return Ok(Flow::Continue) };
                match (input["type"].as_str(), input["command"].as_str()) {
                    (Some("user"), _) if self.agent == Agent::Idle => {
                        self.messages = vec![json!({ "role": "user", "content": input["text"] })];
                        self.agent = Agent::Due;
                        self.expire().await?;
                        self.feed(Input::Ask { session: SESSION }).await?;
                    }
                    (Some("command"), Some("mcp")) => {
                        self.feed(Input::Mcp { session: SESSION }).await?;
                    }
                    (Some("command"), Some("quit")) => return Ok(Flow::Quit),
                    _ => {}
                }
            }
            Event::Notified { connector, generation } => {
                if self.links[connector].generation == generation {
                    let c = ConnectorId(connector as u8);
                    self.feed(Input::Notification { session: SESSION, connector: c }).await?;
                }
            }
            Event::ListenEnded { connector, generation } => {
                let link = &mut self.links[connector];
                if link.generation == generation && link.listening() {
                    if let Client::Stateless { listen, .. } = &mut link.client {
                        *listen = None;
                    }
                    let c = ConnectorId(connector as u8);
                    self.feed(Input::ListenEnded { session: SESSION, connector: c }).await?;
                }
            }
            Event::Listed { connector, request, cursor, result } => {
                let link = &mut self.links[connector];
                if !link.in_flight.remove(&request) {
                    // Given up on: the reference host has forgotten it.
                    return Ok(Flow::Continue);
                }
                let cached = result.as_ref().ok().and_then(|page| page.cache);
                if let Some(cached) = cached {
                    link.expires = expiry(cached.ttl_ms);
                }
                let result = self.listed(connector, cursor, result);
                let c = ConnectorId(connector as u8);
                let cache = cached.map(|c| c.hint);
                self.feed(Input::Listing { session: SESSION, connector: c, request, result, cache }).await?;
            }
            Event::Answered(answer) => {
                let answer = answer.map_err(|e| anyhow::anyhow!(e))?;
                self.answered(answer).await?;
            }
            Event::TimedOut { connector, request } => {
                // Still unanswered: the reference host gives it up, and its reply, if one ever
                // comes, goes nowhere.
                if self.links[connector].in_flight.remove(&request) {
                    let c = ConnectorId(connector as u8);
                    self.feed(Input::Timeout { session: SESSION, connector: c, request }).await?;
                }
            }
        }
        self.pump();
        Ok(Flow::Continue)
    }

    /// Gives the reference host one input and carries out what it did: its requests go on the
    /// wire; a turn it ended is ended. Returns its answer.
    async fn feed(&mut self, input: Input) -> Result<Option<Answer>> {
        let output = self.core.handle(&input).map_err(|e| anyhow::anyhow!("the reference host, at {input:?}: {e}"))?;
        let Output::Observation { requests, sessions, answer, listens, .. } = output else {
            bail!("the reference host did not observe at {input:?}")
        };
        self.view = sessions.into_iter().next().context("the reference host shows no session")?;
        // A stream opens before the lists of the same input go out: a change after the list is
        // then heard.
        for LinkRef { connector, .. } in listens {
            self.listen(connector.index()).await?;
        }
        for request in requests {
            self.send(request).await?;
        }
        if let Some(Answer::Aborted(c)) = answer {
            let name = &self.links[c.index()].name;
            self.end_turn(&format!("Error: {name}: its tools could not be listed, so this turn stops here."));
        }
        Ok(answer)
    }

    /// Feeds [`TtlExpired`](Input::TtlExpired) for every list whose `ttlMs` ran out, with no list
    /// of its connector in flight (time passes between turns).
    async fn expire(&mut self) -> Result<()> {
        let now = Instant::now();
        for k in 0..self.links.len() {
            let link = &mut self.links[k];
            if link.in_flight.is_empty() && link.expires.is_some_and(|at| at <= now) {
                link.expires = None;
                self.feed(Input::TtlExpired { session: SESSION, connector: ConnectorId(k as u8) }).await?;
            }
        }
        Ok(())
    }

    /// Opens a listen stream to connector `k`'s server (ending the one it had), and waits for the
    /// server's acknowledgement; what comes on it then comes as events.
    async fn listen(&mut self, k: usize) -> Result<()> {
        let link = &mut self.links[k];
        let Client::Stateless { client, listen } = &mut link.client else {
            bail!("the reference host listens to {}, which speaks a handshake revision", link.name)
        };
        if let Some(old) = listen.take() {
            old.abort();
        }
        link.generation += 1;
        let generation = link.generation;
        let mut stream = client.listen().await.map_err(|e| anyhow::anyhow!("server {}: listen: {e}", link.name))?;
        let events = self.events.clone();
        *listen = Some(tokio::spawn(async move {
            loop {
                let heard = stream.next().await;
                let event = match heard {
                    Heard::ToolsChanged => Event::Notified { connector: k, generation },
                    Heard::Ended => Event::ListenEnded { connector: k, generation },
                };
                if events.send(event).is_err() || heard == Heard::Ended {
                    return;
                }
            }
        }));
        Ok(())
    }

    /// Sends one `tools/list` the reference host made, on a new connection if it re-initialises.
    async fn send(&mut self, request: SentRequest) -> Result<()> {
        let k = request.connector.index();
        let link = &mut self.links[k];
        if let (true, Client::Handshake(_)) = (request.initialize, &link.client) {
            link.generation += 1;
            let handler = Forward { connector: k, generation: link.generation, events: self.events.clone() };
            let client = serve(&link.name, &link.config, handler, Reinitialise::ByHost).await?;
            if let Client::Handshake(old) = std::mem::replace(&mut link.client, Client::Handshake(client)) {
                let _ = old.cancel().await;
            }
        }
        let id = link.next_request;
        link.next_request += 1;
        link.in_flight.insert(id);
        let events = self.events.clone();
        if self.core.times_out() {
            let (timers, timeout) = (self.events.clone(), self.list_timeout);
            tokio::spawn(async move {
                tokio::time::sleep(timeout).await;
                let _ = timers.send(Event::TimedOut { connector: k, request: id });
            });
        }
        let cursor = request.cursor;
        match &link.client {
            Client::Handshake(client) => {
                let peer = client.peer().clone();
                tokio::spawn(async move {
                    let params = PaginatedRequestParams::default().with_cursor(cursor.clone());
                    let result = match peer.list_tools(Some(params)).await {
                        Ok(page) => Ok(Page { tools: page.tools, next_cursor: page.next_cursor, cache: None }),
                        Err(e) => Err(failure(&e)),
                    };
                    let _ = events.send(Event::Listed { connector: k, request: id, cursor, result });
                });
            }
            Client::Stateless { client, .. } => {
                let client = Arc::clone(client);
                tokio::spawn(async move {
                    let result = match client.list(cursor.as_deref()).await {
                        Ok(page) => match tools_of(&page.tools) {
                            Ok(tools) => Ok(Page {
                                tools,
                                next_cursor: page.next_cursor.clone(),
                                cache: Some(Cached::of(&page)),
                            }),
                            Err(_) => Err(ListFailure::Transport),
                        },
                        Err(e) => Err(stateless_failure(&e)),
                    };
                    let _ = events.send(Event::Listed { connector: k, request: id, cursor, result });
                });
            }
        }
        Ok(())
    }

    /// What a list's page is, to the reference host; remembers its tools.
    fn listed(&mut self, k: usize, cursor: Option<String>, result: Result<Page, ListFailure>) -> ListResult {
        let link = &mut self.links[k];
        // A page after the first carries on the pages before it (by the cursor it was asked with).
        let earlier = cursor.and_then(|c| link.pages.remove(&c)).unwrap_or_default();
        let page = match result {
            Ok(page) => page,
            Err(failure) => return ListResult::Error(failure),
        };
        let mut tools = earlier;
        tools.extend(page.tools);
        match page.next_cursor {
            Some(next_cursor) => {
                link.listed.insert(Listing::SomeActions, tools.clone());
                link.pages.insert(next_cursor.clone(), tools);
                ListResult::FirstPage { next_cursor }
            }
            None => {
                let listing = shape(&tools);
                link.listed.insert(listing, tools);
                ListResult::Tools(listing)
            }
        }
    }

    /// Asks the model if the agent is due and the reference host's turn is open (or the turn
    /// ended at the agent's call and the model is to get its result).
    fn pump(&mut self) {
        let closing = match self.agent {
            Agent::Due if self.view.turn == TurnState::Open => false,
            Agent::Closing => true,
            _ => return,
        };
        let mut system = String::from("You are an agent with the tools of these MCP servers.");
        for (c, notice) in &self.view.notices {
            system.push('\n');
            system.push_str(&notice_text(&self.links[c.index()].name, *notice));
        }
        self.offered.clear();
        for (c, listing) in &self.view.catalogue {
            let k = c.index();
            for tool in self.links[k].listed.get(listing).into_iter().flatten() {
                self.offered.push((k, tool.clone()));
            }
        }
        let tools: Vec<Value> = self.offered.iter().map(|(_, t)| offered(t)).collect();
        let model = self.model.clone();
        let messages = self.messages.clone();
        let events = self.events.clone();
        tokio::spawn(async move {
            let answer = model.ask(&system, &tools, &messages).await.map_err(|e| format!("{e:#}"));
            let _ = events.send(Event::Answered(answer));
        });
        self.agent = Agent::Thinking { closing };
    }

    /// The model answered: the agent's step.
    async fn answered(&mut self, answer: Value) -> Result<()> {
        let closing = match self.agent {
            Agent::Thinking { closing } => closing,
            Agent::Discarding => {
                self.agent = Agent::Idle;
                return Ok(());
            }
            other => bail!("a model answer while the agent is {other:?}"),
        };
        self.agent = Agent::Idle;
        let content = answer.get("content").and_then(Value::as_array).cloned().unwrap_or_default();
        self.messages.push(json!({ "role": "assistant", "content": content }));
        let said: Vec<&str> = content.iter().filter_map(|b| b["text"].as_str()).collect();
        let said = said.join("\n");
        let Some(call) = content.iter().find(|b| b["type"] == "tool_use") else {
            if !closing && self.view.turn != TurnState::None {
                self.words(&said).await?;
            }
            self.end_turn(&said);
            return Ok(());
        };
        let (text, is_error) = if closing {
            (String::from("The turn already ended."), true)
        } else {
            self.call(call["name"].as_str().unwrap_or_default()).await?
        };
        self.messages.push(json!({ "role": "user", "content": [
            { "type": "tool_result", "tool_use_id": call["id"], "content": text, "is_error": is_error }
        ] }));
        self.agent = match (closing, self.view.turn) {
            (true, _) | (false, TurnState::None) => Agent::Closing,
            (false, _) => Agent::Due,
        };
        Ok(())
    }

    /// The agent's words: "not available", or its relay of a notice.
    async fn words(&mut self, said: &str) -> Result<()> {
        let lower = said.to_lowercase();
        let named = (0..self.links.len()).find(|&k| lower.contains(&self.links[k].name.to_lowercase()));
        let Some(k) = named else { return Ok(()) };
        let connector = ConnectorId(k as u8);
        let input = if !lower.contains("not available") && self.view.notices.contains_key(&connector) {
            Input::RelayNotice { session: SESSION, connector }
        } else {
            Input::AnswerNotAvailable { session: SESSION, connector }
        };
        self.feed(input).await?;
        Ok(())
    }

    /// The agent calls `name`: the tool result the model gets.
    async fn call(&mut self, name: &str) -> Result<(String, bool)> {
        let listed = self.offered.iter().find(|(_, t)| t.name == name).map(|(k, _)| *k);
        let by_name = (0..self.links.len()).find(|&k| name.starts_with(&format!("{}_", self.links[k].name)));
        let Some(k) = listed.or(by_name) else { return Ok((format!("No such tool: {name}."), true)) };
        let connector = ConnectorId(k as u8);
        let server = self.links[k].name.clone();
        if listed.is_none() {
            let answer = self.feed(Input::CallUnlisted { session: SESSION, connector }).await?;
            return Ok(match answer {
                None => (format!("{name} is not listed; {server}'s tools are being listed again."), true),
                Some(Answer::Misrouted) => self.misroute(k, name).await,
                Some(Answer::ToolFailed(Some(r))) => (format!("No such tool: {name}. {server}: {}.", phrase(r)), true),
                Some(_) => (format!("No such tool: {name}."), true),
            });
        }
        let ran = self.call_on(k, name).await;
        if name.ends_with("_complete_authentication") {
            let list_changed_first = self.notified_meanwhile(k).await;
            let input = Input::CompleteAuthentication { session: SESSION, connector, list_changed_first };
            self.feed(input).await?;
            return Ok(match ran {
                Ok(text) => (text, false),
                Err(e) => (e.text, true),
            });
        }
        if name.ends_with("_authenticate") {
            // A server that no longer lists its stub is authenticated.
            let authenticated = matches!(&ran, Err(e) if e.unknown_tool);
            let answer = self.feed(Input::CallStub { session: SESSION, connector, authenticated }).await?;
            return Ok(match answer {
                Some(Answer::StubReplied(StubReply::AuthPrompt)) => match ran {
                    Ok(text) => (text, false),
                    Err(e) => (e.text, true),
                },
                Some(Answer::StubReplied(StubReply::Guidance(r))) => {
                    (format!("{server} is already authenticated on the web; {} to load its tools.", phrase(r)), true)
                }
                _ => (format!("{name}: already authenticated."), true),
            });
        }
        let result = match &ran {
            Ok(_) => CallResult::Ok,
            Err(e) => match e.failure {
                ListFailure::Unauthorized => CallResult::Unauthorized,
                _ => CallResult::SessionNotFound,
            },
        };
        let answer = self.feed(Input::CallTool { session: SESSION, connector, server: result }).await?;
        Ok(match (answer, ran) {
            (Some(Answer::ToolFailed(r)), _) => {
                let hint = r.map(|r| format!(" {server}: {}.", phrase(r))).unwrap_or_default();
                (format!("{name} failed.{hint}"), true)
            }
            (_, Ok(text)) => (text, false),
            (_, Err(e)) => (e.text, true),
        })
    }

    /// Runs another connector's tool of the same kind, as a host that routes by bare name does.
    async fn misroute(&mut self, k: usize, name: &str) -> (String, bool) {
        let bare = name.strip_prefix(&format!("{}_", self.links[k].name)).unwrap_or(name).to_owned();
        let other = self.offered.iter().find(|(o, t)| *o != k && t.name.ends_with(&format!("_{bare}"))).cloned();
        let Some((o, tool)) = other else { return (format!("No such tool: {name}."), true) };
        match self.call_on(o, &tool.name).await {
            Ok(text) => (text, false),
            Err(e) => (e.text, true),
        }
    }

    /// Calls a tool on connector `k`'s server: the text of its result.
    async fn call_on(&self, k: usize, name: &str) -> Result<String, CallFailed> {
        match &self.links[k].client {
            Client::Handshake(client) => {
                let result = client.call_tool(CallToolRequestParams::new(name.to_owned())).await?;
                Ok(result_text(&result))
            }
            Client::Stateless { client, .. } => {
                let result = client.call(name).await?;
                let parts = result.get("content").and_then(Value::as_array).into_iter().flatten();
                let text: Vec<&str> = parts.filter_map(|p| p.get("text").and_then(Value::as_str)).collect();
                Ok(text.join("\n"))
            }
        }
    }

    /// Whether connector `k`'s server said its list changed since the last event was read (a
    /// notification it sent before a result may arrive just after it).
    async fn notified_meanwhile(&mut self, k: usize) -> bool {
        tokio::time::sleep(NOTIFICATION_GRACE).await;
        while let Ok(event) = self.receiver.try_recv() {
            self.backlog.push_back(event);
        }
        let generation = self.links[k].generation;
        let first = self.backlog.iter().position(
            |e| matches!(e, Event::Notified { connector, generation: g } if *connector == k && *g == generation),
        );
        first.and_then(|i| self.backlog.remove(i)).is_some()
    }

    /// Ends the turn with `text`.
    fn end_turn(&mut self, text: &str) {
        self.agent = match self.agent {
            Agent::Thinking { .. } => Agent::Discarding,
            _ => Agent::Idle,
        };
        self.messages.clear();
        say(json!({ "type": "turn_end", "text": text }));
    }
}

/// The listing shape of a complete list: the stubs alone, or action tools.
fn shape(tools: &[Tool]) -> Listing {
    let stub = |t: &Tool| t.name.ends_with("_authenticate") || t.name.ends_with("_complete_authentication");
    if tools.iter().all(stub) { Listing::Stubs } else { Listing::Actions }
}

/// What a failed request was, as the model knows failures: 401 (an auth challenge, or the
/// JSON-RPC error a stdio server answers instead), a lost transport session (HTTP 404, or a stdio
/// connection that closed), or any other failure.
fn failure(error: &ServiceError) -> ListFailure {
    if error.auth_challenge().is_some() || matches!(error, ServiceError::McpError(e) if e.code.0 == -32001) {
        return ListFailure::Unauthorized;
    }
    if matches!(error, ServiceError::TransportClosed) {
        return ListFailure::SessionNotFound;
    }
    let mut chain = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(s) = source {
        chain.push_str(&format!(": {s}"));
        source = s.source();
    }
    if chain.contains("Session expired") || chain.contains("closed") {
        ListFailure::SessionNotFound
    } else {
        ListFailure::Transport
    }
}

/// What a failed request of MCP 2026-07-28 was, as the model knows failures: 401, or any other
/// failure (there is no transport session to lose).
fn stateless_failure(failure: &Failure) -> ListFailure {
    match failure {
        Failure::Unauthorized => ListFailure::Unauthorized,
        Failure::Error { .. } | Failure::Transport(_) => ListFailure::Transport,
    }
}

/// How a recovery step reads.
fn phrase(recovery: Recovery) -> &'static str {
    match recovery {
        Recovery::Restart => "restart the session",
        Recovery::Refresh => "run /mcp to refresh",
        Recovery::Authenticate => "sign in again",
    }
}

/// A notice's line in the system prompt.
fn notice_text(connector: &str, notice: Notice) -> String {
    let step = phrase(notice.recovery);
    match notice.reason {
        NoticeReason::RefreshFailed => format!("{connector}: its tools could not be listed; {step}."),
        NoticeReason::NeedsAuthentication => format!("{connector} needs you to {step}."),
        NoticeReason::ChangedElsewhere => format!("{connector} changed elsewhere; {step} to use its tools."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coherence_wire::reading::{self, Phrases};

    /// Every notice the model's hosts show reads back, on the wire, as the same notice: the
    /// runner's reading and the bridge's phrasing agree. (A change elsewhere whose recovery is to
    /// authenticate reads as needing authentication: no policy shows it.)
    #[test]
    fn every_notice_reads_back_as_itself() {
        let gmail = reading::Connector { name: "gmail".into(), tools: vec!["gmail_send".into()] };
        let recoveries = [Recovery::Restart, Recovery::Refresh, Recovery::Authenticate];
        let reasons = [NoticeReason::RefreshFailed, NoticeReason::NeedsAuthentication, NoticeReason::ChangedElsewhere];
        for reason in reasons {
            for recovery in recoveries {
                let unshown = match reason {
                    NoticeReason::NeedsAuthentication => recovery != Recovery::Authenticate,
                    NoticeReason::ChangedElsewhere => recovery == Recovery::Authenticate,
                    NoticeReason::RefreshFailed => false,
                };
                if unshown {
                    continue;
                }
                let notice = Notice { reason, recovery };
                let text = notice_text("gmail", notice);
                let lines = reading::read_lines(
                    std::slice::from_ref(&text),
                    std::slice::from_ref(&gmail),
                    &Phrases::standard(),
                );
                let read = lines.iter().find(|l| l.is_notice_about(0)).and_then(reading::Line::notice);
                assert_eq!(read, Some(notice), "{text}");
            }
        }
    }

    /// The listing shape of a complete list.
    #[test]
    fn a_list_of_stubs_alone_is_stubs_and_any_action_makes_it_actions() {
        let tool = |name: &str| Tool::new(name.to_owned(), "", std::sync::Arc::new(serde_json::Map::new()));
        assert_eq!(shape(&[tool("gmail_authenticate"), tool("gmail_complete_authentication")]), Listing::Stubs);
        assert_eq!(shape(&[tool("gmail_authenticate"), tool("gmail_send")]), Listing::Actions);
        assert_eq!(shape(&[]), Listing::Stubs);
    }
}
