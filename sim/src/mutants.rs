//! Host mutants against the model and against a corpus (SPEC.md §11.4): which mutants the checker
//! shows equivalent to the reference host, which change its behaviour within what SPEC.md allows,
//! which are defects; and, for a corpus of fixtures, how many fixtures kill each defect.

use crate::engine::{Verdict, replay};
use crate::fixture::Fixture;
use crate::host::ReferenceHost;
use coherence_model::invariants::INVARIANTS;
use coherence_model::mutant::{CLASSIFYING_BOUNDS, divergences};
use coherence_model::{Action, Bounds, CoherenceModel, HostPolicy, Mutant, check_model_on};
use std::fmt::Write as _;

/// What the checker makes of a mutant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Class {
    /// No reachable state, at any of the classifying bounds, where its decisions differ from the
    /// policy's: no fixture can kill it.
    Equivalent,
    /// It decides otherwise somewhere, but every invariant holds at the classifying bounds: it is
    /// another host SPEC.md allows, not a defect, and no fixture need kill it.
    Allowed {
        /// Steps to the first state where it decides otherwise.
        diverges_after: usize,
        /// What it does otherwise there.
        action: Option<Action>,
    },
    /// It breaks invariants: each with the length of the shortest counterexample, at the first of
    /// the classifying bounds where any breaks.
    Defect {
        /// The bounds the counterexamples are at.
        bounds: Bounds,
        /// Each invariant broken, with its shortest counterexample's length.
        violated: Vec<(&'static str, usize)>,
    },
}

impl Class {
    /// The class's name in reports.
    pub fn name(&self) -> &'static str {
        match self {
            Class::Equivalent => "equivalent",
            Class::Allowed { .. } => "allowed",
            Class::Defect { .. } => "defect",
        }
    }
}

/// A mutant and its class.
#[derive(Clone, Debug)]
pub struct Classified {
    /// The mutant.
    pub mutant: Mutant,
    /// What the checker made of it.
    pub class: Class,
}

/// Classifies `mutants` of `policy` at their classifying bounds ([`Mutant::classifying_bounds`]),
/// on `threads` threads: a search per set of bounds finds where each mutant first decides
/// otherwise; the checker then checks every mutant that does, as it checks a policy.
pub fn classify(policy: HostPolicy, mutants: &[Mutant], threads: usize) -> Vec<Classified> {
    let mut first: Vec<Option<(usize, Option<Action>)>> = vec![None; mutants.len()];
    for bounds in CLASSIFYING_BOUNDS {
        let here: Vec<usize> = (0..mutants.len())
            .filter(|&k| first[k].is_none() && mutants[k].classifying_bounds().contains(&bounds))
            .collect();
        let some: Vec<Mutant> = here.iter().map(|&k| mutants[k]).collect();
        let found = divergences(&CoherenceModel::new(policy, bounds), &some, threads);
        for (&k, divergence) in here.iter().zip(found) {
            first[k] = divergence.map(|d| (d.trace.len(), d.action));
        }
    }
    mutants
        .iter()
        .zip(first)
        .map(|(&mutant, first)| {
            let class = match first {
                None => Class::Equivalent,
                Some((diverges_after, action)) => mutant
                    .classifying_bounds()
                    .iter()
                    .find_map(|&bounds| {
                        let model = CoherenceModel { mutant: Some(mutant), ..CoherenceModel::new(policy, bounds) };
                        let report = check_model_on(&model, threads);
                        let violated: Vec<(&'static str, usize)> = report
                            .invariants
                            .iter()
                            .filter_map(|o| o.counterexample.as_ref().map(|t| (o.invariant.id, t.len())))
                            .collect();
                        (!violated.is_empty()).then_some(Class::Defect { bounds, violated })
                    })
                    .unwrap_or(Class::Allowed { diverges_after, action }),
            };
            Classified { mutant, class }
        })
        .collect()
}

/// How a corpus fares against one mutant.
#[derive(Clone, Debug)]
pub struct Kills {
    /// The mutant.
    pub mutant: Mutant,
    /// The fixtures whose replay through the mutant fails an invariant, by id.
    pub killed_by: Vec<String>,
    /// The fixtures whose replay the mutant could not finish, by id: the runner stopped it (for
    /// example, a turn held for a retry with no refresh under way). Never a pass, so a kill too.
    pub host_failed: Vec<String>,
}

impl Kills {
    /// How many fixtures kill the mutant.
    pub fn count(&self) -> usize {
        self.killed_by.len() + self.host_failed.len()
    }
}

/// Replays every fixture through `policy`'s reference host with each mutant planted, on
/// `threads` threads.
pub fn kills(policy: HostPolicy, mutants: &[Mutant], fixtures: &[Fixture], threads: usize) -> Vec<Kills> {
    par_map(mutants, threads, |&mutant| {
        let mut kills = Kills { mutant, killed_by: Vec::new(), host_failed: Vec::new() };
        for fixture in fixtures {
            let mut host = ReferenceHost::mutated(policy, Some(mutant));
            match replay(fixture, &mut host).verdict {
                Verdict::Pass => {}
                Verdict::Fail(_) => kills.killed_by.push(fixture.id.clone()),
                Verdict::HostFailed { .. } => kills.host_failed.push(fixture.id.clone()),
            }
        }
        kills
    })
}

/// `f` of every item, on `threads` threads that take the items in turn, in the items' order.
pub(crate) fn par_map<T: Sync, R: Send>(items: &[T], threads: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut done: Vec<(usize, R)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads.clamp(1, items.len().max(1)))
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(item) = items.get(k) else { break mine };
                        mine.push((k, f(item)));
                    }
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().expect("a worker thread panicked")).collect()
    });
    done.sort_by_key(|(k, _)| *k);
    done.into_iter().map(|(_, r)| r).collect()
}

/// The classification as text, one mutant per line, with the kill matrix if there is one: the
/// defects the corpus kills least come first.
pub fn text(policy: HostPolicy, classified: &[Classified], kills: Option<&[Kills]>, min_kills: usize) -> String {
    let mut out = String::new();
    let w = &mut out;
    let count = |name: &str| classified.iter().filter(|c| c.class.name() == name).count();
    let _ = writeln!(
        w,
        "coherence mutants: {} mutants of {}: {} defects, {} allowed, {} equivalent (classified at {})",
        classified.len(),
        policy.name,
        count("defect"),
        count("allowed"),
        count("equivalent"),
        classifying_words()
    );
    let mut rows: Vec<(usize, &Classified, Option<&Kills>)> =
        classified.iter().enumerate().map(|(k, c)| (k, c, kills.map(|all| &all[k]))).collect();
    if kills.is_some() {
        // The weakest kills first: defects by kill count, then the rest in their order.
        rows.sort_by_key(|(k, c, kill)| {
            let defect = matches!(c.class, Class::Defect { .. });
            (!defect, kill.map_or(0, Kills::count), *k)
        });
    }
    let _ = writeln!(w);
    let width = classified.iter().map(|c| c.mutant.name().len()).max().unwrap_or(0);
    for (_, c, kill) in rows {
        let verdict = match &c.class {
            Class::Equivalent => "equivalent: no reachable state where it decides otherwise".to_owned(),
            Class::Allowed { diverges_after, .. } => {
                format!("allowed: decides otherwise after {diverges_after} steps, but every invariant holds")
            }
            Class::Defect { violated, .. } => {
                let ids: Vec<String> = violated.iter().map(|(id, n)| format!("{id} ({n})")).collect();
                format!("defect: violates {}", ids.join(", "))
            }
        };
        let killed = match (kill, &c.class) {
            (Some(k), Class::Defect { .. }) => {
                let mark = if k.count() < min_kills { "✗" } else { "✓" };
                let stopped = if k.host_failed.is_empty() {
                    String::new()
                } else {
                    format!(" ({} stopped by the runner)", k.host_failed.len())
                };
                format!("{mark} killed by {:>3}{stopped}  ", k.count())
            }
            (Some(_), _) => format!("{:<17}  ", "-"),
            (None, _) => String::new(),
        };
        let _ = writeln!(w, "{:<width$}  {killed}{verdict}", c.mutant.name());
    }
    if let Some(kills) = kills {
        let weak = weak_defects(classified, kills, min_kills);
        let _ = writeln!(w);
        if weak.is_empty() {
            let _ = writeln!(w, "Every defect is killed by at least {min_kills} fixtures.");
        } else {
            let _ = writeln!(
                w,
                "{} defects are killed by fewer than {min_kills} fixtures: {}",
                weak.len(),
                weak.join(", ")
            );
        }
    }
    out
}

/// The defects killed by fewer than `min_kills` fixtures, by name.
pub fn weak_defects(classified: &[Classified], kills: &[Kills], min_kills: usize) -> Vec<String> {
    classified
        .iter()
        .zip(kills)
        .filter(|(c, k)| matches!(c.class, Class::Defect { .. }) && k.count() < min_kills)
        .map(|(c, _)| c.mutant.name())
        .collect()
}

/// The mutants' names and descriptions as JSON, unclassified.
pub fn listing_json(policy: HostPolicy, mutants: &[Mutant]) -> String {
    let rows: Vec<serde_json::Value> = mutants
        .iter()
        .map(|m| {
            serde_json::json!({
                "mutant": m.name(),
                "site": m.site.name(),
                "operator": m.operator.name(),
                "description": m.describe(),
            })
        })
        .collect();
    serde_json::to_string_pretty(&serde_json::json!({ "policy": policy.name, "mutants": rows }))
        .expect("a listing serialises")
        + "\n"
}

/// The mutants' names and descriptions as text, unclassified.
pub fn listing_text(policy: HostPolicy, mutants: &[Mutant]) -> String {
    let mut out =
        format!("coherence mutants: {} mutants of {}'s host logic (site/operator)\n\n", mutants.len(), policy.name);
    let width = mutants.iter().map(|m| m.name().len()).max().unwrap_or(0);
    for mutant in mutants {
        let _ = writeln!(out, "{:<width$}  {}", mutant.name(), mutant.describe());
    }
    out
}

/// The classification and kill matrix as JSON.
pub fn json(policy: HostPolicy, classified: &[Classified], kills: Option<&[Kills]>) -> String {
    let rows: Vec<serde_json::Value> = classified
        .iter()
        .enumerate()
        .map(|(k, c)| {
            let mut row = serde_json::json!({
                "mutant": c.mutant.name(),
                "site": c.mutant.site.name(),
                "operator": c.mutant.operator.name(),
                "description": c.mutant.describe(),
                "class": c.class.name(),
            });
            match &c.class {
                Class::Equivalent => {}
                Class::Allowed { diverges_after, action } => {
                    row["diverges_after"] = (*diverges_after).into();
                    row["action"] = serde_json::to_value(action).expect("actions serialise");
                }
                Class::Defect { bounds, violated } => {
                    row["bounds"] = serde_json::to_value(bounds).expect("bounds serialise");
                    row["violated"] =
                        violated.iter().map(|(id, n)| serde_json::json!({"invariant": id, "steps": n})).collect();
                }
            }
            if let Some(kills) = kills {
                row["killed_by"] = serde_json::to_value(&kills[k].killed_by).expect("ids serialise");
                row["host_failed"] = serde_json::to_value(&kills[k].host_failed).expect("ids serialise");
            }
            row
        })
        .collect();
    let value = serde_json::json!({
        "policy": policy.name,
        "classifying_bounds": CLASSIFYING_BOUNDS,
        "invariants": INVARIANTS.iter().map(|i| i.id).collect::<Vec<_>>(),
        "mutants": rows,
    });
    serde_json::to_string_pretty(&value).expect("a report serialises") + "\n"
}

/// Where the mutants are classified, in words.
fn classifying_words() -> String {
    let [first, second, memory] = CLASSIFYING_BOUNDS.map(|b| bounds_words(&b));
    format!("{first} and {second}; with memory also at {memory}")
}

fn bounds_words(b: &Bounds) -> String {
    format!(
        "connectors={} sessions={} turns={} auth-changes={} faults={} commands={}",
        b.connectors, b.sessions, b.turns, b.auth_changes, b.faults, b.commands
    )
}
