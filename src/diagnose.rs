//! `setup`'s diagnostics: checks of the provider's settings, each finding with the fix in
//! Keycloak's terms (the provider the plugin's users run most).

use openidconnect::core::CoreAuthenticationFlow;
use openidconnect::{CsrfToken, Nonce, PkceCodeChallenge, RedirectUrl, SyncHttpClient};

use crate::claims::Identity;
use crate::config::Config;
use crate::oidc::http::HttpClient;
use crate::oidc::provider::Provider;
use crate::oidc::{client, OidcError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Ok,
    Warning,
    Error,
}

#[derive(Debug, Clone)]
pub struct Finding {
    pub level: Level,
    pub what: String,
    pub fix: Option<String>,
}

impl Finding {
    pub fn ok(what: impl Into<String>) -> Self {
        Finding {
            level: Level::Ok,
            what: what.into(),
            fix: None,
        }
    }
    pub fn warning(what: impl Into<String>, fix: impl Into<String>) -> Self {
        Finding {
            level: Level::Warning,
            what: what.into(),
            fix: Some(fix.into()),
        }
    }
    pub fn error(what: impl Into<String>, fix: impl Into<String>) -> Self {
        Finding {
            level: Level::Error,
            what: what.into(),
            fix: Some(fix.into()),
        }
    }
}

/// The shape of --oidc-issuer-url, before any request.
pub fn issuer_shape(issuer: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    if issuer.ends_with('/') {
        out.push(Finding::warning(
            trailing_slash(issuer),
            "Keycloak's issuer is https://HOST/realms/REALM with no trailing slash; the API server compares it to the token's iss letter by letter",
        ));
    }
    // The API server refuses http issuers even on loopback; the plugin itself does not mind.
    if issuer.starts_with("http://") {
        out.push(Finding::warning(
            format!("the issuer URL {issuer} is plain http"),
            "kube-apiserver accepts only https issuers (--oidc-issuer-url and AuthenticationConfiguration alike); serve Keycloak over https and use that URL",
        ));
    }
    if !issuer.contains("/realms/") {
        out.push(Finding::warning(
            "the issuer URL has no /realms/ part",
            "Keycloak's issuer is https://HOST/realms/REALM (older versions: https://HOST/auth/realms/REALM); ignore this for other providers",
        ));
    }
    out
}

fn trailing_slash(issuer: &str) -> String {
    format!("the issuer URL {issuer} ends with a slash")
}

/// Once discovery answered with exactly this issuer, a trailing slash is the provider's own
/// (zitadel, Auth0's `https://TENANT.auth0.com/`): not a mistake to warn about.
pub fn confirmed_by_discovery(findings: &mut Vec<Finding>, discovered_issuer: &str) {
    let slash = trailing_slash(discovered_issuer);
    findings.retain(|f| f.what != slash);
}

/// Why discovery failed, in terms of what to change.
pub fn discovery_failure(issuer: &str, err: &OidcError) -> Finding {
    let text = err.to_string();
    let fix = if text.contains("unexpected issuer")
        || text.contains("issuer") && text.contains("expected")
    {
        "the provider calls itself by another issuer URL: use exactly the `issuer` of its /.well-known/openid-configuration (check the trailing slash, http vs https and the host name Keycloak sees, KC_HOSTNAME)"
    } else if text.contains("HTTP 404") {
        "no OpenID Provider at this URL: check the realm name (case matters) and the path, https://HOST/realms/REALM"
    } else if text.contains("certificate") {
        return Finding::error(
            format!("discovery of {issuer} failed: {text}"),
            format!(
                "the provider's TLS certificate is not trusted: pass its CA with --certificate-authority{}",
                crate::troubleshooting::see("the-providers-certificate-is-not-trusted")
            ),
        );
    } else if text.contains("request to") {
        "the provider is not reachable: check the host, the port and http vs https"
    } else {
        "check --oidc-issuer-url"
    };
    Finding::error(format!("discovery of {issuer} failed: {text}"), fix)
}

/// What the discovery document says about PKCE.
pub fn provider_metadata(provider: &Provider) -> Vec<Finding> {
    let methods = &provider
        .metadata
        .additional_metadata()
        .code_challenge_methods_supported;
    match methods {
        Some(m) if m.iter().any(|m| m == "S256") => {
            vec![Finding::ok("the provider supports PKCE with S256")]
        }
        _ => vec![Finding::warning(
            "the provider does not announce PKCE S256 (code_challenge_methods_supported)",
            "Keycloak: Clients → CLIENT → Advanced → Proof Key for Code Exchange Code Challenge Method: S256",
        )],
    }
}

/// The scope that makes Hydra, Dex, Entra ID and other providers issue refresh tokens.
pub const OFFLINE_ACCESS: &str = "offline_access";

/// Whether the provider's discovery lists `offline_access` and the flags do not ask for it:
/// then a login without a refresh token is most likely missing that scope.
pub fn offline_access_would_help(provider: &Provider, config: &Config) -> bool {
    let listed = provider
        .metadata
        .scopes_supported()
        .is_some_and(|scopes| scopes.iter().any(|s| s.as_str() == OFFLINE_ACCESS));
    listed && !config.extra_scopes.iter().any(|s| s == OFFLINE_ACCESS)
}

/// A login that brought no refresh token, so every expiry of the ID token is a browser login:
/// why, and what fixes it. Not asked for by default: at Keycloak, which issues refresh tokens
/// without it, an offline token outlives the SSO session, so ending the session would no
/// longer end kubectl's access.
pub fn no_refresh_token(provider: Option<&Provider>, config: &Config) -> Finding {
    let what = "the provider issued no refresh token, so each time the ID token expires the browser opens again";
    match provider {
        Some(provider) if offline_access_would_help(provider, config) => Finding::warning(
            what,
            format!(
                "add --oidc-extra-scope=offline_access to the get-token flags: the provider lists offline_access, and Hydra, Dex and Entra ID issue refresh tokens only for it{}",
                crate::troubleshooting::see("the-browser-opens-every-few-minutes")
            ),
        ),
        _ => Finding::warning(
            what,
            "allow refresh tokens for this client at the provider (Keycloak issues them by default; others may need a setting or a scope)",
        ),
    }
}

/// The redirect URI the login will send.
pub fn redirect_uri(config: &Config) -> String {
    if let Some(url) = &config.redirect_url {
        return url.clone();
    }
    let port = config
        .listen_addresses
        .first()
        .and_then(|a| a.rsplit_once(':'))
        .and_then(|(_, p)| p.parse::<u16>().ok())
        .filter(|p| *p != 0)
        .unwrap_or(8000);
    format!("http://{}:{port}", config.redirect_hostname)
}

enum Outcome {
    /// The provider went on to its login page.
    Accepted,
    /// The provider redirected back with an error.
    Refused(String),
    /// The provider answered with an error page of its own.
    Page(u16, String),
}

/// Sends authorization requests the way the login will (and once without PKCE) and reads the
/// provider's answer without following it into the login page.
pub fn authorization_preflight(
    provider: &Provider,
    config: &Config,
    http: &HttpClient,
) -> Vec<Finding> {
    let redirect = redirect_uri(config);
    let mut out = Vec::new();
    let with_pkce = preflight(provider, config, http, &redirect, true);
    match with_pkce {
        Ok(Outcome::Accepted) => out.push(Finding::ok(format!(
            "the provider accepts client {} with redirect URI {redirect}",
            config.client_id
        ))),
        Ok(Outcome::Refused(error)) => out.push(Finding::error(
            format!("the provider refuses the authorization request: {error}"),
            "Keycloak: Clients → CLIENT → Settings: Standard flow on, Client authentication off for a public client",
        )),
        Ok(Outcome::Page(status, body)) => {
            let lower = body.to_lowercase();
            if lower.contains("redirect_uri") || lower.contains("redirect uri") {
                // The URI this login sends (from --listen-address or --oidc-redirect-url), not
                // the defaults: Keycloak matches loopback ports exactly.
                out.push(Finding::error(
                    format!("the redirect URI {redirect} is not allowed for client {} (HTTP {status})", config.client_id),
                    format!("Keycloak: Clients → CLIENT → Valid redirect URIs: add {redirect} exactly (Keycloak matches the loopback port too), or pass a --listen-address whose port the client already allows"),
                ));
            } else if lower.contains("client") {
                out.push(Finding::error(
                    format!("the provider does not know client {} (HTTP {status})", config.client_id),
                    "check --oidc-client-id against Keycloak: Clients (the Client ID column)",
                ));
            } else {
                out.push(Finding::error(
                    format!("the provider answers the authorization request with HTTP {status}"),
                    "open the authorization URL in a browser to read the provider's message",
                ));
            }
            return out;
        }
        Err(e) => {
            out.push(Finding::error(format!("the authorization endpoint is not reachable: {e}"), "check the network path to the provider"));
            return out;
        }
    }
    match preflight(provider, config, http, &redirect, false) {
        Ok(Outcome::Accepted) => out.push(Finding::warning(
            "the provider accepts authorization requests without PKCE: PKCE is not enforced",
            "Keycloak: Clients → CLIENT → Advanced → Proof Key for Code Exchange Code Challenge Method: S256 (RFC 9700 requires PKCE for public clients)",
        )),
        Ok(Outcome::Refused(error)) if error.contains("invalid_request") => {
            out.push(Finding::ok("the provider enforces PKCE"))
        }
        _ => {}
    }
    out
}

fn preflight(
    provider: &Provider,
    config: &Config,
    http: &HttpClient,
    redirect: &str,
    pkce: bool,
) -> Result<Outcome, String> {
    let redirect_url = RedirectUrl::new(redirect.to_string()).map_err(|e| e.to_string())?;
    let client = client(provider, config).set_redirect_uri(redirect_url);
    let mut request = client.authorize_url(
        CoreAuthenticationFlow::AuthorizationCode,
        CsrfToken::new_random,
        Nonce::new_random,
    );
    for scope in &config.extra_scopes {
        request = request.add_scope(openidconnect::Scope::new(scope.clone()));
    }
    if pkce {
        request = request.set_pkce_challenge(PkceCodeChallenge::new_random_sha256().0);
    }
    let (url, _, _) = request.url();
    let req = openidconnect::http::Request::get(url.as_str())
        .body(Vec::new())
        .map_err(|e| e.to_string())?;
    let response = http.call(req).map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    if response.status().is_redirection() {
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let target = url.join(location).map_err(|e| e.to_string())?;
        if target.as_str().starts_with(redirect) {
            let error = target
                .query_pairs()
                .find(|(k, _)| k == "error")
                .map(|(_, v)| v.into_owned());
            let description = target
                .query_pairs()
                .find(|(k, _)| k == "error_description")
                .map(|(_, v)| format!(" ({v})"))
                .unwrap_or_default();
            return Ok(match error {
                Some(error) => Outcome::Refused(format!("{error}{description}")),
                None => Outcome::Accepted,
            });
        }
        return Ok(Outcome::Accepted);
    }
    if response.status().is_success() {
        return Ok(Outcome::Accepted);
    }
    let body = String::from_utf8_lossy(response.body())
        .chars()
        .take(4000)
        .collect();
    Ok(Outcome::Page(status, body))
}

/// Checks of the claims a login produced.
pub fn identity(id: &Identity, username_claim: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    match &id.groups {
        Some(groups) if !groups.is_empty() => out.push(Finding::ok(format!("the ID token carries groups: {}", groups.join(", ")))),
        Some(_) => out.push(Finding::warning(
            "the ID token's groups claim is empty: this user is in no group",
            "Keycloak: Users → USER → Groups: join e.g. KubernetesAdministrators (with LDAP: check the group mapper of the user federation)",
        )),
        None => out.push(Finding::warning(
            "the ID token has no groups claim, so RBAC can only bind single users",
            "Keycloak: Client scopes → groups (create it) → Mappers → By configuration → Group Membership: Token Claim Name `groups`, Full group path off, Add to ID token on; then Clients → CLIENT → Client scopes: add `groups` as Default",
        )),
    }
    if username_claim == "email" {
        match (&id.email, id.email_verified) {
            (None, _) => out.push(Finding::warning(
                "the username claim is email, but the ID token has no email",
                "Keycloak: Clients → CLIENT → Client scopes: add `email` as Default, or use --username-claim=sub",
            )),
            (Some(_), Some(true)) => {}
            (Some(email), _) => out.push(Finding::warning(
                format!("email {email} is not verified, and kube-apiserver refuses unverified emails as usernames"),
                "Keycloak: Users → USER → Email verified on (or trust the LDAP email: User federation → Trust Email), or use --username-claim=preferred_username",
            )),
        }
    }
    if let Some(lifetime) = id.lifetime() {
        let span = crate::claims::human(lifetime.max(0) as u64);
        if lifetime < 120 {
            out.push(Finding::warning(
                format!("ID tokens live only {span}: kubectl will refresh that often"),
                "Keycloak: Realm settings → Tokens → Access Token Lifespan: 5 minutes is the usual value",
            ));
        } else if lifetime > 3600 {
            out.push(Finding::warning(
                format!("ID tokens live {span}: a stolen token stays usable that long, and RBAC group changes take as long to apply"),
                "Keycloak: Realm settings → Tokens → Access Token Lifespan: 5 to 15 minutes (refresh keeps kubectl signed in)",
            ));
        } else {
            out.push(Finding::ok(format!("ID tokens live {span}")));
        }
    }
    out
}

/// Findings one a line, `ok`/`warning`/`error` first, each fix on the line below.
pub fn render(findings: &[Finding]) -> String {
    let mut out = String::new();
    for f in findings {
        let tag = match f.level {
            Level::Ok => "ok     ",
            Level::Warning => "warning",
            Level::Error => "error  ",
        };
        out += &format!("  {tag} {}\n", f.what);
        if let Some(fix) = &f.fix {
            out += &format!("          fix: {fix}\n");
        }
    }
    out
}
