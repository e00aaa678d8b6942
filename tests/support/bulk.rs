//! Many objects at once through the API (no kubectl, so no last-applied copy), as a tenant
//! that floods its namespace would write them.

use std::time::Duration;

use futures::StreamExt;
use kube::Api;

/// Creates `objects`, `parallel` at a time; panics on the first refusal. Each request is bounded
/// (60 s).
pub async fn create_all<K>(api: &Api<K>, objects: Vec<K>, parallel: usize)
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + serde::Serialize,
{
    let params = kube::api::PostParams::default();
    let results: Vec<_> = futures::stream::iter(objects)
        .map(|object| {
            let params = &params;
            async move {
                let name = object.meta().name.clone().unwrap_or_default();
                let created =
                    tokio::time::timeout(Duration::from_secs(60), api.create(params, &object));
                (name, created.await)
            }
        })
        .buffer_unordered(parallel.max(1))
        .collect()
        .await;
    for (name, result) in results {
        match result {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => panic!("create {name}: {e}"),
            Err(_) => panic!("create {name}: no answer within 60 s"),
        }
    }
}
