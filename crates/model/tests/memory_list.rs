//! Issue 20, item 11, as `kubectl get namespaces -o yaml` writes it: one `List` document.

mod common;

#[test]
fn an_error_at_the_end_of_a_long_list_costs_a_few_times_the_input() {
    let items: String = (0..common::COUNT).map(|i| format!("- {}", common::namespace(i, "  "))).collect();
    let list = format!("apiVersion: v1\nkind: List\nitems:\n{items}");
    common::check_peak(&list, "ns.yaml: document 1 (Namespace ns-019998): field items[19998].metadata.labels: invalid value");
}
