//! What RestoreRequest keeps in this process: the requests claimed or running, each with its
//! task, and how a reconcile polls them.

use std::sync::{Arc, Mutex};

use jiff::Timestamp;
use kube::ResourceExt;
use tend_backup::Progress;
use tend_crds::restore_request::{RestoreMode, RestorePhase, RestoreRequest};

use super::report::Outcome;
use crate::backup_policy::BackupSettings;
use crate::reconcile::Note;
use crate::tasks::{Key, Task, TaskPoll, Tasks};

/// What a running restore shares with the reconciler.
#[derive(Default)]
pub(super) struct Shared {
    pub(super) phase: Mutex<Option<RestorePhase>>,
    pub(super) progress: Progress,
    /// Events the task asks for (maintenance on/off), published by the next reconcile.
    pub(super) notes: Mutex<Vec<Note>>,
}

pub(super) enum Entry {
    /// `Running` was written to status (at `started`); the task starts once the object shows it.
    Claimed {
        started: Timestamp,
    },
    Running(Task<Shared, Outcome>),
}

/// One request claimed or running in this process.
pub(super) struct Run {
    pub(super) policy: String,
    /// The request as it was claimed: its uid tells a deleted and re-created request apart,
    /// and a deleted one is cleaned up from it.
    pub(super) request: Arc<RestoreRequest>,
    pub(super) entry: Entry,
}

/// What RestoreRequest keeps in this process: the engine settings and the restores claimed or
/// running.
#[derive(Default)]
pub struct RestoreState {
    pub settings: BackupSettings,
    pub(super) runs: Tasks<Run>,
}

pub(super) enum Poll {
    Idle,
    Claimed {
        started: Timestamp,
    },
    Running {
        phase: RestorePhase,
        bytes: u64,
        notes: Vec<Note>,
    },
    /// The restore ended; `first` is true the first time this outcome is handed out.
    Finished {
        outcome: Arc<Outcome>,
        notes: Vec<Note>,
        first: bool,
    },
}

impl RestoreState {
    pub fn new(settings: BackupSettings) -> Self {
        Self {
            settings,
            runs: Tasks::default(),
        }
    }

    /// Yields whenever a restore ends, so its request is reconciled at once.
    pub fn finished_runs(&self) -> impl futures::Stream<Item = ()> + Send + 'static {
        self.runs.finished_runs()
    }

    /// Stops every restore (shutdown, lost lease). Their requests stay `Running` in status, and
    /// the next leader ends them as failed and cleans up.
    pub fn abort_all(&self) {
        for ((namespace, request), run) in self.runs.drain() {
            if let Entry::Running(task) = run.entry {
                tracing::warn!(%namespace, %request, "stopping a restore: the controller is shutting down");
                task.abort();
            }
        }
    }

    /// The restore of `request` in this process (its entry must belong to this uid).
    pub(super) fn poll(&self, key: &Key, uid: Option<&str>) -> Poll {
        let mut runs = self.runs.entries();
        let Some(run) = runs.get_mut(key) else {
            return Poll::Idle;
        };
        if run.request.uid().as_deref() != uid {
            // A request of the same name was deleted and created again: the entry is the old
            // one's, cleaned up when another request of the policy asks (see `busy_with`).
            return Poll::Idle;
        }
        let task = match &mut run.entry {
            Entry::Claimed { started } => return Poll::Claimed { started: *started },
            Entry::Running(task) => task,
        };
        let notes = std::mem::take(&mut *task.shared.notes.lock().expect("notes lock"));
        match task.poll(|error| {
            Outcome::failed(
                Timestamp::now(),
                "internal",
                format!("the restore task crashed: {error}"),
            )
        }) {
            TaskPoll::Running => Poll::Running {
                phase: task
                    .shared
                    .phase
                    .lock()
                    .expect("phase lock")
                    .unwrap_or(RestorePhase::Running),
                bytes: task.shared.progress.bytes(),
                notes,
            },
            TaskPoll::Finished { outcome, first } => Poll::Finished {
                outcome,
                notes,
                first,
            },
        }
    }

    /// The object shows the request finished: nothing of it is needed in memory any more.
    pub(super) fn forget(&self, key: &Key) {
        self.runs.entries().remove(key);
    }

    pub(super) fn claim(&self, key: Key, request: &RestoreRequest, started: Timestamp) {
        self.runs.entries().insert(
            key,
            Run {
                policy: request.spec.policy_ref.name.clone(),
                request: Arc::new(request.clone()),
                entry: Entry::Claimed { started },
            },
        );
    }

    /// Other requests of the same policy claimed or running in this process.
    pub(super) fn others(&self, key: &Key, policy: &str) -> Vec<(Key, Arc<RestoreRequest>)> {
        self.runs
            .entries()
            .iter()
            .filter(|((ns, name), run)| ns == &key.0 && run.policy == policy && name != &key.1)
            .map(|(k, run)| (k.clone(), run.request.clone()))
            .collect()
    }

    /// The request of `key` (with `uid`) was deleted: removes its entry and stops its task —
    /// except an in-place restore still writing, which is left to finish (stopping it half way
    /// would leave the app half restored) and removes itself at its end. Returns whether the
    /// entry was removed.
    pub(super) fn abandon(&self, key: &Key, uid: Option<&str>) -> bool {
        let mut runs = self.runs.entries();
        let Some(run) = runs.get(key) else {
            return false;
        };
        if run.request.uid().as_deref() != uid {
            return false;
        }
        if let Entry::Running(task) = &run.entry
            && !task.is_finished()
            && run.request.spec.target.mode == RestoreMode::InPlace
        {
            return false;
        }
        if let Some(Run {
            entry: Entry::Running(task),
            ..
        }) = runs.remove(key)
        {
            task.abort();
        }
        true
    }
}
