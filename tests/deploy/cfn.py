"""Reads template.yaml and extracts what the deploy tests check.

CloudFormation short-form tags (!Ref, !Sub, !GetAtt, ...) are turned into their long form
({"Ref": ...}, {"Fn::Sub": ...}), so the tests compare plain data. Policy statements become
(action, resource) pairs, where a resource is a canonical JSON string of its value; the
extraction refuses anything it cannot pin down exactly: wildcards, NotAction/NotResource,
Deny, and SAM policy templates or managed policies other than the accepted ones.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any, Iterable

import yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
EVENT_PATTERN = ROOT / "shared" / "schema" / "event-pattern.json"
EVENTS = ROOT / "events"
SAM_PYTHON = ROOT / ".venv-sam" / "bin" / "python"

# The managed policies SAM attaches to every function role here. Both grant on "*" because
# AWS offers no narrower resource for them (see the header comment in template.yaml).
ACCEPTED_MANAGED_POLICIES = {
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
    "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
}


class LeastPrivilegeError(AssertionError):
    """A policy grants more than can be checked as an exact (action, resource) pair."""


class _CfnLoader(yaml.SafeLoader):
    """A YAML loader that understands CloudFormation's short-form intrinsic functions."""


def _construct(tag: str, loader: yaml.Loader, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)

    if tag == "Ref":
        return {"Ref": value}
    if tag == "Condition":
        return {"Condition": value}
    if tag == "GetAtt" and isinstance(value, str):
        resource, _, attribute = value.partition(".")
        value = [resource, attribute]
    return {f"Fn::{tag}": value}


for _tag in (
    "Ref", "Condition", "GetAtt", "Sub", "Join", "Select", "Split", "If", "Not", "Equals",
    "And", "Or", "FindInMap", "ImportValue", "Base64", "Cidr", "GetAZs", "Transform",
):
    _CfnLoader.add_constructor(
        f"!{_tag}", lambda loader, node, tag=_tag: _construct(tag, loader, node)
    )


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    """The template as plain data, intrinsic functions in long form."""
    with open(path, encoding="utf-8") as file:
        return yaml.load(file, Loader=_CfnLoader)  # noqa: S506 - a SafeLoader subclass


def translate_template(path: Path = TEMPLATE) -> dict[str, Any]:
    """The CloudFormation template the SAM transform makes of `path`, offline.

    Runs in .venv-sam, which holds aws-sam-translator (it pins other botocore versions than
    moto, so the two live apart).
    """
    if not SAM_PYTHON.exists():
        raise AssertionError(f"{SAM_PYTHON} is missing: run scripts/setup")
    env = dict(os.environ, AWS_DEFAULT_REGION="us-east-1", AWS_REGION="us-east-1")
    result = subprocess.run(
        [str(SAM_PYTHON), str(Path(__file__).with_name("sam_translate.py")), str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(f"SAM transform failed:\n{result.stderr}")
    return json.loads(result.stdout)


def canonical(value: Any) -> str:
    """A resource value as a stable string: itself when literal, else sorted JSON."""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def get_att(resource: str, attribute: str = "Arn") -> str:
    """The canonical form of `!GetAtt resource.attribute`."""
    return canonical({"Fn::GetAtt": [resource, attribute]})


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def statement_pairs(statements: Iterable[dict[str, Any]]) -> set[tuple[str, str]]:
    """The (action, resource) pairs the Allow statements grant.

    Raises LeastPrivilegeError for a "*" action or resource, an action wildcard such as
    "dynamodb:*" or "dynamodb:Get*", NotAction/NotResource, or a Deny (which this checker
    cannot net out).
    """
    pairs: set[tuple[str, str]] = set()
    for statement in statements:
        sid = statement.get("Sid", "<no Sid>")
        for forbidden in ("NotAction", "NotResource", "NotPrincipal"):
            if forbidden in statement:
                raise LeastPrivilegeError(f"statement {sid} uses {forbidden}")
        if statement.get("Effect") != "Allow":
            raise LeastPrivilegeError(f"statement {sid} is not a plain Allow")

        actions = _as_list(statement.get("Action", []))
        resources = _as_list(statement.get("Resource", []))
        if not actions or not resources:
            raise LeastPrivilegeError(f"statement {sid} lacks Action or Resource")
        for action in actions:
            if not isinstance(action, str) or "*" in action or "?" in action:
                raise LeastPrivilegeError(f"statement {sid} has wildcard action {action!r}")
        for resource in resources:
            if any("*" in text for text in _strings(resource)):
                raise LeastPrivilegeError(
                    f"statement {sid} has wildcard resource {canonical(resource)}"
                )
        pairs.update((action, canonical(r)) for action in actions for r in resources)
    return pairs


def function_policy_pairs(function: dict[str, Any]) -> set[tuple[str, str]]:
    """The pairs an AWS::Serverless::Function's `Policies` grant, checked for wildcards.

    Only inline policy documents are accepted: a SAM policy template or a managed policy
    name hides its actions from this check, so it fails the test instead.
    """
    properties = function["Properties"]
    if "Role" in properties:
        raise LeastPrivilegeError("a function brings its own Role; SAM's is expected")
    policies = properties.get("Policies", [])
    if isinstance(policies, (str, dict)):
        policies = [policies]

    statements: list[dict[str, Any]] = []
    for policy in policies:
        if not isinstance(policy, dict) or "Statement" not in policy:
            raise LeastPrivilegeError(f"policy {canonical(policy)} is not an inline document")
        statements.extend(_as_list(policy["Statement"]))
    return statement_pairs(statements)


def role_policy_pairs(role: dict[str, Any]) -> set[tuple[str, str]]:
    """The pairs a translated AWS::IAM::Role's inline policies grant, checked for wildcards.

    Its managed policies must be exactly the accepted ones.
    """
    properties = role["Properties"]
    managed = set(properties.get("ManagedPolicyArns", []))
    if managed != ACCEPTED_MANAGED_POLICIES:
        raise LeastPrivilegeError(f"unexpected managed policies: {sorted(managed)}")
    if properties.get("PermissionsBoundary"):
        raise LeastPrivilegeError("unexpected permissions boundary")

    statements: list[dict[str, Any]] = []
    for policy in properties.get("Policies", []):
        statements.extend(_as_list(policy["PolicyDocument"]["Statement"]))
    return statement_pairs(statements)


def resources_of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    """The template's resources of one type, by logical id."""
    return {
        name: resource
        for name, resource in template["Resources"].items()
        if resource["Type"] == kind
    }
