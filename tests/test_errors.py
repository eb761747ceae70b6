"""The error tree and its table: every error a caller can see has a code, an HTTP and a gRPC status, a place
in the tree drawn in ``controller/errors.py`` and a line in the README's error table."""

from __future__ import annotations

import gc
import re
from pathlib import Path

import grpc

from controller import errors
from controller.errors import ERROR_TABLE, DomainError, EaisError, leaf_error_classes, spec_for

README = Path(__file__).resolve().parents[1] / "README.md"


def unmapped() -> list[str]:
    return sorted(cls.__name__ for cls in leaf_error_classes() if cls not in ERROR_TABLE)


def test_every_error_class_has_an_entry_in_the_table():
    assert unmapped() == []


def test_a_new_error_class_without_an_entry_is_reported():
    class Orphan(DomainError): ...

    try:
        assert unmapped() == ["Orphan"]
        try:
            spec_for(Orphan)
        except LookupError as error:
            assert "Orphan" in str(error)
        else:
            raise AssertionError("spec_for found an entry for a class the table lacks")
    finally:
        del Orphan
        gc.collect()  # __subclasses__ holds it weakly: gone for the other tests


def test_the_table_holds_only_classes_callers_can_get():
    assert set(ERROR_TABLE) <= set(leaf_error_classes())


def test_every_entry_is_an_error_status_on_both_wires():
    for cls, spec in ERROR_TABLE.items():
        assert 400 <= spec.http_status <= 599, cls
        assert spec.grpc_status not in (grpc.StatusCode.OK, None), cls
        assert re.fullmatch(r"[A-Z][A-Za-z]*(\.[A-Z][A-Za-z]*)*", spec.code), spec.code


def test_server_errors_are_5xx_and_caller_errors_are_4xx():
    for cls, spec in ERROR_TABLE.items():
        assert (spec.http_status >= 500) == issubclass(cls, errors.ServerError), cls


def test_the_tree_in_the_module_docstring_names_every_error_class():
    tree = errors.__doc__
    missing = [cls.__name__ for cls in ERROR_TABLE if not re.search(rf"\b{cls.__name__}\b", tree)]
    assert missing == []


def test_the_readme_lists_every_code_with_its_status():
    readme = README.read_text()
    missing = [f"{spec.code} ({spec.http_status})" for spec in ERROR_TABLE.values()
               if not re.search(rf"`{re.escape(spec.code)}[^`]*`[^|\n]*\|\s*{spec.http_status}\b", readme)]
    assert missing == []


def test_a_detail_extends_the_code_and_keeps_the_status():
    error = errors.InvalidParameter("Amount is out of range.", detail="Amount")

    assert (error.code, error.http_status) == ("InvalidParameter.Amount", 400)
    assert isinstance(error, EaisError) and error.response_headers == {}


def test_errors_that_need_headers_carry_them():
    refused = errors.MethodNotAllowed("PUT / is not allowed.", allowed=("GET", "POST"))

    assert refused.response_headers == {"Allow": "GET, POST"}
    assert errors.AdminTokenRejected("no token").response_headers == {"WWW-Authenticate": "Bearer"}
