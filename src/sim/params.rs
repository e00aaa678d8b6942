//! Request parameters: the query string (where `+` is a literal plus, per RFC 3986) merged with an
//! `application/x-www-form-urlencoded` body (where `+` is a space).

use std::collections::HashSet;

use crate::aliyun::signature::percent_decode;

use super::errors::EcsError;

/// Decoded `name=value` pairs in arrival order. A name appears at most once.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// Parses the query string and, if given, a form body. A broken escape, non-UTF-8 bytes, an
    /// empty name or a repeated name are all `InvalidParameter`: ECS would not read such a request
    /// the way the client meant it.
    pub(crate) fn parse(query: &str, form_body: Option<&str>) -> Result<Self, EcsError> {
        let mut pairs = Vec::new();
        split_into(query, false, &mut pairs)?;
        if let Some(body) = form_body {
            split_into(body, true, &mut pairs)?;
        }
        let mut names = HashSet::with_capacity(pairs.len());
        for (name, _) in &pairs {
            if !names.insert(name.as_str()) {
                return Err(EcsError::invalid_parameter(format!(
                    "The parameter \"{}\" appears more than once.",
                    crate::aliyun::signature::percent_encode(name)
                )));
            }
        }
        Ok(Params { pairs })
    }

    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// An empty value counts as missing, as it does for ECS.
    pub(crate) fn required(&self, name: &str) -> Result<&str, EcsError> {
        match self.get(name) {
            Some(value) if !value.is_empty() => Ok(value),
            _ => Err(EcsError::missing_parameter(name)),
        }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }
}

fn split_into(
    input: &str,
    plus_is_space: bool,
    pairs: &mut Vec<(String, String)>,
) -> Result<(), EcsError> {
    for segment in input.split('&').filter(|s| !s.is_empty()) {
        let (raw_name, raw_value) = segment.split_once('=').unwrap_or((segment, ""));
        let name = decode(raw_name, plus_is_space)?;
        if name.is_empty() {
            return Err(EcsError::invalid_parameter(
                "A parameter in the request has an empty name.",
            ));
        }
        let value = decode(raw_value, plus_is_space)?;
        pairs.push((name, value));
    }
    Ok(())
}

fn decode(raw: &str, plus_is_space: bool) -> Result<String, EcsError> {
    let decoded = if plus_is_space && raw.contains('+') {
        percent_decode(&raw.replace('+', " "))
    } else {
        percent_decode(raw)
    };
    decoded.ok_or_else(|| {
        EcsError::invalid_parameter(
            "The request contains a malformed percent-encoding or bytes that are not UTF-8.",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_plus_is_literal_and_form_plus_is_space() {
        let p = Params::parse("A=a+b%20c&B=%2B", Some("C=x+y&D=%2B")).unwrap();
        assert_eq!(p.get("A"), Some("a+b c"));
        assert_eq!(p.get("B"), Some("+"));
        assert_eq!(p.get("C"), Some("x y"));
        assert_eq!(p.get("D"), Some("+"));
    }

    #[test]
    fn empty_segments_and_valueless_names_are_tolerated() {
        let p = Params::parse("&A=1&&B&", None).unwrap();
        assert_eq!(p.get("A"), Some("1"));
        assert_eq!(p.get("B"), Some(""));
        assert_eq!(p.iter().count(), 2);
        assert!(p.required("B").is_err(), "empty is missing");
        assert_eq!(p.required("C").unwrap_err().code, "MissingParameter");
    }

    #[test]
    fn value_may_contain_equals() {
        let p = Params::parse("Signature=abc%3D&X=a=b", None).unwrap();
        assert_eq!(p.get("Signature"), Some("abc="));
        assert_eq!(p.get("X"), Some("a=b"));
    }

    #[test]
    fn broken_input_is_invalid_parameter() {
        for bad in ["A=%4", "A=%zz", "A=%FF", "=x", "A=1&A=2"] {
            let err = Params::parse(bad, None).unwrap_err();
            assert_eq!(err.code, "InvalidParameter", "{bad}");
            assert_eq!(err.status, 400);
        }
        let err = Params::parse("A=1", Some("A=2")).unwrap_err();
        assert_eq!(
            err.code, "InvalidParameter",
            "query and body name the same parameter"
        );
    }

    #[test]
    fn names_are_decoded_too() {
        let p = Params::parse("Na%6De=v%C3%A9", None).unwrap();
        assert_eq!(p.get("Name"), Some("vé"));
    }
}
