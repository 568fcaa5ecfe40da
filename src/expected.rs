//! The expected verdict tables, read from SPEC.md §7, and their comparison with computed verdicts.
//!
//! SPEC.md is the reference a review cites; the checker recomputes every verdict on every run and
//! fails when the two disagree, so the document cannot drift from the model. A table is parsed
//! from between two HTML comments naming it. A cell is `holds`, `holds (vacuous)` (the premise was
//! never reached) or `violated (n)` (n: the length of the shortest counterexample), at the
//! [`Profile::Default`] bounds; `; deep: <verdict>` follows when the verdict differs at the
//! [`Profile::Deep`] bounds. `coherence check` compares the first part, `coherence check --profile
//! deep` the second, so both marks are computed, never written by hand.

use coherence_model::state::Contexts;
use coherence_model::system::{Fault, Faults, Revisions, Servers};
use coherence_model::{Bounds, CheckReport, INVARIANTS};
use std::collections::BTreeMap;

/// SPEC.md, as compiled into the binary.
pub const SPEC: &str = include_str!("../SPEC.md");

/// SPEC.md §6's section on invariant `id` (its statement and rationale), without its heading.
pub fn invariant_section(id: &str) -> Option<String> {
    let heading = format!("### {id}:");
    let start = SPEC.lines().position(|l| l.starts_with(&heading))?;
    let body: Vec<&str> =
        SPEC.lines().skip(start + 1).take_while(|l| !l.starts_with("## ") && !l.starts_with("### ")).collect();
    Some(body.join("\n").trim().to_owned() + "\n")
}

/// A set of bounds the verdict tables are computed at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Profile {
    /// The default bounds (SPEC.md §4): what `coherence check` runs.
    Default,
    /// Deeper bounds: more turns, auth changes and faults. Verdicts that change here are marked
    /// bound-sensitive in SPEC.md §7.
    Deep,
}

impl Profile {
    /// The bounds of this profile, for the given servers.
    pub fn bounds(self, servers: Servers) -> Bounds {
        match self {
            Profile::Default => Bounds { servers, ..Bounds::DEFAULT },
            Profile::Deep => Bounds { servers, ..DEEP },
        }
    }

    /// The bounds of this profile for these servers, revisions and authorization contexts (two:
    /// [`Bounds::with_two_contexts`]).
    pub fn bounds_with(self, servers: Servers, revisions: Revisions, contexts: Contexts) -> Bounds {
        let bounds = Bounds { revisions, ..self.bounds(servers) };
        match contexts {
            Contexts::One => bounds,
            Contexts::Two => bounds.with_two_contexts(),
        }
    }

    /// The profile whose bounds these are (symmetry, servers and revisions aside), if any.
    pub fn of(bounds: Bounds) -> Option<Profile> {
        let plain = Bounds { symmetry: true, servers: Servers::Any, ..bounds };
        [Profile::Default, Profile::Deep]
            .into_iter()
            .find(|p| p.bounds_with(Servers::Any, bounds.revisions, bounds.contexts) == plain)
    }
}

/// The bounds of [`Profile::Deep`].
pub const DEEP: Bounds = Bounds { connectors: 1, turns: 4, auth_changes: 4, faults: 3, commands: 2, ..Bounds::DEFAULT };

/// What a verdict table of SPEC.md §7 was computed for, besides its bounds' profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Configuration {
    /// Which servers.
    pub servers: Servers,
    /// Which revisions they speak.
    pub revisions: Revisions,
    /// How many authorization contexts.
    pub contexts: Contexts,
    /// The model admits deploys (`DeployTools`, admitted only on request).
    pub deploys: bool,
}

impl Configuration {
    /// The configuration of `bounds`, with or without deploys.
    pub fn of(bounds: Bounds, deploys: bool) -> Configuration {
        Configuration { servers: bounds.servers, revisions: bounds.revisions, contexts: bounds.contexts, deploys }
    }

    /// The fault kinds its table admits: the servers' defaults, and deploys if it has them.
    pub fn faults(self) -> Faults {
        let admitted = Faults::admitted_by(self.servers);
        if self.deploys { admitted.with(Fault::DeployTools) } else { admitted }
    }

    /// The configuration a model with these bounds and faults is checked in, if SPEC.md can have a
    /// table for it: its faults are the servers' defaults, with or without deploys.
    pub fn of_model(bounds: Bounds, faults: Faults) -> Option<Configuration> {
        [false, true].into_iter().map(|deploys| Configuration::of(bounds, deploys)).find(|c| c.faults() == faults)
    }

    /// The name of its table in SPEC.md, if it has one (none for mixed revisions).
    pub fn table_name(self) -> Option<&'static str> {
        Some(match (self.deploys, self.contexts, self.revisions, self.servers) {
            (false, Contexts::One, Revisions::Handshake, Servers::Any) => "verdict-table",
            (false, Contexts::One, Revisions::Handshake, Servers::Reliable) => "verdict-table-reliable",
            (false, Contexts::One, Revisions::Stateless, Servers::Any) => "verdict-table-stateless",
            (false, Contexts::One, Revisions::Stateless, Servers::Reliable) => "verdict-table-stateless-reliable",
            (false, Contexts::Two, Revisions::Stateless, Servers::Reliable) => "verdict-table-contexts-reliable",
            (true, Contexts::One, Revisions::Handshake, Servers::Any) => "verdict-table-deploys",
            _ => return None,
        })
    }

    /// Whether its table has rows for the deliberately broken policies (SPEC.md §11.4): the deploy
    /// table records the designs alone.
    pub fn records_broken(self) -> bool {
        !self.deploys
    }

    /// Whether SPEC.md records its verdicts at `profile`: the tables of the 2026-07-28 revision,
    /// of two contexts and of deploys are computed at the default bounds only.
    pub fn recorded_at(self, profile: Profile) -> bool {
        profile == Profile::Default
            || (self.revisions == Revisions::Handshake && self.contexts == Contexts::One && !self.deploys)
    }
}

/// One verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The invariant holds within the bounds, and its premise was reached.
    Holds,
    /// It holds, but its premise was never reached: nothing was judged.
    Vacuous,
    /// It is violated; the shortest counterexample has this many steps.
    Violated(usize),
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Verdict::Holds => f.write_str("holds"),
            Verdict::Vacuous => f.write_str("holds (vacuous)"),
            Verdict::Violated(n) => write!(f, "violated ({n})"),
        }
    }
}

/// One cell: the verdict at the default bounds, and at the deep bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cell {
    /// At [`Profile::Default`].
    pub default: Verdict,
    /// At [`Profile::Deep`].
    pub deep: Verdict,
}

impl Cell {
    /// The verdict at `profile`.
    pub fn at(&self, profile: Profile) -> Verdict {
        match profile {
            Profile::Default => self.default,
            Profile::Deep => self.deep,
        }
    }
}

impl std::fmt::Display for Cell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.deep == self.default {
            write!(f, "{}", self.default)
        } else {
            write!(f, "{}; deep: {}", self.default, self.deep)
        }
    }
}

/// The verdicts SPEC.md records: policy name, then invariant ID.
pub type Table = BTreeMap<String, BTreeMap<String, Cell>>;

/// Reads the table `name` out of a SPEC.md text.
pub fn parse_table(spec: &str, name: &str) -> Result<Table, String> {
    let begin = format!("<!-- {name}:begin -->");
    let end = format!("<!-- {name}:end -->");
    let start = spec.find(&begin).ok_or(format!("SPEC.md has no {name}:begin marker"))? + begin.len();
    let stop = spec[start..].find(&end).ok_or(format!("SPEC.md has no {name}:end marker"))? + start;
    let mut rows = spec[start..stop].lines().map(str::trim).filter(|l| l.starts_with('|'));
    let cells = |line: &str| -> Vec<String> {
        line.trim_matches('|').split('|').map(|c| c.trim().trim_matches('`').to_owned()).collect()
    };
    let header = cells(rows.next().ok_or("the verdict table is empty")?);
    if header.first().map(String::as_str) != Some("policy") {
        return Err("the verdict table's first column must be `policy`".to_owned());
    }
    let ids = &header[1..];
    let mut table = Table::new();
    for line in rows.filter(|l| !l.starts_with("|-") && !l.starts_with("| -")) {
        let row = cells(line);
        if row.len() != header.len() {
            return Err(format!("verdict table row `{line}` has {} cells, expected {}", row.len(), header.len()));
        }
        let mut verdicts = BTreeMap::new();
        for (id, cell) in ids.iter().zip(&row[1..]) {
            verdicts.insert(id.clone(), parse_cell(cell).map_err(|e| format!("{} / {id}: {e}", row[0]))?);
        }
        if table.insert(row[0].clone(), verdicts).is_some() {
            return Err(format!("the verdict table has two rows for {}", row[0]));
        }
    }
    Ok(table)
}

fn parse_verdict(text: &str) -> Result<Verdict, String> {
    match text {
        "holds" => return Ok(Verdict::Holds),
        "holds (vacuous)" => return Ok(Verdict::Vacuous),
        _ => {}
    }
    text.strip_prefix("violated (")
        .and_then(|rest| rest.strip_suffix(')'))
        .and_then(|n| n.parse().ok())
        .map(Verdict::Violated)
        .ok_or_else(|| format!("`{text}` is not `holds`, `holds (vacuous)` or `violated (n)`"))
}

fn parse_cell(cell: &str) -> Result<Cell, String> {
    let (default, deep) = match cell.split_once("; deep: ") {
        Some((default, deep)) => (parse_verdict(default)?, parse_verdict(deep)?),
        None => {
            let v = parse_verdict(cell)?;
            (v, v)
        }
    };
    if default == deep && cell.contains("; deep: ") {
        return Err(format!("cell `{cell}` marks a deep verdict equal to the default one"));
    }
    Ok(Cell { default, deep })
}

/// The verdict the checker computed.
pub fn computed(report: &CheckReport, id: &str) -> Verdict {
    let outcome = report.invariants.iter().find(|o| o.invariant.id == id).expect("every invariant is checked");
    match (&outcome.counterexample, &outcome.witness) {
        (Some(trace), _) => Verdict::Violated(trace.len()),
        (None, Some(_)) => Verdict::Holds,
        (None, None) => Verdict::Vacuous,
    }
}

/// One disagreement between SPEC.md and the checker.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Difference {
    /// The policy.
    pub policy: String,
    /// The invariant.
    pub id: String,
    /// What SPEC.md says (`absent` when it has no cell).
    pub expected: String,
    /// What the checker computed.
    pub computed: String,
}

/// Compares computed reports with the table for their servers, at the profile of their bounds.
/// With bounds of no profile, `None` (nothing to compare).
pub fn compare(reports: &[CheckReport], spec: &str) -> Result<Option<Vec<Difference>>, String> {
    let Some(first) = reports.first() else { return Ok(None) };
    let Some(profile) = Profile::of(first.bounds) else { return Ok(None) };
    // SPEC.md's tables admit every fault kind the servers allow (and deploys, in one), the agent
    // handshake, and every kind of server.
    let Some(configuration) = Configuration::of_model(first.bounds, first.faults) else { return Ok(None) };
    let Some(name) = configuration.table_name() else { return Ok(None) };
    if !configuration.recorded_at(profile) || !first.agent_handshake || first.server_kind.is_some() {
        return Ok(None);
    }
    let table = parse_table(spec, name)?;
    let mut differences = Vec::new();
    let broken = |name: &str| coherence_model::BROKEN_POLICIES.iter().any(|p| p.name == name);
    for report in reports.iter().filter(|r| configuration.records_broken() || !broken(r.policy.name)) {
        let row = table.get(report.policy.name);
        for invariant in INVARIANTS {
            let got = computed(report, invariant.id);
            let want = row.and_then(|r| r.get(invariant.id)).map(|c| c.at(profile));
            if want != Some(got) {
                differences.push(Difference {
                    policy: report.policy.name.to_owned(),
                    id: invariant.id.to_owned(),
                    expected: want.map_or("absent".to_owned(), |w| w.to_string()),
                    computed: got.to_string(),
                });
            }
        }
    }
    Ok(Some(differences))
}

/// The table as SPEC.md writes it, from reports at the default and the deep bounds (same
/// policies, same order): `coherence check --write-table` prints this.
pub fn render_table(default: &[CheckReport], deep: &[CheckReport]) -> String {
    let mut out = String::from("| policy |");
    for invariant in INVARIANTS {
        out.push_str(&format!(" {} |", invariant.id));
    }
    out.push_str("\n|---|");
    out.push_str(&"---|".repeat(INVARIANTS.len()));
    out.push('\n');
    for (d, e) in default.iter().zip(deep) {
        assert_eq!(d.policy.name, e.policy.name, "the same policies in the same order");
        out.push_str(&format!("| {} |", d.policy.name));
        for invariant in INVARIANTS {
            let cell = Cell { default: computed(d, invariant.id), deep: computed(e, invariant.id) };
            out.push_str(&format!(" {cell} |"));
        }
        out.push('\n');
    }
    out
}
