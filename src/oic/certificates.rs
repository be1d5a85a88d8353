//! Certificates (`GET /ic/api/integration/v1/certificates`): listed, never carried.
//!
//! Oracle's REST API for certificates (documented: "Retrieve Certificates", "Retrieve a
//! Certificate", "Upload a Certificate"; see docs/oic-fidelity.md "Certificates") lists them and
//! takes uploads (multipart: the file, `name`, `type`, `category`, and for private material its
//! passwords), but gives no certificate file back: there is no download, and a certificate's
//! private key (X509 `IDENTITY`, PGP `PRIVATE`, SIGNKEY) never leaves the instance. So ferry
//! lists them, and a migration reports each one for the operator to upload on the target.
//!
//! Only metadata is read. The documented single-certificate answer also names `content`,
//! `keystore`, `keyPasswords` and `keystorePassword`; [`Certificate::from_json`] keeps none of
//! them (nor the raw object), so no key material or password can reach a log or a report.

use serde::Serialize;
use serde_json::Value;

use super::OicClient;
use super::error::OicError;
use super::http::API;
use super::types::opt_s;

/// One certificate of an instance: its metadata only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Certificate {
    /// `installedType|type|category|name` (OIC's composite id).
    pub id: String,
    /// The alias.
    pub name: String,
    /// `X509`, `PGP`, `SAML`, `SIGNKEY`, `DIGITALSIGNATURE`.
    #[serde(rename = "type")]
    pub cert_type: String,
    /// `TRUST`, `IDENTITY` (X509), `PUBLIC`, `PRIVATE` (PGP, SIGNKEY), `OWSM` (SAML).
    pub category: String,
    /// `USER` (uploaded) or `SYSTEM` (shipped with every instance).
    pub installed_type: String,
    /// `CONFIGURED` or `INPROGRESS` (a draft).
    pub status: String,
    /// Expiry, as OIC wrote it.
    pub expires: Option<String>,
    pub description: Option<String>,
    /// Last change, as OIC wrote it.
    pub last_updated: Option<String>,
}

impl Certificate {
    /// Reads the metadata of a certificate from its JSON object; never fails. Key material and
    /// passwords the answer may carry are dropped here.
    pub fn from_json(v: Value) -> Certificate {
        let s = |k: &str| opt_s(&v, k).unwrap_or_default();
        let id = s("id");
        // The id names what the fields may leave out: installedType|type|category|name.
        let parts: Vec<&str> = id.splitn(4, '|').collect();
        let part = |i: usize| parts.get(i).map(|p| p.to_string()).unwrap_or_default();
        let or = |a: String, b: String| if a.is_empty() { b } else { a };
        let (installed, ty, cat, name) = if parts.len() == 4 {
            (part(0), part(1), part(2), part(3))
        } else {
            Default::default()
        };
        let mut c = Certificate {
            id: id.clone(),
            name: or(s("name"), name),
            cert_type: or(s("type"), ty),
            category: or(s("category"), cat),
            installed_type: or(s("installedType"), installed),
            status: s("status"),
            expires: opt_s(&v, "expires").or_else(|| opt_s(&v, "expiry")),
            description: opt_s(&v, "description").filter(|d| !d.is_empty()),
            last_updated: opt_s(&v, "lastUpdated"),
        };
        if c.id.is_empty() {
            c.id = c.composite_id();
        }
        c
    }

    /// `installedType|type|category|name`.
    pub fn composite_id(&self) -> String {
        format!(
            "{}|{}|{}|{}",
            self.installed_type, self.cert_type, self.category, self.name
        )
    }

    /// Uploaded by someone (not shipped with the instance).
    pub fn is_user(&self) -> bool {
        self.installed_type.eq_ignore_ascii_case("USER")
    }

    /// Whether it holds a private key (which OIC never gives back).
    pub fn has_private_key(&self) -> bool {
        matches!(
            self.category.to_ascii_uppercase().as_str(),
            "IDENTITY" | "PRIVATE"
        ) || self.cert_type.eq_ignore_ascii_case("SIGNKEY")
    }
}

impl OicClient {
    /// Every certificate of the instance (metadata only), paged.
    pub async fn list_certificates(&self) -> Result<Vec<Certificate>, OicError> {
        self.list_as(&format!("{API}/certificates"), None, Certificate::from_json)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_metadata_is_kept() {
        // The documented fields of "Retrieve a Certificate", with made-up secret values.
        let v = json!({
            "id": "USER|X509|IDENTITY|HR_MTLS_CLIENT",
            "name": "HR_MTLS_CLIENT", "type": "X509", "category": "IDENTITY",
            "installedType": "USER", "status": "CONFIGURED",
            "expires": "2027-03-01T00:00:00.000+0000", "description": "mTLS to HR",
            "keystore": "MIIKeystoreBase64SecretBlob", "keystorePassword": "ks-pass-271828",
            "keyPasswords": "key-pass-314159", "content": [{"k": "-----BEGIN PRIVATE KEY-----"}],
            "hash": "abc", "metaData": {"x": "y"}
        });
        let c = Certificate::from_json(v);
        assert_eq!(c.id, "USER|X509|IDENTITY|HR_MTLS_CLIENT");
        assert!(c.is_user() && c.has_private_key());
        let shown = format!("{c:?} {}", serde_json::to_string(&c).unwrap());
        for secret in [
            "MIIKeystoreBase64SecretBlob",
            "ks-pass-271828",
            "key-pass-314159",
            "PRIVATE KEY",
        ] {
            assert!(!shown.contains(secret), "{secret} kept: {shown}");
        }
    }

    #[test]
    fn fields_missing_are_read_from_the_id() {
        let c = Certificate::from_json(json!({"id": "USER|PGP|PUBLIC|SFTP_OUT_PGP"}));
        assert_eq!(
            (c.name.as_str(), c.cert_type.as_str(), c.category.as_str()),
            ("SFTP_OUT_PGP", "PGP", "PUBLIC")
        );
        assert!(!c.has_private_key());
        let c = Certificate::from_json(
            json!({"name": "A", "type": "X509", "category": "TRUST", "installedType": "SYSTEM"}),
        );
        assert_eq!(c.id, "SYSTEM|X509|TRUST|A");
        assert!(!c.is_user());
        // Nothing at all: no panic.
        let c = Certificate::from_json(json!(7));
        assert_eq!(c.id, "|||");
    }
}
