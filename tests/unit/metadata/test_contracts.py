"""Resource contracts: loading, and checking against the describe at start."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ats_gateway.metadata.contracts import check_contract, load_contracts
from ats_gateway.metadata.describe import ContractError, ObjectDescribe, SnapshotDescribes

from .conftest import SCHEMAS, make_metadata, snapshot


def copy_schemas(tmp_path: Path) -> Path:
    target = tmp_path / "schemas"
    shutil.copytree(SCHEMAS, target)
    return target


def test_every_contract_loads_and_fits_its_snapshot():
    contracts = load_contracts(SCHEMAS)
    assert set(contracts) == {
        "job",
        "job_filters",
        "application",
        "interview_feedback",
        "topic_feedback",
    }
    for contract in contracts.values():
        assert check_contract(contract, ObjectDescribe(snapshot(contract.object))) == []


def test_job_contract_has_the_public_filter():
    job = load_contracts(SCHEMAS)["job"]
    conditions = {(c.field, c.op) for c in job.fixed_filter}
    assert conditions == {
        ("bpats__Status__c", "="),
        ("bpats__Post_to_Job_Board__c", "="),
        ("bpats__End_Date__c", ">="),
    }
    end = next(c for c in job.fixed_filter if c.field == "bpats__End_Date__c")
    assert end.date_literal == "TODAY" and end.or_null
    assert "department" in job.public_names("facet")
    assert "description" in job.public_names("search")


def test_application_contract_publishes_resume_limits():
    rule = load_contracts(SCHEMAS)["application"].resume
    assert rule is not None and rule.max_bytes == 5 * 1024 * 1024
    assert set(rule.types) == {"pdf", "doc", "docx", "rtf", "txt"}


def test_a_field_the_describe_lacks_fails_at_start_naming_both(tmp_path):
    schemas = copy_schemas(tmp_path)
    path = schemas / "resources" / "application.toml"
    path.write_text(
        path.read_text() + '\n[fields.portfolio_url]\napi_name = "bpats__Portfolio_URL__c"\n'
    )
    metadata = make_metadata(schemas_dir=schemas)
    with pytest.raises(ContractError) as info:
        metadata.check()
    message = str(info.value)
    assert "portfolio_url" in message and "bpats__Portfolio_URL__c" in message
    assert "bpats__Job_Board_Application__c" in message


def test_a_filter_on_a_field_that_is_not_filterable_fails(tmp_path):
    schemas = copy_schemas(tmp_path)
    path = schemas / "resources" / "job_filters.toml"
    path.write_text(path.read_text() + '\n[filters.title]\nfield = "title"\nop = "in"\n')
    with pytest.raises(ContractError, match="'title' is not filterable"):
        load_contracts(schemas)


def test_a_required_org_field_not_covered_by_the_contract_is_a_warning(tmp_path):
    contract = load_contracts(SCHEMAS)["application"]
    describe = snapshot(contract.object)
    for field in describe["fields"]:
        if field["name"] == "bpats__Cover_Letter__c":
            field["nillable"] = False
    narrowed = type(contract)(
        **{
            **contract.__dict__,
            "fields": {k: v for k, v in contract.fields.items() if k != "cover_letter"},
        }
    )
    [warning] = check_contract(narrowed, ObjectDescribe(describe))
    assert "bpats__Cover_Letter__c" in warning and "required on create" in warning


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ('[resource]\nname="x"\nobject="A"\nconnection="c"\nkind="weird"\n', "kind must be"),
        (
            '[resource]\nname="x"\nobject="A"\nconnection="c"\nkind="input"\n'
            '[fields.Bad]\napi_name="A"\n',
            "not snake_case",
        ),
        (
            '[resource]\nname="x"\nobject="A"\nconnection="c"\nkind="input"\n'
            '[fields.a]\napi_name="A"\nfilterabel=true\n',
            "unknown keys",
        ),
        ('[resource]\nname="x"\nconnection="c"\nkind="input"\n', "needs `object`"),
    ],
)
def test_malformed_contracts_say_what_is_wrong(tmp_path, text, error):
    (tmp_path / "resources").mkdir()
    (tmp_path / "resources" / "x.toml").write_text(text)
    with pytest.raises(ContractError, match=error):
        load_contracts(tmp_path)


def test_snapshot_describes_read_each_file_once_and_answer_none_without_one(tmp_path):
    objects = tmp_path / "objects"
    objects.mkdir()
    shutil.copy(SCHEMAS / "objects" / "Contact.json", objects / "Contact.json")
    describes = SnapshotDescribes(tmp_path)
    assert describes("Contact") == snapshot("Contact")
    (objects / "Contact.json").unlink()  # read once: the cached describe still answers
    assert describes("Contact")["name"] == "Contact"
    assert describes("bpats__Nothing__c") is None
