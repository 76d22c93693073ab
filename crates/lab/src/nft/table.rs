//! Scripts that replace or update one nftables table in a single `nft -f` transaction; shared by
//! the node scripts ([`super::Scripts`]) and the router's ([`crate::fault::router_script`]).

use std::collections::BTreeMap;

/// Opens a script that replaces `table` in one transaction (the leading `table` line makes the
/// delete valid when the table does not exist yet); the caller adds the body and the closing `}`.
pub fn replace_table(table: &str) -> String {
    format!("table inet {table}\ndelete table inet {table}\ntable inet {table} {{\n")
}

/// A script that turns the applied ruleset `old` into `new` (both from [`super::script`] for `table`)
/// in one transaction, touching only the chains and sets whose rules differ (comments are not
/// kept by the kernel): changed chains are flushed and refilled, chains and sets no longer
/// rendered are deleted, new ones added. Empty when nothing but comments differ. `None` when that does not do: a set's content or a
/// chain's type (hook, priority) changed, or a script is not in the expected form; the caller
/// then replaces the table.
pub fn update(table: &str, old: &str, new: &str) -> Option<String> {
    let (old, new) = (items(table, old)?, items(table, new)?);
    let (mut flush, mut delete, mut add) = (String::new(), String::new(), String::new());
    for (&(kind, name), &text) in &old {
        match new.get(&(kind, name)) {
            Some(&now) if code(now).eq(code(text)) => {}
            Some(&now) if kind == "chain" && chain_type(now) == chain_type(text) => {
                flush.push_str(&format!("flush chain inet {table} {name}\n"));
                add.push_str(now);
            }
            Some(_) => return None,
            None => {
                // Emptied first, so that none of its rules still names what is deleted below.
                if kind == "chain" {
                    flush.push_str(&format!("flush chain inet {table} {name}\n"));
                }
                delete.push_str(&format!("delete {kind} inet {table} {name}\n"));
            }
        }
    }
    for (key, &text) in &new {
        if !old.contains_key(key) {
            add.push_str(text);
        }
    }
    // Every rule that named a deleted chain or set was in a chain that changed, so it is
    // flushed before the deletes, all in the same transaction.
    Some(if flush.is_empty() && delete.is_empty() && add.is_empty() { String::new() } else { format!("{flush}{delete}table inet {table} {{\n{add}}}\n") })
}

/// The chains and sets of a script from [`super::script`] (or [`crate::fault::router_script`]):
/// (`chain` or `set`, name) to its text, declaration to closing brace. Comments between them
/// are left out.
fn items<'s>(table: &str, script: &'s str) -> Option<BTreeMap<(&'s str, &'s str), &'s str>> {
    let body = script.strip_prefix(replace_table(table).as_str())?.strip_suffix("}\n")?;
    let mut items = BTreeMap::new();
    let (mut open, mut depth, mut offset) = (None, 0, 0);
    for line in body.split_inclusive('\n') {
        let start = offset;
        offset += line.len();
        let code = line.trim();
        if code.starts_with('#') {
            continue;
        }
        if open.is_none() {
            let (kind, name) = code.strip_suffix(" {")?.split_once(' ')?;
            if !matches!(kind, "chain" | "set") {
                return None;
            }
            open = Some((start, (kind, name)));
        }
        depth += code.matches('{').count() as isize - code.matches('}').count() as isize;
        if depth == 0 {
            let (start, key) = open.take()?;
            if items.insert(key, &body[start..offset]).is_some() {
                return None;
            }
        }
    }
    open.is_none().then_some(items)
}

/// The lines of `text` that are not comments, trimmed.
fn code(text: &str) -> impl Iterator<Item = &str> {
    text.lines().map(str::trim).filter(|l| !l.starts_with('#'))
}

/// A chain's `type ... hook ... priority ...` line: `None` for a regular chain.
fn chain_type(text: &str) -> Option<&str> {
    code(text).nth(1).filter(|l| l.starts_with("type "))
}
