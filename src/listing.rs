//! Listing output (no `-o`, or `--list`): a table for people, or a JSON object for
//! scripts. Both name the checkpoint a folder or state file resolved to.

use crate::source::Container;
use crate::text::escape;

fn shape_text(shape: &[u64]) -> String {
    let dims: Vec<String> = shape.iter().map(u64::to_string).collect();
    format!("[{}]", dims.join(", "))
}

/// The checkpoint that was read, when the input named it indirectly or the reader
/// resolved it: a V2 bundle's prefix (its `.index` file without the suffix), or the
/// files of a V1 checkpoint. `None` for files that are what they are (a TensorProto,
/// GraphDef, SavedModel).
pub fn resolved_checkpoint(container: &dyn Container) -> Option<String> {
    let files = container.input_files();
    let kind = container.kind();
    if kind.contains("V2 checkpoint") {
        return files.iter().find_map(|(p, _)| {
            let stem = p.file_name()?.to_str()?.strip_suffix(".index")?;
            Some(p.with_file_name(stem).display().to_string())
        });
    }
    if kind.contains("V1 checkpoint") {
        let names: Vec<String> = files.iter().map(|(p, _)| p.display().to_string()).collect();
        return Some(names.join(", "));
    }
    None
}

/// The JSON array of every entry (see [`to_json_selected`]'s `"entries"`).
pub fn to_json(container: &dyn Container, var_names: Option<&[Option<String>]>) -> String {
    let all: Vec<usize> = (0..container.entries().len()).collect();
    to_json_selected(container, var_names, &all)
}

/// The JSON object
/// `{"input", "kind", "checkpoint", "entries": [{"name","dtype","shape","bytes","location","hidden"}, ...]}`
/// for the entries `shown` (indices into [`Container::entries`]). `input` is the path as
/// given, `kind` what it was read as, `checkpoint` the resolved checkpoint prefix (see
/// [`resolved_checkpoint`]) or `null`; each entry's `dtype` is TensorFlow's dtype name and
/// `bytes` the stored payload size. With `var_names` (`--var-names`, one per entry) each
/// entry also has `"var_name"`: the recorded variable name, or `null`.
pub fn to_json_selected(
    container: &dyn Container,
    var_names: Option<&[Option<String>]>,
    shown: &[usize],
) -> String {
    let entries = container.entries();
    let items: Vec<serde_json::Value> = shown
        .iter()
        .filter_map(|&i| Some((i, entries.get(i)?)))
        .map(|(i, e)| {
            let mut item = serde_json::json!({
                "name": e.name,
                "dtype": e.dtype.name(),
                "shape": e.shape,
                "bytes": e.stored_bytes,
                "location": e.location.to_string(),
                "hidden": e.hidden,
            });
            if let Some(names) = var_names {
                item["var_name"] = names.get(i).cloned().flatten().into();
            }
            item
        })
        .collect();
    let doc = serde_json::json!({
        "input": container.path().display().to_string(),
        "kind": container.kind(),
        "checkpoint": resolved_checkpoint(container),
        "entries": items,
    });
    let mut s = serde_json::to_string_pretty(&doc).unwrap_or_else(|_| "{}".to_string());
    s.push('\n');
    s
}

/// A table of every entry (see [`to_table_selected`]).
pub fn to_table(container: &dyn Container, var_names: Option<&[Option<String>]>) -> String {
    let all: Vec<usize> = (0..container.entries().len()).collect();
    to_table_selected(container, var_names, &all)
}

/// A human-readable table with one row per entry in `shown` and a summary line naming
/// the kind, the resolved checkpoint (see [`resolved_checkpoint`]) and the totals. With
/// `var_names` (`--var-names`) a VARIABLE column follows NAME (`-` where none is
/// recorded).
pub fn to_table_selected(
    container: &dyn Container,
    var_names: Option<&[Option<String>]>,
    shown: &[usize],
) -> String {
    let all = container.entries();
    let entries: Vec<(usize, &crate::source::Entry)> = shown
        .iter()
        .filter_map(|&i| Some((i, all.get(i)?)))
        .collect();
    let mut head = vec!["NAME", "DTYPE", "SHAPE", "BYTES", "LOCATION"];
    if var_names.is_some() {
        head.insert(1, "VARIABLE");
    }
    let right = head.iter().position(|&h| h == "BYTES");
    // Rows are made twice (widths, then lines) rather than held: memory stays at the
    // output text for indexes of millions of entries.
    let row = |k: usize| {
        let (i, e) = entries[k];
        {
            // Names come from the input: escaped, so they cannot forge rows.
            let mut row = vec![
                escape(&e.name).into_owned(),
                e.dtype.name().to_string(),
                shape_text(&e.shape),
                e.stored_bytes.to_string(),
                escape(&e.location.to_string()).into_owned(),
            ];
            if let Some(names) = var_names {
                let v = names.get(i).cloned().flatten();
                let v = v.map(|v| escape(&v).into_owned());
                row.insert(1, v.unwrap_or_else(|| "-".to_string()));
            }
            row
        }
    };
    let mut widths: Vec<usize> = head.iter().map(|h| h.len()).collect();
    for i in 0..entries.len() {
        for (w, c) in widths.iter_mut().zip(&row(i)) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[&str]| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            let pad = " ".repeat(widths[i].saturating_sub(c.chars().count()));
            if Some(i) == right {
                l.push_str(&pad);
                l.push_str(c);
            } else {
                l.push_str(c);
                l.push_str(&pad);
            }
            l.push_str("  ");
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&head);
    for i in 0..entries.len() {
        let r = row(i);
        let cells: Vec<&str> = r.iter().map(String::as_str).collect();
        line(&cells);
    }
    let elements: u64 = entries
        .iter()
        .map(|(_, e)| e.num_elements())
        .fold(0u64, u64::saturating_add);
    let bytes: u64 = entries.iter().map(|(_, e)| e.stored_bytes).sum();
    let of = if entries.len() == all.len() {
        String::new()
    } else {
        format!(" (of {})", all.len())
    };
    let which = resolved_checkpoint(container)
        .map(|c| format!(" {c}"))
        .unwrap_or_default();
    out.push_str(&format!(
        "{}{which}: {} tensors{of}, {} elements, {} bytes\n",
        container.kind(),
        entries.len(),
        elements,
        bytes
    ));
    out
}
