//! Stopping the stages, in the mini-redis style: whoever may stop the worker holds a `Stop` (the signal
//! handler, and each stage, since one failing stage stops the others), every loop holds a `Shutdown` and
//! selects on `recv()`. Firing is idempotent and a late subscriber sees an earlier firing, so no task can
//! miss it; that is all the `watch::channel(false)` plumbing it replaces had to get right by hand.

use std::sync::Arc;
use tokio::sync::watch;

/// The sending side: fires the shutdown for every `Shutdown` made from it.
#[derive(Clone)]
pub struct Stop {
    tx: Arc<watch::Sender<bool>>,
}

/// The listening side, one per task.
#[derive(Clone)]
pub struct Shutdown {
    rx: watch::Receiver<bool>,
}

impl Stop {
    pub fn new() -> Stop {
        Stop { tx: Arc::new(watch::channel(false).0) }
    }

    pub fn fire(&self) {
        self.tx.send_replace(true);
    }

    pub fn subscribe(&self) -> Shutdown {
        Shutdown { rx: self.tx.subscribe() }
    }
}

impl Default for Stop {
    fn default() -> Self {
        Stop::new()
    }
}

impl Shutdown {
    pub fn is_shutdown(&self) -> bool {
        *self.rx.borrow()
    }

    /// Completes once the shutdown has been fired (at once if it already was).
    pub async fn recv(&mut self) {
        // An error means every `Stop` is gone: nobody can fire any more, so wait forever as the stage did
        // before there was a way to stop it.
        if self.rx.wait_for(|v| *v).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_firing_reaches_earlier_and_later_subscribers() {
        let stop = Stop::new();
        let mut early = stop.subscribe();
        assert!(!early.is_shutdown());
        stop.fire();
        stop.fire();
        early.recv().await;
        let mut late = stop.subscribe();
        assert!(late.is_shutdown());
        late.recv().await;
    }
}
