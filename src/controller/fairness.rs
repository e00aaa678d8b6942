//! ECS calls in flight per namespace. A reconcile holds one of the controller's shared slots for
//! as long as its ECS call runs, so one namespace pointing many sessions at a slow (allowed)
//! endpoint could hold them all and starve every other namespace. Each namespace may hold at most
//! a fixed share of the slots at once; a session over its namespace's share looks again shortly,
//! without holding a slot while it waits.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The share of the controller's slots one namespace may hold: an eighth, at least one.
const SHARE_DIVISOR: usize = 8;

/// When a session over its namespace's share looks again (plus up to as much again in jitter,
/// so waiting sessions do not come back in lockstep).
pub const RETRY_AFTER: Duration = Duration::from_millis(500);

/// How long a session over its namespace's share waits: [`RETRY_AFTER`] and its jitter.
pub fn retry_after() -> Duration {
    RETRY_AFTER + RETRY_AFTER.mul_f64(fastrand::f64())
}

#[derive(Debug)]
pub struct NamespaceSlots {
    per_namespace: usize,
    in_flight: Arc<Mutex<HashMap<String, usize>>>,
}

impl NamespaceSlots {
    /// Shares of `total` slots (the controller's `--max-concurrent-reconciles`).
    pub fn new(total: u16) -> Self {
        Self {
            per_namespace: (usize::from(total) / SHARE_DIVISOR).max(1),
            in_flight: Arc::default(),
        }
    }

    pub fn per_namespace(&self) -> usize {
        self.per_namespace
    }

    /// A slot for one ECS call on behalf of `namespace`, or `None` while it holds its share.
    pub fn try_take(&self, namespace: &str) -> Option<NamespaceSlot> {
        let mut in_flight = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        let held = in_flight.entry(namespace.to_owned()).or_insert(0);
        if *held >= self.per_namespace {
            return None;
        }
        *held += 1;
        Some(NamespaceSlot {
            namespace: namespace.to_owned(),
            in_flight: self.in_flight.clone(),
        })
    }

    #[cfg(test)]
    fn namespaces(&self) -> usize {
        self.in_flight.lock().unwrap().len()
    }
}

/// Given back when dropped, however the call ends (including a reconcile abandoned mid-call).
#[derive(Debug)]
pub struct NamespaceSlot {
    namespace: String,
    in_flight: Arc<Mutex<HashMap<String, usize>>>,
}

impl Drop for NamespaceSlot {
    fn drop(&mut self) {
        let mut in_flight = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(held) = in_flight.get_mut(&self.namespace) {
            *held = held.saturating_sub(1);
            // Idle namespaces are forgotten, so the map is bounded by the calls in flight.
            if *held == 0 {
                in_flight.remove(&self.namespace);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_namespace_holds_at_most_its_share_and_others_are_not_affected() {
        let slots = NamespaceSlots::new(32);
        assert_eq!(slots.per_namespace(), 4);
        let held: Vec<_> = (0..4)
            .map(|_| slots.try_take("attacker").unwrap())
            .collect();
        assert!(slots.try_take("attacker").is_none(), "over its share");
        let victim = slots.try_take("victim");
        assert!(victim.is_some(), "another namespace still gets a slot");
        drop(held);
        assert!(
            slots.try_take("attacker").is_some(),
            "slots come back on drop"
        );
    }

    #[test]
    fn idle_namespaces_are_forgotten_and_a_small_pool_still_serves_one() {
        let slots = NamespaceSlots::new(1);
        assert_eq!(slots.per_namespace(), 1);
        let a = slots.try_take("a").unwrap();
        let b = slots.try_take("b").unwrap();
        assert_eq!(slots.namespaces(), 2);
        drop((a, b));
        assert_eq!(slots.namespaces(), 0);
    }
}
