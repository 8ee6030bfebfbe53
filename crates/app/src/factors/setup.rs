//! The set-up page: where a person adding a factor has got to, and the check of the
//! registered mobile (texted, or emailed to those without one) that comes before an app.

use usher_domain::phone::MobileNumber;
use usher_domain::{Error, Timestamp};

use super::email_code;
use crate::codes::{Checked, Medium};
use crate::sessions::Authenticated;
use crate::{App, RequestContext, audit_person as audit, commit_outcome, store_error};

pub(super) fn setup_check_flow(who: &Authenticated) -> String {
    format!("factor-check:{}", who.session.id)
}

/// Where a person setting up a factor has got to.
#[derive(Debug, Clone)]
pub struct SetupView {
    /// Last 4 digits of the registered mobile, where the check is texted.
    pub mobile_last_four: Option<String>,
    /// The check code has been sent (texted, or emailed to those without a mobile).
    pub check_sent: bool,
    /// The check has been passed in this session: the app can be added.
    pub check_done: bool,
    /// Emailed codes may be set up.
    pub email_allowed: bool,
    /// An emailed set-up code has been sent.
    pub email_sent: bool,
    pub email: String,
    /// Required by the organisation or the deployment.
    pub required: bool,
    /// The person is adding a further factor from their security page.
    pub adding: bool,
}

impl App {
    pub async fn setup_view(&self, who: &Authenticated, now: Timestamp) -> Result<SetupView, Error> {
        self.may_set_up(who, now)?;
        let mut tx = self.store.begin_read().await.map_err(store_error)?;
        let (required, email_allowed) = self.second_factor_rules(&mut tx, &who.user).await?;
        let check = tx.code_flow(&setup_check_flow(who)).await.map_err(store_error)?;
        let email = tx.code_flow(&email_code::setup_flow(who)).await.map_err(store_error)?;
        Ok(SetupView {
            mobile_last_four: who.user.phone.clone().map(|p| MobileNumber::from_trusted(p).last_four().to_owned()),
            check_sent: check.is_some_and(|f| f.sends > 0),
            check_done: self.code_accepted(&mut tx, &setup_check_flow(who)).await?,
            email_allowed,
            email_sent: email.is_some_and(|f| f.sends > 0),
            email: who.user.email.to_string(),
            required,
            adding: who.is_full(),
        })
    }

    /// Sends the check that comes before adding an app: a text to the registered mobile (or,
    /// for someone without one, an email).
    pub async fn send_setup_check(
        &self,
        who: &Authenticated,
        ctx: &RequestContext,
        now: Timestamp,
    ) -> Result<(), Error> {
        self.may_set_up(who, now)?;
        let mut tx = self.store.begin().await.map_err(store_error)?;
        tx.lock(&format!("user:{}", who.user.id)).await.map_err(store_error)?;
        let sent = match &who.user.phone {
            Some(phone) => {
                let phone = MobileNumber::from_trusted(phone.clone());
                self.text_a_code(&mut tx, &who.user, &phone, (&setup_check_flow(who), "set-up check"), ctx, now).await
            }
            None => self.send_email_code(&mut tx, &who.user, &setup_check_flow(who), "set-up check", ctx, now).await,
        };
        commit_outcome(tx, sent).await
    }

    pub async fn confirm_setup_check(
        &self,
        who: &Authenticated,
        entered: &str,
        ctx: &RequestContext,
        now: Timestamp,
    ) -> Result<(), Error> {
        self.may_set_up(who, now)?;
        let medium = if who.user.phone.is_some() { Medium::Text } else { Medium::Email };
        let rules = if who.user.phone.is_some() { self.policy.sms_code } else { self.policy.email_code };
        let mut tx = self.store.begin().await.map_err(store_error)?;
        tx.lock(&format!("user:{}", who.user.id)).await.map_err(store_error)?;
        let result = match self.check_code(&mut tx, &setup_check_flow(who), rules, entered, medium, now).await? {
            Checked::Accepted => Ok(()),
            Checked::Refused(m) => Err(Error::field("code", m)),
            Checked::Exhausted => {
                Err(Error::field("code", "Too many wrong codes. Sign out, then sign in again to start afresh"))
            }
        };
        if result.is_ok() {
            audit(&mut tx, ctx, "mfa.setup_check", "success", &who.user, None, now).await?;
        } else {
            self.count_second_factor_failure(&mut tx, &who.user, "set-up check", ctx, now).await?;
        }
        tx.commit().await.map_err(store_error)?;
        result
    }
}
