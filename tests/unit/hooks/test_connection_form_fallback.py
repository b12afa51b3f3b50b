"""Airflow 3.1's connection form: FuseHook's get_ui_field_behaviour() and get_connection_form_widgets()
say what get_provider_info() declares for Airflow 3.2+, built the way Airflow 3.1's api-server builds it.

The api-server stands in for wtforms and Flask-AppBuilder with its own fields; these tests use
Airflow's own stand-ins and read each field as the API serves it. The browser check is tests/ui
(``make test-ui VENV=.venv-af31 AIRFLOW_VERSION=3.1.8``).
"""

from __future__ import annotations

import sys
from types import SimpleNamespace
from typing import Any
from unittest import mock

from airflow_provider_fuse import get_provider_info
from airflow_provider_fuse.hooks.fuse import FuseHook

(DECLARED,) = get_provider_info()["connection-types"]


def widgets_as_the_api_serves_them() -> dict[str, dict[str, Any]]:
    from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService as Meta

    stand_ins = {
        "flask_appbuilder.fieldwidgets": SimpleNamespace(
            BS3TextFieldWidget=Meta.MockAnyWidget, BS3PasswordFieldWidget=Meta.MockAnyWidget
        ),
        "flask_babel": SimpleNamespace(lazy_gettext=str),
        "wtforms": SimpleNamespace(
            StringField=Meta.MockStringField,
            IntegerField=Meta.MockIntegerField,
            PasswordField=Meta.MockPasswordField,
        ),
        "wtforms.validators": SimpleNamespace(Optional=Meta.MockOptional),
    }
    with mock.patch.dict(sys.modules, stand_ins):
        widgets = FuseHook.get_connection_form_widgets()
    return {name: widget.param.dump() for name, widget in widgets.items()}


def test_the_fallback_field_behaviour_is_the_declared_one() -> None:
    declared = DECLARED["ui-field-behaviour"]
    assert FuseHook.get_ui_field_behaviour() == {
        "hidden_fields": declared["hidden-fields"],
        "relabeling": declared["relabeling"],
        "placeholders": declared["placeholders"],
    }


def test_the_fallback_extra_fields_are_the_declared_ones() -> None:
    served = widgets_as_the_api_serves_them()
    assert list(served) == list(DECLARED["conn-fields"])
    for name, field in DECLARED["conn-fields"].items():
        shown = served[name]
        assert (shown["schema"]["title"], shown["description"]) == (field["label"], field["description"])
        assert str(shown["value"]) == str(field["schema"]["default"])
        kind = "integer" if "integer" in field["schema"]["type"] else "string"
        assert shown["schema"]["type"] == [kind, "null"], name
        assert shown["schema"].get("format") == field["schema"].get("format"), name  # secrets masked alike
