"""Call plans per batch size: org API calls to deliver one batch of new candidates.

    .venv/bin/python bench/call_plans.py [--no-write]

Side by side, in the same run, on the same sandbox org (its own process, 127.0.0.1):

* *create plan* (the gateway without the ATS_Gateway_Id__c fields, and the plan of every
  earlier release): the dedupe query, one ``/composite`` of Contact collections, one of
  application collections;
* *upsert plan* (the default with the fields): the dedupe query, then ONE ``/composite`` whose
  subrequests upsert the Contacts and then the applications by ``ATS_Gateway_Id__c``, each
  application pointing at its new Contact by that key (``bpats__Contact__r``), so no
  ``@{ref}`` between subrequests is needed.

Counted by the sandbox's own counter (``/__sandbox__/usage``); one ``/composite`` is one call,
as in Salesforce. Appends to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from applications import Bench, candidates  # noqa: E402
from harness import append_results, machine_line  # noqa: E402

from ats_gateway.services.applications.org import ApplicationsDeliverer  # noqa: E402

SIZES = (1, 3, 10, 100, 500, 1000)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-write", action="store_true", help="do not append to RESULTS.md")
    args = parser.parse_args(argv)
    bench = Bench()
    keyed = bench.deliverer
    plain = ApplicationsDeliverer(
        bench.client,
        org_errors=keyed.org_errors,
        api_version=keyed.api_version,
        keyed=False,
    )
    assert keyed.is_keyed(), "the sandbox org lacks ATS_Gateway_Id__c"
    rows = []
    try:
        for size in SIZES:
            counts = {}
            for name, deliverer in (("create", plain), ("upsert", keyed)):
                bench.deliverer = deliverer
                tag = name[0] + uuid.uuid4().hex[:6]
                calls, secs, outcomes = bench.deliver(candidates(bench.job, tag, size))
                assert outcomes == {"delivered": size}, outcomes
                counts[name] = (calls, secs)
            rows.append((size, counts))
            print(size, counts, flush=True)
    finally:
        bench.close()
    lines = [
        f"## Call plans per batch size ({machine_line()})",
        "",
        "`bench/call_plans.py`: one batch of N new candidates (each a new Contact and an "
        "application), delivered by the worker's drain code; org API calls counted by the "
        "sandbox. Create plan = dedupe query + Contact collections + application collections "
        "(without the `ATS_Gateway_Id__c` fields); upsert plan = dedupe query + one `/composite` "
        "upserting Contacts then applications by `ATS_Gateway_Id__c` (the default).",
        "",
        "| new candidates per batch | create plan: calls | upsert plan: calls "
        "| create s | upsert s |",
        "|---|---|---|---|---|",
    ]
    for size, counts in rows:
        lines.append(
            f"| {size:,} | {counts['create'][0]} | {counts['upsert'][0]} | "
            f"{counts['create'][1]:.2f} | {counts['upsert'][1]:.2f} |"
        )
    lines.append("")
    text = "\n".join(lines)
    append_results(text, write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
