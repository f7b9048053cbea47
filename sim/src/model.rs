//! Request validation driven by the DRS API model (`model/drs-service-2.json`, embedded and
//! parsed once). Nothing here retypes a constraint: required members, list and map sizes,
//! string lengths, patterns and enums, and integer bounds all come from the model's shapes.
//!
//! Two choices the model does not make for us:
//! - patterns are anchored (a full match), as the brief for this simulator asks; Smithy's own
//!   `pattern` is an unanchored search, but every DRS id pattern is meant as a whole id;
//! - a violation inside a list or map is reported under the member's name without an index
//!   (`recoveryInstanceIDs`, `filters.recoveryInstanceIDs`); the message carries the index and
//!   the value, except for sensitive shapes (tags), whose values are never echoed.

use std::collections::HashMap;
use std::sync::OnceLock;

use regex_lite::Regex;
use serde_json::Value;

const MODEL_JSON: &str = include_str!("../model/drs-service-2.json");

/// The embedded model, parsed on first use. It is a build input, not user input: a model that
/// does not parse is a bug caught by this crate's tests.
pub(crate) fn model() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| match Model::parse(MODEL_JSON) {
        Ok(m) => m,
        Err(e) => panic!("embedded DRS model: {e}"),
    })
}

/// The raw model text, for the byte-for-byte copy check.
pub fn embedded_model() -> &'static str {
    MODEL_JSON
}

/// Checks one string against a named string shape (e.g. `RecoveryInstanceID`).
pub(crate) fn check_value(shape: &str, value: &str) -> Result<(), String> {
    let mut out = Vec::new();
    model().walk(
        shape,
        &Value::String(value.to_owned()),
        "",
        "value",
        false,
        &mut out,
    );
    match out.into_iter().next() {
        None => Ok(()),
        Some(v) => Err(v.message),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Violation {
    /// Dotted member path without list indexes, e.g. `filters.recoveryInstanceIDs`.
    pub field: String,
    pub message: String,
    /// The value had the wrong JSON type: the request cannot be read, not merely out of bounds.
    pub unparseable: bool,
}

#[derive(Debug)]
pub(crate) struct Model {
    shapes: HashMap<String, Shape>,
    inputs: HashMap<String, String>,
}

#[derive(Debug)]
struct Shape {
    kind: Kind,
    sensitive: bool,
}

#[derive(Debug)]
enum Kind {
    Structure {
        members: Vec<(String, String)>,
        required: Vec<String>,
        union: bool,
    },
    List {
        member: String,
        min: Option<u64>,
        max: Option<u64>,
    },
    Map {
        key: String,
        value: String,
        min: Option<u64>,
        max: Option<u64>,
    },
    String {
        min: Option<u64>,
        max: Option<u64>,
        pattern: Option<(String, Regex)>,
        enums: Option<Vec<String>>,
    },
    Integer {
        min: Option<i64>,
        max: Option<i64>,
    },
    Boolean,
    /// Shapes no operation here takes as input (timestamps, blobs, floats): not checked.
    Other,
}

impl Model {
    pub(crate) fn parse(json: &str) -> Result<Model, String> {
        let root: Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
        let shapes_json = root["shapes"].as_object().ok_or("no shapes")?;
        let mut shapes = HashMap::with_capacity(shapes_json.len());
        for (name, s) in shapes_json {
            shapes.insert(name.clone(), Shape::parse(name, s)?);
        }
        let mut inputs = HashMap::new();
        for (name, op) in root["operations"].as_object().ok_or("no operations")? {
            if let Some(input) = op["input"]["shape"].as_str() {
                if !shapes.contains_key(input) {
                    return Err(format!("operation {name}: unknown input shape {input}"));
                }
                inputs.insert(name.clone(), input.to_owned());
            }
        }
        let model = Model { shapes, inputs };
        model.check_references()?;
        Ok(model)
    }

    fn check_references(&self) -> Result<(), String> {
        for (name, shape) in &self.shapes {
            let refs: Vec<&String> = match &shape.kind {
                Kind::Structure { members, .. } => members.iter().map(|(_, s)| s).collect(),
                Kind::List { member, .. } => vec![member],
                Kind::Map { key, value, .. } => vec![key, value],
                _ => vec![],
            };
            if let Some(missing) = refs.into_iter().find(|r| !self.shapes.contains_key(*r)) {
                return Err(format!("shape {name} refers to unknown shape {missing}"));
            }
        }
        Ok(())
    }

    #[cfg(test)]
    pub(crate) fn has_operation(&self, operation: &str) -> bool {
        self.inputs.contains_key(operation)
    }

    /// Every constraint the operation's input violates (empty when valid).
    pub(crate) fn validate(&self, operation: &str, input: &Value) -> Vec<Violation> {
        let mut out = Vec::new();
        match self.inputs.get(operation) {
            Some(shape) => self.walk(shape, input, "", "", false, &mut out),
            None => out.push(Violation {
                field: String::new(),
                message: format!("unknown operation {operation}"),
                unparseable: true,
            }),
        }
        out
    }

    fn walk(
        &self,
        name: &str,
        value: &Value,
        field: &str,
        loc: &str,
        sensitive: bool,
        out: &mut Vec<Violation>,
    ) {
        let Some(shape) = self.shapes.get(name) else {
            return;
        };
        let sensitive = sensitive || shape.sensitive;
        let shown = || describe(value, sensitive);
        let mut fail = |message: String, unparseable: bool| {
            let at = if loc.is_empty() {
                "the request".to_owned()
            } else {
                format!("'{loc}'")
            };
            out.push(Violation {
                field: field.to_owned(),
                message: format!(
                    "Value {} at {at} failed to satisfy constraint: {message}",
                    shown()
                ),
                unparseable,
            });
        };
        match &shape.kind {
            Kind::Structure {
                members,
                required,
                union,
            } => {
                let Some(obj) = value.as_object() else {
                    return fail("Member must be a structure".into(), true);
                };
                for req in required {
                    if obj.get(req).is_none_or(Value::is_null) {
                        out.push(Violation {
                            field: join(field, req),
                            message: format!("Value null at '{}' failed to satisfy constraint: Member must not be null", join(loc, req)),
                            unparseable: false,
                        });
                    }
                }
                let mut set = 0;
                for (member, target) in members {
                    if let Some(v) = obj.get(member).filter(|v| !v.is_null()) {
                        set += 1;
                        self.walk(
                            target,
                            v,
                            &join(field, member),
                            &join(loc, member),
                            sensitive,
                            out,
                        );
                    }
                }
                if *union && set > 1 {
                    out.push(Violation {
                        field: field.to_owned(),
                        message: format!("Value at '{loc}' failed to satisfy constraint: Only one member of the union may be set"),
                        unparseable: false,
                    });
                }
            }
            Kind::List { member, min, max } => {
                let Some(items) = value.as_array() else {
                    return fail("Member must be a list".into(), true);
                };
                if let Some(m) = length_violation(items.len(), *min, *max) {
                    fail(m, false);
                }
                for (i, item) in items.iter().enumerate() {
                    self.walk(member, item, field, &format!("{loc}.{i}"), sensitive, out);
                }
            }
            Kind::Map {
                key,
                value: value_shape,
                min,
                max,
            } => {
                let Some(entries) = value.as_object() else {
                    return fail("Member must be a map".into(), true);
                };
                if let Some(m) = length_violation(entries.len(), *min, *max) {
                    fail(m, false);
                }
                for (k, v) in entries {
                    self.walk(
                        key,
                        &Value::String(k.clone()),
                        field,
                        &format!("{loc}.key"),
                        sensitive,
                        out,
                    );
                    self.walk(
                        value_shape,
                        v,
                        field,
                        &format!("{loc}.value"),
                        sensitive,
                        out,
                    );
                }
            }
            Kind::String {
                min,
                max,
                pattern,
                enums,
            } => {
                let Some(s) = value.as_str() else {
                    return fail("Member must be a string".into(), true);
                };
                if let Some(m) = length_violation(s.chars().count(), *min, *max) {
                    fail(m, false);
                } else if let Some((text, _)) = pattern.as_ref().filter(|(_, re)| !re.is_match(s)) {
                    fail(
                        format!("Member must satisfy regular expression pattern: {text}"),
                        false,
                    );
                } else if let Some(allowed) = enums.as_ref().filter(|e| !e.iter().any(|a| a == s)) {
                    fail(
                        format!(
                            "Member must satisfy enum value set: [{}]",
                            allowed.join(", ")
                        ),
                        false,
                    );
                }
            }
            Kind::Integer { min, max } => {
                let Some(n) = value.as_i64() else {
                    return fail("Member must be an integer".into(), true);
                };
                if let Some(lo) = min.filter(|lo| n < *lo) {
                    fail(
                        format!("Member must have value greater than or equal to {lo}"),
                        false,
                    );
                } else if let Some(hi) = max.filter(|hi| n > *hi) {
                    fail(
                        format!("Member must have value less than or equal to {hi}"),
                        false,
                    );
                }
            }
            Kind::Boolean => {
                if !value.is_boolean() {
                    fail("Member must be a boolean".into(), true);
                }
            }
            Kind::Other => {}
        }
    }
}

impl Shape {
    fn parse(name: &str, s: &Value) -> Result<Shape, String> {
        let target = |key: &str| -> Result<String, String> {
            s[key]["shape"]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| format!("shape {name}: no {key} target"))
        };
        let uint = |key: &str| s[key].as_u64();
        let kind = match s["type"].as_str().unwrap_or_default() {
            "structure" => Kind::Structure {
                members: s["members"]
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| {
                                Ok((
                                    k.clone(),
                                    v["shape"]
                                        .as_str()
                                        .ok_or(format!("{name}.{k}: no shape"))?
                                        .to_owned(),
                                ))
                            })
                            .collect::<Result<_, String>>()
                    })
                    .transpose()?
                    .unwrap_or_default(),
                required: s["required"]
                    .as_array()
                    .map(|r| {
                        r.iter()
                            .filter_map(|v| v.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default(),
                union: s["union"].as_bool().unwrap_or(false),
            },
            "list" => Kind::List {
                member: target("member")?,
                min: uint("min"),
                max: uint("max"),
            },
            "map" => Kind::Map {
                key: target("key")?,
                value: target("value")?,
                min: uint("min"),
                max: uint("max"),
            },
            "string" => Kind::String {
                min: uint("min"),
                max: uint("max"),
                pattern: s["pattern"]
                    .as_str()
                    .map(|p| {
                        Regex::new(&format!("^(?:{p})$"))
                            .map(|re| (p.to_owned(), re))
                            .map_err(|e| format!("shape {name}: pattern {p:?}: {e}"))
                    })
                    .transpose()?,
                enums: s["enum"].as_array().map(|e| {
                    e.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                }),
            },
            "integer" | "long" => Kind::Integer {
                min: s["min"].as_i64(),
                max: s["max"].as_i64(),
            },
            "boolean" => Kind::Boolean,
            _ => Kind::Other,
        };
        Ok(Shape {
            kind,
            sensitive: s["sensitive"].as_bool().unwrap_or(false),
        })
    }
}

fn join(a: &str, b: &str) -> String {
    if a.is_empty() {
        b.to_owned()
    } else {
        format!("{a}.{b}")
    }
}

fn length_violation(len: usize, min: Option<u64>, max: Option<u64>) -> Option<String> {
    let len = len as u64;
    if let Some(lo) = min.filter(|lo| len < *lo) {
        Some(format!(
            "Member must have length greater than or equal to {lo}"
        ))
    } else {
        max.filter(|hi| len > *hi)
            .map(|hi| format!("Member must have length less than or equal to {hi}"))
    }
}

fn describe(value: &Value, sensitive: bool) -> String {
    match value {
        _ if sensitive => "(sensitive)".to_owned(),
        Value::String(s) => {
            let short: String = s.chars().take(64).collect();
            let more = if short.len() < s.len() { "…" } else { "" };
            format!("'{short}{more}'")
        }
        Value::Array(a) => format!("({} items)", a.len()),
        Value::Object(o) => format!("({} entries)", o.len()),
        other => format!("'{other}'"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn embedded_model_parses_with_every_pattern() {
        let m = model();
        for op in [
            "StartFailbackLaunch",
            "DescribeRecoveryInstances",
            "DescribeJobs",
            "DescribeJobLogItems",
        ] {
            assert!(m.has_operation(op), "{op}");
        }
    }

    #[test]
    fn start_failback_launch_constraints_come_from_the_model() {
        let m = model();
        let ok = json!({"recoveryInstanceIDs": ["i-0123456789abcdef0"], "tags": {"k": "v"}});
        assert!(m.validate("StartFailbackLaunch", &ok).is_empty());

        let missing = m.validate("StartFailbackLaunch", &json!({}));
        assert_eq!(missing[0].field, "recoveryInstanceIDs");
        assert!(missing[0].message.contains("must not be null"));

        let too_long = m.validate(
            "StartFailbackLaunch",
            &json!({"recoveryInstanceIDs": ["i-0123456789abcdef01"]}),
        );
        assert_eq!(too_long.len(), 1);
        assert_eq!(too_long[0].field, "recoveryInstanceIDs");
        assert!(
            too_long[0].message.contains("less than or equal to 19"),
            "{}",
            too_long[0].message
        );
        assert!(too_long[0].message.contains("'recoveryInstanceIDs.0'"));

        let bad_pattern = m.validate(
            "StartFailbackLaunch",
            &json!({"recoveryInstanceIDs": ["i-0123456789abcdefg"]}),
        );
        assert!(
            bad_pattern[0].message.contains("regular expression"),
            "{}",
            bad_pattern[0].message
        );

        let ids: Vec<String> = (0..201).map(|i| format!("i-{i:017x}")).collect();
        let too_many = m.validate(
            "StartFailbackLaunch",
            &json!({ "recoveryInstanceIDs": ids }),
        );
        assert_eq!(too_many.len(), 1);
        assert!(too_many[0].message.contains("less than or equal to 200"));

        let empty = m.validate("StartFailbackLaunch", &json!({"recoveryInstanceIDs": []}));
        assert!(empty[0].message.contains("greater than or equal to 1"));

        let long_tag = "x".repeat(257);
        let tags = m.validate(
            "StartFailbackLaunch",
            &json!({"recoveryInstanceIDs": ["i-01234567"], "tags": {"k": long_tag}}),
        );
        assert_eq!(tags[0].field, "tags");
        assert!(
            !tags[0].message.contains("xxx"),
            "tag values are sensitive: {}",
            tags[0].message
        );

        let wrong_type = m.validate(
            "StartFailbackLaunch",
            &json!({"recoveryInstanceIDs": "i-0123456789abcdef0"}),
        );
        assert!(wrong_type[0].unparseable);
    }

    #[test]
    fn describe_constraints() {
        let m = model();
        let zero = m.validate("DescribeJobs", &json!({"maxResults": 0}));
        assert_eq!(zero[0].field, "maxResults");
        let nested = m.validate(
            "DescribeRecoveryInstances",
            &json!({"filters": {"sourceServerIDs": ["s-1"]}}),
        );
        assert_eq!(nested[0].field, "filters.sourceServerIDs");
        let job = m.validate("DescribeJobLogItems", &json!({"jobID": "drsjob-123"}));
        assert_eq!(job[0].field, "jobID");
        assert!(
            m.validate(
                "DescribeJobLogItems",
                &json!({"jobID": "drsjob-0123456789abcdefg"})
            )
            .is_empty()
        );
        let date = m.validate(
            "DescribeJobs",
            &json!({"filters": {"fromDate": "yesterday"}}),
        );
        assert_eq!(date[0].field, "filters.fromDate");
    }

    #[test]
    fn check_value_for_single_ids() {
        assert!(check_value("RecoveryInstanceID", "i-0123456789abcdef0").is_ok());
        assert!(check_value("RecoveryInstanceID", "i-01234").is_err());
        assert!(check_value("SourceServerID", "s-0123456789abcdefA").is_ok());
    }
}
