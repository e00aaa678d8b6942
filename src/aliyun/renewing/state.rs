//! The renewal state machine of one cell, without locks or I/O: what a call at `now` gets (the
//! held credentials, the last error, or a renewal), and how a renewal's outcome changes the state.

use jiff::{SignedDuration, Timestamp};

use super::schedule::{RenewBackoff, renewal_due, renewal_time};
use crate::aliyun::credentials::Credentials;
use crate::aliyun::sts::StsCredentials;

struct Held {
    credentials: Credentials,
    expires_at: Timestamp,
    fetched_at: Timestamp,
    renew_at: Timestamp,
}

pub(super) struct State<E> {
    held: Option<Held>,
    /// Bumped by every renewal outcome, so a caller that waited knows one happened.
    pub(super) generation: u64,
    pub(super) failures: u32,
    failed_at: Option<Timestamp>,
    retry_at: Option<Timestamp>,
    /// The last renewal's error while `failures > 0`.
    last_error: Option<E>,
    /// When the held credentials were last dropped on a rejection (monotonic clock).
    pub(super) invalidated_at: Option<std::time::Instant>,
}

pub(super) enum Plan<E> {
    Serve(Credentials),
    Fail(E),
    Renew,
}

impl<E> State<E> {
    /// Nothing held, nothing failed: the first call renews.
    pub(super) fn empty() -> Self {
        Self {
            held: None,
            generation: 0,
            failures: 0,
            failed_at: None,
            retry_at: None,
            last_error: None,
            invalidated_at: None,
        }
    }

    pub(super) fn expires_at(&self) -> Option<Timestamp> {
        self.held.as_ref().map(|h| h.expires_at)
    }

    pub(super) fn renew_at(&self) -> Option<Timestamp> {
        self.held.as_ref().map(|h| h.renew_at)
    }

    /// Forgets the held credentials and any failure, as a rejection by their service demands.
    pub(super) fn invalidate(&mut self) {
        self.held = None;
        self.failures = 0;
        self.failed_at = None;
        self.retry_at = None;
        self.last_error = None;
        self.generation = self.generation.wrapping_add(1);
        self.invalidated_at = Some(std::time::Instant::now());
    }
}

impl<E: Clone> State<E> {
    pub(super) fn usable(&self, now: Timestamp) -> Option<Credentials> {
        self.held
            .as_ref()
            .filter(|h| now < h.expires_at)
            .map(|h| h.credentials.clone())
    }

    fn in_backoff(&self, now: Timestamp) -> bool {
        matches!((self.failed_at, self.retry_at), (Some(f), Some(r)) if f <= now && now < r)
    }

    pub(super) fn plan(&self, now: Timestamp) -> Plan<E> {
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
    pub(super) fn outcome(&self, now: Timestamp) -> Option<Result<Credentials, E>> {
        match (&self.held, &self.last_error) {
            (Some(h), None) => Some(Ok(h.credentials.clone())),
            (Some(h), Some(_)) if now < h.expires_at => Some(Ok(h.credentials.clone())),
            (_, Some(e)) => Some(Err(e.clone())),
            (None, None) => None,
        }
    }

    /// Takes in the outcome of a renewal started at `now`; returns what its caller gets.
    pub(super) fn settle(
        &mut self,
        now: Timestamp,
        fetched: Result<StsCredentials, E>,
        backoff: RenewBackoff,
    ) -> Result<Credentials, E> {
        self.generation = self.generation.wrapping_add(1);
        match fetched {
            Ok(StsCredentials {
                credentials,
                expiration,
            }) => {
                let renew_at = renewal_time(now, expiration);
                self.held = Some(Held {
                    credentials: credentials.clone(),
                    expires_at: expiration,
                    fetched_at: now,
                    renew_at,
                });
                self.last_error = None;
                if renewal_due(now, now, renew_at) {
                    // Expired on arrival (a skewed clock or a confused issuer): use them, but do
                    // not ask again on every call.
                    self.failed(now, backoff);
                } else {
                    self.failures = 0;
                    self.failed_at = None;
                    self.retry_at = None;
                }
                Ok(credentials)
            }
            Err(e) => {
                self.failed(now, backoff);
                self.last_error = Some(e.clone());
                self.usable(now).ok_or(e)
            }
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
