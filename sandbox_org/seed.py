"""``--seed demo``: a realistic, reproducible Asymbl ATS org, and the demo integration users.

Everything comes from one ``random.Random(SEED)``, so two seeds of the same size hold the same
records (dates are offsets from the day of seeding, so "open" jobs stay open). Records are
built as whole rows and written with one ``executemany`` per object: 10,000 jobs load in a
few seconds.

``DEMO_CREDENTIALS`` (connection name -> username, password, security token, client id,
client secret) is what ``ats-gateway dev`` / ``sandbox`` print and configure the gateway with.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from sandbox_org.dml import format_auto_number, now_iso

SEED = 20240501


class DemoUsers(tuple):
    """The demo users, in order; also indexable by connection name (``DEMO_USERS["admin"]``)."""

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, str):
            for user in self:
                if user["key"] == index:
                    return user
            raise KeyError(index)
        return super().__getitem__(index)


DEMO_USERS = DemoUsers(
    (
        {
            "key": "job_portal",
            "username": "job-portal@ats-sandbox.example.com",
            "password": "JobPortal-Demo-1",
            "security_token": "JPdemoTOKEN0000000000001",
            "client_id": "3MVG9SANDBOXjobportal.DemoConsumerKey0000000000000001",
            "client_secret": "JOBPORTALDEMOSECRET0000000000000000000000000000000001",
            "first_name": "Job Portal",
            "last_name": "Integration",
            "permission_sets": ["bpats__Asymbl_ATS_Job_Portal", "ATS_Gateway_Candidate_Intake"],
            "refresh_token": "5Aep861SANDBOXjobportalRefreshToken0000000000000001",
        },
        {
            "key": "interview_feedback",
            "username": "interview-feedback@ats-sandbox.example.com",
            "password": "Feedback-Demo-1",
            "security_token": "IFdemoTOKEN0000000000002",
            "client_id": "3MVG9SANDBOXfeedback.DemoConsumerKey00000000000000002",
            "client_secret": "FEEDBACKDEMOSECRET00000000000000000000000000000000002",
            "first_name": "Interview Feedback",
            "last_name": "Integration",
            "permission_sets": ["bpats__External_Interview_Feedback"],
            "refresh_token": "5Aep861SANDBOXfeedbackRefreshToken00000000000000002",
        },
        {
            "key": "admin",
            "username": "admin@ats-sandbox.example.com",
            "password": "Admin-Demo-1",
            "security_token": "ADdemoTOKEN0000000000003",
            "client_id": "3MVG9SANDBOXadmin.DemoConsumerKey0000000000000000003",
            "client_secret": "ADMINDEMOSECRET0000000000000000000000000000000000003",
            "first_name": "Sandbox",
            "last_name": "Admin",
            "permission_sets": ["bpats__Asymbl_ATS_Admin"],
            "refresh_token": "5Aep861SANDBOXadminRefreshToken000000000000000003",
        },
        {
            # The job_portal connection's user without Candidate Intake: `ats-gateway doctor` must
            # name the missing permission set.
            "key": "job_portal_no_intake",
            "username": "job-portal-no-intake@ats-sandbox.example.com",
            "password": "JobPortal-Demo-2",
            "security_token": "JNdemoTOKEN0000000000004",
            "client_id": "3MVG9SANDBOXnointake.DemoConsumerKey000000000000000004",
            "client_secret": "NOINTAKEDEMOSECRET00000000000000000000000000000000004",
            "first_name": "Job Portal",
            "last_name": "Without Intake",
            "permission_sets": ["bpats__Asymbl_ATS_Job_Portal"],
            "refresh_token": None,
        },
    )
)

DEMO_CREDENTIALS: dict[str, dict[str, str]] = {
    u["key"]: {
        "username": u["username"],
        "password": u["password"],
        "security_token": u["security_token"],
        "client_id": u["client_id"],
        "client_secret": u["client_secret"],
    }
    for u in DEMO_USERS
}

CITIES = [
    ("San Francisco", "CA", "United States", "94105", "USD"),
    ("New York", "NY", "United States", "10001", "USD"),
    ("Austin", "TX", "United States", "73301", "USD"),
    ("Chicago", "IL", "United States", "60601", "USD"),
    ("Seattle", "WA", "United States", "98101", "USD"),
    ("Boston", "MA", "United States", "02108", "USD"),
    ("Denver", "CO", "United States", "80202", "USD"),
    ("Atlanta", "GA", "United States", "30303", "USD"),
    ("Toronto", "ON", "Canada", "M5H 2N2", "CAD"),
    ("Vancouver", "BC", "Canada", "V6B 1A1", "CAD"),
    ("London", None, "United Kingdom", "EC1A 1BB", "GBP"),
    ("Manchester", None, "United Kingdom", "M1 1AE", "GBP"),
    ("Berlin", None, "Germany", "10115", "EUR"),
    ("Munich", "BY", "Germany", "80331", "EUR"),
    ("Paris", None, "France", "75001", "EUR"),
    ("Amsterdam", None, "Netherlands", "1012 JS", "EUR"),
    ("Dublin", None, "Ireland", "D02 X285", "EUR"),
    ("Madrid", None, "Spain", "28013", "EUR"),
    ("Sydney", "NSW", "Australia", "2000", "AUD"),
    ("Melbourne", "VIC", "Australia", "3000", "AUD"),
    ("Bengaluru", "KA", "India", "560001", "INR"),
    ("Pune", "MH", "India", "411001", "INR"),
]

TITLES = {
    "Engineering": [
        "Software Engineer",
        "Backend Engineer",
        "Frontend Engineer",
        "Site Reliability Engineer",
        "Data Engineer",
        "Salesforce Developer",
        "QA Engineer",
        "Engineering Manager",
        "Machine Learning Engineer",
        "Security Engineer",
    ],
    "Sales": [
        "Account Executive",
        "Sales Development Representative",
        "Sales Engineer",
        "Regional Sales Manager",
    ],
    "Marketing": [
        "Product Marketing Manager",
        "Content Marketing Specialist",
        "Demand Generation Manager",
        "Brand Designer",
    ],
    "Finance": ["Financial Analyst", "Accountant", "Payroll Specialist", "Controller"],
    "Operations": [
        "Operations Analyst",
        "Supply Chain Coordinator",
        "Office Manager",
        "Program Manager",
    ],
    "Customer Success": [
        "Customer Success Manager",
        "Support Engineer",
        "Implementation Consultant",
        "Technical Account Manager",
    ],
    "People": ["Technical Recruiter", "HR Business Partner", "People Operations Specialist"],
    "Legal": ["Corporate Counsel", "Paralegal", "Compliance Analyst"],
}
LEVELS = ["Junior", "", "", "Senior", "Senior", "Staff", "Lead", "Principal"]
STATUSES = [("Open", 60), ("On Hold", 8), ("Filled", 12), ("Closed", 15), ("Cancelled", 5)]
EMPLOYMENT = [
    ("Full-time", 70),
    ("Part-time", 6),
    ("Contract", 10),
    ("Contract to Hire", 6),
    ("Temporary", 4),
    ("Internship", 4),
]
WORKPLACE = [("On-site", 35), ("Hybrid", 40), ("Remote", 25)]
COMPANIES = [
    "Acme Robotics",
    "Blue Harbor Logistics",
    "Cedar Health",
    "Northwind Traders",
    "Orbit Analytics",
    "Pinecrest Bank",
    "Quantum Retail",
    "Redwood Energy",
    "Silverline Media",
    "Summit Consulting",
    "Tidewater Foods",
    "Umbra Security",
    "Vertex Manufacturing",
    "Willow Education",
    "Zephyr Airlines",
    "Asymbl Demo Co",
]
INDUSTRIES = [
    "Technology",
    "Finance",
    "Healthcare",
    "Manufacturing",
    "Retail",
    "Energy",
    "Media",
    "Consulting",
    "Education",
    "Banking",
]
FIRST = [
    "Ava",
    "Liam",
    "Mia",
    "Noah",
    "Zoe",
    "Ethan",
    "Priya",
    "Arjun",
    "Sofia",
    "Lucas",
    "Chloe",
    "Mateo",
    "Hana",
    "Kenji",
    "Amara",
    "Oliver",
    "Fatima",
    "Diego",
    "Elena",
    "Samuel",
    "Ines",
    "Tomas",
    "Leah",
    "Omar",
]
LAST = [
    "Nguyen",
    "Smith",
    "Garcia",
    "Patel",
    "Kim",
    "Muller",
    "Rossi",
    "Okafor",
    "Silva",
    "Johnson",
    "Dubois",
    "Tanaka",
    "Hughes",
    "Novak",
    "Andersen",
    "Khan",
    "Lopez",
    "Brown",
    "Schmidt",
    "Ivanova",
]
TOPICS = [
    ("Problem solving", "Breaks down ambiguous problems and reasons about trade-offs."),
    ("Communication", "Explains ideas clearly to technical and non-technical audiences."),
    ("System design", "Designs scalable, maintainable systems."),
    ("Coding", "Writes correct, readable code under realistic constraints."),
    ("Collaboration", "Works well with others and gives and receives feedback."),
    ("Ownership", "Drives work to completion and takes responsibility for outcomes."),
    ("Customer focus", "Understands and advocates for customer needs."),
    ("Negotiation", "Handles objections and reaches mutually beneficial agreements."),
    ("Domain knowledge", "Depth in the role's domain."),
    ("Leadership", "Sets direction and grows the people around them."),
    ("Analytical skills", "Uses data to reach sound conclusions."),
    ("Culture add", "Brings new perspectives aligned with company values."),
]
TEMPLATES = [
    ("Engineering Interview Loop", [0, 3, 2, 4, 5]),
    ("Sales Interview", [1, 7, 6, 5]),
    ("Manager Interview", [9, 1, 4, 0]),
    ("General Screen", [1, 11, 0]),
    ("Analyst Interview", [10, 0, 1, 8]),
]
TEMPLATE_FOR_DEPT = {
    "Engineering": 0,
    "Sales": 1,
    "Marketing": 3,
    "Finance": 4,
    "Operations": 4,
    "Customer Success": 1,
    "People": 3,
    "Legal": 3,
}


def _pick(rng: random.Random, weighted: list[tuple[str, int]]) -> str:
    values, weights = zip(*weighted, strict=True)
    return rng.choices(values, weights=weights)[0]


class _Builder:
    """Whole rows with system fields, ids and auto numbers, for bulk insertion."""

    def __init__(self, sb: Any, owner_id: str) -> None:
        self.sb = sb
        self.owner = owner_id
        self.stamp = now_iso()
        self.rows: dict[str, list[dict[str, Any]]] = {}
        self._templates: dict[str, dict[str, Any]] = {}

    def row(self, sobject: str, **values: Any) -> dict[str, Any]:
        obj = self.sb.schema.objects[sobject]
        template = self._templates.get(sobject)
        if template is None:
            template = {}
            for f in obj.describe["fields"]:
                template[f["name"]] = f["defaultValue"] if f["type"] == "boolean" else None
                for p in f["picklistValues"]:
                    if p["defaultValue"]:
                        template[f["name"]] = p["value"]
            self._templates[sobject] = template
        rec = dict(template)
        rec.update(
            Id=self.sb.store.ids.new(obj.key_prefix),
            IsDeleted=False,
            CreatedDate=values.pop("CreatedDate", self.stamp),
            CreatedById=self.owner,
            LastModifiedDate=self.stamp,
            LastModifiedById=self.owner,
            SystemModstamp=self.stamp,
        )
        if "OwnerId" in rec:
            rec["OwnerId"] = self.owner
        if obj.auto_number:
            rec["Name"] = format_auto_number(obj.auto_number, len(self.rows.get(sobject, [])) + 1)
        rec.update(values)
        if sobject == "Contact":
            rec["Name"] = " ".join(p for p in (rec.get("FirstName"), rec.get("LastName")) if p)
        self.rows.setdefault(sobject, []).append(rec)
        return rec

    def flush(self) -> dict[str, int]:
        counts = {}
        for sobject, rows in self.rows.items():
            self.sb.store.put_many(sobject, rows)
            obj = self.sb.schema.objects[sobject]
            if obj.auto_number:
                self.sb.store.set_counter(sobject, len(rows))
            counts[sobject] = len(rows)
        return counts


def _description(rng: random.Random, title: str, dept: str, company: str, wp: str) -> str:
    duties = rng.sample(
        [
            "Partner with cross-functional teams to deliver outcomes for our customers",
            "Own projects end to end, from discovery to delivery",
            "Mentor teammates and contribute to a culture of learning",
            "Improve our processes and tooling with data-driven decisions",
            "Communicate progress clearly to stakeholders",
            "Build trusted relationships with customers and partners",
            "Help shape the roadmap of the " + dept + " team",
        ],
        4,
    )
    skills = rng.sample(
        [
            "3+ years of relevant experience",
            "Excellent written and verbal communication",
            "Comfort with ambiguity and a bias for action",
            "Experience with Salesforce or another CRM",
            "A collaborative, low-ego working style",
            "Strong analytical skills",
            "Fluency in English; a second language is a plus",
        ],
        3,
    )
    return (
        f"<h2>{title}</h2>"
        f"<p>{company} is hiring a <strong>{title}</strong> to join the {dept} team "
        f"({wp.lower()}).</p>"
        "<h3>What you will do</h3><ul>"
        + "".join(f"<li>{d}</li>" for d in duties)
        + "</ul><h3>What you bring</h3><ul>"
        + "".join(f"<li>{s}</li>" for s in skills)
        + "</ul><p>We are an equal opportunity employer.</p>"
    )


def seed_org(sb: Any, *, jobs: int = 500, seed: int = SEED) -> dict[str, int]:
    """Fill an empty sandbox with the demo org; returns record counts by object."""
    rng = random.Random(seed)
    admin = sb.users.get("admin")
    owner = admin.user_id if admin else sb.store.all("User")[0]["Id"]
    b = _Builder(sb, owner)
    today = datetime.now(UTC).date()

    accounts = [
        b.row(
            "Account",
            Name=name,
            Website=f"https://www.{name.lower().replace(' ', '')}.example.com",
            Industry=rng.choice(INDUSTRIES),
        )
        for name in COMPANIES
    ]
    topics = [
        b.row("bpats__Interview_Topic__c", Name=n, bpats__Description__c=d, bpats__Active__c=True)
        for n, d in TOPICS
    ]
    templates = []
    for name, topic_idx in TEMPLATES:
        t = b.row(
            "bpats__Interview_Template__c",
            Name=name,
            bpats__Active__c=True,
            bpats__Description__c=f"Standard {name.lower()} used by recruiters.",
        )
        templates.append(t)
        for order, ti in enumerate(topic_idx, start=1):
            b.row(
                "bpats__Interview_Template_Detail__c",
                bpats__Interview_Template__c=t["Id"],
                bpats__Interview_Topic__c=topics[ti]["Id"],
                bpats__Order__c=float(order),
                bpats__Required__c=order <= 2,
            )

    def person(account: dict | None, title: str | None, domain: str) -> dict[str, Any]:
        first, last = rng.choice(FIRST), rng.choice(LAST)
        city = rng.choice(CITIES)
        n = len(b.rows.get("Contact", [])) + 1
        return b.row(
            "Contact",
            FirstName=first,
            LastName=last,
            Email=f"{first.lower()}.{last.lower()}{n}@{domain}",
            Phone=f"+1 555 {rng.randint(100, 999)} {rng.randint(1000, 9999)}",
            Title=title,
            MailingCity=city[0],
            MailingState=city[1],
            MailingCountry=city[2],
            AccountId=account["Id"] if account else None,
        )

    interviewers = [
        person(
            rng.choice(accounts),
            rng.choice(["Engineering Manager", "Hiring Manager", "Staff Engineer", "Director"]),
            "interviewers.example.com",
        )
        for _ in range(30)
    ]
    candidates = [person(None, None, "candidates.example.com") for _ in range(max(60, jobs // 2))]

    job_rows = []
    depts = list(TITLES)
    for n in range(jobs):
        # The first jobs are always publicly listed (open, posted, not ended), so even a tiny
        # seed has jobs a career site shows, first in insertion order.
        public = n < 3
        dept = rng.choice(depts)
        level = rng.choice(LEVELS)
        title = (level + " " + rng.choice(TITLES[dept])).strip()
        city = rng.choice(CITIES)
        wp = _pick(rng, WORKPLACE)
        status = "Open" if public else _pick(rng, STATUSES)
        posted = today - timedelta(days=rng.randint(0, 180))
        end = max(posted, today) + timedelta(days=rng.randint(30, 240))
        if status == "Open" and not public and rng.random() < 0.08:
            end = today - timedelta(days=rng.randint(1, 30))  # open but past its end date
        hourly = rng.random() < 0.12
        if hourly:
            lo = rng.randint(15, 80)
            salary = (float(lo), float(lo + rng.randint(5, 40)), "Hourly")
        else:
            lo = rng.randrange(40_000, 200_000, 1000)
            salary = (float(lo), float(lo + rng.randrange(10_000, 80_000, 1000)), "Annual")
        account = rng.choice(accounts)
        job_rows.append(
            b.row(
                "bpats__Job__c",
                Name=f"{title} ({city[0]})"[:80],
                CreatedDate=f"{posted.isoformat()}T{rng.randint(8, 18):02d}:00:00.000+0000",
                bpats__Job_Title__c=title,
                bpats__Status__c=status,
                bpats__Date_Posted__c=posted.isoformat(),
                bpats__End_Date__c=end.isoformat() if rng.random() < 0.9 else None,
                bpats__Post_to_Job_Board__c=public or (status == "Open" and rng.random() < 0.85),
                bpats__Department__c=dept,
                bpats__Employment_Type__c=_pick(rng, EMPLOYMENT),
                bpats__Workplace_Type__c=wp,
                bpats__City__c=city[0],
                bpats__State__c=city[1],
                bpats__Country__c=city[2],
                bpats__Postal_Code__c=city[3],
                bpats__Description__c=_description(rng, title, dept, account["Name"], wp),
                bpats__Salary_Min__c=salary[0],
                bpats__Salary_Max__c=salary[1],
                bpats__Salary_Currency__c=city[4],
                bpats__Salary_Period__c=salary[2],
                bpats__Account__c=account["Id"],
                bpats__Interview_Template__c=templates[TEMPLATE_FOR_DEPT[dept]]["Id"],
            )
        )

    open_jobs = [j for j in job_rows if j["bpats__Status__c"] in ("Open", "Filled")]
    for n in range(min(len(open_jobs), max(40, jobs // 5))):
        job = rng.choice(open_jobs)
        cand = candidates[n % len(candidates)]
        b.row(
            "bpats__Job_Board_Application__c",
            bpats__Contact__c=cand["Id"],
            bpats__Job__c=job["Id"],
            bpats__Email__c=cand["Email"],
            bpats__First_Name__c=cand["FirstName"],
            bpats__Last_Name__c=cand["LastName"],
            bpats__Source__c=rng.choice(["Career Site", "LinkedIn", "Indeed", "Referral"]),
            bpats__Status__c=rng.choice(["New", "New", "In Review", "Processed"]),
            bpats__Consent__c=True,
            bpats__Consent_Date__c=now_iso(),
        )

    for n in range(min(len(open_jobs), max(30, jobs // 4))):
        job = rng.choice(open_jobs)
        cand = candidates[(n * 7) % len(candidates)]
        start_day = today + timedelta(days=rng.randint(-30, 21))
        start = datetime(
            start_day.year, start_day.month, start_day.day, rng.randint(14, 21), 0, tzinfo=UTC
        )
        status = "Completed" if start_day < today else "Scheduled"
        if rng.random() < 0.05:
            status = rng.choice(["Cancelled", "No Show"])
        interview = b.row(
            "bpats__Interview__c",
            bpats__Job__c=job["Id"],
            bpats__Contact__c=cand["Id"],
            bpats__Interview_Template__c=job["bpats__Interview_Template__c"],
            bpats__Start_Date_Time__c=now_iso(start),
            bpats__End_Date_Time__c=now_iso(start + timedelta(hours=1)),
            bpats__Type__c=rng.choice(["Phone Screen", "Video", "On-site", "Technical", "Panel"]),
            bpats__Status__c=status,
            bpats__Location__c=rng.choice(["Zoom", "Google Meet", "Office, room 3", "Phone"]),
        )
        if status == "Completed" and rng.random() < 0.5:
            who = rng.choice(interviewers)
            feedback = b.row(
                "bpats__Interview_Feedback__c",
                bpats__Interview__c=interview["Id"],
                bpats__Interviewer__c=who["Id"],
                bpats__Interviewer_Email__c=who["Email"],
                bpats__Overall_Rating__c=rng.choice(
                    ["2 - Fair", "3 - Good", "4 - Very Good", "5 - Excellent"]
                ),
                bpats__Recommendation__c=rng.choice(["Strong Hire", "Hire", "No Hire"]),
                bpats__Comments__c="Solid conversation; see topic notes.",
                bpats__Submitted_Date__c=now_iso(start + timedelta(hours=3)),
            )
            for topic in rng.sample(topics, 3):
                b.row(
                    "bpats__Interview_Topic_Feedback__c",
                    bpats__Interview_Feedback__c=feedback["Id"],
                    bpats__Interview_Topic__c=topic["Id"],
                    bpats__Rating__c=rng.choice(["3 - Good", "4 - Very Good"]),
                    bpats__Comments__c="Clear reasoning.",
                )
    return b.flush()
