//! The graph of a workflow: resolved edges, loops and the analyses rules need
//! (reachability, loop bodies, which steps exclude each other, terminals).

use std::collections::{BTreeMap, BTreeSet};

use crate::attr::After;
use crate::ctxt::Errors;
use crate::model::{pattern_bindings, Model};
use crate::suggest;

/// How a step waits for its upstream steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Join {
    Start,
    Single,
    All,
    Any,
}

/// An edge `from -> to`.
#[derive(Clone, Copy)]
pub struct EdgeOut {
    pub to: usize,
    /// The position of this edge among `to`'s upstream steps.
    pub position: usize,
    /// For a branch edge, its arm among `from`'s branches.
    pub arm: Option<u16>,
    pub back: bool,
}

/// The resolved graph; indices are positions in `Model::steps`.
pub struct Graph {
    pub join: Vec<Join>,
    pub upstream: Vec<Vec<usize>>,
    pub downstream: Vec<Vec<EdgeOut>>,
    /// Branch children of each step, in declaration order (arm = position).
    pub arms: Vec<Vec<usize>>,
    /// For loop heads: the other steps of the loop.
    pub loop_body: Vec<Vec<usize>>,
    /// Steps whose output can be the workflow's output.
    pub outputs: Vec<usize>,
}

/// Conditions under which a step runs: for each branch point, the arms that allow it.
type Guard = BTreeMap<usize, BTreeSet<u16>>;

impl Graph {
    /// Resolves and checks the graph. Returns `None` when an error makes later checks
    /// meaningless (unknown steps, cycles).
    pub fn build(model: &Model, errors: &mut Errors) -> Option<Graph> {
        let n = model.steps.len();
        let names = model.step_names();
        let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut join = vec![Join::Start; n];
        let mut upstream = vec![Vec::new(); n];
        let mut resolved = true;
        for (i, step) in model.steps.iter().enumerate() {
            let Some(after) = &step.attr.after else {
                continue;
            };
            join[i] = match after.value {
                After::Single(_) => Join::Single,
                After::All(_) => Join::All,
                After::Any(_) | After::First(_) => Join::Any,
            };
            let place = match after.value {
                After::Any(_) => " in `any(..)`",
                After::First(_) => " in `first(..)`",
                _ => " in `after`",
            };
            let others: Vec<&str> = name_refs
                .iter()
                .copied()
                .filter(|n| step.ident != n)
                .collect();
            for ident in after.value.names() {
                match model.step_index(ident) {
                    Some(u) if upstream[i].contains(&u) => {
                        errors.spanned(ident, format!("step `{ident}` is listed twice in `after`"));
                    }
                    Some(u) => upstream[i].push(u),
                    None => {
                        errors.spanned(
                            ident,
                            suggest::unknown("step", &ident.to_string(), place, &others),
                        );
                        resolved = false;
                    }
                }
            }
        }
        check_duplicate_names(model, errors);
        if !resolved {
            return None;
        }

        let reach = reachability(&upstream);
        // Back edges: `u -> h` into a loop head `h` that `u` is reachable from.
        let mut back: BTreeSet<(usize, usize)> = BTreeSet::new();
        for (h, step) in model.steps.iter().enumerate() {
            let Some(max) = &step.attr.max_passes else {
                continue;
            };
            let back_from: Vec<usize> = upstream[h]
                .iter()
                .copied()
                .filter(|&u| reach[h].contains(&u) || u == h)
                .collect();
            if back_from.is_empty() {
                errors.at(max.key, format!("`max_passes` on `{}`, but no step loops back to it: a loop head waits with `after = any(entry, back)`, where `back` is a step downstream of it", step.ident));
                continue;
            }
            if join[h] != Join::Any {
                errors.at(max.key, format!("loop head `{}` must wait with `after = any(entry, back)`: its entry and its back edge never arrive together", step.ident));
            }
            if back_from.len() == upstream[h].len() {
                errors.at(max.key, format!("loop head `{}` has no entry: besides the back edge, `after = any(..)` must list a step outside the loop", step.ident));
            }
            back.extend(back_from.into_iter().map(|u| (u, h)));
        }
        if let Some(cycle) = find_cycle(&upstream, &back) {
            let path: Vec<String> = cycle
                .iter()
                .map(|&i| format!("`{}`", model.steps[i].ident))
                .collect();
            let first = cycle[0];
            let closing = cycle[cycle.len() - 2];
            let ident = model.after_ident(first, closing);
            errors.spanned(
                &ident,
                format!(
                    "cycle without a declared loop: {}; to loop, give the head `after = any(entry, back)` and `max_passes = N`",
                    path.join(" -> ")
                ),
            );
            return None;
        }

        let mut arms = vec![Vec::new(); n];
        for (i, step) in model.steps.iter().enumerate() {
            if step.attr.branch.is_some() && join[i] == Join::Single {
                arms[upstream[i][0]].push(i);
            }
        }
        let mut downstream = vec![Vec::new(); n];
        for (to, ups) in upstream.iter().enumerate() {
            for (position, &from) in ups.iter().enumerate() {
                let arm = arms[from].iter().position(|&c| c == to).map(|a| a as u16);
                let arm = if join[to] == Join::Single { arm } else { None };
                downstream[from].push(EdgeOut {
                    to,
                    position,
                    arm,
                    back: back.contains(&(from, to)),
                });
            }
        }

        let loop_body = loop_bodies(n, &upstream, &back);
        check_loop_boundaries(model, &upstream, &downstream, &loop_body, errors);
        let order = topological(&upstream, &back);
        let guards = guards(&order, &join, &upstream, &arms, &back);
        check_all_joins(model, &join, &upstream, &guards, errors);
        let outputs = output_steps(model, &downstream, &guards, errors);
        Some(Graph {
            join,
            upstream,
            downstream,
            arms,
            loop_body,
            outputs,
        })
    }

    /// Number of values the step receives.
    pub fn arity(&self, model: &Model, step: usize) -> usize {
        match self.join[step] {
            Join::Start | Join::Any => 1,
            Join::All => self.upstream[step].len(),
            Join::Single => match &model.steps[step].attr.branch {
                Some(b) => pattern_bindings(&b.value).len(),
                None => 1,
            },
        }
    }
}

/// A loop's steps run once per iteration, the rest once per run; an edge between the two
/// would be consumed a different number of times than it is produced, so only the head's
/// entry edges go in and only branches go out.
fn check_loop_boundaries(
    model: &Model,
    upstream: &[Vec<usize>],
    downstream: &[Vec<EdgeOut>],
    loop_body: &[Vec<usize>],
    errors: &mut Errors,
) {
    for (head, body) in loop_body.iter().enumerate() {
        if body.is_empty() {
            continue; // not a loop head
        }
        let inside = |s: usize| s == head || body.contains(&s);
        let head_ident = &model.steps[head].ident;
        for &member in body {
            for &u in &upstream[member] {
                if !inside(u) {
                    let step = &model.steps[member];
                    let at = model.after_ident(member, u);
                    errors.spanned(&at, format!(
                        "step `{}` runs on every iteration of the loop of `{head_ident}`, but `{}` is outside the loop and runs once; pass its output through the loop head's input instead",
                        step.ident, model.steps[u].ident
                    ));
                }
            }
        }
        for from in std::iter::once(head).chain(body.iter().copied()) {
            for edge in &downstream[from] {
                if !inside(edge.to) && edge.arm.is_none() {
                    let target = &model.steps[edge.to];
                    let at = model.after_ident(edge.to, from);
                    errors.spanned(&at, format!(
                        "step `{}` is outside the loop of `{head_ident}` but waits for `{}`, which runs on every iteration; leave the loop through a `branch` of a step in it",
                        target.ident, model.steps[from].ident
                    ));
                }
            }
        }
    }
}

fn check_duplicate_names(model: &Model, errors: &mut Errors) {
    for (i, step) in model.steps.iter().enumerate() {
        if let Some(first) = model.steps[..i].iter().find(|s| s.name == step.name) {
            let span = step
                .attr
                .name
                .as_ref()
                .map_or(step.ident.span(), |n| n.value_span);
            errors.at(span, format!("duplicate step name `{}`: step `{}` already uses it; step names must be unique", step.name, first.ident));
        }
    }
}

/// `reach[a]`: every step reachable from `a` following edges downstream.
fn reachability(upstream: &[Vec<usize>]) -> Vec<BTreeSet<usize>> {
    let n = upstream.len();
    let mut down = vec![Vec::new(); n];
    for (to, ups) in upstream.iter().enumerate() {
        for &from in ups {
            down[from].push(to);
        }
    }
    (0..n)
        .map(|start| {
            let mut seen = BTreeSet::new();
            let mut stack = down[start].clone();
            while let Some(s) = stack.pop() {
                if seen.insert(s) {
                    stack.extend(&down[s]);
                }
            }
            seen
        })
        .collect()
}

/// A cycle over forward edges, as a path that starts and ends at the same step.
fn find_cycle(upstream: &[Vec<usize>], back: &BTreeSet<(usize, usize)>) -> Option<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    fn visit(
        s: usize,
        upstream: &[Vec<usize>],
        back: &BTreeSet<(usize, usize)>,
        marks: &mut [Mark],
        stack: &mut Vec<usize>,
    ) -> Option<Vec<usize>> {
        marks[s] = Mark::Active;
        stack.push(s);
        for &u in &upstream[s] {
            if back.contains(&(u, s)) {
                continue;
            }
            match marks[u] {
                Mark::Active => {
                    // `stack` runs downstream-to-upstream; the cycle is u -> ... -> s -> u.
                    let at = stack.iter().position(|&x| x == u).unwrap_or(0);
                    let mut cycle: Vec<usize> = stack[at..].iter().rev().copied().collect();
                    cycle.rotate_right(1);
                    cycle.push(cycle[0]);
                    return Some(cycle);
                }
                Mark::New => {
                    if let Some(c) = visit(u, upstream, back, marks, stack) {
                        return Some(c);
                    }
                }
                Mark::Done => {}
            }
        }
        stack.pop();
        marks[s] = Mark::Done;
        None
    }
    let mut marks = vec![Mark::New; upstream.len()];
    (0..upstream.len()).find_map(|s| {
        (marks[s] == Mark::New)
            .then(|| visit(s, upstream, back, &mut marks, &mut Vec::new()))
            .flatten()
    })
}

/// Steps in topological order over forward edges (back edges removed; the rest is acyclic).
fn topological(upstream: &[Vec<usize>], back: &BTreeSet<(usize, usize)>) -> Vec<usize> {
    let n = upstream.len();
    let mut pending = vec![0usize; n];
    let mut down = vec![Vec::new(); n];
    for (s, ups) in upstream.iter().enumerate() {
        for &u in ups.iter().filter(|&&u| !back.contains(&(u, s))) {
            pending[s] += 1;
            down[u].push(s);
        }
    }
    let mut order: Vec<usize> = (0..n).filter(|&s| pending[s] == 0).collect();
    let mut next = 0;
    while let Some(&done) = order.get(next) {
        next += 1;
        for &s in &down[done] {
            pending[s] -= 1;
            if pending[s] == 0 {
                order.push(s);
            }
        }
    }
    order
}

/// For each loop head: the steps on a path from it to one of its back edges.
fn loop_bodies(
    n: usize,
    upstream: &[Vec<usize>],
    back: &BTreeSet<(usize, usize)>,
) -> Vec<Vec<usize>> {
    let mut bodies = vec![Vec::new(); n];
    let forward: Vec<Vec<usize>> = (0..n)
        .map(|s| {
            upstream[s]
                .iter()
                .copied()
                .filter(|&u| !back.contains(&(u, s)))
                .collect()
        })
        .collect();
    let reach = reachability(&forward);
    for &(source, head) in back {
        for s in 0..n {
            let on_path = s != head
                && (reach[head].contains(&s))
                && (s == source || reach[s].contains(&source));
            if on_path && !bodies[head].contains(&s) {
                bodies[head].push(s);
            }
        }
    }
    for body in &mut bodies {
        body.sort_unstable();
    }
    bodies
}

/// The condition of each step, over forward edges, or `None` if it can never run.
fn guards(
    order: &[usize],
    join: &[Join],
    upstream: &[Vec<usize>],
    arms: &[Vec<usize>],
    back: &BTreeSet<(usize, usize)>,
) -> Vec<Option<Guard>> {
    let mut guards: Vec<Option<Guard>> = vec![Some(Guard::new()); join.len()];
    for &s in order {
        let ups: Vec<usize> = upstream[s]
            .iter()
            .copied()
            .filter(|&u| !back.contains(&(u, s)))
            .collect();
        guards[s] = match join[s] {
            Join::Start => Some(Guard::new()),
            Join::Single => {
                let u = ups[0];
                guards[u]
                    .clone()
                    .and_then(|g| match arms[u].iter().position(|&c| c == s) {
                        Some(arm) => conjoin(g, &Guard::from([(u, BTreeSet::from([arm as u16]))])),
                        None => Some(g),
                    })
            }
            Join::All => ups
                .iter()
                .try_fold(Guard::new(), |acc, &u| conjoin(acc, guards[u].as_ref()?)),
            Join::Any => {
                let alive: Vec<&Guard> = ups.iter().filter_map(|&u| guards[u].as_ref()).collect();
                alive.split_first().map(|(first, rest)| {
                    let mut g = (*first).clone();
                    g.retain(|bp, _| rest.iter().all(|o| o.contains_key(bp)));
                    for (bp, allowed) in g.iter_mut() {
                        for other in rest {
                            allowed.extend(&other[bp]);
                        }
                    }
                    g
                })
            }
        };
    }
    guards
}

fn conjoin(mut a: Guard, b: &Guard) -> Option<Guard> {
    for (bp, allowed) in b {
        let entry = a.entry(*bp).or_insert_with(|| allowed.clone());
        entry.retain(|arm| allowed.contains(arm));
        if entry.is_empty() {
            return None;
        }
    }
    Some(a)
}

/// The branch point on which `a` and `b` take different arms, if any.
fn exclusive_at(a: &Guard, b: &Guard) -> Option<usize> {
    a.iter().find_map(|(bp, arms_a)| {
        let arms_b = b.get(bp)?;
        arms_a.is_disjoint(arms_b).then_some(*bp)
    })
}

fn check_all_joins(
    model: &Model,
    join: &[Join],
    upstream: &[Vec<usize>],
    guards: &[Option<Guard>],
    errors: &mut Errors,
) {
    for (s, step) in model.steps.iter().enumerate() {
        if join[s] != Join::All {
            continue;
        }
        let ups = &upstream[s];
        'pairs: for (i, &a) in ups.iter().enumerate() {
            for &b in &ups[i + 1..] {
                let (Some(ga), Some(gb)) = (&guards[a], &guards[b]) else {
                    continue;
                };
                if let Some(bp) = exclusive_at(ga, gb) {
                    let ident = &step
                        .attr
                        .after
                        .as_ref()
                        .map(|a| {
                            a.value.names()[ups.iter().position(|&x| x == b).unwrap_or(0)].clone()
                        })
                        .unwrap_or_else(|| step.ident.clone());
                    errors.spanned(ident, format!(
                        "step `{}` waits for all of `{}` and `{}`, but they are on different branches of `{}` and never both run, so `{}` could never run; use `after = any({}, {})` to run after whichever ran",
                        step.ident, model.steps[a].ident, model.steps[b].ident, model.steps[bp].ident, step.ident, model.steps[a].ident, model.steps[b].ident
                    ));
                    break 'pairs;
                }
            }
        }
    }
}

/// The steps that can produce the workflow's output, checking there is no ambiguity.
fn output_steps(
    model: &Model,
    downstream: &[Vec<EdgeOut>],
    guards: &[Option<Guard>],
    errors: &mut Errors,
) -> Vec<usize> {
    let marked: Vec<usize> = (0..model.steps.len())
        .filter(|&s| model.steps[s].attr.output.is_some())
        .collect();
    if let Some(&second) = marked.get(1) {
        let span = model.steps[second]
            .attr
            .output
            .unwrap_or(model.steps[second].ident.span());
        errors.at(
            span,
            format!(
                "only one step can be the workflow's `output`; `{}` is already marked",
                model.steps[marked[0]].ident
            ),
        );
    }
    if let Some(&one) = marked.first() {
        return vec![one];
    }
    let terminals: Vec<usize> = (0..model.steps.len())
        .filter(|&s| downstream[s].is_empty())
        .collect();
    for (i, &a) in terminals.iter().enumerate() {
        for &b in &terminals[i + 1..] {
            let exclusive = match (&guards[a], &guards[b]) {
                (Some(ga), Some(gb)) => exclusive_at(ga, gb).is_some(),
                _ => true,
            };
            if !exclusive {
                errors.spanned(&model.steps[b].ident, format!(
                    "steps `{}` and `{}` both end the workflow and can both run in one execution, so its output would be ambiguous; mark one `#[step(output)]`, or join them in a final step",
                    model.steps[a].ident, model.steps[b].ident
                ));
                return terminals;
            }
        }
    }
    terminals
}
