//! `--list` output: a table for people, or a JSON array for scripts.

use crate::source::Container;

fn shape_text(shape: &[u64]) -> String {
    let dims: Vec<String> = shape.iter().map(u64::to_string).collect();
    format!("[{}]", dims.join(", "))
}

/// The JSON array `[{"name","dtype","shape","bytes","location","hidden"}, ...]`, where
/// `dtype` is TensorFlow's dtype name and `bytes` the stored payload size. With
/// `var_names` (`--var-names`, one per entry) each item also has `"var_name"`: the
/// recorded variable name, or `null`.
pub fn to_json(container: &dyn Container, var_names: Option<&[Option<String>]>) -> String {
    let items: Vec<serde_json::Value> = container
        .entries()
        .iter()
        .enumerate()
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
    let mut s = serde_json::to_string_pretty(&items).unwrap_or_else(|_| "[]".to_string());
    s.push('\n');
    s
}

/// A human-readable table with one row per tensor and a totals line. With `var_names`
/// (`--var-names`) a VARIABLE column follows NAME (`-` where none is recorded).
pub fn to_table(container: &dyn Container, var_names: Option<&[Option<String>]>) -> String {
    let entries = container.entries();
    let mut head = vec!["NAME", "DTYPE", "SHAPE", "BYTES", "LOCATION"];
    if var_names.is_some() {
        head.insert(1, "VARIABLE");
    }
    let right = head.iter().position(|&h| h == "BYTES");
    // Rows are made twice (widths, then lines) rather than held: memory stays at the
    // output text for indexes of millions of entries.
    let row = |i: usize| {
        let e = &entries[i];
        {
            let mut row = vec![
                e.name.clone(),
                e.dtype.name().to_string(),
                shape_text(&e.shape),
                e.stored_bytes.to_string(),
                e.location.to_string(),
            ];
            if let Some(names) = var_names {
                let v = names.get(i).cloned().flatten();
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
        .map(|e| e.num_elements())
        .fold(0u64, u64::saturating_add);
    let bytes: u64 = entries.iter().map(|e| e.stored_bytes).sum();
    out.push_str(&format!(
        "{}: {} tensors, {} elements, {} bytes\n",
        container.kind(),
        entries.len(),
        elements,
        bytes
    ));
    out
}
