//! SMTP connections kept open and reused, with Nagle's algorithm off.
//!
//! Why not lettre's own pool: lettre (0.11.23, the newest release) never sets `TCP_NODELAY`
//! and gives no way to reach the socket of a connection it makes (its `Executor` is sealed and
//! its pool always connects by itself). An SMTP client writes the message body and then the
//! five-byte `<CRLF>.<CRLF>` in a second write; with Nagle on, that second write waits for the
//! server's delayed acknowledgement of the first, about 40 ms, so every email costs 40 ms on
//! any connection, pooled or not. lettre does let a caller hand it a stream it has made
//! (`AsyncSmtpConnection::connect_with_transport`), so for plain and STARTTLS connections we
//! make the TCP socket ourselves, with `TCP_NODELAY`, and let lettre speak SMTP over it.
//! Implicit TLS (port 465) is wrapped by lettre inside its own connect, so those sockets keep
//! Nagle on; they are still reused.
//!
//! No clock is read here: an idle connection the server has closed is found by a NOOP before
//! reuse (as lettre's pool does), and replaced.

use std::sync::Mutex;
use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use tokio::sync::Semaphore;

use crate::SendError;
use crate::smtp::SmtpTls;

pub(crate) struct Connections {
    host: String,
    port: u16,
    tls: SmtpTls,
    tls_parameters: Option<TlsParameters>,
    timeout: Duration,
    credentials: Option<Credentials>,
    hello: ClientId,
    idle: Mutex<Vec<AsyncSmtpConnection>>,
    /// One permit per connection that may be open at once.
    permits: Semaphore,
}

impl Connections {
    pub(crate) fn new(
        host: String,
        port: u16,
        tls: SmtpTls,
        timeout: Duration,
        credentials: Option<Credentials>,
        max_connections: u32,
    ) -> Result<Self, String> {
        let tls_parameters = match tls {
            SmtpTls::StartTls | SmtpTls::Tls => Some(
                TlsParameters::new(host.clone())
                    .map_err(|e| format!("smtp.host {host:?} cannot be used for TLS: {e}"))?,
            ),
            SmtpTls::None => None,
        };
        let permits = Semaphore::new(usize::try_from(max_connections).unwrap_or(1).max(1));
        Ok(Self {
            host,
            port,
            tls,
            tls_parameters,
            timeout,
            credentials,
            hello: ClientId::default(),
            idle: Mutex::new(Vec::new()),
            permits,
        })
    }

    /// Sends one message over an idle connection, or a new one when none is idle and fewer than
    /// the limit are open. A connection that failed in any way is closed, never reused.
    pub(crate) async fn send(&self, envelope: &Envelope, email: &[u8]) -> Result<(), SendError> {
        let _permit = self.permits.acquire().await.map_err(|_| SendError::Transient("shutting down".to_owned()))?;
        let mut conn = match self.take_idle().await {
            Some(conn) => conn,
            None => self.connect().await?,
        };
        let sent = conn.send(envelope, email).await;
        if conn.has_broken() {
            conn.abort().await;
        } else if let Ok(mut idle) = self.idle.lock() {
            idle.push(conn);
        }
        sent.map(|_| ()).map_err(|e| self.error(&e))
    }

    async fn take_idle(&self) -> Option<AsyncSmtpConnection> {
        loop {
            let conn = self.idle.lock().ok()?.pop();
            let mut conn = conn?;
            if conn.test_connected().await {
                return Some(conn);
            }
            conn.abort().await;
        }
    }

    async fn connect(&self) -> Result<AsyncSmtpConnection, SendError> {
        let address = (self.host.as_str(), self.port);
        let mut conn = match (&self.tls, &self.tls_parameters) {
            (SmtpTls::Tls, Some(parameters)) => AsyncSmtpConnection::connect_tokio1(
                address,
                Some(self.timeout),
                &self.hello,
                Some(parameters.clone()),
                None,
            )
            .await
            .map_err(|e| self.error(&e))?,
            _ => {
                let stream = tokio::time::timeout(self.timeout, tokio::net::TcpStream::connect(address))
                    .await
                    .map_err(|_| self.transient("connecting timed out"))?
                    .map_err(|e| self.transient(&e.to_string()))?;
                stream.set_nodelay(true).map_err(|e| self.transient(&e.to_string()))?;
                let mut conn = tokio::time::timeout(
                    self.timeout,
                    AsyncSmtpConnection::connect_with_transport(Box::new(stream), &self.hello),
                )
                .await
                .map_err(|_| self.transient("no greeting in time"))?
                .map_err(|e| self.error(&e))?;
                if let (SmtpTls::StartTls, Some(parameters)) = (&self.tls, &self.tls_parameters) {
                    // Required, never optional: a server that does not offer it gets nothing.
                    conn.starttls(parameters.clone(), &self.hello).await.map_err(|e| self.error(&e))?;
                }
                conn
            }
        };
        if let Some(credentials) = &self.credentials
            && let Err(e) = conn.auth(&[Mechanism::Plain, Mechanism::Login], credentials).await
        {
            conn.abort().await;
            return Err(self.error(&e));
        }
        Ok(conn)
    }

    fn transient(&self, why: &str) -> SendError {
        SendError::Transient(format!("SMTP {}:{}: {why}", self.host, self.port))
    }

    fn error(&self, error: &lettre::transport::smtp::Error) -> SendError {
        crate::smtp::smtp_error(&self.host, self.port, error)
    }
}
