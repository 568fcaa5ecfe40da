//! Swarm search: many independent, seeded, bounded searches that together cover more of a large
//! state space than one machine can hold, and the merge of what they found.
//!
//! A swarm is `n` tasks of one plan (a seed, a number of walks, a walk length). Task `i` draws
//! its own configuration from the seed and `i`, in the manner of swarm testing: a walk length up
//! to the plan's, and a random half of the action kinds that its walks prefer (task 1 prefers
//! every kind, so a swarm of one task is plain random walks). Each walk starts from an initial
//! state, takes enabled actions at random (a preferred kind when one is enabled) and never
//! revisits a state of its own path (it cuts the loop), and every state it reaches is judged by
//! every invariant. A task keeps, per policy and invariant, the shortest violating path it found,
//! and a HyperLogLog sketch of the states it visited (their fingerprints, reduced by symmetry as
//! the checker reduces them).
//!
//! Tasks share nothing and run anywhere (a CI matrix, a Kubernetes Indexed Job, a Slurm array);
//! the same plan, task and commit give byte-identical output. [`merge`] takes any set of task
//! reports of the same model, replays every counterexample it keeps through the model to confirm it, and
//! reports, per policy and invariant, the shortest one known (ties: the lowest task), with the
//! union's coverage estimated from the sketches. A swarm finds violations; it never shows that an
//! invariant holds: that is `coherence check`'s exhaustive search.

use crate::generate::Shard;
use coherence_model::explore::{fingerprint, fingerprint_packed};
use coherence_model::story::{story, violation_words};
use coherence_model::symmetry::canonical_packed;
use coherence_model::system::{Bounds, Fault, Faults};
use coherence_model::{Action, CoherenceModel, INVARIANTS, State, Trace, policy_named};
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt::Write as _;

/// The format tag of a task report.
pub const FORMAT: &str = "coherence-swarm/1";
/// The longest walk a plan may ask for.
pub const DEPTH_MAX: u32 = 10_000;
/// The most walks a task may take per policy.
pub const WALKS_MAX: u32 = 100_000_000;

/// What every task of a swarm shares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The swarm's seed.
    pub seed: u64,
    /// Walks per task and policy.
    pub walks: u32,
    /// The longest walk, in steps.
    pub depth: u32,
}

/// One task's configuration, drawn from the plan's seed and the task's number.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// The walk length of this task.
    pub depth: u32,
    /// The action kinds its walks prefer (`Action::NAMES`), in that order.
    pub prefers: Vec<String>,
}

impl Config {
    /// The configuration of task `task` (from 0) of `plan`.
    pub fn draw(plan: Plan, task: u32) -> Config {
        let mut rng = task_rng(plan.seed, task, 0);
        if task == 0 {
            return Config { depth: plan.depth, prefers: Action::NAMES.iter().map(|n| (*n).to_owned()).collect() };
        }
        let depth = plan.depth / 2 + (rng.next_u32() % (plan.depth - plan.depth / 2 + 1));
        let mut prefers: Vec<String> =
            Action::NAMES.iter().filter(|_| rng.next_u32() & 1 == 1).map(|n| (*n).to_owned()).collect();
        if prefers.is_empty() {
            prefers.push(Action::NAMES[(rng.next_u32() as usize) % Action::NAMES.len()].to_owned());
        }
        Config { depth: depth.max(1), prefers }
    }
}

fn task_rng(seed: u64, task: u32, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // The task in the high half and the stream (0 for the configuration, 1 + k for policy k) in
    // the low: no two (task, stream) pairs share a stream, whatever the number of policies.
    rng.set_stream(u64::from(task) << 32 | stream);
    rng
}

/// A counterexample a task found: a path from an initial state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Found {
    /// The invariant it violates.
    pub invariant: String,
    /// The index of its initial state in `CoherenceModel::initial_states`.
    pub init: usize,
    /// The actions taken from it.
    pub actions: Vec<Action>,
}

/// What a task found for one policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyFindings {
    /// The policy.
    pub policy: String,
    /// Transitions taken.
    pub steps: u64,
    /// The HyperLogLog registers of the visited states, in hex.
    pub sketch: String,
    /// The shortest counterexample found of each invariant it saw violated, in ID order.
    pub violations: Vec<Found>,
}

/// A task's report: what `coherence swarm run` writes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskReport {
    /// [`FORMAT`].
    pub format: String,
    /// The plan's seed.
    pub seed: u64,
    /// Which task, from 1.
    pub task: u32,
    /// Of how many.
    pub tasks: u32,
    /// Walks per policy.
    pub walks: u32,
    /// The plan's walk length.
    pub depth: u32,
    /// This task's configuration.
    pub config: Config,
    /// The model's bounds.
    pub bounds: Bounds,
    /// The fault kinds the model admits.
    pub faults: Vec<String>,
    /// Whether the agent's in-turn handshake is admitted.
    pub agent_handshake: bool,
    /// One entry per policy, in the order given.
    pub policies: Vec<PolicyFindings>,
}

/// Runs task `shard` of `plan` over `models` (which share bounds, faults and handshake).
pub fn run(models: &[CoherenceModel], plan: Plan, shard: Shard) -> TaskReport {
    let first = models.first().expect("a swarm task checks at least one policy");
    let config = Config::draw(plan, shard.index);
    let policies =
        models.iter().enumerate().map(|(k, model)| walk_policy(model, plan, shard.index, k as u64, &config)).collect();
    TaskReport {
        format: FORMAT.to_owned(),
        seed: plan.seed,
        task: shard.index + 1,
        tasks: shard.count,
        walks: plan.walks,
        depth: plan.depth,
        config,
        bounds: first.bounds,
        faults: first.faults.kinds().map(|f| f.name().to_owned()).collect(),
        agent_handshake: first.agent_handshake,
        policies,
    }
}

fn walk_policy(model: &CoherenceModel, plan: Plan, task: u32, k: u64, config: &Config) -> PolicyFindings {
    let mut rng = task_rng(plan.seed, task, 1 + k);
    let inits = model.initial_states();
    let mut sketch = Sketch::default();
    let mut best: Vec<Option<Found>> = vec![None; INVARIANTS.len()];
    let mut steps = 0u64;
    let mut actions = Vec::new();
    let mut preferred = Vec::new();
    let prefers: Vec<&str> = config.prefers.iter().map(String::as_str).collect();
    let mut packed = Vec::new();
    let mut observe = |state: &State, sketch: &mut Sketch| {
        packed.clear();
        if model.bounds.symmetry {
            canonical_packed(state, &mut packed);
        } else {
            coherence_model::packed::pack(state, &mut packed);
        }
        sketch.add(fingerprint_packed(&packed));
    };
    for _ in 0..plan.walks {
        let init = (rng.next_u32() as usize) % inits.len();
        // The walk's path, without loops: its states and the actions between them.
        let mut states = vec![inits[init]];
        let mut path: Vec<Action> = Vec::new();
        let mut on_path: HashMap<u64, usize> = HashMap::from([(fingerprint(&inits[init]), 0)]);
        observe(&inits[init], &mut sketch);
        judge(model, init, &states, &path, &mut best);
        for _ in 0..config.depth {
            let state = *states.last().expect("a path has a state");
            actions.clear();
            model.enabled_actions(&state, &mut actions);
            // Every successor, stepped once: (action, state).
            let successors: Vec<(Action, State)> =
                actions.iter().filter_map(|&a| model.step(&state, a).map(|next| (a, next))).collect();
            if successors.is_empty() {
                break;
            }
            preferred.clear();
            preferred.extend(successors.iter().copied().filter(|(a, _)| prefers.contains(&a.name())));
            let pool = if preferred.is_empty() { &successors } else { &preferred };
            let (action, next) = pool[(rng.next_u32() as usize) % pool.len()];
            steps += 1;
            observe(&next, &mut sketch);
            let key = fingerprint(&next);
            if let Some(&at) = on_path.get(&key) {
                // A loop: go back to where it began.
                for dropped in &states[at + 1..] {
                    on_path.remove(&fingerprint(dropped));
                }
                states.truncate(at + 1);
                path.truncate(at);
                continue;
            }
            on_path.insert(key, states.len());
            states.push(next);
            path.push(action);
            judge(model, init, &states, &path, &mut best);
        }
    }
    PolicyFindings {
        policy: model.policy.name.to_owned(),
        steps,
        sketch: sketch.to_hex(),
        violations: best.into_iter().flatten().collect(),
    }
}

/// Keeps the path to the last of `states` for every invariant it violates, if it is shorter
/// than what was kept.
fn judge(model: &CoherenceModel, init: usize, states: &[State], path: &[Action], best: &mut [Option<Found>]) {
    let state = states.last().expect("a path has a state");
    for (k, invariant) in INVARIANTS.iter().enumerate() {
        if best[k].as_ref().is_some_and(|f| f.actions.len() <= path.len()) {
            continue;
        }
        if invariant.violation(model, state).is_some() {
            best[k] = Some(Found { invariant: invariant.id.to_owned(), init, actions: path.to_vec() });
        }
    }
}

/// Registers of a HyperLogLog sketch: 2^12 of them, a standard error of about 1.6%.
const SKETCH_BITS: u32 = 12;

/// A HyperLogLog sketch of 64-bit fingerprints (which are hashes already).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sketch {
    registers: Vec<u8>,
}

impl Default for Sketch {
    fn default() -> Self {
        Sketch { registers: vec![0; 1 << SKETCH_BITS] }
    }
}

impl Sketch {
    /// Counts `fingerprint` in.
    pub fn add(&mut self, fingerprint: u64) {
        let register = (fingerprint >> (64 - SKETCH_BITS)) as usize;
        let rest = fingerprint << SKETCH_BITS | 1 << (SKETCH_BITS - 1);
        let rank = rest.leading_zeros() as u8 + 1;
        self.registers[register] = self.registers[register].max(rank);
    }

    /// The sketch of the union.
    pub fn union(&mut self, other: &Sketch) {
        for (a, b) in self.registers.iter_mut().zip(&other.registers) {
            *a = (*a).max(*b);
        }
    }

    /// The estimated number of distinct fingerprints counted in.
    pub fn estimate(&self) -> f64 {
        let m = self.registers.len() as f64;
        let alpha = 0.7213 / (1.0 + 1.079 / m);
        let sum: f64 = self.registers.iter().map(|&r| (-f64::from(r)).exp2()).sum();
        let raw = alpha * m * m / sum;
        let zeros = self.registers.iter().filter(|&&r| r == 0).count();
        if raw <= 2.5 * m && zeros > 0 { m * (m / zeros as f64).ln() } else { raw }
    }

    /// The registers in hex.
    pub fn to_hex(&self) -> String {
        self.registers.iter().fold(String::with_capacity(2 * self.registers.len()), |mut s, r| {
            write!(s, "{r:02x}").expect("writing to a String");
            s
        })
    }

    /// The sketch `to_hex` wrote.
    pub fn from_hex(text: &str) -> Result<Sketch, String> {
        let expected = 2usize << SKETCH_BITS;
        if text.len() != expected || !text.is_ascii() {
            return Err(format!("a sketch is {expected} hex digits, got {} characters", text.len()));
        }
        let registers = (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).map_err(|_| format!("`{}` is not hex", &text[i..i + 2])))
            .collect::<Result<Vec<u8>, String>>()?;
        if let Some(r) = registers.iter().find(|&&r| u32::from(r) > 65 - SKETCH_BITS) {
            return Err(format!("register value {r} is out of range"));
        }
        Ok(Sketch { registers })
    }
}

/// The model a task report was made of, for one of its policies.
fn model_of(report: &TaskReport, policy: &str) -> Result<CoherenceModel, String> {
    let policy = policy_named(policy).ok_or_else(|| format!("unknown policy `{policy}`"))?;
    report.bounds.validate().map_err(|e| format!("impossible bounds: {e}"))?;
    let mut faults = Faults::admitted_by(report.bounds.servers);
    for fault in Fault::ALL {
        faults = faults.without(fault);
    }
    for name in &report.faults {
        faults = faults.with(Fault::named(name).ok_or_else(|| format!("unknown fault kind `{name}`"))?);
    }
    Ok(CoherenceModel { faults, agent_handshake: report.agent_handshake, ..CoherenceModel::new(policy, report.bounds) })
}

/// The best counterexample known of one invariant, confirmed by replay.
#[derive(Clone, Debug)]
pub struct Known {
    /// The path.
    pub trace: Trace,
    /// The task that found it, from 1, and its seed.
    pub task: u32,
    /// The seed of that task's swarm.
    pub seed: u64,
}

/// One policy across the merged tasks.
#[derive(Clone, Debug)]
pub struct Merged {
    /// The model.
    pub model: CoherenceModel,
    /// Transitions taken by every task together.
    pub steps: u64,
    /// The distinct states visited by the tasks together, estimated.
    pub coverage: f64,
    /// Per invariant, in ID order, the shortest counterexample known.
    pub known: Vec<Option<Known>>,
}

/// The union of task reports.
#[derive(Clone, Debug)]
pub struct Union {
    /// The tasks merged, as (seed, task, tasks), sorted.
    pub tasks: Vec<(u64, u32, u32)>,
    /// One entry per policy, in the first report's order.
    pub policies: Vec<Merged>,
}

/// Merges task reports of the same model (bounds, faults, handshake, policies). Every
/// counterexample that would become the shortest known is replayed and judged again before it is
/// kept; one that does not replay is an error (one no shorter than what is kept is not replayed).
pub fn merge(reports: &[TaskReport]) -> Result<Union, String> {
    let mut reports: Vec<&TaskReport> = reports.iter().collect();
    reports.sort_by_key(|r| (r.seed, r.task));
    let first = *reports.first().ok_or("nothing to merge: give at least one task report")?;
    let names: Vec<&str> = first.policies.iter().map(|p| p.policy.as_str()).collect();
    for r in &reports {
        if r.format != FORMAT {
            return Err(format!("task {}: format `{}`, expected `{FORMAT}`", r.task, r.format));
        }
        if r.task == 0 || r.task > r.tasks {
            return Err(format!("task {} of {} does not exist", r.task, r.tasks));
        }
        let theirs: Vec<&str> = r.policies.iter().map(|p| p.policy.as_str()).collect();
        if (r.bounds, &r.faults, r.agent_handshake, &theirs)
            != (first.bounds, &first.faults, first.agent_handshake, &names)
        {
            return Err(format!(
                "task {} (seed {}) checked another model than task {} (seed {}): bounds, fault kinds, handshake and policies must agree",
                r.task, r.seed, first.task, first.seed
            ));
        }
    }
    if let Some(w) = reports.windows(2).find(|w| (w[0].seed, w[0].task) == (w[1].seed, w[1].task)) {
        return Err(format!("task {} of seed {} is given twice", w[0].task, w[0].seed));
    }
    // The tasks of one seed are one plan's; each configuration is the one its plan draws, so that
    // a report cannot claim walks longer than its plan's.
    if let Some(w) = reports.windows(2).find(|w| {
        w[0].seed == w[1].seed && (w[0].tasks, w[0].walks, w[0].depth) != (w[1].tasks, w[1].walks, w[1].depth)
    }) {
        return Err(format!(
            "tasks {} and {} of seed {} disagree on the number of tasks, --walks or --depth",
            w[0].task, w[1].task, w[0].seed
        ));
    }
    for r in &reports {
        let plan = Plan { seed: r.seed, walks: r.walks, depth: r.depth };
        if r.depth == 0 || r.depth > DEPTH_MAX || r.walks == 0 || r.walks > WALKS_MAX {
            return Err(format!("task {} of seed {}: --walks or --depth out of range", r.task, r.seed));
        }
        if Config::draw(plan, r.task - 1) != r.config {
            return Err(format!("task {} of seed {}: its configuration is not the one its plan draws", r.task, r.seed));
        }
    }
    let mut policies = Vec::new();
    for (k, name) in names.iter().enumerate() {
        let model = model_of(first, name)?;
        let inits = model.initial_states();
        let mut sketch = Sketch::default();
        let mut steps = 0u64;
        let mut known: Vec<Option<Known>> = vec![None; INVARIANTS.len()];
        for r in &reports {
            let findings = &r.policies[k];
            sketch.union(&Sketch::from_hex(&findings.sketch).map_err(|e| format!("task {}, {name}: {e}", r.task))?);
            steps = steps.saturating_add(findings.steps);
            for found in &findings.violations {
                if found.actions.len() > r.config.depth as usize {
                    return Err(format!(
                        "task {}, {name}: a counterexample of {} steps, longer than the task's walks ({})",
                        r.task,
                        found.actions.len(),
                        r.config.depth
                    ));
                }
                let at = INVARIANTS
                    .iter()
                    .position(|i| i.id == found.invariant)
                    .ok_or_else(|| format!("task {}, {name}: unknown invariant `{}`", r.task, found.invariant))?;
                if known[at].as_ref().is_some_and(|kn| kn.trace.len() <= found.actions.len()) {
                    continue;
                }
                let trace = replay(&model, &inits, found).map_err(|e| format!("task {}, {name}: {e}", r.task))?;
                if INVARIANTS[at].violation(&model, trace.last()).is_none() {
                    return Err(format!(
                        "task {}, {name}: the counterexample of {} replays but does not violate it",
                        r.task, found.invariant
                    ));
                }
                known[at] = Some(Known { trace, task: r.task, seed: r.seed });
            }
        }
        policies.push(Merged { model, steps, coverage: sketch.estimate(), known });
    }
    Ok(Union { tasks: reports.iter().map(|r| (r.seed, r.task, r.tasks)).collect(), policies })
}

fn replay(model: &CoherenceModel, inits: &[State], found: &Found) -> Result<Trace, String> {
    let init = *inits.get(found.init).ok_or_else(|| format!("initial state {} does not exist", found.init))?;
    let mut steps = Vec::with_capacity(found.actions.len());
    let mut state = init;
    let mut enabled = Vec::new();
    for (i, &action) in found.actions.iter().enumerate() {
        enabled.clear();
        model.enabled_actions(&state, &mut enabled);
        let next =
            enabled.contains(&action).then(|| model.step(&state, action)).flatten().ok_or_else(|| {
                format!("the counterexample of {} does not replay at step {}", found.invariant, i + 1)
            })?;
        steps.push((action, next));
        state = next;
    }
    Ok(Trace { init, steps })
}

/// The union as text: a table of the shortest counterexamples known, the coverage, and the
/// stories.
pub fn text(union: &Union) -> String {
    let mut out = String::new();
    let w = &mut out;
    let seeds: Vec<String> = {
        let mut s: Vec<u64> = union.tasks.iter().map(|t| t.0).collect();
        s.dedup();
        s.iter().map(u64::to_string).collect()
    };
    let bounds = union.policies.first().map(|p| p.model.bounds).unwrap_or_default();
    writeln!(
        w,
        "coherence swarm: {} task(s) merged (seed {}); bounds: connectors={} sessions={} turns={} auth-changes={} faults={} commands={}",
        union.tasks.len(),
        seeds.join(", "),
        bounds.connectors,
        bounds.sessions,
        bounds.turns,
        bounds.auth_changes,
        bounds.faults,
        bounds.commands
    )
    .unwrap();
    writeln!(w).unwrap();
    let name_width = union.policies.iter().map(|p| p.model.policy.name.len()).max().unwrap_or(6).max(6);
    write!(w, "{:<name_width$}", "policy").unwrap();
    for invariant in INVARIANTS {
        write!(w, "  {:<7}", invariant.id).unwrap();
    }
    writeln!(w, "  {:>14}  {:>12}", "states (est.)", "transitions").unwrap();
    for p in &union.policies {
        write!(w, "{:<name_width$}", p.model.policy.name).unwrap();
        for known in &p.known {
            let cell = known.as_ref().map_or("-".to_owned(), |k| format!("✗ {}", k.trace.len()));
            write!(w, "  {cell:<7}").unwrap();
        }
        writeln!(w, "  {:>14.0}  {:>12}", p.coverage, p.steps).unwrap();
    }
    writeln!(w).unwrap();
    writeln!(w, "✗ n: violated; the shortest counterexample the tasks found has n steps (below).").unwrap();
    writeln!(w, "-: no task found a violation; a swarm never shows that an invariant holds (coherence check does).")
        .unwrap();
    writeln!(w, "states (est.): distinct states the tasks visited together, estimated from their sketches (±2%).")
        .unwrap();
    for p in &union.policies {
        for (invariant, known) in INVARIANTS.iter().zip(&p.known) {
            let Some(k) = known else { continue };
            writeln!(w).unwrap();
            writeln!(
                w,
                "{} × {} {}: violated in {} steps (task {}/{} of seed {})",
                p.model.policy.name,
                invariant.id,
                invariant.name,
                k.trace.len(),
                k.task,
                union.tasks.iter().find(|t| (t.0, t.1) == (k.seed, k.task)).map_or(0, |t| t.2),
                k.seed
            )
            .unwrap();
            for line in story(&p.model, &k.trace) {
                writeln!(w, "  {line}").unwrap();
            }
            writeln!(w, "  ✗ {}: {}", invariant.id, violation_words(&p.model, invariant, k.trace.last())).unwrap();
        }
    }
    out
}
