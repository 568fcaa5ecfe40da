//! coherence_sim::fuzz::adapter_output: any bytes give a value or an error, never a panic or a hang.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| coherence_sim::fuzz::adapter_output(data));
