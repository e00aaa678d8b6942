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

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use jiff::Timestamp;

use crate::aliyun::EcsError;

/// `--ecs-requests-per-second`'s default. A lower quota is found by adapting to its throttling
/// answers; an account with a higher one can raise it.
pub const DEFAULT_REQUESTS_PER_SECOND: u32 = 20;
/// A key nobody used for this long is forgotten; it comes back at the configured rate.
const FORGET_AFTER: Duration = Duration::from_secs(60);
/// Turns a caller takes again after its turn was voided, before it gives up waiting.
const MAX_RETAKES: u32 = 4;
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
    /// The longest [`Pacer::run`] waits for a turn; a later one is handed back instead.
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

/// What [`Pacer::turn`] decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Turn {
    /// Call now.
    Go(Ticket),
    /// Reserved: sleep until `ticket.at`, [`Pacer::confirm`], then call.
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
    epoch: u64,
}

#[derive(Debug)]
struct KeyState {
    rate: f64,
    /// The rate the last throttling answer came at (the configured one until then).
    throttled_rate: f64,
    /// Throttling answers since a call sent in the current epoch was last answered.
    series: u32,
    /// The rate the current series of throttling answers began at.
    series_from: f64,
    /// When the next turn starts at the earliest.
    next: Instant,
    /// Bumped by every slow-down; turns and answers from before it are stale.
    epoch: u64,
    last_used: Instant,
    /// The latest time handed out with [`Turn::Later`].
    promised: Option<Instant>,
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
            keys.map.retain(|_, state| {
                now < state.last_used + FORGET_AFTER
                    || state.next > now
                    || state.promised.is_some_and(|at| at > now)
            });
            keys.swept_at = Some(now);
        }
        if !keys.map.contains_key(key) {
            let fresh = KeyState {
                rate: config.rate,
                throttled_rate: config.rate,
                series: 0,
                series_from: config.rate,
                next: now,
                epoch: 0,
                last_used: now,
                promised: None,
            };
            keys.map.insert(key.clone(), fresh);
        }
        let Some(state) = keys.map.get_mut(key) else {
            return Turn::Go(Ticket { at: now, epoch: 0 });
        };
        let at = state.next.max(now);
        if at.duration_since(now) > max_wait {
            let come_back = come_back(state, at, now);
            state.promised = Some(come_back);
            return Turn::Later(come_back);
        }
        state.next = at + interval(state.rate);
        state.last_used = now;
        let ticket = Ticket {
            at,
            epoch: state.epoch,
        };
        if at == now {
            Turn::Go(ticket)
        } else {
            Turn::Wait(ticket)
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
        if state.epoch != ticket.epoch {
            return;
        }
        state.epoch += 1;
        if state.series == 0 {
            state.series_from = state.rate;
        }
        state.series = state.series.saturating_add(1);
        state.throttled_rate = state.rate;
        state.rate = (state.rate / 2.0).max(config.min_rate);
        state.next = now + config.pause;
        state.last_used = now;
        tracing::debug!(
            region_id = %key.region_id,
            rate = state.rate,
            "ECS throttled this key; pacing it slower"
        );
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
            if state.epoch == ticket.epoch {
                if state.series >= SERIES {
                    state.throttled_rate = state.series_from;
                    state.rate = state.rate.max(state.series_from / 2.0);
                }
                state.series = 0;
            }
            let mut per_second = RECOVERY * state.throttled_rate;
            if state.rate >= PROBE_FROM * state.throttled_rate {
                per_second /= PROBE_SLOWDOWN;
            }
            let raised = state.rate + per_second / state.rate;
            state.rate = raised.min(config.rate).max(config.min_rate);
        }
    }

    /// Waits for `key`'s turn (at most `max_wait` in all), makes `call`, and learns from its
    /// answer. `Err(at)`: no turn within the wait, nothing was sent; come back at `at`.
    pub async fn run<T>(
        &self,
        key: &PaceKey,
        call: impl Future<Output = Result<T, EcsError>>,
    ) -> Result<Result<T, EcsError>, Timestamp> {
        let Some(config) = self.config else {
            return Ok(call.await);
        };
        let ticket = self.wait_turn(key, &config).await?;
        let result = call.await;
        match &result {
            Err(e) if e.is_throttling() => self.throttled(key, &ticket, clock()),
            Ok(_) | Err(EcsError::Api { .. }) => self.answered(key, &ticket),
            // No answer (timeout, connection): nothing learned about the quota.
            Err(_) => {}
        }
        Ok(result)
    }

    async fn wait_turn(&self, key: &PaceKey, config: &PacerConfig) -> Result<Ticket, Timestamp> {
        let deadline = clock() + config.max_wait;
        // Bounded: a turn is voided only by a throttling answer, which also pauses the key.
        for _ in 0..MAX_RETAKES {
            let now = clock();
            match self.turn(key, now, deadline.saturating_duration_since(now)) {
                Turn::Go(ticket) => return Ok(ticket),
                Turn::Wait(ticket) => {
                    tokio::time::sleep_until(ticket.at.into()).await;
                    if self.confirm(key, &ticket) {
                        return Ok(ticket);
                    }
                }
                Turn::Later(at) => return Err(wall_clock(at)),
            }
        }
        Err(wall_clock(clock() + config.pause))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Keys> {
        self.keys.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// When a caller turned away (the next free turn being `at`) should come back: one interval
/// after the last caller turned away, but while the rate is cut no later than the queue takes at
/// the rate expected back, or [`PROMISE_HORIZON`] from now if that is later; never before `at`.
fn come_back(state: &KeyState, at: Instant, now: Instant) -> Instant {
    let chained = state
        .promised
        .map_or(at, |promised| at.max(promised + interval(state.rate)));
    let expected = if state.series >= SERIES {
        state.series_from
    } else {
        state.throttled_rate
    };
    if state.rate >= expected {
        return chained;
    }
    // The queue ahead of this caller, served at the rate expected back.
    let ahead = chained
        .saturating_duration_since(now)
        .mul_f64(state.rate / expected);
    let bound = now + PROMISE_HORIZON.max(ahead);
    if chained <= bound {
        return chained;
    }
    // Beyond the bound: spread out one interval of the expected rate apart.
    let spread = state
        .promised
        .map_or(bound, |promised| bound.max(promised + interval(expected)));
    spread.min(chained).max(at)
}

fn interval(rate: f64) -> Duration {
    Duration::try_from_secs_f64(1.0 / rate).unwrap_or(Duration::MAX)
}

/// Tokio's clock, so that a paused test runtime paces in its own time.
fn clock() -> Instant {
    tokio::time::Instant::now().into_std()
}

fn wall_clock(at: Instant) -> Timestamp {
    crate::session::expiry::add(Timestamp::now(), at.saturating_duration_since(clock()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const WAIT: Duration = Duration::from_secs(5);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn key(access_key_id: &str, region_id: &str) -> PaceKey {
        PaceKey::new(access_key_id, region_id)
    }

    fn at_20_per_second() -> Pacer {
        Pacer::new(PacerConfig::per_second(20))
    }

    /// Takes a turn and returns when it starts.
    fn start(pacer: &Pacer, key: &PaceKey, now: Instant) -> Instant {
        match pacer.turn(key, now, WAIT) {
            Turn::Go(t) | Turn::Wait(t) => t.at,
            Turn::Later(at) => panic!("no turn within the wait (next at {at:?})"),
        }
    }

    fn ticket(turn: Turn) -> Ticket {
        match turn {
            Turn::Go(t) | Turn::Wait(t) => t,
            Turn::Later(_) => panic!("no turn"),
        }
    }

    #[test]
    fn turns_are_spaced_one_interval_apart_and_an_idle_key_goes_at_once() {
        let pacer = at_20_per_second();
        let k = key("ak", "cn-hangzhou");
        let t0 = Instant::now();
        assert!(matches!(pacer.turn(&k, t0, WAIT), Turn::Go(t) if t.at == t0));
        assert!(matches!(pacer.turn(&k, t0, WAIT), Turn::Wait(t) if t.at == t0 + ms(50)));
        assert_eq!(start(&pacer, &k, t0), t0 + ms(100));
        // Arriving after its turn: it goes at once, and the next one is an interval later.
        assert!(matches!(pacer.turn(&k, t0 + ms(400), WAIT), Turn::Go(_)));
        assert_eq!(start(&pacer, &k, t0 + ms(400)), t0 + ms(450));
        assert!(matches!(pacer.turn(&k, t0 + ms(1000), WAIT), Turn::Go(_)));
    }

    #[test]
    fn a_turn_beyond_the_wait_is_handed_back_and_not_reserved() {
        let pacer = at_20_per_second();
        let k = key("ak", "cn-hangzhou");
        let t0 = Instant::now();
        for _ in 0..3 {
            pacer.turn(&k, t0, ms(100));
        }
        assert_eq!(pacer.turn(&k, t0, ms(100)), Turn::Later(t0 + ms(150)));
        assert_eq!(start(&pacer, &k, t0), t0 + ms(150));
    }

    #[test]
    fn callers_turned_away_in_a_row_are_told_to_come_back_one_interval_apart() {
        let pacer = at_20_per_second();
        let k = key("ak", "cn-hangzhou");
        let t0 = Instant::now();
        for _ in 0..3 {
            pacer.turn(&k, t0, ms(100));
        }
        let times: Vec<Turn> = (0..3).map(|_| pacer.turn(&k, t0, ms(100))).collect();
        assert_eq!(
            times,
            [150, 200, 250].map(|n| Turn::Later(t0 + ms(n))),
            "spread out like the turns they stand for"
        );
        // Once the queue has moved past those times, the next one is the queue's own.
        for _ in 0..20 {
            pacer.turn(&k, t0 + ms(1000), ms(5000));
        }
        assert_eq!(
            pacer.turn(&k, t0 + ms(1000), ms(100)),
            Turn::Later(t0 + ms(2000))
        );
    }

    #[test]
    fn throttling_halves_the_rate_and_pauses_the_whole_key() {
        let pacer = at_20_per_second();
        let k = key("ak", "cn-hangzhou");
        let t0 = Instant::now();
        let first = ticket(pacer.turn(&k, t0, WAIT));
        pacer.throttled(&k, &first, t0 + ms(10));
        assert_eq!(pacer.rate(&k), Some(10.0));
        let resumes = t0 + ms(1010);
        assert_eq!(start(&pacer, &k, t0 + ms(20)), resumes);
        assert_eq!(start(&pacer, &k, t0 + ms(20)), resumes + ms(100));
    }

    #[test]
    fn turns_handed_out_before_a_throttle_are_void() {
        let pacer = at_20_per_second();
        let k = key("ak", "cn-hangzhou");
        let t0 = Instant::now();
        let sent = ticket(pacer.turn(&k, t0, WAIT));
        let waiting = ticket(pacer.turn(&k, t0, WAIT));
        assert!(pacer.confirm(&k, &waiting));
        pacer.throttled(&k, &sent, t0 + ms(5));
        assert!(!pacer.confirm(&k, &waiting));
        // Its new turn comes after the pause, not at the old time.
        assert_eq!(start(&pacer, &k, waiting.at), t0 + ms(1005));
    }

    #[test]
    fn one_wave_of_throttling_answers_halves_the_rate_once() {
        let pacer = at_20_per_second();
        let k = key("ak", "cn-hangzhou");
        let t0 = Instant::now();
        let wave: Vec<Ticket> = (0..5).map(|_| ticket(pacer.turn(&k, t0, WAIT))).collect();
        for t in &wave {
            pacer.throttled(&k, t, t0 + ms(300));
        }
        assert_eq!(pacer.rate(&k), Some(10.0));
        // A call sent after the pause and throttled again is news: halve again.
        let later = ticket(pacer.turn(&k, t0 + ms(1300), WAIT));
        pacer.throttled(&k, &later, t0 + ms(1310));
        assert_eq!(pacer.rate(&k), Some(5.0));
    }

    #[test]
    fn halving_stops_at_the_floor() {
        let pacer = at_20_per_second();
        let k = key("ak", "cn-hangzhou");
        let mut now = Instant::now();
        for _ in 0..20 {
            let t = ticket(pacer.turn(&k, now, Duration::MAX));
            now = t.at;
            pacer.throttled(&k, &t, now);
        }
        assert_eq!(pacer.rate(&k), Some(1.0));
    }

    /// A ticket of the key's current epoch: an answer to a call sent since the last throttle.
    fn current(pacer: &Pacer, k: &PaceKey) -> Ticket {
        let epoch = pacer.lock().map.get(k).map_or(0, |s| s.epoch);
        Ticket {
            at: Instant::now(),
            epoch,
        }
    }

    fn answer(pacer: &Pacer, k: &PaceKey) {
        pacer.answered(k, &current(pacer, k));
    }

    /// Answers until the key's rate reaches `rate`; how many it took.
    fn answers_until(pacer: &Pacer, k: &PaceKey, rate: f64) -> usize {
        (1..100_000)
            .find(|_| {
                answer(pacer, k);
                pacer.rate(k).unwrap() >= rate
            })
            .expect("the rate comes back")
    }

    /// Throttles every first call after a pause, `times` in a row, nothing answered in between
    /// (the quota used up by someone else); returns when the last pause ends.
    /// Throttled at `t0`, one call answered, throttled again a second later: not a wave.
    fn two_throttles_an_answer_apart(pacer: &Pacer, k: &PaceKey, t0: Instant) {
        let t = ticket(pacer.turn(k, t0, WAIT));
        pacer.throttled(k, &t, t0);
        answer(pacer, k);
        let t = ticket(pacer.turn(k, t0 + ms(1000), WAIT));
        pacer.throttled(k, &t, t0 + ms(1000));
    }

    fn throttling_wave(pacer: &Pacer, k: &PaceKey, t0: Instant, times: usize) -> Instant {
        let mut now = t0;
        for _ in 0..times {
            let t = ticket(pacer.turn(k, now, Duration::MAX));
            now = t.at;
            pacer.throttled(k, &t, now);
        }
        now + Duration::from_secs(1)
    }

    #[test]
    fn answers_bring_the_rate_back_gradually_up_to_the_configured_one() {
        let pacer = at_20_per_second();
        let k = key("ak", "cn-hangzhou");
        let t0 = Instant::now();
        let t = ticket(pacer.turn(&k, t0, WAIT));
        pacer.throttled(&k, &t, t0);
        assert_eq!(pacer.rate(&k), Some(10.0));
        // A tenth of the throttled rate, 2/s, per second of answers: 10 answers at 10/s add
        // about 2.
        for _ in 0..10 {
            answer(&pacer, &k);
        }
        let rate = pacer.rate(&k).unwrap();
        assert!(rate > 11.8 && rate < 12.0, "{rate}");
        for _ in 0..1000 {
            answer(&pacer, &k);
        }
        assert_eq!(pacer.rate(&k), Some(20.0));
    }

    #[test]
    fn near_the_rate_that_was_throttled_recovery_slows_to_a_probe() {
        let pacer = at_20_per_second();
        let k = key("ak", "cn-hangzhou");
        let t0 = Instant::now();
        // Say the real quota is about 8/s: throttled at 20; after the pause the quota is full
        // again and calls go through at 10/s, until it runs dry again.
        two_throttles_an_answer_apart(&pacer, &k, t0);
        let cut = pacer.rate(&k).unwrap();
        assert!((5.0..5.2).contains(&cut), "{cut}");
        // About 1/s per second of answers up to 9/s: about 27 answers (r² grows by 2 each) ...
        let quick = answers_until(&pacer, &k, 9.0);
        assert!((25..=30).contains(&quick), "{quick}");
        // ... then ten times slower from 90% of the throttled rate (about 10.2/s) on: about 80
        // answers from 9/s to 10/s (r² grows by about 0.2 each).
        let probing = answers_until(&pacer, &k, 10.0);
        assert!((70..=90).contains(&probing), "{probing}");
    }

    #[test]
    fn a_throttling_wave_from_elsewhere_is_not_taken_for_the_quota() {
        let pacer = at_20_per_second();
        let k = key("ak", "cn-hangzhou");
        // Every probe after a pause throttled, six times: 20, 10, 5, 2.5, 1.25, then the floor.
        throttling_wave(&pacer, &k, Instant::now(), 6);
        assert_eq!(pacer.rate(&k), Some(1.0));
        // Once a call is answered again, the wave counts as one throttling answer at the 20/s it
        // began at: the rate goes on from 10/s and gains 2/s per second's worth of answers up to
        // 18/s (about 56 answers; r² grows by 4 each). Scaled to the floor the wave drove it to,
        // it would take some 16,000 answers.
        answer(&pacer, &k);
        let rate = pacer.rate(&k).unwrap();
        assert!((10.0..10.3).contains(&rate), "{rate}");
        let to_near = answers_until(&pacer, &k, 18.0);
        assert!((50..=60).contains(&to_near), "{to_near}");
        // Probing from there, as after any throttle at 20/s.
        assert!(answers_until(&pacer, &k, 20.0) > 50);
    }

    #[test]
    fn only_an_answer_to_a_call_sent_after_the_wave_ends_it() {
        let pacer = at_20_per_second();
        let k = key("ak", "cn-hangzhou");
        let t0 = Instant::now();
        let early = ticket(pacer.turn(&k, t0, WAIT));
        throttling_wave(&pacer, &k, t0, 6);
        // A call sent before the wave and answered late says nothing about the quota now.
        pacer.answered(&k, &early);
        assert!(pacer.rate(&k).unwrap() < 1.1);
        answer(&pacer, &k);
        assert!(pacer.rate(&k).unwrap() >= 10.0);
    }

    #[test]
    fn one_throttling_answer_between_answers_is_not_a_wave() {
        let pacer = at_20_per_second();
        let k = key("ak", "cn-hangzhou");
        let t0 = Instant::now();
        two_throttles_an_answer_apart(&pacer, &k, t0);
        answer(&pacer, &k);
        // Scaled to the last throttled rate (about 10/s), not to the 20/s of the first answer:
        // probing starts near 9/s.
        answers_until(&pacer, &k, 9.0);
        assert!(answers_until(&pacer, &k, 10.0) > 50);
    }

    #[test]
    fn while_the_rate_is_cut_callers_turned_away_come_back_within_the_horizon() {
        let pacer = at_20_per_second();
        let k = key("ak", "cn-hangzhou");
        let t0 = Instant::now();
        let resumes = throttling_wave(&pacer, &k, t0, 6);
        let now = resumes - ms(500);
        // 40 callers that may not wait: at 1/s their turns would be 40 s away, but the rate is
        // expected back at 20/s.
        let times: Vec<Instant> = (0..40)
            .map(|_| match pacer.turn(&k, now, Duration::ZERO) {
                Turn::Later(at) => at,
                other => panic!("{other:?}"),
            })
            .collect();
        assert!(
            times.iter().all(|&at| at >= resumes),
            "never before the pause ends"
        );
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "in order");
        let last = *times.last().unwrap();
        assert!(
            last <= now + PROMISE_HORIZON + ms(40 * 50),
            "{:?} from now",
            last - now
        );
        // Once the rate is back, the queue's own spacing applies again.
        for _ in 0..200 {
            answer(&pacer, &k);
        }
        assert!(pacer.rate(&k).unwrap() >= 18.0);
    }

    #[test]
    fn keys_and_regions_are_paced_apart() {
        let pacer = at_20_per_second();
        let t0 = Instant::now();
        let hangzhou = key("ak1", "cn-hangzhou");
        let t = ticket(pacer.turn(&hangzhou, t0, WAIT));
        pacer.throttled(&hangzhou, &t, t0);
        for other in [key("ak1", "cn-shanghai"), key("ak2", "cn-hangzhou")] {
            assert_eq!(pacer.rate(&other), Some(20.0));
            assert!(matches!(pacer.turn(&other, t0, WAIT), Turn::Go(_)));
            assert_eq!(start(&pacer, &other, t0), t0 + ms(50));
        }
        assert_eq!(pacer.rate(&hangzhou), Some(10.0));
    }

    #[test]
    fn a_key_left_alone_for_a_minute_is_forgotten_and_starts_afresh() {
        let pacer = at_20_per_second();
        let k = key("ak", "cn-hangzhou");
        let t0 = Instant::now();
        let t = ticket(pacer.turn(&k, t0, WAIT));
        pacer.throttled(&k, &t, t0);
        pacer.turn(&key("other", "cn-hangzhou"), t0 + ms(59_000), WAIT);
        assert_eq!(pacer.lock().map.len(), 2);
        pacer.turn(&key("other", "cn-hangzhou"), t0 + ms(121_000), WAIT);
        assert_eq!(pacer.lock().map.len(), 1);
        assert_eq!(pacer.rate(&k), Some(20.0));
    }

    #[test]
    fn off_lets_everything_through() {
        for pacer in [Pacer::off(), Pacer::new(PacerConfig::per_second(0))] {
            let k = key("ak", "cn-hangzhou");
            let t0 = Instant::now();
            for _ in 0..1000 {
                let t = ticket(pacer.turn(&k, t0, Duration::ZERO));
                assert_eq!(t.at, t0);
                pacer.throttled(&k, &t, t0);
                assert!(pacer.confirm(&k, &t));
            }
            assert_eq!(pacer.rate(&k), None);
        }
    }

    fn throttling() -> EcsError {
        EcsError::Api {
            code: "Throttling.User".into(),
            message: "Request was denied due to user flow control.".into(),
            request_id: None,
            http_status: Some(400),
        }
    }

    #[tokio::test]
    async fn run_learns_from_answers_and_hands_back_a_turn_it_cannot_wait_for() {
        let pacer = Pacer::new(PacerConfig {
            max_wait: Duration::ZERO,
            ..PacerConfig::per_second(20)
        });
        let k = key("ak", "cn-hangzhou");
        let answer = pacer.run(&k, async { Err::<(), _>(throttling()) }).await;
        assert!(answer.unwrap().unwrap_err().is_throttling());
        assert_eq!(pacer.rate(&k), Some(10.0));
        // Paused for a second, and no waiting allowed: nothing is sent.
        let mut sent = false;
        let later = pacer
            .run(&k, async {
                sent = true;
                Ok(())
            })
            .await;
        assert!(later.unwrap_err() > Timestamp::now());
        assert!(!sent);
    }

    #[tokio::test]
    async fn run_off_just_calls() {
        let pacer = Pacer::off();
        let k = key("ak", "cn-hangzhou");
        for _ in 0..100 {
            assert_eq!(pacer.run(&k, async { Ok(7) }).await, Ok(Ok(7)));
        }
    }
}
