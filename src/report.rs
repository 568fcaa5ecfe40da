//! Rendering of `coherence check` results: the verdict table, per-policy statistics, and each
//! counterexample as a numbered story, as text or as one JSON document.

use crate::expected::{Difference, Verdict, computed};
use coherence_model::story::{story, violation_words};
use coherence_model::system::Faults;
use coherence_model::{Bounds, CheckReport, INVARIANTS, Trace};
use serde::Serialize;
use std::fmt::Write as _;

/// Whether to print wall-clock times (they differ between runs; everything else is reproducible).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timing {
    /// Print them.
    Shown,
    /// Leave them out, for byte-identical output.
    Hidden,
}

/// The bounds, fault kinds and handshake a report was computed with, in words.
pub fn bounds_words(report: &CheckReport) -> String {
    let b = &report.bounds;
    format!(
        "connectors={} sessions={} turns={} auth-changes={} faults={} commands={} symmetry={}{}{}{}{}{}{}",
        b.connectors,
        b.sessions,
        b.turns,
        b.auth_changes,
        b.faults,
        b.commands,
        if b.symmetry { "on" } else { "off" },
        if b.servers == coherence_model::system::Servers::Reliable { " servers=reliable" } else { "" },
        match b.revisions {
            coherence_model::system::Revisions::Handshake => "",
            coherence_model::system::Revisions::Stateless => " revisions=stateless",
            coherence_model::system::Revisions::Mixed => " revisions=mixed",
        },
        if b.contexts == coherence_model::state::Contexts::Two { " contexts=two" } else { "" },
        match fault_kinds(report) {
            Some(kinds) => format!(" fault-kinds={}", kinds.join(",")),
            None => String::new(),
        },
        if report.agent_handshake { "" } else { " agent-handshake=off" },
        report.server_kind.map(|k| format!(" server-kind={}", k.flag())).unwrap_or_default(),
    )
}

/// The fault kinds admitted, when they are not the servers' default (`--with-fault`,
/// `--without-fault`).
fn fault_kinds(report: &CheckReport) -> Option<Vec<&'static str>> {
    (report.faults != Faults::admitted_by(report.bounds.servers))
        .then(|| report.faults.kinds().map(|f| f.name()).collect())
}

fn cell(v: Verdict) -> String {
    match v {
        Verdict::Holds => "holds".to_owned(),
        Verdict::Vacuous => "vacuous".to_owned(),
        Verdict::Violated(n) => format!("✗ {n}"),
    }
}

/// The counterexample of one invariant as text lines, with the closing verdict.
pub fn counterexample_text(report: &CheckReport, id: &str) -> Option<String> {
    let outcome = report.invariants.iter().find(|o| o.invariant.id == id)?;
    let trace = outcome.counterexample.as_ref()?;
    let model = report.model();
    let mut out = String::new();
    for line in story(&model, trace) {
        writeln!(out, "  {line}").expect("writing to a String");
    }
    writeln!(out, "  ✗ {}: {}", outcome.invariant.id, violation_words(&model, outcome.invariant, trace.last()))
        .expect("writing to a String");
    Some(out)
}

/// The search's peak memory per distinct state visited.
fn bytes_per_state(report: &CheckReport) -> f64 {
    report.peak_bytes as f64 / report.unique_states.max(1) as f64
}

/// The human report.
pub fn text(reports: &[CheckReport], differences: Option<&[Difference]>, timing: Timing) -> String {
    let mut out = String::new();
    let Some(first) = reports.first() else { return out };
    let w = &mut out;
    writeln!(w, "coherence check: {} policies; bounds: {}", reports.len(), bounds_words(first)).unwrap();
    writeln!(w).unwrap();

    let name_width = reports.iter().map(|r| r.policy.name.len()).max().unwrap_or(6).max(6);
    write!(w, "{:<name_width$}", "policy").unwrap();
    for invariant in INVARIANTS {
        write!(w, "  {:<7}", invariant.id).unwrap();
    }
    write!(w, "  {:>13}", "unique states").unwrap();
    if timing == Timing::Shown {
        write!(w, "  {:>8}  {:>7}", "time", "B/state").unwrap();
    }
    writeln!(w).unwrap();
    for report in reports {
        write!(w, "{:<name_width$}", report.policy.name).unwrap();
        for invariant in INVARIANTS {
            write!(w, "  {:<7}", cell(computed(report, invariant.id))).unwrap();
        }
        write!(w, "  {:>13}", report.unique_states).unwrap();
        if timing == Timing::Shown {
            write!(w, "  {:>7.2}s  {:>7.1}", report.elapsed.as_secs_f64(), bytes_per_state(report)).unwrap();
        }
        writeln!(w).unwrap();
    }
    let spilled = reports.iter().map(|r| r.peak_spilled_bytes).max().unwrap_or(0);
    if timing == Timing::Shown && spilled > 0 {
        let mib = spilled as f64 / f64::from(1 << 20);
        writeln!(w, "B/state is what memory held; the frontier and paths took at most {mib:.1} MiB on disk (--spill).")
            .unwrap();
    }
    writeln!(w).unwrap();
    writeln!(w, "holds: no reachable state breaks the invariant within the bounds, and its premise was reached.")
        .unwrap();
    writeln!(w, "vacuous: it holds, but its premise (the situation it judges) was never reached.").unwrap();
    writeln!(w, "✗ n: violated; the shortest counterexample has n steps (below).").unwrap();
    for invariant in INVARIANTS {
        writeln!(w, "{}: {}", invariant.id, invariant.name).unwrap();
    }

    writeln!(w).unwrap();
    writeln!(w, "Non-vacuity: where an invariant holds, was the situation it judges reached?").unwrap();
    for report in reports {
        let vacuous: Vec<&str> = report
            .invariants
            .iter()
            .filter(|o| o.counterexample.is_none() && o.witness.is_none())
            .map(|o| o.invariant.id)
            .collect();
        if vacuous.is_empty() {
            writeln!(w, "  {}: every premise reached", report.policy.name).unwrap();
        } else {
            writeln!(
                w,
                "  {}: never reached the premise of {} (holds vacuously)",
                report.policy.name,
                vacuous.join(", ")
            )
            .unwrap();
        }
    }

    for report in reports {
        for outcome in &report.invariants {
            if let Some(trace) = &outcome.counterexample {
                writeln!(w).unwrap();
                writeln!(
                    w,
                    "{} × {} {}: violated in {} steps",
                    report.policy.name,
                    outcome.invariant.id,
                    outcome.invariant.name,
                    trace.len()
                )
                .unwrap();
                w.push_str(&counterexample_text(report, outcome.invariant.id).expect("violated"));
            }
        }
    }

    writeln!(w).unwrap();
    match differences {
        None => writeln!(
            w,
            "SPEC.md §7 records no table for these bounds (it records the default and deep profiles, and §7.4 and §7.5 at the default bounds with the servers they name); not compared."
        )
        .unwrap(),
        Some([]) => writeln!(w, "Every verdict matches SPEC.md §7.").unwrap(),
        Some(diffs) => {
            writeln!(w, "{} verdicts differ from SPEC.md §7:", diffs.len()).unwrap();
            for d in diffs {
                writeln!(
                    w,
                    "  {} × {}: SPEC.md says {}, the checker computed {}",
                    d.policy, d.id, d.expected, d.computed
                )
                .unwrap();
            }
            writeln!(w, "Update the model or SPEC.md §7 so that they agree.").unwrap();
        }
    }
    out
}

#[derive(Serialize)]
struct JsonStep {
    step: usize,
    action: Option<coherence_model::Action>,
    text: String,
}

#[derive(Serialize)]
struct JsonProperty {
    id: &'static str,
    name: &'static str,
    verdict: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    counterexample: Option<Vec<JsonStep>>,
    premise_reached: bool,
}

#[derive(Serialize)]
struct JsonPolicy {
    policy: &'static str,
    summary: &'static str,
    unique_states: usize,
    transitions: usize,
    depth_max: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    elapsed_ms: Option<u128>,
    /// The most bytes the search held at once (visited set, paths, frontier), with the times.
    #[serde(skip_serializing_if = "Option::is_none")]
    peak_bytes: Option<usize>,
    /// The most bytes the frontier and paths took on disk at once (`--spill`), with the times.
    #[serde(skip_serializing_if = "Option::is_none")]
    peak_spilled_bytes: Option<usize>,
    properties: Vec<JsonProperty>,
}

#[derive(Serialize)]
struct JsonReport<'a> {
    bounds: Bounds,
    /// The fault kinds admitted, when not the servers' default.
    #[serde(skip_serializing_if = "Option::is_none")]
    fault_kinds: Option<Vec<&'static str>>,
    /// The agent may complete a handshake inside a turn (false with `--no-agent-handshake`).
    agent_handshake: bool,
    policies: Vec<JsonPolicy>,
    expected: JsonExpected<'a>,
}

#[derive(Serialize)]
struct JsonExpected<'a> {
    compared: bool,
    differences: &'a [Difference],
}

fn json_steps(report: &CheckReport, trace: &Trace) -> Vec<JsonStep> {
    let model = report.model();
    story(&model, trace)
        .into_iter()
        .enumerate()
        .map(|(i, line)| JsonStep {
            step: i,
            action: i.checked_sub(1).map(|k| trace.steps[k].0),
            text: line.split_once(". ").map_or(line.clone(), |(_, t)| t.to_owned()),
        })
        .collect()
}

/// The JSON report: one document.
pub fn json(reports: &[CheckReport], differences: Option<&[Difference]>, timing: Timing) -> String {
    let policies = reports
        .iter()
        .map(|report| JsonPolicy {
            policy: report.policy.name,
            summary: report.policy.summary,
            unique_states: report.unique_states,
            transitions: report.transitions,
            depth_max: report.depth_max,
            elapsed_ms: (timing == Timing::Shown).then_some(report.elapsed.as_millis()),
            peak_bytes: (timing == Timing::Shown).then_some(report.peak_bytes),
            peak_spilled_bytes: (timing == Timing::Shown && report.peak_spilled_bytes > 0)
                .then_some(report.peak_spilled_bytes),
            properties: report
                .invariants
                .iter()
                .map(|o| JsonProperty {
                    id: o.invariant.id,
                    name: o.invariant.name,
                    verdict: if o.counterexample.is_some() { "violated" } else { "holds" },
                    counterexample: o.counterexample.as_ref().map(|t| json_steps(report, t)),
                    premise_reached: o.witness.is_some(),
                })
                .collect(),
        })
        .collect();
    let doc = JsonReport {
        bounds: reports.first().map_or(Bounds::DEFAULT, |r| r.bounds),
        fault_kinds: reports.first().and_then(fault_kinds),
        agent_handshake: reports.first().is_some_and(|r| r.agent_handshake),
        policies,
        expected: JsonExpected { compared: differences.is_some(), differences: differences.unwrap_or(&[]) },
    };
    serde_json::to_string_pretty(&doc).expect("the report serialises") + "\n"
}
