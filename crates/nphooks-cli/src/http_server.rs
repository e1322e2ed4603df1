//! A minimal HTTP/1 server on loopback (hyper): the local webhook endpoint and the
//! preview capture server both use it.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// A request with its whole body read.
pub type FullRequest = hyper::Request<Bytes>;

/// The largest request body read: API Gateway's own limit for an HTTP API payload
/// (10 MB), so the local endpoint takes what the deployed one takes.
pub const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

/// The answer to a request whose body could not be read whole: 413 when it is over
/// [`MAX_BODY_BYTES`], else 400; the handler never sees a truncated body.
fn unreadable(error: &(dyn std::error::Error + 'static)) -> hyper::Response<Full<Bytes>> {
    let (status, text) = if error.is::<LengthLimitError>() {
        (413, "the request body is over 10 MiB\n")
    } else {
        (400, "the request body could not be read\n")
    };
    let mut answer = hyper::Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *answer.status_mut() = hyper::StatusCode::from_u16(status).expect("a valid status");
    answer
}

/// Binds `addr`; the error says what to do when the port is taken.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            anyhow::anyhow!(
                "port {} is already in use: stop the other server or pass --port with a free port",
                addr.port()
            )
        } else {
            anyhow::Error::new(e).context(format!("could not listen on {addr}"))
        }
    })
}

/// Serves every connection on `listener` with `handler` until the task is dropped.
pub fn spawn<H, F>(listener: TcpListener, handler: H) -> tokio::task::JoinHandle<()>
where
    H: Fn(FullRequest) -> F + Send + Sync + 'static,
    F: Future<Output = hyper::Response<Full<Bytes>>> + Send + 'static,
{
    let handler = Arc::new(handler);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let handler = handler.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: hyper::Request<Incoming>| {
                    let handler = handler.clone();
                    async move {
                        let (parts, body) = request.into_parts();
                        let read = Limited::new(body, MAX_BODY_BYTES).collect().await;
                        let answer = match read {
                            Ok(body) => {
                                let request = hyper::Request::from_parts(parts, body.to_bytes());
                                handler(request).await
                            }
                            Err(error) => unreadable(&*error),
                        };
                        Ok::<_, std::convert::Infallible>(answer)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}

/// The local address a listener got.
pub fn local_addr(listener: &TcpListener) -> anyhow::Result<SocketAddr> {
    listener.local_addr().context("the listener has no address")
}
