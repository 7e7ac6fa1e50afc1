//! Work that outlives a reconcile — a backup run, a restore — as background tasks registered per
//! object. Later reconciles poll them; a finished task's outcome is kept until the object shows
//! it recorded, so a status write that fails (or whose response is lost) is simply written
//! again, and metrics are counted once (`first`).
//!
//! One registry per kind ([`Tasks`]), holding that kind's entries; [`Task`] is one spawned
//! piece of work with the handle it shares with reconciles (progress, phase) and its outcome.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

use futures::FutureExt;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// An object: namespace and name.
pub type Key = (String, String);

/// One spawned piece of work.
pub struct Task<S, O> {
    /// What the task shares with reconciles while it runs (progress, phase...).
    pub shared: Arc<S>,
    outcome: Arc<Mutex<Option<O>>>,
    handle: JoinHandle<()>,
    /// The outcome once the task has ended; kept until the object shows it recorded.
    ended: Option<Arc<O>>,
    /// The outcome was handed out once already (its metrics are counted).
    counted: bool,
}

/// What a reconcile learns from [`Task::poll`].
pub enum TaskPoll<O> {
    Running,
    /// The task ended; `first` is true the first time this outcome is handed out.
    Finished {
        outcome: Arc<O>,
        first: bool,
    },
}

impl<S, O> Task<S, O>
where
    S: Send + Sync + 'static,
    O: Send + Sync + 'static,
{
    /// Spawns `work`. When it ends, its outcome is kept for the next poll and `done` is notified
    /// (so the object is reconciled at once, not at the next progress poll).
    pub fn spawn<F>(shared: Arc<S>, done: Arc<Notify>, work: impl FnOnce(Arc<S>) -> F) -> Self
    where
        F: Future<Output = O> + Send + 'static,
    {
        let outcome = Arc::new(Mutex::new(None));
        let future = work(shared.clone());
        let handle = {
            let outcome = outcome.clone();
            tokio::spawn(async move {
                let result = future.await;
                *outcome.lock().expect("task outcome lock") = Some(result);
                done.notify_one();
            })
        };
        Self {
            shared,
            outcome,
            handle,
            ended: None,
            counted: false,
        }
    }

    /// Whether the task has ended. `crashed` makes the outcome of a task that ended without one
    /// (it panicked) from the panic's text.
    pub fn poll(&mut self, crashed: impl FnOnce(String) -> O) -> TaskPoll<O> {
        if self.ended.is_none() {
            if let Some(outcome) = self.outcome.lock().expect("task outcome lock").take() {
                self.ended = Some(Arc::new(outcome));
            } else if self.handle.is_finished() {
                let error = match (&mut self.handle).now_or_never() {
                    Some(Err(error)) => error.to_string(),
                    _ => "it ended without an outcome".to_string(),
                };
                self.ended = Some(Arc::new(crashed(error)));
            } else {
                return TaskPoll::Running;
            }
        }
        let outcome = self.ended.clone().expect("set above");
        let first = !std::mem::replace(&mut self.counted, true);
        TaskPoll::Finished { outcome, first }
    }

    /// The task's future has completed (with an outcome or a panic).
    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }

    /// Stops the task at its next await point.
    pub fn abort(&self) {
        self.handle.abort();
    }
}

/// The tasks of one kind in this process, by object. Cloning shares the registry (a task may
/// remove its own entry when its object is gone).
pub struct Tasks<E> {
    entries: Arc<Mutex<HashMap<Key, E>>>,
    finished: Arc<Notify>,
}

impl<E> Default for Tasks<E> {
    fn default() -> Self {
        Self {
            entries: Arc::default(),
            finished: Arc::default(),
        }
    }
}

impl<E> Clone for Tasks<E> {
    fn clone(&self) -> Self {
        Self {
            entries: self.entries.clone(),
            finished: self.finished.clone(),
        }
    }
}

impl<E> Tasks<E> {
    /// The entries, locked. Hold the guard only for quick bookkeeping, never across an await.
    pub fn entries(&self) -> MutexGuard<'_, HashMap<Key, E>> {
        self.entries.lock().expect("task registry lock")
    }

    /// What a task notifies when it ends (pass it to [`Task::spawn`]).
    pub fn notifier(&self) -> Arc<Notify> {
        self.finished.clone()
    }

    /// A stream that yields whenever a task of this registry ends; the kind's controller
    /// reconciles on it.
    pub fn finished_runs(&self) -> impl futures::Stream<Item = ()> + Send + 'static {
        futures::stream::unfold(self.finished.clone(), |notify| async move {
            notify.notified().await;
            Some(((), notify))
        })
    }

    /// Removes every entry (shutdown, lost lease), for the caller to stop.
    pub fn drain(&self) -> Vec<(Key, E)> {
        self.entries().drain().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_outcome_is_handed_out_until_forgotten_and_counted_once() {
        let tasks: Tasks<Task<(), u32>> = Tasks::default();
        let key = ("ns".to_string(), "a".to_string());
        let done = tasks.notifier();
        let notified = done.clone();
        let wait = notified.notified();
        tasks.entries().insert(
            key.clone(),
            Task::spawn(Arc::new(()), done, |_| async { 7 }),
        );
        wait.await;
        let polls: Vec<(u32, bool)> = (0..2)
            .map(
                |_| match tasks.entries().get_mut(&key).unwrap().poll(|_| 0) {
                    TaskPoll::Finished { outcome, first } => (*outcome, first),
                    TaskPoll::Running => panic!("the task has ended"),
                },
            )
            .collect();
        assert_eq!(polls, [(7, true), (7, false)]);
    }

    #[tokio::test]
    async fn a_task_that_panics_ends_with_the_crash_outcome() {
        let mut task: Task<(), String> =
            Task::spawn(Arc::new(()), Arc::default(), |_| async { panic!("boom") });
        while !task.is_finished() {
            tokio::task::yield_now().await;
        }
        match task.poll(|error| format!("crashed: {error}")) {
            TaskPoll::Finished { outcome, first } => {
                assert!(outcome.starts_with("crashed: "), "{outcome}");
                assert!(outcome.contains("panic"), "{outcome}");
                assert!(first);
            }
            TaskPoll::Running => panic!("the task has ended"),
        }
    }

    #[tokio::test]
    async fn drain_empties_the_registry() {
        let tasks: Tasks<u8> = Tasks::default();
        tasks.entries().insert(("ns".into(), "a".into()), 1);
        let clone = tasks.clone();
        assert_eq!(clone.drain().len(), 1);
        assert!(tasks.entries().is_empty());
    }
}
