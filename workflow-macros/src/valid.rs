//! Per-step rules that need the resolved graph: branches, `for_each`, arity, start steps,
//! compensations.

use crate::ctxt::Errors;
use crate::graph::{Graph, Join};
use crate::model::Model;
use crate::suggest;

/// Checks every rule; all problems go to `errors`.
pub fn check(model: &Model, graph: &Graph, errors: &mut Errors) {
    if !graph.join.contains(&Join::Start) {
        errors.spanned(
            &model.self_ty,
            format!(
                "workflow `{}` has no start step: at least one #[step] must have no `after`; it receives the workflow input",
                model.type_name
            ),
        );
    }
    for (i, step) in model.steps.iter().enumerate() {
        let ident = &step.ident;
        let join = graph.join[i];
        if let Some(branch) = &step.attr.branch {
            let found = graph.upstream[i].len();
            if join != Join::Single {
                errors.at(
                    branch.key,
                    format!("`branch` on `{ident}` needs exactly one upstream step (`after = step`), found {found}"),
                );
            }
            if step.attr.for_each.is_some() {
                errors.at(branch.key, format!("step `{ident}` cannot combine `branch` and `for_each`: branch on the upstream first, then map in a following step"));
            }
        }
        if let Some(span) = step.attr.for_each {
            if join != Join::Single {
                errors.at(span, format!("`for_each` on `{ident}` maps over one upstream's output: it needs `after = step`"));
            }
        }
        if let (Some(c), None) = (&step.attr.concurrency, step.attr.for_each) {
            errors.at(c.key, format!("`concurrency` limits the items of a `for_each` step, but `{ident}` has no `for_each`"));
        }
        let arity = graph.arity(model, i);
        if step.inputs.len() != arity {
            let delivered = match (join, &step.attr.branch) {
                (Join::Start, _) => "a start step receives the workflow input: 1 value".to_owned(),
                (Join::Single, Some(_)) => format!("its `branch` pattern binds {arity} value(s)"),
                (Join::Single, None) if step.attr.for_each.is_some() => {
                    "`for_each` passes 1 item per invocation".to_owned()
                }
                (Join::Single, None) | (Join::Any, _) => "`after` delivers 1 value".to_owned(),
                (Join::All, _) => {
                    format!("`after` delivers {arity} values, one per listed step, in order")
                }
            };
            let span = step.attr.after.as_ref().map_or(step.params_span, |a| {
                if join == Join::All {
                    a.key
                } else {
                    step.params_span
                }
            });
            errors.at(
                span,
                format!(
                    "step `{ident}` takes {} input parameter(s), but {delivered}",
                    step.inputs.len()
                ),
            );
        }
        if let (Some(deadline), None) = (&step.attr.deadline, &step.signal) {
            errors.at(deadline.key, format!("`deadline` bounds the wait for a signal, but step `{ident}` has no `Signal<T>` parameter"));
        }
        if let (Some(span), None) = (step.attr.item_results, step.attr.for_each) {
            errors.at(span, format!("`item_results` gives each `for_each` item's `Result` to the next step, but step `{ident}` has no `for_each`"));
        }
        if let (Some(_), Some(span)) = (&step.signal, step.attr.for_each) {
            errors.at(
                span,
                format!("step `{ident}` cannot both wait for a signal and use `for_each`"),
            );
        }
        check_saga(model, i, errors);
        check_fallback(model, i, errors);
        check_race(model, graph, i, errors);
        check_child(model, i, errors);
    }
}

/// `workflow = Child` (trybuild cases `child_*`): the child runs in the step's place, so the
/// step is declared without a body, takes the child's input as its one parameter and returns
/// the child's output (which rustc checks); a step without `workflow` needs a body.
fn check_child(model: &Model, i: usize, errors: &mut Errors) {
    use crate::attr::StepKind;
    let step = &model.steps[i];
    let ident = &step.ident;
    let Some(child) = &step.attr.workflow else {
        if step.body.is_none() {
            errors.spanned(ident, format!(
                "step `{ident}` has no body: only a step that runs a child workflow (`workflow = Child`) is declared without one"
            ));
        }
        return;
    };
    let child_name = child
        .value
        .segments
        .last()
        .map_or_else(String::new, |s| s.ident.to_string());
    if let Some(body) = step.body {
        errors.at(body, format!(
            "step `{ident}` runs child workflow `{child_name}` in its place, so it has no body: end its signature with `;` (`async fn {ident}(&self, input: In) -> Out;`)"
        ));
    }
    if step.attr.kind == StepKind::SagaStep {
        errors.at(step.attr.span, format!(
            "step `{ident}` runs child workflow `{child_name}`, which is undone by its own compensations: declare it with #[step], not #[saga_step]"
        ));
    }
    if step.takes_context || step.signal.is_some() {
        errors.at(step.params_span, format!(
            "step `{ident}` runs child workflow `{child_name}`: its only parameter is the child's input (no `&StepContext`, no `Signal<T>`)"
        ));
    } else if step.inputs.len() != 1 {
        errors.at(step.params_span, format!(
            "step `{ident}` runs child workflow `{child_name}`: it takes exactly one parameter after `&self`, the child's input, found {}",
            step.inputs.len()
        ));
    }
}

fn check_saga(model: &Model, i: usize, errors: &mut Errors) {
    use crate::attr::StepKind;
    let step = &model.steps[i];
    let Some(compensation) = &step.attr.compensation else {
        if step.attr.kind == StepKind::SagaStep {
            errors.at(
                step.attr.span,
                format!(
                    "saga step `{}` needs `compensation = method`: the method that undoes it",
                    step.ident
                ),
            );
        }
        return;
    };
    if let Some(span) = step.attr.for_each {
        if step.attr.item_results.is_some() {
            errors.at(span, format!("saga step `{}` cannot use `item_results`: each completed item is compensated, so a failed item must fail the step", step.ident));
        }
    }
    let method = &compensation.value;
    let Some(helper) = model.helpers.iter().find(|h| h.ident == *method) else {
        let names: Vec<String> = model.helpers.iter().map(|h| h.ident.to_string()).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let message = if model.step_index(method).is_some() {
            format!("`{method}` is a step; a compensation is a plain `async fn` method of the block (without #[step])")
        } else {
            suggest::unknown("compensation method", &method.to_string(), "", &refs)
        };
        errors.spanned(method, message);
        return;
    };
    if !helper.is_async {
        errors.spanned(
            &helper.ident,
            format!("compensation `{method}` must be an `async fn`"),
        );
    }
    if helper.inputs.len() != 1 {
        errors.spanned(&helper.ident, format!(
            "compensation `{method}` must take exactly one input, the output of step `{}` (after `&self` and an optional `&StepContext`), found {}",
            step.ident, helper.inputs.len()
        ));
    }
}

/// `on_failure = method` (trybuild case `fallback_wrong_type` for its output): a plain `async fn`
/// of the block taking the `StepError`; rustc checks that it returns the step's output type.
fn check_fallback(model: &Model, i: usize, errors: &mut Errors) {
    let step = &model.steps[i];
    let Some(fallback) = &step.attr.on_failure else {
        return;
    };
    let method = &fallback.value;
    let Some(helper) = model.helpers.iter().find(|h| h.ident == *method) else {
        let names: Vec<String> = model.helpers.iter().map(|h| h.ident.to_string()).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let message = if model.step_index(method).is_some() {
            format!("`{method}` is a step; a fallback is a plain `async fn` method of the block (without #[step])")
        } else {
            suggest::unknown("fallback method", &method.to_string(), "", &refs)
        };
        errors.spanned(method, message);
        return;
    };
    if !helper.is_async {
        errors.spanned(
            &helper.ident,
            format!("fallback `{method}` must be an `async fn`"),
        );
    }
    let with_inputs = step.inputs.len() + 1;
    if !(helper.inputs.len() == 1 || helper.inputs.len() == with_inputs) || helper.takes_context {
        errors.spanned(&helper.ident, format!(
            "fallback `{method}` of step `{}` takes the step's `StepError` after `&self` (`async fn {method}(&self, error: StepError) -> ..`), optionally after the step's {} input(s)",
            step.ident, step.inputs.len()
        ));
    }
}

/// `after = first(a, b)` (trybuild case `first_loser_consumed`): the losers are cancelled, so no
/// other step may consume a racer's output.
fn check_race(model: &Model, graph: &Graph, i: usize, errors: &mut Errors) {
    let step = &model.steps[i];
    let Some(crate::attr::After::First(racers)) = step.attr.after.as_ref().map(|a| &a.value) else {
        return;
    };
    for racer in racers {
        let Some(r) = model.step_index(racer) else {
            continue;
        };
        if let Some(other) = graph.downstream[r].iter().find(|e| e.to != i) {
            errors.spanned(racer, format!(
                "`{racer}` races in `first(..)` of `{}` and is cancelled when it loses, so step `{}` cannot consume its output; give `{}` its own copy of the work, or wait with `any(..)`, which lets the losers finish",
                step.ident, model.steps[other.to].ident, model.steps[other.to].ident
            ));
        }
    }
}
