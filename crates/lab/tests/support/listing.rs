//! `nft list table` output made comparable between two kernels' tables.

/// The chains and sets of a listed table, each as its lines (indentation dropped), sorted: the
/// kernel lists them in the order they were added, which differs between a table updated in
/// place and one applied from scratch.
pub fn items(listing: &str) -> Vec<String> {
    let (mut items, mut current, mut depth) = (Vec::new(), String::new(), 0);
    // The first line opens the table, the last closes it.
    for line in listing.lines().skip(1) {
        let code = line.trim();
        depth += code.matches('{').count() as isize - code.matches('}').count() as isize;
        if depth < 0 {
            break;
        }
        current.push_str(code);
        current.push('\n');
        if depth == 0 {
            items.push(std::mem::take(&mut current));
        }
    }
    items.sort();
    items
}
