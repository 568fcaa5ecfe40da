//! The runner never passes a broken host and never lies in its exit code: reports, bad input,
//! limits, containment, and verdicts that do not depend on timing.

use crate::conform::{coherence, corpus, one_fixture_dir, tempdir};
use coherence_sim::adapter::ProcessHost;
use coherence_sim::engine::{Verdict, replay};
use coherence_sim::fixture::Fixture;
use std::process::Command;

fn corpus_dir() -> String {
    format!("{}/fixtures", env!("CARGO_MANIFEST_DIR"))
}

fn mutant_adapter() -> String {
    format!("{} ref-adapter --policy session-start-only", env!("CARGO_BIN_EXE_coherence"))
}

/// `coherence conform ... | head -1` on a failing run: the report outgrows the pipe, the reader
/// stops, and the exit code still says the run failed; the JUnit file was written first.
#[test]
fn a_pipe_that_closes_early_keeps_the_failure_and_the_junit_file() {
    let dir = tempdir::Dir::new("pipe");
    let junit = dir.path().join("report.xml");
    let script = format!(
        "{} conform --adapter '{}' --fixtures {} --junit {} | head -1 > /dev/null; exit ${{PIPESTATUS[0]}}",
        env!("CARGO_BIN_EXE_coherence"),
        mutant_adapter(),
        corpus_dir(),
        junit.display()
    );
    let out = Command::new("bash").arg("-c").arg(&script).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let xml = std::fs::read_to_string(&junit).expect("the JUnit file is written before the text report");
    assert!(xml.contains("<failure"), "{}", &xml[..xml.len().min(400)]);
}

/// A report file that cannot be written fails before the run, not after it.
#[test]
fn an_unwritable_report_path_fails_before_the_run() {
    let dir = one_fixture_dir("counterexample/session-start-only/INV-1");
    let out = coherence(&[
        "conform",
        "--adapter",
        &mutant_adapter(),
        "--fixtures",
        dir.path().to_str().unwrap(),
        "--junit",
        "/nonexistent/directory/report.xml",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot write the JUnit report to /nonexistent/directory/report.xml"), "{stderr}");
    assert!(out.stdout.is_empty(), "nothing ran");
}

/// A user's fixture whose step is not a behaviour of the model is rejected before the run, with
/// the file, the step and the steps enabled there: never skipped silently.
#[test]
fn an_impossible_step_is_rejected_before_the_run() {
    let fixture = corpus().iter().find(|f| f.id == "counterexample/session-start-only/INV-1").unwrap();
    let mut text: serde_json::Value = serde_json::from_str(&fixture.to_json()).unwrap();
    let impossible = serde_json::json!({
        "action": {"action": "deliver_listing", "session": "cli", "connector": "gmail", "slot": 0},
        "story": "a reply to a request nobody sent"
    });
    text["steps"].as_array_mut().unwrap().insert(1, impossible);
    let dir = tempdir::Dir::new("impossible");
    std::fs::write(dir.path().join("x.json"), text.to_string()).unwrap();
    let out = coherence(&["conform", "--adapter", &mutant_adapter(), "--fixtures", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("x.json"), "{stderr}");
    assert!(stderr.contains("step 2 (`DeliverListing cli gmail 0`) is not a behaviour of the model"), "{stderr}");
    assert!(stderr.contains("enabled there: "), "{stderr}");
}

/// Fixture files that are not regular files (links, FIFOs) are errors, never skipped.
#[test]
fn links_and_fifos_in_a_fixture_directory_are_errors() {
    let dir = one_fixture_dir("counterexample/session-start-only/INV-1");
    let target = std::fs::read_dir(dir.path()).unwrap().next().unwrap().unwrap().path();
    std::os::unix::fs::symlink(&target, dir.path().join("link.json")).unwrap();
    let out = coherence(&["conform", "--adapter", &mutant_adapter(), "--fixtures", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("link.json is not a regular file"));
    std::fs::remove_file(dir.path().join("link.json")).unwrap();
    assert!(Command::new("mkfifo").arg(dir.path().join("fifo.json")).status().unwrap().success());
    let out = coherence(&["conform", "--adapter", &mutant_adapter(), "--fixtures", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("fifo.json is not a regular file"));
}

/// Two equal keys in one JSON object: an error in a fixture and in an adapter's line.
#[test]
fn duplicate_json_keys_are_rejected() {
    let fixture = corpus().iter().find(|f| f.id == "counterexample/session-start-only/INV-1").unwrap();
    let text = fixture.to_json().replacen("\"format\":", "\"id\": \"twice\",\n  \"format\":", 1);
    let err = Fixture::from_json(&text, "dup.json").unwrap_err().to_string();
    assert!(err.contains("the key `id` appears twice"), "{err}");
    let hello = r#"{"type":"hello","protocol":2,"protocol":1,"host":"x","seq":0}"#;
    let dir = one_fixture_dir("counterexample/session-start-only/INV-1");
    let out = coherence(&[
        "conform",
        "--adapter",
        &format!("echo '{hello}'; sleep 5"),
        "--fixtures",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("the key `protocol` appears twice"));
}

/// Bad scenario input: an error naming the file, never a panic, a hang, or a silent nothing.
#[test]
fn bad_scenarios_are_clear_errors() {
    use coherence_sim::scenario::{Scenario, scenario_fixtures};
    let head = "scenario X\nabout y\npolicy session-start-only\n";
    let five = format!(
        "{head}connector gmail unauthenticated silent\nconnector calendar unauthenticated silent\n\
         connector drive unauthenticated silent\nconnector notion unauthenticated silent\n\
         connector gmail unauthenticated silent\n"
    );
    assert_eq!(Scenario::parse(&five, "s").unwrap_err(), "s:8: at most 4 connectors");
    // 256 questions must not wrap to 0 (and pass the bounds check).
    let many = format!("{head}connector gmail unauthenticated silent\n{}", "UserAsk cli gmail\n".repeat(256));
    let scenario = Scenario::parse(&many, "s").unwrap();
    assert!(scenario.trace("s").unwrap_err().contains("turns must be between 1 and 6, got 255"));
    let empty = tempdir::Dir::new("no-scenarios");
    assert!(scenario_fixtures(empty.path()).unwrap_err().starts_with("no scenarios (*.scenario) in"));
    let fifo = tempdir::Dir::new("fifo-scenario");
    assert!(Command::new("mkfifo").arg(fifo.path().join("x.scenario")).status().unwrap().success());
    assert!(scenario_fixtures(fifo.path()).unwrap_err().contains("x.scenario: not a regular file"));
}

/// The bad-adapter cases whose verdict once depended on thread scheduling, 200 times each in one
/// run: one rule (every line answers the oldest unanswered input and carries its `seq`) makes them
/// deterministic.
#[test]
fn bad_adapter_verdicts_do_not_depend_on_timing() {
    let fixture = corpus().iter().find(|f| f.id == "counterexample/session-start-only/INV-7").unwrap();
    let hello = r#"{"type":"hello","protocol":2,"host":"x","seq":0}"#;
    let cases = [
        (format!("echo '{hello}'; echo '{hello}'; sleep 5"), "it printed a line twice or skipped one"),
        (format!("echo '{hello}'; echo 'not json'; sleep 5"), "not a protocol message"),
        (
            r#"echo '{"type":"hello","protocol":1,"host":"x","seq":0}'; sleep 5"#.to_owned(),
            "the host speaks protocol 1",
        ),
    ];
    for (script, expected) in &cases {
        for round in 0..200 {
            let mut host = ProcessHost::spawn(script, std::time::Duration::from_secs(5)).unwrap();
            match replay(fixture, &mut host).verdict {
                Verdict::HostFailed { error, .. } => {
                    assert!(error.to_string().contains(expected), "round {round} of `{script}`: {error}")
                }
                other => panic!("round {round} of `{script}`: {other:?}"),
            }
        }
    }
}

/// A grandchild that leaves the adapter's process group with `setsid` and ignores SIGTERM does
/// not survive the run.
#[test]
fn no_process_survives_a_run() {
    let marker = format!("{}.{}", 4242, std::process::id());
    let adapter = format!(
        "setsid sh -c 'trap \"\" TERM; exec sleep {marker}' & exec {} ref-adapter",
        env!("CARGO_BIN_EXE_coherence")
    );
    let dir = one_fixture_dir("counterexample/session-start-only/INV-1");
    let out = coherence(&["conform", "--adapter", &adapter, "--fixtures", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    let survivors = Command::new("pgrep").arg("-f").arg(format!("sleep {marker}")).output().unwrap();
    assert!(survivors.stdout.is_empty(), "a grandchild survived: {}", String::from_utf8_lossy(&survivors.stdout));
}

/// An adapter that keeps failing stops the run after `--max-adapter-failures`; the fixtures left
/// are errors that say why, never passes.
#[test]
fn consecutive_adapter_failures_stop_the_run() {
    let out =
        coherence(&["conform", "--adapter", "exit 3", "--fixtures", &corpus_dir(), "--max-adapter-failures", "2"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    let n = corpus().len();
    assert!(text.contains(&format!("conform: 0 passed, 0 failed, {n} errors")), "{}", &text[text.len() - 300..]);
    assert!(text.contains("not run: the adapter failed 2 fixtures in a row"), "{}", &text[..600]);
}

/// `ref-adapter` answers one over-long line once.
#[test]
fn ref_adapter_answers_an_over_long_line_once() {
    use std::io::Write as _;
    let mut child = Command::new(env!("CARGO_BIN_EXE_coherence"))
        .arg("ref-adapter")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&vec![b'x'; 3 << 20]).unwrap();
    stdin.write_all(b"\n").unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.contains("input line over"), "{text}");
}

/// Every fuzz seed (the committed fixtures and scenarios, and `fuzz/seeds`) and every input the
/// fuzzer ever found (`fuzz/run.sh` keeps them in `fuzz/regressions`) still gives a value or an
/// error through the same entry points the fuzz targets drive.
#[test]
fn fuzz_seeds_and_regressions_are_handled() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut replayed = 0;
    for (target, run) in coherence_sim::fuzz::TARGETS {
        let seeds = match *target {
            "fixture" => root.join("fixtures"),
            "scenario" => root.join("scenarios"),
            _ => root.join("fuzz/seeds").join(target),
        };
        for dir in [seeds, root.join("fuzz/regressions").join(target)] {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.file_name().is_some_and(|n| n != ".keep") {
                    run(&std::fs::read(&path).unwrap());
                    replayed += 1;
                }
            }
        }
    }
    assert!(replayed >= 10, "the seeds are where fuzz/run.sh expects them");
}
