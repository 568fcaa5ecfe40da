//! The committed JSON Schemas are generated from the Rust types, and what the kit writes and reads
//! validates against them.

use std::path::Path;

fn committed(name: &str) -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas").join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn committed_schemas_are_current() {
    for (name, text) in coherence_sim::schema::all() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas").join(name);
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(on_disk == text, "schemas/{name} is stale: run `cargo run --release -- schema --out schemas`");
    }
}

#[test]
fn fixtures_and_protocol_messages_validate() {
    let fixture = jsonschema::validator_for(&committed("fixture.schema.json")).unwrap();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    for entry in std::fs::read_dir(dir).unwrap() {
        let value: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap()).unwrap();
        if let Err(e) = fixture.validate(&value) {
            panic!("{}: {e}", value["id"]);
        }
    }
    // Every message of a replay of the reference host, in both directions.
    let input = jsonschema::validator_for(&committed("adapter-input.schema.json")).unwrap();
    let output = jsonschema::validator_for(&committed("adapter-output.schema.json")).unwrap();
    struct Recording<'a> {
        host: coherence_sim::host::ReferenceHost,
        input: &'a jsonschema::Validator,
        output: &'a jsonschema::Validator,
        count: usize,
    }
    impl coherence_sim::host::Host for Recording<'_> {
        fn handle(
            &mut self,
            i: &coherence_sim::protocol::Input,
        ) -> Result<coherence_sim::protocol::Output, coherence_sim::host::HostError> {
            let o = self.host.handle(i)?;
            let seq = self.count as u64;
            let iv: serde_json::Value = serde_json::from_str(&coherence_sim::protocol::input_line(i, seq)).unwrap();
            let ov: serde_json::Value = serde_json::from_str(&coherence_sim::protocol::output_line(&o, seq)).unwrap();
            assert!(self.input.validate(&iv).is_ok(), "{iv}");
            assert!(self.output.validate(&ov).is_ok(), "{ov}");
            self.count += 1;
            Ok(o)
        }
    }
    let mut count = 0;
    for fixture in coherence::conform::read_fixtures(&Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures"))
        .unwrap()
        .iter()
        .take(40)
    {
        let mut host = Recording {
            host: coherence_sim::host::ReferenceHost::new(coherence_model::RECOMMENDED),
            input: &input,
            output: &output,
            count: 0,
        };
        coherence_sim::engine::replay(fixture, &mut host);
        count += host.count;
    }
    assert!(count > 200, "only {count} messages checked");
}
