//! Sending and checking one-time codes, for every flow that uses them (activation, set-up
//! checks, email codes, recovery phones, recovery by text message), and the caps that stop the
//! service being used to pump text messages (S29).

use usher_domain::code::{self, CodeRules, OneTimeCode};
use usher_domain::duration::Span;
use usher_domain::limits::RateLimit;
use usher_domain::phone::MobileNumber;
use usher_domain::{Error, Timestamp};
use usher_store::{Tx, User};

use crate::{App, RequestContext, audit_person as audit, messages, store_error};

/// Texts one number may receive in a day, across every flow and account.
pub const TEXTS_PER_NUMBER_PER_DAY: i64 = 10;
/// Texts sent for one account in a day, whatever the numbers.
pub const TEXTS_PER_ACCOUNT: RateLimit = RateLimit { name: "sms_account", max: 10, window: Span::days(1) };
/// Texts asked for from one IP address in an hour.
/// Generous, since a whole office may share one address.
pub const TEXTS_PER_IP: RateLimit = RateLimit { name: "sms_ip", max: 60, window: Span::hours(1) };
/// Texts to one number range (all but the last 4 digits) in an hour: pumping fraud rents
/// consecutive numbers.
pub const TEXTS_PER_PREFIX: RateLimit = RateLimit { name: "sms_prefix", max: 30, window: Span::hours(1) };

/// Emailed codes for one account in an hour, whatever asks for them (S16).
pub const CODE_EMAILS_PER_ACCOUNT: RateLimit =
    RateLimit { name: "code_email_account", max: 10, window: Span::hours(1) };
/// Emailed codes asked for from one IP address in an hour.
pub const CODE_EMAILS_PER_IP: RateLimit = RateLimit { name: "code_email_ip", max: 60, window: Span::hours(1) };

/// Why no code was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NotSent {
    /// The flow has used up its codes or its guesses. No wait frees it (the person starts a new
    /// flow); the codes' lifetime is given as the time to wait before asking again.
    Exhausted(Span),
    /// The last code is too recent; wait this many seconds.
    TooSoon(i64),
}

/// What came of checking an entered code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Checked {
    Accepted,
    /// Refused, with the message for the person (which rule applied, without helping a guesser).
    Refused(&'static str),
    /// Too many wrong codes in this flow: no code will be accepted.
    Exhausted,
}

impl Checked {
    /// `None` when accepted; otherwise the message for the person, with `exhausted` saying how
    /// to start again once the flow's guesses are used up.
    pub(crate) fn refusal(self, exhausted: &str) -> Option<String> {
        match self {
            Self::Accepted => None,
            Self::Refused(m) => Some(m.to_owned()),
            Self::Exhausted => Some(exhausted.to_owned()),
        }
    }
}

impl NotSent {
    /// The usual wording; `start_again` says how to get a fresh flow.
    pub(crate) fn message(self, start_again: &str) -> Error {
        match self {
            Self::Exhausted(lifetime) => {
                Error::rate_limited(format!("No more codes can be sent. {start_again}"), lifetime)
            }
            Self::TooSoon(wait) => Error::rate_limited(
                format!("A code was sent moments ago. Wait {wait} seconds before asking for another."),
                Span::seconds_(wait),
            ),
        }
    }
}

impl App {
    /// Makes and stores a new code for `flow` if its limits allow; earlier codes of the flow
    /// stop working. The caller sends it in the same transaction.
    pub(crate) async fn issue_code(
        &self,
        tx: &mut Tx,
        flow: &str,
        user_id: &str,
        purpose: &str,
        rules: CodeRules,
        now: Timestamp,
    ) -> Result<Result<OneTimeCode, NotSent>, Error> {
        let code = OneTimeCode::generate();
        let issued = tx
            .issue_code(
                flow,
                user_id,
                purpose,
                &code.hash(self.secret_key.bytes()),
                rules.max_sends,
                rules.max_failures,
                rules.resend_after.seconds(),
                rules.lifetime.seconds(),
                now,
            )
            .await
            .map_err(store_error)?;
        if issued {
            return Ok(Ok(code));
        }
        let refusal = match tx.code_flow(flow).await.map_err(store_error)? {
            Some(f) if f.failures < rules.max_failures && f.sends < rules.max_sends => NotSent::TooSoon(
                f.last_sent_at.map_or(0, |at| rules.resend_after.seconds() - now.seconds_since(at)).max(1),
            ),
            _ => NotSent::Exhausted(rules.lifetime),
        };
        Ok(Err(refusal))
    }

    /// Checks an entered code against the newest live code of `flow`; a wrong one counts
    /// against the flow, so asking for a new code never resets the count (S13). `medium`
    /// names where the code came from ("text message", "email").
    pub(crate) async fn check_code(
        &self,
        tx: &mut Tx,
        flow: &str,
        rules: CodeRules,
        entered: &str,
        medium: Medium,
        now: Timestamp,
    ) -> Result<Checked, Error> {
        let failures = tx.code_flow(flow).await.map_err(store_error)?.map_or(0, |f| f.failures);
        if failures >= rules.max_failures {
            return Ok(Checked::Exhausted);
        }
        let Some(entered) = code::normalise_entered(entered) else {
            return Ok(Checked::Refused(medium.six_digits()));
        };
        let codes = tx.codes(flow).await.map_err(store_error)?;
        let matching =
            codes.iter().find(|c| self.secret_key.all().any(|key| code::matches(key, &entered, &c.code_hash)));
        let refusal = match matching {
            Some(c) if c.used_at.is_none() && c.superseded_at.is_none() && now <= c.expires_at => {
                if tx.use_code(&c.id, now).await.map_err(store_error)? {
                    return Ok(Checked::Accepted);
                }
                "That code has already been used. Ask for a new code"
            }
            Some(c) if c.superseded_at.is_some() => medium.superseded(),
            Some(c) if now > c.expires_at => "That code has expired. Ask for a new code",
            Some(_) => "That code has already been used. Ask for a new code",
            None => medium.wrong(),
        };
        tx.count_code_failure(flow, rules.max_failures).await.map_err(store_error)?;
        Ok(Checked::Refused(refusal))
    }

    /// True once a code of `flow` has been accepted.
    pub(crate) async fn code_accepted(&self, tx: &mut Tx, flow: &str) -> Result<bool, Error> {
        Ok(tx.codes(flow).await.map_err(store_error)?.iter().any(|c| c.used_at.is_some()))
    }

    /// Every cap on texts (S29), counted inside the caller's transaction: the country must be
    /// allowed, and the number, the account, the asking IP address and the number's range must
    /// each be under their cap. A refusal is audited by the caller with the returned reason.
    pub(crate) async fn may_text(
        &self,
        tx: &mut Tx,
        phone: &MobileNumber,
        user_id: &str,
        ctx: &RequestContext,
        now: Timestamp,
    ) -> Result<Result<(), (&'static str, Error)>, Error> {
        if let Some(message) = country_refusal(&self.config.sms.allowed_countries, phone) {
            return Ok(Err(("country not allowed", Error::field("phone", message))));
        }
        // However many flows ask, one number gets at most so many texts a day (S16, S29).
        tx.lock(&format!("sms:{phone}")).await.map_err(store_error)?;
        let sent_today = tx.count_messages_to(phone.as_str(), now.minus(Span::days(1))).await.map_err(store_error)?;
        let too_many = |reason: &'static str, message: &str, frees_in: Span| {
            Ok(Err((reason, Error::rate_limited(message.to_owned(), frees_in))))
        };
        if sent_today >= TEXTS_PER_NUMBER_PER_DAY {
            // Counted over the last day, so a day is the longest the wait can be.
            return too_many(
                "daily cap for the number",
                "Too many codes have been sent to this number today. Try again tomorrow.",
                Span::days(1),
            );
        }
        let caps = [
            (TEXTS_PER_ACCOUNT, user_id.to_owned(), "daily cap for the account"),
            (TEXTS_PER_IP, ctx.ip.clone().unwrap_or_else(|| "unknown".into()), "hourly cap for the IP address"),
            (TEXTS_PER_PREFIX, phone.prefix().to_owned(), "hourly cap for the number range"),
        ];
        for (limit, key, reason) in caps {
            let count = tx
                .hit_rate_limit(&crate::limits::bucket(limit, &key), limit.window.seconds(), now)
                .await
                .map_err(store_error)?;
            if count.hits > limit.max {
                let frees_in = Span::seconds_(count.resets_at.seconds_since(now));
                return too_many(reason, "Too many text messages have been asked for. Try again later.", frees_in);
            }
        }
        Ok(Ok(()))
    }
}

/// Sending a code by email or text message, inside every cap, with its audit event.
impl App {
    /// Emails a code for `flow`, inside its limits.
    pub(crate) async fn send_email_code(
        &self,
        tx: &mut Tx,
        user: &User,
        flow: &str,
        what: &str,
        ctx: &RequestContext,
        now: Timestamp,
    ) -> Result<(), Error> {
        if let Err((reason, e)) = self.may_email_code(tx, user.id.as_str(), ctx, now).await? {
            audit(tx, ctx, "code.sent", "refused", user, Some(format!("{what}: {reason}")), now).await?;
            return Err(e);
        }
        match self.issue_code(tx, flow, user.id.as_str(), "email_code", self.policy.email_code, now).await? {
            Ok(code) => {
                let expires_at = now.plus(self.policy.email_code.lifetime);
                let mail = messages::email_code(
                    &self.config,
                    &self.policy,
                    user.email.as_str(),
                    &user.full_name,
                    code.expose(),
                    expires_at,
                );
                tx.enqueue(&mail, &self.secret_key, now).await.map_err(store_error)?;
                audit(tx, ctx, "code.sent", "success", user, Some(what.into()), now).await
            }
            Err(refusal) => {
                audit(tx, ctx, "code.sent", "refused", user, Some(format!("{what}: send limit")), now).await?;
                Err(refusal.message("Sign out, then sign in again to start afresh."))
            }
        }
    }

    /// Texts a code to a registered or recovery number, inside every cap (S29).
    pub(crate) async fn text_a_code(
        &self,
        tx: &mut Tx,
        user: &User,
        phone: &MobileNumber,
        (flow, what): (&str, &str),
        ctx: &RequestContext,
        now: Timestamp,
    ) -> Result<(), Error> {
        if let Err((reason, e)) = self.may_text(tx, phone, user.id.as_str(), ctx, now).await? {
            audit(tx, ctx, "code.sent", "refused", user, Some(format!("{what}: {reason}")), now).await?;
            return Err(e);
        }
        match self.issue_code(tx, flow, user.id.as_str(), "sms_code", self.policy.sms_code, now).await? {
            Ok(code) => {
                let expires_at = now.plus(self.policy.sms_code.lifetime);
                let sms = messages::mobile_code(
                    &self.config,
                    phone.as_str(),
                    code.expose(),
                    expires_at,
                    self.policy.sms_code.lifetime.seconds() / 60,
                );
                tx.enqueue(&sms, &self.secret_key, now).await.map_err(store_error)?;
                audit(tx, ctx, "code.sent", "success", user, Some(what.into()), now).await
            }
            Err(refusal) => {
                audit(tx, ctx, "code.sent", "refused", user, Some(format!("{what}: send limit")), now).await?;
                Err(refusal.message("Sign out, then sign in again to start afresh."))
            }
        }
    }
}

impl App {
    /// The caps on emailed codes, counted inside the caller's transaction: per account (the one
    /// recipient) and per asking IP address. A refusal is audited by the caller.
    pub(crate) async fn may_email_code(
        &self,
        tx: &mut Tx,
        user_id: &str,
        ctx: &RequestContext,
        now: Timestamp,
    ) -> Result<Result<(), (&'static str, Error)>, Error> {
        let caps = [
            (CODE_EMAILS_PER_ACCOUNT, user_id.to_owned(), "hourly cap of code emails for the account"),
            (
                CODE_EMAILS_PER_IP,
                ctx.ip.clone().unwrap_or_else(|| "unknown".into()),
                "hourly cap of code emails for the IP address",
            ),
        ];
        for (limit, key, reason) in caps {
            let count = tx
                .hit_rate_limit(&crate::limits::bucket(limit, &key), limit.window.seconds(), now)
                .await
                .map_err(store_error)?;
            if count.hits > limit.max {
                let e = Error::rate_limited(
                    format!("Too many codes have been emailed. Wait {} and try again.", limit.window.in_words()),
                    Span::seconds_(count.resets_at.seconds_since(now)),
                );
                return Ok(Err((reason, e)));
            }
        }
        Ok(Ok(()))
    }
}

/// Where a code was sent, for the wording of refusals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Medium {
    Text,
    Email,
}

impl Medium {
    fn six_digits(self) -> &'static str {
        match self {
            Self::Text => "Enter the 6-digit code from the text message",
            Self::Email => "Enter the 6-digit code from the email",
        }
    }

    fn wrong(self) -> &'static str {
        match self {
            Self::Text => "The code is not right. Check the most recent text message and try again",
            Self::Email => "The code is not right. Check the most recent email and try again",
        }
    }

    fn superseded(self) -> &'static str {
        match self {
            Self::Text => {
                "That code has been replaced by a newer one. Enter the code from the most recent text message"
            }
            Self::Email => "That code has been replaced by a newer one. Enter the code from the most recent email",
        }
    }
}

/// Why `phone` can never be texted here (its country is not in `sms.allowed_countries`), or
/// `None`. Checked when a number is entered, not only when a text is sent, so nobody is invited
/// with a number they could never confirm.
pub(crate) fn country_refusal(allowed: &[String], phone: &MobileNumber) -> Option<String> {
    (!phone.country().is_some_and(|c| allowed.contains(&c))).then(|| {
        format!("Texts can only be sent to numbers in: {}. Enter a mobile number there.", country_names(allowed))
    })
}

fn country_names(codes: &[String]) -> String {
    let name = |c: &str| match c {
        "GB" => "the United Kingdom".to_owned(),
        "GG" => "Guernsey".to_owned(),
        "JE" => "Jersey".to_owned(),
        "IM" => "the Isle of Man".to_owned(),
        "IE" => "Ireland".to_owned(),
        other => other.to_owned(),
    };
    codes.iter().map(|c| name(c)).collect::<Vec<_>>().join(", ")
}
