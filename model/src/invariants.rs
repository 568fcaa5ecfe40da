//! The invariants of SPEC.md §6, with their permanent IDs, and the reachability properties that
//! show none of them holds vacuously.
//!
//! Every invariant is a safety property: a predicate on one state, which sees the step that led
//! to it through [`State::event`]. Liveness (INV-6, INV-7) is stated in a bounded form that is a
//! state predicate too; see SPEC.md §6 for why that form is sound and `eventually` is not used.

use crate::state::*;
use crate::system::CoherenceModel;
use stateright::Property;

/// One invariant.
#[derive(Clone, Copy, Debug)]
pub struct Invariant {
    /// The permanent ID, `INV-n`.
    pub id: &'static str,
    /// A short name.
    pub name: &'static str,
    /// The property name the checker reports: ID and name.
    pub property: &'static str,
    /// What a host must do, in one sentence (SPEC.md §6).
    pub must: &'static str,
    /// The name of the reachability property for this invariant's premise.
    pub reach_property: &'static str,
    /// What the premise is, in words.
    pub premise: &'static str,
    /// Holds in every state of a conforming host.
    pub holds: fn(&CoherenceModel, &State) -> bool,
    /// The situation the invariant judges occurs in this state.
    pub premise_holds: fn(&CoherenceModel, &State) -> bool,
}

/// Every invariant, by ID.
pub const INVARIANTS: &[Invariant] = &[
    Invariant {
        id: "INV-1",
        must: "an answer about a connector authenticated for the whole turn uses its action tools, or a notice or the answer names a recovery step",
        name: "never silently missing tools",
        property: "INV-1 never silently missing tools",
        reach_property: "REACH-1 an answer while authenticated but not offered",
        premise: "the agent answers about a connector authenticated for the whole turn whose tools the catalogue does not offer",
        holds: no_silent_missing_tools,
        premise_holds: gap_at_answer,
    },
    Invariant {
        id: "INV-2",
        must: "an answer about a connector unauthenticated for the whole turn does not rest on its action tools unless a notice or the answer flags them",
        name: "no phantom tools",
        property: "INV-2 no phantom tools",
        reach_property: "REACH-2 an answer while offered but not authenticated",
        premise: "the agent answers about a connector unauthenticated for the whole turn whose action tools the catalogue offers",
        holds: no_phantom_tools,
        premise_holds: phantom_at_answer,
    },
    Invariant {
        id: "INV-3",
        must: "nothing shown says a connector authenticated for the whole turn needs authentication or has no such tool",
        name: "honest unavailability",
        property: "INV-3 honest unavailability",
        reach_property: "REACH-3 an answer with a notice while authenticated",
        premise: "the agent answers about a connector authenticated for the whole turn while a notice is shown for it",
        holds: honest_unavailability,
        premise_holds: notice_while_available,
    },
    Invariant {
        id: "INV-4",
        must: "a catalogue entry is never replaced by a listing older than the one it holds",
        name: "no stale overwrite",
        property: "INV-4 no stale overwrite",
        reach_property: "REACH-4 a lagging reply is applied",
        premise: "a tools/list reply older than the server's current list is applied",
        holds: no_stale_overwrite,
        premise_holds: lagging_reply_applied,
    },
    Invariant {
        id: "INV-5",
        must: "a stub called for a connector authenticated for the whole turn names a recovery step, or the host refreshes instead",
        name: "stub guidance",
        property: "INV-5 stub guidance",
        reach_property: "REACH-5 a stub is called while authenticated",
        premise: "the agent calls a stub of a connector authenticated since the question",
        holds: stub_guidance,
        premise_holds: stub_while_available,
    },
    Invariant {
        id: "INV-6",
        must: "after the user performs a notice's recovery step, the catalogue matches the server once nothing is in flight",
        name: "actionable recovery",
        property: "INV-6 actionable recovery",
        reach_property: "REACH-6 a followed recovery settles",
        premise: "the user has performed a notice's recovery step and the session has settled",
        holds: actionable_recovery,
        premise_holds: followed_recovery_settled,
    },
    Invariant {
        id: "INV-7",
        must: "after a reason to refresh, the catalogue matches the server or a notice names the connector once nothing is in flight",
        name: "bounded convergence",
        property: "INV-7 bounded convergence",
        reach_property: "REACH-7 a gap remains after a trigger settles",
        premise: "a session had a reason to refresh, settled, and its catalogue still differs from the server",
        holds: bounded_convergence,
        premise_holds: gap_after_trigger,
    },
    Invariant {
        id: "INV-8",
        must: "a call meant for one connector never runs another connector's tool",
        name: "no misrouting",
        property: "INV-8 no misrouting",
        reach_property: "REACH-8 an unlisted call while another connector offers tools",
        premise: "the agent answers about a connector whose tools are not offered while another connector's are",
        holds: no_misrouting,
        premise_holds: misroute_possible,
    },
];

/// Looks an invariant up by its ID.
pub fn invariant(id: &str) -> Option<&'static Invariant> {
    INVARIANTS.iter().find(|i| i.id == id)
}

/// The stateright properties: one `always` per invariant, then one `sometimes` per premise.
pub fn properties() -> Vec<Property<CoherenceModel>> {
    let mut properties: Vec<_> = INVARIANTS.iter().map(|i| Property::always(i.property, i.holds)).collect();
    properties.extend(INVARIANTS.iter().map(|i| Property::sometimes(i.reach_property, i.premise_holds)));
    properties
}

fn moment(state: &State) -> Option<Moment> {
    match state.event {
        Some(Event::Answered(m)) => Some(m),
        _ => None,
    }
}

fn links<'a>(
    model: &'a CoherenceModel,
    state: &'a State,
) -> impl Iterator<Item = (SessionId, ConnectorId, &'a Link)> + 'a {
    model.bounds.session_ids().flat_map(move |s| model.bounds.connector_ids().map(move |c| (s, c, state.link(s, c))))
}

/// INV-1: at an answer about a connector authenticated for the whole turn, the agent used its
/// tools, or the user and the agent were told of the gap and a recovery step.
fn no_silent_missing_tools(_: &CoherenceModel, state: &State) -> bool {
    moment(state).is_none_or(|m| m.availability != Availability::Available || m.answer == Answer::UsedTool || m.told())
}

fn gap_at_answer(_: &CoherenceModel, state: &State) -> bool {
    moment(state).is_some_and(|m| m.availability == Availability::Available && m.offered != Some(Listing::Actions))
}

/// INV-2: at an answer about a connector unauthenticated for the whole turn, the catalogue does
/// not offer its action tools unless a notice or the answer flags them.
fn no_phantom_tools(_: &CoherenceModel, state: &State) -> bool {
    moment(state)
        .is_none_or(|m| m.availability != Availability::Absent || m.offered != Some(Listing::Actions) || m.told())
}

fn phantom_at_answer(_: &CoherenceModel, state: &State) -> bool {
    moment(state).is_some_and(|m| m.availability == Availability::Absent && m.offered == Some(Listing::Actions))
}

/// INV-3: nothing the host shows claims that a connector authenticated for the whole turn needs
/// authentication or has no such tool.
fn honest_unavailability(_: &CoherenceModel, state: &State) -> bool {
    moment(state).is_none_or(|m| {
        m.availability != Availability::Available
            || (m.notice.map(|n| n.reason) != Some(NoticeReason::NeedsAuthentication) && m.answer != Answer::NoSuchTool)
    })
}

fn notice_while_available(_: &CoherenceModel, state: &State) -> bool {
    moment(state).is_some_and(|m| m.availability == Availability::Available && m.notice.is_some())
}

/// INV-4: a catalogue entry is never replaced by a list older than the one it holds.
fn no_stale_overwrite(_: &CoherenceModel, state: &State) -> bool {
    match state.event {
        Some(Event::Applied { from: Some(from), to, .. }) => to >= from,
        _ => true,
    }
}

fn lagging_reply_applied(_: &CoherenceModel, state: &State) -> bool {
    matches!(state.event, Some(Event::Applied { to, server, .. }) if to < server)
}

/// INV-5: a stub called for a connector authenticated for the whole turn returns guidance that
/// names a recovery step.
fn stub_guidance(_: &CoherenceModel, state: &State) -> bool {
    moment(state).is_none_or(|m| match m.answer {
        Answer::StubReplied(reply) => {
            m.availability != Availability::Available || matches!(reply, StubReply::Guidance(_))
        }
        _ => true,
    })
}

fn stub_while_available(_: &CoherenceModel, state: &State) -> bool {
    match state.event {
        Some(Event::StubRefreshed { availability, .. }) => availability == Availability::Available,
        Some(Event::Answered(m)) => {
            m.availability == Availability::Available && matches!(m.answer, Answer::StubReplied(_))
        }
        _ => false,
    }
}

/// INV-6: once the user has performed the recovery step a notice named, and nothing changed or
/// failed since, the session's catalogue matches the server when it settles.
fn actionable_recovery(model: &CoherenceModel, state: &State) -> bool {
    links(model, state)
        .all(|(_, c, link)| !(link.following && link.settled()) || link.offered() == Some(state.connector(c).listing()))
}

fn followed_recovery_settled(model: &CoherenceModel, state: &State) -> bool {
    links(model, state).any(|(_, _, link)| link.following && link.settled())
}

/// INV-7: once a session has had a reason to refresh a connector since its last change, and
/// every message in flight for it has been delivered, its catalogue matches the server or a
/// notice names the connector and a recovery step.
fn bounded_convergence(model: &CoherenceModel, state: &State) -> bool {
    links(model, state).all(|(_, c, link)| {
        !(link.triggered && link.settled())
            || link.offered() == Some(state.connector(c).listing())
            || link.notice.is_some()
    })
}

fn gap_after_trigger(model: &CoherenceModel, state: &State) -> bool {
    links(model, state)
        .any(|(_, c, link)| link.triggered && link.settled() && link.offered() != Some(state.connector(c).listing()))
}

/// INV-8: a call meant for one connector never runs another connector's tool.
fn no_misrouting(_: &CoherenceModel, state: &State) -> bool {
    moment(state).is_none_or(|m| m.answer != Answer::Misrouted)
}

fn misroute_possible(model: &CoherenceModel, state: &State) -> bool {
    moment(state).is_some_and(|m| {
        m.offered != Some(Listing::Actions)
            && model
                .bounds
                .connector_ids()
                .any(|c| c != m.connector && state.link(m.session, c).offered() == Some(Listing::Actions))
    })
}

/// Structural facts every reachable state satisfies, whatever the policy. A broken one is a bug in
/// the model, not in a host; property tests assert that none is ever returned.
pub fn structural_violation(model: &CoherenceModel, state: &State) -> Option<String> {
    let b = &model.bounds;
    if state.spent.turns > b.turns
        || state.spent.auth_changes > b.auth_changes
        || state.spent.faults > b.faults
        || state.spent.commands > b.commands
    {
        return Some(format!("a budget is overspent: {:?}", state.spent));
    }
    for c in b.connector_ids() {
        if state.connector(c).version > state.spent.auth_changes {
            return Some(format!("{c}'s version outgrew the auth changes"));
        }
    }
    for (s, c, link) in links(model, state) {
        let server = state.connector(c).version;
        if link.entry.is_some_and(|e| e.version > server) {
            return Some(format!("{s} holds a {c} list newer than the server's"));
        }
        let packed = link.fetches.iter().skip_while(|f| f.is_some()).all(|f| f.is_none());
        if !packed {
            return Some(format!("{s}'s requests for {c} are not packed oldest first"));
        }
        if link.notifications > NOTIFICATIONS_PENDING_MAX {
            return Some(format!("{s} holds too many notifications from {c}"));
        }
        for fetch in link.fetches.iter().flatten() {
            if let Reply::Listed { version, .. } = fetch.reply
                && version > server
            {
                return Some(format!("a reply to {s} carries a {c} version the server never had"));
            }
        }
    }
    // Unused slots never change.
    let unused_connector =
        (usize::from(b.connectors)..CONNECTORS_MAX).any(|c| state.connectors[c] != Connector::default());
    let unused_link = (0..SESSIONS_MAX).any(|s| {
        (0..CONNECTORS_MAX).any(|c| {
            (s >= usize::from(b.sessions) || c >= usize::from(b.connectors)) && state.links[s][c] != Link::default()
        })
    });
    if unused_connector || unused_link {
        return Some("an unused slot changed".to_owned());
    }
    for s in b.session_ids() {
        if let Some(turn) = state.session(s).turn
            && turn.connector.0 >= b.connectors
        {
            return Some(format!("{s}'s turn names a connector out of range"));
        }
    }
    None
}
