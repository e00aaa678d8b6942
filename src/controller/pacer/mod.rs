//! Paces ECS calls per (AccessKeyId, region), the unit ECS's account flow control counts in, so
//! that a burst of new sessions or a fleet-wide refresh does not run into `Throttling.User`.
//!
//! Each key hands out turns 1/rate apart, in order, with no burst (a queue of N waits at most
//! (N-1)/rate). The rate adapts the way TCP's window does: a throttling answer halves it and
//! pauses the whole key briefly (turns already handed out become void, since they would meet the
//! same empty quota); each answer that is not throttled gives some back (additive increase), up
//! to the configured rate. Recovery is scaled to the rate that was last throttled, the best guess
//! of the real quota, and slows down near it: a quota far below the configured rate is then
//! probed gently instead of being overrun every few seconds.
//!
//! A throttling answer to the first call after a pause, with no call answered in between, says
//! nothing about this pace: the quota was used up elsewhere (another client of the same account).
//! Such a series drives the rate to its floor; once a call is answered again, the series counts as
//! one throttling answer at the rate it began at, and the rate goes on from half of that.
//! Callers turned away while the rate is cut are sent back no later than the queue would take at
//! the rate expected back (or [`PROMISE_HORIZON`]), not as far as the cut rate implies: the rate
//! is usually back long before. The core takes `now` and says "go", "wait until T" or "come back
//! at T"; [`Pacer::run`] is the async shell around one ECS call.
//!
//! This file keeps the keys, one `rate` state machine each, forgotten when idle; `waiting` holds
//! [`Pacer::run`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

mod rate;
mod waiting;

use rate::KeyState;
pub use rate::{PROMISE_HORIZON, PacerConfig, Ticket, Turn};

/// `--ecs-requests-per-second`'s default. A lower quota is found by adapting to its throttling
/// answers; an account with a higher one can raise it.
pub const DEFAULT_REQUESTS_PER_SECOND: u32 = 20;
/// A key nobody used for this long is forgotten; it comes back at the configured rate.
const FORGET_AFTER: Duration = Duration::from_secs(60);

/// Who ECS counts a call against.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PaceKey {
    pub access_key_id: String,
    pub region_id: String,
}

impl PaceKey {
    pub fn new(access_key_id: &str, region_id: &str) -> Self {
        Self {
            access_key_id: access_key_id.to_owned(),
            region_id: region_id.to_owned(),
        }
    }
}

#[derive(Debug, Default)]
struct Keys {
    map: HashMap<PaceKey, KeyState>,
    swept_at: Option<Instant>,
}

#[derive(Debug)]
pub struct Pacer {
    /// `None`: pacing is off.
    config: Option<PacerConfig>,
    keys: Mutex<Keys>,
}

impl Pacer {
    /// A rate of 0 (or anything not a positive number) is [`Pacer::off`].
    pub fn new(config: PacerConfig) -> Self {
        let usable = config.rate.is_finite() && config.rate > 0.0;
        Self {
            config: usable.then_some(PacerConfig {
                min_rate: config.min_rate.max(f64::MIN_POSITIVE).min(config.rate),
                ..config
            }),
            keys: Mutex::default(),
        }
    }

    /// Every call goes at once.
    pub fn off() -> Self {
        Self {
            config: None,
            keys: Mutex::default(),
        }
    }

    pub fn config(&self) -> Option<&PacerConfig> {
        self.config.as_ref()
    }

    /// The key's current rate; `None` when pacing is off.
    pub fn rate(&self, key: &PaceKey) -> Option<f64> {
        let config = self.config?;
        Some(self.lock().map.get(key).map_or(config.rate, |s| s.rate))
    }

    /// Reserves the key's next turn if it starts within `max_wait` of `now`.
    pub fn turn(&self, key: &PaceKey, now: Instant, max_wait: Duration) -> Turn {
        let Some(config) = self.config else {
            return Turn::Go(Ticket { at: now, epoch: 0 });
        };
        let mut keys = self.lock();
        if keys.swept_at.is_none_or(|at| now >= at + FORGET_AFTER) {
            keys.map.retain(|_, state| state.in_use(now, FORGET_AFTER));
            keys.swept_at = Some(now);
        }
        if !keys.map.contains_key(key) {
            keys.map.insert(key.clone(), KeyState::fresh(&config, now));
        }
        match keys.map.get_mut(key) {
            Some(state) => state.turn(now, max_wait),
            None => Turn::Go(Ticket { at: now, epoch: 0 }),
        }
    }

    /// After waiting for a [`Turn::Wait`]: false if the key was throttled meanwhile (take a new
    /// turn instead of calling into an empty quota).
    pub fn confirm(&self, key: &PaceKey, ticket: &Ticket) -> bool {
        self.config.is_none()
            || self
                .lock()
                .map
                .get(key)
                .is_none_or(|state| state.epoch == ticket.epoch)
    }

    /// A call made on `ticket` was answered `Throttling*`: halve the rate and pause the key. Only
    /// the first throttling answer of a wave counts: calls already under way when it arrived were
    /// sent at the old rate and say nothing new.
    pub fn throttled(&self, key: &PaceKey, ticket: &Ticket, now: Instant) {
        let Some(config) = self.config else {
            return;
        };
        let mut keys = self.lock();
        let Some(state) = keys.map.get_mut(key) else {
            return;
        };
        if state.throttled(&config, ticket, now) {
            tracing::debug!(
                region_id = %key.region_id,
                rate = state.rate,
                "ECS throttled this key; pacing it slower"
            );
        }
    }

    /// A call made on `ticket` was answered without throttling: additive increase, a tenth of the
    /// last throttled rate per second's worth of answers, a hundredth once within 90% of it. An
    /// answer to a call sent since the last throttling answer ends a series of them; a series
    /// from elsewhere is then counted as one throttling answer at the rate it began at: the rate
    /// goes on from half of that, not from the floor the series drove it to.
    pub fn answered(&self, key: &PaceKey, ticket: &Ticket) {
        let Some(config) = self.config else {
            return;
        };
        if let Some(state) = self.lock().map.get_mut(key) {
            state.answered(&config, ticket);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Keys> {
        self.keys.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests;
