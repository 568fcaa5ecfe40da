//! Counterexamples as sequence diagrams, for design reviews: the user, the web surface, each
//! connector's server, each host session and the agent, with a message or a note per step (and one
//! per `tools/list` a host sent in it), and the step that breaks the invariant marked. The same
//! trace as [`crate::story`] tells in words.
//!
//! A [`Diagram`] is built once from a path and rendered two ways: as Mermaid source
//! ([`Diagram::mermaid`], to paste into a design document) and as a self-contained SVG picture
//! ([`Diagram::svg`], for the HTML report and the explorer, which must render with no script and
//! no network).

use crate::explore::Trace;
use crate::invariants::Invariant;
use crate::state::*;
use crate::system::{Action, CoherenceModel};
use std::fmt::Write as _;

fn listing(listing: Option<Listing>) -> &'static str {
    match listing {
        None => "nothing",
        Some(Listing::Stubs) => "auth stubs",
        Some(Listing::Actions) => "action tools",
        Some(Listing::SomeActions) => "a first page",
        Some(Listing::Withdrawn) => "actions, one withdrawn",
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

/// One column of a sequence diagram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Participant {
    /// The name messages use (`gmail`, `cli`, `Model`).
    pub id: String,
    /// What its box says.
    pub label: String,
    /// Drawn as a person (the user) rather than a box.
    pub actor: bool,
}

/// One row of a sequence diagram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    /// An arrow from one participant to another.
    Message {
        /// The sender's id.
        from: String,
        /// The receiver's id.
        to: String,
        /// An answer or a push (dashed), rather than a request.
        reply: bool,
        /// The label.
        text: String,
    },
    /// A note.
    Note {
        /// Over one participant (both the same), or spanning from the first to the second.
        over: (String, String),
        /// The text.
        text: String,
        /// What it is for.
        kind: NoteKind,
    },
}

/// What a note is for, which the SVG picture shows by its colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoteKind {
    /// Something that happened, or a state.
    Plain,
    /// The heading of a step.
    Step,
    /// An invariant broken here.
    Broken,
}

/// A sequence diagram: participants left to right, rows top to bottom.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagram {
    /// The columns.
    pub participants: Vec<Participant>,
    /// The rows.
    pub items: Vec<Item>,
}

impl Diagram {
    fn message(&mut self, from: impl ToString, to: impl ToString, text: impl Into<String>) {
        self.items.push(Item::Message { from: from.to_string(), to: to.to_string(), reply: false, text: text.into() });
    }

    fn reply(&mut self, from: impl ToString, to: impl ToString, text: impl Into<String>) {
        self.items.push(Item::Message { from: from.to_string(), to: to.to_string(), reply: true, text: text.into() });
    }

    fn note(&mut self, from: impl ToString, to: impl ToString, kind: NoteKind, text: impl Into<String>) {
        self.items.push(Item::Note { over: (from.to_string(), to.to_string()), text: text.into(), kind });
    }

    /// Mermaid source (`sequenceDiagram`), one line per participant and row.
    pub fn mermaid(&self) -> String {
        let mut out = String::from("sequenceDiagram\n");
        for p in &self.participants {
            let keyword = if p.actor { "actor" } else { "participant" };
            if p.label == p.id {
                let _ = writeln!(out, "    {keyword} {}", p.id);
            } else {
                let _ = writeln!(out, "    {keyword} {} as {}", p.id, p.label);
            }
        }
        for item in &self.items {
            let _ = match item {
                Item::Message { from, to, reply, text } => {
                    writeln!(out, "    {from}{}{to}: {text}", if *reply { "-->>" } else { "->>" })
                }
                Item::Note { over: (a, b), text, .. } if a == b => writeln!(out, "    Note over {a}: {text}"),
                Item::Note { over: (a, b), text, .. } => writeln!(out, "    Note over {a},{b}: {text}"),
            };
        }
        out
    }

    fn column(&self, id: &str) -> usize {
        self.participants.iter().position(|p| p.id == id).unwrap_or_else(|| panic!("no participant `{id}`"))
    }

    /// A self-contained SVG picture: no script, no external font or style, so that it renders
    /// wherever it is pasted. Text widths are estimated, not measured: columns are spaced so that
    /// the longest label between two lifelines fits at an average character width.
    pub fn svg(&self) -> String {
        const CHAR: f64 = 6.6;
        const PAD: f64 = 16.0;
        const GAP_MIN: f64 = 120.0;
        const HEAD: f64 = 34.0;
        const ROW: f64 = 30.0;
        let width = |text: &str| text.chars().count() as f64 * CHAR + PAD;
        let n = self.participants.len();
        // gaps[i]: the distance between lifelines i and i + 1.
        let mut gaps = vec![GAP_MIN; n.saturating_sub(1)];
        let boxes: Vec<f64> = self.participants.iter().map(|p| width(&p.label).max(80.0)).collect();
        for i in 0..gaps.len() {
            gaps[i] = gaps[i].max((boxes[i] + boxes[i + 1]) / 2.0 + 12.0);
        }
        let mut widen = |a: usize, b: usize, need: f64| {
            let (lo, hi) = (a.min(b), a.max(b));
            let have: f64 = gaps[lo..hi].iter().sum();
            if hi > lo && have < need {
                let more = (need - have) / (hi - lo) as f64;
                gaps[lo..hi].iter_mut().for_each(|g| *g += more);
            }
        };
        for item in &self.items {
            match item {
                Item::Message { from, to, text, .. } => widen(self.column(from), self.column(to), width(text) + 8.0),
                Item::Note { over: (a, b), text, .. } if a != b => {
                    widen(self.column(a), self.column(b), width(text) - 20.0)
                }
                Item::Note { .. } => {}
            }
        }
        let left = boxes.first().map_or(0.0, |b| b / 2.0) + 10.0;
        let mut xs = vec![left];
        for g in &gaps {
            xs.push(xs.last().unwrap() + g);
        }
        // A note over one lifeline may reach past the outer ones: make room.
        let mut lo: f64 = 0.0;
        let mut hi: f64 = xs.last().copied().unwrap_or(0.0) + boxes.last().map_or(0.0, |b| b / 2.0) + 10.0;
        for item in &self.items {
            if let Item::Note { over: (a, b), text, .. } = item {
                let (x0, x1) = (xs[self.column(a)], xs[self.column(b)]);
                let w = width(text).max(x1 - x0 + 20.0);
                let mid = (x0 + x1) / 2.0;
                lo = lo.min(mid - w / 2.0 - 4.0);
                hi = hi.max(mid + w / 2.0 + 4.0);
            }
        }
        let shift = -lo;
        let xs: Vec<f64> = xs.iter().map(|x| x + shift).collect();
        let total_w = hi + shift;
        let total_h = HEAD + 20.0 + ROW * self.items.len() as f64 + 10.0;
        let mut out = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"sequence\" width=\"{total_w:.0}\" height=\"{total_h:.0}\" viewBox=\"0 0 {total_w:.0} {total_h:.0}\" font-family=\"sans-serif\" font-size=\"11\">\n\
             <defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"8\" markerHeight=\"8\" orient=\"auto-start-reverse\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#333\"/></marker></defs>\n"
        );
        for (p, (x, w)) in self.participants.iter().zip(xs.iter().zip(&boxes)) {
            let _ = writeln!(
                out,
                "<line x1=\"{x:.1}\" y1=\"{HEAD:.1}\" x2=\"{x:.1}\" y2=\"{total_h:.1}\" stroke=\"#999\" stroke-dasharray=\"3,3\"/>"
            );
            let fill = if p.actor { "#fff4d6" } else { "#eaf1fb" };
            let _ = writeln!(
                out,
                "<rect x=\"{:.1}\" y=\"4\" width=\"{w:.1}\" height=\"{:.1}\" rx=\"{}\" fill=\"{fill}\" stroke=\"#4a6fa5\"/><text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                x - w / 2.0,
                HEAD - 8.0,
                if p.actor { 12 } else { 3 },
                HEAD / 2.0 + 4.0,
                escape(&p.label)
            );
        }
        for (row, item) in self.items.iter().enumerate() {
            let y = HEAD + 20.0 + ROW * row as f64;
            match item {
                Item::Message { from, to, reply, text } => {
                    let (x0, x1) = (xs[self.column(from)], xs[self.column(to)]);
                    let dash = if *reply { " stroke-dasharray=\"5,3\"" } else { "" };
                    let _ = writeln!(
                        out,
                        "<line x1=\"{x0:.1}\" y1=\"{:.1}\" x2=\"{x1:.1}\" y2=\"{:.1}\" stroke=\"#333\"{dash} marker-end=\"url(#arrow)\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                        y + 8.0,
                        y + 8.0,
                        (x0 + x1) / 2.0,
                        y + 3.0,
                        escape(text)
                    );
                }
                Item::Note { over: (a, b), text, kind } => {
                    let (x0, x1) = (xs[self.column(a)], xs[self.column(b)]);
                    let w = width(text).max(x1 - x0 + 20.0);
                    let mid = (x0 + x1) / 2.0;
                    let (fill, stroke, weight) = match kind {
                        NoteKind::Plain => ("#fffbe6", "#c9b458", "normal"),
                        NoteKind::Step => ("#eeeeee", "#aaaaaa", "bold"),
                        NoteKind::Broken => ("#fde2e1", "#c0392b", "bold"),
                    };
                    let class = match kind {
                        NoteKind::Plain => "note",
                        NoteKind::Step => "step",
                        NoteKind::Broken => "broken",
                    };
                    let _ = writeln!(
                        out,
                        "<g class=\"{class}\"><rect x=\"{:.1}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"22\" fill=\"{fill}\" stroke=\"{stroke}\"/><text x=\"{mid:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-weight=\"{weight}\">{}</text></g>",
                        mid - w / 2.0,
                        y - 6.0,
                        y + 9.0,
                        escape(text)
                    );
                }
            }
        }
        out.push_str("</svg>\n");
        out
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The rows of one step: what happened, then the `tools/list` requests the host sent in it.
fn step(d: &mut Diagram, model: &CoherenceModel, before: &State, action: Action, after: &State) {
    match action {
        Action::WebAuthenticate { connector } => {
            d.message("User", "Web", format!("authenticate {connector}"));
            d.message("Web", connector, "authenticated: lists the action tools");
        }
        Action::WebRevoke { connector } => d.message("Web", connector, "access revoked: lists the stubs"),
        Action::TokenExpire { connector } => {
            d.note(connector, connector, NoteKind::Plain, "the token expires: lists the stubs")
        }
        Action::DeliverNotification { session, connector } => {
            d.reply(connector, session, "notifications/tools/list_changed")
        }
        Action::DeliverListing { session, connector, slot } => {
            let reply = before.link(session, connector).fetches[usize::from(slot)].map(|f| f.reply);
            let what = match reply {
                Some(Reply::Listed { listing: l, .. }) => listing(Some(l)).to_owned(),
                Some(Reply::Failed(failure)) => format!("{failure:?}"),
                _ => "a reply".to_owned(),
            };
            d.reply(connector, session, format!("tools/list reply: {what}"));
            // A shared cache serves the reply to other sessions: their catalogue's new entry.
            for other in crate::story::served_from_cache(before, after, session, connector) {
                let is = after.link(other, connector);
                let whose = if is.foreign { " (private, another user's)" } else { "" };
                d.message(session, other, format!("shared cache: {}{whose}", listing(is.offered())));
            }
        }
        Action::DeliverAccount { session } => d.reply("Web", session, "the account read"),
        Action::ExpireTtl { session, connector } => {
            d.note(session, session, NoteKind::Plain, format!("{connector}'s TTL runs out: the list is stale"))
        }
        Action::LoseNotificationStream { session, connector } if before.connector(connector).stateless() => {
            d.note(connector, session, NoteKind::Plain, "fault: the listen stream ends");
            if after.link(session, connector).listening {
                d.message(session, connector, "subscriptions/listen (again)");
            }
        }
        Action::TimeOutListing { session, connector, .. } => {
            d.note(session, session, NoteKind::Plain, format!("gives up {connector}'s hung tools/list"))
        }
        Action::UserAsk { session, connector } => {
            d.message("User", session, format!("asks for a {connector} capability"));
            d.message(session, "Model", format!("offers {}", offers(model, after, session)));
        }
        Action::UserMcp { session } => d.message("User", session, "/mcp"),
        Action::UserRestart { session } => d.message("User", session, "restart"),
        Action::UserAuthenticate { session, connector } => {
            d.message("User", session, format!("authenticate {connector} in the session"))
        }
        Action::AgentCallTool { session } => d.message("Model", session, "calls an action tool"),
        Action::AgentCallStub { session } => d.message("Model", session, "calls authenticate (a stub)"),
        Action::AgentCallUnlisted { session } => d.message("Model", session, "calls a tool not offered"),
        Action::AgentAnswerNotAvailable { session } => {
            d.reply("Model", "User", format!("\"not available\" (in {session})"))
        }
        Action::AgentRelayNotice { session } => d.reply("Model", "User", format!("relays {session}'s notice")),
        Action::AgentCompleteAuthentication { session } => {
            d.message("Model", session, "completes the authentication handshake")
        }
        fault => {
            let what = format!("fault: {}", fault.name());
            match (fault.session(), fault.connector()) {
                (Some(s), Some(c)) => d.note(c, s, NoteKind::Plain, what),
                (Some(s), None) => d.note(s, s, NoteKind::Plain, what),
                (None, Some(c)) => d.note(c, c, NoteKind::Plain, what),
                (None, None) => d.note("Web", "Web", NoteKind::Plain, what),
            }
        }
    }
    for s in model.bounds.session_ids() {
        for c in model.bounds.connector_ids() {
            let (was, is) = (before.link(s, c), after.link(s, c));
            for _ in 0..is.fetch_count().saturating_sub(was.fetch_count()) {
                d.message(s, c, "tools/list");
            }
            if is.notifications > was.notifications {
                d.note(c, s, NoteKind::Plain, "list_changed sent, not yet delivered");
            }
        }
    }
}

/// A path as a diagram, ending with a note for each invariant in `broken` (the ones its last
/// state violates).
pub fn path(model: &CoherenceModel, init: &State, steps: &[(Action, State)], broken: &[&Invariant]) -> Diagram {
    let mut d = Diagram {
        participants: vec![
            Participant { id: "User".into(), label: "User".into(), actor: true },
            Participant { id: "Web".into(), label: "web surface".into(), actor: false },
        ],
        items: Vec::new(),
    };
    for c in model.bounds.connector_ids() {
        let server = init.connector(c);
        let label = match (server.stateless(), server.notify) {
            (false, Notify::Advertised) => "sends list_changed",
            (false, Notify::Unadvertised) => "sends list_changed, undeclared",
            (false, Notify::Silent) => "silent",
            (true, Notify::Silent) => "2026-07-28, silent",
            (true, _) => "2026-07-28, notifies listeners",
        };
        let ttl = match (server.stateless(), server.ttl) {
            (false, _) => "",
            (true, Ttl::Long) => ", long TTL",
            (true, Ttl::Zero) => ", TTL 0",
        };
        d.participants.push(Participant {
            id: c.to_string(),
            label: format!("{c} server ({label}{ttl})"),
            actor: false,
        });
    }
    for s in model.bounds.session_ids() {
        let label = match init.context(s) {
            0 => format!("{s} (host)"),
            _ => format!("{s} (host, another user)"),
        };
        d.participants.push(Participant { id: s.to_string(), label, actor: false });
    }
    d.participants.push(Participant { id: "Model".into(), label: "agent (model)".into(), actor: false });
    for s in model.bounds.session_ids() {
        d.note(s, s, NoteKind::Plain, format!("starts offering {}", offers(model, init, s)));
        for c in model.bounds.connector_ids().filter(|&c| init.link(s, c).listening) {
            d.message(s, c, "subscriptions/listen (toolsListChanged)");
        }
    }
    let mut before = init;
    for (i, (action, after)) in steps.iter().enumerate() {
        d.note("User", "Model", NoteKind::Step, format!("step {}: {}", i + 1, action.name()));
        step(&mut d, model, before, *action, after);
        before = after;
    }
    for invariant in broken {
        d.note("User", "Model", NoteKind::Broken, format!("{} violated: {}", invariant.id, invariant.name));
    }
    d
}

/// `trace` as a diagram, ending with the note that `invariant` is broken.
pub fn sequence(model: &CoherenceModel, trace: &Trace, invariant: &Invariant) -> Diagram {
    path(model, &trace.init, &trace.steps, &[invariant])
}
