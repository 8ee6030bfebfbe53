//! The dev mailbox page: every message the dev mailbox delivered, newest first, with links to
//! this service clickable, and a line saying when messages are still on their way.

use std::sync::Arc;

use askama::Template;
use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use usher_domain::Error;

use super::{Layout, html};
use crate::AppState;
use crate::error::PageError;
use crate::frame::Frame;

/// A piece of a message body: text, or a link to this service (the only links made
/// clickable, since they are the only ones a genuine message carries).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Text(String),
    Link(String),
}

/// Splits `body` into text and links that start with `base_url`. A link ends at white space;
/// closing punctuation after it stays text. `http://host.evil` does not count as a link to
/// `http://host`: the address must end or go on with `/`, `?` or `#`, and it must start a
/// word. The template escapes
/// every piece, the link text and its `href` alike.
pub fn pieces(body: &str, base_url: &str) -> Vec<Piece> {
    let base = base_url.trim_end_matches('/');
    let mut out = Vec::new();
    let mut text = String::new();
    let mut rest = body;
    while let Some(i) = (!base.is_empty()).then(|| rest.find(base)).flatten() {
        let (before, from) = rest.split_at(i);
        text.push_str(before);
        let end = from.find(char::is_whitespace).unwrap_or(from.len());
        let link = from[..end].trim_end_matches(['.', ',', ';', ':', ')', '!', '?', '"', '\'', '>']);
        let after_base = &link[base.len()..];
        // Only an address of its own, not the tail of another one (`?next=http://...`).
        let starts_at_word = text.chars().last().is_none_or(|c| c.is_whitespace() || "(<[\"'".contains(c));
        if starts_at_word && (after_base.is_empty() || after_base.starts_with(['/', '?', '#'])) {
            if !text.is_empty() {
                out.push(Piece::Text(std::mem::take(&mut text)));
            }
            out.push(Piece::Link(link.to_owned()));
            rest = &from[link.len()..];
        } else {
            text.push_str(&from[..base.len()]);
            rest = &from[base.len()..];
        }
    }
    text.push_str(rest);
    if !text.is_empty() {
        out.push(Piece::Text(text));
    }
    out
}

struct MailboxRow {
    subject: String,
    recipient: String,
    channel: &'static str,
    created_at: String,
    status: &'static str,
    body: Vec<Piece>,
}

#[derive(Template)]
#[template(path = "dev_mailbox.html")]
struct MailboxPage<'a> {
    layout: Layout<'a>,
    messages: Vec<MailboxRow>,
    /// Messages still waiting in the outbox.
    pending: i64,
}

pub async fn dev_mailbox(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
) -> Result<Response, PageError> {
    if !state.dev_mailbox {
        return Err(PageError(Error::not_found()));
    }
    let base_url = state.app.config.base_url();
    let messages = state
        .app
        .dev_mailbox_messages(100)
        .await
        .map_err(PageError)?
        .into_iter()
        .map(|m| MailboxRow {
            subject: m.message.subject,
            recipient: m.message.recipient,
            channel: m.message.channel.as_str(),
            created_at: m.created_at.human(),
            status: m.status.as_str(),
            body: pieces(&m.message.body, base_url),
        })
        .collect();
    let pending = state.app.pending_messages().await?;
    let layout = Layout::new(&state, Some(&frame), &frame.nonce, "Dev mailbox");
    html(StatusCode::OK, &MailboxPage { layout, messages, pending })
}

#[cfg(test)]
mod tests {
    use super::Piece::{Link, Text};
    use super::*;

    const BASE: &str = "http://localhost:8080";

    #[test]
    fn links_to_the_service_are_pieces_of_their_own() {
        assert_eq!(
            pieces("Open http://localhost:8080/activate/abc. Then sign in.", BASE),
            [Text("Open ".into()), Link("http://localhost:8080/activate/abc".into()), Text(". Then sign in.".into())]
        );
        assert_eq!(pieces("http://localhost:8080", BASE), [Link(BASE.into())]);
        assert_eq!(
            pieces("(http://localhost:8080/phishing)\nbye", BASE),
            [Text("(".into()), Link("http://localhost:8080/phishing".into()), Text(")\nbye".into())]
        );
    }

    #[test]
    fn other_addresses_stay_text() {
        for body in [
            "http://localhost:8080.evil.example/x",
            "http://localhost:80801/x",
            "https://evil.example/?u=http://localhost:8080/x",
            "See https://evil.example/ now",
            "javascript:alert(1)",
        ] {
            assert_eq!(pieces(body, BASE), [Text(body.into())], "{body}");
        }
        assert_eq!(pieces("", BASE), []);
    }
}
