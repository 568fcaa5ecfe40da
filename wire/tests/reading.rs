//! Reading what hosts tell the model: tool names back to connectors, and notices and errors from
//! phrasings hosts and servers use.

use coherence_wire::reading::{Connector, Phrases, connector_of, read_lines};

fn connectors() -> Vec<Connector> {
    let c = |name: &str, tools: &[&str]| Connector {
        name: name.into(),
        tools: tools.iter().map(|t| (*t).into()).collect(),
    };
    vec![
        c("gmail", &["gmail_authenticate", "gmail_create_draft"]),
        c("calendar", &["calendar_authenticate", "calendar_create_event"]),
        c("sas-execution-mcp", &["sas-execution-mcp_run"]),
    ]
}

#[test]
fn every_naming_scheme_maps_back_to_the_connector() {
    let cs = connectors();
    for (offered, owner) in [
        ("gmail_create_draft", Some(0)),
        ("mcp__gmail__gmail_create_draft", Some(0)),
        ("gmail-server.gmail_authenticate", Some(0)),
        ("calendar_create_event", Some(1)),
        ("mcp__calendar__calendar_authenticate", Some(1)),
        ("sas-execution-mcp_run", Some(2)),
        // Not at a boundary, or no tool of any connector.
        ("xgmail_create_draft", None),
        ("gmail_create_draft2", None),
        ("create_draft", None),
        ("web_search", None),
    ] {
        assert_eq!(connector_of(offered, &cs), owner, "{offered}");
    }
}

/// Each case: a line a host or server has written (or one in its style), and what it is about
/// `gmail` (connector 0) or another connector: (notice, error).
#[test]
fn notices_and_errors_are_read_from_real_phrasings() {
    let cs = connectors();
    let phrases = Phrases::standard();
    let cases: &[(&str, usize, bool, bool)] = &[
        // What the motivating report asks a stub to say.
        ("gmail is authenticated elsewhere; restart or refresh to load its tools.", 0, true, false),
        // A host's wrapper around a server's 401 body (sassoftware/sas-mcp-server#4).
        (
            "Error from MCP server sas-execution-mcp: Authentication failed. The provided bearer token is invalid, expired, \
             or no longer recognized by the server. To resolve: clear authentication tokens in your MCP client and reconnect.",
            2,
            true,
            true,
        ),
        // An unknown-tool error in the style of the Python SDK's, naming the tool only.
        ("Unknown tool: gmail_create_draft", 0, false, true),
        // A tool result that names a recovery command.
        ("The calendar connector's token expired. Run /mcp to authenticate again.", 1, true, true),
        // A stale reminder: it names gmail and tells what to call, but no recovery step and no error.
        ("gmail needs authentication: call gmail_authenticate first.", 0, false, false),
        // A status line: names gmail, says nothing to act on.
        ("Connected MCP servers: gmail", 0, false, false),
    ];
    for &(line, k, notice, error) in cases {
        let read = read_lines(&[line.to_owned()], &cs, &phrases);
        assert_eq!(read.len(), 1);
        assert_eq!(
            (read[0].is_notice_about(k), read[0].is_error_about(k)),
            (notice, error),
            "{}",
            read[0].explain(k, &cs)
        );
    }
}

#[test]
fn a_line_counts_only_for_the_connectors_it_names() {
    let cs = connectors();
    // The second line's recovery step is not about calendar, and the third names no connector.
    let text = "calendar: connected\ngmail: restart to load its tools\nThe server's authentication failed or was interrupted. You must re-authenticate.";
    let read = read_lines(&[text.to_owned()], &cs, &Phrases::standard());
    assert_eq!(read.len(), 3);
    assert!(!read.iter().any(|l| l.is_notice_about(1)));
    assert!(read[1].is_notice_about(0));
    assert!(read[2].names.is_empty() && read[2].recovery.is_some() && read[2].error.is_some());
    assert_eq!(read[2].explain(0, &cs), format!("\"{}\": does not name gmail", read[2].text));
    assert_eq!(
        read[0].explain(1, &cs),
        "\"calendar: connected\": names calendar but holds no recovery or error phrase"
    );
    // Words, not substrings: "gmailer" is not gmail.
    assert!(read_lines(&["gmailer: restart".into()], &cs, &Phrases::standard())[0].names.is_empty());
}

#[test]
fn phrases_can_be_replaced() {
    let ours = Phrases::from_json(r#"{"recovery": ["neu starten"], "error": ["fehler"]}"#).unwrap();
    let read = read_lines(&["gmail: Fehler, bitte neu starten".into()], &connectors(), &ours);
    assert!(read[0].is_notice_about(0) && read[0].is_error_about(0));
    assert!(!read_lines(&["gmail: restart".into()], &connectors(), &ours)[0].is_notice_about(0));
    for bad in
        [r#"{"recovery": [""], "error": []}"#, r#"{"recovery": []}"#, r#"{"recovery": [], "error": [], "x": 1}"#, "[]"]
    {
        assert!(Phrases::from_json(bad).is_err(), "{bad}");
    }
}
