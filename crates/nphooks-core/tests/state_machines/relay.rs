//! A relay in front of moto that forwards one HTTP request at a time.
//!
//! DynamoDB serialises writes to one item, so of N conditional writes racing for it
//! exactly one finds it absent. moto does not: its threaded server checks a condition
//! and writes without a lock, and under load two racing `claim`s both succeeded (seen
//! here: 2 `Claimed` of 12). Behind this relay moto serialises as DynamoDB does, while
//! the adapters' requests still race; what admits exactly one is then their condition.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// Starts the relay to moto (`AWS_ENDPOINT_URL`); returns its endpoint URL.
pub fn start() -> String {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL");
    let upstream = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let upstream = upstream.to_owned();
    let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let address = listener.local_addr().expect("its address");
    let turn = Arc::new(Mutex::new(()));
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let (upstream, turn) = (upstream.clone(), turn.clone());
            std::thread::spawn(move || relay(client, &upstream, &turn));
        }
    });
    format!("http://{address}")
}

/// Forwards each request of one client connection, alone, on a new connection to moto.
fn relay(client: TcpStream, upstream: &str, turn: &Mutex<()>) {
    let mut writer = client.try_clone().expect("a second handle");
    let mut requests = BufReader::new(client);
    while let Some(request) = read_message(&mut requests) {
        let _alone = turn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let Ok(mut moto) = TcpStream::connect(upstream) else {
            return;
        };
        if moto.write_all(&request).is_err() {
            return;
        }
        let Some(response) = read_message(&mut BufReader::new(moto)) else {
            return;
        };
        if writer.write_all(&response).is_err() {
            return;
        }
    }
}

/// One HTTP/1.1 message with a `Content-Length` body (moto's answers and the SDK's
/// requests both have one), or `None` at the end of the stream.
fn read_message(stream: &mut impl BufRead) -> Option<Vec<u8>> {
    let mut message = Vec::new();
    let mut length = 0;
    loop {
        let mut line = Vec::new();
        if stream.read_until(b'\n', &mut line).ok()? == 0 {
            return None;
        }
        let text = String::from_utf8_lossy(&line).to_ascii_lowercase();
        if let Some(value) = text.strip_prefix("content-length:") {
            length = value.trim().parse().ok()?;
        }
        message.extend_from_slice(&line);
        if line == b"\r\n" {
            break;
        }
    }
    let mut body = vec![0; length];
    stream.read_exact(&mut body).ok()?;
    message.extend_from_slice(&body);
    Some(message)
}
