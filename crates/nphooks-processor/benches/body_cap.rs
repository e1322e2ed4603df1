//! Memory under a peer that answers 200 with a 200 MB body: the processor reads at most
//! `MAX_BODY_BYTES` of it. Prints one request count, the body kept and this process's
//! peak RSS, and exits non-zero when the peak passes the bound (a 128 MB Lambda must
//! survive it). Run: `cargo bench -p nphooks-processor --bench body_cap`.

use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use nphooks_processor::http::{MAX_BODY_BYTES, client, send};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ANSWER_BYTES: usize = 200 * 1024 * 1024;
const PEAK_RSS_BOUND_KB: u64 = 48 * 1024;

fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::main(flavor = "current_thread")]
#[allow(clippy::print_stdout)]
async fn main() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let address = listener.local_addr().expect("address");
    let requests = Arc::new(AtomicUsize::new(0));
    let counted = requests.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = socket.read(&mut request).await;
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {ANSWER_BYTES}\r\n\r\n"
                );
                if socket.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let chunk = vec![b'x'; 64 * 1024];
                for _ in 0..ANSWER_BYTES / chunk.len() {
                    if socket.write_all(&chunk).await.is_err() {
                        return; // the client stopped reading: the cap at work
                    }
                }
            });
        }
    });

    let before = peak_rss_kb();
    let reply = send(
        client()
            .expect("client")
            .post(format!("http://{address}/hook"))
            .body("{}"),
    )
    .await
    .expect("a 200");
    let peak = peak_rss_kb();
    println!(
        "body_cap: {} request(s), answer {} MB, body kept {} bytes (cap {}), peak RSS {:.1} MB (before the call {:.1} MB, bound {} MB)",
        requests.load(Ordering::SeqCst),
        ANSWER_BYTES / (1024 * 1024),
        reply.body.len(),
        MAX_BODY_BYTES,
        peak as f64 / 1024.0,
        before as f64 / 1024.0,
        PEAK_RSS_BOUND_KB / 1024
    );
    let _ = std::io::stdout().flush();
    assert_eq!(requests.load(Ordering::SeqCst), 1, "one request");
    assert_eq!(
        reply.body.len(),
        MAX_BODY_BYTES,
        "the body is cut at the cap"
    );
    assert!(
        peak <= PEAK_RSS_BOUND_KB,
        "peak RSS {peak} kB over the bound"
    );
}
