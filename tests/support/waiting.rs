//! Bounded waiting: a probe asked again and again until it answers, or a failure that says
//! what never happened.

use std::future::Future;
use std::time::{Duration, Instant};

/// Asks `probe` every `every` until it gives `Some`, and returns that; once `timeout` has
/// passed, panics with `failure()`.
pub async fn poll<T, F, Fut>(
    timeout: Duration,
    every: Duration,
    failure: impl Fn() -> String,
    mut probe: F,
) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(Instant::now() < deadline, "{}", failure());
        tokio::time::sleep(every).await;
    }
}

/// [`poll`] for a condition: returns once `check` holds.
pub async fn until<F, Fut>(
    timeout: Duration,
    every: Duration,
    failure: impl Fn() -> String,
    mut check: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let probe = || {
        let checked = check();
        async move { checked.await.then_some(()) }
    };
    poll(timeout, every, failure, probe).await
}
