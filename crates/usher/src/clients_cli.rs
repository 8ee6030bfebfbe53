//! `usher clients …`: registering relying parties from the server's command line, as the
//! operator's pages and API do. A new client's secret is printed this once.

// This module is the program's voice on the console: printing is its job.
#![allow(clippy::print_stdout)]

use clap::Subcommand;
use usher_app::App;
use usher_app::RequestContext;
use usher_app::oidc::clients::{ClientForm, Registrar, SECRET_OVERLAP_DEFAULT};
use usher_domain::Timestamp;
use usher_domain::duration::Span;
use usher_store::oidc::OidcClient;

#[derive(Debug, Subcommand)]
// Parsed once from the command line: the size of its largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum ClientsCommand {
    /// Register a service that signs people in with Usher (an OpenID Connect client).
    Add {
        /// The name people see when they sign in to it.
        #[arg(long)]
        name: String,
        /// Where Usher may send people back (exact; https, or http on localhost). Repeat for more.
        #[arg(long = "redirect-uri", required = true)]
        redirect_uris: Vec<String>,
        /// Where Usher may send people after signing out. Repeat for more.
        #[arg(long = "post-logout-redirect-uri")]
        post_logout_redirect_uris: Vec<String>,
        /// Where the service hears, server to server, that a session it signed in through ended.
        #[arg(long = "backchannel-logout-uri")]
        backchannel_logout_uri: Option<String>,
        /// client_secret_basic (default), client_secret_post, private_key_jwt or none (public, PKCE only).
        #[arg(long)]
        auth: Option<String>,
        /// A file with the client's public keys (a JWK Set) for private_key_jwt.
        #[arg(long)]
        jwks_file: Option<std::path::PathBuf>,
        /// The scopes it may ask for (default: openid profile email phone organisation).
        #[arg(long)]
        scopes: Option<String>,
        /// Admit only organisations of this kind (law_firm, chambers, police, prosecutor, court, other). Repeat for more.
        #[arg(long = "organisation-kind")]
        organisation_kinds: Vec<String>,
        /// Admit this organisation (its ID). Repeat for more.
        #[arg(long = "organisation")]
        organisation_ids: Vec<String>,
        /// Let people signed in with a password alone through (the default asks for a second factor).
        #[arg(long)]
        no_second_factor: bool,
        /// Give it the account ID as `sub` instead of an identifier of its own (pairwise).
        #[arg(long)]
        public_subject: bool,
        /// A pairwise sector (a host name) shared with other clients given it, so they see one `sub`
        /// for a person; without it the client sees identifiers of its own.
        #[arg(long)]
        sector: Option<String>,
        /// How its ID tokens are signed: ES256 (the default), or RS256 or PS256 for a client that needs RSA.
        #[arg(long)]
        id_token_alg: Option<String>,
        /// Print JSON (with the secret) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List the registered clients.
    List,
    /// Give a client a new secret; the old one keeps working for the overlap (default 7 days).
    RotateSecret {
        id: String,
        /// How long the old secret still works: 0s, 1h, 7d…
        #[arg(long)]
        overlap: Option<Span>,
    },
    /// Disable a client at once: it gets nothing more, and what it holds stops working.
    Disable { id: String },
}

fn describe(c: &OidcClient) -> String {
    let state = if c.disabled_at.is_some() { "disabled" } else { "enabled" };
    format!(
        "{}  {}  ({}, {}, {})\n    redirect URIs: {}",
        c.id,
        c.name,
        c.auth_method.as_str(),
        c.subject_type.as_str(),
        state,
        c.redirect_uris.join(" ")
    )
}

pub async fn run(app: &App, command: ClientsCommand, now: Timestamp) -> Result<(), String> {
    let ctx = RequestContext::system("usher clients");
    match command {
        ClientsCommand::Add {
            name,
            redirect_uris,
            post_logout_redirect_uris,
            backchannel_logout_uri,
            auth,
            jwks_file,
            scopes,
            organisation_kinds,
            organisation_ids,
            no_second_factor,
            public_subject,
            sector,
            id_token_alg,
            json,
        } => {
            let jwks = match jwks_file {
                Some(path) => Some(
                    std::fs::read_to_string(&path)
                        .map_err(|e| format!("--jwks-file: cannot read {}: {e}", path.display()))?,
                ),
                None => None,
            };
            let form = ClientForm {
                name,
                redirect_uris,
                post_logout_redirect_uris,
                backchannel_logout_uri,
                auth_method: auth,
                jwks,
                scopes,
                organisation_kinds,
                organisation_ids,
                second_factor_required: Some(!no_second_factor),
                subject_type: Some(if public_subject { "public" } else { "pairwise" }.to_owned()),
                sector,
                id_token_alg,
                ..ClientForm::default()
            };
            let registered = app.register_client(Registrar::Console, &form, &ctx, now).await.map_err(|e| {
                let fields: Vec<String> = e.fields.iter().map(|f| format!("{}: {}", f.field, f.message)).collect();
                if fields.is_empty() { e.message.to_string() } else { fields.join("; ") }
            })?;
            let c = &registered.client;
            let secret = registered.secret.as_ref().map(|s| s.expose().to_owned());
            if json {
                let body = serde_json::json!({
                    "client_id": c.id.to_string(),
                    "client_secret": secret,
                    "issuer": app.issuer(),
                    "token_endpoint_auth_method": c.auth_method.as_str(),
                    "redirect_uris": c.redirect_uris,
                });
                println!("{body}");
            } else {
                println!("Registered {}.", describe(c));
                println!("issuer:        {}", app.issuer());
                println!("client_id:     {}", c.id);
                if let Some(secret) = secret {
                    println!("client_secret: {secret}");
                    println!("(The secret is shown this once and only its hash is kept: store it now.)");
                }
            }
            Ok(())
        }
        ClientsCommand::List => {
            let clients = app.clients(Registrar::Console).await.map_err(|e| e.to_string())?;
            if clients.is_empty() {
                println!("No clients yet: register one with usher clients add.");
            }
            for c in &clients {
                println!("{}", describe(c));
            }
            Ok(())
        }
        ClientsCommand::RotateSecret { id, overlap } => {
            let overlap = overlap.unwrap_or(SECRET_OVERLAP_DEFAULT);
            let secret = app
                .rotate_client_secret(Registrar::Console, &id, overlap, &ctx, now)
                .await
                .map_err(|e| e.to_string())?;
            println!("client_secret: {}", secret.expose());
            println!("(Shown this once. The old secret keeps working until {}.)", now.plus(overlap).human());
            Ok(())
        }
        ClientsCommand::Disable { id } => {
            let c = app.disable_client(Registrar::Console, &id, &ctx, now).await.map_err(|e| e.to_string())?;
            println!("Disabled {}.", describe(&c));
            Ok(())
        }
    }
}
