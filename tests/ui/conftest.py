"""Browser tests: a real api-server in a throwaway AIRFLOW_HOME, Debian's chromium driven by Playwright.

Run by ``make test-ui``, which installs chromium and playwright and sets ``FUSE_UI_TESTS=1``; a plain
``pytest`` (``make test``) reports these tests as skipped, without importing playwright.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests

from airflow_provider_fuse.testing import FuseSimulator
from airflow_provider_fuse.testing.airflow_sandbox import AirflowSandbox, stop_process_group

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / ".artifacts" / "ui"
CHROMIUM = os.environ.get("FUSE_UI_CHROMIUM", "/usr/bin/chromium")
# Flags from shared/design.md: without the background-networking ones chromium keeps dialing
# Google's hosts, which this machine's closed network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
USERNAME = "admin"
#: The connection of tests/ui/dags/fuse_ui_pages.py, known to the api-server with a callback secret
#: so that it accepts the result callbacks test_pages.py delivers as Fuse would.
PAGES_CONN_ID = "fuse_pages"
CALLBACK_SECRET = "ui-tests-callback-secret-0123456789abcdef"
SERVER_START_TIMEOUT = 90.0


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if os.environ.get("FUSE_UI_TESTS") == "1":
        return
    skip = pytest.mark.skip(reason="browser test: run `make test-ui` (sets FUSE_UI_TESTS=1)")
    for item in items:
        if item.get_closest_marker("ui"):
            item.add_marker(skip)


def free_port() -> int:
    """A loopback port nobody listens on (the kernel's pick, released at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class AirflowUI:
    """A running api-server: where it is, who may log in, and its sandbox (for ``dags test``)."""

    url: str
    password: str
    sandbox: AirflowSandbox

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        """One REST API call as the admin user (a fresh JWT each time: these tests make few calls)."""
        token = requests.post(
            f"{self.url}/auth/token", json={"username": USERNAME, "password": self.password}, timeout=30
        )
        token.raise_for_status()
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        response = requests.request(method, f"{self.url}/api/v2{path}", headers=headers, timeout=30, **kwargs)
        response.raise_for_status()
        return response.json()


@pytest.fixture(scope="session")
def simulator() -> Iterator[FuseSimulator]:
    with FuseSimulator(speed=600) as sim:
        yield sim


def pages_connection(simulator: FuseSimulator) -> str:
    """``fuse_pages`` (JSON form): the simulator, with the callback secret."""
    return json.dumps(
        {
            "conn_type": "fuse",
            "host": simulator.url,
            "login": simulator.login,
            "password": simulator.password,
            "extra": {"callback_secret": CALLBACK_SECRET},
        }
    )


@pytest.fixture(scope="session")
def airflow_ui(tmp_path_factory: pytest.TempPathFactory, simulator: FuseSimulator) -> Iterator[AirflowUI]:
    """``airflow api-server`` with the simple auth manager (user admin, generated password) and Test
    enabled; ``[api] base_url`` is its own address (the task pages' links are built from it)."""
    sandbox = AirflowSandbox([ROOT / "example_dags"], home=tmp_path_factory.mktemp("airflow-home"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = sandbox.env(
        {
            "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USERNAME}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
            "AIRFLOW__API__BASE_URL": url,
            f"AIRFLOW_CONN_{PAGES_CONN_ID.upper()}": pages_connection(simulator),
        }
    )
    sandbox.migrate()
    log_path = sandbox.home / "api-server.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [sandbox.airflow, "api-server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: killed whole, uvicorn workers included
        )
    try:
        password = _wait_until_serving(url, sandbox.home, server, log_path)
        yield AirflowUI(url, password, sandbox)
    finally:
        stop_process_group(server)
        sandbox.cleanup()


def _wait_until_serving(url: str, home: Path, server: subprocess.Popen[bytes], log_path: Path) -> str:
    """Wait for ``/api/v2/version``, then read the admin password the auth manager generated."""
    password_file = home / "simple_auth_manager_passwords.json.generated"
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            break
        try:
            if requests.get(f"{url}/api/v2/version", timeout=2).ok and password_file.exists():
                return str(json.loads(password_file.read_text())[USERNAME])
        except (requests.RequestException, ValueError, KeyError):
            pass  # not up yet, or the password file is being written
        time.sleep(0.5)
    raise RuntimeError(f"api-server did not start:\n{log_path.read_text(errors='replace')[-4000:]}")


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test-ui` installs Debian's chromium package")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser, airflow_ui: AirflowUI) -> Iterator[Page]:
    """A fresh page logged in through the real sign-in form."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=airflow_ui.url)
    context.set_default_timeout(20_000)
    page = context.new_page()
    page.goto("/")
    page.get_by_label("Username").fill(USERNAME)
    page.get_by_label("Password").fill(airflow_ui.password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{airflow_ui.url}/")
    yield page
    context.close()


class Shots:
    """Numbered screenshots under .artifacts/ui (git-ignored), in the order the scenario takes them."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.count = 0

    def __call__(self, page: Page, name: str) -> Path:
        self.count += 1
        path = self.folder / f"{self.count:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def shots(request: pytest.FixtureRequest) -> Shots:
    folder = SHOTS / request.node.name
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    return Shots(folder)
