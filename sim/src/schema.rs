//! JSON Schemas of the adapter protocol, the fixture format and host design files, generated from the Rust types so
//! that the two can never disagree. `coherence schema --out schemas` writes them; a test checks
//! that the committed copies are current.

use crate::fixture::Fixture;
use crate::protocol::{Input, Output};

fn pretty(schema: schemars::Schema) -> String {
    serde_json::to_string_pretty(&schema).expect("schemas serialise") + "\n"
}

/// A protocol schema as on the wire: every message also carries the `seq` number.
fn wire(schema: schemars::Schema) -> String {
    let mut value = schema.to_value();
    for variant in value["oneOf"].as_array_mut().expect("protocol messages are tagged unions") {
        variant["properties"][crate::protocol::SEQ] = serde_json::json!({
            "description": "The input's number (from 0 for each adapter process); an output echoes the number of the input it answers.",
            "type": "integer",
            "minimum": 0
        });
        variant["required"].as_array_mut().expect("variants list required fields").push(crate::protocol::SEQ.into());
    }
    serde_json::to_string_pretty(&value).expect("schemas serialise") + "\n"
}

/// Every schema: file name and text.
pub fn all() -> Vec<(&'static str, String)> {
    vec![
        ("adapter-input.schema.json", wire(schemars::schema_for!(Input))),
        ("adapter-output.schema.json", wire(schemars::schema_for!(Output))),
        ("fixture.schema.json", pretty(schemars::schema_for!(Fixture))),
        ("host-design.schema.json", pretty(schemars::schema_for!(coherence_model::policy::HostDesigns))),
    ]
}
