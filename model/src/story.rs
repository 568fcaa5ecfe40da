//! Counterexamples as stories: one numbered sentence per step, in the words of SPEC.md.

use crate::explore::Trace;
use crate::invariants::Invariant;
use crate::state::*;
use crate::system::{Action, CoherenceModel};

fn listing_words(listing: Option<Listing>) -> &'static str {
    match listing {
        None => "nothing",
        Some(Listing::Stubs) => "only the auth stubs",
        Some(Listing::Actions) => "the action tools",
        Some(Listing::SomeActions) => "only some of the action tools (not the one needed)",
        Some(Listing::Withdrawn) => "the action tools but the one needed (withdrawn by a deploy)",
    }
}

fn recovery_words(recovery: Recovery) -> &'static str {
    match recovery {
        Recovery::Restart => "restart the session",
        Recovery::Refresh => "run /mcp",
        Recovery::Authenticate => "authenticate in this session",
    }
}

fn notice_words(notice: Notice) -> String {
    let reason = match notice.reason {
        NoticeReason::NeedsAuthentication => "needs authentication",
        NoticeReason::ChangedElsewhere => "changed on another surface",
        NoticeReason::RefreshFailed => "could not be refreshed",
    };
    format!("\"{reason}: {}\"", recovery_words(notice.recovery))
}

fn auth_words(auth: Auth) -> &'static str {
    match auth {
        Auth::Unauthenticated => "unauthenticated",
        Auth::Authenticated => "authenticated",
        Auth::Expired => "expired",
        Auth::Revoked => "revoked",
    }
}

fn notify_words(notify: Notify) -> &'static str {
    match notify {
        Notify::Advertised => "sends list_changed and declares it",
        Notify::Unadvertised => "sends list_changed without declaring it",
        Notify::Silent => "never sends list_changed",
    }
}

fn stateless_notify_words(notify: Notify) -> &'static str {
    match notify {
        Notify::Silent => "acknowledges a listen stream without toolsListChanged and never notifies",
        _ => "notifies every listen stream that asks",
    }
}

fn ttl_words(ttl: Ttl) -> &'static str {
    match ttl {
        Ttl::Zero => "its lists stale at once (ttlMs 0)",
        Ttl::Long => "its lists fresh for a long TTL",
    }
}

fn failure_words(failure: ListFailure) -> &'static str {
    match failure {
        ListFailure::Unauthorized => "401 Unauthorized",
        ListFailure::Transport => "a transport error",
        ListFailure::SessionNotFound => "404, session not found",
    }
}

/// What a session offers, connector by connector, with its notices.
pub fn catalogue_words(model: &CoherenceModel, state: &State, session: SessionId) -> String {
    let parts: Vec<String> = model
        .bounds
        .connector_ids()
        .map(|c| {
            let link = state.link(session, c);
            let kept = if link.lazy { "nothing kept, listed at the next offer" } else { listing_words(link.offered()) };
            let mut part = format!("{c}: {kept}");
            if let Some(notice) = link.notice {
                part.push_str(&format!(" + notice {}", notice_words(notice)));
            }
            part
        })
        .collect();
    parts.join("; ")
}

/// The initial state in one sentence.
pub fn initial_words(model: &CoherenceModel, state: &State) -> String {
    let connectors: Vec<String> = model
        .bounds
        .connector_ids()
        .map(|c| {
            let k = state.connector(c);
            if !k.stateless() {
                return format!("{c} is {} (its server {})", auth_words(k.auth), notify_words(k.notify));
            }
            let listeners: Vec<&str> =
                model.bounds.session_ids().filter(|&s| state.link(s, c).listening).map(SessionId::name).collect();
            let listen = match listeners.len() {
                0 => "no session listens".to_owned(),
                1 => format!("{} listens", listeners[0]),
                _ => format!("{} listen", listeners.join(" and ")),
            };
            let scope = if k.scope == CacheScope::Public { ", marked public" } else { "" };
            format!(
                "{c} is {} (its server speaks 2026-07-28, {}, {}{scope}; {listen})",
                auth_words(k.auth),
                stateless_notify_words(k.notify),
                ttl_words(k.ttl)
            )
        })
        .collect();
    let others: Vec<SessionId> = model.bounds.session_ids().filter(|&s| state.context(s) != 0).collect();
    let second = if others.is_empty() {
        String::new()
    } else {
        let names: Vec<&str> = others.iter().map(|s| s.name()).collect();
        let auth: Vec<String> =
            model.bounds.connector_ids().map(|c| format!("{c} is {}", auth_words(state.connector(c).other))).collect();
        let is = if names.len() == 1 { "is" } else { "are" };
        format!(" {} {is} another user's (a second token): for them {}.", names.join(" and "), auth.join(", "))
    };
    let sessions: Vec<String> =
        model.bounds.session_ids().map(|s| format!("{s} offers {}", catalogue_words(model, state, s))).collect();
    format!("Sessions start. {}.{second} {}.", connectors.join("; "), sessions.join(". "))
}

fn answer_words(connector: ConnectorId, answer: Answer) -> String {
    match answer {
        Answer::UsedTool => format!("calls a {connector} action tool; it works"),
        Answer::ToolFailed(None) => format!("calls a {connector} tool; it fails with no hint of a recovery"),
        Answer::ToolFailed(Some(r)) => {
            format!("calls a {connector} tool; it fails, and the reply says to {}", recovery_words(r))
        }
        Answer::StubReplied(StubReply::AuthPrompt) => {
            format!("calls {connector}'s authenticate stub; it starts the handshake")
        }
        Answer::StubReplied(StubReply::Opaque) => format!("calls {connector}'s authenticate stub; it fails opaquely"),
        Answer::StubReplied(StubReply::Guidance(r)) => {
            format!(
                "calls {connector}'s authenticate stub; it says {connector} is authenticated elsewhere: {}",
                recovery_words(r)
            )
        }
        Answer::NoSuchTool => {
            format!("calls a {connector} tool the catalogue does not list; the host says \"no such tool\"")
        }
        Answer::Misrouted => format!(
            "calls a {connector} tool the catalogue does not list; the host runs another connector's tool of that name"
        ),
        Answer::NotAvailable => format!("answers that {connector} is not available"),
        Answer::RelayedNotice => format!("relays the notice for {connector}"),
        Answer::Aborted(named) => {
            format!("never acts: the host aborts the turn with an error saying {named}'s tools could not be listed")
        }
    }
}

/// One step in one sentence: what happened and how the host reacted. The host re-lists a
/// connector where a request is in flight or queued that was not before: where it decided to.
pub fn step_words(model: &CoherenceModel, before: &State, action: Action, after: &State) -> String {
    let relisted = |s: SessionId, c: ConnectorId| {
        let (b, a) = (before.link(s, c), after.link(s, c));
        a.fetch_count() > b.fetch_count() || (a.refetch_queued && !b.refetch_queued)
    };
    step_words_with(model, before, action, after, &relisted)
}

/// [`step_words`], with the host's re-lists given: `relisted(s, c)` says whether the host sent a
/// `tools/list` for `c` in `s` (not one for a next page) at this step. A conformance run knows
/// what a host sent, which its states only suggest (a request sent as a reply arrives leaves as
/// many in flight as before).
pub fn step_words_with(
    model: &CoherenceModel,
    before: &State,
    action: Action,
    after: &State,
    relisted: &dyn Fn(SessionId, ConnectorId) -> bool,
) -> String {
    let reaction = |s: SessionId| {
        let mut words = Vec::new();
        for c in model.bounds.connector_ids() {
            if after.link(s, c).lazy && !before.link(s, c).lazy {
                words.push(format!("drops its {c} list"));
            }
            if relisted(s, c) {
                words.push(format!("re-lists {c}"));
            }
        }
        if before.session(s).read.is_none() && after.session(s).read.is_some() {
            words.push("reads the account".to_owned());
        }
        let held = |state: &State| state.session(s).turn.is_some_and(|t| t.held);
        if held(after) && !held(before) {
            words.push("holds the turn".to_owned());
        } else if held(before) && !held(after) && after.session(s).turn.is_some() {
            words.push("releases the turn".to_owned());
        }
        if words.is_empty() { String::new() } else { format!("; {s} {}", words.join(" and ")) }
    };
    match action {
        Action::WebAuthenticate { connector }
        | Action::WebRevoke { connector }
        | Action::TokenExpire { connector }
        | Action::DeployTools { connector } => {
            let k = after.connector(connector);
            let what = match action {
                Action::WebAuthenticate { .. } => format!("The user authenticates {connector} on the web"),
                Action::WebRevoke { .. } => format!("Access to {connector} is revoked"),
                Action::DeployTools { .. } if k.withdrawn => {
                    format!("A deploy of {connector}'s server withdraws the tool the user needs")
                }
                Action::DeployTools { .. } => {
                    format!("A deploy of {connector}'s server restores the tool the user needs")
                }
                _ => format!("{connector}'s token expires"),
            };
            // Only the sessions whose list changes: a second user's list does not change with the
            // account's authorization.
            let changed = |s: SessionId| before.listing(s, connector) != after.listing(s, connector);
            let listeners: Vec<&str> = model
                .bounds
                .session_ids()
                .filter(|&s| before.link(s, connector).listening && changed(s))
                .map(SessionId::name)
                .collect();
            let notified = if k.notify == Notify::Silent {
                format!("{connector} sends no list_changed")
            } else if k.stateless() && listeners.is_empty() {
                format!("{connector} sends no list_changed: no session listens")
            } else if k.stateless() && !before.connector(connector).announced {
                format!("{connector} sends list_changed on the listen stream of {}", listeners.join(" and "))
            } else if before.connector(connector).announced {
                format!("{connector} sends no list_changed: it sent one before the change")
            } else if model.bounds.session_ids().any(|s| !changed(s)) {
                format!("{connector} sends list_changed to every session of the account")
            } else {
                format!("{connector} sends list_changed to every session")
            };
            format!("{what}. Its server now lists {} (v{}); {notified}.", listing_words(Some(k.listing())), k.version)
        }
        Action::DeliverNotification { session, connector } => {
            let r = reaction(session);
            if r.is_empty() {
                format!("{session} receives {connector}'s list_changed and does nothing.")
            } else {
                format!("{session} receives {connector}'s list_changed{r}.")
            }
        }
        Action::DeliverListing { session, connector, slot } | Action::TimeOutListing { session, connector, slot } => {
            let fetch =
                before.link(session, connector).fetches[usize::from(slot)].expect("delivered a fetch in flight");
            let got = match fetch.reply {
                Reply::Listed { listing, version } => format!("{} (v{version})", listing_words(Some(listing))),
                Reply::Failed(f) => format!("the request failed with {}", failure_words(f)),
                Reply::Hung => "nothing; the request timed out, a transport failure".to_owned(),
                Reply::Lost => unreachable!("a lost request is never delivered"),
            };
            let applied = matches!(after.event, Some(Event::Applied { .. }));
            let effect = if applied {
                format!("; {session} now offers {}", listing_words(after.link(session, connector).offered()))
            } else if let Some(Event::Answered(m)) = after.event {
                format!("; {session} {}", answer_words(m.connector, m.answer).replace("never acts: the host ", ""))
            } else if let Reply::Listed { listing, .. } = fetch.reply {
                // Told from what the host did, never from what a reference host would have done.
                let offered = after.link(session, connector).offered();
                if after.link(session, connector).lazy {
                    format!("; {session} keeps no list for {connector} now, and drops the reply")
                } else if offered == Some(listing) {
                    format!("; {session} goes on offering {}", listing_words(offered))
                } else if fetch.superseded {
                    format!(
                        "; a reply to a later request was already applied, and {session} ignores this one: it still offers {}",
                        listing_words(offered)
                    )
                } else {
                    format!("; {session} does not apply it: it still offers {}", listing_words(offered))
                }
            } else {
                let link = after.link(session, connector);
                match link.notice {
                    Some(n) if before.link(session, connector).notice != Some(n) => {
                        format!("; {session} shows notice {}", notice_words(n))
                    }
                    _ => String::new(),
                }
            };
            if matches!(action, Action::TimeOutListing { .. }) {
                if !model.times_out() {
                    return format!(
                        "Time passes: {session}'s tools/list for {connector} is past any timeout; {session} has none and waits on."
                    );
                }
                return format!(
                    "{session} gives up its hung tools/list for {connector}: {got}{effect}{}.",
                    reaction(session)
                );
            }
            let shared = shared_words(before, after, session, connector);
            format!(
                "{session} receives a tools/list reply for {connector}: {got}{effect}{shared}{}.",
                reaction(session)
            )
        }
        Action::DeliverAccount { session } => {
            let read = before.session(session).read.expect("delivered a read in flight");
            let got = match read {
                AccountRead::Failed => "the read failed".to_owned(),
                AccountRead::Served(_) => model
                    .bounds
                    .connector_ids()
                    .map(|c| {
                        let says = if read.listing(c) == Some(Listing::Actions) {
                            "authenticated"
                        } else {
                            "not authenticated"
                        };
                        format!("{c} {says}")
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
            };
            let notices: Vec<String> = model
                .bounds
                .connector_ids()
                .filter_map(|c| {
                    let n = after.link(session, c).notice?;
                    (before.link(session, c).notice != Some(n)).then(|| format!("notice {} for {c}", notice_words(n)))
                })
                .collect();
            let shows =
                if notices.is_empty() { String::new() } else { format!("; {session} shows {}", notices.join(", ")) };
            format!("{session}'s account read returns: {got}{shows}{}.", reaction(session))
        }
        Action::ServeLate { session, connector, slot } => {
            let reply = after.link(session, connector).fetches[usize::from(slot)].map(|f| f.reply);
            let says = match reply {
                Some(Reply::Listed { listing, version }) => format!("{} (v{version})", listing_words(Some(listing))),
                _ => "what the server lists now".to_owned(),
            };
            format!(
                "Fault: {connector}'s server serves {session}'s earlier tools/list after a later one: its reply will say {says}."
            )
        }
        Action::HangListing { session, connector, .. } => {
            format!("Fault: {session}'s tools/list for {connector} hangs: it will never be answered.")
        }
        Action::PageListing { session, connector, .. } => format!(
            "{connector}'s server pages its reply to {session}'s tools/list: the first page of the action tools, and a nextCursor to the rest, where the tool the user needs is."
        ),
        Action::FailAccountRead { session } => format!("Fault: {session}'s account read will fail."),
        Action::LoseNotification { session, connector } => {
            format!("Fault: {connector}'s list_changed to {session} is lost.")
        }
        Action::DuplicateNotification { session, connector } => {
            format!("Fault: {connector}'s list_changed to {session} is duplicated.")
        }
        Action::LoseNotificationStream { session, connector } if before.connector(connector).stateless() => {
            let lost = before.link(session, connector).notifications;
            let reopened = if after.link(session, connector).listening {
                format!("{session} listens again{}", reaction(session).replacen(&format!("; {session}"), " and", 1))
            } else {
                format!("{session} does not listen again")
            };
            let gone = match lost {
                0 => "nothing was on it".to_owned(),
                1 => "the list_changed on it is gone".to_owned(),
                n => format!("the {n} list_changed on it are gone"),
            };
            format!(
                "Fault: {connector}'s listen stream to {session} ends (the server closes it, or the connection fails); {gone}; {reopened}."
            )
        }
        Action::LoseNotificationStream { session, connector } => {
            let lost = before.link(session, connector).notifications;
            format!(
                "Fault: {connector}'s notification stream to {session} drops: its {lost} undelivered list_changed are lost."
            )
        }
        Action::ExpireTtl { session, connector } => {
            format!("Time passes: the TTL of {session}'s {connector} list runs out; it is stale now.")
        }
        Action::NotifyBeforeUpdate { connector } => format!(
            "Fault: {connector}'s server sends list_changed to every session before its list changes: it still lists {} (v{}), and will not notify the change when it comes.",
            listing_words(Some(after.connector(connector).listing())),
            after.connector(connector).version
        ),
        Action::RefreshTokenSilently { connector } => {
            let k = after.connector(connector);
            format!(
                "Fault: {connector}'s expired token is refreshed without the user. Its server now lists {} (v{}); no server sends list_changed.",
                listing_words(Some(k.listing())),
                k.version
            )
        }
        Action::FailListing { session, connector, failure, .. } => {
            format!("Fault: {session}'s tools/list for {connector} will fail with {}.", failure_words(failure))
        }
        Action::LoseTransportSession { session, connector } => {
            format!("Fault: {connector}'s server ends {session}'s transport session; requests now get 404.")
        }
        Action::UserAsk { session, connector } => format!(
            "In {session}, the user asks for a {connector} capability. {session} offers: {}{}.",
            catalogue_words(model, after, session),
            reaction(session)
        ),
        Action::UserMcp { session } => {
            let r = reaction(session);
            if r.is_empty() {
                format!("In {session}, the user runs /mcp; it re-lists nothing.")
            } else {
                format!("In {session}, the user runs /mcp{r}.")
            }
        }
        Action::UserRestart { session } => format!("The user restarts {session}{}.", reaction(session)),
        Action::UserAuthenticate { session, connector } => {
            format!("In {session}, the user completes {connector}'s authentication handshake{}.", reaction(session))
        }
        Action::AgentCompleteAuthentication { session } => {
            let connector = before.session(session).turn.expect("agent acts in a turn").connector;
            let k = after.connector(connector);
            format!(
                "The agent in {session} completes {connector}'s authentication handshake through its stubs (the user approves), and the turn goes on. Its server now lists {} (v{}){}{}.",
                listing_words(Some(k.listing())),
                k.version,
                if k.notify == Notify::Silent {
                    "; it sends no list_changed".to_owned()
                } else if k.stateless() && !before.link(session, connector).listening {
                    format!("; it sends no list_changed to {session}, which does not listen")
                } else if before.connector(connector).announced {
                    "; it sends no list_changed (it sent one before the change)".to_owned()
                } else if model.notifies_caller_first(before, session, connector) {
                    format!("; {connector} sends list_changed to every session, to {session} before the result")
                } else {
                    format!("; {connector} sends list_changed to every session, after the result")
                },
                reaction(session),
            )
        }
        Action::AgentCallTool { session }
        | Action::AgentCallStub { session }
        | Action::AgentCallUnlisted { session }
        | Action::AgentAnswerNotAvailable { session }
        | Action::AgentRelayNotice { session } => match after.event {
            Some(Event::Answered(m)) => {
                let shown = match m.notice {
                    Some(n) => format!("notice {} for {}", notice_words(n), m.connector),
                    None => "no notice".to_owned(),
                };
                let pending = if after.link(session, m.connector).notifications > 0 {
                    format!(" {}'s list_changed has not reached {session} yet.", m.connector)
                } else {
                    String::new()
                };
                format!(
                    "The agent in {session} {}. {session} offers {} for {}, with {shown}.{pending}",
                    answer_words(m.connector, m.answer),
                    listing_words(m.offered),
                    m.connector
                )
            }
            _ => {
                let connector = before.session(session).turn.expect("agent acts in a turn").connector;
                let what = match action {
                    Action::AgentCallTool { .. } => format!("calls a {connector} tool; it fails with 404"),
                    Action::AgentCallStub { .. } => format!("calls {connector}'s authenticate stub"),
                    _ => format!("calls a {connector} tool the catalogue does not list"),
                };
                format!("The agent in {session} {what}{}.", reaction(session))
            }
        },
    }
}

/// The other sessions a shared cache served the reply to `session`'s `tools/list` for `connector`
/// to in the step from `before` to `after`.
pub(crate) fn served_from_cache(
    before: &State,
    after: &State,
    session: SessionId,
    connector: ConnectorId,
) -> impl Iterator<Item = SessionId> {
    (0..after.shape.sessions).map(SessionId).filter(move |&s| {
        let (was, is) = (before.link(s, connector), after.link(s, connector));
        s != session && is.shared && (was.entry != is.entry || !was.shared)
    })
}

/// The sessions a shared cache served a reply to `session` to, in words (empty if none).
fn shared_words(before: &State, after: &State, session: SessionId, connector: ConnectorId) -> String {
    let mut words = Vec::new();
    for s in served_from_cache(before, after, session, connector) {
        let is = after.link(s, connector);
        let whose = if is.foreign {
            format!(" (listed with {session}'s token, private)")
        } else if after.context(s) != after.context(session) {
            format!(" (listed with {session}'s token, marked public)")
        } else {
            String::new()
        };
        words.push(format!("{s} now offers {}{whose}", listing_words(is.offered())));
    }
    if words.is_empty() { String::new() } else { format!("; from the shared cache, {}", words.join(", and ")) }
}

/// Why the last state of a counterexample breaks `invariant`, in one sentence.
pub fn violation_words(model: &CoherenceModel, invariant: &Invariant, state: &State) -> String {
    let Some(focus) = invariant.violation(model, state) else { return String::new() };
    let (s, c) = (focus.session, focus.connector);
    let link = state.link(s, c);
    let server = state.listing(s, c);
    let m = focus.moment;
    // With deploys, a connector can be authenticated without the tool the user needs.
    let deploys = model.faults.contains(crate::system::Fault::DeployTools);
    let (whole, not_whole, at_answer, not_at_answer) = if deploys {
        (
            "listed the tool the user needs for the whole turn",
            "did not list the tool the user needs for the whole turn",
            "lists the tool the user needs",
            "does not list the tool the user needs",
        )
    } else {
        (
            "was authenticated for the whole turn",
            "was not authenticated for the whole turn",
            "is authenticated",
            "is not authenticated",
        )
    };
    match (invariant.id, m) {
        ("INV-1", Some(m)) => format!(
            "{c} {whole}, {s} offered {}, the agent did not use {c}'s tools, and neither a notice nor the reply named a recovery step: the tools were silently missing.",
            listing_words(m.offered)
        ),
        ("INV-2", Some(_)) => {
            format!("{c} {not_whole}, yet {s} still offered its action tools and nothing flagged them.")
        }
        ("INV-3", Some(m)) => format!(
            "{c} {whole}, yet {s} told the agent it {}.",
            if m.answer == Answer::NoSuchTool { "has no such tool" } else { "needs authentication" }
        ),
        ("INV-5", _) => {
            format!("{c} {whole}, and its stub failed without naming a recovery step.")
        }
        ("INV-8", Some(_)) => format!("A call meant for {c} ran another connector's tool."),
        ("INV-9", Some(_)) => format!(
            "{s} shows notice {} for {c}, yet nothing justifies it: {s} offers {} as the server lists {}, and nothing on the link has failed or signalled a change since it was last answered.",
            link.notice.map(notice_words).unwrap_or_default(),
            listing_words(link.offered()),
            listing_words(Some(server))
        ),
        ("INV-10", Some(m)) => format!(
            "{s} had a reason to refresh {c} it could act on, and no fault since, yet at the answer it offered {} while {c} {}.",
            listing_words(m.offered),
            if deploys { "listed the tool the user needs" } else { "was authenticated" }
        ),
        ("INV-11", _) => {
            format!("{s} holds the turn, and nothing it waits for will ever arrive: the agent can never act.")
        }
        ("INV-12", _) => match state.event {
            Some(Event::Applied(a)) => format!(
                "{s} replaced its {c} list with an older reply (v{}: {}) although it had already received a newer one (v{}: {}).",
                a.reply.version,
                listing_words(Some(a.reply.listing)),
                a.newest.map(|n| n.version).unwrap_or_default(),
                listing_words(a.newest.map(|n| n.listing))
            ),
            _ => String::new(),
        },
        ("INV-13", Some(m)) => {
            let what = if m.listed {
                format!("{s} offered {} and the agent did not use its tools", listing_words(m.offered))
            } else {
                format!("{s} still offered its action tools")
            };
            format!(
                "{c} changed during the turn and {s} was told before the answer; {c} {} now, yet {what}, and nothing named a recovery step.",
                if m.listed { at_answer } else { not_at_answer }
            )
        }
        ("INV-14", Some(m)) => {
            let named = match m.answer {
                Answer::Aborted(named) => named,
                _ => c,
            };
            format!(
                "{s} aborted the turn with an error naming {named}, yet no tools/list of {named} has failed since one last succeeded."
            )
        }
        ("INV-6" | "INV-7", _) => {
            let why = if invariant.id == "INV-6" {
                "after the user did what the notice said, with nothing more to arrive"
            } else {
                "after a reason to refresh, with nothing more to arrive and no notice"
            };
            format!(
                "{s} offers {} for {c} while its server lists {} {why}.",
                listing_words(link.offered()),
                listing_words(Some(server))
            )
        }
        ("INV-15", _) => format!(
            "{s} offers {} for {c}, a private tool list its shared cache got with another user's token: another authorization context's list.",
            listing_words(link.offered())
        ),
        _ => format!("{}: {}", invariant.id, invariant.statement()),
    }
}

/// A trace as numbered sentences, the initial state as step 0.
pub fn story(model: &CoherenceModel, trace: &Trace) -> Vec<String> {
    let mut lines = vec![format!("0. {}", initial_words(model, &trace.init))];
    let mut before = trace.init;
    for (i, (action, after)) in trace.steps.iter().enumerate() {
        lines.push(format!("{}. {}", i + 1, step_words(model, &before, *action, after)));
        before = *after;
    }
    lines
}
