//! `--timeout` values: `500ms`, `10s`, `1m`, `1m30s` (Go-style, as kubectl takes them); a bare
//! number is seconds.

use std::time::Duration;

/// The longest accepted value: the operator answers in seconds, and a bound keeps every deadline
/// computed from it (`now + timeout`) far from overflow.
pub const MAX: Duration = Duration::from_secs(3600);

/// Parses a positive duration of at most [`MAX`]; the message names what is accepted.
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let invalid = || format!("invalid duration {text:?}: use e.g. 500ms, 10s, 1m or 1m30s");
    let too_long = || format!("duration {text:?} is too long: at most 1h");
    if text.is_empty() {
        return Err(invalid());
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        // All digits, so a parse failure can only be a number beyond u64.
        let secs: u64 = text.parse().map_err(|_| too_long())?;
        return bounded(Duration::from_secs(secs), text);
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(invalid());
        }
        let number = rest[..digits].parse::<u64>().ok();
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let millis_per_unit: u64 = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            _ => return Err(invalid()),
        };
        rest = &rest[unit_len..];
        let part = number
            .and_then(|n| n.checked_mul(millis_per_unit))
            .map(Duration::from_millis)
            .ok_or_else(too_long)?;
        total = total.checked_add(part).ok_or_else(too_long)?;
    }
    bounded(total, text)
}

fn bounded(d: Duration, text: &str) -> Result<Duration, String> {
    if d.is_zero() {
        Err(format!("duration {text:?} must be more than zero"))
    } else if d > MAX {
        Err(format!("duration {text:?} is too long: at most 1h"))
    } else {
        Ok(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_usual_forms() {
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse("1s500ms"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse("15"), Ok(Duration::from_secs(15)));
        assert_eq!(parse("3600"), Ok(MAX));
    }

    #[test]
    fn rejects_nonsense_and_zero() {
        for bad in [
            "", "s", "10x", "ten", "-1s", "1.5s", "0s", "0", "10 s", "1m-", "ms",
        ] {
            let err = parse(bad).unwrap_err();
            assert!(!err.contains("too long"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn huge_values_are_refused_as_too_long_never_a_panic() {
        // 9999999999999999999 fits in u64 seconds; it used to reach `Instant::now() + timeout`.
        for huge in [
            "9999999999999999999",
            "99999999999999999999",
            "99999999999999999999s",
            "18446744073709551615h",
            "18446744073709551615ms",
            "3601",
            "1h1ms",
            "61m",
            "2h",
        ] {
            assert_eq!(
                parse(huge),
                Err(format!("duration {huge:?} is too long: at most 1h")),
            );
        }
    }
}
