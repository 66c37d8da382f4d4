"""API usage counting (§7), request limits, and fault injection."""

from __future__ import annotations

import requests

from .conftest import VERSION, error_of

V = f"/services/data/v{VERSION}"


def _used(response: requests.Response) -> int:
    header = response.headers["Sforce-Limit-Info"]
    assert header.startswith("api-usage=")
    used, _, _limit = header.removeprefix("api-usage=").partition("/")
    return int(used)


def test_counting_rules(fresh):
    api = fresh.client("admin")  # the token request itself does not count
    usage = fresh.sandbox.usage
    assert usage.used == 0
    r = api.get("/limits")
    assert _used(r) == 1 and r.json()["DailyApiRequests"]["Remaining"] == usage.limit - 1
    assert _used(api.post("/sobjects/Account", json={"Name": "one"})) == 2
    composite = {
        "compositeRequest": [
            {"method": "GET", "url": f"{V}/limits", "referenceId": f"r{i}"} for i in range(10)
        ]
    }
    assert _used(api.post("/composite", json=composite)) == 3
    tree = {
        "records": [
            {"attributes": {"type": "Account", "referenceId": f"a{i}"}, "Name": f"t{i}"}
            for i in range(50)
        ]
    }
    assert _used(api.post("/composite/tree/Account", json=tree)) == 4
    coll = {"records": [{"attributes": {"type": "Account"}, "Name": f"c{i}"} for i in range(100)]}
    assert _used(api.post("/composite/sobjects", json=coll)) == 5
    batch = {"batchRequests": [{"method": "GET", "url": f"v{VERSION}/limits"}] * 3}
    assert _used(api.post("/composite/batch", json=batch)) == 8
    # errors count too; the version list does not, and carries no header
    assert _used(api.get("/sobjects/Nope__c/describe")) == 9
    assert (
        "Sforce-Limit-Info" not in requests.get(f"{fresh.url}/services/data/", timeout=10).headers
    )
    assert requests.get(f"{fresh.url}/__sandbox__/usage", timeout=10).json()["used"] == 9


def test_limit_exceeded(fresh):
    api = fresh.client("admin")
    r = requests.post(f"{fresh.url}/__sandbox__/usage", json={"used": 0, "limit": 2}, timeout=10)
    assert r.json() == {"used": 0, "limit": 2, "remaining": 2}
    assert api.get("/limits").status_code == 200
    assert api.get("/limits").status_code == 200
    over = api.get("/limits")
    assert over.status_code == 403
    assert error_of(over) == {
        "message": "TotalRequests Limit exceeded.",
        "errorCode": "REQUEST_LIMIT_EXCEEDED",
    }
    assert over.headers["Sforce-Limit-Info"] == "api-usage=2/2"
    requests.post(f"{fresh.url}/__sandbox__/usage", json={"reset": True}, timeout=10)
    assert api.get("/limits").status_code == 200


def test_uri_too_long(admin):
    r = admin.query("SELECT Id FROM Account WHERE Name = '" + "x" * 17000 + "'")
    assert r.status_code == 414


def test_faults_disabled_by_default(org):
    from sandbox_org import create_app
    from sandbox_org.server import start_in_thread

    with start_in_thread(create_app()) as handle:
        r = requests.post(f"{handle.url}/__sandbox__/faults", json={"error_rate": 1}, timeout=10)
        assert r.status_code == 404


def test_503_and_lock_faults_are_deterministic(fresh):
    api = fresh.client("admin")
    faults = f"{fresh.url}/__sandbox__/faults"

    def run() -> list[int]:
        requests.post(faults, json={"error_rate": 0.5, "seed": 7}, timeout=10)
        return [api.get("/limits").status_code for _ in range(20)]

    first, second = run(), run()
    assert first == second
    assert set(first) == {200, 503}
    requests.delete(faults, timeout=10)
    down = requests.post(faults, json={"error_rate": 1.0}, timeout=10)
    assert down.json()["error_rate"] == 1.0
    r = api.get("/limits")
    assert r.status_code == 503 and error_of(r)["errorCode"] == "SERVER_UNAVAILABLE"
    requests.post(faults, json={"error_rate": 0, "lock_rate": 1.0}, timeout=10)
    locked = api.post("/sobjects/Account", json={"Name": "locked"})
    assert locked.status_code == 400
    assert error_of(locked)["errorCode"] == "UNABLE_TO_LOCK_ROW"
    assert api.query("SELECT COUNT() FROM Account WHERE Name = 'locked'").json()["totalSize"] == 0
    coll = {"records": [{"attributes": {"type": "Account"}, "Name": "locked"}]}
    item = api.post("/composite/sobjects", json=coll).json()[0]
    assert item["errors"][0]["statusCode"] == "UNABLE_TO_LOCK_ROW"
    requests.delete(faults, timeout=10)
    assert api.post("/sobjects/Account", json={"Name": "unlocked"}).status_code == 201


def test_latency_and_budget_through_faults(fresh):
    r = requests.post(
        f"{fresh.url}/__sandbox__/faults",
        json={"latency_ms": 5, "api_limit": 50, "api_used": 10},
        timeout=10,
    )
    assert r.json()["latency_ms"] == 5.0
    assert r.json()["usage"] == {"used": 10, "limit": 50, "remaining": 40}
    api = fresh.client("admin")
    assert api.get("/limits").headers["Sforce-Limit-Info"] == "api-usage=11/50"


def test_tls_with_a_self_signed_certificate():
    from sandbox_org import create_app
    from sandbox_org.server import start_in_thread

    with start_in_thread(create_app(), tls=True) as handle:
        assert handle.url.startswith("https://")
        r = requests.get(f"{handle.url}/services/data/", verify=str(handle.cert_path), timeout=10)
        assert r.status_code == 200


def test_concurrent_writes_and_rollbacks(fresh):
    from concurrent.futures import ThreadPoolExecutor

    token = fresh.token("admin")

    def work(i: int) -> list[str]:
        from .conftest import Api

        api = Api(fresh.url, token)
        made = [api.create("Account", {"Name": f"conc {i}-{n}"}) for n in range(10)]
        body = {
            "allOrNone": True,
            "records": [
                {"attributes": {"type": "Account"}, "Name": f"rolled {i}"},
                {"attributes": {"type": "Contact"}, "FirstName": "no last name"},
            ],
        }
        assert api.post("/composite/sobjects", json=body).status_code == 200
        return made

    with ThreadPoolExecutor(8) as pool:
        made = [rid for batch in pool.map(work, range(8)) for rid in batch]
    assert len(set(made)) == 80
    api = fresh.client("admin")
    assert (
        api.query("SELECT COUNT() FROM Account WHERE Name LIKE 'conc %'").json()["totalSize"] == 80
    )
    assert (
        api.query("SELECT COUNT() FROM Account WHERE Name LIKE 'rolled %'").json()["totalSize"] == 0
    )
