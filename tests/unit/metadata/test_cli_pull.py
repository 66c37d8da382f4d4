"""`ats-gateway schemas pull`: fresh snapshots with stable formatting."""

from __future__ import annotations

import argparse
import io
import json

from ats_gateway.cli import build_parser
from ats_gateway.config import ConnectionConfig, Settings
from ats_gateway.metadata.cli import cmd_pull

from .conftest import SCHEMAS, FakeOrg


class FakeClient:
    def __init__(self, org: FakeOrg) -> None:
        self.org = org
        self.described: list[str] = []

    def describe(self, sobject: str):
        self.described.append(sobject)
        return self.org.fetcher(sobject)


def settings_for(tmp_path):
    conn = ConnectionConfig(name="job_portal", login_url="https://login.example", client_id="x")
    return Settings.from_env(
        {},
        schemas_dir=str(tmp_path),
        connections={
            "job_portal": conn,
            "interview_feedback": ConnectionConfig("interview_feedback"),
        },
    )


def pull(tmp_path, client, *objects):
    out = io.StringIO()
    args = argparse.Namespace(connection="job_portal", objects=list(objects), dir=None)
    code = cmd_pull(
        args, settings=settings_for(tmp_path), client_factory=lambda s, n: client, out=out
    )
    return code, out.getvalue()


def test_pull_writes_every_object_the_connection_uses(tmp_path):
    (tmp_path / "resources").mkdir()
    for path in (SCHEMAS / "resources").glob("*.toml"):
        (tmp_path / "resources" / path.name).write_text(path.read_text())
    org = FakeOrg()
    client = FakeClient(org)
    code, text = pull(tmp_path, client)
    assert code == 0
    assert set(client.described) == {
        "bpats__Job__c",
        "bpats__Job_Board_Application__c",
        "Contact",
        "ContentVersion",
    }
    written = tmp_path / "objects" / "bpats__Job__c.json"
    # stable formatting: identical to the shipped snapshot, so a diff shows only real changes
    assert written.read_text() == (SCHEMAS / "objects" / "bpats__Job__c.json").read_text()
    assert "bpats__Job__c: new" in text

    org.change_field("bpats__Job__c", "bpats__City__c", length=60)
    code, text = pull(tmp_path, client)
    assert "bpats__Job__c: updated" in text and "Contact: unchanged" in text
    city = next(
        f for f in json.loads(written.read_text())["fields"] if f["name"] == "bpats__City__c"
    )
    assert city["length"] == 60


def test_pull_reports_failures_and_exits_non_zero(tmp_path):
    org = FakeOrg()
    org.down = True
    code, _ = pull(tmp_path, FakeClient(org), "bpats__Job__c")
    assert code == 1


def test_commands_are_wired_into_the_cli():
    parser = build_parser()
    args = parser.parse_args(["schemas", "pull", "--connection", "job_portal"])
    assert args.handler is cmd_pull and args.connection == "job_portal"
    args = parser.parse_args(["doctor", "--connection", "interview_feedback"])
    assert args.connection == ["interview_feedback"]
