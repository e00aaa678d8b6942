//! The pacer's unit tests: turns, throttling waves and recovery on a hand-driven clock, and
//! `run` around a call.

use std::time::{Duration, Instant};

use jiff::Timestamp;

use super::*;
use crate::aliyun::EcsError;

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

/// A pacer at 20/s, the key it paces, and the test's start.
fn paced() -> (Pacer, PaceKey, Instant) {
    (at_20_per_second(), key("ak", "cn-hangzhou"), Instant::now())
}

/// Takes a turn at `now` and answers it with a throttle at once.
fn throttle_at(pacer: &Pacer, k: &PaceKey, now: Instant) {
    let t = ticket(pacer.turn(k, now, WAIT));
    pacer.throttled(k, &t, now);
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
    let (pacer, k, t0) = paced();
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
    let (pacer, k, t0) = paced();
    for _ in 0..3 {
        pacer.turn(&k, t0, ms(100));
    }
    assert_eq!(pacer.turn(&k, t0, ms(100)), Turn::Later(t0 + ms(150)));
    assert_eq!(start(&pacer, &k, t0), t0 + ms(150));
}

#[test]
fn callers_turned_away_in_a_row_are_told_to_come_back_one_interval_apart() {
    let (pacer, k, t0) = paced();
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
    let (pacer, k, t0) = paced();
    let first = ticket(pacer.turn(&k, t0, WAIT));
    pacer.throttled(&k, &first, t0 + ms(10));
    assert_eq!(pacer.rate(&k), Some(10.0));
    let resumes = t0 + ms(1010);
    assert_eq!(start(&pacer, &k, t0 + ms(20)), resumes);
    assert_eq!(start(&pacer, &k, t0 + ms(20)), resumes + ms(100));
}

#[test]
fn turns_handed_out_before_a_throttle_are_void() {
    let (pacer, k, t0) = paced();
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
    let (pacer, k, t0) = paced();
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
    let (pacer, k, t0) = paced();
    throttling_wave(&pacer, &k, t0, 20);
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

/// Throttled at `t0`, one call answered, throttled again a second later: not a wave.
fn two_throttles_an_answer_apart(pacer: &Pacer, k: &PaceKey, t0: Instant) {
    throttle_at(pacer, k, t0);
    answer(pacer, k);
    throttle_at(pacer, k, t0 + ms(1000));
}

/// Throttles every first call after a pause, `times` in a row, nothing answered in between
/// (the quota used up by someone else); returns when the last pause ends.
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
    let (pacer, k, t0) = paced();
    throttle_at(&pacer, &k, t0);
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
    let (pacer, k, t0) = paced();
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
    let (pacer, k, t0) = paced();
    // Every probe after a pause throttled, six times: 20, 10, 5, 2.5, 1.25, then the floor.
    throttling_wave(&pacer, &k, t0, 6);
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
    let (pacer, k, t0) = paced();
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
    let (pacer, k, t0) = paced();
    two_throttles_an_answer_apart(&pacer, &k, t0);
    answer(&pacer, &k);
    // Scaled to the last throttled rate (about 10/s), not to the 20/s of the first answer:
    // probing starts near 9/s.
    answers_until(&pacer, &k, 9.0);
    assert!(answers_until(&pacer, &k, 10.0) > 50);
}

#[test]
fn while_the_rate_is_cut_callers_turned_away_come_back_within_the_horizon() {
    let (pacer, k, t0) = paced();
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
    throttle_at(&pacer, &hangzhou, t0);
    for other in [key("ak1", "cn-shanghai"), key("ak2", "cn-hangzhou")] {
        assert_eq!(pacer.rate(&other), Some(20.0));
        assert!(matches!(pacer.turn(&other, t0, WAIT), Turn::Go(_)));
        assert_eq!(start(&pacer, &other, t0), t0 + ms(50));
    }
    assert_eq!(pacer.rate(&hangzhou), Some(10.0));
}

#[test]
fn a_key_left_alone_for_a_minute_is_forgotten_and_starts_afresh() {
    let (pacer, k, t0) = paced();
    throttle_at(&pacer, &k, t0);
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
