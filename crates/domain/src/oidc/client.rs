//! What a registered client (relying party) is allowed: its redirect URIs, how it
//! authenticates at the token endpoint, how its ID tokens are signed, which subjects it sees
//! and which organisations may use it. Registration checks every field here.

use crate::duration::Span;
use crate::organisation::OrganisationKind;

/// How a client proves itself at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// HTTP Basic with the client ID and secret.
    SecretBasic,
    /// The client ID and secret in the form body.
    SecretPost,
    /// A JWT signed with one of the client's registered keys (RFC 7523).
    PrivateKeyJwt,
    /// A public client (a browser or mobile app): no secret, PKCE only.
    None,
}

impl AuthMethod {
    pub const ALL: [Self; 4] = [Self::SecretBasic, Self::SecretPost, Self::PrivateKeyJwt, Self::None];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::SecretBasic => "client_secret_basic",
            Self::SecretPost => "client_secret_post",
            Self::PrivateKeyJwt => "private_key_jwt",
            Self::None => "none",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == text)
    }

    /// Whether the client holds a secret of ours.
    pub fn uses_secret(self) -> bool {
        matches!(self, Self::SecretBasic | Self::SecretPost)
    }

    /// Confidential clients can keep a credential; public ones cannot.
    pub fn is_confidential(self) -> bool {
        self != Self::None
    }
}

/// How a client's ID tokens are signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SigningAlg {
    Es256,
    Rs256,
    Ps256,
}

impl SigningAlg {
    pub const ALL: [Self; 3] = [Self::Es256, Self::Rs256, Self::Ps256];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
            Self::Rs256 => "RS256",
            Self::Ps256 => "PS256",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == text)
    }
}

/// Which `sub` a client sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubjectType {
    /// An identifier of its own (per sector): two clients cannot join their records by `sub`.
    Pairwise,
    /// The account ID, the same for every client that is public.
    Public,
}

impl SubjectType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pairwise => "pairwise",
            Self::Public => "public",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "pairwise" => Some(Self::Pairwise),
            "public" => Some(Self::Public),
            _ => None,
        }
    }
}

/// A registered redirect URI: absolute, `https`, or `http` on the loopback interface or
/// `localhost` for development; no fragment, no user name or password. Requests must name one
/// exactly, byte for byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectUri(String);

impl RedirectUri {
    pub const MAX_LEN: usize = 1000;

    pub fn parse(text: &str) -> Result<Self, String> {
        Self::parse_named(text, "redirect URI")
    }

    /// As [`RedirectUri::parse`], for another address of the same rules (`name`: "back-channel
    /// logout URI"), named so in the messages.
    pub fn parse_named(text: &str, name: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err(format!("Enter a {name}."));
        }
        if text.len() > Self::MAX_LEN || text.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(format!("A {name} must be one address of at most {} characters.", Self::MAX_LEN));
        }
        let Ok(url) = url::Url::parse(text) else {
            return Err(format!("\"{}\" is not a web address.", shown(text)));
        };
        if url.fragment().is_some() {
            return Err(format!("A {name} cannot have a fragment (#)."));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(format!("A {name} cannot hold a user name or password."));
        }
        let local = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
        match url.scheme() {
            "https" if url.host_str().is_some() => {}
            "http" if local => {}
            "http" => {
                return Err(format!("A {name} must use https (http only on localhost, for development)."));
            }
            _ => return Err(format!("\"{}\" must start with https://.", shown(text))),
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn shown(text: &str) -> String {
    text.chars().take(80).collect()
}

/// Bounds and defaults of a client's token lifetimes.
#[derive(Debug)]
pub struct Lifetimes;

impl Lifetimes {
    pub const ACCESS_DEFAULT: Span = Span::minutes(5);
    pub const ID_DEFAULT: Span = Span::minutes(5);
    pub const REFRESH_DEFAULT: Span = Span::hours(12);
    pub const ACCESS_MAX: Span = Span::hours(1);
    pub const ID_MAX: Span = Span::hours(1);
    pub const REFRESH_MAX: Span = Span::days(30);
    pub const MIN: Span = Span::minutes(1);

    /// `seconds`, or a message when outside `MIN..=max`.
    pub fn check(what: &str, seconds: i64, max: Span) -> Result<Span, String> {
        if seconds < Self::MIN.seconds() || seconds > max.seconds() {
            return Err(format!(
                "The {what} lifetime must be between {} and {} seconds.",
                Self::MIN.seconds(),
                max.seconds()
            ));
        }
        Ok(Span::seconds_(seconds))
    }
}

/// Who may use a client: organisations of some kinds, or some organisations by ID. Both
/// empty: any organisation (and the operator's own people).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Admission {
    pub kinds: Vec<OrganisationKind>,
    pub organisation_ids: Vec<String>,
}

impl Admission {
    /// Whether a person of an organisation of `kind` and ID `id` (none for operators) may use it.
    /// Whether every organisation (and the operator's own people) may use it.
    pub fn is_open(&self) -> bool {
        self.kinds.is_empty() && self.organisation_ids.is_empty()
    }

    pub fn admits(&self, organisation: Option<(&str, OrganisationKind)>) -> bool {
        if self.is_open() {
            return true;
        }
        organisation
            .is_some_and(|(id, kind)| self.kinds.contains(&kind) || self.organisation_ids.iter().any(|o| o == id))
    }
}

/// The registration rules a client is checked against as a whole.
#[derive(Debug, Clone)]
pub struct ClientRules {
    pub redirect_uris: Vec<RedirectUri>,
    pub auth_method: AuthMethod,
    pub subject_type: SubjectType,
    /// The pairwise sector the operator gave, shared by every client given it; without one, a
    /// client is a sector of its own ([`own_sector`]), so no two clients see one `sub`.
    pub sector: Option<String>,
}

/// The pairwise sector of a client that was given none: its own, by its ID. The prefix holds a
/// character a given sector (a host name) cannot, so the two never meet.
pub fn own_sector(client_id: &str) -> String {
    format!("client:{client_id}")
}

impl ClientRules {
    /// Checks the parts of a registration that depend on one another.
    pub fn new(
        redirect_uris: Vec<RedirectUri>,
        auth_method: AuthMethod,
        subject_type: SubjectType,
        sector: Option<&str>,
    ) -> Result<Self, String> {
        if redirect_uris.is_empty() {
            return Err("Give at least one redirect URI.".into());
        }
        let sector = match sector.map(str::trim).filter(|s| !s.is_empty()) {
            Some(s) if s.len() <= 255 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-') => {
                Some(s.to_ascii_lowercase())
            }
            Some(_) => {
                return Err("The sector must be a host name (letters, digits, dots and hyphens; at most 255).".into());
            }
            None => None,
        };
        Ok(Self { redirect_uris, auth_method, subject_type, sector })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_must_be_https_or_local_http() {
        assert!(RedirectUri::parse("https://court.example/callback").is_ok());
        assert!(RedirectUri::parse("http://localhost:4000/cb").is_ok());
        assert!(RedirectUri::parse("http://127.0.0.1:4000/cb").is_ok());
        assert!(RedirectUri::parse("http://court.example/cb").is_err());
        assert!(RedirectUri::parse("https://court.example/cb#x").is_err());
        assert!(RedirectUri::parse("https://a:b@court.example/cb").is_err());
        assert!(RedirectUri::parse("javascript:alert(1)").is_err());
        assert!(RedirectUri::parse("https://court.example/c b").is_err());
        assert!(RedirectUri::parse("").is_err());
    }

    #[test]
    fn a_client_is_its_own_sector_unless_given_a_host_name() {
        let uris =
            |list: &[&str]| list.iter().map(|u| RedirectUri::parse(u).unwrap_or_else(|e| panic!("{e}"))).collect();
        let own = ClientRules::new(uris(&["https://a.example/1"]), AuthMethod::None, SubjectType::Pairwise, None);
        assert_eq!(own.map(|r| r.sector).ok(), Some(None));
        let given = ClientRules::new(
            uris(&["https://a.example/1", "https://b.example/2"]),
            AuthMethod::None,
            SubjectType::Pairwise,
            Some("Example.org"),
        );
        assert_eq!(given.map(|r| r.sector).ok().flatten().as_deref(), Some("example.org"));
        for bad in ["client:abc", "a b", "x/y"] {
            let refused =
                ClientRules::new(uris(&["https://a.example/1"]), AuthMethod::None, SubjectType::Pairwise, Some(bad));
            assert!(refused.is_err(), "{bad}");
        }
        assert_ne!(own_sector("a"), own_sector("b"));
    }

    #[test]
    fn admission_by_kind_or_id() {
        let any = Admission::default();
        assert!(any.admits(None));
        let firms =
            Admission { kinds: vec![OrganisationKind::LawFirm, OrganisationKind::Chambers], organisation_ids: vec![] };
        assert!(firms.admits(Some(("o1", OrganisationKind::Chambers))));
        assert!(!firms.admits(Some(("o1", OrganisationKind::Police))));
        assert!(!firms.admits(None));
        let one = Admission { kinds: vec![], organisation_ids: vec!["o2".into()] };
        assert!(one.admits(Some(("o2", OrganisationKind::Police))));
    }
}
