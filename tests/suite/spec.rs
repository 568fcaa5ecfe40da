//! SPEC.md and the code name the same things, and say the same things about them.

use coherence::expected::{Cell, SPEC, Verdict, compare, parse_table};
use coherence_model::invariants::RETIRED;
use coherence_model::{Action, BROKEN_POLICIES, Bounds, HostPolicy, INVARIANTS, POLICIES};
use std::collections::BTreeSet;

/// Every `INV-n` SPEC.md mentions.
fn spec_ids() -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    let mut rest = SPEC;
    while let Some(at) = rest.find("INV-") {
        let digits: String = rest[at + 4..].chars().take_while(char::is_ascii_digit).collect();
        if !digits.is_empty() {
            ids.insert(format!("INV-{digits}"));
        }
        rest = &rest[at + 4..];
    }
    ids
}

/// SPEC.md §6, where the invariants are stated.
fn section_6() -> &'static str {
    &SPEC[SPEC.find("## 6. Invariants").unwrap()..SPEC.find("## 7.").unwrap()]
}

#[test]
fn spec_defines_exactly_the_invariants_the_code_checks_and_retired() {
    let code: BTreeSet<String> =
        INVARIANTS.iter().map(|i| i.id.to_owned()).chain(RETIRED.iter().map(|(id, _)| (*id).to_owned())).collect();
    assert_eq!(spec_ids(), code, "SPEC.md and model/src/invariants.rs disagree on invariant IDs");
    for invariant in INVARIANTS {
        let heading = format!("### {}: {}", invariant.id, invariant.name);
        assert!(section_6().contains(&heading), "SPEC.md §6 lacks the heading `{heading}`");
    }
    for (id, _) in RETIRED {
        assert!(section_6().contains(&format!("### {id}: ")), "SPEC.md §6 does not keep retired {id}");
        assert!(!INVARIANTS.iter().any(|i| i.id == *id), "{id} is retired and checked");
    }
}

/// The statement of every invariant in SPEC.md is the predicate the checker evaluates, rendered
/// from the same data: text and code cannot disagree without this test failing.
#[test]
fn spec_states_each_invariant_as_the_checker_evaluates_it() {
    let line = |text: String| section_6().lines().any(|l| l == text);
    for invariant in INVARIANTS {
        let statement = invariant.statement();
        assert!(
            line(format!("**Predicate.** {statement}")),
            "SPEC.md §6 must state {} exactly as the checker evaluates it:\n**Predicate.** {statement}",
            invariant.id
        );
        let premise = invariant.premise_words();
        assert!(
            line(format!("**Premise** ({}). {premise}", invariant.reach_property.split(' ').next().unwrap())),
            "SPEC.md §6 must state {}'s premise as the checker evaluates it:\n**Premise** ({}). {premise}",
            invariant.id,
            invariant.reach_property.split(' ').next().unwrap()
        );
    }
}

/// Each premise is implied by a violation of its invariant: proved over every assignment of the
/// atoms, given the model facts the checker confirms in every state it visits.
#[test]
fn every_premise_is_implied_by_a_violation() {
    for invariant in INVARIANTS {
        assert_eq!(invariant.premise_gap(), None, "{}: a violation need not reach the premise", invariant.id);
    }
}

/// The proof above can fail: a premise that misses part of a violation is found.
#[test]
fn an_unsound_premise_is_caught() {
    use coherence_model::invariants::{Atom, Expr};
    // INV-3's old premise: "a notice is shown", which misses a bare "no such tool".
    let old = coherence_model::invariants::Invariant {
        premise: Expr::All(&[Expr::Is(Atom::AvailableWholeTurn), Expr::Is(Atom::NoticeShown)]),
        ..*coherence_model::invariant("INV-3").unwrap()
    };
    let gap = old.premise_gap().expect("the old premise is not implied");
    assert!(gap.contains(&(Atom::AnsweredNoSuchTool, true)), "{gap:?}");
}

#[test]
fn spec_names_every_action_and_only_those() {
    let section = &SPEC[SPEC.find("## 3. Actions").unwrap()..SPEC.find("### 3.1").unwrap()];
    let named: BTreeSet<&str> =
        section.lines().filter_map(|l| l.strip_prefix("| `")).map(|l| l.split(['(', '`']).next().unwrap()).collect();
    let code: BTreeSet<&str> = Action::NAMES.into_iter().collect();
    assert_eq!(named, code);
}

#[test]
fn the_verdict_table_has_a_row_per_policy() {
    let table = parse_table(SPEC, "verdict-table").unwrap();
    let rows: BTreeSet<&str> = table.keys().map(String::as_str).collect();
    let policies: BTreeSet<&str> = POLICIES.iter().chain(BROKEN_POLICIES).map(|p| p.name).collect();
    assert_eq!(rows, policies);
    for policy in POLICIES {
        assert!(SPEC.contains(&format!("- `{}`:", policy.name)), "SPEC.md §5 does not describe {}", policy.name);
    }
    for name in [
        "verdict-table-reliable",
        "verdict-table-stateless",
        "verdict-table-stateless-reliable",
        "verdict-table-contexts-reliable",
    ] {
        let table = parse_table(SPEC, name).unwrap();
        let rows: BTreeSet<&str> = table.keys().map(String::as_str).collect();
        assert_eq!(rows, POLICIES.iter().map(|p| p.name).collect(), "{name}");
    }
}

/// SPEC.md §7.4's second table: MCP 2026-07-28 with servers that keep S-1 and S-2.
#[test]
fn spec_matches_the_computed_verdicts_under_2026_07_28_with_reliable_servers() {
    let differences = compare(crate::stateless_reliable_reports(), SPEC).unwrap().expect("default bounds are compared");
    assert_eq!(differences, vec![]);
    violated_cells_reach_their_premises(crate::stateless_reliable_reports());
}

/// SPEC.md §7.5's table: two authorization contexts behind one host or gateway.
#[test]
fn spec_matches_the_computed_verdicts_with_two_authorization_contexts() {
    let differences = compare(crate::contexts_reliable_reports(), SPEC).unwrap().expect("default bounds are compared");
    assert_eq!(differences, vec![]);
    violated_cells_reach_their_premises(crate::contexts_reliable_reports());
}

/// SPEC.md §7.5: S-4 is necessary. With reliable servers that may mark an authorization-dependent
/// list public, a cache that honours `cacheScope` serves the account's stubs to the second user,
/// who has the action tools, and breaks INV-1 in four steps; without it, it holds every invariant.
/// And with three sessions, two of them the second user's, it shares within that context and
/// INV-15 holds non-vacuously.
#[test]
fn s4_is_necessary_and_a_scoped_cache_shares_within_a_context() {
    use coherence_model::system::{Fault, Faults, Revisions, Servers};
    use coherence_model::{CoherenceModel, policy_named};
    let scoped = policy_named("shared-cache-scoped").unwrap();
    let reliable = Bounds { revisions: Revisions::Stateless, servers: Servers::Reliable, ..Bounds::DEFAULT };
    let verdict = |model: &CoherenceModel, id: &str| {
        coherence::expected::computed(&coherence_model::explore::check_model(model), id)
    };
    let public = CoherenceModel {
        faults: Faults::admitted_by(Servers::Reliable).with(Fault::PublicScope),
        ..CoherenceModel::new(scoped, reliable.with_two_contexts())
    };
    let report = coherence_model::explore::check_model(&public);
    assert_eq!(coherence::expected::computed(&report, "INV-1"), Verdict::Violated(4));
    assert_eq!(
        coherence::expected::computed(&report, "INV-7"),
        Verdict::Violated(4),
        "the other user's actions offered"
    );
    assert_eq!(coherence::expected::computed(&report, "INV-15"), Verdict::Holds, "public results may be shared");
    let three = Bounds { sessions: 3, turns: 1, auth_changes: 1, ..reliable.with_two_contexts() };
    let model = CoherenceModel::new(scoped, three);
    assert_eq!(verdict(&model, "INV-15"), Verdict::Holds, "a scoped cache shares within the second context");
    let always = CoherenceModel::new(policy_named("shared-cache").unwrap(), three);
    assert_eq!(verdict(&always, "INV-15"), Verdict::Violated(2));
}

/// SPEC.md §7.4's first table: MCP 2026-07-28 with any servers. Heavy: a minute of checking
/// (`coherence check --revisions stateless` compares the same table).
#[test]
#[ignore = "heavy tier: cargo test --workspace --release -- --ignored"]
fn spec_matches_the_computed_verdicts_under_2026_07_28() {
    let differences = compare(crate::stateless_reports(), SPEC).unwrap().expect("default bounds are compared");
    assert_eq!(differences, vec![]);
    violated_cells_reach_their_premises(crate::stateless_reports());
}

/// SPEC.md §7.6: the designs with deploys admitted. Heavy: half a minute of checking
/// (`coherence check --with-fault DeployTools` compares the same table). The broken policies are
/// not in that table, and are not compared against it.
#[test]
#[ignore = "heavy tier: cargo test --workspace --release -- --ignored"]
fn spec_matches_the_computed_verdicts_with_deploys() {
    use coherence_model::system::{Fault, Faults, Servers};
    use coherence_model::{CoherenceModel, POLICIES, check_all_models};
    let with_deploys = |policy| CoherenceModel {
        faults: Faults::admitted_by(Servers::Any).with(Fault::DeployTools),
        ..CoherenceModel::new(policy, coherence_model::Bounds::DEFAULT)
    };
    let models: Vec<CoherenceModel> = POLICIES.iter().map(|&p| with_deploys(p)).collect();
    let reports = check_all_models(&models, 2);
    let differences = compare(&reports, SPEC).unwrap().expect("the deploy table is compared");
    assert_eq!(differences, vec![]);
    violated_cells_reach_their_premises(&reports);
    // A broken policy is not compared with the deploy table: nothing differs for want of a row.
    let broken = [with_deploys(coherence_model::BROKEN_POLICIES[0])];
    let report = coherence_model::check_model(&broken[0]);
    assert_eq!(compare(&[report], SPEC).unwrap(), Some(vec![]));
}

/// SPEC.md §7.4: each 2026-07-28 choice of `recommended-mcp` is necessary. With reliable servers
/// whose listen streams may still end, it holds every invariant; opening the stream once, never
/// listening, or ignoring TTLs each breaks the invariant SPEC.md names.
#[test]
fn each_2026_07_28_choice_of_recommended_mcp_is_necessary() {
    use coherence_model::policy::{Listen, TtlUse};
    use coherence_model::system::{Fault, Faults, Revisions, Servers};
    use coherence_model::{CoherenceModel, RECOMMENDED_MCP};
    let bounds = Bounds { revisions: Revisions::Stateless, servers: Servers::Reliable, ..Bounds::DEFAULT };
    let faults = Faults::admitted_by(Servers::Reliable).with(Fault::LoseNotificationStream);
    let verdicts = |policy| {
        let model = CoherenceModel { faults, ..CoherenceModel::new(policy, bounds) };
        let report = coherence_model::explore::check_model(&model);
        INVARIANTS.iter().map(|i| (i.id, coherence::expected::computed(&report, i.id))).collect::<Vec<_>>()
    };
    for (id, verdict) in verdicts(coherence_model::RECOMMENDED_MCP) {
        assert!(!matches!(verdict, Verdict::Violated(_)), "recommended-mcp breaks {id}");
    }
    for (name, policy, breaks, steps) in [
        ("listen once", HostPolicy { listen: Listen::Open, ..RECOMMENDED_MCP }, "INV-1", 4),
        ("never listen", HostPolicy { listen: Listen::Never, ..RECOMMENDED_MCP }, "INV-1", 3),
        ("ignore TTLs", HostPolicy { ttl: TtlUse::Ignore, ..RECOMMENDED_MCP }, "INV-10", 7),
    ] {
        let verdicts = verdicts(policy);
        let got = verdicts.iter().find(|(id, _)| *id == breaks).unwrap().1;
        assert_eq!(got, Verdict::Violated(steps), "recommended-mcp that would {name}: {verdicts:?}");
    }
}

#[test]
fn spec_matches_the_computed_verdicts() {
    let differences = compare(crate::default_reports(), SPEC).unwrap().expect("default bounds are compared");
    assert_eq!(differences, vec![]);
}

/// [`spec_matches_the_computed_verdicts`] for the broken policies' rows. Heavy.
#[test]
#[ignore = "heavy tier: cargo test --workspace --release -- --ignored"]
fn spec_matches_the_computed_verdicts_of_the_broken_policies() {
    let differences = compare(crate::broken_reports(), SPEC).unwrap().expect("default bounds are compared");
    assert_eq!(differences, vec![]);
}

#[test]
fn spec_matches_the_computed_verdicts_with_reliable_servers() {
    let differences = compare(crate::reliable_reports(), SPEC).unwrap().expect("default bounds are compared");
    assert_eq!(differences, vec![]);
}

/// Every violated cell has its premise reached: a violation is never reported against a
/// situation the non-vacuity report says was not reached.
#[test]
fn every_violated_cell_reaches_its_premise() {
    violated_cells_reach_their_premises(crate::default_reports().iter().chain(crate::reliable_reports()));
}

/// [`every_violated_cell_reaches_its_premise`] for the broken policies. Heavy.
#[test]
#[ignore = "heavy tier: cargo test --workspace --release -- --ignored"]
fn every_violated_cell_of_the_broken_policies_reaches_its_premise() {
    violated_cells_reach_their_premises(crate::broken_reports());
}

fn violated_cells_reach_their_premises<'a>(reports: impl IntoIterator<Item = &'a coherence_model::CheckReport>) {
    for report in reports {
        for outcome in &report.invariants {
            if outcome.counterexample.is_some() {
                assert!(
                    outcome.witness.is_some(),
                    "{} × {}: violated, yet its premise is not reached",
                    report.policy.name,
                    outcome.invariant.id
                );
            }
        }
    }
}

#[test]
fn a_drifted_table_is_caught() {
    let row = "| recommended | holds | holds |";
    assert!(SPEC.contains(row), "the recommended row starts `{row}`");
    let drifted = SPEC.replacen(row, "| recommended | violated (3) | holds |", 1);
    let differences = compare(crate::default_reports(), &drifted).unwrap().unwrap();
    assert_eq!(differences.len(), 1);
    assert_eq!(differences[0].policy, "recommended");
    assert_eq!(differences[0].expected, "violated (3)");
    assert_eq!(differences[0].computed, "holds");
    // A vacuous cell marked as reached is a difference too.
    let line = SPEC.lines().find(|l| l.starts_with("| recommended |") && l.contains("holds (vacuous)")).unwrap();
    let vacuous = SPEC.replacen(line, &line.replacen("holds (vacuous)", "holds", 1), 1);
    let differences = compare(crate::default_reports(), &vacuous).unwrap().unwrap();
    assert_eq!(differences.len(), 1);
    assert_eq!((differences[0].expected.as_str(), differences[0].computed.as_str()), ("holds", "holds (vacuous)"));
}

#[test]
fn malformed_tables_are_rejected() {
    #[track_caller]
    fn check(spec: &str, error: &str) {
        assert_eq!(parse_table(spec, "t").unwrap_err(), error);
    }
    check("no table", "SPEC.md has no t:begin marker");
    check("<!-- t:begin -->", "SPEC.md has no t:end marker");
    check(
        "<!-- t:begin -->\n| policy | INV-1 |\n|---|---|\n| p | maybe |\n<!-- t:end -->",
        "p / INV-1: `maybe` is not `holds`, `holds (vacuous)` or `violated (n)`",
    );
    check(
        "<!-- t:begin -->\n| policy | INV-1 |\n|---|---|\n| p |\n<!-- t:end -->",
        "verdict table row `| p |` has 1 cells, expected 2",
    );
    check(
        "<!-- t:begin -->\n| policy | INV-1 |\n|---|---|\n| p | holds; deep: holds |\n<!-- t:end -->",
        "p / INV-1: cell `holds; deep: holds` marks a deep verdict equal to the default one",
    );
    check(
        "<!-- t:begin -->\n| policy | INV-1 |\n|---|---|\n| p | holds |\n| p | holds |\n<!-- t:end -->",
        "the verdict table has two rows for p",
    );
    let ok = parse_table(
        "<!-- t:begin -->\n| policy | INV-1 | INV-2 |\n|---|---|---|\n| p | violated (4) | holds (vacuous); deep: violated (8) |\n<!-- t:end -->",
        "t",
    )
    .unwrap();
    assert_eq!(ok["p"]["INV-1"], Cell { default: Verdict::Violated(4), deep: Verdict::Violated(4) });
    assert_eq!(ok["p"]["INV-2"], Cell { default: Verdict::Vacuous, deep: Verdict::Violated(8) });
}

/// SPEC.md §11.1 ranks broken invariants by harm, class by class, in the order, in the words and
/// with the members the code ranks them by.
#[test]
fn the_harm_ranking_in_spec_is_the_code_s() {
    use coherence_model::invariants::Harm;
    let mut classes: Vec<(Harm, Vec<&str>)> = Vec::new();
    let mut ranked: Vec<_> = INVARIANTS.iter().collect();
    ranked.sort_by_key(|i| i.rank());
    for i in ranked {
        match classes.last_mut() {
            Some((harm, ids)) if *harm == i.harm => ids.push(i.id),
            _ => classes.push((i.harm, vec![i.id])),
        }
    }
    let section = SPEC[SPEC.find("A fixture reports **every** invariant").expect("SPEC.md §11.1 states the ranking")..]
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let mut at = 0;
    for (harm, ids) in &classes {
        // Each class is named after the word that lists it ("first", "then", "last") or a `;`.
        let group = format!("{} ({})", harm.words(), ids.join(", "));
        let found = ["first ", "then ", "; ", "last "]
            .iter()
            .filter_map(|before| section[at..].find(&format!("{before}{group}")).map(|i| i + before.len()))
            .min()
            .unwrap_or_else(|| panic!("SPEC.md §11.1 lacks {group} ({harm:?}) in order"));
        at += found + group.len();
    }
}

/// SPEC.md §8's counterexample is what `coherence explain` prints, story and diagram: every
/// block between `explain:POLICY:INV-n` markers is generated, never edited by hand.
#[test]
fn spec_explain_blocks_are_what_explain_prints() {
    let mut rest = SPEC;
    let mut blocks = 0;
    while let Some(at) = rest.find("<!-- explain:") {
        let marker = &rest[at + "<!-- explain:".len()..];
        let name = marker.split(":begin -->").next().unwrap();
        let (policy, id) = name.split_once(':').expect("<!-- explain:POLICY:INV-n:begin -->");
        let begin = format!("<!-- explain:{name}:begin -->\n");
        let end = format!("<!-- explain:{name}:end -->");
        let start = rest.find(&begin).expect("a begin marker") + begin.len();
        let stop = rest.find(&end).expect("an end marker");
        let report = crate::default_report(policy);
        let model = coherence_model::CoherenceModel::new(report.policy, report.bounds);
        let invariant = coherence_model::invariant(id).expect("a known invariant");
        let block = coherence::explain::spec_block(&model, report, invariant).expect("a violated cell");
        assert!(
            rest[start..stop] == block,
            "SPEC.md's `{name}` block is not what `coherence explain --policy {policy} --invariant {id}` prints (text, then mermaid); it should read:\n{block}"
        );
        rest = &rest[stop + end.len()..];
        blocks += 1;
    }
    assert_eq!(blocks, 1, "SPEC.md §8 holds one generated counterexample");
}

/// SPEC.md §7.4's server finding is what `coherence server-finding` computes, and it says what S-5
/// rests on: the generic MCP host keeps INV-1 with every kind of server except one that never
/// notifies and gives a long TTL, where only the host that reads the account does.
#[test]
fn spec_server_finding_is_what_the_checker_computes() {
    let rows = coherence::finding::compute(2);
    let table = coherence::finding::markdown(&rows);
    let begin = "<!-- server-finding:begin -->\n";
    let start = SPEC.find(begin).expect("SPEC.md §7.4 has the server finding") + begin.len();
    let stop = SPEC.find("<!-- server-finding:end -->").expect("an end marker");
    assert!(
        SPEC[start..stop] == table,
        "SPEC.md's server finding is not what `coherence server-finding` prints; it should read:\n{table}"
    );
    let holds = |row: &coherence::finding::Row, host: &str| {
        let k = coherence::finding::HOSTS.iter().position(|h| *h == host).unwrap();
        coherence::expected::computed(&row.reports[k], "INV-1") == coherence::expected::Verdict::Holds
    };
    for row in &rows {
        let silent_and_long = row.kind
            == coherence_model::system::ServerKind {
                notify: coherence_model::state::Notify::Silent,
                ttl: coherence_model::state::Ttl::Long,
            };
        assert_eq!(holds(row, "recommended-mcp"), !silent_and_long, "{}", row.kind);
        assert!(holds(row, "recommended"), "{}", row.kind);
    }
}

/// SPEC.md §7.4: `recommended` holds every invariant with servers of both eras at once (about 100
/// million states). Heavy.
#[test]
#[ignore = "heavy tier: cargo test --workspace --release -- --ignored"]
fn recommended_holds_everything_with_servers_of_both_eras() {
    let bounds = Bounds { revisions: coherence_model::system::Revisions::Mixed, ..Bounds::DEFAULT };
    let report = &coherence_model::check_all(&[coherence_model::RECOMMENDED], bounds, 2)[0];
    for invariant in INVARIANTS {
        assert!(
            !matches!(coherence::expected::computed(report, invariant.id), Verdict::Violated(_)),
            "recommended breaks {} with mixed revisions",
            invariant.id
        );
    }
}
