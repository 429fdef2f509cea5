//! The whole download path against a small HTTP server on 127.0.0.1: plain downloads,
//! redirects, Google Drive's confirm page, interrupted transfers that resume with `Range`,
//! and checksum mismatches that keep nothing.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fetch::{download, google_drive, part_path, Expected, Fetched};
use sha2::{Digest, Sha256};

/// What the server has been asked: (path, Range header).
type Requests = Arc<Mutex<Vec<(String, Option<String>)>>>;

struct Server {
    base: String,
    requests: Requests,
}

/// Serves `data` at `/file`, `/download` (Drive's real endpoint), `/redirect` (→ `/file`),
/// `/uc` (Drive's confirm page) and `/wrong` (other bytes). The first `cut` responses that
/// carry file bytes stop after half of them. Stops by itself after 40 connections or 30 s.
fn serve(data: Vec<u8>, cut: usize) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let requests: Requests = Arc::default();
    let log = requests.clone();
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        let (mut served, mut cuts_left) = (0, cut);
        while served < 40 && Instant::now() < deadline {
            match listener.accept() {
                Ok((stream, _)) => {
                    served += 1;
                    handle(stream, &data, &mut cuts_left, &log);
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    });
    Server { base, requests }
}

fn handle(mut stream: TcpStream, data: &[u8], cuts_left: &mut usize, log: &Requests) {
    stream.set_nonblocking(false).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let target = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut range = None;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap() == 0 || h == "\r\n" {
            break;
        }
        if let Some(v) = h.to_ascii_lowercase().strip_prefix("range: bytes=") {
            range = Some(v.trim().trim_end_matches('-').to_string());
        }
    }
    log.lock().unwrap().push((target.clone(), range.clone()));
    let path = target.split('?').next().unwrap();
    let body_of = |bytes: &[u8]| -> (String, Vec<u8>) {
        match range.as_ref().and_then(|r| r.parse::<usize>().ok()) {
            // As a real server does for a range that starts past the end.
            Some(from) if from >= bytes.len() => (
                format!(
                    "416 Range Not Satisfiable\r\nContent-Range: bytes */{}",
                    bytes.len()
                ),
                Vec::new(),
            ),
            Some(from) => (
                format!(
                    "206 Partial Content\r\nContent-Range: bytes {from}-{}/{}",
                    bytes.len() - 1,
                    bytes.len()
                ),
                bytes[from..].to_vec(),
            ),
            _ => ("200 OK".to_string(), bytes.to_vec()),
        }
    };
    let (status, ctype, body) = match path {
        "/file" | "/download" => {
            let (s, b) = body_of(data);
            (s, "application/octet-stream", b)
        }
        "/wrong" => {
            let (s, b) = body_of(&data.iter().map(|b| b ^ 1).collect::<Vec<_>>());
            (s, "application/octet-stream", b)
        }
        "/redirect" => {
            write!(stream, "HTTP/1.1 302 Found\r\nLocation: /file\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").unwrap();
            return;
        }
        "/uc" => {
            let page = r#"<html><body>Google Drive can't scan this file for viruses.
<form id="download-form" action="/download" method="get"><input type="submit" value="Download anyway"/>
<input type="hidden" name="id" value="ID"><input type="hidden" name="export" value="download">
<input type="hidden" name="confirm" value="t"><input type="hidden" name="uuid" value="u-1"></form></body></html>"#;
            (
                "200 OK".to_string(),
                "text/html; charset=utf-8",
                page.as_bytes().to_vec(),
            )
        }
        _ => ("404 Not Found".to_string(), "text/plain", b"no".to_vec()),
    };
    let _ = write!(stream, "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
    let carries_file = ctype == "application/octet-stream";
    if carries_file && *cuts_left > 0 {
        *cuts_left -= 1;
        let _ = stream.write_all(&body[..body.len() / 2]);
        return; // connection dropped mid-body
    }
    let _ = stream.write_all(&body);
}

fn payload() -> (Vec<u8>, Expected) {
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let sha = format!("{:x}", Sha256::digest(&data));
    let expected = Expected {
        sha256: sha,
        size: Some(data.len() as u64),
    };
    (data, expected)
}

fn dest(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("fetch-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir.join("data.bin")
}

fn quiet() -> impl FnMut(&str) {
    |_| {}
}

#[test]
fn downloads_follows_redirects_and_is_idempotent() {
    let (data, expected) = payload();
    let server = serve(data.clone(), 0);
    let path = dest("plain");
    let got = download(
        &format!("{}/redirect", server.base),
        &path,
        &expected,
        &mut quiet(),
    )
    .unwrap();
    assert!(matches!(
        got,
        Fetched::Downloaded {
            resumed_from: 0,
            ..
        }
    ));
    assert_eq!(std::fs::read(&path).unwrap(), data);
    assert!(!part_path(&path).exists());
    let again = download(
        &format!("{}/file", server.base),
        &path,
        &expected,
        &mut quiet(),
    )
    .unwrap();
    assert_eq!(again, Fetched::AlreadyValid);
    assert_eq!(
        server.requests.lock().unwrap().len(),
        2,
        "redirect + file, nothing for the second call"
    );
}

#[test]
fn interrupted_transfer_resumes_with_range() {
    let (data, expected) = payload();
    let server = serve(data.clone(), 1);
    let path = dest("resume");
    let mut notes = Vec::new();
    let got = download(
        &format!("{}/file", server.base),
        &path,
        &expected,
        &mut |m: &str| notes.push(m.to_string()),
    )
    .unwrap();
    assert!(matches!(got, Fetched::Downloaded { .. }));
    assert_eq!(std::fs::read(&path).unwrap(), data);
    let reqs = server.requests.lock().unwrap().clone();
    assert_eq!(reqs.len(), 2);
    assert_eq!(
        reqs[1].1.as_deref(),
        Some("150000"),
        "second request resumes at the cut"
    );
    assert!(
        notes[0].contains("interrupted at 150000 bytes"),
        "{notes:?}"
    );
}

/// A `.part` longer than the file (a file that changed, or a corrupt copy): every Range
/// request past the end is answered 416 by a real server. The download starts over.
#[test]
fn a_partial_file_longer_than_the_file_starts_over() {
    let (data, expected) = payload();
    for (size_known, label) in [(true, "long-known"), (false, "long-unknown")] {
        let server = serve(data.clone(), 0);
        let path = dest(label);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(part_path(&path), vec![7u8; data.len() + 10]).unwrap();
        let want = Expected {
            size: expected.size.filter(|_| size_known),
            ..expected.clone()
        };
        let got = download(&format!("{}/file", server.base), &path, &want, &mut quiet());
        assert!(got.is_ok(), "{label}: {got:?}");
        assert_eq!(std::fs::read(&path).unwrap(), data, "{label}");
        let reqs = server.requests.lock().unwrap().clone();
        if size_known {
            assert_eq!(reqs.len(), 1, "dropped before asking: {reqs:?}");
            assert_eq!(reqs[0].1, None);
        } else {
            assert_eq!(reqs.len(), 2, "one 416, then a whole download: {reqs:?}");
            assert_eq!(reqs[1].1, None);
        }
    }
}

#[test]
fn checksum_mismatch_keeps_nothing_and_the_old_file() {
    let (data, expected) = payload();
    let server = serve(data, 0);
    let path = dest("mismatch");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, b"old file").unwrap();
    let err = download(
        &format!("{}/wrong", server.base),
        &path,
        &expected,
        &mut quiet(),
    )
    .unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("expected 300000 bytes") && msg.contains("existing file kept"),
        "{msg}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), b"old file");
    assert!(
        !part_path(&path).exists(),
        "the bad download must not be kept"
    );
}

#[test]
fn google_drive_confirm_page_is_followed_and_resumed() {
    let (data, expected) = payload();
    let server = serve(data.clone(), 1);
    let path = dest("drive");
    let got = google_drive(
        &format!("{}/uc", server.base),
        "ID",
        &path,
        &expected,
        &mut quiet(),
    )
    .unwrap();
    assert!(matches!(got, Fetched::Downloaded { .. }));
    assert_eq!(std::fs::read(&path).unwrap(), data);
    let reqs = server.requests.lock().unwrap().clone();
    assert_eq!(reqs[0].0, "/uc?export=download&id=ID");
    assert!(
        reqs[1]
            .0
            .starts_with("/download?id=ID&export=download&confirm=t&uuid=u-1"),
        "{reqs:?}"
    );
    assert_eq!(reqs.last().unwrap().1.as_deref(), Some("150000"));
}

#[test]
fn gives_up_with_a_clear_error_when_every_attempt_fails() {
    let (data, expected) = payload();
    let server = serve(data, 10);
    let path = dest("giveup");
    let err = download(
        &format!("{}/file", server.base),
        &path,
        &expected,
        &mut quiet(),
    )
    .unwrap_err();
    assert!(format!("{err:#}").contains("partial data kept"), "{err:#}");
    assert!(part_path(&path).exists());
}
