//! SIGTERM and Ctrl-C, as a signal every part of `run` can wait on.

use tokio::sync::watch;

#[derive(Clone)]
pub struct Signal(watch::Receiver<bool>);

impl Signal {
    /// Starts listening; the first SIGTERM or Ctrl-C fires the signal.
    pub fn install() -> std::io::Result<Self> {
        let (tx, rx) = watch::channel(false);
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM: stopping"),
                _ = tokio::signal::ctrl_c() => tracing::info!("interrupted: stopping"),
            }
            let _ = tx.send(true);
        });
        Ok(Self(rx))
    }

    pub async fn wait(&self) {
        let mut rx = self.0.clone();
        // An error means the sender is gone, which only happens after it fired.
        let _ = rx.wait_for(|fired| *fired).await;
    }

    /// An owned future for APIs that need `'static`.
    pub fn wait_owned(&self) -> impl Future<Output = ()> + Send + Sync + 'static {
        let this = self.clone();
        async move { this.wait().await }
    }
}
