//! Random walks through the model: no panic, and the structural facts hold in every state.

use coherence_model::invariants::structural_violation;
use coherence_model::symmetry::canonical;
use coherence_model::{Bounds, CoherenceModel, fingerprint};
use proptest::prelude::*;

fn bounds() -> impl Strategy<Value = Bounds> {
    use coherence_model::system::{Revisions, Servers};
    let revisions = prop_oneof![Just(Revisions::Handshake), Just(Revisions::Stateless), Just(Revisions::Mixed)];
    use coherence_model::state::Contexts;
    let servers = prop_oneof![3 => Just(Servers::Any), 1 => Just(Servers::Reliable)];
    let contexts = prop_oneof![3 => Just(Contexts::One), 1 => Just(Contexts::Two)];
    ((1u8..=3, 1u8..=3, 1u8..=3, 0u8..=3, 0u8..=3, 0u8..=2), revisions, servers, contexts).prop_map(
        |((connectors, sessions, turns, auth_changes, faults, commands), revisions, servers, contexts)| Bounds {
            connectors,
            // Three sessions only with two contexts (the second user's two), two at least.
            sessions: match contexts {
                Contexts::One => sessions.min(2),
                Contexts::Two => sessions.max(2),
            },
            turns,
            auth_changes,
            faults,
            commands,
            symmetry: true,
            servers,
            revisions,
            contexts,
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_walks_keep_the_structure(
        policy in 0..crate::all_policies().len(),
        bounds in bounds(),
        init in any::<prop::sample::Index>(),
        choices in prop::collection::vec(any::<prop::sample::Index>(), 0..60),
        deploys in any::<bool>(),
    ) {
        let mut model = CoherenceModel::new(crate::all_policies()[policy], bounds);
        if deploys {
            model.faults = model.faults.with(coherence_model::system::Fault::DeployTools);
        }
        let inits = model.initial_states();
        let mut state = inits[init.index(inits.len())];
        let mut actions = Vec::new();
        for choice in choices {
            actions.clear();
            model.enabled_actions(&state, &mut actions);
            if actions.is_empty() {
                break;
            }
            let action = actions[choice.index(actions.len())];
            state = model.step(&state, action).expect("enabled actions step");
            prop_assert_eq!(structural_violation(&model, &state), None);
            // The representative is canonical: renaming twice changes nothing.
            let rep = canonical(&state);
            prop_assert_eq!(fingerprint(&canonical(&rep)), fingerprint(&rep));
            // Invariants and premises are symmetric: the representative judges alike.
            for invariant in coherence_model::INVARIANTS {
                prop_assert_eq!(invariant.holds(&model, &state), invariant.holds(&model, &rep));
                prop_assert_eq!(invariant.premise_holds(&model, &state), invariant.premise_holds(&model, &rep));
            }
            // The model facts the premise proofs rely on hold in every state.
            prop_assert_eq!(coherence_model::invariants::broken_constraints(&model, &state), Vec::<&str>::new());
            for invariant in coherence_model::INVARIANTS {
                if let Some(focus) = invariant.violation(&model, &state) {
                    prop_assert!(invariant.premise_at(&focus), "{} violated without its premise", invariant.id);
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Every generated walk is a behaviour of the model, reads back as written, and the reference
    /// host passes it.
    #[test]
    fn generated_walks_are_behaviours_that_round_trip(seed in any::<u64>(), count in 1usize..4) {
        use coherence_sim::fixture::Fixture;
        for fixture in coherence_sim::generate::random_walks(seed, count, coherence_sim::generate::Shard::ALL) {
            prop_assert_eq!(&Fixture::from_json(&fixture.to_json(), "walk").unwrap(), &fixture);
            let states = coherence_sim::itf::states(&fixture);
            prop_assert!(states.is_ok());
            let model = CoherenceModel::new(coherence_model::RECOMMENDED, fixture.bounds);
            let states = states.unwrap();
            for (window, step) in states.windows(2).zip(&fixture.steps) {
                let mut enabled = Vec::new();
                model.enabled_actions(&window[0].1, &mut enabled);
                prop_assert!(enabled.contains(&step.action));
            }
            let run = coherence_sim::engine::replay(&fixture, &mut coherence_sim::host::ReferenceHost::new(coherence_model::RECOMMENDED));
            prop_assert!(matches!(run.verdict, coherence_sim::engine::Verdict::Pass), "{:?}", run.verdict);
        }
    }
}
