//! What a VncSession's status says, read the way the tests compare it: its phase, its last
//! error, a condition, the refresh value served.

use ecs_vnc_operator::session::VncSession;

/// The phase's name, `""` before the first status.
pub fn phase(s: &VncSession) -> &'static str {
    s.status
        .as_ref()
        .and_then(|st| st.phase)
        .map_or("", |p| p.as_str())
}

/// `lastError`'s code and message, empty if none.
pub fn last_error(s: &VncSession) -> (String, String) {
    let e = s.status.as_ref().and_then(|st| st.last_error.clone());
    e.map(|e| (e.code, e.message)).unwrap_or_default()
}

/// `lastError`'s code, empty if none.
pub fn error_code(s: &VncSession) -> String {
    last_error(s).0
}

/// The status (`True`, `False`, ...) of condition `type_`, empty if there is none.
pub fn condition(s: &VncSession, type_: &str) -> String {
    s.status
        .as_ref()
        .and_then(|st| st.conditions.iter().find(|c| c.type_ == type_))
        .map(|c| c.status.clone())
        .unwrap_or_default()
}

pub fn observed_refresh(s: &VncSession) -> Option<&str> {
    let status = s.status.as_ref();
    status.and_then(|st| st.observed_refresh.as_deref())
}

/// A failure only a person can fix: `code` with a message naming every one of `needles`, not
/// refreshable, `Stalled`. Returns the message.
#[track_caller]
pub fn assert_stalled(s: &VncSession, code: &str, needles: &[&str]) -> String {
    let (got, message) = last_error(s);
    assert_eq!(got, code, "{message}");
    assert!(needles.iter().all(|n| message.contains(n)), "{message}");
    assert!(!s.status.as_ref().unwrap().refreshable);
    assert_eq!(condition(s, "Stalled"), "True", "a person must act");
    message
}
