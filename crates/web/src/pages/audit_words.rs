//! The audit trail in words: the one table from each recorded action to what a person reads.
//! The raw action stays in the exports and is shown, secondary, under the words.

/// Every action the trail records, and its words. A new action is added here (the test below
/// fails on an action the app records that this table does not name).
pub const ACTIONS: &[(&str, &str)] = &[
    ("sign_in", "Signed in with a password"),
    ("sign_in.second_factor", "Gave a second factor to sign in"),
    ("sign_out", "Signed out"),
    ("reauthentication", "Entered the password again"),
    ("session.ended", "Ended a session"),
    ("session.ended_others", "Ended every other session"),
    ("account.locked", "Account locked"),
    ("account.unlocked", "Account unlocked"),
    ("password.change", "Tried to change the password"),
    ("password.changed", "Changed the password"),
    ("password.reset_requested", "Asked for a password reset link"),
    ("password.reset_second_factor", "Gave a second factor to reset the password"),
    ("password.reset", "Reset the password"),
    ("code.sent", "Sent a code"),
    ("mfa.setup_check", "Confirmed the mobile number to add an authenticator app"),
    ("mfa.app_added", "Added an authenticator app"),
    ("mfa.email_added", "Chose codes sent by email"),
    ("mfa.factor_removed", "Removed a second factor"),
    ("mfa.factors_reset", "Second factors reset"),
    ("mfa.recovered", "Replaced a lost device"),
    ("mfa.recovery_codes_replaced", "Made new recovery codes"),
    ("mfa.recovery_phone_set", "Set the recovery phone"),
    ("mfa.recovery_phone_removed", "Removed the recovery phone"),
    ("activation.terms_accepted", "Agreed to the terms and conditions"),
    ("activation.terms_refused", "Did not agree to the terms and conditions"),
    ("activation.code_sent", "Sent an activation code"),
    ("activation.code_refused", "Activation code not sent"),
    ("activation.code_rejected", "Wrong activation code"),
    ("activation.mobile_confirmed", "Confirmed the mobile number"),
    ("activation.completed", "Activated the account"),
    ("user.added", "Added a person"),
    ("user.activation_resent", "Sent the activation email again"),
    ("user.mobile_corrected", "Corrected the mobile number"),
    ("administrator.invited", "Invited an administrator"),
    ("organisation.registered", "Registered an organisation"),
    ("organisation.second_factor_rules", "Changed the organisation's second-factor rules"),
    ("terms.published", "Published terms and conditions"),
    ("notification.published", "Published a system notification"),
    ("notification.ended", "Ended a system notification"),
    ("notification.emailed", "Emailed a system notification"),
    ("lifecycle.reminded", "Reminded to sign in before deregistration"),
    ("lifecycle.deregistered", "Deregistered after going unused"),
    ("lifecycle.reregistered", "Reregistered"),
    ("lifecycle.deleted", "Deleted, not reregistered in time after deregistration"),
    ("operator.setup_link_issued", "Made an operator set-up link"),
    ("operator.setup_completed", "Set up the operator account"),
    ("operator.recovery_link_issued", "Made an operator recovery link"),
    ("operator.recovery_completed", "Recovered the operator account"),
    ("audit.exported", "Downloaded the audit trail"),
    ("authz.denied", "Refused access to something outside their reach"),
    ("test_clock.moved", "Moved the test clock"),
    ("oidc.authorization", "Signed in to another service"),
    ("oidc.tokens_issued", "Another service was given its tokens"),
    ("oidc.tokens_refreshed", "Another service renewed its tokens"),
    ("oidc.code_replayed", "A sign-in code was used twice: what it gave was revoked"),
    ("oidc.refresh_reused", "A refresh token was used twice: the sign-in was revoked"),
    ("oidc.revoked", "Another service ended its sign-in"),
    ("oidc.assertion_replayed", "A service's signed request was replayed"),
    ("oidc.signing_key_rotated", "Changed the key that signs ID tokens"),
    ("client.registered", "Registered a service that signs in with Usher"),
    ("client.secret_rotated", "Gave a service a new secret"),
    ("client.disabled", "Disabled a service"),
];

/// Kinds of event, for the filter: an action's family is the part before its first dot.
pub const FAMILIES: &[(&str, &str)] = &[
    ("sign_in", "Signing in"),
    ("session", "Sessions"),
    ("account", "Locks and unlocks"),
    ("password", "Passwords"),
    ("mfa", "Second factors"),
    ("activation", "Activation"),
    ("user", "People added and corrected"),
    ("lifecycle", "Deregistration and deletion"),
    ("organisation", "Organisations"),
    ("notification", "System notifications"),
    ("operator", "Operator set-up and recovery"),
    ("terms", "Terms and conditions"),
    ("authz", "Refused access"),
    ("audit", "Audit trail downloads"),
    ("oidc", "Signing in to other services"),
    ("client", "Services that sign in with Usher"),
];

/// What happened, in words. A second factor given at sign-in names which one.
pub fn action_words(action: &str, outcome: &str, detail: &str) -> String {
    match (action, outcome == "success") {
        ("sign_in", false) => return "Sign-in refused".to_owned(),
        ("sign_in.second_factor", false) => return "Second factor refused at sign-in".to_owned(),
        _ => {}
    }
    if action == "sign_in.second_factor" {
        let with = match detail {
            "app" => Some("an authenticator app"),
            "email" => Some("a code sent by email"),
            "recoverycode" => Some("a recovery code"),
            "recoverytext" => Some("a code texted to the recovery phone"),
            _ => None,
        };
        if let Some(with) = with {
            return format!("Signed in with {with}");
        }
    }
    ACTIONS.iter().find(|(a, _)| *a == action).map_or_else(|| action.replace(['_', '.'], " "), |(_, w)| (*w).to_owned())
}

/// The outcome in words, and the tag colour it gets.
pub fn outcome_words(outcome: &str) -> (&'static str, &'static str) {
    match outcome {
        "success" => ("Done", "govuk-tag--green"),
        "failure" => ("Failed", "govuk-tag--red"),
        "refused" | "denied" => ("Refused", "govuk-tag--red"),
        "rejected" => ("Rejected", "govuk-tag--red"),
        _ => ("Other", "govuk-tag--grey"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_the_app_records_has_words() {
        let mut sources = String::new();
        let mut dirs = vec![std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../app/src"))];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(dir).expect("app sources") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    sources.push_str(&std::fs::read_to_string(path).expect("source"));
                }
            }
        }
        // Settings that look like actions.
        let not_actions = ["lifecycle.reminders"];
        // Every `"family.name"` string of a known family that the app passes as an action.
        let families: Vec<&str> = FAMILIES.iter().map(|(f, _)| *f).collect();
        for quoted in sources.split('"').skip(1).step_by(2) {
            let Some((family, rest)) = quoted.split_once('.') else { continue };
            let looks_like_action = !rest.is_empty() && rest.chars().all(|c| c.is_ascii_lowercase() || c == '_');
            if families.contains(&family) && looks_like_action && !not_actions.contains(&quoted) {
                assert!(ACTIONS.iter().any(|(a, _)| *a == quoted), "no words for the audit action {quoted}");
            }
        }
        for family in &families {
            assert!(ACTIONS.iter().any(|(a, _)| a.split('.').next() == Some(family)), "family {family} is unused");
        }
    }

    #[test]
    fn a_second_factor_says_which() {
        assert_eq!(action_words("sign_in.second_factor", "success", "app"), "Signed in with an authenticator app");
        assert_eq!(
            action_words("sign_in.second_factor", "failure", "app, 2 in a row"),
            "Second factor refused at sign-in"
        );
        assert_eq!(action_words("sign_in", "failure", ""), "Sign-in refused");
        assert_eq!(action_words("sign_in", "success", ""), "Signed in with a password");
        assert_eq!(action_words("something.new", "success", ""), "something new");
    }
}
