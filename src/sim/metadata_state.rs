//! What the instance metadata service remembers: the session tokens it handed out (bounded, the
//! oldest dropped first) and which credentials each RAM role currently serves.

use std::collections::{HashMap, VecDeque};
use std::fmt;

use jiff::Timestamp;

/// Most metadata tokens remembered; the oldest goes first.
const MAX_TOKENS: usize = 1024;

/// Tokens handed out and each role's current credentials.
#[derive(Default)]
pub(crate) struct MetadataState {
    tokens: HashMap<String, Timestamp>,
    order: VecDeque<String>,
    /// Role name -> AccessKeyId of its current credentials.
    pub(crate) current: HashMap<String, String>,
}

impl fmt::Debug for MetadataState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetadataState")
            .field("tokens", &self.tokens.len())
            .field("roles", &self.current.len())
            .finish()
    }
}

impl MetadataState {
    pub(crate) fn add_token(&mut self, token: String, expires_at: Timestamp, now: Timestamp) {
        self.tokens.retain(|_, at| *at > now);
        self.order.retain(|t| self.tokens.contains_key(t));
        while self.tokens.len() >= MAX_TOKENS {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            self.tokens.remove(&oldest);
        }
        self.order.push_back(token.clone());
        self.tokens.insert(token, expires_at);
    }

    pub(crate) fn token_valid(&self, token: &str, now: Timestamp) -> bool {
        self.tokens.get(token).is_some_and(|at| *at > now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_expire_and_the_table_is_bounded() {
        let now = Timestamp::from_second(1_000).unwrap();
        let mut state = MetadataState::default();
        state.add_token("a".into(), Timestamp::from_second(1_010).unwrap(), now);
        assert!(state.token_valid("a", now));
        assert!(!state.token_valid("a", Timestamp::from_second(1_010).unwrap()));
        assert!(!state.token_valid("b", now));
        for i in 0..MAX_TOKENS + 10 {
            state.add_token(i.to_string(), Timestamp::from_second(5_000).unwrap(), now);
        }
        assert_eq!(state.tokens.len(), MAX_TOKENS);
        assert!(!state.token_valid("a", now), "the oldest went first");
        assert!(state.token_valid(&(MAX_TOKENS + 9).to_string(), now));
    }
}
