"""Sphinx configuration of the docs site (`make docs`): Markdown pages through MyST, the API from docstrings.

Reference text that the README already holds (parameter tables, the connection's fields) is included
from it, and every DAG snippet from ``example_dags/``, so that each has one home.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import airflow_provider_fuse

#: The canonical repository, from ``[project.urls]`` (the README's links point there, for PyPI).
REPOSITORY = airflow_provider_fuse.project_url("Source")
#: The README's sections that have a page here: its links to them lead to the page instead.
README_SECTION_PAGES = {
    "install": "/installation.md",
    "the-fuse-connection": "/connection.md",
    "queuecalloperator": "/operators/queue-call.md",
    "reserved-variable-names": "/operators/queue-call.md#reserved-variable-names",
    "fusecallsensor": "/sensors/fuse-call-sensor.md",
    "campaigns-queuecallsoperator": "/operators/campaigns.md",
    "fusecallnotifier": "/notifications/fuse-call-notifier.md",
    "calling-hours": "/calling-hours.md",
    "cancelpendingcallsoperator": "/operators/cancel-pending-calls.md",
    "fusehook": "/hook.md",
    "guarantees": "/guarantees.md",
    "the-fuse-simulator": "/simulator.md",
    "fuse-api-assumptions": "/fuse-api-assumptions.md",
}

project = "airflow-provider-fuse"
author = "The airflow-provider-fuse authors"
copyright = "the airflow-provider-fuse authors; Apache License 2.0"
release = airflow_provider_fuse.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]

myst_enable_extensions = ["colon_fence", "deflist"]
# Anchors for `#section` links inside a page, as GitHub makes them.
myst_heading_anchors = 3
# README sections included into a page start at its level-3 headings.
suppress_warnings = ["myst.header"]

autodoc_default_options = {"members": True, "show-inheritance": True, "member-order": "bysource"}
autodoc_typehints = "description"
autodoc_typehints_format = "short"
autodoc_class_signature = "separated"

# `make docs` runs nitpicky (-n): every cross-reference into this package must resolve. No intersphinx
# (the build must work offline), so references into the standard library and third-party packages
# are not resolved and would each warn: they are ignored here by module.
nitpick_ignore_regex = [
    (
        r"py:.*",
        r"(airflow|pendulum|aiohttp|requests|phonenumbers|datetime|collections|typing|typing_extensions|enum|os|pathlib|asyncio|zoneinfo|threading|http|socket|ssl|urllib|types|abc|logging|csv|io|concurrent|contextlib|subprocess|upath|fsspec)(\..*)?",
    ),
    # Private names (a leading underscore) are never part of the API reference.
    (r"py:.*", r"airflow_provider_fuse\..*\._[A-Za-z]\w*"),
    # Internal modules that docstrings mention for the curious; not part of the API reference.
    (
        r"py:.*",
        r"airflow_provider_fuse\.(resume|waiting|validation|protocol|fields|phone|urls|calls_file|connection|testing\.(clock|store|rules|faults|app|server|forms|callbacks))(\..*)?",
    ),
    # Names that type hints leave unqualified: builtins, Airflow's and internal helpers imported by name.
    (
        r"py:.*",
        r"(BaseOperator|BaseSensorOperator|BaseNotifier|BaseHook|BaseTrigger|BaseOperatorLink|TaskInstanceKey|PokeReturnValue|TriggerEvent|TaskMemory|CallsPoller|CallOptions|Anchor)",
    ),
    (
        r"py:.*",
        r"(None|int|float|str|bytes|bool|dict|list|tuple|set|frozenset|object|type|Any|Exception|ValueError|BaseException|Context|T|P|R|Self)",
    ),
]

html_theme = "furo"
html_title = f"airflow-provider-fuse {release}"
html_static_path: list[str] = []
html_theme_options = {
    "source_repository": f"{REPOSITORY}/",
    "source_branch": "main",
    "source_directory": "docs/",
}


def _resolve_unqualified(app: Any, env: Any, node: Any, contnode: Any) -> Any:
    """Resolve a bare name in a docstring (``:class:`FuseInvalidRowsError```) to this package's one
    documented object of that name, as a reader would: docstrings name classes the way the code does."""
    target = node.get("reftarget", "")
    if node.get("refdomain") != "py" or "." in target:
        return None
    domain = env.get_domain("py")
    found = [
        name
        for name in domain.objects
        if name.startswith("airflow_provider_fuse.") and name.endswith(f".{target}")
    ]
    if len(found) != 1:
        return None
    return domain.resolve_xref(env, node["refdoc"], app.builder, node["reftype"], found[0], node, contnode)


def _readme_links_to_pages(app: Any, relative_path: Path, parent_docname: str, content: list[str]) -> None:
    """README sections included into a page link to this site's pages and images, not to GitHub."""
    if Path(relative_path).name != "README.md":
        return
    text = content[0].replace(
        f"{REPOSITORY.replace('github.com', 'raw.githubusercontent.com')}/main/docs/", "/"
    )
    text = text.replace(f"{REPOSITORY}/blob/main/docs/", "/")
    content[0] = re.sub(
        rf"\]\({re.escape(REPOSITORY)}#([a-z0-9-]+)\)",
        lambda link: f"]({README_SECTION_PAGES.get(link[1], link[0][2:-1])})",
        text,
    )


def setup(app: Any) -> None:
    app.connect("missing-reference", _resolve_unqualified)
    app.connect("include-read", _readme_links_to_pages)
