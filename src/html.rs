//! `coherence report`: the verdict table and every counterexample as one self-contained HTML page
//! for a design review. No script, no font, no style sheet and no image is fetched at view time:
//! the diagrams are inline SVG ([`coherence_model::diagram::Diagram::svg`]), the style is inline.
//!
//! Each violated cell links to its counterexample (`#cx-POLICY-INV-n`): the invariant's statement,
//! the story, the diagram, its Mermaid source and the command that prints it again.

use crate::expected::{Cell, Difference, Verdict, computed};
use crate::report::{Timing, bounds_words};
use coherence_model::diagram::sequence;
use coherence_model::story::{story, violation_words};
use coherence_model::system::{Faults, Revisions, Servers};
use coherence_model::{CheckReport, INVARIANTS, policy_named};
use std::fmt::Write as _;

/// What a page is made of, beyond the reports.
pub struct Page<'a> {
    /// One report per policy, at the bounds checked.
    pub reports: &'a [CheckReport],
    /// The same policies at the deep profile, when they were checked there too: cells whose
    /// verdict differs are marked bound-sensitive.
    pub deep: Option<&'a [CheckReport]>,
    /// SPEC.md §7 compared with the reports (`None`: not comparable at these bounds).
    pub differences: Option<&'a [Difference]>,
    /// The file the policies that are not built in came from.
    pub host_design: Option<&'a str>,
    /// The commit the binary was built from.
    pub commit: &'a str,
    /// Whether to show wall-clock times (they differ between runs).
    pub timing: Timing,
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The anchor of one counterexample.
pub fn anchor(policy: &str, id: &str) -> String {
    format!("cx-{policy}-{id}")
}

/// The flags that give `report`'s bounds, fault kinds and handshake to `check` or `explain`.
fn flags(report: &CheckReport) -> String {
    let b = &report.bounds;
    let mut out = format!(
        "--connectors {} --sessions {} --turns {} --auth-changes {} --faults {} --commands {}",
        b.connectors, b.sessions, b.turns, b.auth_changes, b.faults, b.commands
    );
    if b.servers == Servers::Reliable {
        out.push_str(" --servers reliable");
    }
    match b.revisions {
        Revisions::Handshake => {}
        Revisions::Stateless => out.push_str(" --revisions stateless"),
        Revisions::Mixed => out.push_str(" --revisions mixed"),
    }
    if b.contexts == coherence_model::state::Contexts::Two {
        out.push_str(" --contexts two");
    }
    if !b.symmetry {
        out.push_str(" --no-symmetry");
    }
    let admitted = Faults::admitted_by(b.servers);
    for fault in coherence_model::system::Fault::ALL {
        let (has, default) = (report.faults.kinds().any(|f| f == fault), admitted.kinds().any(|f| f == fault));
        if has && !default {
            let _ = write!(out, " --with-fault {}", fault.name());
        } else if default && !has {
            let _ = write!(out, " --without-fault {}", fault.name());
        }
    }
    if !report.agent_handshake {
        out.push_str(" --no-agent-handshake");
    }
    if let Some(kind) = report.server_kind {
        let _ = write!(out, " --server-kind {}", kind.flag());
    }
    out
}

const STYLE: &str = "body{font-family:sans-serif;margin:2em;max-width:110em;color:#222}\
table.verdicts{border-collapse:collapse;font-size:13px}\
.verdicts th,.verdicts td{border:1px solid #ccc;padding:3px 6px;text-align:center}\
.verdicts td.policy{text-align:left;font-family:monospace}\
td.violated{background:#fde2e1}td.violated a{color:#8b1a10;font-weight:bold}\
td.holds{background:#e3f5e1}td.vacuous{background:#f3f3f3;color:#777;font-style:italic}\
td.sensitive{outline:2px dashed #c77d00;outline-offset:-3px}\
section.counterexample{border-top:1px solid #ccc;margin-top:2em}\
.diagram{overflow-x:auto;border:1px solid #eee;padding:4px}\
pre{background:#f6f6f6;padding:8px;overflow-x:auto}\
.legend span{display:inline-block;padding:2px 8px;margin-right:6px;border:1px solid #ccc}\
.agrees{color:#1e6b1e}.differs{color:#8b1a10}";

/// The whole page.
pub fn page(p: &Page) -> String {
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(w, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">");
    let _ = writeln!(w, "<title>mcp-coherence verdicts at {}</title>", escape(p.commit));
    let _ = writeln!(w, "<style>{STYLE}</style>\n</head>\n<body>");
    let _ = writeln!(w, "<h1>mcp-coherence: host policies against SPEC.md's invariants</h1>");
    let _ = writeln!(
        w,
        "<p>Computed by <code>coherence check</code>, built from commit <code id=\"commit\">{}</code>.",
        escape(p.commit)
    );
    if let Some(first) = p.reports.first() {
        let _ = writeln!(w, " Bounds: <code id=\"bounds\">{}</code>.", escape(&bounds_words(first)));
    }
    match p.deep {
        Some(deep) if !deep.is_empty() => {
            let _ = writeln!(w, " Also checked at the deep profile: <code>{}</code>.", escape(&bounds_words(&deep[0])));
        }
        _ => {
            let _ = writeln!(
                w,
                " Not checked at the deep profile (<code>coherence report --deep</code>): no cell is marked bound-sensitive."
            );
        }
    }
    let _ = writeln!(w, "</p>");
    match p.differences {
        None => {
            let _ = writeln!(w, "<p id=\"spec\">SPEC.md §7 records no table for these bounds: not compared.</p>");
        }
        Some([]) => {
            let _ = writeln!(
                w,
                "<p id=\"spec\" class=\"agrees\">SPEC.md §7 agrees with every cell of the built-in policies.</p>"
            );
        }
        Some(differences) => {
            let _ = writeln!(
                w,
                "<p id=\"spec\" class=\"differs\">SPEC.md §7 disagrees with {} cells:</p>\n<ul>",
                differences.len()
            );
            for d in differences {
                let _ = writeln!(
                    w,
                    "<li><code>{}</code> × {}: SPEC.md says {}, the checker computed {}</li>",
                    escape(&d.policy),
                    d.id,
                    escape(&d.expected),
                    escape(&d.computed)
                );
            }
            let _ = writeln!(w, "</ul>");
        }
    }
    verdict_table(w, p);
    statistics(w, p);
    for report in p.reports {
        for invariant in INVARIANTS {
            counterexample(w, p, report, invariant);
        }
    }
    let _ = writeln!(w, "</body>\n</html>");
    out
}

fn verdict_table(w: &mut String, p: &Page) {
    let _ = writeln!(w, "<h2 id=\"verdicts\">Verdicts</h2>");
    let _ = writeln!(
        w,
        "<p class=\"legend\"><span class=\"violated\" style=\"background:#fde2e1\">violated (n): the shortest counterexample has n steps; follow the link</span><span style=\"background:#e3f5e1\">holds</span><span style=\"background:#f3f3f3\"><i>holds (vacuous)</i>: its premise was never reached, nothing was judged</span><span style=\"outline:2px dashed #c77d00\">bound-sensitive: another verdict at the deep profile</span></p>"
    );
    let _ = write!(w, "<table class=\"verdicts\">\n<thead><tr><th>policy</th>");
    for invariant in INVARIANTS {
        let _ = write!(w, "<th title=\"{}\">{}</th>", escape(invariant.name), invariant.id);
    }
    let _ = writeln!(w, "</tr></thead>\n<tbody>");
    for report in p.reports {
        let name = report.policy.name;
        let _ = write!(w, "<tr><td class=\"policy\" id=\"policy-{name}\">{}</td>", escape(name));
        for invariant in INVARIANTS {
            let default = computed(report, invariant.id);
            let deep = p.deep.and_then(|d| d.iter().find(|r| r.policy.name == name)).map(|r| computed(r, invariant.id));
            let cell = Cell { default, deep: deep.unwrap_or(default) };
            let mut class = match default {
                Verdict::Holds => "holds".to_owned(),
                Verdict::Vacuous => "vacuous".to_owned(),
                Verdict::Violated(_) => "violated".to_owned(),
            };
            if cell.deep != cell.default {
                class.push_str(" sensitive");
            }
            let text = escape(&cell.to_string());
            let id = invariant.id;
            match default {
                Verdict::Violated(_) => {
                    let _ = write!(w, "<td class=\"{class}\"><a href=\"#{}\">{text}</a></td>", anchor(name, id));
                }
                _ => {
                    let _ = write!(w, "<td class=\"{class}\">{text}</td>");
                }
            }
        }
        let _ = writeln!(w, "</tr>");
    }
    let _ = writeln!(w, "</tbody>\n</table>");
}

fn statistics(w: &mut String, p: &Page) {
    let _ = writeln!(w, "<h2 id=\"statistics\">The search</h2>\n<table class=\"verdicts\">");
    let time = if p.timing == Timing::Shown { "<th>time</th>" } else { "" };
    let _ = writeln!(
        w,
        "<thead><tr><th>policy</th><th>states</th><th>transitions</th><th>depth</th>{time}</tr></thead>\n<tbody>"
    );
    for r in p.reports {
        let _ = write!(
            w,
            "<tr><td class=\"policy\">{}</td><td>{}</td><td>{}</td><td>{}</td>",
            escape(r.policy.name),
            r.unique_states,
            r.transitions,
            r.depth_max
        );
        if p.timing == Timing::Shown {
            let _ = write!(w, "<td>{:.1} s</td>", r.elapsed.as_secs_f64());
        }
        let _ = writeln!(w, "</tr>");
    }
    let _ = writeln!(w, "</tbody>\n</table>");
}

fn counterexample(w: &mut String, p: &Page, report: &CheckReport, invariant: &coherence_model::Invariant) {
    let Some(outcome) = report.invariants.iter().find(|o| o.invariant.id == invariant.id) else { return };
    let Some(trace) = &outcome.counterexample else { return };
    let model = report.model();
    let name = report.policy.name;
    let built_in = policy_named(name) == Some(report.policy);
    let which = match (built_in, p.host_design) {
        (false, Some(path)) => format!("--host-design {path}"),
        _ => format!("--policy {name}"),
    };
    let _ = writeln!(w, "<section class=\"counterexample\" id=\"{}\">", anchor(name, invariant.id));
    let _ = writeln!(
        w,
        "<h3><code>{}</code> violates {}: {} ({} steps)</h3>",
        escape(name),
        invariant.id,
        escape(invariant.name),
        trace.len()
    );
    let _ = writeln!(w, "<p><b>Predicate.</b> {}</p>", escape(&invariant.statement()));
    let _ = writeln!(w, "<ol start=\"0\" class=\"story\">");
    for line in story(&model, trace) {
        let sentence = line.split_once(". ").map_or(line.as_str(), |(_, s)| s);
        let _ = writeln!(w, "<li>{}</li>", escape(sentence));
    }
    let _ = writeln!(w, "</ol>");
    let _ = writeln!(w, "<p class=\"violation\">✗ {}</p>", escape(&violation_words(&model, invariant, trace.last())));
    let diagram = sequence(&model, trace, invariant);
    let _ = writeln!(w, "<div class=\"diagram\">\n{}</div>", diagram.svg());
    let command = format!("coherence explain {which} --invariant {} {} --format mermaid", invariant.id, flags(report));
    let _ = writeln!(
        w,
        "<details><summary>Mermaid source</summary>\n<pre class=\"mermaid-source\">{}</pre>\n</details>",
        escape(&diagram.mermaid())
    );
    let _ = writeln!(
        w,
        "<p>Again: <code>{}</code> · <a href=\"#policy-{name}\">back to the table</a></p>",
        escape(&command)
    );
    let _ = writeln!(w, "</section>");
}
