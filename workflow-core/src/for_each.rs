//! The per-run storage of a `for_each` step: its pending items and their results.

/// Items of a `for_each` step and their results, in item order.
#[doc(hidden)]
pub struct ForEachSlot<I, O> {
    items: Vec<Option<I>>,
    results: Vec<Option<O>>,
}

impl<I, O> Default for ForEachSlot<I, O> {
    fn default() -> Self {
        ForEachSlot {
            items: Vec::new(),
            results: Vec::new(),
        }
    }
}

impl<I, O> ForEachSlot<I, O> {
    /// Stores the upstream's output, one item per invocation.
    pub fn load(&mut self, items: impl IntoIterator<Item = I>) {
        self.items = items.into_iter().map(Some).collect();
        self.results = Vec::new();
    }

    /// Number of items; prepares the result slots.
    pub fn begin(&mut self) -> usize {
        let len = self.items.len();
        self.results = std::iter::repeat_with(|| None).take(len).collect();
        len
    }

    /// Takes item `index` for its invocation.
    pub fn take(&mut self, index: usize) -> Option<I> {
        self.items.get_mut(index).and_then(Option::take)
    }

    /// Clones item `index` for one attempt, keeping it for a retry.
    pub fn get_cloned(&self, index: usize) -> Option<I>
    where
        I: Clone,
    {
        self.items.get(index).and_then(Clone::clone)
    }

    /// Stores the result of item `index`.
    pub fn store(&mut self, index: usize, result: O) {
        if let Some(slot) = self.results.get_mut(index) {
            *slot = Some(result);
        }
    }

    /// All results, in item order.
    pub fn finish(&mut self) -> Vec<O> {
        self.items = Vec::new();
        std::mem::take(&mut self.results)
            .into_iter()
            .flatten()
            .collect()
    }
}
