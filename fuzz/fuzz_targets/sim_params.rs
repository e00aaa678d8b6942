//! `ecs-sim`'s request parser (query string plus form body) on any input: no panic; what it
//! accepts has non-empty, unique names, and reads back the same once encoded again.

#![no_main]

use libfuzzer_sys::fuzz_target;

// The parser is private to the library, so it is compiled here from its own source, beside the
// names it takes from its surroundings (`super::errors`, `crate::aliyun`).
mod aliyun {
    pub use ecs_vnc_operator::aliyun::signature;
}
#[allow(dead_code)]
#[path = "../../src/sim/errors.rs"]
mod errors;
#[allow(dead_code)]
#[path = "../../src/sim/params.rs"]
mod params;

use aliyun::signature::percent_encode;
use params::Params;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Query, then the form body after a NUL (none: a request without a form body).
    let (query, form) = match text.split_once('\0') {
        Some((query, form)) => (query, Some(form)),
        None => (text, None),
    };
    let Ok(params) = Params::parse(query, form) else {
        return;
    };
    let mut names = std::collections::HashSet::new();
    for (name, _) in params.iter() {
        assert!(!name.is_empty());
        assert!(names.insert(name), "{name:?} twice");
    }
    let again: String = params
        .iter()
        .map(|(name, value)| format!("{}={}", percent_encode(name), percent_encode(value)))
        .collect::<Vec<_>>()
        .join("&");
    let reread = Params::parse(&again, None).expect("re-encoded parameters parse");
    assert!(reread.iter().eq(params.iter()), "{again}");
});
