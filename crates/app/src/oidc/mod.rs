//! Usher as an OpenID Connect provider: registered clients, the signing keys, the
//! authorization code flow with PKCE, tokens, userinfo, revocation and introspection. The web
//! layer's `oidc` module is the front end, one file per endpoint; the pure rules are in
//! [`usher_domain::oidc`].

pub mod authorize;
pub mod client_auth;
pub mod clients;
pub mod end_session;
pub mod keys;
pub mod logout;
pub mod token;
pub mod tokens;
pub mod userinfo;

/// Where each endpoint is served, under the issuer.
pub mod endpoints {
    pub const DISCOVERY: &str = "/.well-known/openid-configuration";
    pub const AUTHORIZE: &str = "/oidc/authorize";
    pub const TOKEN: &str = "/oidc/token";
    pub const USERINFO: &str = "/oidc/userinfo";
    pub const JWKS: &str = "/oidc/jwks";
    pub const REVOKE: &str = "/oidc/revoke";
    pub const INTROSPECT: &str = "/oidc/introspect";
    pub const END_SESSION: &str = "/oidc/end_session";
}
