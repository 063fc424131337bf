//! Dependency cycles: systems that depend on each other in a ring cannot be restored one after
//! another. One problem per strongly connected group, showing its shortest cycle.

use std::collections::{BTreeMap, BTreeSet};

use super::{At, Ctx, i, k};
use crate::policy::load::Section;

/// One problem per strongly connected group of systems (a cycle, or cycles sharing systems),
/// showing one cycle through its smallest id, reported at that system's `depends-on`.
pub(super) fn check_cycles(ctx: &mut Ctx<'_, '_>) {
    let systems = &ctx.parsed.systems;
    let ids: Vec<&str> = systems.keys().map(|id| id.as_str()).collect();
    let index: BTreeMap<&str, usize> = ids.iter().enumerate().map(|(n, id)| (*id, n)).collect();
    let edges: Vec<Vec<usize>> = systems
        .values()
        .map(|s| {
            s.depends_on
                .iter()
                .filter(|d| *d != &s.id)
                .filter_map(|d| index.get(d.as_str()).copied())
                .collect()
        })
        .collect();

    for component in strongly_connected(&edges) {
        if component.len() < 2 {
            continue;
        }
        let members: BTreeSet<usize> = component.iter().copied().collect();
        let Some(&start) = members.first() else {
            continue;
        };
        let Some(cycle) = shortest_cycle(&edges, &members, start) else {
            continue;
        };
        let names: Vec<&str> = cycle.iter().filter_map(|n| ids.get(*n).copied()).collect();
        let Some(next) = names.get(1).copied() else {
            continue;
        };
        let Some(first) = names.first().copied() else {
            continue;
        };
        let position = systems
            .get(first)
            .and_then(|s| s.depends_on.iter().position(|d| d.as_str() == next))
            .unwrap_or(0);
        ctx.report(
            Section::Systems,
            first,
            &[k("depends-on"), i(position)],
            At::Value,
            format!("dependency cycle: {}", names.join(" -> ")),
            Some("systems in a cycle cannot be restored one after another; remove one of these dependencies".into()),
        );
    }
}

/// Tarjan's algorithm, iterative (policies may hold tens of thousands of systems).
fn strongly_connected(edges: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let n = edges.len();
    let mut index = vec![usize::MAX; n];
    let mut low = vec![0; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut next = 0;
    let mut components = Vec::new();
    for root in 0..n {
        if index[root] != usize::MAX {
            continue;
        }
        let mut work: Vec<(usize, usize)> = vec![(root, 0)];
        while let Some((v, child)) = work.pop() {
            if child == 0 {
                index[v] = next;
                low[v] = next;
                next += 1;
                stack.push(v);
                on_stack[v] = true;
            }
            if let Some(&w) = edges[v].get(child) {
                work.push((v, child + 1));
                if index[w] == usize::MAX {
                    work.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            if low[v] == index[v] {
                let mut component = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    component.push(w);
                    if w == v {
                        break;
                    }
                }
                components.push(component);
            }
            if let Some(&(parent, _)) = work.last() {
                low[parent] = low[parent].min(low[v]);
            }
        }
    }
    components
}

/// The shortest path from `start` back to itself inside `members` (breadth first), as the list
/// of nodes with `start` at both ends.
fn shortest_cycle(
    edges: &[Vec<usize>],
    members: &BTreeSet<usize>,
    start: usize,
) -> Option<Vec<usize>> {
    let mut previous: BTreeMap<usize, usize> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(v) = queue.pop_front() {
        for &w in edges.get(v)? {
            if !members.contains(&w) {
                continue;
            }
            if w == start {
                let mut path = vec![v];
                let mut at = v;
                while at != start {
                    at = *previous.get(&at)?;
                    path.push(at);
                }
                path.reverse();
                path.push(start);
                return Some(path);
            }
            if let std::collections::btree_map::Entry::Vacant(e) = previous.entry(w) {
                e.insert(v);
                queue.push_back(w);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cycles_table() {
        // edges as adjacency lists; expected: the cycles found, as node lists.
        type Lists<'a> = &'a [&'a [usize]];
        let cases: &[(Lists<'_>, Lists<'_>)] = &[
            (&[&[1], &[2], &[]], &[]),
            (&[&[1], &[0]], &[&[0, 1, 0]]),
            (&[&[1], &[2], &[0]], &[&[0, 1, 2, 0]]),
            (&[&[1], &[2], &[1], &[3]], &[&[1, 2, 1]]),
            (&[&[1, 2], &[0], &[0]], &[&[0, 1, 0]]),
            (&[&[1], &[0], &[3], &[2]], &[&[0, 1, 0], &[2, 3, 2]]),
        ];
        for (edges, want) in cases {
            let edges: Vec<Vec<usize>> = edges.iter().map(|e| e.to_vec()).collect();
            let mut got: Vec<Vec<usize>> = strongly_connected(&edges)
                .into_iter()
                .filter(|c| c.len() > 1)
                .filter_map(|c| {
                    let members: BTreeSet<usize> = c.into_iter().collect();
                    let start = *members.first()?;
                    shortest_cycle(&edges, &members, start)
                })
                .collect();
            got.sort();
            let want: Vec<Vec<usize>> = want.iter().map(|c| c.to_vec()).collect();
            assert_eq!(got, want, "{edges:?}");
        }
    }
}
