//! Opening the authorization URL. The URL is always printed on stderr too, for the machine
//! where no browser opens (SSH, containers). Which launcher, in order:
//! 1. `--browser-command`, split as a POSIX shell would (`firefox --private-window`,
//!    `open -a "Google Chrome"`), the URL appended as the last argument;
//! 2. `$BROWSER`, a `:`-separated list tried in turn, `%s` replaced by the URL where present
//!    (else the URL appended), as Python's webbrowser and xdg-utils read it;
//! 3. on WSL, the Windows default browser: `wslview`, else `cmd.exe /c start`, else
//!    `powershell.exe Start-Process` (the URL quoted for each, so `&` survives);
//! 4. the platform's default: the launchers the `open` crate knows (xdg-open, gio, ...), in
//!    its order.
//!
//! Whichever it is, the browser starts without the plugin's own variables
//! (`KUBECTL_OIDC_LOGIN_*`): a client secret, password or request header given there is for
//! the plugin, not for a browser that outlives it, nor for every helper, extension host and
//! crash reporter that browser starts later with its environment.

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
    if cfg!(any(target_os = "macos", target_os = "windows")) || is_wsl() {
        return true;
    }
    ["DISPLAY", "WAYLAND_DISPLAY", "BROWSER"]
        .iter()
        .any(|var| std::env::var_os(var).is_some_and(|v| !v.is_empty()))
}

/// Shows `shown` on the terminal and opens `launched` in the browser: a URL of the loopback
/// listener that leads to the same place, since other local users can read the browser's
/// command line but not the terminal.
pub fn open(shown: &str, launched: &str, config: &Config) {
    eprintln!("Sign in to continue. If no browser opens, visit this URL:\n\n    {shown}\n");
    launch(launched, config);
}

/// Opens `url` in the browser (unless --skip-open-browser), printing nothing but a warning
/// when that fails: the caller has already told the user what to open.
pub fn launch(url: &str, config: &Config) {
    if config.skip_open_browser && config.browser_command.is_none() {
        return;
    }
    let result = match &config.browser_command {
        Some(command) => command_line(command, url)
            .and_then(|argv| spawn(&argv).map(|()| format!("--browser-command ({})", argv[0]))),
        None => default_browser(url),
    };
    match result {
        Ok(launcher) => {
            crate::debug!(1, "opened the browser with {launcher}");
        }
        Err(e) => {
            crate::warn!("could not open the browser ({e}); open the URL above by hand");
        }
    }
}

/// The argv of a command line and the URL: `%s` in a word is replaced by the URL when
/// `substitute` and present anywhere, else the URL is the last argument.
fn argv_of(line: &str, url: &str, substitute: bool) -> Result<Vec<String>, String> {
    let mut words =
        shlex::split(line).ok_or_else(|| format!("cannot split {line:?} into words"))?;
    if words.is_empty() {
        return Err("the browser command is empty".into());
    }
    if substitute && words.iter().any(|w| w.contains("%s")) {
        for word in &mut words {
            *word = word.replace("%s", url);
        }
    } else {
        words.push(url.to_string());
    }
    Ok(words)
}

/// `--browser-command`: the URL is always appended, as kubelogin does. A value naming an
/// existing file is that program whole (kubelogin ran it unsplit, so paths with spaces such
/// as `C:\Program Files\...\chrome.exe` keep working).
fn command_line(line: &str, url: &str) -> Result<Vec<String>, String> {
    if std::path::Path::new(line).is_file() {
        return Ok(vec![line.to_string(), url.to_string()]);
    }
    argv_of(line, url, false)
}

fn default_browser(url: &str) -> Result<String, String> {
    let mut failures = Vec::new();
    if let Some(list) = std::env::var("BROWSER").ok().filter(|b| !b.is_empty()) {
        for entry in list.split(':').filter(|e| !e.trim().is_empty()) {
            match argv_of(entry, url, true).and_then(|argv| spawn(&argv)) {
                Ok(()) => return Ok(format!("$BROWSER entry {entry:?}")),
                Err(e) => failures.push(format!("$BROWSER entry {entry:?}: {e}")),
            }
        }
    }
    if is_wsl() {
        for argv in wsl_launchers(url) {
            match spawn(&argv) {
                Ok(()) => return Ok(format!("{} (WSL)", argv[0])),
                Err(e) => failures.push(e),
            }
        }
    }
    // The crate's own launching (`that_detached`) would pass our environment on.
    for mut command in open::commands(url) {
        let program = command.get_program().to_string_lossy().into_owned();
        match start_checked(&mut command) {
            Ok(()) => return Ok(format!("{program} (the system's default browser)")),
            Err(e) => failures.push(format!("{program}: {e}")),
        }
    }
    Err(failures.join("; "))
}

/// Starts a desktop launcher as the `open` crate does: one that exits with a failure at once
/// (xdg-open with no browser configured) lets the next one try; one still running after a
/// moment, or done with success, has handed the URL on.
fn start_checked(command: &mut Command) -> Result<(), String> {
    const SETTLE: std::time::Duration = std::time::Duration::from_millis(250);
    without_our_variables(command);
    // Detached as the crate detaches them: a session of its own (Unix), so the terminal's
    // Ctrl-C or hang-up does not reach the browser; no console window (Windows).
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: setsid is async-signal-safe and touches only the child.
        unsafe {
            command.pre_exec(|| {
                if libc::setsid() == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    #[cfg(windows)]
    {
        use std::os::windows::process::CommandExt;
        const CREATE_NEW_PROCESS_GROUP: u32 = 0x0000_0200;
        const CREATE_NO_WINDOW: u32 = 0x0800_0000;
        command.creation_flags(CREATE_NEW_PROCESS_GROUP | CREATE_NO_WINDOW);
    }
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let start = std::time::Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(format!("exited with {status}")),
            Ok(None) if start.elapsed() >= SETTLE => {
                // Reaped when it ends; the plugin usually ends first, and init reaps it then.
                std::thread::spawn(move || child.wait());
                return Ok(());
            }
            Ok(None) => std::thread::sleep(std::time::Duration::from_millis(10)),
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// Removes the plugin's own variables from what `command` inherits.
fn without_our_variables(command: &mut Command) {
    for (name, _) in std::env::vars_os() {
        if name
            .to_str()
            .is_some_and(|n| n.starts_with(crate::config::ENV_PREFIX))
        {
            command.env_remove(name);
        }
    }
}

/// The Windows side's ways to open a URL from WSL, in order. cmd.exe would end the command at
/// an unquoted `&`, so there it is escaped as `^&`; PowerShell gets the URL single-quoted.
fn wsl_launchers(url: &str) -> Vec<Vec<String>> {
    vec![
        vec!["wslview".into(), url.into()],
        vec![
            "cmd.exe".into(),
            "/c".into(),
            "start".into(),
            "\"\"".into(),
            url.replace('^', "^^").replace('&', "^&"),
        ],
        vec![
            "powershell.exe".into(),
            "-NoProfile".into(),
            "-Command".into(),
            format!("Start-Process '{}'", url.replace('\'', "''")),
        ],
    ]
}

/// Running under Windows Subsystem for Linux: its environment, or its kernel's name.
pub fn is_wsl() -> bool {
    if !cfg!(target_os = "linux") {
        return false;
    }
    if std::env::var_os("WSL_DISTRO_NAME").is_some_and(|v| !v.is_empty()) {
        return true;
    }
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .is_ok_and(|release| release.to_ascii_lowercase().contains("microsoft"))
}

/// Starts `argv` detached. The browser gets none of our streams: kubectl reads our stdout
/// until every writer has closed it, and `kubectl ... 2>&1 | less` would wait on stderr the
/// same way, while a browser outlives us.
fn spawn(argv: &[String]) -> Result<(), String> {
    let mut command = Command::new(&argv[0]);
    without_our_variables(&mut command);
    command
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map(|_| ())
        .map_err(|e| format!("{}: {e}", argv[0]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browser_commands_split_like_a_shell() {
        assert_eq!(
            command_line(r#"open -a "Google Chrome""#, "http://u").unwrap(),
            ["open", "-a", "Google Chrome", "http://u"]
        );
        assert_eq!(
            command_line("firefox --private-window", "http://u").unwrap(),
            ["firefox", "--private-window", "http://u"]
        );
        assert!(command_line("unterminated \"quote", "http://u").is_err());
        assert!(command_line("  ", "http://u").is_err());
        // An existing program whose path has a space is not split.
        let dir = tempfile::tempdir().unwrap();
        let program = dir.path().join("My Browser");
        std::fs::write(&program, "").unwrap();
        let line = program.to_str().unwrap();
        assert_eq!(command_line(line, "http://u").unwrap(), [line, "http://u"]);
    }

    #[test]
    fn browser_entries_substitute_percent_s() {
        assert_eq!(
            argv_of("chromium --app=%s", "http://u", true).unwrap(),
            ["chromium", "--app=http://u"]
        );
        assert_eq!(
            argv_of("w3m", "http://u", true).unwrap(),
            ["w3m", "http://u"]
        );
    }

    #[test]
    fn wsl_launchers_keep_an_ampersand() {
        let url = "http://h/auth?a=1&b='2'";
        let launchers = wsl_launchers(url);
        assert_eq!(launchers[0], ["wslview", url]);
        assert_eq!(launchers[1][4], "http://h/auth?a=1^&b='2'");
        assert_eq!(launchers[2][3], "Start-Process 'http://h/auth?a=1&b=''2'''");
    }
}
