//! The duration parsers on any text: a grant's `ttl` (and the operator's duration flags, which
//! use it) and `kubectl vnc --timeout`. No panic; what is accepted is positive and bounded, and a
//! timeout reads back from how it is written.

#![no_main]

use std::time::Duration;

use ecs_vnc_operator::plugin;
use ecs_vnc_operator::session::validate;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(ttl) = validate::ttl(text) {
        assert!(
            ttl > Duration::ZERO && ttl.as_secs() <= 10 * 366 * 86_400,
            "{ttl:?}"
        );
        assert_eq!(ttl.subsec_nanos(), 0);
    }
    if let Ok(timeout) = plugin::duration::parse(text) {
        assert!(timeout > Duration::ZERO && timeout <= plugin::duration::MAX);
        let written = plugin::error::human(timeout);
        assert_eq!(plugin::duration::parse(&written), Ok(timeout), "{written}");
    }
});
