//! Host mutants: generated, named, told apart from the reference host by the checker where they
//! can be, never killed where the checker shows them equivalent, and runnable as adapters.

use crate::conform::{coherence, corpus};
use coherence_model::mutant::{Operator, Site, divergences};
use coherence_model::system::Servers;
use coherence_model::{Bounds, CoherenceModel, Mutant, RECOMMENDED};
use coherence_sim::mutants::kills;

/// Small enough to search in a second, large enough (two connectors) to expose a decision keyed
/// by the wrong connector.
const SMALL: Bounds = Bounds {
    connectors: 2,
    sessions: 1,
    turns: 1,
    auth_changes: 1,
    faults: 1,
    commands: 1,
    symmetry: false,
    servers: Servers::Any,
    revisions: coherence_model::system::Revisions::Handshake,
    contexts: coherence_model::state::Contexts::One,
};

fn named(name: &str) -> Mutant {
    Mutant::named(name).unwrap_or_else(|| panic!("no mutant {name}"))
}

#[test]
fn every_mutant_is_generated_once_with_a_name_that_round_trips() {
    let all = Mutant::all();
    let names: std::collections::BTreeSet<String> = all.iter().map(|m| m.name()).collect();
    assert_eq!(names.len(), all.len(), "two mutants share a name");
    for m in &all {
        assert_eq!(Mutant::named(&m.name()), Some(*m));
    }
    for site in Site::ALL {
        assert!(all.iter().any(|m| m.site == *site), "{} has no mutant", site.name());
    }
    for operator in Operator::ALL {
        assert!(all.iter().any(|m| m.operator == operator), "{} makes no mutant", operator.name());
    }
    assert_eq!(Mutant::named("relist-on-notify/sideways"), None);
}

/// Mutants whose change no reachable state exercises: each is a real change of the code (a
/// wrong connector, an off-by-one count, a dropped guard), which `recommended`'s other choices
/// make moot.
const EQUIVALENT: [&str; 4] = [
    // Every connector is re-listed when the read fails: shifting each by one re-lists them all.
    "relist-on-read-failure/wrong-connector",
    // Superseded marks are read only by a host that guards superseded replies.
    "mark-superseded/off-by-one",
    // A host that holds while refreshing holds the turn again at once.
    "hold-after-read/drop",
    // The guard is off in recommended: the condition is already false.
    "ignore-superseded/drop",
];

#[test]
fn the_checker_finds_where_a_mutant_decides_otherwise_and_nothing_for_an_equivalent_one() {
    let mutants: Vec<Mutant> =
        EQUIVALENT.iter().chain(&["relist-on-notify/drop", "apply-reply/wrong-connector"]).map(|n| named(n)).collect();
    let model = CoherenceModel::new(RECOMMENDED, SMALL);
    let one = divergences(&model, &mutants, 1);
    for (m, d) in mutants.iter().zip(&one) {
        if EQUIVALENT.contains(&m.name().as_str()) {
            assert!(d.is_none(), "{m} should be equivalent at these bounds");
            continue;
        }
        let d = d.as_ref().unwrap_or_else(|| panic!("{m} should diverge"));
        // The divergence is genuine: the mutant steps the action otherwise, or enables others.
        let last = d.trace.steps.last().map_or(d.trace.init, |(_, s)| *s);
        let mutated = CoherenceModel { mutant: Some(*m), ..model.clone() };
        match d.action {
            Some(a) => assert_ne!(model.step(&last, a), mutated.step(&last, a), "{m}"),
            None => {
                let (mut ours, mut theirs) = (Vec::new(), Vec::new());
                model.enabled_actions(&last, &mut ours);
                mutated.enabled_actions(&last, &mut theirs);
                assert_ne!(ours, theirs, "{m}");
            }
        }
    }
    // The same answers, at the same depth, on two threads.
    let two = divergences(&model, &mutants, 2);
    let shape = |ds: &[Option<coherence_model::mutant::Divergence>]| {
        ds.iter().map(|d| d.as_ref().map(|d| (d.trace.len(), d.action))).collect::<Vec<_>>()
    };
    assert_eq!(shape(&one), shape(&two));
}

/// A mutant with memory reaches states `recommended` does not, so its own states are searched:
/// it is told apart where its memory changes a decision (a capped re-list the second time, a late
/// one at once), every step before that is `recommended`'s (its memory aside), and a cap that no
/// state of the bounds reaches twice tells nothing.
#[test]
fn a_mutant_with_memory_is_told_apart_where_its_memory_changes_a_decision() {
    let forget = |s: coherence_model::State| coherence_model::State { memo: Default::default(), ..s };
    let model = CoherenceModel::new(RECOMMENDED, SMALL);
    // A restart re-lists both connectors: the cap bites at the second.
    let mutants = [named("relist-on-restart/capped"), named("relist-on-notify/late")];
    for (m, d) in mutants.iter().zip(divergences(&model, &mutants, 1)) {
        let d = d.unwrap_or_else(|| panic!("{m} should diverge"));
        let mutated = CoherenceModel { mutant: Some(*m), ..model.clone() };
        let mut state = d.trace.init;
        for (action, next) in &d.trace.steps {
            assert_eq!(model.step(&state, *action).map(forget), Some(forget(*next)), "{m}");
            assert_eq!(mutated.step(&state, *action).as_ref(), Some(next), "{m}: the trace is the mutant's");
            state = *next;
        }
        let a = d.action.unwrap_or_else(|| panic!("{m} enables what recommended enables"));
        assert_ne!(model.step(&state, a).map(forget), mutated.step(&state, a).map(forget), "{m}");
    }
    let late = &CoherenceModel { mutant: Some(mutants[1]), ..model.clone() };
    let report = coherence_model::check_model_on(late, 2);
    assert!(report.invariants.iter().any(|o| o.invariant.id == "INV-7" && o.counterexample.is_some()));
    // One in-session authentication: the cap never bites. Three auth changes let the user
    // authenticate, lose the token and authenticate again: the second re-list is capped.
    let capped = named("relist-on-authenticate/capped");
    let once = Bounds { connectors: 1, faults: 0, commands: 0, ..SMALL };
    assert!(divergences(&CoherenceModel::new(RECOMMENDED, once), &[capped], 1)[0].is_none());
    let twice = Bounds { auth_changes: 3, ..once };
    assert!(divergences(&CoherenceModel::new(RECOMMENDED, twice), &[capped], 1)[0].is_some());
    assert_eq!(capped.classifying_bounds().len(), 3);
    assert_eq!(named("relist-on-restart/drop").classifying_bounds().len(), 2);
}

#[test]
fn no_fixture_kills_a_mutant_the_checker_shows_equivalent_and_some_kill_a_defect() {
    let mutants: Vec<Mutant> = EQUIVALENT.iter().chain(&["relist-on-notify/drop"]).map(|n| named(n)).collect();
    let found = kills(RECOMMENDED, &mutants, corpus(), 2);
    for k in &found[..EQUIVALENT.len()] {
        assert_eq!(k.count(), 0, "{} is killed by {:?} {:?}", k.mutant, k.killed_by, k.host_failed);
    }
    assert!(found[EQUIVALENT.len()].count() >= 5, "relist-on-notify/drop killed by {}", found[4].count());
}

#[test]
fn a_mutant_runs_as_an_adapter_and_the_runner_catches_it() {
    let bin = env!("CARGO_BIN_EXE_coherence");
    let adapter = format!("{bin} ref-adapter --mutant relist-on-notify/drop");
    let fixture = "counterexample/broken-advertised-only/INV-7";
    let out = coherence(&["conform", "--adapter", &adapter, "--fixture", fixture]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("FAIL") && text.contains("INV-7"), "{text}");
    // The reference host, unmutated, passes the same fixture.
    let plain = coherence(&["conform", "--adapter", &format!("{bin} ref-adapter"), "--fixture", fixture]);
    assert_eq!(plain.status.code(), Some(0), "{}", String::from_utf8_lossy(&plain.stdout));
    let bad = coherence(&["ref-adapter", "--mutant", "relist-on-notify/sideways"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown mutant `relist-on-notify/sideways`"));
    let listed = coherence(&["mutants"]);
    assert_eq!(listed.status.code(), Some(0));
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.contains(&format!("{} mutants of recommended", Mutant::all().len())), "{listed}");
}

/// The classification `coherence mutants --classify` printed, as committed in MUTANTS.md: per
/// mutant, its class.
fn committed_classes() -> std::collections::BTreeMap<String, String> {
    let text = include_str!("../../MUTANTS.md");
    let block = text
        .split("<!-- classification -->")
        .nth(1)
        .and_then(|rest| rest.split("<!-- /classification -->").next())
        .expect("MUTANTS.md has a classification block");
    block
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let name = words.next()?;
            let class = words.next()?.trim_end_matches(':');
            Mutant::named(name).map(|_| (name.to_owned(), class.to_owned()))
        })
        .collect()
}

/// SPEC.md §11.4: every defect is killed by at least five fixtures of the committed corpus, and
/// no fixture kills a mutant the checker shows equivalent.
#[test]
fn the_committed_corpus_kills_every_defect_five_times() {
    let classes = committed_classes();
    let all = Mutant::all();
    assert_eq!(classes.len(), all.len(), "MUTANTS.md classifies every mutant: run `coherence mutants --classify`");
    let found = kills(RECOMMENDED, &all, corpus(), 2);
    let mut weak = Vec::new();
    for k in &found {
        let class = &classes[&k.mutant.name()];
        match class.as_str() {
            "defect" if k.count() < 5 => weak.push(format!("{} ({})", k.mutant, k.count())),
            "equivalent" => assert_eq!(k.count(), 0, "{} is equivalent, yet killed by {:?}", k.mutant, k.killed_by),
            _ => {}
        }
        println!("{:<45} {class:<10} killed by {}", k.mutant.name(), k.count());
    }
    assert!(weak.is_empty(), "defects killed by fewer than 5 fixtures: {weak:?}: run `coherence gen --out fixtures`");
}

/// Every fixture of the mutant strategy is one its mutant fails (the runner, not the model, says
/// so).
#[test]
fn every_mutant_fixture_kills_its_mutant() {
    let fixtures: Vec<_> = corpus().iter().filter(|f| f.provenance.strategy == "mutant").collect();
    assert!(fixtures.len() >= 20, "{} mutant fixtures", fixtures.len());
    for f in fixtures {
        let mutant = named(f.provenance.mutant.as_deref().expect("a mutant fixture names its mutant"));
        assert!(coherence_sim::generate::kills_mutant(f, mutant), "{} does not kill {mutant}", f.id);
    }
}

/// MUTANTS.md is what the checker computes now. Heavy (about 3 minutes on 2 cores): the
/// `--ignored` tier.
#[test]
#[ignore = "heavy tier: cargo test --workspace --release -- --ignored"]
fn the_classification_in_mutants_md_is_what_the_checker_computes() {
    let classified = coherence_sim::mutants::classify(RECOMMENDED, &Mutant::all(), 2);
    let fresh = coherence_sim::mutants::text(RECOMMENDED, &classified, None, 5);
    let committed = include_str!("../../MUTANTS.md");
    assert!(
        committed.contains(&format!("<!-- classification -->\n```text\n{fresh}```\n<!-- /classification -->")),
        "MUTANTS.md is stale: run `coherence mutants --classify` and paste its output:\n{fresh}"
    );
}
