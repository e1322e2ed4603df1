//! Salesforce field API names, and `SALESFORCE_FIELD_MAP`: which NextPhone custom field
//! fills which Lead field. Both are configuration, checked at start-up.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::config_error;

pub const FIELD_MAP_VAR: &str = "SALESFORCE_FIELD_MAP";
pub const EXTERNAL_ID_FIELD_VAR: &str = "SALESFORCE_EXTERNAL_ID_FIELD";
/// The external-ID field the one-time org setup creates (see the README).
pub const DEFAULT_EXTERNAL_ID_FIELD: &str = "NPHooks_Delivery_Key__c";

/// Whether `name` has the shape of a Salesforce field API name: ASCII letters, digits
/// and underscores, starting with a letter, not ending with `_`, no `___`, at most 80
/// characters (a namespaced custom name such as `ns__Region__c` included).
pub fn is_api_name(name: &str) -> bool {
    name.len() <= 80
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.ends_with('_')
        && !name.contains("___")
}

/// `SALESFORCE_EXTERNAL_ID_FIELD`, or [`DEFAULT_EXTERNAL_ID_FIELD`]: a custom field.
pub fn external_id_field(value: Option<&str>) -> nphooks_processor::Result<String> {
    let name = value.unwrap_or(DEFAULT_EXTERNAL_ID_FIELD);
    if !is_api_name(name) || !name.ends_with("__c") {
        return Err(config_error(
            EXTERNAL_ID_FIELD_VAR,
            format!(
                "must be the API name of a custom Lead field (e.g. {DEFAULT_EXTERNAL_ID_FIELD}), got {name:?}"
            ),
        ));
    }
    Ok(name.to_owned())
}

/// NextPhone custom field → Lead field API name, in the order of the NextPhone names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldMap(BTreeMap<String, String>);

impl FieldMap {
    /// Parses `SALESFORCE_FIELD_MAP` (a JSON object of strings). Refused: bad JSON, a
    /// blank NextPhone name, a value that is not an API name, two fields mapped to one
    /// Lead field, or the external-ID field (the upsert's key is the delivery key).
    pub fn parse(json: &str, external_id_field: &str) -> nphooks_processor::Result<Self> {
        let bad = |problem: String| config_error(FIELD_MAP_VAR, problem);
        let object: serde_json::Map<String, Value> = serde_json::from_str(json).map_err(|e| {
            bad(format!(
                "must be a JSON object of NextPhone custom field → Salesforce field API name ({e})"
            ))
        })?;
        let mut map = BTreeMap::new();
        let mut targets = std::collections::BTreeSet::new();
        for (from, to) in object {
            let Value::String(to) = to else {
                return Err(bad(format!(
                    "maps {from:?} to a value that is not a string"
                )));
            };
            let to = to.trim().to_owned();
            if from.trim().is_empty() {
                return Err(bad("has a blank NextPhone custom field name".into()));
            }
            if !is_api_name(&to) {
                return Err(bad(format!(
                    "maps {from:?} to {to:?}, which is not a Salesforce field API name"
                )));
            }
            if to.eq_ignore_ascii_case(external_id_field) {
                return Err(bad(format!(
                    "maps {from:?} to {to}, the external-ID field ({EXTERNAL_ID_FIELD_VAR}) that holds the delivery key"
                )));
            }
            if !targets.insert(to.to_ascii_lowercase()) {
                return Err(bad(format!("maps two fields to {to}")));
            }
            map.insert(from, to);
        }
        Ok(FieldMap(map))
    }

    /// (NextPhone custom field, Lead field API name) pairs.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_names_then_only_api_name_shapes_pass() {
        for good in ["Company", "Region__c", "ns__Region__c", "A1_b"] {
            assert!(is_api_name(good), "{good}");
        }
        for bad in [
            "",
            "1Field",
            "Field_",
            "a___b",
            "Bad Name",
            "x.y",
            "É__c",
            &"a".repeat(81),
        ] {
            assert!(!is_api_name(bad), "{bad}");
        }
    }

    #[test]
    fn given_bad_maps_then_each_error_names_the_variable_and_the_problem() {
        let ok = FieldMap::parse(
            r#"{"region":"Region__c","team_size":" NumberOfEmployees "}"#,
            DEFAULT_EXTERNAL_ID_FIELD,
        )
        .expect("valid");
        let pairs: Vec<_> = ok.iter().collect();
        assert_eq!(
            pairs,
            [("region", "Region__c"), ("team_size", "NumberOfEmployees")]
        );
        for (json, expected) in [
            ("{", "must be a JSON object"),
            ("[]", "must be a JSON object"),
            (r#"{"a":1}"#, "not a string"),
            (r#"{" ":"A__c"}"#, "blank NextPhone"),
            (r#"{"a":"Bad Name"}"#, "not a Salesforce field API name"),
            (r#"{"a":"nphooks_delivery_key__c"}"#, "external-ID field"),
            (r#"{"a":"X__c","b":"x__C"}"#, "two fields"),
        ] {
            let message = FieldMap::parse(json, DEFAULT_EXTERNAL_ID_FIELD)
                .expect_err(json)
                .to_string();
            assert!(
                message.contains(FIELD_MAP_VAR) && message.contains(expected),
                "{json}: {message}"
            );
        }
        let message = external_id_field(Some("Delivery Key"))
            .expect_err("bad")
            .to_string();
        assert!(message.contains(EXTERNAL_ID_FIELD_VAR), "{message}");
        assert_eq!(
            external_id_field(None).expect("default"),
            DEFAULT_EXTERNAL_ID_FIELD
        );
    }
}
