//! Reading an HTTP body up to a cap, as a stream: the agent never holds
//! more of an answer than the cap allows, whatever the service declares.

/// A body collected up to a limit. Pure, so the limit logic is tested
/// without sockets; the declared `Content-Length` is never trusted to size
/// anything.
#[derive(Debug)]
pub struct CappedBody {
    buf: Vec<u8>,
    limit: usize,
    overflowed: bool,
}

impl CappedBody {
    pub fn new(limit: usize) -> CappedBody {
        CappedBody {
            buf: Vec::new(),
            limit,
            overflowed: false,
        }
    }

    /// Add a chunk; false (and only the part up to the limit kept) once the
    /// body is over the limit.
    pub fn push(&mut self, chunk: &[u8]) -> bool {
        let room = self.limit - self.buf.len();
        if chunk.len() > room {
            self.buf.extend_from_slice(&chunk[..room]);
            self.overflowed = true;
            return false;
        }
        self.buf.extend_from_slice(chunk);
        true
    }

    pub fn overflowed(&self) -> bool {
        self.overflowed
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
}

/// Read a body as a stream, stopping at `limit` (chunked or not). Returns
/// what was read and whether there was more. A declared length over the
/// limit is refused before reading anything.
pub async fn read_capped(
    mut r: reqwest::Response,
    limit: usize,
) -> Result<(Vec<u8>, bool), reqwest::Error> {
    let mut body = CappedBody::new(limit);
    if r.content_length().is_some_and(|n| n > limit as u64) {
        return Ok((Vec::new(), true));
    }
    while let Some(chunk) = r.chunk().await? {
        if !body.push(&chunk) {
            // Dropping the response closes the connection mid-body.
            break;
        }
    }
    let over = body.overflowed();
    Ok((body.into_bytes(), over))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capped_body_stops_at_the_limit() {
        let mut b = CappedBody::new(10);
        assert!(b.push(b"12345"));
        assert!(b.push(b"67890"));
        assert!(!b.overflowed());
        assert!(!b.push(b"x"));
        assert!(b.overflowed());
        assert_eq!(b.into_bytes(), b"1234567890");

        let mut b = CappedBody::new(4);
        assert!(!b.push(b"abcdef"));
        assert_eq!(b.into_bytes(), b"abcd", "the part under the limit is kept");

        let mut b = CappedBody::new(0);
        assert!(b.push(b""));
        assert!(!b.push(b"a"));
    }
}
