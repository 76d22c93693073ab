//! A minimal HTTP/1.1 responder for agnhost netexec's probe paths:
//! `/hostname` (the agent's name), `/clientip` (the client's `ip:port` as
//! the server saw it) and `/healthz` (200). One request per connection.

use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const MAX_HEAD: usize = 8 * 1024;

pub async fn handle(mut stream: TcpStream, peer: SocketAddr, name: &str) -> io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    while !head_complete(&head) {
        if head.len() > MAX_HEAD {
            return respond(&mut stream, "431 Request Header Fields Too Large", "request head too large\n", false).await;
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&head);
    let mut parts = head.lines().next().unwrap_or("").split(' ');
    let (Some(method), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return respond(&mut stream, "400 Bad Request", "bad request\n", false).await;
    };
    if !version.starts_with("HTTP/1.") {
        return respond(&mut stream, "400 Bad Request", "bad request\n", false).await;
    }
    let path = target.split('?').next().unwrap_or(target);
    let head_only = method == "HEAD";
    let body = match path {
        "/hostname" => name.to_string(),
        "/clientip" => peer.to_string(),
        "/healthz" => "ok".to_string(),
        _ => return respond(&mut stream, "404 Not Found", "not found\n", head_only).await,
    };
    if method != "GET" && !head_only {
        return respond(&mut stream, "405 Method Not Allowed", "method not allowed\n", false).await;
    }
    respond(&mut stream, "200 OK", &body, head_only).await
}

fn head_complete(buf: &[u8]) -> bool {
    buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.windows(2).any(|w| w == b"\n\n")
}

/// `status` is the code and reason phrase, e.g. "200 OK".
async fn respond(stream: &mut TcpStream, status: &str, body: &str, head_only: bool) -> io::Result<()> {
    let mut response = format!("HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
    if !head_only {
        response.push_str(body);
    }
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}
