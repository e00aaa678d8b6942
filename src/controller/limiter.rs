//! At most N console URLs per minute per instance, counted across every session that targets it
//! (ECS allows 30 reconnects a minute). A sliding window: a slot frees 60 s after it was taken.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use jiff::Timestamp;

const WINDOW: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub struct Limiter {
    per_minute: u32,
    taken: Mutex<HashMap<String, VecDeque<Timestamp>>>,
}

impl Limiter {
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute,
            taken: Mutex::new(HashMap::new()),
        }
    }

    pub fn per_minute(&self) -> u32 {
        self.per_minute
    }

    /// Takes a slot for `region/instance` at `now`, or says when the next one frees.
    pub fn try_acquire(
        &self,
        region_id: &str,
        instance_id: &str,
        now: Timestamp,
    ) -> Result<(), Timestamp> {
        self.try_acquire_seeded(region_id, instance_id, now, Vec::new)
    }

    /// [`Limiter::try_acquire`]; an instance this limiter holds nothing for is first seeded with
    /// `seed()`, the issue times other processes may have spent (a restart, another leader).
    /// Conservative: each counts as a slot taken a second after it (issue times are stored
    /// rounded down).
    pub fn try_acquire_seeded(
        &self,
        region_id: &str,
        instance_id: &str,
        now: Timestamp,
        seed: impl FnOnce() -> Vec<Timestamp>,
    ) -> Result<(), Timestamp> {
        self.slot(region_id, instance_id, now, seed, true)
    }

    /// Returns the slot taken at `taken_at` for `region/instance`: the attempt it was taken for
    /// issued no URL.
    pub fn give_back(&self, region_id: &str, instance_id: &str, taken_at: Timestamp) {
        let key = format!("{region_id}/{instance_id}");
        let mut taken = self
            .taken
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(slots) = taken.get_mut(&key)
            && let Some(i) = slots.iter().rposition(|t| *t == taken_at)
        {
            slots.remove(i);
        }
    }

    /// When a slot frees for `region/instance` (`None`: one is free now), without taking it.
    /// A session throttled under another limit or by another process asks this rather than
    /// trusting the time it stored.
    pub fn free_at_seeded(
        &self,
        region_id: &str,
        instance_id: &str,
        now: Timestamp,
        seed: impl FnOnce() -> Vec<Timestamp>,
    ) -> Option<Timestamp> {
        self.slot(region_id, instance_id, now, seed, false).err()
    }

    fn slot(
        &self,
        region_id: &str,
        instance_id: &str,
        now: Timestamp,
        seed: impl FnOnce() -> Vec<Timestamp>,
        take: bool,
    ) -> Result<(), Timestamp> {
        let key = format!("{region_id}/{instance_id}");
        let mut taken = self
            .taken
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Forget windows that have fully passed so the map does not grow with every instance ever seen.
        taken.retain(|_, slots| {
            slots
                .back()
                .is_some_and(|last| crate::session::expiry::add(*last, WINDOW) > now)
        });
        let slots = taken.entry(key).or_insert_with(|| {
            let mut seeded: Vec<Timestamp> = seed()
                .into_iter()
                .map(|t| crate::session::expiry::add(t, Duration::from_secs(1)))
                .filter(|t| crate::session::expiry::add(*t, WINDOW) > now)
                .collect();
            seeded.sort();
            seeded.into()
        });
        while slots
            .front()
            .is_some_and(|first| crate::session::expiry::add(*first, WINDOW) <= now)
        {
            slots.pop_front();
        }
        if slots.len() < self.per_minute as usize {
            if take {
                slots.push_back(now);
            }
            Ok(())
        } else {
            let oldest = slots.front().copied().unwrap_or(now);
            Err(crate::session::expiry::add(oldest, WINDOW))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + s).unwrap()
    }

    /// Asks for a slot for instance `i-a` in cn-hangzhou at second `s`.
    fn ask(limiter: &Limiter, s: i64) -> Result<(), Timestamp> {
        limiter.try_acquire("cn-hangzhou", "i-a", at(s))
    }

    #[test]
    fn a_fresh_limiter_counts_what_the_watch_cache_says_was_issued() {
        let limiter = Limiter::new(2);
        let seed = || vec![at(-70), at(-10), at(-5)];
        // Two of the three are inside the window: the limit is already used up.
        assert_eq!(
            limiter.try_acquire_seeded("cn-hangzhou", "i-a", at(0), seed),
            Err(at(51)),
            "frees a minute after the first, plus a second for rounding"
        );
        // Seeded once: later calls do not count the same issues again.
        assert_eq!(
            limiter.try_acquire_seeded("cn-hangzhou", "i-a", at(51), seed),
            Ok(())
        );
    }

    #[test]
    fn a_slot_given_back_is_free_again() {
        let limiter = Limiter::new(1);
        assert_eq!(limiter.try_acquire("r", "i-a", at(0)), Ok(()));
        assert!(limiter.try_acquire("r", "i-a", at(1)).is_err());
        limiter.give_back("r", "i-a", at(0));
        assert_eq!(limiter.try_acquire("r", "i-a", at(1)), Ok(()));
        limiter.give_back("r", "i-b", at(1)); // unknown: nothing happens
    }

    #[test]
    fn peeking_takes_no_slot() {
        let limiter = Limiter::new(1);
        assert_eq!(limiter.free_at_seeded("r", "i-a", at(0), Vec::new), None);
        assert_eq!(limiter.free_at_seeded("r", "i-a", at(0), Vec::new), None);
        assert_eq!(limiter.try_acquire("r", "i-a", at(0)), Ok(()));
        assert_eq!(
            limiter.free_at_seeded("r", "i-a", at(1), Vec::new),
            Some(at(60))
        );
    }

    #[test]
    fn the_31st_url_in_a_minute_waits_for_the_first_slot_to_free() {
        let limiter = Limiter::new(30);
        for i in 0..30 {
            assert_eq!(ask(&limiter, i), Ok(()));
        }
        for (s, answer) in [
            (30, Err(at(60))),
            (59, Err(at(60))),
            (60, Ok(())),
            (60, Err(at(61))),
        ] {
            assert_eq!(ask(&limiter, s), answer, "at second {s}");
        }
    }

    #[test]
    fn instances_and_regions_are_counted_apart() {
        let limiter = Limiter::new(1);
        assert_eq!(ask(&limiter, 0), Ok(()));
        assert_eq!(limiter.try_acquire("cn-hangzhou", "i-b", at(0)), Ok(()));
        assert_eq!(limiter.try_acquire("cn-shanghai", "i-a", at(0)), Ok(()));
        assert!(ask(&limiter, 1).is_err());
    }

    #[test]
    fn a_zero_limit_never_grants() {
        assert_eq!(ask(&Limiter::new(0), 0), Err(at(60)));
    }

    #[test]
    fn idle_instances_are_forgotten() {
        let limiter = Limiter::new(5);
        limiter.try_acquire("cn-hangzhou", "i-a", at(0)).unwrap();
        limiter.try_acquire("cn-hangzhou", "i-b", at(100)).unwrap();
        assert_eq!(limiter.taken.lock().unwrap().len(), 1);
    }
}
