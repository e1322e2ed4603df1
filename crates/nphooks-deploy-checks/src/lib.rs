//! Reads `template.yaml` for the tests in `tests/`: the template, its functions, and an
//! evaluator of the intrinsic functions it uses, for one set of parameter values.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use serde_yaml::Value;

/// Values for the parameters that have no default (the deploy asks for them).
pub const REQUIRED_PARAMETERS: &[(&str, &str)] = &[
    ("NotifyUrl", "https://sales.acme.example/hooks/nphooks"),
    ("EmailFrom", "Acme <hello@acme.example>"),
];

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn template_text() -> String {
    std::fs::read_to_string(root().join("template.yaml")).expect("template.yaml")
}

pub fn template() -> Value {
    serde_yaml::from_str(&template_text()).expect("template.yaml is YAML")
}

/// Evaluates the intrinsic functions the template uses, for one set of parameter values.
#[derive(Debug)]
pub struct Evaluator<'a> {
    template: &'a Value,
    parameters: BTreeMap<String, String>,
}

/// What a `!Ref` to a resource stands for here: a queue URL, a table name, an ARN.
fn resource_stand_in(template: &Value, name: &str) -> String {
    match template["Resources"][name]["Type"].as_str() {
        Some("AWS::SQS::Queue") => {
            format!("https://sqs.us-east-1.amazonaws.com/123456789012/{name}")
        }
        Some("AWS::SecretsManager::Secret") => {
            format!("arn:aws:secretsmanager:us-east-1:123456789012:secret:{name}")
        }
        _ => name.to_owned(),
    }
}

impl<'a> Evaluator<'a> {
    pub fn new(template: &'a Value, overrides: &[(&str, &str)]) -> Self {
        let mut parameters: BTreeMap<String, String> = template["Parameters"]
            .as_mapping()
            .expect("Parameters")
            .iter()
            .map(|(name, spec)| {
                let default = match &spec["Default"] {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Null => String::new(),
                    other => panic!("unexpected default {other:?}"),
                };
                (name.as_str().expect("name").to_owned(), default)
            })
            .collect();
        for (name, value) in REQUIRED_PARAMETERS.iter().chain(overrides) {
            assert!(parameters.contains_key(*name), "no parameter {name}");
            parameters.insert((*name).to_owned(), (*value).to_owned());
        }
        Evaluator {
            template,
            parameters,
        }
    }

    pub fn condition(&self, name: &str) -> bool {
        self.truth(&self.template["Conditions"][name])
    }

    fn truth(&self, value: &Value) -> bool {
        let Value::Tagged(tagged) = value else {
            panic!("not a condition: {value:?}")
        };
        let args = tagged.value.as_sequence();
        match tagged.tag.to_string().as_str() {
            "!Equals" => {
                let args = args.expect("!Equals takes a list");
                self.eval(&args[0]) == self.eval(&args[1])
            }
            "!Not" => !self.truth(&args.expect("!Not takes a list")[0]),
            "!Condition" => self.condition(tagged.value.as_str().expect("name")),
            other => panic!("unsupported condition {other}"),
        }
    }

    /// `None` for `AWS::NoValue`.
    pub fn eval(&self, value: &Value) -> Option<String> {
        match value {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Tagged(tagged) => match tagged.tag.to_string().as_str() {
                "!Ref" => {
                    let name = tagged.value.as_str().expect("!Ref name");
                    if name == "AWS::NoValue" {
                        None
                    } else if let Some(value) = self.parameters.get(name) {
                        Some(value.clone())
                    } else {
                        assert!(
                            !self.template["Resources"][name].is_null(),
                            "!Ref to unknown {name}"
                        );
                        Some(resource_stand_in(self.template, name))
                    }
                }
                "!GetAtt" => Some(format!(
                    "getatt:{}",
                    tagged.value.as_str().expect("!GetAtt a.b")
                )),
                "!Sub" => Some(tagged.value.as_str().expect("!Sub string").to_owned()),
                "!If" => {
                    let args = tagged.value.as_sequence().expect("!If takes a list");
                    let branch = if self.condition(args[0].as_str().expect("condition name")) {
                        &args[1]
                    } else {
                        &args[2]
                    };
                    self.eval(branch)
                }
                other => panic!("unsupported intrinsic {other}"),
            },
            other => panic!("cannot evaluate {other:?}"),
        }
    }

    /// The environment a function gets: Globals, then its own, `AWS::NoValue` dropped.
    pub fn environment(&self, function: &Value) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        for variables in [
            &self.template["Globals"]["Function"]["Environment"]["Variables"],
            &function["Properties"]["Environment"]["Variables"],
        ] {
            for (name, value) in variables.as_mapping().into_iter().flatten() {
                if let Some(value) = self.eval(value) {
                    env.insert(name.as_str().expect("name").to_owned(), value);
                }
            }
        }
        env
    }
}

pub fn functions(template: &Value) -> Vec<(String, &Value)> {
    template["Resources"]
        .as_mapping()
        .expect("Resources")
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::Serverless::Function")
        .map(|(name, r)| (name.as_str().expect("name").to_owned(), r))
        .collect()
}

pub fn binary(function: &Value) -> String {
    function["Metadata"]["BuildProperties"]["Binary"]
        .as_str()
        .expect("BuildProperties.Binary")
        .to_owned()
}
