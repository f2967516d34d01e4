//! Sockets: UDP and TCP on one address, both answered by [`respond`]: the
//! wire-format fast path (`fast.rs`) for plain address queries, else
//! hickory's parser and the [`GeoDnsHandler`]. UDP runs on OS threads
//! blocked in `recvfrom`, without the task spawn, channel hop and reactor
//! wake-up per packet of hickory's UDP path; TCP is a task per connection
//! (see BENCHMARKS.md).

use crate::fast::Fast;
use crate::handler::GeoDnsHandler;
use hickory_proto::op::{Header, HeaderCounts, MessageType, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::Record;
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};
use hickory_server::net::NetError;
use hickory_server::net::runtime::TokioTime;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponse;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

/// How long a TCP connection may stay idle between queries.
pub const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Most TCP connections open at once (each holds a task and up to 64 KiB
/// of query); more are closed as soon as they are accepted, so a flood of
/// idle connections cannot exhaust descriptors or memory. Resolvers fall
/// back to TCP only for truncated answers, so a few hundred suffice.
pub const MAX_TCP_CONNECTIONS: usize = 1024;
/// Largest UDP query read; longer datagrams are cut and fail to parse.
const MAX_UDP_QUERY: usize = 4096;

/// A UDP socket and a TCP listener bound to the same address.
pub struct DnsListener {
    udp: UdpSocket,
    tcp: TcpListener,
    max_tcp: usize,
}

impl DnsListener {
    /// Binds UDP and TCP on `addr`. With port 0 both get the same free port.
    pub async fn bind(addr: SocketAddr) -> io::Result<DnsListener> {
        if addr.port() != 0 {
            let udp = UdpSocket::bind(addr).await?;
            let tcp = TcpListener::bind(addr).await?;
            return Ok(DnsListener {
                udp,
                tcp,
                max_tcp: MAX_TCP_CONNECTIONS,
            });
        }
        // Find a port free for both protocols.
        let mut last = None;
        for _ in 0..20 {
            let udp = UdpSocket::bind(addr).await?;
            match TcpListener::bind(udp.local_addr()?).await {
                Ok(tcp) => {
                    return Ok(DnsListener {
                        udp,
                        tcp,
                        max_tcp: MAX_TCP_CONNECTIONS,
                    });
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("no free port")))
    }

    /// At most `n` TCP connections at once instead of
    /// [`MAX_TCP_CONNECTIONS`].
    pub fn with_max_tcp_connections(mut self, n: usize) -> Self {
        self.max_tcp = n.max(1);
        self
    }

    /// The bound address (the same for UDP and TCP).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.udp.local_addr()
    }

    /// Answers queries with `handler` until `shutdown` resolves.
    pub async fn serve(
        self,
        handler: GeoDnsHandler,
        shutdown: impl Future<Output = ()>,
    ) -> io::Result<()> {
        let handler = Arc::new(handler);
        let socket = Arc::new(self.udp.into_std()?);
        socket.set_nonblocking(false)?;
        // Wake now and then to notice a shutdown.
        socket.set_read_timeout(Some(Duration::from_millis(200)))?;
        let stop = Arc::new(AtomicBool::new(false));
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        let mut threads = Vec::with_capacity(workers);
        for i in 0..workers {
            let (socket, handler, stop) = (socket.clone(), handler.clone(), stop.clone());
            threads.push(
                std::thread::Builder::new()
                    .name(format!("dns-udp-{i}"))
                    .spawn(move || udp_worker(socket, handler, stop))?,
            );
        }
        tokio::select! {
            _ = shutdown => {}
            _ = serve_tcp(self.tcp, handler.clone(), self.max_tcp) => {}
        }
        stop.store(true, Ordering::Relaxed);
        let _ = tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
        })
        .await;
        Ok(())
    }
}

/// Binds `listen` (UDP and TCP) and answers with `handler` until `shutdown`.
pub async fn run_dns(
    listen: SocketAddr,
    handler: GeoDnsHandler,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    DnsListener::bind(listen)
        .await?
        .serve(handler, shutdown)
        .await
}

/// Receives datagrams and answers each in turn, on an OS thread of its own
/// blocked in `recvfrom` (several share the socket; the kernel hands each
/// datagram to one). The handler's future never waits on anything but the
/// send, so it is driven here directly rather than through the async
/// runtime's reactor, which costs a wake-up and a readiness check per packet.
fn udp_worker(
    socket: Arc<std::net::UdpSocket>,
    handler: Arc<GeoDnsHandler>,
    stop: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; MAX_UDP_QUERY];
    let mut out = Vec::with_capacity(512);
    while !stop.load(Ordering::Relaxed) {
        let (n, src) = match socket.recv_from(&mut buf) {
            Ok(r) => r,
            Err(error) => {
                match error.kind() {
                    // The read timeout: look at the stop flag.
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {}
                    // ICMP errors from earlier sends are harmless.
                    io::ErrorKind::ConnectionRefused
                    | io::ErrorKind::ConnectionReset
                    | io::ErrorKind::Interrupted => {}
                    // Anything else may repeat at once: do not spin on it.
                    _ => {
                        tracing::debug!(%error, "UDP receive failed");
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
                continue;
            }
        };
        // Nothing can be sent to port 0 or an unspecified address; shorter
        // than a header is not DNS; QR set is a response (never answer one:
        // that is how reflection loops start).
        if src.port() == 0 || src.ip().is_unspecified() || n < 12 || buf[2] & 0x80 != 0 {
            continue;
        }
        if respond(&handler, &buf[..n], src, Protocol::Udp, &mut out) {
            // A blocking send on a datagram socket only waits for buffer space.
            let _ = socket.send_to(&out, src);
        }
    }
}

/// Answers one query from `src` into `out`: the fast path when it takes
/// the query, else hickory's parser and the generic handler. False when
/// nothing is to be sent (dropped by rate limiting, or a FORMERR that
/// rate limiting holds back).
pub(crate) fn respond(
    handler: &GeoDnsHandler,
    query: &[u8],
    src: SocketAddr,
    protocol: Protocol,
    out: &mut Vec<u8>,
) -> bool {
    let udp = protocol == Protocol::Udp;
    match handler.answer_fast(query, src.ip(), udp, out) {
        Fast::Answer => return true,
        Fast::Drop => return false,
        Fast::Generic => {}
    }
    respond_generic(handler, query, src, protocol, out)
}

/// [`respond`] without the fast path: hickory's parser and the handler.
pub(crate) fn respond_generic(
    handler: &GeoDnsHandler,
    query: &[u8],
    src: SocketAddr,
    protocol: Protocol,
    out: &mut Vec<u8>,
) -> bool {
    let udp = protocol == Protocol::Udp;
    out.clear();
    match Request::from_bytes(query.to_vec(), src, protocol) {
        Ok(request) => {
            let responder = BufResponder {
                out: Arc::new(Mutex::new(Vec::new())),
                udp,
            };
            drive(handler.handle_request::<_, TokioTime>(&request, responder.clone()));
            let mut bytes = responder.out.lock().unwrap_or_else(|p| p.into_inner());
            std::mem::swap(out, &mut *bytes);
        }
        Err(_) => {
            crate::handler::count_formerr();
            if query.len() >= 12 && (!udp || handler.may_send_formerr(src.ip())) {
                out.extend_from_slice(&formerr(query));
            }
        }
    }
    !out.is_empty()
}

/// Runs a future that does not wait on I/O to completion on this thread.
fn drive<F: Future>(fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        // Not expected (nothing in the handler waits), but correct: poll again.
        std::thread::yield_now();
    }
}

/// A bare FORMERR header for a query that did not parse (never longer than
/// the query, so it cannot amplify).
fn formerr(query: &[u8]) -> [u8; 12] {
    let mut r = [0u8; 12];
    r[0] = query[0];
    r[1] = query[1];
    // QR=1, the query's opcode and RD; RCODE=FORMERR.
    r[2] = 0x80 | (query[2] & 0x79);
    r[3] = ResponseCode::FormErr.low();
    r
}

/// Encodes the generic handler's response into a buffer: within the
/// client's payload size over UDP (records that do not fit are left out and
/// TC is set), up to 64 KiB over TCP.
#[derive(Clone)]
struct BufResponder {
    out: Arc<Mutex<Vec<u8>>>,
    udp: bool,
}

#[async_trait::async_trait]
impl ResponseHandler for BufResponder {
    async fn send_response<'a>(
        &mut self,
        response: MessageResponse<
            '_,
            'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
        >,
    ) -> Result<ResponseInfo, NetError> {
        // The client's buffer size (the handler echoes it, capped, in the
        // response OPT); 512 without EDNS (RFC 1035 4.2.1).
        let max = if self.udp {
            response.edns().map_or(512, |e| e.max_payload().max(512))
        } else {
            u16::MAX
        };
        let id = response.metadata().id;
        let mut bytes = Vec::with_capacity(512);
        let mut encoder = BinEncoder::new(&mut bytes);
        encoder.set_max_size(max);
        let info = match response.destructive_emit(&mut encoder) {
            Ok(info) => info,
            Err(error) => {
                tracing::warn!(%error, "cannot encode a DNS response");
                bytes.clear();
                let mut metadata = Metadata::new(id, MessageType::Response, OpCode::Query);
                metadata.response_code = ResponseCode::ServFail;
                let header = Header {
                    metadata,
                    counts: HeaderCounts::default(),
                };
                header.emit(&mut BinEncoder::new(&mut bytes))?;
                ResponseInfo::from(header)
            }
        };
        *self.out.lock().unwrap_or_else(|p| p.into_inner()) = bytes;
        Ok(info)
    }
}

/// Accepts TCP connections and answers each in a task of its own (all
/// ended when this future is dropped).
async fn serve_tcp(listener: TcpListener, handler: Arc<GeoDnsHandler>, max: usize) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        match listener.accept().await {
            Ok((stream, src)) => {
                // Reap finished connections before counting the open ones.
                while connections.try_join_next().is_some() {}
                if connections.len() >= max {
                    tracing::debug!(%src, "too many TCP connections: closed");
                    drop(stream);
                    continue;
                }
                connections.spawn(tcp_connection(stream, src, handler.clone()));
            }
            Err(error) => {
                // Out of descriptors and the like: do not spin.
                tracing::debug!(%error, "TCP accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// Length-prefixed queries on one connection, answered in order, until the
/// client closes it, sends a frame that is not a query, or stays idle for
/// [`TCP_IDLE_TIMEOUT`].
async fn tcp_connection(mut stream: TcpStream, src: SocketAddr, handler: Arc<GeoDnsHandler>) {
    let mut query = Vec::new();
    let mut out = Vec::with_capacity(512);
    loop {
        let mut len = [0u8; 2];
        if !matches!(
            tokio::time::timeout(TCP_IDLE_TIMEOUT, stream.read_exact(&mut len)).await,
            Ok(Ok(_))
        ) {
            return;
        }
        query.resize(usize::from(u16::from_be_bytes(len)), 0);
        if !matches!(
            tokio::time::timeout(TCP_IDLE_TIMEOUT, stream.read_exact(&mut query)).await,
            Ok(Ok(_))
        ) {
            return;
        }
        // Shorter than a header, or a response: not a conversation to keep.
        if query.len() < 12 || query[2] & 0x80 != 0 {
            return;
        }
        if respond(&handler, &query, src, Protocol::Tcp, &mut out) {
            let mut frame = Vec::with_capacity(2 + out.len());
            frame.extend_from_slice(&(out.len() as u16).to_be_bytes());
            frame.extend_from_slice(&out);
            if stream.write_all(&frame).await.is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ZoneStore;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// One query over `s`; whether an answer came back.
    async fn answered(s: &mut TcpStream) -> bool {
        // id 7, RD, one question: pool.example.org A IN.
        let mut q = vec![0, 7, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in ["pool", "example", "org"] {
            q.push(label.len() as u8);
            q.extend_from_slice(label.as_bytes());
        }
        q.extend_from_slice(&[0, 0, 1, 0, 1]);
        let mut frame = (q.len() as u16).to_be_bytes().to_vec();
        frame.extend_from_slice(&q);
        if s.write_all(&frame).await.is_err() {
            return false;
        }
        let mut len = [0u8; 2];
        matches!(
            tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut len)).await,
            Ok(Ok(_))
        )
    }

    #[tokio::test]
    async fn tcp_connections_beyond_the_cap_are_closed() {
        let store = ZoneStore::new("pool.example.org").unwrap();
        let listener = DnsListener::bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap()
            .with_max_tcp_connections(2);
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = tokio::spawn(listener.serve(GeoDnsHandler::new(store, None), async {
            let _ = stopped.await;
        }));
        let mut a = TcpStream::connect(addr).await.unwrap();
        let mut b = TcpStream::connect(addr).await.unwrap();
        assert!(answered(&mut a).await && answered(&mut b).await);
        // A third while two are open: closed at once, unanswered.
        let mut c = TcpStream::connect(addr).await.unwrap();
        assert!(!answered(&mut c).await, "over the cap");
        // One leaves; the next is served.
        drop(a);
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut d = TcpStream::connect(addr).await.unwrap();
        assert!(answered(&mut d).await, "room again");
        assert!(answered(&mut b).await, "the others stay served");
        let _ = stop.send(());
        serving.await.unwrap().unwrap();
    }

    #[test]
    fn formerr_header() {
        // id 0x1234, opcode 0 with RD, AD bits set in the query.
        let q = [0x12, 0x34, 0x01, 0x20, 0, 1, 0, 0, 0, 0, 0, 0, 0xff];
        let r = formerr(&q);
        assert_eq!(&r[..4], &[0x12, 0x34, 0x81, 0x01]);
        assert!(r[4..].iter().all(|&b| b == 0));
        // Opcode bits are kept.
        assert_eq!(formerr(&[0, 0, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0])[2], 0x90);
    }
}
