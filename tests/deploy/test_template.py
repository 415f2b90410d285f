"""Checks template.yaml offline: least privilege, the event contract, and deploy settings.

Least privilege is checked twice: on the `Policies` written in the template, and on the
roles the SAM transform generates from them (SAM adds policies of its own, such as the
on-failure destination's sqs:SendMessage, and the managed policies for logs and X-Ray).
"""

from __future__ import annotations

import copy
import json
import re
import tomllib
from typing import Any

import pytest

from cfn import (
    EVENT_PATTERN,
    ROOT,
    LeastPrivilegeError,
    canonical,
    function_policy_pairs,
    get_att,
    load_template,
    resources_of_type,
    role_policy_pairs,
    translate_template,
)

SES_IDENTITY = canonical(
    {
        "Fn::Sub": "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}"
        ":identity/${SenderEmail}"
    }
)
SES_DOMAIN_IDENTITY = canonical(
    {
        "Fn::Sub": [
            "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:identity/${SenderDomain}",
            {"SenderDomain": {"Fn::Select": [1, {"Fn::Split": ["@", {"Ref": "SenderEmail"}]}]}},
        ]
    }
)

# Exactly what each function calls, on exactly what it calls it (see the adapters in
# functions/*/src/adapters): TransactWriteItems is authorised by its per-item PutItem.
EXPECTED_POLICY_PAIRS = {
    "UserServiceFunction": {
        ("events:PutEvents", get_att("EventBus")),
        ("dynamodb:GetItem", get_att("UsersTable")),
        ("dynamodb:PutItem", get_att("UsersTable")),
        ("dynamodb:UpdateItem", get_att("UsersTable")),
    },
    "NotificationFunction": {
        ("dynamodb:GetItem", get_att("ProcessedEventsTable")),
        ("dynamodb:PutItem", get_att("ProcessedEventsTable")),
        ("dynamodb:UpdateItem", get_att("ProcessedEventsTable")),
        ("dynamodb:DeleteItem", get_att("ProcessedEventsTable")),
        ("ses:SendEmail", SES_IDENTITY),
        ("ses:SendEmail", SES_DOMAIN_IDENTITY),
    },
}

# What SAM adds to the generated roles on top of the template's Policies.
SAM_ADDED_PAIRS = {
    "UserServiceFunction": set(),
    "NotificationFunction": {("sqs:SendMessage", get_att("NotificationFailureQueue"))},
}

CRATES = {"UserServiceFunction": "user-service", "NotificationFunction": "notification"}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


@pytest.fixture(scope="module")
def translated() -> dict[str, Any]:
    return translate_template()


def function(template: dict[str, Any], name: str) -> dict[str, Any]:
    resource = template["Resources"][name]
    assert resource["Type"] == "AWS::Serverless::Function"
    return resource


# ------------------------------------------------------------------ least privilege


@pytest.mark.parametrize("name", sorted(EXPECTED_POLICY_PAIRS))
def test_function_policies_grant_exactly_the_expected_pairs(template, name):
    assert function_policy_pairs(function(template, name)) == EXPECTED_POLICY_PAIRS[name]


def test_every_function_is_checked(template):
    functions = resources_of_type(template, "AWS::Serverless::Function")

    assert set(functions) == set(EXPECTED_POLICY_PAIRS)


@pytest.mark.parametrize("name", sorted(EXPECTED_POLICY_PAIRS))
def test_generated_roles_grant_exactly_the_expected_pairs(translated, name):
    role = translated["Resources"][f"{name}Role"]
    assert role["Type"] == "AWS::IAM::Role"

    expected = EXPECTED_POLICY_PAIRS[name] | SAM_ADDED_PAIRS[name]
    assert role_policy_pairs(role) == expected


def test_generated_roles_only_trust_lambda(translated):
    for name in EXPECTED_POLICY_PAIRS:
        trust = translated["Resources"][f"{name}Role"]["Properties"]["AssumeRolePolicyDocument"]
        principals = [s["Principal"] for s in trust["Statement"]]
        assert principals == [{"Service": ["lambda.amazonaws.com"]}], name


def test_no_other_iam_resources_are_generated(translated):
    iam = {
        name
        for name, resource in translated["Resources"].items()
        if resource["Type"].startswith("AWS::IAM::")
    }

    assert iam == {f"{name}Role" for name in EXPECTED_POLICY_PAIRS}


def _widen(template: dict[str, Any], name: str, **statement: Any) -> dict[str, Any]:
    widened = copy.deepcopy(template)
    policy = widened["Resources"][name]["Properties"]["Policies"][0]
    policy["Statement"].append({"Effect": "Allow", **statement})
    return widened


@pytest.mark.parametrize(
    "statement",
    [
        {"Action": "*", "Resource": {"Fn::GetAtt": ["UsersTable", "Arn"]}},
        {"Action": "dynamodb:*", "Resource": {"Fn::GetAtt": ["UsersTable", "Arn"]}},
        {"Action": "dynamodb:Get*", "Resource": {"Fn::GetAtt": ["UsersTable", "Arn"]}},
        {"Action": "dynamodb:GetItem", "Resource": "*"},
        {"Action": "events:PutEvents", "Resource": ["arn:aws:events:*:*:event-bus/*"]},
        {"Action": "dynamodb:GetItem", "Resource": {"Fn::Sub": "${UsersTable.Arn}/*"}},
    ],
    ids=["star-action", "service-wildcard", "prefix-wildcard", "star-resource",
         "arn-wildcard", "sub-wildcard"],
)
def test_the_checker_rejects_a_widened_policy(template, statement):
    widened = _widen(template, "UserServiceFunction", **statement)

    with pytest.raises(LeastPrivilegeError):
        function_policy_pairs(function(widened, "UserServiceFunction"))


def test_the_checker_notices_an_extra_action(template):
    widened = _widen(
        template,
        "NotificationFunction",
        Action="dynamodb:Scan",
        Resource={"Fn::GetAtt": ["ProcessedEventsTable", "Arn"]},
    )

    pairs = function_policy_pairs(function(widened, "NotificationFunction"))

    assert pairs != EXPECTED_POLICY_PAIRS["NotificationFunction"]


@pytest.mark.parametrize(
    "policy",
    ["AmazonDynamoDBFullAccess", {"DynamoDBCrudPolicy": {"TableName": {"Ref": "UsersTable"}}}],
    ids=["managed-policy", "policy-template"],
)
def test_the_checker_rejects_policies_it_cannot_see_into(template, policy):
    widened = copy.deepcopy(template)
    widened["Resources"]["UserServiceFunction"]["Properties"]["Policies"].append(policy)

    with pytest.raises(LeastPrivilegeError):
        function_policy_pairs(function(widened, "UserServiceFunction"))


def test_the_checker_rejects_an_extra_managed_policy_on_a_role(translated):
    role = copy.deepcopy(translated["Resources"]["UserServiceFunctionRole"])
    role["Properties"]["ManagedPolicyArns"].append(
        "arn:aws:iam::aws:policy/AdministratorAccess"
    )

    with pytest.raises(LeastPrivilegeError):
        role_policy_pairs(role)


def test_rule_dead_letter_queue_accepts_only_the_user_created_rule(template, translated):
    policy = template["Resources"]["RuleDeadLetterQueuePolicy"]["Properties"]
    (statement,) = policy["PolicyDocument"]["Statement"]

    assert policy["Queues"] == [{"Ref": "RuleDeadLetterQueue"}]
    assert statement["Effect"] == "Allow"
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Resource"] == {"Fn::GetAtt": ["RuleDeadLetterQueue", "Arn"]}
    source = statement["Condition"]["ArnEquals"]["aws:SourceArn"]
    assert source == {"Fn::GetAtt": ["NotificationFunctionUserCreated", "Arn"]}
    # The logical id is one SAM generates; make sure it still does.
    assert translated["Resources"]["NotificationFunctionUserCreated"]["Type"] == (
        "AWS::Events::Rule"
    )


# ------------------------------------------------------------------ event contract


def test_rule_pattern_is_the_published_contract(template, translated):
    contract = json.loads(EVENT_PATTERN.read_text(encoding="utf-8"))
    event = function(template, "NotificationFunction")["Properties"]["Events"]["UserCreated"]

    assert event["Type"] == "EventBridgeRule"
    assert event["Properties"]["Pattern"] == contract
    assert event["Properties"]["EventBusName"] == {"Ref": "EventBus"}
    rule = translated["Resources"]["NotificationFunctionUserCreated"]["Properties"]
    assert rule["EventPattern"] == contract


def test_rule_retries_are_bounded_and_end_in_a_dead_letter_queue(template):
    event = function(template, "NotificationFunction")["Properties"]["Events"]["UserCreated"]
    retry = event["Properties"]["RetryPolicy"]

    assert 0 <= retry["MaximumRetryAttempts"] <= 185
    assert 60 <= retry["MaximumEventAgeInSeconds"] <= 86400
    assert event["Properties"]["DeadLetterConfig"] == {
        "Arn": {"Fn::GetAtt": ["RuleDeadLetterQueue", "Arn"]}
    }


def test_notification_async_invocations_are_bounded_with_an_on_failure_queue(template):
    config = function(template, "NotificationFunction")["Properties"]["EventInvokeConfig"]

    assert config["MaximumRetryAttempts"] == 2
    assert 60 <= config["MaximumEventAgeInSeconds"] <= 21600
    assert config["DestinationConfig"]["OnFailure"] == {
        "Type": "SQS",
        "Destination": {"Fn::GetAtt": ["NotificationFailureQueue", "Arn"]},
    }


# ------------------------------------------------------------------ functions


def test_globals_set_runtime_architecture_tracing_and_json_logs(template):
    globals_ = template["Globals"]["Function"]

    assert globals_["Runtime"] == "provided.al2023"
    assert globals_["Architectures"] == ["arm64"]
    assert globals_["Tracing"] == "Active"
    assert globals_["MemorySize"] == 128
    assert globals_["LoggingConfig"] == {
        "LogFormat": "JSON",
        "ApplicationLogLevel": {"Ref": "LogLevel"},
        "SystemLogLevel": "INFO",
    }


@pytest.mark.parametrize("name", sorted(CRATES))
def test_functions_build_their_crate_binary_with_cargo_lambda(template, name):
    resource = function(template, name)
    manifest = tomllib.loads(
        (ROOT / "functions" / CRATES[name] / "Cargo.toml").read_text(encoding="utf-8")
    )
    binaries = {binary["name"] for binary in manifest.get("bin", [])}

    assert resource["Metadata"]["BuildMethod"] == "rust-cargolambda"
    assert resource["Metadata"]["BuildProperties"]["Binary"] in binaries
    assert resource["Properties"]["CodeUri"] == "."
    assert resource["Properties"]["Handler"] == "bootstrap"
    for key in ("Runtime", "Architectures", "Tracing", "MemorySize"):
        assert key not in resource["Properties"], f"{name} overrides Globals {key}"


def test_timeouts(template):
    assert function(template, "UserServiceFunction")["Properties"]["Timeout"] == 10
    assert function(template, "NotificationFunction")["Properties"]["Timeout"] == 30


@pytest.mark.parametrize("name", sorted(CRATES))
def test_functions_get_every_variable_their_config_reads(template, name):
    source = (ROOT / "functions" / CRATES[name] / "src" / "config.rs").read_text(
        encoding="utf-8"
    )
    read = set(re.findall(r'required\([^")]*"([A-Z][A-Z0-9_]*)"\)', source))
    variables = function(template, name)["Properties"]["Environment"]["Variables"]

    assert read, "no required(...) calls found in config.rs"
    assert set(variables) == read


def test_function_environment_points_at_the_stack_resources(template):
    user_service = function(template, "UserServiceFunction")["Properties"]["Environment"]
    notification = function(template, "NotificationFunction")["Properties"]["Environment"]

    assert user_service["Variables"] == {
        "EVENT_BUS_NAME": {"Ref": "EventBus"},
        "USERS_TABLE": {"Ref": "UsersTable"},
    }
    assert notification["Variables"] == {
        "SENDER_EMAIL": {"Ref": "SenderEmail"},
        "PRODUCT_NAME": {"Ref": "ProductName"},
        "PROCESSED_EVENTS_TABLE": {"Ref": "ProcessedEventsTable"},
    }


def test_functions_log_to_log_groups_with_retention(template):
    for name in CRATES:
        group = function(template, name)["Properties"]["LoggingConfig"]["LogGroup"]
        log_group = template["Resources"][group["Ref"]]
        assert log_group["Type"] == "AWS::Logs::LogGroup"
        assert log_group["Properties"]["RetentionInDays"] > 0


# ------------------------------------------------------------------ HTTP API


def test_http_api_routes_and_throttling(template):
    events = function(template, "UserServiceFunction")["Properties"]["Events"]
    routes = {
        (event["Properties"]["Method"], event["Properties"]["Path"])
        for event in events.values()
    }
    api = template["Resources"]["UsersApi"]

    assert routes == {("POST", "/users"), ("GET", "/users/{id}")}
    for event in events.values():
        assert event["Type"] == "HttpApi"
        assert event["Properties"]["ApiId"] == {"Ref": "UsersApi"}
    assert api["Type"] == "AWS::Serverless::HttpApi"
    assert api["Properties"]["StageName"] == {"Ref": "Stage"}
    throttling = api["Properties"]["DefaultRouteSettings"]
    assert 0 < throttling["ThrottlingBurstLimit"] <= 5000
    assert 0 < throttling["ThrottlingRateLimit"] <= 10000


# ------------------------------------------------------------------ data and queues


def test_users_table(template):
    table = template["Resources"]["UsersTable"]["Properties"]

    assert table["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert table["AttributeDefinitions"] == [{"AttributeName": "pk", "AttributeType": "S"}]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["SSESpecification"] == {"SSEEnabled": True}
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert table["DeletionProtectionEnabled"] == {"Ref": "DeletionProtection"}
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expiresAt", "Enabled": True}


def test_processed_events_table(template):
    table = template["Resources"]["ProcessedEventsTable"]["Properties"]

    assert table["KeySchema"] == [{"AttributeName": "eventId", "KeyType": "HASH"}]
    assert table["AttributeDefinitions"] == [
        {"AttributeName": "eventId", "AttributeType": "S"}
    ]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["SSESpecification"] == {"SSEEnabled": True}
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expiresAt", "Enabled": True}


def test_event_bus_is_named_after_the_stack(template):
    bus = template["Resources"]["EventBus"]

    assert bus["Type"] == "AWS::Events::EventBus"
    assert "${AWS::StackName}" in bus["Properties"]["Name"]["Fn::Sub"]


@pytest.mark.parametrize("queue", ["RuleDeadLetterQueue", "NotificationFailureQueue"])
def test_failure_queues_are_encrypted_kept_14_days_and_alarmed(template, queue):
    properties = template["Resources"][queue]["Properties"]
    alarms = [
        resource["Properties"]
        for resource in resources_of_type(template, "AWS::CloudWatch::Alarm").values()
        if resource["Properties"]["Dimensions"]
        == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}}]
    ]

    assert properties["SqsManagedSseEnabled"] is True
    assert properties["MessageRetentionPeriod"] == 14 * 24 * 60 * 60
    assert len(alarms) == 1, f"expected one alarm on {queue}"
    (alarm,) = alarms
    assert alarm["Namespace"] == "AWS/SQS"
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["Threshold"] == 0


# ------------------------------------------------------------------ parameters and outputs


def test_parameters(template):
    parameters = template["Parameters"]

    assert {"SenderEmail", "ProductName", "Stage", "LogLevel", "DeletionProtection"} <= set(
        parameters
    )
    assert "Default" not in parameters["SenderEmail"], "the sender must be chosen on deploy"
    assert set(parameters["LogLevel"]["AllowedValues"]) == {
        "TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL",
    }
    assert set(parameters["DeletionProtection"]["AllowedValues"]) == {"true", "false"}


def test_outputs(template):
    outputs = template["Outputs"]

    assert set(outputs) >= {
        "ApiUrl",
        "EventBusName",
        "EventBusArn",
        "UsersTableName",
        "ProcessedEventsTableName",
        "RuleDeadLetterQueueUrl",
        "NotificationFailureQueueUrl",
    }
    assert "${UsersApi}" in outputs["ApiUrl"]["Value"]["Fn::Sub"]
    assert outputs["EventBusArn"]["Value"] == {"Fn::GetAtt": ["EventBus", "Arn"]}


def test_every_checkov_skip_says_why(template):
    for name, resource in template["Resources"].items():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            assert re.fullmatch(r"CKV2?_AWS_\d+", skip["id"]), name
            assert len(skip.get("comment", "").split()) >= 5, f"{name} {skip['id']}"
