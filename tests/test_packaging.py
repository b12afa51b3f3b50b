"""The release files: the sdist and wheel hold LICENSE and py.typed, the metadata says where the docs
are, PyPI can render the README, and Airflow shows the documentation URL.

The sdist and wheel are built offline (``--no-isolation``: build and hatchling come with the test
extra), the wheel from the sdist, as ``make dist`` does. ``make dist`` sets ``FUSE_DIST_DIR`` so that
the same checks run on the files it built for release.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import tarfile
import zipfile
from email.message import Message
from email.parser import HeaderParser
from pathlib import Path

import pytest

import airflow_provider_fuse

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
#: SHA-256 of the Apache License 2.0 as the ASF publishes it (https://www.apache.org/licenses/LICENSE-2.0.txt).
APACHE_2_SHA256 = "cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30"
URL_LABELS = {"Homepage", "Documentation", "Source", "Changelog", "Issues"}
#: Every Python that Airflow 3.1, 3.2 and 3.3 all support.
PYTHONS = ["3.10", "3.11", "3.12", "3.13"]


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if os.environ.get("FUSE_DIST_DIR"):
        return Path(os.environ["FUSE_DIST_DIR"]).resolve()
    out = tmp_path_factory.mktemp("dist")
    result = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out


def only(dist: Path, pattern: str) -> Path:
    (path,) = dist.glob(pattern)
    return path


def wheel_metadata(dist: Path) -> Message:
    with zipfile.ZipFile(only(dist, "*.whl")) as wheel:
        (name,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
        return HeaderParser().parsestr(wheel.read(name).decode())


def project_urls(metadata: Message) -> dict[str, str]:
    return dict(
        tuple(part.strip() for part in entry.split(",", 1)) for entry in metadata.get_all("Project-URL")
    )


def test_the_license_is_the_apache_2_text() -> None:
    assert hashlib.sha256((ROOT / "LICENSE").read_bytes()).hexdigest() == APACHE_2_SHA256


def test_the_wheel_holds_the_license_and_py_typed(dist: Path) -> None:
    version = airflow_provider_fuse.__version__
    wheel_path = only(dist, "*.whl")
    assert wheel_path.name == f"airflow_provider_fuse-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel_path) as wheel:
        names = wheel.namelist()
        assert "airflow_provider_fuse/py.typed" in names
        (license_name,) = [n for n in names if n.endswith(".dist-info/licenses/LICENSE")]
        assert wheel.read(license_name) == (ROOT / "LICENSE").read_bytes()
    metadata = wheel_metadata(dist)
    assert metadata["License-Expression"] == "Apache-2.0"
    assert metadata.get_all("License-File") == ["LICENSE"]


def test_the_sdist_holds_what_a_build_and_make_test_need(dist: Path) -> None:
    version = airflow_provider_fuse.__version__
    sdist_path = only(dist, "*.tar.gz")
    prefix = f"airflow_provider_fuse-{version}"
    assert sdist_path.name == f"{prefix}.tar.gz"
    with tarfile.open(sdist_path) as sdist:
        names = set(sdist.getnames())
        assert sdist.extractfile(f"{prefix}/LICENSE").read() == (ROOT / "LICENSE").read_bytes()
    for path in [
        "airflow_provider_fuse/py.typed",
        "CHANGELOG.md",
        "README.md",
        "pyproject.toml",
        "docs/conf.py",
    ]:
        assert f"{prefix}/{path}" in names, path
    assert any(n.startswith(f"{prefix}/example_dags/") for n in names)
    assert any(n.startswith(f"{prefix}/tests/") for n in names)
    assert not any("/.ci/" in n or "/.venv" in n or "__pycache__" in n for n in names)


def test_the_metadata_says_where_everything_is_and_what_is_supported(dist: Path) -> None:
    metadata = wheel_metadata(dist)
    urls = project_urls(metadata)
    assert set(urls) == URL_LABELS
    assert all(url.startswith("https://") for url in urls.values()), urls
    classifiers = metadata.get_all("Classifier")
    for expected in [
        "Framework :: Apache Airflow",
        "Framework :: Apache Airflow :: Provider",
        "Typing :: Typed",
    ]:
        assert expected in classifiers
    assert [
        c.rsplit(" :: ", 1)[1]
        for c in classifiers
        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
    ] == PYTHONS
    assert any(c.startswith("Development Status :: ") for c in classifiers)
    assert any(c.startswith("Intended Audience :: ") for c in classifiers)
    assert metadata["Author"]
    assert "airflow" in metadata["Keywords"].split(",")
    assert metadata["Requires-Python"] == f">={PYTHONS[0]}"


def test_twine_check_strict_passes(dist: Path) -> None:
    files = [str(only(dist, "*.whl")), str(only(dist, "*.tar.gz"))]
    result = subprocess.run(
        [str(BIN / "twine"), "check", "--strict", *files], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_readme_link_is_absolute_so_that_pypi_renders_it() -> None:
    """PyPI shows the README without the repository: relative paths and in-page anchors lead nowhere."""
    targets = re.findall(r"\]\(([^)\s]+)\)", (ROOT / "README.md").read_text())
    assert len(targets) > 10
    assert [t for t in targets if not t.startswith("https://")] == []


def test_the_provider_info_carries_the_documentation_url(dist: Path) -> None:
    """What an Airflow that does not read the metadata field itself (before 3.1.8) shows."""
    expected = project_urls(wheel_metadata(dist))["Documentation"]
    assert airflow_provider_fuse.get_provider_info()["documentation-url"] == expected


def test_project_url_reads_each_label_and_names_a_missing_one(dist: Path) -> None:
    urls = project_urls(wheel_metadata(dist))
    assert {label: airflow_provider_fuse.project_url(label.lower()) for label in urls} == urls
    with pytest.raises(LookupError, match="no Wiki URL"):
        airflow_provider_fuse.project_url("Wiki")


def test_airflow_providers_get_full_shows_the_documentation_url(dist: Path) -> None:
    expected = project_urls(wheel_metadata(dist))["Documentation"]
    result = subprocess.run(
        [str(BIN / "airflow"), "providers", "get", "airflow-provider-fuse", "--full", "--output", "json"],
        capture_output=True,
        text=True,
        env=os.environ,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    (shown,) = json.loads(result.stdout.strip().splitlines()[-1])  # log lines may come first
    assert shown["package-name"] == "airflow-provider-fuse"
    # Airflow 3.1.8 reads the metadata field itself and keeps the space after its comma
    # ("Documentation, https://..."); 3.3 strips it. A browser ignores it in a link.
    assert shown["documentation-url"].strip() == expected
