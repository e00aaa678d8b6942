//! An accept loop that never spins.
//!
//! While the process is out of file descriptors, `accept(2)` fails at once (EMFILE, ENFILE) and
//! leaves the connection queued, so the socket stays ready and a loop that just retries burns a
//! whole core. Any accept error pauses the loop instead, with a short capped backoff.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

const FIRST_PAUSE: Duration = Duration::from_millis(10);
/// Short enough that a probe is answered within about a second of descriptors coming back.
const MAX_PAUSE: Duration = Duration::from_secs(1);

/// Calls `accept` forever and hands each connection to `handle`. A run of errors is logged once,
/// when it starts: EMFILE every second would flood the logs of a process already in trouble.
pub async fn accept_loop<T, E: Display, F: Future<Output = Result<T, E>>>(
    mut accept: impl FnMut() -> F,
    mut handle: impl FnMut(T),
) {
    let mut failures: u32 = 0;
    loop {
        match accept().await {
            Ok(conn) => {
                if failures > 0 {
                    tracing::debug!(failures, "accepting connections again");
                    failures = 0;
                }
                handle(conn);
            }
            Err(error) => {
                if failures == 0 {
                    tracing::warn!(%error, "accept failed; backing off until it succeeds");
                }
                failures = failures.saturating_add(1);
                tokio::time::sleep(pause(failures)).await;
            }
        }
    }
}

/// 10 ms after the first failure, doubling up to [`MAX_PAUSE`].
fn pause(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    FIRST_PAUSE.saturating_mul(1 << doublings).min(MAX_PAUSE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;
    use tokio::time::Instant;

    fn emfile() -> io::Error {
        io::Error::from_raw_os_error(24) // EMFILE on Linux
    }

    #[tokio::test(start_paused = true)]
    async fn errors_back_off_doubling_up_to_a_second_and_success_resets() {
        let start = Instant::now();
        let mut calls: Vec<Duration> = Vec::new();
        let mut accepted = 0;
        // Fails 10 times, accepts once, then fails for good.
        let run = accept_loop(
            || {
                calls.push(start.elapsed());
                let result = if calls.len() == 11 {
                    Ok(())
                } else {
                    Err(emfile())
                };
                async { result }
            },
            |()| accepted += 1,
        );
        let _ = tokio::time::timeout(Duration::from_secs(10), run).await;

        let gaps: Vec<u128> = calls
            .windows(2)
            .map(|w| (w[1] - w[0]).as_millis())
            .collect();
        assert_eq!(
            gaps[..13],
            [10, 20, 40, 80, 160, 320, 640, 1000, 1000, 1000, 0, 10, 20]
        );
        assert_eq!(accepted, 1);
        // In 10 s of EMFILE: a few dozen calls at most, where a spinning loop makes millions.
        assert!(calls.len() < 30, "{} accept calls", calls.len());
    }

    #[test]
    fn the_pause_is_capped_and_never_overflows() {
        assert_eq!(pause(1), FIRST_PAUSE);
        assert_eq!(pause(2), 2 * FIRST_PAUSE);
        assert_eq!(pause(8), MAX_PAUSE);
        assert_eq!(pause(u32::MAX), MAX_PAUSE);
    }
}
