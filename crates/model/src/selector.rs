use std::collections::BTreeMap;

/// Labels of a pod or namespace, ordered so equal label sets compare and hash alike.
pub type Labels = BTreeMap<String, String>;

/// A validated `metav1.LabelSelector`. The empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LabelSelector {
    pub match_labels: Labels,
    pub match_expressions: Vec<Requirement>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Requirement {
    pub key: String,
    pub operator: Operator,
    pub values: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Operator {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

impl Operator {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "In" => Self::In,
            "NotIn" => Self::NotIn,
            "Exists" => Self::Exists,
            "DoesNotExist" => Self::DoesNotExist,
            _ => return None,
        })
    }
}

impl LabelSelector {
    pub fn is_empty(&self) -> bool {
        self.match_labels.is_empty() && self.match_expressions.is_empty()
    }

    /// "The requirements are ANDed" (LabelSelector API reference); an empty selector selects all.
    pub fn matches(&self, labels: &Labels) -> bool {
        self.match_labels.iter().all(|(k, v)| labels.get(k) == Some(v)) && self.match_expressions.iter().all(|r| r.matches(labels))
    }
}

impl Requirement {
    pub fn matches(&self, labels: &Labels) -> bool {
        let value = labels.get(&self.key);
        match self.operator {
            Operator::In => value.is_some_and(|v| self.values.contains(v)),
            // NotIn also selects objects that do not have the key at all.
            Operator::NotIn => value.is_none_or(|v| !self.values.contains(v)),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
        }
    }
}

impl std::fmt::Display for LabelSelector {
    /// The `kubectl get -l` syntax, e.g. `app=web,tier in (a,b),!legacy`; `{}` for empty.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_empty() {
            return f.write_str("{}");
        }
        let mut parts: Vec<String> = self.match_labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        for r in &self.match_expressions {
            parts.push(match r.operator {
                Operator::In => format!("{} in ({})", r.key, r.values.join(",")),
                Operator::NotIn => format!("{} notin ({})", r.key, r.values.join(",")),
                Operator::Exists => r.key.clone(),
                Operator::DoesNotExist => format!("!{}", r.key),
            });
        }
        f.write_str(&parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn expr(key: &str, operator: Operator, values: &[&str]) -> LabelSelector {
        LabelSelector {
            match_labels: Labels::new(),
            match_expressions: vec![Requirement { key: key.into(), operator, values: values.iter().map(|v| v.to_string()).collect() }],
        }
    }

    #[test]
    fn empty_selector_selects_everything() {
        // "An empty podSelector selects all pods in the namespace." (NetworkPolicy concepts)
        assert!(LabelSelector::default().matches(&labels(&[])));
        assert!(LabelSelector::default().matches(&labels(&[("a", "b")])));
    }

    #[test]
    fn match_labels_and_expressions_are_anded() {
        // "matchLabels and matchExpressions are ANDed." (Labels and Selectors)
        let mut s = expr("tier", Operator::In, &["a", "b"]);
        s.match_labels.insert("app".into(), "web".into());
        assert!(s.matches(&labels(&[("app", "web"), ("tier", "a")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("tier", "c")])));
        assert!(!s.matches(&labels(&[("app", "db"), ("tier", "a")])));
    }

    #[test]
    fn operators() {
        let l = labels(&[("env", "prod")]);
        assert!(expr("env", Operator::In, &["prod", "qa"]).matches(&l));
        assert!(!expr("env", Operator::In, &["qa"]).matches(&l));
        assert!(!expr("env", Operator::NotIn, &["prod"]).matches(&l));
        // "NotIn ... also selects resources that do not have the key" (Labels and Selectors)
        assert!(expr("tier", Operator::NotIn, &["x"]).matches(&l));
        assert!(expr("env", Operator::Exists, &[]).matches(&l));
        assert!(!expr("tier", Operator::Exists, &[]).matches(&l));
        assert!(expr("tier", Operator::DoesNotExist, &[]).matches(&l));
        assert!(!expr("env", Operator::DoesNotExist, &[]).matches(&l));
    }

    #[test]
    fn display_uses_kubectl_syntax() {
        let mut s = expr("tier", Operator::NotIn, &["a", "b"]);
        s.match_labels.insert("app".into(), "web".into());
        assert_eq!(s.to_string(), "app=web,tier notin (a,b)");
        assert_eq!(LabelSelector::default().to_string(), "{}");
    }
}
