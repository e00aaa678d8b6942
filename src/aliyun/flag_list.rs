//! The comma-separated lists that the client's command-line flags take (`--extra-regions`,
//! `--allowed-endpoints`).

/// The items of `list`: split at commas, each trimmed, empty ones dropped.
pub(crate) fn items(list: &str) -> impl Iterator<Item = &str> {
    list.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
}
