//! System notifications: the operator writes them; people see the published ones meant for them
//! on the "System notifications" page, and the newest important one as a banner on the sign-in
//! and home pages. Optionally the operator has one emailed to its audience, through the outbox
//! and a little at a time.

use usher_domain::error::FieldError;
use usher_domain::ids::MessageId;
use usher_domain::notification::{Audience, Importance, Part, is_published, parse_body};
use usher_domain::organisation::OrganisationKind;
use usher_domain::{Error, ErrorCode, Timestamp};
use usher_store::{Notification, User};

use crate::authz::Operator;
use crate::{App, RequestContext, messages, store_error};

/// Emails queued per notification per run of the jobs: the throttle on mailings.
pub const MAILING_BATCH: i64 = 200;

/// A notification as people see it.
#[derive(Debug, Clone)]
pub struct NotificationView {
    pub id: String,
    pub title: String,
    pub paragraphs: Vec<Vec<Part>>,
    pub importance: Importance,
    pub publish_from: Timestamp,
    pub publish_until: Option<Timestamp>,
    pub audience: Audience,
    pub email: bool,
    pub emailed_done: bool,
    pub published: bool,
}

/// The operator's form.
#[derive(Debug, Clone, Default)]
pub struct NotificationForm {
    pub title: String,
    pub body: String,
    pub importance: String,
    /// `YYYY-MM-DD HH:MM` UTC; empty for now.
    pub publish_from: String,
    /// Optional, the same way.
    pub publish_until: String,
    /// Organisation kinds; empty for everyone.
    pub audience: Vec<String>,
    pub email: bool,
}

impl App {
    fn view(&self, n: &Notification, now: Timestamp) -> NotificationView {
        NotificationView {
            id: n.id.clone(),
            title: n.title.clone(),
            paragraphs: parse_body(&n.body, self.config.base_url()).unwrap_or_default(),
            importance: Importance::parse(&n.importance).unwrap_or(Importance::Information),
            publish_from: n.publish_from,
            publish_until: n.publish_until,
            audience: Audience::from_stored(&n.audience),
            email: n.email,
            emailed_done: n.emailed_done_at.is_some(),
            published: is_published(n.publish_from, n.publish_until, now),
        }
    }

    /// The organisation kind that decides what someone sees (`None` for no organisation).
    async fn kind_of(&self, user: Option<&User>) -> Result<Option<OrganisationKind>, Error> {
        let Some(org) = user.and_then(|u| u.organisation_id.clone()) else { return Ok(None) };
        let mut tx = self.store.begin_read().await.map_err(store_error)?;
        Ok(tx.organisation(&org).await.map_err(store_error)?.map(|o| o.kind))
    }

    /// Published notifications for a viewer (signed out: those for everyone; operators: all).
    pub async fn notifications_for(
        &self,
        viewer: Option<&User>,
        now: Timestamp,
    ) -> Result<Vec<NotificationView>, Error> {
        let kind = self.kind_of(viewer).await?;
        let operator = viewer.is_some_and(|u| u.role == usher_domain::account::Role::Operator);
        let all = self.store.published_notifications(now).await.map_err(store_error)?;
        Ok(all.iter().map(|n| self.view(n, now)).filter(|v| operator || v.audience.includes(kind)).collect())
    }

    /// The newest important notification for a viewer that they have not dismissed.
    pub async fn banner_for(
        &self,
        viewer: Option<&User>,
        dismissed: &[String],
        now: Timestamp,
    ) -> Result<Option<NotificationView>, Error> {
        Ok(self
            .notifications_for(viewer, now)
            .await?
            .into_iter()
            .find(|v| v.importance.is_important() && !dismissed.contains(&v.id)))
    }

    pub async fn all_notifications(
        &self,
        _operator: Operator<'_>,
        now: Timestamp,
    ) -> Result<Vec<NotificationView>, Error> {
        let all = self.store.all_notifications().await.map_err(store_error)?;
        Ok(all.iter().map(|n| self.view(n, now)).collect())
    }

    pub async fn publish_notification(
        &self,
        operator: Operator<'_>,
        form: &NotificationForm,
        ctx: &RequestContext,
        now: Timestamp,
    ) -> Result<NotificationView, Error> {
        let mut fields = Vec::new();
        let mut problem = |field: &'static str, message: String| fields.push(FieldError { field, message });
        let title = form.title.trim();
        if title.is_empty() {
            problem("title", "Enter a title".into());
        } else if title.chars().count() > 120 || title.chars().any(char::is_control) {
            problem("title", "Title must be 120 characters or fewer, on one line".into());
        }
        let body = form.body.trim();
        if body.is_empty() {
            problem("body", "Enter the notification".into());
        } else if body.chars().count() > 5_000 {
            problem("body", "The notification must be 5,000 characters or fewer".into());
        } else if let Err(m) = parse_body(body, self.config.base_url()) {
            problem("body", m);
        }
        let importance = Importance::parse(&form.importance);
        if importance.is_none() {
            problem("importance", "Select how important it is".into());
        }
        let from = match form.publish_from.trim() {
            "" => Some(now),
            text => Timestamp::parse_minute(text),
        };
        if from.is_none() {
            problem("publish_from", "Enter when to publish it like 2026-12-01 09:00, or leave it empty for now".into());
        }
        let until = match form.publish_until.trim() {
            "" => Ok(None),
            text => Timestamp::parse_minute(text).map(Some).ok_or(()),
        };
        match (&until, from) {
            (Err(()), _) => {
                problem("publish_until", "Enter when it ends like 2026-12-02 18:00, or leave it empty".into())
            }
            (Ok(Some(u)), Some(f)) if *u <= f => problem("publish_until", "The end must come after the start".into()),
            _ => {}
        }
        let kinds: Vec<OrganisationKind> = form.audience.iter().filter_map(|k| OrganisationKind::parse(k)).collect();
        if kinds.len() != form.audience.iter().filter(|k| *k != "everyone").count() {
            problem("audience", "Choose from the kinds of organisation listed".into());
        }
        let (Some(importance), Some(from), Ok(until), true) = (importance, from, until, fields.is_empty()) else {
            return Err(Error::invalid(fields));
        };
        let audience = if kinds.is_empty() { Audience::Everyone } else { Audience::Kinds(kinds) };
        let n = Notification {
            id: MessageId::generate().to_string(),
            title: title.to_owned(),
            body: body.to_owned(),
            importance: importance.as_str().to_owned(),
            publish_from: from,
            publish_until: until,
            audience: audience.to_stored(),
            email: form.email,
            emailed_up_to: String::new(),
            emailed_done_at: None,
            created_by: operator.user().id.clone(),
            created_at: now,
        };
        let mut tx = self.store.begin().await.map_err(store_error)?;
        tx.insert_notification(&n).await.map_err(store_error)?;
        let mut event = ctx.event("notification.published", "success");
        event.actor_id = Some(operator.user().id.to_string());
        event.detail = Some(format!("{}: {:.60}", importance.as_str(), title));
        tx.append_audit(&event, now).await.map_err(store_error)?;
        tx.commit().await.map_err(store_error)?;
        Ok(self.view(&n, now))
    }

    /// Ends a notification now: it disappears from pages and any mailing stops.
    pub async fn end_notification(
        &self,
        operator: Operator<'_>,
        id: &str,
        ctx: &RequestContext,
        now: Timestamp,
    ) -> Result<(), Error> {
        let mut tx = self.store.begin().await.map_err(store_error)?;
        if !tx.end_notification(id, now).await.map_err(store_error)? {
            return Err(Error::new(ErrorCode::Conflict, "This notification has already ended."));
        }
        let mut event = ctx.event("notification.ended", "success");
        event.actor_id = Some(operator.user().id.to_string());
        event.detail = Some(format!("notification {id:.40}"));
        tx.append_audit(&event, now).await.map_err(store_error)?;
        tx.commit().await.map_err(store_error)
    }

    /// Queues the next emails of every mailing in progress, a batch per notification. The
    /// progress moves by compare-and-set, so with several servers each person gets one email.
    pub async fn send_notification_emails(&self, now: Timestamp) -> Result<u64, Error> {
        let mut queued = 0;
        let mut tx = self.store.begin_read().await.map_err(store_error)?;
        let mailings = tx.notifications_to_mail(now).await.map_err(store_error)?;
        drop(tx);
        for n in mailings {
            let kinds: Vec<String> = match Audience::from_stored(&n.audience) {
                Audience::Everyone => Vec::new(),
                Audience::Kinds(k) => k.iter().map(|k| k.as_str().to_owned()).collect(),
            };
            let mut tx = self.store.begin().await.map_err(store_error)?;
            let batch = tx.mailing_recipients(&kinds, &n.emailed_up_to, MAILING_BATCH).await.map_err(store_error)?;
            let next = batch.last().map(|u| u.id.to_string());
            if !tx.advance_mailing(&n.id, &n.emailed_up_to, next.as_deref(), now).await.map_err(store_error)? {
                continue;
            }
            let view = self.view(&n, now);
            for user in &batch {
                let mail =
                    messages::notification(&self.config, user.email.as_str(), &user.full_name, &view.title, &n.body);
                tx.enqueue(&mail, &self.secret_key, now).await.map_err(store_error)?;
                queued += 1;
            }
            if next.is_none() {
                let mut event = RequestContext::system("notification mailing").event("notification.emailed", "success");
                event.detail = Some(format!("notification {}", n.id));
                tx.append_audit(&event, now).await.map_err(store_error)?;
            }
            tx.commit().await.map_err(store_error)?;
        }
        Ok(queued)
    }
}
