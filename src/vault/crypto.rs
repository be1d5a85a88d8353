//! age encryption for vault files: X25519 recipients or a passphrase (scrypt), and the
//! identities needed to restore.

use std::io::{self, Read, Write};
use std::iter;
use std::str::FromStr;

use age::secrecy::SecretString;

use crate::config::Secret;

/// How files are encrypted when they are written to a vault.
#[derive(Clone)]
pub enum Encryption {
    /// Files are stored as they are.
    None,
    /// Files are encrypted to these X25519 recipients (`age1...`).
    Recipients(Vec<age::x25519::Recipient>),
    /// Files are encrypted with a passphrase (age scrypt).
    Passphrase(Secret),
}

impl std::fmt::Debug for Encryption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.method())?;
        if let Encryption::Recipients(r) = self {
            write!(
                f,
                " {:?}",
                r.iter().map(|k| k.to_string()).collect::<Vec<_>>()
            )?;
        }
        Ok(())
    }
}

impl Encryption {
    /// Parses `age1...` public keys.
    pub fn recipients<S: AsRef<str>>(keys: &[S]) -> Result<Encryption, String> {
        if keys.is_empty() {
            return Err("the list of recipients is empty".into());
        }
        let mut out = Vec::new();
        for k in keys {
            let k = k.as_ref().trim();
            let r = age::x25519::Recipient::from_str(k)
                .map_err(|e| format!("`{k}` is not an age X25519 public key (age1...): {e}"))?;
            out.push(r);
        }
        Ok(Encryption::Recipients(out))
    }

    /// `none`, `age-x25519` or `age-scrypt`.
    pub fn method(&self) -> String {
        match self {
            Encryption::None => "none",
            Encryption::Recipients(_) => "age-x25519",
            Encryption::Passphrase(_) => "age-scrypt",
        }
        .to_string()
    }

    /// The public keys files are encrypted to (empty unless X25519 recipients are used).
    pub fn public_keys(&self) -> Vec<String> {
        match self {
            Encryption::Recipients(r) => r.iter().map(|k| k.to_string()).collect(),
            _ => vec![],
        }
    }

    /// True unless files are stored as they are.
    pub fn is_encrypted(&self) -> bool {
        !matches!(self, Encryption::None)
    }

    /// Wraps `out` in an age encryptor.
    pub(crate) fn wrap<W: Write>(&self, out: W) -> io::Result<age::stream::StreamWriter<W>> {
        let enc = match self {
            Encryption::None => return Err(io::Error::other("no encryption configured")),
            Encryption::Recipients(r) => {
                age::Encryptor::with_recipients(r.iter().map(|k| k as &dyn age::Recipient))
                    .map_err(|e| io::Error::other(format!("age: {e}")))?
            }
            Encryption::Passphrase(p) => {
                age::Encryptor::with_user_passphrase(SecretString::from(p.expose().to_string()))
            }
        };
        enc.wrap_output(out)
    }
}

/// What can decrypt vault files.
#[derive(Clone, Default)]
pub enum Decryption {
    /// Nothing: encrypted files cannot be restored (their stored bytes can still be verified).
    #[default]
    None,
    /// age identities (`AGE-SECRET-KEY-1...`), from an identity file.
    Identities(std::sync::Arc<Vec<Box<dyn age::Identity + Send + Sync>>>),
    /// A passphrase (for vaults encrypted with one).
    Passphrase(Secret),
}

impl std::fmt::Debug for Decryption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Decryption::None => f.write_str("none"),
            Decryption::Identities(v) => write!(f, "{} age identities", v.len()),
            Decryption::Passphrase(_) => f.write_str("passphrase ***"),
        }
    }
}

impl Decryption {
    /// Reads an age identity file (one or more `AGE-SECRET-KEY-1...` lines, `#` comments).
    pub fn identity_file(path: &std::path::Path) -> Result<Decryption, String> {
        let f = age::IdentityFile::from_file(path.display().to_string()).map_err(|e| {
            format!(
                "cannot read age identity file {}: {}",
                path.display(),
                e.kind()
            )
        })?;
        let ids = f
            .into_identities()
            .map_err(|_| format!("{} is not a valid age identity file", path.display()))?;
        if ids.is_empty() {
            return Err(format!("{} holds no age identity", path.display()));
        }
        Ok(Decryption::Identities(std::sync::Arc::new(ids)))
    }

    /// Parses identities from text (`AGE-SECRET-KEY-1...` lines).
    pub fn identity_text(text: &str) -> Result<Decryption, String> {
        let f = age::IdentityFile::from_buffer(io::Cursor::new(text.as_bytes()))
            .map_err(|_| "not a valid age identity".to_string())?;
        let ids = f
            .into_identities()
            .map_err(|_| "not a valid age identity".to_string())?;
        if ids.is_empty() {
            return Err("no age identity given".into());
        }
        Ok(Decryption::Identities(std::sync::Arc::new(ids)))
    }

    /// True when nothing can decrypt.
    pub fn is_none(&self) -> bool {
        matches!(self, Decryption::None)
    }

    /// Starts decrypting `input`. The error message never contains key material.
    pub(crate) fn decrypt<R: Read>(
        &self,
        input: R,
    ) -> Result<age::stream::StreamReader<R>, String> {
        let d = age::Decryptor::new(input).map_err(describe_decrypt_error)?;
        let r = match self {
            Decryption::None => return Err("the file is encrypted and no age identity is configured (set `identity` on the vault)".into()),
            Decryption::Identities(ids) => {
                if d.is_scrypt() {
                    return Err("the file is encrypted with a passphrase, but an age identity was given (set `passphrase_secret`)".into());
                }
                d.decrypt(ids.iter().map(|i| i.as_ref() as &dyn age::Identity))
            }
            Decryption::Passphrase(p) => {
                if !d.is_scrypt() {
                    return Err("the file is encrypted to age public keys, but only a passphrase was given (set `identity`)".into());
                }
                let id = age::scrypt::Identity::new(SecretString::from(p.expose().to_string()));
                return d.decrypt(iter::once(&id as &dyn age::Identity)).map_err(|e| match e {
                    age::DecryptError::DecryptionFailed | age::DecryptError::NoMatchingKeys => {
                        "wrong passphrase: the configured passphrase cannot decrypt this file".into()
                    }
                    other => describe_decrypt_error(other),
                });
            }
        };
        r.map_err(describe_decrypt_error)
    }
}

fn describe_decrypt_error(e: age::DecryptError) -> String {
    match e {
        age::DecryptError::NoMatchingKeys => {
            "wrong key: none of the configured age identities can decrypt this file".into()
        }
        age::DecryptError::DecryptionFailed => {
            "decryption failed: the file is damaged or truncated".into()
        }
        age::DecryptError::KeyDecryptionFailed => "wrong passphrase or damaged header".into(),
        age::DecryptError::InvalidHeader => "not an age file, or its header is damaged".into(),
        age::DecryptError::InvalidMac => "the age header is damaged (MAC mismatch)".into(),
        age::DecryptError::Io(e) => format!("read error: {e}"),
        other => format!("age: {other}"),
    }
}

/// Turns a read error from the age stream into a clear message.
pub(crate) fn describe_stream_error(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::InvalidData => {
            "decryption failed: the file is damaged, truncated or was altered".into()
        }
        io::ErrorKind::UnexpectedEof => "decryption failed: the file is truncated".into(),
        _ => format!("read error: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use age::secrecy::ExposeSecret;

    #[test]
    fn round_trip_and_wrong_key() {
        let id = age::x25519::Identity::generate();
        let enc = Encryption::recipients(&[id.to_public().to_string()]).unwrap();
        let mut w = enc.wrap(Vec::new()).unwrap();
        w.write_all(b"hello vault").unwrap();
        let data = w.finish().unwrap();
        let dec = Decryption::identity_text(id.to_string().expose_secret()).unwrap();
        let mut out = String::new();
        dec.decrypt(&data[..])
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "hello vault");
        let other = age::x25519::Identity::generate();
        let wrong = Decryption::identity_text(other.to_string().expose_secret()).unwrap();
        let e = wrong.decrypt(&data[..]).err().unwrap();
        assert!(e.contains("wrong key"), "{e}");
    }
}
