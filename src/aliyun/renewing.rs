//! A cell of temporary credentials that renews itself before they expire.
//!
//! Renewal happens on demand, inside [`Renewing::get`], through whatever fetch the caller hands in
//! (an STS exchange, an instance-metadata read), so one cell type serves the operator's own RRSA
//! or RAM-role credentials and each keyless session's role alike. Concurrent callers share one
//! renewal; while the old credentials still work, callers are served them instead of waiting. A
//! failed renewal is retried after a capped backoff, never on every call.

use std::future::Future;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use super::credentials::Credentials;
use super::sts::{StsCredentials, StsError};

/// The most that credentials are renewed ahead of their expiry: the official SDKs' three minutes.
pub const MAX_RENEWAL_MARGIN: SignedDuration = SignedDuration::from_mins(3);
/// A clock that went back further than this since the last fetch makes the credentials' age
/// unknown, so they are renewed. Smaller steps (NTP slewing) are ignored.
pub const CLOCK_STEP_TOLERANCE: SignedDuration = SignedDuration::from_secs(1);

/// How long renewal pauses after failures: `base`, doubled per further failure, at most `cap`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenewBackoff {
    pub base: Duration,
    pub cap: Duration,
}

impl Default for RenewBackoff {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(60),
        }
    }
}

impl RenewBackoff {
    /// The pause after the `failures`-th failure in a row (1 for the first).
    pub fn delay(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(31);
        self.base
            .checked_mul(1u32 << doublings)
            .unwrap_or(Duration::MAX)
            .min(self.cap)
    }
}

/// How long before `expiration` credentials fetched at `fetched_at` are renewed: three minutes,
/// or a quarter of the lifetime seen at fetch time when that is shorter (the 8-second credentials
/// of a test are renewed 2 s ahead, not 3 minutes before they were even issued).
pub fn renewal_margin(fetched_at: Timestamp, expiration: Timestamp) -> SignedDuration {
    let lifetime = expiration.duration_since(fetched_at);
    if lifetime <= SignedDuration::ZERO {
        return SignedDuration::ZERO;
    }
    (lifetime / 4).min(MAX_RENEWAL_MARGIN)
}

/// When credentials fetched at `fetched_at` and expiring at `expiration` are due for renewal. An
/// answer already expired by this clock is due at once.
pub fn renewal_time(fetched_at: Timestamp, expiration: Timestamp) -> Timestamp {
    expiration
        .checked_sub(renewal_margin(fetched_at, expiration))
        .unwrap_or(expiration)
}

/// True when credentials fetched at `fetched_at`, due at `renew_at`, must be renewed at `now`:
/// they are due, or the clock went back so far that their age is unknown.
pub fn renewal_due(now: Timestamp, fetched_at: Timestamp, renew_at: Timestamp) -> bool {
    now >= renew_at || now.duration_since(fetched_at) < -CLOCK_STEP_TOLERANCE
}

struct Held {
    credentials: Credentials,
    expires_at: Timestamp,
    fetched_at: Timestamp,
    renew_at: Timestamp,
}

struct State<E> {
    held: Option<Held>,
    /// Bumped by every renewal outcome, so a caller that waited knows one happened.
    generation: u64,
    failures: u32,
    failed_at: Option<Timestamp>,
    retry_at: Option<Timestamp>,
    /// The last renewal's error while `failures > 0`.
    last_error: Option<E>,
    /// When the held credentials were last dropped on a rejection (monotonic clock).
    invalidated_at: Option<std::time::Instant>,
}

enum Plan<E> {
    Serve(Credentials),
    Fail(E),
    Renew,
}

impl<E: Clone> State<E> {
    fn usable(&self, now: Timestamp) -> Option<Credentials> {
        self.held
            .as_ref()
            .filter(|h| now < h.expires_at)
            .map(|h| h.credentials.clone())
    }

    fn in_backoff(&self, now: Timestamp) -> bool {
        matches!((self.failed_at, self.retry_at), (Some(f), Some(r)) if f <= now && now < r)
    }

    fn plan(&self, now: Timestamp) -> Plan<E> {
        if let Some(h) = &self.held
            && !renewal_due(now, h.fetched_at, h.renew_at)
        {
            return Plan::Serve(h.credentials.clone());
        }
        if !self.in_backoff(now) {
            return Plan::Renew;
        }
        match (&self.held, &self.last_error) {
            (Some(h), Some(_)) if now < h.expires_at => Plan::Serve(h.credentials.clone()),
            // Fresh from the issuer but already past due by this clock: the issuer's verdict is
            // the one that counts, so they are used until the next try.
            (Some(h), None) => Plan::Serve(h.credentials.clone()),
            (_, Some(e)) => Plan::Fail(e.clone()),
            (None, None) => Plan::Renew,
        }
    }

    /// The outcome of a renewal another caller ran while this one waited.
    fn outcome(&self, now: Timestamp) -> Option<Result<Credentials, E>> {
        match (&self.held, &self.last_error) {
            (Some(h), None) => Some(Ok(h.credentials.clone())),
            (Some(h), Some(_)) if now < h.expires_at => Some(Ok(h.credentials.clone())),
            (_, Some(e)) => Some(Err(e.clone())),
            (None, None) => None,
        }
    }

    fn failed(&mut self, now: Timestamp, backoff: RenewBackoff) {
        self.failures = self.failures.saturating_add(1);
        let delay =
            SignedDuration::try_from(backoff.delay(self.failures)).unwrap_or(SignedDuration::MAX);
        let mut retry_at = now.checked_add(delay).unwrap_or(Timestamp::MAX);
        // One more try when the old credentials run out, not a whole backoff later.
        if let Some(h) = &self.held
            && now < h.expires_at
        {
            retry_at = retry_at.min(h.expires_at);
        }
        self.failed_at = Some(now);
        self.retry_at = Some(retry_at);
    }
}

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
            .field("expires_at", &state.held.as_ref().map(|h| h.expires_at))
            .field("renew_at", &state.held.as_ref().map(|h| h.renew_at))
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
            state: Mutex::new(State {
                held: None,
                generation: 0,
                failures: 0,
                failed_at: None,
                retry_at: None,
                last_error: None,
                invalidated_at: None,
            }),
            renewal: tokio::sync::Mutex::new(()),
            backoff,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<E>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// When the held credentials expire; `None` before the first successful fetch.
    pub fn expires_at(&self) -> Option<Timestamp> {
        self.lock().held.as_ref().map(|h| h.expires_at)
    }

    /// When the held credentials are due for renewal; a controller can requeue at this time.
    pub fn renew_at(&self) -> Option<Timestamp> {
        self.lock().held.as_ref().map(|h| h.renew_at)
    }

    /// Failed renewals in a row (0 after a success).
    pub fn failures(&self) -> u32 {
        self.lock().failures
    }

    /// Forgets the held credentials (the service they were for rejected them, e.g. a revoked
    /// role session or a clock that ran behind), so the next `get` fetches anew.
    pub fn invalidate(&self) {
        let mut state = self.lock();
        state.held = None;
        state.failures = 0;
        state.failed_at = None;
        state.retry_at = None;
        state.last_error = None;
        state.generation = state.generation.wrapping_add(1);
        state.invalidated_at = Some(std::time::Instant::now());
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
        let mut state = self.lock();
        state.generation = state.generation.wrapping_add(1);
        match fetched {
            Ok(StsCredentials {
                credentials,
                expiration,
            }) => {
                let renew_at = renewal_time(now, expiration);
                state.held = Some(Held {
                    credentials: credentials.clone(),
                    expires_at: expiration,
                    fetched_at: now,
                    renew_at,
                });
                state.last_error = None;
                if renewal_due(now, now, renew_at) {
                    // Expired on arrival (a skewed clock or a confused issuer): use them, but do
                    // not ask again on every call.
                    state.failed(now, self.backoff);
                } else {
                    state.failures = 0;
                    state.failed_at = None;
                    state.retry_at = None;
                }
                Ok(credentials)
            }
            Err(e) => {
                state.failed(now, self.backoff);
                state.last_error = Some(e.clone());
                state.usable(now).ok_or(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn at(base: Timestamp, secs: i64) -> Timestamp {
        base.checked_add(SignedDuration::from_secs(secs)).unwrap()
    }

    const T0: &str = "2026-12-01T09:00:00Z";

    #[test]
    fn margin_is_three_minutes_or_a_quarter_of_a_short_lifetime() {
        let t0 = t(T0);
        for (lifetime, margin) in [
            (3600, 180), // a real STS hour
            (21_600, 180),
            (900, 180), // 15 min: a quarter would be 225 s
            (720, 180),
            (60, 15),
            (8, 2),
            (1, 0), // 250 ms, checked below
        ] {
            let exp = at(t0, lifetime);
            let m = renewal_margin(t0, exp);
            assert_eq!(m.as_secs(), margin, "lifetime {lifetime}");
            assert_eq!(renewal_time(t0, exp), exp.checked_sub(m).unwrap());
        }
        assert_eq!(
            renewal_margin(t0, at(t0, 1)),
            SignedDuration::from_millis(250)
        );
    }

    #[test]
    fn an_answer_already_expired_is_due_at_once() {
        let t0 = t(T0);
        for exp in [t0, at(t0, -1), at(t0, -7200)] {
            assert_eq!(renewal_margin(t0, exp), SignedDuration::ZERO);
            assert_eq!(renewal_time(t0, exp), exp);
            assert!(renewal_due(t0, t0, renewal_time(t0, exp)));
        }
    }

    #[test]
    fn due_at_the_renewal_time_not_before() {
        let t0 = t(T0);
        let renew_at = renewal_time(t0, at(t0, 3600));
        assert!(!renewal_due(at(t0, 3419), t0, renew_at));
        assert!(renewal_due(at(t0, 3420), t0, renew_at));
        assert!(renewal_due(at(t0, 99_999), t0, renew_at));
    }

    #[test]
    fn a_clock_that_went_back_makes_credentials_due() {
        let t0 = t(T0);
        let renew_at = renewal_time(t0, at(t0, 3600));
        // An NTP slew of a fraction of a second is not a reason to renew.
        let slewed = t0.checked_sub(SignedDuration::from_millis(500)).unwrap();
        assert!(!renewal_due(slewed, t0, renew_at));
        assert!(renewal_due(at(t0, -2), t0, renew_at));
        assert!(renewal_due(at(t0, -7200), t0, renew_at));
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let b = RenewBackoff::default();
        let delays: Vec<u64> = (1..=9).map(|n| b.delay(n).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(b.delay(0), Duration::from_secs(1));
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(60));
    }

    #[derive(Debug, Clone, PartialEq, Eq)]
    struct Boom(u32);

    fn sts(id: &str, expiration: Timestamp) -> StsCredentials {
        StsCredentials {
            credentials: Credentials::new(id, "secret", Some("token".into())),
            expiration,
        }
    }

    /// A fetch that counts its calls and answers from `answers` in order.
    struct Script {
        calls: AtomicU32,
        answers: Mutex<Vec<Result<StsCredentials, Boom>>>,
    }

    impl Script {
        fn new(answers: Vec<Result<StsCredentials, Boom>>) -> Arc<Self> {
            Arc::new(Self {
                calls: AtomicU32::new(0),
                answers: Mutex::new(answers.into_iter().rev().collect()),
            })
        }

        async fn next(self: Arc<Self>) -> Result<StsCredentials, Boom> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            self.answers.lock().unwrap().pop().unwrap_or(Err(Boom(n)))
        }

        fn calls(&self) -> u32 {
            self.calls.load(Ordering::SeqCst)
        }
    }

    async fn get(
        cell: &Renewing<Boom>,
        script: &Arc<Script>,
        now: Timestamp,
    ) -> Result<String, Boom> {
        let s = script.clone();
        cell.get(now, move || s.next())
            .await
            .map(|c| c.access_key_id().to_owned())
    }

    #[tokio::test]
    async fn fetches_once_then_serves_until_due() {
        let t0 = t(T0);
        let script = Script::new(vec![Ok(sts("a", at(t0, 3600))), Ok(sts("b", at(t0, 7200)))]);
        let cell = Renewing::new();
        assert_eq!(cell.expires_at(), None);
        assert_eq!(get(&cell, &script, t0).await.unwrap(), "a");
        assert_eq!(get(&cell, &script, at(t0, 3419)).await.unwrap(), "a");
        assert_eq!(script.calls(), 1);
        assert_eq!(cell.expires_at(), Some(at(t0, 3600)));
        assert_eq!(cell.renew_at(), Some(at(t0, 3420)));
        assert_eq!(get(&cell, &script, at(t0, 3420)).await.unwrap(), "b");
        assert_eq!(script.calls(), 2);
    }

    #[tokio::test]
    async fn rejected_credentials_are_fetched_anew_even_during_a_backoff() {
        let t0 = t(T0);
        let script = Script::new(vec![
            Ok(sts("a", at(t0, 3600))),
            Err(Boom(0)),
            Ok(sts("b", at(t0, 7200))),
        ]);
        let cell = Renewing::new();
        assert_eq!(get(&cell, &script, t0).await.unwrap(), "a");
        // A renewal failed: the old credentials are served during the backoff...
        assert_eq!(get(&cell, &script, at(t0, 3500)).await.unwrap(), "a");
        assert_eq!(get(&cell, &script, at(t0, 3500)).await.unwrap(), "a");
        assert_eq!(script.calls(), 2);
        // ...until the service they were for refuses them: then the next call fetches.
        cell.invalidate();
        assert_eq!(cell.expires_at(), None);
        assert_eq!(get(&cell, &script, at(t0, 3500)).await.unwrap(), "b");
        assert_eq!(script.calls(), 3);
    }

    #[tokio::test]
    async fn rejections_in_quick_succession_drop_the_credentials_once() {
        let t0 = t(T0);
        let script = Script::new(vec![
            Ok(sts("a", at(t0, 3600))),
            Ok(sts("b", at(t0, 3600))),
            Ok(sts("c", at(t0, 3600))),
        ]);
        let cell = Renewing::new();
        get(&cell, &script, t0).await.unwrap();
        let gap = Duration::from_secs(30);
        assert!(
            cell.invalidate_at_most_every(gap),
            "the first rejection drops them"
        );
        assert_eq!(get(&cell, &script, t0).await.unwrap(), "b");
        for _ in 0..25 {
            assert!(
                !cell.invalidate_at_most_every(gap),
                "later ones within the gap do not"
            );
            assert_eq!(get(&cell, &script, t0).await.unwrap(), "b");
        }
        assert_eq!(script.calls(), 2, "one fetch for 26 rejections");
        assert!(
            cell.invalidate_at_most_every(Duration::ZERO),
            "after the gap it drops again"
        );
    }

    #[tokio::test]
    async fn a_failed_renewal_keeps_serving_the_old_credentials_with_backoff() {
        let t0 = t(T0);
        let script = Script::new(vec![
            Ok(sts("a", at(t0, 3600))),
            Err(Boom(1)),
            Err(Boom(2)),
            Ok(sts("b", at(t0, 9000))),
        ]);
        let cell = Renewing::new();
        get(&cell, &script, t0).await.unwrap();
        // Due at 3420: the renewal fails, the old credentials are still good.
        assert_eq!(get(&cell, &script, at(t0, 3420)).await.unwrap(), "a");
        assert_eq!(script.calls(), 2);
        assert_eq!(cell.failures(), 1);
        // Within the 1 s backoff: no new attempt, however often asked.
        for _ in 0..50 {
            assert_eq!(get(&cell, &script, at(t0, 3420)).await.unwrap(), "a");
        }
        assert_eq!(script.calls(), 2);
        // After it: one attempt, failing again; then 2 s of quiet.
        assert_eq!(get(&cell, &script, at(t0, 3421)).await.unwrap(), "a");
        assert_eq!(script.calls(), 3);
        assert_eq!(get(&cell, &script, at(t0, 3422)).await.unwrap(), "a");
        assert_eq!(script.calls(), 3);
        assert_eq!(get(&cell, &script, at(t0, 3423)).await.unwrap(), "b");
        assert_eq!(script.calls(), 4);
        assert_eq!(cell.failures(), 0);
    }

    #[tokio::test]
    async fn once_expired_a_failed_renewal_is_an_error_repeated_until_the_backoff_ends() {
        let t0 = t(T0);
        let script = Script::new(vec![Ok(sts("a", at(t0, 60))), Err(Boom(1)), Err(Boom(2))]);
        let cell = Renewing::new();
        get(&cell, &script, t0).await.unwrap();
        assert_eq!(get(&cell, &script, at(t0, 61)).await, Err(Boom(1)));
        assert_eq!(get(&cell, &script, at(t0, 61)).await, Err(Boom(1)));
        assert_eq!(script.calls(), 2, "no refetch inside the backoff");
        assert_eq!(get(&cell, &script, at(t0, 62)).await, Err(Boom(2)));
        assert_eq!(script.calls(), 3);
    }

    #[tokio::test]
    async fn an_empty_cell_that_fails_backs_off_too() {
        let t0 = t(T0);
        let script = Script::new(vec![Err(Boom(7))]);
        let cell = Renewing::new();
        assert_eq!(get(&cell, &script, t0).await, Err(Boom(7)));
        assert_eq!(get(&cell, &script, t0).await, Err(Boom(7)));
        assert_eq!(script.calls(), 1);
    }

    #[tokio::test]
    async fn the_retry_after_a_failure_comes_no_later_than_the_expiry() {
        let t0 = t(T0);
        let script = Script::new(vec![
            Ok(sts("a", at(t0, 3600))),
            Err(Boom(1)),
            Err(Boom(2)),
            Err(Boom(3)),
            Err(Boom(4)),
            Err(Boom(5)),
            Err(Boom(6)),
            Err(Boom(7)),
            Ok(sts("b", at(t0, 9000))),
        ]);
        let cell = Renewing::with_backoff(RenewBackoff {
            base: Duration::from_secs(100),
            cap: Duration::from_secs(600),
        });
        get(&cell, &script, t0).await.unwrap();
        // Fails at 3420: next try at 3520.
        assert_eq!(get(&cell, &script, at(t0, 3420)).await.unwrap(), "a");
        // Fails at 3520: next try at the expiry (3600), not 200 s later.
        assert_eq!(get(&cell, &script, at(t0, 3520)).await.unwrap(), "a");
        assert_eq!(script.calls(), 3);
        assert_eq!(get(&cell, &script, at(t0, 3599)).await.unwrap(), "a");
        assert_eq!(script.calls(), 3);
        assert_eq!(get(&cell, &script, at(t0, 3600)).await, Err(Boom(3)));
        assert_eq!(script.calls(), 4);
    }

    #[tokio::test]
    async fn credentials_expired_on_arrival_are_used_without_a_refetch_storm() {
        let t0 = t(T0);
        let script = Script::new(vec![
            Ok(sts("skewed", at(t0, -10))),
            Ok(sts("fine", at(t0, 3600))),
        ]);
        let cell = Renewing::new();
        assert_eq!(get(&cell, &script, t0).await.unwrap(), "skewed");
        for _ in 0..20 {
            assert_eq!(get(&cell, &script, t0).await.unwrap(), "skewed");
        }
        assert_eq!(script.calls(), 1);
        assert_eq!(get(&cell, &script, at(t0, 1)).await.unwrap(), "fine");
        assert_eq!(script.calls(), 2);
    }

    #[tokio::test]
    async fn a_clock_that_jumped_back_renews() {
        let t0 = t(T0);
        let script = Script::new(vec![Ok(sts("a", at(t0, 3600))), Ok(sts("b", at(t0, 3000)))]);
        let cell = Renewing::new();
        get(&cell, &script, t0).await.unwrap();
        assert_eq!(get(&cell, &script, at(t0, -3600)).await.unwrap(), "b");
        assert_eq!(script.calls(), 2);
    }

    #[tokio::test]
    async fn concurrent_callers_share_one_renewal() {
        let t0 = t(T0);
        let calls = Arc::new(AtomicU32::new(0));
        let gate = Arc::new(tokio::sync::Notify::new());
        let cell: Arc<Renewing<Boom>> = Arc::new(Renewing::new());
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let (cell, calls, gate) = (cell.clone(), calls.clone(), gate.clone());
            tasks.push(tokio::spawn(async move {
                cell.get(t0, || async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    gate.notified().await;
                    Ok(sts("shared", at(t0, 3600)))
                })
                .await
            }));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        gate.notify_waiters();
        for task in tasks {
            assert_eq!(task.await.unwrap().unwrap().access_key_id(), "shared");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn callers_during_an_early_renewal_get_the_old_credentials_at_once() {
        let t0 = t(T0);
        let cell: Arc<Renewing<Boom>> = Arc::new(Renewing::new());
        cell.get(t0, || async move { Ok(sts("old", at(t0, 3600))) })
            .await
            .unwrap();
        let gate = Arc::new(tokio::sync::Notify::new());
        let renewing = {
            let (cell, gate) = (cell.clone(), gate.clone());
            tokio::spawn(async move {
                cell.get(at(t0, 3500), || async move {
                    gate.notified().await;
                    Ok(sts("new", at(t0, 7200)))
                })
                .await
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        let during = cell
            .get(at(t0, 3500), || async { Err(Boom(99)) })
            .await
            .unwrap();
        assert_eq!(during.access_key_id(), "old");
        gate.notify_waiters();
        assert_eq!(renewing.await.unwrap().unwrap().access_key_id(), "new");
    }

    #[tokio::test]
    async fn waiters_share_a_failure_instead_of_retrying_it() {
        let t0 = t(T0);
        let calls = Arc::new(AtomicU32::new(0));
        let gate = Arc::new(tokio::sync::Notify::new());
        let cell: Arc<Renewing<Boom>> = Arc::new(Renewing::new());
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (cell, calls, gate) = (cell.clone(), calls.clone(), gate.clone());
            tasks.push(tokio::spawn(async move {
                cell.get(t0, || async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    gate.notified().await;
                    Err(Boom(1))
                })
                .await
            }));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        gate.notify_waiters();
        for task in tasks {
            assert_eq!(task.await.unwrap(), Err(Boom(1)));
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
