//! `cargo run --release -p netmatrix-model --example load_speed -- FILE...`: how fast the loader
//! reads each manifest file (JSON when its name ends in `.json`, else YAML), against a bare parse
//! of the same text in the same run, and what it allocates per MB of input (bench/load-speed.sh).
//!
//! Times are the thread's CPU time (the least of several runs), not the wall clock: on a shared,
//! loaded host the wall clock measures the other tenants.

// A counting global allocator and the CPU clock need `unsafe` (the library itself has none).
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Relaxed);
        BYTES.fetch_add(layout.size() as u64, Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // A growing buffer: counted as one allocation of the new size (what a copy would cost).
        ALLOCATIONS.fetch_add(1, Relaxed);
        BYTES.fetch_add(new_size as u64, Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[repr(C)]
struct Timespec {
    sec: i64,
    nsec: i64,
}

unsafe extern "C" {
    fn clock_gettime(clock: i32, time: *mut Timespec) -> i32;
}

/// The calling thread's CPU time (CLOCK_THREAD_CPUTIME_ID).
fn thread_cpu() -> Duration {
    let mut t = Timespec { sec: 0, nsec: 0 };
    let rc = unsafe { clock_gettime(3, &mut t) };
    assert_eq!(rc, 0, "clock_gettime");
    Duration::new(t.sec as u64, t.nsec as u32)
}

/// What one way of reading costs: the least CPU time of its runs, and what one run allocates.
struct Cost {
    cpu: Duration,
    allocations: u64,
    bytes: u64,
}

/// Runs `f` at least 3 times and for at least `budget` of CPU time (at most 50 times). What `f`
/// returns is dropped after the clock stops: `analyze` never drops what it loaded (the process
/// exits), and freeing is the allocator's cost, not the reader's.
fn measure<T>(budget: Duration, mut f: impl FnMut() -> T) -> Cost {
    let (mut best, mut total, mut runs) = (Duration::MAX, Duration::ZERO, 0);
    let (mut allocations, mut bytes) = (0, 0);
    while runs < 3 || (total < budget && runs < 50) {
        let (a, b) = (ALLOCATIONS.load(Relaxed), BYTES.load(Relaxed));
        let start = thread_cpu();
        let made = f();
        let took = thread_cpu() - start;
        drop(std::hint::black_box(made));
        (allocations, bytes) = (ALLOCATIONS.load(Relaxed) - a, BYTES.load(Relaxed) - b);
        best = best.min(took);
        total += took;
        runs += 1;
    }
    Cost { cpu: best, allocations, bytes }
}

fn main() {
    let files: Vec<String> = std::env::args().skip(1).collect();
    if files.is_empty() {
        eprintln!("usage: load_speed FILE...");
        std::process::exit(2);
    }
    let budget = Duration::from_millis(std::env::var("BUDGET_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(2000));
    println!("load: netmatrix_model::parse_str; base: serde_json::from_str::<Value> (JSON), serde-saphyr to Value per document (YAML);");
    println!("events: granit-parser (serde-saphyr's parser) to events, nothing built; allocations are the load's, per MB of input;");
    println!("typed: serde_json straight into the loader's typed mirrors of the objects (JSON), nothing checked or built;");
    println!("typed+build: both one after the other, a loader that would only read typed objects and make its output;");
    println!("build: the loaded objects alone, copied (Cluster::clone): what any loader of this model spends on its output;");
    println!("times are thread CPU, the least of several runs, without dropping what was made (analyze never drops it)");
    println!(
        "{:<28} {:>7} {:>9} {:>8} {:>9} {:>9} {:>7} {:>11} {:>10} {:>11} {:>10} {:>11} {:>10} {:>8}",
        "input",
        "MB",
        "load_ms",
        "MB/s",
        "base_ms",
        "base_MB/s",
        "ratio",
        "events_MB/s",
        "typed_MB/s",
        "typed+build",
        "allocs/MB",
        "alloc_MB/MB",
        "build_MB/s",
        "of_build"
    );
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{file}: {e}"));
        let name = std::path::Path::new(file).file_name().map_or(file.clone(), |n| n.to_string_lossy().into_owned());
        let json = name.ends_with(".json");
        let load = measure(budget, || netmatrix_model::parse_str(&name, &text).unwrap_or_else(|e| panic!("{e}")));
        let loaded = netmatrix_model::parse_str(&name, &text).expect("loaded above");
        let build = measure(budget, || loaded.clone());
        drop(loaded);
        // The baseline: the same text parsed to generic values, nothing checked or built.
        let base = if json {
            measure(budget, || serde_json::from_str::<serde_json::Value>(&text).expect("JSON"))
        } else {
            measure(budget, || {
                for document in serde_saphyr::read::<_, serde_json::Value>(&mut text.as_bytes()) {
                    drop(std::hint::black_box(document.expect("YAML")));
                }
            })
        };
        // JSON: serde_json straight into the loader's typed mirrors, nothing checked or built.
        let typed = json.then(|| measure(budget, || netmatrix_model::serde_json_typed_items(&text).expect("a JSON List")));
        let events = (!json).then(|| {
            measure(budget, || {
                let mut parser = serde_saphyr::granit_parser::Parser::new_from_str(&text);
                while let Some(event) = parser.next_event() {
                    drop(std::hint::black_box(event.expect("YAML")));
                }
            })
        });
        let mb = text.len() as f64 / 1e6;
        let speed = |c: &Cost| mb / c.cpu.as_secs_f64();
        println!(
            "{:<28} {:>7.2} {:>9.1} {:>8.1} {:>9.1} {:>9.1} {:>6.2}x {:>11} {:>10} {:>11} {:>10.0} {:>11.2} {:>10.1} {:>7.2}x",
            name,
            mb,
            load.cpu.as_secs_f64() * 1e3,
            speed(&load),
            base.cpu.as_secs_f64() * 1e3,
            speed(&base),
            speed(&load) / speed(&base),
            events.map_or("-".to_owned(), |e| format!("{:.1}", speed(&e))),
            typed.as_ref().map_or("-".to_owned(), |t| format!("{:.1}", speed(t))),
            typed.map_or("-".to_owned(), |t| format!("{:.1}", 1.0 / (1.0 / speed(&t) + 1.0 / speed(&build)))),
            load.allocations as f64 / mb,
            load.bytes as f64 / 1e6 / mb,
            speed(&build),
            speed(&load) / speed(&build),
        );
    }
    parsers(&files, budget);
}

/// Reads a text, returns how many events (or nodes) it read.
type Run = fn(&str) -> usize;

/// YAML parsers, events only (each event dropped as it comes: what a tape builder would be fed),
/// on the YAML inputs, in MB/s of thread CPU time. `fast path` is the loader's own reader to its
/// tape alone (no objects built; `-` where it steps aside for serde-saphyr).
fn parsers(files: &[String], budget: Duration) {
    #[allow(unused_mut)]
    let mut candidates: Vec<(&str, Run)> = vec![("fast path", |t| netmatrix_model::yaml_fast_path_nodes(t).unwrap_or(usize::MAX)), ("granit", granit)];
    #[cfg(feature = "bench-parsers")]
    candidates.extend(candidates::PURE);
    #[cfg(feature = "bench-libyaml")]
    candidates.push(("libyaml (C)", candidates::libyaml_c));
    println!();
    println!("YAML parsers, events only, MB/s (granit: serde-saphyr's parser; fast path: the loader's own, to its tape)");
    print!("{:<28}", "input");
    for (name, _) in &candidates {
        print!(" {name:>14}");
    }
    println!();
    for file in files.iter().filter(|f| !f.ends_with(".json")) {
        let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{file}: {e}"));
        let name = std::path::Path::new(file).file_name().map_or(file.clone(), |n| n.to_string_lossy().into_owned());
        let mb = text.len() as f64 / 1e6;
        print!("{name:<28}");
        for (_, run) in &candidates {
            if run(&text) == usize::MAX {
                print!(" {:>14}", "-");
                continue;
            }
            let cost = measure(budget, || {
                std::hint::black_box(run(&text));
            });
            print!(" {:>14.1}", mb / cost.cpu.as_secs_f64());
        }
        println!();
    }
}

fn granit(text: &str) -> usize {
    let mut parser = serde_saphyr::granit_parser::Parser::new_from_str(text);
    let mut n = 0;
    while let Some(event) = parser.next_event() {
        drop(std::hint::black_box(event.expect("YAML")));
        n += 1;
    }
    n
}

#[cfg(feature = "bench-parsers")]
mod candidates {
    use std::mem::MaybeUninit;

    pub(crate) const PURE: [(&str, super::Run); 4] =
        [("unsafe-libyaml", unsafe_libyaml), ("libyaml-safer", libyaml_safer), ("yaml-rust2", yaml_rust2), ("saphyr-parser", saphyr_parser)];

    fn unsafe_libyaml(text: &str) -> usize {
        use unsafe_libyaml::*;
        let mut n = 0;
        unsafe {
            let mut parser = MaybeUninit::<yaml_parser_t>::uninit();
            assert!(yaml_parser_initialize(parser.as_mut_ptr()).ok);
            let parser = parser.as_mut_ptr();
            yaml_parser_set_input_string(parser, text.as_ptr(), text.len() as _);
            let mut event = MaybeUninit::<yaml_event_t>::uninit();
            loop {
                assert!(yaml_parser_parse(parser, event.as_mut_ptr()).ok, "YAML");
                let end = (*event.as_ptr()).type_ == YAML_STREAM_END_EVENT;
                yaml_event_delete(event.as_mut_ptr());
                n += 1;
                if end {
                    break;
                }
            }
            yaml_parser_delete(parser);
        }
        n
    }

    fn libyaml_safer(text: &str) -> usize {
        let mut input = text.as_bytes();
        let mut parser = libyaml_safer::Parser::new();
        parser.set_input_string(&mut input);
        let mut n = 0;
        loop {
            let event = parser.parse().expect("YAML");
            n += 1;
            if event.data == libyaml_safer::EventData::StreamEnd {
                return n;
            }
            drop(std::hint::black_box(event));
        }
    }

    fn yaml_rust2(text: &str) -> usize {
        let mut parser = yaml_rust2::parser::Parser::new_from_str(text);
        let mut n = 0;
        loop {
            let (event, _) = parser.next_token().expect("YAML");
            n += 1;
            if event == yaml_rust2::parser::Event::StreamEnd {
                return n;
            }
            drop(std::hint::black_box(event));
        }
    }

    fn saphyr_parser(text: &str) -> usize {
        let mut parser = saphyr_parser::Parser::new_from_str(text);
        let mut n = 0;
        while let Some(event) = parser.next_event() {
            drop(std::hint::black_box(event.expect("YAML")));
            n += 1;
        }
        n
    }

    #[cfg(feature = "bench-libyaml")]
    pub(crate) fn libyaml_c(text: &str) -> usize {
        use libyaml_sys::*;
        let mut n = 0;
        unsafe {
            let mut parser = MaybeUninit::<yaml_parser_t>::uninit();
            assert_eq!(yaml_parser_initialize(parser.as_mut_ptr()), 1);
            let parser = parser.as_mut_ptr();
            yaml_parser_set_input_string(parser, text.as_ptr(), text.len());
            let mut event = MaybeUninit::<yaml_event_t>::uninit();
            loop {
                assert_eq!(yaml_parser_parse(parser, event.as_mut_ptr()), 1, "YAML");
                let end = (*event.as_ptr()).type_ == YAML_STREAM_END_EVENT;
                yaml_event_delete(event.as_mut_ptr());
                n += 1;
                if end {
                    break;
                }
            }
            yaml_parser_delete(parser);
        }
        n
    }
}
