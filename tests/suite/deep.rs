//! The deep tier: long walks at the largest bounds the model represents, which `recommended`
//! passes and which reach what the standard corpus does not (three sessions, four connectors,
//! walks up to 200 steps, notification storms).

use coherence_model::{Action, RECOMMENDED};
use coherence_sim::engine::{Verdict, replay};
use coherence_sim::generate::{DEEP_BOUNDS, Shard, deep_walks};
use coherence_sim::host::ReferenceHost;
use std::collections::BTreeMap;

#[test]
fn deep_walks_are_long_storm_and_pass_recommended() {
    let walks = deep_walks(1, 64, Shard::ALL);
    assert_eq!(walks.len(), 64);
    for f in &walks {
        assert_eq!((f.bounds.connectors, f.bounds.sessions), (4, 3));
        assert_eq!(f.bounds, DEEP_BOUNDS);
        f.check_behaviour().unwrap();
        let run = replay(f, &mut ReferenceHost::new(RECOMMENDED));
        assert!(matches!(run.verdict, Verdict::Pass), "{}: {:?}", f.id, run.verdict);
    }
    // The budgets (6 of each, the most a packed state holds) bound a walk: every one is long,
    // and some pass 100 steps.
    let shortest = walks.iter().map(|f| f.steps.len()).min().unwrap();
    assert!(shortest >= 40, "a deep walk of {shortest} steps");
    let long = walks.iter().filter(|f| f.steps.len() >= 100).count();
    assert!(long >= 1, "no deep walk of 100 steps or more");
    // Notifications delivered on one link, at most, in any walk: a storm is more than the
    // standard corpus ever delivers (4).
    let storm = walks
        .iter()
        .map(|f| {
            let mut per_link = BTreeMap::new();
            for step in &f.steps {
                if let Action::DeliverNotification { session, connector } = step.action {
                    *per_link.entry((session, connector)).or_insert(0) += 1;
                }
            }
            per_link.into_values().max().unwrap_or(0)
        })
        .max()
        .unwrap();
    assert!(storm > 4, "at most {storm} notifications delivered on one link");
    // Sessions interleave: some walk acts in all three sessions.
    assert!(walks.iter().any(|f| {
        let sessions: std::collections::BTreeSet<_> = f.steps.iter().filter_map(|s| s.action.session()).collect();
        sessions.len() == 3
    }));
}

#[test]
fn the_deep_tier_is_deterministic_and_shards_partition_it() {
    let whole: Vec<String> = deep_walks(3, 6, Shard::ALL).iter().map(|f| f.to_json()).collect();
    assert_eq!(whole, deep_walks(3, 6, Shard::ALL).iter().map(|f| f.to_json()).collect::<Vec<_>>());
    let mut shards: Vec<String> =
        (0..2).flat_map(|index| deep_walks(3, 6, Shard { index, count: 2 })).map(|f| f.to_json()).collect();
    shards.sort();
    let mut sorted = whole;
    sorted.sort();
    assert_eq!(shards, sorted);
}
