//! The operator has been asked to stop (SIGTERM, or the end of a term of leadership). Calls
//! already under way finish and are recorded; no new ECS call starts, so an operator that is
//! going away never issues a URL its successor would not know of.

use tokio::sync::watch;

pub struct Stopping {
    tx: watch::Sender<bool>,
}

impl Default for Stopping {
    fn default() -> Self {
        Self {
            tx: watch::channel(false).0,
        }
    }
}

impl Stopping {
    pub fn set(&self) {
        self.tx.send_replace(true);
    }

    pub fn is_set(&self) -> bool {
        *self.tx.borrow()
    }

    /// Completes once [`Stopping::set`] has been called.
    pub async fn wait(&self) {
        let mut rx = self.tx.subscribe();
        // The sender lives in `self`, which outlives this borrow: no error is possible.
        let _ = rx.wait_for(|stopping| *stopping).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waiters_wake_when_set_and_later_waits_return_at_once() {
        let stopping = std::sync::Arc::new(Stopping::default());
        assert!(!stopping.is_set());
        let waiter = tokio::spawn({
            let stopping = stopping.clone();
            async move { stopping.wait().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        stopping.set();
        waiter.await.unwrap();
        assert!(stopping.is_set());
        stopping.wait().await;
    }
}
