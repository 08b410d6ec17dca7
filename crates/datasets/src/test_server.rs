//! A one-thread HTTP/1.1 server on 127.0.0.1 for the download tests: it answers each
//! request from a fixed table of paths and records what was asked for.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// A canned answer: HTTP status and body.
pub(crate) type Answer = (u16, Vec<u8>);

/// A running server; stopped and joined on drop.
pub(crate) struct TestServer {
    address: SocketAddr,
    stop: Arc<AtomicBool>,
    requested: Arc<Mutex<Vec<String>>>,
    thread: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Serves `answers` (path -> answer); any other path gets 404.
    pub(crate) fn start(answers: HashMap<String, Answer>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let requested = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let stop = Arc::clone(&stop);
            let requested = Arc::clone(&requested);
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(stream) = stream {
                        answer(stream, &answers, &requested);
                    }
                }
            })
        };
        Self {
            address,
            stop,
            requested,
            thread: Some(thread),
        }
    }

    /// The address of the root, ending in `/`.
    pub(crate) fn base_url(&self) -> String {
        format!("http://{}/", self.address)
    }

    /// The paths requested so far, in order.
    pub(crate) fn requested(&self) -> Vec<String> {
        self.requested.lock().unwrap().clone()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the blocking accept so that the thread sees the flag.
        let _ = TcpStream::connect(self.address);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Reads one request's head and writes the canned answer for its path.
fn answer(stream: TcpStream, answers: &HashMap<String, Answer>, requested: &Mutex<Vec<String>>) {
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    loop {
        let mut header = String::new();
        match reader.read_line(&mut header) {
            Ok(0) | Err(_) => break,
            Ok(_) if header == "\r\n" => break,
            Ok(_) => {}
        }
    }
    requested.lock().unwrap().push(path.clone());
    let (status, body) = answers
        .get(&path)
        .cloned()
        .unwrap_or((404, b"not found".to_vec()));
    let mut stream = reader.into_inner();
    let head = format!(
        "HTTP/1.1 {status} Canned\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&body);
}
