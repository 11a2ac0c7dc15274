//! The workflows a worker can execute, by definition (name and hash).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;

use crate::durable::DurableEngine;
use crate::store::{ClaimedRun, DefinitionKey};

/// Executes a claimed run of one registered workflow.
pub(crate) type Runner =
    Arc<dyn Fn(DurableEngine, ClaimedRun) -> BoxFuture<'static, ()> + Send + Sync>;

/// Registered workflows: claims only return runs of these definitions.
#[derive(Default)]
pub(crate) struct Registry {
    runners: Mutex<HashMap<DefinitionKey, Runner>>,
}

impl Registry {
    /// Registers a runner; the first registration of a definition wins.
    pub fn register(&self, key: DefinitionKey, runner: impl FnOnce() -> Runner) -> bool {
        let mut runners = self.runners.lock().unwrap_or_else(|p| p.into_inner());
        if runners.contains_key(&key) {
            return false;
        }
        runners.insert(key, runner());
        true
    }

    /// The registered definitions.
    pub fn definitions(&self) -> Vec<DefinitionKey> {
        let runners = self.runners.lock().unwrap_or_else(|p| p.into_inner());
        runners.keys().cloned().collect()
    }

    /// The runner of a definition.
    pub fn runner(&self, workflow: &str, hash: u64) -> Option<Runner> {
        let key = DefinitionKey {
            workflow: workflow.to_owned(),
            hash,
        };
        let runners = self.runners.lock().unwrap_or_else(|p| p.into_inner());
        runners.get(&key).cloned()
    }
}
