//! `coherence conform --host`: committed fixtures replayed black-box through the hosts of this
//! package, over both transports. The verdicts come from the wire alone; a bad host gets an error
//! that names the fixture and the step, and leaves nothing behind.

use crate::common;

use serde_json::Value;
use std::process::Command;

/// The fixture of the motivating report: gmail is authenticated on the web mid-session.
const HEADLINE: &str = "scenario/ConnectorAuthMidSession";
/// A fixture whose server speaks MCP 2026-07-28, and a host that never listens to it.
const UNOPENED: &str = "scenario/UnopenedListenStream";

/// Runs `coherence conform --host HOST` on `fixtures` (ids in the committed corpus): the exit
/// code and the JSON report's rows.
fn conform(host: &str, transport: &str, fixtures: &[&str]) -> (Option<i32>, Vec<Value>) {
    conform_within(host, transport, fixtures, 5000)
}

/// [`conform`], with each wait ending after `timeout_ms`.
fn conform_within(host: &str, transport: &str, fixtures: &[&str], timeout_ms: u32) -> (Option<i32>, Vec<Value>) {
    conform_with(host, transport, fixtures, timeout_ms, &[])
}

/// [`conform_within`], with more flags.
fn conform_with(
    host: &str,
    transport: &str,
    fixtures: &[&str],
    timeout_ms: u32,
    flags: &[&str],
) -> (Option<i32>, Vec<Value>) {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let mut command = Command::new(common::coherence());
    command.current_dir(root).args(["conform", "--host", host, "--transport", transport, "--format", "json"]);
    command.args(flags);
    let timeout_ms = timeout_ms.to_string();
    command.args(["--timeout-ms", &timeout_ms, "--startup-ms", &timeout_ms]);
    if !flags.contains(&"--quiet-ms") {
        command.args(["--quiet-ms", "100"]);
    }
    for id in fixtures {
        command.args(["--fixture", id]);
    }
    let output = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let report: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    (output.status.code(), report["fixtures"].as_array().unwrap().clone())
}

fn rmcp_host(policy: &str) -> String {
    format!("{} --policy {policy}", env!("CARGO_BIN_EXE_rmcp-host"))
}

fn bad(mode: &str) -> String {
    format!("{} {mode}", env!("CARGO_BIN_EXE_bad-host"))
}

/// No process of `binary` was left behind by a run: none is an orphan (other tests of this binary
/// run hosts of their own, as children of this process).
fn none_left(binary: &str) {
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
        let cmdline = String::from_utf8_lossy(&cmdline);
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        // `pid (comm) state ppid ...`: the parent is the second field after the command.
        let ppid = stat.rsplit(')').next().and_then(|rest| rest.split_whitespace().nth(1));
        let orphan = ppid == Some("1");
        assert!(!(cmdline.starts_with(binary) && orphan), "{} outlived the run: {cmdline}", entry.path().display());
    }
}

#[test]
fn the_report_s_host_fails_inv_1_and_the_recommended_host_passes_over_both_transports() {
    for transport in ["http", "stdio"] {
        let (code, rows) = conform(&rmcp_host("recommended"), transport, &[HEADLINE]);
        assert_eq!((code, rows[0]["verdict"].as_str()), (Some(0), Some("pass")), "{transport}: {rows:?}");

        let (code, rows) = conform(&rmcp_host("session-start-only"), transport, &[HEADLINE]);
        let row = &rows[0];
        assert_eq!((code, row["verdict"].as_str()), (Some(1), Some("fail")), "{transport}: {row}");
        assert_eq!(row["violated"][0], "INV-1", "{transport}: {row}");
        let seen = row["seen"].as_str().unwrap();
        assert!(seen.contains("offered only the auth stubs") && seen.contains("silently missing"), "{seen}");
        // The wire shows why: the model was offered the stubs, after the one list at the start.
        let log: Vec<&str> = row["wire_log"].as_array().unwrap().iter().map(|l| l.as_str().unwrap()).collect();
        assert!(log.iter().any(|l| l.contains("tools [calendar_authenticate")), "{log:?}");
        assert_eq!(log.iter().filter(|l| l.starts_with("gmail: {\"seen\":\"list\"")).count(), 1, "{log:?}");
        let reproduce = row["reproduce"].as_str().unwrap();
        assert!(reproduce.contains(&format!("--transport {transport}")), "{reproduce}");
        assert!(reproduce.ends_with(&format!("--fixture {HEADLINE}")), "{reproduce}");
    }
}

#[test]
fn a_fixture_the_wire_cannot_play_is_not_run_and_never_passes() {
    // Two sessions: one host process plays one session.
    let two = "mutant/notice-on-failed-listing/wrong-session/0038";
    let (code, rows) = conform(&rmcp_host("recommended"), "stdio", &[two]);
    assert_eq!(rows[0]["verdict"], "not_run", "{rows:?}");
    assert!(rows[0]["error"].as_str().unwrap().contains("2 sessions"), "{rows:?}");
    // It says how to run it again (with other flags, say).
    let reproduce = rows[0]["reproduce"].as_str().unwrap();
    assert!(reproduce.starts_with("coherence conform --host") && reproduce.ends_with(two), "{reproduce}");
    assert_eq!(code, Some(1), "a run in which nothing ran does not succeed");
    // After a failure (whose host serves the next fixture), the fixture not run shows no wire log:
    // none of its own, and not the failure's.
    let (_, rows) =
        conform(&rmcp_host("session-start-only"), "stdio", &["counterexample/session-start-only/INV-1", two]);
    assert_eq!((rows[0]["verdict"].as_str(), rows[1]["verdict"].as_str()), (Some("fail"), Some("not_run")));
    assert!(rows[0]["wire_log"].as_array().is_some_and(|log| !log.is_empty()), "{:?}", rows[0]);
    assert!(rows[1].get("wire_log").is_none_or(|log| log.as_array().unwrap().is_empty()), "{:?}", rows[1]);
    // The same for a fixture stopped before its reset: its servers deploy, which the runner refuses
    // at the hello, with the failure's stage still up.
    let deploys = "scenario/DeployWithdrawsTool";
    let (_, rows) = conform(&rmcp_host("session-start-only"), "stdio", &[HEADLINE, deploys]);
    assert_eq!((rows[0]["verdict"].as_str(), rows[1]["verdict"].as_str()), (Some("fail"), Some("not_run")));
    assert!(rows[1]["error"].as_str().unwrap().contains("deploys"), "{:?}", rows[1]);
    assert!(rows[1].get("wire_log").is_none_or(|log| log.as_array().unwrap().is_empty()), "{:?}", rows[1]);
}

/// A wait that the operating system's word ends early concludes what waiting out the quiet does:
/// the same steps for fixtures where the kit once still owed the host a message when the host
/// looked idle (a stdio session's close, a 2026-07-28 notification held back by Nagle's algorithm
/// behind the host's delayed ACK).
#[test]
fn the_probe_ends_no_wait_while_the_kit_owes_the_host_a_message() {
    let host = format!("{} --policy recommended-mcp", env!("CARGO_BIN_EXE_ref-host"));
    for (transport, id) in [
        ("stdio", "counterexample/invalidate-on-notify/INV-10"),
        ("http", "coverage-2026/0041"),
        ("http", "coverage-2026/0047"),
    ] {
        let run = |flags: &[&str]| {
            // At 30 ms of quiet the probe looks 5 ms in, inside a delayed ACK's 40 ms.
            let (_, rows) = conform_with(&host, transport, &[id], 5000, &[&["--quiet-ms", "30"], flags].concat());
            let row = &rows[0];
            (
                row["verdict"].clone(),
                row["violated"].clone(),
                row["steps_executed"].clone(),
                row["steps_skipped"].clone(),
            )
        };
        assert_eq!(run(&[]), run(&["--quiet-only"]), "{id} over {transport}");
    }
}

/// A host that ends every turn at the user's question, before any list or model request: with
/// words naming no server (a client that lost its server and never reconnects) the user learned
/// only that the capability is not available, so where gmail is there the tools were silently
/// missing (INV-1); with an error naming a server, the abort is not judged (no list of the turn
/// earned it): not run, never a pass.
#[test]
fn a_host_that_ends_turns_at_the_question_is_judged_or_not_run() {
    for transport in ["stdio", "http"] {
        let (code, rows) = conform(&bad("ends-turns"), transport, &[HEADLINE]);
        assert_eq!((code, rows[0]["verdict"].as_str()), (Some(1), Some("fail")), "{transport}: {:?}", rows[0]);
        assert!(rows[0]["violated"].as_array().unwrap().iter().any(|v| v == "INV-1"), "{:?}", rows[0]);
        let (code, rows) = conform(&bad("ends-turns-naming"), transport, &[HEADLINE]);
        assert_eq!((code, rows[0]["verdict"].as_str()), (Some(1), Some("not_run")), "{transport}: {:?}", rows[0]);
        assert!(rows[0]["error"].as_str().unwrap().contains("at the user's question"), "{:?}", rows[0]);
    }
}

/// A client of the stateless revision 2026-07-28 alone, which never opens a listen stream: with
/// servers that speak that revision too it is judged where the wire can play the fixture (it lists
/// at every turn, so the motivating report's story passes), and a `list_changed` it has no stream
/// to hear makes the fixture not run, never a pass or a failure; with servers of the handshake
/// revisions alone it cannot connect: it exits, and the error says so during the handshake.
#[test]
fn a_stateless_client_is_judged_where_the_wire_can_play_the_fixture() {
    let host = bad("never-listens");
    // The second delivers a `list_changed`; the third's server sends one before the result of the
    // agent's `complete_authentication`.
    let fixtures = [HEADLINE, "scenario/ListChangedIgnored", "scenario/AgentHandshake"];
    let (code, rows) = conform_with(&host, "http", &fixtures, 5000, &["--revision", "2026-07-28"]);
    assert_eq!(code, Some(0), "{rows:?}");
    for row in &rows {
        if row["id"] == HEADLINE {
            assert_eq!(row["verdict"], "pass", "{row}");
            continue;
        }
        assert_eq!(row["verdict"], "not_run", "{row}");
        assert!(row["error"].as_str().unwrap().contains("no listen stream asking for it"), "{row}");
    }
    // A fixture whose server speaks 2026-07-28 (a long TTL, no listen stream opened): the server
    // speaks that revision whatever `--revision` says, and a client that lists at every turn
    // passes where `ttl-only` fails (INV-1).
    let (code, rows) = conform_with(&host, "http", &[UNOPENED], 5000, &[]);
    assert_eq!((code, rows[0]["verdict"].as_str()), (Some(0), Some("pass")), "{rows:?}");
    let (code, rows) = conform_with(&host, "http", &[HEADLINE], 2000, &[]);
    assert_eq!((code, rows[0]["verdict"].as_str()), (Some(1), Some("error")), "{rows:?}");
    let error = rows[0]["error"].as_str().unwrap();
    assert!(error.contains("the handshake") && error.contains("the host exited"), "{error}");
    none_left(env!("CARGO_BIN_EXE_bad-host"));
}

/// A host that tells the model a call worked without running it on the server is read from what
/// the server saw, not from what it told the model: an error naming the call, never a pass (a host
/// that runs its calls passes the same fixture). So is one that runs it, and tells the model it
/// worked though the server refused it.
#[test]
fn a_call_the_host_never_ran_is_no_tool_used() {
    for transport in ["stdio", "http"] {
        let (code, rows) = conform(&bad("fakes-calls"), transport, &[HEADLINE]);
        assert_eq!((code, rows[0]["verdict"].as_str()), (Some(1), Some("error")), "{transport}: {rows:?}");
        let error = rows[0]["error"].as_str().unwrap();
        assert!(error.contains("a result (\"Done.\") without calling gmail's server"), "{transport}: {error}");
        // One that runs the call, and tells the model "Done." though the server answered 401.
        let (code, rows) = conform(&bad("hides-failures"), transport, &["scenario/FalseNeedsAuth"]);
        assert_eq!((code, rows[0]["verdict"].as_str()), (Some(1), Some("error")), "{transport}: {rows:?}");
        let error = rows[0]["error"].as_str().unwrap();
        assert!(error.contains("(\"Done.\") that says neither"), "{transport}: {error}");
        assert!(error.contains("though gmail's server refused it"), "{transport}: {error}");
    }
    none_left(env!("CARGO_BIN_EXE_bad-host"));
}

/// A host that, after the agent's call is refused (401), lists another server that said its list
/// changed before it gives the model the result (as agent frameworks do: Pydantic AI on this
/// fixture) is judged on the failed call, not taken to hold the call for a retry it never makes:
/// it fails INV-2 here, and INV-13 on the other, where it was an error before.
#[test]
fn a_refused_call_whose_result_waits_for_another_server_s_list_is_judged() {
    for transport in ["stdio", "http"] {
        let (_, rows) = conform(&bad("lists-on-change"), transport, &["walk/1/0058"]);
        assert_eq!(rows[0]["verdict"], "fail", "{transport}: {}", rows[0]);
        assert_eq!(rows[0]["violated"], serde_json::json!(["INV-2"]), "{transport}: {}", rows[0]);
    }
    let (_, rows) = conform(&bad("lists-on-change"), "stdio", &["mutant/notice-on-unauthorized/wrong-connector/0076"]);
    assert!(rows[0]["error"].is_null(), "{}", rows[0]);
    assert_eq!(rows[0]["violated"], serde_json::json!(["INV-13", "INV-7"]), "{}", rows[0]);
}

/// A host that speaks only the 2025 revisions meets a 2026-07-28 server of a fixture as one of
/// the handshake revisions: the fixture's world is not the one it meets, so it is not run.
#[test]
fn a_2025_client_is_not_judged_on_a_fixture_of_2026() {
    let (code, rows) = conform(&rmcp_host("recommended"), "http", &[UNOPENED]);
    assert_eq!((code, rows[0]["verdict"].as_str()), (Some(1), Some("not_run")), "{rows:?}");
    assert!(rows[0]["error"].as_str().unwrap().contains("the host speaks a 2025 revision to gmail"), "{:?}", rows[0]);
}

#[test]
fn each_bad_host_gets_an_error_naming_the_fixture_and_the_step_and_leaves_nothing() {
    let cases = [
        ("ignores-config", "the handshake", "no first connection to every connector"),
        (
            "never-calls-model",
            "fixture step 2",
            "no model request with tools, tools/list or turn end after the user's turn",
        ),
        ("crashes-mid-turn", "fixture step 2", "the host exited (exit status: 3)"),
        ("floods", "fixture step 3", "never ended the turn"),
        ("garbage", "fixture step 2", "the host printed a line that is not UTF-8"),
    ];
    for (mode, during, what) in cases {
        // Short waits: a bad host is named by what did not happen within them.
        let (code, rows) = conform_within(&bad(mode), "stdio", &[HEADLINE], 2000);
        let row = &rows[0];
        assert_eq!((code, row["verdict"].as_str()), (Some(1), Some("error")), "{mode}: {row}");
        let error = row["error"].as_str().unwrap();
        assert!(error.contains(during) && error.contains(what), "{mode}: {error}");
        assert!(row["reproduce"].as_str().unwrap().contains(HEADLINE), "{mode}: {row}");
        none_left(env!("CARGO_BIN_EXE_bad-host"));
    }
    none_left(&common::coherence().display().to_string());
}

#[test]
#[ignore = "heavy tier: twelve black-box runs"]
fn three_runs_give_the_same_verdicts() {
    let fixtures = [HEADLINE, "scenario/ListChangedIgnored"];
    for policy in ["recommended", "session-start-only"] {
        let runs: Vec<Vec<Value>> = (0..3)
            .map(|_| {
                let (_, rows) = conform(&rmcp_host(policy), "stdio", &fixtures);
                rows.iter().map(|r| serde_json::json!([r["id"], r["verdict"], r["violated"], r["step"]])).collect()
            })
            .collect();
        assert_eq!(runs[0], runs[1], "{policy}");
        assert_eq!(runs[1], runs[2], "{policy}");
    }
}
