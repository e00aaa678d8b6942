//! [`Pacer::run`], the async shell around one ECS call: waits for the key's turn on tokio's
//! clock, makes the call, and tells the key what its answer says about the quota.

use std::future::Future;
use std::time::Instant;

use jiff::Timestamp;

use super::{PaceKey, Pacer, PacerConfig, Ticket, Turn};
use crate::aliyun::EcsError;

/// Turns a caller takes again after its turn was voided, before it gives up waiting.
const MAX_RETAKES: u32 = 4;

impl Pacer {
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
}

/// Tokio's clock, so that a paused test runtime paces in its own time.
fn clock() -> Instant {
    tokio::time::Instant::now().into_std()
}

fn wall_clock(at: Instant) -> Timestamp {
    crate::session::expiry::add(Timestamp::now(), at.saturating_duration_since(clock()))
}
