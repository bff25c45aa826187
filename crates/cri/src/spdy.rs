//! SPDY/3.1 framing, as Kubernetes still speaks it for streams: kubectl's fallback for exec
//! and attach, and the protocol inside port-forward's WebSocket tunnel
//! (`SPDY/3.1+portforward.k8s.io`). Pure: bytes in, frames out, and back.
//!
//! A control frame is `0x8003`, its type (u16), flags (u8) and length (u24), then its body; a
//! data frame is its stream id (u31), flags and length, then the data. Header blocks are a
//! count of pairs, each name and value prefixed by its length (u32), compressed with zlib and
//! SPDY/3's dictionary, one compression context per direction for the whole connection, each
//! block ending in a sync flush. Only what Kubernetes' clients use is interpreted: SYN_STREAM,
//! SYN_REPLY, RST_STREAM, PING, GOAWAY, HEADERS and data; SETTINGS and WINDOW_UPDATE are read
//! and skipped (Kubernetes' peers do no flow control).

use std::sync::LazyLock;

use bytes::{Buf, Bytes, BytesMut};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// The `Upgrade` header value and the version in every control frame.
pub const UPGRADE: &str = "SPDY/3.1";
const VERSION: u16 = 3;

/// Frame flags.
pub const FLAG_FIN: u8 = 0x01;
pub const FLAG_UNIDIRECTIONAL: u8 = 0x02;

/// RST_STREAM status codes.
pub const PROTOCOL_ERROR: u32 = 1;
pub const REFUSED_STREAM: u32 = 3;
pub const CANCEL: u32 = 5;
pub const INTERNAL_ERROR: u32 = 6;

const SYN_STREAM: u16 = 1;
const SYN_REPLY: u16 = 2;
const RST_STREAM: u16 = 3;
const SETTINGS: u16 = 4;
const PING: u16 = 6;
const GOAWAY: u16 = 7;
const HEADERS: u16 = 8;
const WINDOW_UPDATE: u16 = 9;

/// The largest frame body accepted (the length field allows 16 MiB; peers send far less).
const MAX_FRAME_BYTES: usize = 1 << 24;
/// The largest decompressed header block accepted.
const MAX_HEADER_BYTES: usize = 1 << 20;

/// A header block: lower-case names and their values, in order.
pub type Headers = Vec<(String, String)>;

/// One frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Data {
        stream: u32,
        fin: bool,
        data: Bytes,
    },
    SynStream {
        stream: u32,
        associated: u32,
        priority: u8,
        fin: bool,
        unidirectional: bool,
        headers: Headers,
    },
    SynReply {
        stream: u32,
        fin: bool,
        headers: Headers,
    },
    RstStream {
        stream: u32,
        status: u32,
    },
    Ping {
        id: u32,
    },
    GoAway {
        last_stream: u32,
        status: u32,
    },
    Headers {
        stream: u32,
        fin: bool,
        headers: Headers,
    },
    /// SETTINGS, WINDOW_UPDATE and control frames of unknown types: read, then ignored.
    Ignored {
        kind: u16,
    },
}

impl Frame {
    /// A data frame.
    pub fn data(stream: u32, data: impl Into<Bytes>, fin: bool) -> Self {
        Frame::Data {
            stream,
            fin,
            data: data.into(),
        }
    }

    /// The first value of header `name` in a SYN_STREAM, SYN_REPLY or HEADERS frame.
    pub fn header(&self, name: &str) -> Option<&str> {
        let headers = match self {
            Frame::SynStream { headers, .. }
            | Frame::SynReply { headers, .. }
            | Frame::Headers { headers, .. } => headers,
            _ => return None,
        };
        header(headers, name)
    }
}

/// The first value of header `name` (values with several entries are NUL-separated).
pub fn header<'a>(headers: &'a Headers, name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.split('\0').next())
}

#[derive(Debug, thiserror::Error)]
pub enum SpdyError {
    #[error("unsupported SPDY version {0}")]
    Version(u16),
    #[error("a SPDY frame of {0} bytes is too large")]
    TooLarge(usize),
    #[error("a malformed SPDY {what} frame")]
    Malformed { what: &'static str },
    #[error("a malformed SPDY header block")]
    HeaderBlock,
    #[error("decompressing a SPDY header block: {0}")]
    Inflate(#[from] flate2::DecompressError),
    #[error("compressing a SPDY header block: {0}")]
    Deflate(#[from] flate2::CompressError),
}

/// SPDY/3's header compression dictionary: length-prefixed words, then a literal tail.
static DICTIONARY: LazyLock<Vec<u8>> = LazyLock::new(|| {
    const WORDS: &[&str] = &[
        "options",
        "head",
        "post",
        "put",
        "delete",
        "trace",
        "accept",
        "accept-charset",
        "accept-encoding",
        "accept-language",
        "accept-ranges",
        "age",
        "allow",
        "authorization",
        "cache-control",
        "connection",
        "content-base",
        "content-encoding",
        "content-language",
        "content-length",
        "content-location",
        "content-md5",
        "content-range",
        "content-type",
        "date",
        "etag",
        "expect",
        "expires",
        "from",
        "host",
        "if-match",
        "if-modified-since",
        "if-none-match",
        "if-range",
        "if-unmodified-since",
        "last-modified",
        "location",
        "max-forwards",
        "pragma",
        "proxy-authenticate",
        "proxy-authorization",
        "range",
        "referer",
        "retry-after",
        "server",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "user-agent",
        "vary",
        "via",
        "warning",
        "www-authenticate",
        "method",
        "get",
        "status",
        "200 OK",
        "version",
        "HTTP/1.1",
        "url",
        "public",
        "set-cookie",
        "keep-alive",
        "origin",
    ];
    const TAIL: &str = concat!(
        "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505",
        "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request",
        "401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented",
        "503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 ",
        "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,",
        "application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age=",
        "gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.",
    );
    let mut dictionary = Vec::with_capacity(1423);
    for word in WORDS {
        dictionary.extend_from_slice(&(word.len() as u32).to_be_bytes());
        dictionary.extend_from_slice(word.as_bytes());
    }
    dictionary.extend_from_slice(TAIL.as_bytes());
    dictionary
});

/// Reads frames from a connection's bytes, in the order they arrive.
#[derive(Debug)]
pub struct FrameReader {
    buffer: BytesMut,
    inflate: Decompress,
}

impl Default for FrameReader {
    fn default() -> Self {
        Self {
            buffer: BytesMut::new(),
            inflate: Decompress::new(true),
        }
    }
}

impl FrameReader {
    /// Adds bytes read from the connection.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// The next complete frame, if the bytes so far hold one.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, SpdyError> {
        if self.buffer.len() < 8 {
            return Ok(None);
        }
        let length = usize::from(self.buffer[5]) << 16
            | usize::from(self.buffer[6]) << 8
            | usize::from(self.buffer[7]);
        if length > MAX_FRAME_BYTES {
            return Err(SpdyError::TooLarge(length));
        }
        if self.buffer.len() < 8 + length {
            return Ok(None);
        }
        let head = self.buffer.split_to(8);
        let mut body = self.buffer.split_to(length).freeze();
        let flags = head[4];
        let fin = flags & FLAG_FIN != 0;
        if head[0] & 0x80 == 0 {
            let stream = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
            return Ok(Some(Frame::Data {
                stream,
                fin,
                data: body,
            }));
        }
        let version = u16::from_be_bytes([head[0] & 0x7f, head[1]]);
        if version != VERSION {
            return Err(SpdyError::Version(version));
        }
        let kind = u16::from_be_bytes([head[2], head[3]]);
        let need = |body: &Bytes, n: usize, what: &'static str| {
            if body.len() < n {
                Err(SpdyError::Malformed { what })
            } else {
                Ok(())
            }
        };
        let frame = match kind {
            SYN_STREAM => {
                need(&body, 10, "SYN_STREAM")?;
                let stream = body.get_u32() & 0x7fff_ffff;
                let associated = body.get_u32() & 0x7fff_ffff;
                let priority = body.get_u8() >> 5;
                let _slot = body.get_u8();
                Frame::SynStream {
                    stream,
                    associated,
                    priority,
                    fin,
                    unidirectional: flags & FLAG_UNIDIRECTIONAL != 0,
                    headers: self.header_block(&body)?,
                }
            }
            SYN_REPLY => {
                need(&body, 4, "SYN_REPLY")?;
                let stream = body.get_u32() & 0x7fff_ffff;
                Frame::SynReply {
                    stream,
                    fin,
                    headers: self.header_block(&body)?,
                }
            }
            HEADERS => {
                need(&body, 4, "HEADERS")?;
                let stream = body.get_u32() & 0x7fff_ffff;
                Frame::Headers {
                    stream,
                    fin,
                    headers: self.header_block(&body)?,
                }
            }
            RST_STREAM => {
                need(&body, 8, "RST_STREAM")?;
                Frame::RstStream {
                    stream: body.get_u32() & 0x7fff_ffff,
                    status: body.get_u32(),
                }
            }
            PING => {
                need(&body, 4, "PING")?;
                Frame::Ping { id: body.get_u32() }
            }
            GOAWAY => {
                need(&body, 4, "GOAWAY")?;
                let last_stream = body.get_u32() & 0x7fff_ffff;
                let status = if body.len() >= 4 { body.get_u32() } else { 0 };
                Frame::GoAway {
                    last_stream,
                    status,
                }
            }
            SETTINGS | WINDOW_UPDATE => Frame::Ignored { kind },
            kind => Frame::Ignored { kind },
        };
        Ok(Some(frame))
    }

    /// Decompresses and decodes a header block.
    fn header_block(&mut self, compressed: &[u8]) -> Result<Headers, SpdyError> {
        let plain = self.inflate(compressed)?;
        decode_headers(&plain)
    }

    fn inflate(&mut self, input: &[u8]) -> Result<Vec<u8>, SpdyError> {
        let mut out = Vec::with_capacity(input.len() * 4 + 256);
        let mut position = 0;
        loop {
            if out.capacity() - out.len() < 256 {
                out.reserve(out.capacity().max(1024));
            }
            let (before_in, before_out) = (self.inflate.total_in(), out.len());
            let result =
                self.inflate
                    .decompress_vec(&input[position..], &mut out, FlushDecompress::Sync);
            let consumed = usize::try_from(self.inflate.total_in() - before_in)
                .map_err(|_| SpdyError::HeaderBlock)?;
            position += consumed;
            if out.len() > MAX_HEADER_BYTES {
                return Err(SpdyError::HeaderBlock);
            }
            match result {
                Err(e) if e.needs_dictionary().is_some() => {
                    self.inflate.set_dictionary(&DICTIONARY)?;
                    continue;
                }
                Err(e) => return Err(e.into()),
                Ok(Status::StreamEnd) => return Ok(out),
                Ok(Status::Ok | Status::BufError) => {}
            }
            let progressed = consumed > 0 || out.len() > before_out;
            let room_left = out.len() < out.capacity();
            if (position >= input.len() && room_left) || !progressed {
                return Ok(out);
            }
        }
    }
}

/// Writes frames for one direction of a connection.
#[derive(Debug)]
pub struct FrameWriter {
    deflate: Compress,
    primed: bool,
}

impl Default for FrameWriter {
    fn default() -> Self {
        Self {
            deflate: Compress::new(Compression::default(), true),
            primed: false,
        }
    }
}

impl FrameWriter {
    /// Appends `frame`'s bytes to `out`.
    pub fn encode(&mut self, frame: &Frame, out: &mut Vec<u8>) -> Result<(), SpdyError> {
        let (kind, flags, body) = match frame {
            Frame::Data { stream, fin, data } => {
                if data.len() > MAX_FRAME_BYTES - 1 {
                    return Err(SpdyError::TooLarge(data.len()));
                }
                out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
                push_flags_length(out, u8::from(*fin), data.len());
                out.extend_from_slice(data);
                return Ok(());
            }
            Frame::SynStream {
                stream,
                associated,
                priority,
                fin,
                unidirectional,
                headers,
            } => {
                let mut body = Vec::new();
                body.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
                body.extend_from_slice(&(associated & 0x7fff_ffff).to_be_bytes());
                body.push(priority << 5);
                body.push(0);
                body.extend_from_slice(&self.deflate_headers(headers)?);
                let flags = u8::from(*fin)
                    | if *unidirectional {
                        FLAG_UNIDIRECTIONAL
                    } else {
                        0
                    };
                (SYN_STREAM, flags, body)
            }
            Frame::SynReply {
                stream,
                fin,
                headers,
            } => (SYN_REPLY, u8::from(*fin), {
                let mut body = (stream & 0x7fff_ffff).to_be_bytes().to_vec();
                body.extend_from_slice(&self.deflate_headers(headers)?);
                body
            }),
            Frame::Headers {
                stream,
                fin,
                headers,
            } => (HEADERS, u8::from(*fin), {
                let mut body = (stream & 0x7fff_ffff).to_be_bytes().to_vec();
                body.extend_from_slice(&self.deflate_headers(headers)?);
                body
            }),
            Frame::RstStream { stream, status } => (RST_STREAM, 0, {
                let mut body = (stream & 0x7fff_ffff).to_be_bytes().to_vec();
                body.extend_from_slice(&status.to_be_bytes());
                body
            }),
            Frame::Ping { id } => (PING, 0, id.to_be_bytes().to_vec()),
            Frame::GoAway {
                last_stream,
                status,
            } => (GOAWAY, 0, {
                let mut body = (last_stream & 0x7fff_ffff).to_be_bytes().to_vec();
                body.extend_from_slice(&status.to_be_bytes());
                body
            }),
            Frame::Ignored { .. } => return Ok(()),
        };
        out.extend_from_slice(&(0x8000 | VERSION).to_be_bytes());
        out.extend_from_slice(&kind.to_be_bytes());
        push_flags_length(out, flags, body.len());
        out.extend_from_slice(&body);
        Ok(())
    }

    fn deflate_headers(&mut self, headers: &Headers) -> Result<Vec<u8>, SpdyError> {
        if !self.primed {
            self.deflate.set_dictionary(&DICTIONARY)?;
            self.primed = true;
        }
        let plain = encode_headers(headers);
        let mut out = Vec::with_capacity(plain.len() + 64);
        let mut position = 0;
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity().max(256));
            }
            let before_in = self.deflate.total_in();
            self.deflate
                .compress_vec(&plain[position..], &mut out, FlushCompress::Sync)?;
            position += usize::try_from(self.deflate.total_in() - before_in)
                .map_err(|_| SpdyError::HeaderBlock)?;
            // A sync flush is complete once all input is in and the output was not filled.
            if position >= plain.len() && out.len() < out.capacity() {
                return Ok(out);
            }
        }
    }
}

fn push_flags_length(out: &mut Vec<u8>, flags: u8, length: usize) {
    out.push(flags);
    out.extend_from_slice(&(length as u32).to_be_bytes()[1..]);
}

fn encode_headers(headers: &Headers) -> Vec<u8> {
    let mut plain = Vec::new();
    plain.extend_from_slice(&(headers.len() as u32).to_be_bytes());
    for (name, value) in headers {
        let name = name.to_ascii_lowercase();
        plain.extend_from_slice(&(name.len() as u32).to_be_bytes());
        plain.extend_from_slice(name.as_bytes());
        plain.extend_from_slice(&(value.len() as u32).to_be_bytes());
        plain.extend_from_slice(value.as_bytes());
    }
    plain
}

fn decode_headers(mut plain: &[u8]) -> Result<Headers, SpdyError> {
    let take = |plain: &mut &[u8]| -> Result<String, SpdyError> {
        if plain.len() < 4 {
            return Err(SpdyError::HeaderBlock);
        }
        let length = plain.get_u32() as usize;
        if plain.len() < length {
            return Err(SpdyError::HeaderBlock);
        }
        let text = String::from_utf8_lossy(&plain[..length]).into_owned();
        plain.advance(length);
        Ok(text)
    };
    if plain.is_empty() {
        return Ok(Vec::new());
    }
    if plain.len() < 4 {
        return Err(SpdyError::HeaderBlock);
    }
    let count = plain.get_u32() as usize;
    let mut headers = Vec::with_capacity(count.min(64));
    for _ in 0..count {
        let name = take(&mut plain)?;
        let value = take(&mut plain)?;
        headers.push((name, value));
    }
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> Headers {
        pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_dictionary_is_spdy3s() {
        assert_eq!(DICTIONARY.len(), 1423);
        let (mut a, mut b) = (1u32, 0u32);
        for byte in DICTIONARY.iter() {
            a = (a + u32::from(*byte)) % 65521;
            b = (b + a) % 65521;
        }
        assert_eq!((b << 16) | a, 3_821_447_106, "its Adler-32");
    }

    #[test]
    fn frames_round_trip_through_one_compression_context() {
        let frames = vec![
            Frame::SynStream {
                stream: 1,
                associated: 0,
                priority: 0,
                fin: false,
                unidirectional: false,
                headers: headers(&[("streamtype", "error"), ("port", "80"), ("requestid", "0")]),
            },
            Frame::SynStream {
                stream: 3,
                associated: 0,
                priority: 0,
                fin: false,
                unidirectional: false,
                headers: headers(&[("streamtype", "data"), ("port", "80"), ("requestid", "0")]),
            },
            Frame::SynReply {
                stream: 3,
                fin: false,
                headers: Vec::new(),
            },
            Frame::data(3, &b"GET / HTTP/1.1\r\n\r\n"[..], false),
            Frame::data(1, Bytes::new(), true),
            Frame::RstStream {
                stream: 5,
                status: CANCEL,
            },
            Frame::Ping { id: 7 },
            Frame::GoAway {
                last_stream: 3,
                status: 0,
            },
        ];
        let mut writer = FrameWriter::default();
        let mut bytes = Vec::new();
        for frame in &frames {
            writer.encode(frame, &mut bytes).unwrap();
        }
        // Delivered a byte at a time, as a slow connection might.
        let mut reader = FrameReader::default();
        let mut read = Vec::new();
        for byte in bytes {
            reader.push(&[byte]);
            while let Some(frame) = reader.next_frame().unwrap() {
                read.push(frame);
            }
        }
        assert_eq!(read, frames);
        assert_eq!(read[1].header("streamtype"), Some("data"));
        assert_eq!(read[1].header("requestid"), Some("0"));
    }

    #[test]
    fn control_frames_have_spdy3s_layout() {
        let mut bytes = Vec::new();
        FrameWriter::default()
            .encode(&Frame::Ping { id: 1 }, &mut bytes)
            .unwrap();
        assert_eq!(bytes, [0x80, 3, 0, 6, 0, 0, 0, 4, 0, 0, 0, 1]);
        let mut reader = FrameReader::default();
        reader.push(&[0x80, 2, 0, 6, 0, 0, 0, 4, 0, 0, 0, 1]);
        assert!(matches!(reader.next_frame(), Err(SpdyError::Version(2))));
        // Flow-control frames are skipped.
        let mut reader = FrameReader::default();
        reader.push(&[0x80, 3, 0, 9, 0, 0, 0, 8, 0, 0, 0, 1, 0, 0, 0, 9]);
        assert_eq!(
            reader.next_frame().unwrap(),
            Some(Frame::Ignored {
                kind: WINDOW_UPDATE
            })
        );
    }

    #[test]
    fn bad_header_blocks_are_errors() {
        assert!(decode_headers(&[0, 0, 0, 1, 0, 0, 0, 9, b'a']).is_err());
        assert_eq!(decode_headers(&[0, 0, 0, 0]).unwrap(), Vec::new());
        let mut reader = FrameReader::default();
        // A SYN_REPLY whose header block is not zlib.
        reader.push(&[0x80, 3, 0, 2, 0, 0, 0, 6, 0, 0, 0, 1, 0xff, 0xff]);
        assert!(reader.next_frame().is_err());
    }
}
