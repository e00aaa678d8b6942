//! Handing the console URL to the desktop's default browser.

use std::process::Stdio;
use std::time::Duration;

/// Opens a URL for the user; the error says why it could not (never the URL itself).
pub trait Browser {
    fn open(&self, url: &str) -> impl Future<Output = Result<(), String>>;
}

/// `xdg-open` on Linux and the BSDs, `open` on macOS.
pub struct SystemBrowser;

/// An opener that has not exited by then is taken to have started the browser (some, like a
/// text browser, only return when it closes).
const SETTLE: Duration = Duration::from_secs(3);

impl Browser for SystemBrowser {
    async fn open(&self, url: &str) -> Result<(), String> {
        let program = if cfg!(target_os = "macos") {
            "open"
        } else if cfg!(unix) {
            "xdg-open"
        } else {
            return Err("no known way to start a browser on this system".to_owned());
        };
        // The opener's own output could echo the URL; it is not ours to print.
        let mut child = tokio::process::Command::new(program)
            .arg(url)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => format!("{program} is not installed"),
                _ => format!("cannot run {program}: {e}"),
            })?;
        match tokio::time::timeout(SETTLE, child.wait()).await {
            Ok(Ok(status)) if status.success() => Ok(()),
            Ok(Ok(status)) => Err(format!("{program} failed ({status})")),
            Ok(Err(e)) => Err(format!("{program} failed: {e}")),
            Err(_) => Ok(()),
        }
    }
}
