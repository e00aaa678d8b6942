//! The benchmark drivers' view of the sessions: a watch forwarded over a channel, stamped on
//! arrival, so a driver can wait on it with deadlines.

use futures::StreamExt;
use kube::Api;
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use ecs_vnc_operator::session::VncSession;

pub enum Msg<T> {
    /// The initial list is complete.
    Synced,
    Seen(T),
}

/// Forwards every session the watch delivers (as `convert` makes of it), and a marker once the
/// initial list is complete. Errors back off (a broken connection is not a hot loop); the task
/// ends when the receiver is dropped, or when the caller aborts the handle.
pub fn spawn<T: Send + 'static>(
    api: Api<VncSession>,
    label: &'static str,
    convert: fn(&VncSession) -> T,
) -> (mpsc::UnboundedReceiver<Msg<T>>, JoinHandle<()>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        let mut stream = watcher(api, watcher::Config::default())
            .default_backoff()
            .boxed();
        while let Some(event) = stream.next().await {
            let msg = match event {
                Ok(watcher::Event::Apply(s) | watcher::Event::InitApply(s)) => {
                    Msg::Seen(convert(&s))
                }
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
