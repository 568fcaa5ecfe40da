//! The search on several threads: the same numbering, paths, verdicts and bytes as on one; and
//! with its frontier and paths kept on disk (`--spill`), the same again.
//!
//! The bounds are large enough that a level spans many chunks and several rounds between merges
//! (the numbering would depend on which thread finished first if the merge did not restore the
//! order), and the policies differ in shape: one never refreshes, one is the largest.

use crate::all_policies;
use coherence_model::{
    Bounds, CoherenceModel, Key, State, Store, Visitor, check_model_on, check_model_stored, fingerprint, policy_named,
    search_stored,
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
    shown_from(model, threads, &Store::Memory)
}

/// [`shown`], the frontier and paths kept where `store` says.
fn shown_from(model: &CoherenceModel, threads: usize, store: &Store) -> (Numbered, Numbered, usize) {
    let mut visitors: Vec<Seen> = (0..threads).map(|_| Seen::default()).collect();
    let search = search_stored(model, Key::default(), &mut visitors, store).unwrap();
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

/// A directory of its own for one test's spill files, empty.
fn spill_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("coherence-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_search_with_its_frontier_on_disk_finds_what_one_in_memory_does() {
    let dir = spill_dir("spill-search");
    let disk = Store::Disk(dir.clone());
    // Levels of hundreds of thousands of states: many chunks, rounds and write buffers.
    let model = CoherenceModel::new(policy_named("snapshot-at-connect").unwrap(), Bounds::DEFAULT);
    let memory = shown(&model, 1);
    for threads in [1, 2] {
        assert!(memory == shown_from(&model, threads, &disk), "on disk, {threads} threads show a different search");
    }
    let small = Bounds { turns: 1, auth_changes: 1, faults: 0, ..Bounds::DEFAULT };
    let models = [model, CoherenceModel::new(policy_named("list-changed-naive").unwrap(), small)];
    for model in &models {
        let (held, spilled) = (check_model_on(model, 2), check_model_stored(model, 2, Key::default(), &disk).unwrap());
        let name = model.policy.name;
        assert_eq!((held.unique_states, held.transitions), (spilled.unique_states, spilled.transitions), "{name}");
        for (a, b) in held.invariants.iter().zip(&spilled.invariants) {
            assert_eq!(a.counterexample, b.counterexample, "{name} × {} on disk", a.invariant.id);
            assert_eq!(a.witness, b.witness, "{name} × {} witness on disk", a.invariant.id);
        }
        assert_eq!(held.peak_spilled_bytes, 0, "{name}: nothing on disk without --spill");
        // Every path, 8 bytes a state, was written out.
        assert!(spilled.peak_spilled_bytes >= 8 * spilled.unique_states, "{name}: {}", spilled.peak_spilled_bytes);
    }
    // Memory held the visited set, a round's successors and three write buffers, where it held
    // the paths and two levels as well: at the round of its peak, more than the buffers.
    let held = check_model_on(&models[0], 1);
    let spilled = check_model_stored(&models[0], 1, Key::default(), &disk).unwrap();
    assert!(
        spilled.peak_bytes < held.peak_bytes,
        "{} bytes in memory, {} without --spill",
        spilled.peak_bytes,
        held.peak_bytes
    );
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "a spill leaves no file behind");
    std::fs::remove_dir(&dir).unwrap();
}

#[test]
fn the_report_prints_the_same_bytes_with_the_frontier_on_disk() {
    let dir = spill_dir("spill-report");
    let run = |spill: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_coherence"))
            .args(["check", "--no-timing", "--policy", "snapshot-at-connect", "--policy", "session-start-only"])
            .args(spill)
            .output()
            .expect("the binary runs");
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    };
    assert!(run(&[]) == run(&["--spill", dir.to_str().unwrap()]), "--spill prints different bytes");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "a spill leaves no file behind");
    std::fs::remove_dir(&dir).unwrap();
}
