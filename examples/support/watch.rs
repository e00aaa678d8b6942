//! The benchmark drivers' view of the sessions: a watch forwarded over a channel, each session
//! stamped on arrival, so a driver can wait on it with deadlines.

use std::time::Instant;

use futures::StreamExt;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, ResourceExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use ecs_vnc_operator::session::VncSession;
use ecs_vnc_operator::session::crd::Phase;

pub enum Msg {
    /// The initial list is complete.
    Synced,
    Seen(Box<Seen>),
}

/// What the watch saw of one session, stamped on arrival.
// Each driver reads the fields it needs.
#[allow(dead_code)]
pub struct Seen {
    pub name: String,
    pub instance_id: String,
    pub phase: Option<Phase>,
    pub observed_refresh: Option<String>,
    pub console_url: Option<String>,
    pub issued_at: Option<jiff::Timestamp>,
    pub at: Instant,
}

fn seen(session: &VncSession) -> Box<Seen> {
    let status = session.status.clone().unwrap_or_default();
    Box::new(Seen {
        name: session.name_any(),
        instance_id: session.spec.instance_id.clone(),
        phase: status.phase,
        observed_refresh: status.observed_refresh,
        console_url: status.console_url,
        issued_at: status.issued_at.map(|t| t.0),
        at: Instant::now(),
    })
}

/// Forwards every session the watch delivers, and a marker once the initial list is complete.
/// Errors back off (a broken connection is not a hot loop); the task ends when the receiver is
/// dropped, or when the caller aborts the handle.
pub fn spawn(
    api: Api<VncSession>,
    label: &'static str,
) -> (mpsc::UnboundedReceiver<Msg>, JoinHandle<()>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        let mut stream = watcher(api, watcher::Config::default())
            .default_backoff()
            .boxed();
        while let Some(event) = stream.next().await {
            let msg = match event {
                Ok(watcher::Event::Apply(s) | watcher::Event::InitApply(s)) => Msg::Seen(seen(&s)),
                Ok(watcher::Event::InitDone) => Msg::Synced,
                Ok(_) => continue,
                Err(_) if tx.is_closed() => return,
                Err(e) => {
                    eprintln!("{label}: watch error: {e}");
                    continue;
                }
            };
            if tx.send(msg).is_err() {
                return;
            }
        }
    });
    (rx, task)
}
