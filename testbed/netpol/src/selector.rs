//! Kubernetes label selectors (matchLabels + matchExpressions).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use std::collections::BTreeMap;

/// Does `selector` select an object with `labels`? An empty selector selects all.
pub fn matches(selector: &LabelSelector, labels: Option<&BTreeMap<String, String>>) -> bool {
    let empty = BTreeMap::new();
    let labels = labels.unwrap_or(&empty);
    let by_labels = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let by_expressions = selector.match_expressions.iter().flatten().all(|req| {
        let value = labels.get(&req.key);
        let values = req.values.as_deref().unwrap_or_default();
        match req.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            // An operator this enforcer does not know selects nothing (fail closed).
            _ => false,
        }
    });
    by_labels && by_expressions
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn selector(json: serde_json::Value) -> LabelSelector {
        serde_json::from_value(json).unwrap()
    }

    #[rstest]
    #[case(serde_json::json!({}), &[], true)]
    #[case(serde_json::json!({"matchLabels": {"app": "a"}}), &[("app", "a")], true)]
    #[case(serde_json::json!({"matchLabels": {"app": "a"}}), &[("app", "b")], false)]
    #[case(serde_json::json!({"matchExpressions": [{"key": "app", "operator": "In", "values": ["a", "b"]}]}), &[("app", "b")], true)]
    #[case(serde_json::json!({"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["a"]}]}), &[], true)]
    #[case(serde_json::json!({"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["a"]}]}), &[("app", "a")], false)]
    #[case(serde_json::json!({"matchExpressions": [{"key": "app", "operator": "Exists"}]}), &[], false)]
    #[case(serde_json::json!({"matchExpressions": [{"key": "app", "operator": "DoesNotExist"}]}), &[], true)]
    #[case(serde_json::json!({"matchExpressions": [{"key": "app", "operator": "Bogus"}]}), &[("app", "a")], false)]
    fn selects(#[case] sel: serde_json::Value, #[case] pod: &[(&str, &str)], #[case] want: bool) {
        assert_eq!(matches(&selector(sel), Some(&labels(pod))), want);
    }
}
