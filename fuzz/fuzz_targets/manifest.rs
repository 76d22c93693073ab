#![no_main]

use libfuzzer_sys::fuzz_target;

// Any text loads or fails with located errors; nothing panics or overflows the stack.
fuzz_target!(|text: &str| {
    let file = if text.trim_start().starts_with('{') { "f.json" } else { "f.yaml" };
    let _ = netmatrix_model::parse_str(file, text);
});
