//! The journal: one entry per campaign run the sandbox performed.

use std::cell::Cell;
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};

/// A program token as the sandbox received it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalToken {
    /// `{{my.Name}}`.
    pub name: String,
    /// Its value.
    pub value: String,
}

/// One campaign run (or schedule), as `GET /sandbox/journal` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// `soap` or `rest`.
    pub api: String,
    /// The campaign that ran.
    pub campaign_id: u32,
    /// The leads it ran for, in the order received.
    pub lead_ids: Vec<u32>,
    /// The program tokens passed.
    pub tokens: Vec<JournalToken>,
    /// Lead keys received past Marketo's limit of 100 and ignored (SOAP
    /// `requestCampaign` only; REST refuses such calls).
    #[serde(default)]
    pub ignored_keys: usize,
    /// For a scheduled batch campaign (`scheduleCampaign`, `schedule.json`):
    /// the run time as given, or `""` when none was given. `None` for
    /// requested and triggered runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_at: Option<String>,
    /// For an Adobe Journey Optimizer execution (`api: "ajo"`): the
    /// execution, its AJO campaign, recipients and their context. Such an
    /// entry's `campaign_id` is 0 and its `lead_ids` are the sandbox leads
    /// whose email an `email` recipient names; an audience execution has
    /// `run_at` (its `schedule.executeAt`, or `""` for one that runs at
    /// once). `None` for SOAP and REST.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ajo: Option<AjoExecution>,
}

/// A Journey Optimizer unitary execution the sandbox ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AjoExecution {
    /// The `executionId` answered.
    pub execution_id: String,
    /// The body's `requestId`.
    pub request_id: String,
    /// The AJO campaign id.
    pub campaign_id: String,
    /// The recipients, in the order received (none for an audience
    /// execution: its audience is the campaign's).
    pub recipients: Vec<AjoRecipient>,
    /// An audience execution's context (its program tokens); empty for a
    /// unitary one, whose context is per recipient.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub context: std::collections::BTreeMap<String, String>,
}

/// One recipient of an AJO execution, as received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AjoRecipient {
    /// `aep` or `external`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The identity value (e.g. the email address).
    pub user_id: String,
    /// The identity namespace (e.g. `email`).
    pub namespace: String,
    /// The context data (program tokens), by name.
    #[serde(default)]
    pub context: std::collections::BTreeMap<String, String>,
}

thread_local! {
    /// Entries this thread has recorded, so that the connection serving a
    /// call can tell whether the call ran (for the fault log).
    static RECORDED_HERE: Cell<u64> = const { Cell::new(0) };
}

/// How many entries the current thread has recorded so far.
pub(crate) fn recorded_here() -> u64 {
    RECORDED_HERE.with(Cell::get)
}

/// The journal, shared by the server threads. Every run it records
/// queues its campaign's flow (`flows.rs`).
#[derive(Debug, Default)]
pub(crate) struct Journal(Mutex<Vec<JournalEntry>>, Option<Arc<super::flows::Flows>>);

impl Journal {
    pub(crate) fn with_flows(flows: Arc<super::flows::Flows>) -> Self {
        Journal(Mutex::default(), Some(flows))
    }

    pub(crate) fn record(&self, entry: JournalEntry) {
        if let Some(flows) = &self.1 {
            flows.on_run(&entry);
        }
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(entry);
        RECORDED_HERE.with(|n| n.set(n.get().wrapping_add(1)));
    }

    pub(crate) fn entries(&self) -> Vec<JournalEntry> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn clear(&self) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}
