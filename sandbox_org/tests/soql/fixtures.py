"""A small in-memory org for the SOQL tests: describes in the real describe shape and rows."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from sandbox_org.soql.literals import to_18

_SOAP = {
    "id": "tns:ID",
    "reference": "tns:ID",
    "boolean": "xsd:boolean",
    "date": "xsd:date",
    "datetime": "xsd:dateTime",
    "currency": "xsd:double",
    "double": "xsd:double",
    "int": "xsd:int",
}


def fld(name: str, type_: str = "string", **extra: Any) -> dict[str, Any]:
    field = {
        "name": name,
        "type": type_,
        "soapType": _SOAP.get(type_, "xsd:string"),
        "referenceTo": [],
        "relationshipName": None,
        "filterable": True,
        "sortable": True,
    }
    field.update(extra)
    return field


def ref(name: str, to: list[str], relationship: str) -> dict[str, Any]:
    return fld(name, "reference", referenceTo=to, relationshipName=relationship)


def _system(owner: bool = True) -> list[dict[str, Any]]:
    fields = [
        fld("Id", "id"),
        fld("IsDeleted", "boolean"),
        fld("CreatedDate", "datetime"),
        fld("LastModifiedDate", "datetime"),
    ]
    if owner:
        fields.append(ref("OwnerId", ["User"], "Owner"))
    return fields


def _obj(name: str, prefix: str, fields: list, children: list | None = None) -> dict:
    return {
        "name": name,
        "keyPrefix": prefix,
        "fields": fields,
        "childRelationships": children or [],
    }


DESCRIBES: dict[str, dict[str, Any]] = {
    "User": _obj("User", "005", [*_system(owner=False), fld("Name"), fld("Email", "email")]),
    "Account": _obj(
        "Account",
        "001",
        [*_system(), fld("Name"), fld("Industry", "picklist"), fld("Website", "url")],
        [{"childSObject": "Contact", "field": "AccountId", "relationshipName": "Contacts"}],
    ),
    "Contact": _obj(
        "Contact",
        "003",
        [
            *_system(),
            fld("FirstName"),
            fld("LastName"),
            fld("Email", "email"),
            ref("AccountId", ["Account"], "Account"),
        ],
        [
            {
                "childSObject": "bpats__Job_Board_Application__c",
                "field": "bpats__Contact__c",
                "relationshipName": "bpats__Job_Board_Applications__r",
            }
        ],
    ),
    "bpats__Job__c": _obj(
        "bpats__Job__c",
        "a0M",
        [
            *_system(),
            fld("Name"),
            fld("bpats__Job_Title__c"),
            fld("bpats__Status__c", "picklist"),
            fld("bpats__End_Date__c", "date"),
            fld("bpats__Post_to_Job_Board__c", "boolean"),
            fld("bpats__Salary_Min__c", "currency"),
            fld("bpats__Openings__c", "int"),
            fld("bpats__Skills__c", "multipicklist", sortable=False),
            fld("bpats__Description__c", "textarea", filterable=False, sortable=False),
            ref("bpats__Account__c", ["Account"], "bpats__Account__r"),
        ],
        [
            {
                "childSObject": "bpats__Job_Board_Application__c",
                "field": "bpats__Job__c",
                "relationshipName": "bpats__Job_Board_Applications__r",
            }
        ],
    ),
    "bpats__Job_Board_Application__c": _obj(
        "bpats__Job_Board_Application__c",
        "a0J",
        [
            *_system(),
            fld("Name"),
            ref("bpats__Job__c", ["bpats__Job__c"], "bpats__Job__r"),
            ref("bpats__Contact__c", ["Contact"], "bpats__Contact__r"),
            fld("bpats__Email__c", "email"),
            fld("bpats__Status__c", "picklist"),
            fld("bpats__Consent_Date__c", "datetime"),
        ],
    ),
}


def make_id(prefix: str, n: int) -> str:
    return to_18(f"{prefix}{n:012d}")  # type: ignore[return-value]


def _dt(day: str, time: str = "10:00:00") -> str:
    return f"{day}T{time}.000+0000"


USER_1 = make_id("005", 1)
ACC_1, ACC_2 = make_id("001", 1), make_id("001", 2)
CON_1, CON_2, CON_3 = make_id("003", 1), make_id("003", 2), make_id("003", 3)
JOB = [make_id("a0M", i) for i in range(1, 7)]
APP = [make_id("a0J", i) for i in range(1, 6)]


def _job(i: int, **values: Any) -> dict[str, Any]:
    row = {
        "Id": JOB[i - 1],
        "IsDeleted": False,
        "CreatedDate": _dt(f"2024-01-0{i}"),
        "LastModifiedDate": _dt(f"2024-01-0{i}"),
        "OwnerId": USER_1,
        "Name": f"JOB-{i}",
        "bpats__Job_Title__c": None,
        "bpats__Status__c": "Open",
        "bpats__End_Date__c": None,
        "bpats__Post_to_Job_Board__c": False,
        "bpats__Salary_Min__c": None,
        "bpats__Openings__c": None,
        "bpats__Skills__c": None,
        "bpats__Description__c": None,
        "bpats__Account__c": None,
    }
    row.update(values)
    return row


def _base(id_: str, **values: Any) -> dict[str, Any]:
    row = {
        "Id": id_,
        "IsDeleted": False,
        "CreatedDate": _dt("2024-01-01"),
        "LastModifiedDate": _dt("2024-01-01"),
        "OwnerId": USER_1,
    }
    row.update(values)
    return row


ROWS: dict[str, list[dict[str, Any]]] = {
    "User": [
        {
            "Id": USER_1,
            "IsDeleted": False,
            "CreatedDate": _dt("2024-01-01"),
            "LastModifiedDate": _dt("2024-01-01"),
            "Name": "Integration User",
            "Email": "int@example.com",
        }
    ],
    "Account": [
        _base(ACC_1, Name="Acme", Industry="Energy", Website=None),
        _base(ACC_2, Name="Globex", Industry=None, Website="https://globex.example"),
    ],
    "Contact": [
        _base(
            CON_1, FirstName="Ada", LastName="Lovelace", Email="ada@example.com", AccountId=ACC_1
        ),
        _base(CON_2, FirstName="Alan", LastName="Turing", Email="alan@example.com", AccountId=None),
        _base(CON_3, FirstName=None, LastName="O'Brien", Email=None, AccountId=ACC_2),
    ],
    "bpats__Job__c": [
        _job(
            1,
            bpats__Job_Title__c="Senior Engineer",
            bpats__End_Date__c="2024-03-31",
            bpats__Post_to_Job_Board__c=True,
            bpats__Salary_Min__c=90000.0,
            bpats__Openings__c=2,
            bpats__Skills__c="Python;SQL",
            bpats__Account__c=ACC_1,
        ),
        _job(
            2,
            bpats__Job_Title__c="sales lead",
            bpats__Status__c="On Hold",
            bpats__End_Date__c="2024-02-15",
            bpats__Salary_Min__c=50000.0,
            bpats__Openings__c=1,
            bpats__Skills__c="Negotiation",
            bpats__Account__c=ACC_2,
        ),
        _job(
            3,
            bpats__Job_Title__c="Data Analyst 100%",
            bpats__Status__c="Closed",
            bpats__Post_to_Job_Board__c=True,
            bpats__Salary_Min__c=70000.5,
            bpats__Skills__c="SQL;Excel;Python",
        ),
        _job(4, bpats__Job_Title__c="Engineer_Intern", bpats__Openings__c=5),
        _job(5, bpats__Job_Title__c="Deleted job", IsDeleted=True),
        _job(6, bpats__Job_Title__c="It's a job", bpats__Status__c=None),
    ],
    "bpats__Job_Board_Application__c": [
        _base(
            APP[0],
            Name="JBA-000001",
            bpats__Job__c=JOB[0],
            bpats__Contact__c=CON_1,
            bpats__Email__c="ada@example.com",
            bpats__Status__c="New",
            bpats__Consent_Date__c=_dt("2024-02-01", "08:30:00"),
        ),
        _base(
            APP[1],
            Name="JBA-000002",
            bpats__Job__c=JOB[0],
            bpats__Contact__c=CON_2,
            bpats__Email__c="alan@example.com",
            bpats__Status__c="In Review",
            bpats__Consent_Date__c=_dt("2024-02-02", "23:59:59"),
        ),
        _base(
            APP[2],
            Name="JBA-000003",
            bpats__Job__c=JOB[1],
            bpats__Contact__c=CON_1,
            bpats__Email__c="ada@example.com",
            bpats__Status__c="Rejected",
            bpats__Consent_Date__c=None,
        ),
        _base(
            APP[3],
            Name="JBA-000004",
            bpats__Job__c=JOB[0],
            bpats__Contact__c=CON_3,
            bpats__Email__c="obrien@example.com",
            bpats__Status__c="New",
            bpats__Consent_Date__c=None,
            IsDeleted=True,
        ),
        _base(
            APP[4],
            Name="JBA-000005",
            bpats__Job__c=JOB[4],
            bpats__Contact__c=CON_2,
            bpats__Email__c="alan@example.com",
            bpats__Status__c="New",
            bpats__Consent_Date__c=None,
        ),
    ],
}


class MemorySource:
    """A RecordSource over dicts; ``hidden`` objects behave as unreadable (describe -> None)."""

    def __init__(
        self,
        describes: dict[str, dict[str, Any]] | None = None,
        rows: dict[str, list[dict[str, Any]]] | None = None,
        hidden: Iterable[str] = (),
    ) -> None:
        self.describes = copy.deepcopy(describes if describes is not None else DESCRIBES)
        self.rows = copy.deepcopy(rows if rows is not None else ROWS)
        self.hidden = {name.lower() for name in hidden}
        self.by_id = {row["Id"]: row for rows_ in self.rows.values() for row in rows_}
        self.record_calls = 0

    def _name(self, sobject: str) -> str | None:
        for name in self.describes:
            if name.lower() == sobject.lower() and name.lower() not in self.hidden:
                return name
        return None

    def describe(self, sobject: str) -> dict | None:
        name = self._name(sobject)
        return self.describes[name] if name else None

    def records(self, sobject: str, *, include_deleted: bool) -> Iterable[dict]:
        name = self._name(sobject)
        rows = self.rows.get(name or "", [])
        return [row for row in rows if include_deleted or not row.get("IsDeleted")]

    def record(self, sobject: str, record_id: str) -> dict | None:
        self.record_calls += 1
        row = self.by_id.get(record_id)
        name = self._name(sobject)
        if row is None or name is None or row not in self.rows.get(name, []):
            return None
        return row
