//! Smoke test for the local control plane of the test library (tests/support/cluster.rs).

mod support;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ListParams};
use support::cluster::Cluster;

#[tokio::test]
#[ignore = "end-to-end: needs the local control plane; run scripts/test.sh"]
async fn control_plane_serves_namespaces() {
    let cluster = Cluster::start();
    let client = cluster.client().await;

    let namespaces: Api<Namespace> = Api::all(client);
    let list = namespaces
        .list(&ListParams::default())
        .await
        .expect("list namespaces");
    assert!(
        list.items
            .iter()
            .any(|ns| ns.metadata.name.as_deref() == Some("default")),
        "namespace `default` missing: {:?}",
        list.items
            .iter()
            .map(|ns| ns.metadata.name.clone())
            .collect::<Vec<_>>()
    );

    let out = cluster.kubectl(&["get", "namespace", "default", "-o", "name"]);
    assert!(out.status.success(), "kubectl failed: {out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "namespace/default"
    );
}

/// Exercises the parts the operator's e2e tests rely on: a CRD + watch on a
/// custom resource (crashed 1.20 apiservers built with Go >= 1.18 before the
/// reflect2 fix), `apply_file`, and running as a ServiceAccount via its
/// auto-created token Secret (RBAC denies what was not granted).
#[tokio::test]
#[ignore = "end-to-end: needs the local control plane; run scripts/test.sh"]
async fn custom_resource_watch_and_service_account_client() {
    use futures::{StreamExt, TryStreamExt};
    use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
    use kube::api::{
        ApiResource, DynamicObject, GroupVersionKind, PostParams, WatchEvent, WatchParams,
    };

    let cluster = Cluster::start();
    let crd = cluster.dir.join("crd.yaml");
    std::fs::write(
        &crd,
        r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
"#,
    )
    .unwrap();
    cluster.apply_file(&crd);
    let out = cluster.kubectl(&[
        "wait",
        "--for=condition=Established",
        "crd/widgets.example.com",
        "--timeout=30s",
    ]);
    assert!(out.status.success(), "CRD not established: {out:?}");

    let client = cluster.client().await;
    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk("example.com", "v1", "Widget"));
    let widgets: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &ar);
    let mut events = widgets
        .watch(&WatchParams::default().timeout(20), "0")
        .await
        .expect("watch widgets")
        .boxed();
    let mut widget = DynamicObject::new("w1", &ar);
    widget.data = serde_json::json!({"spec": {"size": 1}});
    widgets
        .create(&PostParams::default(), &widget)
        .await
        .expect("create widget");
    match events.try_next().await.expect("watch stream") {
        Some(WatchEvent::Added(obj)) => assert_eq!(obj.metadata.name.as_deref(), Some("w1")),
        other => panic!("unexpected watch event: {other:?}"),
    }

    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), "default");
    let mut sa = ServiceAccount::default();
    sa.metadata.name = Some("robot".into());
    sas.create(&PostParams::default(), &sa)
        .await
        .expect("create SA");
    let sa_kubeconfig = cluster.service_account_kubeconfig("default", "robot");
    let sa_client = Cluster::client_from(&sa_kubeconfig).await;
    let pods: Api<Pod> = Api::namespaced(sa_client, "default");
    match pods.list(&ListParams::default()).await {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 403, "{status:?}"),
        other => panic!("expected 403 for the ServiceAccount, got {other:?}"),
    }
}
