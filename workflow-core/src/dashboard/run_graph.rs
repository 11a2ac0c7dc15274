//! A stored run's graph with the graph of each child workflow step's child nested in it, read
//! from the store alone (the definitions it keeps and the child runs under their deterministic
//! ids), each graph with the outcomes of its run where there is one run to read them from.

use std::collections::BTreeMap;

use futures::future::BoxFuture;
use futures::FutureExt;

use super::run_view::step_outcomes;
use crate::store::{effective_journal, RunRecord, Store, StoreError, StoredDefinition};

/// A run's graph for drawing ([`super::graph_svg`]): its definition, the outcome of each of
/// its steps, and the graph of each child workflow step's child.
#[derive(Debug, Clone)]
pub struct RunGraph {
    /// The definition the run started with (for a child not started yet: the store's latest
    /// definition of the child workflow).
    pub definition: StoredDefinition,
    /// Each step's outcome (see [`step_outcomes`]); steps it does not name are pending. `None`
    /// when no single run has them: the child of a `for_each` step runs once per item.
    pub outcomes: Option<BTreeMap<String, &'static str>>,
    /// The child's graph, by the name of the step that runs it, for each child workflow step
    /// whose child's definition the store keeps.
    pub children: BTreeMap<String, RunGraph>,
}

/// Which run, if any, a graph's outcomes come from.
enum Source {
    Run(Box<RunRecord>),
    NotStarted,
    PerItem,
}

impl RunGraph {
    /// The graph of `run`, whose definition is `definition`, with its children's graphs
    /// (theirs too): a child's outcomes are those of its latest attempt.
    pub async fn load(
        store: &dyn Store,
        run: RunRecord,
        definition: StoredDefinition,
    ) -> Result<RunGraph, StoreError> {
        load(store, definition, Source::Run(Box::new(run))).await
    }
}

fn load(
    store: &dyn Store,
    definition: StoredDefinition,
    source: Source,
) -> BoxFuture<'_, Result<RunGraph, StoreError>> {
    async move {
        let outcomes = match &source {
            Source::Run(run) => {
                let journal = effective_journal(store.journal(&run.summary.run_id).await?);
                Some(step_outcomes(run, &journal))
            }
            Source::NotStarted => Some(BTreeMap::new()),
            Source::PerItem => None,
        };
        let mut children = BTreeMap::new();
        for step in definition.steps() {
            let Some(child_type) = step.fields.get("workflow") else {
                continue;
            };
            let child = match (&source, step.fields.contains_key("for_each")) {
                (_, true) | (Source::PerItem, _) => Source::PerItem,
                (Source::NotStarted, false) => Source::NotStarted,
                (Source::Run(run), false) => {
                    let attempts = crate::durable::child_history::child_attempts(
                        store,
                        &run.summary.run_id,
                        &step.name,
                        None,
                        1..,
                    )
                    .await?;
                    attempts
                        .into_iter()
                        .last()
                        .map_or(Source::NotStarted, |(_, record)| {
                            Source::Run(Box::new(record))
                        })
                }
            };
            let child_definition = match &child {
                Source::Run(run) => {
                    let summary = &run.summary;
                    store
                        .definition(&summary.workflow, summary.definition_hash)
                        .await?
                }
                Source::NotStarted | Source::PerItem => {
                    latest_definition(store, child_type).await?
                }
            };
            if let Some(child_definition) = child_definition {
                let graph = load(store, child_definition, child).await?;
                children.insert(step.name, graph);
            }
        }
        Ok(RunGraph {
            definition,
            outcomes,
            children,
        })
    }
    .boxed()
}

/// The store's latest definition of the child workflow a step names by its type as written
/// (`Booking`, `crate::Booking`): the workflow named like its last path segment.
async fn latest_definition(
    store: &dyn Store,
    child_type: &str,
) -> Result<Option<StoredDefinition>, StoreError> {
    let name = child_type.rsplit("::").next().unwrap_or(child_type);
    Ok(store
        .list_definitions()
        .await?
        .into_iter()
        .filter(|definition| definition.workflow == name)
        .max_by_key(|definition| definition.version))
}
