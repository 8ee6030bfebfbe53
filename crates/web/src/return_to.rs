//! Where a person goes back to after a step such as entering their password again: one check
//! for every return-to, so a header can never be built from bytes a browser sent.

/// A path on this service: starts with one `/`, at most 512 visible ASCII characters (so no
/// control characters, spaces or bytes that need re-encoding), no backslash and no `//`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnTo(String);

impl ReturnTo {
    const MAX_LEN: usize = 512;

    /// `None` for anything that is not plainly a path of ours.
    pub fn parse(raw: &str) -> Option<Self> {
        let plain = raw.len() <= Self::MAX_LEN && raw.bytes().all(|b| b.is_ascii_graphic());
        let ours = raw.starts_with('/') && !raw.contains("//") && !raw.contains('\\');
        (plain && ours).then(|| Self(raw.to_owned()))
    }

    /// The path when it passes [`ReturnTo::parse`] and `allowed` accepts it, else `default`.
    pub fn or_default(raw: Option<&str>, allowed: impl Fn(&str) -> bool, default: &str) -> Self {
        raw.and_then(Self::parse).filter(|r| allowed(r.as_str())).unwrap_or_else(|| Self(default.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::ReturnTo;

    #[test]
    fn only_plain_paths_of_ours_are_kept() {
        for good in ["/account/security", "/set-up", "/account/sessions?x=%C3%A9"] {
            assert_eq!(ReturnTo::parse(good).unwrap().as_str(), good);
        }
        let long = format!("/{}", "a".repeat(600));
        for bad in [
            "",
            "account",
            "//evil.example",
            "/\\evil.example",
            "/account/security\r\nSet-Cookie: x=1",
            "/account/security\n",
            "/account/security\0",
            "/account/security\u{7f}",
            "/account/sécurité",
            "/account/ security",
            "https://evil.example/",
            "/account//x",
            long.as_str(),
        ] {
            assert!(ReturnTo::parse(bad).is_none(), "{bad:?}");
        }
        let kept = ReturnTo::or_default(Some("/account/x\r\n"), |p| p.starts_with("/account/"), "/home");
        assert_eq!(kept.as_str(), "/home");
    }
}
