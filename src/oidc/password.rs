//! `--grant-type password`: the resource owner password credentials grant (RFC 6749 §4.3),
//! for providers and clients that still allow it. The password is read from the terminal
//! without echo when --password is not given, and never leaves this process but to the token
//! endpoint.

use openidconnect::{ResourceOwnerPassword, ResourceOwnerUsername, Scope, TokenResponse};

use super::http::HttpClient;
use super::provider::Provider;
use super::{
    configuration, error_with_description, measure_clock, read_answer, require_token_endpoint,
    send_authenticated, token_error, token_set, verify, OidcError,
};
use crate::config::Config;
use crate::tokens::TokenSet;

pub fn login(
    provider: &mut Provider,
    config: &Config,
    http: &HttpClient,
) -> Result<TokenSet, OidcError> {
    let username = match &config.username {
        Some(username) => username.clone(),
        None => prompt_line("Username: ")?,
    };
    let password = match &config.password {
        Some(password) => password.clone(),
        None => rpassword::prompt_password("Password: ")
            .map_err(|e| OidcError::Grant(format!("cannot read the password from the terminal ({e}); pass --password or run in a terminal")))?,
    };
    let username = ResourceOwnerUsername::new(username);
    let password = ResourceOwnerPassword::new(password);
    require_token_endpoint(provider)?;
    // --oidc-auth-request-extra-params are for authorization requests only: kubelogin sends
    // them with the browser and keyboard logins and the client credentials grant, not here.
    let (response, client_auth) = send_authenticated(provider, config, http, None, |client| {
        let mut request = client
            .exchange_password(&username, &password)
            .map_err(configuration)?
            .add_scope(Scope::new("openid".into()));
        for scope in &config.extra_scopes {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        request.request(http)
    })
    .map_err(|e| match token_error(e) {
        OidcError::TokenEndpoint { error, description, .. } if error == "invalid_grant" => {
            OidcError::Grant(format!(
                "the provider refused the user name or password ({})",
                error_with_description(&error, &description)
            ))
        }
        OidcError::TokenEndpoint { error, description, .. } if error == "unauthorized_client" => {
            OidcError::Grant(format!(
                "the client may not use the password grant ({}); Keycloak: Clients → CLIENT → Direct access grants, or use --grant-type=authcode",
                error_with_description(&error, &description)
            ))
        }
        other => other,
    })?;
    let id_token = response.id_token().ok_or(OidcError::NoIdToken)?;
    let clock = measure_clock(http, Some(&id_token.to_string()));
    let expiry = verify::verify(id_token, provider, config, http, None, clock)?;
    Ok(token_set(&response, expiry, None, clock, client_auth))
}

fn prompt_line(prompt: &str) -> Result<String, OidcError> {
    let line = read_answer(prompt, 4096)
        .map_err(|e| OidcError::Grant(format!("cannot read from the terminal: {e}")))?;
    let line = line.trim().to_string();
    if line.is_empty() {
        return Err(OidcError::Grant(
            "no user name was entered; pass --username".into(),
        ));
    }
    Ok(line)
}
