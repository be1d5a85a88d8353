//! Archive download bodies: in memory for small archives, streamed for generated large ones (memory stays
//! flat), optionally cut after N bytes (fault `drop_download_after`).

use std::io::Write;

use axum::body::Body;
use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::mpsc;

use super::archive;
use super::error::ApiResult;
use super::integrations::{ExportSource, export_source_bytes};
use super::state::Shared;

/// Generated archives with more padding than this are streamed instead of built in memory.
pub const STREAM_THRESHOLD: u64 = 4 * 1024 * 1024;

/// A `Write` that sends 64 KiB chunks into a channel (blocking; on a thread of its own).
struct ChanWriter {
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
    buf: Vec<u8>,
}

impl ChanWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::take(&mut self.buf));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))
    }
}

impl Write for ChanWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= 64 * 1024 {
            self.send()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

/// Streams sealed entries as a zip body.
pub fn stream_entries(entries: archive::Entries) -> Body {
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let stamped = archive::stamped_exports();
    // A thread of its own, not the runtime's blocking pool: the writer waits for the client to
    // read, and a client in this process (`--sandbox`) needs that pool to write what it reads;
    // with the pool's threads capped (`crate::cli::runtime`), streams waiting in the pool could
    // hold every thread the reads need.
    let produce = move || {
        archive::STAMPED.sync_scope(stamped, || {
            let mut w = ChanWriter {
                tx: tx.clone(),
                buf: Vec::with_capacity(64 * 1024),
            };
            let res = archive::seal_and_stream(entries, &mut w).and_then(|_| {
                w.flush()
                    .map_err(|e| archive::ArchiveError::NotZip(e.to_string()))
            });
            if let Err(e) = res {
                let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
            }
        })
    };
    if let Err(e) = std::thread::Builder::new()
        .name("sim-stream".into())
        .spawn(produce)
    {
        // No thread: the body ends with this error (the sender went with the closure).
        let (tx, rx) = mpsc::channel(1);
        let _ = tx.try_send(Err(std::io::Error::other(format!("no stream thread: {e}"))));
        return Body::from_stream(tokio_stream_from(rx));
    }
    Body::from_stream(tokio_stream_from(rx))
}

fn tokio_stream_from(
    mut rx: mpsc::Receiver<Result<Bytes, std::io::Error>>,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// Cuts a byte stream after `limit` bytes, then (after a short pause, so the bytes reach the client) fails,
/// which makes the server abort the connection.
pub fn truncate(
    s: impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
    limit: u64,
) -> Body {
    type Item = Result<Bytes, std::io::Error>;
    let mut sent = 0u64;
    let mut done = false;
    let st = s.flat_map(move |item| -> futures::stream::BoxStream<'static, Item> {
        if done {
            return futures::stream::empty().boxed();
        }
        match item {
            Ok(b) => {
                let left = limit.saturating_sub(sent);
                if (b.len() as u64) < left {
                    sent += b.len() as u64;
                    futures::stream::iter([Ok(b)]).boxed()
                } else {
                    done = true;
                    let part = b.slice(..left as usize);
                    futures::stream::iter([Ok(part)])
                        .chain(futures::stream::once(async {
                            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                            Err(std::io::Error::new(
                                std::io::ErrorKind::ConnectionAborted,
                                "injected fault: download dropped",
                            ))
                        }))
                        .boxed()
                }
            }
            Err(e) => futures::stream::iter([Err(e)]).boxed(),
        }
    });
    Body::from_stream(st)
}

/// Passes the first `after` bytes of a stream, then one byte a second, never ending.
pub fn trickle(
    s: impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
    after: u64,
) -> Body {
    let mut sent = 0u64;
    let st = s.flat_map(
        move |item| -> futures::stream::BoxStream<'static, Result<Bytes, std::io::Error>> {
            match item {
                Ok(b) => {
                    let left = after.saturating_sub(sent);
                    if (b.len() as u64) <= left {
                        sent += b.len() as u64;
                        return futures::stream::iter([Ok(b)]).boxed();
                    }
                    sent = after;
                    let head = b.slice(..left as usize);
                    let tail = b.slice(left as usize..);
                    let slow = futures::stream::unfold(tail, |rest| async move {
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                        let byte = rest.slice(..rest.len().min(1));
                        Some((Ok(byte), rest))
                    });
                    futures::stream::iter([Ok(head)]).chain(slow).boxed()
                }
                Err(e) => futures::stream::iter([Err(e)]).boxed(),
            }
        },
    );
    Body::from_stream(st)
}

/// The body of an integration export, honouring the `drop_download_after` and
/// `trickle_download_after` faults.
pub fn export_body(src: ExportSource, shared: &Shared) -> ApiResult<Body> {
    let faults = shared.faults.get();
    if let Some(n) = faults.trickle_download_after {
        let bytes = match src {
            ExportSource::Generated { .. } | ExportSource::File(_) => {
                return Err(super::error::ApiError::new(
                    axum::http::StatusCode::NOT_IMPLEMENTED,
                    "trickle_download_after applies to in-memory archives only",
                ));
            }
            other => export_source_bytes(other)?,
        };
        return Ok(trickle(futures::stream::iter([Ok(bytes)]), n));
    }
    let drop_after = faults.drop_download_after;
    match src {
        ExportSource::Generated {
            integration,
            connections,
            lookups,
            padding,
        } if padding > STREAM_THRESHOLD => {
            let entries = archive::iar_entries(&integration, &connections, &lookups, padding);
            let body = stream_entries(entries);
            Ok(match drop_after {
                Some(n) => truncate(
                    body.into_data_stream()
                        .map(|r| r.map_err(std::io::Error::other)),
                    n,
                ),
                None => body,
            })
        }
        ExportSource::File(path) => {
            let file = std::fs::File::open(&path).map_err(|e| {
                super::error::ApiError::new(
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                    format!("Reading the archive failed: {e}"),
                )
            })?;
            let s = tokio_util::io::ReaderStream::with_capacity(
                tokio::fs::File::from_std(file),
                64 * 1024,
            );
            Ok(match drop_after {
                Some(n) => truncate(s, n),
                None => Body::from_stream(s),
            })
        }
        other => Ok(body_of(export_source_bytes(other)?, drop_after)),
    }
}

/// A body over in-memory bytes, cut after `drop_after` bytes when set.
pub fn body_of(bytes: Bytes, drop_after: Option<u64>) -> Body {
    match drop_after {
        Some(n) if (n as usize) < bytes.len() => {
            let chunks: Vec<Result<Bytes, std::io::Error>> = bytes
                .chunks(16 * 1024)
                .map(|c| Ok(Bytes::copy_from_slice(c)))
                .collect();
            truncate(futures::stream::iter(chunks), n)
        }
        _ => Body::from(bytes),
    }
}
