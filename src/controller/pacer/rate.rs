//! One key's turns and rate, the pacer's state machine: turns handed out 1/rate apart, halved
//! and paused by a throttling answer, given back additively by answers, and callers turned away
//! told when to come back. Pure: it is told `now` and never waits.

use std::time::{Duration, Instant};

/// Share of the last throttled rate regained per second of answers: from half back to near it
/// in about four seconds.
const RECOVERY: f64 = 0.1;
/// Throttling answers in a row, each to the first call after a pause, from which they are taken
/// for the quota being used up elsewhere rather than for this pace.
const SERIES: u32 = 2;
/// While the rate is cut, a caller turned away comes back within this long (or within the time
/// the queue takes at the rate expected back, if longer): long enough that a throttling wave costs
/// a waiting session one status write every few seconds, short enough that it is not asleep long
/// after the rate came back.
pub const PROMISE_HORIZON: Duration = Duration::from_secs(10);
/// From this share of the last throttled rate on, recovery is [`PROBE_SLOWDOWN`] times slower.
const PROBE_FROM: f64 = 0.9;
const PROBE_SLOWDOWN: f64 = 10.0;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PacerConfig {
    /// Turns per second per key when nothing was throttled.
    pub rate: f64,
    /// Halving stops here.
    pub min_rate: f64,
    /// How long the whole key waits after a throttling answer.
    pub pause: Duration,
    /// The longest [`Pacer::run`](super::Pacer::run) waits for a turn; a later one is handed
    /// back instead.
    pub max_wait: Duration,
}

impl PacerConfig {
    /// `rate` requests per second per key, a one-second pause after throttling (a per-second
    /// quota is full again by then), and at most five seconds of waiting inside a reconcile.
    pub fn per_second(rate: u32) -> Self {
        let rate = f64::from(rate);
        Self {
            rate,
            min_rate: rate.min(1.0),
            pause: Duration::from_secs(1),
            max_wait: Duration::from_secs(5),
        }
    }
}

/// What [`Pacer::turn`](super::Pacer::turn) decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Turn {
    /// Call now.
    Go(Ticket),
    /// Reserved: sleep until `ticket.at`, [`Pacer::confirm`](super::Pacer::confirm), then call.
    Wait(Ticket),
    /// Nothing reserved: the next turn is further away than the caller may wait; come back then.
    /// Callers turned away one after another are given times one interval apart, so that they
    /// come back spread out as their turns would be, not all at once.
    Later(Instant),
}

/// A reserved turn. Void once the key is throttled after it was handed out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ticket {
    pub at: Instant,
    pub(super) epoch: u64,
}

#[derive(Debug)]
pub(super) struct KeyState {
    pub(super) rate: f64,
    /// The rate the last throttling answer came at (the configured one until then).
    throttled_rate: f64,
    /// Throttling answers since a call sent in the current epoch was last answered.
    series: u32,
    /// The rate the current series of throttling answers began at.
    series_from: f64,
    /// When the next turn starts at the earliest.
    next: Instant,
    /// Bumped by every slow-down; turns and answers from before it are stale.
    pub(super) epoch: u64,
    last_used: Instant,
    /// The latest time handed out with [`Turn::Later`].
    promised: Option<Instant>,
}

impl KeyState {
    /// A key not seen before (or forgotten): the configured rate, free at once.
    pub(super) fn fresh(config: &PacerConfig, now: Instant) -> Self {
        Self {
            rate: config.rate,
            throttled_rate: config.rate,
            series: 0,
            series_from: config.rate,
            next: now,
            epoch: 0,
            last_used: now,
            promised: None,
        }
    }

    /// Whether the key still matters at `now`: used within `forget_after`, or a turn or a
    /// promised time still ahead.
    pub(super) fn in_use(&self, now: Instant, forget_after: Duration) -> bool {
        now < self.last_used + forget_after
            || self.next > now
            || self.promised.is_some_and(|at| at > now)
    }

    /// Reserves the next turn if it starts within `max_wait` of `now`.
    pub(super) fn turn(&mut self, now: Instant, max_wait: Duration) -> Turn {
        let at = self.next.max(now);
        if at.duration_since(now) > max_wait {
            let come_back = self.come_back(at, now);
            self.promised = Some(come_back);
            return Turn::Later(come_back);
        }
        self.next = at + interval(self.rate);
        self.last_used = now;
        let ticket = Ticket {
            at,
            epoch: self.epoch,
        };
        if at == now {
            Turn::Go(ticket)
        } else {
            Turn::Wait(ticket)
        }
    }

    /// A call made on `ticket` was answered `Throttling*`: halve the rate and pause the key.
    /// Returns whether it counted: only the first answer of a wave does.
    pub(super) fn throttled(
        &mut self,
        config: &PacerConfig,
        ticket: &Ticket,
        now: Instant,
    ) -> bool {
        if self.epoch != ticket.epoch {
            return false;
        }
        self.epoch += 1;
        if self.series == 0 {
            self.series_from = self.rate;
        }
        self.series = self.series.saturating_add(1);
        self.throttled_rate = self.rate;
        self.rate = (self.rate / 2.0).max(config.min_rate);
        self.next = now + config.pause;
        self.last_used = now;
        true
    }

    /// A call made on `ticket` was answered without throttling: additive increase, and the end
    /// of a series of throttling answers if the call was sent since the last one.
    pub(super) fn answered(&mut self, config: &PacerConfig, ticket: &Ticket) {
        if self.epoch == ticket.epoch {
            if self.series >= SERIES {
                self.throttled_rate = self.series_from;
                self.rate = self.rate.max(self.series_from / 2.0);
            }
            self.series = 0;
        }
        let mut per_second = RECOVERY * self.throttled_rate;
        if self.rate >= PROBE_FROM * self.throttled_rate {
            per_second /= PROBE_SLOWDOWN;
        }
        let raised = self.rate + per_second / self.rate;
        self.rate = raised.min(config.rate).max(config.min_rate);
    }

    /// When a caller turned away (the next free turn being `at`) should come back: one interval
    /// after the last caller turned away, but while the rate is cut no later than the queue takes
    /// at the rate expected back, or [`PROMISE_HORIZON`] from now if that is later; never before
    /// `at`.
    fn come_back(&self, at: Instant, now: Instant) -> Instant {
        let chained = self
            .promised
            .map_or(at, |promised| at.max(promised + interval(self.rate)));
        let expected = if self.series >= SERIES {
            self.series_from
        } else {
            self.throttled_rate
        };
        if self.rate >= expected {
            return chained;
        }
        // The queue ahead of this caller, served at the rate expected back.
        let ahead = chained
            .saturating_duration_since(now)
            .mul_f64(self.rate / expected);
        let bound = now + PROMISE_HORIZON.max(ahead);
        if chained <= bound {
            return chained;
        }
        // Beyond the bound: spread out one interval of the expected rate apart.
        let spread = self
            .promised
            .map_or(bound, |promised| bound.max(promised + interval(expected)));
        spread.min(chained).max(at)
    }
}

fn interval(rate: f64) -> Duration {
    Duration::try_from_secs_f64(1.0 / rate).unwrap_or(Duration::MAX)
}
