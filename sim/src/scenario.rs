//! Scripted scenarios: a failure scenario written once, in SPEC.md's words, turned into a fixture.
//!
//! The format is line-based (see `scenarios/README.md`):
//!
//! ```text
//! scenario ConnectorAuthMidSession
//! about The seed report: a connector authenticated on the web mid-session.
//! policy session-start-only      # the host the story is told against
//! expect INV-1                   # the invariant that host breaks
//! connector gmail unauthenticated silent
//! connector calendar unauthenticated silent
//! sessions 1
//! WebAuthenticate gmail
//! UserAsk cli gmail
//! AgentAnswerNotAvailable cli
//! ```
//!
//! Every step must be enabled in the model under the named policy; the bounds are the least that
//! admit the steps. A scenario that is not a behaviour of the model is an error naming its line.

use crate::fixture::{ConnectorInit, Fixture, Provenance, SPEC_VERSION};
use crate::generate::fixture_from_trace;
use coherence_model::explore::Trace;
use coherence_model::state::{Auth, CacheScope, ConnectorId, ListFailure, Revision, SessionId, Shape, State, Ttl};
use coherence_model::{Action, Bounds, CoherenceModel, policy_named};

/// The largest scenario file read.
pub const SCENARIO_BYTES_MAX: usize = 64 << 10;

/// A parsed scenario.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// Its name (an identifier).
    pub name: String,
    /// One sentence.
    pub about: String,
    /// The policy the story is told against.
    pub policy: String,
    /// The invariant that policy breaks in it, if any.
    pub expect: Option<String>,
    connectors: Vec<ConnectorInit>,
    sessions: u8,
    servers: coherence_model::system::Servers,
    contexts: coherence_model::state::Contexts,
    steps: Vec<(usize, Action)>,
}

fn word<T: serde::de::DeserializeOwned>(w: &str, what: &str) -> Result<T, String> {
    serde_json::from_value(serde_json::Value::String(w.to_owned())).map_err(|_| format!("`{w}` is not a {what}"))
}

/// Word `k` of a line as a `what`, or the default if the line is shorter.
fn optional<T: serde::de::DeserializeOwned + Default>(words: &[&str], k: usize, what: &str) -> Result<T, String> {
    Ok(words.get(k).map(|w| word(w, what)).transpose()?.unwrap_or_default())
}

fn parse_action(words: &[&str]) -> Result<Action, String> {
    let arity = |n: usize| {
        if words.len() == n + 1 {
            Ok(())
        } else {
            Err(format!("{} takes {n} arguments, got {}", words[0], words.len() - 1))
        }
    };
    let s = |i: usize| word::<SessionId>(words[i], "session");
    let c = |i: usize| word::<ConnectorId>(words[i], "connector");
    let slot = |i: usize| words[i].parse::<u8>().map_err(|_| format!("`{}` is not a request slot", words[i]));
    Ok(match words[0] {
        "WebAuthenticate"
        | "WebRevoke"
        | "TokenExpire"
        | "NotifyBeforeUpdate"
        | "RefreshTokenSilently"
        | "DeployTools" => {
            arity(1)?;
            let connector = c(1)?;
            match words[0] {
                "WebAuthenticate" => Action::WebAuthenticate { connector },
                "WebRevoke" => Action::WebRevoke { connector },
                "NotifyBeforeUpdate" => Action::NotifyBeforeUpdate { connector },
                "RefreshTokenSilently" => Action::RefreshTokenSilently { connector },
                "DeployTools" => Action::DeployTools { connector },
                _ => Action::TokenExpire { connector },
            }
        }
        "DeliverNotification"
        | "LoseNotification"
        | "DuplicateNotification"
        | "LoseNotificationStream"
        | "ExpireTtl"
        | "LoseTransportSession"
        | "UserAsk"
        | "UserAuthenticate" => {
            arity(2)?;
            let (session, connector) = (s(1)?, c(2)?);
            match words[0] {
                "DeliverNotification" => Action::DeliverNotification { session, connector },
                "LoseNotification" => Action::LoseNotification { session, connector },
                "DuplicateNotification" => Action::DuplicateNotification { session, connector },
                "LoseNotificationStream" => Action::LoseNotificationStream { session, connector },
                "ExpireTtl" => Action::ExpireTtl { session, connector },
                "LoseTransportSession" => Action::LoseTransportSession { session, connector },
                "UserAsk" => Action::UserAsk { session, connector },
                _ => Action::UserAuthenticate { session, connector },
            }
        }
        "DeliverListing" | "TimeOutListing" | "HangListing" | "ServeLate" | "PageListing" => {
            arity(3)?;
            let (session, connector, slot) = (s(1)?, c(2)?, slot(3)?);
            match words[0] {
                "DeliverListing" => Action::DeliverListing { session, connector, slot },
                "TimeOutListing" => Action::TimeOutListing { session, connector, slot },
                "ServeLate" => Action::ServeLate { session, connector, slot },
                "PageListing" => Action::PageListing { session, connector, slot },
                _ => Action::HangListing { session, connector, slot },
            }
        }
        "FailListing" => {
            arity(4)?;
            let failure = word::<ListFailure>(words[4], "failure (unauthorized, transport)")?;
            if failure == ListFailure::SessionNotFound {
                return Err(
                    "FailListing injects unauthorized or transport; 404s come from LoseTransportSession".to_owned()
                );
            }
            Action::FailListing { session: s(1)?, connector: c(2)?, slot: slot(3)?, failure }
        }
        "UserMcp"
        | "UserRestart"
        | "DeliverAccount"
        | "FailAccountRead"
        | "AgentCallTool"
        | "AgentCallStub"
        | "AgentCallUnlisted"
        | "AgentAnswerNotAvailable"
        | "AgentRelayNotice"
        | "AgentCompleteAuthentication" => {
            arity(1)?;
            let session = s(1)?;
            match words[0] {
                "UserMcp" => Action::UserMcp { session },
                "UserRestart" => Action::UserRestart { session },
                "DeliverAccount" => Action::DeliverAccount { session },
                "FailAccountRead" => Action::FailAccountRead { session },
                "AgentCallTool" => Action::AgentCallTool { session },
                "AgentCallStub" => Action::AgentCallStub { session },
                "AgentCallUnlisted" => Action::AgentCallUnlisted { session },
                "AgentAnswerNotAvailable" => Action::AgentAnswerNotAvailable { session },
                "AgentRelayNotice" => Action::AgentRelayNotice { session },
                _ => Action::AgentCompleteAuthentication { session },
            }
        }
        other => return Err(format!("`{other}` is neither a directive nor an action of SPEC.md §3")),
    })
}

/// An action's arguments as the scenario format writes them, in order.
pub fn action_arguments(action: &Action) -> Vec<String> {
    use Action as A;
    let failure = |f: ListFailure| serde_json::to_value(f).expect("serialises").as_str().unwrap_or_default().to_owned();
    match *action {
        A::WebAuthenticate { connector }
        | A::WebRevoke { connector }
        | A::TokenExpire { connector }
        | A::NotifyBeforeUpdate { connector }
        | A::RefreshTokenSilently { connector }
        | A::DeployTools { connector } => {
            vec![connector.name().to_owned()]
        }
        A::DeliverNotification { session, connector }
        | A::LoseNotification { session, connector }
        | A::DuplicateNotification { session, connector }
        | A::LoseNotificationStream { session, connector }
        | A::ExpireTtl { session, connector }
        | A::LoseTransportSession { session, connector }
        | A::UserAsk { session, connector }
        | A::UserAuthenticate { session, connector } => vec![session.name().to_owned(), connector.name().to_owned()],
        A::DeliverListing { session, connector, slot }
        | A::TimeOutListing { session, connector, slot }
        | A::HangListing { session, connector, slot }
        | A::ServeLate { session, connector, slot }
        | A::PageListing { session, connector, slot } => {
            vec![session.name().to_owned(), connector.name().to_owned(), slot.to_string()]
        }
        A::FailListing { session, connector, slot, failure: f } => {
            vec![session.name().to_owned(), connector.name().to_owned(), slot.to_string(), failure(f)]
        }
        A::UserMcp { session }
        | A::UserRestart { session }
        | A::DeliverAccount { session }
        | A::FailAccountRead { session }
        | A::AgentCallTool { session }
        | A::AgentCallStub { session }
        | A::AgentCallUnlisted { session }
        | A::AgentAnswerNotAvailable { session }
        | A::AgentRelayNotice { session }
        | A::AgentCompleteAuthentication { session } => vec![session.name().to_owned()],
    }
}

impl Scenario {
    /// Parses a scenario; `path` names it in errors.
    pub fn parse(text: &str, path: &str) -> Result<Scenario, String> {
        if text.len() > SCENARIO_BYTES_MAX {
            return Err(format!("{path}: over {SCENARIO_BYTES_MAX} bytes"));
        }
        let mut scenario = Scenario {
            name: String::new(),
            about: String::new(),
            policy: String::new(),
            expect: None,
            connectors: Vec::new(),
            sessions: 1,
            servers: coherence_model::system::Servers::Any,
            contexts: coherence_model::state::Contexts::One,
            steps: Vec::new(),
        };
        for (i, raw) in text.lines().enumerate() {
            let at = |e: String| format!("{path}:{}: {e}", i + 1);
            let line = raw.split('#').next().unwrap_or("").trim();
            let words: Vec<&str> = line.split_whitespace().collect();
            let Some(first) = words.first() else { continue };
            let rest = line[first.len()..].trim().to_owned();
            match *first {
                "scenario" => scenario.name = rest,
                "about" => scenario.about = rest,
                "policy" => {
                    policy_named(&rest).ok_or_else(|| at(format!("unknown policy `{rest}`")))?;
                    scenario.policy = rest;
                }
                "expect" => {
                    coherence_model::invariant(&rest).ok_or_else(|| at(format!("unknown invariant `{rest}`")))?;
                    scenario.expect = Some(rest);
                }
                "connector" => {
                    if !(4..=8).contains(&words.len()) {
                        return Err(at("connector takes a name, an auth state and a notify mode, then optionally a \
                             revision, a TTL, a cache scope and the second user's auth state"
                            .to_owned()));
                    }
                    let name: ConnectorId = word(words[1], "connector").map_err(at)?;
                    if scenario.connectors.len() >= coherence_model::state::CONNECTORS_MAX {
                        return Err(at(format!("at most {} connectors", coherence_model::state::CONNECTORS_MAX)));
                    }
                    if name.index() != scenario.connectors.len() {
                        return Err(at(format!(
                            "connectors are declared in order; expected {}",
                            ConnectorId(scenario.connectors.len() as u8)
                        )));
                    }
                    let auth: Auth = word(words[2], "start state (unauthenticated, authenticated)").map_err(at)?;
                    if !matches!(auth, Auth::Unauthenticated | Auth::Authenticated) {
                        return Err(at("a connector starts unauthenticated or authenticated".to_owned()));
                    }
                    let notify = word(words[3], "notify mode (advertised, unadvertised, silent)").map_err(at)?;
                    let revision: Revision = optional(&words, 4, "revision (handshake, stateless)").map_err(at)?;
                    let ttl: Ttl = optional(&words, 5, "TTL (zero, long)").map_err(at)?;
                    let scope: CacheScope = optional(&words, 6, "cache scope (private, public)").map_err(at)?;
                    if revision == Revision::Handshake && words.len() > 5 && words.len() < 8 {
                        return Err(at("a TTL and a cache scope are of a stateless (2026-07-28) server".to_owned()));
                    }
                    let other: Auth = optional(&words, 7, "second user's start state (unauthenticated, authenticated)")
                        .map_err(at)?;
                    if !matches!(other, Auth::Unauthenticated | Auth::Authenticated) {
                        return Err(at("the second user starts unauthenticated or authenticated".to_owned()));
                    }
                    scenario.connectors.push(ConnectorInit { name, auth, notify, revision, ttl, scope, other });
                }
                "sessions" => {
                    scenario.sessions = rest.parse().map_err(|_| at(format!("`{rest}` is not a session count")))?;
                }
                "contexts" => {
                    scenario.contexts = match rest.as_str() {
                        "one" => coherence_model::state::Contexts::One,
                        "two" => coherence_model::state::Contexts::Two,
                        _ => return Err(at(format!("`{rest}` is not a number of authorization contexts (one, two)"))),
                    };
                }
                "servers" => {
                    scenario.servers = match rest.as_str() {
                        "any" => coherence_model::system::Servers::Any,
                        "reliable" => coherence_model::system::Servers::Reliable,
                        _ => return Err(at(format!("`{rest}` is not a kind of servers (any, reliable)"))),
                    };
                }
                _ => scenario.steps.push((i + 1, parse_action(&words).map_err(at)?)),
            }
        }
        for (field, value) in [("scenario", &scenario.name), ("about", &scenario.about), ("policy", &scenario.policy)] {
            if value.is_empty() {
                return Err(format!("{path}: the `{field}` line is missing"));
            }
        }
        if !scenario.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(format!("{path}: scenario name `{}` must be letters, digits and dashes", scenario.name));
        }
        Ok(scenario)
    }

    /// The scenario's steps.
    pub fn actions(&self) -> impl Iterator<Item = Action> + '_ {
        self.steps.iter().map(|(_, a)| *a)
    }

    /// The least bounds that admit the scenario's steps.
    pub fn bounds(&self) -> Bounds {
        // Counts saturate, so that too many steps fail `Bounds::validate` instead of wrapping.
        let count =
            |f: fn(&Action) -> bool| u8::try_from(self.steps.iter().filter(|(_, a)| f(a)).count()).unwrap_or(u8::MAX);
        Bounds {
            connectors: self.connectors.len() as u8,
            sessions: self.sessions,
            turns: count(|a| matches!(a, Action::UserAsk { .. })).max(1),
            auth_changes: count(|a| {
                matches!(
                    a,
                    Action::WebAuthenticate { .. }
                        | Action::WebRevoke { .. }
                        | Action::TokenExpire { .. }
                        | Action::RefreshTokenSilently { .. }
                        | Action::UserAuthenticate { .. }
                        | Action::AgentCompleteAuthentication { .. }
                )
            }),
            faults: count(Action::is_fault),
            commands: count(|a| matches!(a, Action::UserMcp { .. } | Action::UserRestart { .. })),
            symmetry: false,
            servers: self.servers,
            revisions: {
                use coherence_model::system::Revisions;
                let stateless = self.connectors.iter().filter(|c| c.revision == Revision::Stateless).count();
                match stateless {
                    0 => Revisions::Handshake,
                    n if n == self.connectors.len() => Revisions::Stateless,
                    _ => Revisions::Mixed,
                }
            },
            contexts: self.contexts,
        }
    }

    /// The model the scenario is a behaviour of: its policy within its least bounds, admitting
    /// deploys when a step deploys (SPEC.md §4).
    pub fn model(&self) -> CoherenceModel {
        let model = CoherenceModel::new(policy_named(&self.policy).expect("checked at parse"), self.bounds());
        if self.actions().any(|a| matches!(a, Action::DeployTools { .. })) {
            CoherenceModel { faults: model.faults.with(coherence_model::system::Fault::DeployTools), ..model }
        } else {
            model
        }
    }

    /// The scenario as a model trace, checking that every step is enabled; `path` names it in errors.
    pub fn trace(&self, path: &str) -> Result<Trace, String> {
        let bounds = self.bounds();
        bounds.validate().map_err(|e| format!("{path}: {e}"))?;
        let model = self.model();
        let init = model
            .initial_states()
            .into_iter()
            .find(|s: &State| {
                s.shape == Shape { connectors: bounds.connectors, sessions: bounds.sessions, contexts: bounds.contexts }
                    && self.connectors.iter().all(|c| ConnectorInit::of(s, c.name) == *c)
            })
            .ok_or_else(|| format!("{path}: the connectors do not make an initial state"))?;
        let mut state = init;
        let mut steps = Vec::new();
        let mut enabled = Vec::new();
        for (line, action) in &self.steps {
            enabled.clear();
            model.enabled_actions(&state, &mut enabled);
            if !enabled.contains(action) {
                let names: Vec<String> =
                    enabled.iter().map(|a| format!("{} {}", a.name(), action_arguments(a).join(" "))).collect();
                return Err(format!(
                    "{path}:{line}: {} is not enabled here under {}; enabled: {}",
                    action.name(),
                    self.policy,
                    names.join(", ")
                ));
            }
            state = model.step(&state, *action).expect("enabled actions step");
            steps.push((*action, state));
        }
        Ok(Trace { init, steps })
    }

    /// Whether the actions, from the scenario's initial state, are a behaviour of the model under
    /// its policy whose last state breaks the expected invariant.
    fn breaks(&self, model: &CoherenceModel, init: State, actions: &[Action], id: &str) -> bool {
        let invariant = coherence_model::invariant(id).expect("checked at parse");
        let mut state = init;
        let mut enabled = Vec::new();
        for action in actions {
            enabled.clear();
            model.enabled_actions(&state, &mut enabled);
            if !enabled.contains(action) {
                return false;
            }
            state = model.step(&state, *action).expect("enabled actions step");
        }
        !invariant.holds(model, &state)
    }

    /// Checks that a scenario with `expect` breaks that invariant at its last step, and is
    /// 1-minimal: dropping any one step loses the violation (the fixed point delta debugging
    /// reaches). A scenario that can be shortened is an error naming the steps that can go.
    pub fn check_minimal(&self, path: &str) -> Result<(), String> {
        let Some(id) = &self.expect else { return Ok(()) };
        let trace = self.trace(path)?;
        let model = self.model();
        let actions: Vec<Action> = self.actions().collect();
        if !self.breaks(&model, trace.init, &actions, id) {
            return Err(format!("{path}: the last step does not break {id} under {}", self.policy));
        }
        let droppable: Vec<usize> = (0..actions.len())
            .filter(|&i| {
                let mut fewer = actions.clone();
                fewer.remove(i);
                self.breaks(&model, trace.init, &fewer, id)
            })
            .map(|i| self.steps[i].0)
            .collect();
        if droppable.is_empty() {
            Ok(())
        } else {
            Err(format!("{path}: not minimal: {id} still breaks without the step on line {droppable:?}"))
        }
    }

    /// The scenario as a fixture, once checked minimal.
    pub fn fixture(&self, path: &str) -> Result<Fixture, String> {
        self.check_minimal(path)?;
        let trace = self.trace(path)?;
        let provenance = Provenance {
            strategy: "scenario".to_owned(),
            policy: self.policy.clone(),
            mutant: None,
            invariant: self.expect.clone(),
            seed: None,
            bounds: self.bounds(),
            spec_version: SPEC_VERSION,
        };
        Ok(fixture_from_trace(
            format!("scenario/{}", self.name),
            self.about.clone(),
            provenance,
            policy_named(&self.policy).expect("checked at parse"),
            &trace,
        ))
    }
}

/// Every `*.scenario` file under `dir`, sorted by name, as fixtures.
pub fn scenario_fixtures(dir: &std::path::Path) -> Result<Vec<Fixture>, String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read scenario directory {}: {e}", dir.display()))?;
    let mut paths = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot read scenario directory {}: {e}", dir.display()))?;
        let path = entry.path();
        if path.extension().is_some_and(|x| x == "scenario") {
            // Only regular files: a FIFO would block the read for ever, a link could point anywhere.
            let kind = entry.file_type().map_err(|e| format!("{}: {e}", path.display()))?;
            if !kind.is_file() {
                return Err(format!("{}: not a regular file (a link, a FIFO or a device)", path.display()));
            }
            paths.push(path);
        }
    }
    if paths.is_empty() {
        return Err(format!("no scenarios (*.scenario) in {}", dir.display()));
    }
    paths.sort();
    paths
        .iter()
        .map(|p| {
            let name = p.display().to_string();
            let size = std::fs::metadata(p).map_err(|e| format!("{name}: {e}"))?.len();
            if size > SCENARIO_BYTES_MAX as u64 {
                return Err(format!("{name}: over {SCENARIO_BYTES_MAX} bytes"));
            }
            let text = std::fs::read_to_string(p).map_err(|e| format!("{name}: {e}"))?;
            Scenario::parse(&text, &name)?.fixture(&name)
        })
        .collect()
}
