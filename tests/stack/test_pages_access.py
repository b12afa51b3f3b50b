"""The task pages against a real multi-process Airflow: login and per-DAG authorization are Airflow's.

The stack runs with real users (no "all admins"): ``admin`` (admin) and ``outsider`` (viewer), and
an auth manager that is SimpleAuthManager except that ``outsider`` may not read ``fuse_pages_secret``
(tests/stack/page_auth.py). Each DAG's one task pushes what a finished call task pushes. A request
without a login gets 401, the outsider's request for the secret DAG's page gets 403, and neither
answer shows anything of the call; the same outsider reads the other DAG's page, and the admin both.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from airflow_provider_fuse.phone import mask_phone
from airflow_provider_fuse.plugins import task_page_path
from tests.stack.page_auth import DENIED_DAG, DENIED_USER
from tests.stack.page_dags.fuse_pages_dags import CALL_ID, NUMBER, PAGE_DAGS
from tests.stack.stack import AirflowStack

pytestmark = [pytest.mark.stack, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
DAGS = Path(__file__).parent / "page_dags" / "fuse_pages_dags.py"
ADMIN = "admin"
OPEN_DAG = next(dag for dag in PAGE_DAGS if dag != DENIED_DAG)
#: What the page of a call shows; none of it may be in a refused answer.
SHOWN = (mask_phone(NUMBER), CALL_ID, "Fuse call")
RUN_TIMEOUT = 300  # a one-task run on a busy 2-core machine takes well under a minute


class PagesStack:
    """The stack, its users' passwords, and the run of each page DAG."""

    def __init__(self, airflow: AirflowStack, passwords: dict[str, str]) -> None:
        self.airflow = airflow
        self.passwords = passwords
        self.runs: dict[str, str] = {}

    def token(self, user: str) -> str:
        answer = requests.post(
            f"{self.airflow.url}/auth/token",
            json={"username": user, "password": self.passwords[user]},
            timeout=60,
        )
        answer.raise_for_status()
        return str(answer.json()["access_token"])

    def page_url(self, dag_id: str) -> str:
        return f"{self.airflow.url}/{task_page_path(dag_id, self.runs[dag_id], 'call', -1)}"

    def page(self, dag_id: str, user: str | None = None, cookie: bool = False) -> requests.Response:
        """The page of ``dag_id``'s call task as ``user`` (a Bearer token, or the UI's ``_token`` cookie)."""
        session = requests.Session()
        session.trust_env = False
        if user is not None and cookie:
            session.cookies.set("_token", self.token(user))
        elif user is not None:
            session.headers["Authorization"] = f"Bearer {self.token(user)}"
        return session.get(self.page_url(dag_id), timeout=60, allow_redirects=False)


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PagesStack]:
    home = tmp_path_factory.mktemp("fuse-pages-stack")
    passwords = {ADMIN: secrets.token_urlsafe(16), DENIED_USER: secrets.token_urlsafe(16)}
    (home / "passwords.json").write_text(json.dumps(passwords))
    env = {
        "AIRFLOW__CORE__AUTH_MANAGER": "tests.stack.page_auth.OneDagDeniedAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN}:admin,{DENIED_USER}:viewer",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
        "PYTHONPATH": str(ROOT),  # the auth manager and the DAG's imports
    }
    airflow = AirflowStack(home, [DAGS], env)
    stack = PagesStack(airflow, passwords)
    try:
        airflow.start()
        airflow.api.headers["Authorization"] = f"Bearer {stack.token(ADMIN)}"  # the REST calls below
        airflow.wait_for_dags(PAGE_DAGS)
        stack.runs = {dag_id: airflow.trigger(dag_id) for dag_id in PAGE_DAGS}
        for dag_id, run_id in stack.runs.items():
            assert airflow.wait_run(dag_id, run_id, RUN_TIMEOUT) == "success", dag_id
        yield stack
    finally:
        airflow.stop()


def assert_nothing_shown(answer: requests.Response) -> None:
    for shown in SHOWN:
        assert shown not in answer.text, shown
    assert "text/html" not in answer.headers.get("content-type", "")


def test_the_admin_reads_both_pages(pages: PagesStack) -> None:
    for dag_id in PAGE_DAGS:
        answer = pages.page(dag_id, ADMIN)
        assert answer.status_code == 200, answer.text[:500]
        for shown in SHOWN:
            assert shown in answer.text, (dag_id, shown)
        assert NUMBER not in answer.text
        assert "default-src 'none'" in answer.headers["content-security-policy"]


@pytest.mark.parametrize("dag_id", PAGE_DAGS)
def test_an_unauthenticated_page_request_is_refused(pages: PagesStack, dag_id: str) -> None:
    answer = pages.page(dag_id)
    assert answer.status_code == 401
    assert_nothing_shown(answer)


def test_a_forged_login_token_is_refused(pages: PagesStack) -> None:
    session = requests.Session()
    session.trust_env = False
    answer = session.get(
        pages.page_url(OPEN_DAG), headers={"Authorization": "Bearer forged.jwt.token"}, timeout=60
    )
    assert answer.status_code in (401, 403)
    assert_nothing_shown(answer)


@pytest.mark.parametrize("cookie", [False, True], ids=["bearer", "ui-cookie"])
def test_a_user_without_access_to_the_dag_is_refused_and_sees_nothing(
    pages: PagesStack, cookie: bool
) -> None:
    refused = pages.page(DENIED_DAG, DENIED_USER, cookie=cookie)
    assert refused.status_code == 403, refused.text[:500]
    assert_nothing_shown(refused)
    # The same user, logged in the same way, reads the DAG the auth manager lets them read.
    allowed = pages.page(OPEN_DAG, DENIED_USER, cookie=cookie)
    assert allowed.status_code == 200, allowed.text[:500]
    assert mask_phone(NUMBER) in allowed.text
