"""The roles `sam deploy` generates for template.yaml, resolved to the ARNs the stack has.

template.yaml goes through aws-sam-translator (the transform SAM itself runs), then the
intrinsic functions in each function role's policies are evaluated for account
123456789012 in us-east-1, naming every resource by its logical id, and the AWS-managed
policies SAM attaches are expanded from the documents below.
"""

import copy
import logging
import os
import re

ACCOUNT = "123456789012"
REGION = "us-east-1"
PARTITION = "aws"
PSEUDO = {
    "AWS::AccountId": ACCOUNT,
    "AWS::Region": REGION,
    "AWS::Partition": PARTITION,
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackName": "nphooks",
}

_LOGS = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"]
# The public documents of the managed policies SAM attaches (IAM console, version v1/v3).
MANAGED_POLICIES = {
    "AWSLambdaBasicExecutionRole": [{"Effect": "Allow", "Action": _LOGS, "Resource": "*"}],
    "AWSLambdaSQSQueueExecutionRole": [
        {
            "Effect": "Allow",
            "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"] + _LOGS,
            "Resource": "*",
        }
    ],
}


class TemplateError(Exception):
    """template.yaml (or its transform) holds something this check cannot evaluate."""


# The ARN of each kind of resource the roles name, by its logical id.
ARN_FORMATS = {
    "AWS::SQS::Queue": "sqs:{region}:{account}:{name}",
    "AWS::DynamoDB::Table": "dynamodb:{region}:{account}:table/{name}",
    "AWS::SecretsManager::Secret": "secretsmanager:{region}:{account}:secret:{name}-AbCdEf",
    "AWS::Logs::LogGroup": "logs:{region}:{account}:log-group:{name}:*",
    "AWS::SNS::Topic": "sns:{region}:{account}:{name}",
    "AWS::KMS::Key": "kms:{region}:{account}:key/{name}",
}


def resource_arn(logical, kind):
    """The ARN a resource of `kind` named `logical` has in the stack."""
    if kind not in ARN_FORMATS:
        raise TemplateError(f"no ARN known for {logical} ({kind})")
    rest = ARN_FORMATS[kind].format(region=REGION, account=ACCOUNT, name=logical)
    return f"arn:{PARTITION}:{rest}"


class Resolver:
    """Evaluates intrinsic functions for one set of parameter values."""

    def __init__(self, template, parameters=None):
        self.template = template
        self.parameters = {}
        for name, spec in template.get("Parameters", {}).items():
            if "Default" in spec:
                self.parameters[name] = str(spec["Default"])
        self.parameters.update(parameters or {})

    def kind(self, logical):
        resource = self.template["Resources"].get(logical)
        if resource is None:
            raise TemplateError(f"reference to unknown resource {logical}")
        return resource["Type"]

    def ref(self, name):
        if name in PSEUDO:
            return PSEUDO[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.template.get("Parameters", {}):
            raise TemplateError(f"parameter {name} has no value: pass it to the check")
        kind = self.kind(name)
        if kind == "AWS::SQS::Queue":
            return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}"
        if kind in ("AWS::SecretsManager::Secret", "AWS::SNS::Topic"):
            return resource_arn(name, kind)
        return name  # tables, log groups, keys: their name

    def get_att(self, logical, attribute):
        kind = self.kind(logical)
        if attribute == "Arn":
            arn = resource_arn(logical, kind)
            return arn[: -len(":*")] if kind == "AWS::Logs::LogGroup" else arn
        if attribute in ("QueueName", "TopicName"):
            return logical
        raise TemplateError(f"no value known for {logical}.{attribute}")

    def condition(self, name):
        return self.truth(self.template["Conditions"][name])

    def truth(self, value):
        (function, args), = value.items()
        if function == "Fn::Equals":
            return self.eval(args[0]) == self.eval(args[1])
        if function == "Fn::Not":
            return not self.truth(args[0])
        if function == "Fn::And":
            return all(self.truth(a) for a in args)
        if function == "Fn::Or":
            return any(self.truth(a) for a in args)
        if function == "Condition":
            return self.condition(args)
        raise TemplateError(f"unsupported condition {function}")

    def sub(self, text, variables):
        def one(match):
            name = match.group(1)
            if name in variables:
                return str(self.eval(variables[name]))
            if "." in name and name not in PSEUDO:
                return str(self.get_att(*name.split(".", 1)))
            return str(self.ref(name))

        return re.sub(r"\$\{([^}!]+)\}", one, text)

    def eval(self, value):
        """The value, with `None` standing for AWS::NoValue."""
        if isinstance(value, list):
            return [v for v in (self.eval(v) for v in value) if v is not None]
        if not isinstance(value, dict):
            return value
        if len(value) != 1 or not next(iter(value)).startswith(("Fn::", "Ref")):
            return {k: v for k, v in ((k, self.eval(v)) for k, v in value.items()) if v is not None}
        (function, args), = value.items()
        if function == "Ref":
            return None if args == "AWS::NoValue" else self.ref(args)
        if function == "Fn::GetAtt":
            logical, attribute = args if isinstance(args, list) else args.split(".", 1)
            return self.get_att(logical, attribute)
        if function == "Fn::Sub":
            text, variables = (args, {}) if isinstance(args, str) else args
            return self.sub(text, variables)
        if function == "Fn::If":
            return self.eval(args[1] if self.condition(args[0]) else args[2])
        if function == "Fn::Join":
            return args[0].join(str(v) for v in self.eval(args[1]))
        if function == "Fn::Select":
            return self.eval(args[1])[int(self.eval(args[0]))]
        raise TemplateError(f"unsupported intrinsic {function}")


def transform(template):
    """template.yaml as `sam deploy` turns it into CloudFormation."""
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    logging.getLogger("samtranslator").setLevel(logging.ERROR)  # its metrics chatter
    from samtranslator.translator.transform import transform as sam_transform

    template = copy.deepcopy(template)
    template.get("Globals", {}).get("Function", {}).pop("CodeUri", None)
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://nphooks-check/code.zip"
    return sam_transform(template, {}, None)


def load_template(path):
    from samtranslator.yaml_helper import yaml_parse

    with open(path, encoding="utf-8") as file:
        return yaml_parse(file.read())


def function_roles(template, parameters=None):
    """{function logical id: [statement, …]} of each generated role, resolved."""
    cfn = transform(template)
    resolver = Resolver(cfn, parameters)
    roles = {}
    for logical, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        role = cfn["Resources"].get(f"{logical}Role")
        if role is None:
            raise TemplateError(f"{logical}: SAM generated no role (an explicit Role is not checked)")
        statements = []
        for policy in resolver.eval(role["Properties"].get("Policies", [])):
            document = policy["PolicyDocument"]
            for statement in _as_list(document["Statement"]):
                sid = statement.get("Sid")
                source = f"{policy['PolicyName']}/{sid}" if sid else policy["PolicyName"]
                statements.append(dict(statement, Source=source))
        for arn in resolver.eval(role["Properties"].get("ManagedPolicyArns", [])):
            name = arn.rsplit("/", 1)[-1]
            if name not in MANAGED_POLICIES:
                raise TemplateError(f"{logical}: managed policy {arn} has no document in the check")
            statements.extend(dict(s, Source=name, Managed=True) for s in MANAGED_POLICIES[name])
        roles[logical] = statements
    return roles


def _as_list(value):
    return value if isinstance(value, list) else [value]
