//! The runner's own rules, each shown needed: tests that kill the mutants of the runner
//! (`scripts/mutants run`, TESTING.md) that the rest of the suite let live. Each names the rule in
//! the host's terms.

use crate::conform::{Lying, caught, corpus};
use coherence_model::RECOMMENDED;
use coherence_model::state::{Answer, ConnectorId, Notice, NoticeReason, Recovery, SessionId};
use coherence_sim::engine::{Verdict, replay};
use coherence_sim::host::{HostError, ReferenceHost};
use coherence_sim::protocol::{Input, Output, SentRequest};

/// Every name in an observation is checked against the fixture's sessions and connectors: a
/// request, an account read, a notice or a `fetch_at_offer` entry naming one that does not exist
/// is an error, whichever part of the name is wrong.
#[test]
fn every_name_in_an_observation_is_checked() {
    let request = |session: u8, connector: u8| {
        move |input: &Input, output: &mut Output| {
            if let (Input::Ask { .. }, Output::Observation { requests, .. }) = (input, output) {
                requests.push(SentRequest {
                    session: SessionId(session),
                    connector: ConnectorId(connector),
                    initialize: false,
                    cursor: None,
                });
            }
        }
    };
    // The corpus has at most two sessions (`agent`, the third, is unknown to it) and at most three
    // connectors (`notion`, the fourth, is unknown to it).
    caught(request(2, 0), &format!("a request names an unknown session or connector: {}/", SessionId(2)));
    // An in-process host can name an id past every name; the error says which.
    caught(request(9, 0), "a request names an unknown session or connector: session #9/gmail");
    caught(request(0, 9), "a request names an unknown session or connector: cli/connector #9");
    caught(
        request(0, 3),
        &format!("a request names an unknown session or connector: {}/{}", SessionId(0), ConnectorId(3)),
    );
    caught(
        |input, output| {
            if let (Input::Ask { .. }, Output::Observation { reads, .. }) = (input, output) {
                reads.push(SessionId(2));
            }
        },
        "an account read names unknown session",
    );
    caught(
        |input, output| {
            if let (Input::Ask { .. }, Output::Observation { sessions, .. }) = (input, output) {
                sessions[0].notices.insert(
                    ConnectorId(3),
                    Notice { reason: NoticeReason::RefreshFailed, recovery: Recovery::Restart },
                );
            }
        },
        "the observation names unknown connector",
    );
    caught(
        |input, output| {
            if let (Input::Ask { .. }, Output::Observation { sessions, .. }) = (input, output) {
                sessions[0].fetch_at_offer.insert(ConnectorId(3));
            }
        },
        "the observation names unknown connector",
    );
}

/// `commands` in hello is protocol 3 and later: a host speaking protocol 3 may declare them, and is
/// judged like a host speaking 4 (it is never paged).
#[test]
fn a_protocol_3_host_may_declare_its_commands() {
    let mut host = Lying {
        host: ReferenceHost::new(RECOMMENDED),
        lie: |_: &Input, output: &mut Output| {
            if let Output::Hello { protocol, commands, .. } = output {
                assert!(commands.is_some(), "the reference host declares its commands");
                *protocol = 3;
            }
        },
    };
    for fixture in corpus() {
        let verdict = replay(fixture, &mut host).verdict;
        // A fixture of MCP 2026-07-28 is never given to a host before protocol 6, nor one that
        // deploys before protocol 8.
        let stateless = fixture.connectors.iter().any(|c| c.revision == coherence_model::state::Revision::Stateless);
        match verdict {
            Verdict::HostFailed { error: HostError::Unsupported(why), .. } if stateless || fixture.deploys => {
                assert!(why.contains("the host speaks protocol 3"), "{why}")
            }
            verdict => assert!(matches!(verdict, Verdict::Pass), "{}: {verdict:?}", fixture.id),
        }
    }
}

/// The moments judged (SPEC.md §3.7): an answer about a connector that changed during the turn is
/// judged only once the session has been told of the change. The count is what `conform` reports
/// (`judged_moments`), and a fixture with none is flagged; here each case is worked by hand.
#[test]
fn an_answer_about_an_unannounced_change_is_not_judged() {
    let judged = |notify: &str, steps: &str| {
        let text = format!(
            "scenario Judged\nabout x\npolicy session-start-only\nconnector gmail unauthenticated {notify}\n{steps}"
        );
        let fixture = coherence_sim::scenario::Scenario::parse(&text, "judged.scenario")
            .and_then(|s| s.fixture("judged.scenario"))
            .expect("a behaviour");
        let run =
            replay(&fixture, &mut ReferenceHost::new(coherence_model::policy_named("session-start-only").unwrap()));
        let answers = run
            .executed
            .iter()
            .filter(|e| matches!(e.state.event, Some(coherence_model::state::Event::Answered(_))))
            .count();
        assert_eq!(answers, 1, "{steps}: one answer");
        run.judged_moments()
    };
    // Nothing changed: judged.
    assert_eq!(judged("silent", "UserAsk cli gmail\nAgentAnswerNotAvailable cli"), 1);
    // Authenticated on the web mid-turn, and the session never told: not judged.
    assert_eq!(judged("silent", "UserAsk cli gmail\nWebAuthenticate gmail\nAgentAnswerNotAvailable cli"), 0);
    // The same, but the server's list_changed reaches the session first: judged.
    assert_eq!(
        judged(
            "advertised",
            "UserAsk cli gmail\nWebAuthenticate gmail\nDeliverNotification cli gmail\nAgentAnswerNotAvailable cli"
        ),
        1
    );
}

/// ADAPTER.md: offering `actions` at a first page's delivery is an error only without asking for
/// the rest; a host that offers them at once and asks for the next page is judged, not refused.
#[test]
fn offering_actions_at_a_first_page_while_asking_for_the_rest_is_no_error() {
    use coherence_model::state::Listing;
    use coherence_sim::protocol::ListResult;
    let mut host = Lying {
        host: ReferenceHost::new(RECOMMENDED),
        lie: |input: &Input, output: &mut Output| {
            if let (
                Input::Listing { session, connector, result: ListResult::FirstPage { .. }, .. },
                Output::Observation { requests, sessions, .. },
            ) = (input, output)
            {
                assert!(requests.iter().any(|r| r.cursor.is_some()), "the reference host asks for the rest");
                sessions[session.index()].catalogue.insert(*connector, Listing::Actions);
            }
        },
    };
    let mut paged = 0;
    for fixture in corpus() {
        let run = replay(fixture, &mut host);
        if let Verdict::HostFailed { error, .. } = &run.verdict {
            panic!("{}: {error}", fixture.id);
        }
        paged +=
            usize::from(run.executed.iter().any(|e| matches!(e.action, coherence_model::Action::PageListing { .. })));
    }
    assert!(paged > 0, "no fixture pages a reply");
}

/// A host that sends every turn-start `tools/list` (at a question or an account reply) three
/// times: the reference host, whose extra requests this wrapper answers itself (dropping their
/// replies) and hides from it, mapping the runner's request numbers to the reference host's.
struct Triplicating {
    host: ReferenceHost,
    /// Per link, indexed by the runner's request number: the reference host's number for it, or
    /// `None` for an extra request.
    wire: std::collections::BTreeMap<(SessionId, ConnectorId), Vec<Option<u64>>>,
    last_views: Vec<coherence_sim::protocol::SessionView>,
    /// Replies and timeouts of the extra requests.
    extras_answered: usize,
    extras_sent: usize,
}

impl coherence_sim::host::Host for Triplicating {
    fn handle(&mut self, input: &Input) -> Result<Output, coherence_sim::host::HostError> {
        let mut input = input.clone();
        match &mut input {
            Input::Reset { .. } => self.wire.clear(),
            Input::Listing { session, connector, request, .. } | Input::Timeout { session, connector, request } => {
                match self.wire[&(*session, *connector)][*request as usize] {
                    Some(own) => *request = own,
                    None => {
                        self.extras_answered += 1;
                        return Ok(Output::Observation {
                            requests: Vec::new(),
                            reads: Vec::new(),
                            listens: Vec::new(),
                            sessions: self.last_views.clone(),
                            answer: None,
                        });
                    }
                }
            }
            _ => {}
        }
        let mut output = self.host.handle(&input)?;
        if let Output::Observation { requests, sessions, .. } = &mut output {
            let mut sent = Vec::new();
            for r in requests.iter() {
                let wire = self.wire.entry((r.session, r.connector)).or_default();
                let own = wire.iter().flatten().count() as u64;
                wire.push(Some(own));
                sent.push(r.clone());
                if matches!(input, Input::Ask { .. } | Input::Account { .. }) && r.cursor.is_none() {
                    for _ in 0..2 {
                        wire.push(None);
                        sent.push(SentRequest { cursor: None, ..r.clone() });
                        self.extras_sent += 1;
                    }
                }
            }
            *requests = sent;
            self.last_views = sessions.clone();
        }
        Ok(output)
    }
}

/// A server answers at most two requests of a link at a time (ADAPTER.md); a host's third is
/// served once a reply frees a slot, so every request a host sends is answered or timed out.
#[test]
fn a_third_request_in_flight_is_served_when_a_slot_frees() {
    let mut host = Triplicating {
        host: ReferenceHost::new(RECOMMENDED),
        wire: Default::default(),
        last_views: Vec::new(),
        extras_answered: 0,
        extras_sent: 0,
    };
    for fixture in corpus() {
        let (sent, answered) = (host.extras_sent, host.extras_answered);
        let run = replay(fixture, &mut host);
        assert!(!matches!(run.verdict, Verdict::HostFailed { .. }), "{}: {:?}", fixture.id, run.verdict);
        // Requests in flight are gone at a restart; a hung one is answered by a timeout only if
        // the fixture's host gives up on it.
        let gone = run.executed.iter().any(|e| {
            matches!(
                e.action,
                coherence_model::Action::HangListing { .. } | coherence_model::Action::UserRestart { .. }
            )
        });
        if !gone {
            assert_eq!(
                host.extras_answered - answered,
                host.extras_sent - sent,
                "{}: an extra request was never served",
                fixture.id
            );
        }
    }
    assert!(host.extras_sent > 0, "no turn-start tools/list in the fixtures");
}

/// ADAPTER.md: more than 16 requests outstanding on one connector is an error; 16 are not.
#[test]
fn sixteen_requests_outstanding_are_allowed() {
    let flood = |fixture: &coherence_sim::fixture::Fixture, count: usize| {
        let mut first = true;
        let mut host = Lying {
            host: ReferenceHost::new(RECOMMENDED),
            lie: move |input: &Input, output: &mut Output| {
                if let (Input::Ask { session }, Output::Observation { requests, .. }) = (input, output)
                    && std::mem::take(&mut first)
                {
                    let on = |r: &SentRequest| (r.session, r.connector) == (*session, ConnectorId(0));
                    let sent = requests.iter().filter(|r| on(r)).count();
                    for _ in sent..count {
                        requests.push(SentRequest {
                            session: *session,
                            connector: ConnectorId(0),
                            initialize: false,
                            cursor: None,
                        });
                    }
                }
            },
        };
        match replay(fixture, &mut host).verdict {
            Verdict::HostFailed { error, .. } => error.to_string(),
            _ => String::new(),
        }
    };
    let limit = "more than 16 requests outstanding";
    let fixture = corpus().iter().find(|f| flood(f, 17).contains(limit)).expect("a fixture with a question");
    assert!(!flood(fixture, 16).contains(limit), "{}: {}", fixture.id, flood(fixture, 16));
}

/// A fixture's limits are exact: at most 4 MiB and 10,000 steps, and an id that is a safe
/// relative path; each limit and each part of the id rule is checked on its own.
#[test]
fn fixture_limits_are_exact() {
    use coherence_sim::fixture::{FIXTURE_BYTES_MAX, Fixture, STEPS_MAX};
    let fixture = corpus().iter().find(|f| !f.steps.is_empty()).expect("a fixture with steps");
    let with_steps = |n: usize| Fixture { steps: vec![fixture.steps[0].clone(); n], ..fixture.clone() }.to_json();
    // 10,000 copies of one step are not a behaviour of the model, but they are within the limit.
    let error = Fixture::from_json(&with_steps(STEPS_MAX), "f.json").unwrap_err().to_string();
    assert!(error.contains("is not a behaviour of the model") && !error.contains("at most"), "{error}");
    let error = Fixture::from_json(&with_steps(STEPS_MAX + 1), "f.json").unwrap_err().to_string();
    assert!(error.contains("10001 steps; at most 10000"), "{error}");

    let dir = std::env::temp_dir().join(format!("coherence-limits-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sized = |bytes: u64| {
        let mut text = fixture.to_json();
        text.push_str(&" ".repeat(bytes as usize - text.len()));
        let path = dir.join(format!("{bytes}.json"));
        std::fs::write(&path, text).unwrap();
        Fixture::read(&path).map(|_| ()).map_err(|e| e.to_string())
    };
    assert_eq!(sized(FIXTURE_BYTES_MAX), Ok(()));
    let error = sized(FIXTURE_BYTES_MAX + 1).unwrap_err();
    assert!(
        error.contains(&format!("{} bytes; fixtures are at most {FIXTURE_BYTES_MAX}", FIXTURE_BYTES_MAX + 1)),
        "{error}"
    );
    std::fs::remove_dir_all(&dir).unwrap();

    let with_id = |id: &str| Fixture::from_json(&Fixture { id: id.to_owned(), ..fixture.clone() }.to_json(), "f.json");
    assert!(with_id("counterexample/a-b_c.d").is_ok());
    for bad in ["", "a b", "a/../b"] {
        let error = with_id(bad).unwrap_err().to_string();
        assert!(error.contains("is not path-safe"), "`{bad}`: {error}");
    }
}

/// A message of the wrong kind is named by its kind.
#[test]
fn a_message_of_the_wrong_kind_is_named() {
    caught(
        |_, output| {
            if let Output::Hello { .. } = output {
                *output = Output::Observation {
                    requests: Vec::new(),
                    reads: Vec::new(),
                    listens: Vec::new(),
                    sessions: Vec::new(),
                    answer: None,
                };
            }
        },
        "expected hello, got observation",
    );
}

/// A moment is judged by what the host showed at it: a notice the host shows in the observation
/// that carries the agent's answer tells the user, and the answer is not silent.
#[test]
fn a_notice_shown_with_the_answer_tells_the_user() {
    use coherence_model::state::Answer;
    let violated = |with_notice: bool| {
        broken_by("scenario/ConnectorAuthMidSession", "session-start-only", |input, output| {
            if let (
                Input::AnswerNotAvailable { session, connector },
                Output::Observation { sessions, answer: Some(Answer::NotAvailable), .. },
            ) = (input, output)
                && with_notice
            {
                let notice = Notice { reason: NoticeReason::ChangedElsewhere, recovery: Recovery::Restart };
                sessions[session.index()].notices.insert(*connector, notice);
            }
        })
    };
    assert!(violated(false).contains(&"INV-1"), "the scenario's host silently misses gmail");
    assert!(!violated(true).contains(&"INV-1"), "{:?}", violated(true));
}

/// The invariants a committed fixture shows broken by `policy`'s reference host with `lie` told
/// over it (which must not make it an error).
fn broken_by(fixture: &str, policy: &str, lie: impl FnMut(&Input, &mut Output)) -> Vec<&'static str> {
    let fixture = corpus().iter().find(|f| f.id == fixture).expect("committed");
    let mut host = Lying { host: ReferenceHost::new(coherence_model::policy_named(policy).unwrap()), lie };
    let run = replay(fixture, &mut host);
    assert!(!matches!(run.verdict, Verdict::HostFailed { .. }), "{:?}", run.verdict);
    run.violations.iter().map(|v| v.invariant.id).collect()
}

/// An `aborted` answer with no turn in progress is an error that says so.
#[test]
fn an_abort_with_no_turn_in_progress_is_an_error_that_says_so() {
    caught(
        |input, output| {
            if let (Input::Listing { connector, .. }, Output::Observation { answer, sessions, .. }) = (input, output)
                && sessions.iter().all(|v| v.turn == coherence_sim::protocol::TurnState::None)
            {
                *answer = Some(coherence_model::state::Answer::Aborted(*connector));
            }
        },
        "an aborted turn where no turn is in progress",
    );
}

/// An answer that does not fit the agent's step says, in the host's terms, what the agent did.
#[test]
fn an_unfitting_answer_names_the_agent_s_step() {
    use coherence_model::state::Answer;
    caught(
        |input, output| {
            if let (Input::AnswerNotAvailable { .. }, Output::Observation { answer, .. }) = (input, output) {
                *answer = Some(Answer::RelayedNotice);
            }
        },
        "is not available; ",
    );
    caught(
        |input, output| {
            if let (Input::RelayNotice { .. }, Output::Observation { answer, .. }) = (input, output) {
                *answer = Some(Answer::NotAvailable);
            }
        },
        "the agent relayed ",
    );
}

/// The cursor of each first page is opaque and unique in a run: a host may keep several.
#[test]
fn every_first_page_has_its_own_cursor() {
    use coherence_sim::protocol::ListResult;
    let mut most = 0;
    for fixture in corpus() {
        let mut cursors: Vec<String> = Vec::new();
        let mut host = Lying {
            host: ReferenceHost::new(RECOMMENDED),
            lie: |input: &Input, _: &mut Output| {
                if let Input::Listing { result: ListResult::FirstPage { next_cursor }, .. } = input {
                    cursors.push(next_cursor.clone());
                }
            },
        };
        replay(fixture, &mut host);
        drop(host);
        let distinct: std::collections::BTreeSet<&String> = cursors.iter().collect();
        assert_eq!(distinct.len(), cursors.len(), "{}: {cursors:?}", fixture.id);
        assert!(cursors.iter().all(|c| !c.is_empty()), "{}: an empty cursor", fixture.id);
        most = most.max(cursors.len());
    }
    assert!(most >= 2, "no fixture has two first pages");
}

/// A moment is judged by the catalogue the host showed at it: a host that drops a connector's tools
/// at the answer that follows a 401 offers no phantom tools there, though it offered them a step
/// before.
#[test]
fn the_catalogue_shown_with_the_answer_is_judged() {
    use coherence_model::state::Listing;
    let violated = |drop_at_answer: bool| {
        broken_by("scenario/RevokedNotSurfaced", "session-start-only", |_, output| {
            if let Output::Observation { sessions, answer: Some(_), .. } = output
                && drop_at_answer
            {
                for listing in sessions.iter_mut().flat_map(|v| v.catalogue.values_mut()) {
                    *listing = Listing::Stubs;
                }
            }
        })
    };
    assert!(violated(false).contains(&"INV-2"), "the scenario's host offers gmail's tools after the revocation");
    assert!(!violated(true).contains(&"INV-2"), "{:?}", violated(true));
}

/// A host that refreshes on the agent's behalf and holds the turn for the retry is holding: when
/// that refresh never returns and the host has no timeout, it holds the user for ever (INV-11),
/// though the turn was open when the agent called.
#[test]
fn a_turn_held_for_a_retry_is_held() {
    let text = "scenario HeldForRetry\nabout x\npolicy broken-no-timeout\nconnector gmail unauthenticated silent\n\
                UserAsk cli gmail\nDeliverAccount cli\nWebAuthenticate gmail\nAgentCallStub cli\nHangListing cli gmail 0\n";
    let fixture = coherence_sim::scenario::Scenario::parse(text, "held.scenario")
        .and_then(|s| s.fixture("held.scenario"))
        .expect("a behaviour");
    let run = replay(&fixture, &mut ReferenceHost::new(coherence_model::policy_named("broken-no-timeout").unwrap()));
    let held = |action: &str| {
        let e = run.executed.iter().find(|e| e.action.name() == action).expect("executed");
        e.state.session(SessionId(0)).turn.expect("a turn in progress").held
    };
    assert!(!held("DeliverAccount"), "the account read releases the turn");
    assert!(held("AgentCallStub"), "the host holds the turn while it refreshes for the retry");
    let violated: Vec<_> = run.violations.iter().map(|v| v.invariant.id).collect();
    assert!(violated.contains(&"INV-11"), "{violated:?}");
}

/// A failure's story tells the requests the host reported, not what its states suggest: a request
/// sent as a reply arrives leaves as many in flight as before, and one the runner holds back while
/// two are in flight changes no count.
#[test]
fn the_story_tells_the_requests_the_host_sent() {
    use coherence_model::Action;
    let fixture = corpus().iter().find(|f| f.id == "scenario/ConnectorAuthMidSession").expect("committed");
    let mut run = replay(fixture, &mut ReferenceHost::new(RECOMMENDED));
    let last = run.executed.len() - 1;
    let told =
        |run: &coherence_sim::engine::Run, step: usize| coherence::conform::run_story(run, last)[step + 1].clone();
    let delivery =
        run.executed.iter().position(|e| matches!(e.action, Action::DeliverListing { .. })).expect("a reply");
    let Action::DeliverListing { session, connector, .. } = run.executed[delivery].action else { unreachable!() };
    assert!(!told(&run, delivery).contains("re-lists"), "{}", told(&run, delivery));
    run.executed[delivery].relisted.push((session, connector));
    assert!(told(&run, delivery).contains(&format!("re-lists {connector}")), "{}", told(&run, delivery));
    let asked = run.executed.iter().position(|e| !e.relisted.is_empty()).expect("the host re-lists");
    assert!(asked < delivery, "the host re-lists gmail before its reply arrives");
    assert!(told(&run, asked).contains("re-lists"), "{}", told(&run, asked));
    run.executed[asked].relisted.clear();
    assert!(!told(&run, asked).contains("re-lists"), "{}", told(&run, asked));
}

/// A failed call tells the session of the connector's state (SPEC.md §3.7): when the host refreshes
/// on the agent's behalf after a 404, its refresh times out, and the agent answers, the answer
/// about a token that expired silently during the turn is judged, because the failed call told
/// the session (no reply arrived to tell it again).
#[test]
fn a_failed_call_before_a_retry_tells_the_session() {
    let text = "scenario Told\nabout x\npolicy recommended\nconnector gmail authenticated silent\n\
                UserAsk cli gmail\nDeliverAccount cli\nLoseTransportSession cli gmail\nTokenExpire gmail\n\
                AgentCallTool cli\nHangListing cli gmail 0\nTimeOutListing cli gmail 0\nAgentRelayNotice cli\n";
    let fixture = coherence_sim::scenario::Scenario::parse(text, "told.scenario")
        .and_then(|s| s.fixture("told.scenario"))
        .expect("a behaviour");
    let run = replay(&fixture, &mut ReferenceHost::new(RECOMMENDED));
    assert!(matches!(run.verdict, Verdict::Pass), "{:?}", run.verdict);
    assert_eq!(run.skipped, 0);
    assert_eq!(run.judged_moments(), 1);
}

/// A turn the host ends at a list's reply with words that name no connector (an SDK's bare
/// "unauthorized") tells the user only that the capability is not available: it is judged as an
/// agent that said so, and the connector the user asked for is silently missing where an abort
/// naming the failed connector is not.
#[test]
fn a_turn_ended_at_a_reply_naming_no_connector_is_judged_as_not_available() {
    let fixture = "counterexample/fetch-per-turn/INV-10";
    let named = broken_by(fixture, "fetch-per-turn", |_, _| {});
    let unnamed = broken_by(fixture, "fetch-per-turn", |_, output| {
        if let Output::Observation { answer: answer @ Some(Answer::Aborted(_)), .. } = output {
            *answer = Some(Answer::NotAvailable);
        }
    });
    assert!(!named.contains(&"INV-1"), "{named:?}");
    assert!(unnamed.contains(&"INV-1"), "{unnamed:?}");
}

/// A turn the host ends at the user's question, before any list or model request (a client that
/// lost its server and never reconnects says "Connection closed"), with words naming no connector
/// leaves the capability silently missing (INV-1); an abort there, naming a failure it did not try
/// again, is an error, not a pass.
#[test]
fn a_turn_ended_at_the_question_is_judged() {
    let text = "scenario Ended\nabout x\npolicy recommended\nconnector gmail authenticated silent\n\
                UserAsk cli gmail\nDeliverAccount cli\nAgentCallTool cli\n";
    let fixture = coherence_sim::scenario::Scenario::parse(text, "ended.scenario")
        .and_then(|s| s.fixture("ended.scenario"))
        .expect("a behaviour");
    let ended = |said: Answer| {
        let lie = move |input: &Input, output: &mut Output| {
            if let (Input::Ask { .. }, Output::Observation { answer, sessions, .. }) = (input, output) {
                *answer = Some(said);
                sessions[0].turn = coherence_sim::protocol::TurnState::None;
            }
        };
        replay(&fixture, &mut Lying { host: ReferenceHost::new(RECOMMENDED), lie })
    };
    let unnamed = ended(Answer::NotAvailable);
    let violated: Vec<_> = unnamed.violations.iter().map(|v| v.invariant.id).collect();
    assert!(violated.contains(&"INV-1"), "{:?}", unnamed.verdict);
    let named = ended(Answer::Aborted(ConnectorId(0)));
    assert!(
        matches!(&named.verdict, Verdict::HostFailed { error, .. } if error.to_string().contains("at the user's question")),
        "{:?}",
        named.verdict
    );
    let honest = replay(&fixture, &mut ReferenceHost::new(RECOMMENDED));
    assert!(matches!(honest.verdict, Verdict::Pass), "{:?}", honest.verdict);
}

/// Two authorization contexts (protocol 7): a host of protocol 6 is never given such a fixture
/// (not run, with the reason); one that ignores `second_user` and shows the second user's session
/// the account's list at reset is stopped there; one whose cache serves the account's private
/// list to the second user fails INV-15 at that reply, and one that keeps each user's lists to
/// that user passes.
#[test]
fn a_second_user_is_told_at_reset_and_a_shared_private_list_is_caught() {
    let fixture = corpus().iter().find(|f| f.id == "scenario/SharedPrivateList").expect("the scenario");
    let why = not_run_at(fixture, 6);
    assert!(why.contains("two authorization contexts") && why.contains("protocol 6"), "{why}");
    let mut one_user = Lying {
        host: ReferenceHost::new(RECOMMENDED),
        lie: |input: &Input, output: &mut Output| {
            if let (Input::Reset { connectors, .. }, Output::Observation { sessions, .. }) = (input, output) {
                for view in sessions.iter_mut() {
                    view.catalogue = connectors.iter().map(|c| (c.name, c.tools)).collect();
                }
            }
        },
    };
    match replay(fixture, &mut one_user).verdict {
        Verdict::HostFailed { error: HostError::Protocol(why), during, .. } => {
            assert!(
                during.contains("handshake") && why.contains("after reset, ide must offer gmail's listing"),
                "{why}"
            )
        }
        other => panic!("{other:?}"),
    }
    let shared = coherence_model::policy_named("shared-cache").unwrap();
    match replay(fixture, &mut ReferenceHost::new(shared)).verdict {
        Verdict::Fail(first) => assert_eq!((first.invariant.id, first.step), ("INV-15", 1)),
        other => panic!("{other:?}"),
    }
    for kept in ["shared-cache-scoped", "recommended-mcp", "recommended"] {
        let policy = coherence_model::policy_named(kept).unwrap();
        assert!(matches!(replay(fixture, &mut ReferenceHost::new(policy)).verdict, Verdict::Pass), "{kept}");
    }
}

/// A fixture in which a server deploys (protocol 8): a host that speaks protocol 7 is not run on
/// it (not a pass); one that reports a withdrawn tool's call as working is refused at that step;
/// `list-changed-guarded`, which relays the "unknown tool" bare while offering the old list,
/// fails INV-2 there; `recommended`, which re-lists on it, passes; so does a host that answers the
/// failure with a recovery step.
#[test]
fn a_deploy_is_played_to_hosts_that_speak_it_and_a_withdrawn_tool_is_never_used() {
    use coherence_sim::protocol::CallResult;
    let fixture = corpus().iter().find(|f| f.id == "scenario/DeployWithdrawsTool").expect("the scenario");
    assert!(fixture.deploys);
    let why = not_run_at(fixture, 7);
    assert!(why.contains("deploys") && why.contains("protocol 7"), "{why}");
    let guarded = coherence_model::policy_named("list-changed-guarded").unwrap();
    let used = |input: &Input, output: &mut Output| {
        if let (Input::CallTool { server: CallResult::UnknownTool, .. }, Output::Observation { answer, .. }) =
            (input, output)
        {
            *answer = Some(Answer::UsedTool);
        }
    };
    match replay(fixture, &mut Lying { host: ReferenceHost::new(guarded), lie: used }).verdict {
        Verdict::HostFailed { error: HostError::Protocol(why), .. } => {
            assert!(why.contains("\"unknown tool\"") && why.contains("reported that the tool worked"), "{why}")
        }
        other => panic!("{other:?}"),
    }
    match replay(fixture, &mut ReferenceHost::new(guarded)).verdict {
        Verdict::Fail(first) => assert_eq!((first.invariant.id, first.step), ("INV-2", 2)),
        other => panic!("{other:?}"),
    }
    assert!(matches!(replay(fixture, &mut ReferenceHost::new(RECOMMENDED)).verdict, Verdict::Pass));
    let explained = |input: &Input, output: &mut Output| {
        if let (Input::CallTool { server: CallResult::UnknownTool, .. }, Output::Observation { answer, .. }) =
            (input, output)
        {
            *answer = Some(Answer::ToolFailed(Some(Recovery::Refresh)));
        }
    };
    assert!(matches!(
        replay(fixture, &mut Lying { host: ReferenceHost::new(guarded), lie: explained }).verdict,
        Verdict::Pass
    ));
}

/// Why `fixture` is not run on the reference host when it says it speaks `protocol`.
#[track_caller]
fn not_run_at(fixture: &coherence_sim::fixture::Fixture, protocol: u32) -> String {
    let mut older = Lying {
        host: ReferenceHost::new(RECOMMENDED),
        lie: move |_: &Input, output: &mut Output| {
            if let Output::Hello { protocol: said, .. } = output {
                *said = protocol;
            }
        },
    };
    match replay(fixture, &mut older).verdict {
        Verdict::HostFailed { error: HostError::Unsupported(why), .. } => why,
        other => panic!("{}: {other:?}", fixture.id),
    }
}
