//! Where things are in a policy file: the key or value an error span belongs to, the span of a
//! key path inside an entry, and removing a key or element from an entry's TOML tree.
//!
//! A table's span covers only its header (`[systems.a]`), not its keys, so lookups search the
//! whole tree for the smallest enclosing span instead of descending by containment.

use std::ops::Range;

use toml::Spanned;
use toml::de::DeValue;

use super::Entry;
use crate::policy::problem::Seg;

/// The node an error span belongs to.
#[derive(Debug)]
pub(crate) struct Found<'t> {
    /// Keys and indices from the entry root.
    pub(crate) path: Vec<Seg>,
    /// Where to point: the key for key errors, else the value.
    pub(crate) span: Range<usize>,
    /// The value at that path (absent for the root).
    pub(crate) value: Option<&'t DeValue<'t>>,
}

fn contains(outer: &Range<usize>, inner: &Range<usize>) -> bool {
    outer.start <= inner.start && inner.end <= outer.end
}

/// Finds the smallest key or value whose span contains `span`. A table's span only covers its
/// header (`[systems.a]`), not its keys, so the whole tree is searched rather than descended.
pub(crate) fn locate<'t>(root: &'t Spanned<DeValue<'t>>, span: &Range<usize>) -> Option<Found<'t>> {
    fn walk<'t>(
        value: &'t DeValue<'t>,
        span: &Range<usize>,
        path: &mut Vec<Seg>,
        best: &mut Option<(usize, Found<'t>)>,
    ) {
        let consider = |candidate: &Range<usize>,
                        path: &[Seg],
                        value: &'t DeValue<'t>,
                        best: &mut Option<(usize, Found<'t>)>| {
            if contains(candidate, span) {
                let size = candidate.end - candidate.start;
                let better = match best {
                    None => true,
                    Some((s, f)) => size < *s || (size == *s && path.len() > f.path.len()),
                };
                if better {
                    *best = Some((
                        size,
                        Found {
                            path: path.to_vec(),
                            span: candidate.clone(),
                            value: Some(value),
                        },
                    ));
                }
            }
        };
        match value {
            DeValue::Table(table) => {
                for (k, v) in table.iter() {
                    path.push(Seg::Key(k.get_ref().to_string()));
                    consider(&k.span(), path, v.get_ref(), best);
                    consider(&v.span(), path, v.get_ref(), best);
                    walk(v.get_ref(), span, path, best);
                    path.pop();
                }
            }
            DeValue::Array(array) => {
                for (i, v) in array.iter().enumerate() {
                    path.push(Seg::Index(i));
                    consider(&v.span(), path, v.get_ref(), best);
                    walk(v.get_ref(), span, path, best);
                    path.pop();
                }
            }
            _ => {}
        }
    }
    let mut best = None;
    if contains(&root.span(), span) {
        best = Some((
            root.span().len(),
            Found {
                path: Vec::new(),
                span: root.span(),
                value: None,
            },
        ));
    }
    walk(root.get_ref(), span, &mut Vec::new(), &mut best);
    best.map(|(_, found)| found)
}

/// Removes the key or element at `path`; false if there is nothing there.
pub(super) fn remove(root: &mut Spanned<DeValue<'_>>, path: &[Seg]) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let mut node = root.get_mut();
    for seg in parents {
        node = match (node, seg) {
            (DeValue::Table(t), Seg::Key(k)) => match t.get_mut(k.as_str()) {
                Some(v) => v.get_mut(),
                None => return false,
            },
            (DeValue::Array(a), Seg::Index(i)) => match a.get_mut(*i) {
                Some(v) => v.get_mut(),
                None => return false,
            },
            _ => return false,
        };
    }
    match (node, last) {
        (DeValue::Table(t), Seg::Key(k)) => t.remove(k.as_str()).is_some(),
        (DeValue::Array(a), Seg::Index(i)) if *i < a.len() => {
            let old = std::mem::replace(a, toml::de::DeArray::new());
            for (j, v) in old.into_iter().enumerate() {
                if j != *i {
                    a.push(v);
                }
            }
            true
        }
        _ => false,
    }
}

/// The span to point at for `rel` inside an entry: the value (or, with `key`, the key) at the
/// deepest part of the path that exists; the entry's id if none does.
pub(crate) fn span_at(entry: &Entry<'_>, rel: &[Seg], key: bool) -> Range<usize> {
    let mut span = entry.key_span.clone();
    let mut node = entry.value.get_ref();
    for seg in rel {
        match (node, seg) {
            (DeValue::Table(t), Seg::Key(k)) => match t.get_key_value(k.as_str()) {
                Some((k, v)) => {
                    span = if key { k.span() } else { v.span() };
                    node = v.get_ref();
                }
                None => break,
            },
            (DeValue::Array(a), Seg::Index(i)) => match a.get(*i) {
                Some(v) => {
                    span = v.span();
                    node = v.get_ref();
                }
                None => break,
            },
            _ => break,
        }
    }
    span
}

/// True if the table at `rel` (a path in the file) inside the entry has `key`: whether a key
/// was written, where a default would look the same (`per-system = false` on a gate).
pub(crate) fn has_key_at(entry: &Entry<'_>, rel: &[Seg], key: &str) -> bool {
    let mut node = entry.value.get_ref();
    for seg in rel {
        let next = match (node, seg) {
            (DeValue::Table(t), Seg::Key(k)) => t.get(k.as_str()),
            (DeValue::Array(a), Seg::Index(i)) => a.get(*i),
            _ => None,
        };
        match next {
            Some(v) => node = v.get_ref(),
            None => return false,
        }
    }
    node.as_table().is_some_and(|t| t.contains_key(key))
}

/// True if the entry's table has `key` at its top level (to tell a default from a value given).
pub(crate) fn has_key(entry: &Entry<'_>, key: &str) -> bool {
    entry
        .value
        .get_ref()
        .as_table()
        .is_some_and(|t| t.contains_key(key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::problem::KeyPath;
    use toml::de::DeTable;

    #[test]
    fn locate_finds_the_smallest_node() {
        let text = "[systems.a]\nname = \"x\"\npaths = [\"/a\", 5]\n[[systems.a.schedules]]\njob = \"backup\"\n[[systems.a.schedules]]\njob = \"copy\"\ncron = \"x\"\n";
        let doc = DeTable::parse(text).unwrap();
        let systems = doc
            .get_ref()
            .get("systems")
            .unwrap()
            .get_ref()
            .as_table()
            .unwrap();
        let entry = systems.get("a").unwrap();
        let at = |needle: &str, nth: usize| {
            let start = text.match_indices(needle).nth(nth).unwrap().0;
            start..start + needle.len()
        };
        let show = |f: Option<Found<'_>>| f.map(|f| KeyPath(f.path).to_string());
        let cases = [
            (at("5", 0), Some("paths[1]".to_owned())),
            (at("\"/a\"", 0), Some("paths[0]".to_owned())),
            (at("name", 0), Some("name".to_owned())),
            (at("\"x\"", 1), Some("schedules[1].cron".to_owned())),
            (
                at("[[systems.a.schedules]]", 1),
                Some("schedules[1]".to_owned()),
            ),
            (at("[systems.a]", 0), Some(String::new())),
        ];
        for (span, want) in cases {
            assert_eq!(show(locate(entry, &span)), want, "{span:?}");
        }
    }
}
