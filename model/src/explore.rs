//! The exhaustive checker behind the verdict table.
//!
//! A breadth-first search over the [`CoherenceModel`] (a stateright [`Model`]) that visits every
//! reachable state within the bounds, evaluates every property in every state, and keeps, for
//! each property, the first discovery in breadth-first order: a shortest counterexample (or
//! witness), chosen deterministically. Stateright's own checkers explore the same states (a test
//! checks its depth-first checker's counts, with and without symmetry), but its breadth-first
//! checker records discoveries from racing threads, may overwrite one with a longer one, and
//! applies symmetry only depth-first; the verdict table needs shortest, reproducible paths, so the
//! search is done here, single-threaded per policy. Policies are checked in parallel.

use crate::invariants::{INVARIANTS, Invariant, broken_constraints};
use crate::packed;
use crate::policy::HostPolicy;
use crate::state::State;
use crate::symmetry::canonical;
use crate::system::{Action, Bounds, CoherenceModel};
use nohash_hasher::BuildNoHashHasher;
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// A path through the model: an initial state and the steps taken from it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trace {
    /// Where it starts.
    pub init: State,
    /// Each action with the state it leads to.
    pub steps: Vec<(Action, State)>,
}

impl Trace {
    /// The number of actions.
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    /// Whether the trace has no actions.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// The last state.
    pub fn last(&self) -> &State {
        self.steps.last().map_or(&self.init, |(_, s)| s)
    }
}

/// What the checker found for one invariant.
#[derive(Clone, Debug)]
pub struct InvariantOutcome {
    /// The invariant.
    pub invariant: &'static Invariant,
    /// A shortest counterexample, if the invariant is violated.
    pub counterexample: Option<Trace>,
    /// A shortest witness that the invariant's premise is reachable, if it is.
    pub witness: Option<Trace>,
}

/// The result of checking one policy within one set of bounds.
#[derive(Clone, Debug)]
pub struct CheckReport {
    /// The policy.
    pub policy: HostPolicy,
    /// The bounds.
    pub bounds: Bounds,
    /// The fault kinds the model admitted.
    pub faults: crate::system::Faults,
    /// The model admitted the agent's in-turn handshake (`AgentCompleteAuthentication`).
    pub agent_handshake: bool,
    /// Distinct states visited (after symmetry reduction, when on).
    pub unique_states: usize,
    /// Transitions taken, including those to states already visited.
    pub transitions: usize,
    /// The length of the longest shortest path to a state.
    pub depth_max: usize,
    /// Wall-clock time of the search.
    pub elapsed: Duration,
    /// One outcome per invariant, in ID order.
    pub invariants: Vec<InvariantOutcome>,
}

/// The fingerprint of a state: a 64-bit hash of its packed form with fixed keys, the same on
/// every run.
pub fn fingerprint(state: &State) -> u64 {
    let mut words = Vec::with_capacity(packed::words(state.shape));
    packed::pack(state, &mut words);
    fingerprint_packed(&words)
}

fn fingerprint_packed(words: &[u64]) -> u64 {
    FINGERPRINT.hash_one(words)
}

static FINGERPRINT: ahash::RandomState = ahash::RandomState::with_seeds(
    0x6d63_702d_636f_6865,
    0x7265_6e63_6521_0001,
    0x7370_6563_2d76_3031,
    0x6578_706c_6f72_6521,
);

#[derive(Clone, Copy)]
struct Node {
    parent: u32,
    /// The index of the action taken from the parent (in enabled-action order), or of the
    /// initial state for a root.
    choice: u32,
}

const ROOT: u32 = u32::MAX;

/// The result of a breadth-first search: what it visited, and the paths to every state.
pub struct Search {
    model: CoherenceModel,
    nodes: Vec<Node>,
    /// Distinct states visited.
    pub unique_states: usize,
    /// Transitions taken, including those to states already visited.
    pub transitions: usize,
    /// The length of the longest shortest path to a state.
    pub depth_max: usize,
}

impl Search {
    /// A shortest path to the state the search numbered `id`, as a concrete trace.
    pub fn trace(&self, id: u32) -> Trace {
        concrete_trace(&self.model, &self.nodes, id)
    }
}

/// Visits every reachable state of `model` breadth-first, in a fixed order. `on_state` sees each
/// distinct state (its representative, with symmetry on) once, with its number; `on_transition`
/// sees every transition taken, from the numbered state, before reduction.
pub fn search(
    model: &CoherenceModel,
    mut on_state: impl FnMut(u32, &State),
    mut on_transition: impl FnMut(u32, &State, Action, &State),
) -> Search {
    let bounds = model.bounds;
    let mut seen: HashSet<u64, BuildNoHashHasher<u64>> = HashSet::default();
    let mut nodes: Vec<Node> = Vec::new();
    // The frontier, one level at a time, in packed form: a level's states have consecutive ids.
    let width = packed::words(crate::state::Shape { connectors: bounds.connectors, sessions: bounds.sessions });
    let mut level: Vec<u64> = Vec::new();
    let mut buffer: Vec<u64> = Vec::with_capacity(width);
    let pack = |s: &State, out: &mut Vec<u64>| {
        if bounds.symmetry { crate::symmetry::canonical_packed(s, out) } else { packed::pack(s, out) }
    };
    for (i, init) in model.initial_states().into_iter().enumerate() {
        buffer.clear();
        pack(&init, &mut buffer);
        if seen.insert(fingerprint_packed(&buffer)) {
            nodes.push(Node { parent: ROOT, choice: i as u32 });
            level.extend_from_slice(&buffer);
        }
    }
    let mut transitions = 0usize;
    let mut depth = 0usize;
    let mut first_id = 0u32;
    let mut actions = Vec::new();
    while !level.is_empty() {
        let mut next_level = Vec::new();
        for (k, words) in level.chunks_exact(width).enumerate() {
            let id = first_id + k as u32;
            let state = packed::unpack(words);
            on_state(id, &state);
            model.enabled_actions(&state, &mut actions);
            for (choice, action) in actions.drain(..).enumerate() {
                let Some(next) = model.step(&state, action) else { continue };
                transitions += 1;
                on_transition(id, &state, action, &next);
                buffer.clear();
                pack(&next, &mut buffer);
                if seen.insert(fingerprint_packed(&buffer)) {
                    assert!(nodes.len() < ROOT as usize, "more states than a node index can name");
                    nodes.push(Node { parent: id, choice: choice as u32 });
                    next_level.extend_from_slice(&buffer);
                }
            }
        }
        first_id += (level.len() / width) as u32;
        if !next_level.is_empty() {
            depth += 1;
        }
        level = next_level;
    }
    Search { model: model.clone(), nodes, unique_states: seen.len(), transitions, depth_max: depth }
}

/// Checks `policy` within `bounds`: every reachable state, every property.
pub fn check(policy: HostPolicy, bounds: Bounds) -> CheckReport {
    check_model(&CoherenceModel::new(policy, bounds))
}

/// Checks one model: every reachable state, every property.
pub fn check_model(model: &CoherenceModel) -> CheckReport {
    let (policy, bounds) = (model.policy, model.bounds);
    let start = Instant::now();
    let mut violated: Vec<Option<u32>> = vec![None; INVARIANTS.len()];
    let mut reached: Vec<Option<u32>> = vec![None; INVARIANTS.len()];
    let mut unsound: Option<String> = None;
    let on_state = |id: u32, state: &State| {
        for (k, invariant) in INVARIANTS.iter().enumerate() {
            if violated[k].is_none()
                && let Some(focus) = invariant.violation(model, state)
            {
                violated[k] = Some(id);
                if !invariant.premise_at(&focus) && unsound.is_none() {
                    unsound = Some(format!("{} is violated where its premise does not hold", invariant.id));
                }
            }
            if reached[k].is_none() && invariant.premise_holds(model, state) {
                reached[k] = Some(id);
            }
        }
        if unsound.is_none()
            && let Some(fact) = broken_constraints(model, state).first()
        {
            unsound = Some(format!("a reachable state breaks the model fact \"{fact}\""));
        }
    };
    let searched = search(model, on_state, |_, _, _, _| {});
    let elapsed = start.elapsed();
    if let Some(unsound) = unsound {
        panic!(
            "{}: {unsound}: the non-vacuity report would not be sound (a bug in SPEC.md §6's premises)",
            policy.name
        );
    }
    let trace = |id: Option<u32>| id.map(|id| searched.trace(id));
    let invariants = INVARIANTS
        .iter()
        .enumerate()
        .map(|(k, invariant)| InvariantOutcome {
            invariant,
            counterexample: trace(violated[k]),
            witness: trace(reached[k]),
        })
        .collect();
    CheckReport {
        policy,
        bounds,
        faults: model.faults,
        agent_handshake: model.agent_handshake,
        unique_states: searched.unique_states,
        transitions: searched.transitions,
        depth_max: searched.depth_max,
        elapsed,
        invariants,
    }
}

/// Rebuilds the path to node `id` as a trace of real steps from a real initial state.
///
/// The search stored the choices it made from representatives; the trace replays them from the
/// initial state and, at each step, takes the first enabled action whose successor has the
/// recorded successor's representative. The result is a genuine behaviour of the model, of the
/// same length, ending in a state equivalent to the one found, so it violates (or witnesses)
/// the same property.
fn concrete_trace(model: &CoherenceModel, nodes: &[Node], id: u32) -> Trace {
    let mut choices = Vec::new();
    let mut at = id;
    while nodes[at as usize].parent != ROOT {
        choices.push(nodes[at as usize].choice);
        at = nodes[at as usize].parent;
    }
    choices.reverse();
    let inits = model.initial_states();
    let reduce = |s: State| if model.bounds.symmetry { canonical(&s) } else { s };
    let init = reduce(inits[nodes[at as usize].choice as usize]);

    let mut representative = init;
    let mut concrete = init;
    let mut steps = Vec::with_capacity(choices.len());
    let mut actions = Vec::new();
    for choice in choices {
        actions.clear();
        model.enabled_actions(&representative, &mut actions);
        let action = actions[choice as usize];
        actions.clear();
        let target = reduce(model.step(&representative, action).expect("recorded actions are enabled"));
        let target_fingerprint = fingerprint(&target);
        model.enabled_actions(&concrete, &mut actions);
        let (action, next) = actions
            .drain(..)
            .find_map(|a| {
                let next = model.step(&concrete, a)?;
                (fingerprint(&reduce(next)) == target_fingerprint).then_some((a, next))
            })
            .expect("an equivalent state has an equivalent successor");
        steps.push((action, next));
        representative = target;
        concrete = next;
    }
    Trace { init, steps }
}

/// Checks several policies, two at a time, and returns the reports in the order given.
pub fn check_all(policies: &[HostPolicy], bounds: Bounds, threads: usize) -> Vec<CheckReport> {
    let models: Vec<CoherenceModel> = policies.iter().map(|&p| CoherenceModel::new(p, bounds)).collect();
    check_all_models(&models, threads)
}

/// Checks several models, `threads` at a time, and returns the reports in the order given.
pub fn check_all_models(models: &[CoherenceModel], threads: usize) -> Vec<CheckReport> {
    let threads = threads.clamp(1, models.len().max(1));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut reports: Vec<Option<CheckReport>> = vec![None; models.len()];
    let slots = std::sync::Mutex::new(&mut reports);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(model) = models.get(i) else { break };
                    let report = check_model(model);
                    slots.lock().expect("no checker thread panics while holding the lock")[i] = Some(report);
                }
            });
        }
    });
    reports.into_iter().map(|r| r.expect("every policy was checked")).collect()
}
