//! Counterexamples as Mermaid sequence diagrams, for design reviews: the user, the web surface,
//! each connector's server, each host session and the agent, with a message or a note per step
//! (and one per `tools/list` a host sent in it), and the step that breaks the invariant marked.
//! The same trace as [`crate::story`] tells in words.

use crate::explore::Trace;
use crate::invariants::Invariant;
use crate::state::*;
use crate::system::{Action, CoherenceModel};

fn listing(listing: Option<Listing>) -> &'static str {
    match listing {
        None => "nothing",
        Some(Listing::Stubs) => "auth stubs",
        Some(Listing::Actions) => "action tools",
        Some(Listing::SomeActions) => "a first page",
    }
}

/// What `session` offers the agent, connector by connector.
fn offers(model: &CoherenceModel, state: &State, session: SessionId) -> String {
    let words: Vec<String> = model
        .bounds
        .connector_ids()
        .map(|c| {
            let link = state.link(session, c);
            let notice = if link.notice.is_some() { " + notice" } else { "" };
            format!("{}: {}{notice}", c.name(), listing(link.offered()))
        })
        .collect();
    words.join("; ")
}

/// The lines of one step: what happened, then the `tools/list` requests the host sent in it.
fn step(model: &CoherenceModel, before: &State, action: Action, after: &State) -> Vec<String> {
    let mut lines = Vec::new();
    let note = |over: &str, what: &str| format!("    Note over {over}: {what}");
    match action {
        Action::WebAuthenticate { connector } => {
            lines.push(format!("    User->>Web: authenticate {connector}"));
            lines.push(format!("    Web->>{connector}: authenticated: lists the action tools"));
        }
        Action::WebRevoke { connector } => {
            lines.push(format!("    Web->>{connector}: access revoked: lists the stubs"))
        }
        Action::TokenExpire { connector } => lines.push(note(connector.name(), "the token expires: lists the stubs")),
        Action::DeliverNotification { session, connector } => {
            lines.push(format!("    {connector}-->>{session}: notifications/tools/list_changed"));
        }
        Action::DeliverListing { session, connector, slot } => {
            let reply = before.link(session, connector).fetches[usize::from(slot)].map(|f| f.reply);
            let what = match reply {
                Some(Reply::Listed { listing: l, .. }) => listing(Some(l)).to_owned(),
                Some(Reply::Failed(failure)) => format!("{failure:?}"),
                _ => "a reply".to_owned(),
            };
            lines.push(format!("    {connector}-->>{session}: tools/list reply: {what}"));
        }
        Action::DeliverAccount { session } => lines.push(format!("    Web-->>{session}: the account read")),
        Action::TimeOutListing { session, connector, .. } => {
            lines.push(note(session.name(), &format!("gives up {connector}'s hung tools/list")));
        }
        Action::UserAsk { session, connector } => {
            lines.push(format!("    User->>{session}: asks for a {connector} capability"));
            lines.push(format!("    {session}->>Model: offers {}", offers(model, after, session)));
        }
        Action::UserMcp { session } => lines.push(format!("    User->>{session}: /mcp")),
        Action::UserRestart { session } => lines.push(format!("    User->>{session}: restart")),
        Action::UserAuthenticate { session, connector } => {
            lines.push(format!("    User->>{session}: authenticate {connector} in the session"));
        }
        Action::AgentCallTool { session } => lines.push(format!("    Model->>{session}: calls an action tool")),
        Action::AgentCallStub { session } => lines.push(format!("    Model->>{session}: calls authenticate (a stub)")),
        Action::AgentCallUnlisted { session } => lines.push(format!("    Model->>{session}: calls a tool not offered")),
        Action::AgentAnswerNotAvailable { session } => {
            lines.push(format!("    Model-->>User: \"not available\" (in {session})"));
        }
        Action::AgentRelayNotice { session } => lines.push(format!("    Model-->>User: relays {session}'s notice")),
        Action::AgentCompleteAuthentication { session } => {
            lines.push(format!("    Model->>{session}: completes the authentication handshake"));
        }
        fault => {
            let over = match (fault.session(), fault.connector()) {
                (Some(s), Some(c)) => format!("{c},{s}"),
                (Some(s), None) => s.name().to_owned(),
                (None, Some(c)) => c.name().to_owned(),
                (None, None) => "Web".to_owned(),
            };
            lines.push(note(&over, &format!("fault: {}", fault.name())));
        }
    }
    for s in model.bounds.session_ids() {
        for c in model.bounds.connector_ids() {
            let (was, is) = (before.link(s, c), after.link(s, c));
            let sent = is.fetch_count().saturating_sub(was.fetch_count());
            lines.extend((0..sent).map(|_| format!("    {s}->>{c}: tools/list")));
            if is.notifications > was.notifications {
                lines.push(note(&format!("{c},{s}"), "list_changed sent, not yet delivered"));
            }
        }
    }
    lines
}

/// `trace` as a Mermaid sequence diagram, ending with the note that `invariant` is broken.
pub fn sequence(model: &CoherenceModel, trace: &Trace, invariant: &Invariant) -> String {
    let mut lines = vec![
        "sequenceDiagram".to_owned(),
        "    actor User".to_owned(),
        "    participant Web as web surface".to_owned(),
    ];
    for c in model.bounds.connector_ids() {
        let notify = match trace.init.connector(c).notify {
            Notify::Advertised => "sends list_changed",
            Notify::Unadvertised => "sends list_changed, undeclared",
            Notify::Silent => "silent",
        };
        lines.push(format!("    participant {c} as {c} server ({notify})"));
    }
    for s in model.bounds.session_ids() {
        lines.push(format!("    participant {s} as {s} (host)"));
    }
    lines.push("    participant Model as agent (model)".to_owned());
    for s in model.bounds.session_ids() {
        lines.push(format!("    Note over {s}: starts offering {}", offers(model, &trace.init, s)));
    }
    let mut before = trace.init;
    for (i, (action, after)) in trace.steps.iter().enumerate() {
        lines.push(format!("    Note over User,Model: step {}: {}", i + 1, action.name()));
        lines.extend(step(model, &before, *action, after));
        before = *after;
    }
    lines.push(format!("    Note over User,Model: {} violated: {}", invariant.id, invariant.name));
    lines.join("\n") + "\n"
}
