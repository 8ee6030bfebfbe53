//! What the page layout shows around every page: the title, the header with the person's name
//! and "Sign out", the navigation a role gets, breadcrumbs, the test-clock strip and the footer.

use usher_domain::account::Role;

use super::FormErrors;
use crate::AppState;
use crate::frame::Frame;

/// A link in the service navigation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NavLink {
    pub label: &'static str,
    pub href: &'static str,
    /// The page shown is this link's area.
    pub active: bool,
}

/// The one place that decides which areas a role's navigation links to: the areas of the role,
/// then the account pages everyone signed in has.
pub fn nav_links(role: Role) -> Vec<(&'static str, &'static str)> {
    let mut links = match role {
        Role::Operator => vec![
            ("Organisations", "/operator/organisations"),
            ("Services", "/operator/clients"),
            ("Notifications", "/operator/notifications"),
            ("Terms and conditions", "/operator/terms"),
            ("Audit trail", "/operator/audit"),
        ],
        Role::OrganisationAdministrator => vec![("People", "/admin/users"), ("Audit trail", "/admin/audit")],
        Role::User => vec![("Your account", "/home")],
    };
    links.extend([("Security", "/account/security"), ("Sessions", "/account/sessions")]);
    links
}

/// The navigation for a page at `path`: the link whose area holds the page (the longest
/// matching address) is marked active.
fn nav_for(role: Role, path: &str) -> Vec<NavLink> {
    let links = nav_links(role);
    let within = |href: &str| path == href || path.strip_prefix(href).is_some_and(|rest| rest.starts_with('/'));
    let active = links.iter().filter(|(_, href)| within(href)).map(|(_, href)| href.len()).max();
    links
        .into_iter()
        .map(|(label, href)| NavLink { label, href, active: within(href) && Some(href.len()) == active })
        .collect()
}

/// A step of the breadcrumbs above a page.
#[derive(Debug, Clone)]
pub struct Crumb {
    pub label: String,
    pub href: String,
}

#[derive(Debug)]
pub struct Layout<'a> {
    pub service_name: &'a str,
    pub page_title: String,
    pub nonce: &'a str,
    pub csrf_token: &'a str,
    pub user_name: Option<&'a str>,
    /// Signed in with the password only: offer to sign out, but nothing else.
    pub pending: bool,
    pub nav: Vec<NavLink>,
    pub crumbs: Vec<Crumb>,
    pub test_clock_now: Option<String>,
    pub sender: &'a str,
    pub base_url: &'a str,
    pub helpdesk_name: &'a str,
    pub helpdesk_email: &'a str,
    pub helpdesk_phone: &'a str,
    pub helpdesk_hours: &'a str,
    pub dev_mailbox: bool,
    pub has_errors: bool,
    /// The deployment's rules, so a page prints its numbers from the one place they live.
    pub policy: &'a usher_domain::policy::Policy,
}

impl<'a> Layout<'a> {
    pub fn new(state: &'a AppState, frame: Option<&'a Frame>, nonce: &'a str, title: &str) -> Self {
        let c = &state.app.config;
        let user = frame.and_then(|f| f.user.as_ref());
        Self {
            service_name: &c.service_name,
            page_title: title.to_owned(),
            nonce,
            csrf_token: frame.map_or("", |f| f.csrf_token.as_str()),
            user_name: user.map(|u| u.user.full_name.as_str()),
            pending: frame.is_some_and(|f| f.pending.is_some()),
            nav: match (user, frame) {
                (Some(u), Some(f)) => nav_for(u.user.role, &f.path),
                _ => Vec::new(),
            },
            crumbs: Vec::new(),
            test_clock_now: frame.filter(|f| f.test_clock).map(|f| f.now.human()),
            sender: &c.email.sender_address,
            base_url: c.base_url(),
            helpdesk_name: &c.helpdesk.name,
            helpdesk_email: &c.helpdesk.email,
            helpdesk_phone: &c.helpdesk.phone,
            helpdesk_hours: &c.helpdesk.hours,
            dev_mailbox: state.dev_mailbox,
            has_errors: false,
            policy: &state.app.policy,
        }
    }

    /// How many digits a texted or emailed code has.
    pub fn code_digits(&self) -> usize {
        usher_domain::code::CODE_DIGITS
    }

    /// How many digits an authenticator app shows, and how often they change.
    pub fn app_digits(&self) -> usize {
        usher_domain::totp::DIGITS
    }

    pub fn app_step(&self) -> String {
        usher_domain::duration::Span::seconds_(usher_domain::totp::STEP_SECONDS).describe()
    }

    /// How long an emailed code works, in words ("15 minutes").
    pub fn emailed_code_works(&self) -> String {
        self.policy.email_code.lifetime.in_words()
    }

    /// How long a texted code works, in words ("5 minutes").
    pub fn texted_code_works(&self) -> String {
        self.policy.sms_code.lifetime.in_words()
    }

    pub(crate) fn with_errors(mut self, errors: &FormErrors) -> Self {
        self.has_errors = !errors.is_empty();
        self
    }

    /// Breadcrumbs from the person's home page to this page's parent: a way back from a list.
    pub(crate) fn crumbs(mut self, trail: &[(&str, &str)]) -> Self {
        let home = (if self.user_name.is_some() { "Home" } else { self.service_name }, "/home");
        self.crumbs = std::iter::once(&home)
            .chain(trail)
            .map(|(label, href)| Crumb { label: (*label).to_owned(), href: (*href).to_owned() })
            .collect();
        self
    }

    /// The `<title>`: "<page> – <service>", or just the service's name on a page named for it.
    pub fn title(&self) -> String {
        let error = if self.has_errors { "Error: " } else { "" };
        if self.page_title == self.service_name || self.page_title.is_empty() {
            format!("{error}{}", self.service_name)
        } else {
            format!("{error}{} – {}", self.page_title, self.service_name)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn active(role: Role, path: &str) -> Vec<&'static str> {
        nav_for(role, path).into_iter().filter(|l| l.active).map(|l| l.label).collect()
    }

    #[test]
    fn each_role_gets_its_areas_and_the_account_pages() {
        let labels = |r| nav_links(r).into_iter().map(|(l, _)| l).collect::<Vec<_>>();
        assert_eq!(
            labels(Role::Operator),
            [
                "Organisations",
                "Services",
                "Notifications",
                "Terms and conditions",
                "Audit trail",
                "Security",
                "Sessions"
            ]
        );
        assert_eq!(labels(Role::OrganisationAdministrator), ["People", "Audit trail", "Security", "Sessions"]);
        assert_eq!(labels(Role::User), ["Your account", "Security", "Sessions"]);
    }

    #[test]
    fn the_area_of_the_page_is_active() {
        assert_eq!(active(Role::Operator, "/operator/organisations/abc"), ["Organisations"]);
        assert_eq!(active(Role::Operator, "/operator/audit"), ["Audit trail"]);
        assert_eq!(active(Role::Operator, "/operator/clients/new"), ["Services"]);
        assert_eq!(active(Role::OrganisationAdministrator, "/admin/users/new"), ["People"]);
        assert_eq!(active(Role::User, "/account/security/recovery-phone"), ["Security"]);
        assert!(active(Role::Operator, "/operator/organisationsx").is_empty());
        assert!(active(Role::Operator, "/home").is_empty());
    }
}
