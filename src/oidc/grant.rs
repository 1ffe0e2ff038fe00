//! Which grant signs the user in when there is no usable refresh token, and whether it can
//! work in this process (a terminal to read from, a browser to open) before any request.

use std::io::IsTerminal;

use super::http::HttpClient;
use super::provider::Provider;
use super::{authcode, client_credentials, device, keyboard, password, OidcError};
use crate::config::{Config, GrantType};
use crate::exec_credential::ExecInfo;
use crate::tokens::TokenSet;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    Authcode,
    Keyboard,
    Password,
    Device,
    ClientCredentials,
}

/// The grant for these flags and this provider. `auto` means the browser login, unless the
/// flags ask for a password login (`--username`, as in kubelogin) or the provider offers only
/// the device grant.
pub fn choose(config: &Config, provider: &Provider) -> Grant {
    match config.grant {
        GrantType::Authcode => Grant::Authcode,
        GrantType::AuthcodeKeyboard => Grant::Keyboard,
        GrantType::Password => Grant::Password,
        GrantType::DeviceCode => Grant::Device,
        GrantType::ClientCredentials => Grant::ClientCredentials,
        GrantType::Auto if config.username.is_some() => Grant::Password,
        GrantType::Auto => {
            let offered = provider.metadata.grant_types_supported().map(|grants| {
                grants
                    .iter()
                    .map(|g| g.as_ref().to_string())
                    .collect::<Vec<_>>()
            });
            match offered {
                Some(grants)
                    if !grants.iter().any(|g| g == "authorization_code")
                        && grants.iter().any(|g| g == DEVICE_GRANT)
                        && device::supported(provider) =>
                {
                    Grant::Device
                }
                _ => Grant::Authcode,
            }
        }
    }
}

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// Refuses a grant that cannot finish here, with what to do instead.
pub fn check_possible(grant: Grant, config: &Config, exec: &ExecInfo) -> Result<(), OidcError> {
    let problem = match grant {
        Grant::Keyboard if !exec.interactive => Some(
            "--grant-type=authcode-keyboard reads the code from the terminal, but kubectl runs the plugin without one (KUBERNETES_EXEC_INFO interactive=false); use --grant-type=device-code, which needs no terminal, or run the same command in a terminal first",
        ),
        Grant::Password
            if !exec.interactive && (config.username.is_none() || config.password.is_none()) =>
        {
            Some("the password grant would prompt for the user name or password, but kubectl runs the plugin without a terminal (KUBERNETES_EXEC_INFO interactive=false); run the same command in a terminal first, or use --grant-type=device-code")
        }
        // kubectl says interactive=false whenever its stdin is taken (`kubectl apply -f -`),
        // yet a person may still read the URL on stderr and open it, as with kubelogin.
        Grant::Authcode
            if !exec.interactive
                && !crate::browser::can_open(config)
                && !std::io::stderr().is_terminal() =>
        {
            Some("a browser login is needed, but no person can see it: kubectl gives the plugin no terminal (KUBERNETES_EXEC_INFO interactive=false), stderr is not a terminal and no browser can be opened here (no DISPLAY, or --skip-open-browser); run the same `kubectl oidc-login get-token ...` command in a terminal, `kubectl oidc-login setup`, or use --grant-type=device-code")
        }
        _ => None,
    };
    match problem {
        Some(text) => Err(OidcError::NotInteractive(format!(
            "{text}{}",
            crate::troubleshooting::see("kubectl-runs-the-plugin-without-a-terminal")
        ))),
        None => Ok(()),
    }
}

/// Signs in with `grant`.
pub fn login(
    grant: Grant,
    provider: &mut Provider,
    config: &Config,
    http: &HttpClient,
) -> Result<TokenSet, OidcError> {
    crate::debug!(1, "signing in with the {grant:?} grant");
    match grant {
        Grant::Authcode => authcode::login(provider, config, http),
        Grant::Keyboard => keyboard::login(provider, config, http),
        Grant::Password => password::login(provider, config, http),
        Grant::Device => device::login(provider, config, http),
        Grant::ClientCredentials => client_credentials::login(provider, config, http),
    }
}
