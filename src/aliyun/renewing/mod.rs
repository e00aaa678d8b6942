//! A cell of temporary credentials that renews itself before they expire.
//!
//! Renewal happens on demand, inside [`Renewing::get`], through whatever fetch the caller hands in
//! (an STS exchange, an instance-metadata read), so one cell type serves the operator's own RRSA
//! or RAM-role credentials and each keyless session's role alike. Concurrent callers share one
//! renewal; while the old credentials still work, callers are served them instead of waiting. A
//! failed renewal is retried after a capped backoff, never on every call.
//!
//! This file holds the cell (its locks and the sharing of one renewal); the decisions are in
//! `state`, the timing rules in `schedule`.

mod schedule;
mod state;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use jiff::Timestamp;

pub use schedule::{
    CLOCK_STEP_TOLERANCE, MAX_RENEWAL_MARGIN, RenewBackoff, renewal_due, renewal_margin,
    renewal_time,
};
use state::{Plan, State};

use super::credentials::Credentials;
use super::sts::{StsCredentials, StsError};

/// Temporary credentials, renewed through a caller-given fetch at `expiration - margin` (see
/// [`renewal_time`]).
pub struct Renewing<E = StsError> {
    state: Mutex<State<E>>,
    renewal: tokio::sync::Mutex<()>,
    backoff: RenewBackoff,
}

impl<E> Default for Renewing<E> {
    fn default() -> Self {
        Self::with_backoff(RenewBackoff::default())
    }
}

impl<E> std::fmt::Debug for Renewing<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("Renewing")
            .field("expires_at", &state.expires_at())
            .field("renew_at", &state.renew_at())
            .field("failures", &state.failures)
            .finish_non_exhaustive()
    }
}

impl<E> Renewing<E> {
    /// An empty cell: the first `get` fetches.
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_backoff(backoff: RenewBackoff) -> Self {
        Self {
            state: Mutex::new(State::empty()),
            renewal: tokio::sync::Mutex::new(()),
            backoff,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<E>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// When the held credentials expire; `None` before the first successful fetch.
    pub fn expires_at(&self) -> Option<Timestamp> {
        self.lock().expires_at()
    }

    /// When the held credentials are due for renewal; a controller can requeue at this time.
    pub fn renew_at(&self) -> Option<Timestamp> {
        self.lock().renew_at()
    }

    /// Failed renewals in a row (0 after a success).
    pub fn failures(&self) -> u32 {
        self.lock().failures
    }

    /// Forgets the held credentials (the service they were for rejected them, e.g. a revoked
    /// role session or a clock that ran behind), so the next `get` fetches anew.
    pub fn invalidate(&self) {
        self.lock().invalidate();
    }

    /// [`Renewing::invalidate`], unless that already happened less than `gap` ago: a rejection
    /// repeated right after a fresh fetch is no reason to fetch again (and an endpoint that
    /// rejects every token must not turn each answer into a token exchange). Returns whether
    /// the credentials were dropped.
    pub fn invalidate_at_most_every(&self, gap: Duration) -> bool {
        let recent = self
            .lock()
            .invalidated_at
            .is_some_and(|at| at.elapsed() < gap);
        if !recent {
            self.invalidate();
        }
        !recent
    }
}

impl<E: Clone> Renewing<E> {
    /// The current credentials, renewed first through `fetch` when they are due (`now` is the
    /// caller's clock, read just before the call). `fetch` runs at most once per call, and only in
    /// one caller at a time; it is not called at all when nothing is due or a backoff is running.
    ///
    /// Errors: the renewal's error when no unexpired credentials are left, and the same error again
    /// until the backoff after it has passed.
    pub async fn get<F, Fut>(&self, now: Timestamp, fetch: F) -> Result<Credentials, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<StsCredentials, E>>,
    {
        let (generation, usable) = {
            let state = self.lock();
            match state.plan(now) {
                Plan::Serve(c) => return Ok(c),
                Plan::Fail(e) => return Err(e),
                Plan::Renew => {}
            }
            (state.generation, state.usable(now))
        };
        let _renewal = match usable {
            // Someone is renewing already and the old credentials still work: no need to wait.
            Some(current) => match self.renewal.try_lock() {
                Ok(guard) => guard,
                Err(_) => return Ok(current),
            },
            None => self.renewal.lock().await,
        };
        {
            let state = self.lock();
            if state.generation != generation
                && let Some(outcome) = state.outcome(now)
            {
                return outcome;
            }
        }

        let fetched = fetch().await;
        self.lock().settle(now, fetched, self.backoff)
    }
}
