#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;

// Any batch is read completely or rejected with a message; what is read writes back to a
// batch that reads the same.
fuzz_target!(|text: &str| {
    if let Ok(requests) = netmatrix_probe::parse_batch(text, Duration::from_secs(1)) {
        let again = netmatrix_probe::parse_batch(&netmatrix_probe::batch_to_json(&requests), Duration::from_secs(1));
        assert_eq!(again.as_ref(), Ok(&requests), "{text:?}");
    }
});
