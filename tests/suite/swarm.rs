//! Swarm search: tasks are deterministic and independent, the merge keeps the shortest
//! counterexample known and confirms it, and nothing a swarm reports contradicts the exhaustive
//! checker.

use crate::all_policies;
use coherence_model::{Bounds, CoherenceModel, check_all};
use coherence_sim::generate::Shard;
use coherence_sim::swarm::{Plan, Sketch, TaskReport, merge, run};
use std::process::Command;

const SMALL: Bounds = Bounds { turns: 1, auth_changes: 1, ..Bounds::DEFAULT };
const PLAN: Plan = Plan { seed: 11, walks: 300, depth: 30 };

fn models() -> Vec<CoherenceModel> {
    all_policies().into_iter().map(|p| CoherenceModel::new(p, SMALL)).collect()
}

fn tasks(models: &[CoherenceModel], n: u32) -> Vec<TaskReport> {
    (0..n).map(|index| run(models, PLAN, Shard { index, count: n })).collect()
}

#[test]
fn a_task_is_deterministic_and_tasks_differ() {
    let models = models();
    let [a, b, c] = [2, 2, 3].map(|i| run(&models, PLAN, Shard { index: i - 1, count: 4 }));
    assert_eq!(serde_json::to_string(&a).unwrap(), serde_json::to_string(&b).unwrap(), "the same task twice");
    assert_ne!(a.config, c.config, "two tasks draw different configurations");
    assert_ne!(a.policies[0].sketch, c.policies[0].sketch, "two tasks visit different states");
}

#[test]
fn nothing_a_swarm_finds_contradicts_the_checker() {
    let models = models();
    let reports = tasks(&models, 4);
    let union = merge(&reports).expect("the tasks merge");
    let exhaustive = check_all(&all_policies(), SMALL, 2);
    let mut found = 0;
    for (merged, report) in union.policies.iter().zip(&exhaustive) {
        assert_eq!(merged.model.policy.name, report.policy.name);
        for (known, outcome) in merged.known.iter().zip(&report.invariants) {
            let Some(known) = known else { continue };
            found += 1;
            let shortest = outcome.counterexample.as_ref().unwrap_or_else(|| {
                panic!(
                    "the swarm broke {} × {}, which the checker says holds",
                    merged.model.policy.name, outcome.invariant.id
                )
            });
            assert!(known.trace.len() >= shortest.len(), "no walk is shorter than the breadth-first shortest");
        }
        // The union visited no more distinct states than exist (the sketch's error is about 1.6%).
        assert!(
            merged.coverage <= report.unique_states as f64 * 1.05,
            "{}: coverage over the state count",
            report.policy.name
        );
    }
    assert!(found > 50, "the swarm finds most violations at these bounds; found {found}");
}

#[test]
fn the_merge_keeps_the_shortest_and_does_not_depend_on_order() {
    let models = models();
    let reports = tasks(&models, 3);
    let forward = merge(&reports).unwrap();
    let mut reversed = reports.clone();
    reversed.reverse();
    let backward = merge(&reversed).unwrap();
    assert_eq!(coherence_sim::swarm::text(&forward), coherence_sim::swarm::text(&backward));
    for (k, policy) in forward.policies.iter().enumerate() {
        for report in &reports {
            for found in &report.policies[k].violations {
                let at = coherence_model::INVARIANTS.iter().position(|i| i.id == found.invariant).unwrap();
                let known = policy.known[at].as_ref().expect("a violation a task found is in the union");
                assert!(known.trace.len() <= found.actions.len());
            }
        }
        let single = merge(&reports[..1]).unwrap();
        assert!(policy.coverage >= single.policies[k].coverage, "the union covers at least one task");
    }
}

#[test]
fn the_merge_refuses_what_it_cannot_trust() {
    let models = models();
    let reports = tasks(&models, 2);
    let refuse = |reports: &[TaskReport], message: &str| {
        let error = merge(reports).expect_err(message);
        assert!(error.contains(message), "`{error}` lacks `{message}`");
    };
    let mut tampered = reports.clone();
    let (k, _) = tampered[0].policies.iter().enumerate().find(|(_, p)| !p.violations.is_empty()).unwrap();
    let found = &mut tampered[0].policies[k].violations[0];
    found.actions[0] = coherence_model::Action::UserRestart { session: coherence_model::state::SessionId(2) };
    refuse(&tampered, "does not replay at step 1");
    let mut long = reports.clone();
    let depth = long[0].config.depth as usize;
    let found = &mut long[0].policies[k].violations[0];
    found.actions = found.actions.iter().copied().cycle().take(depth + 1).collect();
    refuse(&long, "longer than the task's walks");
    let mut config = reports.clone();
    config[1].config.depth += 1;
    refuse(&config, "not the one its plan draws");
    let mut plan = reports.clone();
    plan[1].walks += 1;
    refuse(&plan, "disagree on the number of tasks, --walks or --depth");
    let mut other = reports.clone();
    other[1].bounds.turns = 2;
    refuse(&other, "checked another model");
    refuse(&[reports[0].clone(), reports[0].clone()], "is given twice");
    let mut format = reports.clone();
    format[0].format = "coherence-swarm/0".to_owned();
    refuse(&format, "expected `coherence-swarm/1`");
    let mut sketch = reports.clone();
    sketch[0].policies[0].sketch.truncate(10);
    refuse(&sketch, "a sketch is 8192 hex digits");
    refuse(&[], "nothing to merge");
}

#[test]
fn the_sketch_estimates_distinct_counts() {
    for n in [100u64, 10_000, 1_000_000] {
        let mut sketch = Sketch::default();
        for k in 0..n {
            // Distinct, well-mixed 64-bit values (as fingerprints are), each added twice.
            let h = splitmix64(k);
            sketch.add(h);
            sketch.add(h);
        }
        let estimate = sketch.estimate();
        assert!((estimate - n as f64).abs() <= n as f64 * 0.05, "{n} distinct values estimated as {estimate}");
        assert_eq!(Sketch::from_hex(&sketch.to_hex()).unwrap(), sketch);
    }
}

#[test]
fn the_command_runs_tasks_and_merges_them() {
    let dir = std::env::temp_dir().join(format!("coherence-swarm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let coherence = |args: &[&str]| Command::new(env!("CARGO_BIN_EXE_coherence")).args(args).output().unwrap();
    let mut files = Vec::new();
    for task in ["1/2", "2/2"] {
        let path = dir.join(format!("task-{}.json", &task[..1]));
        let out = coherence(&[
            "swarm",
            "run",
            "--task",
            task,
            "--seed",
            "3",
            "--walks",
            "200",
            "--policy",
            "session-start-only",
            "--turns",
            "1",
            "--out",
            path.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        files.push(path.to_str().unwrap().to_owned());
    }
    let merged = coherence(&[&["swarm", "merge"][..], &files.iter().map(String::as_str).collect::<Vec<_>>()].concat());
    assert_eq!(merged.status.code(), Some(0), "{}", String::from_utf8_lossy(&merged.stderr));
    let text = String::from_utf8(merged.stdout).unwrap();
    assert!(text.contains("2 task(s) merged (seed 3)") && text.contains("session-start-only × INV-1"), "{text}");
    for (args, message) in [
        (vec!["swarm", "run", "--task", "0/2"], "shard 0/2 does not exist"),
        (vec!["swarm", "run", "--task", "3"], "is not of the form i/n"),
        (vec!["swarm", "run", "--task", "1/1", "--depth", "0"], "invalid value '0'"),
        (vec!["swarm", "merge", "/nonexistent.json"], "cannot read /nonexistent.json"),
        (vec!["swarm", "merge", "Cargo.toml"], "is not a swarm task report"),
    ] {
        let out = coherence(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(message),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A bijective 64-bit mixer (splitmix64's finaliser).
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
