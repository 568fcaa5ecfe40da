//! The conformance kit: the committed corpus, the reference host, the mutants, bad adapters.

use coherence_model::{HostPolicy, RECOMMENDED, check_all};
use coherence_sim::coverage::{COVERAGE_BOUNDS, Cover, STATELESS_COVERAGE_BOUNDS, cover, coverage_of};
use coherence_sim::engine::{Verdict, replay};
use coherence_sim::fixture::Fixture;
use coherence_sim::generate::{
    DEEP_FAULT_BOUNDS, Shard, counterexamples, coverage_fixtures, mutant_policies, random_walks,
};
use coherence_sim::host::{HostError, ReferenceHost};
use coherence_sim::scenario::{Scenario, scenario_fixtures};
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

/// The committed corpus, as `coherence gen --out fixtures` writes it.
pub(crate) fn corpus() -> &'static [Fixture] {
    static CORPUS: OnceLock<Vec<Fixture>> = OnceLock::new();
    CORPUS.get_or_init(|| {
        coherence::conform::read_fixtures(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").as_path()).unwrap()
    })
}

/// Every mutant checked at the deep-fault bounds the counterexample strategy also draws from,
/// once for the whole suite.
fn deep_fault_reports() -> &'static [coherence_model::CheckReport] {
    static REPORTS: OnceLock<Vec<coherence_model::CheckReport>> = OnceLock::new();
    REPORTS.get_or_init(|| check_all(&mutant_policies(), DEEP_FAULT_BOUNDS, 2))
}

/// The counterexample fixtures `coherence gen --out fixtures` generates for the policies of
/// `default` (their reports at the default bounds): from those reports, then from the same
/// policies' reports at [`DEEP_FAULT_BOUNDS`].
fn counterexamples_of(default: &[coherence_model::CheckReport]) -> Vec<Fixture> {
    let mut reports: Vec<_> = default.iter().filter(|r| r.policy.name != RECOMMENDED.name).cloned().collect();
    let policies: Vec<&str> = reports.iter().map(|r| r.policy.name).collect();
    reports.extend(deep_fault_reports().iter().filter(|r| policies.contains(&r.policy.name)).cloned());
    counterexamples(&reports)
}

/// What `coherence gen --out fixtures` generates now but the mutant strategy's fixtures and the
/// broken policies' counterexamples, from the shared default-bounds reports.
fn regenerated() -> Vec<Fixture> {
    let mut fixtures = counterexamples_of(crate::default_reports());
    fixtures.extend(random_walks(1, 64, Shard::ALL));
    fixtures.extend(coverage_fixtures(cover_at_defaults(), COVERAGE_BOUNDS, Shard::ALL));
    fixtures.extend(coverage_fixtures(cover_of_2026(), STATELESS_COVERAGE_BOUNDS, Shard::ALL));
    fixtures.extend(scenario_fixtures(&Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios")).unwrap());
    fixtures
}

/// `fixtures/` holds `fresh` (every file whose name `committed` accepts), byte for byte.
fn holds_exactly(fresh: &[Fixture], committed: impl Fn(&str) -> bool) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut names: Vec<String> = fresh.iter().map(Fixture::file_name).collect();
    names.sort();
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| committed(name))
        .collect();
    on_disk.sort();
    assert_eq!(
        on_disk, names,
        "fixtures/ holds other files than the model generates: run `coherence gen --out fixtures`"
    );
    for fixture in fresh {
        let text = std::fs::read_to_string(dir.join(fixture.file_name())).unwrap();
        assert!(
            text == fixture.to_json(),
            "fixtures/{} differs from what the model generates: run `cargo run --release -- gen --out fixtures` and review the diff",
            fixture.file_name()
        );
    }
}

const BROKEN_COUNTEREXAMPLE: &str = "counterexample--broken-";

#[test]
fn the_committed_corpus_is_what_the_model_generates() {
    // The mutant strategy's fixtures depend on the kills of all the others, and the broken
    // policies' counterexamples on four minutes of checking: the heavy tier regenerates those
    // (`shards::the_committed_mutant_fixtures_regenerate_byte_for_byte`,
    // `the_broken_policies_counterexamples_are_what_the_model_generates`); here they are set
    // aside.
    holds_exactly(&regenerated(), |name| !name.starts_with("mutant--") && !name.starts_with(BROKEN_COUNTEREXAMPLE));
}

/// The broken policies' counterexample fixtures are what the checker finds now. Heavy.
#[test]
#[ignore = "heavy tier: cargo test --workspace --release -- --ignored"]
fn the_broken_policies_counterexamples_are_what_the_model_generates() {
    let fresh = counterexamples_of(crate::broken_reports());
    assert!(fresh.len() >= coherence_model::BROKEN_POLICIES.len());
    holds_exactly(&fresh, |name| name.starts_with(BROKEN_COUNTEREXAMPLE));
}

#[test]
fn generation_is_deterministic_and_shards_partition_it() {
    let a: Vec<String> = random_walks(42, 12, Shard::ALL).iter().map(Fixture::to_json).collect();
    let b: Vec<String> = random_walks(42, 12, Shard::ALL).iter().map(Fixture::to_json).collect();
    assert_eq!(a, b);
    let mut shards: Vec<String> = (1..=3)
        .flat_map(|i| random_walks(42, 12, Shard::parse(&format!("{i}/3")).unwrap()))
        .map(|f| f.to_json())
        .collect();
    shards.sort();
    let mut whole = a.clone();
    whole.sort();
    assert_eq!(shards, whole);
    assert_eq!(Shard::parse("0/3").unwrap_err(), "shard 0/3 does not exist: use i/n with 1 <= i <= n");
    assert_eq!(Shard::parse("4/3").unwrap_err(), "shard 4/3 does not exist: use i/n with 1 <= i <= n");
    assert_eq!(Shard::parse("x").unwrap_err(), "shard `x` is not of the form i/n");
}

#[test]
fn recommended_passes_the_whole_corpus() {
    for fixture in corpus() {
        let run = replay(fixture, &mut ReferenceHost::new(RECOMMENDED));
        assert!(matches!(run.verdict, Verdict::Pass), "{}: {:?}", fixture.id, run.verdict);
    }
}

fn kills(policy: HostPolicy) -> Vec<(String, Vec<&'static str>)> {
    corpus()
        .iter()
        .filter_map(|f| {
            let run = replay(f, &mut ReferenceHost::new(policy));
            match run.verdict {
                Verdict::Fail(_) => Some((f.id.clone(), run.violations.iter().map(|v| v.invariant.id).collect())),
                Verdict::Pass => None,
                Verdict::HostFailed { error, .. } => panic!("{}: the reference host failed: {error}", f.id),
            }
        })
        .collect()
}

/// Every other policy is a mutant of the reference host with a realistic defect; the corpus must
/// kill every one, on its own counterexamples too. Fast (no checker run): the mutation run of
/// `scripts/mutants` relies on it.
#[test]
fn the_corpus_kills_every_mutant() {
    let mutants = mutant_policies();
    assert!(mutants.len() >= 10);
    let mut survivors = Vec::new();
    for policy in &mutants {
        let killed = kills(*policy);
        if killed.is_empty() {
            survivors.push(policy.name);
        }
        let own = format!("counterexample/{}/", policy.name);
        assert!(killed.iter().any(|(id, _)| id.starts_with(&own)), "{} survives its own counterexamples", policy.name);
        println!("{}: killed by {} of {} fixtures", policy.name, killed.len(), corpus().len());
    }
    println!("kill rate: {} of {} mutants", mutants.len() - survivors.len(), mutants.len());
    assert_eq!(survivors, Vec::<&str>::new(), "kill rate below 100%");
}

/// A fixture that fails a design policy names only invariants the checker says that policy
/// breaks.
#[test]
fn the_corpus_names_only_what_the_checker_finds() {
    names_only_what_the_checker_finds(crate::default_reports());
}

/// [`the_corpus_names_only_what_the_checker_finds`] for the broken policies. Heavy.
#[test]
#[ignore = "heavy tier: cargo test --workspace --release -- --ignored"]
fn the_corpus_names_only_what_the_checker_finds_of_the_broken_policies() {
    names_only_what_the_checker_finds(crate::broken_reports());
}

fn names_only_what_the_checker_finds(default: &[coherence_model::CheckReport]) {
    let deep = deep_fault_reports();
    for policy in mutant_policies().into_iter().filter(|p| default.iter().any(|r| r.policy.name == p.name)) {
        // The corpus's fixtures of two authorization contexts are held to that table.
        let checker: std::collections::BTreeSet<&str> = default
            .iter()
            .chain(deep)
            .chain(crate::contexts_reliable_reports())
            .filter(|r| r.policy.name == policy.name)
            .flat_map(|r| r.invariants.iter().filter(|o| o.counterexample.is_some()).map(|o| o.invariant.id))
            .collect();
        for (fixture, ids) in &kills(policy) {
            // A fixture that deploys is held to the checker with deploys, at its own bounds.
            let with_deploys = corpus().iter().find(|f| &f.id == fixture).filter(|f| f.deploys).map(|f| {
                let report = coherence_model::check_model(&f.model_of(policy));
                report.invariants.iter().filter(|o| o.counterexample.is_some()).map(|o| o.invariant.id).collect()
            });
            let checker = with_deploys.as_ref().unwrap_or(&checker);
            assert!(
                ids.iter().any(|id| checker.contains(id)),
                "{}: {fixture} names {ids:?}; the checker says {checker:?}",
                policy.name
            );
        }
    }
}

#[test]
fn a_counterexample_fixture_names_its_invariant_and_the_reproduce_command() {
    let fixture = corpus().iter().find(|f| f.id == "counterexample/session-start-only/INV-1").unwrap();
    let run = replay(fixture, &mut ReferenceHost::new(coherence_model::policy_named("session-start-only").unwrap()));
    let results = vec![coherence::conform::FixtureResult { fixture: fixture.clone(), run, wire_log: Vec::new() }];
    let subject = coherence::conform::Subject::Adapter("my-host --stdio".to_owned());
    let text = coherence::conform::text(&results, &subject, Path::new("fixtures"));
    insta::assert_snapshot!("conform-failure", text);
}

#[test]
fn fixtures_round_trip_and_bad_ones_are_rejected() {
    for fixture in corpus() {
        assert_eq!(&Fixture::from_json(&fixture.to_json(), "x").unwrap(), fixture);
    }
    #[track_caller]
    fn rejected(text: &str, message: &str) {
        let error = Fixture::from_json(text, "f.json").unwrap_err().to_string();
        assert!(error.contains(message), "`{error}` lacks `{message}`");
    }
    let good = corpus()[0].to_json();
    rejected("{", "f.json: not a fixture: EOF while parsing");
    rejected("{}", "the `format` field must be \"mcp-coherence/fixture\"");
    rejected(&good.replacen("\"version\": 1", "\"version\": 9", 1), "format version 9 is not supported");
    rejected(&good.replacen("\"gmail\"", "\"outlook\"", 1), "unknown connector `outlook`");
    rejected(&good.replacen("\"steps\"", "\"stepz\"", 1), "unknown field `stepz`");
    rejected(&good.replacen("\"connectors\": 2", "\"connectors\": 9", 1), "connectors must be between 1 and 4");
}

/// Every generated trace is a behaviour of the model it came from.
#[test]
fn every_fixture_is_a_behaviour_of_the_model() {
    for fixture in corpus() {
        let model = fixture.model().unwrap();
        let mut state = fixture.initial_state(&model).unwrap();
        for step in &fixture.steps {
            let mut enabled = Vec::new();
            model.enabled_actions(&state, &mut enabled);
            assert!(enabled.contains(&step.action), "{}: {:?} not enabled", fixture.id, step.action);
            state = model.step(&state, step.action).unwrap();
        }
    }
}

pub(crate) fn coherence(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_coherence")).args(args).output().unwrap()
}

pub(crate) fn one_fixture_dir(id: &str) -> tempdir::Dir {
    let dir = tempdir::Dir::new(id);
    let fixture = corpus().iter().find(|f| f.id == id).unwrap();
    std::fs::write(dir.path().join(fixture.file_name()), fixture.to_json()).unwrap();
    dir
}

pub(crate) mod tempdir {
    /// A directory removed when dropped, its own even when tests running at once ask for the same
    /// tag.
    pub struct Dir(std::path::PathBuf);
    impl Dir {
        pub fn new(tag: &str) -> Dir {
            static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let name = format!("coherence-{}-{n}-{}", std::process::id(), tag.replace('/', "-"));
            let path = std::env::temp_dir().join(name);
            let _ = std::fs::remove_dir_all(&path);
            std::fs::create_dir_all(&path).unwrap();
            Dir(path)
        }
        pub fn path(&self) -> &std::path::Path {
            &self.0
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

#[test]
fn conform_through_a_process_passes_and_fails_with_reproduction() {
    let bin = env!("CARGO_BIN_EXE_coherence");
    let dir = one_fixture_dir("counterexample/session-start-only/INV-1");
    let d = dir.path().to_str().unwrap();
    let good = coherence(&["conform", "--adapter", &format!("{bin} ref-adapter"), "--fixtures", d]);
    assert_eq!(good.status.code(), Some(0), "{}", String::from_utf8_lossy(&good.stdout));
    let junit = dir.path().join("junit.xml");
    let bad_adapter = format!("{bin} ref-adapter --policy session-start-only");
    let bad = coherence(&["conform", "--adapter", &bad_adapter, "--fixtures", d, "--junit", junit.to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(1));
    let text = String::from_utf8(bad.stdout).unwrap();
    assert!(text.contains("INV-1 never silently missing tools violated at step 3"), "{text}");
    assert!(text.contains("reproduce: coherence conform --adapter"), "{text}");
    assert!(text.contains("--fixture counterexample/session-start-only/INV-1"), "{text}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains(r#"tests="1" failures="1" errors="0""#), "{xml}");
    let json = coherence(&["conform", "--adapter", &bad_adapter, "--fixtures", d, "--format", "json"]);
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(doc["fixtures"][0]["verdict"], "fail");
    assert_eq!(doc["fixtures"][0]["violated"][0], "INV-1");
    assert_eq!(doc["fixtures"][0]["step"], 3);
}

/// A broken adapter is an error naming the adapter, the fixture and the step, never a pass; and
/// the run ends (the child is killed).
#[test]
fn bad_adapters_fail_clearly() {
    let dir = one_fixture_dir("counterexample/session-start-only/INV-7");
    let d = dir.path().to_str().unwrap();
    let hello = r#"{"type":"hello","protocol":2,"host":"x","seq":0}"#;
    let cases: &[(&str, &str)] = &[
        ("exit 3", "exited (exit status: 3)"),
        ("echo 'not json'", "not a protocol message"),
        (&format!("echo '{hello}'; sleep 30"), "no answer within 300 ms"),
        (
            r#"echo '{"type":"hello","protocol":1,"host":"x","seq":0}'"#,
            "the host speaks protocol 1; this runner speaks 8 (and accepts [2, 3, 4, 5, 6, 7, 8])",
        ),
        (&format!("echo '{hello}'; python3 -c 'print(\"x\" * 2000000)'; sleep 5"), "a line over 1048576 bytes"),
        (&format!("echo '{hello}'; echo 'boom' >&2; exit 1"), "its stderr ends with: boom"),
        (r#"echo '{"type":"error","message":"cannot start","seq":0}'"#, "the host reported an error: cannot start"),
        (&format!("echo '{hello}'; echo '{hello}'; sleep 5"), "printed a line twice or skipped one"),
        (r#"echo '{"type":"hello","protocol":2,"host":"x"}'; sleep 5"#, "the line has no `seq` number"),
    ];
    for (script, message) in cases {
        // Only the hang needs a short timeout; the others get room for a loaded machine.
        let timeout = if message.starts_with("no answer") { "300" } else { "5000" };
        let start = std::time::Instant::now();
        let out = coherence(&["conform", "--adapter", script, "--fixtures", d, "--timeout-ms", timeout]);
        assert!(start.elapsed() < std::time::Duration::from_secs(15), "`{script}` was not stopped");
        assert_eq!(out.status.code(), Some(1), "`{script}` must fail the run");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains("ERROR counterexample/session-start-only/INV-7"), "{text}");
        assert!(text.contains(&format!("adapter `{script}` failed during ")), "{text}");
        assert!(text.contains(message), "`{script}`: output lacks `{message}`:\n{text}");
        assert!(text.contains("0 passed, 0 failed, 1 errors"), "{text}");
    }
}

#[test]
fn wrong_conform_and_gen_flags_are_rejected() {
    let out = coherence(&["conform", "--adapter", "true", "--fixtures", "/nonexistent"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read fixture directory /nonexistent"));
    let out = coherence(&["conform", "--adapter", "true", "--fixture", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no fixture with id `nope`"));
    let out = coherence(&["gen", "--out", "/tmp/x", "--shard", "5/2"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("shard 5/2 does not exist"));
    let out = coherence(&["ref-adapter", "--policy", "nope"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn the_reference_host_rejects_protocol_misuse() {
    use coherence_sim::host::Host;
    use coherence_sim::protocol::Input;
    let mut host = ReferenceHost::new(RECOMMENDED);
    let err = host.handle(&Input::Mcp { session: coherence_model::state::SessionId(2) }).unwrap_err();
    assert_eq!(err, HostError::Protocol("unknown session agent".to_owned()));
}

/// The Python example adapter (standard library only) implements `recommended` and passes the
/// whole committed corpus through a real process boundary.
#[test]
fn the_python_example_adapter_passes_the_corpus() {
    let root = env!("CARGO_MANIFEST_DIR");
    let adapter = format!("python3 {root}/examples/python/recommended_adapter.py");
    let out = coherence(&["conform", "--adapter", &adapter, "--fixtures", &format!("{root}/fixtures")]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains(&format!("conform: {} passed, 0 failed, 0 errors", corpus().len())), "{text}");
}

/// The same adapter as a generic MCP host (`recommended-mcp`: no account read) passes every
/// fixture the reference host of that policy passes, and fails the others: two implementations of
/// one design, one in the model, one in Python, judged alike.
#[test]
fn the_python_generic_host_is_judged_like_recommended_mcp() {
    let root = env!("CARGO_MANIFEST_DIR");
    let adapter = format!("python3 {root}/examples/python/recommended_adapter.py --generic");
    let out =
        coherence(&["conform", "--adapter", &adapter, "--fixtures", &format!("{root}/fixtures"), "--format", "json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mcp = coherence_model::policy_named("recommended-mcp").unwrap();
    let mut failed = 0;
    for fixture in report["fixtures"].as_array().unwrap() {
        let id = fixture["id"].as_str().unwrap();
        let f = corpus().iter().find(|f| f.id == id).unwrap();
        let reference = replay(f, &mut ReferenceHost::new(mcp)).verdict;
        assert_ne!(fixture["verdict"], "error", "{id}: {fixture}");
        assert_eq!(
            fixture["verdict"] == "pass",
            matches!(reference, Verdict::Pass),
            "{id}: {fixture} vs {reference:?}"
        );
        failed += usize::from(fixture["verdict"] == "fail");
    }
    assert!(failed > 0, "a generic host cannot pass every fixture (SPEC.md §7.2)");
}

/// The crying-wolf host, written against ADAPTER.md alone (a permanent "changed elsewhere:
/// restart" notice on every connector, no refresh ever), fails the committed corpus, on INV-9 or
/// INV-10, and breaks no protocol rule doing so.
#[test]
fn the_crying_wolf_host_fails_the_corpus() {
    let root = env!("CARGO_MANIFEST_DIR");
    let adapter = format!("python3 {root}/tests/adapters/crying_wolf.py");
    let out =
        coherence(&["conform", "--adapter", &adapter, "--fixtures", &format!("{root}/fixtures"), "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let fixtures = report["fixtures"].as_array().unwrap();
    assert!(fixtures.iter().all(|f| f["verdict"] != "error"), "the crying-wolf adapter speaks the protocol");
    let named = |id: &str| {
        fixtures.iter().filter(|f| f["violated"].as_array().is_some_and(|a| a.iter().any(|i| i == id))).count()
    };
    assert!(named("INV-9") > 0, "no fixture catches its untrue notices");
    assert!(named("INV-10") > 0, "no fixture catches that it never refreshes");
}

/// INV-12 means the same in the checker and in conformance: every checker counterexample of it,
/// replayed through the reference host of the same policy, fails INV-12; `recommended` passes it.
#[test]
fn inv12_means_the_same_in_the_checker_and_in_conformance() {
    let reports: Vec<_> = crate::default_reports()
        .iter()
        .filter(|r| r.invariants.iter().any(|o| o.invariant.id == "INV-12" && o.counterexample.is_some()))
        .cloned()
        .collect();
    assert!(reports.len() >= 2, "INV-12 is violated by several policies");
    let fixtures: Vec<Fixture> =
        counterexamples(&reports).into_iter().filter(|f| f.provenance.invariant.as_deref() == Some("INV-12")).collect();
    assert_eq!(fixtures.len(), reports.len());
    for fixture in &fixtures {
        let policy = coherence_model::policy_named(&fixture.provenance.policy).unwrap();
        let run = replay(fixture, &mut ReferenceHost::new(policy));
        match run.verdict {
            Verdict::Fail(v) => assert!(
                run.violations.iter().any(|o| o.invariant.id == "INV-12"),
                "{}: conformance names {} where the checker found INV-12",
                fixture.id,
                v.invariant.id
            ),
            other => panic!("{}: the checker's INV-12 counterexample gives {other:?} in conformance", fixture.id),
        }
        assert!(matches!(replay(fixture, &mut ReferenceHost::new(RECOMMENDED)).verdict, Verdict::Pass));
    }
}

/// Every failure scenario of the mission is scripted, and the host it is told against breaks the
/// invariant it names, while `recommended` passes it.
#[test]
fn every_scenario_breaks_its_policy_and_not_recommended() {
    let scenarios: Vec<&Fixture> = corpus().iter().filter(|f| f.provenance.strategy == "scenario").collect();
    let names: Vec<&str> = scenarios.iter().map(|f| f.id.trim_start_matches("scenario/")).collect();
    for expected in [
        "ConnectorAuthMidSession",
        "StubNoGuidance",
        "FalseNeedsAuth",
        "ListChangedIgnored",
        "UnadvertisedListChanged",
        "InFlightRace",
        "TokenExpiryMidSession",
        "RevokedNotSurfaced",
        "ListsFailedSilently",
        "UnknownToolMisrouted",
        "SessionExpired404",
    ] {
        assert!(names.contains(&expected), "no scenario {expected}");
    }
    for fixture in scenarios {
        let policy = coherence_model::policy_named(&fixture.provenance.policy).unwrap();
        let expect = fixture.provenance.invariant.as_deref().unwrap();
        let run = replay(fixture, &mut ReferenceHost::new(policy));
        match run.verdict {
            Verdict::Fail(_) => {
                let ids: Vec<&str> = run.violations.iter().map(|v| v.invariant.id).collect();
                assert!(ids.contains(&expect), "{}: {} broke {ids:?}, not {expect}", fixture.id, policy.name);
            }
            other => panic!("{}: {} must fail, got {other:?}", fixture.id, policy.name),
        }
        assert!(matches!(replay(fixture, &mut ReferenceHost::new(RECOMMENDED)).verdict, Verdict::Pass));
    }
}

#[test]
fn bad_scenarios_are_rejected_with_their_line() {
    #[track_caller]
    fn rejected(text: &str, message: &str) {
        let error = Scenario::parse(text, "s.scenario").and_then(|s| s.trace("s.scenario").map(|_| ())).unwrap_err();
        assert!(error.contains(message), "`{error}` lacks `{message}`");
    }
    let head = "scenario X\nabout y\npolicy session-start-only\nconnector gmail unauthenticated silent\n";
    rejected(&format!("{head}Frobnicate gmail"), "s.scenario:5: `Frobnicate` is neither a directive nor an action");
    rejected(&format!("{head}UserAsk cli"), "s.scenario:5: UserAsk takes 2 arguments, got 1");
    rejected(&format!("{head}UserAsk cli outlook"), "s.scenario:5: `outlook` is not a connector");
    rejected(
        &format!("{head}AgentCallTool cli"),
        "s.scenario:5: AgentCallTool is not enabled here under session-start-only",
    );
    rejected("about y\npolicy session-start-only", "the `scenario` line is missing");
    rejected("scenario X\nabout y\npolicy nope", "s.scenario:3: unknown policy `nope`");
    rejected(&format!("{head}FailListing cli gmail 0 session_not_found"), "404s come from LoseTransportSession");
    // Failure-directed scenarios must be 1-minimal, and break what they say they break.
    let story =
        "scenario X\nabout y\npolicy session-start-only\nexpect INV-1\nconnector gmail unauthenticated silent\n";
    let minimal =
        |extra: &str| Scenario::parse(&format!("{story}{extra}"), "s.scenario").unwrap().check_minimal("s.scenario");
    assert_eq!(minimal("WebAuthenticate gmail\nUserAsk cli gmail\nAgentAnswerNotAvailable cli"), Ok(()));
    assert_eq!(
        minimal("WebAuthenticate gmail\nUserMcp cli\nUserAsk cli gmail\nAgentAnswerNotAvailable cli"),
        Err("s.scenario: not minimal: INV-1 still breaks without the step on line [7]".to_owned())
    );
    assert_eq!(
        minimal("WebAuthenticate gmail\nUserAsk cli gmail"),
        Err("s.scenario: the last step does not break INV-1 under session-start-only".to_owned())
    );
}

fn cover_at_defaults() -> &'static Cover {
    static COVER: OnceLock<Cover> = OnceLock::new();
    COVER.get_or_init(|| cover(COVERAGE_BOUNDS))
}

fn cover_of_2026() -> &'static Cover {
    static COVER: OnceLock<Cover> = OnceLock::new();
    COVER.get_or_init(|| cover(STATELESS_COVERAGE_BOUNDS))
}

/// The runner is sound on MCP 2026-07-28 fixtures: no policy's reference host is failed on an
/// invariant that the checker proves it holds within the fixtures' bounds, and every policy the
/// checker finds breaking one is failed by some fixture (on some invariant).
#[test]
fn on_mcp_2026_fixtures_the_runner_fails_a_policy_only_where_the_checker_does() {
    let fixtures = coverage_fixtures(cover_of_2026(), STATELESS_COVERAGE_BOUNDS, Shard::ALL);
    let bounds = coherence_model::Bounds { symmetry: true, ..STATELESS_COVERAGE_BOUNDS };
    for report in coherence_model::check_all(coherence_model::POLICIES, bounds, 2) {
        let violated: Vec<&str> =
            report.invariants.iter().filter(|o| o.counterexample.is_some()).map(|o| o.invariant.id).collect();
        let mut failed = std::collections::BTreeSet::new();
        for fixture in &fixtures {
            let run = replay(fixture, &mut ReferenceHost::new(report.policy));
            assert!(!matches!(run.verdict, Verdict::HostFailed { .. }), "{}: {:?}", fixture.id, run.verdict);
            for v in &run.violations {
                assert!(
                    violated.contains(&v.invariant.id),
                    "{} fails {} on {}, which the checker proves it holds: {}",
                    report.policy.name,
                    v.invariant.id,
                    fixture.id,
                    v.seen
                );
                failed.insert(v.invariant.id);
            }
        }
        assert_eq!(
            failed.is_empty(),
            violated.is_empty(),
            "{}: checker {violated:?}, runner {failed:?}",
            report.policy.name
        );
    }
}

/// MCP 2026-07-28 in fixtures: the cover of the revision's reachable abstract transitions is in
/// the corpus; the reference host passes it over adapter protocol 6, and a host that trusts TTLs
/// and never listens (`ttl-only`) fails it on INV-1 (tools silently missing).
#[test]
fn fixtures_of_mcp_2026_cover_the_revision_and_catch_a_host_that_never_listens() {
    let cover = cover_of_2026();
    assert_eq!((cover.reachable.len(), cover.traces.len()), (715, 286));
    let fixtures = coverage_fixtures(cover, STATELESS_COVERAGE_BOUNDS, Shard::ALL);
    for fixture in &fixtures {
        let run = replay(fixture, &mut ReferenceHost::new(RECOMMENDED));
        assert!(matches!(run.verdict, Verdict::Pass), "{}: {:?}", fixture.id, run.verdict);
    }
    // A host that says it opened a stream it already has open is caught.
    let mut twice = Lying {
        host: ReferenceHost::new(RECOMMENDED),
        lie: |_: &coherence_sim::protocol::Input, output: &mut coherence_sim::protocol::Output| {
            if let coherence_sim::protocol::Output::Observation { listens, .. } = output {
                listens.extend(listens.clone());
            }
        },
    };
    match replay(&fixtures[0], &mut twice).verdict {
        Verdict::HostFailed { error, .. } => assert!(
            error.to_string().contains("cli opened a second listen stream to gmail while one is open"),
            "{error}"
        ),
        other => panic!("{other:?}"),
    }
    let ttl_only = coherence_model::policy_named("ttl-only").unwrap();
    let failed: Vec<&str> = fixtures
        .iter()
        .filter_map(|f| match replay(f, &mut ReferenceHost::new(ttl_only)).verdict {
            Verdict::Fail(v) => Some(v.invariant.id),
            _ => None,
        })
        .collect();
    assert!(failed.contains(&"INV-1"), "{failed:?}");
    let committed: Vec<&Fixture> = corpus().iter().filter(|f| f.id.starts_with("coverage-2026/")).collect();
    assert!(
        committed.len() == fixtures.len() && committed.iter().zip(&fixtures).all(|(c, f)| *c == f),
        "fixtures/coverage-2026--* differ from what the model generates: run `cargo run --release -- gen --out fixtures`"
    );
    assert_eq!(coverage_of(corpus(), &cover.reachable), cover.reachable.len());
}

/// The coverage-directed traces cover every reachable abstract transition; random walks alone do
/// not, which is why the strategy exists.
#[test]
fn coverage_directed_traces_cover_every_reachable_abstract_transition() {
    let cover = cover_at_defaults();
    assert_eq!((cover.reachable.len(), cover.traces.len()), (763, 332));
    let covering: Vec<Fixture> = corpus().iter().filter(|f| f.provenance.strategy == "coverage").cloned().collect();
    assert_eq!(coverage_of(&covering, &cover.reachable), cover.reachable.len());
    let walks: Vec<Fixture> = corpus().iter().filter(|f| f.provenance.strategy == "random-walk").cloned().collect();
    assert!(coverage_of(&walks, &cover.reachable) < cover.reachable.len());
    assert_eq!(coverage_of(corpus(), &cover.reachable), cover.reachable.len());
}

/// The scenario format writes what it reads: every action of the corpus, printed with its
/// arguments, parses back to itself.
#[test]
fn scenario_action_syntax_round_trips() {
    for fixture in corpus() {
        for step in &fixture.steps {
            let words = coherence_sim::scenario::action_arguments(&step.action);
            let line = format!("{} {}", step.action.name(), words.join(" "));
            let text = format!("scenario X\nabout y\npolicy recommended\n{line}\n");
            let parsed = Scenario::parse(&text, "s").unwrap();
            assert_eq!(parsed.actions().collect::<Vec<_>>(), vec![step.action], "{line}");
        }
    }
}

/// A host wrapped so that it lies about what it does; the engine must catch each lie as an error.
pub(crate) struct Lying<F: FnMut(&coherence_sim::protocol::Input, &mut coherence_sim::protocol::Output)> {
    pub(crate) host: ReferenceHost,
    pub(crate) lie: F,
}

impl<F: FnMut(&coherence_sim::protocol::Input, &mut coherence_sim::protocol::Output)> coherence_sim::host::Host
    for Lying<F>
{
    fn handle(&mut self, input: &coherence_sim::protocol::Input) -> Result<coherence_sim::protocol::Output, HostError> {
        let mut output = self.host.handle(input)?;
        (self.lie)(input, &mut output);
        Ok(output)
    }
}

#[track_caller]
pub(crate) fn caught(
    lie: impl FnMut(&coherence_sim::protocol::Input, &mut coherence_sim::protocol::Output),
    message: &str,
) {
    caught_with(RECOMMENDED, lie, message);
}

/// A reference host of `policy` that lies by `lie` gets an error saying `message` somewhere in the
/// corpus.
#[track_caller]
pub(crate) fn caught_with(
    policy: HostPolicy,
    lie: impl FnMut(&coherence_sim::protocol::Input, &mut coherence_sim::protocol::Output),
    message: &str,
) {
    let mut host = Lying { host: ReferenceHost::new(policy), lie };
    let errors: Vec<String> = corpus()
        .iter()
        .filter_map(|f| match replay(f, &mut host).verdict {
            Verdict::HostFailed { error, .. } => Some(error.to_string()),
            _ => None,
        })
        .collect();
    assert!(
        errors.iter().any(|e| e.contains(message)),
        "no error says `{message}`: {:?}",
        &errors[..errors.len().min(3)]
    );
}

#[test]
fn lies_about_refreshes_and_held_turns_are_caught() {
    use coherence_sim::protocol::{Input, Output, TurnState};
    // Claims to refresh for a stub call, but sends nothing.
    caught(
        |input, output| {
            if let (Input::CallStub { .. }, Output::Observation { requests, answer, sessions, .. }) = (input, output)
                && answer.is_some()
            {
                *answer = None;
                requests.clear();
                sessions[0].turn = TurnState::Open;
            }
        },
        "yet no refresh of",
    );

    // Reports requests at reset.
    caught(
        |input, output| {
            if let (Input::Reset { sessions, connectors }, Output::Observation { requests, .. }) = (input, output) {
                requests.push(coherence_sim::protocol::SentRequest {
                    session: sessions[0],
                    connector: connectors[0].name,
                    initialize: false,
                    cursor: None,
                });
            }
        },
        "the reset observation reports requests",
    );
}

/// The final deliveries are judged: some mutant fails the corpus only there (convergence, INV-7,
/// after the fixture's last step), so an engine that stopped judging them would pass it.
#[test]
fn failures_at_the_final_deliveries_are_caught() {
    let policy = coherence_model::policy_named("session-start-only").unwrap();
    let at_the_end = corpus().iter().any(|f| {
        let run = replay(f, &mut ReferenceHost::new(policy));
        match run.verdict {
            Verdict::Fail(v) => {
                let e = &run.executed[v.step];
                e.origin == coherence_sim::engine::Origin::Drained && e.fixture_step == f.steps.len()
            }
            _ => false,
        }
    });
    assert!(at_the_end, "no fixture catches a failure during the final deliveries");
}

/// A host that claims every tool call worked, whatever the server answered (401, 404), is an
/// error on every fixture where the server refused a call, in the host's terms.
#[test]
fn a_host_that_claims_failed_calls_worked_is_caught() {
    use coherence_sim::protocol::{CallResult, Input, Output};
    let mut host = Lying {
        host: ReferenceHost::new(RECOMMENDED),
        lie: |input: &Input, output: &mut Output| {
            if let (Input::CallTool { server, .. }, Output::Observation { answer, .. }) = (input, output)
                && *server != CallResult::Ok
                && answer.is_some()
            {
                *answer = Some(coherence_model::state::Answer::UsedTool);
            }
        },
    };
    let errors: Vec<String> = corpus()
        .iter()
        .filter_map(|f| match replay(f, &mut host).verdict {
            Verdict::HostFailed { error, .. } => Some(error.to_string()),
            Verdict::Pass => None,
            Verdict::Fail(v) => panic!("{}: a lie about a call is a protocol error, not {}", f.id, v.invariant.id),
        })
        .collect();
    assert!(errors.len() >= 10, "{} fixtures catch it", errors.len());
    assert!(errors.iter().all(|e| e.contains("reported that the tool worked")), "{:?}", &errors[..3]);
    for status in ["401", "404"] {
        assert!(
            errors.iter().any(|e| e.contains(&format!("answered {status}"))),
            "no fixture catches a {status} told as worked"
        );
    }
}
