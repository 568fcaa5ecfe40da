//! The invariants of SPEC.md §6, with their permanent IDs, and the premises that show none of
//! them holds vacuously.
//!
//! An invariant is data, not code: a [`Scope`] (where it is judged), a condition `when` and a
//! requirement `require`, each an [`Expr`] over named [`Atom`]s. The checker evaluates exactly
//! that; SPEC.md §6 states exactly that, because its text is rendered from the same data
//! ([`Invariant::statement`]) and a test compares the two. Each invariant's premise (`REACH-n`) is
//! an expression too, and is implied by any violation: [`Invariant::premise_gap`] proves it over
//! every assignment of the atoms the invariant mentions, given the model facts in
//! [`CONSTRAINTS`], and the checker confirms those facts in every state it visits.
//!
//! Every invariant is a safety property: a predicate on one state, which sees the step that led to
//! it through [`State::event`]. Liveness (INV-6, INV-7, INV-11) is stated in a bounded form that is
//! a state predicate too; see SPEC.md §6 for why that form is sound and `eventually` is not used.

use crate::state::*;
use crate::system::{CoherenceModel, Fault};
use stateright::Property;

/// Where an invariant is judged: the things it quantifies over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every answer (the user-visible moment), about the turn's connector.
    Answer,
    /// Every answer, for every connector of the session that answered.
    AnswerLinks,
    /// Every call of a stub: the answer it got, or a refresh in its place.
    StubCall,
    /// Every `tools/list` reply a host applies to its catalogue.
    Applied,
    /// Every state, for every session and connector (every link).
    Link,
    /// Every state, for every session with a turn in progress.
    Turn,
}

impl Scope {
    /// Judged at a step, through the event the step left ([`State::event`]): an answer, a stub
    /// call, an applied reply. The other scopes are judged in every state, and never read it.
    pub fn of_a_step(self) -> bool {
        matches!(self, Scope::Answer | Scope::AnswerLinks | Scope::StubCall | Scope::Applied)
    }

    /// How SPEC.md opens a statement judged here.
    pub fn words(self) -> &'static str {
        match self {
            Scope::Answer => "At every answer",
            Scope::AnswerLinks => "At every answer, for every connector of the session that answered",
            Scope::StubCall => "At every call of a stub",
            Scope::Applied => "At every `tools/list` reply a host applies to its catalogue",
            Scope::Link => "In every state, for every session and connector",
            Scope::Turn => "In every state, for every session with a turn in progress",
        }
    }
}

/// A fact about one thing in scope (its **focus**: an answer, a link, a reply, a turn).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Atom {
    /// The connector listed the tool the user needs from the question to the answer.
    AvailableWholeTurn,
    /// The connector did not list the tool the user needs at any point from the question to the
    /// answer.
    AbsentWholeTurn,
    /// The connector changed during the turn, and every change was signalled to the session
    /// before the answer.
    ChangedSignalled,
    /// The connector changed during the turn and the session was not told.
    ChangedUnsignalled,
    /// The connector lists the tool the user needs at the answer.
    ListedAtAnswer,
    /// The link was due before the agent's last step.
    Due,
    /// The agent used the connector's action tools.
    UsedTool,
    /// The host offered the connector's action tools at the answer.
    OfferedActions,
    /// A notice was shown for the connector at the answer.
    NoticeShown,
    /// That notice said the connector needs authentication.
    NoticeNeedsAuthentication,
    /// The answer itself named a recovery step.
    AnswerNamesRecovery,
    /// The host answered "no such tool".
    AnsweredNoSuchTool,
    /// The call ran another connector's tool.
    Misrouted,
    /// The agent's last step called a tool the catalogue does not list.
    CalledUnlisted,
    /// The stub's reply named a recovery step.
    StubGuided,
    /// The host re-listed instead of replying to the stub.
    StubRefreshed,
    /// The session shows a notice for the connector.
    LinkNotice,
    /// The host has unanswered evidence of trouble on the link.
    Evidence,
    /// What the catalogue offers differs from what the server lists.
    Gap,
    /// The link's notice says the connector needs authentication, and it is not authenticated.
    NeedsAuthenticationTruly,
    /// The user performed the recovery step the link's notice named, and nothing has changed or
    /// failed on the link since.
    Following,
    /// The session has had a reason to refresh the connector since its list last changed.
    Triggered,
    /// The link is settled.
    Settled,
    /// The turn is held.
    Held,
    /// Something the session waits for will arrive.
    CanProgress,
    /// A request of the session hangs.
    RequestHangs,
    /// The session waits for nothing.
    NothingOutstanding,
    /// The reply changed what the catalogue offers.
    ReplyChanged,
    /// The reply is older than one the link had already received.
    ReplyOutdated,
    /// The reply lists differently from the newest one the link had received.
    ReplyContradictsNewest,
    /// The host aborted the turn with an error naming a connector.
    TurnAborted,
    /// The link's entry was served from a reply to another session.
    SharedEntry,
    /// The link's entry came from a `private` result listed under another authorization context.
    ForeignEntry,
    /// The connector the abort names has a failed `tools/list` that no successful one has
    /// answered since.
    AbortNamesFailure,
}

impl Atom {
    /// The atom in SPEC.md's words, as it holds and as it fails.
    pub fn words(self) -> (&'static str, &'static str) {
        use Atom::*;
        match self {
            AvailableWholeTurn => (
                "the connector listed the tool the user needs for the whole turn",
                "the connector did not list the tool the user needs for the whole turn",
            ),
            AbsentWholeTurn => (
                "the connector did not list the tool the user needs at any point of the turn",
                "the connector listed the tool the user needs at some point of the turn",
            ),
            ChangedSignalled => (
                "the connector changed during the turn and the session was told of every change before the answer",
                "the connector did not change during the turn, or a change was never signalled to the session",
            ),
            ChangedUnsignalled => (
                "the connector changed during the turn without the session being told",
                "every change of the connector during the turn, if any, was signalled to the session",
            ),
            ListedAtAnswer => (
                "the connector lists the tool the user needs at the answer",
                "the connector does not list the tool the user needs at the answer",
            ),
            Due => (
                "before the agent's last step the link was due (a reason to refresh the session could act on, since the connector's list last changed, and no fault on the link since)",
                "the link was not due",
            ),
            UsedTool => ("the agent used its action tools", "the agent did not use its action tools"),
            OfferedActions => ("the host offered its action tools", "the host did not offer its action tools"),
            NoticeShown => ("a notice was shown for it", "no notice was shown for it"),
            NoticeNeedsAuthentication => {
                ("a notice said it needs authentication", "no notice said it needs authentication")
            }
            AnswerNamesRecovery => ("the answer named a recovery step", "the answer named no recovery step"),
            AnsweredNoSuchTool => ("the host answered \"no such tool\"", "the host did not answer \"no such tool\""),
            Misrouted => ("the call ran another connector's tool", "the call ran no other connector's tool"),
            CalledUnlisted => (
                "the agent called a tool the catalogue does not list",
                "the agent called no tool the catalogue does not list",
            ),
            StubGuided => ("the stub's reply named a recovery step", "the stub's reply named no recovery step"),
            StubRefreshed => ("the host re-listed instead of replying", "the host replied instead of re-listing"),
            LinkNotice => ("the session shows a notice for it", "the session shows no notice for it"),
            Evidence => (
                "the host has evidence of trouble on the link that nothing has answered since (a failure, a list_changed, an account read showing a difference)",
                "the host has no unanswered evidence of trouble on the link",
            ),
            Gap => (
                "the catalogue holds a list for it that differs from the server's listing",
                "the catalogue holds no list for it (it lists at the next offer) or matches the server's listing",
            ),
            NeedsAuthenticationTruly => (
                "the notice says the connector needs authentication and it is not authenticated",
                "the notice does not truly say the connector needs authentication",
            ),
            Following => (
                "the user performed the recovery step the link's notice named and nothing changed or failed on the link since",
                "the user is not following a notice's recovery step",
            ),
            Triggered => (
                "the session has had a reason to refresh the connector since its list last changed",
                "the session has had no reason to refresh the connector since its list last changed",
            ),
            Settled => ("the link is settled", "the link is not settled"),
            Held => ("the turn is held", "the turn is not held"),
            CanProgress => (
                "something the session waits for will arrive (an account read, a reply that is not hung, or a hung request the host's timeout will end)",
                "nothing the session waits for will ever arrive",
            ),
            RequestHangs => ("a request of the session hangs", "no request of the session hangs"),
            NothingOutstanding => ("the session waits for nothing", "the session waits for something"),
            ReplyChanged => ("it changes what the catalogue offers", "it does not change what the catalogue offers"),
            ReplyOutdated => (
                "it is older than a reply the link had already received",
                "it is not older than any reply the link had already received",
            ),
            ReplyContradictsNewest => (
                "it lists differently from the newest reply the link had received",
                "it lists as the newest reply the link had received did",
            ),
            TurnAborted => {
                ("the host aborted the turn with an error naming a connector", "the host did not abort the turn")
            }
            SharedEntry => (
                "the catalogue's entry for the connector was served from a reply to another session",
                "the catalogue's entry for the connector was not served from a reply to another session",
            ),
            ForeignEntry => (
                "the catalogue's entry for the connector is a private result listed under another authorization context",
                "the catalogue's entry for the connector is no private result of another authorization context",
            ),
            AbortNamesFailure => (
                "the connector the error names has a failed tools/list that no successful one has answered since",
                "the connector the error names has no unanswered failed tools/list",
            ),
        }
    }

    fn eval(self, f: &Focus) -> bool {
        use Atom::*;
        let m = f.moment;
        let link = || f.state.link(f.session, f.connector);
        match self {
            AvailableWholeTurn => f.availability == Some(Availability::Available),
            AbsentWholeTurn => f.availability == Some(Availability::Absent),
            ChangedSignalled => m.is_some_and(|m| m.availability == Availability::Changed && m.signalled),
            ChangedUnsignalled => m.is_some_and(|m| m.availability == Availability::Changed && !m.signalled),
            ListedAtAnswer => m.is_some_and(|m| m.listed),
            Due => m.is_some_and(|m| m.due),
            UsedTool => m.is_some_and(|m| m.answer == Answer::UsedTool),
            OfferedActions => m.is_some_and(|m| m.offered == Some(Listing::Actions)),
            NoticeShown => m.is_some_and(|m| m.notice.is_some()),
            NoticeNeedsAuthentication => {
                m.is_some_and(|m| m.notice.is_some_and(|n| n.reason == NoticeReason::NeedsAuthentication))
            }
            AnswerNamesRecovery => m.is_some_and(|m| m.answer.recovery().is_some()),
            AnsweredNoSuchTool => m.is_some_and(|m| m.answer == Answer::NoSuchTool),
            Misrouted => m.is_some_and(|m| m.answer == Answer::Misrouted),
            CalledUnlisted => m.is_some_and(|m| m.call == Call::Unlisted),
            StubGuided => m.is_some_and(|m| matches!(m.answer, Answer::StubReplied(StubReply::Guidance(_)))),
            StubRefreshed => f.refreshed,
            LinkNotice => link().notice.is_some(),
            Evidence => link().evidence || link().failed,
            Gap => !link().lazy && link().offered() != Some(f.state.listing(f.session, f.connector)),
            NeedsAuthenticationTruly => {
                link().notice.is_some_and(|n| n.reason == NoticeReason::NeedsAuthentication)
                    && f.state.auth(f.session, f.connector) != Auth::Authenticated
            }
            Following => link().following,
            Triggered => link().triggered,
            Settled => link().settled(),
            Held => f.state.session(f.session).turn.is_some_and(|t| t.held),
            CanProgress => f.model.can_progress(f.state, f.session),
            RequestHangs => f.model.bounds.connector_ids().any(|c| f.state.link(f.session, c).hung()),
            NothingOutstanding => !f.model.waiting(f.state, f.session),
            ReplyChanged => f.applied.is_some_and(|a| a.changed()),
            ReplyOutdated => f.applied.is_some_and(|a| a.outdated()),
            ReplyContradictsNewest => f.applied.is_some_and(|a| a.contradicts_newest()),
            TurnAborted => m.is_some_and(|m| matches!(m.answer, Answer::Aborted(_))),
            SharedEntry => link().shared,
            ForeignEntry => link().foreign,
            AbortNamesFailure => m.is_some_and(|m| match m.answer {
                Answer::Aborted(named) => f.state.link(f.session, named).failed,
                _ => false,
            }),
        }
    }
}

/// A condition over atoms.
#[derive(Clone, Copy, Debug)]
pub enum Expr {
    /// Always.
    True,
    /// An atom holds.
    Is(Atom),
    /// An atom fails.
    Not(Atom),
    /// Every part holds.
    All(&'static [Expr]),
    /// Some part holds.
    Any(&'static [Expr]),
    /// If the first holds, so does the second.
    Implies(&'static Expr, &'static Expr),
}

impl Expr {
    fn eval_with(&self, atom: &mut impl FnMut(Atom) -> bool) -> bool {
        match self {
            Expr::True => true,
            Expr::Is(a) => atom(*a),
            Expr::Not(a) => !atom(*a),
            Expr::All(parts) => parts.iter().all(|e| e.eval_with(atom)),
            Expr::Any(parts) => parts.iter().any(|e| e.eval_with(atom)),
            Expr::Implies(a, b) => !a.eval_with(atom) || b.eval_with(atom),
        }
    }

    fn eval(&self, focus: &Focus) -> bool {
        self.eval_with(&mut |a| a.eval(focus))
    }

    fn atoms(&self, out: &mut Vec<Atom>) {
        match self {
            Expr::True => {}
            Expr::Is(a) | Expr::Not(a) => {
                if !out.contains(a) {
                    out.push(*a);
                }
            }
            Expr::All(parts) | Expr::Any(parts) => parts.iter().for_each(|e| e.atoms(out)),
            Expr::Implies(a, b) => {
                a.atoms(out);
                b.atoms(out);
            }
        }
    }

    /// The condition in SPEC.md's words.
    pub fn words(&self) -> String {
        self.words_nested(false)
    }

    fn words_nested(&self, nested: bool) -> String {
        let wrap = |s: String| if nested { format!("({s})") } else { s };
        match self {
            Expr::True => "always".to_owned(),
            Expr::Is(a) => a.words().0.to_owned(),
            Expr::Not(a) => a.words().1.to_owned(),
            Expr::All(parts) => wrap(parts.iter().map(|e| e.words_nested(true)).collect::<Vec<_>>().join(" and ")),
            Expr::Any(parts) => wrap(parts.iter().map(|e| e.words_nested(true)).collect::<Vec<_>>().join(", or ")),
            Expr::Implies(a, b) => wrap(format!("if {}, then {}", a.words_nested(true), b.words_nested(true))),
        }
    }
}

/// Facts about the model that relate atoms: they hold in every reachable state of every policy
/// (the checker confirms them in every state it visits, and the conformance runner in every state
/// it builds), and the proof that violations imply premises may use them.
pub const CONSTRAINTS: &[(&str, &[Scope], Expr)] = &[
    (
        "a notice that says the connector needs authentication is a notice",
        ANSWER_AND_TURN,
        Expr::Implies(&Expr::Is(Atom::NoticeNeedsAuthentication), &Expr::Is(Atom::NoticeShown)),
    ),
    (
        "\"no such tool\" answers a call of a tool the catalogue does not list",
        ANSWER_AND_TURN,
        Expr::Implies(&Expr::Is(Atom::AnsweredNoSuchTool), &Expr::Is(Atom::CalledUnlisted)),
    ),
    (
        "a misrouted call is a call of a tool the catalogue does not list",
        ANSWER_AND_TURN,
        Expr::Implies(&Expr::Is(Atom::Misrouted), &Expr::Is(Atom::CalledUnlisted)),
    ),
    (
        "a session that can make no progress has a hung request or waits for nothing",
        ANSWER_AND_TURN,
        Expr::Any(&[Expr::Is(Atom::CanProgress), Expr::Is(Atom::RequestHangs), Expr::Is(Atom::NothingOutstanding)]),
    ),
    (
        "an entry of another authorization context was served by a shared cache",
        &[Scope::Link],
        Expr::Implies(&Expr::Is(Atom::ForeignEntry), &Expr::Is(Atom::SharedEntry)),
    ),
];

/// Where the facts about answers and turns are confirmed.
const ANSWER_AND_TURN: &[Scope] = &[Scope::Answer, Scope::Turn];

/// What a broken invariant costs the user, most harmful first: the order in which a conformance
/// report ranks the invariants a fixture breaks (SPEC.md §11.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Harm {
    /// Another user's private tool list is offered: a breach of authorization, whatever it holds.
    Leaked,
    /// A capability the user has is silently missing, or a tool that fails is offered unflagged.
    MissingOrPhantom,
    /// The user or the agent is told something false or misled ("unavailable", another
    /// connector's tool, a made-up failure).
    Misled,
    /// The host could have made the capability usable, or guided the agent, and did not.
    NotDone,
    /// A notice that is not true, which teaches the user to ignore notices.
    FalseNotice,
    /// The user's turn is held for ever.
    Stuck,
    /// What the host holds does not converge, or regresses; harmful at the next answer.
    Stale,
}

impl Harm {
    /// In SPEC.md's words.
    pub fn words(self) -> &'static str {
        match self {
            Harm::Leaked => "another user's private tool list offered",
            Harm::MissingOrPhantom => "a tool silently missing or a phantom tool",
            Harm::Misled => "the user or the agent misled",
            Harm::NotDone => "a refresh or guidance the host owed",
            Harm::FalseNotice => "a false notice",
            Harm::Stuck => "a turn held for ever",
            Harm::Stale => "a catalogue that does not converge or regresses",
        }
    }
}

/// One invariant.
#[derive(Clone, Copy, Debug)]
pub struct Invariant {
    /// The permanent ID, `INV-n`.
    pub id: &'static str,
    /// A short name.
    pub name: &'static str,
    /// The property name the checker reports: ID and name.
    pub property: &'static str,
    /// Where it is judged.
    pub scope: Scope,
    /// When it applies.
    pub when: Expr,
    /// What a host must then satisfy.
    pub require: Expr,
    /// The name of the reachability property for this invariant's premise.
    pub reach_property: &'static str,
    /// The situation the invariant judges; implied by any violation.
    pub premise: Expr,
    /// Why, in one sentence (SPEC.md §6 gives the whole rationale).
    pub rationale: &'static str,
    /// What breaking it costs the user.
    pub harm: Harm,
}

/// IDs that were defined once and are retired: never checked, never reused (SPEC.md §6).
pub const RETIRED: &[(&str, &str)] = &[(
    "INV-4",
    "no stale overwrite: compared server versions, which a user cannot see; replaced by INV-12, which judges a regression of what is offered the same way in the checker and in conformance",
)];

/// Every invariant, by ID.
pub const INVARIANTS: &[Invariant] = &[
    Invariant {
        id: "INV-1",
        name: "never silently missing tools",
        property: "INV-1 never silently missing tools",
        scope: Scope::Answer,
        when: Expr::Is(Atom::AvailableWholeTurn),
        require: Expr::Any(&[
            Expr::Is(Atom::UsedTool),
            Expr::Is(Atom::NoticeShown),
            Expr::Is(Atom::AnswerNamesRecovery),
            Expr::Is(Atom::TurnAborted),
        ]),
        reach_property: "REACH-1 an answer while the tool is listed, without using it",
        premise: Expr::All(&[Expr::Is(Atom::AvailableWholeTurn), Expr::Not(Atom::UsedTool)]),
        rationale: "the headline guarantee: the motivating report's failure",
        harm: Harm::MissingOrPhantom,
    },
    Invariant {
        id: "INV-2",
        name: "no phantom tools",
        property: "INV-2 no phantom tools",
        scope: Scope::Answer,
        when: Expr::Is(Atom::AbsentWholeTurn),
        require: Expr::Any(&[
            Expr::Not(Atom::OfferedActions),
            Expr::Is(Atom::NoticeShown),
            Expr::Is(Atom::AnswerNamesRecovery),
        ]),
        reach_property: "REACH-2 an answer while offered but not listed",
        premise: Expr::All(&[Expr::Is(Atom::AbsentWholeTurn), Expr::Is(Atom::OfferedActions)]),
        rationale: "RevokedNotSurfaced and TokenExpiryMidSession: the agent calls tools that fail, and nobody says why",
        harm: Harm::MissingOrPhantom,
    },
    Invariant {
        id: "INV-3",
        name: "honest unavailability",
        property: "INV-3 honest unavailability",
        scope: Scope::Answer,
        when: Expr::Is(Atom::AvailableWholeTurn),
        require: Expr::All(&[Expr::Not(Atom::NoticeNeedsAuthentication), Expr::Not(Atom::AnsweredNoSuchTool)]),
        reach_property: "REACH-3 an answer while the tool is listed, with a notice or after an unlisted call",
        premise: Expr::All(&[
            Expr::Is(Atom::AvailableWholeTurn),
            Expr::Any(&[Expr::Is(Atom::NoticeShown), Expr::Is(Atom::CalledUnlisted)]),
        ]),
        rationale: "FalseNeedsAuth and UnknownToolMisrouted: a stale reminder or a bare protocol error makes the agent say \"unavailable\"",
        harm: Harm::Misled,
    },
    Invariant {
        id: "INV-5",
        name: "stub guidance",
        property: "INV-5 stub guidance",
        scope: Scope::StubCall,
        when: Expr::Is(Atom::AvailableWholeTurn),
        require: Expr::Any(&[Expr::Is(Atom::StubRefreshed), Expr::Is(Atom::StubGuided)]),
        reach_property: "REACH-5 a stub is called while the tool is listed",
        premise: Expr::Is(Atom::AvailableWholeTurn),
        rationale: "StubNoGuidance, and the report's third fix",
        harm: Harm::NotDone,
    },
    Invariant {
        id: "INV-6",
        name: "actionable recovery",
        property: "INV-6 actionable recovery",
        scope: Scope::Link,
        when: Expr::All(&[Expr::Is(Atom::Following), Expr::Is(Atom::Settled)]),
        require: Expr::Not(Atom::Gap),
        reach_property: "REACH-6 a followed recovery settles",
        premise: Expr::All(&[Expr::Is(Atom::Following), Expr::Is(Atom::Settled)]),
        rationale: "a notice that names a step that does not work is silence with extra steps",
        harm: Harm::Stale,
    },
    Invariant {
        id: "INV-7",
        name: "bounded convergence",
        property: "INV-7 bounded convergence",
        scope: Scope::Link,
        when: Expr::All(&[Expr::Is(Atom::Triggered), Expr::Is(Atom::Settled)]),
        require: Expr::Any(&[Expr::Not(Atom::Gap), Expr::Is(Atom::LinkNotice)]),
        reach_property: "REACH-7 a gap remains after a trigger settles",
        premise: Expr::All(&[Expr::Is(Atom::Triggered), Expr::Is(Atom::Settled), Expr::Is(Atom::Gap)]),
        rationale: "ListChangedIgnored, UnadvertisedListChanged, ListsFailedSilently, SessionExpired404",
        harm: Harm::Stale,
    },
    Invariant {
        id: "INV-8",
        name: "no misrouting",
        property: "INV-8 no misrouting",
        scope: Scope::Answer,
        when: Expr::True,
        require: Expr::Not(Atom::Misrouted),
        reach_property: "REACH-8 an unlisted tool is called",
        premise: Expr::Is(Atom::CalledUnlisted),
        rationale: "UnknownToolMisrouted",
        harm: Harm::Misled,
    },
    Invariant {
        id: "INV-9",
        name: "truthful notices",
        property: "INV-9 truthful notices",
        scope: Scope::AnswerLinks,
        when: Expr::Is(Atom::LinkNotice),
        require: Expr::Any(&[Expr::Is(Atom::Evidence), Expr::Is(Atom::Gap), Expr::Is(Atom::NeedsAuthenticationTruly)]),
        reach_property: "REACH-9 an answer while a notice is shown",
        premise: Expr::Is(Atom::LinkNotice),
        rationale: "a notice that cries wolf teaches the user and the agent to ignore notices, and satisfies every \"or a notice\" for free",
        harm: Harm::FalseNotice,
    },
    Invariant {
        id: "INV-10",
        name: "refresh when you can",
        property: "INV-10 refresh when you can",
        scope: Scope::Answer,
        when: Expr::All(&[Expr::Is(Atom::ListedAtAnswer), Expr::Is(Atom::Due), Expr::Not(Atom::ChangedUnsignalled)]),
        require: Expr::Is(Atom::OfferedActions),
        reach_property: "REACH-10 an answer about a listed tool the session was due to refresh",
        premise: Expr::All(&[Expr::Is(Atom::ListedAtAnswer), Expr::Is(Atom::Due), Expr::Not(Atom::ChangedUnsignalled)]),
        rationale: "telling is not enough when the host could have acted: a notice must not replace a refresh the host had every reason and means to do",
        harm: Harm::NotDone,
    },
    Invariant {
        id: "INV-11",
        name: "bounded holds",
        property: "INV-11 bounded holds",
        scope: Scope::Turn,
        when: Expr::Is(Atom::Held),
        require: Expr::Is(Atom::CanProgress),
        reach_property: "REACH-11 a turn is held while a request hangs",
        premise: Expr::All(&[
            Expr::Is(Atom::Held),
            Expr::Any(&[Expr::Is(Atom::RequestHangs), Expr::Is(Atom::NothingOutstanding)]),
        ]),
        rationale: "a host that waits for a request that never returns holds the user for ever",
        harm: Harm::Stuck,
    },
    Invariant {
        id: "INV-12",
        name: "no stale regression",
        property: "INV-12 no stale regression",
        scope: Scope::Applied,
        when: Expr::Is(Atom::ReplyChanged),
        require: Expr::Any(&[Expr::Not(Atom::ReplyOutdated), Expr::Not(Atom::ReplyContradictsNewest)]),
        reach_property: "REACH-12 an outdated reply changes the catalogue",
        premise: Expr::All(&[Expr::Is(Atom::ReplyChanged), Expr::Is(Atom::ReplyOutdated)]),
        rationale: "InFlightRace: a reply to an earlier tools/list arrives after a later one and overwrites what the user sees",
        harm: Harm::Stale,
    },
    Invariant {
        id: "INV-13",
        name: "changes told during a turn",
        property: "INV-13 changes told during a turn",
        scope: Scope::Answer,
        when: Expr::Is(Atom::ChangedSignalled),
        require: Expr::All(&[
            Expr::Implies(
                &Expr::Is(Atom::ListedAtAnswer),
                &Expr::Any(&[
                    Expr::Is(Atom::UsedTool),
                    Expr::Is(Atom::NoticeShown),
                    Expr::Is(Atom::AnswerNamesRecovery),
                    Expr::Is(Atom::TurnAborted),
                ]),
            ),
            Expr::Implies(
                &Expr::Not(Atom::ListedAtAnswer),
                &Expr::Any(&[
                    Expr::Not(Atom::OfferedActions),
                    Expr::Is(Atom::NoticeShown),
                    Expr::Is(Atom::AnswerNamesRecovery),
                ]),
            ),
        ]),
        reach_property: "REACH-13 an answer after a signalled change, without the tools or with phantom ones",
        premise: Expr::All(&[
            Expr::Is(Atom::ChangedSignalled),
            Expr::Any(&[
                Expr::All(&[Expr::Is(Atom::ListedAtAnswer), Expr::Not(Atom::UsedTool)]),
                Expr::All(&[Expr::Not(Atom::ListedAtAnswer), Expr::Is(Atom::OfferedActions)]),
            ]),
        ]),
        rationale: "a change the host was told of before the answer is the host's to act on: TokenExpiryMidSession, a list_changed during a turn",
        harm: Harm::MissingOrPhantom,
    },
    Invariant {
        id: "INV-14",
        name: "truthful aborts",
        property: "INV-14 truthful aborts",
        scope: Scope::Answer,
        when: Expr::Is(Atom::TurnAborted),
        require: Expr::Is(Atom::AbortNamesFailure),
        reach_property: "REACH-14 a turn is aborted",
        premise: Expr::Is(Atom::TurnAborted),
        rationale: "an aborted turn is loud, not silent (INV-1), so it must be earned: a host may not abort turns to escape judging",
        harm: Harm::Misled,
    },
    Invariant {
        id: "INV-15",
        name: "authorization contexts isolated",
        property: "INV-15 authorization contexts isolated",
        scope: Scope::Link,
        when: Expr::True,
        require: Expr::Not(Atom::ForeignEntry),
        reach_property: "REACH-15 a catalogue entry served from another session's reply",
        premise: Expr::Is(Atom::SharedEntry),
        rationale: "a private tool list is its authorization context's alone (cacheScope, MCP 2026-07-28): served to \
                    another user it shows tools they cannot use or hides tools they have",
        harm: Harm::Leaked,
    },
];

/// Looks an invariant up by its ID.
pub fn invariant(id: &str) -> Option<&'static Invariant> {
    INVARIANTS.iter().find(|i| i.id == id)
}

/// One thing in an invariant's scope.
#[derive(Clone, Copy, Debug)]
pub struct Focus<'a> {
    /// The model.
    pub model: &'a CoherenceModel,
    /// The state.
    pub state: &'a State,
    /// The session.
    pub session: SessionId,
    /// The connector.
    pub connector: ConnectorId,
    /// The answer, in the answer scopes.
    pub moment: Option<&'a Moment>,
    /// The connector over the turn, in the answer and stub-call scopes.
    pub availability: Option<Availability>,
    /// The host re-listed instead of replying to a stub.
    pub refreshed: bool,
    /// The reply applied, in the reply scope.
    pub applied: Option<&'a Applied>,
}

impl<'a> Focus<'a> {
    fn new(model: &'a CoherenceModel, state: &'a State, session: SessionId, connector: ConnectorId) -> Self {
        Focus { model, state, session, connector, moment: None, availability: None, refreshed: false, applied: None }
    }
}

/// Calls `visit` on every focus of `scope` in `state`, until it returns `true`; returns whether
/// it did.
fn find_focus<'a>(
    scope: Scope,
    model: &'a CoherenceModel,
    state: &'a State,
    mut visit: impl FnMut(&Focus<'a>) -> bool,
) -> bool {
    let moment = match &state.event {
        Some(Event::Answered(m)) => Some(m),
        _ => None,
    };
    match scope {
        Scope::Answer => moment.is_some_and(|m| {
            visit(&Focus {
                moment: Some(m),
                availability: Some(m.availability),
                ..Focus::new(model, state, m.session, m.connector)
            })
        }),
        Scope::AnswerLinks => moment.is_some_and(|m| {
            model.bounds.connector_ids().any(|c| {
                visit(&Focus {
                    moment: Some(m),
                    availability: Some(m.availability),
                    ..Focus::new(model, state, m.session, c)
                })
            })
        }),
        Scope::StubCall => match &state.event {
            Some(Event::Answered(m)) if m.call == Call::Stub => visit(&Focus {
                moment: Some(m),
                availability: Some(m.availability),
                ..Focus::new(model, state, m.session, m.connector)
            }),
            Some(Event::StubRefreshed { session, connector, availability }) => visit(&Focus {
                availability: Some(*availability),
                refreshed: true,
                ..Focus::new(model, state, *session, *connector)
            }),
            _ => false,
        },
        Scope::Applied => match &state.event {
            Some(Event::Applied(a)) => {
                visit(&Focus { applied: Some(a), ..Focus::new(model, state, a.session, a.connector) })
            }
            _ => false,
        },
        Scope::Link => model
            .bounds
            .session_ids()
            .any(|s| model.bounds.connector_ids().any(|c| visit(&Focus::new(model, state, s, c)))),
        Scope::Turn => model
            .bounds
            .session_ids()
            .any(|s| state.session(s).turn.is_some_and(|t| visit(&Focus::new(model, state, s, t.connector)))),
    }
}

impl Invariant {
    /// The order a report lists broken invariants in: by harm, then by ID.
    pub fn rank(&self) -> (Harm, u32) {
        (self.harm, self.id.trim_start_matches("INV-").parse().expect("IDs are INV-n"))
    }

    /// Holds in `state`: every focus in scope that satisfies `when` satisfies `require`.
    pub fn holds(&self, model: &CoherenceModel, state: &State) -> bool {
        self.violation(model, state).is_none()
    }

    /// The first focus in scope that breaks the invariant, if any.
    pub fn violation<'a>(&self, model: &'a CoherenceModel, state: &'a State) -> Option<Focus<'a>> {
        let mut found = None;
        find_focus(self.scope, model, state, |f| {
            let broken = self.when.eval(f) && !self.require.eval(f);
            if broken {
                found = Some(*f);
            }
            broken
        });
        found
    }

    /// The premise is reached in `state`: some focus in scope satisfies it.
    pub fn premise_holds(&self, model: &CoherenceModel, state: &State) -> bool {
        find_focus(self.scope, model, state, |f| self.premise.eval(f))
    }

    /// Whether the premise holds at `focus`.
    pub fn premise_at(&self, focus: &Focus) -> bool {
        self.premise.eval(focus)
    }

    /// The normative statement of SPEC.md §6, rendered from the predicate the checker evaluates.
    pub fn statement(&self) -> String {
        let when = match self.when {
            Expr::True => String::new(),
            when => format!("if {}, then ", when.words()),
        };
        format!("{}: {when}{}.", self.scope.words(), self.require.words())
    }

    /// The premise in words.
    pub fn premise_words(&self) -> String {
        format!("{}: {}.", self.scope.words(), self.premise.words())
    }

    /// A proof over the atoms the invariant mentions: every assignment that satisfies the model's
    /// [`CONSTRAINTS`] and breaks the invariant satisfies its premise, and the premise implies
    /// `when` (a premise is a situation the invariant judges). Returns an assignment that shows
    /// otherwise, if any.
    pub fn premise_gap(&self) -> Option<Vec<(Atom, bool)>> {
        let mut atoms = Vec::new();
        self.when.atoms(&mut atoms);
        self.require.atoms(&mut atoms);
        self.premise.atoms(&mut atoms);
        for (_, _, c) in CONSTRAINTS {
            let mut mentioned = Vec::new();
            c.atoms(&mut mentioned);
            if mentioned.iter().any(|a| atoms.contains(a)) {
                for a in mentioned {
                    if !atoms.contains(&a) {
                        atoms.push(a);
                    }
                }
            }
        }
        assert!(atoms.len() < 20, "too many atoms for a truth table");
        for bits in 0u32..(1 << atoms.len()) {
            let mut value = |a: Atom| bits & (1 << atoms.iter().position(|x| *x == a).expect("collected")) != 0;
            let consistent = CONSTRAINTS.iter().all(|(_, _, c)| {
                let mut mentioned = Vec::new();
                c.atoms(&mut mentioned);
                !mentioned.iter().all(|a| atoms.contains(a)) || c.eval_with(&mut value)
            });
            if !consistent {
                continue;
            }
            let violated = self.when.eval_with(&mut value) && !self.require.eval_with(&mut value);
            let premise = self.premise.eval_with(&mut value);
            let judged = self.when.eval_with(&mut value);
            if (violated && !premise) || (premise && !judged) {
                return Some(atoms.iter().map(|a| (*a, value(*a))).collect());
            }
        }
        None
    }
}

/// The model facts of [`CONSTRAINTS`] that `state` breaks, by name: none, in every reachable state.
pub fn broken_constraints(model: &CoherenceModel, state: &State) -> Vec<&'static str> {
    let mut broken = Vec::new();
    for scope in [Scope::Answer, Scope::Turn, Scope::Link] {
        find_focus(scope, model, state, |f| {
            for (name, scopes, c) in CONSTRAINTS {
                if scopes.contains(&scope) && !c.eval(f) && !broken.contains(name) {
                    broken.push(*name);
                }
            }
            false
        });
    }
    broken
}

/// The stateright properties: one `always` per invariant, then one `sometimes` per premise.
pub fn properties() -> Vec<Property<CoherenceModel>> {
    macro_rules! props {
        ($($k:literal)*) => {{
            let mut always: Vec<Property<CoherenceModel>> = Vec::new();
            let mut sometimes: Vec<Property<CoherenceModel>> = Vec::new();
            $(
                if let Some(i) = INVARIANTS.get($k) {
                    always.push(Property::always(i.property, |m: &CoherenceModel, s: &State| INVARIANTS[$k].holds(m, s)));
                    sometimes.push(Property::sometimes(i.reach_property, |m: &CoherenceModel, s: &State| {
                        INVARIANTS[$k].premise_holds(m, s)
                    }));
                }
            )*
            always.extend(sometimes);
            always
        }};
    }
    // Stateright's properties are plain function pointers: one closure per index, up to 16.
    props!(0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15)
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
        let k = state.connector(c);
        // Every change of a list is an auth change or a deploy (a fault).
        let deploys = if model.faults.contains(Fault::DeployTools) { state.spent.faults } else { 0 };
        if k.version > state.spent.auth_changes + deploys {
            return Some(format!("{c}'s version outgrew the auth changes and deploys"));
        }
        if k.withdrawn && deploys == 0 {
            return Some(format!("{c} has a tool withdrawn with no deploy"));
        }
        if !matches!(k.other, Auth::Unauthenticated | Auth::Authenticated)
            || (b.contexts == Contexts::One && k.other != Auth::Unauthenticated)
            || (k.scope == CacheScope::Public && (b.contexts == Contexts::One || !k.stateless()))
        {
            return Some(format!("{c}'s second context or cache scope is out of the bounds"));
        }
    }
    if state.shape.contexts != b.contexts {
        return Some("the state's authorization contexts are not the bounds'".into());
    }
    for s in b.session_ids() {
        for c in b.connector_ids() {
            let link = state.link(s, c);
            let server = state.connector(c).version;
            if link.entry.is_some_and(|e| e.version > server) || link.newest.is_some_and(|e| e.version > server) {
                return Some(format!("{s} holds a {c} list newer than the server's"));
            }
            let packed = link.fetches.iter().skip_while(|f| f.is_some()).all(|f| f.is_none());
            if !packed {
                return Some(format!("{s}'s requests for {c} are not packed oldest first"));
            }
            if link.notifications > NOTIFICATIONS_PENDING_MAX {
                return Some(format!("{s} holds too many notifications from {c}"));
            }
            if link.refetch_queued && link.fetch_count() == 0 {
                return Some(format!("{s} queued a refetch of {c} with nothing in flight"));
            }
            let stateless = state.connector(c).stateless();
            if !stateless && (link.listening || link.fresh) {
                return Some(format!("{s} listens to, or holds a TTL of, {c}, a 2025-era server"));
            }
            if stateless && (link.transport_lost || (!link.listening && link.notifications > 0)) {
                return Some(format!("{s} lost a transport session of {c}, or heard it without listening"));
            }
            if (link.foreign && !link.shared) || (link.shared && link.entry.is_none()) {
                return Some(format!("{s}'s {c} entry is foreign without being shared, or shared and absent"));
            }
            if link.foreign
                && (state.shape.contexts == Contexts::One
                    || (stateless && state.connector(c).scope == CacheScope::Public))
            {
                return Some(format!("{s}'s {c} entry is foreign with one context or a public result"));
            }
            for fetch in link.fetches.iter().flatten() {
                if let Reply::Listed { version, .. } = fetch.reply
                    && version > server
                {
                    return Some(format!("a reply to {s} carries a {c} version the server never had"));
                }
            }
        }
        if let Some(turn) = state.session(s).turn {
            if turn.connector.0 >= b.connectors {
                return Some(format!("{s}'s turn names a connector out of range"));
            }
            if turn.held && !model.waiting(state, s) {
                return Some(format!("{s} holds its turn while waiting for nothing"));
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
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Availability, Call, ConnectorId, Listing, Recovery, SessionId, StubReply};
    use crate::{Bounds, RECOMMENDED};

    /// An answer about an authenticated connector the session was due to refresh, with only its
    /// stubs offered and no notice.
    fn answer(availability: Availability, signalled: bool, call: Call, answer: Answer) -> Moment {
        Moment {
            session: SessionId(0),
            connector: ConnectorId(0),
            call,
            availability,
            signalled,
            listed: true,
            due: true,
            offered: Some(Listing::Stubs),
            notice: None,
            answer,
        }
    }

    /// The state that records `moment`.
    fn at(moment: Moment) -> (CoherenceModel, State) {
        let model = CoherenceModel::new(RECOMMENDED, Bounds::DEFAULT);
        let mut state = model.initial_states()[0];
        state.event = Some(Event::Answered(moment));
        (model, state)
    }

    fn holds_at(id: &str, moment: Moment) -> bool {
        let (model, state) = at(moment);
        invariant(id).expect("an ID").holds(&model, &state)
    }

    /// INV-10 excuses the host only for a change during the turn it was never told of; INV-13
    /// judges exactly the changes it was told of. Worked by hand for "not available" with stubs
    /// offered (and, for INV-10, with the action tools offered).
    #[test]
    fn a_change_during_the_turn_is_judged_by_whether_it_was_signalled() {
        use Availability::*;
        // (availability, signalled) → (INV-10 holds, INV-13 holds).
        let table = [(Available, true, false, true), (Changed, false, true, true), (Changed, true, false, false)];
        for (availability, signalled, inv10, inv13) in table {
            let m = answer(availability, signalled, Call::Nothing, Answer::NotAvailable);
            let at = format!("{availability:?}, signalled {signalled}");
            assert_eq!(holds_at("INV-10", m), inv10, "INV-10 at {at}");
            assert_eq!(holds_at("INV-13", m), inv13, "INV-13 at {at}");
            assert!(holds_at("INV-10", Moment { offered: Some(Listing::Actions), ..m }), "INV-10 with actions at {at}");
        }
    }

    /// INV-5 judges the reply to a stub the agent called while the connector was authenticated:
    /// guidance holds it, an opaque failure breaks it, and while unauthenticated it judges nothing.
    #[test]
    fn a_stub_s_reply_is_judged_when_the_connector_was_authenticated() {
        use Availability::*;
        let stub = |availability, reply| answer(availability, true, Call::Stub, Answer::StubReplied(reply));
        assert!(holds_at("INV-5", stub(Available, StubReply::Guidance(Recovery::Restart))));
        assert!(!holds_at("INV-5", stub(Available, StubReply::Opaque)));
        assert!(holds_at("INV-5", stub(Absent, StubReply::AuthPrompt)));
    }

    /// A premise is checked where the invariant breaks: one that does not hold there is found.
    #[test]
    fn a_premise_that_misses_a_violation_is_found_where_it_breaks() {
        let (model, state) = at(answer(Availability::Available, true, Call::Nothing, Answer::NotAvailable));
        let inv1 = invariant("INV-1").unwrap();
        let focus = inv1.violation(&model, &state).expect("silently missing");
        assert!(inv1.premise_at(&focus));
        let unsound = Invariant { premise: Expr::Is(Atom::NoticeShown), ..*inv1 };
        assert!(!unsound.premise_at(&focus));
    }

    /// The model facts the premise proofs rely on can be found broken: an answer of "no such tool"
    /// to no call of an unlisted tool is named.
    #[test]
    fn a_broken_model_fact_is_named() {
        let (model, state) = at(answer(Availability::Available, true, Call::Nothing, Answer::NoSuchTool));
        assert_eq!(broken_constraints(&model, &state), [CONSTRAINTS[1].0]);
        let (model, state) = at(answer(Availability::Available, true, Call::Unlisted, Answer::NoSuchTool));
        assert_eq!(broken_constraints(&model, &state), Vec::<&str>::new());
    }

    /// Each structural fact can be found broken, each part on its own.
    #[test]
    fn each_structural_fact_can_be_found_broken() {
        use crate::state::{Entry, Fetch, NOTIFICATIONS_PENDING_MAX, Reply};
        let model = CoherenceModel::new(RECOMMENDED, Bounds::DEFAULT);
        let ok = model.initial_states()[0];
        assert_eq!(structural_violation(&model, &ok), None);
        let b = model.bounds;
        let broken = |change: &dyn Fn(&mut State)| {
            let mut state = ok;
            change(&mut state);
            structural_violation(&model, &state).unwrap_or_else(|| "nothing".to_owned())
        };
        let newer = Entry { listing: Listing::Actions, version: 1 };
        type Change<'a> = &'a dyn Fn(&mut State);
        let cases: [(Change, &str); 14] = [
            (&|s| s.spent.turns = b.turns + 1, "a budget is overspent"),
            (&|s| s.spent.auth_changes = b.auth_changes + 1, "a budget is overspent"),
            (&|s| s.spent.faults = b.faults + 1, "a budget is overspent"),
            (&|s| s.spent.commands = b.commands + 1, "a budget is overspent"),
            (&|s| s.connectors[0].version = 1, "gmail's version outgrew the auth changes"),
            (&|s| s.links[0][0].entry = Some(newer), "cli holds a gmail list newer than the server's"),
            (&|s| s.links[0][0].newest = Some(newer), "cli holds a gmail list newer than the server's"),
            (
                &|s| s.links[0][0].fetches = [None, Some(Fetch { reply: Reply::Hung, superseded: false })],
                "cli's requests for gmail are not packed oldest first",
            ),
            (
                &|s| s.links[0][0].notifications = NOTIFICATIONS_PENDING_MAX + 1,
                "cli holds too many notifications from gmail",
            ),
            (&|s| s.links[0][0].refetch_queued = true, "cli queued a refetch of gmail with nothing in flight"),
            (
                &|s| {
                    s.links[0][0].fetches[0] = Some(Fetch {
                        reply: Reply::Listed { listing: Listing::Actions, version: 1 },
                        superseded: false,
                    })
                },
                "a reply to cli carries a gmail version the server never had",
            ),
            (&|s| s.links[1][0].notifications = 1, "an unused slot changed"),
            (&|s| s.links[0][2].notifications = 1, "an unused slot changed"),
            (&|s| s.connectors[3].version = 1, "an unused slot changed"),
        ];
        for (change, says) in cases {
            let seen = broken(change);
            assert!(seen.starts_with(says), "{seen} instead of: {says}");
        }
    }

    /// At an answer, INV-9 judges every connector's notice, each focus carrying the answer: a
    /// notice on another connector that nothing justifies breaks it there, and is told so.
    #[test]
    fn an_unjustified_notice_is_judged_at_the_answer_on_its_own_connector() {
        use crate::state::{Entry, Notice, NoticeReason};
        let moment = answer(Availability::Available, true, Call::Nothing, Answer::NotAvailable);
        let (model, mut state) = at(moment);
        let other = ConnectorId(1);
        let link = &mut state.links[0][other.index()];
        link.entry = Some(Entry { listing: state.connectors[other.index()].listing(), version: 0 });
        link.notice = Some(Notice { reason: NoticeReason::ChangedElsewhere, recovery: Recovery::Restart });
        let inv9 = invariant("INV-9").unwrap();
        let focus = inv9.violation(&model, &state).expect("a notice nothing justifies");
        assert_eq!(
            (focus.connector, focus.moment, focus.availability),
            (other, Some(&moment), Some(moment.availability))
        );
        let words = crate::story::violation_words(&model, inv9, &state);
        assert!(words.starts_with("cli shows notice"), "{words}");
    }
}
