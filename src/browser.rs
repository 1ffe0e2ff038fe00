//! Opening the authorization URL: the `open` crate, or `--browser-command`. The URL is always
//! printed on stderr too, for the machine where no browser opens (SSH, containers).

use std::process::{Command, Stdio};

use crate::config::Config;

/// Whether a browser can plausibly be shown to the user without a terminal.
pub fn can_open(config: &Config) -> bool {
    if config.browser_command.is_some() {
        return true;
    }
    if config.skip_open_browser {
        return false;
    }
    if cfg!(any(target_os = "macos", target_os = "windows")) {
        return true;
    }
    ["DISPLAY", "WAYLAND_DISPLAY", "BROWSER"]
        .iter()
        .any(|var| std::env::var_os(var).is_some_and(|v| !v.is_empty()))
}

pub fn open(url: &str, config: &Config) {
    eprintln!("Sign in to continue. If no browser opens, visit this URL:\n\n    {url}\n");
    launch(url, config);
}

/// Opens `url` in the browser (unless --skip-open-browser), printing nothing but a warning
/// when that fails: the caller has already told the user what to open.
pub fn launch(url: &str, config: &Config) {
    if config.skip_open_browser && config.browser_command.is_none() {
        return;
    }
    let result = match &config.browser_command {
        // The browser gets none of our streams: kubectl reads our stdout until every writer has
        // closed it, and `kubectl ... 2>&1 | less` would wait on stderr the same way, while a
        // browser outlives us.
        Some(command) => Command::new(command)
            .arg(url)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map(|_| ()),
        None => open::that_detached(url),
    };
    if let Err(e) = result {
        crate::warn!("could not open the browser ({e}); open the URL above by hand");
    }
}
