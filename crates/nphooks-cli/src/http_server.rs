//! A minimal HTTP/1 server on loopback (hyper): the local webhook endpoint and the
//! preview capture server both use it.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// A request with its whole body read.
pub type FullRequest = hyper::Request<Bytes>;

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
                        let bytes = body
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        Ok::<_, std::convert::Infallible>(
                            handler(hyper::Request::from_parts(parts, bytes)).await,
                        )
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
