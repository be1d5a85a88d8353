//! How the REPL shows values: ferry's objects as short blocks, arrays of them (and of result
//! maps) as aligned tables.

/// A value as the REPL shows it: our objects as short blocks, arrays of them as aligned tables,
/// everything else as Rhai prints it.
pub fn display_value(v: &rhai::Dynamic) -> String {
    use crate::artifact::Artifact;
    use crate::oic::Integration;
    if let Some(i) = v.read_lock::<Integration>() {
        return crate::ops::view::integration_text(&i);
    }
    if let Some(a) = v.read_lock::<Artifact>() {
        return crate::ops::view::artifact_text(&a);
    }
    if let Some(i) = v.read_lock::<super::api::oic::Instance>() {
        return crate::ops::reads::instance_text(&i.client);
    }
    if let Some(arr) = v.read_lock::<rhai::Array>()
        && !arr.is_empty()
    {
        let table = if arr.iter().all(|x| x.is::<Integration>()) {
            Some(integration_table(&arr))
        } else if arr.iter().all(|x| x.is::<Artifact>()) {
            Some(artifact_table(&arr))
        } else if arr.iter().all(|x| x.is_map()) {
            map_table(&arr)
        } else {
            None
        };
        if let Some(t) = table {
            return t;
        }
    }
    if v.is_string() {
        return format!("{:?}", v.to_string());
    }
    v.to_string()
}

fn integration_table(arr: &rhai::Array) -> String {
    let mut rows = vec![vec![
        "ID".to_string(),
        "STATUS".into(),
        "NAME".into(),
        "UPDATED BY".into(),
    ]];
    for x in arr.iter() {
        if let Some(i) = x.read_lock::<crate::oic::Integration>() {
            rows.push(vec![
                format!("{}|{}", i.code, i.version),
                i.status.clone(),
                i.name.clone(),
                i.last_updated_by.clone(),
            ]);
        }
    }
    format!(
        "{}({} integrations)",
        crate::ledger::report::render_table(&rows),
        arr.len()
    )
}

fn artifact_table(arr: &rhai::Array) -> String {
    let mut rows = vec![vec![
        "KIND".to_string(),
        "ID".into(),
        "SIZE".into(),
        "SHA256".into(),
        "SOURCE".into(),
    ]];
    for x in arr.iter() {
        if let Some(a) = x.read_lock::<crate::artifact::Artifact>() {
            rows.push(vec![
                a.key.kind.to_string(),
                a.key.id(),
                a.size.to_string(),
                a.sha256.chars().take(16).collect(),
                a.source.clone(),
            ]);
        }
    }
    format!(
        "{}({} artifacts)",
        crate::ledger::report::render_table(&rows),
        arr.len()
    )
}

/// Result maps: a table over the keys of the first map (at most 12 columns).
fn map_table(arr: &rhai::Array) -> Option<String> {
    let keys: Vec<String> = arr[0]
        .read_lock::<rhai::Map>()
        .map(|m| m.keys().map(|k| k.to_string()).collect())
        .unwrap_or_default();
    if keys.is_empty() || keys.len() > 12 {
        return None;
    }
    let cell = |m: &rhai::Map, k: &str| match m.get(k) {
        Some(v) if v.is_unit() => "-".to_string(),
        Some(v) => v.to_string(),
        None => String::new(),
    };
    let mut rows = vec![keys.iter().map(|k| k.to_uppercase()).collect::<Vec<_>>()];
    for x in arr.iter() {
        if let Some(m) = x.read_lock::<rhai::Map>() {
            rows.push(keys.iter().map(|k| cell(&m, k)).collect());
        }
    }
    Some(
        crate::ledger::report::render_table(&rows)
            .trim_end()
            .to_string(),
    )
}
