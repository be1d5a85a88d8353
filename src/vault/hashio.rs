//! Streaming helpers: readers and writers that count and sha256 the bytes passing through.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::rc::Rc;

use sha2::{Digest, Sha256};

use super::sha256pair::PairHash;

/// The sha256 of an archive's plaintext and of its stored bytes, computed together
/// ([`PairHash`]: two hashes interleaved cost little more than one) by the hashing stage of a
/// [`PipeWriter`]. The plaintext chunks, once the encryptor has consumed them, are queued
/// ([`DualHash::plain`]) and hashed beside the stored bytes as those come
/// ([`DualHash::stored`]); what is left over is hashed alone at the end. Unencrypted, the
/// stored bytes are the plaintext: hashed once.
pub(crate) struct DualHash {
    hash: PairHash,
    /// Plaintext chunks not hashed yet (the first from `off`).
    queued: VecDeque<Vec<u8>>,
    off: usize,
    /// Chunks hashed, to be read into again.
    done: Vec<Vec<u8>>,
    plain: u64,
    stored: u64,
    /// The stored bytes are the plaintext (no encryption).
    same: bool,
}

impl DualHash {
    pub(crate) fn new(same: bool) -> DualHash {
        DualHash {
            hash: PairHash::new(),
            queued: VecDeque::new(),
            off: 0,
            done: Vec::new(),
            plain: 0,
            stored: 0,
            same,
        }
    }

    /// A chunk of plaintext, every byte of it already written to the encryptor (unencrypted:
    /// to the store, the stored bytes hashed instead).
    pub(crate) fn plain(&mut self, chunk: Vec<u8>) {
        self.plain += chunk.len() as u64;
        if self.same {
            self.done.push(chunk);
        } else {
            self.queued.push_back(chunk);
        }
    }

    /// Stored bytes, paired with queued plaintext while there is some.
    pub(crate) fn stored(&mut self, mut c: &[u8]) {
        self.stored += c.len() as u64;
        while !c.is_empty() {
            let Some(front) = self.queued.front() else {
                self.hash.update(&[], c);
                return;
            };
            let k = (front.len() - self.off).min(c.len());
            self.hash.update(&front[self.off..self.off + k], &c[..k]);
            self.off += k;
            c = &c[k..];
            if self.off == front.len() {
                self.done.extend(self.queued.pop_front());
                self.off = 0;
            }
        }
    }

    /// The plaintext chunks hashed since the last call (to be read into again).
    pub(crate) fn recycled(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.done)
    }

    /// (plaintext size, plaintext sha256, stored size, stored sha256), hex digests.
    pub(crate) fn finish(mut self) -> (u64, String, u64, String) {
        while let Some(chunk) = self.queued.pop_front() {
            self.hash.update(&chunk[self.off..], &[]);
            self.off = 0;
        }
        let (p, s) = self.hash.finalize();
        let s = hex::encode(s);
        let p = if self.same { s.clone() } else { hex::encode(p) };
        (self.plain, p, self.stored, s)
    }
}

/// A reader that hashes and counts every byte read through it.
pub(crate) struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> HashingReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }
    /// Reads whatever is left (so the digest covers the whole stream), then returns the byte
    /// count and hex digest.
    pub(crate) fn finish(mut self) -> io::Result<(u64, String)> {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let k = self.read(&mut buf)?;
            if k == 0 {
                break;
            }
        }
        Ok((self.count, hex::encode(self.hasher.finalize())))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// Shares one reader between an outer consumer and a later `finish` call.
pub(crate) struct RefReader<'a, R>(pub(crate) &'a mut R);

impl<R: Read> Read for RefReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

/// A writer that hands 1 MiB chunks to two threads: one hashes them (with the plaintext they
/// came from, [`DualHash`]), then the other writes them to the store. So encryption, hashing
/// and network or disk I/O overlap (the store's writer, libssh2's copies and SSH encryption, is
/// a stage of its own), and each thread's share stays small on a machine where the CPUs are
/// shared. Memory is bounded (a few chunks). Each chunk has the room before its data that the
/// store's writer asks for ([`super::StoreWriter::headroom`]: the SFTP writer then copies
/// nothing), allocated zeroed and never written, so it takes no memory.
pub(crate) struct PipeWriter {
    tx: Option<std::sync::mpsc::SyncSender<Piece>>,
    /// `buf[..head]`: the room; `buf[head..]`: the data.
    buf: Vec<u8>,
    head: usize,
    /// Plaintext chunks consumed by the encryptor, sent with the next chunk.
    plain: PlainChunks,
    /// Chunks the store's writer wrote, to be filled again.
    back: std::sync::mpsc::Receiver<Vec<u8>>,
    handle: Option<std::thread::JoinHandle<io::Result<(StoredSink, Digests)>>>,
}

/// What the thread of a pipeline stage (`upload`, `hashing`, `read`) ended with: its result, or
/// that it panicked.
fn join_stage<T>(h: std::thread::JoinHandle<io::Result<T>>, stage: &str) -> io::Result<T> {
    h.join()
        .unwrap_or_else(|_| Err(io::Error::other(format!("the {stage} thread panicked"))))
}

/// The error of a stage that stopped before its input ended (one that ended well stopped early).
fn early_error<T>(r: io::Result<T>) -> io::Error {
    match r {
        Err(e) => e,
        Ok(_) => io::Error::other("the upload thread stopped early"),
    }
}

/// Plaintext chunks the encryptor has consumed entirely, for [`PipeWriter`]'s hashing stage
/// (shared with the encrypting loop, on the same thread).
pub(crate) type PlainChunks = Rc<RefCell<Vec<Vec<u8>>>>;

/// (plaintext size, plaintext sha256, stored size, stored sha256), hex digests.
pub(crate) type Digests = (u64, String, u64, String);

/// What the hashing stage gets: a chunk of stored bytes (after the room) and the plaintext
/// chunks consumed since the one before.
struct Piece {
    stored: Vec<u8>,
    plain: Vec<Vec<u8>>,
}

const PIPE_CHUNK: usize = 1024 * 1024;

/// The store's writer.
type StoredSink = Box<dyn super::StoreWriter>;

/// An empty chunk with `head` bytes of room (zeroed by the allocator, untouched).
fn chunk_with_room(head: usize) -> Vec<u8> {
    let mut b = vec![0u8; head + PIPE_CHUNK];
    b.truncate(head);
    b
}

impl PipeWriter {
    /// `same`: the bytes written are the plaintext (no encryption). Hashed plaintext chunks are
    /// given back through `recycle` (to be read into again).
    pub(crate) fn new(
        inner: Box<dyn super::StoreWriter>,
        recycle: std::sync::mpsc::SyncSender<Vec<u8>>,
        same: bool,
    ) -> io::Result<PipeWriter> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Piece>(2);
        let (up_tx, up_rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(2);
        // Written chunks come back to be filled again (no allocation, no page faults per MiB).
        let (back_tx, back) = std::sync::mpsc::sync_channel::<Vec<u8>>(7);
        let mut inner = inner;
        let head = inner.headroom();
        let upload = std::thread::Builder::new()
            .name("vault-upload".into())
            .spawn(move || {
                for chunk in up_rx {
                    inner.write_chunk(&chunk, head)?;
                    let _ = back_tx.try_send(chunk);
                }
                Ok(inner)
            })?;
        let handle = std::thread::Builder::new()
            .name("vault-hash".into())
            .spawn(move || {
                let mut dual = DualHash::new(same);
                for piece in rx {
                    for p in piece.plain {
                        dual.plain(p);
                    }
                    dual.stored(&piece.stored[head..]);
                    for c in dual.recycled() {
                        let _ = recycle.try_send(c);
                    }
                    if piece.stored.len() > head && up_tx.send(piece.stored).is_err() {
                        // the upload thread stopped: its error
                        drop(up_tx);
                        return Err(early_error(join_stage(upload, "upload")));
                    }
                }
                drop(up_tx);
                let inner = join_stage(upload, "upload")?;
                Ok((inner, dual.finish()))
            })?;
        Ok(PipeWriter {
            tx: Some(tx),
            buf: chunk_with_room(head),
            head,
            plain: Rc::default(),
            back,
            handle: Some(handle),
        })
    }

    /// Where the encrypting loop puts the plaintext chunks it has written entirely.
    pub(crate) fn plain_chunks(&self) -> PlainChunks {
        self.plain.clone()
    }

    /// Closes the pipe and waits for the threads: the store's writer and the digests, or the
    /// threads' error.
    fn join(&mut self) -> io::Result<(StoredSink, Digests)> {
        self.tx = None;
        match self.handle.take() {
            Some(h) => join_stage(h, "hashing"),
            None => Err(io::Error::other("the upload already failed")),
        }
    }

    /// The threads' error (after they stopped early).
    fn thread_error(&mut self) -> io::Error {
        early_error(self.join())
    }

    fn send(&mut self) -> io::Result<()> {
        let next = match self.back.try_recv() {
            Ok(mut b) => {
                b.truncate(self.head);
                b
            }
            Err(_) => chunk_with_room(self.head),
        };
        let piece = Piece {
            stored: std::mem::replace(&mut self.buf, next),
            plain: std::mem::take(&mut *self.plain.borrow_mut()),
        };
        let sent = match &self.tx {
            Some(tx) => tx.send(piece).is_ok(),
            None => false,
        };
        if sent {
            Ok(())
        } else {
            Err(self.thread_error())
        }
    }

    /// Sends what is buffered, waits for the threads, finishes the store's writer; returns the
    /// digests.
    pub(crate) fn finish(mut self) -> io::Result<Digests> {
        if self.buf.len() > self.head || !self.plain.borrow().is_empty() {
            self.send()?;
        }
        let (w, digests) = self.join()?;
        w.finish()?;
        Ok(digests)
    }
}

impl Write for PipeWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(self.head + PIPE_CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() >= self.head + PIPE_CHUNK {
            self.send()?;
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for PipeWriter {
    fn drop(&mut self) {
        // Abandoned: stop the threads (they drain and exit when the channel closes).
        self.tx = None;
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// A reader that reads a local file ahead on a thread, so that reading overlaps with encryption
/// (the plaintext is hashed by a [`DualHash`], beside the stored bytes). Memory is bounded.
pub(crate) struct PrefetchReader {
    rx: Option<std::sync::mpsc::Receiver<Vec<u8>>>,
    /// Chunks consumed, given back to be filled again.
    back: std::sync::mpsc::SyncSender<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
    handle: Option<std::thread::JoinHandle<io::Result<u64>>>,
    result: Option<u64>,
}

impl PrefetchReader {
    pub(crate) fn spawn(mut file: std::fs::File) -> io::Result<PrefetchReader> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(2);
        let (back_tx, back) = std::sync::mpsc::sync_channel::<Vec<u8>>(4);
        let handle = std::thread::Builder::new()
            .name("vault-read".into())
            .spawn(move || {
                let mut n = 0u64;
                loop {
                    // A chunk the consumer gave back, else a new one.
                    let mut buf = back.try_recv().unwrap_or_default();
                    buf.resize(PIPE_CHUNK, 0);
                    let mut filled = 0;
                    while filled < buf.len() {
                        match file.read(&mut buf[filled..]) {
                            Ok(0) => break,
                            Ok(k) => filled += k,
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                            Err(e) => return Err(e),
                        }
                    }
                    if filled == 0 {
                        break;
                    }
                    buf.truncate(filled);
                    n += filled as u64;
                    if tx.send(buf).is_err() {
                        // The consumer gave up.
                        return Err(io::Error::other("reader abandoned"));
                    }
                }
                Ok(n)
            })?;
        Ok(PrefetchReader {
            rx: Some(rx),
            back: back_tx,
            cur: Vec::new(),
            pos: 0,
            handle: Some(handle),
            result: None,
        })
    }

    fn join(&mut self) -> io::Result<u64> {
        if let Some(r) = self.result {
            return Ok(r);
        }
        self.rx = None;
        let r = match self.handle.take() {
            Some(h) => join_stage(h, "read")?,
            None => return Err(io::Error::other("the read already failed")),
        };
        self.result = Some(r);
        Ok(r)
    }

    /// The next chunk of the file as read ahead (no copy); `None` at the end.
    pub(crate) fn next_chunk(&mut self) -> io::Result<Option<Vec<u8>>> {
        if self.pos < self.cur.len() {
            let rest = std::mem::take(&mut self.cur).split_off(self.pos);
            self.pos = 0;
            return Ok(Some(rest));
        }
        let next = match &self.rx {
            Some(rx) => rx.recv().ok(),
            None => None,
        };
        match next {
            Some(chunk) => Ok(Some(chunk)),
            None => {
                self.join()?;
                Ok(None)
            }
        }
    }

    /// Where chunks from [`PrefetchReader::next_chunk`] go back to be filled again (from
    /// another thread).
    pub(crate) fn recycler(&self) -> std::sync::mpsc::SyncSender<Vec<u8>> {
        self.back.clone()
    }

    /// Gives a chunk from [`PrefetchReader::next_chunk`] back to be filled again.
    pub(crate) fn recycle(&self, chunk: Vec<u8>) {
        let _ = self.back.try_send(chunk);
    }

    /// Reads whatever is left, then returns the byte count of the whole file.
    pub(crate) fn finish(mut self) -> io::Result<u64> {
        let mut sink = [0u8; 8192];
        while self.read(&mut sink)? > 0 {}
        self.join()
    }
}

impl Read for PrefetchReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos >= self.cur.len() {
            let next = match &self.rx {
                Some(rx) => rx.recv().ok(),
                None => None,
            };
            match next {
                Some(chunk) => {
                    let used = std::mem::replace(&mut self.cur, chunk);
                    if used.capacity() > 0 {
                        self.recycle(used);
                    }
                    self.pos = 0;
                }
                None => {
                    // End of file, or the thread failed: its result says which.
                    self.join()?;
                    return Ok(0);
                }
            }
        }
        let n = out.len().min(self.cur.len() - self.pos);
        out[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl Drop for PrefetchReader {
    fn drop(&mut self) {
        self.rx = None;
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    fn sha(d: &[u8]) -> String {
        hex::encode(Sha256::digest(d))
    }

    /// Plaintext queued in chunks after stored bytes come in other pieces (as the upload
    /// does: an encryptor between them), both digests as sha2 computes them.
    #[test]
    fn dual_hash_pairs_plaintext_with_stored_bytes() {
        let plain = data(3 * 1024 * 1024 + 77);
        let stored = data(3 * 1024 * 1024 + 1000)
            .into_iter()
            .rev()
            .collect::<Vec<_>>();
        let mut h = DualHash::new(false);
        let mut s = stored.as_slice();
        let mut recycled = 0;
        for chunk in plain.chunks(1 << 20) {
            let k = s.len().min(chunk.len().saturating_sub(100));
            for piece in s[..k].chunks(65_552) {
                h.stored(piece);
            }
            s = &s[k..];
            h.plain(chunk.to_vec());
            recycled += h.recycled().len();
        }
        h.stored(s);
        assert!(recycled >= 1);
        assert_eq!(
            h.finish(),
            (
                plain.len() as u64,
                sha(&plain),
                stored.len() as u64,
                sha(&stored)
            )
        );
    }

    /// Unencrypted: the stored bytes are the plaintext, hashed once.
    #[test]
    fn dual_hash_same_bytes() {
        let plain = data(2 * 1024 * 1024 + 5);
        let mut h = DualHash::new(true);
        for chunk in plain.chunks(1 << 20) {
            h.stored(chunk);
            h.plain(chunk.to_vec());
            assert_eq!(h.recycled().len(), 1);
        }
        let n = plain.len() as u64;
        assert_eq!(h.finish(), (n, sha(&plain), n, sha(&plain)));
    }
}
