//! Keras 3 variable names (`dense/kernel`) for the datasets of a `.keras` archive's
//! weights, from its `config.json` (docs/formats/hdf5.md §7).
//!
//! Keras 3 stores a layer's variables as `vars/0`, `vars/1`, ... in the order its
//! `save_own_variables` writes them, and the `vars` group's `name` attribute is the
//! layer's name; the variable names themselves are not in the HDF5 file. The archive's
//! `config.json` holds each layer's class and configuration, which decide which
//! variables the layer's `build` creates: a table per Keras built-in class gives the
//! names in save order. The Keras name is the variable's `path` in the model Keras
//! loads from the archive: the name scopes open when the layer is built, then the
//! variable's name. Loading builds every layer listed in config.json as it is
//! deserialized, outside any scope (`dense/kernel`, also inside a Sequential or a
//! nested model); a layer built by its parent's `build` (an RNN's cell) is in the
//! parent's scope (`lstm/lstm_cell/kernel`). Anything the table does not cover keeps
//! `layer/index`, with one note per layer saying why.

use serde_json::Value;
use std::collections::HashMap;

/// A Keras 3 `vars` group holding datasets.
pub struct VarsGroup {
    /// The group's path with a trailing `/` (`layers/dense/vars/`).
    pub path: String,
    /// Its `name` attribute (the layer's name).
    pub name: String,
    /// The datasets' leaf names (`0`, `1`, ...).
    pub leaves: Vec<String>,
}

/// Keras names by dataset path, and notes on the layers that keep `layer/index`.
#[derive(Default)]
pub struct Named {
    /// `layers/dense/vars/0` → `dense/kernel`.
    pub names: HashMap<String, String>,
    /// One note per layer whose variables could not be named.
    pub notes: Vec<String>,
}

/// A layer configuration found in `config.json`.
struct Layer<'a> {
    class: &'a str,
    config: &'a Value,
}

/// Names the datasets of `groups` from `config` (`None`: the file has no config.json).
/// `vars_names` maps every `vars` group's path to its `name` attribute (parents of
/// sub-layers such as an LSTM's `cell` are looked up there).
pub fn name(
    config: Option<&Value>,
    groups: &[VarsGroup],
    vars_names: &HashMap<String, String>,
) -> Named {
    let mut out = Named::default();
    let groups: Vec<&VarsGroup> = groups
        .iter()
        .filter(|g| !g.leaves.is_empty() && !g.path.starts_with("optimizer/"))
        .collect();
    if groups.is_empty() {
        return out;
    }
    let Some(config) = config else {
        let mut layers: Vec<&str> = groups.iter().map(|g| g.name.as_str()).collect();
        layers.dedup();
        out.notes.push(format!(
            "the file has no config.json (only a .keras archive records the layers' classes): \
             Keras 3 layers {} keep `layer/index` names",
            quoted(&layers)
        ));
        return out;
    };
    let mut layers: HashMap<&str, Vec<Layer>> = HashMap::new();
    collect(config, 0, &mut layers);
    for g in groups {
        match name_group(g, &layers, vars_names) {
            Ok(names) => {
                for (leaf, n) in g.leaves.iter().zip(names) {
                    out.names.insert(format!("{}{leaf}", g.path), n);
                }
            }
            Err(why) => out.notes.push(format!(
                "layer `{}` (`{}`) keeps `{}/<index>` names: {why}",
                g.name,
                g.path.trim_end_matches('/'),
                g.name
            )),
        }
    }
    out
}

fn quoted(names: &[&str]) -> String {
    let q: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    q.join(", ")
}

/// Config trees deeper than this are not searched (no real model nests this deep).
const MAX_CONFIG_DEPTH: usize = 64;

/// Records every layer configuration in `node` and its nested models by name.
fn collect<'a>(node: &'a Value, depth: usize, out: &mut HashMap<&'a str, Vec<Layer<'a>>>) {
    if depth > MAX_CONFIG_DEPTH {
        return;
    }
    let (Some(class), Some(config)) = (
        node.get("class_name").and_then(Value::as_str),
        node.get("config"),
    ) else {
        return;
    };
    let Some(name) = config.get("name").and_then(Value::as_str) else {
        return;
    };
    out.entry(name).or_default().push(Layer { class, config });
    // A model's layers (Sequential, Functional, nested models): loading deserializes
    // each, and `deserialize_keras_object` builds it from its `build_config` right
    // away, before any parent opens a name scope (keras:src/saving/
    // serialization_lib.py `deserialize_keras_object`, `build_from_config`;
    // keras:src/layers/layer.py `Layer.__new__` `build_wrapper` opens the layer's own
    // scope). So their paths start with their own name.
    if let Some(children) = config.get("layers").and_then(Value::as_array) {
        for c in children {
            collect(c, depth + 1, out);
        }
    }
    // A Bidirectional's two RNN layers are in its config under their own names
    // (`forward_lstm`, `backward_lstm`; keras:src/layers/rnn/bidirectional.py
    // `__init__`, `get_config`), each deserialized, so built, on its own: their cells'
    // paths are `forward_lstm/lstm_cell/kernel` [exp: fixtures/keras/zoo.keras].
    if class == "Bidirectional" {
        for key in ["layer", "backward_layer"] {
            if let Some(c) = config.get(key) {
                collect(c, depth + 1, out);
            }
        }
    }
}

/// The Keras names of one group's datasets, in leaf order.
fn name_group(
    g: &VarsGroup,
    layers: &HashMap<&str, Vec<Layer>>,
    vars_names: &HashMap<String, String>,
) -> Result<Vec<String>, String> {
    // The datasets must be exactly `0`, `1`, ... (Layer.save_own_variables).
    let mut order = Vec::with_capacity(g.leaves.len());
    for leaf in &g.leaves {
        match leaf.parse::<usize>() {
            Ok(i) if i < g.leaves.len() && leaf == &i.to_string() => order.push(i),
            _ => return Err(format!("dataset `{leaf}` is not a save index")),
        }
    }
    let (scope, vars) = match layers.get(g.name.as_str()).map(Vec::as_slice) {
        Some([layer]) => (
            format!("{}/", g.name),
            variables(layer.class, layer.config)?,
        ),
        Some(many) if many.len() > 1 => {
            return Err(format!(
                "{} layers in config.json are named `{}`",
                many.len(),
                g.name
            ))
        }
        _ => sub_layer(g, layers, vars_names)?,
    };
    if vars.len() != g.leaves.len() {
        return Err(format!(
            "config.json says it has {} variables ({}), the file stores {}",
            vars.len(),
            vars.join(", "),
            g.leaves.len()
        ));
    }
    Ok(order
        .into_iter()
        .map(|i| format!("{scope}{}", vars[i]))
        .collect())
}

/// A layer that is not in config.json but is built by a parent layer that is: an RNN's
/// cell (`layers/lstm/cell/vars`), a MultiHeadAttention's projections
/// (`layers/multi_head_attention/query_dense/vars`). Returns the scope and variables.
fn sub_layer(
    g: &VarsGroup,
    layers: &HashMap<&str, Vec<Layer>>,
    vars_names: &HashMap<String, String>,
) -> Result<(String, Vec<&'static str>), String> {
    let missing = || format!("no layer in config.json is named `{}`", g.name);
    // `<parent>/<attribute>/vars/` → `<parent>/vars/`.
    let inner = g.path.strip_suffix("/vars/").ok_or_else(missing)?;
    let (parent_path, attr) = inner.rsplit_once('/').ok_or_else(missing)?;
    let parent_name = vars_names
        .get(&format!("{parent_path}/vars/"))
        .ok_or_else(missing)?;
    let Some([parent]) = layers.get(parent_name.as_str()).map(Vec::as_slice) else {
        return Err(missing());
    };
    let use_bias = flag(parent.config, "use_bias", true);
    let vars = match (parent.class, attr) {
        // keras:src/layers/rnn/{lstm,gru,simple_rnn}.py: the RNN layer passes its
        // use_bias to the cell, whose `build` adds kernel, recurrent_kernel, bias.
        ("LSTM" | "GRU" | "SimpleRNN", "cell") => {
            let mut v = vec!["kernel", "recurrent_kernel"];
            if use_bias {
                v.push("bias");
            }
            v
        }
        // keras:src/layers/attention/multi_head_attention.py `build`: four EinsumDense
        // layers (`query`, `key`, `value`, `attention_output`) with bias_axes only
        // when use_bias.
        ("MultiHeadAttention", "query_dense" | "key_dense" | "value_dense" | "output_dense") => {
            let mut v = vec!["kernel"];
            if use_bias {
                v.push("bias");
            }
            v
        }
        _ => return Err(missing()),
    };
    if quantized(parent.config) {
        return Err(format!("its parent `{parent_name}` is quantized"));
    }
    Ok((format!("{parent_name}/{}/", g.name), vars))
}

/// A boolean config entry, `default` when absent.
fn flag(config: &Value, key: &str, default: bool) -> bool {
    config.get(key).and_then(Value::as_bool).unwrap_or(default)
}

/// Whether the layer's weights are stored quantized (other variables than its float
/// ones: keras:src/layers/core/dense.py `variable_serialization_spec`).
fn quantized(config: &Value) -> bool {
    if config
        .get("quantization_config")
        .is_some_and(|q| !q.is_null())
    {
        return true;
    }
    let policy = match config.get("dtype") {
        Some(Value::String(s)) => s.as_str(),
        Some(Value::Object(o)) => {
            let class = o.get("class_name").and_then(Value::as_str).unwrap_or("");
            if !matches!(class, "DTypePolicy" | "FloatDTypePolicy") {
                return true;
            }
            o.get("config")
                .and_then(|c| c.get("name"))
                .and_then(Value::as_str)
                .unwrap_or("")
        }
        _ => "",
    };
    ["int8", "int4", "float8", "gptq", "awq"]
        .iter()
        .any(|q| policy.contains(q))
}

/// The variables a Keras built-in layer of `class` with `config` saves, in the order of
/// its `save_own_variables` (by default `Layer.save_own_variables`: trainable variables,
/// then non-trainable ones, each in the order `build` adds them; keras:src/layers/
/// layer.py). Classes without weights or not covered are an error saying so.
fn variables(class: &str, config: &Value) -> Result<Vec<&'static str>, String> {
    if quantized(config) {
        return Err("it is quantized (its saved variables depend on the mode)".into());
    }
    let bias = |on: bool, mut v: Vec<&'static str>| {
        if on {
            v.push("bias");
        }
        v
    };
    let use_bias = flag(config, "use_bias", true);
    let scale = flag(config, "scale", true);
    let center = flag(config, "center", true);
    Ok(match class {
        // keras:src/layers/core/dense.py `build`, `save_own_variables`.
        "Dense" => bias(use_bias, vec!["kernel"]),
        // keras:src/layers/core/einsum_dense.py: a bias only for `bias_axes`.
        "EinsumDense" => bias(
            config.get("bias_axes").is_some_and(|b| !b.is_null()),
            vec!["kernel"],
        ),
        // keras:src/layers/core/embedding.py `build`, `save_own_variables`.
        "Embedding" => vec!["embeddings"],
        // keras:src/layers/convolutional/base_conv.py and base_conv_transpose.py.
        "Conv1D" | "Conv2D" | "Conv3D" | "Conv1DTranspose" | "Conv2DTranspose"
        | "Conv3DTranspose" => bias(use_bias, vec!["kernel"]),
        // keras:src/layers/convolutional/base_depthwise_conv.py: the depthwise kernel
        // is a variable named `kernel`.
        "DepthwiseConv1D" | "DepthwiseConv2D" => bias(use_bias, vec!["kernel"]),
        // keras:src/layers/convolutional/base_separable_conv.py.
        "SeparableConv1D" | "SeparableConv2D" => {
            bias(use_bias, vec!["depthwise_kernel", "pointwise_kernel"])
        }
        // keras:src/layers/normalization/batch_normalization.py `build`: gamma
        // (scale), beta (center) trainable; moving_mean, moving_variance not; renorm
        // adds more.
        "BatchNormalization" => {
            if flag(config, "renorm", false) {
                return Err("renorm adds variables tf2npy has no table for".into());
            }
            let mut v = Vec::new();
            if scale {
                v.push("gamma");
            }
            if center {
                v.push("beta");
            }
            v.extend(["moving_mean", "moving_variance"]);
            v
        }
        // keras:src/layers/normalization/layer_normalization.py `build`: gamma when
        // scale or rms_scaling, beta when center and not rms_scaling.
        "LayerNormalization" => {
            let rms = flag(config, "rms_scaling", false);
            let mut v = Vec::new();
            if scale || rms {
                v.push("gamma");
            }
            if center && !rms {
                v.push("beta");
            }
            v
        }
        // keras:src/layers/normalization/group_normalization.py `build`.
        "GroupNormalization" => {
            let mut v = Vec::new();
            if scale {
                v.push("gamma");
            }
            if center {
                v.push("beta");
            }
            v
        }
        // keras:src/layers/normalization/rms_normalization.py `build`.
        "RMSNormalization" => vec!["scale"],
        // keras:src/layers/activations/prelu.py `build`.
        "PReLU" => vec!["alpha"],
        other => return Err(format!("tf2npy has no variable table for class `{other}`")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn group(path: &str, name: &str, n: usize) -> VarsGroup {
        VarsGroup {
            path: path.into(),
            name: name.into(),
            leaves: (0..n).map(|i| i.to_string()).collect(),
        }
    }

    #[test]
    fn a_count_other_than_the_table_keeps_the_index_with_one_note() {
        let config = json!({"class_name": "Functional", "config": {"name": "m", "layers": [
            {"class_name": "Dense", "config": {"name": "d", "use_bias": false}}]}});
        let named = name(
            Some(&config),
            &[group("layers/dense/vars/", "d", 2)],
            &HashMap::new(),
        );
        assert!(named.names.is_empty());
        assert_eq!(named.notes.len(), 1, "{:?}", named.notes);
        assert!(named.notes[0].contains("`d`") && named.notes[0].contains("stores 2"));
    }

    #[test]
    fn ambiguous_unknown_and_quantized_layers_keep_the_index() {
        let config = json!({"class_name": "Sequential", "config": {"name": "s", "layers": [
            {"class_name": "Dense", "config": {"name": "a"}},
            {"class_name": "Sequential", "config": {"name": "t", "layers": [
                {"class_name": "Dense", "config": {"name": "a"}},
                {"class_name": "Dense", "config": {"name": "q", "dtype": {
                    "class_name": "QuantizedDTypePolicy", "config": {"name": "int8_from_float32"}}}},
                {"class_name": "MyLayer", "config": {"name": "c"}},
                {"class_name": "Dense", "config": {"name": "ok"}}]}}]}});
        let named = name(
            Some(&config),
            &[
                group("layers/dense/vars/", "a", 2),
                group("layers/sequential/layers/dense_1/vars/", "q", 3),
                group("layers/sequential/layers/my_layer/vars/", "c", 1),
                group("layers/sequential/layers/dense_2/vars/", "ok", 2),
                group("layers/x/vars/", "absent", 1),
                group("optimizer/vars/", "adam", 3),
            ],
            &HashMap::new(),
        );
        assert_eq!(named.notes.len(), 4, "{:?}", named.notes);
        for (i, why) in ["2 layers", "quantized", "class `MyLayer`", "no layer"]
            .iter()
            .enumerate()
        {
            assert!(named.notes[i].contains(why), "{:?}", named.notes);
        }
        assert_eq!(named.names.len(), 2);
        assert_eq!(
            named.names["layers/sequential/layers/dense_2/vars/1"],
            "ok/bias"
        );
    }

    #[test]
    fn no_config_is_one_note_and_leaves_are_save_indices() {
        let named = name(
            None,
            &[group("a/vars/", "a", 1), group("b/vars/", "b", 1)],
            &HashMap::new(),
        );
        assert_eq!(named.notes.len(), 1);
        assert!(named.notes[0].contains("`a`, `b`"));
        let config = json!({"class_name": "Dense", "config": {"name": "d"}});
        let mut g = group("vars/", "d", 2);
        g.leaves[1] = "01".into();
        let named = name(Some(&config), &[g], &HashMap::new());
        assert!(named.notes[0].contains("`01`"), "{:?}", named.notes);
    }
}
