//! The exhaustive checker behind the verdict table.
//!
//! A breadth-first search over the [`CoherenceModel`] (a stateright [`Model`]) that visits every
//! reachable state within the bounds, evaluates every property in every state, and keeps, for
//! each property, the first discovery in breadth-first order: a shortest counterexample (or
//! witness), chosen deterministically. Stateright's own checkers explore the same states (a test
//! checks its depth-first checker's counts, with and without symmetry), but its breadth-first
//! checker records discoveries from racing threads, may overwrite one with a longer one, and
//! applies symmetry only depth-first; the verdict table needs shortest, reproducible paths, so the
//! search is done here.
//!
//! The search is level-synchronous and uses every core on one policy ([`search_with`]): its
//! numbering of states, and so every path and verdict, is that of a one-threaded breadth-first
//! search whatever the number of threads. The visited set holds 64-bit fingerprints
//! ([`crate::visited`]); the paths are a parent index and an action index per state, 8 bytes.
//! The frontier and the paths can be kept in files instead of memory ([`Store::Disk`]): then
//! the visited set alone grows in memory with the states.
//!
//! The checker keys its visited set on a state without the event of the step that led to it
//! ([`Key::WithoutEvent`], SPEC.md §4.3): the event is what a step showed, and no step reads it, so
//! two states that differ only in it have the same successors. The invariants judged at a step
//! ([`crate::invariants::Scope::of_a_step`]) are judged on every transition instead, where the
//! event is; the rest in every state. Verdicts and the lengths of counterexamples and witnesses
//! are those of the search keyed on whole states ([`Key::Whole`]), which a test checks for every
//! policy.

use crate::invariants::{INVARIANTS, Invariant, broken_constraints};
use crate::packed;
use crate::policy::HostPolicy;
use crate::spill::{SpillError, Store, Words};
use crate::state::State;
use crate::symmetry::canonical;
use crate::system::{Action, Bounds, CoherenceModel};
use crate::visited::Fingerprints;
use std::sync::atomic::{AtomicUsize, Ordering};
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
    /// Its 2026-07-28 servers were all of this kind (SPEC.md §7.4's server finding).
    pub server_kind: Option<crate::system::ServerKind>,
    /// Distinct states visited (after symmetry reduction, when on).
    pub unique_states: usize,
    /// Transitions taken, including those to states already visited.
    pub transitions: usize,
    /// The length of the longest shortest path to a state.
    pub depth_max: usize,
    /// Wall-clock time of the search.
    pub elapsed: Duration,
    /// The most bytes the search held at once in its visited set, paths and frontier, in memory.
    pub peak_bytes: usize,
    /// The most bytes its paths and frontier held at once in files ([`Store::Disk`]).
    pub peak_spilled_bytes: usize,
    /// One outcome per invariant, in ID order.
    pub invariants: Vec<InvariantOutcome>,
}

impl CheckReport {
    /// The model the report checked (without a mutant): its stories are told in that model's words.
    pub fn model(&self) -> CoherenceModel {
        CoherenceModel {
            faults: self.faults,
            agent_handshake: self.agent_handshake,
            server_kind: self.server_kind,
            ..CoherenceModel::new(self.policy, self.bounds)
        }
    }
}

/// The fingerprint of a state: a 64-bit hash of its packed form with fixed keys, the same on
/// every run.
pub fn fingerprint(state: &State) -> u64 {
    let mut words = Vec::with_capacity(packed::words(state.shape));
    packed::pack(state, &mut words);
    fingerprint_packed(&words)
}

/// The fingerprint of a state's packed words (from [`packed::pack`] or, for the checker's
/// representatives, [`crate::symmetry::canonical_packed`]).
pub fn fingerprint_packed(words: &[u64]) -> u64 {
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

impl Node {
    fn word(self) -> u64 {
        (u64::from(self.parent) << 32) | u64::from(self.choice)
    }

    fn of(word: u64) -> Node {
        Node { parent: (word >> 32) as u32, choice: word as u32 }
    }
}

const ROOT: u32 = u32::MAX;

/// The paths: node `id` is word `id`.
struct Paths(Words);

impl Paths {
    fn node(&self, id: u32) -> Node {
        let id = id as usize;
        Node::of(self.0.get(id..id + 1)[0])
    }
}

/// The result of a breadth-first search: what it visited, and the paths to every state.
pub struct Search {
    model: CoherenceModel,
    key: Key,
    nodes: Paths,
    /// Distinct states visited.
    pub unique_states: usize,
    /// Transitions taken, including those to states already visited.
    pub transitions: usize,
    /// The length of the longest shortest path to a state.
    pub depth_max: usize,
    /// The most bytes the search held at once in its visited set, paths and frontier (in use,
    /// measured after each merge, counting the visited set's growth), in memory.
    pub peak_bytes: usize,
    /// The most bytes its paths and frontier held at once in files ([`Store::Disk`]).
    pub peak_spilled_bytes: usize,
}

impl Search {
    /// A shortest path to the state the search numbered `id`, as a concrete trace.
    pub fn trace(&self, id: u32) -> Trace {
        concrete_trace(&self.model, self.key, &self.nodes, id)
    }

    /// A shortest path through a transition from the state numbered `from` to `next`, as a
    /// visitor saw it: the path to `from`, then the step that leads to a renaming of `next`, its
    /// event included.
    pub fn trace_through(&self, from: u32, next: &State) -> Trace {
        let mut trace = self.trace(from);
        let whole = |s: State| representative(&self.model, Key::Whole, &s);
        let step = step_to(&self.model, trace.last(), fingerprint(&whole(*next)), whole);
        trace.steps.push(step);
        trace
    }
}

/// What the visited set tells states apart by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Key {
    /// The state without the event of the step that led to it (SPEC.md §4.3): the checker's.
    #[default]
    WithoutEvent,
    /// The whole state, its event included: the unreduced search, for comparison, and for the
    /// searches whose state numbers name fixtures.
    Whole,
}

impl Key {
    /// `state` as this key sees it.
    fn of(self, state: &State) -> State {
        match self {
            Key::WithoutEvent => State { event: None, ..*state },
            Key::Whole => *state,
        }
    }
}

/// What a search shows as it goes: each distinct state once, with its number, and every
/// transition taken from it. A parallel search gives each thread its own visitor.
pub trait Visitor {
    /// The state numbered `id` (its representative, with symmetry on).
    fn state(&mut self, _id: u32, _state: &State) {}
    /// A transition from the state numbered `from`, before reduction.
    fn transition(&mut self, _from: u32, _state: &State, _action: Action, _next: &State) {}
}

struct Closures<F, G>(F, G);

impl<F: FnMut(u32, &State), G: FnMut(u32, &State, Action, &State)> Visitor for Closures<F, G> {
    fn state(&mut self, id: u32, state: &State) {
        (self.0)(id, state);
    }
    fn transition(&mut self, from: u32, state: &State, action: Action, next: &State) {
        (self.1)(from, state, action, next);
    }
}

/// Visits every reachable state of `model` breadth-first, in a fixed order, on this thread.
/// `on_state` sees each distinct state (its representative, with symmetry on, as `key` sees it)
/// once, with its number, in number order; `on_transition` sees every transition taken, from the
/// numbered state, before reduction, in the same order.
pub fn search(
    model: &CoherenceModel,
    key: Key,
    on_state: impl FnMut(u32, &State) + Send,
    on_transition: impl FnMut(u32, &State, Action, &State) + Send,
) -> Search {
    search_with(model, key, &mut [Closures(on_state, on_transition)])
}

/// States a thread takes from the frontier at a time.
const CHUNK: usize = 1024;
/// Chunks expanded between two merges into the visited set: the candidates of a round are held
/// in memory, so a round is a bounded share of a level.
const ROUND: usize = 64;
/// Fingerprints whose home slots are loaded together, so that their cache misses overlap.
const BATCH: usize = 32;

/// Expands the chunks of `round` on one thread per visitor and returns what each found, in chunk
/// order.
fn in_parallel<V: Visitor + Send>(
    round: std::ops::Range<usize>,
    visitors: &mut [V],
    expand: impl Fn(usize, &mut V) -> Expanded + Sync,
) -> Vec<Expanded> {
    let next = AtomicUsize::new(round.start);
    let mut done: Vec<(usize, Expanded)> = std::thread::scope(|scope| {
        // A round of fewer chunks than visitors needs no more threads than chunks.
        let workers: Vec<_> = visitors
            .iter_mut()
            .take(round.len())
            .map(|visitor| {
                let (next, expand, end) = (&next, &expand, round.end);
                scope.spawn(move || {
                    let mut mine = Vec::new();
                    loop {
                        let chunk = next.fetch_add(1, Ordering::Relaxed);
                        if chunk >= end {
                            break mine;
                        }
                        mine.push((chunk, expand(chunk, visitor)));
                    }
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().expect("a search thread panicked")).collect()
    });
    done.sort_unstable_by_key(|(chunk, _)| *chunk);
    done.into_iter().map(|(_, e)| e).collect()
}

/// Visits every reachable state of `model` breadth-first with one thread per visitor.
///
/// The search is level-synchronous: the threads expand one level's states, a chunk at a time,
/// and drop the successors already visited (the visited set is read-only while they do); then
/// the remaining successors are numbered in the order of their parent's number and the action's
/// index, the first of equal states kept. That is the order of a one-threaded breadth-first
/// search, so the numbers, the paths and everything derived from them are the same whatever the
/// number of visitors. Each visitor sees an ascending share of the states, as `key` sees them,
/// and every transition out of them, whole.
pub fn search_with<V: Visitor + Send>(model: &CoherenceModel, key: Key, visitors: &mut [V]) -> Search {
    search_stored(model, key, visitors, &Store::Memory).expect("a search in memory writes no file")
}

/// [`search_with`], keeping the frontier and the paths where `store` says; what it finds is the
/// same wherever they are kept. On disk, a write that fails (a full disk) stops it.
pub fn search_stored<V: Visitor + Send>(
    model: &CoherenceModel,
    key: Key,
    visitors: &mut [V],
    store: &Store,
) -> Result<Search, SpillError> {
    assert!(!visitors.is_empty(), "a search needs a visitor");
    let width = frontier_width(model);
    let mut seen = Fingerprints::default();
    let mut nodes = Paths(Words::new(store)?);
    // The frontier, one level at a time, in packed form: a level's states have consecutive ids.
    let mut level = Words::new(store)?;
    let mut buffer: Vec<u64> = Vec::with_capacity(width);
    for (i, init) in model.initial_states().into_iter().enumerate() {
        buffer.clear();
        pack_state(model, &init, &mut buffer);
        if seen.insert(fingerprint_packed(&buffer)) {
            nodes.0.extend_from_slice(&[Node { parent: ROOT, choice: i as u32 }.word()])?;
            level.extend_from_slice(&buffer)?;
        }
    }
    let mut transitions = 0usize;
    let mut depth = 0usize;
    let mut first_id = 0u32;
    let mut peak_bytes = 0usize;
    let mut peak_spilled_bytes = 0usize;
    while !level.is_empty() {
        level.flush()?;
        let states = level.len() / width;
        let chunks = states.div_ceil(CHUNK);
        let mut next_level = Words::new(store)?;
        for round in (0..chunks).step_by(ROUND) {
            let round = round..chunks.min(round + ROUND);
            let expand = |chunk: usize, visitor: &mut V| {
                let range = chunk * CHUNK..states.min((chunk + 1) * CHUNK);
                let words = level.get(range.start * width..range.end * width);
                expand_chunk(model, key, &seen, &words, first_id + range.start as u32, visitor)
            };
            let expanded: Vec<Expanded> = if let [visitor] = visitors {
                round.map(|chunk| expand(chunk, visitor)).collect()
            } else {
                in_parallel(round, visitors, expand)
            };
            for e in &expanded {
                transitions += e.transitions;
                for (batch, words) in e.candidates.chunks(BATCH).zip(e.words.chunks(BATCH * width)) {
                    seen.warm(batch.iter().map(|c| c.fingerprint));
                    for (candidate, words) in batch.iter().zip(words.chunks_exact(width)) {
                        if seen.insert(candidate.fingerprint) {
                            assert!(nodes.0.len() < ROOT as usize, "more states than a node index can name");
                            let node = Node { parent: candidate.parent, choice: candidate.choice };
                            nodes.0.extend_from_slice(&[node.word()])?;
                            next_level.extend_from_slice(words)?;
                        }
                    }
                }
            }
            // What the round held at its fullest, after its merge: the bytes in use (a vector's
            // unused capacity is address space the kernel has not backed).
            let held = seen.take_peak_bytes()
                + nodes.0.memory_bytes()
                + level.memory_bytes()
                + next_level.memory_bytes()
                + expanded.iter().map(Expanded::bytes).sum::<usize>();
            peak_bytes = peak_bytes.max(held);
            let spilled = nodes.0.disk_bytes() + level.disk_bytes() + next_level.disk_bytes();
            peak_spilled_bytes = peak_spilled_bytes.max(spilled);
        }
        first_id += states as u32;
        if !next_level.is_empty() {
            depth += 1;
        }
        level = next_level;
    }
    nodes.0.flush()?;
    let peak_spilled_bytes = peak_spilled_bytes.max(nodes.0.disk_bytes());
    Ok(Search {
        model: model.clone(),
        key,
        unique_states: nodes.0.len(),
        nodes,
        transitions,
        depth_max: depth,
        peak_bytes,
        peak_spilled_bytes,
    })
}

/// Words per state in the frontier.
fn frontier_width(model: &CoherenceModel) -> usize {
    packed::words(crate::state::Shape {
        connectors: model.bounds.connectors,
        sessions: model.bounds.sessions,
        contexts: model.bounds.contexts,
    })
}

fn pack_state(model: &CoherenceModel, state: &State, out: &mut Vec<u64>) {
    if model.bounds.symmetry { crate::symmetry::canonical_packed(state, out) } else { packed::pack(state, out) }
}

/// A successor not in the visited set when its level began.
struct Candidate {
    fingerprint: u64,
    parent: u32,
    choice: u32,
}

/// What expanding a chunk of a level found: the candidates, in order, with their packed forms.
struct Expanded {
    candidates: Vec<Candidate>,
    words: Vec<u64>,
    transitions: usize,
}

impl Expanded {
    fn bytes(&self) -> usize {
        self.candidates.len() * size_of::<Candidate>() + self.words.len() * size_of::<u64>()
    }
}

fn expand_chunk<V: Visitor>(
    model: &CoherenceModel,
    key: Key,
    seen: &Fingerprints,
    level: &[u64],
    first_id: u32,
    visitor: &mut V,
) -> Expanded {
    let width = frontier_width(model);
    let mut out = Expanded { candidates: Vec::new(), words: Vec::new(), transitions: 0 };
    let mut actions = Vec::new();
    // Successors wait here until a batch is full, then their home slots are loaded together.
    let mut pending: Vec<Candidate> = Vec::with_capacity(2 * BATCH);
    let mut pending_words: Vec<u64> = Vec::with_capacity(2 * BATCH * width);
    let filter = |pending: &mut Vec<Candidate>, pending_words: &mut Vec<u64>, out: &mut Expanded| {
        seen.warm(pending.iter().map(|c| c.fingerprint));
        for (candidate, words) in pending.drain(..).zip(pending_words.chunks_exact(width)) {
            if !seen.contains(candidate.fingerprint) {
                out.candidates.push(candidate);
                out.words.extend_from_slice(words);
            }
        }
        pending_words.clear();
    };
    for (k, words) in level.chunks_exact(width).enumerate() {
        let id = first_id + k as u32;
        let state = packed::unpack(words);
        visitor.state(id, &state);
        model.enabled_actions(&state, &mut actions);
        for (choice, action) in actions.drain(..).enumerate() {
            let Some(next) = model.step(&state, action) else { continue };
            out.transitions += 1;
            visitor.transition(id, &state, action, &next);
            let at = pending_words.len();
            pack_state(model, &key.of(&next), &mut pending_words);
            let fingerprint = fingerprint_packed(&pending_words[at..]);
            pending.push(Candidate { fingerprint, parent: id, choice: choice as u32 });
        }
        if pending.len() >= BATCH {
            filter(&mut pending, &mut pending_words, &mut out);
        }
    }
    filter(&mut pending, &mut pending_words, &mut out);
    out
}

/// Checks `policy` within `bounds`: every reachable state, every property.
pub fn check(policy: HostPolicy, bounds: Bounds) -> CheckReport {
    check_model(&CoherenceModel::new(policy, bounds))
}

/// Checks one model on this thread: every reachable state, every property.
pub fn check_model(model: &CoherenceModel) -> CheckReport {
    check_model_on(model, 1)
}

/// Where a search found something: in a state, or at a transition (with [`Key::WithoutEvent`],
/// the invariants judged at a step are judged there).
#[derive(Clone)]
enum Found {
    /// The state numbered so.
    State(u32),
    /// The transition from the state numbered `from` to `next`.
    Step { from: u32, next: Box<State> },
}

impl Found {
    /// Its place in search order: a state's transitions come after the state, in action order,
    /// and before the next state's; each share of a search keeps its first finding, so among
    /// findings of one invariant the least number is the first in that order.
    fn at(&self) -> u32 {
        match self {
            Found::State(id) | Found::Step { from: id, .. } => *id,
        }
    }

    fn trace(&self, search: &Search) -> Trace {
        match self {
            Found::State(id) => search.trace(*id),
            Found::Step { from, next } => search.trace_through(*from, next),
        }
    }
}

/// What one thread of a check found: for each invariant, the first state or transition (in search
/// order) of its share that breaks it (and whether its premise held there) and the first that
/// reaches its premise; and the first state, if any, that breaks a model fact.
///
/// Whether the non-vacuity report is sound is decided after the shares are joined, on the first
/// violation of all: a share's first need not be the search's, so deciding it per share would make
/// the answer depend on how the states were shared out.
struct Findings<'m> {
    model: &'m CoherenceModel,
    key: Key,
    violated: Vec<Option<(Found, bool)>>,
    reached: Vec<Option<Found>>,
    broken_fact: Option<(u32, &'static str)>,
}

impl<'m> Findings<'m> {
    fn new(model: &'m CoherenceModel, key: Key) -> Self {
        Self {
            model,
            key,
            violated: vec![None; INVARIANTS.len()],
            reached: vec![None; INVARIANTS.len()],
            broken_fact: None,
        }
    }

    /// The findings of two shares together: the first of each.
    fn join(mut self, other: Self) -> Self {
        for (mine, theirs) in self.violated.iter_mut().zip(other.violated) {
            *mine = mine.take().into_iter().chain(theirs).min_by_key(|(f, _)| f.at());
        }
        for (mine, theirs) in self.reached.iter_mut().zip(other.reached) {
            *mine = mine.take().into_iter().chain(theirs).min_by_key(Found::at);
        }
        self.broken_fact = self.broken_fact.into_iter().chain(other.broken_fact).min_by_key(|(id, _)| *id);
        self
    }

    /// The first place, in search order, where the non-vacuity report would be unsound (an
    /// invariant's first violation outside its premise, or a broken model fact), and why.
    fn unsound(&self) -> Option<String> {
        let premises = self.violated.iter().zip(INVARIANTS).filter_map(|(v, invariant)| match v {
            Some((found, false)) => {
                Some((found.at(), format!("{} is violated where its premise does not hold", invariant.id)))
            }
            _ => None,
        });
        let facts =
            self.broken_fact.map(|(id, fact)| (id, format!("a reachable state breaks the model fact \"{fact}\"")));
        // At one state, the invariants are looked at before the facts: `min_by_key` keeps the first.
        premises.chain(facts).min_by_key(|(id, _)| *id).map(|(_, message)| message)
    }

    /// Judges `invariant` (the `k`th) where `state` is, unless this share has found both already.
    fn judge(&mut self, k: usize, invariant: &Invariant, state: &State, found: impl Fn() -> Found) {
        let model = self.model;
        if self.violated[k].is_none()
            && let Some(focus) = invariant.violation(model, state)
        {
            self.violated[k] = Some((found(), invariant.premise_at(&focus)));
        }
        if self.reached[k].is_none() && invariant.premise_holds(model, state) {
            self.reached[k] = Some(found());
        }
    }

    /// Whether the invariant is judged on transitions rather than states.
    fn at_transitions(&self, invariant: &Invariant) -> bool {
        self.key == Key::WithoutEvent && invariant.scope.of_a_step()
    }
}

impl Visitor for Findings<'_> {
    // A thread sees its states in ascending number order, so the first it finds is its least.
    fn state(&mut self, id: u32, state: &State) {
        for (k, invariant) in INVARIANTS.iter().enumerate() {
            if !self.at_transitions(invariant) {
                self.judge(k, invariant, state, || Found::State(id));
            }
        }
        if self.broken_fact.is_none()
            && let Some(fact) = broken_constraints(self.model, state).first()
        {
            self.broken_fact = Some((id, fact));
        }
    }

    // Only a step that left an event can be judged by an invariant of a step.
    fn transition(&mut self, from: u32, _state: &State, _action: Action, next: &State) {
        if self.key == Key::Whole || next.event.is_none() {
            return;
        }
        for (k, invariant) in INVARIANTS.iter().enumerate() {
            if self.at_transitions(invariant) {
                self.judge(k, invariant, next, || Found::Step { from, next: Box::new(*next) });
            }
        }
    }
}

/// Checks one model on `threads` threads: every reachable state, every property. The report is
/// the same whatever the number of threads, but for the time taken.
pub fn check_model_on(model: &CoherenceModel, threads: usize) -> CheckReport {
    check_model_keyed(model, threads, Key::default())
}

/// [`check_model_on`] with the visited set keyed by `key`. The verdicts and the lengths of the
/// counterexamples and witnesses are the same whatever the key; the states counted are not.
pub fn check_model_keyed(model: &CoherenceModel, threads: usize, key: Key) -> CheckReport {
    check_model_stored(model, threads, key, &Store::Memory).expect("a search in memory writes no file")
}

/// [`check_model_keyed`], with the frontier and the paths kept where `store` says: the report is
/// the same wherever they are kept, but for the bytes and the time.
pub fn check_model_stored(
    model: &CoherenceModel,
    threads: usize,
    key: Key,
    store: &Store,
) -> Result<CheckReport, SpillError> {
    let (policy, bounds) = (model.policy, model.bounds);
    let start = Instant::now();
    let mut shares: Vec<Findings> = (0..threads.max(1)).map(|_| Findings::new(model, key)).collect();
    let searched = search_stored(model, key, &mut shares, store)?;
    let findings = shares.into_iter().reduce(Findings::join).expect("a search has at least one thread");
    let unsound = findings.unsound();
    let Findings { violated, reached, .. } = findings;
    let elapsed = start.elapsed();
    if let Some(unsound) = unsound {
        panic!(
            "{}: {unsound}: the non-vacuity report would not be sound (a bug in SPEC.md §6's premises)",
            policy.name
        );
    }
    let invariants = INVARIANTS
        .iter()
        .enumerate()
        .map(|(k, invariant)| InvariantOutcome {
            invariant,
            counterexample: violated[k].as_ref().map(|(found, _)| found.trace(&searched)),
            witness: reached[k].as_ref().map(|found| found.trace(&searched)),
        })
        .collect();
    Ok(CheckReport {
        policy,
        bounds,
        faults: model.faults,
        agent_handshake: model.agent_handshake,
        server_kind: model.server_kind,
        unique_states: searched.unique_states,
        transitions: searched.transitions,
        depth_max: searched.depth_max,
        elapsed,
        peak_bytes: searched.peak_bytes,
        peak_spilled_bytes: searched.peak_spilled_bytes,
        invariants,
    })
}

/// Rebuilds the path to node `id` as a trace of real steps from a real initial state.
///
/// The search stored the choices it made from representatives (states as `key` sees them); the
/// trace replays them from the initial state and, at each step, takes the first enabled action
/// whose successor has the recorded successor's representative. The result is a genuine
/// behaviour of the model, of the same length, ending in a state equivalent to the one found, so
/// it violates (or witnesses) the same property.
fn concrete_trace(model: &CoherenceModel, key: Key, nodes: &Paths, id: u32) -> Trace {
    let mut choices = Vec::new();
    let mut node = nodes.node(id);
    while node.parent != ROOT {
        choices.push(node.choice);
        node = nodes.node(node.parent);
    }
    choices.reverse();
    let inits = model.initial_states();
    let reduce = |s: State| representative(model, key, &s);
    let init = reduce(inits[node.choice as usize]);

    let mut representative = init;
    let mut steps = Vec::with_capacity(choices.len());
    let mut actions = Vec::new();
    for choice in choices {
        actions.clear();
        model.enabled_actions(&representative, &mut actions);
        let target =
            reduce(model.step(&representative, actions[choice as usize]).expect("recorded actions are enabled"));
        let concrete = steps.last().map_or(init, |(_, s)| *s);
        steps.push(step_to(model, &concrete, fingerprint(&target), reduce));
        representative = target;
    }
    Trace { init, steps }
}

/// `state` as a search of `model` keyed by `key` holds it: without its event or whole, then its
/// orbit's canonical member with symmetry on.
fn representative(model: &CoherenceModel, key: Key, state: &State) -> State {
    let state = key.of(state);
    if model.bounds.symmetry { canonical(&state) } else { state }
}

/// The first enabled action of `concrete` whose successor, reduced, has the fingerprint `target`,
/// with that successor.
fn step_to(model: &CoherenceModel, concrete: &State, target: u64, reduce: impl Fn(State) -> State) -> (Action, State) {
    let mut actions = Vec::new();
    model.enabled_actions(concrete, &mut actions);
    actions
        .into_iter()
        .find_map(|a| {
            let next = model.step(concrete, a)?;
            (fingerprint(&reduce(next)) == target).then_some((a, next))
        })
        .expect("an equivalent state has an equivalent successor")
}

/// Checks several policies on `threads` threads and returns the reports in the order given.
pub fn check_all(policies: &[HostPolicy], bounds: Bounds, threads: usize) -> Vec<CheckReport> {
    let models: Vec<CoherenceModel> = policies.iter().map(|&p| CoherenceModel::new(p, bounds)).collect();
    check_all_models(&models, threads)
}

/// How many models [`check_all_models`] checks at once: two keep the cores busy while one of them
/// merges a round on one thread; more would only multiply the threads.
const MODELS_AT_ONCE: usize = 2;

/// Checks several models, up to two at a time, each on `threads` threads, and returns the reports
/// in the order given. While two models are checked, their threads share the cores; when the last
/// one is left, its threads have every core to themselves. The reports are the same whatever the
/// number of threads, but for the times taken.
pub fn check_all_models(models: &[CoherenceModel], threads: usize) -> Vec<CheckReport> {
    check_all_models_keyed(models, threads, Key::default())
}

/// [`check_all_models`] with the visited set keyed by `key` ([`check_model_keyed`]).
pub fn check_all_models_keyed(models: &[CoherenceModel], threads: usize, key: Key) -> Vec<CheckReport> {
    check_all_models_stored(models, threads, key, &Store::Memory).expect("a search in memory writes no file")
}

/// [`check_all_models_keyed`], each search keeping its frontier and paths where `store` says;
/// the first model whose search could not write stops the checks.
pub fn check_all_models_stored(
    models: &[CoherenceModel],
    threads: usize,
    key: Key,
    store: &Store,
) -> Result<Vec<CheckReport>, SpillError> {
    let per_model = threads.max(1);
    let threads = threads.min(MODELS_AT_ONCE).clamp(1, models.len().max(1));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failed = std::sync::atomic::AtomicBool::new(false);
    let mut reports: Vec<Option<Result<CheckReport, SpillError>>> = models.iter().map(|_| None).collect();
    let slots = std::sync::Mutex::new(&mut reports);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                while !failed.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(model) = models.get(i) else { break };
                    let report = check_model_stored(model, per_model, key, store);
                    failed.fetch_or(report.is_err(), Ordering::Relaxed);
                    slots.lock().expect("no checker thread panics while holding the lock")[i] = Some(report);
                }
            });
        }
    });
    if failed.into_inner() {
        let first = reports.into_iter().flatten().find_map(Result::err);
        return Err(first.expect("a check that failed left its error"));
    }
    reports.into_iter().map(|r| r.expect("every policy was checked")).collect()
}
