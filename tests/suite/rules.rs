//! One test per error rule of ADAPTER.md ("Errors that fail a fixture"), named after the rule, each
//! with the host that breaks it; the error texts are reviewed snapshots, and a test holds
//! ADAPTER.md's list and these tests to each other.

use crate::conform::{Lying, corpus};
use coherence::conform::{FixtureResult, Limits, conform};
use coherence_model::state::{Answer, ConnectorId, Listing};
use coherence_model::{RECOMMENDED, policy_named};
use coherence_sim::adapter::ProcessHost;
use coherence_sim::engine::{Verdict, replay};
use coherence_sim::fixture::Fixture;
use coherence_sim::host::{Host, ReferenceHost};
use coherence_sim::protocol::{Input, LinkRef, ListResult, Output, SentRequest};
use std::time::Duration;

/// The fixture most rules are shown on: one turn, a notification, replies.
fn fixture(id: &str) -> &'static Fixture {
    corpus().iter().find(|f| f.id == id).expect("a committed fixture")
}

const FIXTURE: &str = "counterexample/session-start-only/INV-7";

/// The error a host gets on the fixture, in the words of the report: where, and what.
fn error_of(fixture: &Fixture, host: &mut dyn Host) -> String {
    match replay(fixture, host).verdict {
        Verdict::HostFailed { during, error, .. } => format!("during {during}: {error}"),
        other => panic!("expected an adapter error, got {other:?}"),
    }
}

/// The first error a lying reference host gets over the corpus, for lies that need a particular
/// situation.
fn first_error(policy: &str, lie: impl FnMut(&Input, &mut Output)) -> String {
    let mut host = Lying { host: ReferenceHost::new(policy_named(policy).unwrap()), lie };
    corpus()
        .iter()
        .find_map(|f| match replay(f, &mut host).verdict {
            Verdict::HostFailed { during, error, .. } => Some(format!("{}, during {during}: {error}", f.id)),
            _ => None,
        })
        .expect("some fixture catches the lie")
}

fn process(script: &str, timeout_ms: u64) -> String {
    let mut host = ProcessHost::spawn(script, Duration::from_millis(timeout_ms)).unwrap();
    error_of(fixture(FIXTURE), &mut host)
}

fn hello(protocol: u32) -> String {
    format!(r#"{{"type":"hello","protocol":{protocol},"host":"x","seq":0}}"#)
}

/// The errors of a whole run with these limits, for the rules about runs.
fn run_errors(limits: Limits, script: &str) -> Vec<String> {
    let fixtures: Vec<Fixture> = corpus().iter().take(8).cloned().collect();
    let results: Vec<FixtureResult> =
        conform(
            fixtures,
            limits,
            || Ok(Box::new(ProcessHost::spawn(script, Duration::from_secs(5))?) as Box<dyn Host>),
        )
        .unwrap();
    results
        .iter()
        .map(|r| match &r.run.verdict {
            Verdict::HostFailed { error, .. } => error.to_string(),
            other => panic!("{}: expected an error, got {other:?}", r.fixture.id),
        })
        .collect()
}

macro_rules! rules {
    ($($name:ident: $phrase:literal => $text:expr, expect $expect:literal;)*) => {
        $(
            #[doc = concat!("ADAPTER.md: \"", $phrase, "\" fails the fixture as an error.")]
            #[test]
            fn $name() {
                let text: String = $text;
                assert!(text.contains($expect), "`{}`: the error lacks `{}`: {text}", $phrase, $expect);
                insta::assert_snapshot!(stringify!($name), text);
            }
        )*
        /// Every rule: its test's name and its words in ADAPTER.md.
        const RULES: &[(&str, &str)] = &[$((stringify!($name), $phrase)),*];
    };
}

rules! {
    a_crash: "a crash" => process("exit 3", 5000), expect "exited (exit status: 3)";
    no_answer_within_the_timeout: "no answer within the timeout"
        => process(&format!("echo '{}'; sleep 30", hello(3)), 300), expect "no answer within 300 ms";
    a_line_that_is_not_a_protocol_message: "a line that is not a protocol message"
        => process("echo 'not json'", 5000), expect "not a protocol message";
    // The writer's own broken-pipe traceback goes nowhere: when it reaches stderr would race the
    // runner's reading of it, and the snapshot is of the runner's words.
    a_line_over_1_mib: "a line over 1 MiB"
        => process(&format!("echo '{}'; python3 -c 'print(\"x\" * 2000000)' 2>/dev/null; sleep 5", hello(3)), 5000),
        expect "a line over 1048576 bytes";
    another_protocol_version: "another protocol version"
        => process(&format!("echo '{}'; sleep 5", hello(1)), 5000), expect "the host speaks protocol 1";
    an_observation_that_names_unknown_sessions_or_connectors: "an observation that names unknown sessions or connectors"
        => first_error("recommended", |input, output| {
            if let (Input::Ask { .. }, Output::Observation { sessions, .. }) = (input, output) {
                sessions[0].catalogue.insert(ConnectorId(3), Listing::Actions);
            }
        }), expect "names unknown connector notion";
    an_answer_that_does_not_fit_the_agent_s_step: "an answer that does not fit the agent's step"
        => first_error("recommended", |input, output| {
            if let (Input::CallTool { session, .. }, Output::Observation { answer, sessions, .. }) = (input, output) {
                *answer = Some(Answer::NotAvailable);
                sessions[session.index()].turn = coherence_sim::protocol::TurnState::None;
            }
        }), expect "which that step cannot produce";
    a_second_account_read_while_one_is_in_flight: "a second account read while one is in flight"
        => first_error("recommended", |input, output| {
            if let (Input::Ask { session }, Output::Observation { reads, .. }) = (input, output) {
                reads.push(*session);
            }
        }), expect "sent an account read while one is in flight";
    an_agent_call_left_unanswered: "an agent call left unanswered with no refresh of its connector under way (or left unanswered twice in one turn)"
        => first_error("recommended", |input, output| {
            if let (Input::CallStub { .. }, Output::Observation { requests, answer, sessions, .. }) = (input, output)
                && answer.is_some()
            {
                *answer = None;
                requests.clear();
                sessions[0].turn = coherence_sim::protocol::TurnState::Open;
            }
        }), expect "got no answer";
    requests_reported_in_the_reset_observation: "requests reported in the reset observation"
        => first_error("recommended", |input, output| {
            if let (Input::Reset { sessions, connectors }, Output::Observation { requests, .. }) = (input, output) {
                requests.push(SentRequest { session: sessions[0], connector: connectors[0].name, initialize: false, cursor: None });
            }
        }), expect "the reset observation reports requests";
    a_listen_stream_to_a_2025_era_connector_or_a_second_one:
        "a listen stream to a 2025-era connector or a second one on a link"
        => first_error("recommended", |input, output| {
            if let (Input::Reset { sessions, connectors }, Output::Observation { listens, .. }) = (input, output) {
                listens.push(LinkRef { session: sessions[0], connector: connectors[0].name });
            }
        }), expect "opened a listen stream to gmail, whose server speaks a 2025 revision";
    more_than_16_requests_outstanding: "more than 16 requests outstanding on one connector"
        => first_error("recommended", |input, output| {
            if let (Input::Ask { session }, Output::Observation { requests, .. }) = (input, output) {
                for _ in 0..17 {
                    requests.push(SentRequest { session: *session, connector: ConnectorId(0), initialize: false, cursor: None });
                }
            }
        }), expect "more than 16 requests outstanding";
    re_listing_without_end: "re-listing without end"
        => process(&format!("python3 {}/tests/adapters/relists_forever.py", env!("CARGO_MANIFEST_DIR")), 5000),
        expect "host defect: it re-lists without end";
    a_seq_that_is_not_the_input_s: "a `seq` that is not the input's"
        => process(&format!("echo '{0}'; echo '{0}'; sleep 5", hello(3)), 5000), expect "printed a line twice or skipped one";
    an_abort_at_another_input: "an abort at an input other than a `listing` or `timeout`"
        => first_error("recommended", |input, output| {
            if let (Input::Ask { .. }, Output::Observation { answer, sessions, .. }) = (input, output) {
                *answer = Some(Answer::Aborted(ConnectorId(0)));
                sessions[0].turn = coherence_sim::protocol::TurnState::None;
            }
        }), expect "a turn is aborted when a tools/list reply or timeout arrives";
    a_connector_both_offered_and_fetched_at_the_offer: "a connector both offered and in `fetch_at_offer`"
        => first_error("recommended", |_, output| {
            if let Output::Observation { sessions, .. } = output
                && let Some(&c) = sessions[0].catalogue.keys().next()
            {
                sessions[0].fetch_at_offer.insert(c);
            }
        }), expect "both offers";
    a_cursor_the_server_never_gave: "a cursor the server never gave (or one already used)"
        => first_error("recommended", |input, output| {
            if let (Input::Listing { result: ListResult::FirstPage { .. }, .. }, Output::Observation { requests, .. }) =
                (input, output)
            {
                for r in requests.iter_mut().filter(|r| r.cursor.is_some()) {
                    r.cursor = Some("page-2".to_owned());
                }
            }
        }), expect "with cursor `page-2`, which";
    offering_actions_after_a_first_page_alone: "offering `actions` at a first page's delivery without asking for the rest"
        => first_error("recommended", |input, output| {
            if let (
                Input::Listing { session, connector, result: ListResult::FirstPage { .. }, .. },
                Output::Observation { requests, sessions, .. },
            ) = (input, output)
            {
                requests.retain(|r| r.cursor.is_none());
                sessions[session.index()].catalogue.insert(*connector, Listing::Actions);
            }
        }), expect "after receiving only their first page";
    commands_from_a_protocol_2_host: "`commands` from a protocol-2 host"
        => first_error("fetch-per-turn", |_, output| {
            if let Output::Hello { protocol, .. } = output {
                *protocol = 2;
            }
        }), expect "`commands` in hello is protocol 3";
    a_run_s_deadline: "a run's deadline"
        => run_errors(Limits { deadline: Some(std::time::Instant::now()), ..Limits::DEFAULT },
                      "coherence-never-started")[0].clone(),
        expect "not run: the run's deadline (--deadline) passed";
    more_than_max_adapter_failures_in_a_row: "more than `--max-adapter-failures` (default 5) failed fixtures in a row"
        => run_errors(Limits { deadline: None, consecutive_failures: 2, ..Limits::DEFAULT }, "exit 3")[2].clone(),
        expect "not run: the adapter failed 2 fixtures in a row";
}

/// ADAPTER.md's list of errors and the tests above are the same list: a rule added to one and not
/// the other fails here.
#[test]
fn every_error_rule_of_adapter_md_has_its_test() {
    let adapter = include_str!("../../ADAPTER.md").replace('\n', " ");
    let start = adapter.find("Errors that fail a fixture (never a pass): ").expect("ADAPTER.md lists its errors");
    let list = &adapter[start..];
    let list = &list[..list.find(" (the rest are errors).").expect("the list ends") + 1];
    for (name, phrase) in RULES {
        assert!(list.contains(phrase), "ADAPTER.md's list lacks `{phrase}` (tested by {name})");
    }
    // Top-level items of the list, outside parentheses.
    let (mut depth, mut items) = (0, 1);
    for (i, c) in list.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 && i > 0 => items += 1,
            _ => {}
        }
    }
    assert_eq!(items, RULES.len(), "ADAPTER.md lists {items} errors; {} are tested: {list}", RULES.len());
}

/// A reference host is never caught by a rule: the rules catch lies, not designs.
#[test]
fn no_rule_catches_an_honest_host() {
    for policy in [RECOMMENDED, policy_named("fetch-per-turn").unwrap()] {
        let mut host = ReferenceHost::new(policy);
        for f in corpus() {
            assert!(!matches!(replay(f, &mut host).verdict, Verdict::HostFailed { .. }), "{}: {}", policy.name, f.id);
        }
    }
}
