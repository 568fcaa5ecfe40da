//! Every invariant can fail, every element of the recommended policies is needed, and where
//! `recommended` satisfies an invariant it reaches its premise (or SPEC.md says why not).

use crate::{any_report, default_report};
use coherence_model::policy::{ELEMENTS, RECOMMENDED_MCP, same_choices};
use coherence_model::system::Servers;
use coherence_model::{BROKEN_POLICIES, Bounds, HostPolicy, INVARIANTS, RECOMMENDED, check_all, policy_named};

/// For each invariant, a policy the checker must find violating it, at the default bounds: the
/// policy it exists to catch. The test command shows each of these failing through the runner
/// (`conform::the_corpus_kills_every_mutant`); the checker's side is heavy.
const BREAKERS: &[(&str, &str)] = &[
    ("INV-1", "session-start-only"),
    ("INV-2", "session-start-only"),
    ("INV-3", "broken-stale-notice"),
    ("INV-5", "session-start-only"),
    ("INV-6", "broken-mcp-hint"),
    ("INV-7", "broken-silent-failure"),
    ("INV-8", "broken-misroute"),
    ("INV-9", "restart-banner"),
    ("INV-10", "restart-banner"),
    ("INV-11", "broken-no-timeout"),
    ("INV-12", "broken-concurrent"),
    ("INV-13", "broken-no-hold"),
    ("INV-14", "broken-abort-on-stubs"),
    ("INV-15", "shared-cache"),
];

#[test]
#[ignore = "heavy tier: cargo test --workspace --release -- --ignored"]
fn every_invariant_has_a_policy_that_breaks_it() {
    for invariant in INVARIANTS {
        let (_, policy) = BREAKERS
            .iter()
            .find(|(id, _)| *id == invariant.id)
            .unwrap_or_else(|| panic!("{} has no breaking policy listed", invariant.id));
        // Isolation is judged between authorization contexts: SPEC.md §7.5's table.
        let report = match invariant.id {
            "INV-15" => crate::contexts_reliable_reports().iter().find(|r| r.policy.name == *policy).unwrap(),
            _ => any_report(policy),
        };
        let outcome = &report.invariants.iter().find(|o| o.invariant.id == invariant.id).unwrap();
        assert!(outcome.counterexample.is_some(), "{policy} must violate {}", invariant.id);
    }
    // The premise `recommended` never reaches is reachable: without single flight the race
    // exists.
    let concurrent = any_report("broken-concurrent");
    assert!(concurrent.invariants.iter().any(|o| o.invariant.id == "INV-12" && o.witness.is_some()));
}

/// `recommended` breaks nothing and reaches every premise but INV-12's, which single flight makes
/// unreachable (SPEC.md §7.1): no reply is ever older than one already received; INV-14's: it
/// never aborts a turn; and INV-15's: it keeps a cache per session and shares nothing (the
/// premise is reached, and holds, by `shared-cache-scoped` with three sessions:
/// `spec::s4_is_necessary_and_a_scoped_cache_shares_within_a_context`).
#[test]
fn recommended_reaches_every_premise_and_breaks_nothing() {
    for outcome in &default_report("recommended").invariants {
        assert!(outcome.counterexample.is_none(), "recommended violates {}", outcome.invariant.id);
        let expected = !["INV-12", "INV-14", "INV-15"].contains(&outcome.invariant.id);
        assert_eq!(outcome.witness.is_some(), expected, "recommended and the premise of {}", outcome.invariant.id);
    }
    // The premises are reachable: a host that re-lists on every notice reaches INV-12's (without
    // single flight the race exists: `every_invariant_has_a_policy_that_breaks_it` shows it of
    // `recommended` less single flight), and a host that aborts turns on failed lists reaches
    // INV-14's and holds it.
    let naive = default_report("list-changed-naive");
    assert!(naive.invariants.iter().any(|o| o.invariant.id == "INV-12" && o.witness.is_some()));
    let per_turn = default_report("fetch-per-turn");
    assert!(
        per_turn
            .invariants
            .iter()
            .any(|o| o.invariant.id == "INV-14" && o.witness.is_some() && o.counterexample.is_none())
    );
}

/// Each broken variant of `recommended` is the recommended policy with exactly one element
/// dropped (or, for `broken-misroute`, one defect added), and breaks an invariant at the default
/// bounds: every element is necessary. Heavy: the broken policies are checked in the `--ignored`
/// tier.
#[test]
#[ignore = "heavy tier: cargo test --workspace --release -- --ignored"]
fn every_element_of_recommended_is_necessary() {
    for element in ELEMENTS {
        let variant = policy_named(element.variant).unwrap();
        assert!(
            same_choices(&variant, &(element.drop)(RECOMMENDED)),
            "{} is not recommended without: {}",
            element.variant,
            element.what
        );
        let broken: Vec<&str> = any_report(element.variant)
            .invariants
            .iter()
            .filter(|o| o.counterexample.is_some())
            .map(|o| o.invariant.id)
            .collect();
        assert!(!broken.is_empty(), "{} breaks nothing: `{}` is not shown necessary", element.variant, element.what);
        // SPEC.md §7.3 lists exactly these.
        let row = format!("| `{}` | {} |", element.variant, broken.join(", "));
        assert!(coherence::expected::SPEC.contains(&row), "SPEC.md §7.3 must say `{row}`");
    }
    let named: Vec<&str> = ELEMENTS.iter().map(|e| e.variant).collect();
    for policy in BROKEN_POLICIES {
        let adds_a_defect = ["broken-misroute", "broken-abort-on-stubs"].contains(&policy.name);
        assert!(named.contains(&policy.name) || adds_a_defect, "{} drops no element", policy.name);
    }
    assert!(same_choices(&policy_named("recommended-mcp").unwrap(), &(ELEMENTS[0].drop)(RECOMMENDED)));
}

/// `recommended-mcp` has every element but the account read (and what to do when it fails). Each
/// of its elements is necessary: without it the host breaks an invariant that `recommended-mcp`
/// holds, with any servers or with servers that meet SPEC.md §7.2's requirements (where
/// `recommended-mcp` holds every invariant). Heavy (two checks per element at the default bounds):
/// the tier of `cargo test --workspace --release -- --ignored`, which CI runs.
#[test]
#[ignore = "heavy tier: cargo test --workspace --release -- --ignored"]
fn every_element_of_recommended_mcp_is_necessary() {
    let elements = &ELEMENTS[2..];
    let mut policies: Vec<HostPolicy> = vec![RECOMMENDED_MCP];
    policies.extend(elements.iter().map(|e| HostPolicy { name: e.variant, ..(e.drop)(RECOMMENDED_MCP) }));
    let violated = |r: &coherence_model::CheckReport| -> Vec<&str> {
        r.invariants.iter().filter(|o| o.counterexample.is_some()).map(|o| o.invariant.id).collect()
    };
    let any = check_all(&policies, Bounds::DEFAULT, 2);
    let reliable = check_all(&policies, Bounds { servers: Servers::Reliable, ..Bounds::DEFAULT }, 2);
    assert_eq!(violated(&reliable[0]), Vec::<&str>::new(), "recommended-mcp holds with reliable servers");
    let base = violated(&any[0]);
    for (k, element) in elements.iter().enumerate() {
        let new_any: Vec<&str> = violated(&any[k + 1]).into_iter().filter(|id| !base.contains(id)).collect();
        let new_reliable = violated(&reliable[k + 1]);
        assert!(
            !new_any.is_empty() || !new_reliable.is_empty(),
            "recommended-mcp without `{}` breaks nothing recommended-mcp does not",
            element.what
        );
        println!("recommended-mcp without `{}`: any servers {new_any:?}, reliable {new_reliable:?}", element.what);
    }
}

/// A counterexample is a real behaviour: replaying its actions from its initial state through the
/// model reproduces every state, and its last state breaks the invariant.
#[test]
fn counterexamples_replay() {
    replay_counterexamples(crate::default_reports());
}

/// [`counterexamples_replay`] of the broken policies. Heavy.
#[test]
#[ignore = "heavy tier: cargo test --workspace --release -- --ignored"]
fn counterexamples_of_the_broken_policies_replay() {
    replay_counterexamples(crate::broken_reports());
}

fn replay_counterexamples(reports: &[coherence_model::CheckReport]) {
    for report in reports {
        let model = coherence_model::CoherenceModel::new(report.policy, report.bounds);
        for outcome in &report.invariants {
            let Some(trace) = &outcome.counterexample else { continue };
            let mut state = trace.init;
            assert!(model.initial_states().contains(&state));
            for (action, next) in &trace.steps {
                let mut enabled = Vec::new();
                model.enabled_actions(&state, &mut enabled);
                assert!(
                    enabled.contains(action),
                    "{} × {}: {action:?} not enabled",
                    report.policy.name,
                    outcome.invariant.id
                );
                state = model.step(&state, *action).unwrap();
                assert_eq!(&state, next);
            }
            assert!(!outcome.invariant.holds(&model, &state));
            // The trace ends at its first violation.
            let mut state = trace.init;
            for (action, _) in &trace.steps[..trace.len() - 1] {
                state = model.step(&state, *action).unwrap();
                assert!(outcome.invariant.holds(&model, &state), "the trace goes on past a violation");
            }
        }
    }
}

/// Out-of-order service (`ServeLate`, SPEC.md §4) is a fault a design breaks under and only under:
/// `list-changed-guarded`'s generation guard holds INV-12 (vacuously: no reply it applies is ever
/// outdated) when one link's requests are served in the order sent, the retired assumption A-2,
/// and breaks it when an earlier request is served after a later one.
#[test]
fn out_of_order_service_is_a_fault_a_design_needs_to_be_checked_under() {
    use coherence_model::system::{Fault, Faults};
    use coherence_model::{CoherenceModel, check_model};
    let guarded = policy_named("list-changed-guarded").unwrap();
    let inv12 = |r: &coherence_model::CheckReport| {
        r.invariants.iter().find(|o| o.invariant.id == "INV-12").map(|o| o.counterexample.is_some()).unwrap()
    };
    let in_order = check_model(&CoherenceModel {
        faults: Faults::admitted_by(Servers::Any).without(Fault::ServeLate),
        ..CoherenceModel::new(guarded, Bounds::DEFAULT)
    });
    assert!(!inv12(&in_order), "the guard holds INV-12 when requests are served in order");
    assert!(inv12(default_report("list-changed-guarded")), "served out of order, the guard breaks INV-12");
    // Single flight is immune: recommended holds INV-12 with the fault enabled.
    assert!(!inv12(default_report("recommended")));
}

/// Each server fault of SPEC.md §4 that reliable servers rule out (S-1, S-2 of §7.2) is one a
/// design breaks under and only under: `recommended-mcp` trusts a reliable server's notifications
/// and holds every invariant under them; admit the one fault, and it silently misses tools
/// (INV-1) in a counterexample that injects that fault. A notification sent before the change
/// also leaves the agent's own handshake unnotified (INV-6, INV-13).
#[test]
fn each_server_fault_breaks_a_design_that_trusts_reliable_servers() {
    use coherence_model::system::{Fault, Faults};
    use coherence_model::{CoherenceModel, check_model};
    let reliable = Bounds { servers: Servers::Reliable, ..Bounds::DEFAULT };
    let broken = |r: &coherence_model::CheckReport| -> Vec<&str> {
        r.invariants.iter().filter(|o| o.counterexample.is_some()).map(|o| o.invariant.id).collect()
    };
    let trusting = CoherenceModel::new(RECOMMENDED_MCP, reliable);
    let holds = crate::reliable_reports().iter().find(|r| r.policy.name == RECOMMENDED_MCP.name).unwrap();
    assert_eq!(broken(holds), Vec::<&str>::new(), "recommended-mcp holds under reliable servers");
    for (fault, breaks) in [
        (Fault::LoseNotificationStream, &["INV-1", "INV-3"][..]),
        (Fault::NotifyBeforeUpdate, &["INV-1", "INV-3", "INV-6", "INV-13"]),
        (Fault::RefreshTokenSilently, &["INV-1", "INV-3"]),
    ] {
        assert!(Fault::ALL.contains(&fault) && fault.is_server_defect());
        assert!(Faults::admitted_by(Servers::Any).contains(fault), "{fault:?} is in the default fault model");
        let model = CoherenceModel { faults: Faults::admitted_by(Servers::Reliable).with(fault), ..trusting.clone() };
        let report = check_model(&model);
        let inv1 = report.invariants.iter().find(|o| o.invariant.id == "INV-1").unwrap();
        let trace = inv1.counterexample.as_ref().unwrap_or_else(|| panic!("{fault:?} breaks INV-1 of recommended-mcp"));
        assert!(
            trace.steps.iter().any(|(a, _)| a.fault() == Some(fault)),
            "the counterexample under {fault:?} injects it"
        );
        assert_eq!(broken(&report), breaks, "under {fault:?}");
    }
}

/// Paged replies (`PageListing`, SPEC.md §4) are what `broken-first-page` breaks under and only
/// under: with no reply paged it makes exactly `recommended`'s choices where it matters and holds
/// every invariant; with paging admitted it silently misses tools (INV-1) in a counterexample
/// that pages a reply. Reliable servers page too: paging is not a server defect.
#[test]
fn paged_replies_break_a_host_that_applies_the_first_page_and_only_it() {
    use coherence_model::system::{Fault, Faults};
    use coherence_model::{CoherenceModel, check_model};
    assert!(!Fault::PageListing.is_server_defect());
    assert!(Faults::admitted_by(Servers::Reliable).contains(Fault::PageListing));
    let first_page = policy_named("broken-first-page").unwrap();
    assert!(!first_page.follow_cursor && same_choices(&HostPolicy { follow_cursor: true, ..first_page }, &RECOMMENDED));
    let broken = |r: &coherence_model::CheckReport| -> Vec<&str> {
        r.invariants.iter().filter(|o| o.counterexample.is_some()).map(|o| o.invariant.id).collect()
    };
    // One connector keeps the check small; the default bounds are the verdict table's row.
    let bounds = Bounds { connectors: 1, ..Bounds::DEFAULT };
    let unpaged = check_model(&CoherenceModel {
        faults: Faults::admitted_by(Servers::Any).without(Fault::PageListing),
        ..CoherenceModel::new(first_page, bounds)
    });
    assert_eq!(broken(&unpaged), Vec::<&str>::new(), "without paged replies it is recommended");
    let paged = check_model(&CoherenceModel::new(first_page, bounds));
    let inv1 = paged.invariants.iter().find(|o| o.invariant.id == "INV-1").unwrap();
    let trace = inv1.counterexample.as_ref().expect("paged replies break INV-1 of broken-first-page");
    assert!(trace.steps.iter().any(|(a, _)| a.fault() == Some(Fault::PageListing)), "the counterexample pages a reply");
    // A host that follows cursors is never paged by the checker: nothing differs for it (§4).
    assert_eq!(
        check_model(&CoherenceModel::new(RECOMMENDED, bounds)).unique_states,
        check_model(&CoherenceModel {
            faults: Faults::admitted_by(Servers::Any).without(Fault::PageListing),
            ..CoherenceModel::new(RECOMMENDED, bounds)
        })
        .unique_states
    );
}

/// In-session authentication completed by the agent inside a turn (SPEC.md §4.1) is reachable,
/// and `relist_on_handshake` is what `recommended` needs for it: with the handshake admitted,
/// `recommended` holds every invariant it holds without it, and the same host that does not
/// re-list on the handshake breaks one in a counterexample where the agent completes it.
#[test]
fn an_agent_that_authenticates_inside_a_turn_needs_a_host_that_relists() {
    use coherence_model::{CoherenceModel, check_model};
    let bounds = Bounds { connectors: 1, ..Bounds::DEFAULT };
    let broken = |r: &coherence_model::CheckReport| -> Vec<&str> {
        r.invariants.iter().filter(|o| o.counterexample.is_some()).map(|o| o.invariant.id).collect()
    };
    let with = |policy: HostPolicy| check_model(&CoherenceModel::new(policy, bounds));
    let plain = check_model(&CoherenceModel { agent_handshake: false, ..CoherenceModel::new(RECOMMENDED, bounds) });
    let handshake = with(RECOMMENDED);
    assert!(handshake.unique_states > plain.unique_states, "the handshake adds behaviours");
    assert_eq!(broken(&handshake), broken(&plain), "recommended keeps its verdicts with the agent's handshake");
    const { assert!(RECOMMENDED.relist_on_handshake) };
    let deaf =
        with(HostPolicy { name: "recommended-without-relist-on-handshake", relist_on_handshake: false, ..RECOMMENDED });
    let new: Vec<&str> = broken(&deaf).into_iter().filter(|id| !broken(&plain).contains(id)).collect();
    assert!(!new.is_empty(), "without re-listing on the handshake, recommended breaks something");
    for id in new {
        let trace = deaf.invariants.iter().find(|o| o.invariant.id == id).unwrap().counterexample.as_ref().unwrap();
        assert!(
            trace.steps.iter().any(|(a, _)| matches!(a, coherence_model::Action::AgentCompleteAuthentication { .. })),
            "{id}: the counterexample has the agent complete the handshake"
        );
    }
    // The default model admits the handshake: SPEC.md §7's tables are computed with it.
    assert!(CoherenceModel::new(RECOMMENDED, Bounds::DEFAULT).agent_handshake);
}

/// A change the agent's own `complete_authentication` caused must reach its session before the
/// call's result (S-2, SPEC.md §7.2): `recommended-mcp` re-lists on `list_changed` and holds every
/// invariant under reliable servers, the agent's handshake included; admit `NotifyAfterResult`
/// (the server notifies on another stream, after the result) and the agent's next step comes
/// first: the turn was told of the change and the host offers the stubs still (INV-13).
#[test]
fn a_change_the_agent_caused_must_be_notified_before_its_result() {
    use coherence_model::system::{Fault, Faults};
    use coherence_model::{CoherenceModel, check_model};
    assert!(Fault::NotifyAfterResult.is_server_defect());
    assert!(Faults::admitted_by(Servers::Any).contains(Fault::NotifyAfterResult));
    let reliable = Bounds { connectors: 1, servers: Servers::Reliable, ..Bounds::DEFAULT };
    let trusting = CoherenceModel::new(RECOMMENDED_MCP, reliable);
    assert!(trusting.agent_handshake);
    let broken = |r: &coherence_model::CheckReport| -> Vec<&str> {
        r.invariants.iter().filter(|o| o.counterexample.is_some()).map(|o| o.invariant.id).collect()
    };
    assert_eq!(broken(&check_model(&trusting)), Vec::<&str>::new(), "recommended-mcp holds under reliable servers");
    let late = check_model(&CoherenceModel {
        faults: Faults::admitted_by(Servers::Reliable).with(Fault::NotifyAfterResult),
        ..trusting.clone()
    });
    assert_eq!(broken(&late), ["INV-13"]);
    let trace = late.invariants.iter().find(|o| o.invariant.id == "INV-13").unwrap().counterexample.as_ref().unwrap();
    assert!(
        trace.steps.iter().any(|(a, _)| matches!(a, coherence_model::Action::AgentCompleteAuthentication { .. })),
        "the counterexample has the agent complete the handshake"
    );
}

/// A deploy that withdraws the tool the user needs (`DeployTools`, SPEC.md §4) is a change of the
/// list with no change of authorization, and a fault a design breaks under and only under:
/// `list-changed-guarded` never offers phantom tools (INV-2) while lists change only with
/// authorization, and offers a withdrawn tool with nothing said once a deploy can withdraw it (its
/// notification not yet delivered). `recommended` holds every invariant with deploys: its account
/// read shows the withdrawn tool, and a call that the server answers "unknown tool" makes it
/// re-list.
#[test]
fn a_deploy_that_withdraws_a_tool_breaks_a_host_that_still_offers_it() {
    use coherence_model::system::{Fault, Faults};
    use coherence_model::{CoherenceModel, check_model};
    assert!(Fault::DeployTools.is_opt_in() && !Fault::DeployTools.is_server_defect());
    for servers in [Servers::Any, Servers::Reliable] {
        assert!(!Faults::admitted_by(servers).contains(Fault::DeployTools), "deploys are admitted only on request");
    }
    let broken = |r: &coherence_model::CheckReport| -> Vec<&str> {
        r.invariants.iter().filter(|o| o.counterexample.is_some()).map(|o| o.invariant.id).collect()
    };
    let with_deploys = |policy: HostPolicy, bounds: Bounds| CoherenceModel {
        faults: Faults::admitted_by(bounds.servers).with(Fault::DeployTools),
        ..CoherenceModel::new(policy, bounds)
    };
    let bounds = Bounds { connectors: 1, ..Bounds::DEFAULT };
    let guarded = policy_named("list-changed-guarded").unwrap();
    let without = check_model(&CoherenceModel::new(guarded, bounds));
    assert!(!broken(&without).contains(&"INV-2"), "no phantom tools while lists change only with authorization");
    let report = check_model(&with_deploys(guarded, bounds));
    let inv2 = report.invariants.iter().find(|o| o.invariant.id == "INV-2").unwrap();
    let trace = inv2.counterexample.as_ref().expect("a deploy breaks INV-2 of list-changed-guarded");
    assert!(trace.steps.iter().any(|(a, _)| a.fault() == Some(Fault::DeployTools)), "the counterexample deploys");
    let last = trace.last();
    assert!(last.connectors[0].withdrawn && last.connectors[0].auth == coherence_model::state::Auth::Authenticated);
    // Reliable servers deploy too: a deploy is not a server defect, and a notified one still races.
    let reliable = check_model(&with_deploys(guarded, Bounds { servers: Servers::Reliable, ..bounds }));
    assert!(broken(&reliable).contains(&"INV-2"));
    // The words say what was missing: the tool, not the authorization.
    let words = coherence_model::story::violation_words(
        &with_deploys(guarded, bounds),
        coherence_model::invariant("INV-2").unwrap(),
        last,
    );
    assert!(words.contains("did not list the tool the user needs"), "{words}");
    let recommended = check_model(&with_deploys(RECOMMENDED, bounds));
    assert_eq!(broken(&recommended), Vec::<&str>::new(), "recommended holds every invariant with deploys");
    assert!(recommended.unique_states > check_model(&CoherenceModel::new(RECOMMENDED, bounds)).unique_states);
}
