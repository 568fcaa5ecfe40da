//! `coherence explain`: one policy's shortest counterexample to one invariant, rendered for a
//! design review as the story, a Mermaid sequence diagram, or Markdown with both and the
//! invariant's text from SPEC.md. SPEC.md §8 and the HTML report show what this prints.

use coherence_model::diagram::sequence;
use coherence_model::story::{story, violation_words};
use coherence_model::{CheckReport, CoherenceModel, Invariant};

/// How to render a counterexample.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// The numbered story, then the violation in words.
    Text,
    /// A Mermaid sequence diagram.
    Mermaid,
    /// Both, with the invariant's statement and rationale from SPEC.md.
    Markdown,
}

/// `invariant`'s counterexample in `report` (checked with `model`), or `None` where it holds.
pub fn render(model: &CoherenceModel, report: &CheckReport, invariant: &Invariant, format: Format) -> Option<String> {
    let outcome = report.invariants.iter().find(|o| o.invariant.id == invariant.id)?;
    let trace = outcome.counterexample.as_ref()?;
    let story = story(model, trace).join("\n") + "\n";
    let violation = violation_words(model, invariant, trace.last());
    let diagram = sequence(model, trace, invariant).mermaid();
    let (name, id, steps) = (report.policy.name, invariant.id, trace.len());
    Some(match format {
        Format::Text => format!("{name} × {id} {}: violated in {steps} steps\n{story}{violation}\n", invariant.name),
        Format::Mermaid => diagram,
        Format::Markdown => {
            let section = crate::expected::invariant_section(id).unwrap_or_default();
            format!(
                "# `{name}` violates {id}: {}\n\n{section}\n## The shortest counterexample ({steps} steps)\n\n{story}\n{violation}\n\n```mermaid\n{diagram}```\n",
                invariant.name
            )
        }
    })
}

/// The block SPEC.md §8 holds between its `explain` markers: the headline counterexample as
/// `explain` prints it, story and diagram.
pub fn spec_block(model: &CoherenceModel, report: &CheckReport, invariant: &Invariant) -> Option<String> {
    let text = render(model, report, invariant, Format::Text)?;
    let diagram = render(model, report, invariant, Format::Mermaid)?;
    Some(format!("```text\n{text}```\n\n```mermaid\n{diagram}```\n"))
}
