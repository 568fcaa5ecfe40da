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

use crate::invariants::{INVARIANTS, Invariant};
use crate::policy::HostPolicy;
use crate::state::State;
use crate::symmetry::canonical;
use crate::system::{Action, Bounds, CoherenceModel};
use nohash_hasher::BuildNoHashHasher;
use std::collections::{HashSet, VecDeque};
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

/// The fingerprint of a state: a 64-bit hash with fixed keys, the same on every run.
pub fn fingerprint(state: &State) -> u64 {
    FINGERPRINT.hash_one(state)
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
    let reduce = |s: State| if bounds.symmetry { canonical(&s) } else { s };
    let mut seen: HashSet<u64, BuildNoHashHasher<u64>> = HashSet::default();
    let mut nodes: Vec<Node> = Vec::new();
    let mut queue: VecDeque<(State, u32, u32)> = VecDeque::new();
    for (i, init) in model.initial_states().into_iter().enumerate() {
        let init = reduce(init);
        if seen.insert(fingerprint(&init)) {
            nodes.push(Node { parent: ROOT, choice: i as u32 });
            queue.push_back((init, nodes.len() as u32 - 1, 0));
        }
    }
    let mut transitions = 0usize;
    let mut depth_max = 0u32;
    let mut actions = Vec::new();
    while let Some((state, id, depth)) = queue.pop_front() {
        depth_max = depth_max.max(depth);
        on_state(id, &state);
        model.enabled_actions(&state, &mut actions);
        for (choice, action) in actions.drain(..).enumerate() {
            let Some(next) = model.step(&state, action) else { continue };
            transitions += 1;
            on_transition(id, &state, action, &next);
            let next = reduce(next);
            if seen.insert(fingerprint(&next)) {
                assert!(nodes.len() < ROOT as usize, "more states than a node index can name");
                nodes.push(Node { parent: id, choice: choice as u32 });
                queue.push_back((next, nodes.len() as u32 - 1, depth + 1));
            }
        }
    }
    Search { model: model.clone(), nodes, unique_states: seen.len(), transitions, depth_max: depth_max as usize }
}

/// Checks `policy` within `bounds`: every reachable state, every property.
pub fn check(policy: HostPolicy, bounds: Bounds) -> CheckReport {
    let model = CoherenceModel::new(policy, bounds);
    let start = Instant::now();
    let mut violated: Vec<Option<u32>> = vec![None; INVARIANTS.len()];
    let mut reached: Vec<Option<u32>> = vec![None; INVARIANTS.len()];
    let on_state = |id: u32, state: &State| {
        for (k, invariant) in INVARIANTS.iter().enumerate() {
            if violated[k].is_none() && !(invariant.holds)(&model, state) {
                violated[k] = Some(id);
            }
            if reached[k].is_none() && (invariant.premise_holds)(&model, state) {
                reached[k] = Some(id);
            }
        }
    };
    let searched = search(&model, on_state, |_, _, _, _| {});
    let elapsed = start.elapsed();
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
    let threads = threads.clamp(1, policies.len().max(1));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut reports: Vec<Option<CheckReport>> = vec![None; policies.len()];
    let slots = std::sync::Mutex::new(&mut reports);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(policy) = policies.get(i) else { break };
                    let report = check(*policy, bounds);
                    slots.lock().expect("no checker thread panics while holding the lock")[i] = Some(report);
                }
            });
        }
    });
    reports.into_iter().map(|r| r.expect("every policy was checked")).collect()
}
