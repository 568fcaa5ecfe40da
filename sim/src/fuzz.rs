//! The entry points the fuzz targets (`fuzz/`) drive, shared with the test suite, which replays
//! every seed and every input the fuzzer once found (`fuzz/seeds`, `fuzz/regressions`) through
//! them on the stable toolchain. Each takes any bytes and must return, never panic or hang.

/// A fixture file's bytes: a fixture, or an error.
pub fn fixture(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = crate::fixture::Fixture::from_json(text, "fuzz.json");
    }
}

/// A scenario file's bytes: a scenario and its fixture, or an error.
pub fn scenario(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(scenario) = crate::scenario::Scenario::parse(text, "fuzz.scenario")
    {
        let _ = scenario.fixture("fuzz.scenario");
    }
}

/// An adapter's output line: an output, or an error.
pub fn adapter_output(data: &[u8]) {
    if let Ok(line) = std::str::from_utf8(data)
        && let Ok((_, value)) = crate::protocol::split_seq(line)
    {
        let _ = serde_json::from_value::<crate::protocol::Output>(value);
    }
}

/// A fuzz target: it must never panic, whatever the bytes.
pub type Target = fn(&[u8]);

/// Every target, by the name its directory and its fuzz binary have.
pub const TARGETS: &[(&str, Target)] =
    &[("fixture", fixture), ("scenario", scenario), ("adapter_output", adapter_output)];
