//! Issue 20, item 11: 640k Namespace documents in 50 MB took 1.55 GB to report one bad label
//! (scaled down here: this stream grew the peak by 51 MB before, 9 MB now).

mod common;

#[test]
fn an_error_at_the_end_of_a_long_stream_costs_a_few_times_the_input() {
    let stream: String = (0..common::COUNT).map(|i| format!("---\n{}", common::namespace(i, ""))).collect();
    common::check_peak(&stream, "ns.yaml: document 19999 (Namespace ns-019998): field metadata.labels: invalid value");
}
