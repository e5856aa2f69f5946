//! `vary:` on a check: one check per combination of the listed values, so a
//! matrix probed over TCP and UDP on two ports is written once. Expanded in
//! the YAML document before it is typed; `Origin` maps an expanded check back
//! to the check in the file for error messages.

use serde_yaml::{Mapping, Value};

/// Where an expanded check came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// Index of the check in the file.
    pub index: usize,
    /// `protocol=udp, port=80`; empty for a check without `vary`.
    pub combination: String,
}

/// A `vary` that cannot be expanded: the field (a path like `checks[2].vary`)
/// and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VaryError {
    pub field: String,
    pub message: String,
}

/// True if some check of the document has `vary`.
pub fn has_vary(doc: &Value) -> bool {
    doc.get("checks")
        .and_then(Value::as_sequence)
        .is_some_and(|checks| checks.iter().any(|c| c.get("vary").is_some()))
}

/// Replaces every check that has `vary` by its combinations (first key
/// outermost, values in the order given) and returns each resulting check's
/// origin. `name` must mention every varied key as `{key}`; it becomes the
/// name with the values filled in.
pub fn expand_vary(doc: &mut Value) -> Result<Vec<Origin>, VaryError> {
    let Some(checks) = doc.get_mut("checks").and_then(Value::as_sequence_mut) else {
        return Ok(vec![]);
    };
    let mut expanded = Vec::new();
    let mut origins = Vec::new();
    for (index, check) in std::mem::take(checks).into_iter().enumerate() {
        let at = format!("checks[{index}]");
        let Some(vary) = check.get("vary").cloned() else {
            expanded.push(check);
            origins.push(Origin {
                index,
                combination: String::new(),
            });
            continue;
        };
        let axes = axes(&vary, &at)?;
        let name = check
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| VaryError {
                field: format!("{at}.name"),
                message: "a check with `vary` needs a name".into(),
            })?
            .to_string();
        for (key, _) in &axes {
            if !name.contains(&format!("{{{key}}}")) {
                return Err(VaryError {
                    field: format!("{at}.name"),
                    message: format!(
                        "`{name}` must contain `{{{key}}}` so that the varied checks get different names"
                    ),
                });
            }
            if check.get(key.as_str()).is_some() {
                return Err(VaryError {
                    field: format!("{at}.{key}"),
                    message: format!("`{key}` is set both here and in `vary`"),
                });
            }
        }
        for combination in product(&axes) {
            let mut one: Mapping = check.as_mapping().cloned().unwrap_or_default();
            one.remove("vary");
            let mut one_name = name.clone();
            let mut label = Vec::new();
            for (key, value) in &combination {
                let text = scalar_text(value);
                one_name = one_name.replace(&format!("{{{key}}}"), &text);
                label.push(format!("{key}={text}"));
                one.insert(Value::String(key.clone()), value.clone());
            }
            one.insert("name".into(), Value::String(one_name));
            expanded.push(Value::Mapping(one));
            origins.push(Origin {
                index,
                combination: label.join(", "),
            });
        }
    }
    *checks = expanded;
    Ok(origins)
}

/// The varied keys with their values, checked: a mapping of non-empty lists of scalars.
fn axes(vary: &Value, at: &str) -> Result<Vec<(String, Vec<Value>)>, VaryError> {
    let error = |field: String, message: &str| VaryError {
        field,
        message: message.into(),
    };
    let map = vary.as_mapping().ok_or_else(|| {
        error(
            format!("{at}.vary"),
            "must map field names to lists of values, e.g. {protocol: [tcp, udp], port: [80, 81]}",
        )
    })?;
    let mut axes = Vec::new();
    for (key, values) in map {
        let key = key
            .as_str()
            .ok_or_else(|| error(format!("{at}.vary"), "keys must be field names"))?;
        if matches!(key, "name" | "vary") {
            return Err(error(format!("{at}.vary.{key}"), "cannot be varied"));
        }
        let values = values
            .as_sequence()
            .filter(|v| !v.is_empty())
            .ok_or_else(|| error(format!("{at}.vary.{key}"), "must be a non-empty list"))?;
        if let Some(i) = values
            .iter()
            .position(|v| matches!(v, Value::Sequence(_) | Value::Mapping(_) | Value::Null))
        {
            return Err(error(
                format!("{at}.vary.{key}[{i}]"),
                "must be a single value (a string, number or boolean)",
            ));
        }
        axes.push((key.to_string(), values.clone()));
    }
    if axes.is_empty() {
        return Err(error(format!("{at}.vary"), "names no field to vary"));
    }
    Ok(axes)
}

fn product(axes: &[(String, Vec<Value>)]) -> Vec<Vec<(String, Value)>> {
    let mut out: Vec<Vec<(String, Value)>> = vec![vec![]];
    for (key, values) in axes {
        out = out
            .into_iter()
            .flat_map(|prefix| {
                values.iter().map(move |v| {
                    let mut next = prefix.clone();
                    next.push((key.clone(), v.clone()));
                    next
                })
            })
            .collect();
    }
    out
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(doc: &Value) -> Vec<String> {
        doc["checks"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn every_combination_becomes_a_check_named_after_its_values() {
        let mut doc: Value = serde_yaml::from_str(
            "checks:\n  - {name: plain, protocol: tcp}\n  - {name: '{protocol}-{port}', from: '*', vary: {protocol: [tcp, udp], port: [80, 81]}}\n",
        )
        .unwrap();
        let origins = expand_vary(&mut doc).unwrap();
        assert_eq!(
            names(&doc),
            ["plain", "tcp-80", "tcp-81", "udp-80", "udp-81"]
        );
        assert_eq!(doc["checks"][4]["protocol"], Value::from("udp"));
        assert_eq!(doc["checks"][4]["port"], Value::from(81));
        assert_eq!(doc["checks"][4]["from"], Value::from("*"));
        assert!(doc["checks"][4].get("vary").is_none());
        assert_eq!(
            origins[3],
            Origin {
                index: 1,
                combination: "protocol=udp, port=80".into()
            }
        );
    }

    #[rstest::rstest]
    #[case::name_without_placeholder("{name: m, vary: {port: [80]}}", "checks[0].name")]
    #[case::set_twice("{name: '{port}', port: 80, vary: {port: [80]}}", "checks[0].port")]
    #[case::empty_list("{name: '{port}', vary: {port: []}}", "checks[0].vary.port")]
    #[case::list_value("{name: '{port}', vary: {port: [[80]]}}", "checks[0].vary.port[0]")]
    #[case::not_a_map("{name: m, vary: [port]}", "checks[0].vary")]
    fn a_bad_vary_names_its_field(#[case] check: &str, #[case] field: &str) {
        let mut doc: Value = serde_yaml::from_str(&format!("checks:\n  - {check}\n")).unwrap();
        assert_eq!(expand_vary(&mut doc).unwrap_err().field, field);
    }
}
