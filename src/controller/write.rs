//! The operator's only writes to Kubernetes: the status (server-side apply) and Events.

use kube::api::{Patch, PatchParams};
use kube::runtime::events::{Event, EventType};
use kube::{Api, Resource};
use serde_json::json;

use super::Context;
use super::error::kube_reason;
use super::manager::MANAGER;
use crate::session::decide::Note;
use crate::session::{VncSession, VncSessionStatus};

pub mod events;

/// How a status write ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Written {
    /// Written; carries the object's new resourceVersion for a following conditional write.
    Done(Option<String>),
    /// The object changed since it was read (someone else wrote): decide again on the new state.
    Conflict,
    /// The object is gone (deleted while an ECS call was in flight).
    Gone,
}

/// Applies `status` as the whole status this operator owns: fields it leaves out (a cleared
/// console URL) are removed. `resource_version` makes the write conditional on the object read.
pub async fn status(
    api: &Api<VncSession>,
    session: &VncSession,
    resource_version: Option<&str>,
    status: &VncSessionStatus,
) -> Result<Written, kube::Error> {
    let name = session.metadata.name.as_deref().unwrap_or_default();
    let patch = json!({
        "apiVersion": "ecsvnc.dev/v1alpha1",
        "kind": "VncSession",
        "metadata": { "resourceVersion": resource_version },
        "status": status,
    });
    let params = PatchParams::apply(MANAGER).force();
    match api.patch_status(name, &params, &Patch::Apply(&patch)).await {
        Ok(updated) => Ok(Written::Done(updated.metadata.resource_version)),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(Written::Conflict),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(Written::Gone),
        Err(e) => Err(e),
    }
}

/// Publishes an Event on the session. Failing to publish is logged, not fatal: the status is the
/// record that matters.
pub async fn event(ctx: &Context, session: &VncSession, note: &Note, action: &str) {
    let event = Event {
        type_: if note.warning {
            EventType::Warning
        } else {
            EventType::Normal
        },
        reason: note.reason.as_str().to_owned(),
        note: Some(note.message.clone()),
        action: action.to_owned(),
        secondary: None,
    };
    // Not kube's Recorder: its cache kept every Event for six minutes (see events.rs).
    if let Err(e) =
        events::publish(&ctx.client, &ctx.events, &event, &session.object_ref(&())).await
    {
        tracing::warn!(reason = note.reason.as_str(), error = %kube_reason(&e), "could not publish Event");
    }
}
