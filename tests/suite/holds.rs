//! SPEC.md INV-11 bounds holds in host steps. Measured here on the reachable graph of
//! `recommended`: the runs of host steps (deliveries and timeouts) that keep one turn held must be
//! free of cycles (a cycle would be a hold without end, which INV-11's state predicate cannot see),
//! and the longest is the figure SPEC.md states.

use coherence_model::state::State;
use coherence_model::{Action, Bounds, CoherenceModel, Key, RECOMMENDED, fingerprint, search};
use std::collections::HashMap;

fn host_step(action: &Action) -> bool {
    matches!(
        action,
        Action::DeliverListing { .. }
            | Action::DeliverNotification { .. }
            | Action::DeliverAccount { .. }
            | Action::TimeOutListing { .. }
    )
}

fn held(state: &State) -> bool {
    state.sessions.iter().any(|s| s.turn.is_some_and(|t| t.held))
}

/// The longest path in the graph of held states joined by host steps; `None` if it has a cycle.
fn longest(edges: &HashMap<u64, Vec<u64>>) -> Option<usize> {
    // Iterative depth-first search with three colours: absent (unseen), 0 (on the stack), done.
    let mut depth: HashMap<u64, usize> = HashMap::new();
    let mut on_stack: HashMap<u64, bool> = HashMap::new();
    let mut best = 0;
    for &root in edges.keys() {
        if depth.contains_key(&root) {
            continue;
        }
        let mut stack: Vec<(u64, usize)> = vec![(root, 0)];
        on_stack.insert(root, true);
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            let children = edges.get(&node).map_or(&[][..], Vec::as_slice);
            if *next < children.len() {
                let child = children[*next];
                *next += 1;
                if on_stack.get(&child) == Some(&true) {
                    return None;
                }
                if !depth.contains_key(&child) && edges.contains_key(&child) {
                    on_stack.insert(child, true);
                    stack.push((child, 0));
                }
            } else {
                let d = children.iter().map(|c| depth.get(c).map_or(1, |d| d + 1)).max().unwrap_or(0);
                depth.insert(node, d);
                on_stack.insert(node, false);
                best = best.max(d);
                stack.pop();
            }
        }
    }
    Some(best)
}

/// Heavy (about 50 s of a core, the whole graph of a model in memory): the `--ignored` tier.
#[test]
#[ignore = "heavy tier: cargo test --workspace --release -- --ignored"]
fn a_hold_ends_within_the_stated_host_steps() {
    let bounds = Bounds { turns: 1, symmetry: false, ..Bounds::DEFAULT };
    let model = CoherenceModel::new(RECOMMENDED, bounds);
    let mut edges: HashMap<u64, Vec<u64>> = HashMap::new();
    search(
        &model,
        Key::Whole,
        |_, _| {},
        |_, before, action, after| {
            if host_step(&action) && held(before) && held(after) {
                edges.entry(fingerprint(before)).or_default().push(fingerprint(after));
            }
        },
    );
    assert!(!edges.is_empty(), "recommended holds turns");
    let longest = longest(&edges).expect("a hold of recommended never cycles");
    // A hold's last host step releases it, so a hold lasts at most `longest + 1` host steps.
    println!("the longest hold of recommended lasts {} host steps", longest + 1);
    assert_eq!(longest + 1, 13, "SPEC.md INV-11 states the longest hold: update it with this figure");
}
