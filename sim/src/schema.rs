//! JSON Schemas of the adapter protocol and the fixture format, generated from the Rust types so
//! that the two can never disagree. `coherence schema --out schemas` writes them; a test checks
//! that the committed copies are current.

use crate::fixture::Fixture;
use crate::protocol::{Input, Output};

fn pretty(schema: schemars::Schema) -> String {
    serde_json::to_string_pretty(&schema).expect("schemas serialise") + "\n"
}

/// Every schema: file name and text.
pub fn all() -> Vec<(&'static str, String)> {
    vec![
        ("adapter-input.schema.json", pretty(schemars::schema_for!(Input))),
        ("adapter-output.schema.json", pretty(schemars::schema_for!(Output))),
        ("fixture.schema.json", pretty(schemars::schema_for!(Fixture))),
    ]
}
