//! Archive layouts (§11): building and validating `.iar` files.
//!
//! Integrity hash (`mod=` in `ics_project_attributes.properties`): SHA-256 over every file entry except directory
//! entries, sorted by name; for each entry `name`, a 0 byte, the content length as a big-endian u64, then the
//! content. The properties file takes part with its `mod=` line(s) removed. The first 16 bytes of the digest are
//! written as standard base64.

use std::collections::BTreeMap;
use std::io::{Cursor, Read, Write};

use base64::Engine;
use sha2::{Digest, Sha256};

use super::state::{Connection, Integration, Invoke, InvokeVia, Lookup, Property, Schedule};

/// Archive errors (answered as 400).
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// Not a zip file, or unreadable.
    #[error("the archive is not a valid zip file: {0}")]
    NotZip(String),
    /// The layout is wrong.
    #[error("invalid archive layout: {0}")]
    Layout(String),
    /// Integrity hash mismatch.
    #[error(
        "ICS-20099: Unable to retrieve integration from the archive. The archive was modified (integrity check failed)."
    )]
    Integrity,
}

/// Escapes text for XML element content / attributes.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// Reverses [`xml_escape`].
pub fn xml_unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// Text of the first `<tag>...</tag>` (namespace prefixes allowed) in `xml`.
pub fn xml_text(xml: &str, tag: &str) -> Option<String> {
    let re = regex::Regex::new(&format!(
        r"(?s)<(?:\w+:)?{tag}(?:\s[^>]*)?>(.*?)</(?:\w+:)?{tag}>"
    ))
    .ok()?;
    re.captures(xml).map(|c| xml_unescape(c[1].trim()))
}

/// All texts of `<tag>...</tag>` in `xml`.
pub fn xml_texts(xml: &str, tag: &str) -> Vec<String> {
    match regex::Regex::new(&format!(
        r"(?s)<(?:\w+:)?{tag}(?:\s[^>]*)?>(.*?)</(?:\w+:)?{tag}>"
    )) {
        Ok(re) => re
            .captures_iter(xml)
            .map(|c| xml_unescape(c[1].trim()))
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Content of an archive entry: bytes, or deterministic generated filler (streamed, never held in memory).
#[derive(Debug, Clone)]
pub enum Content {
    /// Literal bytes.
    Bytes(Vec<u8>),
    /// `len` bytes of [`Filler`] seeded with `seed`.
    Filler {
        /// Seed text.
        seed: String,
        /// Length in bytes.
        len: u64,
    },
}

impl Content {
    /// Length in bytes.
    pub fn len(&self) -> u64 {
        match self {
            Content::Bytes(b) => b.len() as u64,
            Content::Filler { len, .. } => *len,
        }
    }
    /// Whether the content is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The bytes (empty for filler).
    pub fn bytes(&self) -> &[u8] {
        match self {
            Content::Bytes(b) => b,
            Content::Filler { .. } => &[],
        }
    }
    /// A reader over the content.
    pub fn reader(&self) -> Box<dyn Read + Send + '_> {
        match self {
            Content::Bytes(b) => Box::new(Cursor::new(b.as_slice())),
            Content::Filler { seed, len } => Box::new(Filler::new(seed, *len)),
        }
    }
}

impl From<Vec<u8>> for Content {
    fn from(b: Vec<u8>) -> Self {
        Content::Bytes(b)
    }
}

/// Archive entries by name.
pub type Entries = BTreeMap<String, Content>;

/// Deterministic, fast, XML-comment-looking filler text (a `Read`er of exactly `len` bytes).
#[derive(Debug)]
pub struct Filler {
    state: u64,
    remaining: u64,
    line: Vec<u8>,
    pos: usize,
}

impl Filler {
    /// Filler of `len` bytes for `seed`.
    pub fn new(seed: &str, len: u64) -> Self {
        let d = Sha256::digest(seed.as_bytes());
        let mut b = [0u8; 8];
        b.copy_from_slice(&d[..8]);
        Filler {
            state: u64::from_le_bytes(b),
            remaining: len,
            line: Vec::new(),
            pos: 0,
        }
    }
    fn next_u64(&mut self) -> u64 {
        // splitmix64
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

impl Read for Filler {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut n = 0;
        while n < buf.len() && self.remaining > 0 {
            if self.pos >= self.line.len() {
                let (a, b, c) = (self.next_u64(), self.next_u64(), self.next_u64());
                self.line = format!("<!-- {a:016x} {b:016x} {c:016x} -->\n").into_bytes();
                self.pos = 0;
            }
            let take = (self.line.len() - self.pos)
                .min(buf.len() - n)
                .min(self.remaining.min(usize::MAX as u64) as usize);
            buf[n..n + take].copy_from_slice(&self.line[self.pos..self.pos + take]);
            self.pos += take;
            n += take;
            self.remaining -= take as u64;
        }
        Ok(n)
    }
}

fn is_props(name: &str) -> bool {
    name.ends_with("/ics_project_attributes.properties")
        || name.ends_with("/oic_project.properties")
}

/// The properties content without its `mod=` line and without comment lines (`#…`, `!…`: the export time
/// stamp is a comment, so it does not take part in the integrity hash).
fn strip_mod(content: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(content);
    let mut out = String::new();
    for line in text.lines() {
        let t = line.trim_start();
        if t.starts_with("mod=") || t.starts_with('#') || t.starts_with('!') {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out.into_bytes()
}

/// Feeds written bytes into a SHA-256.
struct HashWriter<'a>(&'a mut Sha256);

impl Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The integrity hash over the entries (see the module docs). Filler entries are streamed through the hash.
pub fn integrity_hash(entries: &Entries) -> String {
    let mut h = Sha256::new();
    for (name, content) in entries {
        if name.ends_with('/') {
            continue;
        }
        h.update(name.as_bytes());
        h.update([0u8]);
        if is_props(name) {
            let stripped = strip_mod(content.bytes());
            h.update((stripped.len() as u64).to_be_bytes());
            h.update(&stripped);
        } else {
            h.update(content.len().to_be_bytes());
            match content {
                Content::Bytes(b) => h.update(b),
                Content::Filler { .. } => {
                    let _ = std::io::copy(&mut content.reader(), &mut HashWriter(&mut h));
                }
            }
        }
    }
    let digest = h.finalize();
    base64::engine::general_purpose::STANDARD.encode(&digest[..16])
}

/// Adds the `mod=` line (integrity hash) to the root properties entry: `project/oic_project.properties` in a
/// `.car`, otherwise the `ics_project_attributes.properties` of an `.iar`.
pub fn seal(entries: &mut Entries) {
    let hash = integrity_hash(entries);
    let target = if entries.contains_key(CAR_PROPS) {
        Some(CAR_PROPS.to_string())
    } else {
        entries
            .keys()
            .find(|n| n.ends_with("/ics_project_attributes.properties"))
            .cloned()
    };
    if let Some(name) = target
        && let Some(content) = entries.get_mut(&name)
    {
        let text = String::from_utf8_lossy(content.bytes()).to_string();
        let mut c: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("mod="))
            .map(|l| format!("{l}\n"))
            .collect();
        c.push_str(&format!("mod={hash}\n"));
        *content = Content::Bytes(c.into_bytes());
    }
}

/// The root properties entry of a `.car`.
pub const CAR_PROPS: &str = "project/oic_project.properties";

/// Generated filler entries above this size are stored, not deflated.
pub const STORE_ABOVE: u64 = 1024 * 1024;

/// Writes entries into a zip writer (deflate; large generated entries stored).
pub fn write_entries<W: Write + std::io::Seek>(
    w: &mut zip::ZipWriter<W>,
    entries: &Entries,
) -> Result<(), ArchiveError> {
    for (name, content) in entries {
        // Large generated resources are stored uncompressed so multi-GB archives stream at I/O speed.
        let method = match content {
            Content::Filler { len, .. } if *len > STORE_ABOVE => zip::CompressionMethod::Stored,
            _ => zip::CompressionMethod::Deflated,
        };
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(method)
            .last_modified_time(zip_now())
            .large_file(content.len() >= u32::MAX as u64 / 2);
        w.start_file(name.as_str(), opts)
            .map_err(|e| ArchiveError::NotZip(e.to_string()))?;
        std::io::copy(&mut content.reader(), w).map_err(|e| ArchiveError::NotZip(e.to_string()))?;
    }
    Ok(())
}

tokio::task_local! {
    /// Whether the exports of the emulator serving this request carry their export time: set per
    /// request from the emulator's switch ([`crate::sim::SimHandle::set_stamped_exports`]); see
    /// [`stamped_exports`].
    pub static STAMPED: bool;
}

/// On (the default, and outside a request): every export carries its export time (zip entry
/// times and a comment line in the properties files), so two exports of the same integration are
/// never byte-identical, as with real OIC; ferry compares archives by content digest
/// (`vault::content_hash`). Off (an emulator whose test needs reproducible bytes): generated
/// exports are byte for byte the same, imported ones exactly as uploaded. Per emulator: the
/// switch of the emulator serving the request ([`STAMPED`]).
pub fn stamped_exports() -> bool {
    STAMPED.try_with(|on| *on).unwrap_or(true)
}

/// The export time as a zip entry time (entries carry the time of the export, as real exports do).
pub fn zip_now() -> zip::DateTime {
    use chrono::{Datelike, Timelike};
    if !stamped_exports() {
        return zip::DateTime::default();
    }
    let t = chrono::Utc::now();
    zip::DateTime::from_date_and_time(
        t.year().clamp(1980, 2107) as u16,
        t.month() as u8,
        t.day() as u8,
        t.hour() as u8,
        t.minute() as u8,
        t.second() as u8,
    )
    .unwrap_or_default()
}

/// The comment line that starts a properties file of an export: the export time (ns), so two exports of the
/// same content are never byte-identical (comments are outside the integrity hash).
pub fn export_stamp() -> String {
    if !stamped_exports() {
        return String::new();
    }
    let t = chrono::Utc::now();
    format!("#{}\n", t.format("%a %b %d %H:%M:%S%.9f UTC %Y"))
}

/// Replaces (or adds) the time stamp comment at the top of every properties file.
pub fn restamp(entries: &mut Entries) {
    if !stamped_exports() {
        return;
    }
    for (name, content) in entries.iter_mut() {
        if !is_props(name) {
            continue;
        }
        let text = String::from_utf8_lossy(content.bytes()).to_string();
        let mut lines = text.lines().peekable();
        if lines.peek().is_some_and(|l| l.starts_with('#')) {
            lines.next();
        }
        let mut out = export_stamp();
        for l in lines {
            out.push_str(l);
            out.push('\n');
        }
        *content = Content::Bytes(out.into_bytes());
    }
}

/// Re-packs an archive for export: its time stamps are refreshed (content and integrity hash unchanged).
pub fn restamp_zip(bytes: &[u8]) -> Result<Vec<u8>, ArchiveError> {
    let mut entries = read_zip(bytes)?;
    restamp(&mut entries);
    write_zip(&entries)
}

/// Seals and writes entries to an in-memory zip.
pub fn seal_and_zip(mut entries: Entries) -> Result<Vec<u8>, ArchiveError> {
    seal(&mut entries);
    write_zip(&entries)
}

/// Writes entries to an in-memory zip as they are.
pub fn write_zip(entries: &Entries) -> Result<Vec<u8>, ArchiveError> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    write_entries(&mut w, entries)?;
    let cur = w
        .finish()
        .map_err(|e| ArchiveError::NotZip(e.to_string()))?;
    Ok(cur.into_inner())
}

/// Seals and writes entries as a zip stream into `out` (no seeking; memory stays flat).
pub fn seal_and_stream<W: Write>(mut entries: Entries, out: W) -> Result<(), ArchiveError> {
    seal(&mut entries);
    let mut w = zip::ZipWriter::new_stream(out);
    write_entries(&mut w, &entries)?;
    w.finish()
        .map_err(|e| ArchiveError::NotZip(e.to_string()))?;
    Ok(())
}

/// Reads every file entry of a zip.
pub fn read_zip(bytes: &[u8]) -> Result<Entries, ArchiveError> {
    let mut z = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| ArchiveError::NotZip(e.to_string()))?;
    let mut out = BTreeMap::new();
    for i in 0..z.len() {
        let mut f = z
            .by_index(i)
            .map_err(|e| ArchiveError::NotZip(e.to_string()))?;
        if f.is_dir() {
            continue;
        }
        let name = f
            .name()
            .map_err(|e| ArchiveError::NotZip(e.to_string()))?
            .to_string();
        let mut buf = Vec::new();
        f.read_to_end(&mut buf)
            .map_err(|e| ArchiveError::NotZip(e.to_string()))?;
        out.insert(name, Content::Bytes(buf));
    }
    Ok(out)
}

/// Parses Java-properties text (`key=value` lines).
pub fn parse_properties(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            out.insert(k.trim().to_string(), v.trim().to_string());
        }
    }
    out
}

/// XML of a connection (`appinstances/<CODE>.xml`, `connections/<CODE>.xml`). Secrets are never written.
pub fn connection_xml(c: &Connection) -> String {
    let mut props = String::new();
    for p in &c.connection_properties {
        props.push_str(&format!(
            "    <connectionProperty><name>{}</name><type>{}</type><value>{}</value></connectionProperty>\n",
            xml_escape(&p.property_name),
            xml_escape(&p.property_type),
            xml_escape(p.property_value.as_deref().unwrap_or(""))
        ));
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<applicationInstance xmlns=\"http://www.oracle.com/2014/03/ics/appinstance\">\n  <instanceCode>{}</instanceCode>\n  <displayName>{}</displayName>\n  <applicationTypeRef>{}</applicationTypeRef>\n  <securityPolicy>{}</securityPolicy>\n  <connectionProperties>\n{}  </connectionProperties>\n  <status>{}</status>\n  <integrationRole>{}</integrationRole>\n</applicationInstance>\n",
        xml_escape(&c.code),
        xml_escape(&c.name),
        xml_escape(&c.adapter),
        xml_escape(&c.security_policy),
        props,
        c.status.as_str(),
        xml_escape(&c.role)
    )
}

/// A connection as described inside an archive.
#[derive(Debug, Clone)]
pub struct ArchivedConnection {
    /// Code.
    pub code: String,
    /// Name.
    pub name: String,
    /// Adapter id.
    pub adapter: String,
    /// Security policy.
    pub security_policy: String,
    /// Role.
    pub role: String,
    /// Non-secret properties.
    pub properties: Vec<Property>,
}

/// Parses a connection XML.
pub fn parse_connection_xml(xml: &str, fallback_code: &str) -> ArchivedConnection {
    let names = xml_texts(xml, "name");
    let types = xml_texts(xml, "type");
    let values = xml_texts(xml, "value");
    let properties = names
        .iter()
        .enumerate()
        .map(|(i, n)| Property {
            property_group: "CONNECTION_PROPS".into(),
            property_name: n.clone(),
            property_type: types.get(i).cloned().unwrap_or_else(|| "STRING".into()),
            property_value: values.get(i).cloned(),
        })
        .collect();
    ArchivedConnection {
        code: xml_text(xml, "instanceCode").unwrap_or_else(|| fallback_code.to_string()),
        name: xml_text(xml, "displayName").unwrap_or_else(|| fallback_code.to_string()),
        adapter: xml_text(xml, "applicationTypeRef").unwrap_or_else(|| "rest".into()),
        security_policy: xml_text(xml, "securityPolicy").unwrap_or_else(|| "NONE".into()),
        role: xml_text(xml, "integrationRole").unwrap_or_else(|| "SOURCE_AND_TARGET".into()),
        properties,
    }
}

/// DVM XML of a lookup.
pub fn lookup_dvm(l: &Lookup) -> String {
    let mut cols = String::new();
    for c in &l.columns {
        cols.push_str(&format!("    <column name=\"{}\"/>\n", xml_escape(c)));
    }
    let mut rows = String::new();
    for r in &l.rows {
        rows.push_str("    <row>");
        for cell in r {
            rows.push_str(&format!("<cell>{}</cell>", xml_escape(cell)));
        }
        rows.push_str("</row>\n");
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<dvm name=\"{}\" xmlns=\"http://xmlns.oracle.com/dvm\">\n  <description>{}</description>\n  <columns>\n{}  </columns>\n  <rows>\n{}  </rows>\n</dvm>\n",
        xml_escape(&l.name),
        xml_escape(&l.description),
        cols,
        rows
    )
}

/// Parses a DVM XML.
pub fn parse_dvm(xml: &str, fallback_name: &str) -> Lookup {
    let name = regex::Regex::new(r#"<dvm[^>]*\sname="([^"]*)""#)
        .ok()
        .and_then(|re| re.captures(xml).map(|c| xml_unescape(&c[1])))
        .unwrap_or_else(|| fallback_name.to_string());
    let columns = regex::Regex::new(r#"<column\s+name="([^"]*)""#)
        .map(|re| re.captures_iter(xml).map(|c| xml_unescape(&c[1])).collect())
        .unwrap_or_default();
    let rows = xml_texts(xml, "row")
        .iter()
        .map(|r| xml_texts(r, "cell"))
        .collect();
    Lookup {
        name,
        description: xml_text(xml, "description").unwrap_or_default(),
        columns,
        rows,
        last_updated: chrono::Utc::now(),
    }
}

/// The entries of an integration inside an archive, under `prefix` (e.g. `icspackage/project/X_01.00.0000/`).
pub fn integration_entries(i: &Integration, prefix: &str, padding: u64, out: &mut Entries) {
    let props = export_stamp() + project_properties(i).as_str();
    out.insert(
        format!("{prefix}ics_project_attributes.properties"),
        props.into_bytes().into(),
    );
    let (apps, call_files) = applications(i, prefix);
    out.insert(
        format!("{prefix}PROJECT-INF/project.xml"),
        project_xml(i, &apps).into_bytes().into(),
    );
    project_inf(i, prefix, out);
    processor_resources(i, prefix, padding, out);
    for (n, c) in i.connections.iter().enumerate() {
        out.insert(
            format!(
                "{prefix}resources/application_{}/resourcegroup_1/{}.properties",
                n + 1,
                c.code
            ),
            format!("connection={}\nrole={}\n", c.code, c.role)
                .into_bytes()
                .into(),
        );
    }
    for (name, jca) in call_files {
        out.insert(name, jca.into_bytes().into());
    }
}

/// `ics_project_attributes.properties` (without the export stamp).
fn project_properties(i: &Integration) -> String {
    format!(
        "project_code={}\nproject_name={}\nproject_version={}\nproject_type={}\nproject_persisted_state={}\nproject_transient_state={}\nmodelType={}\nsmartTags=style:{}\nversion={}\nlastUpdatedICSVersion=25.06.0.0\noriginalICSVersion=24.10.0.0\n",
        i.code,
        i.name,
        i.version,
        i.project_type,
        if i.draft { "INPROGRESS" } else { "CONFIGURED" },
        if i.locked_by.is_some() {
            "LOCKED"
        } else {
            "UNLOCKED"
        },
        i.pattern,
        i.style.to_lowercase(),
        i.version
    )
}

/// One `<ns2:application>` of `project.xml` (role, code and name escaped).
fn application_xml(n: usize, role: &str, adapter: &str, code: &str, name: &str) -> String {
    format!(
        "    <ns2:application name=\"application_{n}\">\n      <ns2:role>{}</ns2:role>\n      <ns2:adapter><ns2:type>{adapter}</ns2:type><ns2:code>{}</ns2:code><ns2:name>{}</ns2:name></ns2:adapter>\n    </ns2:application>\n",
        xml_escape(role),
        xml_escape(code),
        xml_escape(name)
    )
}

/// The applications of `project.xml`: one per connection, then one per invocation of another
/// integration (the local integration adapter, or the REST connection the call goes through
/// when it is not one of the connections already); and each call's `.jca` under its resources
/// (path, text).
fn applications(i: &Integration, prefix: &str) -> (String, Vec<(String, String)>) {
    let mut apps = String::new();
    for (n, c) in i.connections.iter().enumerate() {
        apps.push_str(&application_xml(n + 1, &c.role, "rest", &c.code, &c.code));
    }
    let mut call_files: Vec<(String, String)> = Vec::new();
    let mut next_app = i.connections.len();
    for (j, call) in i.calls.iter().enumerate() {
        let (app, jca) = match &call.via {
            InvokeVia::Local => {
                next_app += 1;
                apps.push_str(&application_xml(
                    next_app,
                    "TARGET",
                    LOCAL_ADAPTER,
                    LOCAL_CONNECTION,
                    "Local Integration",
                ));
                (next_app, local_invoke_jca(call))
            }
            InvokeVia::Rest { connection } => {
                let app = match i.connections.iter().position(|c| &c.code == connection) {
                    Some(k) => k + 1,
                    None => {
                        next_app += 1;
                        apps.push_str(&application_xml(
                            next_app, "TARGET", "rest", connection, connection,
                        ));
                        next_app
                    }
                };
                (app, rest_invoke_jca(call, connection))
            }
        };
        call_files.push((
            format!(
                "{prefix}resources/application_{app}/resourcegroup_{}/{}_REQUEST.jca",
                j + 2,
                call.code
            ),
            jca,
        ));
    }
    (apps, call_files)
}

/// `PROJECT-INF/project.xml` with the applications `apps`.
fn project_xml(i: &Integration, apps: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ns3:icsproject xmlns=\"http://www.oracle.com/2014/03/ics/project/definition\" xmlns:ns2=\"http://www.oracle.com/2014/03/ics/flow/definition\" xmlns:ns3=\"http://www.oracle.com/2014/03/ics/project\">\n  <projectCode>{}</projectCode>\n  <projectVersion>{}</projectVersion>\n  <projectName>{}</projectName>\n  <description>{}</description>\n  <pattern>{}</pattern>\n  <style>{}</style>\n  <ns2:icsflow>\n{}    <ns2:processor name=\"processor_1\"><ns2:type>transformer</ns2:type></ns2:processor>\n    <ns2:orchestration/>\n  </ns2:icsflow>\n</ns3:icsproject>\n",
        xml_escape(&i.code),
        xml_escape(&i.version),
        xml_escape(&i.name),
        xml_escape(&i.description),
        xml_escape(&i.pattern),
        xml_escape(&i.style),
        apps
    )
}

/// The JSON files of `PROJECT-INF/` beside `project.xml`.
fn project_inf(i: &Integration, prefix: &str, out: &mut Entries) {
    out.insert(
        format!("{prefix}PROJECT-INF/layout.json"),
        format!("{{\"code\":\"{}\",\"nodes\":[]}}", i.code)
            .into_bytes()
            .into(),
    );
    // Newer exports carry these too (recorded .car; LENS).
    out.insert(
        format!("{prefix}PROJECT-INF/layout3.json"),
        format!("{{\"code\":\"{}\",\"version\":3,\"nodes\":[]}}", i.code)
            .into_bytes()
            .into(),
    );
    out.insert(
        format!("{prefix}PROJECT-INF/analysis.json"),
        format!(
            "{{\"code\":\"{}\",\"version\":\"{}\",\"connections\":[{}]}}",
            i.code,
            i.version,
            i.connections
                .iter()
                .map(|c| format!("\"{}\"", c.code))
                .collect::<Vec<_>>()
                .join(",")
        )
        .into_bytes()
        .into(),
    );
    out.insert(
        format!("{prefix}PROJECT-INF/project_messages.json"),
        b"{\"messages\":[]}".to_vec().into(),
    );
}

/// The transformer's resources: a generated stylesheet (`512 + padding` bytes) and its
/// expression properties.
fn processor_resources(i: &Integration, prefix: &str, padding: u64, out: &mut Entries) {
    let res_seed = format!("{}|{}", i.code, i.version);
    let hash = hex::encode(&Sha256::digest(res_seed.as_bytes())[..8]);
    out.insert(
        format!("{prefix}resources/processor_1/resourcegroup_1/req_{hash}.xsl"),
        Content::Filler {
            seed: res_seed.clone(),
            len: 512 + padding,
        },
    );
    out.insert(
        format!("{prefix}resources/processor_1/resourcegroup_1/expr.properties"),
        b"expr=true\n".to_vec().into(),
    );
}

/// Adapter type of the local integration adapter in `project.xml` (a system adapter: no connection
/// properties, no security policy, never in `appinstances/`).
pub const LOCAL_ADAPTER: &str = "integration";
/// Code of the preseeded connection of the local integration adapter.
pub const LOCAL_CONNECTION: &str = "OIC_LOCAL_INTEGRATION";

/// The `.jca` of a call through the local integration adapter: the integration it invokes by code and version.
pub fn local_invoke_jca(call: &Invoke) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<adapter-config name=\"Call{code}\" adapter=\"{LOCAL_ADAPTER}\" xmlns=\"http://platform.integration.oracle/blocks/adapter/fw/metadata\">\n  <connection-factory location=\"{LOCAL_CONNECTION}\"/>\n  <endpoint-interaction operation=\"execute\">\n    <interaction-spec className=\"oracle.cloud.connector.localintegration.LocalIntegrationInteractionSpec\">\n      <property name=\"integrationCode\" value=\"{code}\"/>\n      <property name=\"integrationVersion\" value=\"{version}\"/>\n    </interaction-spec>\n  </endpoint-interaction>\n</adapter-config>\n",
        code = xml_escape(&call.code),
        version = xml_escape(&call.version),
    )
}

/// The `.jca` of a call through a REST connection to another integration's REST endpoint (its
/// `RelativeURI` is the runtime path `/ic/api/integration/v1/flows/rest/CODE/1.0/...`).
pub fn rest_invoke_jca(call: &Invoke, connection: &str) -> String {
    let mut v = call.version.split('.');
    let major: u32 = v.next().and_then(|x| x.parse().ok()).unwrap_or(1);
    let minor: u32 = v.next().and_then(|x| x.parse().ok()).unwrap_or(0);
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<adapter-config name=\"Call{code}\" adapter=\"rest\" xmlns=\"http://platform.integration.oracle/blocks/adapter/fw/metadata\">\n  <connection-factory location=\"{conn}\"/>\n  <endpoint-interaction operation=\"execute\">\n    <interaction-spec className=\"oracle.cloud.connector.rest.RestEndpointInteractionSpec\">\n      <property name=\"RelativeURI\" value=\"/ic/api/integration/v1/flows/rest/{code}/{major}.{minor}/\"/>\n      <property name=\"Method\" value=\"POST\"/>\n    </interaction-spec>\n  </endpoint-interaction>\n</adapter-config>\n",
        code = xml_escape(&call.code),
        conn = xml_escape(connection),
    )
}

/// Builds the `.iar` of an integration (§11.1) in memory.
pub fn build_iar(
    i: &Integration,
    conns: &[Connection],
    lookups: &[Lookup],
    padding: u64,
) -> Result<Vec<u8>, ArchiveError> {
    seal_and_zip(iar_entries(i, conns, lookups, padding))
}

/// The (unsealed) entries of an integration's `.iar`.
pub fn iar_entries(
    i: &Integration,
    conns: &[Connection],
    lookups: &[Lookup],
    padding: u64,
) -> Entries {
    let mut entries = BTreeMap::new();
    let prefix = format!("icspackage/project/{}_{}/", i.code, i.version);
    integration_entries(i, &prefix, padding, &mut entries);
    for c in conns {
        entries.insert(
            format!("icspackage/appinstances/{}.xml", c.code),
            connection_xml(c).into_bytes().into(),
        );
    }
    for l in lookups {
        entries.insert(
            format!("icspackage/dvms/{}.dvm", l.name),
            lookup_dvm(l).into_bytes().into(),
        );
    }
    if let Some(s) = &i.schedule {
        entries.insert(
            "icspackage/schedule/schedule.xml".into(),
            schedule_xml(s).into_bytes().into(),
        );
    }
    entries
}

/// The schedule definition file of an archive (`icspackage/schedule/schedule.xml`); its state is not in it.
pub fn schedule_xml(s: &Schedule) -> String {
    let opt = |tag: &str, v: &Option<String>| match v {
        Some(v) => format!("  <{tag}>{}</{tag}>\n", xml_escape(v)),
        None => String::new(),
    };
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<schedule>\n  <name>{}</name>\n{}{}{}{}  <scheduleTZ>{}</scheduleTZ>\n{}</schedule>\n",
        xml_escape(&s.name),
        opt("expression", &s.ical),
        opt("frequency", &s.frequency),
        opt("startDate", &s.start_date),
        opt("endDate", &s.end_date),
        xml_escape(&s.tz),
        opt("scheduleTZDisplayName", &s.tz_display),
    )
}

/// Reads a schedule definition file back (a stopped schedule; `CANCELLED`).
pub fn parse_schedule_xml(xml: &str) -> Schedule {
    let now = chrono::Utc::now();
    let mut s = Schedule::ical(&xml_text(xml, "name").unwrap_or_default(), "", "", now);
    s.ical = xml_text(xml, "expression");
    s.frequency = xml_text(xml, "frequency");
    if s.ical.is_none() && s.frequency.is_none() {
        s.ical = Some(String::new());
    }
    s.start_date = xml_text(xml, "startDate");
    s.end_date = xml_text(xml, "endDate");
    s.tz = xml_text(xml, "scheduleTZ").unwrap_or_else(|| "UTC".into());
    s.tz_display = xml_text(xml, "scheduleTZDisplayName");
    s
}

/// What an imported `.iar` contains.
#[derive(Debug, Clone)]
pub struct ParsedIar {
    /// Code.
    pub code: String,
    /// Version.
    pub version: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Project type.
    pub project_type: String,
    /// Pattern (`modelType`).
    pub pattern: String,
    /// Style.
    pub style: String,
    /// Connections.
    pub connections: Vec<ArchivedConnection>,
    /// Roles of the connections used by the flow (code → role).
    pub connection_roles: Vec<(String, String)>,
    /// Lookups.
    pub lookups: Vec<Lookup>,
    /// Schedule definition, when the archive has one (stopped).
    pub schedule: Option<Schedule>,
    /// `project_persisted_state=INPROGRESS`: the flow itself is incomplete.
    pub draft: bool,
    /// Integrations it invokes (from its `.jca` files).
    pub calls: Vec<Invoke>,
}

/// Reads the integration a `.jca` invokes: `integrationCode`/`integrationVersion` of the local
/// adapter, or a `RelativeURI` under `/flows/rest/CODE/M.m/` (version `0M.0m.0000`).
pub fn parse_invoke_jca(xml: &str) -> Option<Invoke> {
    let prop = |name: &str| {
        regex::Regex::new(&format!(r#"name="{name}"\s+value="([^"]*)""#))
            .ok()?
            .captures(xml)
            .map(|c| xml_unescape(&c[1]))
    };
    if let Some(code) = prop("integrationCode") {
        return Some(Invoke {
            code,
            version: prop("integrationVersion").unwrap_or_else(|| "01.00.0000".into()),
            via: InvokeVia::Local,
        });
    }
    let uri = prop("RelativeURI")?;
    let c = regex::Regex::new(r"/flows/rest/(?:project/[^/]+/)?([A-Za-z0-9_\-]+)/(\d+)\.(\d+)")
        .ok()?
        .captures(&uri)?;
    let connection = regex::Regex::new(r#"<connection-factory\s+location="([^"]*)""#)
        .ok()?
        .captures(xml)
        .map(|m| xml_unescape(&m[1]))
        .unwrap_or_default();
    Some(Invoke {
        code: c[1].to_string(),
        version: format!(
            "{:02}.{:02}.0000",
            c[2].parse::<u32>().unwrap_or(1),
            c[3].parse::<u32>().unwrap_or(0)
        ),
        via: InvokeVia::Rest { connection },
    })
}

/// Validates and parses an `.iar` (§11.1 minimal validation).
pub fn parse_iar(bytes: &[u8]) -> Result<ParsedIar, ArchiveError> {
    parse_iar_reader(Cursor::new(bytes))
}

/// Whether an `.iar` entry is read into memory while scanning (metadata); others are only hashed.
fn iar_metadata(name: &str) -> bool {
    is_props(name)
        || name.ends_with("/PROJECT-INF/project.xml")
        || name.starts_with("icspackage/appinstances/")
        || name.starts_with("icspackage/dvms/")
        || name.starts_with("icspackage/schedule/")
        || name.ends_with(".jca")
}

/// Result of [`scan_zip`]: all file names (sorted), the kept entries, the integrity hash.
pub type ZipScan = (Vec<String>, BTreeMap<String, Vec<u8>>, String);

/// Scans a zip without holding it in memory: all file names, the integrity hash (streamed), and the contents of
/// the entries selected by `keep`.
pub fn scan_zip<R: Read + std::io::Seek>(
    r: R,
    keep: impl Fn(&str) -> bool,
) -> Result<ZipScan, ArchiveError> {
    let nz = |e: zip::result::ZipError| ArchiveError::NotZip(e.to_string());
    let mut z = zip::ZipArchive::new(r).map_err(nz)?;
    let mut names: Vec<(String, usize)> = Vec::new();
    for i in 0..z.len() {
        let f = z.by_index(i).map_err(nz)?;
        if f.is_dir() {
            continue;
        }
        names.push((f.name().map_err(nz)?.to_string(), i));
    }
    names.sort();
    let mut h = Sha256::new();
    let mut small = BTreeMap::new();
    for (name, idx) in &names {
        let mut f = z.by_index(*idx).map_err(nz)?;
        h.update(name.as_bytes());
        h.update([0u8]);
        if keep(name) || is_props(name) {
            let mut buf = Vec::new();
            f.read_to_end(&mut buf)
                .map_err(|e| ArchiveError::NotZip(e.to_string()))?;
            let hashed = if is_props(name) {
                strip_mod(&buf)
            } else {
                buf.clone()
            };
            h.update((hashed.len() as u64).to_be_bytes());
            h.update(&hashed);
            small.insert(name.clone(), buf);
        } else {
            h.update(f.size().to_be_bytes());
            std::io::copy(&mut f, &mut HashWriter(&mut h))
                .map_err(|e| ArchiveError::NotZip(e.to_string()))?;
        }
    }
    let digest = h.finalize();
    let hash = base64::engine::general_purpose::STANDARD.encode(&digest[..16]);
    Ok((names.into_iter().map(|(n, _)| n).collect(), small, hash))
}

/// Validates and parses an `.iar` from any seekable reader (e.g. a spooled upload file), streaming large entries.
pub fn parse_iar_reader<R: Read + std::io::Seek>(r: R) -> Result<ParsedIar, ArchiveError> {
    let (names, entries, hash) = scan_zip(r, iar_metadata)?;
    let dir = project_dir(&names)?;
    let prefix = format!("icspackage/project/{dir}/");
    let props_bytes = entries
        .get(&format!("{prefix}ics_project_attributes.properties"))
        .ok_or_else(|| ArchiveError::Layout("missing ics_project_attributes.properties".into()))?;
    let props = parse_properties(&String::from_utf8_lossy(props_bytes));
    let code = required(&props, "project_code")?;
    let version = required(&props, "project_version")?;
    let stored_mod = required(&props, "mod")?;
    if hash != stored_mod {
        return Err(ArchiveError::Integrity);
    }
    if dir != format!("{code}_{version}") {
        return Err(ArchiveError::Integrity);
    }
    let project_xml = entries
        .get(&format!("{prefix}PROJECT-INF/project.xml"))
        .map(|b| String::from_utf8_lossy(b).to_string())
        .ok_or_else(|| ArchiveError::Layout("missing PROJECT-INF/project.xml".into()))?;
    if xml_text(&project_xml, "projectCode").as_deref() != Some(code.as_str())
        || xml_text(&project_xml, "projectVersion").as_deref() != Some(version.as_str())
    {
        return Err(ArchiveError::Integrity);
    }
    let connection_roles = connection_roles(&project_xml)?;
    let calls = entries
        .iter()
        .filter(|(n, _)| n.starts_with(&prefix) && n.ends_with(".jca"))
        .filter_map(|(_, b)| parse_invoke_jca(&String::from_utf8_lossy(b)))
        .collect();
    let (connections, lookups, schedule) = package_parts(&entries);
    let prop = |k: &str, default: &str| props.get(k).cloned().unwrap_or_else(|| default.into());
    Ok(ParsedIar {
        name: prop("project_name", &code),
        description: xml_text(&project_xml, "description").unwrap_or_default(),
        project_type: prop("project_type", "DEVELOPED"),
        pattern: prop("modelType", "Orchestration"),
        style: xml_text(&project_xml, "style").unwrap_or_else(|| "FREEFORM".into()),
        code,
        version,
        connections,
        connection_roles,
        lookups,
        schedule,
        draft: props.get("project_persisted_state").map(String::as_str) == Some("INPROGRESS"),
        calls,
    })
}

/// The one `icspackage/project/<CODE>_<VERSION>/` directory of an archive's file `names`.
fn project_dir(names: &[String]) -> Result<String, ArchiveError> {
    let mut dirs: Vec<String> = names
        .iter()
        .filter_map(|n| n.strip_prefix("icspackage/project/"))
        .filter_map(|rest| rest.split_once('/').map(|(d, _)| d.to_string()))
        .collect();
    dirs.dedup();
    match dirs.as_slice() {
        [d] => Ok(d.clone()),
        [] => Err(ArchiveError::Layout(
            "no icspackage/project/<CODE>_<VERSION>/ directory".into(),
        )),
        _ => Err(ArchiveError::Layout(
            "more than one icspackage/project/ directory".into(),
        )),
    }
}

/// A key `ics_project_attributes.properties` must have.
fn required(props: &BTreeMap<String, String>, key: &str) -> Result<String, ArchiveError> {
    props
        .get(key)
        .cloned()
        .ok_or_else(|| ArchiveError::Layout(format!("missing {key}")))
}

/// The connections the flow of `project.xml` uses, (code, role); the local integration adapter
/// is a system adapter, not a connection of the flow.
fn connection_roles(project_xml: &str) -> Result<Vec<(String, String)>, ArchiveError> {
    let re_app =
        regex::Regex::new(r"(?s)<(?:\w+:)?application\b[^>]*>(.*?)</(?:\w+:)?application>")
            .map_err(|e| ArchiveError::Layout(e.to_string()))?;
    Ok(re_app
        .captures_iter(project_xml)
        .filter(|c| xml_text(&c[1], "type").as_deref() != Some(LOCAL_ADAPTER))
        .filter_map(|c| {
            let body = &c[1];
            let role = xml_text(body, "role").unwrap_or_else(|| "SOURCE".into());
            xml_text(body, "code").map(|code| (code, role))
        })
        .collect())
}

/// What the package holds beside the flow: connections (`appinstances/`), lookups (`dvms/`)
/// and the schedule.
fn package_parts(
    entries: &BTreeMap<String, Vec<u8>>,
) -> (Vec<ArchivedConnection>, Vec<Lookup>, Option<Schedule>) {
    let mut connections = Vec::new();
    let mut lookups = Vec::new();
    let mut schedule = None;
    for (name, content) in entries {
        let text = String::from_utf8_lossy(content);
        if let Some(file) = name.strip_prefix("icspackage/appinstances/") {
            let fallback = file.trim_end_matches(".xml");
            connections.push(parse_connection_xml(&text, fallback));
        } else if let Some(file) = name.strip_prefix("icspackage/dvms/") {
            lookups.push(parse_dvm(&text, file.trim_end_matches(".dvm")));
        } else if name.starts_with("icspackage/schedule/") {
            schedule = Some(parse_schedule_xml(&text));
        }
    }
    (connections, lookups, schedule)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_project_directory_or_a_layout_error() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            project_dir(&names(&[
                "icspackage/project/A_01.00.0000/PROJECT-INF/project.xml",
                "icspackage/project/A_01.00.0000/x.properties",
                "icspackage/appinstances/C.xml",
            ]))
            .ok()
            .as_deref(),
            Some("A_01.00.0000")
        );
        assert!(project_dir(&names(&["META-INF/MANIFEST.MF"])).is_err());
        assert!(
            project_dir(&names(&[
                "icspackage/project/A_01/p.xml",
                "icspackage/project/B_01/p.xml",
            ]))
            .is_err()
        );
    }

    #[test]
    fn the_applications_written_are_the_connections_read() {
        let mut d = super::super::state::InstanceData::default();
        super::super::seed::sample(&mut d);
        for i in d.integrations.values() {
            let (apps, calls) = applications(i, "p/");
            assert_eq!(calls.len(), i.calls.len(), "{}", i.code);
            let mut want: Vec<(String, String)> = i
                .connections
                .iter()
                .map(|c| (c.code.clone(), c.role.clone()))
                .collect();
            // A REST call through a connection the flow does not list adds it as a target.
            for c in &i.calls {
                if let InvokeVia::Rest { connection } = &c.via
                    && !i.connections.iter().any(|x| &x.code == connection)
                {
                    want.push((connection.clone(), "TARGET".into()));
                }
            }
            let got = connection_roles(&project_xml(i, &apps)).expect("parses");
            assert_eq!(got, want, "{}", i.code);
        }
    }
}
