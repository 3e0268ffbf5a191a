//! A minimal keep-alive HTTP/1.1 client: enough for presence updates and `/metrics`, with no
//! client library's own cost in the figures.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use anyhow::{bail, Context};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

pub struct Http {
    stream: BufReader<TcpStream>,
    host: String,
}

impl Http {
    pub async fn connect(addr: SocketAddr) -> anyhow::Result<Http> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Http {
            stream: BufReader::new(stream),
            host: addr.to_string(),
        })
    }

    /// Sends one request and reads the response; `(status, body)`.
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> anyhow::Result<(u16, Vec<u8>)> {
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nhost: {}\r\ncontent-length: {}\r\n",
            self.host,
            body.len()
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        let s = self.stream.get_mut();
        s.write_all(head.as_bytes()).await?;
        s.write_all(body).await?;
        let mut line = String::new();
        self.stream.read_line(&mut line).await?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .context("no status line")?
            .parse()?;
        let mut length = None;
        loop {
            line.clear();
            if self.stream.read_line(&mut line).await? == 0 {
                bail!("connection closed in the headers");
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = Some(v.trim().parse::<usize>()?);
                }
            }
        }
        let Some(length) = length else {
            bail!("response without content-length");
        };
        let mut body = vec![0; length];
        self.stream.read_exact(&mut body).await?;
        Ok((status, body))
    }
}

/// Rooms whose count on the server at `addr` differs from `expected` (`GET
/// /v1/activity/rooms`), including rooms it lists that `expected` does not hold.
pub async fn count_mismatches(
    addr: SocketAddr,
    expected: &BTreeMap<String, u64>,
) -> anyhow::Result<usize> {
    let mut http = Http::connect(addr).await?;
    let (status, body) = http.request("GET", "/v1/activity/rooms", &[], b"").await?;
    if status != 200 {
        bail!("/v1/activity/rooms answered {status}");
    }
    let v: serde_json::Value = serde_json::from_slice(&body)?;
    let counts = v["room_count"]
        .as_object()
        .context("/v1/activity/rooms without room_count")?;
    let mut wrong = expected
        .iter()
        .filter(|(room, n)| counts.get(room.as_str()).and_then(|c| c.as_u64()) != Some(**n))
        .count();
    wrong += counts
        .keys()
        .filter(|room| !expected.contains_key(room.as_str()))
        .count();
    if wrong > 0 {
        eprintln!("{addr}: {wrong} room(s) with a wrong count");
    }
    Ok(wrong)
}

/// Reads the server's Prometheus counters (`activenow_*` names, the floor exports the same).
pub async fn metrics(addr: SocketAddr) -> anyhow::Result<BTreeMap<String, f64>> {
    let mut http = Http::connect(addr).await?;
    let (status, body) = http.request("GET", "/metrics", &[], b"").await?;
    if status != 200 {
        bail!("/metrics answered {status}");
    }
    let text = String::from_utf8_lossy(&body);
    Ok(text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (name, value) = l.split_once(' ')?;
            Some((name.to_owned(), value.trim().parse().ok()?))
        })
        .collect())
}
