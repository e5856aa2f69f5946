//! Verdicts handed from the scenario tasks to the libtest trials that wait for them.

use netconform_harness::report::CheckRecord;
use std::collections::BTreeMap;
use std::sync::{Condvar, Mutex};

#[derive(Default)]
pub struct Results {
    records: Mutex<BTreeMap<String, CheckRecord>>,
    published: Condvar,
}

impl Results {
    pub fn publish(&self, record: CheckRecord) {
        self.records
            .lock()
            .expect("results lock")
            .insert(record.trial.clone(), record);
        self.published.notify_all();
    }

    /// Blocks until the trial's verdict is in. Every started check is published
    /// exactly once (the runner reports setup failures per check too), and every
    /// probe is bounded in time, so this returns.
    pub fn wait(&self, trial: &str) -> CheckRecord {
        let mut records = self.records.lock().expect("results lock");
        loop {
            if let Some(r) = records.get(trial) {
                return r.clone();
            }
            records = self.published.wait(records).expect("results lock");
        }
    }

    pub fn all(&self) -> Vec<CheckRecord> {
        self.records
            .lock()
            .expect("results lock")
            .values()
            .cloned()
            .collect()
    }
}
