#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use netmatrix_engine::{World, suites};

static WORLD: LazyLock<World> = LazyLock::new(|| suites::world(&netmatrix_engine::world::node_names(3), true));

// Any case file becomes cases or an error naming the file and field; nothing panics.
fuzz_target!(|text: &str| {
    let _ = netmatrix_engine::cases_file::parse("c.yaml", text, &WORLD);
});
