//! Fixture generation (SPEC.md §11.2). Every fixture is a behaviour of the model; none is written by
//! hand.
//!
//! - **Counterexample-derived**: one fixture per violation the checker finds in a policy other
//!   than `recommended`. The checker's counterexamples are shortest (breadth-first), so they are
//!   already minimal in length: no step can be dropped without losing the violation at that depth.
//! - **Seeded random walks**, swarm style: each walk draws its own bounds from its seed, then walks
//!   the `recommended` model choosing uniformly among enabled actions.

use crate::engine::{Origin, replay};
use crate::fixture::{
    ConnectorInit, Exercises, FORMAT, FORMAT_VERSION, Fixture, Provenance, ReferenceView, SPEC_VERSION, Step,
};
use crate::host::ReferenceHost;
use coherence_model::explore::Trace;
use coherence_model::invariants::INVARIANTS;
use coherence_model::story::step_words;
use coherence_model::{
    Action, BROKEN_POLICIES, Bounds, CheckReport, CoherenceModel, HostPolicy, Mutant, POLICIES, RECOMMENDED, check_all,
};
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use std::collections::BTreeSet;

/// A share of a generation: shard `index` of `count` (from 0). Work item `k` belongs to shard
/// `k % count`, so shards are disjoint, cover everything, and do not depend on each other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// Which shard, from 0.
    pub index: u32,
    /// How many.
    pub count: u32,
}

impl Shard {
    /// The whole generation.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// Parses `i/n`, with `1 <= i <= n` (shards are numbered from 1 on the command line).
    pub fn parse(text: &str) -> Result<Shard, String> {
        let (i, n) = text.split_once('/').ok_or_else(|| format!("shard `{text}` is not of the form i/n"))?;
        let i: u32 = i.parse().map_err(|_| format!("shard index `{i}` is not a number"))?;
        let n: u32 = n.parse().map_err(|_| format!("shard count `{n}` is not a number"))?;
        if n == 0 || i == 0 || i > n {
            return Err(format!("shard {i}/{n} does not exist: use i/n with 1 <= i <= n"));
        }
        Ok(Shard { index: i - 1, count: n })
    }

    /// Whether work item `k` is this shard's.
    pub fn owns(&self, k: usize) -> bool {
        k % self.count as usize == self.index as usize
    }
}

/// Builds a fixture from a model trace, with `recommended`'s view of every step.
pub fn fixture_from_trace(
    id: String,
    description: String,
    provenance: Provenance,
    policy: HostPolicy,
    trace: &Trace,
) -> Fixture {
    let model = CoherenceModel::new(policy, provenance.bounds);
    let mut fixture = unannotated(id, description, provenance, &model, trace);
    annotate(&mut fixture);
    fixture
}

/// A fixture from a trace of `model` (whose bounds are the provenance's), without the reference
/// views and what it exercises.
fn unannotated(
    id: String,
    description: String,
    provenance: Provenance,
    model: &CoherenceModel,
    trace: &Trace,
) -> Fixture {
    let bounds = provenance.bounds;
    let connectors = bounds.connector_ids().map(|c| ConnectorInit::of(&trace.init, c)).collect();
    let mut before = trace.init;
    let steps: Vec<Step> = trace
        .steps
        .iter()
        .map(|(action, after)| {
            let story = step_words(model, &before, *action, after);
            before = *after;
            Step { action: *action, story, reference: None }
        })
        .collect();
    Fixture {
        format: FORMAT.to_owned(),
        version: FORMAT_VERSION,
        id,
        description,
        provenance,
        bounds,
        deploys: trace.steps.iter().any(|(a, _)| matches!(a, Action::DeployTools { .. })),
        connectors,
        steps,
        exercises: Exercises::default(),
    }
}

/// Fills in the reference views (what `recommended` shows) and what the fixture exercises.
fn annotate(fixture: &mut Fixture) {
    let mut host = ReferenceHost::new(RECOMMENDED);
    let run = replay(fixture, &mut host);
    let mut reached: BTreeSet<&str> = BTreeSet::new();
    let mut views = run.views.iter();
    for executed in &run.executed {
        let view = executed.input.as_ref().and_then(|_| views.next());
        for invariant in INVARIANTS {
            if invariant.premise_holds(&run.model, &executed.state) {
                reached.insert(invariant.id);
            }
        }
        if executed.origin == Origin::Drained {
            continue;
        }
        let step = &mut fixture.steps[executed.fixture_step];
        let session = executed.action.session();
        step.reference = match (view, session) {
            (Some(views), Some(s)) => {
                let v = &views[s.index()];
                let answer = match executed.state.event {
                    Some(coherence_model::state::Event::Answered(m)) => Some(m.answer),
                    _ => None,
                };
                Some(ReferenceView { catalogue: v.catalogue.clone(), notices: v.notices.clone(), answer })
            }
            _ => None,
        };
    }
    if let Some(invariant) = fixture.provenance.invariant.as_deref().and_then(coherence_model::invariant) {
        reached.insert(invariant.id);
    }
    fixture.exercises.invariants = reached.into_iter().map(str::to_owned).collect();
    let actions: BTreeSet<&str> = fixture.steps.iter().map(|s| s.action.name()).collect();
    fixture.exercises.actions = actions.into_iter().map(str::to_owned).collect();
}

/// Bounds at which the counterexample strategy also looks, for defects that need more faults than
/// the default bounds allow: one connector, two faults, no commands (SPEC.md §11.2).
pub const DEEP_FAULT_BOUNDS: Bounds = Bounds { connectors: 1, faults: 2, commands: 0, ..Bounds::DEFAULT };

/// One fixture per counterexample in `reports`, skipping `recommended` (it has none), and skipping
/// a (policy, invariant) pair an earlier report already has.
pub fn counterexamples(reports: &[CheckReport]) -> Vec<Fixture> {
    let mut fixtures = Vec::new();
    let mut seen = BTreeSet::new();
    for report in reports {
        for outcome in &report.invariants {
            let Some(trace) = &outcome.counterexample else { continue };
            if !seen.insert((report.policy.name, outcome.invariant.id)) {
                continue;
            }
            let deep = report.bounds != Bounds::DEFAULT;
            let provenance = Provenance {
                strategy: "counterexample".to_owned(),
                policy: report.policy.name.to_owned(),
                mutant: None,
                invariant: Some(outcome.invariant.id.to_owned()),
                seed: None,
                bounds: report.bounds,
                spec_version: SPEC_VERSION,
            };
            let id = if deep {
                format!("counterexample/{}/{}-deep", report.policy.name, outcome.invariant.id)
            } else {
                format!("counterexample/{}/{}", report.policy.name, outcome.invariant.id)
            };
            fixtures.push(fixture_from_trace(
                id,
                format!(
                    "{} breaks {} ({}) in {} steps; a host with that defect fails here.",
                    report.policy.name,
                    outcome.invariant.id,
                    outcome.invariant.name,
                    trace.len()
                ),
                provenance,
                report.policy,
                trace,
            ));
        }
    }
    fixtures
}

/// The bounds a walk draws from its seed.
fn swarm_bounds(rng: &mut ChaCha8Rng) -> Bounds {
    let mut pick = |lo: u32, hi: u32| (lo + rng.next_u32() % (hi - lo + 1)) as u8;
    Bounds {
        connectors: pick(1, 3),
        sessions: pick(1, 2),
        turns: pick(1, 4),
        auth_changes: pick(0, 3),
        faults: pick(0, 3),
        commands: pick(0, 2),
        symmetry: false,
        // One walk in four has servers that meet SPEC.md §7.2's requirements: the orderings they
        // promise (a change the agent caused is notified before the call's result) appear
        // nowhere else.
        servers: if pick(0, 3) == 0 {
            coherence_model::system::Servers::Reliable
        } else {
            coherence_model::system::Servers::Any
        },
        // Fixtures speak the 2025 revisions (the adapter protocol has no listen stream or TTL).
        revisions: coherence_model::system::Revisions::Handshake,
        contexts: coherence_model::state::Contexts::One,
    }
}

/// The length of every walk, unless the model runs out of enabled actions first.
pub const WALK_STEPS_MAX: usize = 30;

/// A seeded random walk of the `recommended` model, as a trace, within bounds drawn from the seed.
pub fn walk(seed: u64) -> (Bounds, Trace) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let bounds = swarm_bounds(&mut rng);
    (bounds, walk_within(bounds, &mut rng))
}

/// A random walk of the `recommended` model within `bounds`, of at most [`WALK_STEPS_MAX`] steps.
pub fn walk_within(bounds: Bounds, rng: &mut ChaCha8Rng) -> Trace {
    walk_model(&CoherenceModel::new(RECOMMENDED, bounds), rng, |_| false)
}

/// A random walk of `model`, of at most [`WALK_STEPS_MAX`] steps, ending early at a state where
/// `stop` holds.
fn walk_model(model: &CoherenceModel, rng: &mut ChaCha8Rng, stop: impl Fn(&coherence_model::State) -> bool) -> Trace {
    let inits = model.initial_states();
    let init = inits[rng.next_u32() as usize % inits.len()];
    let mut state = init;
    let mut steps = Vec::new();
    let mut actions = Vec::new();
    for _ in 0..WALK_STEPS_MAX {
        actions.clear();
        model.enabled_actions(&state, &mut actions);
        if actions.is_empty() {
            break;
        }
        let action = actions[rng.next_u32() as usize % actions.len()];
        state = model.step(&state, action).expect("enabled actions step");
        steps.push((action, state));
        if stop(&state) {
            break;
        }
    }
    Trace { init, steps }
}

/// The seed of walk `k` of a generation seeded with `seed`.
pub fn walk_seed(seed: u64, k: u64) -> u64 {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(k);
    rng.next_u64()
}

/// `count` seeded random walks as fixtures.
pub fn random_walks(seed: u64, count: usize, shard: Shard) -> Vec<Fixture> {
    (0..count)
        .filter(|k| shard.owns(*k))
        .map(|k| {
            let walk_seed = walk_seed(seed, k as u64);
            let (bounds, trace) = walk(walk_seed);
            let provenance = Provenance {
                strategy: "random-walk".to_owned(),
                policy: RECOMMENDED.name.to_owned(),
                mutant: None,
                invariant: None,
                seed: Some(walk_seed),
                bounds,
                spec_version: SPEC_VERSION,
            };
            fixture_from_trace(
                format!("walk/{seed}/{k:04}"),
                format!("Random walk {k} of seed {seed}: {} steps of the recommended model.", trace.len()),
                provenance,
                RECOMMENDED,
                &trace,
            )
        })
        .collect()
}

/// Every policy but `recommended`: the ones whose counterexamples become fixtures.
pub fn mutant_policies() -> Vec<HostPolicy> {
    POLICIES.iter().chain(BROKEN_POLICIES).filter(|p| p.name != RECOMMENDED.name).copied().collect()
}

/// The checker's reports the counterexample strategy draws from: every mutant policy at the
/// default bounds, then at [`DEEP_FAULT_BOUNDS`].
pub fn counterexample_reports(threads: usize) -> Vec<CheckReport> {
    counterexample_reports_of(&mutant_policies(), threads)
}

/// The checker's reports of `policies` at the default bounds, then at [`DEEP_FAULT_BOUNDS`].
pub fn counterexample_reports_of(policies: &[HostPolicy], threads: usize) -> Vec<CheckReport> {
    let mut reports = check_all(policies, Bounds::DEFAULT, threads);
    reports.extend(check_all(policies, DEEP_FAULT_BOUNDS, threads));
    reports
}

/// Coverage-directed fixtures: the traces of a [`crate::coverage::cover`] made at `bounds`.
///
/// Their ids are `coverage/NNNN` at the handshake revisions, `coverage-2026/NNNN` where the
/// servers speak MCP 2026-07-28.
pub fn coverage_fixtures(cover: &crate::coverage::Cover, bounds: Bounds, shard: Shard) -> Vec<Fixture> {
    let stateless = bounds.revisions != coherence_model::system::Revisions::Handshake;
    let (prefix, servers) = if stateless {
        ("coverage-2026", format!(", with {} connector(s) whose servers speak MCP 2026-07-28", bounds.connectors))
    } else {
        ("coverage", String::new())
    };
    cover
        .traces
        .iter()
        .enumerate()
        .filter(|(k, _)| shard.owns(*k))
        .map(|(k, trace)| {
            let provenance = Provenance {
                strategy: "coverage".to_owned(),
                policy: RECOMMENDED.name.to_owned(),
                mutant: None,
                invariant: None,
                seed: None,
                bounds: Bounds { symmetry: false, ..bounds },
                spec_version: SPEC_VERSION,
            };
            fixture_from_trace(
                format!("{prefix}/{k:04}"),
                format!(
                    "Trace {k} of {} that together cover all {} reachable abstract transitions of the recommended model{servers}.",
                    cover.traces.len(),
                    cover.reachable.len()
                ),
                provenance,
                RECOMMENDED,
                trace,
            )
        })
        .collect()
}

/// The most walks the mutant strategy tries for one mutant before it searches.
pub const MUTANT_WALKS_MAX: usize = 500;

/// The most violating states the mutant strategy's breadth-first search collects per set of bounds.
pub const MUTANT_SEARCH_STATES_MAX: usize = 64;

/// How the mutant strategy did for one mutant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MutantKills {
    /// The mutant.
    pub mutant: Mutant,
    /// Fixtures of the rest of the corpus that kill it.
    pub by_base: usize,
    /// Fixtures the strategy added for it (each kills it).
    pub added: usize,
    /// Walks tried.
    pub walks: usize,
}

impl MutantKills {
    /// Fixtures of the whole corpus that kill the mutant, at least (an added fixture may kill
    /// other mutants too; those kills are not counted here).
    pub fn total(&self) -> usize {
        self.by_base + self.added
    }
}

/// Whether a replay through `recommended` with `mutant` planted fails.
pub fn kills_mutant(fixture: &Fixture, mutant: Mutant) -> bool {
    let mut host = ReferenceHost::mutated(RECOMMENDED, Some(mutant));
    !matches!(replay(fixture, &mut host).verdict, crate::engine::Verdict::Pass)
}

/// The fixtures that kill one mutant, in the order the mutant strategy finds them, up to the most
/// it could take: they do not depend on the rest of the corpus, which only decides how many of
/// them are taken ([`Candidates::select`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidates {
    /// The mutant.
    pub mutant: Mutant,
    /// The fixtures, each with the walk (from 0) that found it, or `None` when the search did.
    pub found: Vec<(Option<usize>, Fixture)>,
}

impl Candidates {
    /// The mutant strategy's fixtures for the mutant when `by_base` fixtures of the rest of the
    /// corpus kill it and `kills` are wanted: the first `kills - by_base` candidates. The walks
    /// tried are those the strategy needed to find them: none when the base is enough, up to the
    /// walk that found the last one taken, or all [`MUTANT_WALKS_MAX`] when it had to search.
    pub fn select(&self, by_base: usize, kills: usize) -> (Vec<Fixture>, MutantKills) {
        let need = kills.saturating_sub(by_base);
        let taken = &self.found[..need.min(self.found.len())];
        let walks = match taken.last() {
            None if need == 0 => 0,
            Some((Some(j), _)) if taken.len() == need => j + 1,
            _ => MUTANT_WALKS_MAX,
        };
        let fixtures: Vec<Fixture> = taken.iter().map(|(_, f)| f.clone()).collect();
        (fixtures, MutantKills { mutant: self.mutant, by_base, added: taken.len(), walks })
    }
}

/// Mutation-guided fixtures (SPEC.md §11.4) for the mutant numbered `k` in [`Mutant::all`]:
/// seeded random walks of `recommended` with the mutant planted, each ended at its first
/// violation of an invariant and kept when the runner fails the mutant on it, until `kills`
/// fixtures kill the mutant or [`MUTANT_WALKS_MAX`] walks were tried; then, if still short, the
/// shortest paths to the first violating states a breadth-first search of the mutant finds at
/// its classifying bounds ([`Mutant::classifying_bounds`]), kept the same way. They depend only on
/// `seed`, `k` and the mutant: the rest of the corpus decides how many are taken.
pub fn mutant_candidates(seed: u64, kills: usize, k: usize, mutant: Mutant) -> Candidates {
    let mut kept = Kept { mutant, found: Vec::new(), seen: BTreeSet::new() };
    let mut walks = 0;
    while kept.found.len() < kills && walks < MUTANT_WALKS_MAX {
        let j = walks;
        walks += 1;
        // Streams apart from the random-walk strategy's (which uses k < 2^20).
        let walk_seed = walk_seed(seed, 1 << 40 | (k as u64) << 20 | j as u64);
        let mut rng = ChaCha8Rng::seed_from_u64(walk_seed);
        let bounds = swarm_bounds(&mut rng);
        let model = CoherenceModel { mutant: Some(mutant), ..CoherenceModel::new(RECOMMENDED, bounds) };
        let trace = walk_model(&model, &mut rng, |state| broken(&model, state).is_some());
        kept.offer(Some(j), format!("mutant/{mutant}/{j:04}"), " of this walk", Some(walk_seed), &model, &trace);
    }
    for (b, &bounds) in mutant.classifying_bounds().iter().enumerate() {
        if kept.found.len() >= kills {
            break;
        }
        let model = CoherenceModel { mutant: Some(mutant), ..CoherenceModel::new(RECOMMENDED, bounds) };
        let mut shares = [Violating { model: &model, ids: Vec::new() }];
        let searched = coherence_model::search_with(&model, coherence_model::Key::Whole, &mut shares);
        for id in &shares[0].ids {
            if kept.found.len() >= kills {
                break;
            }
            let name = format!("mutant/{mutant}/search-{}-{id}", b + 1);
            kept.offer(None, name, ", found by breadth-first search", None, &model, &searched.trace(*id));
        }
    }
    Candidates { mutant, found: kept.found }
}

/// The mutant strategy over every host mutant, on `threads` threads: for each, the candidates it
/// needs beyond the fixtures of `base` that kill it.
pub fn mutant_fixtures(seed: u64, kills: usize, base: &[Fixture], threads: usize) -> (Vec<Fixture>, Vec<MutantKills>) {
    let mutants: Vec<(usize, Mutant)> = Mutant::all().into_iter().enumerate().collect();
    let done = crate::mutants::par_map(&mutants, threads, |&(k, mutant)| {
        let by_base = base.iter().filter(|f| kills_mutant(f, mutant)).count();
        mutant_candidates(seed, kills.saturating_sub(by_base), k, mutant).select(by_base, kills)
    });
    let mut fixtures = Vec::new();
    let mut found = Vec::new();
    for (f, kills) in done {
        fixtures.extend(f);
        found.push(kills);
    }
    (fixtures, found)
}

/// The first invariant `state` breaks, if any.
fn broken(model: &CoherenceModel, state: &coherence_model::State) -> Option<&'static coherence_model::Invariant> {
    INVARIANTS.iter().find(|i| i.violation(model, state).is_some())
}

/// The fixtures kept for one mutant, and the traces already offered.
struct Kept {
    mutant: Mutant,
    found: Vec<(Option<usize>, Fixture)>,
    seen: BTreeSet<(u8, u8, coherence_model::State, Vec<coherence_model::Action>)>,
}

impl Kept {
    /// Keeps `trace` of `model` (the mutant's) as fixture `id` if it ends where an invariant
    /// breaks, was not offered before, and the runner fails the mutant on it.
    fn offer(
        &mut self,
        walk: Option<usize>,
        id: String,
        how: &str,
        seed: Option<u64>,
        model: &CoherenceModel,
        trace: &Trace,
    ) {
        let last = trace.steps.last().map_or(&trace.init, |(_, s)| s);
        let Some(invariant) = broken(model, last) else { return };
        let bounds = model.bounds;
        let actions = trace.steps.iter().map(|(a, _)| *a).collect();
        if !self.seen.insert((bounds.connectors, bounds.sessions, trace.init, actions)) {
            return;
        }
        let mutant = self.mutant;
        let provenance = Provenance {
            strategy: "mutant".to_owned(),
            policy: RECOMMENDED.name.to_owned(),
            mutant: Some(mutant.name()),
            invariant: Some(invariant.id.to_owned()),
            seed,
            bounds,
            spec_version: SPEC_VERSION,
        };
        let description = format!(
            "Host mutant {mutant} ({}) breaks {} ({}) in {} steps{how}; a host with that defect fails here.",
            mutant.describe(),
            invariant.id,
            invariant.name,
            trace.len()
        );
        let mut fixture = unannotated(id, description, provenance, model, trace);
        if kills_mutant(&fixture, mutant) {
            annotate(&mut fixture);
            self.found.push((walk, fixture));
        }
    }
}

/// The first violating states of a search, by number.
struct Violating<'m> {
    model: &'m CoherenceModel,
    ids: Vec<u32>,
}

impl coherence_model::Visitor for Violating<'_> {
    fn state(&mut self, id: u32, state: &coherence_model::State) {
        if self.ids.len() < MUTANT_SEARCH_STATES_MAX
            && INVARIANTS.iter().any(|i| i.violation(self.model, state).is_some())
        {
            self.ids.push(id);
        }
    }
}

/// The mutant strategy's kill counts as text, the weakest first: per mutant, the fixtures of the
/// rest of the corpus that kill it, those added for it, and the walks tried.
pub fn kill_matrix(found: &[MutantKills], kills: usize) -> String {
    let mut rows: Vec<&MutantKills> = found.iter().collect();
    rows.sort_by_key(|m| m.total());
    let width = found.iter().map(|m| m.mutant.name().len()).max().unwrap_or(0).max(6);
    let mut out = format!("{:<width$}  {:>5}  {:>5}  {:>5}  {:>5}\n", "mutant", "kills", "base", "added", "walks");
    for m in rows {
        let mark = if m.total() < kills { "  ✗" } else { "" };
        out += &format!(
            "{:<width$}  {:>5}  {:>5}  {:>5}  {:>5}{mark}\n",
            m.mutant.name(),
            m.total(),
            m.by_base,
            m.added,
            m.walks
        );
    }
    out
}

/// The bounds of the deep tier: the most connectors and sessions the model represents, and every
/// budget at its largest.
pub const DEEP_BOUNDS: Bounds =
    Bounds::widest(coherence_model::state::CONNECTORS_MAX as u8, coherence_model::state::SESSIONS_MAX as u8);

/// The longest walk of the deep tier.
pub const DEEP_STEPS_MAX: usize = 200;

/// What a deep walk prefers, when one of its preferred actions is enabled (three times in four).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeepStyle {
    /// Nothing: every enabled action is as likely.
    Uniform,
    /// Auth changes and notifications of the first connector, delivered, duplicated and announced
    /// early: a notification storm on its links.
    Storm,
    /// Injected faults.
    Faults,
    /// An action of another session than the last one's: sessions interleaved step by step.
    Interleaved,
}

impl DeepStyle {
    /// Every style, in the order walks take them.
    pub const ALL: [DeepStyle; 4] = [DeepStyle::Uniform, DeepStyle::Storm, DeepStyle::Faults, DeepStyle::Interleaved];

    /// The style's name in a fixture's id.
    pub fn name(self) -> &'static str {
        match self {
            DeepStyle::Uniform => "uniform",
            DeepStyle::Storm => "storm",
            DeepStyle::Faults => "faults",
            DeepStyle::Interleaved => "interleaved",
        }
    }

    fn prefers(self, action: Action, last: Option<Action>) -> bool {
        match self {
            DeepStyle::Uniform => false,
            // On the first connector, so that its links get every change's notification.
            DeepStyle::Storm => {
                action.connector() == Some(coherence_model::state::ConnectorId(0))
                    && matches!(
                        action,
                        Action::WebAuthenticate { .. }
                            | Action::WebRevoke { .. }
                            | Action::TokenExpire { .. }
                            | Action::DeliverNotification { .. }
                            | Action::DuplicateNotification { .. }
                            | Action::NotifyBeforeUpdate { .. }
                    )
            }
            DeepStyle::Faults => action.is_fault(),
            DeepStyle::Interleaved => action.session().is_some() && action.session() != last.and_then(|a| a.session()),
        }
    }
}

/// A deep walk of the `recommended` model at [`DEEP_BOUNDS`], of at most [`DEEP_STEPS_MAX`] steps.
pub fn deep_walk(style: DeepStyle, rng: &mut ChaCha8Rng) -> Trace {
    let model = CoherenceModel::new(RECOMMENDED, DEEP_BOUNDS);
    let inits = model.initial_states();
    let init = inits[rng.next_u32() as usize % inits.len()];
    let mut state = init;
    let mut steps: Vec<(Action, coherence_model::State)> = Vec::new();
    let (mut actions, mut preferred) = (Vec::new(), Vec::new());
    for _ in 0..DEEP_STEPS_MAX {
        actions.clear();
        model.enabled_actions(&state, &mut actions);
        if actions.is_empty() {
            break;
        }
        let last = steps.last().map(|(a, _)| *a);
        preferred.clear();
        preferred.extend(actions.iter().copied().filter(|a| style.prefers(*a, last)));
        let from = if !preferred.is_empty() && !rng.next_u32().is_multiple_of(4) { &preferred } else { &actions };
        let action = from[rng.next_u32() as usize % from.len()];
        state = model.step(&state, action).expect("enabled actions step");
        steps.push((action, state));
    }
    Trace { init, steps }
}

/// The deep tier (SPEC.md §11.2): `count` deep walks seeded from `seed`, the styles in turn.
pub fn deep_walks(seed: u64, count: usize, shard: Shard) -> Vec<Fixture> {
    (0..count).filter(|k| shard.owns(*k)).map(|k| deep_walk_fixture(seed, k)).collect()
}

/// Deep walk `k` of seed `seed`.
pub fn deep_walk_fixture(seed: u64, k: usize) -> Fixture {
    // Streams apart from the other strategies' walks.
    let walk_seed = walk_seed(seed, 1 << 41 | k as u64);
    let style = DeepStyle::ALL[k % DeepStyle::ALL.len()];
    let trace = deep_walk(style, &mut ChaCha8Rng::seed_from_u64(walk_seed));
    let provenance = Provenance {
        strategy: "deep-walk".to_owned(),
        policy: RECOMMENDED.name.to_owned(),
        mutant: None,
        invariant: None,
        seed: Some(walk_seed),
        bounds: DEEP_BOUNDS,
        spec_version: SPEC_VERSION,
    };
    fixture_from_trace(
        format!("deep/{seed}/{}/{k:04}", style.name()),
        format!(
            "Deep walk {k} of seed {seed} ({} style): {} steps of the recommended model with {} connectors and {} sessions.",
            style.name(),
            trace.len(),
            DEEP_BOUNDS.connectors,
            DEEP_BOUNDS.sessions
        ),
        provenance,
        RECOMMENDED,
        &trace,
    )
}
