//! `--list` output: a table for people, or a JSON array for scripts.

use crate::source::Container;

fn shape_text(shape: &[u64]) -> String {
    let dims: Vec<String> = shape.iter().map(u64::to_string).collect();
    format!("[{}]", dims.join(", "))
}

/// The JSON array `[{"name","dtype","shape","bytes","location","hidden"}, ...]`, where
/// `dtype` is TensorFlow's dtype name and `bytes` the stored payload size.
pub fn to_json(container: &dyn Container) -> String {
    let items: Vec<serde_json::Value> = container
        .entries()
        .iter()
        .map(|e| {
            serde_json::json!({
                "name": e.name,
                "dtype": e.dtype.name(),
                "shape": e.shape,
                "bytes": e.stored_bytes,
                "location": e.location,
                "hidden": e.hidden,
            })
        })
        .collect();
    let mut s = serde_json::to_string_pretty(&items).unwrap_or_else(|_| "[]".to_string());
    s.push('\n');
    s
}

/// A human-readable table with one row per tensor and a totals line.
pub fn to_table(container: &dyn Container) -> String {
    let entries = container.entries();
    let rows: Vec<[String; 5]> = entries
        .iter()
        .map(|e| {
            [
                e.name.clone(),
                e.dtype.name().to_string(),
                shape_text(&e.shape),
                e.stored_bytes.to_string(),
                e.location.clone(),
            ]
        })
        .collect();
    let head = ["NAME", "DTYPE", "SHAPE", "BYTES", "LOCATION"];
    let mut widths = head.map(str::len);
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: [&str; 5]| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            let pad = widths[i].saturating_sub(c.chars().count());
            if i == 3 {
                l.push_str(&" ".repeat(pad));
                l.push_str(c);
            } else {
                l.push_str(c);
                if i < 4 {
                    l.push_str(&" ".repeat(pad));
                }
            }
            if i < 4 {
                l.push_str("  ");
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(head);
    for r in &rows {
        line([&r[0], &r[1], &r[2], &r[3], &r[4]]);
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
