//! Coverage-directed generation: the fewest traces found that cover every reachable abstract
//! transition of the `recommended` model within bounds (SPEC.md §11.2).
//!
//! An **abstract transition** is an action name with the situation of its focal link before and
//! after it. The focal link is the action's session (the first session for actions of the world
//! alone) and its connector (the turn's connector for agent actions, the first connector for
//! `/mcp` and restarts). A link's **situation** is: what the account holds for the connector
//! (stubs or actions), what the catalogue offers (nothing, stubs, actions), the notice's reason,
//! how many requests are in flight, the turn (none, open, held), and, for a 2026-07-28 server,
//! whether a listen stream is open. The abstraction is finite and speaks only of what SPEC.md's
//! invariants speak of.
//!
//! The search visits every reachable state; each abstract transition is first met on a shortest
//! path, which makes one candidate trace. The greedy set cover then takes the candidate covering
//! the most transitions not yet covered, and repeats: 100% of the reachable abstract transitions
//! by construction, in few traces (greedy set cover is within a factor ln(n) of the fewest).

use coherence_model::explore::Trace;
use coherence_model::state::{ConnectorId, Listing, NoticeReason, SessionId, State};
use coherence_model::{Action, Bounds, CoherenceModel, Key, RECOMMENDED, search};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// The turn, as the abstraction sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TurnPhase {
    /// No turn.
    None,
    /// The agent may act.
    Open,
    /// The host holds the turn.
    Held,
}

/// A link's situation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Situation {
    /// What the account holds.
    pub account: Listing,
    /// What the catalogue offers.
    pub offered: Option<Listing>,
    /// The notice's reason.
    pub notice: Option<NoticeReason>,
    /// Requests in flight.
    pub in_flight: u8,
    /// The turn.
    pub turn: TurnPhase,
    /// A `subscriptions/listen` stream is open (MCP 2026-07-28 only). Whether the list's TTL
    /// still runs is left out, as the invariants leave it out (they speak of the reason to
    /// refresh its end gives, which `ExpireTtl` is); with it, the revision's cover is twice as
    /// large.
    pub listening: bool,
}

/// An abstract transition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct AbstractTransition {
    /// The action's name.
    pub action: &'static str,
    /// The focal link before.
    pub before: Situation,
    /// The focal link after.
    pub after: Situation,
}

fn focal(state: &State, action: Action) -> (SessionId, ConnectorId) {
    let session = action.session().unwrap_or(SessionId(0));
    let connector = match action.connector() {
        Some(c) => c,
        None if action.is_agent() => state.session(session).turn.map_or(ConnectorId(0), |t| t.connector),
        // `/mcp`, restarts and account reads concern every connector: the first stands for them.
        None => ConnectorId(0),
    };
    (session, connector)
}

fn situation(model: &CoherenceModel, state: &State, s: SessionId, c: ConnectorId) -> Situation {
    let link = state.link(s, c);
    let _ = model;
    let turn = match state.session(s).turn {
        None => TurnPhase::None,
        Some(t) if t.held => TurnPhase::Held,
        Some(_) => TurnPhase::Open,
    };
    Situation {
        account: state.connector(c).listing(),
        offered: link.offered(),
        notice: link.notice.map(|n| n.reason),
        in_flight: link.fetch_count() as u8,
        turn,
        listening: link.listening,
    }
}

/// The abstract transition of one step.
pub fn abstract_transition(
    model: &CoherenceModel,
    before: &State,
    action: Action,
    after: &State,
) -> AbstractTransition {
    let (s, c) = focal(before, action);
    AbstractTransition {
        action: action.name(),
        before: situation(model, before, s, c),
        after: situation(model, after, s, c),
    }
}

/// The bounds coverage is measured within: the defaults, without symmetry (traces are concrete).
pub const COVERAGE_BOUNDS: Bounds = Bounds { symmetry: false, ..Bounds::DEFAULT };

/// The bounds coverage of MCP 2026-07-28 is measured within: the defaults with one connector, whose
/// server speaks 2026-07-28 (with two, the reachable states of the revision are too many to visit
/// without symmetry in the test command's time; the abstraction speaks of one link at a time).
pub const STATELESS_COVERAGE_BOUNDS: Bounds =
    Bounds { connectors: 1, revisions: coherence_model::system::Revisions::Stateless, ..COVERAGE_BOUNDS };

/// The outcome of coverage-directed generation.
pub struct Cover {
    /// The traces, in the order chosen.
    pub traces: Vec<Trace>,
    /// Every reachable abstract transition.
    pub reachable: BTreeSet<AbstractTransition>,
}

fn covered_by(model: &CoherenceModel, trace: &Trace, into: &mut BTreeSet<AbstractTransition>) {
    let mut before = trace.init;
    for (action, after) in &trace.steps {
        into.insert(abstract_transition(model, &before, *action, after));
        before = *after;
    }
}

/// The greedy cover of every reachable abstract transition of `recommended` within `bounds`.
pub fn cover(bounds: Bounds) -> Cover {
    let bounds = Bounds { symmetry: false, ..bounds };
    let model = CoherenceModel::new(RECOMMENDED, bounds);
    let mut first: BTreeMap<AbstractTransition, (u32, Action, State)> = BTreeMap::new();
    let searched = search(
        &model,
        Key::Whole,
        |_, _| {},
        |from, before, action, after| {
            first.entry(abstract_transition(&model, before, action, after)).or_insert((from, action, *after));
        },
    );
    let reachable: BTreeSet<AbstractTransition> = first.keys().copied().collect();
    // One candidate per transition: the shortest trace through it. Then greedy set cover: take the
    // candidate that covers the most still-uncovered transitions (ties: the earlier candidate).
    let candidates: Vec<(Trace, BTreeSet<AbstractTransition>)> = first
        .values()
        .map(|(from, action, after)| {
            let mut trace = searched.trace(*from);
            trace.steps.push((*action, *after));
            let mut set = BTreeSet::new();
            covered_by(&model, &trace, &mut set);
            (trace, set)
        })
        .collect();
    let mut covered = BTreeSet::new();
    let mut traces = Vec::new();
    let mut taken = vec![false; candidates.len()];
    while covered.len() < reachable.len() {
        let (best, gain) = candidates
            .iter()
            .enumerate()
            .filter(|(i, _)| !taken[*i])
            .map(|(i, (_, set))| (i, set.difference(&covered).count()))
            .fold((usize::MAX, 0), |acc, (i, gain)| if gain > acc.1 { (i, gain) } else { acc });
        assert!(gain > 0, "every reachable transition has a candidate through it");
        taken[best] = true;
        covered.extend(candidates[best].1.iter().copied());
        let mut trace = candidates[best].0.clone();
        // Go on from where the trace ends while something uncovered is a few steps away.
        while let Some(more) = nearest_uncovered(&model, trace.last(), &covered) {
            let mut before = *trace.last();
            for (action, after) in more {
                covered.insert(abstract_transition(&model, &before, action, &after));
                trace.steps.push((action, after));
                before = after;
            }
        }
        traces.push(trace);
    }
    assert_eq!(covered, reachable, "the greedy cover covers everything reachable");
    Cover { traces, reachable }
}

/// How far [`cover`] looks past the end of a trace for an uncovered transition.
pub const EXTENSION_DEPTH_MAX: usize = 3;

/// The shortest path (at most [`EXTENSION_DEPTH_MAX`] steps, first in action order) from `start`
/// whose last step is an uncovered abstract transition.
fn nearest_uncovered(
    model: &CoherenceModel,
    start: &State,
    covered: &BTreeSet<AbstractTransition>,
) -> Option<Vec<(Action, State)>> {
    let mut frontier: Vec<(State, Vec<(Action, State)>)> = vec![(*start, Vec::new())];
    let mut actions = Vec::new();
    for _ in 0..EXTENSION_DEPTH_MAX {
        let mut next = Vec::new();
        for (state, path) in &frontier {
            actions.clear();
            model.enabled_actions(state, &mut actions);
            for &action in &actions {
                let after = model.step(state, action).expect("enabled actions step");
                let mut extended = path.clone();
                extended.push((action, after));
                if !covered.contains(&abstract_transition(model, state, action, &after)) {
                    return Some(extended);
                }
                next.push((after, extended));
            }
        }
        frontier = next;
    }
    None
}

/// How many of `reachable` the traces of `fixtures` cover.
pub fn coverage_of(fixtures: &[crate::fixture::Fixture], reachable: &BTreeSet<AbstractTransition>) -> usize {
    transitions_of(fixtures).intersection(reachable).count()
}

/// The abstract transitions the traces of `fixtures` take, replaying each under `recommended` (a
/// step `recommended` does not enable ends that fixture's contribution).
pub fn transitions_of(fixtures: &[crate::fixture::Fixture]) -> BTreeSet<AbstractTransition> {
    let mut covered = BTreeSet::new();
    for fixture in fixtures {
        let model = CoherenceModel::new(RECOMMENDED, fixture.bounds);
        let Some(mut state) = fixture.initial_state(&model) else { continue };
        let mut enabled = Vec::new();
        for step in &fixture.steps {
            enabled.clear();
            model.enabled_actions(&state, &mut enabled);
            if !enabled.contains(&step.action) {
                break;
            }
            let after = model.step(&state, step.action).expect("enabled actions step");
            covered.insert(abstract_transition(&model, &state, step.action, &after));
            state = after;
        }
    }
    covered
}
