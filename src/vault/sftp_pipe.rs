//! Small files written whole over SFTP with pipelined requests.
//!
//! libssh2's SFTP calls wait for each answer before the next request, so storing one small
//! archive costs a round trip for each of open, write, fsync, close and rename (and as many again
//! for its journal entry): on a link with 20 ms of round-trip time that is most of the time.
//! SFTP itself allows many requests in flight (the server answers them in order), so this is a
//! minimal SFTP v3 client on its own channel of the same SSH connection that sends the OPENs of a
//! batch of files together, then every WRITE, `fsync@openssh.com`, CLOSE and RENAME of the batch
//! together: two round trips for the batch. It does nothing else; everything else goes through
//! libssh2's SFTP.
//!
//! A request that fails does not stop the ones already sent after it: when a WRITE fails the
//! server still renames the (incomplete) file. The caller is told which file failed and removes
//! both of its names ([`super::sftp::SftpStore`] does).

use std::collections::HashMap;
use std::io::{self, Read, Write};

/// SFTP packet types (draft-ietf-secsh-filexfer-02, version 3).
const FXP_INIT: u8 = 1;
const FXP_VERSION: u8 = 2;
const FXP_OPEN: u8 = 3;
const FXP_CLOSE: u8 = 4;
const FXP_WRITE: u8 = 6;
const FXP_REMOVE: u8 = 13;
const FXP_RENAME: u8 = 18;
const FXP_STATUS: u8 = 101;
const FXP_HANDLE: u8 = 102;
const FXP_EXTENDED: u8 = 200;
const FXP_EXTENDED_REPLY: u8 = 201;

const FXF_WRITE: u32 = 0x02;
const FXF_CREAT: u32 = 0x08;
const FXF_TRUNC: u32 = 0x10;
const ATTR_PERMISSIONS: u32 = 0x04;

/// Data per WRITE request (what OpenSSH's client sends; every server accepts it).
const WRITE_CHUNK: usize = 32 * 1024;
/// Most REMOVE requests sent before reading their answers (their answers, 28 bytes each, must
/// fit the channel's window while none is read).
pub(crate) const REMOVE_BATCH: usize = 512;
/// The largest answer accepted (answers to these requests are a few dozen bytes).
const MAX_PACKET: usize = 256 * 1024;

/// Why a batch failed.
#[derive(Debug)]
pub(crate) enum PipeError {
    /// The channel or the connection failed: nothing is known about the batch.
    Io(io::Error),
    /// The server refused a request for file `index`: `op` (open, write, close, rename) and its
    /// status message.
    Refused {
        index: usize,
        op: &'static str,
        code: u32,
        message: String,
    },
}

impl From<io::Error> for PipeError {
    fn from(e: io::Error) -> Self {
        PipeError::Io(e)
    }
}

/// An SFTP session on its own channel.
pub(crate) struct PipeSftp {
    ch: ssh2::Channel,
    next_id: u32,
    posix_rename: bool,
    fsync: bool,
}

fn put_u32(b: &mut Vec<u8>, v: u32) {
    b.extend_from_slice(&v.to_be_bytes());
}

fn put_str(b: &mut Vec<u8>, s: &[u8]) {
    put_u32(b, s.len() as u32);
    b.extend_from_slice(s);
}

/// Reads big-endian fields from an answer.
struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn u32(&mut self) -> io::Result<u32> {
        if self.0.len() < 4 {
            return Err(bad("a truncated SFTP answer"));
        }
        let v = u32::from_be_bytes([self.0[0], self.0[1], self.0[2], self.0[3]]);
        self.0 = &self.0[4..];
        Ok(v)
    }
    fn bytes(&mut self) -> io::Result<Vec<u8>> {
        let n = self.u32()? as usize;
        if self.0.len() < n {
            return Err(bad("a truncated SFTP answer"));
        }
        let v = self.0[..n].to_vec();
        self.0 = &self.0[n..];
        Ok(v)
    }
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

/// What a request in flight was.
#[derive(Clone, Copy)]
enum Op {
    Open,
    Write,
    Fsync,
    Close,
    Rename,
    Remove,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Open => "open",
            Op::Write => "write",
            Op::Fsync => "fsync",
            Op::Close => "close",
            Op::Rename => "rename",
            Op::Remove => "remove",
        }
    }
}

impl PipeSftp {
    /// Opens a channel, starts the `sftp` subsystem and negotiates version 3.
    pub(crate) fn start(sess: &ssh2::Session) -> io::Result<PipeSftp> {
        let mut ch = sess.channel_session().map_err(io::Error::from)?;
        ch.subsystem("sftp").map_err(io::Error::from)?;
        let mut p = PipeSftp {
            ch,
            next_id: 1,
            posix_rename: false,
            fsync: false,
        };
        let mut init = vec![FXP_INIT];
        put_u32(&mut init, 3);
        p.send(&init)?;
        let (t, body) = p.read_packet()?;
        if t != FXP_VERSION {
            return Err(bad("the server did not start SFTP"));
        }
        let mut c = Cursor(&body);
        let version = c.u32()?;
        if version < 3 {
            return Err(bad("the server speaks an SFTP version older than 3"));
        }
        while !c.0.is_empty() {
            let name = c.bytes()?;
            let data = c.bytes()?;
            match (name.as_slice(), data.as_slice()) {
                (b"posix-rename@openssh.com", b"1") => p.posix_rename = true,
                (b"fsync@openssh.com", b"1") => p.fsync = true,
                _ => {}
            }
        }
        Ok(p)
    }

    /// Whether a rename replaces an existing file (`posix-rename@openssh.com`); without it, the
    /// caller must not ask to write over an existing name.
    pub(crate) fn renames_over(&self) -> bool {
        self.posix_rename
    }

    /// Sends one request (libssh2 sends at once in blocking mode; `Channel::flush` would
    /// discard unread input, not send output, so it is never called).
    fn send(&mut self, payload: &[u8]) -> io::Result<()> {
        let mut b = Vec::with_capacity(payload.len() + 4);
        put_u32(&mut b, payload.len() as u32);
        b.extend_from_slice(payload);
        self.ch.write_all(&b)
    }

    fn read_packet(&mut self) -> io::Result<(u8, Vec<u8>)> {
        let mut len = [0u8; 4];
        self.ch.read_exact(&mut len)?;
        let n = u32::from_be_bytes(len) as usize;
        if n == 0 || n > MAX_PACKET {
            return Err(bad("an SFTP answer of an impossible length"));
        }
        let mut body = vec![0u8; n];
        self.ch.read_exact(&mut body)?;
        let t = body[0];
        body.remove(0);
        Ok((t, body))
    }

    fn id(&mut self) -> u32 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        id
    }

    /// Reads the answers to `pending` (request id -> (file, op)); returns the handles the OPENs
    /// gave and the refusal of the first file refused.
    #[allow(clippy::type_complexity)]
    fn answers(
        &mut self,
        mut pending: HashMap<u32, (usize, Op)>,
    ) -> io::Result<(HashMap<usize, Vec<u8>>, Option<PipeError>)> {
        let mut handles = HashMap::new();
        let mut refused: Option<PipeError> = None;
        while !pending.is_empty() {
            let (t, body) = self.read_packet()?;
            let mut c = Cursor(&body);
            let id = c.u32()?;
            let Some((index, op)) = pending.remove(&id) else {
                return Err(bad("an SFTP answer to no request"));
            };
            match t {
                FXP_HANDLE if matches!(op, Op::Open) => {
                    handles.insert(index, c.bytes()?);
                }
                FXP_STATUS => {
                    let code = c.u32()?;
                    // removing a file that is gone already is no failure
                    let gone = code == 2 && matches!(op, Op::Remove);
                    let earlier = matches!(&refused, Some(PipeError::Refused { index: i, .. }) if *i <= index);
                    if code != 0 && !gone && !earlier {
                        let message =
                            String::from_utf8_lossy(&c.bytes().unwrap_or_default()).into_owned();
                        refused = Some(PipeError::Refused {
                            index,
                            op: op.name(),
                            code,
                            message,
                        });
                    }
                }
                FXP_EXTENDED_REPLY => {}
                _ => return Err(bad("an unexpected SFTP answer")),
            }
        }
        Ok((handles, refused))
    }

    /// Removes files, all requests in flight at once (a batch of at most [`REMOVE_BATCH`]). A
    /// file that is already gone is no failure.
    pub(crate) fn remove_files(&mut self, paths: &[String]) -> Result<(), PipeError> {
        let mut pending = HashMap::new();
        for (i, p) in paths.iter().enumerate() {
            let id = self.id();
            let mut b = vec![FXP_REMOVE];
            put_u32(&mut b, id);
            put_str(&mut b, p.as_bytes());
            self.send(&b)?;
            pending.insert(id, (i, Op::Remove));
        }
        match self.answers(pending)? {
            (_, None) => Ok(()),
            (_, Some(e)) => Err(e),
        }
    }

    /// Writes each file `(tmp, path, data, durable)` under its temporary name (made durable
    /// with `fsync@openssh.com` where the server has it and `durable` asks for it), closes it and renames it to its final name,
    /// in order. Two round trips for the whole batch. On a refusal, the files before the first
    /// file refused are complete; that one and those after it may be left under either name.
    pub(crate) fn put_whole(
        &mut self,
        files: &[(String, String, &[u8], bool)],
    ) -> Result<(), PipeError> {
        // 1. every OPEN
        let mut pending = HashMap::new();
        for (i, f) in files.iter().enumerate() {
            let id = self.id();
            let mut b = vec![FXP_OPEN];
            put_u32(&mut b, id);
            put_str(&mut b, f.0.as_bytes());
            put_u32(&mut b, FXF_WRITE | FXF_CREAT | FXF_TRUNC);
            put_u32(&mut b, ATTR_PERMISSIONS);
            put_u32(&mut b, 0o644);
            self.send(&b)?;
            pending.insert(id, (i, Op::Open));
        }
        let (handles, refused) = self.answers(pending)?;
        // 2. every WRITE, fsync, CLOSE, RENAME of the files before the first refused OPEN; only
        // the CLOSE of those after it
        let stop = match &refused {
            Some(PipeError::Refused { index, .. }) => *index,
            _ => files.len(),
        };
        let mut pending = HashMap::new();
        for (i, f) in files.iter().enumerate() {
            let Some(h) = handles.get(&i) else { continue };
            if i < stop {
                let mut off = 0usize;
                for chunk in f.2.chunks(WRITE_CHUNK) {
                    let id = self.id();
                    let mut b = Vec::with_capacity(chunk.len() + h.len() + 32);
                    b.push(FXP_WRITE);
                    put_u32(&mut b, id);
                    put_str(&mut b, h);
                    b.extend_from_slice(&(off as u64).to_be_bytes());
                    put_str(&mut b, chunk);
                    self.send(&b)?;
                    pending.insert(id, (i, Op::Write));
                    off += chunk.len();
                }
                if self.fsync && f.3 {
                    let id = self.id();
                    let mut b = vec![FXP_EXTENDED];
                    put_u32(&mut b, id);
                    put_str(&mut b, b"fsync@openssh.com");
                    put_str(&mut b, h);
                    self.send(&b)?;
                    pending.insert(id, (i, Op::Fsync));
                }
            }
            let id = self.id();
            let mut b = vec![FXP_CLOSE];
            put_u32(&mut b, id);
            put_str(&mut b, h);
            self.send(&b)?;
            pending.insert(id, (i, Op::Close));
            if i < stop {
                let id = self.id();
                let mut b = if self.posix_rename {
                    let mut b = vec![FXP_EXTENDED];
                    put_u32(&mut b, id);
                    put_str(&mut b, b"posix-rename@openssh.com");
                    b
                } else {
                    let mut b = vec![FXP_RENAME];
                    put_u32(&mut b, id);
                    b
                };
                put_str(&mut b, f.0.as_bytes());
                put_str(&mut b, f.1.as_bytes());
                self.send(&b)?;
                pending.insert(id, (i, Op::Rename));
            }
        }
        let (_, refused2) = self.answers(pending)?;
        match (refused, refused2) {
            (
                Some(a @ PipeError::Refused { index: i, .. }),
                Some(PipeError::Refused { index: j, .. }),
            ) if i <= j => Err(a),
            (_, Some(b)) => Err(b),
            (Some(a), None) => Err(a),
            (None, None) => Ok(()),
        }
    }
}
