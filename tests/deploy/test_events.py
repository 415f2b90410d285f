"""Invokes the real function binaries with every file in events/ and checks the outcome.

A moto server on a free loopback port stands in for DynamoDB, EventBridge, SES v2 and SQS;
`cargo lambda watch` runs both functions (debug builds, made on the first invoke) against
it, and `cargo lambda invoke` sends each sample event. An SQS queue behind a rule with the
template's pattern shows which UserCreated events reached the bus.

If moto or cargo-lambda cannot start, the tests fail: they are never skipped.
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import boto3
import pytest

from cfn import EVENTS, ROOT, load_template

VENV_BIN = ROOT / ".venv" / "bin"
EXPECTED = json.loads((EVENTS / "expected.json").read_text(encoding="utf-8"))

REGION = "us-east-1"
SENDER = "welcome@example.com"
USERS_TABLE = "users"
PROCESSED_EVENTS_TABLE = "processed-events"
BUS = "user-events"
OBSERVER_QUEUE = "observed-user-created"

# The first invoke of each function compiles it (debug); later ones take a second or two.
INVOKE_TIMEOUT_SECS = 1200
START_TIMEOUT_SECS = 60


def event_files() -> set[str]:
    return {path.name for path in EVENTS.glob("*.json")} - {"expected.json"}


def load_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text(encoding="utf-8"))


# ------------------------------------------------------------------ processes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tool_env() -> dict[str, str]:
    # cargo finds the cargo-lambda subcommand, and cargo-lambda finds zig, through PATH.
    return dict(os.environ, PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")


def start(command: list[str], log: Path, request: pytest.FixtureRequest) -> subprocess.Popen:
    """Starts `command` in its own process group, stopped when the fixture is torn down."""
    with open(log, "wb") as output:
        try:
            process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=tool_env(),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as error:
            pytest.fail(f"could not start {command[0]}: {error}")
    request.addfinalizer(lambda: stop(process))
    return process


def stop(process: subprocess.Popen) -> None:
    """Stops the process and everything it started (cargo, the function binaries)."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass
    # Whatever is left of the group, the leader included, goes now.
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def tail(log: Path, lines: int = 40) -> str:
    text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


def wait_until(
    ready: Callable[[], bool], process: subprocess.Popen, log: Path, what: str
) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{what} exited with {process.returncode}:\n{tail(log)}")
        if ready():
            return
        time.sleep(0.2)
    pytest.fail(f"{what} did not become ready in {START_TIMEOUT_SECS}s:\n{tail(log)}")


def accepts_connections(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def answers_http(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="session")
def moto_endpoint(request, tmp_path_factory) -> str:
    executable = VENV_BIN / "moto_server"
    if not executable.exists():
        pytest.fail(f"{executable} is missing: run scripts/setup")
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"

    process = start([str(executable), "-H", "127.0.0.1", "-p", str(port)], log, request)

    endpoint = f"http://127.0.0.1:{port}"
    wait_until(lambda: answers_http(f"{endpoint}/moto-api/"), process, log, "moto_server")
    return endpoint


@dataclass
class Aws:
    """Clients for the moto server, and the state tests observe through them."""

    endpoint: str
    dynamodb: Any
    sqs: Any
    observer_queue_url: str
    # UserCreated details seen on the observer queue, by user id.
    published: dict[str, dict[str, Any]] = field(default_factory=dict)

    def sent_emails(self) -> list[dict[str, Any]]:
        with urllib.request.urlopen(f"{self.endpoint}/moto-api/data.json", timeout=10) as r:
            return json.load(r).get("ses", {}).get("Message", [])

    def drain_observer(self, wait_for: str | None = None, timeout: float = 10) -> None:
        """Moves UserCreated events from the observer queue into `published`."""
        deadline = time.monotonic() + timeout
        while True:
            answer = self.sqs.receive_message(
                QueueUrl=self.observer_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
            )
            for message in answer.get("Messages", []):
                envelope = json.loads(message["Body"])
                detail = envelope["detail"]
                assert envelope["source"] == "edtech.user-service"
                assert envelope["detail-type"] == "UserCreated"
                self.published[detail["payload"]["userId"]] = detail
                self.sqs.delete_message(
                    QueueUrl=self.observer_queue_url, ReceiptHandle=message["ReceiptHandle"]
                )
            if wait_for is None and not answer.get("Messages"):
                return
            if wait_for is not None and wait_for in self.published:
                return
            if time.monotonic() > deadline:
                return

    def item(self, table: str, key: str, value: str) -> dict[str, Any] | None:
        answer = self.dynamodb.get_item(
            TableName=table, Key={key: {"S": value}}, ConsistentRead=True
        )
        return answer.get("Item")


@pytest.fixture(scope="session")
def aws(moto_endpoint) -> Aws:
    """Creates what the template would, in moto, plus an observer for the bus."""
    session = boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )
    dynamodb = session.client("dynamodb", endpoint_url=moto_endpoint)
    events = session.client("events", endpoint_url=moto_endpoint)
    sesv2 = session.client("sesv2", endpoint_url=moto_endpoint)
    sqs = session.client("sqs", endpoint_url=moto_endpoint)

    for table, key in ((USERS_TABLE, "pk"), (PROCESSED_EVENTS_TABLE, "eventId")):
        dynamodb.create_table(
            TableName=table,
            KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    events.create_event_bus(Name=BUS)
    # SES accepts mail from any address of a verified domain.
    sesv2.create_email_identity(EmailIdentity=SENDER.split("@", 1)[1])

    # Observe the bus through the rule pattern the template deploys.
    template = load_template()
    pattern = template["Resources"]["NotificationFunction"]["Properties"]["Events"][
        "UserCreated"
    ]["Properties"]["Pattern"]
    queue_url = sqs.create_queue(QueueName=OBSERVER_QUEUE)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    events.put_rule(
        Name="observe-user-created", EventBusName=BUS, EventPattern=json.dumps(pattern)
    )
    events.put_targets(
        Rule="observe-user-created",
        EventBusName=BUS,
        Targets=[{"Id": "observer", "Arn": queue_arn}],
    )

    aws = Aws(moto_endpoint, dynamodb, sqs, queue_url)
    for name in event_files():
        seed_user_for(aws, load_event(name))
    return aws


def seed_user_for(aws: Aws, event: dict[str, Any]) -> None:
    """Stores the user a GET event asks for, as the DynamoDB adapter writes users."""
    method = event.get("requestContext", {}).get("http", {}).get("method") or event.get(
        "httpMethod"
    )
    user_id = (event.get("pathParameters") or {}).get("id")
    if method != "GET" or not user_id:
        return
    aws.dynamodb.put_item(
        TableName=USERS_TABLE,
        Item={
            "pk": {"S": f"USER#{user_id}"},
            "userId": {"S": user_id},
            "email": {"S": "annie.easley@example.com"},
            "firstName": {"S": "Annie"},
            "lastName": {"S": "Easley"},
            "createdAt": {"S": "2026-12-03T11:59:00+00:00"},
            "eventId": {"S": "0193a5a0-1111-7000-8000-0000000000e9"},
            "eventPublished": {"BOOL": True},
        },
    )


@dataclass
class Invocation:
    """What `cargo lambda invoke` printed, and the end of the function's log."""

    returncode: int
    stdout: str
    stderr: str
    log: str

    def response(self) -> dict[str, Any]:
        assert self.returncode == 0, f"invoke failed:\n{self.stderr}\n{self.log}"
        return json.loads(self.stdout)

    def error_type(self) -> str:
        """The error type a failed invocation reported (`Error: <type>` on stderr)."""
        assert self.returncode != 0, f"invoke succeeded:\n{self.stdout}"
        match = re.search(r"Error:\s*(\S+)", self.stderr)
        assert match, f"no error type in:\n{self.stderr}\n{self.log}"
        return match.group(1)


@pytest.fixture(scope="session")
def invoke(request, tmp_path_factory, moto_endpoint) -> Callable[[str, str], Invocation]:
    """Runs both functions under `cargo lambda watch`; returns a function that invokes one."""
    if not (VENV_BIN / "cargo-lambda").exists():
        pytest.fail(f"{VENV_BIN / 'cargo-lambda'} is missing: run scripts/setup")
    directory = tmp_path_factory.mktemp("cargo-lambda")
    env_file = directory / "functions.env"
    env_file.write_text(
        "\n".join(
            f'{name}="{value}"'
            for name, value in {
                "AWS_ENDPOINT_URL": moto_endpoint,
                "AWS_REGION": REGION,
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_EC2_METADATA_DISABLED": "true",
                "EVENT_BUS_NAME": BUS,
                "USERS_TABLE": USERS_TABLE,
                "SENDER_EMAIL": SENDER,
                "PRODUCT_NAME": "Example Academy",
                "PROCESSED_EVENTS_TABLE": PROCESSED_EVENTS_TABLE,
            }.items()
        )
        + "\n",
        encoding="utf-8",
    )
    port = free_port()
    log = directory / "watch.log"

    process = start(
        [
            "cargo", "lambda", "watch", "--color", "never", "--ignore-changes",
            "--invoke-address", "127.0.0.1", "--invoke-port", str(port),
            "--env-file", str(env_file),
        ],
        log,
        request,
    )
    wait_until(lambda: accepts_connections(port), process, log, "cargo lambda watch")

    def run(function: str, event_file: str) -> Invocation:
        if process.poll() is not None:
            pytest.fail(f"cargo lambda watch exited with {process.returncode}:\n{tail(log)}")
        try:
            result = subprocess.run(
                [
                    "cargo", "lambda", "invoke", function, "--color", "never",
                    "--invoke-address", "127.0.0.1", "--invoke-port", str(port),
                    "--data-file", str(EVENTS / event_file), "--output-format", "json",
                ],
                cwd=ROOT,
                env=tool_env(),
                capture_output=True,
                text=True,
                timeout=INVOKE_TIMEOUT_SECS,
                check=False,
            )
        except subprocess.TimeoutExpired:
            pytest.fail(f"invoke of {function} timed out; watch log:\n{tail(log)}")
        return Invocation(result.returncode, result.stdout, result.stderr, tail(log))

    return run


# ------------------------------------------------------------------ helpers


def headers_of(response: dict[str, Any]) -> dict[str, str]:
    """Response headers, lower-cased, from `headers` and `multiValueHeaders` alike."""
    headers = {name.lower(): value for name, value in (response.get("headers") or {}).items()}
    for name, values in (response.get("multiValueHeaders") or {}).items():
        if values:
            headers.setdefault(name.lower(), values[0])
    return headers


def request_body(event: dict[str, Any]) -> dict[str, Any]:
    body = event["body"]
    if event.get("isBase64Encoded"):
        body = base64.b64decode(body).decode("utf-8")
    return json.loads(body)


# ------------------------------------------------------------------ tests


def test_every_event_file_has_an_expected_outcome():
    assert event_files() == set(EXPECTED)
    for name, expected in EXPECTED.items():
        assert expected["function"] in {"user-service", "notification"}, name
        outcomes = {"status", "outcome", "errorType"} & set(expected)
        assert len(outcomes) == 1, f"{name} needs exactly one of status/outcome/errorType"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_event_file_gives_its_expected_outcome(name, invoke, aws):
    expected = EXPECTED[name]
    event = load_event(name)
    emails_before = len(aws.sent_emails())

    result = invoke(expected["function"], name)

    if "status" in expected:
        check_http(result.response(), expected["status"], event, aws)
    elif "outcome" in expected:
        check_delivery(result.response(), expected["outcome"], event, aws)
    else:
        check_permanent_failure(result, expected["errorType"], event, aws, emails_before)


def check_http(response: dict[str, Any], status: int, event: dict[str, Any], aws: Aws) -> None:
    headers = headers_of(response)
    assert response["statusCode"] == status, response
    body = json.loads(response["body"])

    if status == 201:
        request = request_body(event)
        assert headers["content-type"] == "application/json"
        assert headers["location"] == f"/users/{body['id']}"
        assert body["email"] == request["email"].strip().lower()
        assert body["profile"] == request["profile"]
        stored = aws.item(USERS_TABLE, "pk", f"USER#{body['id']}")
        assert stored is not None and stored["eventPublished"] == {"BOOL": True}
        aws.drain_observer(wait_for=body["id"])
        published = aws.published.get(body["id"])
        assert published is not None, "UserCreated did not reach the bus"
        assert published["payload"]["email"] == body["email"]
        assert published["metadata"]["eventId"] == stored["eventId"]["S"]
    elif status == 200:
        assert headers["content-type"] == "application/json"
        assert body["id"] == event["pathParameters"]["id"]
        assert body["email"] == "annie.easley@example.com"
    else:
        assert headers["content-type"] == "application/problem+json"
        assert body["status"] == status
        if status == 422:
            assert {error["field"] for error in body["errors"]} == {"email"}
            aws.drain_observer()
            rejected = request_body(event)["email"]
            assert all(d["payload"]["email"] != rejected for d in aws.published.values())


def check_delivery(
    response: dict[str, Any], outcome: str, event: dict[str, Any], aws: Aws
) -> None:
    detail = event["detail"]
    assert response["outcome"] == outcome, response

    if outcome == "sent":
        (email,) = [m for m in aws.sent_emails() if m["id"] == response["messageId"]]
        assert email["source"] == SENDER
        assert email["destinations"]["ToAddresses"] == [detail["payload"]["email"]]
        record = aws.item(PROCESSED_EVENTS_TABLE, "eventId", detail["metadata"]["eventId"])
        assert record is not None and record["status"] == {"S": "COMPLETED"}


def check_permanent_failure(
    result: Invocation, error_type: str, event: dict[str, Any], aws: Aws, emails_before: int
) -> None:
    assert result.error_type().startswith("Permanent."), result.stderr
    assert result.error_type() == error_type
    assert len(aws.sent_emails()) == emails_before, "a failed event sent an email"
    event_id = event["detail"]["metadata"]["eventId"]
    assert aws.item(PROCESSED_EVENTS_TABLE, "eventId", event_id) is None
