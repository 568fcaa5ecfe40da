//! Hosts built differently from the reference (SPEC.md §5.2, §5.3): hosts that keep no lists,
//! hosts that abort turns, hosts without commands. Each is judged by what it offers and tells,
//! and each new rule of the protocol is shown to catch the host that games it.

use crate::conform::{Lying, corpus};
use coherence_model::state::Answer;
use coherence_model::story::step_words;
use coherence_model::{Action, RECOMMENDED, policy_named};
use coherence_sim::engine::{Run, Verdict, replay};
use coherence_sim::host::{Host, ReferenceHost};
use coherence_sim::protocol::{Command, Input, ListResult, Output, TurnState};

fn runs(host: &mut dyn Host) -> Vec<(String, Run)> {
    corpus().iter().map(|f| (f.id.clone(), replay(f, host))).collect()
}

fn broken(run: &Run) -> Vec<&'static str> {
    run.violations.iter().map(|v| v.invariant.id).collect()
}

fn host_errors(runs: &[(String, Run)]) -> Vec<String> {
    runs.iter()
        .filter_map(|(id, run)| match &run.verdict {
            Verdict::HostFailed { error, .. } => Some(format!("{id}: {error}")),
            _ => None,
        })
        .collect()
}

/// A host that keeps nothing between turns never fails a convergence invariant for a list it does
/// not hold: every INV-6 or INV-7 failure of `fetch-per-turn` over the corpus is about a list a
/// turn in progress fetched and offers.
#[test]
fn a_host_that_keeps_nothing_fails_convergence_only_for_lists_it_offers() {
    let policy = policy_named("fetch-per-turn").unwrap();
    let runs = runs(&mut ReferenceHost::new(policy));
    assert_eq!(host_errors(&runs), Vec::<String>::new());
    let mut convergence = 0;
    for (id, run) in &runs {
        for v in &run.violations {
            let invariant = v.invariant;
            if !["INV-6", "INV-7"].contains(&invariant.id) {
                continue;
            }
            let state = &run.executed[v.step].state;
            convergence += 1;
            let focus = invariant.violation(&run.model, state).expect("the invariant is broken there");
            let link = state.link(focus.session, focus.connector);
            assert!(!link.lazy, "{id}: {} judged a list the host does not keep", invariant.id);
            assert!(
                state.session(focus.session).turn.is_some(),
                "{id}: {} judged {}'s list between turns, where the host keeps none",
                invariant.id,
                focus.connector
            );
        }
    }
    // The race it does fail: a list_changed that arrives while the turn's list is in flight.
    assert!(convergence > 0, "fetch-per-turn never fails INV-7 in the corpus: the check above proves nothing");
}

/// The designs of SPEC.md §5.2 run through the protocol without a single protocol error, and each
/// is caught by the corpus.
#[test]
fn every_framework_design_speaks_protocol_3_and_is_caught() {
    for name in ["fetch-per-turn", "invalidate-on-notify", "snapshot-at-connect", "cache-until-invalidated"] {
        let runs = runs(&mut ReferenceHost::new(policy_named(name).unwrap()));
        assert_eq!(host_errors(&runs), Vec::<String>::new(), "{name}");
        let failed = runs.iter().filter(|(_, r)| matches!(r.verdict, Verdict::Fail(_))).count();
        assert!(failed > 0, "{name} passes the whole corpus");
    }
}

/// An abort must name a connector whose list failed: the mutant that aborts on a listing of stubs
/// fails INV-14 in conformance, as in the checker.
#[test]
fn an_abort_on_a_list_that_worked_is_caught() {
    let runs = runs(&mut ReferenceHost::new(policy_named("broken-abort-on-stubs").unwrap()));
    assert_eq!(host_errors(&runs), Vec::<String>::new());
    assert!(runs.iter().any(|(_, r)| broken(r).contains(&"INV-14")), "no fixture catches an untruthful abort");
}

/// The laziest host an abort could shelter: it aborts every turn at the first reply it waits for,
/// whatever the reply says. Aborts count as telling the user (INV-1), so INV-14 must catch it.
#[test]
fn a_host_that_aborts_whatever_happens_is_caught() {
    let mut host = Lying {
        host: ReferenceHost::new(policy_named("fetch-per-turn").unwrap()),
        lie: |input: &Input, output: &mut Output| {
            if let (
                Input::Listing { connector, result: ListResult::Tools(_), .. },
                Output::Observation { sessions, answer, .. },
            ) = (input, output)
                && sessions[0].turn != TurnState::None
            {
                sessions[0].turn = TurnState::None;
                *answer = Some(Answer::Aborted(*connector));
            }
        },
    };
    let runs = runs(&mut host);
    assert!(runs.iter().any(|(_, r)| broken(r).contains(&"INV-14")), "aborting at will passes");
}

/// A host is never asked to run a command it lacks; the steps are adapted away and counted.
#[test]
fn commands_a_host_lacks_are_never_sent() {
    let mut sent = Vec::new();
    let mut host = Lying {
        host: ReferenceHost::new(policy_named("fetch-per-turn").unwrap()),
        lie: |input: &Input, output: &mut Output| {
            if let Output::Hello { commands, .. } = output {
                assert_eq!(commands.as_ref().unwrap(), &[Command::Restart].into_iter().collect());
            }
            if matches!(input, Input::Mcp { .. } | Input::Authenticated { .. }) {
                sent.push(format!("{input:?}"));
            }
        },
    };
    let skipped: usize = runs(&mut host).iter().map(|(_, r)| r.skipped).sum();
    drop(host);
    assert_eq!(sent, Vec::<String>::new());
    let recommended: usize = runs(&mut ReferenceHost::new(RECOMMENDED)).iter().map(|(_, r)| r.skipped).sum();
    assert!(skipped > recommended, "no /mcp or in-session authentication step was adapted away");
}

fn caught_with(base: &str, lie: impl FnMut(&Input, &mut Output), message: &str) {
    crate::conform::caught_with(policy_named(base).unwrap(), lie, message);
}

/// Misuse of protocol 3 is an error, named in the host's terms.
#[test]
fn protocol_3_misuse_is_an_error() {
    // Offers a connector's tools and says it keeps no list for it.
    caught_with(
        "fetch-per-turn",
        |_, output| {
            if let Output::Observation { sessions, .. } = output
                && let Some(&c) = sessions[0].catalogue.keys().next()
            {
                sessions[0].fetch_at_offer.insert(c);
            }
        },
        "both offers",
    );
    // Aborts a turn in answer to the agent's call.
    caught_with(
        "recommended",
        |input, output| {
            if let (Input::CallTool { connector, .. }, Output::Observation { answer, .. }) = (input, output) {
                *answer = Some(Answer::Aborted(*connector));
            }
        },
        "which that step cannot produce",
    );
    // Aborts a turn at its question.
    caught_with(
        "recommended",
        |input, output| {
            if let (Input::Ask { .. }, Output::Observation { answer, sessions, .. }) = (input, output) {
                *answer = Some(Answer::Aborted(coherence_model::state::ConnectorId(0)));
                sessions[0].turn = TurnState::None;
            }
        },
        "a turn is aborted when a tools/list reply or timeout arrives",
    );
    // Declares commands while speaking protocol 2.
    caught_with(
        "recommended",
        |_, output| {
            if let Output::Hello { protocol, .. } = output {
                *protocol = 2;
            }
        },
        "`commands` in hello is protocol 3",
    );
}

/// A failure story tells what the host did: a host that sends nothing after a restart is not told
/// as re-listing.
#[test]
fn a_restart_is_told_as_what_the_host_sent() {
    let mut host = Lying {
        host: ReferenceHost::new(RECOMMENDED),
        lie: |input: &Input, output: &mut Output| {
            if let (Input::Restart { .. }, Output::Observation { requests, .. }) = (input, output) {
                requests.clear();
            }
        },
    };
    let mut told = 0;
    for (_, run) in runs(&mut host) {
        let mut before = run.init;
        for e in &run.executed {
            if let Action::UserRestart { .. } = e.action {
                let words = step_words(&run.model, &before, e.action, &e.state);
                assert!(!words.contains("re-lists"), "a restart that sent nothing is told as: {words}");
                told += 1;
            }
            before = e.state;
        }
    }
    assert!(told > 0, "no fixture restarts a session");
}

/// A failure story tells what the host did: a reply the host does not apply is told as not
/// applied, never as "older" (the host, not the oracle, decided to drop it).
#[test]
fn a_dropped_reply_is_told_as_dropped() {
    let mut shown = std::collections::BTreeMap::new();
    let mut host = Lying {
        host: ReferenceHost::new(RECOMMENDED),
        lie: move |input: &Input, output: &mut Output| {
            let Output::Observation { sessions, .. } = output else { return };
            if let Input::Listing { session, connector, result: ListResult::Tools(_), .. } = input {
                // Pretend the reply was dropped: keep showing what was shown before it.
                let view = &mut sessions[session.index()];
                match shown.get(&(*session, *connector)) {
                    Some(&listing) => view.catalogue.insert(*connector, listing),
                    None => view.catalogue.remove(connector),
                };
            }
            if matches!(input, Input::Reset { .. }) {
                shown.clear();
            }
            for view in sessions.iter() {
                for (c, l) in &view.catalogue {
                    shown.insert((view.session, *c), *l);
                }
            }
        },
    };
    let mut told = 0;
    for (_, run) in runs(&mut host) {
        let mut before = run.init;
        for e in &run.executed {
            if let Action::DeliverListing { session, connector, slot } = e.action
                && let Some(coherence_model::state::Fetch {
                    reply: coherence_model::state::Reply::Listed { listing, .. },
                    ..
                }) = before.link(session, connector).fetches[usize::from(slot)]
                && e.state.link(session, connector).offered() != Some(listing)
            {
                let words = step_words(&run.model, &before, e.action, &e.state);
                assert!(!words.contains("older"), "{words}");
                assert!(words.contains("does not apply it"), "{words}");
                told += 1;
            }
            before = e.state;
        }
    }
    assert!(told > 0, "no fixture delivers a reply that changes the catalogue");
}

/// The Python framework adapters (`examples/python/framework_adapter.py`), written against
/// ADAPTER.md, are judged fixture by fixture exactly like the model's policies they implement,
/// through a real process boundary, with no protocol error: two implementations of one design.
#[test]
fn the_python_framework_adapters_are_judged_like_their_policies() {
    let root = env!("CARGO_MANIFEST_DIR");
    for (flag, policy) in [("", "fetch-per-turn"), (" --invalidate-on-notify", "invalidate-on-notify")] {
        let adapter = format!("python3 {root}/examples/python/framework_adapter.py{flag}");
        let out = crate::conform::coherence(&[
            "conform",
            "--adapter",
            &adapter,
            "--fixtures",
            &format!("{root}/fixtures"),
            "--format",
            "json",
        ]);
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let policy = policy_named(policy).unwrap();
        let mut failed = 0;
        for fixture in report["fixtures"].as_array().unwrap() {
            let id = fixture["id"].as_str().unwrap();
            let f = corpus().iter().find(|f| f.id == id).unwrap();
            let reference = replay(f, &mut ReferenceHost::new(policy)).verdict;
            assert_ne!(fixture["verdict"], "error", "{}: {id}: {fixture}", policy.name);
            let first = match &reference {
                Verdict::Fail(v) => Some(v.invariant.id),
                _ => None,
            };
            assert_eq!(
                fixture["violated"][0].as_str(),
                first,
                "{}: {id}: the adapter {fixture} vs the model {reference:?}",
                policy.name
            );
            failed += usize::from(fixture["verdict"] == "fail");
        }
        assert_eq!(report["fixtures"].as_array().unwrap().len(), corpus().len());
        assert!(failed > 0, "{} passes every fixture", policy.name);
    }
}

/// A fixture reports every invariant it breaks, ranked by harm: where a stale cache breaks
/// convergence (INV-7) before the user-facing harm (INV-1), the report leads with INV-1, and lists
/// INV-7 too, each at the step where it first broke.
#[test]
fn every_broken_invariant_is_reported_most_harmful_first() {
    let runs = runs(&mut ReferenceHost::new(policy_named("session-start-only").unwrap()));
    let mut hidden_before = 0;
    for (id, run) in &runs {
        let ranks: Vec<_> = run.violations.iter().map(|v| v.invariant.rank()).collect();
        assert!(ranks.windows(2).all(|w| w[0] < w[1]), "{id}: not ranked, or an invariant twice: {ranks:?}");
        if let Verdict::Fail(v) = &run.verdict {
            assert_eq!(v.invariant.id, run.violations[0].invariant.id, "{id}");
        }
        let step = |inv: &str| run.violations.iter().find(|v| v.invariant.id == inv).map(|v| v.step);
        if let (Some(one), Some(seven)) = (step("INV-1"), step("INV-7"))
            && seven < one
        {
            hidden_before += 1;
        }
    }
    assert!(hidden_before > 0, "no fixture breaks INV-7 before INV-1: the ranking is not exercised");
}

/// The agent's handshake does not end the turn: a host that answers it, or ends the turn there,
/// is told so in its own terms.
#[test]
fn ending_the_turn_at_the_agents_handshake_is_an_error() {
    caught_with(
        "recommended",
        |input, output| {
            if let (Input::CompleteAuthentication { session, .. }, Output::Observation { answer, sessions, .. }) =
                (input, output)
            {
                *answer = Some(Answer::NotAvailable);
                sessions[session.index()].turn = TurnState::None;
            }
        },
        "an answer at the agent's handshake, after which the turn goes on",
    );
    caught_with(
        "recommended",
        |input, output| {
            if let (Input::CompleteAuthentication { session, .. }, Output::Observation { sessions, .. }) =
                (input, output)
            {
                sessions[session.index()].turn = TurnState::None;
            }
        },
        "reports no turn while one is in progress",
    );
}

/// The agent's handshake inside a turn (protocol 5) reaches the hosts that speak protocol 5 and
/// only them: a host on protocol 4 is never sent `complete_authentication` (its fixture steps
/// become another agent step). And a host that ignores the handshake is caught where the
/// reference, which re-lists on it, passes.
#[test]
fn the_agent_handshake_reaches_protocol_5_hosts_and_only_them() {
    let handshakes = |runs: &[(String, Run)]| -> usize {
        let executed = runs.iter().flat_map(|(_, r)| &r.executed);
        executed.filter(|e| matches!(e.action, Action::AgentCompleteAuthentication { .. })).count()
    };
    let reference = runs(&mut ReferenceHost::new(RECOMMENDED));
    assert!(handshakes(&reference) > 0, "no fixture has the agent complete a handshake");
    // Both orderings of the server's notification and the call's result are exercised.
    for first in [false, true] {
        let inputs = reference.iter().flat_map(|(_, r)| &r.executed).filter_map(|e| e.input.as_ref());
        assert!(
            inputs.into_iter().any(
                |i| matches!(i, Input::CompleteAuthentication { list_changed_first, .. } if *list_changed_first == first)
            ),
            "no handshake with list_changed_first = {first}"
        );
    }
    assert_eq!(reference.iter().filter(|(_, r)| !matches!(r.verdict, Verdict::Pass)).count(), 0);

    let mut sent = 0;
    let mut old = Lying {
        host: ReferenceHost::new(RECOMMENDED),
        lie: |input: &Input, output: &mut Output| {
            if let Output::Hello { protocol, .. } = output {
                *protocol = 4;
            }
            if matches!(input, Input::CompleteAuthentication { .. }) {
                sent += 1;
            }
        },
    };
    let old_runs = runs(&mut old);
    drop(old);
    assert_eq!((sent, handshakes(&old_runs)), (0, 0), "a protocol-4 host was sent the agent's handshake");
    // Fixtures of MCP 2026-07-28, and one that deploys, are not run on a protocol-4 host; nothing
    // else fails.
    let errors = host_errors(&old_runs);
    assert!(
        errors.iter().all(|e| (e.contains("speak MCP 2026-07-28") || e.contains("a server of this fixture deploys"))
            && e.contains("the host speaks protocol 4")),
        "{errors:?}"
    );

    // `recommended` without re-listing on the handshake: it learns of the change only as a
    // generic host does, from the server.
    let deaf = coherence_model::HostPolicy { name: "deaf", relist_on_handshake: false, ..RECOMMENDED };
    let deaf_runs = runs(&mut ReferenceHost::new(deaf));
    let caught: Vec<&String> =
        deaf_runs.iter().filter(|(_, r)| matches!(r.verdict, Verdict::Fail(_))).map(|(id, _)| id).collect();
    assert!(!caught.is_empty(), "a platform that ignores the agent's handshake passes the corpus");
    for (id, run) in &deaf_runs {
        if let Verdict::Fail(v) = &run.verdict {
            let before = &run.executed[..=v.step];
            assert!(
                before.iter().any(|e| matches!(e.action, Action::AgentCompleteAuthentication { .. })),
                "{id}: the deaf host fails {} before any handshake",
                v.invariant.id
            );
        }
    }
}
