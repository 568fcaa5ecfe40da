//! The search on several threads: the same numbering, paths, verdicts and bytes as on one.
//!
//! The bounds are large enough that a level spans many chunks and several rounds between merges
//! (the numbering would depend on which thread finished first if the merge did not restore the
//! order), and the policies differ in shape: one never refreshes, one is the largest.

use crate::all_policies;
use coherence_model::{
    Bounds, CoherenceModel, Key, State, Visitor, check_model_on, fingerprint, policy_named, search_with,
};
use std::process::Command;

/// Records what one thread was shown.
#[derive(Default)]
struct Seen {
    states: Vec<(u32, u64)>,
    transitions: Vec<(u32, u64)>,
}

impl Visitor for Seen {
    fn state(&mut self, id: u32, state: &State) {
        self.states.push((id, fingerprint(state)));
    }
    fn transition(&mut self, from: u32, _state: &State, _action: coherence_model::Action, next: &State) {
        self.transitions.push((from, fingerprint(next)));
    }
}

/// Numbered states, or transitions by the number of their source, with a fingerprint.
type Numbered = Vec<(u32, u64)>;

/// What every thread was shown together, in number order (a thread sees ascending numbers).
fn shown(model: &CoherenceModel, threads: usize) -> (Numbered, Numbered, usize) {
    let mut visitors: Vec<Seen> = (0..threads).map(|_| Seen::default()).collect();
    let search = search_with(model, Key::default(), &mut visitors);
    for v in &visitors {
        assert!(v.states.windows(2).all(|w| w[0].0 < w[1].0), "a thread sees its states in ascending order");
    }
    let mut states: Numbered = visitors.iter().flat_map(|v| v.states.iter().copied()).collect();
    let mut transitions: Numbered = visitors.iter().flat_map(|v| v.transitions.iter().copied()).collect();
    states.sort_unstable();
    // Transitions from one state stay in action order: a stable sort by source keeps it.
    transitions.sort_by_key(|(from, _)| *from);
    assert_eq!(search.unique_states, states.len());
    (states, transitions, search.transitions)
}

#[test]
fn every_thread_count_numbers_the_states_as_one_thread_does() {
    let model = CoherenceModel::new(policy_named("snapshot-at-connect").unwrap(), Bounds::DEFAULT);
    let one = shown(&model, 1);
    let ids: Vec<u32> = one.0.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, (0..ids.len() as u32).collect::<Vec<_>>(), "every state is numbered once, without gaps");
    assert!(ids.len() > 300_000, "the bounds must span many chunks and rounds; {} states", ids.len());
    for threads in [2, 3, 4] {
        let many = shown(&model, threads);
        assert!(one.0 == many.0, "{threads} threads number the states differently");
        assert!(one.1 == many.1, "{threads} threads show the transitions differently");
        assert_eq!(one.2, many.2, "{threads} threads count the transitions differently");
    }
}

#[test]
fn every_thread_count_finds_the_same_verdicts_and_paths() {
    let small = Bounds { turns: 1, auth_changes: 1, faults: 0, ..Bounds::DEFAULT };
    let mut models: Vec<CoherenceModel> = all_policies().into_iter().map(|p| CoherenceModel::new(p, small)).collect();
    models.push(CoherenceModel::new(policy_named("snapshot-at-connect").unwrap(), Bounds::DEFAULT));
    for model in &models {
        let one = check_model_on(model, 1);
        for threads in [2, 4] {
            let many = check_model_on(model, threads);
            let name = model.policy.name;
            assert_eq!(
                (one.unique_states, one.transitions, one.depth_max),
                (many.unique_states, many.transitions, many.depth_max),
                "{name} on {threads} threads"
            );
            for (a, b) in one.invariants.iter().zip(&many.invariants) {
                assert_eq!(a.counterexample, b.counterexample, "{name} × {} on {threads} threads", a.invariant.id);
                assert_eq!(a.witness, b.witness, "{name} × {} witness on {threads} threads", a.invariant.id);
            }
        }
    }
}

#[test]
fn the_report_prints_the_same_bytes_on_one_two_and_four_threads() {
    let run = |threads: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_coherence"))
            .args(["check", "--no-timing", "--policy", "snapshot-at-connect", "--policy", "session-start-only"])
            .args(["--threads", threads])
            .output()
            .expect("the binary runs");
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    };
    let one = run("1");
    assert!(one == run("2"), "2 threads print different bytes from 1");
    assert!(one == run("4"), "4 threads print different bytes from 1");
}
