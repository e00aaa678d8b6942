//! The fault matrix's Throttling row (scripts/fault-matrix.sh), replayed against the pacer on a
//! simulated clock: 50 sessions ask for a refresh at once and ECS answers the first 50 calls
//! `Throttling.User`, whatever the pace (the account's quota used up elsewhere). Each session
//! does what the controller does: takes a turn as `Pacer::run` does (at most five seconds of
//! waiting, four retakes), is sent back to its stored retry time (whole seconds, rounded up)
//! when paced or throttled, and is served by the first call answered without throttling.
//!
//! Nothing here sleeps or reads the wall clock for an assertion: every instant is computed.

use std::time::{Duration, Instant};

use ecs_vnc_operator::controller::pacer::{PaceKey, Pacer, PacerConfig, Ticket, Turn};
use ecs_vnc_operator::session::decide::{MAX_AUTOMATIC_RETRIES, backoff};

const SESSIONS: usize = 50;
const WAVE: usize = 50;
/// As `Pacer::run`: turns taken again after a voided one before giving up for a pause.
const RETAKES: u32 = 4;

#[derive(Clone, Copy, Debug)]
enum Step {
    /// A reconcile starts: it asks the pacer for a turn.
    Reconcile,
    /// Waiting for a reserved turn; then confirm it (or take another).
    Confirm {
        ticket: Ticket,
        retakes: u32,
        deadline: Instant,
    },
}

enum Next {
    Step(Step),
    /// No turn within the wait: `lastError.code: Paced`, back at this time.
    Paced(Instant),
    /// A throttling answer: a retryable failure, back at this time.
    Failed(Instant),
}

struct Session {
    due: Instant,
    step: Step,
    failures: u32,
    served: Option<Instant>,
    gave_up: bool,
}

#[derive(Debug, Default)]
struct Replay {
    /// From the first call to the last throttling answer.
    wave_s: f64,
    /// From the last throttling answer to the last session served.
    recovery_s: f64,
    served: usize,
    lost: usize,
    /// Sessions sent back by the pacer (each is a status write and an Event).
    paced: usize,
    throttled: usize,
    calls: usize,
}

/// Whole seconds after `t0` (a whole second of the wall clock), rounded up, as a stored
/// `retryAt`; the controller requeues a millisecond after it.
fn stored(t0: Instant, at: Instant) -> Instant {
    let secs = at.saturating_duration_since(t0).as_secs_f64().ceil();
    t0 + Duration::from_secs_f64(secs) + Duration::from_millis(1)
}

fn replay() -> Replay {
    let config = PacerConfig::per_second(20);
    let pacer = Pacer::new(config);
    let key = PaceKey::new("ak", "cn-hangzhou");
    let t0 = Instant::now();
    let mut sessions: Vec<Session> = (0..SESSIONS)
        .map(|n| Session {
            // The watch delivers the 50 annotations over a few milliseconds.
            due: t0 + Duration::from_millis(n as u64),
            step: Step::Reconcile,
            failures: 0,
            served: None,
            gave_up: false,
        })
        .collect();
    let mut wave_left = WAVE;
    let mut replay = Replay::default();
    let mut last_throttle = t0;

    for _ in 0..1_000_000 {
        let Some(n) = (0..SESSIONS)
            .filter(|&n| sessions[n].served.is_none() && !sessions[n].gave_up)
            .min_by_key(|&n| sessions[n].due)
        else {
            break;
        };
        let s = &mut sessions[n];
        let now = s.due;
        // A turn as `Pacer::run` takes it: a ticket to confirm when it starts, or no turn within
        // the wait (paced: come back at the time given).
        let take = |now: Instant, deadline: Instant, retakes: u32| -> Next {
            if retakes >= RETAKES {
                return Next::Paced(now + config.pause);
            }
            match pacer.turn(&key, now, deadline.saturating_duration_since(now)) {
                Turn::Go(ticket) | Turn::Wait(ticket) => Next::Step(Step::Confirm {
                    ticket,
                    retakes,
                    deadline,
                }),
                Turn::Later(at) => Next::Paced(at),
            }
        };
        let next = match s.step {
            Step::Reconcile => take(now, now + config.max_wait, 0),
            Step::Confirm {
                ticket,
                retakes,
                deadline,
            } => {
                if !pacer.confirm(&key, &ticket) {
                    take(now, deadline, retakes + 1)
                } else if wave_left > 0 {
                    // The call, answered at once: throttled.
                    replay.calls += 1;
                    wave_left -= 1;
                    replay.throttled += 1;
                    last_throttle = now;
                    pacer.throttled(&key, &ticket, now);
                    s.failures += 1;
                    if s.failures >= MAX_AUTOMATIC_RETRIES {
                        s.gave_up = true;
                        continue;
                    }
                    Next::Failed(now + backoff(s.failures, 0.5))
                } else {
                    replay.calls += 1;
                    pacer.answered(&key, &ticket);
                    s.served = Some(now);
                    continue;
                }
            }
        };
        match next {
            Next::Step(step) => {
                if let Step::Confirm { ticket, .. } = step {
                    s.due = ticket.at.max(now);
                }
                s.step = step;
            }
            Next::Paced(at) | Next::Failed(at) => {
                replay.paced += usize::from(matches!(next, Next::Paced(_)));
                s.due = stored(t0, at);
                s.step = Step::Reconcile;
            }
        }
    }
    let last_served = sessions.iter().filter_map(|s| s.served).max();
    replay.served = sessions.iter().filter(|s| s.served.is_some()).count();
    replay.lost = SESSIONS - replay.served;
    replay.wave_s = last_throttle.duration_since(t0).as_secs_f64();
    replay.recovery_s = last_served.map_or(f64::INFINITY, |at| {
        at.saturating_duration_since(last_throttle).as_secs_f64()
    });
    replay
}

#[test]
fn after_a_throttling_wave_fifty_refreshes_are_served_in_proportion_to_the_quota() {
    let r = replay();
    eprintln!("{r:?}");
    assert_eq!(r.lost, 0, "every refresh served: {r:?}");
    assert_eq!(r.throttled, WAVE);
    // 50 calls at 20/s take 2.5 s; the rate comes back from its floor in a few seconds, and a
    // session paced meanwhile was told to come back within the promise horizon (10 s).
    assert!(r.recovery_s <= 15.0, "{r:?}");
    // A waiting session is sent back (a status write and an Event) every few seconds at most.
    assert!(r.paced <= 5 * SESSIONS, "{r:?}");
}
