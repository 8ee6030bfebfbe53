//! Moving the test clock. Only possible when the server was started with the test clock on.

use usher_domain::duration::Span;
use usher_domain::{Error, ErrorCode, Timestamp};

use crate::{App, RequestContext, store_error};

/// How the clock should move: forward by a span, or to a moment no earlier than now.
#[derive(Debug, Clone, Copy)]
pub enum ClockMove {
    Advance(Span),
    SetTo(Timestamp),
}

/// The furthest one move may take the clock, and the latest moment it may show: bounds that keep
/// every later sum of times far from overflow on both database engines.
pub const MAX_MOVE: Span = Span::days(36_500);
const MAX_MOMENT: i64 = 32_503_680_000; // 3000-01-01T00:00:00Z

pub fn test_clock_off() -> Error {
    Error::new(ErrorCode::TestClockOff, "This server was not started with the test clock (usher serve --test-clock).")
}

impl App {
    pub async fn move_test_clock(&self, how: ClockMove, ctx: &RequestContext) -> Result<Timestamp, Error> {
        if !self.clock.is_test() {
            return Err(test_clock_off());
        }
        let mut tx = self.store.begin().await.map_err(store_error)?;
        let moved = match how {
            ClockMove::Advance(span) if span.seconds() > MAX_MOVE.seconds() => {
                return Err(Error::field("advance", "The test clock moves at most 100 years at a time"));
            }
            ClockMove::SetTo(at) if at.unix() > MAX_MOMENT => {
                return Err(Error::field("to", "Choose a moment before the year 3000"));
            }
            ClockMove::Advance(span) if span.seconds() < 0 => None,
            ClockMove::Advance(span) => tx.advance_test_clock(span.seconds()).await.map_err(store_error)?,
            ClockMove::SetTo(at) => tx.set_test_clock(at.unix()).await.map_err(store_error)?,
        };
        let Some(now) = moved.map(Timestamp::from_unix) else {
            return Err(Error::field("to", "The test clock only moves forward"));
        };
        let mut event = ctx.event("test_clock.moved", "success");
        event.detail = Some(format!("now {}", now.rfc3339()));
        tx.append_audit(&event, now).await.map_err(store_error)?;
        tx.commit().await.map_err(store_error)?;
        Ok(now)
    }
}

/// `usher test-clock advance 28d` works on the database directly, so it moves the clock of every
/// server sharing it, whether or not one is running.
pub async fn advance_in_store(store: &usher_store::Store, span: Span) -> Result<Option<Timestamp>, Error> {
    if span.seconds() > MAX_MOVE.seconds() {
        return Err(Error::field("advance", "The test clock moves at most 100 years at a time"));
    }
    let mut tx = store.begin().await.map_err(store_error)?;
    let now = tx.advance_test_clock(span.seconds()).await.map_err(store_error)?;
    tx.commit().await.map_err(store_error)?;
    Ok(now.map(Timestamp::from_unix))
}
