"""Response bodies as XML, the way Alibaba Cloud's RPC APIs write them for ``Format=XML``.

The JSON body's tree becomes elements of the same names under one root (``<DescribeEaisResponse>``
for an answer, ``<Error>`` for an error): an object's keys are child elements, a list repeats the
element of its key once per item (``Instances: {Instance: [a, b]}`` is
``<Instances><Instance>a</Instance><Instance>b</Instance></Instances>``), booleans are
``true``/``false`` and None is an empty element.
"""

from __future__ import annotations

import re
from typing import Any
from xml.etree import ElementTree

XML_CONTENT_TYPE = "text/xml;charset=utf-8"  # exactly what the v3 SDK looks for before parsing an error as XML

# Characters XML 1.0 cannot carry even escaped; stored text (names, descriptions) might hold them.
_NOT_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_document(root: str, fields: dict[str, Any]) -> bytes:
    """``fields`` under ``<root>``, with an XML declaration, UTF-8."""
    element = ElementTree.Element(root)
    for name, value in fields.items():
        _append(element, name, value)
    return ElementTree.tostring(element, encoding="utf-8", xml_declaration=True)


def _append(parent: ElementTree.Element, name: str, value: Any) -> None:
    if isinstance(value, list | tuple):
        for item in value:
            _append(parent, name, item)
        return
    child = ElementTree.SubElement(parent, name)
    if isinstance(value, dict):
        for key, item in value.items():
            _append(child, key, item)
    elif value is not None:
        child.text = _text(value)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return _NOT_XML.sub("", str(value))
