//! Message framing the edge refuses although hyper would accept it.
//!
//! A request whose length can be read two ways is how request smuggling starts once Corral sits
//! behind a load balancer that reads it the other way (RFC 9112 §6.3). hyper lets
//! `Transfer-Encoding` override `Content-Length` and takes a repeated identical
//! `Content-Length` as one, and it drops the other header before the service sees the request,
//! so the check has to happen on the bytes: [`FramingGuard`] wraps each connection, follows
//! the HTTP/1 message boundaries (heads, fixed-length and chunked bodies) and, in a head that
//! frames its body two ways, renames each `Content-Length` that hyper would ignore to
//! [`AMBIGUOUS_MARK`] (a name of the same length, so nothing moves). hyper then frames the
//! message as it would have anyway, and [`refuse_ambiguous_framing`] answers it 400 in the
//! protocol's envelope with `Connection: close`, because where the next message starts is not
//! certain. A malformed or conflicting `Content-Length` never gets this far: hyper answers 400
//! and closes by itself. Anything the guard cannot follow (HTTP/2, an upgrade to a websocket,
//! a broken chunk) ends its scanning: from there bytes pass through untouched, as before.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use http::header::CONNECTION;
use http::HeaderValue;
use tokio::io::{AsyncRead, ReadBuf};

use super::error::EdgeError;
use super::{protocol_from_headers, respond_error};

/// The name a `Content-Length` that hyper would ignore is given (as long as `content-length`).
pub const AMBIGUOUS_MARK: &str = "x-ambiguous-cl";

/// The longest request head followed; hyper refuses longer ones (431) by itself.
const MAX_HEAD: usize = 64 * 1024;

/// Answers a request marked by [`FramingGuard`] with 400 and `Connection: close`; passes every
/// other request on.
pub async fn refuse_ambiguous_framing(request: Request, next: Next) -> Response {
    if !request.headers().contains_key(AMBIGUOUS_MARK) {
        return next.run(request).await;
    }
    let problem = EdgeError::AmbiguousFraming(if request.headers().contains_key(http::header::TRANSFER_ENCODING) {
        "the request has both Transfer-Encoding and Content-Length; send one of them"
    } else {
        "the request has more than one Content-Length"
    });
    let protocol = protocol_from_headers(request.headers());
    let request_id = crate::ids::new_request_id();
    tracing::info!(request_id = %request_id, reason = %problem, "refused: ambiguous message framing");
    let xmlns = corral_api::sts::SERVICE.xml_namespace.unwrap_or_default();
    let mut response = respond_error(&problem.to_wire(protocol), protocol, &request_id, xmlns);
    response.headers_mut().insert(CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Where the guard is in the byte stream of one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Collecting a request head (held back until it is complete).
    Head,
    /// Inside a body of known length: this many bytes remain.
    Body(u64),
    /// Reading a chunk-size line: the size so far, and whether an extension has begun.
    ChunkSize { size: u64, ext: bool },
    /// Inside a chunk's data: this many bytes remain.
    ChunkData(u64),
    /// After a chunk's data, up to the end of its line.
    ChunkEnd,
    /// Trailer lines after the last chunk: whether the current line has any content.
    Trailer { content: bool },
    /// Not following any more (HTTP/2, upgrade, or framing hyper will refuse).
    Passthrough,
}

/// A connection whose request heads are checked for ambiguous framing (module docs).
pub struct FramingGuard<S> {
    inner: S,
    /// Bytes read from `inner` that hyper has not been given yet.
    buf: Vec<u8>,
    /// How many bytes at the front of `buf` are scanned and may be given to hyper.
    ready: usize,
    state: State,
}

impl<S> FramingGuard<S> {
    pub fn new(inner: S) -> Self {
        FramingGuard { inner, buf: Vec::new(), ready: 0, state: State::Head }
    }

    /// Advances the scan over `buf[ready..]`, marking heads and releasing what is scanned.
    fn scan(&mut self) {
        while self.ready < self.buf.len() {
            match self.state {
                State::Passthrough => self.ready = self.buf.len(),
                State::Head => {
                    let pending = &self.buf[self.ready..];
                    if self.ready == 0 && pending.starts_with(b"PRI * HTTP/2") {
                        self.state = State::Passthrough;
                        continue;
                    }
                    let Some(end) = head_end(pending) else {
                        if pending.len() > MAX_HEAD {
                            self.state = State::Passthrough;
                            continue;
                        }
                        return;
                    };
                    let start = self.ready;
                    self.state = mark_head(&mut self.buf[start..start + end]);
                    self.ready = start + end;
                }
                State::Body(remaining) => {
                    let n = remaining.min((self.buf.len() - self.ready) as u64);
                    self.ready += n as usize;
                    self.state = if n == remaining { State::Head } else { State::Body(remaining - n) };
                }
                State::ChunkData(remaining) => {
                    let n = remaining.min((self.buf.len() - self.ready) as u64);
                    self.ready += n as usize;
                    self.state = if n == remaining { State::ChunkEnd } else { State::ChunkData(remaining - n) };
                }
                State::ChunkSize { .. } | State::ChunkEnd | State::Trailer { .. } => {
                    let byte = self.buf[self.ready];
                    self.ready += 1;
                    self.state = chunk_line_step(self.state, byte);
                }
            }
        }
    }
}

/// The next state after one byte of a chunk-size, chunk-end or trailer line.
fn chunk_line_step(state: State, byte: u8) -> State {
    match (state, byte) {
        (State::ChunkSize { size: 0, .. }, b'\n') => State::Trailer { content: false },
        (State::ChunkSize { size, .. }, b'\n') => State::ChunkData(size),
        (State::ChunkSize { size, ext: false }, b) if b.is_ascii_hexdigit() => {
            let digit = u64::from((b as char).to_digit(16).unwrap_or(0));
            match size.checked_mul(16).and_then(|s| s.checked_add(digit)) {
                Some(size) => State::ChunkSize { size, ext: false },
                None => State::Passthrough,
            }
        }
        (State::ChunkSize { size, .. }, b';' | b' ' | b'\t') => State::ChunkSize { size, ext: true },
        (State::ChunkSize { size, ext }, b'\r') => State::ChunkSize { size, ext },
        (State::ChunkSize { size, ext: true }, _) => State::ChunkSize { size, ext: true },
        (State::ChunkSize { .. }, _) => State::Passthrough,
        (State::ChunkEnd, b'\n') => State::ChunkSize { size: 0, ext: false },
        (State::ChunkEnd, _) => State::ChunkEnd,
        (State::Trailer { content: false }, b'\n') => State::Head,
        (State::Trailer { .. }, b'\n') => State::Trailer { content: false },
        (State::Trailer { content }, b'\r') => State::Trailer { content },
        (State::Trailer { .. }, _) => State::Trailer { content: true },
        (other, _) => other,
    }
}

/// The length of the request head at the start of `bytes` (through its blank line), if it is
/// all there. Leading blank lines, which parsers skip, belong to it.
fn head_end(bytes: &[u8]) -> Option<usize> {
    let mut line_start = 0;
    let mut seen_request_line = false;
    for (i, &b) in bytes.iter().enumerate() {
        if b != b'\n' {
            continue;
        }
        let line = &bytes[line_start..i];
        let blank = line.is_empty() || line == b"\r";
        line_start = i + 1;
        if blank && seen_request_line {
            return Some(i + 1);
        }
        if !blank {
            seen_request_line = true;
        }
    }
    None
}

/// Checks one complete head, renames the `Content-Length` lines hyper would ignore when its
/// framing is ambiguous, and says how its body is framed.
fn mark_head(head: &mut [u8]) -> State {
    let mut content_lengths: Vec<(usize, Option<u64>)> = Vec::new();
    let mut chunked = None;
    let mut upgrade = false;
    let mut line_start = 0;
    while line_start < head.len() {
        let line_end = head[line_start..].iter().position(|&b| b == b'\n').map_or(head.len(), |p| line_start + p);
        let line = &head[line_start..line_end];
        if let Some(colon) = line.iter().position(|&b| b == b':') {
            let name = &line[..colon];
            let value = trim(&line[colon + 1..]);
            if name.eq_ignore_ascii_case(b"content-length") {
                let parsed = std::str::from_utf8(value).ok().and_then(|v| v.parse::<u64>().ok());
                content_lengths.push((line_start, parsed));
            } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
                let last = value.rsplit(|&b| b == b',').next().map(trim).unwrap_or_default();
                chunked = Some(last.eq_ignore_ascii_case(b"chunked"));
            } else if name.eq_ignore_ascii_case(b"upgrade") {
                upgrade = true;
            }
        }
        line_start = line_end + 1;
    }
    // Which Content-Length lines hyper ignores: all of them beside Transfer-Encoding, and every
    // one after the first otherwise.
    let ignored = if chunked.is_some() { &content_lengths[..] } else { content_lengths.get(1..).unwrap_or(&[]) };
    for (at, _) in ignored {
        head[*at..*at + AMBIGUOUS_MARK.len()].copy_from_slice(AMBIGUOUS_MARK.as_bytes());
    }
    match (chunked, content_lengths.first()) {
        _ if upgrade => State::Passthrough,
        (Some(true), _) => State::ChunkSize { size: 0, ext: false },
        // Transfer-Encoding without chunked last: hyper refuses the request and closes.
        (Some(false), _) => State::Passthrough,
        (None, Some((_, Some(len)))) => {
            if *len == 0 {
                State::Head
            } else {
                State::Body(*len)
            }
        }
        // An unreadable length: hyper refuses the request and closes.
        (None, Some((_, None))) => State::Passthrough,
        (None, None) => State::Head,
    }
}

fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(bytes.len());
    let end = bytes.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(start, |e| e + 1);
    &bytes[start..end.max(start)]
}

impl<S: AsyncRead + Unpin> AsyncRead for FramingGuard<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, out: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if this.ready > 0 {
                let n = this.ready.min(out.remaining());
                out.put_slice(&this.buf[..n]);
                this.buf.drain(..n);
                this.ready -= n;
                return Poll::Ready(Ok(()));
            }
            // Nothing held back and nothing to look at: read straight into hyper's buffer.
            if this.buf.is_empty() && matches!(this.state, State::Passthrough | State::Body(_)) {
                let before = out.filled().len();
                std::task::ready!(Pin::new(&mut this.inner).poll_read(cx, out))?;
                let read = out.filled().len() - before;
                if let State::Body(remaining) = this.state {
                    if (read as u64) <= remaining {
                        this.state =
                            if read as u64 == remaining { State::Head } else { State::Body(remaining - read as u64) };
                    } else {
                        // The next message began in this read: keep it back to look at first.
                        let body_end = before + remaining as usize;
                        this.buf.extend_from_slice(&out.filled()[body_end..]);
                        out.set_filled(body_end);
                        this.state = State::Head;
                        this.scan();
                    }
                }
                return Poll::Ready(Ok(()));
            }
            let mut chunk = [0u8; 8192];
            let mut chunk_buf = ReadBuf::new(&mut chunk);
            std::task::ready!(Pin::new(&mut this.inner).poll_read(cx, &mut chunk_buf))?;
            if chunk_buf.filled().is_empty() {
                // End of stream: hand over what is held (hyper sees the partial head).
                this.state = State::Passthrough;
                this.ready = this.buf.len();
                if this.ready == 0 {
                    return Poll::Ready(Ok(()));
                }
                continue;
            }
            this.buf.extend_from_slice(chunk_buf.filled());
            this.scan();
        }
    }
}

super::listener::write_through_inner!(FramingGuard);

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt;

    use super::*;

    /// What hyper would read through the guard when the peer sends `input` in pieces of
    /// `piece` bytes.
    async fn through_guard(input: &[u8], piece: usize) -> Vec<u8> {
        let (mut client, server) = tokio::io::duplex(64);
        let data = input.to_vec();
        let writer = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            for part in data.chunks(piece) {
                client.write_all(part).await.expect("write");
                tokio::task::yield_now().await;
            }
            client.shutdown().await.expect("shutdown");
        });
        let mut guard = FramingGuard::new(server);
        let mut out = Vec::new();
        guard.read_to_end(&mut out).await.expect("read");
        writer.await.expect("writer");
        out
    }

    const PLAIN: &[u8] = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello";
    const TE_AND_CL: &[u8] =
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
    const CL_TWICE: &[u8] = b"POST / HTTP/1.1\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\nhello";

    #[tokio::test]
    async fn well_framed_messages_pass_unchanged_however_they_arrive() {
        let chunked: &[u8] =
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\nT: v\r\n\r\n";
        let stream = [PLAIN, chunked, PLAIN, b"GET /healthz HTTP/1.1\r\n\r\n"].concat();
        for piece in [1, 3, 7, 64, 10_000] {
            assert_eq!(through_guard(&stream, piece).await, stream, "piece {piece}");
        }
    }

    #[tokio::test]
    async fn ambiguous_lengths_are_marked_in_every_message_of_a_connection() {
        let stream = [PLAIN, TE_AND_CL, CL_TWICE, PLAIN].concat();
        let expected = [
            PLAIN.to_vec(),
            String::from_utf8_lossy(TE_AND_CL).replace("Content-Length", AMBIGUOUS_MARK).into_bytes(),
            String::from_utf8_lossy(CL_TWICE).replace("content-length", AMBIGUOUS_MARK).into_bytes(),
            PLAIN.to_vec(),
        ]
        .concat();
        for piece in [1, 2, 5, 64, 10_000] {
            assert_eq!(through_guard(&stream, piece).await, expected, "piece {piece}");
        }
    }

    #[tokio::test]
    async fn a_body_that_looks_like_a_head_is_not_rewritten() {
        let body = b"X\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n";
        let message = [format!("POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n", body.len()).as_bytes(), body].concat();
        assert_eq!(through_guard(&message, 4).await, message);
    }

    #[tokio::test]
    async fn what_it_cannot_follow_passes_through() {
        let upgrade: &[u8] = b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\n\x81\x05hello Content-Length: 1\r\n\r\n";
        assert_eq!(through_guard(upgrade, 3).await, upgrade);
        let h2: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n";
        assert_eq!(through_guard(h2, 5).await, h2);
        let partial: &[u8] = b"POST / HTTP/1.1\r\nContent-Len";
        assert_eq!(through_guard(partial, 4).await, partial);
    }
}
