#![no_main]
// The property checks live in checks/ (shared with tests/suite/fuzz_replay.rs).
libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check("refresh_file")(data));
