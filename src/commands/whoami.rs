//! `whoami`: the cached identity, without refreshing or logging in; with --api-server (or any
//! of kubectl's --kubeconfig, --context, --cluster, --user), also what the API server makes of
//! it (`kubectl auth whoami` with those flags).

use std::process::Command;

use crate::claims::{relative, Identity};
use crate::config::Config;
use crate::error::Error;
use crate::kubeconfig::Target;
use crate::log::printable;
use crate::login_report::{self, Format};
use crate::store;
use crate::tokens::Storage;

/// What `whoami` was asked for.
#[derive(Debug, Clone)]
pub struct Options {
    pub config: Config,
    /// Also ask the API server (`kubectl auth whoami`).
    pub api_server: bool,
    /// kubectl's flags for that question, as kubectl reads them.
    pub target: Target,
    /// Text for people, or JSON/YAML for scripts (see [`login_report`]).
    pub format: Format,
}

pub fn run(args: &Options) -> Result<(), Error> {
    let config = &args.config;
    let store = store::open(&config.cache_dir, config.storage);
    let key = config.cache_key();
    let tokens = store.load(&key)?;
    let Some(tokens) = tokens else {
        return Err(Error::Setup(format!(
            "no login is cached for {} and client {}; run `kubectl oidc-login setup --oidc-issuer-url={} --oidc-client-id={}` or any kubectl command",
            config.issuer_url, config.client_id, config.issuer_url, config.client_id
        )));
    };
    if args.format != Format::Text {
        if args.api_server {
            return Err(Error::Setup(
                "--api-server (or kubectl's --kubeconfig, --context, --cluster, --user) shows kubectl's own output; leave it out with -o json/yaml (`kubectl auth whoami -o json` gives the API server's view)".into(),
            ));
        }
        let refresh = store.load_refresh_token(&key).unwrap_or_else(|e| {
            crate::warn!("{e}");
            None
        });
        let report = login_report::login(
            &key,
            Some(&tokens),
            refresh.as_deref(),
            config.storage,
            &config.cache_dir,
        );
        print!("{}", login_report::render(&report, args.format));
        return Ok(());
    }
    let id = Identity::from_id_token(&tokens.id_token).ok_or_else(|| {
        Error::Setup(
            "the cached ID token's claims cannot be read; run `kubectl oidc-login clean`".into(),
        )
    })?;
    // Token times are the provider's clock (see crate::clock).
    let now = tokens.clock().now();
    let storage = match config.storage {
        Storage::Auto => "auto (refresh token in the OS keyring when one answers)",
        Storage::Disk => "disk",
        Storage::Keyring => "keyring",
        Storage::None => "none",
    };
    println!("issuer:        {}", printable(&id.iss));
    println!("client:        {}", config.client_id);
    println!("subject:       {}", printable(&id.sub));
    if let Some(email) = &id.email {
        let verified = if id.email_verified == Some(true) {
            "verified"
        } else {
            "not verified"
        };
        println!("email:         {} ({verified})", printable(email));
    }
    match &id.groups {
        Some(groups) => println!("groups:        {}", printable(&groups.join(", "))),
        None => println!("groups:        (none in the ID token)"),
    }
    println!(
        "ID token:      expires {} ({})",
        crate::exec_credential::rfc3339(tokens.id_token_expiry),
        relative(tokens.id_token_expiry, now)
    );
    let refresh = store.load_refresh_token(&key).unwrap_or_else(|e| {
        crate::warn!("{e}");
        None
    });
    match refresh {
        Some(token) => match crate::jwt::peek_expiry(&token) {
            Some(exp) => println!(
                "refresh token: expires {} ({})",
                crate::exec_credential::rfc3339(exp),
                relative(exp, now)
            ),
            None => println!("refresh token: cached (opaque: the provider decides its expiry)"),
        },
        None => println!("refresh token: none (the next expiry needs a browser login)"),
    }
    println!("storage:       {storage}, {}", config.cache_dir.display());

    if args.api_server {
        println!("\nWhat the API server sees (kubectl auth whoami):");
        let mut cmd = Command::new("kubectl");
        cmd.args(args.target.kubectl_args())
            .args(["auth", "whoami"]);
        let status = cmd
            .status()
            .map_err(|e| Error::Setup(format!("cannot run kubectl ({e})")))?;
        if !status.success() {
            return Err(Error::Setup(
                "`kubectl auth whoami` failed (see above)".into(),
            ));
        }
    }
    Ok(())
}
