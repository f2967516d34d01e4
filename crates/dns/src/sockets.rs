//! Sockets: UDP and TCP on one address. TCP goes through hickory's
//! `Server`; UDP through lean loops of our own (below) that hand each
//! datagram to the same [`GeoDnsHandler`] without the task spawn, channel hop
//! and reactor wake-up per packet of hickory's UDP path (see BENCHMARKS.md).

use crate::handler::GeoDnsHandler;
use hickory_proto::op::{Header, HeaderCounts, MessageType, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::Record;
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};
use hickory_server::Server;
use hickory_server::net::NetError;
use hickory_server::net::runtime::TokioTime;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponse;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use tokio::net::{TcpListener, UdpSocket};

/// How long a TCP connection may stay idle between queries.
pub const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest UDP query read; longer datagrams are cut and fail to parse.
const MAX_UDP_QUERY: usize = 4096;

/// A UDP socket and a TCP listener bound to the same address.
pub struct DnsListener {
    udp: UdpSocket,
    tcp: TcpListener,
}

impl DnsListener {
    /// Binds UDP and TCP on `addr`. With port 0 both get the same free port.
    pub async fn bind(addr: SocketAddr) -> io::Result<DnsListener> {
        if addr.port() != 0 {
            let udp = UdpSocket::bind(addr).await?;
            let tcp = TcpListener::bind(addr).await?;
            return Ok(DnsListener { udp, tcp });
        }
        // Find a port free for both protocols.
        let mut last = None;
        for _ in 0..20 {
            let udp = UdpSocket::bind(addr).await?;
            match TcpListener::bind(udp.local_addr()?).await {
                Ok(tcp) => return Ok(DnsListener { udp, tcp }),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("no free port")))
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
        let mut tcp = Server::new(SharedHandler(handler.clone()));
        tcp.register_listener(self.tcp, TCP_IDLE_TIMEOUT, 64 * 1024);

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
        let result = tokio::select! {
            _ = shutdown => tcp.shutdown_gracefully().await.map_err(io::Error::other),
            r = tcp.block_until_done() => r.map_err(io::Error::other),
        };
        stop.store(true, Ordering::Relaxed);
        let _ = tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
        })
        .await;
        result
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

/// The handler shared by the UDP workers and hickory's TCP server.
struct SharedHandler(Arc<GeoDnsHandler>);

#[async_trait::async_trait]
impl RequestHandler for SharedHandler {
    async fn handle_request<R: ResponseHandler, T: hickory_server::net::runtime::Time>(
        &self,
        request: &Request,
        response_handle: R,
    ) -> ResponseInfo {
        self.0
            .handle_request::<R, T>(request, response_handle)
            .await
    }
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
        match Request::from_bytes(buf[..n].to_vec(), src, Protocol::Udp) {
            Ok(request) => {
                let responder = UdpResponder {
                    socket: socket.clone(),
                    dst: src,
                };
                drive(handler.handle_request::<_, TokioTime>(&request, responder));
            }
            Err(_) => {
                crate::handler::count_formerr();
                if handler.may_send_formerr(src.ip()) {
                    let _ = socket.send_to(&formerr(&buf[..n]), src);
                }
            }
        }
    }
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

/// Sends one response to one client over the shared UDP socket.
#[derive(Clone)]
struct UdpResponder {
    socket: Arc<std::net::UdpSocket>,
    dst: SocketAddr,
}

#[async_trait::async_trait]
impl ResponseHandler for UdpResponder {
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
        // response OPT); 512 without EDNS (RFC 1035 4.2.1). Records that do
        // not fit are left out and TC is set.
        let max = response.edns().map_or(512, |e| e.max_payload().max(512));
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
        // A blocking send on a datagram socket only waits for buffer space.
        self.socket.send_to(&bytes, self.dst)?;
        Ok(info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
