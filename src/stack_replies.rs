//! The HTTP stack's own error replies, brought under the bridge's contract.
//!
//! actix-http answers a few requests itself, before any route sees them: 400 for a request head
//! it cannot parse (a malformed `Content-Length`, say), 408 when the headers are too slow, 431
//! for a head over its buffer. It writes them with an empty body and has no hook to change
//! that, nor to tell anyone: they would be the only replies without the `{"code","message"}`
//! body and the only ones no metric or log line counts.
//!
//! [`JsonStackReplies`] sits between actix-http and the socket. It follows the framing of the
//! responses going out (a head, then `Content-Length` bytes of body) and replaces each error
//! response with an empty body by the same response with the contract's JSON body, counting and
//! logging it as a refusal. Everything else passes through unchanged, byte for byte.
//!
//! It also watches the request heads coming in, for the one bound actix-http lacks: each
//! connection may buffer up to 128 KiB of an unfinished head, and thousands of connections took
//! hundreds of MiB that way. Bytes of a head beyond [`HEAD_ALLOWANCE`] are charged to one budget
//! shared by every connection (`ZEGO_BRIDGE_HTTP_MAX_BUFFERED_HEAD_BYTES`), as they arrive, and
//! given back when the head ends or the connection closes. A head that would go past the budget
//! is answered 503 and its connection closed. Real callbacks' heads are a few hundred bytes,
//! well inside the allowance: no crowd of big heads can get them refused.
//!
//! Why it cannot damage a reply of the bridge's own: it only ever rewrites a complete response
//! head that starts where a response starts and declares an error status with no body. Every
//! reply the routes make has a JSON body, never empty, and a JSON body cannot hold the CR LF
//! that a head needs. Where it loses track of the framing (a chunked or close-delimited body, an
//! upgrade, a head it cannot parse, the reply to a `HEAD` request that declares a length it
//! does not send) it stops looking and passes the rest of the connection through as it is.

use std::collections::VecDeque;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::error::Reply;
use crate::internal_events::{CallbackRefused, InternalEvent, Refusal};
use crate::metrics::{Metrics, NO_TYPE};
use crate::routes::request_log::request_id;
use crate::routes::RequestLogging;

/// The longest response head followed: the bridge's are a few hundred bytes.
const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Headers parsed per response head; a head with more is passed through unchanged.
const MAX_HEADERS: usize = 32;
/// What actix-http takes in a request head before answering 431 (its own constants).
const STACK_HEAD_LIMITS: &str = "128 KiB or 96 headers";

/// Bytes of each request head that are never charged to the shared budget: a callback's head
/// is 300-700 bytes as ZEGO sends it, and an ingress adds a few forwarding and tracing headers.
/// Each connection's buffer holds this much anyway (actix-http reads in 8 KiB steps).
pub const HEAD_ALLOWANCE: usize = 4 * 1024;

/// The bytes of unfinished request heads beyond [`HEAD_ALLOWANCE`], across all connections.
struct HeadBudget {
    limit: usize,
    used: AtomicUsize,
}

impl HeadBudget {
    fn try_charge(&self, bytes: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|&total| total <= self.limit)
            })
            .is_ok()
    }

    fn release(&self, bytes: usize) {
        if bytes > 0 {
            self.used.fetch_sub(bytes, Ordering::AcqRel);
        }
    }
}

/// What every connection's wrapper shares: where refusals are counted and logged, what their
/// messages name, and the budget of unfinished request heads.
pub struct StackReplies {
    metrics: Arc<Metrics>,
    /// The routes' own: one budget of refusal lines for both.
    logging: Arc<RequestLogging>,
    request_timeout: Duration,
    heads: HeadBudget,
    retry_after_secs: u64,
}

impl StackReplies {
    /// `max_buffered_head_bytes`: the budget of unfinished heads beyond each one's allowance;
    /// `retry_after_secs`: what a 503 for it tells the client.
    pub fn new(
        metrics: Arc<Metrics>,
        logging: Arc<RequestLogging>,
        request_timeout: Duration,
        max_buffered_head_bytes: usize,
        retry_after_secs: u64,
    ) -> Self {
        StackReplies {
            metrics,
            logging,
            request_timeout,
            heads: HeadBudget {
                limit: max_buffered_head_bytes,
                used: AtomicUsize::new(0),
            },
            retry_after_secs,
        }
    }

    /// Bytes of unfinished heads charged to the budget now.
    pub fn buffered_head_bytes(&self) -> usize {
        self.heads.used.load(Ordering::Acquire)
    }

    /// Wraps one accepted connection; `client` names it in the log lines.
    pub fn wrap<IO>(self: &Arc<Self>, io: IO, client: Option<IpAddr>) -> JsonStackReplies<IO> {
        JsonStackReplies {
            io,
            shared: self.clone(),
            client,
            outgoing: Outgoing::Head,
            head: Vec::new(),
            unwritten: Vec::new(),
            unwritten_from: 0,
            since: Instant::now(),
            incoming: IncomingHead::default(),
        }
    }

    /// The contract's message for a reply the HTTP stack made with this status.
    fn message(&self, status: StatusCode) -> String {
        match status {
            StatusCode::BAD_REQUEST => {
                "the request line or a header could not be parsed (a malformed Content-Length, say)"
                    .to_owned()
            }
            StatusCode::REQUEST_TIMEOUT => format!(
                "the request headers did not arrive within {} ms (ZEGO_BRIDGE_HTTP_REQUEST_TIMEOUT_MS)",
                self.request_timeout.as_millis()
            ),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => {
                format!("the request headers are larger than the HTTP server takes ({STACK_HEAD_LIMITS})")
            }
            other => other
                .canonical_reason()
                .unwrap_or("refused by the HTTP server")
                .to_ascii_lowercase(),
        }
    }
}

/// A connection whose error replies without a body get the contract's JSON body.
pub struct JsonStackReplies<IO> {
    io: IO,
    shared: Arc<StackReplies>,
    client: Option<IpAddr>,
    outgoing: Outgoing,
    /// The response head being taken, while `outgoing` is [`Outgoing::Head`]. Kept, like
    /// `unwritten`, from one response to the next: no allocation per response.
    head: Vec<u8>,
    /// Bytes taken from the HTTP stack and not yet written to `io`, from `unwritten_from`.
    unwritten: Vec<u8>,
    unwritten_from: usize,
    /// When the connection was accepted or its last response finished: what a reply the stack
    /// makes took, for the latency histogram.
    since: Instant,
    incoming: IncomingHead,
}

/// Where the incoming byte stream is, as far as the head budget cares. It follows the
/// requests' own framing (a head, then `Content-Length` bytes of body, then the next head), so
/// that a head sent right behind another request (pipelined) is counted from its first byte,
/// whatever the responses do; and a complete head keeps its charge until its response is
/// written, since actix-http holds it (up to 16 pipelined requests) until then.
#[derive(Debug, Default)]
struct IncomingHead {
    framing: Framing,
    /// Bytes of the current head (or of an unframed body) received so far.
    received: usize,
    /// Of them, charged to the shared budget (those beyond the allowance).
    charged: usize,
    /// The charges of complete heads whose responses are not written yet, oldest first.
    awaiting_response: VecDeque<usize>,
    /// The connection was refused for the budget: it reads nothing more and writes nothing
    /// more than the refusal.
    refused: bool,
    /// A chunked request was answered: the connection reads nothing more (its end closes it),
    /// since this wrapper cannot tell where the chunked body ended.
    closing: bool,
}

impl IncomingHead {
    /// Gives back everything this connection was charged.
    fn release_all(&mut self, heads: &HeadBudget) {
        let awaiting: usize = self.awaiting_response.drain(..).sum();
        heads.release(self.charged + awaiting);
        self.charged = 0;
        self.received = 0;
    }
}

#[derive(Debug)]
enum Framing {
    /// Inside a request head.
    Head(HeadScan),
    /// Inside a body of known length: the bytes left.
    Body(u64),
    /// A body this wrapper does not follow (chunked): every byte is charged as a head's would
    /// be, and kept charged until the connection closes, which its response brings about.
    Unframed,
}

impl Default for Framing {
    fn default() -> Self {
        Framing::Head(HeadScan::default())
    }
}

/// What is known of a request head while it arrives: where it ends, and the framing of the body
/// behind it, read as actix-http reads it.
#[derive(Debug, Default)]
struct HeadScan {
    /// Whether a byte other than CR or LF has come: blank lines before a request line are
    /// skipped by the parser, so they must not count as the end of a head.
    started: bool,
    /// Line feeds in a row (carriage returns between them ignored): two end the head.
    line_feeds: u8,
    line: LineScan,
    content_length: Option<u64>,
    /// `Transfer-Encoding`, or a `Content-Length` that cannot be read: a body not followed.
    unframed: bool,
}

/// The current line of a head.
#[derive(Debug)]
enum LineScan {
    /// Before the colon: the name so far (no header read here has a longer one).
    Name(Vec<u8>),
    /// The value of a `Content-Length`.
    Length(LengthScan),
    /// A line of no interest, or past what matters of it.
    Other,
}

impl Default for LineScan {
    fn default() -> Self {
        LineScan::Name(Vec::new())
    }
}

/// A `Content-Length` value as actix-http takes it: trimmed of spaces and tabs, then decimal
/// digits only, any number of leading zeros, no sign; of any length.
#[derive(Debug, Default)]
struct LengthScan {
    /// `None` until a digit has come.
    value: Option<u64>,
    /// Spaces after the digits: another digit then makes it unreadable.
    after_digits: bool,
    unreadable: bool,
}

/// The longest header name looked at: `transfer-encoding`.
const HEADER_NAME_KEPT: usize = 32;

impl HeadScan {
    /// Reads `bytes`; returns how many belong to this head, and whether it ended within them.
    fn take(&mut self, bytes: &[u8]) -> (usize, bool) {
        for (at, &byte) in bytes.iter().enumerate() {
            match byte {
                b'\n' if self.started => {
                    self.end_of_line();
                    self.line_feeds += 1;
                    if self.line_feeds == 2 {
                        return (at + 1, true);
                    }
                }
                b'\r' | b'\n' => {}
                _ => {
                    self.started = true;
                    self.line_feeds = 0;
                    self.line_byte(byte);
                }
            }
        }
        (bytes.len(), false)
    }

    fn line_byte(&mut self, byte: u8) {
        match &mut self.line {
            LineScan::Name(name) if byte == b':' => {
                self.line = if name.eq_ignore_ascii_case(b"content-length") {
                    LineScan::Length(LengthScan::default())
                } else {
                    if name.eq_ignore_ascii_case(b"transfer-encoding") {
                        self.unframed = true;
                    }
                    LineScan::Other
                };
            }
            LineScan::Name(name) if name.len() < HEADER_NAME_KEPT => name.push(byte),
            LineScan::Name(_) => self.line = LineScan::Other,
            LineScan::Length(length) => match byte {
                b' ' | b'\t' => length.after_digits = length.value.is_some(),
                b'0'..=b'9' if !length.after_digits => {
                    let digit = u64::from(byte - b'0');
                    length.value = match length.value.unwrap_or(0).checked_mul(10) {
                        Some(tens) => tens.checked_add(digit),
                        None => None,
                    };
                    if length.value.is_none() {
                        length.unreadable = true;
                    }
                }
                _ => length.unreadable = true,
            },
            LineScan::Other => {}
        }
    }

    fn end_of_line(&mut self) {
        if let LineScan::Length(length) = std::mem::take(&mut self.line) {
            match (length.unreadable, length.value, self.content_length) {
                (false, Some(value), None) => self.content_length = Some(value),
                (false, Some(value), Some(before)) if value == before => {}
                // Unreadable or two lengths: the stack refuses the request; count on.
                _ => self.unframed = true,
            }
        }
    }

    /// What follows the head.
    fn next(&self) -> Framing {
        match (self.unframed, self.content_length) {
            (true, _) => Framing::Unframed,
            (false, Some(length)) if length > 0 => Framing::Body(length),
            _ => Framing::Head(HeadScan::default()),
        }
    }
}

/// Where the outgoing byte stream is.
#[derive(Debug, PartialEq, Eq)]
enum Outgoing {
    /// At or inside a response head.
    Head,
    /// Inside a body of known length: the bytes left.
    Body(u64),
    /// Framing this wrapper does not follow: the rest of the connection passes through.
    PassThrough,
}

/// What to do with a complete response head.
#[derive(Debug, PartialEq, Eq)]
enum Next {
    /// The stack's own error reply: send this instead.
    Rewrite(StatusCode),
    /// Send it as it is; then this many bytes of body.
    Body(u64),
    /// An informational reply (`100 Continue`): send it as it is; the request goes on.
    Interim,
    /// Send it as it is; stop following the framing.
    PassThrough,
}

/// Reads the response head at the start of `bytes`: `None` while it is incomplete, else where
/// it ends (just past its blank line) and what follows it. About a hundred nanoseconds for the
/// bridge's replies.
fn read_head(bytes: &[u8]) -> Option<(usize, Next)> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let end = match response.parse(bytes) {
        Ok(httparse::Status::Complete(end)) => end,
        Ok(httparse::Status::Partial) => return None,
        // Not a head this wrapper can read: it, and everything after it, passes on as it is.
        Err(_) => return Some((bytes.len(), Next::PassThrough)),
    };
    let Some(status) = response
        .code
        .and_then(|code| StatusCode::from_u16(code).ok())
    else {
        return Some((end, Next::PassThrough));
    };
    let header = |name: &str| {
        response
            .headers
            .iter()
            .find(|header| header.name.eq_ignore_ascii_case(name))
    };
    let next = if status == StatusCode::SWITCHING_PROTOCOLS || header("transfer-encoding").is_some()
    {
        Next::PassThrough
    } else if status.is_informational() {
        Next::Interim
    } else if status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
        Next::Body(0)
    } else {
        let length = header("content-length").and_then(|header| {
            std::str::from_utf8(header.value)
                .ok()
                .and_then(|value| value.trim().parse::<u64>().ok())
        });
        match length {
            Some(0) if status.is_client_error() || status.is_server_error() => {
                Next::Rewrite(status)
            }
            Some(length) => Next::Body(length),
            // Close-delimited: nothing follows that could be a head.
            None => Next::PassThrough,
        }
    };
    Some((end, next))
}

/// The head and body that replace the stack's empty reply: its status line and headers, with
/// the contract's body and its type and length.
fn rewrite(head: &[u8], status: StatusCode, message: &str, request_id: &str) -> Vec<u8> {
    let status_line_end = head
        .windows(2)
        .position(|pair| pair == b"\r\n")
        .map_or(head.len(), |at| at + 2);
    let body = serde_json::to_vec(&Reply {
        code: status.as_u16(),
        message,
    })
    .expect("a reply serializes");
    let mut out = Vec::with_capacity(head.len() + body.len() + 96);
    out.extend_from_slice(&head[..status_line_end]);
    for line in head[status_line_end..].split(|&byte| byte == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let name = line.split(|&byte| byte == b':').next().unwrap_or_default();
        if line.is_empty()
            || name.eq_ignore_ascii_case(b"content-length")
            || name.eq_ignore_ascii_case(b"content-type")
        {
            continue;
        }
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"content-type: application/json\r\n");
    out.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
    out.extend_from_slice(format!("x-request-id: {request_id}\r\n\r\n").as_bytes());
    out.extend_from_slice(&body);
    out
}

impl<IO: AsyncWrite + Unpin> JsonStackReplies<IO> {
    /// Writes what is held back; ready once nothing is.
    fn poll_write_unwritten(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.unwritten_from < self.unwritten.len() {
            let n = ready!(
                Pin::new(&mut self.io).poll_write(cx, &self.unwritten[self.unwritten_from..])
            )?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.unwritten_from += n;
        }
        self.unwritten.clear();
        self.unwritten_from = 0;
        Poll::Ready(Ok(()))
    }

    /// Passes on a response whose head is whole at the start of `buf` and is not the stack's
    /// error reply: the head and what `buf` holds of its body in one write, as the stack made
    /// them, so that following the framing costs no copy and no extra system call. `None`
    /// when it is not such a head.
    fn poll_write_whole_head(
        &mut self,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Option<Poll<io::Result<usize>>> {
        if !self.head.is_empty() {
            return None;
        }
        let (end, next) = read_head(buf)?;
        let span = match next {
            Next::Rewrite(_) => return None,
            Next::Interim => end,
            Next::Body(length) => {
                end + usize::try_from(length)
                    .map_or(buf.len() - end, |length| length.min(buf.len() - end))
            }
            Next::PassThrough => buf.len(),
        };
        let written = match Pin::new(&mut self.io).poll_write(cx, &buf[..span]) {
            Poll::Ready(Ok(written)) => written,
            other => return Some(other),
        };
        self.enter(next);
        if written < end {
            // The rest of the head waits, taken: what follows must not overtake it.
            self.unwritten.extend_from_slice(&buf[written..end]);
            return Some(Poll::Ready(Ok(end)));
        }
        self.body_written(written - end);
        Some(Poll::Ready(Ok(written)))
    }

    /// Takes bytes of a response head; once it is complete, queues it (or its replacement).
    /// Returns how many bytes of `buf` were taken.
    fn take_head_bytes(&mut self, buf: &[u8]) -> usize {
        let held = self.head.len();
        self.head.extend_from_slice(buf);
        let Some((end, next)) = read_head(&self.head) else {
            if self.head.len() > MAX_HEAD_BYTES {
                self.pass_through();
            }
            return buf.len();
        };
        let taken = end - held;
        self.head.truncate(end);
        if let Next::Rewrite(status) = next {
            let request_id = request_id(None);
            let message = self.shared.message(status);
            self.refused(status, &message, &request_id);
            let reply = rewrite(&self.head, status, &message, &request_id);
            self.unwritten.extend_from_slice(&reply);
        } else {
            self.unwritten.extend_from_slice(&self.head);
        }
        self.head.clear();
        self.enter(next);
        taken
    }

    /// Moves past a complete head, sent or queued.
    fn enter(&mut self, next: Next) {
        match next {
            Next::Rewrite(_) | Next::Body(0) => self.response_finished(),
            Next::Interim => self.outgoing = Outgoing::Head,
            Next::Body(length) => self.outgoing = Outgoing::Body(length),
            Next::PassThrough => self.outgoing = Outgoing::PassThrough,
        }
    }

    /// Counts bytes of body written.
    fn body_written(&mut self, written: usize) {
        if let Outgoing::Body(left) = self.outgoing {
            let left = left.saturating_sub(written as u64);
            if left == 0 {
                self.response_finished();
            } else {
                self.outgoing = Outgoing::Body(left);
            }
        }
    }

    /// Gives up following the framing: what is held of a head goes out as it is.
    fn pass_through(&mut self) {
        self.outgoing = Outgoing::PassThrough;
        self.unwritten.append(&mut self.head);
    }

    fn response_finished(&mut self) {
        self.outgoing = Outgoing::Head;
        self.since = Instant::now();
        // The oldest request waiting was answered: actix-http lets its head go.
        if let Some(charged) = self.incoming.awaiting_response.pop_front() {
            self.shared.heads.release(charged);
        }
        // Past a chunked request nothing more is read: where its body ended is not known.
        if matches!(self.incoming.framing, Framing::Unframed) {
            self.incoming.closing = true;
        }
    }

    /// Gives back everything charged: the connection is gone.
    fn release_all(&mut self) {
        self.incoming.release_all(&self.shared.heads);
    }

    /// Follows `bytes` (just read) through the requests' framing and charges the bytes of heads
    /// (and unframed bodies) beyond the allowance; `false` when the budget cannot take them.
    fn charge_head(&mut self, mut bytes: &[u8]) -> bool {
        while !bytes.is_empty() {
            let (counted, ended) = match &mut self.incoming.framing {
                Framing::Body(left) => {
                    let skipped = usize::try_from(*left)
                        .unwrap_or(usize::MAX)
                        .min(bytes.len());
                    *left -= skipped as u64;
                    if *left == 0 {
                        self.incoming.framing = Framing::default();
                    }
                    bytes = &bytes[skipped..];
                    continue;
                }
                Framing::Unframed => (bytes.len(), false),
                Framing::Head(scan) => scan.take(bytes),
            };
            self.incoming.received += counted;
            let beyond = self.incoming.received.saturating_sub(HEAD_ALLOWANCE);
            if beyond > self.incoming.charged {
                if !self.shared.heads.try_charge(beyond - self.incoming.charged) {
                    return false;
                }
                self.incoming.charged = beyond;
            }
            if ended {
                // Held by actix-http until its response is written.
                self.incoming
                    .awaiting_response
                    .push_back(self.incoming.charged);
                self.incoming.charged = 0;
                self.incoming.received = 0;
                if let Framing::Head(scan) = &self.incoming.framing {
                    self.incoming.framing = scan.next();
                }
            }
            bytes = &bytes[counted..];
        }
        true
    }

    /// Answers 503 for the head budget, as far as the socket takes it now, and closes the
    /// connection: it reads nothing more, and what the stack writes afterwards is dropped.
    fn refuse_head(&mut self, cx: &mut Context<'_>) {
        self.release_all();
        self.incoming.refused = true;
        let status = StatusCode::SERVICE_UNAVAILABLE;
        let request_id = request_id(None);
        let message = "too many request headers are being received at once \
                       (ZEGO_BRIDGE_HTTP_MAX_BUFFERED_HEAD_BYTES); retry";
        self.refused(status, message, &request_id);
        let head = format!(
            "HTTP/1.1 503 Service Unavailable\r\nretry-after: {}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
            self.shared.retry_after_secs
        );
        self.unwritten
            .extend_from_slice(&rewrite(head.as_bytes(), status, message, &request_id));
        self.outgoing = Outgoing::PassThrough;
        let _ = self.poll_write_unwritten(cx);
    }

    fn refused(&mut self, status: StatusCode, message: &str, request_id: &str) {
        let metrics = &self.shared.metrics;
        CallbackRefused {
            event_type: NO_TYPE,
            app_id: None,
            refusal: Refusal::BadRequest { error: &message },
            request_id,
            client: self.client,
            log: self.shared.logging.refusal_log(),
        }
        .emit(metrics);
        metrics.callback_answered(NO_TYPE, status.as_u16(), self.since.elapsed());
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for JsonStackReplies<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_write_unwritten(cx))?;
        if this.incoming.refused {
            return Poll::Ready(Ok(buf.len()));
        }
        match this.outgoing {
            Outgoing::PassThrough => Pin::new(&mut this.io).poll_write(cx, buf),
            Outgoing::Body(left) => {
                let chunk = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                let written = ready!(Pin::new(&mut this.io).poll_write(cx, &buf[..chunk]))?;
                this.body_written(written);
                Poll::Ready(Ok(written))
            }
            Outgoing::Head => {
                if let Some(poll) = this.poll_write_whole_head(cx, buf) {
                    return poll;
                }
                let taken = this.take_head_bytes(buf);
                // Start sending at once; what the socket does not take now waits for the next
                // write or flush. The bytes are taken either way.
                let _ = this.poll_write_unwritten(cx)?;
                Poll::Ready(Ok(taken))
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        // A head is always written whole before a flush; if not, it is not waited for.
        if this.outgoing == Outgoing::Head && !this.head.is_empty() {
            this.pass_through();
        }
        ready!(this.poll_write_unwritten(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.as_mut().poll_flush(cx))?;
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncRead for JsonStackReplies<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.incoming.refused || this.incoming.closing {
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.io).poll_read(cx, buf))?;
        if !this.charge_head(&buf.filled()[before..]) {
            // Nothing of it reaches the stack, which sees the connection end.
            buf.set_filled(before);
            this.refuse_head(cx);
        }
        Poll::Ready(Ok(()))
    }
}

impl<IO> Drop for JsonStackReplies<IO> {
    fn drop(&mut self) {
        self.incoming.release_all(&self.shared.heads);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    /// A socket that takes at most `per_write` bytes per write and says Pending every other
    /// call, to exercise every way a write can be split.
    struct StingySocket {
        written: Vec<u8>,
        per_write: usize,
        calls: usize,
    }

    impl AsyncWrite for StingySocket {
        fn poll_write(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let this = self.get_mut();
            this.calls += 1;
            if this.calls.is_multiple_of(2) {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            let n = buf.len().min(this.per_write);
            this.written.extend_from_slice(&buf[..n]);
            Poll::Ready(Ok(n))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    fn shared() -> Arc<StackReplies> {
        Arc::new(StackReplies::new(
            Arc::new(Metrics::new()),
            Arc::new(RequestLogging::new(Vec::new(), false)),
            Duration::from_millis(5000),
            64 * 1024,
            1,
        ))
    }

    /// A reply as the routes make it: a JSON body and its length.
    fn own_reply(status: &str, body: &str) -> Vec<u8> {
        format!(
            "HTTP/1.1 {status}\r\ncontent-length: {}\r\ncontent-type: application/json\r\ndate: Fri, 04 Dec 2026 08:00:00 GMT\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    fn own_400() -> Vec<u8> {
        own_reply(
            "400 Bad Request",
            r#"{"code":400,"message":"malformed: no event"}"#,
        )
    }
    const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";
    const STACK_400: &[u8] = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\ndate: Fri, 04 Dec 2026 08:00:00 GMT\r\n\r\n";

    /// Writes `chunks` through the wrapper onto a socket taking `per_write` bytes at a time.
    async fn send(chunks: &[&[u8]], per_write: usize) -> (Vec<u8>, Arc<StackReplies>) {
        let shared = shared();
        let socket = StingySocket {
            written: Vec::new(),
            per_write,
            calls: 0,
        };
        let mut wrapped = shared.wrap(socket, None);
        for chunk in chunks {
            wrapped.write_all(chunk).await.unwrap();
        }
        wrapped.flush().await.unwrap();
        (std::mem::take(&mut wrapped.io.written), shared)
    }

    fn body_of(reply: &[u8]) -> serde_json::Value {
        let at = reply.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        serde_json::from_slice(&reply[at..]).unwrap()
    }

    #[tokio::test]
    async fn the_stacks_empty_reply_gets_the_contracts_body_and_is_counted() {
        let (out, shared) = send(&[STACK_400], usize::MAX).await;
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(text.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{text}");
        assert!(text.contains("\r\nconnection: close\r\n"), "{text}");
        assert!(
            text.contains("\r\ncontent-type: application/json\r\n"),
            "{text}"
        );
        assert!(!text.contains("content-length: 0"), "{text}");
        assert!(text.contains("\r\nx-request-id: "), "{text}");
        let body = body_of(&out);
        assert_eq!(body["code"], 400);
        assert!(body["message"].as_str().unwrap().contains("Content-Length"));
        let declared: usize = text
            .lines()
            .find_map(|line| line.strip_prefix("content-length: "))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(declared, out.len() - text.find("\r\n\r\n").unwrap() - 4);
        let exported = shared.metrics.render();
        assert!(
            exported.contains(r#"zego_bridge_callbacks_total{status="400",type="none"} 1"#),
            "{exported}"
        );
    }

    #[tokio::test]
    async fn every_status_the_stack_makes_gets_its_own_message() {
        for (status, expected) in [
            ("408 Request Timeout", "5000 ms"),
            ("431 Request Header Fields Too Large", "96 headers"),
        ] {
            let reply =
                format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            let (out, _) = send(&[reply.as_bytes()], usize::MAX).await;
            let body = body_of(&out);
            assert_eq!(body["code"], status[..3].parse::<u16>().unwrap());
            assert!(
                body["message"].as_str().unwrap().contains(expected),
                "{body}"
            );
        }
    }

    /// The bridge's own replies, a 100 Continue and a success, then the stack's: however the
    /// writes are split and however little the socket takes at a time, the first three go out
    /// byte for byte and only the last is rewritten.
    #[tokio::test]
    async fn only_the_stacks_reply_changes_however_the_bytes_are_split() {
        let ok = own_reply("200 OK", r#"{"code":200,"message":"accepted"}"#);
        let own = [CONTINUE, &own_400(), &ok].concat();
        let stream = [&own, STACK_400].concat();
        let (whole, _) = send(&[&stream], usize::MAX).await;
        assert_eq!(&whole[..own.len()], &own[..]);
        let rewritten = &whole[own.len()..];
        assert_eq!(body_of(rewritten)["code"], 400);
        let without_id = |bytes: &[u8]| {
            String::from_utf8_lossy(bytes)
                .lines()
                .filter(|line| !line.starts_with("x-request-id"))
                .collect::<Vec<_>>()
                .join("\n")
        };
        for split in 0..=stream.len() {
            for per_write in [1, 7, usize::MAX] {
                let (out, _) = send(&[&stream[..split], &stream[split..]], per_write).await;
                assert_eq!(
                    without_id(&out),
                    without_id(&whole),
                    "split at {split}, {per_write} bytes per write"
                );
            }
        }
    }

    #[tokio::test]
    async fn framing_it_does_not_follow_passes_through_unchanged() {
        let chunked =
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
        // The reply to a HEAD request declares a length it does not send: what follows is
        // taken for body, then not for a head, and passes through.
        let head_reply =
            b"HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 45\r\nallow: POST\r\n\r\n";
        let close_delimited = b"HTTP/1.1 200 OK\r\n\r\nuntil the end";
        let not_http = b"\x16\x03\x01 not a response";
        for first in [
            &chunked[..],
            &head_reply[..],
            &close_delimited[..],
            &not_http[..],
        ] {
            let stream = [first, STACK_400, STACK_400].concat();
            let (out, shared) = send(&[&stream], 3).await;
            assert_eq!(out, stream, "{}", String::from_utf8_lossy(first));
            assert!(!shared
                .metrics
                .render()
                .contains(r#"status="400",type="none"} 1"#));
        }
    }

    proptest::proptest! {
        /// Whatever a route's message says (client text included) and wherever the writes are
        /// split, the bridge's own replies go out byte for byte.
        #[test]
        fn the_bridges_own_replies_are_never_changed(
            messages in proptest::collection::vec(("\\PC*", 200u16..600), 1..4),
            split in 0usize..2000,
            per_write in 1usize..64,
        ) {
            let stream: Vec<u8> = messages
                .iter()
                .flat_map(|(message, code)| {
                    let status = StatusCode::from_u16(*code).unwrap();
                    let body = serde_json::to_string(&Reply { code: *code, message }).unwrap();
                    own_reply(&status.to_string(), &body)
                })
                .collect();
            let split = split.min(stream.len());
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let (out, _) =
                runtime.block_on(send(&[&stream[..split], &stream[split..]], per_write));
            proptest::prop_assert_eq!(out, stream);
        }

        /// Any bytes at all, cut anywhere: the wrapper never panics, never loses or reorders a
        /// byte, and changes the stream only where it counted a rewrite.
        #[test]
        fn any_stream_passes_whole_unless_a_reply_was_rewritten(
            pieces in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::strategy::Just(STACK_400.to_vec()),
                    proptest::strategy::Just(CONTINUE.to_vec()),
                    proptest::strategy::Just(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\n".to_vec()),
                    proptest::strategy::Just(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_vec()),
                    proptest::strategy::Just(b"\r\n\r\n".to_vec()),
                    proptest::collection::vec(proptest::num::u8::ANY, 0..40),
                ],
                0..8,
            ),
            split in 0usize..600,
            per_write in 1usize..64,
        ) {
            let stream = pieces.concat();
            let split = split.min(stream.len());
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let (out, shared) =
                runtime.block_on(send(&[&stream[..split], &stream[split..]], per_write));
            let rewrites: u64 = shared
                .metrics
                .render()
                .lines()
                .filter(|line| line.starts_with("zego_bridge_callbacks_total{") && line.contains(r#"type="none""#))
                .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
                .sum();
            if rewrites == 0 {
                proptest::prop_assert_eq!(out, stream);
            } else {
                proptest::prop_assert!(out.len() > stream.len());
            }
        }
    }

    #[test]
    fn an_error_reply_with_a_body_is_the_bridges_own() {
        let classify = |head: &[u8]| {
            let (end, next) = read_head(head).expect("a whole head");
            assert_eq!(
                end,
                head.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4
            );
            next
        };
        assert_eq!(classify(&own_400()), Next::Body(44));
        assert_eq!(classify(STACK_400), Next::Rewrite(StatusCode::BAD_REQUEST));
        assert_eq!(classify(CONTINUE), Next::Interim);
        assert_eq!(
            classify(b"HTTP/1.1 204 No Content\r\n\r\n"),
            Next::Body(0),
            "no body, and not an error"
        );
        assert_eq!(
            classify(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"),
            Next::Body(0)
        );
        assert_eq!(read_head(b"garbage\r\n\r\n"), Some((11, Next::PassThrough)));
        assert_eq!(read_head(b"HTTP/1.1 200 OK\r\ncontent-le"), None);
    }

    /// A socket that gives `reads` one per read, then reports the end; records what is written.
    struct ScriptedSocket {
        reads: std::collections::VecDeque<Vec<u8>>,
        written: Vec<u8>,
    }

    impl ScriptedSocket {
        fn new(reads: &[&[u8]]) -> Self {
            ScriptedSocket {
                reads: reads.iter().map(|read| read.to_vec()).collect(),
                written: Vec::new(),
            }
        }
    }

    impl AsyncRead for ScriptedSocket {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            if let Some(read) = self.get_mut().reads.pop_front() {
                buf.put_slice(&read);
            }
            Poll::Ready(Ok(()))
        }
    }

    impl AsyncWrite for ScriptedSocket {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.get_mut().written.extend_from_slice(buf);
            Poll::Ready(Ok(buf.len()))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    /// Reads once; the bytes the stack would see (none: the connection ended).
    async fn read_once(wrapped: &mut JsonStackReplies<ScriptedSocket>) -> usize {
        use tokio::io::AsyncReadExt;
        let mut buffer = vec![0u8; 256 * 1024];
        wrapped.read(&mut buffer).await.unwrap()
    }

    fn padding(bytes: usize) -> Vec<u8> {
        let mut head = b"POST /v1/callbacks HTTP/1.1\r\nX-Padding: ".to_vec();
        head.resize(bytes, b'a');
        head
    }

    #[tokio::test]
    async fn head_bytes_beyond_the_allowance_are_charged_as_they_arrive_and_given_back_at_its_end()
    {
        let shared = shared();
        let first = padding(6 * 1024);
        let mut wrapped = shared.wrap(
            ScriptedSocket::new(&[&first, &[b'a'; 2048], b"\r\n", b"\r\n{}"]),
            None,
        );
        assert_eq!(read_once(&mut wrapped).await, 6 * 1024);
        assert_eq!(shared.buffered_head_bytes(), 2 * 1024);
        assert_eq!(read_once(&mut wrapped).await, 2048);
        assert_eq!(shared.buffered_head_bytes(), 4 * 1024);
        read_once(&mut wrapped).await;
        assert_eq!(
            shared.buffered_head_bytes(),
            4 * 1024 + 2,
            "one line feed is no end"
        );
        assert_eq!(
            read_once(&mut wrapped).await,
            4,
            "the end and the body pass on"
        );
        assert_eq!(
            shared.buffered_head_bytes(),
            4 * 1024 + 4,
            "actix-http holds a complete head until it is answered"
        );
        wrapped.write_all(&own_400()).await.unwrap();
        assert_eq!(shared.buffered_head_bytes(), 0);
        drop(wrapped);
        assert_eq!(shared.buffered_head_bytes(), 0);
    }

    #[tokio::test]
    async fn a_head_that_ends_with_bare_line_feeds_ends_and_blank_lines_before_it_do_not() {
        let shared = shared();
        let mut head = b"\r\n\r\n\n\n".to_vec();
        head.extend_from_slice(&padding(8 * 1024));
        let mut wrapped = shared.wrap(ScriptedSocket::new(&[&head, b"\n\n"]), None);
        read_once(&mut wrapped).await;
        assert_eq!(
            shared.buffered_head_bytes(),
            head.len() - HEAD_ALLOWANCE,
            "blank lines before the request line end nothing"
        );
        read_once(&mut wrapped).await;
        wrapped.write_all(&own_400()).await.unwrap();
        assert_eq!(shared.buffered_head_bytes(), 0, "ended, and answered");
    }

    #[tokio::test]
    async fn a_head_past_the_budget_is_answered_503_and_ends_its_connection_and_no_other() {
        let shared = shared();
        let big = padding(HEAD_ALLOWANCE + 60 * 1024);
        let mut holder = shared.wrap(ScriptedSocket::new(&[&big]), None);
        assert_eq!(read_once(&mut holder).await, big.len());
        let small = b"POST /v1/callbacks HTTP/1.1\r\nHost: bridge\r\nContent-Length: 2\r\n\r\n{}";
        let mut real = shared.wrap(ScriptedSocket::new(&[small]), None);
        assert_eq!(
            read_once(&mut real).await,
            small.len(),
            "within the allowance"
        );
        let mut late = shared.wrap(
            ScriptedSocket::new(&[&padding(HEAD_ALLOWANCE + 8 * 1024), b"more"]),
            None,
        );
        assert_eq!(
            read_once(&mut late).await,
            0,
            "the stack sees the connection end"
        );
        assert_eq!(read_once(&mut late).await, 0, "and nothing after");
        late.write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
            .await
            .unwrap();
        let reply = String::from_utf8(late.io.written.clone()).unwrap();
        assert!(reply.starts_with("HTTP/1.1 503 "), "{reply}");
        assert!(reply.contains("retry-after: 1\r\n"), "{reply}");
        assert!(
            !reply.contains("400"),
            "nothing the stack writes follows: {reply}"
        );
        assert_eq!(
            body_of(reply.as_bytes())["message"],
            "too many request headers are being received at once \
             (ZEGO_BRIDGE_HTTP_MAX_BUFFERED_HEAD_BYTES); retry"
        );
        assert_eq!(shared.buffered_head_bytes(), 60 * 1024);
        drop(holder);
        assert_eq!(
            shared.buffered_head_bytes(),
            0,
            "a closed connection gives its share back"
        );
        let counted = shared.metrics.render();
        assert!(
            counted.contains(r#"zego_bridge_callbacks_total{status="503",type="none"} 1"#),
            "{counted}"
        );
    }

    #[tokio::test]
    async fn a_body_after_100_continue_is_no_head_and_the_next_request_is_one() {
        let shared = shared();
        let head =
            b"POST /v1/callbacks HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 9000\r\n\r\n";
        let body = vec![b'x'; 9000];
        let next = padding(6 * 1024);
        let mut wrapped = shared.wrap(ScriptedSocket::new(&[head, &body, &next]), None);
        read_once(&mut wrapped).await;
        wrapped.write_all(CONTINUE).await.unwrap();
        read_once(&mut wrapped).await;
        assert_eq!(
            shared.buffered_head_bytes(),
            0,
            "a body is charged elsewhere"
        );
        wrapped.write_all(&own_400()).await.unwrap();
        read_once(&mut wrapped).await;
        assert_eq!(shared.buffered_head_bytes(), 2 * 1024, "the next head is");
    }

    /// A head sent right behind another request, in the same write (pipelined), is counted
    /// from its first byte: the first head's end once stopped the counting until a response
    /// was written, and 1,500 such connections took 224 MiB past the budget (an outside
    /// attack). A body of declared length between them is skipped, a chunked one is counted.
    #[tokio::test]
    async fn pipelined_heads_are_counted_behind_a_head_a_body_or_a_chunked_body() {
        let pad = padding(HEAD_ALLOWANCE + 2048);
        for (before, counted) in [
            (&b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..], 2048),
            (&b"GET / HTTP/1.1\nHost: x\n\n"[..], 2048),
            (
                &b"POST /v1/callbacks HTTP/1.1\r\nContent-Length: 9\r\n\r\n{\"a\":\n\n1}"[..],
                2048,
            ),
        ] {
            let shared = shared();
            let mut write = before.to_vec();
            write.extend_from_slice(&pad);
            let mut wrapped = shared.wrap(ScriptedSocket::new(&[&write]), None);
            read_once(&mut wrapped).await;
            assert_eq!(
                shared.buffered_head_bytes(),
                counted,
                "{:?}",
                String::from_utf8_lossy(before)
            );
        }
        // A chunked body is charged like a head; once it is answered the connection reads
        // nothing more, and its charge goes with it.
        let shared = shared();
        let mut write =
            b"POST /v1/callbacks HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        write.extend_from_slice(&pad);
        let mut wrapped = shared.wrap(ScriptedSocket::new(&[&write, b"more"]), None);
        read_once(&mut wrapped).await;
        assert_eq!(shared.buffered_head_bytes(), pad.len() - HEAD_ALLOWANCE);
        wrapped.write_all(&own_400()).await.unwrap();
        assert_eq!(read_once(&mut wrapped).await, 0, "nothing more is read");
        assert_eq!(shared.buffered_head_bytes(), pad.len() - HEAD_ALLOWANCE);
        drop(wrapped);
        assert_eq!(shared.buffered_head_bytes(), 0);
    }

    /// A `Content-Length` padded with zeros past any prefix kept, or with spaces, is read as
    /// actix-http reads it: once the first 64 bytes of a line were taken, so that a padded
    /// length of 40 read as 0, and a length planted in the body then made the rest of the
    /// connection "body", uncharged (a review of the first fix).
    #[tokio::test]
    async fn a_padded_content_length_is_read_as_the_stack_reads_it() {
        let shared = shared();
        let body = b"a\nContent-Length: 18446744073709551615\n\n";
        let mut write = format!(
            "POST /v1/callbacks HTTP/1.1\r\nContent-Length:   {}{} \r\n\r\n",
            "0".repeat(200),
            body.len()
        )
        .into_bytes();
        write.extend_from_slice(body);
        write.extend_from_slice(&padding(HEAD_ALLOWANCE + 2048));
        let mut wrapped = shared.wrap(ScriptedSocket::new(&[&write]), None);
        read_once(&mut wrapped).await;
        assert_eq!(
            shared.buffered_head_bytes(),
            2048,
            "the body skipped, the head behind it charged"
        );
    }

    /// Complete heads pipelined behind a request still in service stay charged until each is
    /// answered: actix-http holds up to 16 of them, each up to 128 KiB.
    #[tokio::test]
    async fn pipelined_complete_heads_stay_charged_until_each_is_answered() {
        let shared = shared();
        let mut complete = padding(HEAD_ALLOWANCE + 1000);
        complete.extend_from_slice(b"\r\n\r\n");
        let write = [complete.clone(), complete.clone(), complete].concat();
        let mut wrapped = shared.wrap(ScriptedSocket::new(&[&write]), None);
        read_once(&mut wrapped).await;
        let each = 1000 + 4;
        assert_eq!(shared.buffered_head_bytes(), 3 * each);
        wrapped.write_all(&own_400()).await.unwrap();
        assert_eq!(shared.buffered_head_bytes(), 2 * each);
        wrapped.write_all(&own_400()).await.unwrap();
        wrapped.write_all(&own_400()).await.unwrap();
        assert_eq!(shared.buffered_head_bytes(), 0);
    }
}
